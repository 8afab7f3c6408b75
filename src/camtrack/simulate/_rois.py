"""Noisy bead ROIs and calibration z-sweeps, with their truth."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from camtrack._validation import check_choice, check_positive, renamed_keywords
from camtrack.simulate._beads import broadcast_xyz, expected_images, roi_shape
from camtrack.simulate._camera import DTYPES, Camera, as_camera, expose_frames
from camtrack.simulate._optics import BeadOptics
from camtrack.simulate._seeding import CAMERA, FRAME, RNGLike, child_seed, root_seed, stream

__all__ = ["BeadTruth", "bead_rois", "zsweep"]

SATURATION = (None, "adc", "full_well")


@dataclass(frozen=True, eq=False)
class BeadTruth:
    """Truth of simulated bead ROIs (or a z-sweep).

    Attributes
    ----------
    x, y : ndarray, (N,)
        Bead centre per ROI in ROI pixels (x = column, y = row, pixel centres at
        integer coordinates).
    z_nm : ndarray, (N,)
        Bead centre relative to the focal plane, nm (positive: farther from the
        objective).
    expected_e : ndarray, (N, S, S) float32
        Expected photoelectrons per pixel (after the full-well clip when
        ``saturation == "full_well"``).
    background_e : float
        Photoelectrons per background pixel.
    camera : Camera
        The sensor (its maps apply to every ROI).
    optics : BeadOptics
    saturation : {None, "adc", "full_well"}
    saturation_level : float or None
        Clip level relative to the background intensity (1 = background).
    saturation_adu : float
        Highest mean value an ROI pixel can have (ADC clip, full well or bit depth).
    dtype : str
    plane : ndarray of int, (N,) or None
        z-sweep: plane index of each frame.
    z_planes : ndarray, (P,) or None
        z-sweep: the planes, nm.

    Notes
    -----
    ``expected_adu`` and ``variance_adu`` are the per-pixel mean and variance of the
    ROIs under the :class:`Camera` model (for a Cramér-Rao bound); in clipped pixels
    ``expected_adu`` is the clip value and the variance is not meaningful.
    """

    x: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)
    z_nm: np.ndarray = field(repr=False)
    expected_e: np.ndarray = field(repr=False)
    background_e: float
    camera: Camera
    optics: BeadOptics
    saturation: str | None
    saturation_level: float | None
    saturation_adu: float
    dtype: str
    plane: np.ndarray | None = field(default=None, repr=False)
    z_planes: np.ndarray | None = field(default=None, repr=False)

    @property
    def expected_adu(self) -> np.ndarray:
        """(N, S, S) float32 mean ADU (offset and dark current included; clipped)."""
        mean = self.camera.expected_adu(self.expected_e)
        return np.minimum(mean, self.saturation_adu).astype(np.float32)

    @property
    def variance_adu(self) -> np.ndarray:
        """(N, S, S) float32 ADU variance (rounding noise included for uint16)."""
        var = self.camera.variance_adu(self.expected_e, quantized=self.dtype == "uint16")
        return var.astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """Small JSON-friendly summary (no images)."""
        d: dict[str, Any] = {
            "kind": "zsweep" if self.z_planes is not None else "bead_rois",
            "n_rois": int(self.x.size),
            "size": list(self.expected_e.shape[1:]),
            "x_mean": float(self.x.mean()),
            "y_mean": float(self.y.mean()),
            "z_nm_min": float(self.z_nm.min()),
            "z_nm_max": float(self.z_nm.max()),
            "background_e": self.background_e,
            "saturation": self.saturation,
            "saturation_level": self.saturation_level,
            "saturation_adu": self.saturation_adu,
            "dtype": self.dtype,
            "optics": self.optics.summary(),
            "camera": self.camera.summary(),
        }
        if self.z_planes is not None:
            d["n_planes"] = int(self.z_planes.size)
            d["frames_per_plane"] = int(self.x.size // self.z_planes.size)
            d["z_step_nm"] = float(np.mean(np.diff(self.z_planes))) if self.z_planes.size > 1 else 0.0  # fmt: skip
        return d


def _rois(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    size: tuple[int, int],
    *,
    optics: BeadOptics | None,
    background_e: float,
    camera: Camera | Mapping[str, Any] | None,
    noise: bool,
    saturation: str | None,
    saturation_level: float | None,
    dtype: str,
    rng: RNGLike,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Noisy ROIs and the fields of their BeadTruth."""
    optics = BeadOptics() if optics is None else optics
    background_e = check_positive(background_e, "background_e")
    check_choice(saturation, "saturation", SATURATION)
    dtype = check_choice(dtype, "dtype", DTYPES)
    root = root_seed(rng)
    cam = as_camera(camera, size, child_seed(root, CAMERA), name="roi_size")
    rel = expected_images(optics, x, y, z, size)
    if saturation is not None:
        if saturation_level is None:
            # Clip 70 % of the way up the brightest expected pixel, so bright centres clip.
            saturation_level = max(1.0 + 0.7 * (float(rel.max()) - 1.0), 1.01)
        saturation_level = check_positive(saturation_level, "saturation_level")
    elif saturation_level is not None:
        raise ValueError("`saturation_level` needs `saturation='adc'` or 'full_well'.")
    signal_e = rel * background_e
    well = cam.full_well_e
    max_adu = float(cam.max_adu)
    if saturation == "full_well":
        level_e = saturation_level * background_e
        well = level_e if well is None else min(well, level_e)
    elif saturation == "adc":
        clip = np.rint(cam.offset_adu + saturation_level * background_e / cam.e_per_adu)
        max_adu = float(min(max_adu, clip))
    sat_adu = max_adu if well is None else min(max_adu, cam.offset_adu + well / cam.e_per_adu)
    # Photons arrive (Poisson) at the unclipped rate and then fill the well; the truth
    # reports min(rate, well), the mean up to the Poisson tail at the well's edge.
    expected_e = signal_e if well is None else np.minimum(signal_e, well)
    if noise:
        rois = expose_frames(
            cam, signal_e, stream(root, FRAME), dtype, full_well_e=well, max_adu=max_adu
        )
    else:
        mean = np.minimum(cam.expected_adu(expected_e), max_adu)
        rois = (np.rint(mean) if dtype == "uint16" else mean).astype(dtype)
    fields = {
        "x": x,
        "y": y,
        "z_nm": z,
        "expected_e": expected_e.astype(np.float32),
        "background_e": background_e,
        "camera": cam,
        "optics": optics,
        "saturation": saturation,
        "saturation_level": saturation_level,
        "saturation_adu": float(sat_adu),
        "dtype": dtype,
    }
    return rois, fields


