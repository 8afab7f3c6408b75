"""Pixel-integrated images of radial patterns at sub-pixel positions, through Fourier space.

A camera pixel reports the integral of the intensity over its square. For the pattern
``g = I - 1`` of a bead centred at ``c``, the pixel-integrated image sampled at integer
pixel centres ``p`` is ``(g * box)(p - c)``; its Fourier transform is
``G(|q|) sinc(q_x) sinc(q_y) exp(-2 pi i q.c)``, with ``G`` the Hankel transform of the
radial profile. The intensity is band-limited (``2 NA / lambda``, 0.39 cycles per pixel
at 100 nm pixels), so a discrete inverse FFT of these samples reproduces the pixel
integrals exactly, without aliasing; coarser pixels fold the aliases back in
explicitly. Hence:

- pixel integration is exact (no sub-sampling rule), so sub-pixel positions carry no
  rendering bias and a whole-pixel move shifts the image by exactly one pixel;
- the work per bead is one small FFT, independent of how finely one would sub-sample.

The FFT box must hold the pattern's support (``max_radius``) plus the region wanted,
so periodic copies never reach it.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.fft
from scipy.special import j0

from camtrack.simulate._optics import (
    BeadOptics,
    catmull_rom,
    profiles_on_grid,
    radial_step_nm,
    source_spectrum,
)

__all__ = [
    "PatternSpectra",
    "multiply_patterns",
    "render_in_box",
    "roi_box_size",
    "window_box_size",
]

_MAX_BOX_VALUES = 8_000_000  # complex spectrum values per batch (~128 MB)


@functools.lru_cache(maxsize=4)
def _hankel_kernel(optics: BeadOptics) -> tuple[float, float, float, np.ndarray]:
    """(dr, dq, q_max, kernel (n_q, n_r)) of the Hankel transform r -> q, in pixels.

    ``G(q) = 2 pi sum_j g(r_j) J0(2 pi q r_j) r_j dr``; q in cycles per pixel.
    """
    dr = radial_step_nm(optics) / optics.nm_per_px
    n_r = int(np.ceil(optics.max_radius_nm / radial_step_nm(optics))) + 2
    r = dr * np.arange(n_r)
    radius = optics.max_radius_px
    # Band limit of the intensity (shortest wavelength), plus the taper's spread.
    band = 2.0 * optics.na / float(source_spectrum(optics)[0].min()) * optics.nm_per_px
    q_max = 1.02 * band + 4.0 / radius
    dq = 1.0 / (32.0 * radius)  # G oscillates on the scale 1 / radius
    q = dq * np.arange(int(np.ceil(q_max / dq)) + 1)
    kernel = j0(2.0 * np.pi * np.outer(q, r)) * (r * dr)
    kernel.setflags(write=False)
    return dr, dq, q_max, kernel


class PatternSpectra:
    """Hankel spectra ``G(q)`` of ``I(r; z) - 1`` for a set of z, on a uniform q grid.

    Units: q in cycles per pixel, G in pixel**2 (r measured in pixels).
    """

    def __init__(self, optics: BeadOptics, z_nm: np.ndarray) -> None:
        table, _ = profiles_on_grid(optics, z_nm)
        dr, self.dq, self.q_max, kernel_t = _hankel_kernel(optics)
        g = table - 1.0
        # Row by row (fixed-shape products): a z's spectrum never depends on its batch.
        # Trapezoid rule in r (g vanishes with zero slope at the far end); the
        # Euler-Maclaurin term dr^2/12 h'(0) = dr^2/12 g(0) makes it fourth order.
        spectra = np.stack([kernel_t @ row for row in g])
        spectra = 2.0 * np.pi * (spectra + (dr * dr / 12.0) * g[:, :1])
        # Three zero entries so the cubic lookup falls to 0 just past q_max.
        self.table = np.concatenate([spectra, np.zeros((spectra.shape[0], 3))], axis=1)
        self.radius_px = optics.max_radius_px
        self.n_alias = max(0, int(np.ceil(self.q_max - 0.5)))

    def lookup(self, rows: np.ndarray, q: np.ndarray) -> np.ndarray:
        """G at radial frequencies ``q`` (any shape) for profiles ``rows`` -> (B, *q.shape)."""
        idx = q / self.dq
        inside = idx < self.table.shape[1] - 3
        return np.stack([catmull_rom(self.table[r], idx) * inside for r in rows])


def roi_box_size(size: tuple[int, int], x: np.ndarray, y: np.ndarray, radius: float) -> int:
    """FFT box (square) for ROIs of ``size`` with beads at (x, y) in ROI pixels.

    The box starts at the ROI's origin; periodic copies of a pattern at ``c + k N`` stay
    off the ROI when ``N > radius + max(c, S - 1 - c)`` on both axes. Beads inside the
    ROI all get the same box, so results do not depend on the batch.
    """
    far = max(size[0] - 1, size[1] - 1)
    for c, s in ((x, size[1]), (y, size[0])):
        if c.size:
            far = max(far, float(np.max(c)), float(np.max(s - 1 - c)))
    return scipy.fft.next_fast_len(int(np.ceil(radius + far)) + 2, real=True)


def window_box_size(radius: float) -> int:
    """FFT box for a whole pattern centred in it (bead at box centre +- 1 pixel)."""
    return scipy.fft.next_fast_len(2 * int(np.ceil(radius)) + 4, real=True)


def render_in_box(
    spectra: PatternSpectra,
    rows: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    box: int,
) -> np.ndarray:
    """Pixel-integrated ``I - 1`` (B, box, box) for beads at (x, y) relative to the box origin.

    Pixel centres at integer coordinates; bead ``b`` uses profile ``rows[b]``.
    """
    qy = scipy.fft.fftfreq(box)
    qx = scipy.fft.rfftfreq(box)
    out = np.empty((x.size, box, box))
    step = max(1, _MAX_BOX_VALUES // (box * qx.size))
    a_range = range(-spectra.n_alias, spectra.n_alias + 1)
    for s in range(0, x.size, step):
        sl = slice(s, s + step)
        spec = np.zeros((len(rows[sl]), box, qx.size), dtype=np.complex128)
        for ay in a_range:
            for ax in a_range:
                ky, kx = qy + ay, qx + ax
                g = spectra.lookup(rows[sl], np.hypot(ky[:, None], kx[None, :]))
                phase_y = np.exp(-2j * np.pi * np.outer(y[sl], ky)) * np.sinc(ky)
                phase_x = np.exp(-2j * np.pi * np.outer(x[sl], kx)) * np.sinc(kx)
                spec += g * phase_y[:, :, None] * phase_x[:, None, :]
        out[sl] = scipy.fft.irfft2(spec, s=(box, box), axes=(-2, -1))
    return out


def multiply_patterns(
    image: np.ndarray,
    spectra: PatternSpectra,
    rows: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
) -> None:
    """Multiply ``image`` (Y, X) in place by the patterns of beads at (x, y) (image pixels).

    Each bead is rendered in its own box around it; the patterns multiply (each bead
    attenuates or redirects the light reaching the others), which for beads farther
    apart than their patterns' extent is the same as adding ``I - 1``.
    """
    ny, nx = image.shape
    radius = spectra.radius_px
    keep = (x > -radius - 1) & (x < nx + radius) & (y > -radius - 1) & (y < ny + radius)
    if not np.any(keep):
        return
    rows, x, y = rows[keep], x[keep], y[keep]
    box = window_box_size(radius)
    oy = np.floor(y).astype(int) - box // 2
    ox = np.floor(x).astype(int) - box // 2
    patches = render_in_box(spectra, rows, x - ox, y - oy, box)
    patches += 1.0
    for p, r0, c0 in zip(patches, oy, ox, strict=True):
        r_lo, c_lo = max(r0, 0), max(c0, 0)
        r_hi, c_hi = min(r0 + box, ny), min(c0 + box, nx)
        image[r_lo:r_hi, c_lo:c_hi] *= p[r_lo - r0 : r_hi - r0, c_lo - c0 : c_hi - c0]
