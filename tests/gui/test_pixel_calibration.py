"""The Camera gain widget's Per-pixel calibration section on a simulated sCMOS camera
with known per-pixel offset, gain and read noise: the map layers, save and load, and
Convert to photoelectrons with the maps."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

pytest.importorskip("napari")

from camtrack.gain import PixelCalibration
from camtrack.napari._widgets import GainWidget
from camtrack.napari._widgets._pixelcal_section import MAP_LAYERS
from camtrack.simulate import Camera, camera_stack, dark_stack

LEVELS_E = (100, 400, 1000, 2000)
N_FRAMES = 400


@pytest.fixture(scope="module")
def camera_data():
    """A 48 x 48 sCMOS sensor (5 % gain spread, 3 ADU offset spread, lognormal read
    noise), a dark stack and four flat stacks, lazy with odd chunks (37 frames)."""
    cam = Camera(
        shape=(48, 48),
        e_per_adu=0.5,
        gain_spread=0.05,
        offset_std_adu=3.0,
        read_noise_e=1.5,
        read_noise_spread=0.3,
        rng=4,
    )
    dark, _ = dark_stack(N_FRAMES, camera=cam, chunks=37, rng=1)
    flats = [
        camera_stack(
            N_FRAMES, camera=cam, signal_e=float(s), illumination="flat", chunks=37, rng=10 + i
        )
        for i, s in enumerate(LEVELS_E)
    ]
    return cam, dark, flats


def _errors(monkeypatch):
    """Collect error notifications (napari's show_error) instead of showing them."""
    seen: list[str] = []
    import napari.utils.notifications as notes

    monkeypatch.setattr(notes, "show_error", lambda msg: seen.append(str(msg)))
    return seen


@pytest.fixture
def viewer_widget(make_napari_viewer, camera_data):
    _, dark, flats = camera_data
    viewer = make_napari_viewer()
    viewer.add_image(dark, name="dark")
    for s, (flat, _) in zip(LEVELS_E, flats, strict=True):
        viewer.add_image(flat, name=f"flat {s} e-")
    widget = GainWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Camera gain")
    section = widget.pixels
    section.expand.value = True
    section.stacks.value = [layer for layer in viewer.layers if layer.name.startswith("flat")]
    return viewer, widget, section


def _calibrate(section, qtbot):
    section.calibrate_button.native.click()
    qtbot.waitUntil(lambda: section.calibrate_button.enabled, timeout=120000)


def test_calibrate_recovers_the_maps_as_layers(viewer_widget, camera_data, qtbot):
    viewer, widget, section = viewer_widget
    cam = camera_data[0]
    assert section.dark.value is viewer.layers["dark"]  # a "dark" layer is the default
    _calibrate(section, qtbot)
    cal = section.calibration
    assert cal is not None and cal.n_levels == 4
    for field, name in MAP_LAYERS.items():
        np.testing.assert_allclose(viewer.layers[name].data, getattr(cal, field), rtol=1e-6)
    # Offset per pixel: mean of 400 dark frames, sd = read noise (ADU) / 20; 5 sd over
    # 2304 pixels, plus the ADC rounding.
    sd = np.sqrt((cam.read_noise_map_e / cam.e_per_adu_map) ** 2 + 1 / 12) / 20
    offset = viewer.layers["offset (ADU)"].data
    assert np.all(np.abs(offset - cam.offset_map_adu) < 5 * sd + 0.01)
    # Gain per pixel: 4 levels x 400 frames give ~4 % per pixel, so the 5 % spread of
    # the truth is resolved (correlation) and the median is within 1 %.
    gain = viewer.layers["gain (e-/ADU)"].data
    rel = gain / cam.e_per_adu_map - 1
    assert abs(np.median(rel)) < 0.01 and np.std(rel) < 0.06
    assert np.corrcoef(gain.ravel(), cam.e_per_adu_map.ravel())[0, 1] > 0.6
    # Read noise per pixel from 400 dark frames: +-7 % per pixel, median within 5 %.
    rn = viewer.layers["read noise (e-)"].data / cam.read_noise_map_e - 1
    assert abs(np.median(rn)) < 0.05
    # Dark variance: the read noise in ADU plus rounding, per pixel within ~7 %.
    var = viewer.layers["variance (ADU²)"].data
    truth_var = (cam.read_noise_map_e / cam.e_per_adu_map) ** 2 + 1 / 12
    assert abs(np.median(var / truth_var - 1)) < 0.05
    # The summary names the medians; the conversion in use becomes the maps.
    assert f"gain median {cal.e_per_adu:.4g} e-/ADU" in section.result_label.value
    assert "read noise median" in section.result_label.value
    assert widget.convert_with.value == "per-pixel maps" and widget.convert_button.enabled
    assert widget.camera() is cal
    # What the Bead tracking widget's camera takes: the maps, per pixel.
    from camtrack.tracking import as_camera_model

    model = as_camera_model(widget.camera())
    assert model.has_maps and model.shape == cal.shape
    # Re-running updates the same four layers.
    n = len(viewer.layers)
    _calibrate(section, qtbot)
    assert len(viewer.layers) == n and section.calibration is not cal


def test_one_stack_holding_a_series_of_levels(make_napari_viewer, camera_data, qtbot):
    _, dark, flats = camera_data
    viewer = make_napari_viewer()
    viewer.add_image(dark, name="dark")
    series = da.concatenate([flat[:100] for flat, _ in flats])  # 4 levels x 100 frames
    viewer.add_image(series, name="series")
    widget = GainWidget(viewer)
    section = widget.pixels
    section.stacks.value = [viewer.layers["series"]]
    section.frames_per_level.value = 100
    _calibrate(section, qtbot)
    assert section.calibration.n_levels == 4
    # 100 frames per level: ~8 % per pixel, the median within 2 %.
    assert section.calibration.e_per_adu == pytest.approx(0.5, rel=0.02)


def test_save_refuses_overwrite_and_load_round_trips(viewer_widget, qtbot, tmp_path, make_napari_viewer):  # fmt: skip
    _, _, section = viewer_widget
    _calibrate(section, qtbot)
    cal = section.calibration
    path = section.save_maps(tmp_path / "maps.h5")
    with pytest.raises(FileExistsError):
        section.save_maps(path)  # an existing file is replaced only when asked
    section.save_maps(path, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["maps.h5"]  # no temporary left
    # A fresh viewer loads the maps as the same layers.
    viewer2 = make_napari_viewer()
    widget2 = GainWidget(viewer2)
    widget2.pixels.load(path)
    back = widget2.pixels.calibration
    assert isinstance(back, PixelCalibration) and back.n_levels == cal.n_levels
    for field, name in MAP_LAYERS.items():
        np.testing.assert_array_equal(getattr(back, field), getattr(cal, field))
        np.testing.assert_allclose(viewer2.layers[name].data, getattr(cal, field), rtol=1e-6)
    assert widget2.convert_with.value == "per-pixel maps" and widget2.convert_button.enabled
    assert widget2.pixels.save_button.enabled
    # npz too
    npz = section.save_maps(tmp_path / "maps.npz")
    widget2.pixels.load(npz)
    np.testing.assert_array_equal(widget2.pixels.calibration.e_per_adu_map, cal.e_per_adu_map)


def test_convert_with_the_maps_gives_true_electrons(viewer_widget, camera_data, qtbot):
    viewer, widget, section = viewer_widget
    cam = camera_data[0]
    _calibrate(section, qtbot)
    cal = section.calibration
    name = "flat 400 e-"
    widget.image.value = viewer.layers[name]
    widget.convert_button.native.click()
    electrons = viewer.layers[f"{name} (e-)"].data
    assert isinstance(electrons, da.Array)  # lazy for dask input
    raw = np.asarray(viewer.layers[name].data, dtype=np.float64)
    e = np.asarray(electrons, dtype=np.float64)
    # Exactly the maps applied pixel by pixel ...
    np.testing.assert_allclose(
        e, (raw - cal.offset_map_adu) * cal.e_per_adu_map, rtol=1e-4, atol=1e-2
    )
    # ... which is the truth: the per-pixel time mean is 400 e- (shot noise of the mean
    # over 400 frames: 1 e-, 0.25 %) up to the ~4 % per-pixel error of the gain; the
    # fixed pattern of the sensor (5 % gain, 3 ADU offset spread) is gone.
    mean_e = e.mean(axis=0)
    assert abs(np.median(mean_e) / 400 - 1) < 0.01
    assert np.std(mean_e / 400) < 0.06
    raw_mean = raw.mean(axis=0)
    with_truth = (raw_mean - cam.offset_map_adu) * cam.e_per_adu_map
    # Per pixel, the estimated maps against the true maps: the gain error is ~4-5 % per
    # pixel with a heavier tail (the variance of a few levels), so 99 % within 15 %.
    assert np.mean(np.abs(mean_e / with_truth - 1) < 0.15) > 0.99


def test_errors_are_notifications(make_napari_viewer, camera_data, qtbot, tmp_path, monkeypatch):  # fmt: skip
    _, dark, flats = camera_data
    viewer = make_napari_viewer()
    errors = _errors(monkeypatch)
    widget = GainWidget(viewer)
    section = widget.pixels
    # An empty viewer: every button says what is missing, nothing raises.
    section.calibrate_button.native.click()
    assert errors and "dark stack" in errors[-1]
    widget.convert_with.value = "per-pixel maps"
    widget.convert()
    assert "No per-pixel maps" in errors[-1]
    with pytest.raises(ValueError, match="Nothing to save"):
        section.save_maps(tmp_path / "x.h5")
    # One light level: the engine's message, naming the widget's fields.
    viewer.add_image(dark, name="dark")
    viewer.add_image(flats[0][0], name="flat")
    widget.reset_choices()  # napari does it for a docked widget
    section.stacks.value = [viewer.layers["flat"]]
    n = len(errors)
    _calibrate(section, qtbot)
    qtbot.waitUntil(lambda: len(errors) > n, timeout=10000)
    assert "at least 2" in errors[-1] and "'flat stacks'" in errors[-1]
    assert section.status.value.startswith("error") and section.calibration is None
    # The dark stack picked as a flat too.
    section.stacks.value = [viewer.layers["flat"], viewer.layers["dark"]]
    section.calibrate_button.native.click()
    assert "both the dark stack and a flat stack" in errors[-1]
    # A series not divisible into levels.
    section.stacks.value = [viewer.layers["flat"]]
    section.frames_per_level.value = 150
    section.calibrate_button.native.click()
    assert "not a multiple" in errors[-1]
    # A file that is not a calibration, and a missing one.
    bad = tmp_path / "not_maps.npz"
    np.savez(bad, a=np.zeros(3))
    section.load(bad)
    assert "not_maps.npz" in errors[-1]
    section.load(tmp_path / "missing.h5")
    assert "missing.h5" in errors[-1]
    # Maps of another camera region: converting says so.
    cal = PixelCalibration(*(np.ones((8, 8)),) * 5, n_levels=2)
    section._show(cal, "test maps")
    widget.image.value = viewer.layers["flat"]
    widget.convert()
    assert "8 x 8 px" in errors[-1] and "48 x 48" in errors[-1]
    assert "flat (e-)" not in viewer.layers


def test_collapsed_by_default_and_within_the_panel(make_napari_viewer):
    from camtrack.napari._widgets._threaded import PANEL_MAX_WIDTH

    viewer = make_napari_viewer()
    widget = GainWidget(viewer)
    section = widget.pixels
    assert not section.expand.value and section.calibrate_button.native.isHidden()
    section.expand.value = True
    assert not section.calibrate_button.native.isHidden()
    assert not section.stacks.native.isHidden()
    assert widget.native.maximumWidth() <= PANEL_MAX_WIDTH
    assert section.native.maximumWidth() <= PANEL_MAX_WIDTH
    from camtrack.napari._widgets._tooltips import value_fields

    assert all(w.tooltip for w in value_fields(section).values())


def test_cancel_stops_the_run_and_changes_nothing(viewer_widget, qtbot, monkeypatch):
    import time

    from camtrack.napari._widgets import _pixelcal_section

    viewer, _, section = viewer_widget

    def slow(stacks, dark, *, excess_noise_factor, progress):
        # The engine's loop, slowed down: Cancel is honoured between its steps.
        for _ in progress(range(1000), total=1000):
            time.sleep(0.01)
        raise AssertionError("not cancelled")

    monkeypatch.setattr(_pixelcal_section, "calibrate_pixels", slow)
    n = len(viewer.layers)
    section.calibrate_button.native.click()
    qtbot.waitUntil(lambda: section.cancel_button.enabled, timeout=5000)
    t0 = time.perf_counter()
    section.cancel_button.native.click()
    qtbot.waitUntil(lambda: section.calibrate_button.enabled, timeout=10000)
    assert time.perf_counter() - t0 < 1.0
    assert "cancelled" in section.status.value
    assert section.calibration is None and len(viewer.layers) == n
    assert not section.progress_bar.visible


def test_gain_map_layer_renders(make_napari_viewer, camera_data):
    """The gain map really shows on the canvas (many grey levels), not a black frame."""
    from camtrack.napari._widgets._pixelcal_section import _calibrate as calibrate

    _, dark, flats = camera_data
    viewer = make_napari_viewer(show=True)
    widget = GainWidget(viewer)
    cal = calibrate([f for f, _ in flats], dark, ["a", "b", "c", "d"], 1.0, None)
    widget.pixels._show(cal, "test")
    for layer in viewer.layers:
        layer.visible = layer.name == "gain (e-/ADU)"
    viewer.reset_view()
    shot = viewer.screenshot(canvas_only=True, flash=False)
    assert len(np.unique(shot[..., :3].reshape(-1, 3), axis=0)) > 100
