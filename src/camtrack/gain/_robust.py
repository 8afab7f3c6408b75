"""The ``"robust"`` kernel: per-pixel noise from the frames no moving object disturbs.

Moving objects (beads, cells, their diffraction rings) change a pixel's level while
they pass, and their faint outer parts reach far: in a field with many of them most
pixels are disturbed in most frames, so no per-pixel or per-bin statistic of all frames
can separate their variance from the noise. But an object is spatially extended: it
disturbs a whole region of neighbouring pixels at once, while the noise of different
pixels is independent. So each consecutive-frame difference ``d = x[t] - x[t-1]`` of a
pixel is kept only when its *neighbourhood* shows no excess variance in those frames:

1. ``z = (x - level) / s``: the residual of each frame from the pixel's running level
   (the mean of its kept frames within :data:`LEVEL_WINDOW` frames, so a slow trend
   such as bleaching is no disturbance), over its current noise estimate ``s`` (first
   the scaled MAD of its differences, then the estimate from its kept differences).
2. ``z**2`` (capped, so one hot pixel does not blank a region) is summed over blocks of
   ``BLOCK`` x ``BLOCK`` pixels, and the block sums over a box of ``2 RADIUS + 1``
   blocks and ``2 HALF_WINDOW + 1`` frames, *leaving out the pixel's own block*. For
   undisturbed noise that pooled mean is 1 with standard deviation
   ``sqrt(2 / n_pool)`` (``n_pool`` about 4000 samples).
3. A frame is kept where the pooled mean lies below ``1 + K sqrt(2 / n_pool)`` (in
   the first pass, while ``s`` is still inflated, that many times the block's 10th
   percentile over time); a difference is kept when both its frames are. Three passes.

Because the decision for a pixel never looks at that pixel's own values, the kept
differences of an undisturbed pixel are an unbiased sample of its noise however many
are rejected; only disturbed differences that slip through bias the variance, and the
pooling over hundreds of neighbours catches disturbances far below one noise sigma per
pixel. The variance is that of the kept differences with their mean removed (so a slow
trend does not inflate it), the mean is the average of the frames they span (the level
the variance belongs to).

Assumptions: the noise of different blocks is independent (crosstalk between adjacent
pixels at most, which stays inside a block or its neighbours); moving objects disturb
regions larger than a few blocks; somewhere in the stack every pixel has undisturbed
frames (pixels with fewer than :data:`MIN_KEPT` kept differences are left out).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

__all__ = ["BLOCK", "HALO", "MIN_KEPT", "robust_tile"]

BLOCK = 4  # pixels per side of a detection block
RADIUS = 3  # blocks each side of the own block in the pooling box
HALF_WINDOW = 2  # frames each side in the pooling box
K_SIGMA = 3.0  # rejection threshold in standard deviations of the pooled mean
Z2_CAP = 25.0
ITERATIONS = 3
LEVEL_WINDOW = 25  # frames of the running level that residuals are taken from
MIN_KEPT = 5
HALO = RADIUS * BLOCK  # rows a tile needs beyond its own for the pooling box
MAD_TO_SIGMA = 1.482602218505602


def _block_sums(xp: Any, a: Any, nby: int, nbx: int) -> Any:
    t, ny, nx = a.shape
    if ny != nby * BLOCK or nx != nbx * BLOCK:
        pad = xp.zeros((t, nby * BLOCK, nbx * BLOCK), a.dtype)
        pad[:, :ny, :nx] = a
        a = pad
    return a.reshape(t, nby, BLOCK, nbx, BLOCK).sum(axis=(2, 4))


def _upsample(xp: Any, b: Any, ny: int, nx: int) -> Any:
    return xp.repeat(xp.repeat(b, BLOCK, axis=1), BLOCK, axis=2)[:, :ny, :nx]


def robust_tile(xp: Any, ndi: Any, tile: Any, usable: Any) -> dict:
    """Mean, variance and kept-difference count per pixel of an all-frames tile.

    ``tile``: (T, Y, X) of all frames (rows may include a halo); ``usable``: (Y, X) bool,
    False for pixels whose values must not enter the detection (saturated, masked).
    Returns float64 maps ``mean``, ``var`` (NaN with fewer than :data:`MIN_KEPT` kept
    differences) and ``n`` for the whole tile; the caller keeps the rows it owns.
    """
    x = xp.asarray(tile, dtype=xp.float32)
    _t, ny, nx = x.shape
    d = x[1:] - x[:-1]
    s = (MAD_TO_SIGMA / np.sqrt(2.0)) * xp.median(xp.abs(d), axis=0)
    level = xp.broadcast_to(xp.median(x, axis=0), x.shape)
    nby, nbx = -(-ny // BLOCK), -(-nx // BLOCK)
    valid_b = _block_sums(xp, xp.asarray(usable, dtype=xp.float32)[None], nby, nbx)[0]
    size = (2 * HALF_WINDOW + 1, 2 * RADIUS + 1, 2 * RADIUS + 1)
    box_n = ndi.uniform_filter(valid_b, size=size[1:], mode="constant") * (size[1] * size[2])
    n_pool = (box_n - valid_b) * size[0]  # samples in the box, own block left out
    with np.errstate(divide="ignore", invalid="ignore"):
        sd = xp.sqrt(2.0 / n_pool)
    keep = None
    z2 = xp.empty_like(x)
    for it in range(ITERATIONS):
        ok = usable & (s > 0) & xp.isfinite(s)
        inv = xp.where(ok, 1.0 / xp.where(ok, s, 1.0), 0.0).astype(xp.float32)
        xp.subtract(x, level, out=z2)
        xp.multiply(z2, inv, out=z2)
        xp.multiply(z2, z2, out=z2)
        xp.minimum(z2, Z2_CAP, out=z2)
        b = _block_sums(xp, z2, nby, nbx)
        win = ndi.uniform_filter1d(b, size[0], axis=0, mode="nearest") * size[0]
        box = ndi.uniform_filter(win, size=(1, *size[1:]), mode="constant") * (size[1] * size[2])
        with np.errstate(divide="ignore", invalid="ignore"):
            pooled = (box - win) / n_pool
        # First pass: the noise estimate is still inflated, so undisturbed frames are
        # the low end of each block's pooled values. Later passes: z is normalised by
        # the clean noise, so undisturbed frames pool to 1 (a per-block median would
        # follow a block disturbed most of the time upward and let that through).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks stay NaN
            ref = xp.percentile(pooled, 10, axis=0) if it == 0 else 1.0
        with np.errstate(invalid="ignore"):
            keep_b = pooled < ref * (1.0 + K_SIGMA * sd)
        frames = _upsample(xp, keep_b, ny, nx)
        keep = frames[1:] & frames[:-1]  # differences between two kept frames
        n = keep.sum(axis=0)
        sd1 = xp.where(keep, d, 0.0).sum(axis=0, dtype=xp.float64)
        sd2 = xp.where(keep, d * d, 0.0).sum(axis=0, dtype=xp.float64)
        adj = (keep[1:] & keep[:-1]).sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            # E[sum (d - mean d)^2] = 2 sigma^2 (n - 1 + n_adj / n): adjacent kept
            # differences share a frame (covariance -sigma^2).
            var = (sd2 - sd1 * sd1 / n) / (2.0 * (n - 1.0 + adj / n))
        enough = n >= MIN_KEPT
        var = xp.where(enough, var, xp.nan)
        s = xp.where(enough, xp.sqrt(xp.maximum(var, 0.0)), s)
        # The level a frame is compared with: the mean of the kept frames within
        # LEVEL_WINDOW frames (so a slow trend such as bleaching is not a disturbance).
        fk = frames.astype(xp.float32)
        nf = ndi.uniform_filter1d(fk, LEVEL_WINDOW, axis=0, mode="constant")
        lev = ndi.uniform_filter1d(x * fk, LEVEL_WINDOW, axis=0, mode="constant")
        with np.errstate(divide="ignore", invalid="ignore"):
            lev /= nf
        level = xp.where(nf * LEVEL_WINDOW >= MIN_KEPT, lev, level)
    mid = 0.5 * (x[1:] + x[:-1])
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = xp.where(keep, mid, 0.0).sum(axis=0, dtype=xp.float64) / n
    mean = xp.where(n >= MIN_KEPT, mean, xp.nan)
    return {"mean": mean, "var": var, "n": n}
