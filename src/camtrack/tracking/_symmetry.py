"""Point-symmetry centres: exact (2-D Fourier series) and fast (windowed projections).

A bead image is point-symmetric about its centre c: f(c + u) = f(c - u). The
auto-convolution A(t) = sum_n f(n) f(t - n) is then maximal at t = 2c. For a
band-limited image A is a trigonometric polynomial whose coefficients are the squared
DFT coefficients, so it can be evaluated (with its derivatives) at any real t and
maximised by Newton's method: no grid, no interpolation kernel, no pixel-locking.

The image is multiplied by a smooth window centred on the current estimate, so the
periodic wrap of the DFT never enters and the ROI edge does not break the symmetry.
A window centred on c0 != c pulls the estimate towards c0, but the pull vanishes when
c0 = c: iterating "window on the estimate, maximise A" converges to an unbiased fixed
point. Pixels flagged as clipped are removed with a hole in the window that is itself
radially symmetric about the estimate, so the fixed-point argument still holds.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np

from camtrack._jit import LazyJit
from camtrack.tracking._common import boxes, cis, fft_module, rfft2, windowed

__all__ = [
    "hole_box",
    "hole_weights",
    "multiply_hole",
    "projection_centre",
    "symmetry_centre",
    "tukey",
]

_TAPER = 0.35  # fraction of the window half-width used by the cosine taper


def tukey(xp: ModuleType, u: Any, half: Any, taper: float = _TAPER) -> Any:
    """Flat-top cosine window of |u| with (broadcast) half-width ``half``; 0 beyond it."""
    a = half * (1.0 - taper)
    s = xp.clip((xp.abs(u) - a) / (half - a), 0.0, 1.0)
    return 0.5 + 0.5 * xp.cos(math.pi * s)


_HOLE_RAMP = 1.5  # px: linear edge of the disc left out around a clipped centre
# px: C2 edge of the disc left out of the exact symmetry fit. The hole weights multiply
# the steep flank around the clipped plateau, so any edge sharper than a few pixels is
# not band-limited and its aliasing moves the symmetry centre with the sub-pixel phase
# (noise-free, 64 px: 1.1e-3 px rms for the 1.5 px linear edge, 4.4e-5 px for 5 px of
# smootherstep; wider edges gain little accuracy and lose shot-noise precision).
_SMOOTH_RAMP = 5.0


def _ramp(xp: ModuleType, r: Any, h: Any, smooth: bool) -> Any:
    """Hole weights at distances ``r`` from the centre for hole radii ``h`` (broadcast)."""
    if not smooth:
        return xp.clip((r - h) / _HOLE_RAMP, 0.0, 1.0)
    u = xp.clip((r - (h - 1.0)) * (1.0 / _SMOOTH_RAMP), 0.0, 1.0)
    return u * u * u * (u * (6.0 * u - 15.0) + 10.0)


def hole_weights(
    xp: ModuleType, size: int, cx: Any, cy: Any, hole: Any, dtype: Any, *, smooth: bool = False
) -> Any:
    """(k, S, S) weights 0 inside a disc about (cx, cy), 1 beyond an edge.

    ``hole`` (k,): the hole radius, the farthest clipped pixel + 1 px (see
    :func:`~camtrack.tracking._saturation.compact`). Plain: 0 out to ``hole``, then a
    linear ramp of ``_HOLE_RAMP``. ``smooth``: 0 out to the farthest clipped pixel
    (``hole - 1``), then a smootherstep 6u^5 - 15u^4 + 10u^3 (continuous to the second
    derivative) over ``_SMOOTH_RAMP``: it vanishes quadratically on the kink of the
    clipped image min(f, clip) and adds almost no aliasing. Both are radially symmetric
    about the estimate, so the symmetry fixed point stays unbiased.
    """
    pos = xp.arange(size, dtype=dtype)
    dx = pos[None, None, :] - cx[:, None, None].astype(dtype)
    dy = pos[None, :, None] - cy[:, None, None].astype(dtype)
    r = xp.sqrt(dx * dx + dy * dy)
    return _ramp(xp, r, hole[:, None, None].astype(dtype), smooth)


def hole_box(
    xp: ModuleType, size: int, cx: Any, cy: Any, hole: Any, dtype: Any, *, smooth: bool = False
) -> tuple[Any, Any, Any]:
    """The part of :func:`hole_weights` below 1: a box about each centre.

    Returns (iy, ix, w): (k, b) row and column indices of the box (inside the ROI)
    and its (k, b, b) weights; outside the box every weight is exactly 1. The box is a
    few percent of the ROI, so a clipped ROI costs a box, not several full-image passes.
    """
    h = hole.astype(dtype)
    reach = (h - 1.0 + _SMOOTH_RAMP) if smooth else (h + _HOLE_RAMP)
    b = min(size, math.ceil(2.0 * float(reach.max())) + 2)
    span = xp.arange(b)
    iy = xp.clip(xp.floor(cy - reach).astype(xp.int64), 0, size - b)[:, None] + span[None, :]
    ix = xp.clip(xp.floor(cx - reach).astype(xp.int64), 0, size - b)[:, None] + span[None, :]
    dy = iy.astype(dtype) - cy[:, None].astype(dtype)
    dx = ix.astype(dtype) - cx[:, None].astype(dtype)
    r = xp.sqrt(dy[:, :, None] ** 2 + dx[:, None, :] ** 2)
    return iy, ix, _ramp(xp, r, h[:, None, None], smooth)


def multiply_hole(
    xp: ModuleType, a: Any, rows: Any, cx: Any, cy: Any, hole: Any, *, smooth: bool = False
) -> None:
    """``a[rows] *= hole_weights(...)`` in place, touching only the holes' boxes.

    Compiled on numpy (each box's weights computed and applied in one pass, the same
    float arithmetic: the same bits; a fancy-indexed update cost ~5 ns per pixel).
    """
    if rows.size == 0:
        return
    kern = _hole_kernel() if xp is np and a.dtype == np.float32 and a.flags.c_contiguous else None
    if kern is None:
        iy, ix, w = hole_box(xp, a.shape[-1], cx, cy, hole, a.dtype, smooth=smooth)
        idx = (rows[:, None, None], iy[:, :, None], ix[:, None, :])
        a[idx] *= w
        return
    size = a.shape[-1]
    h = hole.astype(a.dtype)
    reach = (h - 1.0 + _SMOOTH_RAMP) if smooth else (h + _HOLE_RAMP)
    b = min(size, math.ceil(2.0 * float(reach.max())) + 2)
    y0 = xp.clip(xp.floor(cy - reach).astype(xp.int64), 0, size - b)
    x0 = xp.clip(xp.floor(cx - reach).astype(xp.int64), 0, size - b)
    kern(a, rows.astype(np.int64), y0, x0, b, cx.astype(a.dtype), cy.astype(a.dtype), h, smooth)  # fmt: skip


def _hole_loop(a, rows, y0, x0, b, cx, cy, h, smooth):  # type: ignore[no-untyped-def]
    """:func:`multiply_hole` compiled: float32 throughout, as :func:`hole_box`."""
    one = np.float32(1.0)
    zero = np.float32(0.0)
    inv_smooth = np.float32(1.0 / _SMOOTH_RAMP)
    ramp = np.float32(_HOLE_RAMP)
    for k in range(rows.shape[0]):
        ai = a[rows[k]]
        hk = h[k]
        edge = hk - one
        for p in range(b):
            yy = y0[k] + p
            dy = np.float32(yy) - cy[k]
            for q in range(b):
                xx = x0[k] + q
                dx = np.float32(xx) - cx[k]
                r = np.sqrt(dy * dy + dx * dx)
                if smooth:
                    u = min(max((r - edge) * inv_smooth, zero), one)
                    w = u * u * u * (u * (np.float32(6.0) * u - np.float32(15.0)) + np.float32(10.0))  # fmt: skip
                else:
                    w = min(max((r - hk) / ramp, zero), one)
                ai[yy, xx] *= w


# The compiled :func:`_hole_loop`, or None without a working numba.
_hole_kernel = LazyJit(_hole_loop, nogil=True, cache=True)


def _half_width(xp: ModuleType, c: Any, size: int, limit: float | None) -> Any:
    """Largest window half-width around c whose support stays inside the ROI."""
    half = xp.minimum(c, size - 1 - c) + 1.0
    if limit is not None:
        half = xp.minimum(half, limit)
    return xp.maximum(half, 2.0)


def _secant(xp: ModuleType, c: Any, f: Any, prev: tuple[Any, Any] | None) -> Any:
    """Next window centre for the fixed point c = F(c), from c and f = F(c).

    The window pulls the estimate towards its own centre, so plain iteration converges
    only geometrically (by a factor ~0.35 per step for the projections). A secant step
    on g(c) = F(c) - c, per ROI and axis, removes that pull; where the secant is
    ill-conditioned the plain step F(c) is used.
    """
    if prev is None:
        return f
    c0, f0 = prev
    g1 = f - c
    g0 = f0 - c0
    den = g1 - g0
    ok = xp.abs(den) > 1e-7
    nxt = c - g1 * (c - c0) / xp.where(ok, den, 1.0)
    ok = ok & (xp.abs(nxt - f) < 0.5)
    return xp.where(ok, nxt, f)


def _newton_1d(
    xp: ModuleType, spec: Any, t: Any, size: int, n_iter: int, value: bool = True
) -> tuple[Any, Any]:
    """Maximise the 1-D auto-convolution (coefficients ``spec`` = P**2) near ``t``.

    Returns (t, A(t)) with A normalised like ``irfft`` (A(2c) = sum p**2 when the
    sequence p is symmetric about c); without ``value`` A is not evaluated (None).

    Real arithmetic: with R + iI = w_k spec_k, C = cos(om t), S = sin(om t),
    A = sum(R C - I S), A' = -sum om (R S + I C), A'' = -sum om**2 (R C - I S).
    Real float32 cos/sin cost a small fraction of a complex exponential.
    """
    m = spec.shape[-1]
    dt = t.dtype
    k = xp.arange(m, dtype=dt)
    wk = xp.full(m, 2.0, dtype=dt)
    wk[0] = 1.0
    if size % 2 == 0:
        wk[-1] = 1.0
    om = (2.0 * math.pi / size) * k
    re = (spec.real * wk).astype(dt, copy=False)
    im = (spec.imag * wk).astype(dt, copy=False)
    om1 = -om
    om2 = -(om * om)
    for _ in range(n_iter):
        ph = om[None, :] * t[:, None]
        c = xp.cos(ph)
        s = xp.sin(ph)
        d1 = (re * s + im * c) @ om1
        d2 = (re * c - im * s) @ om2
        step = xp.where(d2 < 0, -d1 / xp.where(d2 < 0, d2, -1.0), xp.sign(d1) * 0.25)
        t = t + xp.clip(step, -1.0, 1.0)
    if not value:
        return t, None
    ph = om[None, :] * t[:, None]
    a = (xp.einsum("ij,ij->i", re, xp.cos(ph)) - xp.einsum("ij,ij->i", im, xp.sin(ph))) / size
    return t, a


def _coarse_1d(xp: ModuleType, fft: ModuleType, p: Any, size: int) -> Any:
    """Integer peak of the 1-D auto-convolution, as a centre in [0, size)."""
    a = fft.irfft(fft.rfft(p, axis=-1) ** 2, n=size, axis=-1)
    t = xp.argmax(a, axis=-1).astype(p.dtype)
    c = t / 2.0
    # t = 2c is known modulo size: pick the branch nearer the ROI centre.
    mid = (size - 1) / 2.0
    alt = c + size / 2.0
    alt = xp.where(alt >= size, alt - size, alt)
    return xp.where(xp.abs(alt - mid) < xp.abs(c - mid), alt, c)


def _cut_hole(
    xp: ModuleType, g: Any, cx: Any, cy: Any, hole: Any, wx: Any, wy: Any, cols: Any, rows: Any
) -> None:
    """Subtract the hole's share from window-weighted projections, in place.

    The projections of ``g * hole_weights`` are those of ``g`` less those of
    ``g * (1 - hole_weights)``, which is zero outside a disc of radius hole + ramp: a
    small box about each centre holds it (a few percent of the ROI), so a clipped ROI
    costs two plain projections and a box instead of several full-image passes.
    """
    n, size, _ = g.shape
    kern = _cut_kernel() if xp is np and g.dtype == np.float32 and g.flags.c_contiguous else None
    if kern is not None:
        # Compiled: each box's hole weights, products and sums in one pass (the array
        # version builds, copies and reduces (n, b, b) temporaries; 64 px clipped ROIs:
        # about 4 us per ROI and iteration).
        h = hole.astype(g.dtype)
        reach = h + _HOLE_RAMP
        b = min(size, math.ceil(2.0 * float(reach.max())) + 2)
        y0 = xp.clip(xp.floor(cy - reach).astype(xp.int64), 0, size - b)
        x0 = xp.clip(xp.floor(cx - reach).astype(xp.int64), 0, size - b)
        kern(g, y0, x0, b, cx.astype(g.dtype), cy.astype(g.dtype), h, wx, wy, cols, rows)
        return
    iy, ix, w = hole_box(xp, size, cx, cy, hole, g.dtype)
    k = xp.arange(n)[:, None]
    box = boxes(xp, g, iy[:, 0], ix[:, 0], iy.shape[1])  # (n, b, b) copies
    box *= 1.0 - w
    wyb = xp.take_along_axis(wy, iy, axis=1)
    wxb = xp.take_along_axis(wx, ix, axis=1)
    cols[k, ix] -= xp.einsum("nab,na->nb", box, wyb)
    rows[k, iy] -= xp.einsum("nab,nb->na", box, wxb)


def _cut_loop(g, y0, x0, b, cx, cy, h, wx, wy, cols, rows):  # type: ignore[no-untyped-def]
    """:func:`_cut_hole` compiled: per ROI, the box pixels times (1 - hole weight),
    summed into the column and row projections' corrections."""
    one = np.float32(1.0)
    zero = np.float32(0.0)
    ramp = np.float32(_HOLE_RAMP)
    acc = np.empty(b, dtype=np.float32)
    for i in range(g.shape[0]):
        acc[:] = 0.0
        hi = h[i]
        for p in range(b):
            y = y0[i] + p
            dy = np.float32(y) - cy[i]
            wyi = wy[i, y]
            racc = zero
            for q in range(b):
                x = x0[i] + q
                dx = np.float32(x) - cx[i]
                r = np.sqrt(dy * dy + dx * dx)
                v = g[i, y, x] * (one - min(max((r - hi) / ramp, zero), one))
                acc[q] += v * wyi
                racc += v * wx[i, x]
            rows[i, y] -= racc
        for q in range(b):
            cols[i, x0[i] + q] -= acc[q]


