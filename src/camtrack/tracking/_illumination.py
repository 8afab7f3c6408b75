"""Uneven illumination: a brightness gradient across the ROI, found and divided out.

A bead lit by a gradient is ``L(p) = (1 + gamma . (p - c)) I(p - c)`` with ``I``
point-symmetric (bead and background together: both scale with the light). The ramp is
not point-symmetric, so it moves the symmetry centre: noise-free 64 px beads, 1 % of
the level across the ROI, x off by 0.0006 px (our model) and 0.0046 px (the
Gaussian-beam model), 0.4-0.5x a bright bead's Cramer-Rao bound; 5 %: 2-2.5x.

About the true centre every first moment of a function of a point-symmetric image
vanishes, so the first moment of ``L**2`` (under the symmetry window ``w``) measures
the gradient alone, to first order::

    gamma_x = sum (x - cx) L**2 w**2 / (2 sum (x - cx)**2 L**2 w**2)

(the antisymmetric part ``L(p) - L(2c - p) = 2 gamma . (p - c) I`` regressed on
``(p - c) I``; ``I`` taken as ``L``). Its noise: ``var(L) = k L`` (shot noise, ``k``
from the symmetry fit's residual, as :mod:`._errors`) or the camera's variance, so
``var(M_x) = 4 sum (x - cx)**2 L**2 var(L) w**4``. A ROI whose gradient is significant
(over ``_SIGNIFICANT`` standard errors on either axis) is divided by ``1 + gamma . (p -
c)`` and fitted again from its centre; the others keep their fit (a flat-lit batch
pays one pass of moments, no refit). One such round leaves 0.00003 px (our model) and
0.00016 px (Gaussian-beam) of a 1 % gradient, 0.00014 and 0.00064 px of 5 %.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from camtrack._jit import LazyJit
from camtrack.tracking._common import quiet

__all__ = ["divide_gradient", "gradient_moments", "plausible", "projection_moments", "significant"]

# Standard errors of the gradient estimate above which a ROI is refitted (either axis).
# On flat light a ROI exceeds it with probability ~1e-4 per axis.
_SIGNIFICANT = 4.0
# Largest relative change of the light across the ROI taken as illumination (see
# plausible): the divisor 1 + gamma . (p - c) then stays within 1 -+ 0.3.
_MAX_RAMP = 0.3


def gradient_moments(
    xp: ModuleType, g: Any, bg: Any, cx: Any, cy: Any, half: Any, noise: Any, variance: Any = None, hw: Any = None
) -> tuple[Any, Any, Any, Any]:  # fmt: skip
    """(gamma_x, gamma_y, z_x, z_y) per ROI: the illumination gradient (per px, relative to
    the level) about (cx, cy) under the symmetry window of half-width ``half``, and each
    over its standard error. ``noise`` (N,): the symmetry fit's windowed noise power
    ``sum w**2 s2`` (without a camera: gives ``k``); ``variance(level)``: the camera's.
    ``hw`` (N, S, S): the clipped centres' hole weights (1 elsewhere), a factor of the
    window as in the symmetry fit.
    """
    from camtrack.tracking._symmetry import tukey

    s = g.shape[-1]

    kern = _moments_kernel() if xp is np and variance is None and g.dtype == np.float32 else None
    # float32 coordinates and windows for the compiled pass (its pixel products are
    # float32), float64 for the array version.
    dt = np.float32 if kern is not None else np.float64
    pos = xp.arange(s, dtype=dt)
    dx = pos[None, :] - cx.astype(dt)[:, None]
    dy = pos[None, :] - cy.astype(dt)[:, None]
    h = half.astype(dt)[:, None]
    wx2 = tukey(xp, dx, h) ** 2
    wy2 = tukey(xp, dy, h) ** 2
    if kern is not None:
        # Compiled: every sum in one pass over each ROI (the array version makes ~10
        # float64 passes and batched products: 64 px, 34 -> ~2 us per ROI).
        out = np.empty((g.shape[0], 7))
        gg = np.ascontiguousarray(g)
        hh = np.ones((1, 1, 1), dtype=g.dtype) if hw is None else np.ascontiguousarray(hw, dtype=g.dtype)  # fmt: skip
        kern(gg, bg.astype(dt), dx, dy, wx2, wy2, hh, hw is not None, out)
        mx, my, qx, qy, lw, vx, vy = (out[:, i] for i in range(7))
        with quiet():
            k = noise.astype(np.float64) / lw
            return mx / (2.0 * qx), my / (2.0 * qy), mx / xp.sqrt(4.0 * k * vx), my / xp.sqrt(4.0 * k * vy)  # fmt: skip
    lev = g.astype(dt) + bg.astype(dt)[:, None, None]
    h2 = None if hw is None else hw.astype(dt) ** 2
    l2 = lev * lev if h2 is None else lev * lev * h2
    with quiet():
        # Separable window: row and column sums of L**2 under the other axis' window.
        rx = (wy2[:, None, :] @ l2)[:, 0, :]  # (n, S): sum_y wy**2 L**2
        ry = (l2 @ wx2[:, :, None])[:, :, 0]  # (n, S): sum_x wx**2 L**2
        mx = (rx * dx * wx2).sum(axis=1)
        my = (ry * dy * wy2).sum(axis=1)
        qx = (rx * dx * dx * wx2).sum(axis=1)
        qy = (ry * dy * dy * wy2).sum(axis=1)
        gx = mx / (2.0 * qx)
        gy = my / (2.0 * qy)
        if variance is None:
            # k: the fit's noise power shared out over the pixels by level.
            lw = ((wy2[:, None, :] @ (lev if h2 is None else lev * h2))[:, 0, :] * wx2).sum(axis=1)
            k = noise.astype(dt) / lw
            v = k[:, None, None] * l2 * lev  # L**2 var(L) (times hw**2)
        else:
            v = l2 * variance(lev).astype(dt)
        if h2 is not None:
            v = v * h2  # the hole weights to the fourth power, as the window's
        wx4, wy4 = wx2 * wx2, wy2 * wy2
        vx = ((wy4[:, None, :] @ v)[:, 0, :] * dx * dx * wx4).sum(axis=1)
        vy = ((v @ wx4[:, :, None])[:, :, 0] * dy * dy * wy4).sum(axis=1)
        zx = mx / xp.sqrt(4.0 * vx)
        zy = my / xp.sqrt(4.0 * vy)
    return gx, gy, zx, zy


def _moments_loop(g, bg, dx, dy, wx2, wy2, hw, use_hw, out):  # type: ignore[no-untyped-def]
    """:func:`gradient_moments`' sums (compiled), per ROI with W = wx**2 wy**2 hw**2:
    sum dx L**2 W, dy L**2 W, dx**2 L**2 W, dy**2 L**2 W, L W, dx**2 L**3 W**2 and
    dy**2 L**3 W**2 (``out`` (N, 7)). Pixel products in float32 (the inputs' precision;
    a vectorised loop), each row's sums added in float64."""
    n, s, _ = g.shape
    one = np.float32(1.0)
    for i in range(n):
        b = np.float32(bg[i])
        mx = my = qx = qy = lw = vx = vy = 0.0
        for y in range(s):
            wy = wy2[i, y]
            if wy == 0.0:
                continue
            ey = np.float64(dy[i, y])
            rm = rq = rl2 = rl = rvx = rv = np.float32(0.0)
            for x in range(s):
                w = wy * wx2[i, x]
                if use_hw:
                    h = hw[i, y, x]
                    w = w * h * h
                else:
                    w = w * one
                lev = g[i, y, x] + b
                lw_ = lev * w
                l2w = lev * lw_
                ex = dx[i, x]
                rm += ex * l2w
                rq += ex * ex * l2w
                rl2 += l2w
                rl += lw_
                v = l2w * lw_
                rvx += ex * ex * v
                rv += v
            mx += rm
            qx += rq
            my += ey * rl2
            qy += ey * ey * rl2
            lw += rl
            vx += rvx
            vy += ey * ey * rv
        out[i, 0] = mx
        out[i, 1] = my
        out[i, 2] = qx
        out[i, 3] = qy
        out[i, 4] = lw
        out[i, 5] = vx
        out[i, 6] = vy


