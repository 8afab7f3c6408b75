"""Detection of clipped (saturated) pixels in ROIs."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np

from camtrack._jit import LazyJit
from camtrack._validation import check_positive
from camtrack.tracking._common import boxes

__all__ = ["check_saturation", "clipped_rows", "compact", "plateau_centres"]

# At least this many pixels at the ROI maximum (within the tolerance) mark a plateau:
# an unclipped bright centre has one brightest pixel, its neighbours lie far below in
# shot noise. Five, not four: a noise-free bead centred on a pixel corner has four
# equal brightest pixels without any clipping.
MIN_CLIPPED = 5


def check_saturation(saturation: Any) -> Any:
    """None, "auto" or a finite level (input units)."""
    if saturation is None or saturation == "auto":
        return saturation
    if isinstance(saturation, str):
        raise ValueError(
            f"`saturation` must be None, 'auto' or a pixel value (the clip level); got "
            f"{saturation!r}."
        )
    return check_positive(saturation, "saturation")


def clipped_rows(
    xp: ModuleType,
    rois: Any,
    top: Any,
    saturation: Any,
    tol: float,
    level: float | None = None,
    skip: Any = None,
    count: Any = None,
    centroids: bool = False,
) -> tuple[Any, ...] | None:
    """Clipped pixels of the ROIs that have any: (rows, mask), or None when none has.

    ``rois`` (N, S, S) in input units, ``top`` (N,) their maxima, ``skip`` (N,) bool rows
    to leave out (bad ROIs). ``rows`` (k,) indices of the ROIs with clipped pixels and
    ``mask`` (k, S, S) bool those pixels. ``saturation``: None (no detection), a level
    (pixels >= level), or "auto": pixels within ``tol`` of their ROI's maximum when at
    least ``MIN_CLIPPED`` of them are (an ADC clip gives identical values; a full-well
    plateau differs only by read noise), plus pixels >= ``level - tol`` when a level is
    known from the Z-LUT calibration (where at least ``MIN_CLIPPED`` reach it). Only
    the flagged ROIs get a full mask: the common
    unclipped batch costs one compare and one count on the input dtype. ``count``
    (N,): the number of pixels within ``tol`` of each maximum, if already counted
    (:func:`~camtrack.tracking._common.prepare`, "auto" only): then only the flagged
    rows are compared. ``centroids``: also return (count, x, y), each (k,) float64,
    the number of clipped pixels of each flagged ROI and their centroid (NaN where
    none), see :func:`plateau_centres`.
    """
    if saturation is None:
        return None
    n, s, _ = rois.shape
    flat = rois.reshape(n, -1)
    with np.errstate(invalid="ignore"):
        if saturation != "auto":
            flag = top >= float(saturation)
        else:
            thr = top.astype(np.float64) - tol
            if rois.dtype.kind in "iu":
                # Same set as ``rois >= top - tol`` in float, compared on the input dtype.
                info = np.iinfo(rois.dtype)
                thr = xp.clip(xp.ceil(thr), info.min, info.max).astype(rois.dtype)
            else:
                thr = thr.astype(rois.dtype)
            near = None
            if count is None:
                near = flat >= thr[:, None]
                # Counting uint8 with a small accumulator is several times faster than bool sum.
                acc = np.uint16 if flat.shape[1] < 2**16 else np.int64
                count = near.view(np.uint8).sum(axis=1, dtype=acc)
            plateau = count >= MIN_CLIPPED
            flag = plateau if level is None else plateau | (top >= level - tol)
        if skip is not None:
            flag = flag & ~skip
        rows = xp.nonzero(flag)[0]
        if rows.size == 0:
            return None
        kern = _clip_kernel() if xp is np and saturation == "auto" and rois.dtype.kind in "iu" and rois.dtype.itemsize <= 4 else None  # fmt: skip
        if kern is not None:
            # Compiled: each flagged ROI's mask and its clipped pixels' count and
            # centroid in one pass over its input (the array version makes ~6 passes
            # over (k, S*S) copies and compares the level in float64).
            # The level's test on the input dtype: off above its range, all pixels below.
            lthr = _int_threshold(level, tol)
            use_level = lthr is not None and lthr <= info.max
            lthr = rois.dtype.type(max(lthr, info.min) if use_level else 0)
            mask = np.empty((rows.size, s, s), dtype=bool)
            sums = np.empty((rows.size, 3), dtype=np.float64)
            src = rois if rois.flags.c_contiguous else np.ascontiguousarray(rois)
            kern(src, rows, thr, plateau, lthr, use_level, MIN_CLIPPED, mask, sums)
            if not bool((sums[:, 0] > 0).any()):
                return None
            if not centroids:
                return rows, mask
            with np.errstate(invalid="ignore", divide="ignore"):
                return rows, mask, (sums[:, 0], sums[:, 1] / sums[:, 0], sums[:, 2] / sums[:, 0])
        sub = flat[rows]
        if saturation != "auto":
            mask = sub >= float(saturation)
        else:
            near_rows = sub >= thr[rows][:, None] if near is None else near[rows]
            mask = near_rows & plateau[rows][:, None]
            if level is not None:
                # At least MIN_CLIPPED pixels at the level, as for a plateau: a hole
                # for 1-4 clipped pixels removes the steep core around them and cost
                # one Gaussian-beam ROI in 1000 a 0.45 px miss; left in, they are a
                # flat top of a pixel or two.
                at = sub >= level - tol
                enough = at.view(np.uint8).sum(axis=1, dtype=np.int64) >= MIN_CLIPPED
                mask = mask | (at & enough[:, None])
    if not bool(mask.any()):
        return None
    mask = mask.reshape(-1, s, s)
    if not centroids:
        return rows, mask
    return rows, mask, plateau_centres(xp, mask)


def _int_threshold(level: float | None, tol: float) -> int | None:
    """``ceil(level - tol)`` as an int (``v >= level - tol`` for integers ``v``); None
    where no pixel can pass (no level, NaN, +inf); -inf passes every pixel."""
    if level is None:
        return None
    t = float(level) - tol
    if math.isnan(t) or t == math.inf:
        return None
    if t == -math.inf:
        return -(2**62)
    return int(min(max(math.ceil(t), -(2**62)), 2**62))


def plateau_centres(xp: ModuleType, mask: Any) -> tuple[Any, Any, Any]:
    """(count, x, y) of the clipped pixels ``mask`` (k, S, S) bool: (k,) float64 each.

    A clipped bright centre is a filled disc about the bead's centre, so the centroid
    of a wide plateau starts the centre fits within a small fraction of a pixel (NaN
    for an empty mask).
    """
    s = mask.shape[-1]
    m = mask.view(xp.uint8)
    acc = xp.uint16 if s * s < 2**16 else xp.int64
    per_col = m.sum(axis=1, dtype=acc).astype(xp.float64)  # (k, S)
    per_row = m.sum(axis=2, dtype=acc).astype(xp.float64)
    pos = xp.arange(s, dtype=xp.float64)
    cnt = per_col.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return cnt, (per_col @ pos) / cnt, (per_row @ pos) / cnt


def _clip_loop(rois, rows, thr, plateau, lthr, use_level, min_count, mask, sums):  # type: ignore[no-untyped-def]
    """:func:`clipped_rows` ("auto", integer input) compiled: per flagged ROI, the
    pixels within the tolerance of its maximum (if a plateau) or at the level (where at
    least ``min_count`` are), and their count and coordinate sums (``sums`` (k, 3)).
    Both tests are ``v >= threshold``, so a pixel passing either passes the lower one:
    one compare per pixel on the input dtype."""
    _, s, _ = rois.shape
    for j in range(rows.shape[0]):
        r = rows[j]
        roi = rois[r]
        enough = False
        if use_level:
            c = 0
            for y in range(s):
                for x in range(s):
                    c += roi[y, x] >= lthr
            enough = c >= min_count
        if plateau[r]:
            t = thr[r]
            if enough and lthr < t:
                t = lthr
        elif enough:
            t = lthr
        else:
            mask[j] = False
            sums[j, 0] = 0
            sums[j, 1] = 0
            sums[j, 2] = 0
            continue
        cnt = 0
        sx = 0
        sy = 0
        for y in range(s):
            cr = 0
            for x in range(s):
                on = roi[y, x] >= t
                mask[j, y, x] = on
                cr += on
                sx += x * on
            cnt += cr
            sy += y * cr
        sums[j, 0] = cnt
        sums[j, 1] = sx
        sums[j, 2] = sy


# The compiled :func:`_clip_loop`, or None without a working numba (then the array
# passes run; tested equal).
_clip_kernel = LazyJit(_clip_loop, nogil=True, cache=True)


def compact(xp: ModuleType, mask: Any, cx: Any, cy: Any) -> tuple[Any, Any]:
    """Keep only clipped sets that fill a disc about the centre; return (mask, hole radius).

    A clipped bright centre is a filled disc of pixels around the bead centre, so its
    pixel count is about pi r^2 for its farthest pixel at r. Equal maxima scattered on
    a ring (a coincidence of noise) fill almost none of their disc and are not clipping.
    The hole radius (farthest clipped pixel + 1 px; 0 where none) is what the symmetry
    fit leaves out around the centre.
    """
    n, s, _ = mask.shape
    # Only a disc of radius < s/4 is ever kept: the farthest pixel is looked for in a
    # box of that half-width about the centre, and any pixel outside it rejects.
    b = min(s, 2 * (s // 4) + 3)
    y0 = xp.clip(xp.floor(cy).astype(xp.int64) - b // 2, 0, s - b)
    x0 = xp.clip(xp.floor(cx).astype(xp.int64) - b // 2, 0, s - b)
    kern = _compact_kernel() if xp is np and mask.flags.c_contiguous else None
    if kern is not None:
        # Compiled: the count, the box count and the farthest distance in one pass
        # per ROI (the array version copies the box and builds (n, b, b) distances),
        # with the same float arithmetic: the same result.
        count = np.empty(n, dtype=np.int64)
        inside = np.empty(n, dtype=np.int64)
        far = np.empty(n, dtype=cx.dtype)
        span = np.arange(b, dtype=cx.dtype)
        ys = y0[:, None].astype(cx.dtype) + span[None, :]
        xs = x0[:, None].astype(cx.dtype) + span[None, :]
        kern(mask, y0, x0, ys, xs, cx, cy, count, inside, far)
    else:
        acc = xp.uint16 if s * s < 2**16 else xp.int64  # a small accumulator sums uint8 fast
        count = mask.reshape(n, -1).view(xp.uint8).sum(axis=1, dtype=acc).astype(xp.int64)
        box = boxes(xp, mask, y0, x0, b)
        span = xp.arange(b, dtype=cx.dtype)
        dy2 = (y0[:, None].astype(cx.dtype) + span[None, :] - cy[:, None]) ** 2
        dx2 = (x0[:, None].astype(cx.dtype) + span[None, :] - cx[:, None]) ** 2
        far = xp.where(box, dy2[:, :, None] + dx2[:, None, :], -1.0).reshape(n, -1).max(axis=1)
        inside = box.reshape(n, -1).view(xp.uint8).sum(axis=1, dtype=acc).astype(xp.int64)
    far = xp.where(inside < count, float(s * s), far)
    r = xp.sqrt(xp.maximum(far, 0.0))
    keep = (far >= 0) & (count >= 0.3 * math.pi * (r + 0.5) ** 2) & (r < 0.25 * s)
    if not bool(keep.all()):
        mask = mask & keep[:, None, None]
    return mask, xp.where(keep, r + 1.0, 0.0)


def _compact_loop(mask, y0, x0, ys, xs, cx, cy, count, inside, far):  # type: ignore[no-untyped-def]
    """:func:`compact`'s pixel passes (compiled): the clipped count of each ROI, the
    count in its box and the largest squared distance there (-1: none); ``ys``, ``xs``
    (n, b) the box's row and column coordinates in the centres' dtype."""
    n, s, _ = mask.shape
    b = ys.shape[1]
    for k in range(n):
        m = mask[k]
        c = 0
        for y in range(s):
            for x in range(s):
                c += 1 if m[y, x] else 0
        count[k] = c
        ins = 0
        best = -1.0
        for p in range(b):
            dy = ys[k, p] - cy[k]
            for q in range(b):
                if m[y0[k] + p, x0[k] + q]:
                    ins += 1
                    dx = xs[k, q] - cx[k]
                    d = dy * dy + dx * dx
                    if d > best:
                        best = d
        inside[k] = ins
        far[k] = best


# The compiled :func:`_compact_loop`, or None without a working numba.
_compact_kernel = LazyJit(_compact_loop, nogil=True, cache=True)