# The compiled :func:`_cut_loop`, or None without a working numba.
_cut_kernel = LazyJit(_cut_loop, nogil=True, cache=True)


def projection_centre(
    xp: ModuleType,
    g: Any,
    *,
    n_iter: int = 3,
    cx: Any = None,
    cy: Any = None,
    hole: Any = None,
    noise: bool = False,
) -> tuple[Any, ...]:
    """Fast centre from windowed x and y projections of background-free ROIs ``g``.

    The projection of a point-symmetric image along y, weighted by a window symmetric
    about c_y, is symmetric about c_x (exactly, for images band-limited below one cycle
    per pixel), so each axis reduces to a 1-D symmetry problem. Returns (cx, cy,
    quality), quality the mean normalised 1-D symmetry of the two projections.

    ``hole`` (N,): radius of a disc about the estimate left out of the projections
    (clipped centres, see :func:`hole_weights`). The window is then not separable, so
    each iteration weights the whole image: pass the clipped ROIs only.

    ``noise``: also return (2, N) the windowed noise power ``sum_x w_x**2 var P(x)`` of
    the x and y projections, ``sum p**2 (1 - sym)`` (the antisymmetric residual), and
    the final iteration's projections and windows ``(P, w)``, each (2N, S) (x rows
    first: ``P = sum_y w_y g``), for the errors.

    x and y run stacked as one (2N, S) problem; projections are matrix products (a
    BLAS pass over g, several times cheaper than ``sum`` along an axis).
    """
    fft = fft_module(xp)
    n, size, _ = g.shape
    if cx is None or cy is None:
        ones = xp.ones(size, dtype=g.dtype)
        p0 = xp.concatenate([(ones[None, None, :] @ g)[:, 0, :], g @ ones])
        c0 = _coarse_1d(xp, fft, p0, size)
        cx, cy = c0[:n], c0[n:]
    c = xp.concatenate([cx, cy]).astype(g.dtype, copy=False)
    pos = xp.arange(size, dtype=g.dtype)
    q = xp.full(n, float("nan"), dtype=g.dtype)
    power = None
    prev = None
    for it in range(n_iter):
        final = it == n_iter - 1
        c = xp.clip(c, 0.0, size - 1.0)
        w = tukey(xp, pos[None, :] - c[:, None], _half_width(xp, c, size, None)[:, None])
        wx, wy = w[:n], w[n:]
        cols = (wy[:, None, :] @ g)[:, 0, :]  # sum_i wy_i g_ij
        rows = (g @ wx[:, :, None])[:, :, 0]  # sum_j wx_j g_ij
        if hole is not None:
            _cut_hole(xp, g, c[:n], c[n:], hole, wx, wy, cols, rows)
        p = xp.concatenate([cols * wx, rows * wy])
        # From the coarse start 2 Newton steps, later (secant) starts are close enough for 1.
        t, a = _newton_1d(xp, fft.rfft(p, axis=-1) ** 2, 2.0 * c, size, 2 if it == 0 else 1, final)  # fmt: skip
        f = t / 2.0
        if final:
            pp = xp.einsum("ij,ij->i", p, p)
            sym = a / pp
            q = 0.5 * (sym[:n] + sym[n:])
            power = (pp * (1.0 - sym)).reshape(2, n)
            proj = (xp.concatenate([cols, rows]), w)
        nxt = _secant(xp, c, f, prev)
        prev = (c, f)
        c = nxt
    if noise:
        return c[:n], c[n:], q, power, proj
    return c[:n], c[n:], q


