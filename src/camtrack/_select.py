"""Order statistics over time of integer tiles by counting, not sorting.

``select_ranks(tile, ranks)`` returns, for every pixel of a (T, rows, cols) integer
tile, the values of rank ``ranks[j]`` (0-based, ascending) of its T samples: the
order statistics a median or a linear percentile interpolates between. The result is
exactly what a sort (or :func:`numpy.partition`) would give, so the quantiles built
from it equal numpy's bit for bit.

Why counting: a camera pixel's samples over time span a narrow range of integer
values (a few hundred ADU around its background, for a few hundred to thousands of
frames), so one histogram pass of the samples and one cumulative scan over that range
find every rank, about 2 operations per sample, where an introselect partition costs
about 10 with branch misses. The compiled kernel (numba) works per row of the tile:

1. a transpose of the row's (T, cols) slab into a pixel-major buffer of the tile's
   dtype that stays in L2 cache (cols x T samples, 400 kB at 512 x 400 uint16), with each
   pixel's minimum and maximum in the same pass;
2. per pixel, a histogram of ``value - minimum`` in ``_BINS`` int32 bins (16 kB, in
   L1) when its range fits, then one cumulative scan that walks all ranks at once;
3. a wider range (a hot pixel, a cosmic ray, 32-bit data) bins ``(value - minimum) >>
   shift`` so that it fits, then gathers the samples of each bin that holds a
   wanted rank and sorts only those (a handful, unless the samples crowd one bin).

``select_masked`` does the same over each pixel's kept samples (a mask), with ranks
that follow from each pixel's count of kept samples.

Without numba the same ranks come from :func:`numpy.partition` on a pixel-major copy
(``select_ranks_numpy``; the masked path sorts), slower but equal: the tests compare
both paths.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

from camtrack._jit import LazyJit

# numba is imported on the first call, not with the engine: its import alone takes
# about 0.8 s here, which `import camtrack` should not pay.
HAVE_NUMBA = importlib.util.find_spec("numba") is not None

# Integer dtypes the compiled kernel handles: value - minimum is exact in int64 for
# every one of them (64-bit integers are left to numpy.partition).
COUNTABLE = frozenset(np.dtype(t) for t in ("u1", "i1", "u2", "i2", "u4", "i4"))

# Histogram bins per pixel: 4096 int32 = 16 kB stays in L1 cache with the pixel's
# samples; covers the range of any 12-bit camera and of almost every 16-bit pixel
# series (a few hundred ADU), so the gather-and-sort branch is rare.
_BINS = 4096
# Pixels per pixel-major block: up to a whole 512-px row (measured at 400 frames: 512
# beat 64 by 1.5x, the transpose's writes then run along full buffer rows), capped so
# the block (cols x T samples) stays within 512 kB of L2 cache for long stacks.
_BLOCK = 512
_BLOCK_BYTES = 2**19


def _select_kernel(  # pragma: no cover - compiled
    data, t_len, n_rows, n_cols, st, sy, ranks, out, buf, lo, hi, hist, cand
):
    block = buf.shape[0]
    for y in range(n_rows):
        for x0 in range(0, n_cols, block):
            width = min(block, n_cols - x0)
            _load_block(data, t_len, st, y * sy + x0, width, buf, lo, hi)
            for i in range(width):
                _select_pixel(buf[i], lo[i], hi[i], ranks, out, y, x0 + i, hist, cand)


def _load_block(data, t_len, st, row0, width, buf, lo, hi):  # pragma: no cover - compiled
    """Pixel-major copy of ``width`` pixels from flat offset ``row0`` over all frames
    (stride ``st``) into ``buf`` (pixel, frame), with each pixel's range in lo, hi."""
    for i in range(width):
        v = np.int64(data[row0 + i])
        lo[i] = v
        hi[i] = v
    for t in range(t_len):
        row = t * st + row0
        for i in range(width):
            v = np.int64(data[row + i])
            buf[i, t] = v
            if v < lo[i]:
                lo[i] = v
            if v > hi[i]:
                hi[i] = v


def _select_pixel(series, base, top, ranks, out, y, x, hist, cand):  # pragma: no cover
    t_len = series.shape[0]
    n_ranks = ranks.shape[0]
    span = top - base
    shift = 0
    while (span >> shift) >= _BINS:
        shift += 1
    n_bins = (span >> shift) + 1
    for b in range(n_bins):
        hist[b] = 0
    for t in range(t_len):
        hist[(series[t] - base) >> shift] += 1
    # 2. one cumulative scan walks every wanted rank (ranks are ascending).
    j = 0
    below = 0  # samples in the bins before b
    b = 0
    while j < n_ranks:
        upto = below + hist[b]
        if ranks[j] < upto:
            if shift == 0:
                out[j, y, x] = base + b
                j += 1
                continue
            # 3. wide range: sort only the samples of bin b.
            m = 0
            for t in range(t_len):
                v = series[t]
                if ((v - base) >> shift) == b:
                    cand[m] = v
                    m += 1
            part = cand[:m]
            part.sort()
            while j < n_ranks and ranks[j] < upto:
                out[j, y, x] = part[ranks[j] - below]
                j += 1
            continue
        below = upto
        b += 1


