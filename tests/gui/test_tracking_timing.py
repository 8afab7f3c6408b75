"""Bead tracking widget: frame rate and exposure from the image's metadata to the tracked layer (#16 item 1)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")

from camtrack.napari._widgets import TrackingWidget


def _viewer_with_field(make_napari_viewer, metadata):
    from camtrack.simulate import bead_field

    stack, truth = bead_field(5, shape=(128, 128), n_beads=2, rng=3)
    viewer = make_napari_viewer()
    viewer.add_image(np.asarray(stack), name="recording", metadata=metadata)
    return viewer, truth


def test_fields_prefill_from_metadata_and_tracked_layer_carries_them(make_napari_viewer, qtbot):
    viewer, truth = _viewer_with_field(make_napari_viewer, {"fs_hz": 250.0, "exposure_s": 0.002})
    widget = TrackingWidget(viewer)
    assert widget.fs_hz.value == pytest.approx(250.0)
    assert widget.exposure_s.value == pytest.approx(0.002)
    viewer.add_points(np.column_stack([truth.y[0], truth.x[0]]), name="beads")
    widget.roi_size.value = 48
    widget.track_button.native.click()
    qtbot.waitUntil(lambda: widget.result is not None, timeout=120000)
    qtbot.waitUntil(lambda: widget.track_button.enabled, timeout=10000)
    meta = viewer.layers["tracked"].metadata
    assert meta["fs_hz"] == pytest.approx(250.0)
    assert meta["exposure_s"] == pytest.approx(0.002)
    tab = widget.result.to_table()
    np.testing.assert_allclose(tab["t_s"], tab["frame"] / 250.0)
    # The Forces widget takes them from the tracked layer (the image's are cleared
    # first, so they can only come from there).
    from camtrack.napari._widgets import ForceWidget

    viewer.layers["recording"].metadata = {}
    forces = ForceWidget(viewer)
    forces.source.value = viewer.layers["tracked"]
    assert forces.fs_hz.value == pytest.approx(250.0)
    assert forces.exposure_s.value == pytest.approx(0.002)


def test_unknown_timing_stays_zero_and_bad_exposure_is_a_notification(make_napari_viewer):
    from napari.utils.notifications import notification_manager

    viewer, truth = _viewer_with_field(make_napari_viewer, {})
    widget = TrackingWidget(viewer)
    assert widget.fs_hz.value == 0 and widget.exposure_s.value == 0
    assert widget.timing() == {"fs_hz": None, "exposure_s": None}
    viewer.add_points(np.column_stack([truth.y[0], truth.x[0]]), name="beads")
    widget.fs_hz.value, widget.exposure_s.value = 100.0, 0.5  # longer than the 10 ms frame
    n0 = len(notification_manager.records)
    widget.track_button.native.click()
    messages = [str(n.message) for n in notification_manager.records[n0:]]
    assert any("`exposure_s`" in m and "fs_hz" in m for m in messages), messages
    assert widget.result is None and widget.track_button.enabled