def _newton_2d(
    xp: ModuleType, g2: Any, wk: Any, tx: Any, ty: Any, size: int, n_iter: int, value: bool
) -> tuple[Any, Any, Any]:
    """Maximise A(t) = Re sum_k wk G2_k exp(i w.t) near (tx, ty); return (tx, ty, A).

    ``wk`` (m,) weights the half spectrum along kx (1 or 2: the missing conjugate half).
    Each evaluation is one elementwise product with exp(i wx tx) and two small matrix
    products with fixed weights (1, i w, -w**2) along each axis: A and its first and
    second derivatives together. Without ``value``, A at the final t is not evaluated
    (None).
    """
    n, s, m = g2.shape
    dt = tx.dtype
    cdt = g2.dtype
    omx = (2.0 * math.pi / size) * xp.arange(m, dtype=dt)
    ky = xp.arange(size, dtype=dt)
    ky = xp.where(ky >= (size + 1) // 2, ky - size, ky)
    omy = (2.0 * math.pi / size) * ky
    wxm = (wk[:, None] * xp.stack([xp.ones_like(omx), 1j * omx, -(omx**2)], axis=1)).astype(cdt)  # fmt: skip
    wym = xp.stack([xp.ones_like(omy), 1j * omy, -(omy**2)], axis=1).astype(cdt)  # (S, 3)
    a = None
    for it in range(n_iter + 1 if value else n_iter):
        ex = cis(xp, omx[None, :] * tx[:, None], cdt)
        # Sums over kx as one (S, m) @ (m, 3) product per ROI with the phase folded
        # into the small factor: no (N, S, m) temporary (64 px: a third faster).
        h = g2 @ (ex[:, :, None] * wxm[None, :, :])
        ey = cis(xp, omy[None, :] * ty[:, None], cdt)
        # v[n, i, j]: derivative i along x (A, Ax, Axx), j along y (A, Ay, Ayy).
        v = ((h * ey[:, :, None]).transpose(0, 2, 1).reshape(n * 3, s) @ wym).reshape(n, 3, 3).real  # fmt: skip
        a = v[:, 0, 0]
        if it == n_iter:
            break
        ax, axx, ay, axy, ayy = v[:, 1, 0], v[:, 2, 0], v[:, 0, 1], v[:, 1, 1], v[:, 0, 2]
        det = axx * ayy - axy * axy
        ok = (axx < 0) & (det > 0)
        safe = xp.where(ok, det, 1.0)
        sx = xp.where(ok, -(ayy * ax - axy * ay) / safe, xp.sign(ax) * 0.25)
        sy = xp.where(ok, -(axx * ay - axy * ax) / safe, xp.sign(ay) * 0.25)
        tx = tx + xp.clip(sx, -1.0, 1.0)
        ty = ty + xp.clip(sy, -1.0, 1.0)
    return tx, ty, a


def _newton_2d_spec(
    xp: ModuleType, spec: Any, wk: Any, tx: Any, ty: Any, size: int, n_iter: int, value: bool
) -> tuple[Any, Any, Any]:
    """:func:`_newton_2d` on the spectrum of g w itself (G2 = spec**2 formed here).

    Compiled for complex64 spectra on numpy (:func:`_newton_2d_loop`); else the array
    version. Same Newton steps; the two agree to float32 rounding.
    """
    kern = _newton_kernel() if xp is np and spec.dtype == np.complex64 else None
    if kern is None:
        return _newton_2d(xp, spec * spec, wk, tx, ty, size, n_iter, value)
    n = spec.shape[0]
    t = np.empty((2, n), dtype=np.float32)
    a = np.empty(n, dtype=np.float32)
    kern(np.ascontiguousarray(spec), np.asarray(wk, dtype=np.float32), size, tx.astype(np.float32), ty.astype(np.float32), n_iter, value, t, a)  # fmt: skip
    return (
        t[0].astype(tx.dtype, copy=False),
        t[1].astype(ty.dtype, copy=False),
        (a if value else None),
    )


def _newton_2d_loop(spec, wk, size, tx0, ty0, n_iter, value, out_t, out_a):  # type: ignore[no-untyped-def]
    """:func:`_newton_2d` per ROI, compiled. G2 = spec**2 once per ROI (no (N, S, m)
    temporary); the phase factors exp(i w t) by recurrence from one cos and sin per
    axis (in float64) instead of one per frequency. Each evaluation first sums the
    rows into three column vectors ``Y_b[kx] = sum_ky G2 exp(i wy ty) (i wy)**b``
    (b = 0, 1, 2: A's y-derivatives), a broadcast multiply-add along each row that
    vectorises without horizontal sums, then takes A and its five derivatives as six
    dot products of length m with the x factors. 64 px, 2 steps and the value: 10.0
    -> 4.1 us per ROI against sums over kx per row (each row's six horizontal sums
    had kept the short rows from vectorising)."""
    n, s, m = spec.shape
    two_pi = 2.0 * math.pi / size
    e0r = np.empty(m, dtype=np.float32)
    e0i = np.empty(m, dtype=np.float32)
    e1r = np.empty(m, dtype=np.float32)
    e1i = np.empty(m, dtype=np.float32)
    e2r = np.empty(m, dtype=np.float32)
    e2i = np.empty(m, dtype=np.float32)
    zr = np.empty((s, m), dtype=np.float32)
    zi = np.empty((s, m), dtype=np.float32)
    y0r = np.empty(m, dtype=np.float32)
    y0i = np.empty(m, dtype=np.float32)
    y1r = np.empty(m, dtype=np.float32)
    y1i = np.empty(m, dtype=np.float32)
    y2r = np.empty(m, dtype=np.float32)
    y2i = np.empty(m, dtype=np.float32)
    eyr = np.empty(s, dtype=np.float32)
    eyi = np.empty(s, dtype=np.float32)
    omy = np.empty(s, dtype=np.float32)
    half = (s + 1) // 2
    for ky in range(s):
        omy[ky] = two_pi * (ky - s if ky >= half else ky)
    for i in range(n):
        tx = np.float64(tx0[i])
        ty = np.float64(ty0[i])
        sp = spec[i]
        for ky in range(s):
            for kx in range(m):
                z = sp[ky, kx]
                zr[ky, kx] = z.real * z.real - z.imag * z.imag
                zi[ky, kx] = np.float32(2.0) * z.real * z.imag
        a = 0.0
        for it in range(n_iter + 1 if value else n_iter):
            # wxm = wk (1, i w, -w**2) times exp(i w tx), w = 2 pi kx / size
            c1 = math.cos(two_pi * tx)
            s1 = math.sin(two_pi * tx)
            cr = 1.0
            ci = 0.0
            for kx in range(m):
                om = np.float32(two_pi * kx)
                c = np.float32(cr) * wk[kx]
                sn = np.float32(ci) * wk[kx]
                e0r[kx] = c
                e0i[kx] = sn
                e1r[kx] = -sn * om
                e1i[kx] = c * om
                e2r[kx] = -c * om * om
                e2i[kx] = -sn * om * om
                cr, ci = cr * c1 - ci * s1, cr * s1 + ci * c1
            c1 = math.cos(two_pi * ty)
            s1 = math.sin(two_pi * ty)
            cr = 1.0
            ci = 0.0
            for ky in range(half):
                eyr[ky] = cr
                eyi[ky] = ci
                cr, ci = cr * c1 - ci * s1, cr * s1 + ci * c1
            cr = 1.0
            ci = 0.0
            for k in range(1, s - half + 1):
                cr, ci = cr * c1 + ci * s1, ci * c1 - cr * s1
                eyr[s - k] = cr
                eyi[s - k] = ci
            y0r[:] = 0.0
            y0i[:] = 0.0
            y1r[:] = 0.0
            y1i[:] = 0.0
            y2r[:] = 0.0
            y2i[:] = 0.0
            for ky in range(s):
                # P = G2 exp(i wy ty); Y0 += P, Y1 += i wy P, Y2 += -wy**2 P
                er = eyr[ky]
                ei = eyi[ky]
                oy = omy[ky]
                oy2 = -oy * oy
                rr = zr[ky]
                ri = zi[ky]
                for kx in range(m):
                    pr = rr[kx] * er - ri[kx] * ei
                    pi = rr[kx] * ei + ri[kx] * er
                    y0r[kx] += pr
                    y0i[kx] += pi
                    y1r[kx] -= oy * pi
                    y1i[kx] += oy * pr
                    y2r[kx] += oy2 * pr
                    y2i[kx] += oy2 * pi
            # v_ab = Re sum_kx Y_b X_a: A (00), x-derivatives (a0), y (0b), mixed (11)
            v00 = v10 = v20 = v01 = v11 = v02 = 0.0
            for kx in range(m):
                v00 += y0r[kx] * e0r[kx] - y0i[kx] * e0i[kx]
                v10 += y0r[kx] * e1r[kx] - y0i[kx] * e1i[kx]
                v20 += y0r[kx] * e2r[kx] - y0i[kx] * e2i[kx]
                v01 += y1r[kx] * e0r[kx] - y1i[kx] * e0i[kx]
                v11 += y1r[kx] * e1r[kx] - y1i[kx] * e1i[kx]
                v02 += y2r[kx] * e0r[kx] - y2i[kx] * e0i[kx]
            a = v00
            if it == n_iter:
                break
            det = v20 * v02 - v11 * v11
            if v20 < 0.0 and det > 0.0:
                sx = -(v02 * v10 - v11 * v01) / det
                sy = -(v20 * v01 - v11 * v10) / det
            else:
                sx = 0.25 * np.sign(v10)
                sy = 0.25 * np.sign(v01)
            tx = tx + min(max(sx, -1.0), 1.0)
            ty = ty + min(max(sy, -1.0), 1.0)
        out_t[0, i] = tx
        out_t[1, i] = ty
        out_a[i] = a


# The compiled :func:`_newton_2d_loop`, or None without a working numba (then the array
# version runs; tested equal to float32 rounding).
# Reassociated sums over kx (vectorised); no finite-math flags, so a NaN centre
# stays NaN.
_newton_kernel = LazyJit(_newton_2d_loop, nogil=True, cache=True, fastmath={"reassoc", "contract"}, error_model="numpy")  # fmt: skip


def symmetry_centre(
    xp: ModuleType,
    g: Any,
    cx: Any,
    cy: Any,
    *,
    n_iter: int = 3,
    radius: float | None = None,
    hole: Any = None,
    keep: bool = False,
    quality: bool = True,
    first_steps: int = 2,
) -> tuple[Any, Any, Any, dict[str, Any] | None]:
    """Exact point-symmetry centre of background-free ROIs ``g`` from a start (cx, cy).

    Returns (cx, cy, quality, last) where quality = A(2c) / sum((g w)**2) lies in
    [-1, 1] (1: perfectly point-symmetric). ``hole`` (N,) is the radius of a disc left
    out around the estimate (clipped centres), 0 where none (those ROIs keep every
    pixel). Without ``quality`` it is not evaluated (None); ``first_steps``: Newton
    steps of the first iteration (2 from a projection start). With ``keep``, ``last``
    holds the last iteration's spectrum of g w and its window (centre, half-width).
    """
    n, size, _ = g.shape
    m = size // 2 + 1
    wk = xp.full(m, 2.0, dtype=g.dtype)
    wk[0] = 1.0
    if size % 2 == 0:
        wk[-1] = 1.0
    pos = xp.arange(size, dtype=g.dtype)
    holed = None if hole is None else xp.nonzero(hole > 0)[0]
    q = None
    prev = None
    for it in range(n_iter):
        final = it == n_iter - 1
        cx = xp.clip(cx, 0.0, size - 1.0)
        cy = xp.clip(cy, 0.0, size - 1.0)
        half = xp.minimum(_half_width(xp, cx, size, radius), _half_width(xp, cy, size, radius))
        hw = half[:, None].astype(g.dtype)
        wx1 = tukey(xp, pos[None, :] - cx[:, None].astype(g.dtype), hw)
        wy1 = tukey(xp, pos[None, :] - cy[:, None].astype(g.dtype), hw)
        gw = windowed(xp, g, wy1, wx1)
        if holed is not None:
            multiply_hole(xp, gw, holed, cx[holed], cy[holed], hole[holed], smooth=True)
        spec = rfft2(xp, gw)
        wx, wy = cx, cy
        # From the projection start 2 Newton steps; later starts are close enough for 1.
        steps = first_steps if it == 0 else 1
        tx, ty, a = _newton_2d_spec(xp, spec, wk, 2.0 * cx, 2.0 * cy, size, steps, final and quality)  # fmt: skip
        fx, fy = tx / 2.0, ty / 2.0
        nx = _secant(xp, cx, fx, None if prev is None else (prev[0], prev[2]))
        ny = _secant(xp, cy, fy, None if prev is None else (prev[1], prev[3]))
        prev = (cx, cy, fx, fy)
        cx, cy = nx, ny
        if final and quality:
            flat = gw.reshape(n, -1)
            energy = xp.einsum("ij,ij->i", flat, flat)
            q = a / (size * size) / energy
    last = {"spec": spec, "wx": wx, "wy": wy, "half": half, "hole": hole} if keep else None
    if keep and quality:
        # sum (h - h mirrored)**2 = 2 sum h**2 (1 - q) = 2 sum v**2 s2 (noise): the
        # windowed noise power, read off the symmetry fit without a camera model.
        last["noise"] = energy * (1.0 - q)
    return cx, cy, q, last


# Side of the refinement crop as a fraction of the ROI side. Measured at 128 px against
# no refinement (7 interleaved runs): 3/8 -> x 0.0023 px bright, 0.0075 dim, 1.18-1.25x
# the time; 1/2 -> 0.0020 and 0.0064 for 1.28-1.32x.
_REFINE_CROP = 0.375


def refine_centre(
    xp: ModuleType, g: Any, cx: Any, cy: Any, *, hole: Any = None, steps: int = 1, rows: Any = None
) -> tuple[Any, Any]:
    """One windowed 2-D point-symmetry iteration on a central crop, from a fast start.

    The fast mode's projections lose precision as the ROI grows (each projection bin
    sums a whole column of background noise: 3.3x the CRLB at 64 px, 4.2x at 128 px,
    dim beads). One symmetry iteration (``steps`` Newton steps, no secant) on a crop of
    3/8 of the ROI side about the start brings 128 px dim beads from 0.017 to 0.0075 px.
    Its window is centred on the start, so the result keeps a fraction of the start's
    error (the window's pull); with a start this close that is below the noise.
    ``rows``: refine ``g[rows]`` (``cx``, ``cy``, ``hole`` given for those rows) without
    copying those ROIs first.
    """
    s = g.shape[-1]
    b = max(8, int(s * _REFINE_CROP))
    if hole is None or not bool((hole > 0).any()):
        return _refine_crop(xp, g, cx, cy, b, None, steps, rows)
    # Clipped centres: a crop wide enough to hold the hole, its edge and some rings.
    holed = hole > 0
    rx, ry = cx.copy(), cy.copy()
    for sel, size in ((~holed, b), (holed, None)):
        part = xp.nonzero(sel)[0]
        if part.size == 0:
            continue
        h = None
        if size is None:
            h = hole[part]
            size = min(s, max(b, 2 * math.ceil(float(h.max()) + _SMOOTH_RAMP + _REFINE_RING)))
        src = part if rows is None else rows[part]
        rx[part], ry[part] = _refine_crop(xp, g, cx[part], cy[part], size, h, steps, src)
    return rx, ry


_REFINE_RING = 6.0  # px of rings kept beyond a clipped hole's edge in the crop


def _refine_crop(
    xp: ModuleType, g: Any, cx: Any, cy: Any, b: int, hole: Any, steps: int, rows: Any = None
) -> tuple[Any, Any]:
    """The refinement of ``g[rows]`` (every ROI without ``rows``) on crops of side b."""
    s = g.shape[-1]
    y0 = xp.clip(xp.round(cy).astype(xp.int64) - b // 2, 0, s - b)
    x0 = xp.clip(xp.round(cx).astype(xp.int64) - b // 2, 0, s - b)
    crop = xp.ascontiguousarray(boxes(xp, g, y0, x0, b, rows))
    dt = g.dtype
    ox, oy = x0.astype(dt), y0.astype(dt)
    rx, ry, _, _ = symmetry_centre(
        xp, crop, cx - ox, cy - oy, n_iter=1, hole=hole, quality=False, first_steps=steps
    )
    return rx + ox, ry + oy
