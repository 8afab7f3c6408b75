"""A second, independent bead image model: paraxial Gaussian beams, exact pixel integrals.

The default optics (:mod:`camtrack.simulate._optics`) propagate a sphere's scattered
field through a hard pupil by Hankel transforms. This model shares none of that: the
bead's forward-scattered field is a sum of a few paraxial Gaussian beams (a
multi-Gaussian-beam decomposition), each focused at the bead's centre with its own
waist, amplitude and phase. At a distance ``z`` a beam with waist ``w0`` has the complex
beam parameter ``q = z + i zR`` (``zR = pi w0**2 n / lambda``) and the field

    E_j(r; z) = A_j exp(i phi_j) (i zR_j / q_j) exp(-i k r**2 / (2 q_j)),

a Gaussian envelope of width ``w(z) = w0 sqrt(1 + (z / zR)**2)`` times a Fresnel chirp
(curvature ``R(z)``) and the Gouy phase. Interfering with the unscattered wave (1),
``I = |1 + sum_j E_j|**2`` is a sum of complex Gaussians ``c exp(-gamma r**2)`` with
``Re gamma > 0``. Each is separable in x and y, so its integral over a square pixel is
a product of two complex error-function differences: the pixel integration is exact (no
supersampling, no radial table, no interpolation). Out-of-focus rings are weak (the
Gaussian envelopes fade them), the core can be bright and flat-topped by a full well or
clipped by the ADC, and ``z > 0`` differs from ``z < 0`` through the Gouy phase.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import erf

from camtrack._validation import check_choice, check_positive, renamed_keywords
from camtrack.simulate._scmos import ScmosMaps, expose
from camtrack.simulate._seeding import FRAME, RNGLike, root_seed, stream

__all__ = [
    "GaussianBeamOptics",
    "GaussianBeamTruth",
    "gaussian_beam_image",
    "gaussian_beam_rois",
    "gaussian_beam_zsweep",
]


@dataclass(frozen=True)
class GaussianBeamOptics:
    """Parameters of the Gaussian-beam bead model (the second image model).

    Parameters
    ----------
    wavelength_nm : float
        Vacuum wavelength.
    n_medium : float
        Refractive index of the medium.
    nm_per_px : float
        Pixel size referred to the sample.
    waists_nm : tuple of float
        Waist of each scattered Gaussian beam (at the bead centre, z = 0).
    amplitudes : tuple of float
        Field amplitude of each beam relative to the unscattered wave.
    phases_rad : tuple of float
        Phase of each beam relative to the unscattered wave.

    Notes
    -----
    Defaults: a narrow beam (waist 300 nm, zR 0.57 um) spreads into the outer rings
    (a few weak rings at several um from focus), a medium one (700 nm) makes the core,
    a wide one (1.5 um, zR 14 um) a slowly varying halo. 100 nm pixels, 660 nm light in
    water. The bright core reaches about 4x the background near focus.

    Examples
    --------
    >>> from camtrack.simulate import GaussianBeamOptics
    >>> GaussianBeamOptics().nm_per_px
    100.0
    """

    wavelength_nm: float = 660.0
    n_medium: float = 1.33
    nm_per_px: float = 100.0
    waists_nm: tuple[float, ...] = (300.0, 700.0, 1500.0)
    amplitudes: tuple[float, ...] = (0.8, 0.6, 0.15)
    phases_rad: tuple[float, ...] = (-1.2, 0.4, 2.5)

    def __post_init__(self) -> None:
        for name in ("wavelength_nm", "n_medium", "nm_per_px"):
            check_positive(getattr(self, name), name)
        n = len(self.waists_nm)
        if n == 0 or len(self.amplitudes) != n or len(self.phases_rad) != n:
            raise ValueError(
                "`waists_nm`, `amplitudes` and `phases_rad` must have one (equal, >= 1) "
                f"number of entries; got {len(self.waists_nm)}, {len(self.amplitudes)}, "
                f"{len(self.phases_rad)}."
            )
        for w in self.waists_nm:
            check_positive(w, "waists_nm")

    def terms(self, z_nm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Coefficients c (N, T) and exponents gamma (N, T), px**-2: I = sum c exp(-gamma r**2).

        The first term is the background (c = 1, gamma = 0).
        """
        z = np.asarray(z_nm, dtype=np.float64)[:, None]
        k = 2.0 * np.pi * self.n_medium / self.wavelength_nm  # rad / nm
        w0 = np.asarray(self.waists_nm, dtype=np.float64)[None, :]
        zr = 0.5 * k * w0**2
        q = z + 1j * zr
        amp = np.asarray(self.amplitudes)[None, :] * np.exp(1j * np.asarray(self.phases_rad))[None, :]  # fmt: skip
        c1 = amp * (1j * zr / q)
        g1 = 1j * k / (2.0 * q) * self.nm_per_px**2  # exp(-i k r^2 / 2q), r in px
        n, t = z.shape[0], w0.shape[1]
        # 1 + 2 Re(sum E_j) + sum_jl E_j conj(E_l): the real part as (c + conj c) / 2 pairs.
        cs = [np.ones((n, 1), complex), c1, np.conj(c1)]
        gs = [np.zeros((n, 1), complex), g1, np.conj(g1)]
        cc = c1[:, :, None] * np.conj(c1)[:, None, :]
        gg = g1[:, :, None] + np.conj(g1)[:, None, :]
        cs.append(cc.reshape(n, t * t))
        gs.append(gg.reshape(n, t * t))
        return np.concatenate(cs, axis=1), np.concatenate(gs, axis=1)


