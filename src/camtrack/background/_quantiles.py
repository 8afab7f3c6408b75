"""Per-pixel quantiles over time for one spatial tile (numpy or cupy).

A tile arrives as (T, rows, cols) and is reduced along T. An 8/16/32-bit integer numpy
tile counts its order statistics (:mod:`camtrack._select`, about 10x faster than a partition
and with no pixel-major copy of the tile), also with a mask (not with sigma clipping);
other plain tiles use the backend's median/percentile (partition based). The masked and sigma-clipped path sorts
each pixel's time series once, with left-out samples replaced by +inf so they sort
last; the kept samples are then a contiguous index range of the sorted row, so every
quantile is two gathers and a linear interpolation (numpy's default "linear" method),
with no nan-functions and hence no RuntimeWarning for all-masked pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from camtrack import _backend
from camtrack._median import median_inplace, middle_pair, pixels_last, sorted_mad
from camtrack._outofcore import work_dtype
from camtrack._select import COUNTABLE, select_masked, select_ranks, use_counting

# MAD of a normal distribution in units of sigma.
_MAD_PER_SIGMA = 0.6744897501960817
_CLIP_ITERS = 5


def _lerp_at(xp: Any, rows: Any, lo: Any, count: Any, q: float) -> Any:
    """Quantile ``q`` (0..100) of the sorted samples ``rows[p, lo[p] : lo[p] + count[p]]``."""
    last = rows.shape[1] - 1
    span = xp.maximum(count - 1, 0).astype(xp.float64)
    pos = lo.astype(xp.float64) + (q / 100.0) * span
    i0 = xp.clip(xp.floor(pos).astype(xp.intp), 0, last)
    i1 = xp.clip(xp.minimum(i0 + 1, lo + count - 1), 0, last)
    frac = pos - i0
    v0 = xp.take_along_axis(rows, i0[:, None], axis=1)[:, 0].astype(xp.float64)
    v1 = xp.take_along_axis(rows, i1[:, None], axis=1)[:, 0].astype(xp.float64)
    return _lerp_values(xp, v0, v1, frac, count <= 0)


def _lerp_frac(xp: Any, count: Any, q: float, last: int) -> Any:
    """The interpolation weight of :func:`_lerp_at` (``lo = 0``), from the counts alone."""
    span = xp.maximum(count - 1, 0).astype(xp.float64)
    pos = 0.0 + (q / 100.0) * span
    return pos - xp.clip(xp.floor(pos).astype(xp.intp), 0, last)


def _lerp_values(xp: Any, v0: Any, v1: Any, frac: Any, empty: Any) -> Any:
    """numpy's linear interpolation between ``v0`` and ``v1`` (float64); NaN where empty."""
    v0 = xp.where(empty, 0.0, v0)
    v1 = xp.where(empty, 0.0, v1)
    with np.errstate(invalid="ignore"):  # inf samples: inf - inf only where frac is 0
        diff = v1 - v0
        # numpy's _lerp: symmetric form keeps the result inside [v0, v1].
        val = xp.where(frac >= 0.5, v1 - diff * (1.0 - frac), v0 + diff * frac)
        val = xp.where(frac == 0, v0, val)
    return xp.where(empty, xp.nan, val)


def _median_rows(rows: np.ndarray) -> np.ndarray:
    """``numpy.median(rows, axis=1)`` of a private pixel-major copy, by the engine's one
    median kernel (:func:`camtrack._median.median_inplace`, one partition)."""
    # The middle pair is averaged in the work dtype: numpy's own dtype for float32 and
    # float64; float16 in float32 (in float16 the mean of the middle pair would round
    # by up to its spacing, 2 ADU at 3000; float32 holds it exactly); 8/16-bit integers
    # in float32 (the sum of two fits exactly), wider ones in float64.
    res = median_inplace(rows, work_dtype(rows.dtype))
    if rows.dtype.kind == "f":
        # partition sorts NaN last; numpy's median is NaN for a pixel with any NaN.
        res[np.isnan(rows).any(axis=1)] = np.nan
    return res


def _integer_quantiles(tile: np.ndarray, qs: list[float], out_dtype: Any) -> np.ndarray:
    """Quantiles of an 8/16/32-bit integer tile from its order statistics, counted.

    Equal to numpy: the median averages the middle pair (even T) in float32 for 8/16-bit
    input, where the sum of two such values is exact (float64 for 32-bit), as
    :func:`_median_rows`; percentiles interpolate as numpy's "linear" method, in
    float64. One difference, on purpose: numpy forms the difference of the two samples
    in the input dtype, which wraps for signed integers whose samples span more than
    the dtype's positive range (int8 -100 and 100: numpy's 50th percentile is 128);
    here it is exact, as numpy gives for the same values in float64.
    """
    t, ny, nx = tile.shape
    if qs == [50.0]:
        lo, hi = middle_pair(tile)
        calc = work_dtype(tile.dtype)  # float32 for 8/16 bits (exact), else float64
        res = hi.astype(calc) if t % 2 else (lo.astype(calc) + hi.astype(calc)) / calc.type(2)
        return res.astype(out_dtype, copy=False)[None]
    # numpy's "linear" method: virtual index (T - 1) * q / 100, its floor and the next
    # sample (both the last one from T - 1 on), weight = the fractional part.
    pos = [(t - 1) * (q / 100.0) for q in qs]
    lows = [min(int(np.floor(p)), t - 1) for p in pos]
    highs = [min(i + 1, t - 1) for i in lows]
    ranks = sorted(set(lows) | set(highs))
    sel = select_ranks(tile, ranks)
    where = {r: k for k, r in enumerate(ranks)}
    res = np.empty((len(qs), ny, nx), dtype=out_dtype)
    for k, (p, i0, i1) in enumerate(zip(pos, lows, highs, strict=True)):
        v0 = sel[where[i0]].astype(np.float64)
        if i0 == i1:
            res[k] = v0
            continue
        v1 = sel[where[i1]].astype(np.float64)
        g = p - np.floor(p)
        diff = v1 - v0
        # numpy's _lerp: the form anchored on the nearer sample keeps the result in
        # [v0, v1] and makes it bit-equal to numpy's.
        res[k] = v1 - diff * (1.0 - g) if g >= 0.5 else v0 + diff * g
    return res


