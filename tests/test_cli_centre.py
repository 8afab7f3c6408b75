"""`camtrack zlut --centre/--profile` and `camtrack track --centre` (#17 leftovers):
choices from the tracking registries, the LUT records them, tracking uses the LUT's
and refuses another, against the simulator's truth."""

from __future__ import annotations

import argparse
import csv

import numpy as np
import pytest
import tifffile

from camtrack import cli, simulate, tracking
from camtrack.tracking._registry import CENTRES, PROFILES

PLANES = np.arange(-4500.0, 4501.0, 100.0)  # the field's beads reach 3.5 um


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A 48 px z-sweep (2 frames per plane) with its z CSV, and a 6-frame field of 3 beads."""
    folder = tmp_path_factory.mktemp("centre")
    sweep, st = simulate.zsweep(PLANES, roi_size=48, frames_per_plane=2, rng=6)
    tifffile.imwrite(folder / "sweep.tif", np.asarray(sweep))
    (folder / "z.csv").write_text("z_nm\n" + "".join(f"{z}\n" for z in st.z_nm))
    field, truth = simulate.bead_field(6, (160, 192), n_beads=3, rng=5)
    tifffile.imwrite(folder / "beads.tif", np.asarray(field))
    return folder, truth


def _subparser(command: str) -> argparse.ArgumentParser:
    parser = cli._build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return subs.choices[command]


def _action(command: str, dest: str) -> argparse.Action:
    return next(a for a in _subparser(command)._actions if a.dest == dest)


def test_centre_and_profile_options_are_the_registry():
    for command, default in (("track", None), ("zlut", "symmetry")):
        action = _action(command, "centre")
        assert action.option_strings == ["--centre"]
        assert list(action.choices) == list(CENTRES.cli()) and action.default == default
        for name, method in CENTRES.cli().items():
            assert f"{name}: {method.summary}" in action.help
    action = _action("zlut", "profile")
    assert list(action.choices) == list(PROFILES.cli()) == ["radial", "fft"]
    assert action.default == "radial"
    with pytest.raises(SystemExit):  # not a registered centre: argparse refuses it
        cli._build_parser().parse_args(["track", "s.tif", "--centre", "cog", "-o", "o.csv"])


def test_zlut_and_track_with_a_classic_centre_against_truth(files, tmp_path, capsys):
    folder, truth = files
    lut_path, out = tmp_path / "lut.h5", tmp_path / "tracks.csv"
    argv = ["zlut", str(folder / "sweep.tif"), "--z-csv", str(folder / "z.csv"),
            "--centre", "qi", "-o", str(lut_path)]  # fmt: skip
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "centre qi" in printed and "self-check: RMS" in printed
    lut = tracking.load_zlut(lut_path)
    assert (lut.centre, lut.profile) == ("qi", "radial")
    # No --centre: the LUT's.
    argv = ["track", str(folder / "beads.tif"), "--lut", str(lut_path), "--roi-size", "48",
            "-o", str(out)]  # fmt: skip
    assert cli.main(argv) == 0
    capsys.readouterr()
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 18
    # Beads found in frame 0 by the command (no reference beads: no drift correction):
    # QI on bright beads within 0.05 px and z within 15 nm of the truth (as the symmetry
    # centre's CLI test allows).
    x = np.array([float(r["x"]) for r in rows]).reshape(6, 3)
    z = np.array([float(r["z"]) for r in rows]).reshape(6, 3)
    ids = [int(np.argmin(np.abs(truth.x[0] - xb))) for xb in x[0]]
    for b, i in enumerate(ids):
        assert np.abs(x[:, b] - truth.x[:, i]).max() < 0.05
        assert np.abs(z[:, b] - truth.z_nm[:, i]).max() < 15.0
    assert all(r["x_err"] in ("", "nan", "NaN") for r in rows)


def test_track_refuses_a_centre_the_lut_was_not_built_with(files, tmp_path, capsys):
    folder, _ = files
    lut_path = tmp_path / "lut.npz"
    argv = ["zlut", str(folder / "sweep.tif"), "--z-csv", str(folder / "z.csv"),
            "--centre", "auto-conv-multiline", "--profile", "fft", "-o", str(lut_path)]  # fmt: skip
    assert cli.main(argv) == 0
    capsys.readouterr()
    assert tracking.load_zlut(lut_path).profile == "fft"
    argv = ["track", str(folder / "beads.tif"), "--lut", str(lut_path), "--centre",
            "symmetry", "-o", str(tmp_path / "t.csv")]  # fmt: skip
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    # The engine's message, with the command's flag for the keyword.
    assert "--centre='symmetry' differs from the ZLut's 'auto-conv-multiline'" in err
