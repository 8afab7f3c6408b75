"""The Bead tracking widget's centre and profile choices (#17 leftovers): fields from
the tracking registries, behind 'advanced'; a LUT built with a classic centre records
it, tracking uses it against the truth, the fields follow a LUT; the widget checks a
camera against the sweep with the engine's own function."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")

from camtrack import tracking
from camtrack.napari._widgets import TrackingWidget
from camtrack.napari._widgets._tooltips import parameter_docs
from camtrack.tracking._registry import CENTRES, PROFILES


def test_centre_and_profile_fields_are_the_registry(make_napari_viewer):
    widget = TrackingWidget(make_napari_viewer())
    for field, registry in ((widget.centre, CENTRES), (widget.profile, PROFILES)):
        # Values are the engine's names, labels the registry's widget labels.
        assert list(field.choices) == [m.name for m in registry.gui().values()]
        labels = [field.native.itemText(i) for i in range(field.native.count())]
        assert labels == list(registry.gui())
        assert field.value == next(iter(registry))
        assert field.native.isHidden()  # behind 'advanced': the panel stays as tall as it was
    centre, profile = (
        parameter_docs(tracking.track_rois)["centre"],
        parameter_docs(tracking.build_zlut)["profile"],
    )
    assert widget.centre.tooltip == f"keyword: centre — {centre}"
    assert widget.profile.tooltip == f"keyword: profile — {profile}"
    widget.advanced.value = True
    assert not widget.centre.native.isHidden() and not widget.profile.native.isHidden()
    widget.advanced.value = False
    assert widget.centre.native.isHidden()


def test_a_lut_built_with_qi_tracks_the_sweep_and_sets_the_fields(make_napari_viewer, qtbot):
    """Build a LUT in the widget with centre QI, track the sweep's own frames with it
    and compare with the truth; the fields follow a LUT that is set; another centre is
    refused with the engine's message."""
    from napari.utils.notifications import notification_manager

    from camtrack.simulate import zsweep

    planes = np.arange(-2000.0, 2001.0, 100.0)
    sweep, truth = zsweep(planes, roi_size=48, frames_per_plane=3, rng=41)
    viewer = make_napari_viewer()
    layer = viewer.add_image(sweep, name="sweep")
    widget = TrackingWidget(viewer)
    widget.image.value = layer
    widget.calibration.value = layer
    widget.roi_size.value = 48
    widget.z_source.value = "list"
    widget.z_list.value = ", ".join(f"{v:g}" for v in planes)
    widget.frames_per_plane.value = 3
    widget.advanced.value = True
    widget.centre.value = "qi"
    widget.lut_button.native.click()
    qtbot.waitUntil(lambda: widget.zlut is not None and widget.lut_button.enabled, timeout=60000)
    assert widget.zlut.centre == "qi" and widget.zlut.profile == "radial"
    assert widget.luts[0][3].rms < 3.0  # held-out frames, bright 48 px bead: ~1 nm
    viewer.add_points(np.array([[23.5, 23.5]]), name="beads")
    widget.first_frame.value, widget.last_frame.value = 0, 29
    widget.track_button.native.click()
    qtbot.waitUntil(
        lambda: widget.result is not None and widget.track_button.enabled, timeout=60000
    )
    tab = widget.result.to_table()
    # QI x, y of a bright bead: within 0.02 px of the truth; z (two of three frames
    # were in the LUT) within 5 nm; no x_err from a classic centre.
    assert np.abs(tab["x"] - truth.x[:30]).max() < 0.02
    assert np.abs(tab["z"] - truth.z_nm[:30]).max() < 5.0
    assert np.isnan(tab["x_err"]).all()
    # A LUT set (loaded or built) sets the fields it was built with.
    widget.set_lut(tracking.build_zlut(sweep, truth.z_nm, centre="auto-conv-multiline", profile="fft"))  # fmt: skip
    assert (widget.centre.value, widget.profile.value) == ("auto-conv-multiline", "fft")
    assert "fft profile" in widget.lut_label.value
    # Another centre than the LUT's: the engine refuses it, as a notification.
    widget.centre.value = "symmetry"
    n0 = len(notification_manager.records)
    widget.result = None
    widget.track_button.native.click()
    qtbot.waitUntil(lambda: widget.track_button.enabled, timeout=60000)
    messages = [str(n.message) for n in notification_manager.records[n0:]] + [widget.status.value]
    assert any("`centre`='symmetry' differs from the ZLut's" in m for m in messages), messages
    assert widget.result is None


def test_the_lut_camera_is_checked_by_the_engine(make_napari_viewer):
    """Maps of another sensor area than the sweep's: the engine's message (as
    track_beads and `camtrack zlut` give it), no second copy of the check."""
    widget = TrackingWidget(make_napari_viewer())
    maps = tracking.CameraModel(e_per_adu=np.full((10, 12), 2.0), offset_adu=100.0,
                                read_noise_e=1.5)  # fmt: skip
    # The picked camera (a Container's attribute: plain assignment, no monkeypatch undo).
    widget.camera_model = lambda: maps
    with pytest.raises(ValueError, match=r"`camera` maps have shape \(10, 12\); `stack` frames are \(64, 64\)"):  # fmt: skip
        widget._lut_camera(0, 0, 48, (64, 64))
    fine = tracking.CameraModel(e_per_adu=np.full((64, 64), 2.0), offset_adu=100.0,
                                read_noise_e=1.5)  # fmt: skip
    widget.camera_model = lambda: fine
    assert widget._lut_camera(8, 4, 48, (64, 64)).shape == (1, 48, 48)
