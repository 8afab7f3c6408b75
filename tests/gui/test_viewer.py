"""The plugin inside a real napari viewer (under Xvfb via pytest-xvfb)."""

from __future__ import annotations

import dask.array as da
import h5py
import numpy as np
import pytest
import tifffile

napari = pytest.importorskip("napari")

PLUGIN = "napari-camtrack"


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer()


def test_open_tiff_lazily_with_plugin(viewer, tmp_path):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 4000, size=(12, 40, 50), dtype=np.uint16)
    path = tmp_path / "movie.tif"
    tifffile.imwrite(path, data)

    layers = viewer.open(path, plugin=PLUGIN)

    assert len(layers) == 1
    layer = layers[0]
    assert isinstance(layer.data, da.Array)
    assert layer.data.shape == data.shape
    np.testing.assert_array_equal(layer.data[5].compute(), data[5])
    assert layer.metadata["path"] == str(path)
    assert layer.source.reader_plugin == PLUGIN


def test_open_multichannel_tiff_gives_one_layer_per_channel(viewer, tmp_path):
    data = np.arange(6 * 2 * 16 * 20, dtype=np.uint16).reshape(6, 2, 16, 20)
    path = tmp_path / "two_channels.tif"
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "TCYX"})

    layers = viewer.open(path, plugin=PLUGIN)

    assert len(layers) == 2
    for c, layer in enumerate(layers):
        assert layer.data.shape == (6, 16, 20)
        np.testing.assert_array_equal(np.asarray(layer.data), data[:, c])
    assert layers[0].name != layers[1].name


def test_open_hdf5_with_several_stacks(viewer, tmp_path):
    path = tmp_path / "several.h5"
    a = np.ones((5, 8, 9), dtype=np.uint16)
    b = np.full((7, 10, 11), 3.5, dtype=np.float32)
    with h5py.File(path, "w") as h5:
        h5["cam/a"] = a
        h5["cam/b"] = b
        h5["meta/times"] = np.arange(5.0)

    layers = viewer.open(path, plugin=PLUGIN)

    shapes = sorted(layer.data.shape for layer in layers)
    assert shapes == [(5, 8, 9), (7, 10, 11)]
    names = " ".join(layer.name for layer in layers)
    assert "cam/a" in names and "cam/b" in names


def test_corrupt_file_notifies_and_adds_nothing(viewer, tmp_path):
    from napari.utils.notifications import notification_manager

    path = tmp_path / "broken.tif"
    path.write_bytes(b"II*\x00" + bytes(range(256)) * 8)  # TIFF magic, garbage after it
    n_before = len(notification_manager.records)

    layers = viewer.open(path, plugin=PLUGIN)

    assert layers == []
    assert len(viewer.layers) == 0
    new = [str(n.message) for n in notification_manager.records[n_before:]]
    assert any("broken.tif" in m for m in new), new


def test_ome_tiff_with_short_sizet_warns_and_offers_every_page(viewer, tmp_path):
    """An OME-TIFF whose SizeT (30) is below its page count (40): the series as the
    metadata say, every page as a second, hidden layer, and a notification naming both."""
    from napari.utils.notifications import notification_manager

    frames = np.random.default_rng(1).integers(0, 4000, (40, 12, 14), dtype=np.uint16)
    path = tmp_path / "run.ome.tif"
    tifffile.imwrite(path, frames, ome=True, metadata={"axes": "TYX"})
    path.write_bytes(path.read_bytes().replace(b'SizeT="40"', b'SizeT="30"'))
    n_before = len(notification_manager.records)

    layers = viewer.open(path, plugin=PLUGIN)

    assert [(lay.data.shape, lay.visible) for lay in layers] == [((30, 12, 14), True), ((40, 12, 14), False)]  # fmt: skip
    assert isinstance(layers[1].data, da.Array) and layers[1].name == "run [pages]"
    np.testing.assert_array_equal(layers[1].data[35].compute(), frames[35])
    new = [str(n.message) for n in notification_manager.records[n_before:]]
    assert any("40 pages" in m and "run [pages]" in m for m in new), new


def test_files_that_are_not_ours_are_refused(tmp_path):
    from camtrack.napari._reader import get_reader

    text = tmp_path / "notes.txt"
    text.write_text("hello")
    fake = tmp_path / "fake.tif"
    fake.write_text("this is not a TIFF")
    assert get_reader(str(text)) is None
    assert get_reader(str(fake)) is None


@pytest.mark.parametrize("key", ["flat_field", "beads", "scmos_calibration"])
def test_sample_data_is_lazy_with_truth(viewer, key):
    layers = viewer.open_sample(PLUGIN, key)
    assert layers
    for layer in layers:
        assert isinstance(layer.data, da.Array), layer.name
        assert "truth" in layer.metadata, layer.name
    frame = np.asarray(layers[0].data[0])
    assert frame.std() > 0


def test_screenshot_shows_data(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer(show=True)  # a hidden canvas renders black
    viewer.open_sample(PLUGIN, "flat_field")
    viewer.window._qt_window.resize(900, 700)
    qtbot.wait(300)
    shot = viewer.screenshot(canvas_only=True, flash=False)
    grey = shot[..., :3].astype(np.int32).sum(axis=-1)
    # A black or empty canvas has a handful of levels; a rendered noisy flat field
    # with an illumination gradient has hundreds.
    assert len(np.unique(grey)) > 100
    assert grey.std() > 10
