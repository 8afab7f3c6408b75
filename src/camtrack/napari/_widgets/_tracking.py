"""The "Bead tracking" widget: pick beads, build a Z-LUT, track, overlay, export.

1. *Find beads* fills an editable Points layer ``beads`` (add or delete beads by
   clicking); each bead's ROI is drawn as a box in the Shapes layer ``bead ROIs``, which
   follows the ROI size and the points. Beads stuck to the surface (from their motion
   over the next 100 frames, :func:`camtrack.tracking.flag_stuck_beads`, in a worker)
   become reference beads for drift correction; *Toggle reference* marks or unmarks
   the selected beads.
2. *Build Z-LUT* (see ``_zlut_section``) builds a look-up table per calibration bead
   (ROI-sized sweep frames, or crops of a field sweep around the first, selected or all
   beads) with z from metadata, start + step, a list or a CSV; each is checked on
   held-out frames (RMS, unambiguous range, error vs z plotted) and shown as an image
   layer of profiles vs z. The best bead's LUT or one per bead is used. LUTs save and
   load.
3. *Track* runs :func:`camtrack.tracking.track_beads` over the frame range in a thread
   worker (progress bar, Cancel), with the camera's noise model when one is picked (the
   Camera gain widget's last result or a saved calibration file): per-pixel offset and
   gain corrected, hot pixels replaced, errors from the camera's variances. Results:
   Points ``tracked`` (t, y, x) with features bead, z, x_err, y_err, z_err, quality,
   coloured by z, a Tracks layer ``tracks`` and a docked z(t) plot
   (or x, y) where the beads selected in the viewer are highlighted. A ``scheduler``
   address tracks the frame chunks in parallel on a dask.distributed cluster.
4. *Live preview*: changing the ROI size, mode or centre (or the frame) re-tracks the
   beads in the current frame only.

*advanced* shows the centre estimator (the mode's own symmetry centre, or a classic
block: centre of mass, auto-convolution, quadratic interpolation, QI) and the Z-LUT's
profile (radial or FFT), both from the tracking registries; a LUT records them, so
tracking with it measures centres the same way (loading or building one sets them).
5. *Export* writes the table (CSV or HDF5, with x_err, y_err, z_err) atomically, never
   over the input file.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    LineEdit,
    PushButton,
    SpinBox,
)

from camtrack import tracking
from camtrack._registry import keyword_tooltip
from camtrack.napari._glguard import guard_gl_context_on_layer_removal
from camtrack.napari._layers import image_stacks, keep_on_top, upsert
from camtrack.napari._plots import share_width
from camtrack.napari._widgets._fields import fit_label_column
from camtrack.napari._widgets._threaded import (
    ThreadedRun,
    deferred,
    message_label,
    while_alive,
)
from camtrack.napari._widgets._tooltips import parameter_docs, set_tooltips, value_fields
from camtrack.napari._widgets._zlut_section import (
    BEADS,
    LUT_BEADS,
    Z_SOURCES,
    ZLutSection,
    is_sweep,
)
from camtrack.tracking._registry import CENTRES, MODES, PROFILES
from camtrack.tracking._result import check_timing
from camtrack.tracking._stack import frame_camera

ROIS, TRACKED, TRACKS, PREVIEW = "bead ROIs", "tracked", "tracks", "tracked (preview)"
CAMERA_SOURCES = ["none", "Camera gain widget", "file"]
# The editable ``beads`` layer: crosses, reference beads in another colour, numbered.
BEAD_STYLE = {
    "size": 8, "face_color": "transparent", "border_color": "reference",
    "border_color_cycle": ["#ffb347", "#7fffd4"], "border_width": 0.3, "symbol": "cross",
    "text": {"string": "{bead}", "color": "#ffb347", "size": 10, "anchor": "upper_left",
             "translation": [-4, 4]},
    "feature_defaults": {"reference": False, "bead": -1},
}  # fmt: skip
# Frames over which Find beads checks which beads are stuck (flag_stuck_beads: 100
# frames measure a bead's frame-to-frame step to about 7 %).
STUCK_FRAMES = 100

# Fields that are not engine keywords (the others show the engine's documentation).
TOOLTIPS = {
    "image": "The recording to track (T, Y, X). Calibration z-sweeps are not offered first.",
    "nm_per_px": "Pixel size in nm in the sample plane (from the file's metadata when known; "
    "0: unknown). Gives x, y displacement traces in nm and x_nm, y_nm columns in exports.",
    "fs_hz": "Frame rate in Hz (from the file's metadata when known; 0: unknown). Gives the "
    "time column t_s in exports and goes with the tracked layer to the Forces widget.",
    "exposure_s": "Exposure time per frame in s, at most 1 / frame rate (from the file's "
    "metadata when known; 0: unknown or the whole frame period).",
    "radius": "Find beads: typical bead-pattern radius in px (the rings that should fit in "
    "an ROI); candidates closer than this to the frame edge are dropped.",
    "calibration": "The calibration z-sweep: ROI-sized frames, a single bead in larger "
    "frames (found and cropped), or a sweep of the whole field (cropped at the beads).",
    "z_source": "Where the z of each sweep frame comes from: the layer's metadata, start + "
    "step per plane, a typed list or a CSV file (one z per plane or per frame, nm).",
    "z_list": "z in nm, one per plane (or one per frame), separated by commas or spaces; "
    "checked against the sweep: planes x frames per plane = frames, monotonic.",
    "z_file": "CSV of z in nm (last column), one row per plane or per frame.",
    "lut_beads": "Which beads of a field sweep get a Z-LUT: the first, the selected or all.",
    "lut_use": "Track every bead with the best bead's Z-LUT, or each with its own.",
    "z_start": "z of the first plane, nm.",
    "z_step": "z step between planes, nm (negative for a sweep that moves down).",
    "frames_per_plane": "Frames recorded at each plane of the sweep; planes x frames per "
    "plane must equal the sweep's frames.",
    "first_frame": "First frame to track.",
    "last_frame": "Last frame to track (inclusive).",
    "preview": "Track the beads in the current frame only, on every frame or parameter change.",
    "trace": "Which coordinate the docked plot shows per bead over time.",
    "error_band": "Shade each trace ±2 standard errors (x_err, y_err, z_err): about 95 % "
    "of positions lie within it of the truth. Time in s when the frame rate is known.",
    "camera": "The camera's noise model for tracking and the Z-LUT: none (errors from each "
    "ROI's own residuals), the Camera gain widget's last result (run it with a dark stack "
    "for offset and read noise) or its per-pixel sCMOS maps (its 'convert with' choice), or "
    "a saved calibration file. Per-pixel maps must cover the "
    "recording's frames; they are cut with each ROI.",
    "advanced": "Show the centre estimator and the Z-LUT's profile (defaults: the mode's "
    "symmetry centre, radial profile).",
    "camera_file": "A saved camera calibration: the JSON of the Camera gain widget's 'Save "
    "calibration' (its .h5 maps next to it) or a PixelCalibration .h5 / .npz.",
}


class TrackingWidget(ZLutSection, ThreadedRun, Container):
    """Magnetic-tweezers bead tracking (Plugins > camtrack > Bead tracking)."""

    @property
    def native(self) -> Any:
        """The scroll area holding the panel: the panel is taller than a 1000 px window
        once a Z-LUT and a run are shown, so napari docks the scroll area (magicgui's
        ``native`` of a scrollable container is the inner widget, which would be
        docked without its scroll bars and squeezed, clipping its labels)."""
        return self._widget._qwidget

    def __init__(self, napari_viewer: Any) -> None:
        self.viewer = napari_viewer
        guard_gl_context_on_layer_removal(napari_viewer)  # docs/known-issues.md
        self.image = ComboBox(label="Image", choices=self._stacks)
        self.roi_size = SpinBox(label="ROI size (px)", value=48, min=8, max=1024, step=2)
        self.mode = ComboBox(label="Mode", choices=list(MODES.gui()), value="precise")
        # Both from the registries: label shown, engine name as value.
        self.advanced = CheckBox(label="Advanced: centre, profile", value=False)
        self.centre = ComboBox(label="Centre",
                               choices=[(label, m.name) for label, m in CENTRES.gui().items()],
                               value=next(iter(CENTRES)))  # fmt: skip
        self.profile = ComboBox(label="Profile (Z-LUT)",
                                choices=[(label, m.name) for label, m in PROFILES.gui().items()],
                                value=next(iter(PROFILES)))  # fmt: skip
        self.radius = FloatSpinBox(label="Find radius (px)", value=16.0, min=2.0, max=500.0)
        self.nm_per_px = FloatSpinBox(
            label="Pixel size (nm; 0 = unknown)", value=0.0, min=0.0, max=1e5, step=1.0
        )
        self.fs_hz = FloatSpinBox(
            label="Frame rate (Hz; 0 = unknown)", value=0.0, min=0.0, max=1e7
        )
        self.exposure_s = FloatSpinBox(label="Exposure (s; 0 = unknown)", value=0.0, min=0.0,
                                       max=1e4, step=1e-4)  # fmt: skip
        self.exposure_s.native.setDecimals(6)
        self.find_button = PushButton(text="Find beads")
        self.reference_button = PushButton(text="Toggle reference (selected beads)")
        self.calibration = ComboBox(label="Calibration z-sweep", choices=self._calib_choices)
        self.z_source = ComboBox(label="z of the planes", choices=Z_SOURCES, value="metadata")
        self.z_list = LineEdit(label="z values (nm)", value="")
        self.z_file = FileEdit(label="z CSV file", mode="r", filter="*.csv *.txt")
        self.lut_beads = ComboBox(label="LUT beads", choices=LUT_BEADS, value="first bead")
        self.lut_use = ComboBox(label="Use LUT", choices=["best bead", "per bead"])
        self.z_start = FloatSpinBox(label="z start (nm)", value=-4500.0, min=-1e7, max=1e7)
        self.z_step = FloatSpinBox(label="z step (nm)", value=100.0, min=-1e6, max=1e6)
        self.frames_per_plane = SpinBox(label="Frames per plane", value=1, min=1, max=10_000)
        self.lut_button = PushButton(text="Build Z-LUT")
        self.save_lut_button = PushButton(text="Save Z-LUT", enabled=False)
        self.load_lut_button = PushButton(text="Load Z-LUT")
        self.first_frame = SpinBox(label="First frame", value=0, min=0, max=0)
        self.last_frame = SpinBox(label="Last frame", value=0, min=0, max=0)
        self.camera = ComboBox(label="Camera", choices=CAMERA_SOURCES, value="none")
        self.camera_file = FileEdit(label="Camera file", mode="r", filter="*.json *.h5 *.npz")
        self.preview = CheckBox(label="Live preview (current frame)", value=False)
        self.trace = ComboBox(label="Trace", choices=["z", "x", "y"], value="z")
        self.error_band = CheckBox(label="Shade ±2 standard errors", value=True)
        self.scheduler = LineEdit(label="Scheduler (optional)", value="")
        self.scheduler.tooltip = keyword_tooltip(
            "scheduler",
            "Track frame chunks in parallel: a dask.distributed address (tcp://host:8786), "
            "'threads' or 'processes'. Empty: $DASK_SCHEDULER_ADDRESS if set, else chunk "
            "after chunk here.",
        )
        self.track_button = PushButton(text="Track")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.export_button = PushButton(text="Export table", enabled=False)
        self.lut_label = message_label("no Z-LUT")
        self.status = message_label("")
        super().__init__(
            widgets=[
                self.image, self.nm_per_px, self.fs_hz, self.exposure_s, self.roi_size,
                self.mode, self.advanced, self.centre, self.profile, self.radius,
                self.find_button, self.reference_button, self.calibration, self.z_source, self.z_start,
                self.z_step, self.frames_per_plane, self.z_list, self.z_file, self.lut_beads,
                self.lut_button, self.lut_use, self.save_lut_button, self.load_lut_button,
                self.lut_label, self.first_frame, self.last_frame, self.camera,
                self.camera_file, self.scheduler,
                self.preview, self.track_button, self.cancel_button, self.export_button, self.trace,
                self.error_band, self.status,
            ],
            scrollable=True,
        )  # fmt: skip
        self.start_button = self.track_button
        self._init_threaded()
        fit_label_column(self)  # the labels as napari draws them
        # The full descriptions (track_beads only refers to track_rois for these).
        self.centre.tooltip = keyword_tooltip(
            "centre", parameter_docs(tracking.track_rois)["centre"]
        )
        self.profile.tooltip = keyword_tooltip(
            "profile", parameter_docs(tracking.build_zlut)["profile"]
        )
        set_tooltips(
            value_fields(self),
            (tracking.track_beads, tracking.find_beads, tracking.build_zlut, tracking.track_rois),
            TOOLTIPS,
        )
        self.zlut: tracking.ZLut | None = None
        self.lut_source = "Z-LUT"  # what the current LUT was built from, for exports
        self.lut_used: str | list[str] | None = None
        self.luts: list[tuple[str, int | None, tracking.ZLut, tracking.ZLutCheck]] = []
        self.lut_rms = float("nan")
        self.selected_beads: set[int] = set()
        self.result: tracking.TrackResult | None = None
        self._tracked_source: tuple[str, int] | None = None
        self.z_plot = None
        self._stuck_worker = None
        self._stuck_stale = False
        self.lut_plot = None
        self._lut_dock = None
        default = self._default_image()
        if default is not None:  # an empty viewer: nothing to pick yet
            self.image.value = default
        self._on_image()
        self._on_z_source()
        self._on_camera()
        self._on_advanced()
        self.advanced.changed.connect(self._on_advanced)
        self.camera.changed.connect(self._on_camera)
        self.image.changed.connect(self._on_image)
        self.z_source.changed.connect(self._on_z_source)
        self.trace.changed.connect(self._replot)
        self.error_band.changed.connect(self._replot)
        self.nm_per_px.changed.connect(self._replot)
        self.find_button.changed.connect(self.find)
        self.reference_button.changed.connect(self.toggle_reference)
        self.roi_size.changed.connect(self._draw_rois)
        self.lut_button.changed.connect(self.build_lut)
        self.save_lut_button.changed.connect(self._ask_save_lut)
        self.load_lut_button.changed.connect(self._ask_load_lut)
        self.track_button.changed.connect(self.track)
        self.export_button.changed.connect(self._ask_export)
        for w in (self.roi_size, self.mode, self.centre, self.preview):
            w.changed.connect(self.update_preview)
        self.viewer.dims.events.current_step.connect(deferred(self.update_preview, self.native))
        self.viewer.layers.events.removed.connect(self._on_layer_removed)
        keep_on_top(self.viewer, (ROIS, BEADS, TRACKS, TRACKED, PREVIEW))

    # -- inputs -------------------------------------------------------------------
    def _stacks(self, _widget: Any = None) -> list[Any]:
        return image_stacks(self.viewer)

    def _calib_choices(self, _widget: Any = None) -> list[Any]:
        return [("none", None), *((layer.name, layer) for layer in self._stacks())]

    def _default_image(self) -> Any:
        """The recording to track: the selected stack unless it is a calibration
        sweep (its metadata says so), else the first stack that is not one."""
        stacks = self._stacks()
        active = self.viewer.layers.selection.active
        if active in stacks and not is_sweep(active):
            return active
        recordings = [layer for layer in stacks if not is_sweep(layer)]
        return (recordings or stacks or [None])[0]

    def _on_layer_removed(self, event: Any) -> None:
        """Deleting the ``beads`` layer deletes its ROI boxes too (a normal state:
        *Find beads* makes both again)."""
        if getattr(event, "value", None) is not None and event.value.name == BEADS:
            if ROIS in self.viewer.layers:
                self.viewer.layers.remove(ROIS)
            self.status.value = "beads layer removed: press 'Find beads' to find them again"

    def _on_image(self, *_: Any) -> None:
        layer = self.image.value
        if layer is None:
            return
        last = int(layer.data.shape[0]) - 1
        self.first_frame.max = self.last_frame.max = last
        self.first_frame.value, self.last_frame.value = 0, last
        known = _nm_per_px(layer)
        if known:  # from the file's metadata (or the simulator's truth)
            self.nm_per_px.value = known
        for key in ("fs_hz", "exposure_s"):  # the reader's LayerInfo fields, when known
            value = layer.metadata.get(key)
            if isinstance(value, int | float) and np.isfinite(value) and value > 0:
                getattr(self, key).value = float(value)
        if self.calibration.value is None:
            for other in self._stacks():
                if other is not layer and is_sweep(other):
                    self.calibration.value = other
                    break
        if is_sweep(layer):
            self.status.value = (
                f"note: {layer.name!r} is a calibration z-sweep; pick the recording to track "
                "as 'image'"
            )

    def _layer(self) -> Any:
        layer = self.image.value
        if layer is None:
            raise ValueError("No image layer selected: open a stack first.")
        return layer

    def _geometry(self, ndim: int) -> dict[str, tuple[float, ...]]:
        """scale/translate of the image's last ``ndim`` axes, so overlays (in pixel
        coordinates) sit on the image whatever its physical pixel size."""
        layer = self.image.value
        if layer is None:
            return {}
        return {
            "scale": tuple(float(v) for v in layer.scale[-ndim:]),
            "translate": tuple(float(v) for v in layer.translate[-ndim:]),
        }

    def bead_xy(self) -> np.ndarray:
        """Bead positions (x, y) from the ``beads`` layer, shape (B, 2); (0, 2) when
        the layer is missing or empty (a normal state, not an error)."""
        if BEADS not in self.viewer.layers:
            return np.empty((0, 2))
        yx = np.asarray(self.viewer.layers[BEADS].data, dtype=np.float64).reshape(-1, 2)
        return yx[:, ::-1].copy()

    def positions(self) -> np.ndarray:
        """Bead positions (x, y), shape (B, 2); ValueError (shown as a message) if none."""
        xy = self.bead_xy()
        if len(xy) == 0:
            raise ValueError(
                "No beads: press 'Find beads' (or add points to the `beads` layer) first."
            )
        return xy

    def reference(self) -> list[int]:
        """Indices of the beads marked as reference (stuck) beads."""
        if BEADS not in self.viewer.layers:
            return []
        layer = self.viewer.layers[BEADS]
        if "reference" not in layer.features or len(layer.data) == 0:
            return []
        return [int(i) for i in np.flatnonzero(np.asarray(layer.features["reference"]))]

    # -- 1. beads -----------------------------------------------------------------
    def find(self, *_: Any) -> None:
        try:
            layer = self._layer()
            t = self._current_frame(layer.data.shape[0])
            # locate_beads is find_beads with the left-out candidates and their reasons;
            # roi_size drops beads whose ROIs would overlap or leave the frame.
            found = tracking.locate_beads(
                np.asarray(layer.data[t]), radius=self.radius.value,
                roi_size=int(self.roi_size.value),
            )  # fmt: skip
        except (ValueError, TypeError) as exc:
            self._error(exc)
            return
        x, y = found.x, found.y
        left_out = _left_out(found.rejected_reason, int(self.roi_size.value))
        if len(x) == 0:
            if BEADS in self.viewer.layers:
                self.viewer.layers[BEADS].data = np.empty((0, 2))
                self._draw_rois()
            self.status.value = (
                f"no beads kept in frame {t} of {layer.name!r}{left_out}"
                if left_out
                else f"no beads found in frame {t} of {layer.name!r} (find radius "
                f"{self.radius.value:g} px): check the image and the radius, or add beads "
                "by clicking in the `beads` layer"
            )
            return
        # Points (y, x) with the features bead and reference (none marked yet).
        before = self.viewer.layers[BEADS] if BEADS in self.viewer.layers else None  # noqa: SIM401
        pts = upsert(self.viewer, found.to_points(name=BEADS), **self._geometry(2), **BEAD_STYLE)
        if pts is not before:
            pts.events.data.connect(self._draw_rois)
            pts.selected_data.events.items_changed.connect(self._on_select)
        self._draw_rois()
        self.status.value = f"found {len(x)} beads in frame {t}" + left_out
        self._warn_edges()
        self.update_preview()
        self._check_stuck(layer, t, np.column_stack([x, y]))

    def _check_stuck(self, layer: Any, t: int, xy: np.ndarray) -> None:
        """Flag the beads stuck to the surface from their motion over the next
        STUCK_FRAMES frames (flag_stuck_beads, in a worker) and mark them as reference
        beads, as `camtrack find-beads` does; the user can still toggle them."""
        n = min(STUCK_FRAMES, int(layer.data.shape[0]) - t)
        self._stuck_stale = False
        if n < 3 or len(xy) == 0:
            return
        roi = int(self.roi_size.value)
        self._stuck_worker = self._spawn(
            tracking.flag_stuck_beads, layer.data, xy, roi_size=roi, n_frames=n, first_frame=t,
            mode="fast",
            _connect={
                "returned": while_alive(partial(self._stuck_done, xy.copy())),
                "errored": while_alive(self._stuck_failed),
            },
        )  # fmt: skip

    def _stuck_done(self, xy: np.ndarray, res: tracking.StuckBeads) -> None:
        self._stuck_worker = None
        if not np.array_equal(self.bead_xy(), xy) or self._stuck_stale:
            # The beads changed meanwhile, or a run started with the reference beads as
            # they were: marking others now would misdescribe that run.
            return
        pts = self.viewer.layers[BEADS]
        features = pts.features.copy()
        features["reference"] = np.asarray(res.stuck, dtype=bool)
        pts.features = features
        pts.refresh_colors()
        ref = res.reference
        self.status.value += (
            f"; stuck (from their motion over {res.n_frames} frames), so reference beads "
            f"for drift: {ref}" if ref else f"; none stuck over {res.n_frames} frames "
            "(no drift reference: mark stuck beads with 'Toggle reference')"
        )  # fmt: skip

    def _stuck_failed(self, exc: BaseException) -> None:
        self._stuck_worker = None
        self.status.value += f"; stuck beads not checked ({exc})"

    def toggle_reference(self, *_: Any) -> None:
        if len(self.bead_xy()) == 0:
            self._error(ValueError("No beads yet: press 'Find beads' first."))
            return
        pts = self.viewer.layers[BEADS]
        selected = sorted(pts.selected_data)
        if not selected:
            self._error(ValueError("Select beads in the `beads` layer first (select mode)."))
            return
        ref = np.asarray(pts.features["reference"], dtype=bool).copy()
        ref[selected] = ~ref[selected]
        features = pts.features.copy()
        features["reference"] = ref
        pts.features = features
        pts.refresh_colors()
        self.status.value = f"reference beads: {np.flatnonzero(ref).tolist()}"

    def _number_beads(self) -> None:
        """Keep the ``bead`` feature (the number drawn next to each bead, as in the
        trace legend) equal to the point's index after adding or deleting beads."""
        pts = self.viewer.layers[BEADS]
        n = len(pts.data)
        current = pts.features.get("bead")
        if current is not None and np.array_equal(np.asarray(current), np.arange(n)):
            return
        features = pts.features.copy()
        features["bead"] = np.arange(n)
        if "reference" not in features:
            features["reference"] = np.zeros(n, dtype=bool)
        pts.features = features
        pts.refresh_text()

    def _draw_rois(self, *_: Any) -> None:
        if BEADS not in self.viewer.layers:
            return
        self._number_beads()
        yx = self.bead_xy()[:, ::-1]
        half = self.roi_size.value / 2.0
        boxes = [
            np.array([[y - half, x - half], [y - half, x + half], [y + half, x + half],
                      [y + half, x - half]])
            for y, x in yx
        ]  # fmt: skip
        if ROIS in self.viewer.layers:
            shapes = self.viewer.layers[ROIS]
            shapes.data = boxes
            if boxes:  # napari cannot set the shape type of no shapes
                shapes.shape_type = ["rectangle"] * len(boxes)
        else:
            shapes = self.viewer.add_shapes(
                boxes, shape_type="rectangle", name=ROIS, **self._geometry(2), edge_color="#ffb347",
                face_color="transparent", edge_width=1.0,
            )  # fmt: skip
        # Keep the points on top, so clicks add or select beads.
        if BEADS in self.viewer.layers:
            self.viewer.layers.selection.active = self.viewer.layers[BEADS]

    def _warn_edges(self) -> None:
        layer = self.image.value
        if layer is None or len(self.bead_xy()) == 0:
            return
        half = self.roi_size.value / 2.0
        close = np.flatnonzero(~self._inside(self.bead_xy(), layer.data.shape)).tolist()
        if close:
            from napari.utils.notifications import show_warning

            show_warning(
                f"Beads {close} lie within roi_size/2 = {half:g} px of the frame edge: they "
                "give NaN while there. Delete them or lower the ROI size."
            )

    def _inside(self, xy: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """(B,) bool: beads at least roi_size/2 from every edge of frames of ``shape``."""
        ny, nx = shape[-2:]
        half = self.roi_size.value / 2.0
        x, y = xy[:, 0], xy[:, 1]
        return (x >= half) & (y >= half) & (x <= nx - 1 - half) & (y <= ny - 1 - half)

    def _done(self) -> None:
        super()._done()
        self.lut_button.enabled = True

    # -- 3. tracking --------------------------------------------------------------
    # -- camera ------------------------------------------------------------------
    def _on_camera(self, *_: Any) -> None:
        self.camera_file.visible = self.camera.value == "file"

    def _on_advanced(self, *_: Any) -> None:
        for w in (self.centre, self.profile):
            w.visible = bool(self.advanced.value)

    def camera_model(self) -> tracking.CameraModel | None:
        """The picked camera as a CameraModel (None for 'none'); raises ValueError with
        what to do when the source holds nothing usable."""
        source = self.camera.value
        if source == "none":
            return None
        if source == "file":
            path = Path(str(self.camera_file.value or ""))
            if not str(self.camera_file.value or "").strip() or not path.is_file():
                raise ValueError("'camera' is 'file': pick a saved calibration in 'camera file'.")  # fmt: skip
            return tracking.as_camera_model(path)
        from camtrack.napari._widgets._gain import GainWidget

        for widget in self.viewer.window.dock_widgets.values():
            # Its 'convert with' choice: the scalar fit or the per-pixel sCMOS maps.
            if isinstance(widget, GainWidget) and widget.camera() is not None:
                return tracking.as_camera_model(widget.camera())
        raise ValueError(
            "'camera' is 'Camera gain widget' but no Camera gain widget holds a result: run "
            "it (with a dark stack, for offset and read noise), make or load per-pixel maps "
            "in its Per-pixel calibration section, or pick a saved file."
        )

    def _current_frame(self, n_frames: int) -> int:
        return int(np.clip(self.viewer.dims.current_step[0], 0, n_frames - 1))

    def timing(self) -> dict[str, float | None]:
        """``fs_hz`` and ``exposure_s`` from the fields (0: unknown, None)."""
        return {k: float(getattr(self, k).value) or None for k in ("fs_hz", "exposure_s")}

    def compute(
        self, stack: Any, positions: np.ndarray, reference: list[int], progress: Any = None,
        zlut: Any = None, camera: Any = None, timing: dict | None = None,
    ):  # fmt: skip
        return tracking.track_beads(
            stack, positions, roi_size=int(self.roi_size.value), zlut=zlut,
            reference=reference or None, mode=self.mode.value, centre=self.centre.value,
            progress=progress, scheduler=self.scheduler.value.strip() or None, camera=camera,
            **(timing or {}),
        )  # fmt: skip

    def track(self, *_: Any) -> None:
        try:
            layer = self._layer()
            positions = self.positions()
            reference = self.reference()
            first, last = int(self.first_frame.value), int(self.last_frame.value)
            if last < first:
                raise ValueError(f"`last frame` ({last}) is before `first frame` ({first}).")
            if self.zlut is not None and self.zlut.roi_size != self.roi_size.value:
                raise ValueError(
                    f"The Z-LUT was built for ROI size {self.zlut.roi_size} px, not "
                    f"{self.roi_size.value}: rebuild it or set the ROI size back."
                )
            zlut = self.tracking_lut(len(positions))
            camera = self.camera_model()
            timing = self.timing()
            check_timing(**timing)  # before the run, so the message comes at once
        except (ValueError, TypeError, OSError) as exc:
            self._error(exc)
            return
        self.lut_button.enabled = False
        pending = self._stuck_worker is not None
        self._stuck_stale = pending  # this run keeps the reference beads it starts with
        self._start(
            self.compute,
            layer.data[first : last + 1],
            positions,
            reference,
            self._progress("bead tracking"),
            zlut,
            camera,
            timing,
            returned=lambda res, info=(reference, self.lut_used): self._show(
                res, layer.name, first, info
            ),
            status=f"tracking {len(positions)} beads, frames {first}-{last} ..."
            + (" (the stuck-bead check was still running: reference beads as marked)"
               if pending else ""),
        )  # fmt: skip

    def _show(
        self, result: tracking.TrackResult, name: str, first: int, info: tuple = ([], None)
    ) -> None:
        self.result = result
        self._tracked_source = (name, first)
        self._tracked_info = info  # (reference beads, Z-LUT description(s)) for the export
        # Points (t, y, x) with the features bead, z, x_err, y_err, z_err, quality and
        # the acquisition in the metadata (the Forces widget reads fs_hz from there).
        points = result.to_points(first, name=TRACKED)
        before = self.viewer.layers[TRACKED] if TRACKED in self.viewer.layers else None  # noqa: SIM401
        pts = upsert(self.viewer, points, **self._geometry(3))
        if pts is not before:
            pts.selected_data.events.items_changed.connect(self._on_select)
        upsert(self.viewer, result.to_tracks(first, name=TRACKS), **self._geometry(3))
        tab = result.to_table()
        t = tab["frame"].astype(np.float64) + first
        has_z = points[1]["face_color"] == "z"  # coloured by z when any z is known
        if PREVIEW in self.viewer.layers:
            self.viewer.layers.remove(PREVIEW)
        self.preview.value = False
        self._plot_z(t, tab)
        self.export_button.enabled = True
        n_nan = len(tab["x"]) - len(points[0])
        self.status.value = (
            f"tracked {len(tab['x'])} bead-frames"
            + (f" ({n_nan} NaN: beads at the edge or lost)" if n_nan else "")
            + ("" if has_z else "; no Z-LUT, so no z: the plot shows x(t)")
        )

    def _plot_z(self, t: np.ndarray, tab: dict) -> None:
        """Dock the trace plot and draw z(t) (or x(t), y(t): the 'trace' field)."""
        from camtrack.napari._plots import LinePlot

        self._traces = (t, tab)
        if self.z_plot is None:
            self.z_plot = LinePlot()
            dock = self.viewer.window.add_dock_widget(self.z_plot, name="z(t)", area="bottom")
            if self._lut_dock is not None:  # the traces get two thirds of the bottom row
                share_width(self._lut_dock, dock, (1, 2))
        self._replot()

    def _replot(self, *_: Any) -> None:
        if self.z_plot is None or getattr(self, "_traces", None) is None:
            return
        t, tab = self._traces
        what = self.trace.value
        if what == "z" and not np.isfinite(tab["z"]).any():
            # No z (tracked without a Z-LUT): show x(t), and say so in the selector.
            self.trace.value = what = "x"
        unit = self.result.units if what == "z" else "px"
        scale = float(self.nm_per_px.value) if what in ("x", "y") else 0.0
        fs_hz = getattr(self.result, "fs_hz", None)
        time = t / fs_hz if fs_hz else t
        err = tab.get(f"{what}_err") if self.error_band.value else None
        series, bands = {}, {}
        for b in np.unique(tab["bead"]):
            sel = tab["bead"] == b
            values = tab[what][sel]
            if scale > 0:  # displacement from the bead's first tracked position, in nm
                finite = values[np.isfinite(values)]
                values = (values - (finite[0] if finite.size else 0.0)) * scale
            label = f"bead {int(b)}"
            series[label] = (time[sel], values)
            if err is not None:  # +- 2 standard errors, in the plotted unit
                half = 2.0 * err[sel] * (scale if scale > 0 else 1.0)
                bands[label] = (values - half, values + half)
        picked = {f"bead {b}" for b in self.selected_beads} or None
        ylabel = f"{what} displacement (nm)" if scale > 0 else f"{what} ({unit})"
        self.z_plot.plot_series(
            series, xlabel="time (s)" if fs_hz else "frame", ylabel=ylabel,
            title=f"{what}(t) per bead" + (", ±2 s.e. shaded" if bands else ""),
            highlight=picked, bands=bands or None,
        )  # fmt: skip

    def _on_select(self, *_: Any) -> None:
        """Selecting beads (in ``beads`` or ``tracked``) highlights their traces."""
        picked: set[int] = set()
        if BEADS in self.viewer.layers:
            picked |= {int(i) for i in self.viewer.layers[BEADS].selected_data}
        if TRACKED in self.viewer.layers:
            pts = self.viewer.layers[TRACKED]
            idx = sorted(pts.selected_data)
            if idx:
                picked |= {int(b) for b in np.asarray(pts.features["bead"])[idx]}
        if picked != self.selected_beads:
            self.selected_beads = picked
            self._replot()

    # -- 4. preview ---------------------------------------------------------------
    def update_preview(self, *_: Any) -> None:
        if not self.preview.value or self.image.value is None or len(self.bead_xy()) == 0:
            return
        try:
            self.preview_frame()
        except (ValueError, TypeError, OSError) as exc:
            self._error(exc)

    def preview_frame(self) -> tracking.TrackResult:
        """Track the beads in the current frame only; show them as ``tracked (preview)``."""
        layer = self._layer()
        t = self._current_frame(layer.data.shape[0])
        xy = self.positions()
        size = int(self.roi_size.value)
        half = size / 2.0
        inside = self._inside(xy, layer.data.shape)
        if not inside.any():
            raise ValueError(f"Every bead lies within roi_size/2 = {half:g} px of the edge.")
        frame = np.asarray(layer.data[t])
        rois, x0, y0 = tracking.crop_rois(frame, xy[inside, 0], xy[inside, 1], size)
        zlut = self.zlut if self.zlut is not None and self.zlut.roi_size == size else None
        # The engine's own check of maps against the frames (as track_beads makes it).
        camera = frame_camera(self.camera_model(), {}, frame.shape)
        if camera is not None and camera.shape is not None:
            camera = camera.crop(y0, x0, size)  # the maps under each ROI
        res = tracking.track_rois(rois, zlut=zlut, mode=self.mode.value, camera=camera,
                                  centre=self.centre.value)  # fmt: skip
        note = ""
        if self.zlut is not None and zlut is None:
            note = (
                f"; no z: the Z-LUT is for ROI size {self.zlut.roi_size} px, not {size} (set "
                "the ROI size back or rebuild the Z-LUT)"
            )
        # Points (y, x) in the frame: each ROI's position plus its corner.
        points = res.to_points(origin=(y0, x0), name=PREVIEW, face_color="#ff6f61")
        upsert(self.viewer, points, **self._geometry(2))
        self.status.value = f"preview: frame {t}, {int(inside.sum())} beads" + note
        return res

    # -- 5. export ----------------------------------------------------------------
    def export(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the tracking table to ``.csv`` or ``.h5`` (atomically; an existing file
        only with ``overwrite=True``; never the input)."""
        if self.result is None:
            raise ValueError("Nothing to export yet: track first.")
        name, first = self._tracked_source
        layer = self.viewer.layers[name] if name in self.viewer.layers else None  # noqa: SIM401
        inputs = [getattr(getattr(layer, "source", None), "path", None)]
        if layer is not None:
            inputs.append(layer.metadata.get("path"))
        nm_per_px = float(self.nm_per_px.value) or _nm_per_px(layer)
        reference, zlut = getattr(self, "_tracked_info", ([], None))
        return self.result.save(
            path, nm_per_px=nm_per_px, first_frame=first, source=name,
            reference=reference, zlut=zlut,
            overwrite=overwrite, protect=[p for p in inputs if p],
        )  # fmt: skip

    def _ask_export(self, *_: Any) -> None:
        # The file dialog has asked before replacing an existing file.
        self._file_action("Export tracking table", "tracking.csv", "CSV (*.csv);;HDF5 (*.h5)",
                          partial(self.export, overwrite=True), save=True)  # fmt: skip

    def _file_action(
        self, title: str, default: str, filters: str, action: Any, *, save: bool
    ) -> None:
        from qtpy.QtWidgets import QFileDialog

        ask = QFileDialog.getSaveFileName if save else QFileDialog.getOpenFileName
        name, _ = ask(self.native, title, default, filters)
        if not name:
            return
        try:
            action(name)
        except (ValueError, TypeError, OSError) as exc:
            self._error(exc)
            return
        self.status.value = f"{title.lower()}: {Path(name).name}"


def _nm_per_px(layer: Any) -> float | None:
    """Pixel size of a layer: its metadata (reader or simulator truth), else None."""
    if layer is None:
        return None
    value = layer.metadata.get("nm_per_px")
    if value is None:
        truth = layer.metadata.get("truth") or {}
        optics = truth.get("optics") if isinstance(truth, dict) else None
        if isinstance(optics, dict):
            value = optics.get("nm_per_px")
    return float(value) if value else None


def _left_out(reasons: Any, roi_size: int) -> str:
    """``'; left out 3 (2 roi overlap, 1 edge) ...'`` for the status, or ``''``."""
    if len(reasons) == 0:
        return ""
    counts: dict[str, int] = {}
    for why in reasons:
        counts[why] = counts.get(why, 0) + 1
    parts = ", ".join(f"{n} {why}" for why, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    hint = (
        f" at ROI size {roi_size} px: lower the ROI size to keep them"
        if {"roi overlap", "edge"} & set(counts)
        else ""
    )
    return f"; left out {len(reasons)} ({parts}){hint}"
