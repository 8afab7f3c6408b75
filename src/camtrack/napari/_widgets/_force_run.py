"""What the Forces widget runs in its worker: a tracking table in, forces per bead (and
per plateau) out. No Qt here, so it runs in a thread and tests call it directly.

The table is the long form every camtrack tracker writes (frame, bead, x, y, z, and
optionally x_nm, y_nm, reference), from the ``tracked`` points layer or a file saved by
``TrackResult.save``. Each step is one engine call: :func:`traces_from_table` pivots and
removes the reference beads' drift, :func:`extension_nm` gives the extension from z,
:func:`calibrate_force` (one plateau) or :func:`force_extension` (several) the forces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from camtrack import force, io
from camtrack.force._table import traces_from_table

__all__ = [
    "ForceParams",
    "ForceRun",
    "parse_beads",
    "parse_ranges",
    "run_forces",
    "write_forces",
]

_WLC_FIELDS = ("persistence_nm", "persistence_err_nm", "contour_nm", "contour_err_nm",
               "chi2_reduced")  # fmt: skip
DRAG_MODES = ("fitted", "fixed: height_nm", "fixed: extension + radius")
SURFACES = ("reference beads", "surface_nm")


@dataclass(frozen=True)
class ForceParams:
    """The widget's inputs; names follow the engine's keywords (0 means "not given")."""

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
    focal_shift: float = force.FOCAL_SHIFT
    plateaus: tuple[tuple[int, int], ...] = ()


@dataclass(eq=False)
class ForceRun:
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

    def columns(self) -> dict[str, np.ndarray]:
        """The rows as columns (for the export and the table)."""
        keys = list(self.rows[0]) if self.rows else []
        return {k: np.asarray([r[k] for r in self.rows]) for k in keys}


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
        return force.extension_nm(z, p.surface_nm, focal_shift=p.focal_shift,
                                  radius_nm=radius), ""  # fmt: skip
    if reference.size == 0:
        return None, (
            "no reference bead for the surface: mark stuck beads in `reference` or set "
            "surface to `surface_nm`; no extension"
        )
    ref_z = z[np.isin(beads_all, reference)]
    with np.errstate(all="ignore"):
        surface = np.nanmedian(ref_z, axis=0) if ref_z.shape[0] > 1 else ref_z[0]
    return force.extension_nm(z, surface, focal_shift=p.focal_shift), ""


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
    return float(force.pendulum_length_nm(ext_mean, p.radius_nm, p.direction))


def run_forces(table: dict[str, Any], p: ForceParams, reference: list[int],
               progress: Any = None) -> ForceRun:  # fmt: skip
    """Forces for every non-reference bead of ``table`` (see the module docstring)."""
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
    tt = traces_from_table(tab, axis=p.axis, nm_per_px=p.nm_per_px, fs_hz=p.fs_hz)
    if tt.bead.size == 0:
        raise ValueError("every bead is a reference bead: nothing to calibrate.")
    ref = np.asarray(reference, dtype=int)
    ext_all, why = _extension(tab, beads_all, ref, p)
    labels = _labels(tt.frame, p.plateaus)
    n_plateaus = len(p.plateaus) or 1
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
    beads = list(enumerate(tt.bead.tolist()))
    for i, b in progress(beads, total=len(beads)) if progress else beads:
        x = position[b] = tt.x_nm[i]
        ext = None if ext_all is None else ext_all[np.searchsorted(beads_all, b)]
        if ext is not None:
            extension[b] = ext
        if n_plateaus > 1:
            fe = force.force_extension(
                x, ext, p.fs_hz, labels, radius_nm=p.radius_nm, direction=p.direction,
                fix_drag=p.drag != "fitted", **common,
            )  # fmt: skip
            for k, res in enumerate(fe.results):
                sel = labels == fe.plateau[k]
                geometry = {
                    "length_nm": force.pendulum_length_nm(
                        fe.extension_nm[k], p.radius_nm, p.direction
                    ),
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
        sel = labels == 0
        with np.errstate(all="ignore"):
            ext_mean = float(np.nanmean(ext[sel])) if ext is not None else np.nan
        res = force.calibrate_force(x[sel], p.fs_hz, length_nm=_length(p, ext_mean, b),
                                    **_drag(p, ext_mean), **common)  # fmt: skip
        geometry = {"length_nm": float(res.length_nm), "extension_nm": ext_mean,
                    "extension_err_nm": np.nan}  # fmt: skip
        rows.append(_row(b, 0, res, geometry))
        fits[(b, 0)] = (x[sel], res)
    return ForceRun(rows, fits, tt.frame, labels, extension, position, wlc, ref, notes)


def _row(bead: int, plateau: int, res: Any, geometry: dict[str, float]) -> dict[str, Any]:
    (row,) = res.to_rows()
    row.update(bead=bead, plateau=plateau, **geometry)
    front = ("bead", "plateau", "force_pn", "force_lo_pn", "force_hi_pn")
    return {k: row[k] for k in front} | {k: v for k, v in row.items() if k not in front}


def write_forces(
    path: str | Path, run: ForceRun, p: ForceParams, *, source: str, overwrite: bool,
    protect: list[Any],
) -> Path:  # fmt: skip
    """Write the rows of ``run`` to ``.csv`` or ``.h5`` (``forces/<column>`` datasets, the
    inputs and the WLC fits as attributes), atomically; ``protect``: never these files."""
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
        "wlc": wlc,
    }  # fmt: skip
    # h5py stores no numpy unicode: text columns (method, warnings) as UTF-8 bytes.
    data = {
        f"forces/{k}": np.char.encode(v.astype(str), "utf-8") if v.dtype.kind in "OU" else v
        for k, v in cols.items()
    }
    return io.write_hdf5(path, data, attrs, overwrite=overwrite, protect=protect)
