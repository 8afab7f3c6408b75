"""The "Forces" widget: from tracked beads to force per bead, extension and
force-extension curves (Plugins > camtrack > Forces).

Input: the ``tracked`` points layer of the Bead tracking widget (points (frame, y, x)
with features bead and z) or a table saved by it (CSV / HDF5). *Run* calls
:func:`camtrack.force.calibrate_force` per bead (or :func:`force_extension` when
several plateaus are given) in a thread worker with progress and Cancel. Results: the
force with its 68 % interval per bead in a table and as features of the points layer
(force_pn, force_lo_pn, force_hi_pn, extension_nm), and a docked plot of the picked
bead (PSD and Allan variance with their fits, extension(t), force-extension with the
worm-like-chain fit). *Export* writes the table (CSV or HDF5) atomically; an existing
file is replaced only with *overwrite* ticked.
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
    Table,
)

from camtrack import force
from camtrack._layerdata import points_table
from camtrack.force import (
    DRAG_MODES,
    SURFACES,
    ForceParams,
    TableForces,
    forces_from_table,
    parse_beads,
    parse_ranges,
    read_table,
)
from camtrack.napari._glguard import guard_gl_context_on_layer_removal
from camtrack.napari._widgets._fields import fit_label_column
from camtrack.napari._widgets._threaded import ThreadedRun, message_label
from camtrack.napari._widgets._tooltips import set_tooltips, value_fields

TABLE_FILE = "table file"
# The labels of the fields that are calibrate_force keywords: the registry's, as the
# docs' tables show them.
_LABEL = {p.name: p.label for p in force.METHODS["psd"].params}
# The results table (docked left of the plot): short headers and the force with its
# interval in one column, so it stays narrow (the export has every column).
HEADERS = ("bead", "plateau", "F (pN) [68 %]", "f_c (Hz)", "ext. (nm)", "method", "flag")
# Exposures within this fraction of the frame period are the whole period: the spin box
# rounds 1/fs (1/60 s = 0.0166667 s shows as 0.016667, just above the period).
_FULL_FRAME = 1e-3

TOOLTIPS = {
    "source": "The tracked beads: a points layer (frame, y, x) with a `bead` feature and z, "
    "as the Bead tracking widget makes (`tracked`), or a table file saved by it.",
    "table_file": "A tracking table (CSV or HDF5) exported by Bead tracking or `camtrack "
    "track`: frame, bead, x (px) or x_nm, z, optional reference column.",
    "exposure_s": "Exposure per frame W, s; 0 (or the frame period): the whole frame period.",
    "nm_per_px": "Pixel size in nm in the sample plane (0: unknown; needed unless the table "
    "has x_nm / y_nm columns).",
    "axis": "The sideways axis to calibrate: x is along the magnetic field in most setups.",
    "length_nm": "Pendulum length, nm: extension + radius along the field, the extension "
    "across it. 0: from the measured extension (z) and radius_nm per bead and plateau.",
    "radius_nm": "Bead radius, nm (0: unknown). Gives the pendulum length from the "
    "extension, the surface height from a surface value, and the drag when fixed.",
    "height_nm": "Bead centre above the surface, nm, for drag 'fixed: height_nm' (Faxén).",
    "drag": "fitted: from the spectrum; fixed: Stokes drag with Faxén's wall correction at "
    "height_nm or at extension + radius (recommended for corners above fs/2).",
    "surface": "Where the surface is: the median z of the reference (stuck) beads (the "
    "centre difference is the extension) or the value surface_nm (radius subtracted).",
    "surface_nm": "z of the surface in the Z-LUT's unit (nm), for surface = 'surface_nm'.",
    "reference": "Reference (stuck) beads, by number: their median motion is subtracted "
    "and they are left out. Filled from the `beads` layer; empty: none.",
    "plateaus": "Frame ranges of constant magnet position, e.g. '0-5999, 6000-11999'. Two "
    "or more give force and extension per plateau and a worm-like-chain fit; empty: one "
    "plateau (the whole trace).",
    "magnet_column": "Instead of frame ranges: a column of the table file with the magnet "
    "position (or any set point) per frame; plateaus are its runs of one value, 16 frames "
    "or more (frames while the magnet moves belong to none).",
    "bead": "Which bead (and plateau) the plot shows.",
    "results": "Force per bead (and plateau) with its 68 % interval (lo, hi), corner "
    "frequency, mean extension, method and flag; click a row to plot that bead.",
    "overwrite": "Replace an existing export file (otherwise refused).",
}


class ForceWidget(ThreadedRun, Container):
    """Magnetic-tweezers forces from tracked beads (Plugins > camtrack > Forces)."""

    def __init__(self, napari_viewer: Any) -> None:
        self.viewer = napari_viewer
        guard_gl_context_on_layer_removal(napari_viewer)  # docs/known-issues.md
        self.source = ComboBox(label="Tracking", choices=self._sources)
        self.table_file = FileEdit(label="Table file", mode="r", filter="*.csv *.h5 *.hdf5")
        self.fs_hz = FloatSpinBox(label=_LABEL["fs_hz"], value=0.0, min=0.0, max=1e6)
        self.exposure_s = FloatSpinBox(label=_LABEL["exposure_s"], value=0.0,
                                       min=0.0, max=100.0, step=0.0001)  # fmt: skip
        self.exposure_s.native.setDecimals(6)
        self.nm_per_px = FloatSpinBox(label="Pixel size (nm)", value=0.0, min=0.0, max=1e5)
        self.axis = ComboBox(label="Axis", choices=["x", "y"], value="x")
        self.direction = ComboBox(label="Direction", choices=["parallel", "perpendicular"])
        self.length_nm = FloatSpinBox(label=_LABEL["length_nm"], value=0.0,
                                      min=0.0, max=1e6)  # fmt: skip
        self.radius_nm = FloatSpinBox(label=_LABEL["radius_nm"], value=0.0, min=0.0, max=1e5)
        self.drag = ComboBox(label="Drag", choices=DRAG_MODES, value="fitted")
        self.height_nm = FloatSpinBox(label=_LABEL["height_nm"], value=0.0, min=0.0, max=1e6)
        self.surface = ComboBox(label="Surface", choices=SURFACES, value="reference beads")
        self.surface_nm = FloatSpinBox(label="Surface z (nm)", value=0.0, min=-1e7, max=1e7)
        self.focal_shift = FloatSpinBox(label="Focal shift", value=force.FOCAL_SHIFT,
                                        min=0.01, max=2.0, step=0.001)  # fmt: skip
        self.reference = LineEdit(label="Reference beads", value="")
        self.plateaus = LineEdit(label="Plateaus (frames)", value="")
        self.magnet_column = LineEdit(label="Plateaus from column", value="")
        # calibrate_force's methods, from the registry (camtrack.force.METHODS).
        self.method = ComboBox(label="Method", choices=list(force.METHODS.gui()), value="psd")
        self.temperature_k = FloatSpinBox(label=_LABEL["temperature_k"], value=296.15, min=1.0,
                                          max=1000.0)  # fmt: skip
        self.run_button = PushButton(text="Run")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.bead = ComboBox(label="Plot", choices=[])
        self.results = Table(value={c: [] for c in HEADERS})
        self.results.read_only = True
        self.results.native.setMinimumSize(440, 120)  # every column, the header, 3 rows
        # Cells are formatted text (3 significant digits); magicgui's delegate would
        # print every number with 4 decimals.
        from qtpy.QtWidgets import QStyledItemDelegate

        self.results.native.setItemDelegate(QStyledItemDelegate(self.results.native))
        self.results.native.verticalHeader().setVisible(False)  # the bead column says it
        self.overwrite = CheckBox(label="Overwrite", value=False)
        self.export_button = PushButton(text="Export forces", enabled=False)
        self.status = message_label("")
        super().__init__(
            widgets=[
                self.source, self.table_file, self.fs_hz, self.exposure_s, self.nm_per_px,
                self.axis, self.direction, self.length_nm, self.radius_nm, self.drag,
                self.height_nm, self.surface, self.surface_nm, self.focal_shift,
                self.reference, self.plateaus, self.magnet_column, self.method, self.temperature_k,
                self.run_button, self.cancel_button, self.status, self.bead, self.overwrite,
                self.export_button,
            ],
        )  # fmt: skip
        self.start_button = self.run_button
        self._init_threaded()
        fit_label_column(self)  # the labels as napari draws them
        set_tooltips(value_fields(self), (force.calibrate_force, force.extension_nm,
                                          force.pendulum_length_nm), TOOLTIPS)  # fmt: skip
        self.result: TableForces | None = None
        self.params_used: ForceParams | None = None
        self._origin: tuple[str, Any] | None = None
        self.plot = None
        self._plot_dock = None
        self._watched: set[int] = set()
        self.source.changed.connect(self._on_source)
        self.drag.changed.connect(self._on_drag)
        self.surface.changed.connect(self._on_drag)
        self.run_button.changed.connect(self.run)
        self.bead.changed.connect(self._replot)
        self.export_button.changed.connect(self._ask_export)
        self.results.native.itemSelectionChanged.connect(self._on_row)
        self.viewer.layers.events.inserted.connect(self._refresh_sources)
        self.viewer.layers.events.removed.connect(self._refresh_sources)
        self._on_source()
        self._on_drag()

    # -- inputs -------------------------------------------------------------------
    def _sources(self, _widget: Any = None) -> list[Any]:
        from napari.layers import Points

        layers = [
            (layer.name, layer)
            for layer in self.viewer.layers
            if isinstance(layer, Points) and "bead" in layer.features
            and getattr(layer.data, "shape", (0, 0))[-1] == 3
        ]  # fmt: skip
        return [*layers, (TABLE_FILE, None)]

    def _refresh_sources(self, *_: Any) -> None:
        self.source.reset_choices()
        # A tracking layer that appears while no table file is chosen becomes the input
        # (the widget was opened before tracking, as the demo docks it).
        layers = [v for v in self.source.choices if v is not None]
        no_file = Path(str(self.table_file.value or ".")) == Path(".")
        if self.source.value is None and layers and no_file:
            self.source.value = layers[-1]

    def _on_source(self, *_: Any) -> None:
        layer = self.source.value
        self.table_file.visible = layer is None
        if layer is None:
            return
        if id(layer) not in self._watched:  # selecting a point plots its bead
            self._watched.add(id(layer))
            layer.selected_data.events.items_changed.connect(
                lambda *_, ref=layer: self._on_points_selected(ref)
            )
        # The acquisition from the layer, else from an image's metadata (a reader or
        # the simulator put fs_hz, exposure_s, nm_per_px there when the file has them).
        for key in ("fs_hz", "exposure_s", "nm_per_px"):
            value = layer.metadata.get(key) or self._image_metadata(key)
            if value:
                getattr(self, key).value = float(value)
        if "beads" in self.viewer.layers:  # the Bead tracking widget's reference marks
            feats = self.viewer.layers["beads"].features
            if "reference" in feats and "bead" in feats:
                refs = np.asarray(feats["bead"])[np.asarray(feats["reference"], dtype=bool)]
                self.reference.value = ", ".join(str(int(b)) for b in refs)

    def _image_metadata(self, key: str) -> float | None:
        from napari.layers import Image

        from camtrack.napari._widgets._tracking import _nm_per_px

        for layer in self.viewer.layers:
            if not isinstance(layer, Image):
                continue
            value = _nm_per_px(layer) if key == "nm_per_px" else layer.metadata.get(key)
            if value:
                return float(value)
        return None

    def _on_drag(self, *_: Any) -> None:
        self.height_nm.visible = self.drag.value == "fixed: height_nm"
        self.surface_nm.visible = self.surface.value == "surface_nm"

    def params(self) -> ForceParams:
        """The inputs as engine keywords (0 and empty fields mean "not given")."""
        fs = float(self.fs_hz.value)
        if fs <= 0:
            raise ValueError("`fs_hz` (frame rate) must be > 0 Hz; got 0. Enter the camera's "
                             "frame rate.")  # fmt: skip
        w = float(self.exposure_s.value)
        exposure = None if w == 0 or abs(w * fs - 1) <= _FULL_FRAME else w
        return ForceParams(
            fs_hz=fs, exposure_s=exposure, nm_per_px=float(self.nm_per_px.value) or None,
            axis=self.axis.value, length_nm=float(self.length_nm.value),
            radius_nm=float(self.radius_nm.value), height_nm=float(self.height_nm.value),
            drag=self.drag.value, direction=self.direction.value, method=self.method.value,
            temperature_k=float(self.temperature_k.value), surface=self.surface.value,
            surface_nm=float(self.surface_nm.value), focal_shift=float(self.focal_shift.value),
            plateaus=parse_ranges(self.plateaus.value),
            magnet_column=self.magnet_column.value.strip() or None,
        )  # fmt: skip

    def table(self) -> tuple[dict[str, np.ndarray], tuple[str, Any]]:
        """The tracking table (long form) and where it came from ("layer"/"file", ...)."""
        layer = self.source.value
        if layer is None:
            path = Path(str(self.table_file.value))
            if not str(self.table_file.value).strip() or path.is_dir() or path == Path("."):
                raise ValueError("No tracking: pick the `tracked` layer (track beads first) "
                                 "or choose a table file.")  # fmt: skip
            return read_table(path), ("file", path)
        if len(layer.data) == 0:
            raise ValueError(f"The layer {layer.name!r} has no points: track beads first.")
        return points_table(layer.data, layer.features), ("layer", layer.name)

    # -- run ----------------------------------------------------------------------
    def run(self, *_: Any) -> None:
        try:
            params = self.params()
            reference = parse_beads(self.reference.value)
            tab, origin = self.table()
        except (ValueError, TypeError, OSError) as exc:
            self._error(exc)
            return
        n = len(np.unique(tab["bead"])) - len(reference) if "bead" in tab else 0
        self._start(
            partial(forces_from_table, reference=reference,
                    progress=self._progress("forces per bead")),
            tab, params, returned=lambda res: self._show(res, params, origin),
            status=f"forces of {n} beads ...",
        )  # fmt: skip

    def _show(self, run: TableForces, params: ForceParams, origin: tuple[str, Any]) -> None:
        self.result, self.params_used, self._origin = run, params, origin
        cols = run.columns()
        self.results.value = dict(zip(HEADERS, _table_columns(cols), strict=True))
        self.results.native.resizeColumnsToContents()
        self.bead.choices = [
            (f"bead {r['bead']}" + (f", plateau {r['plateau']}" if run.n_plateaus > 1
                                    else ""), (r["bead"], r["plateau"]))
            for r in run.rows
        ]  # fmt: skip
        self._write_features()
        self._dock_plot()
        self._replot()
        self.export_button.enabled = True
        forces = cols["force_pn"]
        n_flag = int(np.sum(cols["flagged"]))
        plateaus = f", {run.n_plateaus} plateaus" if run.n_plateaus > 1 else ""
        self.status.value = (
            f"{len(np.unique(cols['bead']))} beads{plateaus}: median force "
            f"{np.nanmedian(forces):.3g} pN"
            + (f"; {n_flag} flagged (see the warnings in the export)" if n_flag else "")
            + (f"; reference {run.reference.tolist()} left out" if run.reference.size else "")
            + "".join(f"; {note}" for note in run.notes)
        )  # fmt: skip

    def _write_features(self) -> None:
        kind, name = self._origin
        if kind != "layer" or name not in self.viewer.layers:
            return
        layer = self.viewer.layers[name]
        feats = layer.features.copy()
        frame = points_table(layer.data, feats)["frame"]
        for key, value in self.result.point_features(feats["bead"], frame).items():
            feats[key] = value
        layer.features = feats

    def _failed(self) -> None:
        self.result = None
        self.export_button.enabled = False
        self.results.value = {c: [] for c in HEADERS}
        self.bead.choices = []
        if self.plot is not None:
            self.plot.clear("the last run failed: see the message in the panel")

    # -- plot ---------------------------------------------------------------------
    def _dock_plot(self) -> None:
        """Dock the results table and the plot side by side under the canvas (the panel
        is too narrow for the table's columns); again after the user closed the dock
        (napari then unparents, but keeps, the docked widget)."""
        from qtpy.QtWidgets import QSplitter

        from camtrack.napari._force_plot import ForcePlot

        if self.plot is None:
            self.plot = ForcePlot()
            self._plot_dock = QSplitter()
            self._plot_dock.addWidget(self.results.native)
            self._plot_dock.addWidget(self.plot)
            self._plot_dock.setStretchFactor(1, 3)
        if self._plot_dock.parent() is None:
            self.viewer.window.add_dock_widget(self._plot_dock, name="forces", area="bottom")

    def _on_row(self) -> None:
        rows = {i.row() for i in self.results.native.selectedIndexes()}
        choices = list(self.bead.choices)
        if len(rows) == 1 and min(rows) < len(choices):
            self.bead.value = choices[min(rows)]

    def _on_points_selected(self, layer: Any) -> None:
        """Plot the bead (and plateau) of the first selected point of the source layer."""
        idx = sorted(layer.selected_data)
        if self.result is None or not idx or self._origin != ("layer", layer.name):
            return
        b = int(np.asarray(layer.features["bead"])[idx[0]])
        frame = round(float(layer.data[idx[0], 0]))
        k = self.result.plateau_of(frame)
        choices = list(self.bead.choices)
        pick = (b, k) if (b, k) in choices else next((c for c in choices if c[0] == b), None)
        if pick is not None:
            self.bead.value = pick

    def _replot(self, *_: Any) -> None:
        if self.plot is None or self.result is None or self.bead.value is None:
            return
        run, p = self.result, self.params_used
        b, k = self.bead.value
        trace, res = run.fits[(b, k)]
        try:
            diag: Any = force.force_diagnostics(trace, res)
        except ValueError as exc:
            diag = str(exc)
        lo, hi = res.force_ci_pn
        where = f"bead {b}, plateau {k}" if run.n_plateaus > 1 else f"bead {b}"
        title = f"{where}: F = {res.force_pn:.3g} pN [{lo:.3g}, {hi:.3g}]"
        title += f", f_c {res.corner_hz:.3g} Hz"
        if b in run.extension:
            values, label = run.extension[b], "extension (nm)"
        else:
            values, label = run.position[b], f"{p.axis} (nm)"
        fe = None
        if run.n_plateaus > 1:
            rows = [r for r in run.rows if r["bead"] == b]
            fe = {key: np.array([r[key] for r in rows]) for key in
                  ("extension_nm", "extension_err_nm", "force_pn", "force_lo_pn", "force_hi_pn")}  # fmt: skip
        self.plot.show_bead(
            diag, title=title, t_s=run.frame / p.fs_hz, trace=values, trace_label=label,
            plateaus=run.labels, fe=fe, wlc=run.wlc.get(b),
        )  # fmt: skip

    # -- export -------------------------------------------------------------------
    def export(self, path: str | Path, *, overwrite: bool | None = None) -> Path:
        """Write the forces (one row per bead and plateau) to ``.csv`` or ``.h5``,
        atomically; never over the input table. ``overwrite`` defaults to the checkbox."""
        if self.result is None:
            raise ValueError("Nothing to export yet: press Run first.")
        replace = bool(self.overwrite.value) if overwrite is None else overwrite
        kind, origin = self._origin
        return self.result.save(
            path, source=str(origin), overwrite=replace,
            protect=[origin] if kind == "file" else [],
        )  # fmt: skip

    def _ask_export(self, *_: Any) -> None:
        from qtpy.QtWidgets import QFileDialog

        # Our own overwrite rule (the checkbox) replaces the dialog's question.
        name, _ = QFileDialog.getSaveFileName(
            self.native, "Export forces", "forces.csv", "CSV (*.csv);;HDF5 (*.h5)",
            options=QFileDialog.Option.DontConfirmOverwrite,
        )  # fmt: skip
        if not name:
            return
        try:
            out = self.export(name)
        except (ValueError, TypeError, OSError) as exc:
            self._error(exc)
            return
        self.status.value = f"exported forces: {out.name}"


def _table_columns(cols: dict[str, np.ndarray]) -> list[list[Any]]:
    """The results table's columns (see HEADERS) from the run's columns."""

    def g(v: float) -> str:
        return f"{v:.3g}" if np.isfinite(v) else "-"

    force_ci = [f"{g(f)} [{g(lo)}, {g(hi)}]" for f, lo, hi in
                zip(cols["force_pn"], cols["force_lo_pn"], cols["force_hi_pn"], strict=True)]  # fmt: skip
    return [
        [int(b) for b in cols["bead"]], [int(k) for k in cols["plateau"]], force_ci,
        [g(v) for v in cols["corner_hz"]],
        [f"{v:.0f}" if np.isfinite(v) else "-" for v in cols["extension_nm"]],
        [str(m) for m in cols["method"]], ["yes" if f else "" for f in cols["flagged"]],
    ]  # fmt: skip
