"""Cramer-Rao bound of a bead's x, y (and z) for an image model and a camera."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from camtrack._validation import check_positive, renamed_keywords
from camtrack.tracking._camera import CameraModel, as_camera_model
from camtrack.tracking._zlut import ZLut

__all__ = ["CRLB", "crlb", "lut_image"]


@dataclass(frozen=True, eq=False)
class CRLB:
    """Cramer-Rao lower bounds (standard deviations) of unbiased x, y, z estimates.

    Attributes
    ----------
    x, y : ndarray, (N,)
        Bounds of x and y, pixels.
    z : ndarray, (N,) or None
        Bound of z in the model's z unit (None when z was not a parameter).
    fisher : ndarray, (N, K, K)
        Fisher information matrices, parameters (x, y[, z]).
    units : str
        Unit of z.
    """

    x: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)
    z: np.ndarray | None = field(repr=False)
    fisher: np.ndarray = field(repr=False)
    units: str = "nm"

    def rms(self) -> dict[str, float]:
        """Root-mean-square bound over the positions: {"x": ..., "y": ..., "z": ...}."""
        out = {k: float(np.sqrt(np.mean(getattr(self, k) ** 2))) for k in ("x", "y")}
        if self.z is not None:
            out["z"] = float(np.sqrt(np.mean(self.z**2)))
        return out


def lut_image(
    zlut: ZLut, x: Any, y: Any, z: Any, *, background_adu: float, offset_adu: Any = 0.0
) -> np.ndarray:
    """Expected ADU images (N, S, S) of a bead rendered from a radial Z-LUT.

    ``offset + background_adu (1 + L(r; z))`` with L the LUT's relative profile (cubic
    spline in z, linear in r; beyond the last bin the background). The LUT's profiles
    are smoothed by the radial kernel (about 0.5 px), so a bound from this image is a
    little loose (too high) for beads with features sharper than that.
    """
    if zlut.profile != "radial":
        raise ValueError("`zlut` must hold radial profiles to render an image; got an 'fft' LUT.")
    import scipy.interpolate

    xb, yb, zb = (np.atleast_1d(np.asarray(v, dtype=np.float64)).ravel() for v in np.broadcast_arrays(x, y, z))  # fmt: skip
    prof = np.where(np.isfinite(zlut.profiles), zlut.profiles, 0.0)
    spl = scipy.interpolate.CubicSpline(zlut.z, prof, axis=0)
    lz = spl(np.clip(zb, zlut.z[0], zlut.z[-1]))  # (N, B)
    s = zlut.roi_size
    pos = np.arange(s, dtype=np.float64)
    r = np.sqrt((pos[None, None, :] - xb[:, None, None]) ** 2 + (pos[None, :, None] - yb[:, None, None]) ** 2)  # fmt: skip
    radii = zlut.radii
    out = np.empty(r.shape)
    for i in range(r.shape[0]):
        out[i] = np.interp(r[i], radii, lz[i], right=0.0)
    return offset_adu + background_adu * (1.0 + out)


@renamed_keywords(saturation_adu="saturation")
def crlb(
    model: Callable[[Any, Any, Any], Any] | ZLut,
    x: Any,
    y: Any,
    z: Any = None,
    *,
    camera: Any = None,
    e_per_adu: Any = None,
    offset_adu: Any = None,
    read_noise_e: Any = None,
    background_adu: float | None = None,
    saturation: float | None = None,
    steps: tuple[float, float, float] = (0.01, 0.01, 1.0),
    units: str = "nm",
) -> CRLB:
    """Cramer-Rao bound of a bead's position for an image model and a camera.

    Parameters
    ----------
    model : callable or ZLut
        ``model(x, y, z)`` returning the expected (noise-free) ADU images (N, S, S) of
        beads at (N,) positions, offset included; or a radial :class:`ZLut`, rendered
        as ``offset + background_adu (1 + L(r; z))`` (needs ``background_adu``).
    x, y : float or array_like
        Bead centres (ROI pixels; x = column, y = row, pixel centres at integer
        coordinates).
    z : float or array_like, optional
        Defocus in the model's unit; None: only x, y are parameters (``model`` is then
        called with z None).
    camera : optional
        Anything :func:`camtrack.tracking.track_rois` takes as ``camera`` (a dict, a
        PixelCalibration, a GainResult, ...); maps must have the ROI shape.
    e_per_adu, offset_adu, read_noise_e : float or ndarray (S, S), optional
        The camera as scalars or maps (override ``camera``'s fields). Without any
        camera: ``e_per_adu=1``, no offset and no read noise, i.e. images in
        photoelectrons under pure shot noise.
    background_adu : float, optional
        Background above the offset, ADU (ZLut models only).
    saturation : float, optional
        Clip level, ADU (as ``saturation`` of :func:`track_rois` and
        :func:`camtrack.gain.estimate_gain`): pixels of mean at or above it carry no
        information.
    steps : (float, float, float)
        Central-difference steps of x, y (px) and z.
    units : str
        Unit of z in the result.

    Returns
    -------
    CRLB
        Per-position bounds ``x``, ``y``, ``z`` and the Fisher matrices.

    Notes
    -----
    Pixels are independent with mean ``mu`` and variance ``var(mu)`` from the camera
    (shot plus read noise, see :class:`camtrack.tracking.CameraModel`); in the Gaussian
    approximation the Fisher information is ``I_ij = sum_p (d mu/d th_i)(d mu/d th_j) /
    var_p`` (derivatives by central differences of the model). The bound of th_i is
    ``sqrt((I^-1)_ii)``: no unbiased tracker can do better on average. It scales as
    1 / sqrt(photons) when shot noise dominates. Axis order (roi, row, col).

    Examples
    --------
    >>> import numpy as np
    >>> from camtrack.simulate import gaussian_beam_image
    >>> from camtrack.tracking import crlb
    >>> model = lambda x, y, z: 100.0 + 2000.0 * gaussian_beam_image(x, y, z, 64)
    >>> b = crlb(model, 31.5, 31.5, 1000.0, e_per_adu=2.0, offset_adu=100.0, read_noise_e=1.5)
    >>> bool(0 < b.x[0] < 0.01), bool(0 < b.z[0] < 5.0)
    (True, True)
    """
    if camera is None and e_per_adu is None:
        # No camera: images in photoelectrons (shot noise, plus any read noise given).
        cam = CameraModel(1.0, offset_adu or 0.0, read_noise_e or 0.0, quantized=False)
    else:
        cam = as_camera_model(camera, e_per_adu=e_per_adu, offset_adu=offset_adu, read_noise_e=read_noise_e)  # fmt: skip
    with_z = z is not None
    xb, yb = (np.atleast_1d(np.asarray(v, dtype=np.float64)).ravel() for v in np.broadcast_arrays(x, y))  # fmt: skip
    if with_z:
        xb, yb, zb = (np.atleast_1d(v).ravel() for v in np.broadcast_arrays(xb, yb, np.asarray(z, dtype=np.float64)))  # fmt: skip
    else:
        zb = None
    if isinstance(model, ZLut):
        if background_adu is None:
            raise ValueError("`background_adu` (background above the offset, ADU) is needed with a ZLut model.")  # fmt: skip
        bg = check_positive(background_adu, "background_adu")
        lut = model
        if zb is None:
            raise ValueError("`z` is needed with a ZLut model (the profile depends on it).")

        def model(xx: Any, yy: Any, zz: Any) -> np.ndarray:
            return lut_image(lut, xx, yy, zz, background_adu=bg, offset_adu=cam.offset_adu)

        units = lut.units
    elif not callable(model):
        raise TypeError(f"`model` must be a callable model(x, y, z) or a ZLut; got {type(model).__name__}.")  # fmt: skip

    def image(dx: float, dy: float, dz: float) -> np.ndarray:
        zz = None if zb is None else zb + dz
        mu = np.asarray(model(xb + dx, yb + dy, zz), dtype=np.float64)
        if mu.ndim != 3 or mu.shape[0] != xb.size:
            raise ValueError(f"`model` must return (N, S, S) images for N = {xb.size} positions; got shape {mu.shape}.")  # fmt: skip
        return mu if saturation is None else np.minimum(mu, saturation)

    n_par = 3 if with_z else 2
    grads = []
    for i in range(n_par):
        d = [0.0, 0.0, 0.0]
        d[i] = float(steps[i])
        m = [-v for v in d]
        grads.append((image(*d) - image(*m)) / (2.0 * steps[i]))
    mu = image(0.0, 0.0, 0.0)
    var = cam.variance_adu(mu)
    w = 1.0 / np.maximum(var, 1e-12)
    if saturation is not None:
        w = np.where(mu >= saturation, 0.0, w)
    n = xb.size
    g = np.stack(grads, axis=1).reshape(n, n_par, -1)
    fisher = np.einsum("nip,np,njp->nij", g, np.broadcast_to(w, mu.shape).reshape(n, -1), g)
    with np.errstate(all="ignore"):
        # A singular matrix (a parameter the image does not depend on) gives inf.
        ok = np.linalg.matrix_rank(fisher) == n_par
        cov = np.full_like(fisher, np.inf)
        if ok.any():
            cov[ok] = np.linalg.inv(fisher[ok])
    sd = np.sqrt(np.maximum(np.einsum("nii->ni", cov), 0.0))
    return CRLB(x=sd[:, 0], y=sd[:, 1], z=sd[:, 2] if with_z else None, fisher=fisher, units=units)
