"""The classic centre estimators inside the tracking pipeline (``centre=``).

``track_rois``, ``track_beads``, ``build_zlut`` and ``check_zlut`` take ``centre``: the
default ``"symmetry"`` is each mode's own measure (module ``_measure``); any other
value names a building block of ``camtrack.tracking._registry.CENTRES`` (the names
below, which tests/tracking/test_classic.py keeps equal to the registry's). Then x, y
come from that block at its defaults and the profile (radial or FFT, as the mode
computes it) is taken about those centres, so z is measured as usual.

Starts: every refinement (auto-convolution, multi-line auto-convolution, quadratic
interpolation, QI) starts from the peak of the ROI's 2-D auto-convolution
(:func:`start_centres`, to about a tenth of a pixel: 0.09-0.12 px RMS, at most 0.35
px, on simulated 48 px ROIs of beads up to 4 px off centre, z within +-3 um, ball-lens
model; 0.02 px, at most 0.06, Gaussian-beam model). The centre of mass would not do:
on a strongly defocused bead (z -2.75 um) 2 px off the ROI centre it lay 4-6 px off,
and from there QI, whose capture range shrinks with the ring spacing, went to the ROI
edge, and the auto-convolution of a line locked onto a ring one spacing away.

Errors: ``x_err`` and ``y_err`` are NaN. The symmetry centre's error formula (module
``_errors``) describes that estimator, not these; evaluated at a classic centre it is
about the best any unbiased estimator can do (near the Cramer-Rao bound), while the
classic blocks scatter 1.5-100x more and carry pixel-locking biases that no noise
formula sees (quadratic interpolation: 0.2-0.5 px). A wrong, small error is worse than
none, so none is given; the scatter of a stuck bead's track measures the precision.
``quality`` (the symmetry fit's) is NaN too. ``z_err`` is given: it comes from the
profile's pixel noise, estimated from the ROI's border (camera variances where a
camera is given), as in the fast and precise modes.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

from camtrack import _backend
from camtrack.tracking._blocks import (
    auto_conv,
    auto_conv_multiline,
    center_of_mass,
    parabolic_vertex,
    qi,
    quadratic_interpolation,
)
from camtrack.tracking._camera import CameraModel, apply_camera
from camtrack.tracking._common import (
    as_rois,
    bad_rois,
    computed,
    fft_module,
    native,
    prepare,
    quiet,
    to_work,
)
from camtrack.tracking._fftnoise import fft_window
from camtrack.tracking._measure import power_profile, profile_noise, shifted_profile
from camtrack.tracking._radial import default_n_bins, radial_operator
from camtrack.tracking._saturation import clipped_rows, compact

__all__ = ["BLOCKS", "CENTRES", "SYMMETRY", "measure_classic"]

SYMMETRY = "symmetry"  # the mode's own centre (precise or fast): the default
# The blocks by their registry names (tracking._registry.CENTRES; that module imports
# the pipeline, so the pipeline keeps this copy and a test keeps the two equal).
BLOCKS = {
    "center-of-mass": center_of_mass,
    "auto-conv": auto_conv,
    "auto-conv-multiline": auto_conv_multiline,
    "quadratic-interpolation": quadratic_interpolation,
    "qi": qi,
}
CENTRES = (SYMMETRY, *BLOCKS)
# As in _measure: a clipped plateau smaller than this keeps its pixels in the profile.
_PROFILE_HOLE_PX = 20


def block_centres(rois: Any, centre: str) -> tuple[Any, Any]:
    """(x, y) (N,) float64 of the ROIs by the block ``centre`` at its defaults."""
    if centre == "center-of-mass":
        return center_of_mass(rois)
    x, y = start_centres(rois)
    return BLOCKS[centre](rois, x, y)


def start_centres(rois: Any) -> tuple[Any, Any]:
    """(x, y) (N,) float64: the peak of each ROI's 2-D auto-convolution, halved.

    A point-symmetric image convolved with itself peaks at twice its centre. The peak
    is taken on the integer grid of the (2S - 1)^2 linear convolution (zero-padded
    FFTs of the mean-free ROI) and moved by the 3-point parabola along each axis. The
    whole ROI takes part, so the rings' side peaks (one ring spacing off, the trap of
    a single line) stay below the main one. NaN rows for NaN or constant ROIs.
    """
    rois = computed(as_rois(rois, min_size=3))
    xp, _ = _backend.namespace(rois)
    f = to_work(rois)
    n, s, _ = f.shape
    bad = bad_rois(xp, f)
    fft = fft_module(xp)
    with quiet():
        g = xp.where(bad[:, None, None], 0.0, f - f.mean(axis=(1, 2), keepdims=True))
        spec = fft.rfft2(g, s=(2 * s, 2 * s), axes=(-2, -1))
        conv = fft.irfft2(spec * spec, s=(2 * s, 2 * s), axes=(-2, -1))[
            :, : 2 * s - 1, : 2 * s - 1
        ]
        k = xp.argmax(conv.reshape(n, -1), axis=1)
        ky = xp.clip(k // (2 * s - 1), 1, 2 * s - 3)
        kx = xp.clip(k % (2 * s - 1), 1, 2 * s - 3)
        nn = xp.arange(n)
        d = xp.arange(-1, 2)
        vx = parabolic_vertex(conv[nn[:, None], ky[:, None], kx[:, None] + d[None, :]])
        vy = parabolic_vertex(conv[nn[:, None], ky[:, None] + d[None, :], kx[:, None]])
        x = (kx + xp.clip(xp.nan_to_num(vx), -0.5, 0.5)) / 2.0
        y = (ky + xp.clip(xp.nan_to_num(vy), -0.5, 0.5)) / 2.0
    return xp.where(bad, math.nan, x), xp.where(bad, math.nan, y)


def _border_k(xp: ModuleType, g: Any, bg: Any) -> Any:
    """(N,) pixel variance per unit level from the ROI border, for the profiles' noise.

    The mean squared third difference along the four border lines over 20 (its
    variance for white noise), over the border level: the shot-noise model's variance
    per ADU of level that the symmetry modes estimate from their fit's residuals. Third
    differences cancel the rings that reach the border up to their curvature's slope:
    on simulated 48 px ROIs the estimate is 1.04x (ball-lens model, strong rings at the
    border) and 1.00x (Gaussian-beam model) the true variance, where first differences
    give 2.99x and 1.00x, second 1.23x and 1.00x.
    """
    edges = (g[:, 0, :], g[:, -1, :], g[:, :, 0], g[:, :, -1])
    d3 = sum(((e[:, 3:] - 3 * e[:, 2:-1] + 3 * e[:, 1:-2] - e[:, :-3]) ** 2).mean(axis=1) for e in edges)  # fmt: skip
    with quiet():
        return (d3 / 80.0) / xp.maximum(bg, 1e-12)


def measure_classic(
    xp: ModuleType,
    rois: Any,
    *,
    centre: str,
    mode: str = "precise",
    profile: str = "radial",
    n_bins: int,
    oversample: int = 1,
    saturation: Any = "auto",
    saturation_tol: float = 3.0,
    saturation_level: float | None = None,
    profiles: bool = True,
    camera: CameraModel | None = None,
) -> dict[str, Any]:
    """As ``_measure.measure`` with x, y from the block ``centre`` (module notes).

    The same keys: x, y, x_err and y_err (NaN), quality (NaN), profiles about the
    block's centres (the mode's profile: shifted in "precise", kernel average in
    "fast", or the FFT profile), background, profile_variance.
    """
    rois = native(rois)  # the compiled kernels take native byte order
    s = rois.shape[-1]
    g, bg, bad, top, count = prepare(xp, rois, near=saturation_tol)
    corrected, variance = apply_camera(xp, rois, camera, g.dtype)
    if corrected is not None:
        g, bg, _, _ = prepare(xp, corrected)
    source = rois if corrected is None else corrected
    with quiet():
        bx, by = block_centres(source, centre)
        ok = xp.isfinite(bx) & xp.isfinite(by) & ~bad
        # Profiles want a centre inside the ROI; the rows without one are NaN below.
        cx = xp.where(ok, xp.clip(bx, 0.0, s - 1.0), s / 2.0).astype(g.dtype)
        cy = xp.where(ok, xp.clip(by, 0.0, s - 1.0), s / 2.0).astype(g.dtype)
        prof_hole = None
        clipped = clipped_rows(xp, rois, top, saturation, saturation_tol, saturation_level, bad, count)  # fmt: skip
        if clipped is not None:
            rows, sub = clipped
            sub, h = compact(xp, sub, cx[rows], cy[rows])
            if bool((h > 0).any()):
                area = xp.zeros(cx.shape, dtype=xp.int64)
                area[rows] = sub.reshape(sub.shape[0], -1).sum(axis=1)
                hole = xp.zeros_like(cx)
                hole[rows] = h
                prof_hole = xp.where(area >= _PROFILE_HOLE_PX, hole, 0.0)
                if not bool((prof_hole > 0).any()):
                    prof_hole = None
        prof = window = None
        if profiles:
            if profile != "radial":
                window = fft_window(xp, s, cx, cy, g.dtype)  # the profile's and its noise's
            prof = _profile(xp, g, cx, cy, mode, profile, n_bins, oversample, prof_hole, window)
            prof = prof / bg[:, None]
        pvar = None
        if prof is not None:
            k = None if variance is not None else _border_k(xp, g, bg)
            pvar = profile_noise(xp, profile, prof, g, bg, window, variance, k, cx, cy)
        nan = math.nan
        n = cx.shape[0]
        x = xp.where(ok, bx, nan)
        y = xp.where(ok, by, nan)
        if prof is not None:
            prof = xp.where(ok[:, None], prof, nan)
        bg = xp.where(bad, nan, bg)
    err = xp.full(n, nan)
    return {"x": x, "y": y, "x_err": err, "y_err": err.copy(), "quality": xp.full(n, nan), "profiles": prof, "background": bg, "profile_noise": pvar}  # fmt: skip


def _profile(
    xp: ModuleType,
    g: Any,
    cx: Any,
    cy: Any,
    mode: str,
    profile: str,
    n_bins: int,
    oversample: int,
    prof_hole: Any,
    window: Any = None,
) -> Any:
    """The mode's profile about (cx, cy), as ``_measure.measure`` takes it (``window``:
    the FFT profile's, :func:`~camtrack.tracking._fftnoise.fft_window`)."""
    s = g.shape[-1]
    if profile != "radial":
        return power_profile(xp, g, cx, cy, n_bins, oversample, window)
    if mode == "precise":
        return shifted_profile(xp, radial_operator(s, n_bins, oversample), g, cx, cy, prof_hole)
    inner = min(n_bins, max(default_n_bins(s, oversample), 2))
    op = radial_operator(s, inner, oversample, matched=True)
    prof = op.apply(xp, g, cx, cy)
    if inner < n_bins:
        pad = xp.full((prof.shape[0], n_bins - inner), xp.nan, dtype=prof.dtype)
        prof = xp.concatenate([prof, pad], axis=1)
    if prof_hole is not None:
        radii = (xp.arange(n_bins, dtype=prof.dtype) / oversample)[None, :]
        near = (prof_hole[:, None] > 0) & (radii - 3.5 * op.sigma < prof_hole[:, None] + 1.5)
        prof = xp.where(near, xp.nan, prof)
    return prof
