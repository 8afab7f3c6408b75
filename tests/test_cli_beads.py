"""`camtrack find-beads`, `camtrack zlut` and `camtrack track --beads` (#17 item 6),
checked against the simulator's truth."""

from __future__ import annotations

import csv
import re

import numpy as np
import pytest
import tifffile

from camtrack import cli, simulate, tracking

PLANES = np.arange(-4500.0, 4501.0, 100.0)


def _rows(path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def field(tmp_path_factory):
    """Six frames of three beads in 160 x 192 px, as a TIFF, with the truth."""
    folder = tmp_path_factory.mktemp("field")
    stack, truth = simulate.bead_field(6, (160, 192), n_beads=3, rng=5)
    path = folder / "beads.tif"
    tifffile.imwrite(path, np.asarray(stack))
    return path, truth


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A 48 px z-sweep (2 frames per 100 nm plane) as a TIFF, and a per-frame z CSV."""
    folder = tmp_path_factory.mktemp("sweep")
    stack, truth = simulate.zsweep(PLANES, roi_size=48, frames_per_plane=2, rng=6)
    path = folder / "zsweep.tif"
    tifffile.imwrite(path, np.asarray(stack))
    zcsv = folder / "z.csv"
    zcsv.write_text("z_nm\n" + "".join(f"{z}\n" for z in truth.z_nm))
    return path, zcsv, truth


def test_find_beads_command_against_truth(field, tmp_path, capsys):
    path, truth = field
    out = tmp_path / "beads.csv"
    before = path.read_bytes()
    argv = ["find-beads", str(path), "--roi-size", "40", "-o", str(out)]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "found 3 beads" in printed and "wrote" in printed
    rows = _rows(out)
    assert list(rows[0]) == ["bead", "x", "y", "radius_px", "score", "symmetry", "reference"]
    x = np.array([float(r["x"]) for r in rows])
    y = np.array([float(r["y"]) for r in rows])
    d = np.hypot(np.subtract.outer(x, truth.x[0]), np.subtract.outer(y, truth.y[0]))
    # every true bead once, each to a few tenths of a pixel (the finder's precision)
    assert sorted(d.argmin(axis=1).tolist()) == [0, 1, 2]
    assert d.min(axis=1).max() < 0.5
    # the stuck bead (truth's reference bead) is flagged from its motion over the 6
    # frames, the tethered ones are not
    ref = [int(r["reference"]) for r in rows]
    assert ref == truth.is_reference[d.argmin(axis=1)].astype(int).tolist()
    assert "STUCK (reference)" in printed
    assert path.read_bytes() == before
    # the same with a radius hint anywhere in 8..32 px
    for radius in ("8", "32"):
        hinted = tmp_path / f"beads_{radius}.csv"
        assert cli.main([*argv[:-1], str(hinted), "--radius", radius]) == 0
        assert len(_rows(hinted)) == 3
    # refuses to overwrite; --overwrite replaces
    assert cli.main(argv) == 2
    assert "already exists; add --overwrite" in capsys.readouterr().err
    assert cli.main([*argv, "--overwrite"]) == 0


def test_find_beads_command_reports_left_out_beads(field, tmp_path, capsys):
    path, _ = field
    out = tmp_path / "beads.csv"
    # 150 px ROIs cannot fit any bead of a 160 x 192 frame without leaving it
    assert cli.main(["find-beads", str(path), "--roi-size", "150", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "found 0 beads" in printed and "left out (" in printed and "note:" in printed
    assert _rows(out) == []


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--frame", "6"], ["--frame 6", "0 to 5"]),
        (["--roi-size", "1"], ["--roi-size", "got 1"]),
        (["--threshold", "3"], ["--threshold", "got 3"]),
        (["--radius", "-2"], ["--radius", "-2"]),
        (["--stuck-frames", "2"], ["--stuck-frames", "got 2"]),
    ],
)
def test_find_beads_command_bad_options_name_the_parameter(field, tmp_path, capsys, extra, words):
    path, _ = field
    out = tmp_path / "beads.csv"
    assert cli.main(["find-beads", str(path), "-o", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("camtrack find-beads:")
    for word in words:
        assert word in err
    assert not out.exists()


def test_find_beads_command_on_a_single_image(field, tmp_path, capsys):
    path, truth = field
    image = tmp_path / "one.tif"
    tifffile.imwrite(image, tifffile.imread(path)[2])
    out = tmp_path / "beads.csv"
    assert cli.main(["find-beads", str(image), "--roi-size", "40", "-o", str(out)]) == 0
    assert "stuck beads not flagged" in capsys.readouterr().out
    rows = _rows(out)
    x = np.array([float(r["x"]) for r in rows])
    y = np.array([float(r["y"]) for r in rows])
    d = np.hypot(np.subtract.outer(x, truth.x[2]), np.subtract.outer(y, truth.y[2]))
    assert sorted(d.argmin(axis=1).tolist()) == [0, 1, 2] and d.min(axis=1).max() < 0.5


def test_find_beads_command_refuses_other_suffixes(field, tmp_path, capsys):
    path, _ = field
    assert cli.main(["find-beads", str(path), "-o", str(tmp_path / "b.h5")]) == 2
    assert ".csv" in capsys.readouterr().err


def test_zlut_command_from_a_z_csv(sweep, tmp_path, capsys):
    path, zcsv, truth = sweep
    out = tmp_path / "lut.h5"
    argv = ["zlut", str(path), "--z-csv", str(zcsv), "-o", str(out)]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "91 planes from -4500 to 4500 nm" in printed
    # The self-check on held-out frames (1 of 2 per plane, 100 nm planes): about 1 nm
    # RMS on this bright bead; the whole sweep unambiguous.
    assert "self-check: RMS" in printed and "-4500 to 4500 nm, held-out frames" in printed
    lut = tracking.load_zlut(out)
    np.testing.assert_array_equal(lut.z, PLANES)
    assert lut.roi_size == 48
    # the LUT it wrote tracks the sweep's frames to their truth
    res = tracking.track_rois(np.asarray(tifffile.imread(path))[::7], zlut=lut)
    assert np.abs(np.asarray(res.z) - truth.z_nm[::7]).max() < 10.0
    assert cli.main(argv) == 2  # exists
    assert "add --overwrite" in capsys.readouterr().err


def test_zlut_command_from_start_and_step_equals_the_csv(sweep, tmp_path, capsys):
    path, zcsv, _ = sweep
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    assert cli.main(["zlut", str(path), "--z-csv", str(zcsv), "-o", str(a)]) == 0
    argv = ["zlut", str(path), "--z-start", "-4500", "--z-step", "100",
            "--frames-per-plane", "2", "-o", str(b)]  # fmt: skip
    assert cli.main(argv) == 0
    la, lb = tracking.load_zlut(a), tracking.load_zlut(b)
    np.testing.assert_array_equal(la.z, lb.z)
    np.testing.assert_allclose(la.profiles, lb.profiles)
    capsys.readouterr()


def test_zlut_command_crops_a_larger_frame_around_its_bead(tmp_path, capsys):
    # A 72 px sweep frame with the bead off-centre: cut a 48 px ROI around it.
    planes = np.arange(-3000.0, 3001.0, 200.0)
    stack, truth = simulate.zsweep(planes, roi_size=72, frames_per_plane=2, x=30.3, y=40.6, rng=2)
    path = tmp_path / "sweep.tif"
    tifffile.imwrite(path, np.asarray(stack))
    out = tmp_path / "lut.h5"
    argv = ["zlut", str(path), "--z-start", "-3000", "--z-step", "200",
            "--frames-per-plane", "2", "--roi-size", "48", "-o", str(out)]  # fmt: skip
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    cut = re.search(r"48 px ROI, cut at x ([\d.]+), y ([\d.]+)", printed)
    # cut where the finder puts the bead: within a few tenths of a pixel of the truth
    assert abs(float(cut[1]) - 30.3) < 0.3 and abs(float(cut[2]) - 40.6) < 0.3
    assert "-3000 to 3000 nm" in printed.split("self-check:")[1]
    assert tracking.load_zlut(out).roi_size == 48
    assert truth.x[0] == pytest.approx(30.3) and truth.y[0] == pytest.approx(40.6)


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--z-start", "0"], ["--z-step"]),
        (["--z-start", "0", "--z-step", "100", "--frames-per-plane", "5"],
         ["--frames-per-plane 5", "182 frames"]),
        (["--z-start", "0", "--z-step", "100", "--roi-size", "80"], ["--roi-size", "8 to 48"]),
        (["--z-csv", "Z", "--z-step", "100"], ["--z-step goes with --z-start"]),
    ],
)  # fmt: skip
def test_zlut_command_bad_options_name_the_parameter(sweep, tmp_path, capsys, extra, words):
    path, zcsv, _ = sweep
    extra = [str(zcsv) if e == "Z" else e for e in extra]
    out = tmp_path / "lut.h5"
    assert cli.main(["zlut", str(path), *extra, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("camtrack zlut:")
    for word in words:
        assert word in err
    assert not out.exists()


def test_zlut_command_bad_z_csv(sweep, tmp_path, capsys):
    path, _, _ = sweep
    bad = tmp_path / "z.csv"
    bad.write_text("frame,height\n0,1\n")
    assert cli.main(["zlut", str(path), "--z-csv", str(bad), "-o", str(tmp_path / "l.h5")]) == 2
    assert "z_nm (or z) column" in capsys.readouterr().err
    short = tmp_path / "short.csv"
    short.write_text("z\n0\n100\n200\n300\n400\n")  # 5 values for 182 frames
    assert cli.main(["zlut", str(path), "--z-csv", str(short), "-o", str(tmp_path / "l.h5")]) == 2
    assert "182 frames" in capsys.readouterr().err


def test_zlut_command_needs_a_z_source(sweep, tmp_path, capsys):
    path, _, _ = sweep
    with pytest.raises(SystemExit) as info:
        cli.main(["zlut", str(path), "-o", str(tmp_path / "l.h5")])
    assert info.value.code == 2
    assert "--z-csv" in capsys.readouterr().err


def test_find_zlut_track_chain_against_truth(field, sweep, tmp_path, capsys):
    path, truth = field
    sweep_path, zcsv, _ = sweep
    beads, lut, out = tmp_path / "beads.csv", tmp_path / "lut.h5", tmp_path / "tracks.csv"
    assert cli.main(["find-beads", str(path), "--roi-size", "48", "-o", str(beads)]) == 0
    assert cli.main(["zlut", str(sweep_path), "--z-csv", str(zcsv), "-o", str(lut)]) == 0
    argv = ["track", str(path), "--lut", str(lut), "--beads", str(beads), "-o", str(out)]
    assert cli.main(argv) == 0
    capsys.readouterr()
    found = _rows(beads)
    start = np.array([[float(r["x"]), float(r["y"])] for r in found])
    ids = [int(np.argmin(np.hypot(truth.x[0] - x, truth.y[0] - y))) for x, y in start]
    # find-beads flagged the stuck bead, so track subtracted its drift from every bead
    assert [int(r["reference"]) for r in found] == truth.is_reference[ids].astype(int).tolist()
    dx, dy = truth.drift_x - truth.drift_x[0], truth.drift_y - truth.drift_y[0]
    dz = truth.drift_z_nm - truth.drift_z_nm[0]
    rows = _rows(out)
    assert len(rows) == 6 * len(found)
    # The table keeps which beads were the reference, for `camtrack force` after it.
    ref_rows = {int(r["bead"]) for r in rows if r["reference"] == "True"}
    assert ref_rows == {i for i, r in enumerate(found) if int(r["reference"])}
    for r in rows:
        f, b = int(r["frame"]), ids[int(r["bead"])]
        # As test_cli's track test: bright beads, x, y well under 0.05 px, z within
        # 15 nm (neighbours' rings, 2-frame LUT planes), here drift-corrected.
        assert abs(float(r["x"]) - (truth.x[f, b] - dx[f])) < 0.05
        assert abs(float(r["y"]) - (truth.y[f, b] - dy[f])) < 0.05
        assert abs(float(r["z"]) - (truth.z_nm[f, b] - dz[f])) < 15.0


def test_track_command_finds_beads_itself_at_any_radius(field, tmp_path, capsys):
    path, _ = field
    for radius in ([], ["--radius", "8"], ["--radius", "32"]):
        out = tmp_path / f"t{len(radius)}{radius[-1] if radius else ''}.csv"
        assert cli.main(["track", str(path), "--roi-size", "48", *radius, "-o", str(out)]) == 0
        assert "found 3 beads" in capsys.readouterr().out
        assert len(_rows(out)) == 6 * 3


@pytest.mark.parametrize("command", ["demo", "gain", "find-beads", "zlut", "track", "info"])
def test_every_help_has_an_example(command, capsys):
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    text = capsys.readouterr().out
    assert "example:" in text and f"camtrack {command}" in text


def test_every_out_option_is_also_dash_o():
    """`-o` works wherever `--out` does (camtrack demo --headless -o DIR was refused)."""
    import argparse

    parser = cli._build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = [
        name
        for name, sub in subs.choices.items()
        for action in sub._actions
        if "--out" in action.option_strings and "-o" not in action.option_strings
    ]
    assert missing == []
