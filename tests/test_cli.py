"""The `camtrack` command: headless demo (also chosen automatically without a display), info."""

from __future__ import annotations

import json

import numpy as np
import tifffile

from camtrack import cli


def test_demo_without_display_runs_headless(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    out = tmp_path / "results"

    assert cli.main(["demo", "--out", str(out)]) == 0

    assert "no display" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    ff = summary["flat_field"]
    # 200 frames x 65k pixels: the fit's standard error is ~0.5%; allow 4 of them.
    assert (
        abs(ff["e_per_adu"] / ff["e_per_adu_truth"] - 1)
        < 4 * ff["e_per_adu_stderr"] / ff["e_per_adu"] + 0.005
    )
    gain = json.loads((out / "flat_field_gain.json").read_text())
    assert gain["units"]["e_per_adu"] == "e-/ADU"
    assert (out / "flat_field_gain.h5").stat().st_size > 0
    assert (out / "beads_background.h5").stat().st_size > 0
    for name in ("flat_field.tif", "beads.h5", "zsweep.tif", "beads_truth.csv"):
        assert (out / name).stat().st_size > 0
    # Results are written atomically: no temporary files are left behind.
    assert not [p.name for p in out.iterdir() if "tmp" in p.name]
    truth = json.loads((out / "flat_field_truth.json").read_text())
    assert truth["e_per_adu"] == ff["e_per_adu_truth"]
    # find -> Z-LUT -> track on the bead sample, compared with the truth (#17 item 6)
    bt = summary["beads_tracking"]
    assert bt["find"]["matched"] == bt["find"]["n_true"] == 5 and bt["find"]["false"] == 0
    assert bt["find"]["stuck_flagged"] == bt["find"]["stuck_truth"] == [0]
    assert bt["track"]["drift_corrected"]
    # the LUT's held-out self-check: ~0.7 nm; the whole +-4.5 um sweep unambiguous
    assert bt["zlut"]["rms_nm"] < 5.0 and bt["zlut"]["unambiguous_range_nm"] == [-4500.0, 4500.0]
    # bright simulated beads over 300 frames: measured 0.003 px and 1.1 nm RMS at worst
    assert bt["track"]["n_beads"] == 5 and bt["track"]["n_frames"] == 300
    assert bt["track"]["xy_rms_px_max"] < 0.02 and bt["track"]["z_rms_nm_max"] < 5.0
    assert sorted(p["truth_bead"] for p in bt["track"]["per_bead"]) == [0, 1, 2, 3, 4]
    for name in ("beads_found.csv", "zlut.h5", "beads_tracked.csv", "beads_forces.csv"):
        assert (out / name).stat().st_size > 0
    # Forces: the 4 tethered beads' stiffness against the simulated motion (OU, sd 30 nm,
    # 5 frames). 300 frames are 60 correlation times: a PSD fit scatters by ~15 %
    # (measured 0.72-1.10 of the truth); the stuck bead is left out (reference column).
    fc = summary["beads_forces"]
    assert fc["n_beads"] == 4
    assert all(0.5 < r < 1.6 for r in fc["kappa_ratio"]), fc
    assert sum(fc["truth_in_ci"]) >= 2


def test_info_lists_stacks(tmp_path, capsys):
    path = tmp_path / "movie.tif"
    tifffile.imwrite(path, np.zeros((7, 12, 13), np.uint16))
    assert cli.main(["info", str(path)]) == 0
    assert "(7, 12, 13)" in capsys.readouterr().out


def test_info_on_a_broken_file_reports_and_fails(tmp_path, capsys):
    path = tmp_path / "broken.tif"
    path.write_bytes(b"II*\x00" + b"\x00" * 64)
    assert cli.main(["info", str(path)]) == 2
    assert "broken.tif" in capsys.readouterr().err


def test_gain_command(tmp_path, capsys):
    from camtrack.simulate import camera_stack

    stack, truth = camera_stack(60, (96, 96), camera={"e_per_adu": 0.5}, rng=2)
    path = tmp_path / "flat.tif"
    tifffile.imwrite(path, stack)
    out = tmp_path / "gain.json"
    assert cli.main(["gain", str(path), "--offset-adu", "100", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "e-/ADU" in printed and "ADU/e-" in printed
    res = json.loads(out.read_text())
    # 60 frames of 96 x 96: standard error ~2%; allow 4 of them.
    assert (
        abs(res["e_per_adu"] / truth.e_per_adu - 1)
        < 4 * res["e_per_adu_stderr"] / res["e_per_adu"]
    )
    assert res["offset_adu"] == 100.0
    # Refuses to overwrite without --overwrite; the input is never touched.
    before = path.read_bytes()
    assert cli.main(["gain", str(path), "-o", str(out)]) == 2
    assert "exists" in capsys.readouterr().err
    assert path.read_bytes() == before


def test_gain_command_bad_data(tmp_path, capsys):
    path = tmp_path / "short.tif"
    tifffile.imwrite(path, np.full((5, 16, 16), 100, np.uint16))
    assert cli.main(["gain", str(path)]) == 2
    assert "20 frames" in capsys.readouterr().err


def test_track_command_against_truth(tmp_path, capsys):
    import csv

    from camtrack import simulate, tracking

    stack, truth = simulate.bead_field(6, (160, 160), n_beads=2, rng=5)
    stack = np.asarray(stack)
    path = tmp_path / "beads.tif"
    tifffile.imwrite(path, stack)
    sweep, st = simulate.zsweep(np.arange(-4500.0, 4501.0, 100.0), roi_size=64, frames_per_plane=2, rng=6)  # fmt: skip
    lut_path = tracking.build_zlut(sweep, st.z_nm).save(tmp_path / "lut.h5")
    beads = tmp_path / "beads.csv"
    beads.write_text(
        "x,y\n"
        + "".join(f"{x + 0.7},{y - 0.6}\n" for x, y in zip(truth.x[0], truth.y[0], strict=True))
    )
    out = tmp_path / "track.csv"
    before = path.read_bytes()

    argv = ["track", str(path), "--lut", str(lut_path), "--beads", str(beads), "-o", str(out)]
    assert cli.main(argv) == 0

    assert "wrote" in capsys.readouterr().out
    with open(out) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6 * 2
    for r in rows:
        f, b = int(r["frame"]), int(r["bead"])
        # Bright simulated beads: x, y well under 0.05 px and z within a few nm of the
        # truth (the engine tests pin the finer figures); 15 nm leaves room for a
        # neighbour's rings and the 2-frame LUT planes.
        assert abs(float(r["x"]) - truth.x[f, b]) < 0.05
        assert abs(float(r["y"]) - truth.y[f, b]) < 0.05
        assert abs(float(r["z"]) - truth.z_nm[f, b]) < 15.0
    assert path.read_bytes() == before  # the input is never touched
    # Refuses to overwrite without --overwrite, and never writes over an input.
    assert cli.main(argv) == 2
    assert "exists" in capsys.readouterr().err
    assert cli.main([*argv[:-1], str(beads), "--overwrite"]) == 2
    assert beads.read_text().startswith("x,y\n")


def test_track_command_bad_beads_csv(tmp_path, capsys):
    path = tmp_path / "s.tif"
    tifffile.imwrite(path, np.zeros((6, 80, 80), np.uint16), photometric="minisblack")
    beads = tmp_path / "b.csv"
    beads.write_text("col,row\n1,2\n")
    argv = ["track", str(path), "--beads", str(beads), "-o", str(tmp_path / "o.csv")]
    assert cli.main(argv) == 2
    assert "columns x and y" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


# -- #14 item 10: one naming scheme for TIFF series/channels and HDF5 datasets ----------


def _two_channel_flat(tmp_path):
    """An ImageJ hyperstack (T, C, Y, X): channel 1 holds a flat field, channel 0 darkness."""
    from camtrack.simulate import camera_stack

    flat, truth = camera_stack(60, (96, 96), camera={"e_per_adu": 0.5}, rng=2)
    dark = np.full_like(flat, 100)
    path = tmp_path / "flat.tif"
    tifffile.imwrite(path, np.stack([dark, flat], axis=1), imagej=True,
                     metadata={"axes": "TCYX"})  # fmt: skip
    return path, truth


def test_info_lists_keys_that_dataset_accepts(tmp_path, capsys):
    path, _ = _two_channel_flat(tmp_path)
    assert cli.main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "--dataset ch0" in out and "--dataset ch1" in out and "(60, 96, 96)" in out


def test_gain_picks_a_tiff_channel_by_key_or_name(tmp_path, capsys):
    path, _ = _two_channel_flat(tmp_path)
    # Without --dataset: the message lists the keys and names the option.
    assert cli.main(["gain", str(path), "--offset-adu", "100"]) == 2
    err = capsys.readouterr().err
    assert "--dataset" in err and "'ch1'" in err and "holds 2 stacks" in err
    for choice in ("flat [ch1]", "ch1", "[ch1]"):
        assert cli.main(["gain", str(path), "--dataset", choice, "--offset-adu", "100"]) == 0
        out = capsys.readouterr().out
        assert "e-/ADU" in out
    assert cli.main(["gain", str(path), "--dataset", "ch5", "--offset-adu", "100"]) == 2
    assert "--dataset 'ch5' matches no stack" in capsys.readouterr().err


def test_dataset_advice_for_2d_and_4d_hdf5(tmp_path, capsys):
    import h5py

    flat = tmp_path / "image.h5"
    with h5py.File(flat, "w") as f:
        f["frame"] = np.zeros((32, 32), np.uint16)
    assert cli.main(["gain", str(flat)]) == 2
    err = capsys.readouterr().err
    assert "one 2-D image" in err and "name one with --dataset" not in err

    from camtrack.simulate import camera_stack

    four = tmp_path / "four.h5"
    flat, _ = camera_stack(30, (32, 32), camera={"e_per_adu": 0.5}, rng=3)
    with h5py.File(four, "w") as f:
        f["data"] = np.stack([np.full_like(flat, 100), flat])
    assert cli.main(["gain", str(four), "--offset-adu", "100"]) == 2
    err = capsys.readouterr().err
    assert "--dataset '/data[0]'" in err and "[1]" in err
    assert cli.main(["info", str(four)]) == 0
    assert "/data[0]" in capsys.readouterr().out
    assert cli.main(["gain", str(four), "--dataset", "/data[1]", "--offset-adu", "100"]) == 0


def test_info_offers_all_pages_of_a_short_ome_tiff(tmp_path, capsys):
    frames = np.zeros((40, 12, 14), np.uint16)
    path = tmp_path / "run.ome.tif"
    tifffile.imwrite(path, frames, ome=True, metadata={"axes": "TYX"})
    path.write_bytes(path.read_bytes().replace(b'SizeT="40"', b'SizeT="30"'))
    assert cli.main(["info", str(path)]) == 0
    captured = capsys.readouterr()
    assert "(30, 12, 14)" in captured.out and "--dataset pages" in captured.out
    assert "(40, 12, 14)" in captured.out and "40 pages" in captured.err


def _flat_tiff(tmp_path):
    from camtrack.simulate import camera_stack

    stack, _ = camera_stack(30, (48, 48), rng=3)
    path = tmp_path / "flat.tif"
    tifffile.imwrite(path, stack)
    return path


def _no_compute(monkeypatch, module, name):
    calls = []
    monkeypatch.setattr(module, name, lambda *a, **k: calls.append(1) or 1 / 0)
    return calls


def test_gain_refuses_outputs_before_computing_and_says_overwrite(tmp_path, monkeypatch, capsys):
    import camtrack.gain

    path = _flat_tiff(tmp_path)
    (tmp_path / "out.json").write_text("{}")
    calls = _no_compute(monkeypatch, camtrack.gain, "estimate_gain")
    assert cli.main(["gain", str(path), "-o", str(tmp_path / "out.json")]) == 2
    err = capsys.readouterr().err
    assert "out.json' already exists; add --overwrite to replace it" in err
    assert "overwrite=True" not in err
    assert calls == []  # refused before the computation
    assert not (tmp_path / "out.h5").exists()  # and nothing of the pair written
    (tmp_path / "out.json").unlink()
    (tmp_path / "out.h5").write_bytes(b"old maps")  # either file of the pair refuses
    assert cli.main(["gain", str(path), "-o", str(tmp_path / "out.json")]) == 2
    assert "out.h5' already exists; add --overwrite" in capsys.readouterr().err
    assert calls == [] and not (tmp_path / "out.json").exists()


def test_gain_refuses_a_folder_as_output(tmp_path, monkeypatch, capsys):
    import camtrack.gain

    path = _flat_tiff(tmp_path)
    folder = tmp_path / "results"
    folder.mkdir()
    calls = _no_compute(monkeypatch, camtrack.gain, "estimate_gain")
    assert cli.main(["gain", str(path), "-o", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "results' is a folder; give a file name inside it" in err
    assert "results/gain.json" in err.replace("\\\\", "/")
    assert calls == [] and not (tmp_path / "results.json").exists()


def test_gain_overwrite_replaces_the_pair_together(tmp_path, capsys):
    from camtrack.gain import GainResult

    path = _flat_tiff(tmp_path)
    out = tmp_path / "gain.json"
    assert cli.main(["gain", str(path), "--offset-adu", "100", "-o", str(out)]) == 0
    assert GainResult.load(out)["offset_adu"] == 100.0
    argv = ["gain", str(path), "--offset-adu", "90", "-o", str(out), "--overwrite"]
    assert cli.main(argv) == 0
    loaded = GainResult.load(out)  # checks the maps file belongs to the JSON
    assert loaded["offset_adu"] == 90.0 and "mean_adu" in loaded["maps"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flat.tif", "gain.h5", "gain.json"]


def test_track_refuses_outputs_before_tracking(tmp_path, monkeypatch, capsys):
    from camtrack import tracking

    path = tmp_path / "s.tif"
    tifffile.imwrite(path, np.zeros((6, 80, 80), np.uint16), photometric="minisblack")
    beads = tmp_path / "b.csv"
    beads.write_text("x,y\n40,40\n")
    calls = _no_compute(monkeypatch, tracking, "track_beads")
    out = tmp_path / "t.csv"
    out.write_text("old")
    argv = ["track", str(path), "--beads", str(beads), "-o", str(out)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "t.csv' already exists; add --overwrite to replace it" in err
    assert cli.main([*argv[:-1], str(tmp_path)]) == 2
    assert "is a folder; give a file name inside it" in capsys.readouterr().err
    assert cli.main([*argv[:-1], str(tmp_path / "t.txt")]) == 2
    assert "must end in .csv, .h5 or .hdf5" in capsys.readouterr().err
    assert calls == [] and out.read_text() == "old"
