"""The sparse median's cleansing in integers, for median images on a dyadic grid.

The comparison of the median images (the per-pixel reference, each image's own level,
the median absolute deviation, the counts above the threshold) runs on the images times
a power of 2 as integers when that makes them integers (images of integer stacks are
half-integers: x 2). Every value of the float computation is then a power-of-2
multiple of an integer here, so the counts are the same; medians come from the
bisection kernel and histograms (:mod:`._sparsecount`) instead of partitions: 83 ms ->
16 ms for 8 images of 512 x 512 (one core).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from camtrack import _select
from camtrack._jit import LazyJit
from camtrack.background import _sparsecount
from camtrack.background._sparsecount import _HIST_BINS, BISECTABLE, window_median

_rank_pair: Any = None  # _sparsecount's jitted selection, bound by _cleanse_jit (borrow)


def _deviation_kernel(grid, ref2, dev, hist):  # pragma: no cover - compiled
    """``dev[j] = |2 (2 grid[j] - ref2) - level_j|``: each image's deviation from the
    reference with its own median level removed, in units of 2**-(k + 2)."""
    n, p = grid.shape
    for j in range(n):
        g = grid[j]
        d = dev[j]
        for i in range(p):
            d[i] = 2 * np.int64(g[i]) - ref2[i]
        a, b = _rank_pair(d, (p - 1) // 2, hist)
        level = a + b if p % 2 == 0 else 2 * a
        for i in range(p):
            d[i] = abs(2 * d[i] - level)


def _count_kernel(dev, limit, counts):  # pragma: no cover - compiled
    for j in range(dev.shape[0]):
        d = dev[j]
        c = 0
        for i in range(d.shape[0]):
            if d[i] > limit:
                c += 1
        counts[j] = c


# The deviation kernel calls _sparsecount's _rank_pair through this module's globals:
# borrowed from the offsets' LazyJit, compiled first.
_cleanse_jit = LazyJit(_deviation_kernel, _count_kernel, borrow=(_sparsecount._offsets_jit,), nogil=True, cache=True)  # fmt: skip


def _cleanse_fns() -> Any:
    """The compiled (deviation, count, rank pair) kernels, or None without numba."""
    kernels = _cleanse_jit()
    return None if kernels is None else (*kernels, _rank_pair)


# Grid scales tried for the integer form of the cleansing, most likely first: median
# images of integer frames are half-integers (2**1; integers pass it too).
_GRID_SHIFTS = (1, 2, 3, 4)


def on_grid(images: np.ndarray) -> tuple[np.ndarray, int] | None:
    """``(images x 2**k as integers, k)`` for a k of :data:`_GRID_SHIFTS` that makes
    every value an integer below 2**40 (so that every intermediate value of the
    integer cleansing, at most 2**(k + 3) times larger, stays exact in float64); None
    otherwise, or without numba. ``images``: (n, P) float32 or float64."""
    if not _select.HAVE_NUMBA or _cleanse_fns() is None or images.size == 0:
        return None
    with np.errstate(invalid="ignore", over="ignore"):
        for k in _GRID_SHIFTS:
            scaled = images * images.dtype.type(2**k)  # exact: a power of 2
            ints = np.rint(scaled)
            if not np.array_equal(ints, scaled):  # NaN and inf fail here too
                continue
            peak = float(np.abs(ints).max())
            if peak >= 2.0**40:
                return None
            return ints.astype(np.int32 if peak < 2**29 else np.int64), k
    return None


def cleanse_counts(
    grid: np.ndarray, k: int, thresh: float, auto: Callable[[float], float]
) -> np.ndarray:
    """Per image the count of deviating pixels, as :func:`._sparse._cleanse`'s float
    path computes it, from ``grid`` = images x 2**k (integers, (n, P)). ``thresh <= 0``:
    the threshold is ``auto(median absolute deviation)``.

    Each float step of the float path is a value on a 2**-(k + 3) grid far below
    2**53, hence exact; here the same values are integers scaled by powers of two:
    ``dev x 2**(k + 1)`` after the reference, ``x 2**(k + 2)`` after each row's level,
    and the medians (the means of two middle values) are sums of two middle values.
    """
    deviation, count, rank_pair = _cleanse_fns()
    n, p = grid.shape
    # the reference (per-pixel median over the images) by the bisection kernel:
    # x 2 it is an integer, the sum of the column's two middle values
    ref = np.empty((1, p), dtype=np.float64)
    if grid.dtype in BISECTABLE:
        window_median(grid.reshape(n, 1, p), ref)
    else:
        ref[0] = np.median(grid, axis=0)  # exact: int64 values below 2**40
    ref2 = (ref[0] * 2.0).astype(np.int64)
    dev = np.empty((n, p), dtype=np.int64)
    hist = np.empty((4, _HIST_BINS), dtype=np.int32)
    deviation(grid, ref2, dev, hist)  # |dev| x 2**(k + 2)
    unit = float(2 ** (k + 2))
    if thresh <= 0:
        flat = dev.reshape(-1)
        a, b = rank_pair(flat, (flat.size - 1) // 2, hist)
        twice = int(a) + int(b if flat.size % 2 == 0 else a)
        thresh = auto(twice / (2.0 * unit))  # exact: powers of 2
    counts = np.empty(n, dtype=np.int64)
    # |dev| > thresh  <=>  |dev| x unit > thresh x unit (exact scalings)
    count(dev, thresh * unit, counts)
    return counts
