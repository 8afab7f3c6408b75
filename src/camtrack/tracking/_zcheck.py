"""check_zlut: how well a Z-LUT tracks its own calibration sweep, on held-out frames."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from camtrack import _backend
from camtrack.tracking._camera import as_camera_model
from camtrack.tracking._common import as_rois, quiet
from camtrack.tracking._pipeline import track_rois
from camtrack.tracking._zlut import build_zlut

_CAMERA_SCALARS = ("e_per_adu", "offset_adu", "read_noise_e")

__all__ = ["ZLutCheck", "check_zlut", "sweep_z"]


@dataclass(frozen=True)
class ZLutCheck:
    """Result of :func:`check_zlut`.

    Attributes
    ----------
    z : ndarray, (M,)
        True z of each checked frame (``units``).
    error : ndarray, (M,)
        Tracked minus true z of each checked frame (NaN where tracking failed).
    rms : float
        RMS of ``error`` over the unambiguous range (NaN when there is none).
    rms_all : float
        RMS of ``error`` over every checked frame.
    unambiguous_range : (float, float) or None
        The widest contiguous z interval of planes whose checked frames all land
        within half a LUT step of the truth (tracked to the right plane).
    held_out : bool
        True when the checked frames were left out of the LUT they were checked on
        (every plane with two or more frames gives one); False when no plane has a
        second frame, so the sweep's frames were checked on the LUT built from them
        (an optimistic figure).
    step : float
        Median spacing of the LUT planes.
    units : str
        Unit of z.
    """

    z: np.ndarray = field(repr=False)
    error: np.ndarray = field(repr=False)
    rms: float
    rms_all: float
    unambiguous_range: tuple[float, float] | None
    held_out: bool
    step: float
    units: str = "nm"

    def summary(self) -> str:
        """One line: RMS, the unambiguous range and how the frames were checked."""
        how = "held-out frames" if self.held_out else "the LUT's own frames (none held out)"
        if self.unambiguous_range is None:
            return f"no unambiguous range (RMS over all {self.rms_all:.3g} {self.units}), {how}"
        lo, hi = self.unambiguous_range
        return (
            f"RMS {self.rms:.3g} {self.units} over the unambiguous range {lo:g} to {hi:g} "
            f"{self.units}, {how}"
        )


def check_zlut(
    calib_rois: Any,
    z: Any,
    *,
    mode: str = "precise",
    centre: str = "symmetry",
    **build_options: Any,
) -> ZLutCheck:
    """Track a calibration sweep's own frames with a LUT built from the others.

    Parameters
    ----------
    calib_rois : array, (F, S, S)
        Calibration ROIs of one bead (as for :func:`build_zlut`).
    z : array_like, (F,)
        z of each frame.
    mode : {"precise", "fast"}
        Tracking mode (for building and for tracking).
    centre : str
        How bead centres are measured (for building and for tracking): "symmetry"
        (the mode's own) or a classic block's name, as in :func:`build_zlut`.
    **build_options
        Passed to :func:`build_zlut` (``profile``, ``n_bins``, ``saturation``,
        ``camera``, ...). The held-out frames are tracked with the same camera and
        clipping options (per-frame camera maps, (F, S, S), are split with the frames).

    Returns
    -------
    ZLutCheck
        Error vs z, its RMS and the unambiguous z range.

    Notes
    -----
    In every plane with two or more frames the last frame is held out: a LUT is built
    from the remaining frames and the held-out frames are tracked with it, so the
    figure is an honest estimate of the error on new frames at the LUT's noise level
    (slightly pessimistic: the LUT used for it averages one frame fewer per plane).
    Without any second frame the frames are tracked with the LUT built from all of
    them, and ``held_out`` is False. A plane is *unambiguous* when its checked frames
    land within half a plane step of the truth; the unambiguous range is the widest
    run of consecutive such planes.

    Examples
    --------
    >>> import numpy as np
    >>> from camtrack.simulate import zsweep
    >>> from camtrack.tracking import check_zlut
    >>> calib, truth = zsweep(np.arange(-2000.0, 2001.0, 100.0), roi_size=32, frames_per_plane=3, rng=0)
    >>> check = check_zlut(calib, truth.z_nm)
    >>> check.held_out, check.unambiguous_range
    (True, (-2000.0, 2000.0))
    """
    as_rois(calib_rois, "calib_rois")
    zz = np.asarray(_backend.to_host(z), dtype=np.float64).ravel()
    n = int(calib_rois.shape[0])
    if zz.size != n:
        raise ValueError(f"`z` must have one value per calibration frame ({n}); got {zz.size}.")
    planes, inverse, counts = np.unique(zz, return_inverse=True, return_counts=True)
    last = np.full(planes.size, -1)
    last[inverse] = np.arange(n)  # the last frame of each plane
    held = last[counts >= 2]
    held_out = held.size > 0
    # The held-out frames are tracked as the LUT's frames were measured: same camera
    # (per-frame maps split with the frames) and clipping options.
    cam = as_camera_model(build_options.pop("camera", None), **{k: build_options.pop(k, None) for k in _CAMERA_SCALARS})  # fmt: skip
    per_frame = cam is not None and cam.shape is not None and len(cam.shape) == 3 and cam.shape[0] == n  # fmt: skip
    track_kw = {
        k: build_options[k] for k in ("saturation", "saturation_tol") if k in build_options
    }
    if held_out:
        train = np.ones(n, dtype=bool)
        train[held] = False
        xp, _ = _backend.namespace(calib_rois)
        idx = xp.asarray(np.flatnonzero(train))
        cam_train = cam.rows(np.flatnonzero(train)) if per_frame else cam
        lut = build_zlut(calib_rois[idx], zz[train], mode=mode, centre=centre, camera=cam_train, **build_options)  # fmt: skip
        test = calib_rois[xp.asarray(held)]
        cam_test = cam.rows(held) if per_frame else cam
        z_test = zz[held]
    else:
        lut = build_zlut(calib_rois, zz, mode=mode, centre=centre, camera=cam, **build_options)
        test, z_test, cam_test = calib_rois, zz, cam
    res = track_rois(test, zlut=lut, mode=mode, camera=cam_test, **track_kw)
    err = np.asarray(_backend.to_host(res.z), dtype=np.float64) - z_test
    step = float(np.median(np.diff(planes)))
    ok_frame = np.isfinite(err) & (np.abs(err) < 0.5 * step)
    plane_of = np.searchsorted(planes, z_test)
    ok_plane = np.ones(planes.size, dtype=bool)
    checked = np.zeros(planes.size, dtype=bool)
    checked[plane_of] = True
    np.logical_and.at(ok_plane, plane_of, ok_frame)
    ok_plane &= checked
    lo, hi = _longest_run(ok_plane)
    with quiet():
        rms_all = float(np.sqrt(np.nanmean(err**2))) if np.isfinite(err).any() else float("nan")
    if hi < lo:
        rng_z, rms = None, float("nan")
    else:
        rng_z = (float(planes[lo]), float(planes[hi]))
        inside = (z_test >= rng_z[0]) & (z_test <= rng_z[1])
        rms = float(np.sqrt(np.mean(err[inside] ** 2)))
    return ZLutCheck(
        z=z_test, error=err, rms=rms, rms_all=rms_all, unambiguous_range=rng_z,
        held_out=held_out, step=step, units=lut.units,
    )  # fmt: skip


def _longest_run(ok: np.ndarray) -> tuple[int, int]:
    """First and last index of the longest run of True (hi < lo when there is none)."""
    best, start = (0, -1), None
    for i, v in enumerate(ok):
        if not v:
            start = None
            continue
        start = i if start is None else start
        if i - start > best[1] - best[0]:
            best = (start, i)
    return best


def sweep_z(n_frames: int, values: Any, *, frames_per_plane: int | None = None) -> np.ndarray:
    """z of every calibration frame from per-frame or per-plane values, checked.

    Parameters
    ----------
    n_frames : int
        Frames in the sweep.
    values : array_like, (n_frames,) or (P,)
        One z per frame, or one per plane (frames ``k * n_frames // P`` to
        ``(k + 1) * n_frames // P - 1`` at plane k), in nm (the Z-LUT's unit).
    frames_per_plane : int, optional
        Frames recorded at each plane. When given, ``values`` must hold one z per
        plane (``n_frames / frames_per_plane`` of them) or one per frame; without
        it any divisor of ``n_frames`` is taken as the number of planes.

    Returns
    -------
    ndarray, (n_frames,) float64

    Raises
    ------
    ValueError
        When the count does not fit the sweep, the planes are not monotonic (a
        sweep moves one way; repeated z only within a plane), fewer than 3 planes
        are given, or the whole sweep spans under 20 nm with values under 50 (z
        typed in micrometres; the LUT's unit is nm).

    Examples
    --------
    >>> from camtrack.tracking import sweep_z
    >>> sweep_z(6, [0.0, 100.0, 200.0]).tolist()
    [0.0, 0.0, 100.0, 100.0, 200.0, 200.0]
    """
    z = np.asarray(values, dtype=np.float64).ravel()
    n_frames = int(n_frames)
    if z.size == 0 or not np.all(np.isfinite(z)):
        raise ValueError(f"`values` must be finite numbers, one per frame or plane; got {z.size} values.")  # fmt: skip
    if frames_per_plane is not None:
        per = int(frames_per_plane)
        if per < 1 or n_frames % per:
            raise ValueError(
                f"`frames_per_plane` must divide the sweep's {n_frames} frames; got {per}."
            )
        planes = n_frames // per
        if z.size not in (planes, n_frames):
            raise ValueError(
                f"The calibration stack has {n_frames} frames = {planes} planes x {per} "
                f"frames per plane, so it needs {planes} z values (one per plane) or "
                f"{n_frames} (one per frame); got {z.size}. Fix `frames_per_plane` or the z "
                "values."
            )
    if z.size != n_frames and n_frames % z.size:
        raise ValueError(
            f"The calibration stack has {n_frames} frames; {z.size} z values are neither one "
            f"per frame nor one per plane (a divisor of {n_frames}). Give {n_frames} values, "
            "or one per plane."
        )
    per_frame = z if z.size == n_frames else np.repeat(z, n_frames // z.size)
    _check_planes(per_frame)
    return per_frame


def _check_planes(z: np.ndarray) -> None:
    """A sweep moves one way in z, through at least 3 planes, in nm."""
    steps = np.diff(z)
    moving = steps[steps != 0]
    if moving.size and not (np.all(moving > 0) or np.all(moving < 0)):
        k = int(np.flatnonzero(np.sign(steps) == -np.sign(moving[0]))[0])
        raise ValueError(
            f"The z values must rise (or fall) monotonically through the sweep; frame {k + 1} "
            f"goes from {z[k]:g} to {z[k + 1]:g} against the sweep's direction. Repeat a z "
            "only for the frames of one plane."
        )
    planes = np.unique(z)
    if planes.size < 3:
        raise ValueError(
            f"A Z-LUT needs at least 3 planes; the z values give {planes.size} "
            f"({', '.join(f'{v:g}' for v in planes)}). Give one z per plane of the sweep."
        )
    span = float(planes[-1] - planes[0])
    if span < 20.0 and float(np.max(np.abs(planes))) < 50.0:
        raise ValueError(
            f"The z values span only {span:g} nm ({planes[0]:g} to {planes[-1]:g}): they "
            "look like micrometres. z is in nm: multiply them by 1000."
        )
