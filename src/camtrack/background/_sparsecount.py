"""Compiled kernels of the sparse median for integer stacks: short-window medians by
bisection on the value, per-frame offsets by counting.

Window medians. A sparse median reduces a few dozen to a few hundred frames per image,
where the counting kernel of :mod:`camtrack._select` spends most of its time outside the
count: the transpose into a pixel-major buffer, clearing and scanning a histogram per
pixel. Here the frames are read in their own (frame-major) layout, a block of pixels
of one row at a time (the block's samples of every frame stay in L1/L2 cache), and
every pixel of the block bisects its value range in lock step:

1. one pass of minimum and maximum per pixel (the bracket of every rank);
2. per step, one pass counting the samples ``<= mid`` per pixel, then each bracket
   keeps the half that holds rank ``(T - 1) // 2``; ``ceil(log2(span + 1))`` steps
   (6 or 7 for the few dozen ADU of a camera pixel's shot noise);
3. for an even count one more pass: how many samples equal that value and the smallest
   sample above it give rank ``T // 2``.

Every pass is a compare and an add per sample over contiguous pixels, which the
compiler vectorises (AVX-512: 32 uint16 lanes), against a scattered histogram increment
per sample. Measured on 400 x 512 x 512 uint16 (8 windows of 50 frames, one core):
0.45 s for the counting kernel, 0.10 s here. A pixel with a wide range (a hot pixel,
32-bit data) only costs its block more steps (at most the dtype's bits).

Offsets. The offset of a frame is the median of ``frame - image`` over a region (a few
ten thousand pixels). For integer frames and images holding half-integers (the
median images of such frames do), ``2 * (frame - image)`` is an integer, so the
median follows from a histogram of those integers, exactly numpy's float median, with
no float copies of the region: 0.68 s -> 0.02-0.03 s for the 400 frames above.

The cleansing's integer form (:mod:`._sparseclean`) uses :func:`_rank_pair` too.

All equal :func:`numpy.median` bit for bit; the callers keep their numpy paths for
everything else (and without numba), and the tests compare both.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from camtrack import _select
from camtrack._jit import LazyJit

# Dtypes of the bisection kernel: their values and midpoints are exact in int64.
BISECTABLE = _select.COUNTABLE
# Pixels per block: a whole row of a 512-px frame (at 50 frames, 512 ran 1.1x faster
# than 256 and 1.3x faster than 128: fewer per-frame loop overheads), capped so that
# the block's samples of every frame (re-read once per bisection step) stay within
# 1 MB of L2 cache for long windows.
_BLOCK = 512
_BLOCK_BYTES = 2**20
# Histogram bins of the offsets' selection: 2 x (frame - image) over a region spans a
# few hundred values (twice the shot noise); 4096 int32 (16 kB) stay in L1 cache.
_HIST_BINS = 4096
# Bins of the offsets' one-pass selection around the previous frame's value: only the
# two middle ranks must fall inside, and the median moves by a few ADU between frames
# (fewer bins to clear and scan: 1.5x faster than the whole 4096).
_NEAR_BINS = 254
# Frames gathered together by the offsets kernel (see _offsets_kernel).
_FRAME_GROUP = 4


def _median_kernel(data, t_len, n_rows, n_cols, st, sy, out, lo, hi, mid, cnt, above):  # pragma: no cover - compiled  # fmt: skip
    # The inner loops run over slices of one frame's row: with a computed flat index
    # (data[row + i]) numba's code did not vectorise and ran 8x slower.
    rank = (t_len - 1) // 2
    even = t_len % 2 == 0
    block = lo.shape[0]
    for y in range(n_rows):
        for x0 in range(0, n_cols, block):
            width = min(block, n_cols - x0)
            base = y * sy + x0
            first = data[base : base + width]
            lo_, hi_, mid_, cnt_, above_ = lo[:width], hi[:width], mid[:width], cnt[:width], above[:width]  # fmt: skip
            for i in range(width):
                lo_[i] = first[i]
                hi_[i] = first[i]
            for t in range(1, t_len):
                d = data[base + t * st : base + t * st + width]
                for i in range(width):
                    lo_[i] = min(lo_[i], d[i])
                    hi_[i] = max(hi_[i], d[i])
            span = 0
            for i in range(width):
                above_[i] = hi_[i]  # the largest sample, for the even count below
                span = max(span, np.int64(hi_[i]) - np.int64(lo_[i]))
            while span > 0:
                for i in range(width):
                    mid_[i] = lo_[i] + (np.int64(hi_[i]) - np.int64(lo_[i])) // 2
                    cnt_[i] = 0
                for t in range(t_len):
                    d = data[base + t * st : base + t * st + width]
                    for i in range(width):
                        if d[i] <= mid_[i]:
                            cnt_[i] += 1
                span = 0
                for i in range(width):
                    if cnt_[i] > rank:
                        hi_[i] = mid_[i]
                    else:
                        lo_[i] = mid_[i] + 1
                    span = max(span, np.int64(hi_[i]) - np.int64(lo_[i]))
            if not even:
                for i in range(width):
                    out[y, x0 + i] = lo_[i]
                continue
            # rank + 1: the same value if more than rank + 1 samples are <= it, else
            # the smallest sample above it (``above`` starts at the largest sample).
            for i in range(width):
                cnt_[i] = 0
            for t in range(t_len):
                d = data[base + t * st : base + t * st + width]
                for i in range(width):
                    v = d[i]
                    if v <= lo_[i]:
                        cnt_[i] += 1
                    elif v < above_[i]:
                        above_[i] = v
            for i in range(width):
                a = np.float64(lo_[i])
                b = a if cnt_[i] > rank + 1 else np.float64(above_[i])
                # numpy: mean of the middle pair; exact (a + b < 2**33) in float64,
                # and then in the output's float32 for 8/16-bit data, as numpy's.
                out[y, x0 + i] = (a + b) * 0.5


# Compiled on first use, after _select's kernels (None where those are: no numba, or
# switched off).
_median_jit = LazyJit(_median_kernel, borrow=(_select._kernels,), nogil=True, cache=True)


def _kernel() -> Any:
    """The compiled median kernel, or None without numba (see :func:`camtrack._select._kernel`)."""
    return _median_jit()


def use_bisection(stack: Any) -> bool:
    """True when :func:`window_median` runs on ``stack`` (numpy, a bisectable dtype)."""
    return (
        isinstance(stack, np.ndarray)
        and stack.dtype in BISECTABLE
        and _select.HAVE_NUMBA
        and _kernel() is not None
    )


def window_median(tile: np.ndarray, out: np.ndarray) -> None:
    """``out[...] = numpy.median(tile, axis=0)`` for a (T, rows, cols) integer tile.

    ``out``: (rows, cols) float32 or float64 (a view is fine). Call only where
    :func:`use_bisection` is True.
    """
    t_len, n_rows, n_cols = tile.shape
    if tile.size == 0:
        return
    data, st, sy = _select.flat_view(tile)
    block = min(_BLOCK, n_cols, max(64, _BLOCK_BYTES // (t_len * tile.dtype.itemsize)))
    # brackets in the tile's dtype (every bracket lies within its values): the
    # compares then run on as many lanes as the data's width allows
    lo, hi, mid, above = (np.empty(block, dtype=tile.dtype) for _ in range(4))
    cnt = np.empty(block, dtype=_count_dtype(tile.dtype, t_len))
    _kernel()(data, t_len, n_rows, n_cols, st, sy, out, lo, hi, mid, cnt, above)


def _count_dtype(dtype: np.dtype, t_len: int) -> np.dtype:
    """Counts as wide as the samples where they hold ``t_len``: the compares and adds
    then share one vector width (uint16 counts of uint16 samples ran 25 % faster than
    int32 ones)."""
    for cand in (np.uint8, np.uint16, np.uint32, np.uint64):
        c = np.dtype(cand)
        if c.itemsize >= dtype.itemsize and t_len <= np.iinfo(c).max:
            return c
    return np.dtype(np.uint64)  # pragma: no cover - more frames than 2**64


def _offsets_kernel(data, st, sy, run_y, run_x, run_n, idx, img2, rank, vals, buf, hist):  # pragma: no cover - compiled  # fmt: skip
    # Frames in groups of ``buf.shape[0]``, run by run: the region's short runs (20 px
    # of a 512-px row) each cost a cache miss, and the misses of several frames then
    # overlap (1.4x faster than frame after frame).
    n_t = idx.shape[0]
    group = buf.shape[0]
    for t0 in range(0, n_t, group):
        m = min(group, n_t - t0)
        pos = 0
        for r in range(run_y.shape[0]):
            n = run_n[r]
            off = run_y[r] * sy + run_x[r]
            for u in range(m):
                start = (t0 + u) * st + off
                d = data[start : start + n]
                im = img2[idx[t0 + u], pos : pos + n]
                dst = buf[u, pos : pos + n]
                for i in range(n):
                    dst[i] = 2 * np.int64(d[i]) - im[i]
            pos += n
        for u in range(m):
            t = t0 + u
            found = False
            if t > 0:  # frame to frame, the offset moves by a few ADU
                found, lo, hi = _rank_pair_near(buf[u], rank, hist, vals[t - 1, 0])
            if not found:
                lo, hi = _rank_pair(buf[u], rank, hist)
            vals[t, 0] = lo
            vals[t, 1] = hi


def _rank_pair_near(buf, rank, hist, guess):  # pragma: no cover - compiled
    """:func:`_rank_pair` in one pass where both ranks lie within the histogram's
    width around ``guess``: ``(True, a, b)``, else ``(False, 0, 0)``. Values beyond
    either side are only counted, so an outlier (a hot pixel) costs nothing, and no
    minimum and maximum pass is needed."""
    n = buf.shape[0]
    width = _NEAR_BINS  # bin 0: below the window, bin width + 1: above it
    base = np.int64(guess) - width // 2 - 1
    h0 = hist[0]
    h1 = hist[1]
    h2 = hist[2]
    h3 = hist[3]
    for k in range(width + 2):
        h0[k] = 0
        h1[k] = 0
        h2[k] = 0
        h3[k] = 0
    n4 = n - n % 4
    for i in range(0, n4, 4):
        h0[min(max(np.int64(buf[i]) - base, 0), width + 1)] += 1
        h1[min(max(np.int64(buf[i + 1]) - base, 0), width + 1)] += 1
        h2[min(max(np.int64(buf[i + 2]) - base, 0), width + 1)] += 1
        h3[min(max(np.int64(buf[i + 3]) - base, 0), width + 1)] += 1
    for i in range(n4, n):
        h0[min(max(np.int64(buf[i]) - base, 0), width + 1)] += 1
    below = h0[0] + h1[0] + h2[0] + h3[0]
    if below > rank:
        return False, np.int64(0), np.int64(0)
    last = min(rank + 1, n - 1)
    a = np.int64(0)
    have_a = False
    for k in range(1, width + 1):
        c = h0[k] + h1[k] + h2[k] + h3[k]
        if c == 0:
            continue
        upto = below + c
        if not have_a and rank < upto:
            a = base + k
            have_a = True
        if have_a and last < upto:
            return True, a, base + k
        below = upto
    return False, np.int64(0), np.int64(0)


def _rank_pair(buf, rank, hist):  # pragma: no cover - compiled
    """Values of ranks ``rank`` and ``rank + 1`` (0-based; ``rank + 1`` clipped to the
    last) of ``buf``, by histograms: a range wider than the histogram is binned
    coarsely, then only the wanted bin's samples are counted again at a finer
    resolution, until bins are single values (at most 3 levels for 33-bit ranges)."""
    n = buf.shape[0]
    n_bins = hist.shape[1]
    hist2 = hist[1]
    hist3 = hist[2]
    hist4 = hist[3]
    hist = hist[0]
    lo = buf[0]
    hi = buf[0]
    for i in range(n):
        lo = min(lo, buf[i])
        hi = max(hi, buf[i])
    base = lo
    top = hi
    want = rank  # rank among the samples in [base, top]
    first = True
    while True:
        shift = 0
        while ((top - base) >> shift) >= n_bins:
            shift += 1
        used = ((top - base) >> shift) + 1
        if first:
            # four interleaved histograms: runs of equal values (the samples crowd a
            # few bins) would otherwise wait on each other's increments
            for b in range(used):
                hist[b] = 0
                hist2[b] = 0
                hist3[b] = 0
                hist4[b] = 0
            n4 = n - n % 4
            for i in range(0, n4, 4):
                hist[(buf[i] - base) >> shift] += 1
                hist2[(buf[i + 1] - base) >> shift] += 1
                hist3[(buf[i + 2] - base) >> shift] += 1
                hist4[(buf[i + 3] - base) >> shift] += 1
            for i in range(n4, n):
                hist[(buf[i] - base) >> shift] += 1
            for b in range(used):
                hist[b] += hist2[b] + hist3[b] + hist4[b]
        else:
            for b in range(used):
                hist[b] = 0
            for i in range(n):
                v = buf[i]
                if v >= base and v <= top:
                    hist[(v - base) >> shift] += 1
        below = 0
        b = 0
        while below + hist[b] <= want:
            below += hist[b]
            b += 1
        if shift == 0:
            a = base + b
            if below + hist[b] > want + 1 or rank + 1 >= n:
                return a, a
            nxt = b + 1
            while nxt < used and hist[nxt] == 0:
                nxt += 1
            if nxt < used:
                return a, base + nxt
            above = hi  # the next sample lies outside this level's range
            for i in range(n):
                v = buf[i]
                if v > a and v < above:
                    above = v
            return a, above
        want -= below
        base = base + (b << shift)
        top = min(top, base + (1 << shift) - 1)
        first = False


# The offsets' kernel calls _rank_pair and _rank_pair_near through this module's
# globals: compiled first (helpers); the cleansing borrows _rank_pair from here.
_offsets_jit = LazyJit(_offsets_kernel, helpers=(_rank_pair, _rank_pair_near), borrow=(_select._kernels,), nogil=True, cache=True)  # fmt: skip


def _offsets_fn() -> Any:
    """The compiled offsets kernel, or None without numba."""
    return _offsets_jit()


class OffsetPlan:
    """The offset region as runs of adjacent pixels per row (row-major order)."""

    def __init__(self, region: np.ndarray) -> None:
        ys, xs = np.nonzero(region)  # row-major: runs are consecutive columns of a row
        breaks = np.flatnonzero((np.diff(ys) != 0) | (np.diff(xs) != 1)) + 1
        starts = np.concatenate([[0], breaks])
        self.region = region
        self.run_y = ys[starts].astype(np.int64)
        self.run_x = xs[starts].astype(np.int64)
        self.run_n = np.diff(np.concatenate([starts, [ys.size]])).astype(np.int64)
        self.n = int(ys.size)


def offset_plan(stack: Any, images: Any, region: np.ndarray) -> OffsetPlan | None:
    """A plan for :func:`offsets_counted`, or None where it cannot apply: it needs
    numpy images, a stack (numpy or dask; only its dtype is used) of a
    :data:`BISECTABLE` dtype, and numba."""
    if (
        np.dtype(stack.dtype) not in BISECTABLE
        or not isinstance(images, np.ndarray)
        or not _select.HAVE_NUMBA
        or _offsets_fn() is None
    ):
        return None
    return OffsetPlan(region)


def offsets_counted(
    frames: np.ndarray, idx: Any, images: np.ndarray, plan: OffsetPlan, out_dtype: Any
) -> np.ndarray | None:
    """Per frame ``median((frame - images[idx[t]])[region])``, equal to numpy's float
    median of those differences (see the module notes). ``frames``: (t, Y, X) numpy of a
    :data:`BISECTABLE` dtype; ``idx``: (t,) image indices. None where the images used
    are not half-integers over the region (the caller then takes the float path)."""
    n_t = frames.shape[0]
    out = np.empty(n_t, dtype=out_dtype)
    if n_t == 0:
        return out
    # 2 x the images this block uses, over the region, as integers (only these: for a
    # long stack, all images' regions would add up to hundreds of MB)
    used, local = np.unique(np.asarray(idx, dtype=np.int64), return_inverse=True)
    twice = images[used][:, plan.region].astype(np.float64) * 2.0
    with np.errstate(invalid="ignore"):
        exact = bool(np.isfinite(twice).all()) and bool((np.rint(twice) == twice).all())
    if not exact or np.abs(twice).max(initial=0.0) >= 2.0**62:
        return None
    # int32 where 2 x (frame - image) fits (8/16-bit frames): half the bytes to move
    small = frames.dtype.itemsize <= 2
    img2 = twice.astype(np.int32 if small else np.int64)
    n = plan.n
    vals = np.empty((n_t, 2), dtype=np.int64)
    data, st, sy = _select.flat_view(frames)
    buf = np.empty((_FRAME_GROUP, n), dtype=img2.dtype)
    hist = np.empty((4, _HIST_BINS), dtype=np.int32)
    local = local.astype(np.int64).reshape(-1)
    _offsets_fn()(data, st, sy, plan.run_y, plan.run_x, plan.run_n, local, img2, (n - 1) // 2, vals, buf, hist)  # fmt: skip
    lo = vals[:, 0].astype(np.float64)
    # an odd count: the middle value twice (rank + 1 is only used for even counts)
    hi = vals[:, 1 if n % 2 == 0 else 0].astype(np.float64)
    # (lo + hi) / 4: the mean of the two middle differences, each a half of an
    # integer; exact in float64 and then in float32, as numpy's median of the floats
    out[:] = (lo + hi) * 0.25
    return out
