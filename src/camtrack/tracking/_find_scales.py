"""Scale space of a frame's contrast energy, for :mod:`camtrack.tracking._find`.

The energy ``((image - background) / noise)**2 - 1`` is blurred by Gaussians of sigma
1.5 px times powers of 1.5; each scale's significance map (and its centre-surround map)
gives candidates and, at any point, the pattern's own scale.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "BACKGROUND_PX",
    "MIN_Z",
    "RADIUS_PER_SCALE",
    "SCALE_STEP",
    "SURROUND",
    "background_maps",
    "best_scale",
    "candidates",
    "highpass",
    "scales_for",
    "searched",
    "vertex",
    "z_at",
    "zmap",
]

# Ratio between neighbouring searched scales: a bead's significance varies slowly with
# the scale near its best one (within 10 % over a factor 1.5), so no bead falls between
# two scales, and 8-10 scales cover 1.5 px to a 256 px frame's quarter.
SCALE_STEP = 1.5
MIN_SCALE = 1.5
# A bead's own scale is where its centre-surround contrast, s (blur_s - blur_{2.25 s})
# of the energy (a significance: the noise of the difference falls as 1 / s), peaks. A
# plain blur's significance keeps rising with s in a field of beads (each larger scale
# gathers the neighbours' rings too); the surround cancels them. For a uniform disk of
# radius R the peak lies at s = 0.64-0.85 R (R = 5..40 px), so R is about 1.33 s.
RADIUS_PER_SCALE = 1.33
SURROUND = 2  # surround scale index offset: 1.5**2 = 2.25 times the centre's
# Significance of a candidate (excess contrast energy in noise standard deviations of
# the blurred energy). Pure noise (chi-square energy, Gaussian-blurred, a skewed
# distribution) peaks at 6.3 (median) and 8.9 (max) over every scale of 100 noise
# frames of 256 x 256 px; a 2048^2 frame has 64 times the samples, so its maximum
# lies about one unit higher. 12 keeps a margin; the symmetry test is a second guard.
MIN_Z = 12.0
# Peaks per scale refined (strongest first): bounds the work on textured frames.
MAX_PEAKS = 64
# Frames whose smaller side is under twice this (px) get a constant background (the
# median): a bead's rings fill an ROI-sized frame (about 70 px across at 4 um from
# focus, 100 nm pixels), and a curved surface through them would be part of the bead.
BACKGROUND_PX = 64
# Degree of the background surface: a linear ramp of 150x across the frame leaves no
# false beads at degree 2, cos^4 vignetting of 150x (centre to corners) needs 4.
_DEGREE = 4
# What the surface leaves of the illumination is smooth over tens of px; a bead's
# rings (a few px apart) and core are not. Removing the blur of sigma 16 px took the
# false beads on 6 vignetted frames (3x centre to corner) from 1-2 to 0-1 each, and
# keeps every bead of the dense test fields; 24 px removes too little, 8 px would
# start to eat the cores of in-focus beads.
HIGHPASS_PX = 16.0
# Scales above this are computed on a block-averaged energy image (factor scale / 4):
# a Gaussian of sigma 4+ px is resolved by 1-px samples, and blurring a 2048^2 frame
# with sigma 100 directly would cost seconds per scale.
FULL_RES_SCALE = 6.0


def background_maps(img: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Local background and noise sigma (Y, X), or (background, None) for a flat frame.

    Per block of ``b`` px the median and the noise (MAD of neighbouring-pixel
    differences times 1.4826 / sqrt(2)). The background is a robust quadratic surface
    through the block medians (blocks off it by more than 3 MADs, a bead's core, are
    left out), a constant for frames under ``2 * BACKGROUND_PX``; the noise variance is
    a robust straight line in the background level (shot noise grows with the light,
    read noise is its floor), a constant where the levels do not spread.
    """
    ny, nx = img.shape
    b = max(2, min(ny, nx) // 32)
    my, mx = max(1, ny // b), max(1, nx // b)
    core = img[: my * b, : mx * b].reshape(my, b, mx, b).transpose(0, 2, 1, 3)
    level = np.median(core.reshape(my, mx, b * b), axis=2).ravel()
    d = np.concatenate(
        [np.diff(core, axis=3).reshape(my, mx, -1), np.diff(core, axis=2).reshape(my, mx, -1)],
        axis=2,
    )
    noise = 1.4826 / math.sqrt(2.0) * np.median(np.abs(d - np.median(d, axis=2, keepdims=True)), axis=2).ravel()  # fmt: skip
    cy, cx = np.divmod(np.arange(my * mx), mx)
    u, w = (cx + 0.5) * b - 0.5, (cy + 0.5) * b - 0.5
    degree = _DEGREE if min(ny, nx) >= 2 * BACKGROUND_PX else 0
    coef, keep = _robust_fit(_poly_terms(u, w, degree, (ny, nx)), level)
    bg = _poly_surface(coef, degree, (ny, nx))
    # noise variance against the level, on the blocks that are background
    typical = float(np.median(noise[keep])) if keep.any() else float(np.median(noise))
    spread = float(np.ptp(level[keep])) if keep.any() else 0.0
    if typical > 0 and spread > 4 * typical:
        design = np.column_stack([np.ones(int(keep.sum())), level[keep]])
        (floor, slope), _ = _robust_fit(design, noise[keep] ** 2)
        sigma = np.sqrt(np.maximum(floor + max(float(slope), 0.0) * bg, 0.0))
    else:
        sigma = np.full((ny, nx), typical)
    if typical <= 0.0:  # noise-free data: any contrast is significant
        peak = float(np.abs(img - bg).max())
        if peak == 0.0:
            return bg, None
        typical = peak * 1e-3
    # nowhere quieter than a quarter of the typical noise (a saturated or dead patch,
    # or a level line extrapolated below zero, would make any contrast significant)
    return bg, np.maximum(sigma, 0.25 * typical)


def highpass(dev: np.ndarray) -> np.ndarray:
    """``dev`` less its Gaussian blur of sigma ``HIGHPASS_PX``: what is left of the
    illumination after the background surface is smooth over tens of pixels, a bead's
    rings and core are not."""
    import scipy.ndimage

    if HIGHPASS_PX <= 0:
        return dev
    return dev - scipy.ndimage.gaussian_filter(dev, HIGHPASS_PX, mode="reflect")


def _poly_terms(x: np.ndarray, y: np.ndarray, degree: int, shape: tuple[int, int]) -> np.ndarray:
    """Columns x^i y^j (i + j <= ``degree``) in frame-scaled coordinates."""
    ny, nx = shape
    u = (np.asarray(x, dtype=np.float64) - (nx - 1) / 2.0) / max(nx, 1)
    v = (np.asarray(y, dtype=np.float64) - (ny - 1) / 2.0) / max(ny, 1)
    pairs = [(n - k, k) for n in range(degree + 1) for k in range(n + 1)]
    return np.column_stack([u**i * v**j for i, j in pairs])


def _poly_surface(coef: np.ndarray, degree: int, shape: tuple[int, int]) -> np.ndarray:
    """The polynomial of :func:`_poly_terms` on every pixel, one outer product per term
    (no (pixels x terms) matrix: a 2048^2 frame would need 0.5 GB for it)."""
    ny, nx = shape
    u = (np.arange(nx, dtype=np.float64) - (nx - 1) / 2.0) / max(nx, 1)
    v = (np.arange(ny, dtype=np.float64) - (ny - 1) / 2.0) / max(ny, 1)
    out = np.zeros(shape)
    pairs = [(n - k, k) for n in range(degree + 1) for k in range(n + 1)]
    for c, (i, j) in zip(coef, pairs, strict=True):
        out += c * np.outer(v**j, u**i)
    return out


def _robust_fit(design: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least squares, refitted up to 4 times without points off by more than 3 MADs."""
    keep = np.ones(values.shape, dtype=bool)
    coef = np.zeros(design.shape[1])
    for _ in range(5):
        if keep.sum() < design.shape[1]:
            break
        coef = np.linalg.lstsq(design[keep], values[keep], rcond=None)[0]
        res = values - design @ coef
        mad = 1.4826 * float(np.median(np.abs(res[keep] - np.median(res[keep]))))
        new = np.abs(res - np.median(res[keep])) <= 3.0 * max(mad, 1e-12)
        if np.array_equal(new, keep) or new.sum() < design.shape[1]:
            break
        keep = new
    return coef, keep


def scales_for(shape: tuple[int, int]) -> np.ndarray:
    """1.5 px times powers of 1.5 up to a quarter of the frame's smaller side."""
    top = max(min(shape) / 4.0, MIN_SCALE)
    n = math.floor(math.log(top / MIN_SCALE) / math.log(SCALE_STEP) + 1e-9) + 1
    return MIN_SCALE * SCALE_STEP ** np.arange(n)


def searched(scales: np.ndarray, radius: float | None) -> np.ndarray:
    """Scales whose peaks become candidates: patterns of radius / 4 .. 4 radius."""
    if radius is None:
        return np.ones(len(scales), dtype=bool)
    r = scales * RADIUS_PER_SCALE
    keep = (r >= radius / 4.0) & (r <= 4.0 * radius)
    if not keep.any():  # a radius outside the frame's scales: the nearest one
        keep[int(np.argmin(np.abs(np.log(r / radius))))] = True
    return keep


def zmap(energy: np.ndarray, s: float) -> tuple[np.ndarray, int, np.ndarray]:
    """Significance of the blurred excess energy at scale ``s``, its pixel factor, and
    its centre-surround map (the same minus the blur at 2.25 s, in the same units).

    White noise gives ``energy`` a variance of 2 per pixel (chi-square, 1 dof); its
    Gaussian blur of sigma s has variance 2 / (4 pi s^2), hence z = blur * s sqrt(2 pi).
    """
    import scipy.ndimage

    f = 1 if s <= FULL_RES_SCALE else int(s // 4)
    if f > 1:
        ny, nx = (energy.shape[0] // f) * f, (energy.shape[1] // f) * f
        e = energy[:ny, :nx].reshape(ny // f, f, nx // f, f).mean(axis=(1, 3))
    else:
        e = energy
    norm = s * math.sqrt(2.0 * math.pi)
    blur = scipy.ndimage.gaussian_filter(e, s / f, mode="constant")
    k = SCALE_STEP**SURROUND
    surround = scipy.ndimage.gaussian_filter(e, k * s / f, mode="constant")
    return blur * norm, f, (blur - surround) * norm


def candidates(
    zmaps: list, scales: np.ndarray, searched: np.ndarray
) -> list[tuple[float, float, float]]:
    """Local maxima of each searched scale's centre-surround map where the significance
    is above the floor: (x, y, scale). Centre-surround, so a faint bead next to a
    bright one's rings is a maximum of its own."""
    import scipy.ndimage

    out = []
    for (z, f, d), s, use in zip(zmaps, scales, searched, strict=True):
        if not use:
            continue
        size = 2 * max(1, round(s / f)) + 1
        peak = (d == scipy.ndimage.maximum_filter(d, size=size)) & (z >= MIN_Z) & (d > 0)
        yy, xx = np.nonzero(peak)
        order = np.argsort(-d[yy, xx], kind="stable")[:MAX_PEAKS]
        for i, j in zip(yy[order], xx[order], strict=True):
            out.append(((j + 0.5) * f - 0.5, (i + 0.5) * f - 0.5, float(s)))
    return out


def vertex(v: np.ndarray) -> float:
    """Sub-sample offset of a parabola's vertex through three samples (0 if flat)."""
    den = v[0] - 2 * v[1] + v[2]
    return float(np.clip(0.5 * (v[0] - v[2]) / den, -0.5, 0.5)) if den < 0 else 0.0


def z_at(zmap: tuple[np.ndarray, int, np.ndarray], x: float, y: float) -> float:
    z, f = zmap[0], zmap[1]
    i = min(max(int((y + 0.5) // f), 0), z.shape[0] - 1)
    j = min(max(int((x + 0.5) // f), 0), z.shape[1] - 1)
    return float(z[i, j])


def best_scale(zmaps: list, scales: np.ndarray, x: float, y: float) -> float:
    """The pattern's own scale at (x, y): the first peak of its centre-surround
    significance ``z_s - z_{2.25 s} / 2.25`` over the scales that reaches half the
    highest (in a crowded frame the largest scales gather many beads' rings and may
    peak higher), refined on log scale by a parabola."""
    z = np.array([z_at(zm, x, y) for zm in zmaps])
    if len(z) <= SURROUND:
        return float(scales[int(np.argmax(z))])
    # z = blur * s sqrt(2 pi): s (blur_s - blur_ks) = (z_s - z_ks / k) / sqrt(2 pi)
    k = SCALE_STEP**SURROUND
    d = z[:-SURROUND] - z[SURROUND:] / k
    peak = np.append(d[:-1] >= d[1:], True) & np.insert(d[1:] > d[:-1], 0, True)
    top = float(d.max())
    i = int(np.flatnonzero(peak & (d >= top - 0.5 * abs(top)))[0])
    if 0 < i < len(d) - 1:
        return float(scales[i] * SCALE_STEP ** vertex(d[i - 1 : i + 2]))
    return float(scales[i])
