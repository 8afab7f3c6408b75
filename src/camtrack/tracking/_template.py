"""Maximum-likelihood refinement of a centre on the bead's own radial template.

The point-symmetry centre weights each pixel pair by the image itself (the
auto-convolution's slope is ``sum g(c + u) g'(c - u)``); the Cramer-Rao bound weights
it by ``T'(r)**2 / var``, the squared slope of the bead's radial template over the
pixel's noise variance. Where the two differ (light in a compact core over a large,
noisy background: the Gaussian-beam model, dim) the symmetry centre loses up to 2x.

One Gauss-Newton step of the weighted least-squares fit of the ROI to ``T(|p - c|)``
closes the gap: ``T`` is the ROI's own azimuthal mean about the current centre (linear
binning, 0.5 px bins; a displacement d changes it only at O(d**2)), weights
``1 / var(T + bg)`` (the camera's, or ``k`` times the level with ``k`` from the
residuals), the slope ``T'`` shrunk by its noise (Wiener factor ``1 - var(T')/T'**2``)
so that the far, flat pixels get no weight without a special case. The step and the
error come from the 2x2 Fisher matrix ``F = sum w J J^T``, ``J = -T'(r) (p - c) / r``:
``sqrt(diag(F^-1))`` is the estimator's standard error. It is applied on a box about
the centre (the window picked for the symmetry fit), so its cost scales with the
light's extent, not the ROI's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import ModuleType
from typing import Any

from camtrack.tracking._common import boxes, quiet

__all__ = ["template_step"]

_BIN = 0.5  # px: template bin width (finer bins are noisier and no more accurate)


_CHUNK_PX = 2**16  # box pixels per chunk: the dozen temporaries stay in cache (2x faster)


def template_step(
    xp: ModuleType,
    g: Any,
    bg: Any,
    cx: Any,
    cy: Any,
    radius: Any,
    variance: Callable[..., Any] | None = None,
) -> tuple[Any, Any, Any, Any]:
    """One weighted Gauss-Newton step of (cx, cy) on each ROI's own radial template.

    ``g`` (N, S, S) background-free ROIs, ``bg`` (N,) their backgrounds (input units),
    ``radius`` (N,) px: the fit covers a box of side about twice the largest radius
    about each centre. ``variance(level, rows)``: the camera's pixel variance (input
    units); without it the variance is ``k`` times the level, ``k`` estimated per ROI
    from the fit's residuals. Returns (cx, cy, x_err, y_err) (N,). Pixel centres at
    integer coordinates.
    """
    n, s, _ = g.shape
    b = int(min(s, 2 * math.ceil(float(radius.max())) + 2))
    step = max(1, _CHUNK_PX // (b * b))
    if n <= step:
        var = None if variance is None else (lambda level: variance(level, xp.arange(n)))
        return _step(xp, g, bg, cx, cy, b, var)
    parts = []
    for i in range(0, n, step):
        sl = slice(i, min(n, i + step))
        rows = xp.arange(sl.start, sl.stop)
        var = None if variance is None else (lambda level, rows=rows: variance(level, rows))
        parts.append(_step(xp, g[sl], bg[sl], cx[sl], cy[sl], b, var))
    return tuple(xp.concatenate([p[j] for p in parts]) for j in range(4))


def _step(
    xp: ModuleType,
    g: Any,
    bg: Any,
    cx: Any,
    cy: Any,
    b: int,
    variance: Callable[[Any], Any] | None,
) -> tuple[Any, Any, Any, Any]:
    """:func:`template_step` on a ``b`` px box (one chunk of ROIs)."""
    n, s, _ = g.shape
    dt = g.dtype
    finite = xp.isfinite(cx) & xp.isfinite(cy)
    cx = xp.where(finite, cx, s / 2.0)
    cy = xp.where(finite, cy, s / 2.0)
    y0 = xp.clip(xp.round(cy).astype(xp.int64) - b // 2, 0, s - b)
    x0 = xp.clip(xp.round(cx).astype(xp.int64) - b // 2, 0, s - b)
    box = xp.ascontiguousarray(boxes(xp, g, y0, x0, b)).reshape(n, -1)
    pos = xp.arange(b, dtype=dt)
    dx = pos[None, :] - (cx - x0).astype(dt)[:, None]  # (n, b) per column
    dy = pos[None, :] - (cy - y0).astype(dt)[:, None]  # (n, b) per row
    nb = math.ceil(b * 0.75 / _BIN) + 3
    with quiet():
        r = xp.sqrt((dy * dy)[:, :, None] + (dx * dx)[:, None, :]).reshape(n, -1)
        u = r * (1.0 / _BIN)
        # A centre off the box (an edge bead) reaches past the bins: clamp to the last.
        u = xp.minimum(u, nb - 1.5)
        i0 = u.astype(xp.intp)  # floor: u >= 0
        f = u - i0
        # The whole box is fitted (its corners hold the far, flat pixels: no weight).
        i0 = (i0 + (xp.arange(n, dtype=xp.intp) * nb)[:, None]).ravel()
        i1 = i0 + 1
        ff = f.ravel()
        a0 = 1.0 - ff
        size = n * nb
        cnt = (xp.bincount(i0, a0, size) + xp.bincount(i1, ff, size)).reshape(n, nb)
        gv = box.ravel()
        tot = (xp.bincount(i0, gv * a0, size) + xp.bincount(i1, gv * ff, size)).reshape(n, nb)
        ok = cnt > 0
        t = xp.where(ok, tot / xp.where(ok, cnt, 1.0), 0.0)
        level_b = t + bg.astype(t.dtype)[:, None]
        d = xp.zeros_like(t)
        d[:, 1:-1] = (t[:, 2:] - t[:, :-2]) * (0.5 / _BIN)

        def at(v: Any) -> Any:
            """Bin values ``v`` (n, nb) linearly interpolated at each pixel's radius."""
            v = v.astype(dt)
            step = xp.zeros_like(v)
            step[:, :-1] = v[:, 1:] - v[:, :-1]
            return (xp.take(v.ravel(), i0) + xp.take(step.ravel(), i0) * ff).reshape(n, -1)

        if variance is None:
            # Residual variance per unit level; each occupied bin absorbed one dof.
            tp = at(t)
            res = box - tp
            level = xp.maximum(tp + bg.astype(dt)[:, None], 1e-6)
            dof = xp.maximum(b * b - ok.sum(axis=1), 1.0)
            k = (res * res).sum(axis=1) / level.sum(axis=1) * (b * b / dof)
            var_b = level_b * k[:, None]
        else:
            var_b = variance(level_b)
        # Wiener shrink of the slope by its noise: far from the bead T' is noise.
        vt = var_b / xp.where(ok, cnt, 1e-3)
        vd = xp.zeros_like(t)
        vd[:, 1:-1] = (vt[:, 2:] + vt[:, :-2]) * (0.25 / (_BIN * _BIN))
        d = d * xp.clip(1.0 - vd / xp.maximum(d * d, 1e-30), 0.0, 1.0)
        if variance is not None:
            tp = at(t)
            res = box - tp
            level = xp.maximum(tp + bg.astype(dt)[:, None], 1e-6)
            w = 1.0 / variance(level)
        else:
            w = 1.0 / (level * k.astype(dt)[:, None])
        dp = at(d)
        # J = -T'(r) (p - c) / r: with q = w T' / r, F = sum q T'/r (dx, dy)(dx, dy)^T and
        # the gradient -sum q res (dx, dy); dx varies along columns only, dy along rows.
        q = w * dp / xp.where(r > 0, r, 1.0)
        p2 = (q * dp / xp.where(r > 0, r, 1.0)).reshape(n, b, b)
        qr = (q * res).reshape(n, b, b)
        f64 = xp.float64
        px = p2.sum(axis=1).astype(f64)  # (n, b) over rows: a function of the column
        py = p2.sum(axis=2).astype(f64)
        dx64, dy64 = dx.astype(f64), dy.astype(f64)
        fxx = (px * dx64 * dx64).sum(axis=1)
        fyy = (py * dy64 * dy64).sum(axis=1)
        fxy = xp.einsum("na,nab,nb->n", dy64, p2.astype(f64), dx64)
        bx = -(qr.sum(axis=1).astype(f64) * dx64).sum(axis=1)
        by = -(qr.sum(axis=2).astype(f64) * dy64).sum(axis=1)
        det = fxx * fyy - fxy * fxy
        good = (det > 0) & finite
        det = xp.where(good, det, 1.0)
        sx = (fyy * bx - fxy * by) / det
        sy = (fxx * by - fxy * bx) / det
        ex = xp.sqrt(fyy / det)
        ey = xp.sqrt(fxx / det)
        nan = math.nan
        nx = xp.where(good, cx + xp.clip(sx, -0.5, 0.5), nan)
        ny = xp.where(good, cy + xp.clip(sy, -0.5, 0.5), nan)
        ex = xp.where(good, ex, nan)
        ey = xp.where(good, ey, nan)
    return nx.astype(cx.dtype), ny.astype(cy.dtype), ex, ey
