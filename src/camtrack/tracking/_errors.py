"""Standard errors of the point-symmetry centre, from the bead's own radial profile.

The exact symmetry centre maximises the auto-convolution A(t) of the windowed image
h = g v (v: the window about the estimate, holes included) at t = 2c. With pixel noise
e of variance s2 and the noise-free image T, A'(2c) = 0 linearised gives the centre's
error to first and second order in the noise::

    dx = [2 sum_n v_n e_n T_x(m_n) v(m_n) + sum_n h_e(n) h_e'(2c - n)] / (2 sum (v T_x)**2)

(m_n the mirror of pixel n, T_x = dT/dx). The first term is the linear part, the
second the product of the noise with its own mirrored derivative: its variance is
``2 (pi**2 / 3) sum v**4 s2**2`` (the squared derivative kernel of a band-limited image
sums to pi**2 / 3 per axis). Hence::

    var(x) = [sum v**4 s2 T_x**2 + (pi**2 / 6) sum v**4 s2**2] / (sum v**2 T_x**2)**2

The second term is what puts a large, dim ROI (many pixels of pure noise under the
window) above the Cramer-Rao bound; the first alone is the bound for uniform variance
and v = 1. The fast mode's projections obey the same formula in 1-D, with the
projection's slope and variance.

Cost: everything is evaluated on radial bins, not pixels. T is the bead's radial
profile at 0.5 px bins (one kernel average, :mod:`._radial`), T_x = T'(r) cos(theta);
the pixel sums over cos**2, v**2, v**4 of each bin (and the projections' bin weights)
depend only on the ROI size and window and are precomputed for a bead at the ROI
centre. The variance per bin comes from the camera model at the profile's level or,
without a camera, from the fit itself: the antisymmetric residual of the symmetry fit
(``sum h**2 (1 - quality)``, of the projections in the fast mode) is the windowed noise
power ``sum v**2 s2``, exactly, for any image; it is shared out over the pixels in
proportion to their level (shot noise: variance proportional to the mean ADU).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from camtrack._jit import LazyJit
from camtrack.tracking._common import quiet
from camtrack.tracking._radial import default_n_bins, radial_operator

__all__ = ["error_profile", "fast_errors", "profile_correlation", "profile_variance", "xy_errors"]

_OVERSAMPLE = 2  # bins per px of the error profile: kernel sigma 0.25 px keeps sharp rings
_NOISE2 = math.pi**2 / 6.0


def _tukey_np(u: np.ndarray, half: float, taper: float = 0.35) -> np.ndarray:
    a = half * (1.0 - taper)
    s = np.clip((np.abs(u) - a) / (half - a), 0.0, 1.0)
    return 0.5 + 0.5 * np.cos(np.pi * s)


@functools.lru_cache(maxsize=64)
def _geometry(size: int, half: float) -> dict[str, np.ndarray]:
    """Per-bin pixel sums for a bead at the ROI centre under a separable Tukey window.

    ``c2``, ``c4``: sums over the bin's pixel shares of v**2 cos**2, v**4 cos**2;
    ``v2``, ``v4``: of v**2, v**4; ``outer2``, ``outer4``: sums of v**2, v**4 over the
    pixels beyond the profile's reach; ``q1`` (S, B), ``q2`` (S, B), ``q2_out`` (S,):
    the projection's slope and variance weights per column (sums over rows of v_y A cos
    and v_y**2 A; of v_y**2 beyond the reach); ``wx`` (S,) the 1-D window.
    """
    nb = default_n_bins(size, _OVERSAMPLE)
    op = radial_operator(size, nb, _OVERSAMPLE)
    c = (size - 1) / 2.0
    pos = np.arange(size, dtype=np.float64) - c
    w1 = _tukey_np(pos, half)
    yy, xx = np.meshgrid(pos, pos, indexing="ij")
    r = np.hypot(yy, xx)
    two = 2.0 * op.sigma**2
    k = np.exp(-((r[..., None] - op.radii) ** 2) / two) + np.exp(-((r[..., None] + op.radii) ** 2) / two)  # fmt: skip
    inside = r <= op.radii[-1]
    tot = k.sum(axis=-1, keepdims=True)
    share = np.where(inside[..., None], k / np.where(tot > 0, tot, 1.0), 0.0)  # (S, S, B)
    cos2 = np.where(r > 0, xx * xx / np.where(r > 0, r * r, 1.0), 0.5)
    cosx = np.where(r > 0, xx / np.where(r > 0, r, 1.0), 0.0)
    v2 = np.outer(w1**2, w1**2)
    v4 = v2 * v2
    wy = w1[:, None, None]
    # Noise of the slope estimate: T' is np.gradient of the noisy profile (0.5 px bins),
    # so E[T'**2] = T'**2 + var(T'); per unit pixel variance, var(T'_b) = (D G D^T)_bb
    # with G the bins' shared-pixel covariance and D the gradient's difference matrix.
    h = 1.0 / _OVERSAMPLE
    d = np.zeros((nb, nb))
    if nb > 2:
        d[0, :2] = (-1.0 / h, 1.0 / h)
        d[-1, -2:] = (-1.0 / h, 1.0 / h)
        i = np.arange(1, nb - 1)
        d[i, i - 1] = -0.5 / h
        d[i, i + 1] = 0.5 / h
    g = profile_correlation(size, nb, _OVERSAMPLE, "fast")
    return {
        "slope_var": np.einsum("bc,cd,bd->b", d, g, d),
        "c2": np.einsum("yxb,yx->b", share, v2 * cos2),
        "c4": np.einsum("yxb,yx->b", share, v4 * cos2),
        "v2": np.einsum("yxb,yx->b", share, v2),
        "v4": np.einsum("yxb,yx->b", share, v4),
        "outer2": np.array(float((v2 * ~inside).sum())),
        "outer4": np.array(float((v4 * ~inside).sum())),
        "q1": np.einsum("yxb,yx->xb", share * wy, cosx),
        "q2": np.einsum("yxb->xb", share * wy**2),
        "q2_out": ((w1**2)[:, None] * ~inside).sum(axis=0),
        "wx": w1,
        "count": share.sum(axis=(0, 1)),
    }


def error_profile(xp: ModuleType, g: Any, bg: Any, cx: Any, cy: Any) -> tuple[Any, Any, Any]:
    """(slope, level, level_out): radial slope dT/dr and mean level (input units) per
    bin (N, B), and the level beyond the profile (N,)."""
    s = g.shape[-1]
    op = radial_operator(s, default_n_bins(s, _OVERSAMPLE), _OVERSAMPLE)
    t = op.apply(xp, g, cx, cy, min_cover=0.0)
    with quiet():
        t = xp.where(xp.isfinite(t), t, 0.0)
        slope = xp.gradient(t, 1.0 / _OVERSAMPLE, axis=1) if t.shape[1] > 2 else xp.zeros_like(t)
        b = bg.astype(t.dtype)
        level = t + b[:, None]
        level_out = t[:, -1] + b
    return slope, level, level_out


def _slope2(xp: ModuleType, slope: Any, var: Any, geo: dict[str, np.ndarray]) -> Any:
    """Unbiased squared template slope: ``T'**2`` less the noise's share ``var(T')``.

    A dim or large ROI's profile slope is mostly noise away from the bead, and its
    square is biased upwards by the noise variance; taken as signal it inflated the
    information and the errors came out 1.2-1.3x too small (128 px, 400 e-/px).
    """
    sv = xp.asarray(geo["slope_var"], dtype=slope.dtype)[None, :]
    return xp.maximum(slope * slope - var * sv, 0.0)


def _variances(variance: Any, level: Any, level_out: Any, k: Any) -> tuple[Any, Any]:
    """Per-bin and outer pixel variances: the camera's, or ``k`` times the level."""
    if variance is not None:
        return variance(level), variance(level_out)
    return k[:, None] * level, k * level_out


def _hole_mask(xp: ModuleType, hole: Any, radii: np.ndarray, dtype: Any) -> Any:
    """(N, B) squared window weight of each bin radius for clipped centres' holes."""
    from camtrack.tracking._symmetry import _SMOOTH_RAMP

    r = xp.asarray(radii, dtype=dtype)[None, :]
    u = xp.clip((r - (hole[:, None].astype(dtype) - 1.0)) / _SMOOTH_RAMP, 0.0, 1.0)
    w = u * u * u * (u * (6.0 * u - 15.0) + 10.0)
    return xp.where(hole[:, None] > 0, w * w, 1.0)


def _centre_error(
    xp: ModuleType,
    prof: tuple[Any, Any, Any],
    geo: dict[str, np.ndarray],
    hole: Any,
    variance: Callable[[Any], Any] | None,
    k: Any = None,
    noise: Any = None,
) -> tuple[Any, Any]:
    """(err (N,), k) of the 2-D centre under the window of ``geo`` (module notes)."""
    slope, level, level_out = prof
    dt = slope.dtype

    def arr(name: str) -> Any:
        return xp.asarray(geo[name], dtype=dt)[None, :]

    c2, c4, v2, v4 = arr("c2"), arr("c4"), arr("v2"), arr("v4")
    if hole is not None and bool((hole > 0).any()):
        s = int(geo["wx"].shape[0])
        hm = _hole_mask(xp, hole, radial_operator(s, slope.shape[1], _OVERSAMPLE).radii, dt)
        c2, c4, v2, v4 = c2 * hm, c4 * hm * hm, v2 * hm, v4 * hm * hm
    with quiet():
        if variance is None and k is None:
            k = noise.astype(dt) / ((v2 * level).sum(axis=1) + float(geo["outer2"]) * level_out)
        var, var_out = _variances(variance, level, level_out, k)
        j2 = _slope2(xp, slope, var, geo)
        den = (c2 * j2).sum(axis=1)
        num = (c4 * var * j2).sum(axis=1)
        num = num + _NOISE2 * ((v4 * var * var).sum(axis=1) + float(geo["outer4"]) * var_out * var_out)  # fmt: skip
        err = (xp.sqrt(num) / den).astype(xp.float64)
    return err, (None if variance is not None else k)


def xy_errors(
    xp: ModuleType,
    g: Any,
    bg: Any,
    cx: Any,
    cy: Any,
    hole: Any = None,
    variance: Callable[[Any], Any] | None = None,
    *,
    noise: Any = None,
    half: float | None = None,
    halves: tuple[float, ...] = (),
    k: Any = None,
    profile: tuple[Any, Any, Any] | None = None,
) -> tuple[Any, ...]:
    """(N,) standard errors of the 2-D symmetry centre's x and y (see the module notes).

    ``g`` background-free ROIs, ``bg`` (N,) their backgrounds (input units), ``hole``
    (N,) clipped centres' hole radii (0: none), ``variance(level)`` the camera's pixel
    variance at mean ``level`` (input units). Without a camera, ``noise`` (N,) the
    windowed noise power ``sum v**2 s2`` of the fit. ``half``: the window half-width
    (default: the precise mode's for a centred bead). The window is round on average,
    so x and y get the same error. Also returns ``k`` (N,), the pixel variance per unit
    level estimated from ``noise`` (None with a camera), for :func:`profile_variance`.
    With ``halves``, a fourth item: (len(halves), N) the errors the same bead would
    have under windows of those half-widths (same template and noise; no hole), and a
    fifth: (error, reach) of the template step (:func:`_template_error`). ``k``
    given (without a camera): that per-level variance instead of one from ``noise``.
    ``profile``: :func:`error_profile` of these ROIs about (cx, cy), if already known.
    """
    s = g.shape[-1]
    geo = _geometry(s, float((s + 1) / 2.0 if half is None else half))
    prof = error_profile(xp, g, bg, cx, cy) if profile is None else profile
    err, k = _centre_error(xp, prof, geo, hole, variance, k=k, noise=noise)
    if not halves:
        return err, err.copy(), k
    others = xp.stack([_centre_error(xp, prof, _geometry(s, float(h)), None, variance, k=k)[0] for h in halves])  # fmt: skip
    return err, err.copy(), k, others, _template_error(xp, prof, geo, variance, k, hole)


def _template_error(xp: ModuleType, prof: tuple[Any, Any, Any], geo: dict[str, np.ndarray], variance: Any, k: Any, hole: Any = None) -> tuple[Any, Any]:  # fmt: skip
    """(N,) predicted x (= y) error of the maximum-likelihood template fit, (N,) its reach.

    The Fisher information of a shift along x of a radial template within
    ``_MAX_REACH`` px of the centre: ``sum_b n_b T'_b**2 / (2 var_b)`` (``n_b`` pixels
    per bin, ``<cos**2> = 1/2``), with the unbiased squared slope of :func:`_slope2`
    (module _template). The reach: the radius (px) inside which 95 % of that
    information lies (``_REACH``), plus 2 px, at most ``_MAX_REACH``. A clipped centre's pixels
    (``hole`` (N,) radius, farthest clipped pixel + 1 px; 0: none) carry no
    information: bins inside its farthest clipped pixel count nothing.
    """
    slope, level, level_out = prof
    with quiet():
        var, _ = _variances(variance, level, level_out, k)
        j2 = _slope2(xp, slope, var, geo)
        cnt = xp.asarray(geo["count"], dtype=slope.dtype)[None, :]
        info = 0.5 * cnt * j2 / var
        if hole is not None:
            radii = xp.arange(slope.shape[1], dtype=slope.dtype)[None, :] / _OVERSAMPLE
            info = xp.where(radii < hole[:, None].astype(slope.dtype) - 1.0, 0.0, info)
        info = xp.where(xp.isfinite(info), info, 0.0)
        cap = min(info.shape[1], int(_MAX_REACH * _OVERSAMPLE) + 1)
        cum = xp.cumsum(info[:, :cap], axis=1)
        fisher = cum[:, -1]
        last = xp.sum(cum < _REACH * fisher[:, None], axis=1)
        reach = xp.minimum(last.astype(slope.dtype) / _OVERSAMPLE + 2.0, _MAX_REACH)
        return (1.0 / xp.sqrt(fisher)).astype(xp.float64), reach


# Share of the template fit's information inside its box: each ROI gets the box that
# holds it (compiled, each ROI its own box, so a bead whose information sits in its
# core pays for its core only). 0.95 rather than 0.99: 2 % more error, 15-20 % less
# area for beads whose rings fill the ROI (our model).
_REACH = 0.95
# px: the largest box half-width (half a 128 px ROI; the ROI caps it). A 16 px cap had
# cost our model's rings: 64 px dim clipped, x 1.46x -> 1.39x the CRLB with the whole
# ROI, 128 px 1.63x -> 1.35x; Gaussian-beam 64 px dim 1.15x -> 1.03x.
_MAX_REACH = 64.0


def fast_errors(
    xp: ModuleType,
    g: Any,
    bg: Any,
    cx: Any,
    cy: Any,
    hole: Any = None,
    variance: Callable[[Any], Any] | None = None,
    refined: Any = None,
    *,
    noise: Any = None,
    proj: tuple[Any, Any] | None = None,
    levels: list | None = None,
) -> tuple[Any, Any, Any]:
    """(N,) standard errors of the fast mode's centre, and ``k`` as :func:`xy_errors`.

    Projections: the 1-D form of the module's formula, read off the projections the fit
    used (``proj`` = (P, w), (2N, S): ``P`` the x and y projections ``sum_y w_y g``, ``w``
    their windows, from :func:`~camtrack.tracking._symmetry.projection_centre`): slope
    ``P'`` by central differences less its noise share, variance ``sum_y w_y**2 s2`` by
    one more projection with the squared window. No radial template: the error costs
    two BLAS passes over the ROIs (the template's radial profile had cut the fast
    mode's speed by 40 %). Without a camera, ``noise`` (2, N) the projections' windowed
    noise powers give ``k``. ROIs ``refined`` (N,) bool by the 2-D step on a central
    crop: the 2-D formula (:func:`xy_errors`) on that crop. ``levels``: a list, given
    the two projections of ``g`` with the squared windows, ``(sum_y w_y**2 g, sum_x
    w_x**2 g)`` (each (N, S)), for reuse.
    """
    n = g.shape[0]
    p, w = proj
    dt = p.dtype
    wx, wy = w[:n], w[n:]
    kern = _fast_kernel() if xp is np and variance is None and dt == np.float32 else None
    if kern is not None:
        # Compiled: after the two level projections (BLAS), each ROI's slope, variance
        # and error sums in one pass over its two projections (the array version makes
        # ~20 passes over (2N, S) temporaries).
        lev_x = ((wy * wy)[:, None, :] @ g)[:, 0, :]
        lev_y = (g @ (wx * wx)[:, :, None])[:, :, 0]
        err = np.empty(2 * n)
        k = np.empty(n, dtype=dt)
        kern(np.ascontiguousarray(p), np.ascontiguousarray(w), lev_x, lev_y, bg.astype(dt), noise.astype(dt), err, k)  # fmt: skip
        if levels is not None:
            levels.append((lev_x, lev_y))
    else:
        err, k = _fast_array(xp, g, bg, p, w, variance, noise, levels)
    xe, ye = err[:n].copy(), err[n:].copy()
    xe, ye = _refined_errors(xp, g, bg, cx, cy, hole, variance, refined, k, xe, ye)
    return xe, ye, k


def _fast_loop(p, w, lev_x, lev_y, bg, noise, err, k):  # type: ignore[no-untyped-def]
    """:func:`_fast_array` without a camera, compiled: per ROI, its x and y rows."""
    n2, s = p.shape
    n = n2 // 2
    lp = np.empty((2, s))
    for i in range(n):
        # sum_y w_y**2 (level) of the x projection uses the y window, and vice versa
        sy2 = 0.0
        sx2 = 0.0
        for j in range(s):
            sy2 += np.float64(w[n + i, j]) * w[n + i, j]
            sx2 += np.float64(w[i, j]) * w[i, j]
        b = np.float64(bg[i])
        kk = 0.0
        for a in range(2):
            r = i + a * n
            lev = lev_x[i] if a == 0 else lev_y[i]
            add = b * (sy2 if a == 0 else sx2)
            t = 0.0
            for j in range(s):
                lp[a, j] = lev[j] + add
                t += np.float64(w[r, j]) * w[r, j] * lp[a, j]
            kk += noise[a, i] / t
        ki = 0.5 * kk
        k[i] = ki
        for a in range(2):
            r = i + a * n
            den = 0.0
            num = 0.0
            num2 = 0.0
            for j in range(1, s - 1):
                dp = 0.5 * (np.float64(p[r, j + 1]) - p[r, j - 1])
                dvar = 0.25 * ki * (lp[a, j + 1] + lp[a, j - 1])
                dp2 = max(dp * dp - dvar, 0.0)
                a2 = np.float64(w[r, j]) * w[r, j]
                vp = ki * lp[a, j]
                den += a2 * dp2
                num += a2 * a2 * vp * dp2
                num2 += a2 * a2 * vp * vp
            # the end bins have dp2 = 0, but their noise term counts
            for j in (0, s - 1):
                a2 = np.float64(w[r, j]) * w[r, j]
                vp = ki * lp[a, j]
                num2 += a2 * a2 * vp * vp
            err[r] = math.sqrt(num + _NOISE2 * num2) / den


# The compiled :func:`_fast_loop`, or None without a working numba (then the array
# version runs; tested equal to float32 rounding).
_fast_kernel = LazyJit(_fast_loop, nogil=True, cache=True, error_model="numpy")


def _fast_array(xp: ModuleType, g: Any, bg: Any, p: Any, w: Any, variance: Any, noise: Any, levels: list | None = None) -> tuple[Any, Any]:  # fmt: skip
    """(2N,) projection errors (x rows first) and ``k`` of :func:`fast_errors`, as arrays."""
    n = g.shape[0]
    dt = p.dtype
    wx, wy = w[:n], w[n:]
    with quiet():
        # sum_y w_y**2 (level), level = g + bg: the projections with squared windows.
        b = bg.astype(dt)
        lev_x = (wy * wy)[:, None, :] @ g
        lev_y = g @ (wx * wx)[:, :, None]
        if levels is not None:
            levels.append((lev_x[:, 0, :], lev_y[:, :, 0]))
        lp = xp.concatenate([lev_x[:, 0, :], lev_y[:, :, 0]])
        lp = lp + (xp.concatenate([b, b]) * xp.concatenate([(wy * wy).sum(axis=1), (wx * wx).sum(axis=1)]))[:, None]  # fmt: skip
        a2 = w * w
        k = None
        if variance is None:
            num_k = xp.concatenate([noise[0], noise[1]]).astype(dt)
            kk = num_k / (a2 * lp).sum(axis=1)
            k = 0.5 * (kk[:n] + kk[n:])
            vp = xp.concatenate([k, k])[:, None] * lp
        else:
            # Per pixel from the camera, then projected (same squared windows).
            var = variance(g + b[:, None, None])
            vx = (wy * wy)[:, None, :] @ var
            vy = var @ (wx * wx)[:, :, None]
            vp = xp.concatenate([vx[:, 0, :], vy[:, :, 0]])
        dp = xp.zeros_like(p)
        dp[:, 1:-1] = 0.5 * (p[:, 2:] - p[:, :-2])
        dvar = xp.zeros_like(p)
        dvar[:, 1:-1] = 0.25 * (vp[:, 2:] + vp[:, :-2])
        dp2 = xp.maximum(dp * dp - dvar, 0.0)
        den = (a2 * dp2).sum(axis=1)
        num = (a2 * a2 * vp * dp2).sum(axis=1) + _NOISE2 * (a2 * a2 * vp * vp).sum(axis=1)
        err = (xp.sqrt(num) / den).astype(xp.float64)
    return err, k


def _refined_errors(xp: ModuleType, g: Any, bg: Any, cx: Any, cy: Any, hole: Any, variance: Any, refined: Any, k: Any, xe: Any, ye: Any) -> tuple[Any, Any]:  # fmt: skip
    """The 2-D formula on the crop of the ROIs ``refined`` by the 2-D step (fast mode)."""
    s = g.shape[-1]
    if refined is not None and bool(refined.any()):
        from camtrack.tracking._common import boxes
        from camtrack.tracking._symmetry import _REFINE_CROP, _REFINE_RING, _SMOOTH_RAMP

        c = max(8, int(s * _REFINE_CROP))
        holed = xp.zeros_like(refined) if hole is None else hole > 0
        # The crop refine_centre used: c px, or for clipped centres wide enough for the
        # hole, its edge and some rings; the error is computed on that crop.
        for sel in (refined & ~holed, refined & holed):
            rows = xp.nonzero(sel)[0]
            if rows.size == 0:
                continue
            hr = None if hole is None else hole[rows]
            crop = c
            if hr is not None and bool((hr > 0).any()):
                crop = min(s, max(c, 2 * math.ceil(float(hr.max()) + _SMOOTH_RAMP + _REFINE_RING)))
            # A box _ERROR_PAD px wider than the crop, so the template reaches past the
            # window's edge (where the window is 0).
            box = min(s, crop + _ERROR_PAD)
            y0 = xp.clip(xp.round(cy[rows]).astype(xp.int64) - box // 2, 0, s - box)
            x0 = xp.clip(xp.round(cx[rows]).astype(xp.int64) - box // 2, 0, s - box)
            gc = xp.ascontiguousarray(boxes(xp, g, y0, x0, box, rows))
            ox, oy = x0.astype(cx.dtype), y0.astype(cy.dtype)
            kr = None if k is None else k[rows]
            rx = xy_errors(xp, gc, bg[rows], cx[rows] - ox, cy[rows] - oy, hr, _rows(variance, rows), k=kr, half=crop / 2.0)[0]  # fmt: skip
            xe[rows] = rx
            ye[rows] = rx
    return xe, ye


# px added to the 2-D refinement's crop for its error's box. 16 px before: 8 gives the
# same RMS and error ratios on our model's clipped 64 px ROIs (bright x/x_err 1.055 ->
# 1.046, dim 1.014 -> 1.015) for about 4 % of the fast clipped case's time.
_ERROR_PAD = 8


def _rows(variance: Any, rows: Any) -> Any:
    """The variance function restricted to ``rows`` (maps per ROI follow the rows)."""
    if variance is None:
        return None
    return lambda level: variance(level, rows)


@functools.lru_cache(maxsize=16)
def profile_correlation(size: int, n_bins: int, oversample: int, mode: str) -> np.ndarray:
    """(B, B) covariance of the profile bins of unit-variance white pixel noise.

    A profile bin is ``sum_p k_b(p) f_p`` with normalised weights ``k_b = K_b w / sum K_b
    w`` (precise: the kernel under the shift window at the centre, the Fourier shift
    keeps white noise white; fast: the plain kernel), so bins b and c share the noise
    of their common pixels: ``G_bc = sum_p k_b(p) k_c(p)``. Neighbouring 1 px bins
    correlate by about 0.55 (the kernel's sigma is half a bin); a z fit that took them
    as independent reported errors 1.3-1.7x too small.
    """
    from camtrack.tracking._measure import _SHIFT_TAPER, shift_half
    from camtrack.tracking._symmetry import tukey

    op = radial_operator(size, n_bins, oversample)
    kw = op.k0.astype(np.float64)
    if mode == "precise":
        pos = np.arange(size, dtype=np.float64)
        h = shift_half(size)
        w1 = tukey(np, pos - size // 2, h, _SHIFT_TAPER / h)
        kw = kw * np.outer(w1, w1).reshape(-1, 1)
    tot = kw.sum(axis=0)
    kn = kw / np.where(tot > 0, tot, 1.0)
    return kn.T @ kn


def profile_variance(
    xp: ModuleType, prof: Any, bg: Any, variance: Callable[[Any], Any] | None, k: Any
) -> Any:
    """(N, B) variance of each pixel at a relative profile's level, over ``bg**2``.

    The level of bin b is ``bg (1 + prof_b)`` (input units); its pixel variance comes
    from the camera or, without one, ``k`` times the level (:func:`xy_errors`).
    Dividing by ``bg**2`` puts it on the relative profile's scale.
    """
    with quiet():
        b = bg.astype(prof.dtype)[:, None]
        level = b * (1.0 + prof)
        var = variance(level) if variance is not None else k.astype(prof.dtype)[:, None] * level
        return var / (b * b)