@renamed_keywords(size="roi_size")
def bead_rois(
    x: Any,
    y: Any,
    z: Any,
    roi_size: int | tuple[int, int] = 64,
    *,
    optics: BeadOptics | None = None,
    background_e: float = 4000.0,
    camera: Camera | Mapping[str, Any] | None = None,
    noise: bool = True,
    saturation: str | None = None,
    saturation_level: float | None = None,
    dtype: str = "uint16",
    rng: RNGLike = None,
) -> tuple[np.ndarray, BeadTruth]:
    """Noisy camera ROIs of beads at known (x, y, z).

    Parameters
    ----------
    x, y, z : float or array_like
        Bead centres (ROI pixels; pixel centres at integer coordinates, x = column)
        and defocus (nm, positive = farther from the objective); broadcast to (N,).
    roi_size : int or (int, int)
        ROI size S (square) or (rows, cols).
    optics : BeadOptics, optional
        Optical parameters (default ``BeadOptics()``).
    background_e : float
        Photoelectrons per background pixel (the unscattered illumination).
    camera : Camera or dict, optional
        A Camera of shape (S, S), or keyword arguments for one (e.g.
        ``{"e_per_adu": 0.5, "read_noise_e": 2.0, "offset_adu": 400}``); default
        ``Camera()`` with 2 e-/ADU, offset 100 ADU, read noise 1.5 e-.
    noise : bool
        False: return the expected ADU (still clipped as set out below).
    saturation : {None, "adc", "full_well"}
        None: only the camera's own limits (bit depth, its full well if set).
        "adc": the ADC clips after the noise, at ``offset_adu + saturation_level *
        background_e / e_per_adu`` (rounded): clipped pixels all read that exact value.
        "full_well": each pixel's electron count is clipped at ``saturation_level *
        background_e`` after photon arrival and before read noise: the bright centre
        becomes a plateau at the full well with only read noise on it.
    saturation_level : float, optional
        Clip level relative to the background (1 = background). Default: 70 % of the way
        from the background to the brightest expected pixel of this call, so the bright
        centre does clip.
    dtype : {"uint16", "float32"}
        ADC output, or the same values before rounding.
    rng : int, numpy.random.Generator or None
        Seed (noise and, when built here, the camera's maps).

    Returns
    -------
    rois : ndarray, (N, S, S)
    truth : BeadTruth
        Positions, ``expected_e``, ``expected_adu`` and ``variance_adu`` per pixel.

    Notes
    -----
    Axis order (roi, row, col). Expected photoelectrons per pixel are
    ``background_e * bead_image(x, y, z)``; ADU follow :class:`Camera`.

    Examples
    --------
    >>> from camtrack.simulate import bead_rois
    >>> rois, truth = bead_rois([31.5, 30.2], [31.5, 33.9], [1500.0, -2500.0], roi_size=64, rng=0)
    >>> rois.shape, rois.dtype, truth.expected_adu.shape
    ((2, 64, 64), dtype('uint16'), (2, 64, 64))
    """
    xb, yb, zb = (v.ravel() for v in broadcast_xyz(x, y, z))
    rois, fields = _rois(
        xb,
        yb,
        zb,
        roi_shape(roi_size),
        optics=optics,
        background_e=background_e,
        camera=camera,
        noise=noise,
        saturation=saturation,
        saturation_level=saturation_level,
        dtype=dtype,
        rng=rng,
    )
    return rois, BeadTruth(**fields)


