"""One batch of ROIs -> centre, symmetry quality and relative profiles (private core)."""

from __future__ import annotations

import functools
import math
from types import ModuleType
from typing import Any

import numpy as np

from camtrack.tracking._camera import CameraModel, apply_camera
from camtrack.tracking._common import (
    fft_module,
    native,
    prepare,
    quiet,
    rfft2,
    shift_spectrum,
    windowed,
)
from camtrack.tracking._errors import error_profile, fast_errors, profile_variance, xy_errors
from camtrack.tracking._fftnoise import (
    fft_noise_image,
    fft_window,
    window_mean_free,
)
from camtrack.tracking._illumination import (
    divide_gradient,
    gradient_moments,
    plausible,
    projection_moments,
    significant,
)
from camtrack.tracking._radial import default_n_bins, radial_operator
from camtrack.tracking._saturation import clipped_rows, compact
from camtrack.tracking._symmetry import (
    _HOLE_RAMP,
    multiply_hole,
    projection_centre,
    refine_centre,
    symmetry_centre,
    tukey,
)
from camtrack.tracking._template import template_step

__all__ = ["MODES", "PROFILES", "batch_size", "default_bins", "measure", "shift_weights"]

MODES = ("precise", "fast")
PROFILES = ("radial", "fft")
_BATCH_PIXELS = 2**20  # ROI pixels per batch: bounded memory, cache-friendly FFTs


