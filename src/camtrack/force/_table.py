"""From an exported tracking table (CSV / HDF5 of ``TrackingResult.save``) to traces."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from camtrack._validation import check_choice, check_existing_file, check_positive
from camtrack.force._drift import correct_drift

__all__ = ["TableTraces", "read_table", "traces_from_table"]

# Frame times may wobble (camera timestamps); they disagree with fs_hz when their median
# spacing is off by more than this fraction.
_TIME_TOLERANCE = 0.01


def read_table(path: str | Path) -> dict[str, np.ndarray]:
    """Columns of a tracking table: a CSV with a header row, or the ``tracking/`` group
    of an HDF5 file. Numeric columns become float arrays; others stay text."""
    p = check_existing_file(path, "table")
    if p.suffix.lower() in (".h5", ".hdf5"):
        import h5py

        with h5py.File(p, "r") as fh:
            if "tracking" not in fh:
                raise ValueError(
                    f"`table` {str(p)!r} has no 'tracking' group; export it with "
                    "`camtrack track -o table.h5` or TrackingResult.save."
                )
            return {k: np.asarray(v[()]) for k, v in fh["tracking"].items()}
    with open(p, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    if len(rows) < 2:
        raise ValueError(f"`table` {str(p)!r} has no data rows below a header.")
    head, body = rows[0], rows[1:]
    cols: dict[str, np.ndarray] = {}
    for j, name in enumerate(head):
        vals = [r[j] if j < len(r) else "" for r in body]
        try:
            cols[name] = np.array(
                [float(v) if v not in ("", "nan", "NaN") else np.nan for v in vals]
            )
        except ValueError:
            low = [v.strip().lower() for v in vals]
            if set(low) <= {"true", "false"}:
                cols[name] = np.array([v == "true" for v in low])
            else:
                cols[name] = np.array(vals, dtype=object)
    return cols


@dataclass(frozen=True, eq=False)
class TableTraces:
    """Traces per bead pulled out of a tracking table.

    Attributes
    ----------
    bead : ndarray of int, (n_beads,)
        Bead numbers of the traces (reference beads left out).
    x_nm : ndarray, (n_beads, n_frames)
        Position along the chosen axis, nm, NaN where the table has no row or NaN;
        common drift removed when reference beads exist.
    frame : ndarray of int, (n_frames,)
    reference : ndarray of int
        The reference beads whose median displacement was subtracted.
    warnings : tuple of str
        From :func:`correct_drift` (references left out in some frames).
    """

    bead: np.ndarray
    x_nm: np.ndarray = field(repr=False)
    frame: np.ndarray = field(repr=False)
    reference: np.ndarray
    warnings: tuple[str, ...] = ()


def traces_from_table(
    table: dict[str, Any],
    *,
    axis: str = "x",
    nm_per_px: float | None = None,
    fs_hz: float | None = None,
    drift: bool = True,
) -> TableTraces:
    """Pivot a long table (frame, bead, x, y, ...) into one trace per bead, in nm.

    Parameters
    ----------
    table : mapping of column name to 1-D array
        As :func:`read_table` returns it. Needs ``frame`` and ``bead``, and ``<axis>_nm``
        or ``<axis>`` (px, with ``nm_per_px``).
    axis : {"x", "y"}
        The sideways axis to calibrate (x is the field direction in most setups).
    nm_per_px : float or None
        Pixel size, when the table has no ``<axis>_nm`` column.
    fs_hz : float or None
        With a ``t_s`` column, the frame rate it must agree with.
    drift : bool
        Subtract the drift of the reference beads (``reference`` column), combined by
        :func:`correct_drift` (median, lost or jumping references left out per frame).

    Returns
    -------
    TableTraces
    """
    check_choice(axis, "axis", ("x", "y"))
    for need in ("frame", "bead"):
        if need not in table:
            raise ValueError(
                f"the table needs a {need!r} column (one row per frame and bead); got "
                f"columns {sorted(table)}. Export it from track_beads / camtrack track."
            )
    if f"{axis}_nm" in table:
        pos = np.asarray(table[f"{axis}_nm"], dtype=float)
    elif axis in table and nm_per_px is not None:
        pos = np.asarray(table[axis], dtype=float) * check_positive(nm_per_px, "nm_per_px")
    else:
        raise ValueError(
            f"the table has no {axis + '_nm'!r} column; pass the pixel size (nm_per_px / "
            f"--nm-per-px) to convert {axis!r} from pixels."
        )
    frame = np.asarray(table["frame"]).astype(int)
    bead = np.asarray(table["bead"]).astype(int)
    if fs_hz is not None and "t_s" in table:
        t = np.asarray(table["t_s"], dtype=float)
        order = np.argsort(frame, kind="stable")
        ft, tt = frame[order], t[order]
        step = np.diff(tt) / np.maximum(np.diff(ft), 1)
        step = step[np.diff(ft) > 0]
        if step.size and abs(np.median(step) * fs_hz - 1) > _TIME_TOLERANCE:
            raise ValueError(
                f"the table's times (t_s, median {1 / np.median(step):.6g} frames/s) disagree "
                f"with `fs_hz` = {fs_hz:g}; check the frame rate."
            )
    frames = np.unique(frame)
    beads = np.unique(bead)
    grid = np.full((beads.size, frames.size), np.nan)
    grid[np.searchsorted(beads, bead), np.searchsorted(frames, frame)] = pos
    # Frames missing from the table (gaps) are lost frames: NaN rows in between.
    full = np.arange(frames.min(), frames.max() + 1)
    traces = np.full((beads.size, full.size), np.nan)
    traces[:, frames - frames.min()] = grid
    is_ref = np.zeros(beads.size, bool)
    if "reference" in table:
        ref_rows = np.asarray(table["reference"]).astype(bool)
        is_ref = np.isin(beads, np.unique(bead[ref_rows]))
    notes: tuple[str, ...] = ()
    if drift and is_ref.any():
        res = correct_drift(traces, np.flatnonzero(is_ref))
        traces, notes = res.corrected_nm, res.warnings
    return TableTraces(beads[~is_ref], traces[~is_ref], full, beads[is_ref], notes)
