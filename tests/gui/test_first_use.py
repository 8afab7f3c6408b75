"""The widgets as a scientist first meets them (issue 13): no dead ends, visible
progress, nothing lost without a word. Each test failed on the code before the fix."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")

from camtrack.napari._widgets import BackgroundWidget, GainWidget, TrackingWidget

FIELD, SWEEP = "bead field", "calibration z-sweep"


@pytest.fixture
def beads_viewer(make_napari_viewer):
    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-camtrack", "beads")
    return viewer


def _errors(monkeypatch):
    """Collect error notifications (napari's show_error) instead of showing them."""
    seen: list[str] = []
    import napari.utils.notifications as notes

    monkeypatch.setattr(notes, "show_error", lambda msg: seen.append(str(msg)))
    return seen


# -- 1. the bead sample and the Bead tracking widget -----------------------------------
def test_image_defaults_to_the_recording_not_the_sweep(beads_viewer):
    viewer = beads_viewer
    # open_sample leaves the last-added layer (the sweep) selected.
    widget = TrackingWidget(viewer)
    assert widget.image.value is viewer.layers[FIELD]
    assert widget.calibration.value is viewer.layers[SWEEP]


@pytest.mark.parametrize("widget_type", [TrackingWidget, BackgroundWidget, GainWidget])
def test_widgets_open_on_an_empty_viewer_and_pick_up_a_stack(make_napari_viewer, widget_type, monkeypatch):  # fmt: skip
    """Plugins > camtrack > ... before any data is opened: no traceback; every button
    says what is missing; a stack added later becomes the image."""
    viewer = make_napari_viewer()
    errors = _errors(monkeypatch)
    widget = widget_type(viewer)
    viewer.window.add_dock_widget(widget)  # napari refreshes layer choices of docked widgets
    for name in dir(widget):
        if name.endswith("_button") and not name.startswith("_"):
            button = getattr(widget, name)
            if button.enabled and button.visible:
                button.native.click()
    assert not errors
    viewer.add_image(np.zeros((4, 32, 32), np.uint16), name="stack")
    widget.reset_choices()
    assert widget.image.value is viewer.layers["stack"]


def test_find_beads_on_an_empty_frame_is_a_message_and_recovers(beads_viewer, monkeypatch):
    viewer = beads_viewer
    errors = _errors(monkeypatch)
    viewer.add_image(np.zeros((3, 64, 64), np.uint16), name="blank")
    widget = TrackingWidget(viewer)
    widget.image.value = viewer.layers["blank"]
    widget.find_button.native.click()
    assert not errors
    assert "no beads" in widget.status.value.lower()
    assert len(viewer.layers["beads"].data) == 0 if "beads" in viewer.layers else True
    # Every button handles the empty state with a message, not a traceback.
    for button in (widget.reference_button, widget.track_button, widget.lut_button):
        button.native.click()
    widget.preview.value = True
    widget.roi_size.value = 40
    # Then the recording: beads are found as usual.
    widget.image.value = viewer.layers[FIELD]
    widget.find_button.native.click()
    assert len(viewer.layers["beads"].data) >= 3
    assert len(viewer.layers["bead ROIs"].data) == len(viewer.layers["beads"].data)


def test_deleting_all_beads_is_a_normal_state(beads_viewer, monkeypatch, qtbot):
    viewer = beads_viewer
    widget = TrackingWidget(viewer)
    widget.find_button.native.click()
    n = len(viewer.layers["beads"].data)
    assert n >= 3
    pts = viewer.layers["beads"]
    pts.selected_data = set(range(n))
    pts.remove_selected()
    assert len(viewer.layers["bead ROIs"].data) == 0
    errors = _errors(monkeypatch)
    widget.track_button.native.click()
    assert errors and "beads" in errors[-1]  # a message naming what to do
    widget.find_button.native.click()
    assert len(viewer.layers["beads"].data) == n
    # Deleting the layers themselves: the next click makes them again.
    viewer.layers.remove("beads")
    qtbot.wait(10)
    assert "bead ROIs" not in viewer.layers
    widget.find_button.native.click()
    assert len(viewer.layers["beads"].data) == n
    assert len(viewer.layers["bead ROIs"].data) == n


# -- 2. long messages do not widen the panel ----------------------------------------
def test_long_status_wraps_and_the_window_keeps_its_width(beads_viewer, qtbot):
    from camtrack.napari._widgets._threaded import PANEL_MAX_WIDTH

    viewer = beads_viewer
    widget = TrackingWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Bead tracking")
    widget.status.value = "ready"  # one line, as every status has
    widget.lut_label.value = "no Z-LUT"
    qtbot.wait(300)
    window = viewer.window._qt_window
    before, height_before = window.width(), window.height()
    long = "error: " + "a-very-long-path/" * 40 + " and " + "many words " * 60
    widget.status.value = long
    widget.lut_label.value = long
    qtbot.wait(300)
    assert widget.native.width() <= PANEL_MAX_WIDTH
    assert window.width() <= before
    assert window.height() <= height_before  # wrapped lines must not grow it either
    assert widget.status.native.toolTip() == long  # the full text stays readable


# -- 3. progress in the widget, Cancel stops a lazy temporal median -------------------
def test_temporal_median_of_a_lazy_file_shows_progress_and_cancels(
    make_napari_viewer, qtbot, tmp_path
):
    import time

    import tifffile

    rng = np.random.default_rng(0)
    path = tmp_path / "movie.tif"
    # 600 x 512 x 512 uint16 (300 MB): seconds of work, as one plain multi-page series.
    out = tifffile.memmap(path, shape=(600, 512, 512), dtype=np.uint16)
    for a in range(0, 600, 100):
        out[a : a + 100] = rng.integers(0, 4000, (100, 512, 512), dtype=np.uint16)
    out.flush()
    del out
    viewer = make_napari_viewer(show=True)
    (layer,) = viewer.open(path, plugin="napari-camtrack")
    assert layer.data.shape[0] == 600
    widget = BackgroundWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Background")
    widget.preview.value = False
    widget.image.value = layer
    widget.method.value = "temporal median"
    widget.apply_button.native.click()
    qtbot.waitUntil(lambda: widget.progress_bar.visible, timeout=5000)
    qtbot.waitUntil(lambda: widget.progress_bar.value > 0, timeout=60000)
    assert widget._worker is not None  # still running: Cancel has something to stop
    t0 = time.perf_counter()
    widget.cancel_button.native.click()
    qtbot.waitUntil(lambda: widget.apply_button.enabled, timeout=30000)
    elapsed = time.perf_counter() - t0
    assert "cancelled" in widget.status.value
    assert f"{layer.name} background" not in viewer.layers
    assert elapsed < 1.0, f"Cancel took {elapsed:.2f} s"
    assert not widget.progress_bar.visible


# -- 5. a failed run leaves nothing stale ---------------------------------------------
def test_failed_gain_run_clears_the_previous_result(make_napari_viewer, qtbot, monkeypatch):
    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-camtrack", "flat_field")
    widget = GainWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Camera gain")
    widget.last_frame.value = 59
    widget.run_button.native.click()
    qtbot.waitUntil(lambda: widget.result is not None, timeout=120000)
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=10000)
    assert "e-/ADU" in widget.result_label.value and widget.plot.text
    errors = _errors(monkeypatch)
    # A stack the engine refuses (too few frames for photon transfer).
    viewer.add_image(np.zeros((2, 64, 64), np.uint16), name="two frames")
    widget.image.value = viewer.layers["two frames"]
    widget.run_button.native.click()
    qtbot.waitUntil(lambda: widget.run_button.enabled and bool(errors), timeout=30000)
    assert widget.result is None
    assert widget.result_label.value == "" and widget.plot.text == ""
    assert not widget.save_button.enabled and not widget.convert_button.enabled
    assert widget.status.value.startswith("error")