def _masked_kernel(  # pragma: no cover - compiled
    data, t_len, n_rows, n_cols, st, sy, keep, kst, ksy, qf, v0, v1, count, buf, lo, hi, kept, hist, cand, ranks, order, vals
):  # fmt: skip
    n_q = qf.shape[0]
    block = buf.shape[0]
    for y in range(n_rows):
        for x0 in range(0, n_cols, block):
            width = min(block, n_cols - x0)
            # the kept samples of each pixel of the block, pixel-major, and their range
            for i in range(width):
                kept[i] = 0
            for t in range(t_len):
                row = t * st + y * sy + x0
                krow = t * kst + y * ksy + x0
                for i in range(width):
                    if keep[krow + i]:
                        v = np.int64(data[row + i])
                        n = kept[i]
                        if n == 0 or v < lo[i]:
                            lo[i] = v
                        if n == 0 or v > hi[i]:
                            hi[i] = v
                        buf[i, n] = v
                        kept[i] = n + 1
            for i in range(width):
                n = kept[i]
                count[y, x0 + i] = n
                if n == 0:
                    continue
                # numpy's "linear" positions over the n kept samples, formed as _lerp_at
                span = np.float64(n - 1)
                for k in range(n_q):
                    pos = 0.0 + qf[k] * span
                    i0 = min(max(np.int64(np.floor(pos)), 0), t_len - 1)
                    i1 = min(max(min(i0 + 1, n - 1), 0), t_len - 1)
                    ranks[2 * k] = i0
                    ranks[2 * k + 1] = i1
                    order[2 * k] = 2 * k
                    order[2 * k + 1] = 2 * k + 1
                # insertion sort of the 2 * n_q ranks (a handful), carrying their slots
                for a in range(1, 2 * n_q):
                    r = ranks[a]
                    o = order[a]
                    b = a - 1
                    while b >= 0 and ranks[b] > r:
                        ranks[b + 1] = ranks[b]
                        order[b + 1] = order[b]
                        b -= 1
                    ranks[b + 1] = r
                    order[b + 1] = o
                _select_pixel(buf[i, :n], lo[i], hi[i], ranks, vals, 0, 0, hist, cand)
                for m in range(2 * n_q):
                    o = order[m]
                    if o % 2 == 0:
                        v0[o // 2, y, x0 + i] = vals[m, 0, 0]
                    else:
                        v1[o // 2, y, x0 + i] = vals[m, 0, 0]


# The compiled kernels (plain and masked), built on first use: numba then compiles each
# once per input dtype and memory layout and caches the machine code on disk
# (``cache=True``), so later processes only load it (about 0.1 s). They call
# _select_pixel and _load_block through this module's globals: those are compiled
# first (helpers).
_kernels = LazyJit(_select_kernel, _masked_kernel, helpers=(_select_pixel, _load_block), nogil=True, cache=True)  # fmt: skip


def _kernel() -> Any:
    """The compiled kernel, or None without a working numba."""
    kernels = _kernels()
    return None if kernels is None else kernels[0]


def _masked() -> Any:
    """The compiled masked kernel, or None without a working numba."""
    kernels = _kernels()
    return None if kernels is None else kernels[1]


def use_counting(tile: Any) -> bool:
    """True when :func:`select_ranks` runs the compiled counting kernel on ``tile``."""
    return (
        isinstance(tile, np.ndarray)
        and tile.dtype in COUNTABLE
        and HAVE_NUMBA
        and _kernel() is not None
    )


def _check_ranks(ranks: Any, t_len: int) -> np.ndarray:
    r = np.asarray(ranks, dtype=np.int64)
    if r.ndim != 1 or r.size == 0 or r[0] < 0 or r[-1] >= t_len or np.any(np.diff(r) <= 0):
        raise ValueError(
            f"`ranks` must be strictly ascending integers in [0, {t_len}); got {ranks!r}."
        )
    return r


def select_ranks(tile: np.ndarray, ranks: Any) -> np.ndarray:
    """Order statistics over axis 0: (T, rows, cols) -> (len(ranks), rows, cols).

    ``ranks``: strictly ascending 0-based ranks. The result has the tile's dtype and
    equals ``numpy.partition(tile, ranks, axis=0)[ranks]``. Integer tiles of a
    :data:`COUNTABLE` dtype are counted by the compiled kernel (GIL released, so
    tiles run on threads); anything else, or no numba, goes through numpy.
    """
    t_len, n_rows, n_cols = tile.shape
    r = _check_ranks(ranks, t_len)
    if not use_counting(tile):
        return select_ranks_numpy(tile, r)
    out = np.empty((r.size, n_rows, n_cols), dtype=tile.dtype)
    if tile.size == 0:
        return out
    block = max(16, min(_BLOCK, n_cols, _BLOCK_BYTES // (t_len * tile.dtype.itemsize)))
    buf = np.empty((block, t_len), dtype=tile.dtype)
    lo = np.empty(block, dtype=np.int64)
    hi = np.empty(block, dtype=np.int64)
    hist = np.empty(_BINS, dtype=np.int32)
    cand = np.empty(t_len, dtype=np.int64)
    data, st, sy = flat_view(tile)
    _kernel()(data, t_len, n_rows, n_cols, st, sy, r, out, buf, lo, hi, hist, cand)
    return out


def flat_view(a: np.ndarray) -> tuple[np.ndarray, int, int]:
    """A (T, rows, cols) array as (1-D contiguous span, frame stride, row stride).

    The span is a view from ``a[0, 0, 0]`` to ``a[-1, -1, -1]`` with unit stride, so
    numba compiles the kernels for contiguous 1-D data: a tile cut from a larger stack
    (``stack[:, ys, xs]``) would otherwise be typed as a strided 3-D array, which ran
    the counting kernel 1.9x slower. Element ``[t, y, x]`` is ``span[t * st + y * sy +
    x]``. The span lies inside the array's own buffer (numpy views are one block of
    memory), and the kernels read or write only the elements of ``a`` through it.
    Arrays whose columns are not adjacent (or with negative strides) are copied first.
    """
    item = a.dtype.itemsize
    strides = list(a.strides)
    for k, n in enumerate(a.shape):
        if n == 1:
            strides[k] = 0  # any stride: never stepped
    if (a.shape[2] > 1 and strides[2] != item) or any(s < 0 or s % item for s in strides):
        a = np.ascontiguousarray(a)
        return flat_view(a)
    span = sum((n - 1) * s for n, s in zip(a.shape, strides, strict=True)) // item + 1
    flat = np.lib.stride_tricks.as_strided(a, shape=(span,), strides=(item,))
    return flat, strides[0] // item, strides[1] // item


def select_ranks_numpy(tile: np.ndarray, ranks: Any) -> np.ndarray:
    """The pure-numpy path of :func:`select_ranks`: one partition of a pixel-major copy."""
    t_len, n_rows, n_cols = tile.shape
    r = _check_ranks(ranks, t_len)
    rows = np.ascontiguousarray(tile.reshape(t_len, -1).T)
    rows.partition(r, axis=1)
    return np.ascontiguousarray(rows[:, r].T).reshape(r.size, n_rows, n_cols)


def select_masked(
    tile: np.ndarray, keep: np.ndarray, qs: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The two samples each linear percentile interpolates between, over kept samples.

    ``tile`` (T, rows, cols) of a :data:`COUNTABLE` dtype, ``keep`` a bool array of the
    same shape (True = use); ``qs`` percentiles in [0, 100]. Returns ``(v0, v1,
    count)``: float64 (len(qs), rows, cols) samples of rank ``floor(pos)`` and the next
    one (the last kept at most), ``pos = (q / 100) * (count - 1)``, and the int64
    count of kept samples per pixel (where it is 0, v0 and v1 are undefined). Call
    only where :func:`use_counting` is True.
    """
    t_len, n_rows, n_cols = tile.shape
    qf = np.array([float(q) / 100.0 for q in qs], dtype=np.float64)
    v0 = np.empty((qf.size, n_rows, n_cols), dtype=np.float64)
    v1 = np.empty_like(v0)
    count = np.zeros((n_rows, n_cols), dtype=np.int64)
    if tile.size == 0:
        return v0, v1, count
    keep = np.asarray(keep, dtype=bool)
    data, st, sy = flat_view(tile)
    kflat, kst, ksy = flat_view(keep)
    block = max(16, min(_BLOCK, n_cols, _BLOCK_BYTES // (t_len * tile.dtype.itemsize)))
    buf = np.empty((block, t_len), dtype=tile.dtype)
    lo = np.empty(block, dtype=np.int64)
    hi = np.empty(block, dtype=np.int64)
    kept = np.empty(block, dtype=np.int64)
    hist = np.empty(_BINS, dtype=np.int32)
    cand = np.empty(t_len, dtype=np.int64)
    ranks = np.empty(2 * qf.size, dtype=np.int64)
    order = np.empty(2 * qf.size, dtype=np.int64)
    vals = np.empty((2 * qf.size, 1, 1), dtype=np.int64)
    _masked()(data, t_len, n_rows, n_cols, st, sy, kflat, kst, ksy, qf, v0, v1, count, buf, lo, hi, kept, hist, cand, ranks, order, vals)  # fmt: skip
    return v0, v1, count
