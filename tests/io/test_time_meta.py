"""Frame rate and exposure read from TIFF (OME, ImageJ) and HDF5 metadata (#16 item 1)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from camtrack import io

FRAMES = np.zeros((5, 16, 16), np.uint16)  # 3 or 4 frames would pass for RGB(A)


def test_ome_time_increment_and_exposure_with_units(tmp_path):
    path = tmp_path / "a.ome.tif"
    meta = {"axes": "TYX", "TimeIncrement": 10, "TimeIncrementUnit": "ms",
            "Plane": {"ExposureTime": [2500] * 5, "ExposureTimeUnit": ["µs"] * 5}}  # fmt: skip
    tifffile.imwrite(path, FRAMES, metadata=meta)
    [(_, info)] = io.open_tiff(path)
    assert info.fs_hz == pytest.approx(100.0)
    assert info.exposure_s == pytest.approx(0.0025)
    layer_meta = info.to_layer_kwargs()["metadata"]
    assert layer_meta["fs_hz"] == pytest.approx(100.0)
    assert layer_meta["exposure_s"] == pytest.approx(0.0025)


def test_ome_default_unit_is_seconds(tmp_path):
    path = tmp_path / "s.ome.tif"
    tifffile.imwrite(path, FRAMES, metadata={"axes": "TYX", "TimeIncrement": 0.04,
                                              "Plane": {"ExposureTime": [0.01] * 5}})  # fmt: skip
    [(_, info)] = io.open_tiff(path)
    assert info.fs_hz == pytest.approx(25.0)
    assert info.exposure_s == pytest.approx(0.01)


def test_imagej_finterval(tmp_path):
    path = tmp_path / "ij.tif"
    tifffile.imwrite(path, FRAMES, imagej=True, metadata={"axes": "TYX", "finterval": 0.02})
    [(_, info)] = io.open_tiff(path)
    assert info.fs_hz == pytest.approx(50.0)
    assert info.exposure_s is None


def test_imagej_finterval_in_ms(tmp_path):
    path = tmp_path / "ij_ms.tif"
    tifffile.imwrite(path, FRAMES, imagej=True,
                     metadata={"axes": "TYX", "finterval": 5.0, "tunit": "ms"})  # fmt: skip
    [(_, info)] = io.open_tiff(path)
    assert info.fs_hz == pytest.approx(200.0)


def test_plain_tiff_has_no_timing(tmp_path):
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, FRAMES)
    [(_, info)] = io.open_tiff(path)
    assert info.fs_hz is None and info.exposure_s is None
    assert info.to_layer_kwargs()["metadata"]["fs_hz"] is None


def test_hdf5_attributes_on_dataset_and_parent(tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "rec.h5"
    with h5py.File(path, "w") as f:
        a = f.create_dataset("a", data=FRAMES)
        a.attrs["fs_hz"] = 400.0
        a.attrs["exposure_s"] = 0.001
        g = f.create_group("run")
        g.attrs["frame_rate"] = 60.0
        g.attrs["exposure_ms"] = 5.0
        g.create_dataset("b", data=FRAMES)
        f.create_dataset("c", data=FRAMES)
    infos = {info.dataset: info for _, info in io.read_layers(path)}
    assert (infos["/a"].fs_hz, infos["/a"].exposure_s) == pytest.approx((400.0, 0.001))
    assert (infos["/run/b"].fs_hz, infos["/run/b"].exposure_s) == pytest.approx((60.0, 0.005))
    assert infos["/c"].fs_hz is None and infos["/c"].exposure_s is None


def test_inconsistent_or_bad_metadata_is_dropped_not_raised(tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as f:
        d = f.create_dataset("d", data=FRAMES)
        d.attrs["fs_hz"] = 100.0
        d.attrs["exposure_s"] = 0.05  # longer than the 10 ms frame: not believed
        e = f.create_dataset("e", data=FRAMES)
        e.attrs["fs_hz"] = "fast"
        e.attrs["exposure_s"] = -1.0
    infos = {info.dataset: info for _, info in io.read_layers(path)}
    assert infos["/d"].fs_hz == pytest.approx(100.0) and infos["/d"].exposure_s is None
    assert infos["/e"].fs_hz is None and infos["/e"].exposure_s is None
