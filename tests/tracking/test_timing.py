"""Frame rate and exposure in track_beads / track_rois / TrackResult and its exports (#16 item 1)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from camtrack.simulate import bead_field, bead_rois
from camtrack.tracking import TrackResult, track_beads, track_rois


@pytest.fixture(scope="module")
def field():
    stack, truth = bead_field(6, shape=(128, 128), n_beads=2, rng=0)
    return np.asarray(stack), list(zip(truth.x[0], truth.y[0], strict=True))


def test_track_beads_time_column_is_frame_over_fs(field):
    stack, start = field
    res = track_beads(stack, start, roi_size=48, fs_hz=120.0, exposure_s=0.004)
    assert res.fs_hz == 120.0 and res.exposure_s == 0.004
    tab = res.to_table()
    np.testing.assert_array_equal(tab["t_s"], np.repeat(np.arange(6), 2) / 120.0)
    assert list(tab)[:3] == ["frame", "bead", "t_s"]


def test_without_fs_no_time_column(field):
    stack, start = field
    res = track_beads(stack[:2], start, roi_size=48)
    assert res.fs_hz is None and res.exposure_s is None
    assert "t_s" not in res.to_table()


def test_exposure_equal_to_the_frame_period_is_allowed(field):
    stack, start = field
    res = track_beads(stack[:2], start, roi_size=48, fs_hz=50.0, exposure_s=0.02)
    assert res.exposure_s == 0.02


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"fs_hz": 0.0}, "`fs_hz`"),
        ({"fs_hz": -10.0}, "`fs_hz`"),
        ({"fs_hz": float("nan")}, "`fs_hz`"),
        ({"exposure_s": 0.0}, "`exposure_s`"),
        ({"fs_hz": 100.0, "exposure_s": -0.001}, "`exposure_s`"),
        ({"fs_hz": 100.0, "exposure_s": 0.011}, "`exposure_s`"),
    ],
)
def test_bad_values_name_the_parameter(field, kwargs, name):
    stack, start = field
    with pytest.raises(ValueError, match=name):
        track_beads(stack[:2], start, roi_size=48, **kwargs)
    rois, _ = bead_rois([15.2], 15.5, 1000.0, roi_size=32, rng=0)
    with pytest.raises(ValueError, match=name):
        track_rois(rois, **kwargs)


def test_text_is_a_type_error():
    rois, _ = bead_rois([15.2], 15.5, 1000.0, roi_size=32, rng=0)
    with pytest.raises(TypeError, match="`fs_hz`"):
        track_rois(rois, fs_hz="100")


def test_exposure_above_the_frame_period_names_both():
    x = np.zeros(1)
    with pytest.raises(ValueError, match=r"`exposure_s`.*`fs_hz`"):
        TrackResult(x, x, x, None, x, x, fs_hz=100.0, exposure_s=0.02)


def test_track_rois_carries_timing_without_time_column():
    rois, _ = bead_rois([15.2, 16.0], 15.5, 1000.0, roi_size=32, rng=0)
    res = track_rois(rois, fs_hz=30.0)
    assert res.fs_hz == 30.0 and "t_s" not in res.to_table()


def test_save_csv_time_follows_first_frame(field, tmp_path):
    stack, start = field
    res = track_beads(stack[2:5], start, roi_size=48, fs_hz=40.0)
    out = res.save(tmp_path / "t.csv", first_frame=2)
    with open(out) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6
    for r in rows:
        assert int(r["frame"]) in (2, 3, 4)
        assert float(r["t_s"]) == pytest.approx(int(r["frame"]) / 40.0)


def test_save_hdf5_records_fs_and_exposure(field, tmp_path):
    h5py = pytest.importorskip("h5py")
    stack, start = field
    res = track_beads(stack[:3], start, roi_size=48, fs_hz=40.0, exposure_s=0.01)
    out = res.save(tmp_path / "t.h5", first_frame=1)
    with h5py.File(out, "r") as f:
        assert f.attrs["fs_hz"] == 40.0 and f.attrs["exposure_s"] == 0.01
        np.testing.assert_allclose(f["tracking/t_s"][()], f["tracking/frame"][()] / 40.0)
        assert f["tracking/frame"][0] == 1
    plain = track_beads(stack[:2], start, roi_size=48).save(tmp_path / "p.h5")
    with h5py.File(plain, "r") as f:
        assert "fs_hz" not in f.attrs and "t_s" not in f["tracking"]