def _pixel_integrals(gamma: np.ndarray, u: np.ndarray) -> np.ndarray:
    """int_{u-1/2}^{u+1/2} exp(-gamma t**2) dt for gamma (N, T, 1) and u (N, 1, S)."""
    g = np.where(gamma == 0, 1.0, gamma)
    sg = np.sqrt(g)
    val = 0.5 * np.sqrt(np.pi) / sg * (erf(sg * (u + 0.5)) - erf(sg * (u - 0.5)))
    return np.where(gamma == 0, 1.0 + 0j, val)


@renamed_keywords(size="roi_size")
def gaussian_beam_image(
    x: Any, y: Any, z: Any, roi_size: int = 64, *, optics: GaussianBeamOptics | None = None
) -> np.ndarray:
    """Pixel-integrated relative intensity of the Gaussian-beam bead model.

    Parameters
    ----------
    x, y : float or array_like
        Bead centres in ROI pixels (x = column, y = row, pixel centres at integer
        coordinates); broadcast with ``z`` to (N,).
    z : float or array_like
        Defocus in nm.
    roi_size : int
        ROI side S.
    optics : GaussianBeamOptics, optional

    Returns
    -------
    ndarray, (N, S, S) float64
        Mean intensity of each pixel relative to the background (1 far from the bead).

    Notes
    -----
    Exact pixel integrals (complex error functions), so the image and its derivatives
    in x, y and z are smooth: suited to Cramer-Rao bounds by finite differences.

    Examples
    --------
    >>> from camtrack.simulate import gaussian_beam_image
    >>> img = gaussian_beam_image(31.5, 31.5, 1000.0, roi_size=64)
    >>> img.shape, bool(abs(img[0, 0, 0] - 1.0) < 1e-3)
    ((1, 64, 64), True)
    """
    optics = GaussianBeamOptics() if optics is None else optics
    xb, yb, zb = (np.atleast_1d(v).astype(np.float64).ravel() for v in np.broadcast_arrays(x, y, z))  # fmt: skip
    c, gamma = optics.terms(zb)
    pos = np.arange(int(roi_size), dtype=np.float64)[None, None, :]
    px = _pixel_integrals(gamma[:, :, None], pos - xb[:, None, None])  # (N, T, S)
    py = _pixel_integrals(gamma[:, :, None], pos - yb[:, None, None])
    img = np.einsum("nt,nti,ntj->nij", c, py, px, optimize=True)
    return img.real