def tile_quantiles(
    tile: Any,
    qs: Sequence[float],
    *,
    valid: Any = None,
    sigma_clip: float | None = None,
    out_dtype: Any = np.float32,
    skip_nan: bool = False,
) -> Any:
    """Quantiles over axis 0 of a (T, rows, cols) tile -> (len(qs), rows, cols).

    ``valid`` (same shape as ``tile``, True = use) leaves samples out; ``sigma_clip``
    drops samples further than ``sigma_clip`` robust sigmas (1.4826 MAD) from the
    median, iterated on the kept samples until nothing changes (at most 5 passes).
    Pixels with no kept sample give NaN; a kept NaN sample makes the result NaN.

    ``skip_nan``: non-finite samples are left out too (missing data), and one more
    plane is appended: the per-pixel count of those samples, (len(qs) + 1, rows, cols).
    Tiles without any run the plain path (one ``isfinite`` pass more).
    """
    xp, _ = _backend.namespace(tile)
    if skip_nan:
        probe = tile.sum(axis=0, dtype=out_dtype) if tile.dtype.kind == "f" else None
        # Integers are always finite; a finite sum over time means every sample is (an
        # overflow only costs the exact count below), at a third of isfinite's cost.
        if probe is None or bool(xp.isfinite(probe).all()):
            missing = xp.zeros((1, *tile.shape[1:]), dtype=out_dtype)
        else:
            finite = xp.isfinite(tile)
            missing = (~finite).sum(axis=0, dtype=xp.int64)[None].astype(out_dtype)
            if bool(missing.any()):
                valid = finite if valid is None else (finite & xp.asarray(valid))
        res = tile_quantiles(tile, qs, valid=valid, sigma_clip=sigma_clip, out_dtype=out_dtype)
        return xp.concatenate([res, missing])
    t, ny, nx = tile.shape
    qs = [float(q) for q in qs]
    if valid is None and sigma_clip is None and xp is np and tile.dtype in COUNTABLE:
        return _integer_quantiles(tile, qs, out_dtype)
    if valid is not None and sigma_clip is None and use_counting(tile):
        # The kept samples' order statistics, counted: the same values and weights as
        # the sorted path below (see _lerp_at), without sorting (#18).
        v0, v1, count = select_masked(tile, valid, qs)
        empty = count <= 0
        res = np.empty((len(qs), ny, nx), dtype=out_dtype)
        for k, q in enumerate(qs):
            frac = _lerp_frac(np, count, q, t - 1)
            res[k] = _lerp_values(np, v0[k], v1[k], frac, empty)
        return res
    if valid is None and sigma_clip is None:
        if qs == [50.0] and xp is np:
            # Always a copy (also where the transpose is already contiguous, e.g. one
            # pixel or one frame): the partition runs in place.
            rows = pixels_last(tile)
            res = _median_rows(rows)[None]
            return res.astype(out_dtype, copy=False).reshape(1, ny, nx)
        # float16 is formed in float32 (see _median_rows); other dtypes as they come.
        calc = np.result_type(tile.dtype, np.float32) if tile.dtype.kind == "f" else tile.dtype
        rows = pixels_last(tile, calc)
        if qs == [50.0]:
            res = xp.median(rows, axis=1)[None]
        else:
            res = xp.percentile(rows, xp.asarray(qs), axis=1)
        return res.astype(out_dtype, copy=False).reshape(len(qs), ny, nx)

    rows = pixels_last(tile, out_dtype)
    p = rows.shape[0]
    has_nan = None
    if rows.dtype.kind == "f":
        nan = xp.isnan(rows)
        if valid is not None:
            nan &= pixels_last(valid, bool)
        has_nan = nan.any(axis=1)
    if valid is None:
        count = xp.full(p, t, dtype=xp.intp)
    else:
        keep = pixels_last(valid, bool)
        rows[~keep] = xp.inf
        count = keep.sum(axis=1).astype(xp.intp)
    rows.sort(axis=1)
    lo = xp.zeros(p, dtype=xp.intp)

    if sigma_clip is not None:
        for _ in range(_CLIP_ITERS):
            med = xp.where(count > 0, _lerp_at(xp, rows, lo, count, 50.0), 0.0)
            half = sigma_clip * sorted_mad(xp, rows, lo, count, med) / _MAD_PER_SIGMA
            lower = (rows < (med - half)[:, None]).sum(axis=1)
            upper = (rows <= (med + half)[:, None]).sum(axis=1)
            new_lo = xp.maximum(lo, lower)
            new_hi = xp.minimum(lo + count, upper)
            new_count = xp.maximum(new_hi - new_lo, 0)
            if bool(xp.all(new_lo == lo)) and bool(xp.all(new_count == count)):
                break
            lo, count = new_lo, new_count

    res = xp.stack([_lerp_at(xp, rows, lo, count, q) for q in qs])
    if has_nan is not None:
        res[:, has_nan] = xp.nan
    return res.astype(out_dtype).reshape(len(qs), ny, nx)
