"""The camera's noise model for tracking: ADU to photoelectrons and per-pixel variances."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from camtrack._validation import check_positive, check_range, renamed_keywords

__all__ = ["CameraModel", "as_camera_model"]


def _field(value: Any, name: str, *, allow_zero: bool) -> float | np.ndarray:
    """A finite scalar or 2-D map (> 0, or >= 0 with ``allow_zero``)."""
    if np.ndim(value) == 0:
        return check_positive(value, name, allow_zero=allow_zero)
    a = np.asarray(value, dtype=np.float64)
    if a.ndim not in (2, 3):
        raise ValueError(f"`{name}` must be a scalar or a 2-D (rows, cols) map; got shape {a.shape}.")  # fmt: skip
    bad = ~np.isfinite(a) | ((a < 0) if allow_zero else (a <= 0))
    if bad.any():
        raise ValueError(
            f"`{name}` map has {int(bad.sum())} pixel(s) that are not finite and "
            f"{'>= 0' if allow_zero else '> 0'}; fill them (e.g. with the median) first."
        )
    return a


@dataclass(frozen=True, eq=False)
class CameraModel:
    """Photon-transfer model of the camera, for weighting pixels and for error bars.

    Parameters
    ----------
    e_per_adu : float or ndarray (Y, X)
        Photoelectrons per ADU (per pixel for sCMOS maps).
    offset_adu : float or ndarray (Y, X)
        Dark offset, ADU.
    read_noise_e : float or ndarray (Y, X)
        Read noise, e- rms.
    quantized : bool
        Add the ADC rounding variance 1/12 ADU**2 (integer data).
    excess_noise_factor : float
        ``F**2`` of the shot noise, in [1, 2]: 1 for CCD and sCMOS, 2 for an EMCCD at
        high EM gain (its register doubles the shot-noise variance) whose ``e_per_adu``
        is input-referred (a datasheet's, or a photon-transfer fit made with
        ``excess_noise_factor=2``). A gain fitted with 1 on an EMCCD already holds the
        excess noise (it is half the input-referred one) and goes with 1. An
        input-referred gain left at 1 gives errors (``z_err`` most) about 1.4x too
        small.

    Notes
    -----
    Maps are (Y, X) for a frame or an ROI size, or (N, S, S) one per ROI (cut by
    :meth:`crop`). A pixel of mean ``mu`` ADU has ``S = (mu - offset) e_per_adu`` photoelectrons and
    variance ``(F**2 S + read**2) / e_per_adu**2 (+ 1/12)`` ADU**2 (shot noise plus read
    noise). Maps are in frame (or ROI) pixels; :meth:`crop` cuts them for ROIs.
    Build one with :func:`as_camera_model` from scalars, a dict, a
    :class:`camtrack.gain.PixelCalibration`, a :class:`camtrack.gain.GainResult` or a
    simulated camera.
    """

    e_per_adu: Any = field(repr=False)
    offset_adu: Any = field(repr=False)
    read_noise_e: Any = field(repr=False)
    quantized: bool = True
    excess_noise_factor: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "excess_noise_factor", check_range(self.excess_noise_factor, "excess_noise_factor", 1.0, 2.0))  # fmt: skip
        object.__setattr__(self, "e_per_adu", _field(self.e_per_adu, "e_per_adu", allow_zero=False))  # fmt: skip
        object.__setattr__(self, "offset_adu", _field(self.offset_adu, "offset_adu", allow_zero=True))  # fmt: skip
        object.__setattr__(self, "read_noise_e", _field(self.read_noise_e, "read_noise_e", allow_zero=True))  # fmt: skip
        shapes = {np.shape(v) for v in (self.e_per_adu, self.offset_adu, self.read_noise_e) if np.ndim(v)}  # fmt: skip
        if len(shapes) > 1:
            raise ValueError(f"Camera maps must share one shape; got {sorted(shapes)}.")

    @property
    def shape(self) -> tuple[int, int] | None:
        """Shape of the maps; None when every field is a scalar."""
        for v in (self.e_per_adu, self.offset_adu, self.read_noise_e):
            if np.ndim(v):
                return tuple(np.shape(v))
        return None

    def read_var_adu(self) -> Any:
        """Variance without signal (read noise and rounding), ADU**2."""
        rv = (np.asarray(self.read_noise_e) / np.asarray(self.e_per_adu)) ** 2
        return rv + 1.0 / 12.0 if self.quantized else rv

    def variance_adu(self, mean_adu: Any) -> np.ndarray:
        """Variance (ADU**2) of pixels with mean ``mean_adu`` (..., Y, X) or (...)."""
        g = np.asarray(self.e_per_adu)
        signal = np.maximum(np.asarray(mean_adu, dtype=np.float64) - self.offset_adu, 0.0) * g
        var = (self.excess_noise_factor * signal + np.asarray(self.read_noise_e) ** 2) / g**2
        return var + 1.0 / 12.0 if self.quantized else var

    @property
    def has_maps(self) -> bool:
        """True when any field is a per-pixel map."""
        return self.shape is not None

    def medians(self) -> tuple[float, float, float]:
        """Median e_per_adu, offset_adu and read_noise_e (the scalars of the maps)."""
        return tuple(
            float(np.median(v)) for v in (self.e_per_adu, self.offset_adu, self.read_noise_e)
        )  # type: ignore[return-value]

    def rows(self, sel: Any) -> CameraModel:
        """The camera of the ROIs ``sel`` when the maps are per ROI (N, S, S)."""
        if self.shape is None or len(self.shape) != 3:
            return self

        def take(v: Any) -> Any:
            return v if np.ndim(v) < 3 else np.asarray(v)[sel]

        return CameraModel(take(self.e_per_adu), take(self.offset_adu), take(self.read_noise_e), self.quantized, self.excess_noise_factor)  # fmt: skip

    @renamed_keywords(size="roi_size")
    def crop(self, y0: Any, x0: Any, roi_size: int) -> CameraModel:
        """Maps cut to (N, roi_size, roi_size) at the upper-left corners (y0, x0); scalars kept."""
        if self.shape is None:
            return self
        y0 = np.asarray(y0, dtype=np.int64).ravel()
        x0 = np.asarray(x0, dtype=np.int64).ravel()
        span = np.arange(int(roi_size))
        iy = (y0[:, None] + span)[:, :, None]
        ix = (x0[:, None] + span)[:, None, :]

        def cut(v: Any) -> Any:
            return v if np.ndim(v) == 0 else np.asarray(v)[iy, ix]

        return CameraModel(cut(self.e_per_adu), cut(self.offset_adu), cut(self.read_noise_e), self.quantized, self.excess_noise_factor)  # fmt: skip


def _excess(camera: Any) -> float:
    """The calibration's (or simulated camera's) ``excess_noise_factor``; 1 if none."""
    return float(getattr(camera, "excess_noise_factor", 1.0))


def _from_object(camera: Any) -> CameraModel | None:
    """Duck-typed: PixelCalibration, GainResult, simulate.Camera, simulate.ScmosMaps."""
    if hasattr(camera, "dark_var_map_adu2") and hasattr(
        camera, "e_per_adu_map"
    ):  # PixelCalibration
        g = np.asarray(camera.e_per_adu_map, dtype=np.float64)
        g = np.where(np.isfinite(g) & (g > 0), g, np.nanmedian(g))
        var0 = np.maximum(np.asarray(camera.dark_var_map_adu2, dtype=np.float64) - 1.0 / 12.0, 0.0)  # fmt: skip
        return CameraModel(g, camera.offset_map_adu, np.sqrt(var0) * g, True, _excess(camera))
    if hasattr(camera, "gain_map") and hasattr(camera, "offset_map"):  # GainResult
        if camera.offset_adu is None or camera.read_noise_e is None:
            raise ValueError(
                "`camera` (a GainResult) has no offset / read noise: estimate the gain "
                "with a dark stack (estimate_gain(..., dark=...)) or pass them as scalars."
            )
        off = camera.offset_map if camera.offset_map is not None else camera.offset_adu
        rn = (
            camera.read_noise_map_e if camera.read_noise_map_e is not None else camera.read_noise_e
        )
        off = np.asarray(off, dtype=np.float64) if np.ndim(off) else off
        rn = np.asarray(rn, dtype=np.float64) if np.ndim(rn) else rn
        return CameraModel(float(camera.e_per_adu), off, rn, True, _excess(camera))
    if hasattr(camera, "e_per_adu_map") and hasattr(camera, "read_noise_map_e"):  # simulate.Camera
        return CameraModel(camera.e_per_adu_map, camera.offset_map_adu, camera.read_noise_map_e, True, _excess(camera))  # fmt: skip
    if hasattr(camera, "hot") and hasattr(camera, "read_noise_e"):  # simulate.ScmosMaps
        return CameraModel(camera.e_per_adu, camera.offset_adu, camera.read_noise_e, True)
    return None


def _from_file(path: Any) -> CameraModel:
    """A saved calibration: GainResult JSON (+ its maps file) or PixelCalibration file."""
    from pathlib import Path

    from camtrack._validation import check_existing_file

    path = check_existing_file(Path(path), "camera")
    if path.suffix.lower() == ".json":
        from camtrack.gain import GainResult

        info = GainResult.load(path)
        maps = info.get("maps", {})
        off = maps.get("offset_map_adu", info.get("offset_adu"))
        rn = maps.get("read_noise_map_e", info.get("read_noise_e"))
        if off is None or rn is None:
            raise ValueError(
                f"`camera` {str(path)!r} has no offset / read noise: estimate the gain with "
                "a dark stack (estimate_gain(..., dark=...)) or pass them as scalars."
            )
        as_map = lambda v: np.asarray(v, dtype=np.float64) if np.ndim(v) else float(v)  # noqa: E731
        return CameraModel(float(info["e_per_adu"]), as_map(off), as_map(rn), True, float(info.get("excess_noise_factor", 1.0)))  # fmt: skip
    if path.suffix.lower() in (".h5", ".hdf5", ".npz"):
        from camtrack.gain import PixelCalibration

        return _from_object(PixelCalibration.load(path))  # type: ignore[return-value]
    raise ValueError(
        f"`camera` {str(path)!r} is not a camera calibration file: pass the JSON of "
        "GainResult.save or the .h5 / .npz of PixelCalibration.save."
    )


def as_camera_model(camera: Any = None, **scalars: Any) -> CameraModel | None:
    """A :class:`CameraModel` from ``camera`` or from scalars; None when nothing is given.

    Parameters
    ----------
    camera : CameraModel, dict, PixelCalibration, GainResult, path or simulated camera, optional
        The camera: a dict takes the keys ``e_per_adu``, ``offset_adu``,
        ``read_noise_e`` (and ``quantized``, ``excess_noise_factor``: 2 for an EMCCD);
        a GainResult or PixelCalibration brings its own excess noise factor; a path names a saved calibration (the
        JSON of ``GainResult.save`` with its maps file, or the ``.h5`` / ``.npz`` of
        ``PixelCalibration.save``).
    **scalars
        ``e_per_adu``, ``offset_adu``, ``read_noise_e`` (override ``camera``'s);
        ``excess_noise_factor`` only without ``camera`` (a calibration's gain was
        fitted with its own factor: overriding it would count the excess noise twice).

    Returns
    -------
    CameraModel or None
    """
    given = {k: v for k, v in scalars.items() if v is not None}
    if camera is None and not given:
        return None
    if camera is not None and "excess_noise_factor" in given:
        raise ValueError(
            "`excess_noise_factor` cannot override the factor of `camera`: its e_per_adu "
            "was fitted with its own (a gain fitted with 1 on an EMCCD already holds the "
            "excess noise). Set it where the gain is estimated (estimate_gain(..., "
            "excess_noise_factor=2)), or pass a dict of e_per_adu, offset_adu, "
            "read_noise_e and excess_noise_factor without `camera`."
        )
    if camera is None:
        base = {"e_per_adu": None, "offset_adu": 0.0, "read_noise_e": 0.0, "quantized": True, "excess_noise_factor": 1.0}  # fmt: skip
    elif isinstance(camera, CameraModel):
        base = {"e_per_adu": camera.e_per_adu, "offset_adu": camera.offset_adu, "read_noise_e": camera.read_noise_e, "quantized": camera.quantized, "excess_noise_factor": camera.excess_noise_factor}  # fmt: skip
    elif isinstance(camera, Mapping):
        unknown = sorted(set(camera) - {"e_per_adu", "offset_adu", "read_noise_e", "quantized", "excess_noise_factor"})  # fmt: skip
        if unknown:
            raise ValueError(f"`camera` has unknown key(s) {unknown}; use e_per_adu, offset_adu, read_noise_e, quantized, excess_noise_factor.")  # fmt: skip
        base = {"offset_adu": 0.0, "read_noise_e": 0.0, "quantized": True, **camera}
        base.setdefault("e_per_adu", None)
    else:
        model = (
            _from_file(camera) if isinstance(camera, str | os.PathLike) else _from_object(camera)
        )
        if model is None:
            raise TypeError(
                "`camera` must be a CameraModel, a dict of e_per_adu / offset_adu / "
                "read_noise_e, a PixelCalibration (calibrate_pixels) or a GainResult; got "
                f"{type(camera).__name__}."
            )
        base = {"e_per_adu": model.e_per_adu, "offset_adu": model.offset_adu, "read_noise_e": model.read_noise_e, "quantized": model.quantized, "excess_noise_factor": model.excess_noise_factor}  # fmt: skip
    base.update(given)
    if base["e_per_adu"] is None:
        raise ValueError("The camera needs `e_per_adu` (photoelectrons per ADU); pass it as a number.")  # fmt: skip
    return CameraModel(**base)


def roi_camera(camera: Any, scalars: dict[str, Any], n: int, size: int) -> CameraModel | None:
    """The camera for (N, S, S) ROIs: maps must be (S, S) or (1, S, S) (every ROI, e.g.
    one :meth:`CameraModel.crop`) or (N, S, S)."""
    cam = as_camera_model(camera, **scalars)
    if cam is not None and cam.shape == (1, size, size) and n != 1:
        cam = cam.rows(0)
    if cam is not None and cam.shape is not None and cam.shape not in ((size, size), (n, size, size)):  # fmt: skip
        raise ValueError(
            f"`camera` maps have shape {cam.shape}; for {n} ROIs of {size}x{size} px they must "
            f"be ({size}, {size}) or ({n}, {size}, {size}). For frames use track_beads, "
            "which cuts the maps with the ROIs (or CameraModel.crop)."
        )
    return cam


# A pixel whose read-noise variance exceeds this many times a background pixel's shot +
# read variance is "hot": its value is replaced by the mean of its four neighbours. At
# 0.1 % hot pixels of 60 e- (sCMOS random-telegraph pixels) and a dim background of
# 400 e-/px, leaving them in costs the centre a third of its precision; a neighbour mean
# is nearly unbiased (the bead's curvature over one pixel) and its noise is a quarter.
_HOT = 4.0


def apply_camera(xp: Any, rois: Any, cam: CameraModel | None, dtype: Any) -> tuple[Any, Any]:
    """ROIs corrected for per-pixel offset and gain, and the camera's variance function.

    Returns (corrected, variance): ``corrected`` (N, S, S) in ``dtype`` on the ROIs'
    backend, ``(roi - offset) g / median(g) + median(offset)`` (the median camera's ADU
    scale, so profiles and a Z-LUT built without maps stay comparable), with hot pixels
    replaced by their neighbours' mean; None when the camera has no maps (nothing to
    correct). ``variance(level, rows=None)``: the median camera's pixel variance at mean
    ``level`` (input units), shot plus read noise plus rounding (the errors are
    computed on radial bins, where the maps average out).
    """
    if cam is None:
        return None, None
    g_med, off_med, rn_med = cam.medians()
    q = 1.0 / 12.0 if cam.quantized else 0.0
    f2 = cam.excess_noise_factor

    def variance(level: Any, rows: Any = None) -> Any:
        signal = xp.maximum(level - off_med, 0.0) * g_med
        return (f2 * signal + rn_med**2) / g_med**2 + q

    if not cam.has_maps:
        return None, variance
    g = xp.asarray(cam.e_per_adu, dtype=dtype)
    off = xp.asarray(cam.offset_adu, dtype=dtype)
    rn2 = xp.asarray(cam.read_noise_e, dtype=dtype) ** 2
    corrected = (rois.astype(dtype) - off) * (g / g_med) + off_med
    edge = xp.concatenate([corrected[:, 0, :], corrected[:, -1, :], corrected[:, 1:-1, 0], corrected[:, 1:-1, -1]], axis=1)  # fmt: skip
    bg_e = xp.maximum(xp.median(edge, axis=1) - off_med, 0.0) * g_med
    hot = rn2 > _HOT * (f2 * bg_e[:, None, None] + rn_med**2)
    if bool(hot.any()):
        pad = xp.pad(corrected, ((0, 0), (1, 1), (1, 1)), mode="edge")
        nb = 0.25 * (pad[:, :-2, 1:-1] + pad[:, 2:, 1:-1] + pad[:, 1:-1, :-2] + pad[:, 1:-1, 2:])
        corrected = xp.where(hot, nb, corrected)
    return corrected, variance