# The compiled :func:`_moments_loop`, or None without a working numba (then the array
# version runs; tested equal).
_moments_kernel = LazyJit(_moments_loop, nogil=True, cache=True, fastmath={"reassoc", "contract"})


def projection_moments(
    xp: ModuleType, g: Any, bg: Any, cx: Any, cy: Any, proj: tuple[Any, Any], k: Any, variance: Any = None, levels: tuple[Any, Any] | None = None
) -> tuple[Any, Any, Any, Any]:  # fmt: skip
    """:func:`gradient_moments` for the fast mode, from its windowed projections.

    The first moment of the level itself (any function of a bead has none about its
    centre), along x from the x projection ``PL_x = sum_y w_y L`` (``proj`` = (P, w) of
    :func:`~camtrack.tracking._symmetry.projection_centre`, x rows first, ``P`` of
    ``g``; ``bg sum w_y`` added) under a new window about the final centre ``cx``: the
    projections' y window need not be centred, a radially symmetric bead's projection
    is symmetric in x about ``cx`` under any y weights. ``gamma_x = sum dx w_x PL_x /
    sum dx**2 w_x PL_x``; its variance ``k sum dx**2 w_x**2 sum_y w_y**2 L``
    (``levels``: the projections of ``g`` with the squared windows, if known, see
    :func:`~camtrack.tracking._errors.fast_errors`). Operations on (N, S) rows only.
    """
    from camtrack.tracking._symmetry import _half_width, tukey

    n, s, _ = g.shape
    p, w = proj
    dt = g.dtype  # float32 (N, S) rows: sums of a few hundred terms
    pos = xp.arange(s, dtype=dt)
    b = bg.astype(dt)[:, None]
    wpx, wpy = w[:n].astype(dt), w[n:].astype(dt)  # the projections' windows
    px = p[:n].astype(dt) + b * wpy.sum(axis=1)[:, None]  # sum_y w_y L
    py = p[n:].astype(dt) + b * wpx.sum(axis=1)[:, None]  # sum_x w_x L
    cxd, cyd = cx.astype(dt), cy.astype(dt)
    half = xp.minimum(_half_width(xp, cxd, s, None), _half_width(xp, cyd, s, None))[:, None]
    dx = pos[None, :] - cxd[:, None]
    dy = pos[None, :] - cyd[:, None]
    ux = tukey(xp, dx, half)
    uy = tukey(xp, dy, half)
    with quiet():
        mx = (dx * ux * px).sum(axis=1)
        my = (dy * uy * py).sum(axis=1)
        gx = mx / (dx * dx * ux * px).sum(axis=1)
        gy = my / (dy * dy * uy * py).sum(axis=1)
        # var(sum_y w_y L) = sum_y w_y**2 var(L): k L, or the camera's variance
        if variance is None and levels is not None:
            vx, vy = levels[0].astype(dt), levels[1].astype(dt)
        else:
            src = g if variance is None else variance(g + bg.astype(g.dtype)[:, None, None])
            lx = (wpy * wpy)[:, None, :].astype(g.dtype) @ src
            ly = src @ (wpx * wpx)[:, :, None].astype(g.dtype)
            vx, vy = lx[:, 0, :].astype(dt), ly[:, :, 0].astype(dt)
        kk = 1.0
        if variance is None:
            vx = vx + b * (wpy * wpy).sum(axis=1)[:, None]
            vy = vy + b * (wpx * wpx).sum(axis=1)[:, None]
            kk = k.astype(dt)[:, None]
        zx = mx / xp.sqrt((kk * dx * dx * ux * ux * vx).sum(axis=1))
        zy = my / xp.sqrt((kk * dy * dy * uy * uy * vy).sum(axis=1))
    return gx, gy, zx, zy


