"""The Bead tracking widget with a camera: a saved calibration or the Gain widget's result."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")

from camtrack.napari._widgets import GainWidget, TrackingWidget
from camtrack.simulate import gaussian_beam_rois, scmos_maps

FRAME, ROI, N = 128, 64, 12


@pytest.fixture
def widget(make_napari_viewer):
    viewer = make_napari_viewer()
    maps = scmos_maps((FRAME, FRAME), rng=0)
    rng = np.random.default_rng(1)
    x, y = 59.5 + rng.uniform(-0.4, 0.4, N), 63.5 + rng.uniform(-0.4, 0.4, N)
    stack, _ = gaussian_beam_rois(x, y, 800.0, roi_size=FRAME, maps=maps, rng=2)
    viewer.add_image(stack, name="recording")
    w = TrackingWidget(viewer)
    viewer.window.add_dock_widget(w, name="Bead tracking")
    w.image.value = viewer.layers["recording"]
    w.roi_size.value = ROI
    viewer.add_points([[y[0], x[0]]], name="beads")
    w.first_frame.value, w.last_frame.value = 0, N - 1
    return w, viewer, maps


def _track(w, qtbot):
    w.result = None
    w.track_button.native.click()
    qtbot.waitUntil(lambda: w.result is not None, timeout=60000)
    qtbot.waitUntil(lambda: w.track_button.enabled, timeout=10000)
    return w.result


def test_camera_file_and_error_columns(widget, qtbot, tmp_path):
    w, viewer, maps = widget
    assert w.camera_file.native.isHidden()  # only shown for "file"
    plain = _track(w, qtbot)
    path = maps.to_calibration().save(tmp_path / "pixels.h5")
    w.camera.value = "file"
    assert not w.camera_file.native.isHidden()
    w.camera_file.value = path
    with_maps = _track(w, qtbot)
    assert with_maps.x_err is not None and np.all(np.isfinite(with_maps.x_err))
    # Same frames, the maps' correction moves the centres (fixed-pattern noise removed).
    assert not np.allclose(plain.x, with_maps.x)
    feats = viewer.layers["tracked"].features
    assert {"x_err", "y_err", "z_err"} <= set(feats)
    out = w.export(tmp_path / "t.csv")
    assert "x_err" in out.read_text().splitlines()[0]
    # The preview uses the same camera (maps cut at the ROI).
    viewer.dims.set_current_step(0, 0)
    w.preview.value = True
    res = w.preview_frame()
    np.testing.assert_allclose(res.x_err[0], with_maps.x_err[0], rtol=1e-5)


def test_camera_from_the_gain_widget(widget, qtbot):
    from camtrack.gain import estimate_gain
    from camtrack.simulate import camera_stack, dark_stack

    w, viewer, _ = widget
    w.camera.value = "Camera gain widget"
    with pytest.raises(ValueError, match="no Camera gain widget holds a result"):
        w.camera_model()
    gain = GainWidget(viewer)
    viewer.window.add_dock_widget(gain, name="Camera gain")
    light, _ = camera_stack(30, (FRAME, FRAME), rng=3)
    dark, _ = dark_stack(30, (FRAME, FRAME), rng=4)
    gain.result = estimate_gain(light, dark=dark)
    cam = w.camera_model()
    assert cam.e_per_adu == pytest.approx(gain.result.e_per_adu)
    res = _track(w, qtbot)
    assert np.all(np.isfinite(res.x_err))


def test_per_pixel_maps_from_the_gain_widget(widget, qtbot, tmp_path):
    """Maps made or loaded in the Camera gain widget's Per-pixel section reach the
    tracker: the same result as giving the true maps as a file."""
    from camtrack.gain import PixelCalibration

    w, viewer, maps = widget
    g = np.broadcast_to(maps.e_per_adu, (FRAME, FRAME)).astype(float)
    rn = np.broadcast_to(maps.read_noise_e, (FRAME, FRAME)).astype(float)
    cal = PixelCalibration(
        offset_map_adu=np.broadcast_to(maps.offset_adu, (FRAME, FRAME)).astype(float),
        dark_var_map_adu2=(rn / g) ** 2 + 1.0 / 12.0, adu_per_e_map=1.0 / g,
        e_per_adu_map=g, read_noise_map_e=rn, n_levels=4,
    )  # fmt: skip
    path = cal.save(tmp_path / "maps.h5")
    w.camera.value, w.camera_file.value = "file", str(path)
    from_file = _track(w, qtbot)
    gain = GainWidget(viewer)
    viewer.window.add_dock_widget(gain, name="Camera gain")
    gain.pixels.load_maps(path)
    w.camera.value = "Camera gain widget"
    cam = w.camera_model()
    assert cam.has_maps and cam.shape == (FRAME, FRAME)
    from_gain = _track(w, qtbot)
    np.testing.assert_allclose(from_gain.x, from_file.x, rtol=0, atol=1e-9)
    np.testing.assert_allclose(from_gain.x_err, from_file.x_err, rtol=1e-9)
