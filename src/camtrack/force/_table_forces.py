"""Forces from a tracking table: the pipeline behind the Forces widget and ``camtrack
force``. A long table in (frame, bead, x, y, z, and optionally x_nm, y_nm, reference,
a magnet column), forces per bead (and per plateau) out. No Qt here.

The table is the long form every camtrack tracker writes, from the ``tracked`` points
layer or a file saved by ``TrackResult.save``. Each step is one engine call:
:func:`traces_from_table` pivots and removes the reference beads' drift,
:func:`extension_nm` gives the extension from z, :func:`plateau_labels` the plateaus
from a magnet column, :func:`calibrate_force` (one plateau) or :func:`force_extension`
(several, then the worm-like-chain fit) the forces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from camtrack.force._calibrate import calibrate_force
from camtrack.force._physics import FOCAL_SHIFT, extension_nm, pendulum_length_nm
from camtrack.force._plateaus import force_extension, plateau_labels
from camtrack.force._table import traces_from_table

__all__ = [
    "DRAG_MODES",
    "SURFACES",
    "ForceParams",
    "TableForces",
    "forces_from_table",
    "parse_beads",
    "parse_ranges",
]

_WLC_FIELDS = ("persistence_nm", "persistence_err_nm", "contour_nm", "contour_err_nm",
               "chi2_reduced")  # fmt: skip
DRAG_MODES = ("fitted", "fixed: height_nm", "fixed: extension + radius")
SURFACES = ("reference beads", "surface_nm")


@dataclass(frozen=True)
class ForceParams:
    """What :func:`forces_from_table` needs besides the table; names follow the
    engine's keywords (0 means "not given").

    Attributes
    ----------
    fs_hz, exposure_s, method, temperature_k, noise_nm
        As in :func:`calibrate_force` (``noise_nm`` only with one plateau).
    nm_per_px : float or None
        Pixel size, when the table has no ``x_nm`` / ``y_nm``.
    axis : {"x", "y"}
        The sideways axis.
    length_nm : float
        Pendulum length; 0: extension + radius (parallel) from z, a surface and
        ``radius_nm``.
    radius_nm, height_nm : float
        Bead radius; bead centre above the surface (for ``drag="fixed: height_nm"``).
    drag : one of DRAG_MODES
        "fitted", "fixed: height_nm" or "fixed: extension + radius" (Faxén's drag).
    direction : {"parallel", "perpendicular"}
        Motion along or across the field (:func:`pendulum_length_nm`).
    surface : one of SURFACES
        The surface z: the median of the reference beads' z, or ``surface_nm``.
    focal_shift : float
        z of the objective to z of the bead (:data:`FOCAL_SHIFT`).
    plateaus : tuple of (first, last) frame ranges
        Plateaus marked by hand (inclusive ranges); empty: one plateau, unless
        ``magnet_column`` gives them.
    magnet_column : str or None
        A column of the table with the magnet position (or any set point) per frame:
        plateaus from :func:`plateau_labels` (runs at one value of at least 16 frames).
    drift : bool
        Subtract the reference beads' drift.
    """

    fs_hz: float
    exposure_s: float | None
    nm_per_px: float | None
    axis: str = "x"
    length_nm: float = 0.0
    radius_nm: float = 0.0
    height_nm: float = 0.0
    drag: str = "fitted"
    direction: str = "parallel"
    method: str = "psd"
    temperature_k: float = 296.15
    surface: str = "reference beads"
    surface_nm: float = 0.0
    focal_shift: float = FOCAL_SHIFT
    plateaus: tuple[tuple[int, int], ...] = ()
    magnet_column: str | None = None
    drift: bool = True
    noise_nm: float | None = None


@dataclass(eq=False)
class TableForces:
    """One run's results, host arrays.

    Attributes
    ----------
    rows : list of dict
        One per (bead, plateau): bead, plateau, force_pn, force_lo_pn, force_hi_pn,
        corner_hz, extension_nm, ..., as :meth:`ForceResult.to_rows` plus the geometry.
    fits : dict
        (bead, plateau) -> (trace, ForceResult), for :func:`force_diagnostics`.
    frame : ndarray of int
        Frame numbers of the traces' columns.
    labels : ndarray of int
        Plateau per frame (-1: in no plateau).
    extension : dict
        bead -> extension per frame, nm (absent without z).
    position : dict
        bead -> drift-corrected sideways position per frame, nm.
    wlc : dict
        bead -> WLCResult, or the reason there is none (str).
    reference : ndarray of int
        Beads used as reference (left out).
    notes : list of str
    params : ForceParams
        What the forces were computed with (kept for :meth:`save`).
    """

    rows: list[dict[str, Any]]
    fits: dict[tuple[int, int], tuple[np.ndarray, Any]] = field(repr=False)
    frame: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)
    extension: dict[int, np.ndarray] = field(repr=False)
    position: dict[int, np.ndarray] = field(repr=False)
    wlc: dict[int, Any]
    reference: np.ndarray
    notes: list[str]
    params: ForceParams = field(repr=False)

    def point_features(self, bead: Any, frame: Any) -> dict[str, np.ndarray]:
        """force_pn, force_lo_pn, force_hi_pn (and extension_nm) for points given by
        bead and frame: the force of that bead on that frame's plateau, NaN elsewhere
        (reference beads, frames between plateaus)."""
        bead = np.asarray(bead).astype(int)
        frame = np.asarray(frame).astype(int)
        idx = np.clip(frame - self.frame[0], 0, self.frame.size - 1)
        inside = (frame >= self.frame[0]) & (frame <= self.frame[-1])
        plateau = np.where(inside, self.labels[idx], -1)
        out = {k: np.full(bead.size, np.nan) for k in ("force_pn", "force_lo_pn", "force_hi_pn")}
        for row in self.rows:
            sel = (bead == row["bead"]) & (plateau == row["plateau"])
            for k in out:
                out[k][sel] = row[k]
        ext = np.full(bead.size, np.nan)
        for b, trace in self.extension.items():
            sel = (bead == b) & inside
            ext[sel] = trace[idx[sel]]
        if self.extension:
            out["extension_nm"] = ext
        return out

    def plateau_of(self, frame: int) -> int:
        """The plateau of a frame (-1 outside every plateau and the traces)."""
        i = int(frame) - int(self.frame[0])
        return int(self.labels[i]) if 0 <= i < self.labels.size else -1

    @property
    def n_plateaus(self) -> int:
        """How many plateaus the rows cover (1: one force per bead)."""
        return len({int(r["plateau"]) for r in self.rows}) or 1

    def columns(self) -> dict[str, np.ndarray]:
        """The rows as columns (for the export and the table)."""
        keys = list(self.rows[0]) if self.rows else []
        return {k: np.asarray([r[k] for r in self.rows]) for k in keys}

    def save(
        self, path: str | Path, *, source: str = "", overwrite: bool = False, protect: Any = ()
    ) -> Path:
        """Write the rows to ``.csv`` or ``.h5`` (``forces/<column>`` datasets; the
        inputs and the WLC fits as attributes), atomically; never over ``protect``."""
        return _write(path, self, self.params, source=source, overwrite=overwrite,
                      protect=list(protect))  # fmt: skip


def parse_ranges(text: str) -> tuple[tuple[int, int], ...]:
    """Frame ranges "0-599, 600-1199" (inclusive) -> ((0, 599), (600, 1199))."""
    out = []
    for part in re.split(r"[,;]", text):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(r"(\d+)\s*(?:-|:|\.\.)\s*(\d+)", part)
        if m is None or int(m.group(2)) < int(m.group(1)):
            raise ValueError(
                f"`plateaus` must be frame ranges like '0-599, 600-1199' (first-last, "
                f"inclusive); got {part!r}."
            )
        out.append((int(m.group(1)), int(m.group(2))))
    return tuple(out)


def parse_beads(text: str) -> list[int]:
    """Bead numbers "0, 3 5" -> [0, 3, 5]."""
    parts = [p for p in re.split(r"[,;\s]+", text.strip()) if p]
    if not all(p.isdigit() for p in parts):
        raise ValueError(
            f"`reference` must be bead numbers separated by commas (e.g. '0, 3'); got {text!r}."
        )
    return [int(p) for p in parts]


def _magnet_labels(table: dict[str, Any], frames: np.ndarray, column: str) -> np.ndarray:
    """Plateau per frame of ``frames`` from the table's magnet column."""
    if column not in table:
        raise ValueError(
            f"`magnet_column` {column!r} is not a column of the table (columns "
            f"{sorted(table)}); add the magnet position per frame to the table or mark "
            "the plateaus as frame ranges."
        )
    frame = np.asarray(table["frame"]).astype(int)
    values = np.asarray(table[column], dtype=float)
    first = np.unique(frame, return_index=True)[1]  # one value per frame (any bead's)
    per_frame = dict(zip(frame[first].tolist(), values[first].tolist(), strict=True))
    return plateau_labels(np.array([per_frame[int(f)] for f in frames]))


def _labels(frames: np.ndarray, ranges: tuple[tuple[int, int], ...]) -> np.ndarray:
    labels = np.full(frames.size, -1 if ranges else 0)
    for k, (a, b) in enumerate(ranges):
        sel = (frames >= a) & (frames <= b)
        if (labels[sel] >= 0).any():
            raise ValueError(f"`plateaus`: range {a}-{b} overlaps an earlier one.")
        if not sel.any():
            raise ValueError(
                f"`plateaus`: range {a}-{b} holds no tracked frame (the table has frames "
                f"{frames[0]}-{frames[-1]})."
            )
        labels[sel] = k
    return labels


def _z_traces(table: dict[str, Any]) -> np.ndarray | None:
    """z per bead (all beads, references included) on the same grid as the x traces."""
    if "z" not in table or not np.isfinite(np.asarray(table["z"], dtype=float)).any():
        return None
    # The same pivot as x: z as the position column, no drift step.
    z = {"frame": table["frame"], "bead": table["bead"], "x_nm": table["z"]}
    return traces_from_table(z, drift=False).x_nm


def _extension(
    table: dict[str, Any], beads_all: np.ndarray, reference: np.ndarray, p: ForceParams
) -> tuple[np.ndarray | None, str]:
    """Extension per frame for every bead in ``beads_all`` order, or None and why."""
    z = _z_traces(table)
    if z is None:
        return None, "no z in the table (tracked without a Z-LUT): no extension"
    if p.surface == "surface_nm":
        radius = p.radius_nm if p.radius_nm > 0 else None
        return extension_nm(z, p.surface_nm, focal_shift=p.focal_shift,
                                  radius_nm=radius), ""  # fmt: skip
    if reference.size == 0:
        return None, (
            "no reference bead for the surface: mark stuck beads in `reference` or set "
            "surface to `surface_nm`; no extension"
        )
    ref_z = z[np.isin(beads_all, reference)]
    with np.errstate(all="ignore"):
        surface = np.nanmedian(ref_z, axis=0) if ref_z.shape[0] > 1 else ref_z[0]
    return extension_nm(z, surface, focal_shift=p.focal_shift), ""


def _drag(p: ForceParams, ext_mean: float) -> dict[str, float]:
    if p.drag == "fitted":
        return {}
    if p.radius_nm <= 0:
        raise ValueError(f"`drag` = {p.drag!r} needs `radius_nm` > 0 (the bead radius).")
    if p.drag == "fixed: height_nm":
        if p.height_nm <= 0:
            raise ValueError(
                "`drag` = 'fixed: height_nm' needs `height_nm` > 0 (bead centre above the "
                "surface, nm)."
            )
        return {"radius_nm": p.radius_nm, "height_nm": p.height_nm}
    if not np.isfinite(ext_mean) or ext_mean <= 0:
        raise ValueError(
            "`drag` = 'fixed: extension + radius' needs the extension (z and a surface); "
            "use 'fixed: height_nm' or 'fitted'."
        )
    return {"radius_nm": p.radius_nm, "height_nm": ext_mean + p.radius_nm}


def _length(p: ForceParams, ext_mean: float, bead: int) -> float:
    if p.length_nm > 0:
        return p.length_nm
    if p.radius_nm <= 0 or not np.isfinite(ext_mean) or ext_mean <= 0:
        raise ValueError(
            f"bead {bead}: `length_nm` is 0 and the pendulum length cannot come from the "
            "extension: give `length_nm`, or z (a Z-LUT), a surface and `radius_nm`."
        )
    return float(pendulum_length_nm(ext_mean, p.radius_nm, p.direction))


def forces_from_table(
    table: dict[str, Any], params: ForceParams, *, reference: Any = (), progress: Any = None
) -> TableForces:
    """Forces for every non-reference bead of a tracking table.

    Parameters
    ----------
    table : mapping of column name to 1-D array
        The long table (:func:`read_table` of an exported file, or ``to_table()``).
    params : ForceParams
        Frame rate, geometry, method, plateaus.
    reference : sequence of int
        Reference (stuck) beads; empty: the table's ``reference`` column, if any.
    progress : callable, optional
        tqdm-like, over the beads.

    Returns
    -------
    TableForces
        One row per bead and plateau, the fits, traces and WLC fits (several plateaus).
    """
    p = params
    reference = [int(b) for b in reference]
    if not table or "bead" not in table:
        raise ValueError(
            "the tracking table needs a 'bead' column (one row per frame and bead); track "
            "with the Bead tracking widget or load a table saved by it."
        )
    tab = dict(table)
    beads_all = np.unique(np.asarray(tab["bead"]).astype(int))
    unknown = sorted(set(reference) - set(beads_all.tolist()))
    if unknown:
        raise ValueError(f"`reference` beads {unknown} are not in the table (beads "
                         f"{beads_all.tolist()}).")  # fmt: skip
    if reference:
        tab["reference"] = np.isin(np.asarray(tab["bead"]).astype(int), reference)
    elif "reference" in tab:
        reference = sorted({int(b) for b in np.asarray(tab["bead"])[
            np.asarray(tab["reference"]).astype(bool)]})  # fmt: skip
    tt = traces_from_table(tab, axis=p.axis, nm_per_px=p.nm_per_px, fs_hz=p.fs_hz,
                           drift=p.drift)  # fmt: skip
    if tt.bead.size == 0:
        raise ValueError("every bead is a reference bead: nothing to calibrate.")
    ref = np.asarray(reference, dtype=int)
    ext_all, why = _extension(tab, beads_all, ref, p)
    if p.magnet_column and p.plateaus:
        raise ValueError("give the plateaus as frame ranges or as `magnet_column`, not both.")
    if p.magnet_column:
        labels = _magnet_labels(tab, tt.frame, p.magnet_column)
        if not (labels >= 0).any():
            raise ValueError(
                f"`magnet_column` {p.magnet_column!r} holds no plateau (a run of 16 or more "
                "frames at one value)."
            )
    else:
        labels = _labels(tt.frame, p.plateaus)
    n_plateaus = int(np.unique(labels[labels >= 0]).size) or 1
    if n_plateaus > 1 and p.noise_nm is not None:
        raise ValueError("`noise_nm` is fitted per plateau with several plateaus; leave it out.")
    notes = list(tt.warnings) + ([why] if why else [])
    if n_plateaus > 1 and ext_all is None:
        raise ValueError(f"several plateaus need the extension per plateau, but {why}.")
    if n_plateaus > 1 and p.radius_nm <= 0:
        raise ValueError(
            "several plateaus need `radius_nm` > 0: the pendulum length per plateau is "
            "extension + radius (parallel) and the drag is fixed at that height."
        )
    rows: list[dict[str, Any]] = []
    fits: dict[tuple[int, int], tuple[np.ndarray, Any]] = {}
    extension: dict[int, np.ndarray] = {}
    position: dict[int, np.ndarray] = {}
    wlc: dict[int, Any] = {}
    common = {"exposure_s": p.exposure_s, "method": p.method, "temperature_k": p.temperature_k}
    single = {} if p.noise_nm is None else {"noise_nm": p.noise_nm}
    beads = list(enumerate(tt.bead.tolist()))
    for i, b in progress(beads, total=len(beads)) if progress else beads:
        x = position[b] = tt.x_nm[i]
        ext = None if ext_all is None else ext_all[np.searchsorted(beads_all, b)]
        if ext is not None:
            extension[b] = ext
        if n_plateaus > 1:
            fe = force_extension(
                x, ext, p.fs_hz, labels, radius_nm=p.radius_nm, direction=p.direction,
                fix_drag=p.drag != "fitted", **common,
            )  # fmt: skip
            for k, res in enumerate(fe.results):
                sel = labels == fe.plateau[k]
                geometry = {
                    "length_nm": pendulum_length_nm(fe.extension_nm[k], p.radius_nm, p.direction),
                    "extension_nm": float(fe.extension_nm[k]),
                    "extension_err_nm": float(fe.extension_err_nm[k]),
                }
                rows.append(_row(b, int(fe.plateau[k]), res, geometry))
                fits[(b, int(fe.plateau[k]))] = (x[sel], res)
            try:
                wlc[b] = fe.fit_wlc()
            except (ValueError, np.linalg.LinAlgError) as exc:
                wlc[b] = f"no WLC fit: {exc}"
            continue
        sel = labels == labels[labels >= 0][0]  # the one plateau (0, or the magnet's)
        with np.errstate(all="ignore"):
            ext_mean = float(np.nanmean(ext[sel])) if ext is not None else np.nan
        res = calibrate_force(x[sel], p.fs_hz, length_nm=_length(p, ext_mean, b),
                                    **_drag(p, ext_mean), **common, **single)  # fmt: skip
        geometry = {"length_nm": float(res.length_nm), "extension_nm": ext_mean,
                    "extension_err_nm": np.nan}  # fmt: skip
        label = int(labels[sel][0])
        rows.append(_row(b, label, res, geometry))
        fits[(b, label)] = (x[sel], res)
    return TableForces(rows, fits, tt.frame, labels, extension, position, wlc, ref, notes, p)


def _row(bead: int, plateau: int, res: Any, geometry: dict[str, float]) -> dict[str, Any]:
    (row,) = res.to_rows()
    row.update(bead=bead, plateau=plateau, **geometry)
    front = ("bead", "plateau", "force_pn", "force_lo_pn", "force_hi_pn")
    return {k: row[k] for k in front} | {k: v for k, v in row.items() if k not in front}


def _write(
    path: str | Path, run: TableForces, p: ForceParams, *, source: str, overwrite: bool,
    protect: list[Any],
) -> Path:  # fmt: skip
    from camtrack import io

    path = Path(path)
    cols = run.columns()
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return io.write_csv(path, cols, overwrite=overwrite, protect=protect)
    if suffix not in (".h5", ".hdf5"):
        raise ValueError(f"Export to .csv or .h5; got {path.name!r}.")
    wlc = {
        str(b): w if isinstance(w, str) else {k: getattr(w, k) for k in _WLC_FIELDS}
        for b, w in run.wlc.items()
    }
    attrs = {
        "source": source, "fs_hz": p.fs_hz,
        "exposure_s": p.exposure_s if p.exposure_s is not None else 1.0 / p.fs_hz,
        "method": p.method, "temperature_k": p.temperature_k, "axis": p.axis,
        "reference": run.reference.tolist(), "plateaus": [list(r) for r in p.plateaus],
        "magnet_column": p.magnet_column or "",
        "wlc": wlc,
    }  # fmt: skip
    # h5py stores no numpy unicode: text columns (method, warnings) as UTF-8 bytes.
    data = {
        f"forces/{k}": np.char.encode(v.astype(str), "utf-8") if v.dtype.kind in "OU" else v
        for k, v in cols.items()
    }
    return io.write_hdf5(path, data, attrs, overwrite=overwrite, protect=protect)