@dataclass(frozen=True, eq=False)
class GaussianBeamTruth:
    """Truth of :func:`gaussian_beam_rois` / :func:`gaussian_beam_zsweep`.

    Attributes
    ----------
    x, y, z_nm : ndarray, (N,)
        Bead centres (ROI pixels, pixel centres at integer coordinates) and defocus.
    expected_e : ndarray, (N, S, S)
        Expected photoelectrons per pixel (after a full-well clip).
    expected_adu, variance_adu : ndarray, (N, S, S)
        Mean and variance of each pixel's ADU (clipped pixels: the clip value; their
        variance is not meaningful).
    background_e : float
    e_per_adu, offset_adu, read_noise_e : float or ndarray (S, S)
        The camera (scalars, or the maps of ``maps``).
    maps : ScmosMaps or None
    saturation : {None, "adc", "full_well"}
    saturation_adu : float
        Highest mean ADU of a pixel.
    optics : GaussianBeamOptics
    """

    x: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)
    z_nm: np.ndarray = field(repr=False)
    expected_e: np.ndarray = field(repr=False)
    expected_adu: np.ndarray = field(repr=False)
    variance_adu: np.ndarray = field(repr=False)
    background_e: float
    e_per_adu: Any = field(repr=False)
    offset_adu: Any = field(repr=False)
    read_noise_e: Any = field(repr=False)
    maps: ScmosMaps | None = field(repr=False)
    saturation: str | None
    saturation_adu: float
    optics: GaussianBeamOptics


@renamed_keywords(size="roi_size")
def gaussian_beam_rois(
    x: Any,
    y: Any,
    z: Any,
    roi_size: int = 64,
    *,
    optics: GaussianBeamOptics | None = None,
    background_e: float = 4000.0,
    e_per_adu: float = 2.0,
    offset_adu: float = 100.0,
    read_noise_e: float = 1.5,
    maps: ScmosMaps | None = None,
    saturation: str | None = None,
    saturation_level: float | None = None,
    noise: bool = True,
    dtype: str = "uint16",
    rng: RNGLike = None,
) -> tuple[np.ndarray, GaussianBeamTruth]:
    """Noisy camera ROIs of beads from the Gaussian-beam model (the second image model).

    Parameters
    ----------
    x, y, z : float or array_like
        Bead centres (ROI pixels; x = column, pixel centres at integer coordinates)
        and defocus (nm); broadcast to (N,).
    roi_size : int
        ROI side S.
    optics : GaussianBeamOptics, optional
    background_e : float
        Photoelectrons per background pixel (bright: 4000, dim: 400).
    e_per_adu, offset_adu, read_noise_e : float
        Scalar camera (ignored when ``maps`` is given).
    maps : ScmosMaps, optional
        Per-pixel sCMOS maps of shape (S, S) (see :func:`scmos_maps`), hot pixels
        included.
    saturation : {None, "adc", "full_well"}
        "adc": the ADC clips after the noise at ``offset + saturation_level *
        background_e / e_per_adu`` ADU (the median camera), so the clipped core reads one
        exact value. "full_well": each pixel's electrons are clipped at ``saturation_level
        * background_e`` before the read noise: a flat-topped core with read noise only.
    saturation_level : float, optional
        Clip level relative to the background; default 70 % of the way up to the
        brightest expected pixel.
    noise : bool
        False: the expected ADU (clipped), not rounded for float32.
    dtype : {"uint16", "float32"}
    rng : int, numpy.random.Generator or None

    Returns
    -------
    rois : ndarray, (N, S, S)
    truth : GaussianBeamTruth

    Notes
    -----
    Axis order (roi, row, col). Independent of :func:`bead_rois` (optics, pixel
    integration and exposure code are separate), for tests that must not pass merely
    because a tracker was tuned on one image model.

    Examples
    --------
    >>> from camtrack.simulate import gaussian_beam_rois
    >>> rois, truth = gaussian_beam_rois([31.2, 32.0], 31.7, [500.0, -2000.0], roi_size=64, rng=0)
    >>> rois.shape, rois.dtype
    ((2, 64, 64), dtype('uint16'))
    """
    optics = GaussianBeamOptics() if optics is None else optics
    background_e = check_positive(background_e, "background_e")
    check_choice(saturation, "saturation", (None, "adc", "full_well"))
    dtype = check_choice(dtype, "dtype", ("uint16", "float32"))
    xb, yb, zb = (np.atleast_1d(v).astype(np.float64).ravel() for v in np.broadcast_arrays(x, y, z))  # fmt: skip
    rel = gaussian_beam_image(xb, yb, zb, roi_size, optics=optics)
    signal = rel * background_e
    if maps is not None:
        if maps.shape != (roi_size, roi_size):
            raise ValueError(f"`maps` must have the ROI shape ({roi_size}, {roi_size}); got {maps.shape}.")  # fmt: skip
        g, off, rn = maps.e_per_adu, maps.offset_adu, maps.read_noise_e
        g0, off0 = float(np.median(g)), float(np.median(off))
    else:
        g = g0 = check_positive(e_per_adu, "e_per_adu")
        off = off0 = check_positive(offset_adu, "offset_adu", allow_zero=True)
        rn = check_positive(read_noise_e, "read_noise_e", allow_zero=True)
    if saturation is not None and saturation_level is None:
        saturation_level = max(1.0 + 0.7 * (float(rel.max()) - 1.0), 1.01)
    well = None
    max_adu = 65535.0
    if saturation == "full_well":
        well = check_positive(saturation_level, "saturation_level") * background_e
    elif saturation == "adc":
        level = check_positive(saturation_level, "saturation_level")
        max_adu = float(np.rint(off0 + level * background_e / g0))
    expected_e = signal if well is None else np.minimum(signal, well)
    mean = np.minimum(off + expected_e / g, max_adu)
    var = (expected_e + np.asarray(rn) ** 2) / np.asarray(g) ** 2 + (1.0 / 12.0 if dtype == "uint16" else 0.0)  # fmt: skip
    sat_adu = max_adu if well is None else min(max_adu, float(np.max(off + well / g)))
    if noise:
        gen = stream(root_seed(rng), FRAME)
        rois = expose(signal, gen, offset_adu=off, e_per_adu=g, read_noise_e=rn, full_well_e=well, max_adu=max_adu, dtype=dtype)  # fmt: skip
    else:
        rois = (np.rint(mean) if dtype == "uint16" else mean).astype(dtype)
    truth = GaussianBeamTruth(
        x=xb,
        y=yb,
        z_nm=zb,
        expected_e=expected_e,
        expected_adu=mean,
        variance_adu=np.broadcast_to(var, mean.shape),
        background_e=background_e,
        e_per_adu=g,
        offset_adu=off,
        read_noise_e=rn,
        maps=maps,
        saturation=saturation,
        saturation_adu=float(sat_adu),
        optics=optics,
    )
    return rois, truth


