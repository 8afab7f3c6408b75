"""Drift from several reference (stuck) beads, combined robustly."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["DriftResult", "correct_drift"]

# A reference is dropped in a frame where it departs from the others' median by more
# than this many robust standard deviations of its own residual (1.4826 MAD): at 6 a
# Gaussian residual is dropped once in 5e8 frames, a real jump of a few nm is caught.
JUMP_SIGMAS = 6.0


def _nanmedian(a: np.ndarray, axis: int, keepdims: bool = False) -> np.ndarray:
    """nanmedian that returns NaN for an all-NaN slice without a RuntimeWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(a, axis=axis, keepdims=keepdims)


@dataclass(frozen=True, eq=False)
class DriftResult:
    """Drift and drift-corrected positions.

    Attributes
    ----------
    corrected_nm : ndarray, the shape of the input
        Positions minus the drift (reference beads included, now near zero).
    raw_nm : ndarray
        The input positions (a copy).
    drift_nm : ndarray, (n_frames,) or (n_frames, n_axes)
        The common drift: per frame the median of the reference displacements (each
        about its own median position) that are present and not jumping. NaN where no
        reference is usable (those frames become NaN in ``corrected_nm``).
    reference : ndarray of int
        The reference beads.
    dropped : ndarray of bool, (n_references, n_frames)
        Where a reference was lost (NaN) or jumped and was left out.
    n_used : ndarray of int, (n_frames,)
        References combined in each frame.
    warnings : tuple of str
    """

    corrected_nm: np.ndarray = field(repr=False)
    raw_nm: np.ndarray = field(repr=False)
    drift_nm: np.ndarray = field(repr=False)
    reference: np.ndarray
    dropped: np.ndarray = field(repr=False)
    n_used: np.ndarray = field(repr=False)
    warnings: tuple[str, ...] = ()


def correct_drift(
    positions_nm: Any, reference: Any, *, jump_nm: float | None = None
) -> DriftResult:
    """Remove the common drift measured by reference beads stuck to the surface.

    Parameters
    ----------
    positions_nm : array_like, (n_beads, n_frames) or (n_beads, n_frames, n_axes)
        Positions (x, or x, y, z stacked on the last axis), nm; NaN where lost.
    reference : sequence of int
        Indices of the reference beads (one or more).
    jump_nm : float or None
        Drop a reference in a frame where it departs from the other references' median
        by more than this; None: 6 robust standard deviations of that reference's own
        residual (per axis). A jump (a bead that unsticks or is mistracked) is thus
        dropped for those frames only, and the result says so.

    Returns
    -------
    DriftResult

    Notes
    -----
    Each reference's displacement is taken about its own median position (so beads at
    different places combine), then the per-frame median over the usable references is
    the drift. With one reference the drift is that reference's displacement (no
    outlier test is possible; its NaN frames stay NaN).

    Examples
    --------
    >>> import numpy as np
    >>> from camtrack.force import correct_drift
    >>> t = np.arange(100.0)
    >>> beads = np.stack([50 + 0.5 * t, 0.5 * t, 10 + 0.5 * t])  # all drift 0.5 nm/frame
    >>> res = correct_drift(beads, reference=[1, 2])
    >>> float(np.ptp(res.corrected_nm[0]))
    0.0
    """
    raw = np.asarray(positions_nm, dtype=float)
    if raw.ndim not in (2, 3):
        raise ValueError(
            "`positions_nm` must be (n_beads, n_frames) or (n_beads, n_frames, n_axes); "
            f"got shape {raw.shape}."
        )
    ref = np.atleast_1d(np.asarray(reference))
    if ref.size == 0 or not np.issubdtype(ref.dtype, np.integer):
        raise ValueError(
            f"`reference` must list one or more bead indices (integers); got {reference!r}."
        )
    if ref.min() < -raw.shape[0] or ref.max() >= raw.shape[0] or np.unique(ref).size != ref.size:
        raise ValueError(
            f"`reference` must hold distinct bead indices below {raw.shape[0]}; got {ref.tolist()}."
        )
    pos = raw if raw.ndim == 3 else raw[..., None]
    refs = pos[ref]  # (R, T, A)
    disp = refs - _nanmedian(refs, axis=1, keepdims=True)
    ok = np.isfinite(disp).all(axis=2)  # (R, T)
    if ref.size > 1:
        common = _nanmedian(np.where(ok[..., None], disp, np.nan), axis=0)
        resid = disp - common
        mad = _nanmedian(np.abs(resid - _nanmedian(resid, axis=1, keepdims=True)), axis=1)
        limit = JUMP_SIGMAS * 1.4826 * mad[:, None, :] if jump_nm is None else float(jump_nm)
        with np.errstate(invalid="ignore"):
            jumped = (np.abs(resid) > limit).any(axis=2) & ok
        ok &= ~jumped
    drift = _nanmedian(np.where(ok[..., None], disp, np.nan), axis=0)  # (T, A)
    n_used = ok.sum(axis=0)
    drift[n_used == 0] = np.nan
    corrected = pos - drift[None]
    warnings = []
    for r, bead in enumerate(ref):
        n_drop = int((~ok[r]).sum())
        if n_drop:
            warnings.append(f"reference {int(bead)} left out in {n_drop} frames (lost or jumping)")
    n_none = int((n_used == 0).sum())
    if n_none:
        warnings.append(f"{n_none} frames have no usable reference: drift and positions NaN there")
    squeeze = raw.ndim == 2
    return DriftResult(
        corrected_nm=corrected[..., 0] if squeeze else corrected,
        raw_nm=raw.copy(),
        drift_nm=drift[:, 0] if squeeze else drift,
        reference=ref,
        dropped=~ok,
        n_used=n_used,
        warnings=tuple(warnings),
    )
