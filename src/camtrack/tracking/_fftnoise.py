"""The FFT profile's window and noise model (private).

The FFT profile (``profile="fft"``) is the radial profile of ``|FFT((g - m) w)| / sum w``
about zero frequency: ``w`` a round window that follows the bead centre and ``m`` the
window-weighted mean of the ROI. Taking ``m`` out makes the spectrum blind to any
constant in the ROI, so an error of the ROI's background estimate (which comes from
the ROI border and so changes with where the bead sits in its ROI) does not leak the
window's own spectrum into the low bins. Without it a bead 1 px off its ROI centre
was 16 nm off in z, noise-free (1.5 px: 34 nm); with it 1.8 nm at every offset.

Noise (for ``z_err``): white pixel noise of variance ``v_p`` gives each Fourier sample
complex noise of total variance ``V = sum w_p**2 v_p``; its amplitude, for a sample
well above the noise, varies by the component along the sample's phase. Samples share
noise through ``w**2 v``, whose spectrum is not the window's alone: a bead's own shot
noise follows its image, whose spectrum is broad, so the samples of one ring share
more noise than the window implies (64 px dim beads of our model: signal bins 1.3-2.2x
the variance of a window-only model, 1.0x with uniform pixel noise; that model's z_err
was 0.57-1.39 of the scatter across z). z_err therefore comes from the exact form
(:func:`fft_z_error`): for ``dz = sum_k U_k d|F_k| / c`` with ``U`` even in ``k``,

    var(z) = sum_p w_p**2 v_p V(p - c)**2 / c**2,   V(r) = sum_k s_k U_k exp(-i k.r)

(``s_k`` the sign of the bead's real spectrum about its centre, soft where the
spectrum is near zero: ``R / sqrt(R**2 + s2)``, ``s2`` the noise along it), one
half-spectrum FFT per ROI beyond the profile's own.
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any

import numpy as np

from camtrack.tracking._common import fft_module
from camtrack.tracking._radial import radial_operator
from camtrack.tracking._symmetry import tukey

__all__ = [
    "fft_noise_image",
    "fft_window",
    "fft_z_error",
    "window_mean_free",
]


def fft_window(xp: ModuleType, size: int, cx: Any, cy: Any, dtype: Any) -> Any:
    """(N, S, S) round window of radius S/2 - 4 px about each centre (one radius for
    every ROI and the LUT: the spectrum depends on it)."""
    pos = xp.arange(size, dtype=dtype)
    cx = cx.astype(dtype)
    cy = cy.astype(dtype)
    r = xp.sqrt((pos[None, None, :] - cx[:, None, None]) ** 2 + (pos[None, :, None] - cy[:, None, None]) ** 2)  # fmt: skip
    return tukey(xp, r, max(size / 2.0 - 4.0, 2.0))


def window_mean_free(xp: ModuleType, g: Any, w: Any) -> tuple[Any, Any]:
    """``(g - m) w`` with ``m`` the window-weighted mean of each ROI, and ``sum w``."""
    n = g.shape[0]
    total = w.reshape(n, -1).sum(axis=1)
    mean = (g * w).reshape(n, -1).sum(axis=1) / total
    return (g - mean[:, None, None]) * w, total


def _ramps(xp: ModuleType, size: int, cx: Any, cy: Any, dtype: Any) -> tuple[Any, Any]:
    """(N, S) each: ``exp(+2 pi i k c / S)`` along x and y (FFT frequency order), as
    ``dtype`` (complex)."""
    k = xp.asarray(np.fft.fftfreq(size) * size)
    ex = xp.exp((2j * np.pi / size) * (k[None, :] * xp.asarray(cx, dtype=xp.float64)[:, None]))
    ey = xp.exp((2j * np.pi / size) * (k[None, :] * xp.asarray(cy, dtype=xp.float64)[:, None]))
    return ex.astype(dtype), ey.astype(dtype)


def _shifted(f: Any, ex: Any, ey: Any) -> Any:
    """``f * exp(i k.c)`` (N, S, S): the phase ramps along x and y (a new array)."""
    out = f * ex[:, None, :]
    out *= ey[:, :, None]
    return out


def fft_noise_image(xp: ModuleType, g: Any, bg: Any, w: Any, variance: Any, k: Any, cx: Any, cy: Any, spectrum: Any = None) -> tuple[Any, ...]:  # fmt: skip
    """What :func:`fft_z_error` needs of each ROI: ``(a, sign, total, cx, cy)``.

    ``a`` (N, S, S) ``w**2 v``, each pixel's variance (the camera's at its level, or
    ``k`` times the level) under the profile's window ``w``; ``sign`` (N, S, S//2 + 1)
    the (soft) sign of the bead's spectrum about its centre ``(cx, cy)`` (real and
    even for a point-symmetric bead; the half spectrum in FFT order); ``total`` (N,)
    ``sum w``; the centre (N,) each, the window's. ``spectrum``: ``(FFT of (g - m) w,
    sum w)`` if the profile has it (:func:`~camtrack.tracking._measure.power_profile`).
    """
    if spectrum is None:
        h, total = window_mean_free(xp, g, w)
        f = fft_module(xp).fft2(h, axes=(-2, -1))
    else:
        f, total = spectrum
    level = g + bg.astype(g.dtype)[:, None, None]
    var = variance(level) if variance is not None else k.astype(g.dtype)[:, None, None] * level
    a = xp.maximum(var, 0.0)
    a *= w
    a *= w
    # The sign of each sample, soft: R / sqrt(R**2 + s2), R the spectrum about the
    # centre and s2 its noise variance along R. A sample near a zero of the bead's
    # spectrum has no sign the noise does not flip (nor an amplitude linear in the
    # noise); a hard sign there made z_err jump with float rounding (2 ROIs in 40,
    # 1.4 against 2.1 nm, between the host and the cupy path).
    half = g.shape[-1] // 2 + 1  # the spectrum is even in k: half of it is enough
    ex, ey = _ramps(xp, g.shape[-1], cx, cy, f.dtype)
    re = _shifted(f[:, :, :half], ex[:, :half], ey).real
    s2 = (0.5 * a.reshape(a.shape[0], -1).sum(axis=1)).astype(re.dtype)[:, None, None]
    sign = (re / xp.sqrt(re * re + s2)).astype(g.dtype)
    return a, sign, total, cx, cy


@functools.lru_cache(maxsize=16)
def _bin_weights(size: int, n_bins: int, oversample: int) -> tuple[np.ndarray, np.ndarray]:
    """The FFT profile's normalised bin weights as functions of the radius: ``(W, idx)``,
    ``W`` (B, R) on the grid's R distinct radii about zero frequency and ``idx``
    (S*S,) each frequency's radius, in FFT order (unshifted): ``U = (u @ W)[:, idx]``
    is ``u @ kn`` on the whole grid for a fraction of the work (the kernel is radial)."""
    kw = radial_operator(size, n_bins, oversample).k0.astype(np.float64)
    tot = kw.sum(axis=0)
    kn = kw / np.where(tot > 0, tot, 1.0)  # (S*S, B), shifted grid
    pos = np.arange(size) - size // 2
    r2 = (pos[:, None] ** 2 + pos[None, :] ** 2).ravel()
    _, first, inverse = np.unique(r2, return_index=True, return_inverse=True)
    weights = np.ascontiguousarray(kn[first].T)  # (B, R)
    idx = np.fft.ifftshift(inverse.reshape(size, size)).ravel()  # unshifted order
    return weights, np.ascontiguousarray(idx)


def fft_z_error(xp: ModuleType, u: Any, curv: Any, noise: tuple[Any, ...], bg: Any, oversample: int, frames_per_plane: float) -> Any:  # fmt: skip
    """(N,) standard error of z from the FFT profile (module notes): ``u``, ``curv`` the
    z fit's response (:func:`~camtrack.tracking._lookup.zfit` with ``influence``), ``noise``
    :func:`fft_noise_image`'s, ``bg`` (N,) the backgrounds the profile was divided
    by; the LUT's own noise as the z fit counts it (``1 + 1/frames_per_plane``)."""
    fft = fft_module(xp)
    a, sign, total, cx, cy = noise
    n, s, _ = a.shape
    dt = a.dtype  # float32 for float32 ROIs: a standard error needs no more
    weights, idx = _bin_weights(s, u.shape[1], oversample)
    half = s // 2 + 1
    per_radius = xp.asarray(u).astype(dt) @ xp.asarray(weights).astype(dt)
    cut = xp.asarray(idx.reshape(s, s)[:, :half].ravel())
    v = xp.take(per_radius, cut, axis=1).reshape(n, s, half)  # half spectrum, FFT order
    v *= sign
    # v is real and even, so v exp(-i k.c) is Hermitian: V(p - c) is the real inverse
    # transform of its half spectrum (conjugate phase: irfft2 sums exp(+i k.p)).
    cdt = xp.result_type(dt, xp.complex64)
    ex, ey = _ramps(xp, s, -cx, -cy, cdt)
    vt = fft.irfft2(_shifted(v, ex[:, :half], ey), s=(s, s), axes=(-2, -1)) * float(s * s)
    av = (a * vt).reshape(n, -1)
    var = xp.einsum("ni,ni->n", av, vt.reshape(n, -1)).astype(xp.float64) * (1.0 + 1.0 / frames_per_plane)  # fmt: skip
    with np.errstate(divide="ignore", invalid="ignore"):
        return xp.sqrt(var) / (curv * total.astype(xp.float64) * bg.astype(xp.float64))
