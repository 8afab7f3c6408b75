"""Stuck beads, told from tethered ones by their motion between frames.

A tethered bead jiggles: its position between consecutive frames changes by its
thermal motion (tens of nm for a tether of a few um). A bead stuck to the surface moves
only with the stage drift, which is slow and common to all beads, so between consecutive
frames it changes by the tracking noise alone. The frame-to-frame step of every bead,
its mean step (a linear drift) removed, is therefore far smaller for a stuck bead. The
beads split into the two groups at the widest gap of their steps (a scale-free split,
no nm threshold to set); without a clear gap either all beads move (none stuck) or none
moves beyond its own tracking noise (all stuck).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from camtrack._validation import check_integer, check_positive, renamed_keywords

__all__ = ["StuckBeads", "flag_stuck_beads"]

# Ratio of the steps on either side of the widest gap that splits the beads: on the
# bead sample (30 nm thermal motion, correlation time 5 frames, 100 nm pixels) tethered
# beads step 0.15-0.2 px per frame and the stuck bead 0.01 px (the stage's 1 nm random
# walk dominates its 0.003 px tracking noise): a ratio near 15. 3 leaves room for
# stiffer tethers and noisier images.
_MIN_GAP = 3.0
# Without such a gap, beads count as stuck when their steps stay within this factor of
# their tracking noise (sqrt(2) x_err for the difference of two frames).
_NOISE_FACTOR = 3.0


@dataclass(frozen=True)
class StuckBeads:
    """Result of :func:`flag_stuck_beads`, one entry per bead.

    Attributes
    ----------
    stuck : ndarray of bool, (B,)
        Stuck to the surface (a reference bead for drift correction).
    step_px : ndarray, (B,)
        RMS frame-to-frame step in x and y (per axis), its mean (linear drift) removed.
    noise_px : ndarray, (B,)
        The step the tracking noise alone would give: sqrt(2) times the median
        reported x, y error.
    n_frames : int
        Consecutive frames tracked.
    """

    stuck: np.ndarray
    step_px: np.ndarray
    noise_px: np.ndarray
    n_frames: int

    @property
    def reference(self) -> list[int]:
        """Indices of the stuck beads (for ``track_beads(reference=...)``)."""
        return [int(i) for i in np.flatnonzero(self.stuck)]


@renamed_keywords(first="first_frame")
def flag_stuck_beads(
    stack: Any,
    positions: Any,
    *,
    roi_size: int,
    n_frames: int = 100,
    first_frame: int = 0,
    mode: str = "precise",
) -> StuckBeads:
    """Flag beads stuck to the surface from their motion over consecutive frames.

    Parameters
    ----------
    stack : array, (T, Y, X)
        The recording (numpy, cupy or dask).
    positions : array_like, (B, 2)
        Bead positions (x, y) in frame ``first_frame``, e.g. from :func:`find_beads`.
    roi_size : int
        ROI size for tracking x, y.
    n_frames : int
        Consecutive frames to track from ``first_frame`` (fewer if the stack is shorter;
        at least 3). 100 frames measure each bead's step to about 7 %.
    first_frame : int
        First frame to track.
    mode : {"precise", "fast"}
        Tracking mode (:func:`track_rois`).

    Returns
    -------
    StuckBeads
        ``stuck`` per bead, the steps and the noise they were judged against.

    Notes
    -----
    Each bead's step is the RMS over frames and over x and y of its frame-to-frame
    change, less its mean change. Sorted steps split at the widest ratio between
    neighbours; when that ratio is at least 3 the beads below the gap are stuck.
    Otherwise all beads are stuck when every step, less the beads' common (median)
    step, is within 3 times the bead's own tracking noise (with 3 or more beads; one
    or two beads: the steps themselves, so a stage that moves by more than the
    tracking noise between frames makes a lone stuck bead look tethered), else none is. Beads that leave their ROI (NaN) are not stuck.
    Stage drift is assumed slow: a drift that jumps by more than a tether's thermal
    motion from one frame to the next makes stuck beads look tethered. Coordinates:
    x = column, y = row, pixel centres at integer coordinates.

    Examples
    --------
    >>> from camtrack.simulate import bead_field
    >>> from camtrack.tracking import find_beads, flag_stuck_beads
    >>> stack, truth = bead_field(40, shape=(160, 160), n_beads=3, n_reference=1, rng=2)
    >>> x, y = find_beads(stack[0], roi_size=48)
    >>> flags = flag_stuck_beads(stack, list(zip(x, y)), roi_size=48, n_frames=40)
    >>> [bool(truth.is_reference[int(((truth.x[0] - a) ** 2 + (truth.y[0] - b) ** 2).argmin())])
    ...  for a, b in zip(x[flags.stuck], y[flags.stuck])]
    [True]
    """
    from camtrack.tracking._stack import track_beads

    n_frames = check_integer(n_frames, "n_frames", minimum=3)
    first = check_integer(first_frame, "first_frame", minimum=0)
    total = int(stack.shape[0]) if getattr(stack, "ndim", 0) == 3 else 0
    if total and first > total - 3:
        raise ValueError(
            f"`first_frame` must leave at least 3 frames of the stack's {total}; got {first}."
        )
    check_positive(roi_size, "roi_size")
    window = stack[first : first + n_frames]
    res = track_beads(window, positions, roi_size=roi_size, mode=mode)
    t = int(window.shape[0])
    x = np.asarray(res.x, dtype=np.float64).reshape(t, -1)
    y = np.asarray(res.y, dtype=np.float64).reshape(t, -1)
    err = np.hypot(
        np.asarray(res.x_err, dtype=np.float64).reshape(t, -1),
        np.asarray(res.y_err, dtype=np.float64).reshape(t, -1),
    ) / np.sqrt(2.0)
    with np.errstate(invalid="ignore"):
        # each axis less its own mean step (a linear drift in x and in y)
        resid = np.concatenate([_demeaned(np.diff(x, axis=0)), _demeaned(np.diff(y, axis=0))])
        step = np.sqrt(np.mean(resid**2, axis=0))
        # the same less the beads' common (median) step: the stage's random walk, which
        # only a field of stuck beads shares to within their noise
        common = resid - np.nanmedian(resid, axis=1, keepdims=True)
        relative = np.sqrt(np.mean(common**2, axis=0))
    noise = np.sqrt(2.0) * np.nanmedian(err, axis=0)
    stuck = _split(step, relative if step.size >= 3 else step, noise)
    return StuckBeads(stuck=stuck, step_px=step, noise_px=noise, n_frames=t)


def _demeaned(steps: np.ndarray) -> np.ndarray:
    return steps - steps.mean(axis=0)


def _split(step: np.ndarray, relative: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Stuck beads: below the widest gap of the steps, or all within their noise
    (``relative``: the steps less the common one)."""
    stuck = np.zeros(step.shape, dtype=bool)
    good = np.isfinite(step) & (step > 0)
    if not good.any():
        return stuck
    idx = np.flatnonzero(good)
    order = idx[np.argsort(step[idx])]
    s = step[order]
    if len(s) >= 2:
        ratio = s[1:] / s[:-1]
        k = int(np.argmax(ratio))
        if ratio[k] >= _MIN_GAP:
            stuck[order[: k + 1]] = True
            return stuck
    if np.all(relative[order] <= _NOISE_FACTOR * noise[order]):
        stuck[order] = True
    return stuck
