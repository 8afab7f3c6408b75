"""The ``"robust"`` kernel: per-pixel noise from the frame differences no moving object disturbs.

Moving objects (beads, cells, their diffraction rings) change a pixel's level while
they pass, and their faint outer parts reach far: in a field with many of them most
pixels are disturbed in most frames, so no per-pixel or per-bin statistic of all frames
can separate their variance from the noise. What biases a variance measured from
consecutive-frame differences ``d = x[t+1] - x[t]`` is only the change of the signal
between the two frames, and an object changes the signal of a whole region of
neighbouring pixels at once, while the noise of different pixels is independent. So a
difference is kept only when its *neighbourhood* shows no excess energy:

1. One streaming pass (:func:`block_energy`): per block ``b`` of ``BLOCK x BLOCK``
   pixels and difference ``t``, the energy ``D[t, b] = sum of d**2`` and per frame the
   summed level ``M[t, b]``; together 1/32 as many values as the stack has pixels.
2. The noise energy a difference should have, ``E = 2 (a n + b (M[t] + M[t+1]) / 2)``:
   photon transfer at block level (:func:`_noise_model`), a line fitted to the blocks'
   mean pixel variance against their level, evaluated at the block's level in those
   two frames. An object that changes the level also changes the shot noise, and that
   part is noise, so the reference is never inflated by objects however long they
   stay; a slow trend (bleaching) is followed the same way.
3. The pooled ratio ``P = sum D / sum E`` over a box of ``2 RADIUS + 1`` blocks and
   ``2 HALF_WINDOW + 1`` differences, *leaving out the block's own energies*. For noise
   alone it is 1 with a standard deviation that follows from ``E`` (for Gaussian noise
   a block's ``D`` has variance ``2 E**2 / n``; adjacent differences share a frame,
   which raises the variance of a window sum by :data:`WINDOW_CORRELATION`).
4. A difference is kept where ``P < 1 + K sd``. The first line is fitted to a low
   quantile of each level bin (objects only add energy) and calibrated by the 10th
   percentile of all pooled ratios (a sample of them); the second pass refits it to
   the kept differences alone.

A second streaming pass (:func:`kept_sums`) sums, per pixel, the kept differences,
their squares and the frames they start at. The variance is that of the kept
differences with their mean removed (so a slow trend does not inflate it), the mean the
average of the frames they span (the level the variance belongs to).

Because the decision for a pixel never looks at its own block, the kept differences of
an undisturbed pixel are an unbiased sample of its noise however many are rejected;
only disturbed differences that slip through bias the variance, and the pooling over
about 7700 neighbour samples catches a signal change far below one noise sigma per
pixel. Everything between the two streaming passes runs on the block sums, so the
method costs a few plain mean/variance passes.

Assumptions: the noise of different blocks is independent (crosstalk between adjacent
pixels at most, which stays inside a block or its neighbours) and, pooled over a
neighbourhood, follows one linear photon-transfer curve (pixel-to-pixel differences of
gain and read noise average out over the ~1500 pixels of the box); moving objects
disturb regions larger than a few blocks; somewhere in the stack every pixel has
undisturbed frame pairs (pixels with fewer than :data:`MIN_KEPT` kept differences are
left out).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from camtrack import _backend
from camtrack._outofcore import (
    DETECT_TILE_BYTES,
    bands,
    fit,
    fitted_work_dtype,
    single_threaded_blas,
)

__all__ = [
    "BLOCK", "MIN_KEPT", "RADIUS", "block_energy", "detect", "detection_bands", "finish", "kept_sums",
]  # fmt: skip

BLOCK = 8  # pixels per side of a detection block
RADIUS = 2  # blocks each side of the own block in the pooling box
HALF_WINDOW = 2  # differences each side in the pooling box
K_SIGMA = 3.0  # rejection threshold in standard deviations of the pooled ratio
ITERATIONS = 2
FIRST_PERCENTILE = 10.0  # the first pass's calibration: this percentile of all P
MIN_KEPT = 5
# Var(sum of 5 consecutive d**2) / (5 Var(d**2)) for white noise: neighbouring
# differences share a frame, so their squares correlate by 1/4: (5 + 2 * 4 / 4) / 5.
WINDOW_CORRELATION = 1.4
SLAB_FRAMES = 32  # differences per slab of the streaming passes
_SLAB_BYTES = 2 * 2**20  # float32 bytes of one slab: cache-sized
BAND_ROWS = 8  # block rows per band of the detection and of the block store
MODEL_SAMPLES = 500_000  # block differences the noise model is fitted to
MODEL_BINS = 32


def _slab_rows(nx_pad: int, itemsize: int = 4) -> int:
    rows = _SLAB_BYTES // ((SLAB_FRAMES + 1) * nx_pad * itemsize)
    return max(BLOCK, rows // BLOCK * BLOCK)


def _slabs(xp: Any, band: Any) -> tuple[int, int, int, int, Any, Any]:
    """The slab layout both streaming passes use: block rows and columns, the padded
    width, the rows of one cache-sized slab, and its frame and difference buffers in
    the work dtype (:func:`~camtrack._outofcore.fitted_work_dtype` of the band)."""
    _f, ny, nx = (int(s) for s in band.shape)
    nrb, nbx = n_blocks(ny), n_blocks(nx)
    xpad = nbx * BLOCK
    wdt = fitted_work_dtype(xp, band)
    rows = min(_slab_rows(xpad, wdt.itemsize), nrb * BLOCK)
    buf = xp.zeros((SLAB_FRAMES + 1, rows, xpad), wdt)
    dbuf = xp.empty((SLAB_FRAMES, rows, xpad), wdt)
    return nrb, nbx, xpad, rows, buf, dbuf


def n_blocks(n: int) -> int:
    """Blocks along an axis of ``n`` pixels (the last one may be partial)."""
    return -(-int(n) // BLOCK)


def block_energy(xp: Any, band: Any, usable: Any = None, shift: float = 0.0) -> tuple[Any, Any]:
    """Per-block sums of squared consecutive differences and of the frames.

    ``band``: (F, Y, X) frames, any dtype (``Y`` starts at a block boundary); ``usable``:
    optional (Y, X) bool, False for pixels left out of the detection; ``shift``: ADU
    subtracted from every value before the level sums (see :func:`kept_sums`). Returns
    float32 ``energy`` (F - 1, ceil(Y / BLOCK), ceil(X / BLOCK)) and ``level`` (F, ...). Works on
    cache-sized slabs cast to the work dtype (float32; float64 where float32 would round
    the data, see :func:`~camtrack._outofcore.fitted_work_dtype`); only the block sums are
    stored in float32.
    """
    f_total, ny, nx = (int(s) for s in band.shape)
    nd = f_total - 1
    nrb, nbx, xpad, rows, buf, dbuf = _slabs(xp, band)
    energy = xp.empty((max(nd, 0), nrb, nbx), xp.float32)
    level = xp.empty((f_total, nrb, nbx), xp.float32)
    drop = None
    if usable is not None and not bool(xp.all(usable)):
        # Left-out pixels are set to 0, not multiplied by 0: NaN * 0 is NaN, and one
        # NaN pixel would poison its block's sums and the noise model's bins.
        drop = xp.ones((nrb * BLOCK, xpad), bool)
        drop[:ny, :nx] = ~xp.asarray(usable, dtype=bool)

    ones = xp.ones(BLOCK, buf.dtype)

    def block_sums(a: Any, out: Any) -> None:
        # Along x as a matrix-vector product (memory-bound, faster than strided adds),
        # then along y over contiguous rows.
        f, r = int(a.shape[0]), int(a.shape[1])
        c = (a.reshape(-1, BLOCK) @ ones).reshape(f, r // BLOCK, BLOCK, nbx)
        xp.sum(c, axis=2, out=out)

    for y0 in range(0, ny, rows):
        r = min(rows, ny - y0)
        rr = n_blocks(r) * BLOCK
        b = slice(y0 // BLOCK, (y0 + rr) // BLOCK)
        if r < rr:
            buf[:, r:rr] = 0
        for t0 in range(0, max(nd, 1), SLAB_FRAMES):
            f = min(SLAB_FRAMES, nd - t0) if nd > 0 else 0
            a = buf[: f + 1, :rr]
            a[:, :r, :nx] = band[t0 : t0 + f + 1, y0 : y0 + r]
            if shift:
                a[:, :r, :nx] -= shift
            if drop is not None:
                a[:, drop[y0 : y0 + rr]] = 0
            block_sums(a, level[t0 : t0 + f + 1, b])
            if f == 0:
                continue
            d = dbuf[:f, :rr]
            xp.subtract(a[1:], a[:-1], out=d)
            xp.multiply(d, d, out=d)
            block_sums(d, energy[t0 : t0 + f, b])
    return energy, level


def kept_sums(xp: Any, band: Any, keep: Any, shift: float = 0.0) -> dict:
    """Per-pixel sums over the kept differences of a band of frames.

    ``band``: (F, Y, X) frames (``Y`` starts at a block boundary); ``keep``: (F - 1,
    ceil(Y / BLOCK), ceil(X / BLOCK)) bool, whether difference ``t`` (frames ``t``, ``t + 1``)
    of each block is kept. Returns float64 (Y, X) maps ``s1`` (sum of kept ``d``),
    ``s2`` (of ``d**2``) and ``sx`` (of the frames ``x[t] - shift`` they start at).
    Works in the work dtype of :func:`block_energy`.

    ``shift`` (ADU, e.g. the stack's minimum) keeps the levels small: the noise line
    ``a + b level`` is then fitted near zero, where the float32 block sums and the
    pooled ``2 a n + b S`` keep their precision (at an offset of 2**28 ADU, ``a`` would
    be ``-b 2**28`` and ``S`` 2**42 per pooling box, cancelling far beyond float32).
    """
    f_total, ny, nx = (int(s) for s in band.shape)
    nd = f_total - 1
    _nrb, _nbx, xpad, rows, buf, dbuf = _slabs(xp, band)
    out = {key: xp.zeros((ny, nx), xp.float64) for key in ("s1", "s2", "sx")}
    # An inf pixel (inf - inf) gives NaN sums for itself alone: it is left out by its
    # non-finite max / min, so numpy's warning about it says nothing new.
    with np.errstate(invalid="ignore"):
        for y0 in range(0, ny, rows):
            r = min(rows, ny - y0)
            rb = n_blocks(r)
            rr = rb * BLOCK
            if r < rr:
                buf[:, r:rr] = 0
            acc = {key: a[y0 : y0 + r] for key, a in out.items()}
            for t0 in range(0, nd, SLAB_FRAMES):
                f = min(SLAB_FRAMES, nd - t0)
                w = keep[t0 : t0 + f, y0 // BLOCK : y0 // BLOCK + rb]
                if not bool(w.any()):
                    continue
                a = buf[: f + 1, :rr]
                a[:, :r, :nx] = band[t0 : t0 + f + 1, y0 : y0 + r]
                if shift:
                    a[:, :r, :nx] -= shift
                d = dbuf[:f, :rr]
                xp.subtract(a[1:], a[:-1], out=d)
                # Contractions over the frames with the kept mask repeated along x
                # (einsum forms no full-size temporaries).
                wx = xp.repeat(w.astype(buf.dtype), BLOCK, axis=2)
                d4 = d.reshape(f, rb, BLOCK, xpad)
                a4 = a[:-1].reshape(f, rb, BLOCK, xpad)
                acc["s1"] += xp.einsum("tbkx,tbx->bkx", d4, wx).reshape(rr, xpad)[:r, :nx]
                acc["s2"] += xp.einsum("tbkx,tbkx,tbx->bkx", d4, d4, wx).reshape(rr, xpad)[:r, :nx]
                acc["sx"] += xp.einsum("tbkx,tbx->bkx", a4, wx).reshape(rr, xpad)[:r, :nx]
    return out


def _box2(ndi: Any, a: Any) -> Any:
    """Sum over a (2 RADIUS + 1)**2 box of blocks in the last two axes (zeros beyond)."""
    size = 2 * RADIUS + 1
    out = ndi.uniform_filter1d(a, size, axis=-1, mode="constant")
    out = ndi.uniform_filter1d(out, size, axis=-2, mode="constant")
    out *= size * size
    return out


def _noise_model(xp: Any, store: Any, n_pix: Any, use_kept: bool) -> tuple[float, float]:
    """Photon transfer at block level: a pixel's noise variance ``a + b * level``.

    Fitted to ``y = D / (2 n)`` (the mean pixel variance of a block difference) against
    ``x`` (the mean pixel level of its two frames) in quantile bins of ``x``, on a
    subsample of the differences. Without ``use_kept``: each bin's 10th percentile of
    ``y`` (objects only ever add energy, so the low end is noise; the scale of that low
    quantile is calibrated afterwards). With it: the mean over the kept differences
    (unbiased for noise). Bins far above the first line (dominated by objects) are
    dropped and the line refitted.
    """
    nd, _ = store.spec["energy"]
    step = max(1, (nd * store.ny * store.nx) // MODEL_SAMPLES)
    xs, ys = [], []
    for b0, b1 in store.row_bands:
        n = n_pix[b0:b1]
        e = store.read_rows("energy", b0, b1)[::step]
        m = store.read_rows("level", b0, b1)
        x = (m[:-1][::step] + m[1:][::step]) / (2.0 * n)
        y = e / (2.0 * n)
        sel = xp.broadcast_to(n >= BLOCK * BLOCK // 2, e.shape)
        if use_kept:
            sel = sel & store.read_rows("keep", b0, b1)[::step]
        xs.append(_backend.to_host(x[sel]).astype(np.float64))
        ys.append(_backend.to_host(y[sel]).astype(np.float64))
    x, y = np.concatenate(xs), np.concatenate(ys)
    if x.size < 10 * MODEL_BINS:
        if not use_kept:
            raise ValueError(
                f"method='robust' models the noise on {BLOCK} x {BLOCK} pixel blocks and "
                f"needs at least {10 * MODEL_BINS} block differences (blocks x frames); this "
                f"stack gives {x.size}. Use a larger field of view or more frames, or "
                "method='diff'."
            )
        raise ValueError(
            "Too few frame differences are free of moving objects to measure the noise. "
            "Record a longer stack, one with fewer moving objects, or mask them."
        )
    edges = np.unique(np.quantile(x, np.linspace(0, 1, MODEL_BINS + 1)))
    idx = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
    order = np.argsort(idx, kind="stable")
    counts = np.bincount(idx, minlength=len(edges) - 1)
    bx, by, bw = [], [], []
    splits = np.cumsum(counts)[:-1]
    for xb, yb in zip(np.split(x[order], splits), np.split(y[order], splits), strict=True):
        if xb.size < 10:
            continue
        bx.append(np.median(xb))
        by.append(yb.mean() if use_kept else np.percentile(yb, 10.0))
        bw.append(xb.size)
    bx, by, bw = np.array(bx), np.array(by), np.array(bw, dtype=np.float64)
    if bx.size < 3 or np.ptp(bx) <= 0:  # one level only: the noise is a constant
        return float(y.mean() if use_kept else np.median(y)), 0.0
    good = np.ones(bx.size, bool)
    for _ in range(3):
        b, a = np.polyfit(bx[good], by[good], 1, w=np.sqrt(bw[good]))
        res = by / (a + b * bx) - 1.0
        scatter = 1.4826 * np.median(np.abs(res[good] - np.median(res[good])))
        new = res < 3.0 * max(scatter, 0.01)
        if new.sum() < 3 or (new == good).all():
            break
        good = new
    return float(a), float(b)


def detection_bands(nby: int, within: Sequence[tuple[int, int]] = ()) -> list:
    """Bands of :data:`BAND_ROWS` block rows (the store's layout), refining the row
    ranges ``within`` (the passes' pieces, so that their writes cover whole bands)."""
    return [(r0 + b.start, r0 + b.stop) for r0, r1 in within or [(0, nby)] for b in bands(r1 - r0, BAND_ROWS)]  # fmt: skip


def _detect_tiles(nd: int, nbx: int, row_bands: Sequence[tuple[int, int]]) -> list:
    """(b0, b1, t0, t1) tiles of the detection: runs of consecutive bands, cut into
    ranges of differences, such that one block-level array of a tile (with its
    context) stays within :data:`~camtrack._outofcore.DETECT_TILE_BYTES`: wide tiles
    when the stack is short (less context re-read), short ones when it is long
    (bounded memory). Counts by the shared rule (:func:`~camtrack._outofcore.fit`), at
    least :data:`BAND_ROWS` rows and ``8 HALF_WINDOW`` differences a tile."""
    f32 = 4
    end = max((b1 for _, b1 in row_bands), default=0)
    rows = max(BAND_ROWS, fit(DETECT_TILE_BYTES, nd * nbx * f32, end + 2 * RADIUS) - 2 * RADIUS)
    runs: list[tuple[int, int]] = []
    for b0, b1 in row_bands:
        if runs and runs[-1][1] == b0 and b1 - runs[-1][0] <= rows:
            runs[-1] = (runs[-1][0], b1)
        else:
            runs.append((b0, b1))
    out = []
    for b0, b1 in runs:
        per_t = (b1 - b0 + 2 * RADIUS) * nbx * f32
        span = max(8 * HALF_WINDOW, fit(DETECT_TILE_BYTES, per_t, nd + 2 * HALF_WINDOW) - 2 * HALF_WINDOW)  # fmt: skip
        out += [(b0, b1, t, min(nd, t + span)) for t in range(0, nd, span)]
    return out


def detect(xp: Any, ndi: Any, store: Any, n_pix: Any, *, workers: int = 1) -> None:
    """Mark which differences of which blocks are free of moving objects.

    ``store`` (a :class:`~camtrack._spill.BandStore` of row bands) holds ``energy``
    (T - 1, nby, nbx) and ``level`` (T, nby, nbx) float32 from :func:`block_energy`;
    the result goes to its bool ``keep`` (T - 1, nby, nbx). ``n_pix``: (nby, nbx)
    usable pixels per block. Tiles of the store's bands by ranges of differences run
    on ``workers`` threads, so the memory is a few tiles whatever the stack's size.

    The noise energy a block difference should have comes from a photon-transfer line
    fitted at block level (:func:`_noise_model`) evaluated at the block's own level in
    those frames: an object that changes a block's level also changes its shot noise,
    and that is the noise, not a disturbance. So the reference is never inflated by
    objects, however long they stay.
    """
    n_pix = xp.asarray(n_pix, dtype=xp.float32)
    usable = n_pix > 0
    nd, _ = store.spec["energy"]
    tiles = _detect_tiles(nd, store.nx, store.row_bands)
    # The calibration's probe: a layout that depends on the shape alone, so the result
    # does not depend on the store's bands.
    probe = _detect_tiles(nd, store.nx, detection_bands(store.ny))[::4]
    with single_threaded_blas(), ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for it in range(ITERATIONS):
            a, b = _noise_model(xp, store, n_pix, use_kept=it > 0)

            def ratios(tile: tuple, a: float = a, b: float = b) -> tuple[Any, Any]:
                return _pooled(xp, ndi, store, n_pix, a, b, *tile)

            if it == 0:
                # The first line is a low quantile's: calibrate it by the low end of the
                # pooled ratios (nearly Gaussian, so their 10th percentile is the
                # noise's), measured on every fourth tile.
                sample = [r.ravel() for r, _ in pool.map(ratios, probe)]
                sample = xp.concatenate(sample)
                sample = sample[xp.isfinite(sample)]
                ref = float(xp.percentile(sample, FIRST_PERCENTILE)) if sample.size else 1.0
                del sample
            else:
                ref = 1.0

            def decide(tile: tuple, ref: float = ref) -> Any:
                ratio, sd = ratios(tile)
                with np.errstate(invalid="ignore"):
                    return (ratio < ref * (1.0 + K_SIGMA * sd)) & usable[tile[0] : tile[1]]

            # A tile's pooling reads energy and level only, never the keep this
            # iteration writes (the noise model read the last one before), so each
            # tile is stored as it comes: memory stays a few tiles.
            for tile, k in zip(tiles, pool.map(decide, tiles), strict=True):
                store.write_rows("keep", tile[2], tile[0], k)


def _pooled(
    xp: Any,
    ndi: Any,
    store: Any,
    n_pix: Any,
    a: float,
    b: float,
    b0: int,
    b1: int,
    t0: int,
    t1: int,
) -> tuple[Any, Any]:
    """Pooled ratio and its noise standard deviation for block rows ``b0:b1`` and
    differences ``t0:t1`` (read with RADIUS rows and HALF_WINDOW differences of context).

    The noise energy of a block difference is ``E = 2 a n + b S`` with ``S`` its summed
    level in both frames, so the pooled sums of ``E`` and of its variance ``2.8 E**2 /
    n`` are combinations of the pooled ``n``, ``S`` and ``S**2 / n``.
    """
    nd, _ = store.spec["energy"]
    h0, h1 = max(0, b0 - RADIUS), min(store.ny, b1 + RADIUS)
    u0, u1 = max(0, t0 - HALF_WINDOW), min(nd, t1 + HALF_WINDOW)
    own = (slice(t0 - u0, t1 - u0), slice(b0 - h0, b1 - h0))
    size_t = 2 * HALF_WINDOW + 1
    n = n_pix[h0:h1]
    use = (n > 0).astype(xp.float32)
    m = store.read_rows("level", h0, h1, slice(u0, u1 + 1))
    s = (m[1:] + m[:-1]) * use
    del m
    p_d = _pool(ndi, store.read_rows("energy", h0, h1, slice(u0, u1)) * use, size_t)[own]
    p_s = _pool(ndi, s, size_t)[own]
    s *= s
    s *= xp.where(n > 0, 1.0 / xp.maximum(n, 1.0), 0.0).astype(xp.float32)
    p_s2 = _pool(ndi, s, size_t)[own]
    del s
    t = np.arange(t0, t1)
    counts = np.minimum(t + HALF_WINDOW, nd - 1) - np.maximum(t - HALF_WINDOW, 0) + 1
    p_n = _box2(ndi, n[None])[0] - n
    p_n = xp.asarray(counts.astype(np.float32))[:, None, None] * p_n[own[1]][None]
    den = 2.0 * a * p_n + b * p_s
    var = WINDOW_CORRELATION * 2.0 * (4.0 * a * a * p_n + 4.0 * a * b * p_s + b * b * p_s2)
    del p_s, p_s2, p_n
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = xp.where(den > 0, p_d / den, xp.nan)  # no noise expected: no decision
        sd = xp.sqrt(xp.maximum(var, 0.0)) / den
    return ratio, sd


def _pool(ndi: Any, a: Any, size_t: int) -> Any:
    """Sum over the pooling box (differences x blocks x blocks), the own block left out."""
    win = ndi.uniform_filter1d(a, size_t, axis=0, mode="constant")
    win *= size_t
    out = _box2(ndi, win)
    out -= win
    return out


def finish(sums: dict, n: Any, adj: Any) -> tuple[Any, Any]:
    """Mean and variance maps from :func:`kept_sums` and the per-pixel kept counts.

    ``n``: kept differences per pixel; ``adj``: kept pairs of adjacent differences. NaN
    where fewer than :data:`MIN_KEPT` are kept.
    """
    s1, s2, sx = sums["s1"], sums["s2"], sums["sx"]
    enough = n >= MIN_KEPT
    with np.errstate(divide="ignore", invalid="ignore"):
        # E[sum (d - mean d)^2] = 2 sigma^2 (n - 1 + n_adj / n): adjacent kept
        # differences share a frame (covariance -sigma^2).
        var = (s2 - s1 * s1 / n) / (2.0 * (n - 1.0 + adj / n))
        mean = (sx + 0.5 * s1) / n  # the mean of (x[t] + x[t+1]) / 2 over kept t
    return np.where(enough, mean, np.nan), np.where(enough, var, np.nan)