def divide_gradient(xp: ModuleType, g: Any, bg: Any, cx: Any, cy: Any, gx: Any, gy: Any) -> Any:
    """``L / (1 + gamma . (p - c)) - bg``: the ROIs ``g`` (background-free) lit evenly."""
    s = g.shape[-1]
    dt = np.float64
    pos = xp.arange(s, dtype=dt)
    dx = pos[None, :] - cx.astype(dt)[:, None]
    dy = pos[None, :] - cy.astype(dt)[:, None]
    fac = 1.0 + gx.astype(dt)[:, None, None] * dx[:, None, :] + gy.astype(dt)[:, None, None] * dy[:, :, None]  # fmt: skip
    b = bg.astype(dt)[:, None, None]
    with quiet():
        return ((g.astype(dt) + b) / fac - b).astype(g.dtype)


def plausible(xp: ModuleType, gx: Any, gy: Any, size: int) -> Any:
    """(N,) bool: the gradient changes the light by at most ``_MAX_RAMP`` over the ROI.

    Illumination varies by a few percent across a ROI; a larger first moment is an
    asymmetric object (a bright neighbour at the edge), not light, and dividing by its
    "gradient" would take the far corner's divisor to 0 or below (a 20x brighter
    neighbour: x_err inf, x 10x worse). Those ROIs keep their fit.
    """
    with quiet():
        return (xp.abs(gx) + xp.abs(gy)) * size <= _MAX_RAMP


def significant(xp: ModuleType, zx: Any, zy: Any) -> Any:
    """(N,) bool: a gradient beyond ``_SIGNIFICANT`` standard errors on either axis."""
    with quiet():
        return (xp.abs(zx) > _SIGNIFICANT) | (xp.abs(zy) > _SIGNIFICANT)
