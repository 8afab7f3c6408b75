"""`camtrack track` takes --fs-hz / --exposure-s, defaulting to the file's metadata (#16 item 1)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import tifffile

from camtrack import cli


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    from camtrack import simulate

    stack, truth = simulate.bead_field(5, (128, 128), n_beads=2, rng=5)
    folder = tmp_path_factory.mktemp("rec")
    path = folder / "beads.ome.tif"
    meta = {"axes": "TYX", "TimeIncrement": 4.0, "TimeIncrementUnit": "ms",
            "Plane": {"ExposureTime": [1.0] * 5, "ExposureTimeUnit": ["ms"] * 5}}  # fmt: skip
    tifffile.imwrite(path, np.asarray(stack), metadata=meta)
    beads = folder / "beads.csv"
    beads.write_text("x,y\n" + "".join(f"{x},{y}\n" for x, y in zip(truth.x[0], truth.y[0], strict=True)))  # fmt: skip
    return path, beads


def _rows(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_track_takes_the_files_frame_rate(recording, tmp_path):
    path, beads = recording
    out = tmp_path / "t.csv"
    argv = ["track", str(path), "--beads", str(beads), "--roi-size", "48", "--first-frame", "1"]
    assert cli.main([*argv, "-o", str(out)]) == 0
    rows = _rows(out)
    assert len(rows) == 4 * 2
    for r in rows:  # 250 Hz from TimeIncrement = 4 ms; t follows the frame column
        assert float(r["t_s"]) == pytest.approx(int(r["frame"]) / 250.0)


def test_track_fs_hz_option_overrides_the_file(recording, tmp_path):
    h5py = pytest.importorskip("h5py")
    path, beads = recording
    out = tmp_path / "t.h5"
    argv = ["track", str(path), "--beads", str(beads), "--roi-size", "48", "--fs-hz", "100",
            "--exposure-s", "0.005", "-o", str(out)]  # fmt: skip
    assert cli.main(argv) == 0
    with h5py.File(out, "r") as f:
        assert f.attrs["fs_hz"] == 100.0 and f.attrs["exposure_s"] == 0.005
        np.testing.assert_allclose(f["tracking/t_s"][()], f["tracking/frame"][()] / 100.0)


def test_track_bad_fs_hz_is_a_clear_failure(recording, tmp_path, capsys):
    path, beads = recording
    out = tmp_path / "bad.csv"
    argv = ["track", str(path), "--beads", str(beads), "--roi-size", "48", "--fs-hz", "-5",
            "-o", str(out)]  # fmt: skip
    assert cli.main(argv) == 2
    assert "--fs-hz" in capsys.readouterr().err  # the option, not the engine keyword
    assert not out.exists()


def test_info_prints_the_files_timing(recording, capsys):
    path, _ = recording
    assert cli.main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    # TimeIncrement 4 ms -> 250 Hz; ExposureTime 1 ms: what `track` takes by default.
    assert "frame rate 250 Hz" in out and "exposure 0.001 s" in out