@renamed_keywords(size="roi_size")
def zsweep(
    z_planes: Any,
    roi_size: int | tuple[int, int] = 64,
    frames_per_plane: int = 16,
    *,
    x: Any = None,
    y: Any = None,
    optics: BeadOptics | None = None,
    background_e: float = 4000.0,
    camera: Camera | Mapping[str, Any] | None = None,
    noise: bool = True,
    saturation: str | None = None,
    saturation_level: float | None = None,
    dtype: str = "uint16",
    rng: RNGLike = None,
) -> tuple[np.ndarray, BeadTruth]:
    """A calibration z-sweep: one bead imaged at a series of focus positions.

    Parameters
    ----------
    z_planes : array_like, (P,)
        Bead-to-focal-plane distances in nm (positive: bead farther from the objective).
    roi_size : int or (int, int)
        ROI size S (square) or (rows, cols).
    frames_per_plane : int
        Frames recorded at each plane.
    x, y : float or array_like (P * frames_per_plane,), optional
        Bead centre in ROI pixels per frame (pixel centres at integer coordinates);
        default the ROI centre ``(S - 1) / 2``.
    optics, background_e, camera, noise, saturation, saturation_level, dtype, rng
        As in :func:`bead_rois`.

    Returns
    -------
    stack : ndarray, (P * frames_per_plane, S, S)
        Frames plane by plane (frame ``f`` is at ``z_planes[f // frames_per_plane]``).
    truth : BeadTruth
        Per-frame ``x``, ``y``, ``z_nm``, ``plane``, and ``z_planes``.

    Examples
    --------
    >>> import numpy as np
    >>> from camtrack.simulate import zsweep
    >>> stack, truth = zsweep(np.linspace(-4000, 4000, 9), roi_size=48, frames_per_plane=4, rng=0)
    >>> stack.shape, truth.z_nm[4]
    ((36, 48, 48), np.float64(-3000.0))
    """
    planes = np.atleast_1d(np.asarray(z_planes, dtype=np.float64))
    if planes.ndim != 1 or planes.size == 0 or not np.all(np.isfinite(planes)):
        raise ValueError(f"`z_planes` must be a non-empty 1-D sequence of numbers (nm); got {z_planes!r}.")  # fmt: skip
    if isinstance(frames_per_plane, bool) or int(frames_per_plane) != frames_per_plane or frames_per_plane < 1:  # fmt: skip
        raise ValueError(f"`frames_per_plane` must be a positive integer; got {frames_per_plane!r}.")  # fmt: skip
    hw = roi_shape(roi_size)
    plane = np.repeat(np.arange(planes.size), int(frames_per_plane))
    x = (hw[1] - 1) / 2.0 if x is None else x
    y = (hw[0] - 1) / 2.0 if y is None else y
    try:
        xb, yb, zb = (np.broadcast_to(v, plane.shape).astype(np.float64) for v in (x, y, planes[plane]))  # fmt: skip
    except ValueError:
        raise ValueError(
            f"`x` and `y` must be scalars or have one value per frame ({plane.size}); got "
            f"shapes {np.shape(x)} and {np.shape(y)}."
        ) from None
    rois, fields = _rois(
        *broadcast_xyz(xb, yb, zb),
        hw,
        optics=optics,
        background_e=background_e,
        camera=camera,
        noise=noise,
        saturation=saturation,
        saturation_level=saturation_level,
        dtype=dtype,
        rng=rng,
    )
    return rois, BeadTruth(**fields, plane=plane, z_planes=planes)
