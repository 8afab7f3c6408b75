"""The engine's one temporal median / MAD kernel, shared by gain and background (#17 item 3).

A (T, rows, cols) tile is reduced along T, per pixel:

- integer tiles of 8/16 bits on numpy (with numba): the middle order statistics are
  *counted* (:func:`camtrack._select.select_ranks`: a histogram per pixel, no sort,
  no pixel-major float copy); the MAD counts the deviations ``|2 x - 2 median|``
  (integers, exact) the same way;
- everything else (floats, wider integers, cupy, no numba): a pixel-major copy
  (:func:`pixels_last`, transposed in cache-sized blocks) selected in place with one
  partition per statistic (:func:`median_inplace`).

Both give numpy's values: the mean of the two middle samples for an even T.

The MAD of a kept range of already sorted samples (the background's sigma clipping)
is :func:`sorted_mad`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from camtrack import _backend, _select

__all__ = ["median_inplace", "median_mad", "middle_pair", "pixels_last", "sorted_mad"]

# Frames per step of the blocked transpose: a (64, cols) slab of frames and its
# (cols, 64) image stay in cache, where one strided transpose of the whole tile misses
# on every element (~3x slower).
_TRANSPOSE_FRAMES = 64
# Integer dtypes whose deviations |2 x - 2 median| are counted in int32 (exact: at most
# 2 * 65535): the MAD then runs on the counting kernel too.
_COUNTED_MAD = frozenset(np.dtype(t) for t in ("u1", "i1", "u2", "i2"))


def pixels_last(tile: Any, dtype: Any = None) -> Any:
    """A new C-ordered (rows*cols, T) copy of a (T, rows, cols) tile, each pixel's series
    contiguous, in ``dtype`` (default: the tile's). numpy: blocked transpose; cupy: one."""
    t = tile.shape[0]
    flat = tile.reshape(t, -1)
    dtype = tile.dtype if dtype is None else np.dtype(dtype)
    if not isinstance(tile, np.ndarray):
        xp, _ = _backend.namespace(tile)
        return xp.ascontiguousarray(flat.T, dtype=dtype)
    rows = np.empty((flat.shape[1], t), dtype=dtype)
    for a in range(0, t, _TRANSPOSE_FRAMES):
        rows[:, a : a + _TRANSPOSE_FRAMES] = flat[a : a + _TRANSPOSE_FRAMES].T
    return rows


def median_inplace(rows: Any, calc: Any) -> Any:
    """Median of each row of ``rows`` (pixels, T), selected in place, formed in ``calc``.

    One partition (kth = T // 2) instead of numpy's two: the lower middle value of an
    even T is the maximum of the first half of the partitioned row, a cheap vectorised
    reduction. ``rows`` must be a private copy. NaN samples sort last (not propagated
    here; callers that need numpy's NaN result mark those rows themselves).
    """
    calc = np.dtype(calc)
    t = rows.shape[1]
    k = t // 2
    rows.partition(k, axis=1)
    hi = rows[:, k]
    if t % 2:
        return hi.astype(calc)
    lo = rows[:, :k].max(axis=1)
    return (lo.astype(calc) + hi.astype(calc)) / calc.type(2)


def middle_pair(tile: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The samples of rank (T - 1) // 2 and T // 2 of each pixel (equal for odd T), in
    the tile's dtype: counted for integer tiles with numba, else by one partition."""
    t = tile.shape[0]
    ranks = sorted({(t - 1) // 2, t // 2})
    sel = _select.select_ranks(tile, ranks)
    return sel[0], sel[-1]


def median_mad(xp: Any, block: Any, *, dtype: Any = None) -> tuple[Any, Any]:
    """Temporal median and median absolute deviation (float64) of a (T, Y, X) tile.

    ``dtype``: the work dtype of the partition path (default
    :func:`camtrack._outofcore.fitted_work_dtype` of the block: float32, float64 for
    integers beyond 2**24 and float64 input). For an even T both statistics take the
    mean of the two middle values (as :func:`numpy.median`), formed in float64. Exact
    for integer input (the deviations from a half-integer median are formed in float64
    or counted as integers).
    """
    _t, ny, nx = (int(s) for s in block.shape)
    block = xp.asarray(block)
    if dtype is None and block.dtype in _COUNTED_MAD and _select.use_counting(block):
        return _median_mad_counted(block)
    from camtrack._outofcore import fitted_work_dtype

    wdt = np.dtype(dtype) if dtype is not None else fitted_work_dtype(xp, block)
    flat = pixels_last(block, wdt)
    med = median_inplace(flat, np.float64)
    xp.subtract(flat, med[:, None], out=flat)
    xp.abs(flat, out=flat)
    mad = median_inplace(flat, np.float64)
    return med.reshape(ny, nx), mad.reshape(ny, nx)


def _median_mad_counted(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`median_mad` of an 8/16-bit integer tile, by counting (numba).

    ``s = lo + hi`` is twice the median, an integer; the deviations ``|2 x - s|`` are
    twice ``|x - median|``, integers too, so the MAD's middle pair is counted as well
    and ``(dlo + dhi) / 4`` is exact. Same values as the partition path; at 512 px
    wide tiles, uint16: 1.4x faster at 200 frames, 3.5x at 1000 (no float copy, no
    introselect).
    """
    lo, hi = middle_pair(block)
    s = lo.astype(np.int32)
    s += hi
    dev = block.astype(np.int32)
    dev *= 2
    dev -= s
    np.abs(dev, out=dev)
    dlo, dhi = middle_pair(dev)
    del dev
    mad = dlo.astype(np.float64)
    mad += dhi
    mad /= 4.0
    return s / 2.0, mad


# ----------------------------------------------------------------------------- sorted rows


def _gather(xp: Any, rows: Any, idx: Any) -> Any:
    idx = xp.clip(idx, 0, rows.shape[1] - 1)
    return xp.take_along_axis(rows, idx[:, None], axis=1)[:, 0].astype(xp.float64)


def _kth_deviation(xp: Any, rows: Any, split: Any, n_a: Any, n_b: Any, med: Any, k: Any) -> Any:
    """k-th smallest (0-based) of ``|x - med|`` over the kept sorted samples.

    Below the median the deviations ``A[i] = med - rows[split - 1 - i]`` and above it
    ``B[j] = rows[split + j] - med`` are each already sorted, so the k-th smallest of
    their union is found by bisecting how many of the k + 1 smallest come from ``A``
    (log2(T) gathers instead of a second sort).
    """
    c = k + 1
    lo = xp.maximum(0, c - n_b)
    hi = xp.minimum(c, n_a)
    for _ in range(int(np.ceil(np.log2(rows.shape[1] + 1))) + 1):
        mid = (lo + hi) // 2
        a_mid = med - _gather(xp, rows, split - 1 - mid)
        b_prev = _gather(xp, rows, split + c - mid - 1) - med
        need_more_a = (mid < n_a) & (c - mid > 0) & (b_prev > a_mid) & (lo < hi)
        lo = xp.where(need_more_a, mid + 1, lo)
        hi = xp.where(need_more_a | (lo >= hi), hi, mid)
    i = lo
    a_last = xp.where(i > 0, med - _gather(xp, rows, split - i), -xp.inf)
    b_last = xp.where(c - i > 0, _gather(xp, rows, split + c - i - 1) - med, -xp.inf)
    return xp.maximum(a_last, b_last)


def sorted_mad(xp: Any, rows: Any, lo: Any, count: Any, med: Any) -> Any:
    """Median absolute deviation from ``med`` of ``rows[p, lo : lo + count]`` (sorted).

    The MAD of a kept range of sorted samples (the background's sigma clipping: a
    different range per pixel, narrowed pass by pass), found by bisection on the two
    sorted runs of deviations below and above the median (no second sort); float64,
    0 where ``count`` is 0. :func:`median_mad` is the one for whole unsorted tiles.
    """
    split = xp.clip((rows < med[:, None]).sum(axis=1), lo, lo + count)
    n_a, n_b = split - lo, lo + count - split
    k1 = xp.maximum((count - 1) // 2, 0)
    k2 = xp.maximum(count // 2, 0)
    d1 = _kth_deviation(xp, rows, split, n_a, n_b, med, k1)
    d2 = _kth_deviation(xp, rows, split, n_a, n_b, med, k2)
    return xp.where(count > 0, 0.5 * (d1 + d2), 0.0)
