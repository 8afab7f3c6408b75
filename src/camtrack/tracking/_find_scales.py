"""Scale space of a frame's contrast energy, for :mod:`camtrack.tracking._find`.

The energy ``((image - background) / noise)**2 - 1`` is blurred by Gaussians of sigma
1.5 px times powers of 1.5; each scale's significance map (and its centre-surround map)
gives candidates and, at any point, the pattern's own scale.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "MIN_Z",
    "RADIUS_PER_SCALE",
    "SCALE_STEP",
    "SURROUND",
    "best_scale",
    "candidates",
    "noise_sigma",
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
# Scales above this are computed on a block-averaged energy image (factor scale / 4):
# a Gaussian of sigma 4+ px is resolved by 1-px samples, and blurring a 2048^2 frame
# with sigma 100 directly would cost seconds per scale.
FULL_RES_SCALE = 6.0


def noise_sigma(img: np.ndarray) -> float:
    """Robust per-pixel noise sigma from neighbouring-pixel differences (rows and cols)."""
    d = np.concatenate([np.diff(img, axis=1).ravel(), np.diff(img, axis=0).ravel()])
    mad = float(np.median(np.abs(d - np.median(d))))
    return 1.4826 * mad / math.sqrt(2.0)


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
    """The pattern's own scale at (x, y): the peak of its centre-surround significance
    ``z_s - z_{2.25 s} / 1.5`` over the scales, refined on log scale by a parabola."""
    z = np.array([z_at(zm, x, y) for zm in zmaps])
    if len(z) <= SURROUND:
        return float(scales[int(np.argmax(z))])
    # z = blur * s sqrt(2 pi): s (blur_s - blur_ks) = (z_s - z_ks / k) / sqrt(2 pi)
    k = SCALE_STEP**SURROUND
    d = z[:-SURROUND] - z[SURROUND:] / k
    i = int(np.argmax(d))
    if 0 < i < len(d) - 1:
        return float(scales[i] * SCALE_STEP ** vertex(d[i - 1 : i + 2]))
    return float(scales[i])
