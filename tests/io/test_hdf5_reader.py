"""HDF5 reading: the obvious image stack, several stacks, pixel size, dataset choice."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from camtrack import io


def _dc_file(path, rng):
    """A deformability-cytometry-like file: events/image among per-event scalars."""
    image = rng.integers(0, 255, (30, 20, 40), dtype=np.uint8)
    with h5py.File(path, "w") as f:
        f.attrs["imaging:pixel size"] = 0.34
        f.create_dataset("events/image", data=image, chunks=(4, 20, 40))
        f["events/image_bg"] = image // 2
        f["events/mask"] = image > 100  # bool: not offered
        f["events/area_um"] = rng.random(30)  # 1-D metadata: skipped
        f["events/contour_xy"] = rng.random((30, 3))  # table-like: skipped
    return image


def test_events_image_is_opened_directly(tmp_path, rng):
    path = tmp_path / "run.rtdc"
    image = _dc_file(path, rng)
    [(stack, info)] = io.read_layers(path)
    assert info.name == "run:/events/image" and info.dataset == "/events/image"
    assert info.format == "hdf5" and info.axes == "TYX" and info.path == str(path)
    assert info.pixel_size == (0.34, 0.34) and info.pixel_unit == "µm"
    assert info.nm_per_px == pytest.approx(340.0)
    assert stack.dtype == np.uint8 and stack.shape == image.shape
    np.testing.assert_array_equal(stack.compute(), image)
    meta = info.to_layer_kwargs()["metadata"]
    assert meta["dataset"] == "/events/image" and meta["path"] == str(path)


def test_hdf5_auto_chunks_align_to_hdf5_chunks(tmp_path):
    path = tmp_path / "chunked.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("image", shape=(100, 256, 256), dtype=np.uint16, chunks=(10, 256, 256))
    [(stack, _)] = io.open_hdf5(path)
    # 8 MiB / 128 KiB = 64 frames, rounded down to whole HDF5 chunks of 10
    assert stack.chunks[0] == (60, 40)


def test_several_stacks_become_several_items(tmp_path, rng):
    a = rng.random((6, 16, 16), dtype=np.float32)
    b = rng.integers(0, 4000, (5, 10, 12), dtype=np.uint16)
    dark = rng.random((10, 12))
    path = tmp_path / "multi.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("stacks/a", data=a, chunks=(2, 16, 16), compression="gzip")
        f["stacks/b"] = b
        f["stacks/b"].attrs["element_size_um"] = [1.0, 0.2, 0.1]
        f["dark"] = dark
    items = io.read_layers(path)
    assert [info.name for _, info in items] == [
        "multi:/dark",
        "multi:/stacks/a",
        "multi:/stacks/b",
    ]
    got = {info.dataset: (stack, info) for stack, info in items}
    for name, ref in {"/dark": dark, "/stacks/a": a, "/stacks/b": b}.items():
        stack, _ = got[name]
        assert stack.dtype == ref.dtype
        np.testing.assert_array_equal(stack.compute(), ref)
    assert got["/dark"][1].axes == "YX"
    assert got["/stacks/b"][1].pixel_size == (0.2, 0.1)
    assert got["/stacks/b"][1].scale == (1.0, 0.2, 0.1)
    np.testing.assert_array_equal(got["/stacks/a"][0][1:5:3, 3:9].compute(), a[1:5:3, 3:9])


def test_choose_dataset(tmp_path, rng):
    path = tmp_path / "run.h5"
    image = _dc_file(path, rng)
    [(bg, info)] = io.open_hdf5(path, dataset="events/image_bg")
    assert info.dataset == "/events/image_bg"
    np.testing.assert_array_equal(bg.compute(), image // 2)
    _, info = io.open_stack(path, item="/events/image_bg")  # not offered by default
    assert info.dataset == "/events/image_bg"
    with pytest.raises(ValueError, match=r"no such dataset\. Image datasets: /events/image, "):
        io.open_hdf5(path, dataset="/events/nope")
    with pytest.raises(ValueError, match="not an image dataset"):
        io.open_hdf5(path, dataset="/events/area_um")


def test_no_image_dataset(tmp_path):
    path = tmp_path / "table.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.arange(10.0)
    with pytest.raises(ValueError, match="has no image dataset"):
        io.read_layers(path)


def test_4d_dataset_axes(tmp_path, proxies):
    path = tmp_path / "four.h5"
    with h5py.File(path, "w") as f:
        f["vol"] = np.zeros((2, 3, 8, 8), np.float32)
    [(stack, info)] = io.read_layers(path)
    assert info.axes == "QTYX" and stack.chunks == ((2,), (3,), (8,), (8,))
    assert len(proxies(stack)) == 1