# -- 4. z values checked against the sweep before anything is built -------------------
def test_typed_z_must_fit_the_sweep(beads_viewer, monkeypatch):
    viewer = beads_viewer
    errors = _errors(monkeypatch)
    widget = TrackingWidget(viewer)
    n = viewer.layers[SWEEP].data.shape[0]  # 91 planes x 4 frames
    widget.z_source.value = "list"
    assert not widget.frames_per_plane.native.isHidden()
    widget.z_list.value = (
        "0, 100, 200, 300"  # 4 divides 364: the old code took 91 frames per plane
    )
    widget.lut_button.native.click()
    assert widget.zlut is None
    assert errors and f"{n} frames" in errors[-1] and "got 4" in errors[-1]
    # Not monotonic, and micrometres, are refused with what was expected.
    widget.frames_per_plane.value = 4
    z = np.arange(-4500.0, 4501.0, 100.0)
    widget.z_list.value = ", ".join(f"{v:g}" for v in z[::-1][:3].tolist() + z[3:].tolist())
    widget.lut_button.native.click()
    assert "monotonic" in errors[-1]
    widget.z_list.value = ", ".join(f"{v / 1000:g}" for v in np.linspace(-0.009, 0.009, 91))
    widget.lut_button.native.click()
    assert "micrometres" in errors[-1] and widget.zlut is None


# -- 6. z is never lost without a word -------------------------------------------------
def test_tracking_without_lut_says_so_and_the_selector_follows(beads_viewer, qtbot):
    viewer = beads_viewer
    widget = TrackingWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Bead tracking")
    widget.find_button.native.click()
    widget.first_frame.value, widget.last_frame.value = 0, 3
    assert widget.trace.value == "z"
    widget.track_button.native.click()
    qtbot.waitUntil(
        lambda: widget.result is not None and widget.track_button.enabled, timeout=60000
    )
    assert widget.trace.value == "x"  # the plot shows x(t), and the selector says x
    assert "no Z-LUT" in widget.status.value
    assert widget.z_plot.axes.get_ylabel().startswith("x")