@renamed_keywords(size="roi_size")
def gaussian_beam_zsweep(
    z_planes: Any,
    roi_size: int = 64,
    frames_per_plane: int = 16,
    **kwargs: Any,
) -> tuple[np.ndarray, GaussianBeamTruth]:
    """A calibration z-sweep of one centred bead with the Gaussian-beam model.

    Parameters
    ----------
    z_planes : array_like, (P,)
        Planes in nm.
    roi_size : int
        ROI side S.
    frames_per_plane : int
        Frames per plane (frame ``f`` is at ``z_planes[f // frames_per_plane]``).
    **kwargs
        ``x``, ``y`` (default the ROI centre ``(S - 1) / 2``) and the keywords of
        :func:`gaussian_beam_rois`.

    Returns
    -------
    stack : ndarray, (P * frames_per_plane, S, S)
    truth : GaussianBeamTruth

    Examples
    --------
    >>> import numpy as np
    >>> from camtrack.simulate import gaussian_beam_zsweep
    >>> stack, truth = gaussian_beam_zsweep(np.linspace(-3000, 3000, 7), roi_size=32, frames_per_plane=2, rng=0)
    >>> stack.shape
    (14, 32, 32)
    """
    planes = np.atleast_1d(np.asarray(z_planes, dtype=np.float64))
    z = np.repeat(planes, int(frames_per_plane))
    x = kwargs.pop("x", (roi_size - 1) / 2.0)
    y = kwargs.pop("y", (roi_size - 1) / 2.0)
    return gaussian_beam_rois(np.broadcast_to(x, z.shape), np.broadcast_to(y, z.shape), z, roi_size, **kwargs)  # fmt: skip
