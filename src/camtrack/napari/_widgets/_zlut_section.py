"""The Z-LUT part of the Bead tracking widget: z of the calibration planes, one LUT per
calibration bead built in a worker and checked on held-out frames, the LUT layer and
check plot, save and load, and the LUT (or LUTs) used for tracking."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from camtrack import tracking
from camtrack.napari._layers import upsert
from camtrack.tracking._stack import frame_camera

BEADS, LUT = "beads", "Z-LUT"


def is_sweep(layer: Any) -> bool:
    """True for a calibration z-sweep layer: its metadata carries the planes' z
    (``z_nm``, as the sample and the readers of sweeps put it) or says so."""
    meta = getattr(layer, "metadata", None) or {}
    return "z_nm" in meta or meta.get("sample") == "beads_zsweep" or meta.get("kind") == "zsweep"


class ZLutSection:
    """Mixin of :class:`TrackingWidget` (which owns the fields and the thread worker)."""

    def _on_z_source(self, *_: Any) -> None:
        src = self.z_source.value
        for w in (self.z_start, self.z_step):
            w.visible = src == "start + step"
        # A typed list or a file may give one z per plane: frames per plane says how
        # many frames each holds, so the count is checked against the sweep.
        self.frames_per_plane.visible = src in ("start + step", "list", "CSV file")
        self.z_list.visible = src == "list"
        self.z_file.visible = src == "CSV file"

    # -- 2. Z-LUT -----------------------------------------------------------------
    def calibration_z(self, n_frames: int) -> np.ndarray:
        """z of every calibration frame: from the layer's metadata, start + step per
        plane, a typed list or a CSV file (one value per frame or per plane)."""
        layer = self.calibration.value
        src = self.z_source.value
        if src == "metadata":
            z = layer.metadata.get("z_nm")
            if z is None:
                raise ValueError(
                    f"Layer {layer.name!r} has no z in its metadata ('z_nm'): pick another "
                    "source for 'z of the planes' (start + step, list or CSV file)."
                )
            values = np.asarray(z, dtype=np.float64)
            if values.size != n_frames:
                raise ValueError(
                    f"The calibration stack has {n_frames} frames but its metadata holds "
                    f"{values.size} z values; give one z per frame."
                )
        elif src == "start + step":
            per = int(self.frames_per_plane.value)
            if n_frames % per:
                raise ValueError(
                    f"The calibration stack has {n_frames} frames, not a multiple of "
                    f"`frames per plane` ({per})."
                )
            if self.z_step.value == 0:
                raise ValueError("`z step (nm)` is 0: the planes of a sweep differ in z.")
            values = self.z_start.value + self.z_step.value * np.arange(n_frames // per)
        elif src == "list":
            text = self.z_list.value.replace(",", " ").replace(";", " ").split()
            try:
                values = np.array([float(v) for v in text])
            except ValueError:
                raise ValueError(
                    f"`z values` must be numbers separated by commas or spaces; got "
                    f"{self.z_list.value!r}."
                ) from None
        else:
            path = Path(self.z_file.value)
            if not path.is_file():
                raise ValueError(f"`z CSV file` {str(path)!r} is not a file: pick the CSV of z.")
            try:
                values = np.loadtxt(path, delimiter=",", ndmin=2, comments="#")[:, -1]
            except ValueError:
                values = np.loadtxt(path, delimiter=",", ndmin=2, skiprows=1)[:, -1]
        per = None if src == "metadata" else int(self.frames_per_plane.value)
        return tracking.sweep_z(n_frames, values, frames_per_plane=per)

    def calibration_sets(self) -> tuple[list[tuple[str, int | None, Any]], np.ndarray]:
        """([(label, bead index or None, ROIs (F, S, S), camera)], z (F,)): the whole
        frames when they are ROI-sized, else crops around the beads chosen in 'LUT
        beads'; the camera (None, scalars, or maps cut at the crop) goes with them."""
        layer = self.calibration.value
        if layer is None:
            raise ValueError("Pick a calibration z-sweep layer first.")
        data = layer.data
        z = self.calibration_z(int(data.shape[0]))
        size = int(self.roi_size.value)
        if tuple(data.shape[1:]) == (size, size):
            return [("sweep", None, np.asarray(data), self._lut_camera(0, 0, size, data.shape[1:]))], z  # fmt: skip
        if min(data.shape[1:]) < size:
            raise ValueError(
                f"The calibration frames ({data.shape[1]} x {data.shape[2]} px) are smaller "
                f"than the ROI size ({size} px): lower 'roi_size' to at most "
                f"{min(data.shape[1:])}."
            )
        recording = self.image.value
        field = recording is not None and tuple(recording.data.shape[1:]) == tuple(data.shape[1:])
        if not field:
            # A sweep of one bead, larger than the ROI: find that bead in the sweep itself
            # (in its middle plane) and crop around it.
            rois, x0, y0 = _crop_own_bead(data, size, layer.name)
            return [("sweep", None, rois, self._lut_camera(x0, y0, size, data.shape[1:]))], z
        xy = self.positions()
        choice = self.lut_beads.value
        if choice == "all beads":
            beads = list(range(len(xy)))
        elif choice == "selected beads":
            beads = sorted(self.viewer.layers[BEADS].selected_data)
            if not beads:
                raise ValueError("'LUT beads' is 'selected beads' but no bead is selected.")
        else:
            beads = [0]
        # One pass over the sweep, chunk by chunk for a lazy layer: only the beads' ROIs
        # (frames x beads x S x S) are held, never the whole field sweep.
        rois, x0, y0 = tracking.crop_rois(data, xy[beads, 0], xy[beads, 1], size)
        rois = np.asarray(rois)  # frame-major: bead k of frame f is row f * len(beads) + k
        sets = []
        for k, b in enumerate(beads):
            cam = self._lut_camera(int(x0[k]), int(y0[k]), size, data.shape[1:])
            sets.append((f"bead {b}", b, rois[k :: len(beads)], cam))
        return sets, z

    def _lut_camera(self, x0: int, y0: int, size: int, frame: tuple[int, ...]) -> Any:
        """The picked camera for a sweep's ROIs at corner (x0, y0): maps cut there,
        after the engine's check that they cover the sweep's frames (track_beads' and
        ``camtrack zlut``'s)."""
        cam = frame_camera(self.camera_model(), {}, tuple(int(v) for v in frame))
        if cam is None or cam.shape is None:
            return cam
        return cam.crop([y0], [x0], size)

    def build_lut(self, *_: Any) -> None:
        """Build a LUT per calibration bead (in a worker) and check each on held-out frames."""
        try:
            sets, z = self.calibration_sets()
        except (ValueError, TypeError, OSError) as exc:
            self._error(exc)
            return
        self.lut_button.enabled = False
        how = {"mode": self.mode.value, "centre": self.centre.value, "profile": self.profile.value}
        self._start(
            _build_luts, sets, z, how, self._progress("Z-LUT"),
            returned=self._show_luts, status=f"building {len(sets)} Z-LUT(s) ...",
        )  # fmt: skip

    def _show_luts(self, luts: list[tuple[str, int | None, Any, Any]]) -> None:
        self.luts = luts
        best = _best(luts)
        label, _, lut, check = luts[best]
        self.set_lut(lut, stack=[entry[2] for entry in luts])
        sweep = self.calibration.value.name if self.calibration.value is not None else "sweep"
        self.lut_source = f"built from {sweep!r}, {label}, {lut.n_planes} planes"
        self.lut_rms = check.rms
        self._plot_lut_check()
        self.lut_label.value = (
            f"Z-LUT ({label}" + (f", best of {len(luts)}" if len(luts) > 1 else "")
            + f"): {lut.n_planes} planes; {check.summary()}"
        )  # fmt: skip
        self.status.value = f"built {len(luts)} Z-LUT(s)"

    def set_lut(self, lut: tracking.ZLut, *, stack: list[tracking.ZLut] | None = None) -> None:
        """Use ``lut`` for tracking; show it (or every bead's LUT, ``stack``) as a layer of
        profiles vs z (rows: planes, columns: radial bins; a slider over beads)."""
        self.zlut = lut
        if stack is None:
            self.luts = []
        # Tracking with the LUT measures centres as it was built (the engine refuses
        # another centre or profile): the fields follow it.
        for field, value in ((self.centre, lut.centre), (self.profile, lut.profile)):
            if field.value != value:
                field.value = value
        if lut.roi_size != self.roi_size.value:
            old = self.roi_size.value
            self.roi_size.value = lut.roi_size
            from napari.utils.notifications import show_info

            show_info(f"ROI size set from {old} to {lut.roi_size} px, the Z-LUT's ROI size.")
        # Pixel units (rows: planes, columns: radial bins), so the table does not stretch
        # the field's world; the planes' z go into the layer's metadata. Shown once so
        # napari slices it (a layer first added hidden stays "loading" and painting its
        # row in the layer list can abort Qt), then hidden.
        (table,) = lut.to_layers(stack, name=LUT)
        layer = upsert(self.viewer, table, visible=True)
        layer.visible = False
        self.save_lut_button.enabled = True
        self.lut_label.value = (
            f"Z-LUT: {lut.n_planes} planes, {lut.n_bins} bins, roi {lut.roi_size}"
            + ("" if lut.centre == "symmetry" else f", centre {lut.centre}")
            + ("" if lut.profile == "radial" else f", {lut.profile} profile")
        )

    def _plot_lut_check(self) -> None:
        from camtrack.napari._plots import LinePlot

        if self.lut_plot is None:
            self.lut_plot = LinePlot()
            self._lut_dock = self.viewer.window.add_dock_widget(
                self.lut_plot, name="Z-LUT check", area="bottom"
            )
        series = {label: (check.z, check.error) for label, _, _, check in self.luts}
        best = self.luts[_best(self.luts)][0]
        self.lut_plot.plot_series(
            series, xlabel="z of the sweep frame (nm)", ylabel="tracked - true z (nm)",
            title="Z-LUT self-check on held-out calibration frames", highlight={best},
        )  # fmt: skip

    def save_lut(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the Z-LUT (atomically; an existing file only with ``overwrite=True``;
        never a file an open layer was read from)."""
        if self.zlut is None:
            raise ValueError("No Z-LUT yet: build or load one first.")
        # The files the open layers were read from are never written.
        inputs = []
        for layer in self.viewer.layers:
            inputs += [getattr(getattr(layer, "source", None), "path", None),
                       layer.metadata.get("path")]  # fmt: skip
        return self.zlut.save(path, overwrite=overwrite, protect=[p for p in inputs if p])

    def load_lut(self, path: str | Path) -> None:
        self.set_lut(tracking.load_zlut(path))
        self.lut_source = f"file {str(path)!r}"

    def _ask_save_lut(self, *_: Any) -> None:
        # The file dialog has asked before replacing an existing file.
        self._file_action(
            "Save Z-LUT", "zlut.h5", "HDF5 (*.h5);;npz (*.npz)",
            partial(self.save_lut, overwrite=True), save=True,
        )  # fmt: skip

    def _ask_load_lut(self, *_: Any) -> None:
        self._file_action("Load Z-LUT", "", "Z-LUT (*.h5 *.hdf5 *.npz)", self.load_lut, save=False)

    def tracking_lut(self, n_beads: int) -> Any:
        """The LUT for tracking: the best bead's, or one per bead ('use LUT')."""
        if self.zlut is None or self.lut_use.value == "best bead":
            self.lut_used = None if self.zlut is None else getattr(self, "lut_source", "Z-LUT")
            return self.zlut
        per = {b: lut for _, b, lut, _ in self.luts if b is not None}
        missing = [b for b in range(n_beads) if b not in per]
        if missing:
            raise ValueError(
                f"'use LUT' is 'per bead' but beads {missing} have no LUT of their own: set "
                "'LUT beads' to 'all beads' and build the Z-LUT again (the calibration must "
                "be a sweep of the whole field), or use the best bead's LUT."
            )
        sweep = self.calibration.value.name if self.calibration.value is not None else "sweep"
        self.lut_used = [f"built from {sweep!r}, bead {b}" for b in range(n_beads)]
        return [per[b] for b in range(n_beads)]


Z_SOURCES = ["metadata", "start + step", "list", "CSV file"]
LUT_BEADS = ["first bead", "selected beads", "all beads"]


def _build_luts(
    sets: list[tuple[str, int | None, Any, Any]], z: np.ndarray, how: dict[str, str], progress: Any
) -> list[tuple[str, int | None, tracking.ZLut, tracking.ZLutCheck]]:
    """A LUT and its held-out self-check per calibration bead (runs in the worker);
    ``how``: mode, centre and profile."""
    out = []
    for label, bead, rois, camera in progress(sets, total=len(sets)):
        lut = tracking.build_zlut(rois, z, camera=camera, **how)
        out.append((label, bead, lut, tracking.check_zlut(rois, z, camera=camera, **how)))
    return out


def _crop_own_bead(data: Any, size: int, name: str) -> tuple[np.ndarray, int, int]:
    """(F, size, size) crops of a single-bead sweep around its own bead, found in the
    middle frame (a sweep's best-focused planes are near its middle), and their corner
    (x0, y0)."""
    middle = np.asarray(data[data.shape[0] // 2])  # one frame, not the whole sweep
    x, y = tracking.find_beads(middle, radius=max(2.0, size / 6.0))
    half = size / 2.0
    ny, nx = middle.shape
    inside = (x >= half) & (y >= half) & (x <= nx - 1 - half) & (y <= ny - 1 - half)
    if not inside.any():
        raise ValueError(
            f"No bead found at least roi_size/2 = {half:g} px from the edges of the sweep "
            f"{name!r} ({ny} x {nx} px): lower 'roi_size' or crop the sweep around its bead."
        )
    k = int(np.flatnonzero(inside)[0])  # the strongest candidate (find_beads: best first)
    rois, x0, y0 = tracking.crop_rois(data, [x[k]], [y[k]], size)  # lazy: chunk by chunk
    return np.asarray(rois), int(x0[0]), int(y0[0])


def _best(luts: list[tuple[str, int | None, Any, Any]]) -> int:
    """Index of the best LUT: the widest unambiguous range, then the lowest RMS."""

    def key(entry: tuple[str, int | None, Any, Any]) -> tuple[float, float]:
        check = entry[3]
        if check.unambiguous_range is None:
            return (0.0, float("inf"))
        lo, hi = check.unambiguous_range
        rms = check.rms if np.isfinite(check.rms) else float("inf")
        return (-(hi - lo), rms)

    return min(range(len(luts)), key=lambda i: key(luts[i]))
