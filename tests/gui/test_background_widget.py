"""The Background widget on the sample flat field: preview, apply, errors."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import scipy.ndimage as ndi

pytest.importorskip("napari")

from camtrack.napari._widgets import BackgroundWidget


@pytest.fixture
def widget_and_viewer(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-camtrack", "flat_field")
    widget = BackgroundWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Background")
    return widget, viewer


def test_preview_spatial_mean_matches_reference(widget_and_viewer, qtbot):
    widget, viewer = widget_and_viewer
    layer = viewer.layers["flat field (known gain)"]
    widget.image.value = layer
    viewer.dims.set_current_step(0, 5)
    widget.radius.value = 4.0  # triggers a preview (in a worker: the GUI never waits)
    qtbot.waitUntil(
        lambda: widget._preview_worker is None and widget._preview_frame == 5, timeout=20000
    )
    bg_layer = viewer.layers["preview background: flat field (known gain)"]
    frame = np.asarray(layer.data[5], dtype=np.float32)
    # Independent reference: scipy's Gaussian with sigma = radius / 2.
    expected = ndi.gaussian_filter(frame, 2.0, truncate=4.0, mode="reflect")
    np.testing.assert_allclose(bg_layer.data, expected, rtol=1e-4, atol=1e-2)
    resid = viewer.layers["preview residual: flat field (known gain)"].data
    np.testing.assert_allclose(resid, frame - expected, atol=1e-2)


def test_apply_temporal_median_recovers_noiseless_background(widget_and_viewer, qtbot):
    widget, viewer = widget_and_viewer
    layer = viewer.layers["flat field (known gain)"]
    widget.image.value = layer
    widget.method.value = "temporal median"
    assert not widget.radius.visible  # fields follow the method
    with qtbot.waitSignal(widget.apply_button.native.clicked, timeout=1000):
        widget.apply_button.native.click()
    qtbot.waitUntil(lambda: "flat field (known gain) background" in viewer.layers, timeout=60000)
    result = viewer.layers["flat field (known gain) background"].data
    truth = layer.metadata["truth"]
    # Noise-free truth: mean ADU of a pixel = signal/g + offset; the temporal median
    # of 200 Poisson frames lies within a few standard errors of it (+-0.5 for rounding).
    cam = layer.metadata["truth"]
    assert result.shape == layer.data.shape[1:]
    sub = viewer.layers["flat field (known gain) - background"].data
    assert isinstance(sub, da.Array) and np.issubdtype(sub.dtype, np.floating)
    residual_mean = float(np.asarray(sub[:20]).mean())
    assert abs(residual_mean) < 2.0, residual_mean
    assert cam["e_per_adu"] == truth["e_per_adu"]
    # Re-running updates the layers in place rather than adding copies.
    n_layers = len(viewer.layers)
    widget.apply_button.native.click()
    qtbot.waitUntil(lambda: widget.apply_button.enabled, timeout=60000)
    assert len(viewer.layers) == n_layers


def test_engine_errors_become_notifications(widget_and_viewer, qtbot):
    from napari.utils.notifications import notification_manager

    widget, viewer = widget_and_viewer
    widget.image.value = viewer.layers["flat field (known gain)"]
    widget.method.value = "rolling median"
    widget.preview.value = False
    widget.window.value = 401  # more frames than the stack has (200)
    n_before = len(notification_manager.records)
    widget.apply_button.native.click()
    qtbot.waitUntil(lambda: widget.apply_button.enabled, timeout=60000)
    messages = [str(n.message) for n in notification_manager.records[n_before:]]
    assert any("window" in m for m in messages), messages
    assert "error" in widget.status.value


def test_sparse_median_apply_plots_known_flicker(make_napari_viewer, qtbot):
    """A per-frame illumination flicker is recovered as the plotted offset."""
    rng = np.random.default_rng(5)
    flicker = 20.0 * np.sin(np.arange(60) / 4.0)  # ADU, known truth
    base = rng.normal(500.0, 5.0, size=(1, 64, 64))
    stack = (base + flicker[:, None, None] + rng.normal(0, 3.0, (60, 64, 64))).astype(np.float32)
    viewer = make_napari_viewer()
    viewer.add_image(stack, name="flicker")
    widget = BackgroundWidget(viewer)
    widget.image.value = viewer.layers["flicker"]
    widget.method.value = "sparse median"
    widget.preview.value = False
    widget.window.value = 60
    widget.apply_button.native.click()
    qtbot.waitUntil(lambda: widget.offset_plot is not None, timeout=60000)
    frames, offsets = widget.offset_plot.line_data()
    assert frames.size == 60
    # The offset is relative to the one median image, whose level is the per-pixel
    # temporal median of flicker + noise: equal to the flicker up to one constant.
    # Each offset is a median over ~3500 band pixels of ~4 ADU noise (frame noise plus
    # the median image's own): ~0.09 ADU rms, so 0.45 is 5 sigma.
    np.testing.assert_allclose(offsets - offsets.mean(), flicker - flicker.mean(), atol=0.45)
    assert "flicker sparse background images" in viewer.layers