def batch_size(size: int, mode: str = "precise") -> int:
    """ROIs per internal batch for ``size`` x ``size`` ROIs.

    The fast mode does less work per pixel, so its per-batch Python and numpy call
    overhead (about 1 ms, much of it holding the GIL) weighs more: twice the pixels
    per batch. Measured at 128 px (9 interleaved runs): 1 core +11 %, 2 cores +32 %;
    64 px +7 % and +7 %; the precise mode gains nothing from larger batches.
    """
    pixels = 2 * _BATCH_PIXELS if mode == "fast" else _BATCH_PIXELS
    return max(1, pixels // (size * size))


def power_profile(
    xp: ModuleType,
    g: Any,
    cx: Any,
    cy: Any,
    n_bins: int,
    oversample: int,
    window: Any = None,
    *,
    with_spectrum: bool = False,
) -> Any:
    """Radial profile of the windowed amplitude spectrum, centred on zero frequency.

    The amplitude spectrum does not move when the bead moves, so this profile depends
    on z only (the window, radius S/2 - 4 px, follows the bead centre). The ROI's
    window-weighted mean is taken out first, so the profile does not depend on the
    background estimate (module ``_fftnoise``). ``window``: that window, if the caller
    already has it (``fft_window(xp, S, cx, cy, g.dtype)``, also its noise's).
    ``with_spectrum``: also return ``(spectrum, sum w)``, the unshifted complex
    spectrum of the windowed ROI (for its noise, ``_fftnoise.fft_noise_image``).
    """
    fft = fft_module(xp)
    n, s, _ = g.shape
    w = fft_window(xp, s, cx, cy, g.dtype) if window is None else window
    h, total = window_mean_free(xp, g, w)
    f = fft.fft2(h, axes=(-2, -1))
    amp = fft.fftshift(xp.abs(f), axes=(-2, -1)) / total[:, None, None]
    op = radial_operator(s, n_bins, oversample)
    c = xp.full(n, float(s // 2), dtype=g.dtype)
    prof = op.apply(xp, amp.astype(g.dtype), c, c)
    return (prof, (f, total)) if with_spectrum else prof


def profile_noise(
    xp: ModuleType,
    profile: str,
    prof: Any,
    g: Any,
    bg: Any,
    window: Any,
    variance: Any,
    k: Any,
    cx: Any = None,
    cy: Any = None,
    spectrum: Any = None,
) -> Any:
    """What z_err needs of the profiles' noise (None without profiles): radial, (N, B)
    each bin's pixel variance at its level on the profile's scale; FFT, the noise image
    of module ``_fftnoise`` (:func:`~camtrack.tracking._fftnoise.fft_noise_image`;
    ``window`` the profile's, ``spectrum`` its FFT and ``sum w`` if known)."""
    if prof is None:
        return None
    if profile == "radial":
        return profile_variance(xp, prof, bg, variance, k)
    return fft_noise_image(xp, g, bg, window, variance, k, cx, cy, spectrum)


_SHIFT_TAPER = 3.0  # px: cosine edge of the window used for the Fourier shift
# px: the shift window's half-width is S/2 - 2 for every bead within 2.5 px of the ROI
# centre. One window for all those beads means one pixel coverage of every bin, the
# LUT's included, so the bins beyond the inscribed circle (partial rings reaching into
# the corners) measure the same thing in every ROI and can be used: they hold much of a
# 64 px ROI's z information (dim, 64 px: z rms 1.98 -> 1.36 nm, CRLB 1.18 nm).
_SHIFT_MARGIN = 2.0


def shift_half(size: int) -> float:
    """Half-width of the shifted-profile window of a bead near the ROI centre."""
    return max(size / 2.0 - _SHIFT_MARGIN, 2.0 * _SHIFT_TAPER)


REFINE_MIN_SIZE = 96  # px: the fast mode refines x, y by default from this ROI size on


def default_bins(size: int, oversample: int, profile: str = "radial", mode: str = "precise") -> int:  # fmt: skip
    """Default number of profile bins for ``size`` px ROIs.

    Precise radial profiles reach the corners of the shift window's flat top (radius
    sqrt(2) (S/2 - 5) px): the outer bins are partial rings, the same in every ROI.
    Fast and FFT profiles stop about 4 px inside the ROI edge (:func:`default_n_bins`).
    """
    if profile == "radial" and mode == "precise":
        flat = max(shift_half(size) - _SHIFT_TAPER, 1.0)
        return max(2, int(oversample * flat * math.sqrt(2.0)) + 1)
    return default_n_bins(size, oversample)


def _hole_den(xp: ModuleType, op: Any, size: int, hole: Any, dt: Any) -> Any:
    """(k, B) kernel sums of the common shift window's part that holes about (S//2, S//2)
    of radii ``hole`` (k,) remove: ``sum (1 - hole weights) w K`` over one box."""
    t0 = size // 2
    h = hole.astype(dt)
    reach = math.ceil(float(h.max()) + _HOLE_RAMP)
    lo = max(t0 - reach, 0)
    hi = min(t0 + reach, size - 1)
    idx = np.arange(lo, hi + 1)
    half = shift_half(size)
    w1 = tukey(np, np.arange(size, dtype=np.float64) - t0, half, _SHIFT_TAPER / half)[idx]
    w2 = xp.asarray(np.outer(w1, w1).reshape(-1)).astype(dt)
    k0 = xp.asarray(op.k0[(idx[:, None] * size + idx[None, :]).reshape(-1)]).astype(dt, copy=False)  # fmt: skip
    d = xp.asarray(idx - t0, dtype=dt)
    r = xp.sqrt(d[:, None] ** 2 + d[None, :] ** 2).reshape(1, -1)
    gone = 1.0 - xp.clip((r - h[:, None]) / _HOLE_RAMP, 0.0, 1.0)
    return (gone * w2[None, :]) @ k0


@functools.lru_cache(maxsize=16)
def shift_weights(size: int, n_bins: int, oversample: int) -> np.ndarray:
    """(B,) effective pixel count of each shifted-profile bin under its window.

    ``(sum K w)**2 / sum (K w)**2`` for the window of a bead near the ROI centre: the
    inverse shot-noise variance of a bin, up to the pixel variance (the z fit's weight).
    A partial ring in the corners averages fewer pixels than a full one; weighting it
    as full costs z precision (64 px dim: 1.56 nm against 1.36 with these weights).
    """
    op = radial_operator(size, n_bins, oversample)
    pos = np.arange(size, dtype=np.float64)
    h = shift_half(size)
    w1 = tukey(np, pos - size // 2, h, _SHIFT_TAPER / h)
    kw = op.k0.astype(np.float64) * np.outer(w1, w1).reshape(-1, 1)
    sq = (kw * kw).sum(axis=0)
    return np.where(sq > 0, kw.sum(axis=0) ** 2 / np.where(sq > 0, sq, 1.0), 0.0)


def shifted_profile(xp: ModuleType, op: Any, g: Any, cx: Any, cy: Any, hole: Any = None) -> Any:
    """Profiles after an exact Fourier shift of each bead to pixel (S//2, S//2).

    Every bead is resampled onto the same grid around the same centre, so its profile
    does not depend on where the bead sat within a pixel (a kernel average over raw
    pixels does, by up to a few nm of z). The image is windowed (a separable flat top
    reaching the ROI edge, a short taper, so the periodic wrap of the DFT never
    enters), shifted by a phase ramp, and profiled as sum K w g / sum K w with the
    window moved along. The window's half-width is S/2 - 2 for every bead within
    2.5 px of the ROI centre, so the outer bins (partial rings out into the corners)
    cover the same pixels in every such ROI and in the LUT. Bins with under a fifth of
    their kernel weight under the window, or (beads farther off centre, with a smaller
    window) whose centre radius lies outside its flat top, or whose kernel reaches a
    clipped centre's hole, are NaN.
    """
    s = g.shape[-1]
    dt = g.dtype
    pos = xp.arange(s, dtype=dt)
    cxd = cx.astype(dt)
    cyd = cy.astype(dt)
    fit = xp.maximum(xp.minimum(xp.minimum(cxd, s - 1 - cxd), xp.minimum(cyd, s - 1 - cyd)) + 1.0, 2.0 * _SHIFT_TAPER)  # fmt: skip
    # One window (see _SHIFT_MARGIN) for every bead it fits; a smaller one beyond.
    common = fit >= shift_half(s)
    half = xp.minimum(fit, shift_half(s))
    taper = (_SHIFT_TAPER / half)[:, None]
    t0 = float(s // 2)
    # Only the ROIs with a clipped centre get the hole: a bead's profile never depends
    # on its batch mates (a dip in every row once any clipped cost ~1 nm of z rms when
    # LUT and measurement batches differed in having a clipped member).
    holed = None if hole is None else xp.nonzero(hole > 0)[0]

    def window_rows(rows: Any, o: Any) -> Any:
        h = half[rows][:, None]
        tp = taper[rows]
        w1 = tukey(xp, pos[None, :] - o[:, None], h, tp)
        w = w1[:, :, None] * w1[:, None, :]
        if hole is not None:
            sub = xp.nonzero(hole[rows] > 0)[0]
            if sub.size:
                multiply_hole(xp, w, sub, o[sub], o[sub], hole[rows][sub])
        return w

    # Separable: one pass (compiled), no (N, S, S) window (64 px: 4 us per ROI); the
    # holes then multiply their boxes only.
    wy = tukey(xp, pos[None, :] - cyd[:, None], half[:, None], taper)
    wx = tukey(xp, pos[None, :] - cxd[:, None], half[:, None], taper)
    gw = windowed(xp, g, wy, wx)
    if holed is not None and holed.size:
        multiply_hole(xp, gw, holed, cxd[holed], cyd[holed], hole[holed])
    spec = rfft2(xp, gw)
    del gw
    shift_spectrum(xp, spec, t0 - cxd, t0 - cyd, s)
    # The centred window's kernel sums (the profile's denominators): one row for every
    # bead under the common window without a hole, the others' own (64 px: an (N, S*S)
    # window and its product with the kernel, 12 us per ROI, saved).
    plain = common if holed is None else common & ~(hole > 0)
    den = xp.broadcast_to(xp.asarray(_common_den(op, s)).astype(dt), (g.shape[0], op.n_bins))
    other = xp.nonzero(~plain)[0]
    if other.size:
        den = den.copy()
        cut = xp.nonzero(common & (hole > 0))[0] if holed is not None else other[:0]
        if cut.size:
            # Under the common window the hole only removes its box's share from the
            # common sums: one (k, b*b) @ (b*b, B) product instead of the full window's
            # (64 px: a 17 px box, 1/14 of the pixels).
            den[cut] = den[cut] - _hole_den(xp, op, s, hole[cut], dt)
        other = xp.nonzero(~common)[0]
    if other.size:
        centre = xp.full(other.shape, t0, dtype=dt)
        w = window_rows(other, centre)
        den[other] = w.reshape(other.size, -1) @ xp.asarray(op.k0).astype(dt, copy=False)
    prof = op.centred_spectrum(xp, spec, den=den)
    radii = xp.asarray(op.radii)[None, :]
    reach = 3.5 * op.sigma
    # Beads under the common window keep every bin with a fifth of its kernel weight
    # under it (centred_spectrum): their partial rings cover the same pixels. A bead
    # farther off centre has its own smaller window, so its partial rings would differ
    # from the LUT's: there a bin is kept while its centre radius lies inside the flat
    # top (its kernel's tail in the taper is only reweighted).
    bad = (radii > (half - _SHIFT_TAPER)[:, None]) & ~common[:, None]
    if hole is not None:
        # Bins reaching into the hole's edge average a different mix of radii: drop them.
        bad = bad | ((hole[:, None] > 0) & (radii - reach < hole[:, None] + 1.5))
    return xp.where(bad, xp.nan, prof)


@functools.lru_cache(maxsize=16)
def _common_den(op: Any, size: int) -> np.ndarray:
    """(B,) kernel sums under the common shift window of a bead at (S//2, S//2)."""
    pos = np.arange(size, dtype=np.float64)
    h = shift_half(size)
    w1 = tukey(np, pos - size // 2, h, _SHIFT_TAPER / h)
    return np.outer(w1, w1).reshape(-1) @ op.k0.astype(np.float64)


# Window half-widths (fractions of the full (S + 1) / 2) tried for the precise centre.
# The full window is optimal for beads whose rings fill the ROI; a bead whose light is
# concentrated near its centre (weak rings, dim, large ROI) loses more to the noise of
# the far pixels than it gains from their gradient. Each ROI's predicted error (its own
# template and noise, module _errors) picks the window. Gaussian-beam model, 128 px,
# 400 e-/px: x 0.127 px with the full window, 0.059 at 0.35-0.45 (CRLB 0.029).
_WINDOW_FRACTIONS = (0.8, 0.6, 0.45, 0.35)
# Refit where the predicted error drops by 5 %: a smaller gain is within the formula's
# own accuracy, and a refit costs a full symmetry fit (Gaussian-beam 64 px bright: 436
# of 600 ROIs refitted for a median 2.5 % predicted gain; 0.95 is 20 % faster, same
# RMS). Large gains (dim compact cores) go to the template step.
_WINDOW_GAIN = 0.95


def _narrow_windows(
    xp: ModuleType,
    g: Any,
    bg: Any,
    cx: Any,
    cy: Any,
    q: Any,
    err: Any,
    hole: Any,
    others: Any,
    ml_err: Any,
    reach: Any,
    halves: tuple[float, ...],
    n_iter: int,
    variance: Any,
    clip_mask: Any = None,
    k: Any = None,
) -> tuple[Any, Any, Any, Any, Any, Any]:
    """Refit with a narrower window, or take the template step, where it lowers the error.

    Clipped centres (with a hole) keep the full window. ROIs where the template step
    (:func:`_template_refine`) predicts a clear gain over every window take it instead
    of a refit; on clipped centres it leaves the clipped pixels (``clip_mask`` (N, S, S)
    bool) out. Returns (cx, cy, q, x_err, y_err) with the refitted rows replaced and
    (N,) bool the rows that took the template step.
    """
    best = xp.argmin(others, axis=0)
    low = others[best, xp.arange(best.shape[0])]
    pick = low < _WINDOW_GAIN * err
    if hole is not None:
        pick = pick & ~(hole > 0)
    with quiet():
        ml = xp.sqrt(ml_err * ml_err + _TEMPLATE_BIAS**2)
        tpl = xp.isfinite(ml) & (ml < _TEMPLATE_GAIN * xp.where(pick, low, err))
    if not _TEMPLATE_STEP:
        tpl = xp.zeros_like(tpl)
    errx, erry = err.copy(), err.copy()
    refit = pick & xp.isfinite(low) & ~tpl
    first = xp.zeros_like(refit)
    if _TEMPLATE_STEP and _TEMPLATE_FIRST:
        # The template step first where a refit would be needed: kept where its own
        # error (chi-square scaled, so a misfitting template loses) beats the narrow
        # window's prediction; a step costs less than a refit (Gaussian-beam 128 px
        # bright: 240 of 300 ROIs refitted, at 128**2 FFTs each).
        cmp_err = xp.where(refit, low, err)
        cx, cy, fx, fy, first = _template_refine(xp, g, bg, cx, cy, cmp_err, cmp_err.copy(), xp.nonzero(refit)[0], reach, variance, clip_mask, k, only_better=True)  # fmt: skip
        errx, erry = xp.where(first, fx, errx), xp.where(first, fy, erry)
        refit = refit & ~first
    rows = xp.nonzero(refit)[0]
    if rows.size:
        radius = xp.asarray(halves, dtype=g.dtype)[best[rows]]
        rx, ry, rq, _ = symmetry_centre(xp, g[rows], cx[rows], cy[rows], n_iter=n_iter, radius=radius, first_steps=1)  # fmt: skip
        cx, cy, q = cx.copy(), cy.copy(), q.copy()
        cx[rows], cy[rows], q[rows] = rx, ry, rq
        errx[rows] = low[rows]
        erry[rows] = low[rows]
    cx, cy, xe, ye, taken = _template_refine(xp, g, bg, cx, cy, errx, erry, xp.nonzero(tpl)[0], reach, variance, clip_mask, k)  # fmt: skip
    return cx, cy, q, xe, ye, taken | first


# ROIs whose light sits in a compact core over a large noisy background (the
# Gaussian-beam model, dim) take one maximum-likelihood step on their own radial
# template (module _template) instead of a narrower symmetry window: the symmetry
# centre weights pixels by the image, the bound by T'**2 / var (64 px, 400 e-/px: 2.0x
# -> 1.15x the CRLB). It is taken where its predicted error, with the template's bias
# added, is under _TEMPLATE_GAIN of the symmetry centre's. The bias: the 0.5 px binned
# template misses sharp rings slightly; noise-free, our model at 64 px: 0.0019 px (4000
# e-/px: 1.36x -> 1.75x the CRLB when taken everywhere), far below a dim bead's error.
_TEMPLATE_STEP = True
_TEMPLATE_FIRST = True  # try the step before a narrow-window refit (see _narrow_windows)
_TEMPLATE_GAIN = 0.85
_TEMPLATE_BIAS = 0.002  # px
# A second step where the first moved over 2 standard errors and 0.05 px: the template
# about a start d off is blurred at O(d**2), below the noise for smaller moves (the
# fast mode's projection starts move 2-3 errors, by 0.005-0.03 px).
_TEMPLATE_RESTEP = 2.0
_TEMPLATE_RESTEP_PX = 0.05
# The fast mode's template step: a box of this half-width (px) about every centre,
# whatever the ROI size (its cost is the box's area: ~10 us per ROI, compiled).
# Projections sum whole columns of noise and cancel rings of opposite sign (64 px,
# our model: 3.4x the CRLB); the step on 14 px gives 2.8x bright, 2.2x dim; on the
# Gaussian-beam model 2.0-2.3x -> 1.3x.
_FAST_TEMPLATE = True
# Find and divide out illumination gradients (see _even_light, _even_light_fast).
_EVEN_LIGHT = True
_FAST_REACH = 14.0
# px: the template step's bias at a wide clipped plateau's sharp edge (fast mode, see
# measure; noise-free, our model: 0.0038 px rms).
_FAST_EDGE_BIAS = 0.004


def _template_refine(
    xp: ModuleType, g: Any, bg: Any, cx: Any, cy: Any, xe: Any, ye: Any, rows: Any, reach: Any, variance: Any, clip_mask: Any = None, k: Any = None, only_better: bool = False, bias: Any = None
) -> tuple[Any, Any, Any, Any, Any]:  # fmt: skip
    """The template step (:func:`template_step`) on ``rows``, in place of their centres.

    Each on a box about the centre that holds 95 % of its information (``reach`` (N,),
    px, from :func:`~camtrack.tracking._errors.xy_errors`); clipped pixels
    (``clip_mask``) get no weight. Also returns (N,) bool: the rows whose step was
    taken (a failed step, NaN, keeps the centre). ``only_better``: take it only
    where its standard error is below the current one (``xe``, ``ye``). ``bias`` (N,)
    px: a systematic error of the step per ROI, added to its errors in quadrature.
    """
    taken = xp.zeros(cx.shape, dtype=bool)
    if rows.size == 0:
        return cx, cy, xe, ye, taken
    var_rows = None if variance is None else (lambda level, sub: variance(level, rows[sub]))
    radius = xp.minimum(reach[rows], g.shape[-1] / 2.0).astype(g.dtype)
    mask = (
        None if clip_mask is None else (clip_mask if rows.size == g.shape[0] else clip_mask[rows])
    )
    kr = None if k is None else k[rows]
    # Every row (the fast mode): no copy of the ROIs (10 MB per batch).
    gr = g if rows.size == g.shape[0] else g[rows]
    nx, ny, ex, ey = template_step(xp, gr, bg[rows], cx[rows], cy[rows], radius, var_rows, mask, kr)  # fmt: skip
    with quiet():
        move = xp.hypot(nx - cx[rows], ny - cy[rows])
        far = xp.nonzero((move > _TEMPLATE_RESTEP * xp.hypot(ex, ey)) & (move > _TEMPLATE_RESTEP_PX))[0]  # fmt: skip
    if far.size:
        # A start far from the optimum (a poor symmetry fit) gives a template blurred
        # by the offset: one more step about the new centre, for those rows only.
        sub = rows[far]
        var_sub = None if variance is None else (lambda level, f: variance(level, sub[f]))
        m2 = None if mask is None else mask[far]
        k2 = None if kr is None else kr[far]
        ax, ay, bx_, by_ = template_step(xp, g[sub], bg[sub], nx[far], ny[far], radius[far], var_sub, m2, k2)  # fmt: skip
        ok = xp.isfinite(ax) & xp.isfinite(ay)
        nx[far], ny[far] = xp.where(ok, ax, nx[far]), xp.where(ok, ay, ny[far])
        ex[far], ey[far] = xp.where(ok, bx_, ex[far]), xp.where(ok, by_, ey[far])
    if bias is not None:
        b2 = bias[rows] ** 2
        ex, ey = xp.sqrt(ex * ex + b2), xp.sqrt(ey * ey + b2)
    good = xp.isfinite(nx) & xp.isfinite(ny) & xp.isfinite(ex) & xp.isfinite(ey)
    if only_better:
        with quiet():
            good = good & (ex * ex + ey * ey < xe[rows] ** 2 + ye[rows] ** 2)
    take = rows[good]
    if take.size:
        cx, cy, xe, ye = cx.copy(), cy.copy(), xe.copy(), ye.copy()
        cx[take], cy[take], xe[take], ye[take] = nx[good], ny[good], ex[good], ey[good]
        taken[take] = True
    return cx, cy, xe, ye, taken


# Clipped pixels of a plateau smaller than this stay in the profiles (no NaN bins): a
# few clipped pixels (the Gaussian-beam model's compact focus: 1-12 px) leave an edge
# no sharper than the optics' own, while the bins the hole would drop (its radius plus
# the kernel's reach, ~6 px) hold most of the core's z information (64 px, 400 e-/px:
# z 2.5x -> 1.1x the CRLB). LUT and ROIs are clipped alike, and the LUT is the mean of
# per-frame profiles, so both see the same clipped mean. A wide plateau (our model's
# focus: 30-80 px) keeps the hole: its long sharp edge aliases in the Fourier shift
# (4000 e-/px: z 1.4x -> 1.6x the CRLB, and z errors 1.5x the reported ones, without).
_PROFILE_HOLE_PX = 20
# Clipped plateaus of at least this many pixels start the centre fits from their
# centroid instead of the projections (see measure). A compact plateau's centroid is
# off by up to a few tenths of a pixel, which the fast mode's holed projections do not
# fully recover in their two iterations (Gaussian-beam model, noise-free: phase bias
# 0.00018 -> 0.0008 px); a wide one (our model's focus, 30-80 px) starts as well as
# the projections do.
_PLATEAU_START_PX = 20

# A clipped centre is fitted with a hole (the plateau and a smooth 5 px edge left out):
# a sharp plateau edge is not band-limited and its aliasing moves the symmetry centre
# (our model's ball-lens focus: 0.007 px noise-free). But where the light is in a
# compact core (Gaussian beams) the hole also removes the flanks that hold most of the
# information (64 px, 4000 e-/px: 0.040 px with the hole, 0.008 without, CRLB 0.0076).
# The plateau itself is point-symmetric, so the fit without the hole is kept where its
# predicted error is under this fraction of the hole's: the margin covers the aliasing
# that the noise model does not see (our model, 400 e-/px: ratio 0.78, hole kept).
_UNHOLED_GAIN = 0.7
# Without a camera, k is the pixel variance per ADU of level estimated from the fit;
# real cameras give 0.01-10 (e-/ADU's inverse), noise-free float images ~1e-9. Below
# this the predicted errors compare rounding noise, so the hole is kept.
_MIN_K = 1e-4


def _clear_gain(xp: ModuleType, new: Any, old: Any, dx: Any, dy: Any) -> Any:
    """The fit without the hole predicts a clear gain and agrees with the holed one.

    The two fits see the same noise, so without a bias their difference is within a
    few combined errors; a larger shift is the plateau edge's aliasing (noise-free, our
    model: 0.012 px in the fast mode's crop), which the predicted error does not count:
    keep the hole there. (Fast mode only, see :func:`_unholed`.)
    """
    with quiet():
        agree = xp.hypot(dx, dy) < 3.0 * xp.sqrt(new * new + old * old)
        return xp.isfinite(new) & (new < _UNHOLED_GAIN * old) & agree


def _noisy_holes(xp: ModuleType, hole: Any, k: Any) -> Any:
    """Clipped ROIs whose noise is real (a camera, or k above _MIN_K)."""
    return (hole > 0) if k is None else (hole > 0) & (k > _MIN_K)


def _unholed(
    xp: ModuleType,
    g: Any,
    bg: Any,
    cx: Any,
    cy: Any,
    q: Any,
    errs: tuple[Any, Any],
    hole: Any,
    variance: Any,
    k: Any,
    n_iter: int,
    known: tuple[Any, Any, Any] | None = None,
) -> tuple[Any, Any, Any, Any, Any]:
    """Refit clipped ROIs without their hole; keep it where it predicts a clear gain.

    ``known``: (error profile, cx, cy), :func:`error_profile` of every ROI and where it
    was taken; reused for the ROIs that have not moved since (a radial pass saved).
    ``errs``: (x_err, y_err); the rows not refitted keep theirs (a template step's
    differ in x and y)."""
    err, err_y = errs
    rows = xp.nonzero(_noisy_holes(xp, hole, k))[0]
    if rows.size == 0:
        return cx, cy, q, err, err_y
    # The error without the hole, predicted at the current centre (same template and
    # noise), first: only ROIs where it could win are refitted (our model's wide
    # plateau keeps its hole in most ROIs, and a refit is a full symmetry fit).
    kr = None if (k is None or variance is not None) else k[rows]
    prof = None
    if known is not None:
        eprof, px, py = known
        prof = tuple(p[rows] for p in eprof)
        moved = xp.nonzero((px[rows] != cx[rows]) | (py[rows] != cy[rows]))[0]
        if moved.size:  # refitted since (narrower windows): their profile again
            mr = rows[moved]
            for p, new in zip(prof, error_profile(xp, g[mr], bg[mr], cx[mr], cy[mr]), strict=True):
                p[moved] = new
    pred = xy_errors(xp, g[rows], bg[rows], cx[rows], cy[rows], None, None if variance is None else (lambda level: variance(level, rows)), k=kr, profile=prof)[0]  # fmt: skip
    with quiet():
        rows = rows[xp.isfinite(pred) & (pred < _UNHOLED_GAIN * err[rows])]
    if rows.size == 0:
        return cx, cy, q, err, err_y
    var_rows = None if variance is None else (lambda level: variance(level, rows))
    nx, ny, nq, last = symmetry_centre(xp, g[rows], cx[rows], cy[rows], n_iter=n_iter, keep=True, first_steps=1)  # fmt: skip
    ne, _, _ = xy_errors(xp, g[rows], bg[rows], nx, ny, None, var_rows, noise=last["noise"])
    # No agreement test here: on a compact core the holed fit itself scatters 2-4x its
    # predicted error (the hole takes the informative flanks), so the two disagree.
    better = xp.isfinite(ne) & (ne < _UNHOLED_GAIN * err[rows])
    take = rows[better]
    if take.size:
        cx, cy, q, err, err_y = cx.copy(), cy.copy(), q.copy(), err.copy(), err_y.copy()
        cx[take], cy[take], q[take], err[take], err_y[take] = nx[better], ny[better], nq[better], ne[better], ne[better]  # fmt: skip
    return cx, cy, q, err, err_y


def _unholed_fast(
    xp: ModuleType, g: Any, bg: Any, cx: Any, cy: Any, err: Any, hole: Any, variance: Any, k: Any
) -> tuple[Any, Any, Any, Any]:
    """The fast mode's refinement of clipped ROIs without the hole, as :func:`_unholed`."""
    from camtrack.tracking._symmetry import _REFINE_CROP

    rows = xp.nonzero(_noisy_holes(xp, hole, k))[0]
    if rows.size == 0:
        return cx, cy, err, err
    s = g.shape[-1]
    b = max(8, int(s * _REFINE_CROP))
    var_rows = None if variance is None else (lambda level: variance(level, rows))
    ax, ay = refine_centre(xp, g, cx[rows], cy[rows], rows=rows)
    ae = xy_errors(xp, g[rows], bg[rows], ax, ay, None, var_rows, k=None if k is None else k[rows], half=b / 2.0)[0]  # fmt: skip
    better = _clear_gain(xp, ae, err[rows], ax - cx[rows], ay - cy[rows])
    take = rows[better]
    if take.size:
        cx, cy, err = cx.copy(), cy.copy(), err.copy()
        cx[take], cy[take], err[take] = ax[better], ay[better], ae[better]
    return cx, cy, err, err.copy()


def _even_light(
    xp: ModuleType, g: Any, bg: Any, cx: Any, cy: Any, q: Any, last: dict, hole: Any, variance: Any, n_iter: int
) -> tuple[Any, Any, Any, Any]:  # fmt: skip
    """Refit the ROIs with a significant illumination gradient (module _illumination).

    The gradient is measured about the symmetry fit's centre; those ROIs are divided by
    it (in ``g``, so the errors, template steps and profiles see the evenly lit image)
    and fitted again from their centre; ``last["noise"]`` follows. Clipped centres
    measure and fit it without their hole, as the symmetry fit does.
    """
    if not _EVEN_LIGHT:
        return g, cx, cy, q
    hw = None
    holed = None if hole is None else xp.nonzero(hole > 0)[0]
    if holed is not None and holed.size:
        # The clipped plateau and its edge carry no weight, as in the symmetry fit.
        hw = xp.ones(g.shape, dtype=g.dtype)
        multiply_hole(xp, hw, holed, cx[holed], cy[holed], hole[holed], smooth=True)
    gx, gy, zx, zy = gradient_moments(xp, g, bg, cx, cy, last["half"], last["noise"], variance, hw)  # fmt: skip
    rows = xp.nonzero(significant(xp, zx, zy) & plausible(xp, gx, gy, g.shape[-1]))[0]
    if rows.size == 0:
        return g, cx, cy, q
    gc = divide_gradient(xp, g[rows], bg[rows], cx[rows], cy[rows], gx[rows], gy[rows])
    hr = None if hole is None else hole[rows]
    nx, ny, nq, nl = symmetry_centre(xp, gc, cx[rows], cy[rows], n_iter=n_iter, hole=hr, keep=True, first_steps=1)  # fmt: skip
    g[rows] = gc  # g is this batch's own work array (prepare)
    cx, cy, q = cx.copy(), cy.copy(), q.copy()
    cx[rows], cy[rows], q[rows] = nx, ny, nq
    last["noise"] = last["noise"].copy()
    last["noise"][rows] = nl["noise"]
    return g, cx, cy, q


def _even_light_fast(
    xp: ModuleType, g: Any, bg: Any, cx: Any, cy: Any, q: Any, xe: Any, ye: Any, k: Any, hole: Any, variance: Any, n_iter: int, reach: Any, proj: tuple[Any, Any], levels: Any = None
) -> tuple[Any, ...]:  # fmt: skip
    """:func:`_even_light` for the fast mode: the gradient from its projections about
    its final centre (:func:`~camtrack.tracking._illumination.projection_moments`;
    near the bound after the template step, so the test is calibrated, where the
    projections' own centre had flagged 14 % of flat-lit bright ROIs). The ROIs where
    it is significant and plausible are divided by it and measured again (projections,
    errors, template step). Clipped centres and noise-free images keep theirs.
    """
    if not _EVEN_LIGHT or (k is None and variance is None):
        return g, cx, cy, q, xe, ye
    gx, gy, zx, zy = projection_moments(xp, g, bg, cx, cy, proj, k, variance, levels)
    pick = significant(xp, zx, zy) & plausible(xp, gx, gy, g.shape[-1])
    if hole is not None:
        pick = pick & ~(hole > 0)
    if k is not None:
        pick = pick & (k > _MIN_K)  # noise-free images: rounding, not light
    rows = xp.nonzero(pick)[0]
    if rows.size == 0:
        return g, cx, cy, q, xe, ye
    g[rows] = divide_gradient(xp, g[rows], bg[rows], cx[rows], cy[rows], gx[rows], gy[rows])
    gr = g[rows]
    rx, ry, rq, pw, pr = projection_centre(xp, gr, n_iter=n_iter, cx=cx[rows], cy=cy[rows], noise=True)  # fmt: skip
    var_rows = None if variance is None else (lambda level: variance(level, rows))
    ex, ey, kr = fast_errors(xp, gr, bg[rows], rx, ry, None, var_rows, None, noise=pw, proj=pr)
    var_sub = None if variance is None else (lambda level, sub: variance(level, rows[sub]))
    every = xp.arange(rows.size)
    rx, ry, ex, ey, _ = _template_refine(xp, gr, bg[rows], rx, ry, ex, ey, every, reach[rows], var_sub, None, kr, only_better=True)  # fmt: skip
    cx, cy, q, xe, ye = cx.copy(), cy.copy(), q.copy(), xe.copy(), ye.copy()
    cx[rows], cy[rows], q[rows], xe[rows], ye[rows] = rx, ry, rq, ex, ey
    return g, cx, cy, q, xe, ye


def _projection_start(xp: ModuleType, g: Any, n_iter: int, skip: Any) -> tuple[Any, ...]:
    """:func:`projection_centre` (with ``noise``) of every ROI but the rows ``skip``.

    The skipped rows' centres, quality, noise and projections are NaN and zero, filled
    in by the caller. Each row's result does not depend on the others.
    """
    n = g.shape[0]
    if skip is None or skip.size == 0:
        return projection_centre(xp, g, n_iter=n_iter, noise=True)
    s = g.shape[-1]
    cx = xp.full(n, math.nan, dtype=g.dtype)
    cy, q = cx.copy(), cx.copy()
    power = xp.zeros((2, n), dtype=g.dtype)
    proj = (xp.zeros((2 * n, s), dtype=g.dtype), xp.zeros((2 * n, s), dtype=g.dtype))
    keep = xp.ones(n, dtype=bool)
    keep[skip] = False
    rest = xp.nonzero(keep)[0]
    if rest.size:
        _put_rows(xp, rest, projection_centre(xp, g[rest], n_iter=n_iter, noise=True), cx, cy, q, power, proj)  # fmt: skip
    return cx, cy, q, power, proj


def _put_rows(xp: ModuleType, rows: Any, res: tuple[Any, ...], cx: Any, cy: Any, q: Any, power: Any, proj: tuple[Any, Any]) -> None:  # fmt: skip
    """Write :func:`projection_centre`'s result ``res`` (with ``noise``) for the ROIs
    ``rows`` into the batch's arrays, in place (``proj``'s x rows first, then y)."""
    n = cx.shape[0]
    cx[rows], cy[rows], q[rows], power[:, rows] = res[:4]
    both = xp.concatenate([rows, rows + n])
    proj[0][both], proj[1][both] = res[4]


def measure(
    xp: ModuleType,
    rois: Any,
    *,
    mode: str = "precise",
    profile: str = "radial",
    n_bins: int,
    oversample: int = 1,
    saturation: Any = "auto",
    saturation_tol: float = 3.0,
    saturation_level: float | None = None,
    n_iter: int = 2,
    profiles: bool = True,
    refine_xy: bool | str = False,
    camera: CameraModel | None = None,
) -> dict[str, Any]:
    """Centres (x, y), their standard errors, symmetry quality, relative profiles and bg.

    NaN or constant ROIs give NaN everywhere for that ROI only. Without ``profiles``
    (x, y only) no profile is computed and ``"profiles"`` is None. ``refine_xy`` (fast
    mode): one 2-D symmetry step on a central crop after the projections, for every
    ROI (True), for the ROIs with a clipped centre ("clipped") or none (False).
    ``camera`` (maps cut for these ROIs): per-pixel offset and gain corrected, hot
    pixels replaced, and the errors use its variances (else estimated from residuals).
    Clipping is detected on the raw ROIs.
    """
    rois = native(rois)  # the compiled kernels take native byte order
    s = rois.shape[-1]
    # The "auto" clipping check's count comes out of the same pass (compiled path).
    g, bg, bad, top, count = prepare(xp, rois, near=saturation_tol)
    corrected, variance = apply_camera(xp, rois, camera, g.dtype)
    if corrected is not None:
        g, bg, _, _ = prepare(xp, corrected)
    any_bad = bool(bad.any())
    with quiet():
        clipped = clipped_rows(xp, rois, top, saturation, saturation_tol, saturation_level, bad, count, centroids=True)  # fmt: skip
        fast = mode == "fast"
        # Precise mode's symmetry fit needs only a start from the projections: one
        # iteration (its 2 Newton steps from the coarse peak) does (same x, y, z on
        # both models' 64 px cases); the fast mode's centre is theirs.
        p_iter = n_iter if fast else 1
        wide = None
        if clipped is not None:
            rows, sub, (n_clip, px, py) = clipped
            # Fast mode: a wide clipped plateau is a filled disc about the bead's
            # centre; its centroid starts the holed projections below, without the
            # unholed ones. Compact plateaus (a few pixels) start from the projections,
            # and so does the precise mode: its holed symmetry fit keeps a share of
            # its start's error (our model, 64 px dim: one ROI in 1000 moved 0.016 px
            # from a centroid 0.1 px off).
            wide = xp.nonzero(n_clip >= _PLATEAU_START_PX)[0] if fast else rows[:0]
        cx, cy, q, power, proj = _projection_start(xp, g, p_iter, None if wide is None else rows[wide])  # fmt: skip
        hole = clip_mask = prof_hole = None
        if clipped is not None:
            if wide.size:
                cx[rows[wide]] = px[wide].astype(cx.dtype)
                cy[rows[wide]] = py[wide].astype(cy.dtype)
            sub, h = compact(xp, sub, cx[rows], cy[rows])
            lost = wide[h[wide] == 0] if wide.size else wide
            if lost.size:
                # Not a filled disc after all (scattered maxima): the projections' start.
                lr = rows[lost]
                _put_rows(xp, lr, projection_centre(xp, g[lr], n_iter=p_iter, noise=True), cx, cy, q, power, proj)  # fmt: skip
            if bool((h > 0).any()):
                hole = xp.zeros_like(cx)
                hole[rows] = h
                clip_mask = xp.zeros(g.shape, dtype=bool)
                clip_mask[rows] = sub
                # The profile keeps a small plateau (see _PROFILE_HOLE_PX).
                area = xp.zeros(cx.shape, dtype=xp.float64)
                area[rows] = xp.where(h > 0, n_clip, 0.0)  # compact drops the others
                prof_hole = xp.where(area >= _PROFILE_HOLE_PX, hole, 0.0)
                if not bool((prof_hole > 0).any()):
                    prof_hole = None
                if fast:
                    # The clipped plateau is not band-limited: leave it out of the
                    # projections. Also before the 2-D refinement: it keeps part of its
                    # start's error (noise-free clipped phase sweep: 0.0018 px rms with
                    # the hole here, 0.0041 without, for 9-10 % of the clipped speed).
                    sel = rows[h > 0]
                    res = projection_centre(xp, g[sel], n_iter=n_iter, cx=cx[sel], cy=cy[sel], hole=hole[sel], noise=True)  # fmt: skip
                    _put_rows(xp, sel, res, cx, cy, q, power, proj)
        refined = None
        if mode == "precise":
            cx, cy, q, last = symmetry_centre(xp, g, cx, cy, n_iter=n_iter, hole=hole, keep=True)
            # ROIs lit by a gradient: divided by it and fitted again (their g with them).
            g, cx, cy, q = _even_light(xp, g, bg, cx, cy, q, last, hole, variance, n_iter)
            halves = tuple(f * (s + 1) / 2.0 for f in _WINDOW_FRACTIONS)
            eprof = error_profile(xp, g, bg, cx, cy)
            at = (cx.copy(), cy.copy())  # where eprof was taken
            xe, ye, k, others, (ml_err, reach) = xy_errors(xp, g, bg, cx, cy, hole, variance, noise=last["noise"], halves=halves, profile=eprof)  # fmt: skip
            cx, cy, q, xe, ye, _ = _narrow_windows(xp, g, bg, cx, cy, q, xe, hole, others, ml_err, reach, halves, n_iter, variance, clip_mask, k)  # fmt: skip
            if hole is not None:
                # Also after a template step: the clipped plateau's edge is itself
                # point-symmetric information that the step (clipped pixels left out)
                # does not use (Gaussian-beam model, 64 px dim: 1.03x -> 1.15x without).
                cx, cy, q, xe, ye = _unholed(xp, g, bg, cx, cy, q, (xe, ye), hole, variance, k, n_iter, (eprof, *at))  # fmt: skip
        elif refine_xy is True:
            # Projections lose precision as the ROI grows; one 2-D symmetry step on a
            # central crop recovers most of it (128 px dim: 0.017 -> 0.0075 px).
            cx, cy = refine_centre(xp, g, cx, cy, hole=hole)
            refined = xp.ones(cx.shape, dtype=bool)
        elif refine_xy == "clipped" and hole is not None:
            # Projections with a hole lose most: refine the clipped ROIs only.
            sel = xp.nonzero(hole > 0)[0]
            cx[sel], cy[sel] = refine_centre(xp, g, cx[sel], cy[sel], hole=hole[sel], rows=sel)
            refined = hole > 0
        if mode == "fast":
            levels: list = []
            xe, ye, k = fast_errors(
                xp, g, bg, cx, cy, hole, variance, refined, noise=power, proj=proj, levels=levels
            )
            # With the template step after it, the refit without the hole gains nothing
            # (same RMS on both models) and costs 6-14 % of the clipped cases' speed.
            if hole is not None and refined is not None and not _FAST_TEMPLATE:
                cx, cy, xe, ye = _unholed_fast(xp, g, bg, cx, cy, xe, hole, variance, k)
            if _FAST_TEMPLATE:
                # The template step on a small box about every centre, kept where it
                # predicts a smaller error than the projections (or the 2-D refinement).
                reach = xp.full(cx.shape, min(_FAST_REACH, s / 2.0), dtype=g.dtype)
                every = xp.isfinite(cx) & xp.isfinite(cy)
                bias = None
                if prof_hole is not None:
                    # Wide clipped plateaus (as the profile's hole, at least
                    # _PROFILE_HOLE_PX pixels): the template's 0.5 px bins cannot follow
                    # their long sharp edge, a bias the step's error does not count
                    # (noise-free, our model, 64 px: 0.0038 px rms after the step, 0.0004
                    # px for the 2-D refinement). It is added to the step's error; rows
                    # whose current error is below it cannot gain and skip the step (11
                    # us per ROI; bright beads). Compact plateaus (Gaussian beams' focus,
                    # 1-12 px) take the step as any ROI (x 1.47 -> 1.16x the CRLB).
                    bias = xp.where(prof_hole > 0, _FAST_EDGE_BIAS, 0.0)
                    with quiet():
                        every = every & ~(xp.hypot(xe, ye) <= math.sqrt(2.0) * bias)
                every = xp.nonzero(every)[0]
                cx, cy, xe, ye, _ = _template_refine(xp, g, bg, cx, cy, xe, ye, every, reach, variance, clip_mask, k, only_better=True, bias=bias)  # fmt: skip
                # ROIs lit by a gradient: found about the final centre, divided by it,
                # and measured again.
                g, cx, cy, q, xe, ye = _even_light_fast(xp, g, bg, cx, cy, q, xe, ye, k, hole, variance, n_iter, reach, proj, levels[0] if levels else None)  # fmt: skip
        window = spec = None  # the FFT profile's window and spectrum
        if not profiles:
            prof = None
        elif profile == "radial":
            if mode == "fast":
                # Bins past the inscribed disc (a precise LUT's partial rings) stay NaN:
                # the fast profile is a plain kernel average over whole rings.
                inner = min(n_bins, max(default_n_bins(s, oversample), 2))
                op = radial_operator(s, inner, oversample, matched=True)
                # No pixel mask: every clipped pixel lies inside the hole (compact), and
                # the bins kept below are > 8 kernel sigmas from it (weight < 1e-15).
                prof = op.apply(xp, g, cx, cy)
                if inner < n_bins:
                    prof = xp.concatenate([prof, xp.full((prof.shape[0], n_bins - inner), xp.nan, dtype=prof.dtype)], axis=1)  # fmt: skip
                if prof_hole is not None:
                    # As in shifted_profile: bins whose kernel reaches the clipped hole
                    # would average a different mix of radii than the LUT's bins.
                    radii = (xp.arange(n_bins, dtype=prof.dtype) / oversample)[None, :]
                    near = (prof_hole[:, None] > 0) & (radii - 3.5 * op.sigma < prof_hole[:, None] + 1.5)  # fmt: skip
                    prof = xp.where(near, xp.nan, prof)
            else:
                op = radial_operator(s, n_bins, oversample)
                prof = shifted_profile(xp, op, g, cx, cy, prof_hole)
        else:
            window = fft_window(xp, s, cx, cy, g.dtype)  # the profile's and its noise's
            prof, spec = power_profile(xp, g, cx, cy, n_bins, oversample, window, with_spectrum=True)  # fmt: skip
        if prof is not None:
            prof = prof / bg[:, None]
        # The profiles' noise, for z_err.
        pvar = profile_noise(xp, profile, prof, g, bg, window, variance, k, cx, cy, spec)
        if any_bad:
            nan = math.nan
            cx = xp.where(bad, nan, cx)
            cy = xp.where(bad, nan, cy)
            xe = xp.where(bad, nan, xe)
            ye = xp.where(bad, nan, ye)
            q = xp.where(bad, nan, q)
            bg = xp.where(bad, nan, bg)
            if prof is not None:
                prof = xp.where(bad[:, None], nan, prof)
    return {"x": cx, "y": cy, "x_err": xe, "y_err": ye, "quality": q, "profiles": prof, "background": bg, "profile_noise": pvar}  # fmt: skip