def test_preview_with_another_roi_size_than_the_lut_says_why_z_is_missing(
    beads_viewer, qtbot, monkeypatch
):
    viewer = beads_viewer
    widget = TrackingWidget(viewer)
    widget.find_button.native.click()
    widget.lut_button.native.click()
    qtbot.waitUntil(lambda: widget.zlut is not None and widget.lut_button.enabled, timeout=60000)
    widget.roi_size.value = widget.zlut.roi_size - 8
    widget.preview.value = True
    widget.preview_frame()
    assert f"ROI size {widget.zlut.roi_size} px" in widget.status.value
    # Loading a LUT that changes roi_size says so.
    infos: list[str] = []
    import napari.utils.notifications as notes

    monkeypatch.setattr(notes, "show_info", lambda msg: infos.append(str(msg)))
    widget.set_lut(widget.zlut)
    assert widget.roi_size.value == widget.zlut.roi_size
    assert infos and "ROI size set from" in infos[-1]


# -- 7. a single-bead sweep of any size -------------------------------------------------
def test_single_bead_sweep_larger_than_the_roi_is_cropped_around_its_bead(
    beads_viewer, qtbot, monkeypatch
):
    from camtrack.simulate import zsweep

    viewer = beads_viewer
    errors = _errors(monkeypatch)
    z = np.arange(-2000.0, 2001.0, 100.0)
    # 80 x 96 px frames, bead off centre (at x = 52, y = 35): not ROI-sized, not the field.
    big, truth = zsweep(z, roi_size=(80, 96), x=52.0, y=35.0, frames_per_plane=2, rng=5)
    viewer.add_image(big, name="big sweep", metadata={"z_nm": np.asarray(truth.z_nm)})
    widget = TrackingWidget(viewer)
    widget.image.value = viewer.layers[FIELD]
    widget.calibration.value = viewer.layers["big sweep"]
    widget.roi_size.value = 48
    widget.lut_button.native.click()
    qtbot.waitUntil(
        lambda: widget.lut_button.enabled and (widget.zlut is not None or errors), timeout=60000
    )
    assert not errors, errors
    assert widget.zlut.roi_size == 48 and widget.lut_rms < 10.0


# -- 9. tooltips, bead numbers, overlays on top ---------------------------------------
def test_every_field_has_a_tooltip_from_the_engine_docs(beads_viewer):
    from camtrack.napari._widgets._tooltips import parameter_docs, value_fields
    from camtrack.tracking import track_beads

    viewer = beads_viewer
    for cls in (TrackingWidget, BackgroundWidget, GainWidget):
        widget = cls(viewer)
        missing = [name for name, w in value_fields(widget).items() if not w.tooltip]
        assert not missing, (cls.__name__, missing)
    widget = TrackingWidget(viewer)
    # The engine keyword first (the label is words: "ROI size (px)"), then its docs.
    assert widget.roi_size.label == "ROI size (px)" and widget.roi_size.name == "roi_size"
    assert (
        widget.roi_size.tooltip == "keyword: roi_size — " + parameter_docs(track_beads)["roi_size"]
    )
    assert "``" not in widget.roi_size.tooltip


def test_bead_numbers_follow_edits_and_overlays_stay_on_top(beads_viewer):
    viewer = beads_viewer
    widget = TrackingWidget(viewer)
    widget.find_button.native.click()
    pts = viewer.layers["beads"]
    n = len(pts.data)
    assert list(pts.text.string(pts.features)) == [str(i) for i in range(n)]
    pts.selected_data = {0}
    pts.remove_selected()
    assert np.array_equal(pts.features["bead"], np.arange(n - 1))
    # A stack opened later goes below the overlays.
    viewer.add_image(np.zeros((4, 32, 32), np.uint16), name="later")
    names = [layer.name for layer in viewer.layers]
    assert names.index("later") < names.index("beads")
    assert names.index("later") < names.index("bead ROIs")


def test_a_worker_returning_after_the_widget_was_deleted_is_dropped(qtbot):
    """A run or preview that ends after the viewer was closed returns into deleted Qt
    widgets: its result is dropped instead of raising in the Qt event loop."""
    from magicgui.widgets import CheckBox

    from camtrack.napari._widgets._threaded import while_alive

    box = CheckBox(value=True)
    seen = []
    slot = while_alive(lambda out: seen.append((out, box.value)))
    slot(1)
    box.native.deleteLater()
    qtbot.waitUntil(lambda: _deleted(box.native))
    assert slot(2) is None and seen == [(1, True)]
    with pytest.raises(RuntimeError, match="other"):
        while_alive(lambda: (_ for _ in ()).throw(RuntimeError("other")))()


def _deleted(qwidget) -> bool:
    try:
        qwidget.objectName()
    except RuntimeError:
        return True
    return False
