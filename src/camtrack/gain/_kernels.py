"""Per-pixel temporal statistics of one spatial tile: the numeric kernels of the gain engine.

The mergeable kernel, written once against the array module ``xp`` (numpy or cupy):
:func:`moment_sums` streams a block of frames slab by slab (a few MB, so the work
  stays in cache) and returns *sums* that merge exactly across blocks of frames
  (:func:`merge_sums`): mean and centred second moment (Chan's parallel update), the
  sums of first differences and of their squares, and per-pixel min and max.
  Everything the ``meanvar`` and ``diff`` methods (and ``auto``'s choice) need is a
  sum, so a stack of any length is reduced in bounded memory. The median and MAD need
  all frames of a pixel at once (a median does not merge): the engine's one kernel for
  them is :func:`camtrack._median.median_mad`, shared with the background engine.

Input is cast to the work dtype (:func:`~camtrack._outofcore.fitted_work_dtype`, the
engine's one rule) slab by slab (never fed to a slow
integer path); each slab's sums (at most :data:`SLAB_FRAMES` terms) are formed in the
work dtype and accumulated in float64. The work dtype is float32 unless float32 would
round the data: float64 input, and integers beyond 2**24, run in float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from camtrack._outofcore import fitted_work_dtype

__all__ = [
    "OVERLAP", "SLAB_FRAMES", "finalize", "merge_sums", "moment_sums",
]  # fmt: skip

OVERLAP = 1  # frames a block must see beyond its own to close its last difference
SLAB_FRAMES = 63  # own frames per slab; 64 with the look-ahead
_SLAB_BYTES = 2 * 2**20  # one slab buffer: cache-sized
_KEYS = ("s1", "s2", "d1_sum", "d1_sq")


def moment_sums(xp: Any, block: Any, own: int, *, dtype: Any = None) -> dict:
    """Mergeable sums over the first ``own`` frames of ``block`` (T_b, Y, X).

    ``block`` may hold :data:`OVERLAP` frame after its own ones (the start of the next
    block), so that every difference that *starts* at one of its own frames is counted
    here and nowhere else. A block with no frame after its own is the end of the stack.
    Work runs on cache-sized pieces (a few rows by :data:`SLAB_FRAMES` frames), so the
    extra memory is a few MB whatever the block's size. ``dtype``: the work dtype
    (default :func:`~camtrack._outofcore.fitted_work_dtype` of the block).
    """
    _n_total, ny, nx = (int(s) for s in block.shape)
    own = int(own)
    f64 = xp.float64
    wdt = np.dtype(dtype) if dtype is not None else fitted_work_dtype(xp, block)
    rows = max(1, min(ny, _SLAB_BYTES // ((SLAB_FRAMES + OVERLAP) * nx * wdt.itemsize)))
    acc = {key: xp.zeros((ny, nx), f64) for key in _KEYS}
    ref = xp.asarray(block[0], dtype=wdt)
    vmax = xp.empty((ny, nx), wdt)
    vmin = xp.empty((ny, nx), wdt)
    n_d = 0
    buf_a = xp.empty((SLAB_FRAMES + OVERLAP, rows, nx), wdt)
    buf_b = xp.empty_like(buf_a)
    # A non-finite pixel (inf - inf) gives NaN sums for itself alone; it is left out
    # by its non-finite max / min, so numpy's warning about it says nothing new.
    with np.errstate(invalid="ignore", over="ignore"):
        for y0 in range(0, ny, rows):
            ys = slice(y0, min(ny, y0 + rows))
            r = ys.stop - ys.start
            n_d = _band_sums(
                xp, block[:, ys], own, ref[ys], buf_a[:, :r], buf_b[:, :r],
                {key: a[ys] for key, a in acc.items()}, vmax[ys], vmin[ys],
            )  # fmt: skip
        return {
            "n": own,
            "mean": ref.astype(f64) + acc["s1"] / own,
            "m2": acc["s2"] - acc["s1"] * acc["s1"] / own,
            "max": vmax.astype(f64),
            "min": vmin.astype(f64),
            "d1_sum": acc["d1_sum"],
            "d1_sq": acc["d1_sq"],
            "n_d1": n_d,
        }


def _band_sums(
    xp: Any, band: Any, own: int, ref: Any, buf_a: Any, buf_b: Any, acc: dict, vmax: Any, vmin: Any
) -> int:
    """Accumulate the sums of one row band into ``acc`` (views); return the difference count."""
    n_total = int(band.shape[0])
    n_d = 0
    for start in range(0, own, SLAB_FRAMES):
        n_own = min(SLAB_FRAMES, own - start)
        n = min(n_own + OVERLAP, n_total - start)  # frames of this slab incl. look-ahead
        a = buf_a[:n]
        a[...] = band[start : start + n]  # the cast to the work dtype happens here, per slab
        mine = a[:n_own]
        if start == 0:
            vmax[...] = mine.max(axis=0)
            vmin[...] = mine.min(axis=0)
        else:
            xp.maximum(vmax, mine.max(axis=0), out=vmax)
            xp.minimum(vmin, mine.min(axis=0), out=vmin)
        # Differences that start at own frames: the first min(n - 1, n_own).
        m = min(n - 1, n_own)
        if m > 0:
            d = buf_b[:m]
            xp.subtract(a[1 : m + 1], a[:m], out=d)
            acc["d1_sum"] += d.sum(axis=0)
            xp.multiply(d, d, out=d)
            acc["d1_sq"] += d.sum(axis=0)
            n_d += m
        y = buf_b[:n_own]
        xp.subtract(mine, ref, out=y)  # shifted data: no cancellation in s2 - s1**2/n
        acc["s1"] += y.sum(axis=0)
        xp.multiply(y, y, out=y)
        acc["s2"] += y.sum(axis=0)
    return n_d


def merge_sums(a: dict, b: dict) -> dict:
    """Merge the sums of two consecutive blocks of frames (``a`` before ``b``)."""
    na, nb = a["n"], b["n"]
    n = na + nb
    with np.errstate(invalid="ignore"):  # non-finite pixels: NaN for themselves alone
        delta = b["mean"] - a["mean"]
        return {
            "n": n,
            "mean": a["mean"] + delta * (nb / n),
            "m2": a["m2"] + b["m2"] + delta * delta * (na * nb / n),
            "max": np.maximum(a["max"], b["max"]),
            "min": np.minimum(a["min"], b["min"]),
            "d1_sum": a["d1_sum"] + b["d1_sum"],
            "d1_sq": a["d1_sq"] + b["d1_sq"],
            "n_d1": a["n_d1"] + b["n_d1"],
        }


def finalize(s: dict) -> dict:
    """Per-pixel maps from merged sums (all float64, same backend as the sums).

    ``var``: unbiased temporal variance. ``var_diff``: variance from consecutive
    differences with their mean removed (so a linear trend drops out), normalised so it
    is unbiased for white noise: ``E[sum (d - mean d)^2] = 2 sigma^2 (n - 1/n)``.
    """
    n = s["n"]
    maps = {
        "mean": s["mean"],
        "var": s["m2"] / (n - 1) if n > 1 else s["m2"] * np.nan,
        "max": s["max"],
        "min": s["min"],
    }
    nd = s["n_d1"]
    if nd >= 2:
        with np.errstate(invalid="ignore"):  # non-finite pixels (inf - inf): NaN
            ss = s["d1_sq"] - s["d1_sum"] * s["d1_sum"] / nd
        maps["var_diff"] = ss / (2.0 * (nd - 1.0 / nd))
    return maps
