"""Classic building blocks: centre of mass, auto-convolution, quadratic refinement, QI."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

from camtrack import _backend
from camtrack._validation import check_choice, check_integer, check_range
from camtrack.tracking._common import (
    as_centres,
    as_rois,
    bad_rois,
    border_mean,
    computed,
    fft_module,
    quiet,
    to_work,
)

__all__ = [
    "auto_conv",
    "auto_conv_multiline",
    "center_of_mass",
    "parabolic_vertex",
    "qi",
    "quadratic_interpolation",
]


def _finish(xp: ModuleType, bad: Any, *vals: Any) -> tuple[Any, ...]:
    out = tuple(xp.where(bad, math.nan, v.astype(xp.float64)) for v in vals)
    return out


def _prep(rois: Any) -> tuple[ModuleType, ModuleType, Any, Any]:
    rois = computed(as_rois(rois, min_size=3))  # dask: see computed()
    xp, ndi = _backend.namespace(rois)
    f = to_work(rois)
    bad = bad_rois(xp, f)
    with quiet():
        if bool(bad.any()):
            f = xp.where(bad[:, None, None], 0.0, f).astype(f.dtype)
    return xp, ndi, f, bad


def parabolic_vertex(values: Any, *, axis: int = -1) -> Any:
    """Vertex of the least-squares parabola through equally spaced samples.

    Parameters
    ----------
    values : array, (..., n) with n >= 3 (along ``axis``)
        Samples at positions ``-(n - 1) / 2, ..., (n - 1) / 2``.
    axis : int
        Axis holding the samples.

    Returns
    -------
    array, float64
        Vertex position relative to the middle sample, clipped to the sampled range;
        NaN where the samples are flat (no curvature) or not finite.

    Notes
    -----
    With n = 3 this is the classic three-point formula
    ``(y[0] - y[2]) / (2 (y[0] - 2 y[1] + y[2]))``.

    Examples
    --------
    >>> import numpy as np
    >>> from camtrack.tracking import parabolic_vertex
    >>> u = np.arange(5) - 2.0
    >>> round(float(parabolic_vertex(-((u - 0.3) ** 2))), 9)
    0.3
    """
    xp, _ = _backend.namespace(values)
    v = xp.moveaxis(xp.asarray(values, dtype=xp.float64), axis, -1)
    n = v.shape[-1]
    if n < 3:
        raise ValueError(f"`values` needs at least 3 samples along axis {axis}; got {n}.")
    u = xp.arange(n, dtype=xp.float64) - (n - 1) / 2.0
    # Centred, symmetric positions make the normal equations for a + b u + c u^2 split.
    s2 = float((u**2).sum())
    s4 = float((u**4).sum())
    m0 = v.sum(axis=-1)
    m1 = (v * u).sum(axis=-1)
    m2 = (v * u * u).sum(axis=-1)
    b = m1 / s2
    c = (n * m2 - s2 * m0) / (n * s4 - s2 * s2)
    with quiet():
        vert = -b / (2.0 * c)
    ok = xp.isfinite(vert) & (c != 0)
    half = (n - 1) / 2.0
    return xp.where(ok, xp.clip(vert, -half, half), math.nan)


def center_of_mass(rois: Any, *, background: str = "mean") -> tuple[Any, Any]:
    """Intensity-weighted centre of each ROI.

    Parameters
    ----------
    rois : array, (N, S, S)
        Any integer or float dtype, numpy or cupy.
    background : {"none", "mean", "median"}
        Subtract the ROI's mean (default) or median first and keep only the positive
        part (``max(f - bg, 0)``), so a flat background (and a camera's offset) does not
        pull the centre to the ROI's middle. Measured on simulated 64 px camera ROIs of
        beads within 1.5 px of the middle (both image models of ``camtrack.simulate``):
        "none" 0.92 and 0.88 px RMS from the truth, "mean" 0.37 and 0.068, "median"
        0.31 and 0.33.

    Returns
    -------
    x, y : array, (N,) float64
        Centres; x = column, y = row, pixel centres at integer coordinates.

    Notes
    -----
    Biased towards the ROI centre by any background left and by truncated rings;
    use it as a start, not a result. NaN for NaN, constant or all-zero ROIs.

    Examples
    --------
    >>> import numpy as np
    >>> from camtrack.tracking import center_of_mass
    >>> roi = np.zeros((1, 5, 5)); roi[0, 1, 3] = 1.0
    >>> [float(v[0]) for v in center_of_mass(roi, background="none")]
    [3.0, 1.0]
    """
    check_choice(background, "background", ("none", "mean", "median"))
    xp, _, f, bad = _prep(rois)
    n, s, _ = f.shape
    if background != "none":
        flat = f.reshape(n, -1)
        bg = flat.mean(axis=1) if background == "mean" else xp.median(flat, axis=1)
        f = xp.maximum(f - bg[:, None, None].astype(f.dtype), 0.0)
    pos = xp.arange(s, dtype=f.dtype)
    with quiet():
        tot = f.sum(axis=(1, 2))
        x = (f.sum(axis=1) * pos).sum(axis=1) / tot
        y = (f.sum(axis=2) * pos).sum(axis=1) / tot
    bad = bad | (tot == 0)
    return _finish(xp, bad, x, y)


def _autoconv_peak(xp: ModuleType, lines: Any, sub_pixel: bool, n_local: int, guess: Any, search: float) -> Any:  # fmt: skip
    """Centre of 1-D lines (M, S) from the peak of their (linear) auto-convolution,
    searched within ``search`` px of the guess."""
    fft = fft_module(xp)
    s = lines.shape[1]
    p = lines - lines.mean(axis=1, keepdims=True)
    conv = fft.irfft(fft.rfft(p, n=2 * s, axis=1) ** 2, n=2 * s, axis=1)[:, : 2 * s - 1]
    # Search near twice the guess (the true centre), within +-search pixels of it.
    t = xp.arange(2 * s - 1)
    near = xp.abs(t[None, :] - 2.0 * guess[:, None]) <= 2.0 * search
    k = xp.argmax(xp.where(near, conv, -xp.inf), axis=1)
    peak = k.astype(xp.float64)
    if sub_pixel:
        h = n_local // 2
        k = xp.clip(k, h, 2 * s - 2 - h)
        idx = k[:, None] + xp.arange(-h, h + 1)[None, :]
        local = xp.take_along_axis(conv, idx, axis=1)
        peak = k + xp.nan_to_num(parabolic_vertex(local))
    return peak / 2.0


def auto_conv(
    rois: Any, x: Any, y: Any, *, sub_pixel: bool = False, n_local: int = 5, search: float = 3.0
) -> tuple[Any, Any]:
    """Centre from the auto-convolution of the row and column through (x, y).

    Parameters
    ----------
    rois : array, (N, S, S)
    x, y : float or array, (N,)
        Current centre estimates (e.g. :func:`center_of_mass`); the row ``round(y)``
        and column ``round(x)`` are used.
    sub_pixel : bool
        Refine the peak with :func:`parabolic_vertex` over ``n_local`` points
        (otherwise the result is a multiple of 0.5 px).
    n_local : int
        Odd number of points (>= 3) for the sub-pixel vertex.
    search : float
        The peak is searched within this many px of the start (at most S/4). A line
        through a defocused bead's rings has side peaks one ring spacing away, which
        can exceed the main peak when the bead sits off the ROI centre (the line is cut
        unevenly): on simulated 48 px ROIs of the ball-lens model (z within +-3 um, 2-D
        starts within 0.35 px) the multi-line result was 0.85 px RMS (up to 5.9 px)
        with the former S/4 (12 px) and 0.13 px (up to 0.39) with 3 px.

    Returns
    -------
    x, y : array, (N,) float64
        x = column, y = row, pixel centres at integer coordinates.

    Notes
    -----
    A line through a symmetric bead convolved with itself peaks at twice the bead's
    position along the line. One line carries little signal, so noise moves the result
    by several hundredths of a pixel; the vertex of a parabola also biases towards
    whole and half pixels (pixel locking). NaN for NaN or constant ROIs.

    Examples
    --------
    >>> from camtrack.simulate import bead_rois
    >>> from camtrack.tracking import auto_conv
    >>> rois, truth = bead_rois(20.3, 21.0, 1500.0, roi_size=40, noise=False)
    >>> x, y = auto_conv(rois, 20, 21, sub_pixel=True)
    >>> bool(abs(x[0] - 20.3) < 0.1)
    True
    """
    return _auto_conv(rois, x, y, 1, sub_pixel, n_local, search)


def auto_conv_multiline(
    rois: Any,
    x: Any,
    y: Any,
    *,
    line_ratio: float = 0.1,
    sub_pixel: bool = True,
    n_local: int = 5,
    search: float = 3.0,
) -> tuple[Any, Any]:
    """Like :func:`auto_conv` on the average of several rows and columns.

    Parameters
    ----------
    rois : array, (N, S, S)
    x, y : float or array, (N,)
        Current centre estimates.
    line_ratio : float
        Fraction of the ROI size averaged: ``max(1, round(line_ratio * S))`` rows
        centred on ``round(y)`` (and as many columns on ``round(x)``).
    sub_pixel, n_local, search
        As in :func:`auto_conv`.

    Returns
    -------
    x, y : array, (N,) float64

    Notes
    -----
    Averaging lines around the centre keeps the symmetry (the band is symmetric about
    the rounded centre, nearly about the true one) and lowers the noise. x = column,
    y = row, pixel centres at integer coordinates; NaN for NaN or constant ROIs.

    Examples
    --------
    >>> from camtrack.simulate import bead_rois
    >>> from camtrack.tracking import auto_conv_multiline
    >>> rois, truth = bead_rois(20.3, 21.0, 1500.0, roi_size=40, noise=False)
    >>> x, y = auto_conv_multiline(rois, 20, 21)
    >>> bool(abs(x[0] - 20.3) < 0.1)
    True
    """
    check_range(line_ratio, "line_ratio", 0.0, 1.0)
    s = int(as_rois(rois, min_size=3).shape[-1])
    n_lines = max(1, round(line_ratio * s))
    return _auto_conv(rois, x, y, n_lines, sub_pixel, n_local, search)


def _auto_conv(
    rois: Any, x: Any, y: Any, n_lines: int, sub_pixel: bool, n_local: int, search: float
) -> tuple[Any, Any]:
    n_local = check_integer(n_local, "n_local", minimum=3)
    search = check_range(search, "search", 0.5, 1e6)
    if n_local % 2 == 0:
        raise ValueError(f"`n_local` must be odd (points centred on the peak); got {n_local}.")
    xp, _, f, bad = _prep(rois)
    n, s, _ = f.shape
    cx, cy = as_centres(xp, n, x, y)
    ok = xp.isfinite(cx) & xp.isfinite(cy)
    ix = xp.clip(xp.rint(xp.where(ok, cx, s // 2)), 0, s - 1).astype(xp.intp)
    iy = xp.clip(xp.rint(xp.where(ok, cy, s // 2)), 0, s - 1).astype(xp.intp)
    off = xp.arange(n_lines) - (n_lines - 1) // 2
    rows = xp.clip(iy[:, None] + off[None, :], 0, s - 1)  # (N, L)
    cols = xp.clip(ix[:, None] + off[None, :], 0, s - 1)
    nn = xp.arange(n)[:, None]
    row_line = f[nn, rows, :].mean(axis=1)  # (N, S) along x
    col_line = f[nn, :, cols].mean(axis=1)  # (N, S) along y
    with quiet():
        reach = min(search, s / 4.0)
        px = _autoconv_peak(xp, row_line, sub_pixel, n_local, xp.where(ok, cx, s / 2.0), reach)
        py = _autoconv_peak(xp, col_line, sub_pixel, n_local, xp.where(ok, cy, s / 2.0), reach)
    return _finish(xp, bad | ~ok, px, py)


def quadratic_interpolation(rois: Any, x: Any, y: Any) -> tuple[Any, Any]:
    """Three-point quadratic refinement of an intensity extremum near (x, y).

    Parameters
    ----------
    rois : array, (N, S, S)
    x, y : float or array, (N,)
        Estimates; the pixel ``(round(y), round(x))`` and its 4 neighbours are used.

    Returns
    -------
    x, y : array, (N,) float64
        Vertex of the parabola through the three pixel values along each axis.

    Notes
    -----
    For beads with a bright (or dark) centre: a peak finder, not a symmetry measure.
    Moves at most half a pixel; pixel locking of order 0.05 px. NaN for NaN or
    constant ROIs and where the three values are collinear. x = column, y = row,
    pixel centres at integer coordinates.

    Examples
    --------
    >>> import numpy as np
    >>> from camtrack.tracking import quadratic_interpolation
    >>> yy, xx = np.mgrid[:9, :9]
    >>> roi = (100 - (xx - 4.2) ** 2 - (yy - 3.9) ** 2)[None]
    >>> [round(float(v[0]), 6) for v in quadratic_interpolation(roi, 4, 4)]
    [4.2, 3.9]
    """
    xp, _, f, bad = _prep(rois)
    n, s, _ = f.shape
    cx, cy = as_centres(xp, n, x, y)
    ok = xp.isfinite(cx) & xp.isfinite(cy)
    ix = xp.clip(xp.rint(xp.where(ok, cx, s // 2)), 1, s - 2).astype(xp.intp)
    iy = xp.clip(xp.rint(xp.where(ok, cy, s // 2)), 1, s - 2).astype(xp.intp)
    nn = xp.arange(n)
    d = xp.arange(-1, 2)
    vx = f[nn[:, None], iy[:, None], ix[:, None] + d[None, :]]
    vy = f[nn[:, None], iy[:, None] + d[None, :], ix[:, None]]
    px = ix + parabolic_vertex(vx)
    py = iy + parabolic_vertex(vy)
    return _finish(xp, bad | ~ok, px, py)


def qi(
    rois: Any,
    x: Any,
    y: Any,
    *,
    n_iter: int = 20,
    tol: float = 1e-4,
    n_radial: int | None = None,
    n_angular: int | None = None,
    radius: float | None = None,
) -> tuple[Any, Any]:
    """Quadrant interpolation (van Loenhout, Kerssemakers, De Vlaminck & Dekker 2012).

    Parameters
    ----------
    rois : array, (N, S, S)
    x, y : float or array, (N,)
        Start centres (e.g. from :func:`center_of_mass` or :func:`auto_conv`).
    n_iter : int
        Most iterations (each resamples around the updated centre); an ROI stops
        earlier once its step is under ``tol``.
    tol : float
        Convergence tolerance in px: an ROI whose centre moved less than this in an
        iteration is done (0: always ``n_iter`` iterations).
    n_radial : int, optional
        Radial samples per quadrant profile, from 0 to ``radius`` (default
        ``2 * radius``: half-pixel steps).
    n_angular : int, optional
        Angular samples over the full circle (a multiple of 4; default 4 per pixel of
        circumference at ``radius / 2``, at least 16).
    radius : float, optional
        Largest sampled radius in px; default ``S / 2 - 3``.

    Returns
    -------
    x, y : array, (N,) float64
        x = column, y = row, pixel centres at integer coordinates.

    Notes
    -----
    The method as published: the image is sampled on a polar grid around the current
    centre (bilinear interpolation); the samples are averaged into four quadrant
    radial profiles (right, top, left, bottom, each over a 90 degree sector). If the
    true centre lies at ``+d`` along x, the concatenation [left reversed, right] is a
    profile symmetric about ``u = d``; its cross-correlation with its own mirror
    image peaks at ``2 d``. The peak is located to sub-sample precision (parabolic
    vertex of 3 points) and the centre moved by ``d``; likewise in y with the top and
    bottom quadrants. Written from the paper's description. Beads that move out of
    ``radius`` of the ROI edge are sampled with the edge value (bias). NaN for NaN or
    constant ROIs and non-finite starts.

    Each iteration removes only about 3/4 of the remaining offset (the quadrant
    profiles are averaged over 90 degree sectors and sampled bilinearly), so QI
    converges geometrically: from a start 0.2-3 px off on simulated 64 px beads, 3
    iterations leave 0.006-0.015 px (noise-free), 8 reach the 0.0004-0.001 px floor.
    Hence the default: iterate until every ROI's step is under ``tol`` (1e-4 px,
    leaving about 3e-5 px), at most 20 times; converged ROIs are not resampled.

    Examples
    --------
    >>> from camtrack.simulate import bead_rois
    >>> from camtrack.tracking import qi
    >>> rois, truth = bead_rois(20.3, 19.6, 1500.0, roi_size=40, noise=False)
    >>> x, y = qi(rois, 20.0, 20.0)
    >>> bool(abs(x[0] - 20.3) < 0.02 and abs(y[0] - 19.6) < 0.02)
    True
    """
    xp, ndi, f, bad = _prep(rois)
    n, s, _ = f.shape
    n_iter = check_integer(n_iter, "n_iter", minimum=1)
    tol = check_range(tol, "tol", 0.0, 1.0)
    radius = float(s / 2 - 3) if radius is None else check_range(radius, "radius", 1.0, s)
    n_radial = max(4, round(2 * radius)) if n_radial is None else check_integer(n_radial, "n_radial", minimum=4)  # fmt: skip
    if n_angular is None:
        n_angular = max(16, 4 * math.ceil(math.pi * radius / 4))
    n_angular = check_integer(n_angular, "n_angular", minimum=4)
    if n_angular % 4:
        raise ValueError(f"`n_angular` must be a multiple of 4 (four quadrants); got {n_angular}.")  # fmt: skip
    cx, cy = as_centres(xp, n, x, y)
    ok = xp.isfinite(cx) & xp.isfinite(cy)
    cx = xp.where(ok, cx, s / 2.0)
    cy = xp.where(ok, cy, s / 2.0)
    dr = radius / n_radial
    r = (xp.arange(n_radial) + 0.5) * dr
    # Angles of each quadrant centred on its axis: right (0), top (pi/2), left, bottom.
    q = n_angular // 4
    phi = (xp.arange(q) + 0.5) * (math.pi / 2) / q - math.pi / 4
    bg = border_mean(f)
    g = (f - bg[:, None, None]).astype(xp.float64)
    nn = xp.arange(n, dtype=xp.float64)
    fft = fft_module(xp)
    active = xp.nonzero(ok & ~bad)[0]
    for _ in range(n_iter):
        if active.size == 0:
            break
        ax, ay = cx[active], cy[active]
        m_act = int(active.size)
        profs = []
        for k in range(4):
            ang = phi + k * math.pi / 2
            px = ax[:, None, None] + r[None, None, :] * xp.cos(ang)[None, :, None]
            py = ay[:, None, None] - r[None, None, :] * xp.sin(ang)[None, :, None]
            rows = nn[active][:, None, None]
            coords = xp.stack([xp.broadcast_to(rows, px.shape), py, px])
            vals = ndi.map_coordinates(g, coords.reshape(3, -1), order=1, mode="nearest")
            profs.append(vals.reshape(m_act, q, n_radial).mean(axis=1))
        right, top, left, bottom = profs
        shifts = []
        for neg, pos_ in ((left, right), (bottom, top)):
            line = xp.concatenate([neg[:, ::-1], pos_], axis=1)  # symmetric about u = d
            m = line.shape[1]
            spec = fft.rfft(line - line.mean(axis=1, keepdims=True), n=2 * m, axis=1)
            # line (x) its mirror: the auto-convolution, peaking at 2d (offset m - 1).
            cc = fft.irfft(spec * spec, n=2 * m, axis=1)[:, : 2 * m - 1]
            k = xp.clip(xp.argmax(cc, axis=1), 1, 2 * m - 3)
            loc = xp.take_along_axis(cc, k[:, None] + xp.arange(-1, 2)[None, :], axis=1)
            peak = k + xp.nan_to_num(parabolic_vertex(loc)) - (m - 1)
            shifts.append(peak * dr / 2.0)
        nx = xp.clip(ax + shifts[0], 0.0, s - 1.0)
        ny = xp.clip(ay - shifts[1], 0.0, s - 1.0)  # "top" is -y (rows grow downwards)
        cx[active], cy[active] = nx, ny
        moved = xp.hypot(nx - ax, ny - ay)
        active = active[moved >= tol] if tol > 0 else active
    return _finish(xp, bad | ~ok, cx, cy)
