"""Force and extension per plateau (constant magnet position), ready for a WLC fit."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from camtrack._validation import check_positive
from camtrack.force._calibrate import calibrate_force
from camtrack.force._physics import pendulum_length_nm
from camtrack.force._result import ForceResult
from camtrack.force._wlc import WLCResult, fit_wlc

__all__ = ["ForceExtension", "force_extension", "plateau_labels"]

# The extension's standard error comes from batch means: 10 batches are long compared
# with the correlation time on any plateau long enough for a force, and leave 9 degrees
# of freedom for their scatter.
_BATCHES = 10


@dataclass(frozen=True, eq=False)
class ForceExtension:
    """Force and extension per plateau.

    Attributes
    ----------
    plateau : ndarray, (P,)
        Plateau labels, sorted.
    extension_nm, extension_err_nm : ndarray, (P,)
        Mean extension and its standard error (batch means), nm.
    force_pn, force_ci_pn : ndarray, (P,) and (P, 2)
        Force and its 68 % interval, pN.
    results : tuple of ForceResult
        The full calibration of each plateau.
    """

    plateau: np.ndarray
    extension_nm: np.ndarray
    extension_err_nm: np.ndarray
    force_pn: np.ndarray
    force_ci_pn: np.ndarray
    results: tuple[ForceResult, ...] = field(repr=False)

    def fit_wlc(
        self, *, extensible: bool = False, temperature_k: float | None = None
    ) -> WLCResult:
        """Worm-like-chain fit of these plateaus (:func:`fit_wlc`); flagged ones left out."""
        ok = np.array([not r.flagged for r in self.results])
        t = self.results[0].temperature_k if temperature_k is None else temperature_k
        return fit_wlc(
            self.extension_nm[ok],
            self.force_pn[ok],
            force_ci_pn=self.force_ci_pn[ok],
            extension_err_nm=self.extension_err_nm[ok],
            extensible=extensible,
            temperature_k=t,
        )


def plateau_labels(
    magnet_position: Any, *, tolerance: float | None = None, min_frames: int = 16
) -> np.ndarray:
    """Plateau label per frame from the magnet position (moving frames get -1).

    Parameters
    ----------
    magnet_position : array_like, (n_frames,)
        Magnet height (or any set point: current, force command) per frame.
    tolerance : float or None
        A step larger than this between consecutive frames starts a new run; None:
        1e-6 of the total range (exact repeats of a set point).
    min_frames : int
        Runs shorter than this are the magnet moving: label -1.

    Returns
    -------
    ndarray of int, (n_frames,)
        0, 1, 2, ... in time order for each run at a constant position (a position
        revisited later is a new plateau), -1 while moving. Time ranges marked by hand
        can be given to :func:`force_extension` the same way (labels per frame).

    Examples
    --------
    >>> from camtrack.force import plateau_labels
    >>> plateau_labels([1.0] * 20 + [1.5, 2.0] + [2.0] * 20).tolist()[18:24]
    [0, 0, -1, 1, 1, 1]
    """
    m = np.asarray(magnet_position, dtype=float)
    if m.ndim != 1 or m.size == 0 or not np.all(np.isfinite(m)):
        raise ValueError(
            f"`magnet_position` must be a finite 1-D array (one value per frame); got shape "
            f"{m.shape}."
        )
    tol = 1e-6 * float(np.ptp(m)) if tolerance is None else check_positive(tolerance, "tolerance")
    starts = np.flatnonzero(np.concatenate([[True], np.abs(np.diff(m)) > tol]))
    ends = np.append(starts[1:], m.size)
    labels = np.full(m.size, -1)
    k = 0
    for a, b in zip(starts, ends, strict=True):
        if b - a >= min_frames:
            labels[a:b] = k
            k += 1
    return labels


def _mean_and_error(z: np.ndarray) -> tuple[float, float]:
    z = z[np.isfinite(z)]
    if z.size < 2 * _BATCHES:
        return float(np.mean(z)) if z.size else np.nan, np.nan
    means = np.array([b.mean() for b in np.array_split(z, _BATCHES)])
    return float(z.mean()), float(means.std(ddof=1) / np.sqrt(_BATCHES))


def force_extension(
    x_nm: Any,
    extension_nm: Any,
    fs_hz: float,
    plateau: Any,
    *,
    radius_nm: float,
    direction: str = "parallel",
    exposure_s: float | None = None,
    method: str = "psd",
    fix_drag: bool = True,
    temperature_k: float = 296.15,
    viscosity_pa_s: float = 1e-3,
) -> ForceExtension:
    """Force and extension of one bead on each plateau (constant magnet position).

    Parameters
    ----------
    x_nm : array_like, (n_frames,)
        Sideways position, nm (along the field for ``direction="parallel"``).
    extension_nm : array_like, (n_frames,)
        Extension per frame, nm (:func:`extension_nm`).
    fs_hz : float
        Frame rate, Hz.
    plateau : array_like of int, (n_frames,)
        Plateau label per frame (e.g. the magnet position index; user-marked time
        ranges as labels); negative labels are ignored (magnet moving).
    radius_nm : float
        Bead radius, nm: the pendulum length is extension + radius (parallel) or the
        extension (perpendicular), and with ``fix_drag`` the drag is Faxén's at height
        extension + radius.
    direction, exposure_s, method, temperature_k, viscosity_pa_s
        As in :func:`pendulum_length_nm` and :func:`calibrate_force`.
    fix_drag : bool
        Fix the drag from the radius and height (recommended above fs/2 corners).

    Returns
    -------
    ForceExtension
        One entry per plateau; ``.fit_wlc()`` fits the worm-like chain.

    Examples
    --------
    >>> import numpy as np
    >>> from camtrack.simulate import tether_trace
    >>> from camtrack.force import force_extension
    >>> ext = np.array([1500.0, 2400.0])
    >>> sim = tether_trace(12000, 60.0, force_pn=[0.1, 1.0], length_nm=ext + 500, rng=0)
    >>> fe = force_extension(sim.x_nm, ext[sim.plateau], 60.0, sim.plateau, radius_nm=500.0)
    >>> fe.force_pn.shape
    (2,)
    """
    x = np.asarray(x_nm, dtype=float)
    z = np.asarray(extension_nm, dtype=float)
    labels = np.asarray(plateau)
    if x.ndim != 1 or z.shape != x.shape or labels.shape != x.shape:
        raise ValueError(
            "`x_nm`, `extension_nm` and `plateau` must be 1-D of the same length; got "
            f"shapes {x.shape}, {z.shape}, {labels.shape}. Pass one bead at a time."
        )
    r = check_positive(radius_nm, "radius_nm")
    out = {k: [] for k in ("label", "ext", "err", "res")}
    for label in np.unique(labels[labels >= 0]):
        sel = labels == label
        ext, err = _mean_and_error(z[sel])
        if not np.isfinite(ext) or ext <= 0:
            raise ValueError(
                f"plateau {label}: the mean extension is {ext!r} nm; check `extension_nm` "
                "(surface reference and sign)."
            )
        length = pendulum_length_nm(ext, r, direction)
        drag = {"radius_nm": r, "height_nm": ext + r} if fix_drag else {}
        res = calibrate_force(
            x[sel],
            fs_hz,
            length_nm=length,
            exposure_s=exposure_s,
            method=method,
            temperature_k=temperature_k,
            viscosity_pa_s=viscosity_pa_s,
            **drag,
        )
        for k, v in zip(out, (label, ext, err, res), strict=True):
            out[k].append(v)
    return ForceExtension(
        plateau=np.asarray(out["label"]),
        extension_nm=np.asarray(out["ext"]),
        extension_err_nm=np.asarray(out["err"]),
        force_pn=np.array([r.force_pn for r in out["res"]]),
        force_ci_pn=np.array([r.force_ci_pn for r in out["res"]]),
        results=tuple(out["res"]),
    )
