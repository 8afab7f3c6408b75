"""Sliding-window median over time of 8/16-bit integer tiles: a per-pixel histogram.

Each pixel's window moves by one frame per output: one sample leaves, one enters. A
histogram of the window's values (bins = the integer values between the pixel's
minimum and maximum over the tile, at most 65536 for 16-bit data) is updated by one
decrement and one increment, and the median is a bin pointer with the count of
window samples below it, moved bin by bin until it holds rank ``window // 2`` again.
Camera samples vary by a few ADU from frame to frame, so the pointer moves a few
bins per output: about 3 memory operations per sample against about 50 min/max passes
of the comparator networks (:mod:`._sliding`), which stay the path for other dtypes
and without numba.

The compiled kernel (numba, ``cache=True``) works per row of the tile on blocks of
pixels: a transpose into a pixel-major buffer that stays in cache (with each pixel's
range), the sliding histogram per pixel writing its medians into a second
pixel-major buffer, then a transpose of those into the (frames, rows, cols) output,
which is written along its rows. Results equal :func:`numpy.median` of each window
exactly (an odd window: one sample, cast to the output's float dtype).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from camtrack import _select
from camtrack._jit import LazyJit

# Integer dtypes whose whole range fits the histogram (65536 int32 bins = 256 kB, in
# L2 cache; a pixel uses only its own range, a few hundred bins for camera data).
SLIDABLE = frozenset(np.dtype(t) for t in ("u1", "i1", "u2", "i2"))
_BINS = 65536
# Pixels per pixel-major block: the samples and the medians of one block, (pixels x T)
# each, stay within about 1 MB of L2 cache.
_BLOCK = 256
_BLOCK_BYTES = 2**19


def _rolling_kernel(  # pragma: no cover - compiled
    data, t_len, n_rows, n_cols, st, sy, window, starts, out, ost, osy, buf, med, lo, hi, hist
):
    n_win = t_len - window + 1
    block = buf.shape[0]
    for y in range(n_rows):
        for x0 in range(0, n_cols, block):
            width = min(block, n_cols - x0)
            _load_block(data, t_len, st, y * sy + x0, width, buf, lo, hi)
            for i in range(width):
                _slide_pixel(buf[i], lo[i], hi[i], window, n_win, med[i], hist)
            for j in range(starts.shape[0]):
                s = starts[j]
                row = j * ost + y * osy + x0
                for i in range(width):
                    out[row + i] = med[i, s]


def _slide_pixel(series, base, top, window, n_win, med, hist):  # pragma: no cover
    n_bins = top - base + 1
    for b in range(n_bins):
        hist[b] = 0
    for t in range(window):
        hist[series[t] - base] += 1
    rank = window // 2
    # cur: the median's bin; below: window samples in bins below cur.
    cur = 0
    below = 0
    while below + hist[cur] <= rank:
        below += hist[cur]
        cur += 1
    med[0] = base + cur
    for s in range(1, n_win):
        old = series[s - 1] - base
        new = series[s + window - 1] - base
        hist[old] -= 1
        if old < cur:
            below -= 1
        hist[new] += 1
        if new < cur:
            below += 1
        while below > rank:
            cur -= 1
            below -= hist[cur]
        while below + hist[cur] <= rank:
            below += hist[cur]
            cur += 1
        med[s] = base + cur


_load_block: Any = None  # _select's jitted block loader, bound by _rolling_jit (borrow)
# The kernel calls _slide_pixel and _select's _load_block through this module's
# globals: the one compiled first (helpers), the other borrowed from _select's kernels.
_rolling_jit = LazyJit(_rolling_kernel, helpers=(_slide_pixel,), borrow=(_select._kernels,), nogil=True, cache=True)  # fmt: skip


def _kernel() -> Any:
    """The compiled kernel (see :func:`camtrack._select._kernel`), or None."""
    return _rolling_jit()


def use_sliding(tile: Any) -> bool:
    """True when :func:`rolling_median_counted` can run on ``tile``."""
    return (
        isinstance(tile, np.ndarray)
        and tile.dtype in SLIDABLE
        and _select.HAVE_NUMBA
        and _kernel() is not None
    )


def rolling_median_counted(tile: np.ndarray, window: int, starts: Any, out: np.ndarray) -> None:
    """``out[j] = median(tile[starts[j] : starts[j] + window], axis=0)`` for every j.

    ``tile``: (T, rows, cols) of a :data:`SLIDABLE` dtype; ``window`` odd, <= T;
    ``starts``: window starts in [0, T - window]; ``out``: (len(starts), rows, cols),
    any float dtype (a view of a larger array is fine). Call only where
    :func:`use_sliding` is True.
    """
    t_len, n_rows, n_cols = tile.shape
    n_win = t_len - window + 1
    st = np.asarray(starts, dtype=np.int64)
    if st.size and (st.min() < 0 or st.max() >= n_win):
        raise ValueError(f"`starts` must lie in [0, {n_win}); got {st.min()}..{st.max()}.")
    if tile.size == 0 or st.size == 0:
        return
    per_px = 2 * t_len * tile.dtype.itemsize  # samples + medians
    block = max(16, min(_BLOCK, n_cols, _BLOCK_BYTES // per_px))
    buf = np.empty((block, t_len), dtype=tile.dtype)
    med = np.empty((block, n_win), dtype=tile.dtype)
    lo = np.empty(block, dtype=np.int64)
    hi = np.empty(block, dtype=np.int64)
    hist = np.empty(_BINS, dtype=np.int32)
    data, ts, ty = _select.flat_view(tile)
    target = out if _flat_ok(out) else np.empty(out.shape, out.dtype)
    flat_out, os_, oy = _select.flat_view(target)
    _kernel()(data, t_len, n_rows, n_cols, ts, ty, int(window), st, flat_out, os_, oy, buf, med, lo, hi, hist)  # fmt: skip
    if target is not out:
        out[...] = target


def _flat_ok(a: np.ndarray) -> bool:
    """True when :func:`_select.flat_view` maps ``a`` without a copy (writes reach ``a``)."""
    item = a.dtype.itemsize
    strides = [0 if n == 1 else s for n, s in zip(a.shape, a.strides, strict=True)]
    if a.shape[2] > 1 and strides[2] != item:
        return False
    return all(s >= 0 and s % item == 0 for s in strides) and a.flags.writeable
