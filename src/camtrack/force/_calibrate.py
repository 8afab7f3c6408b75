"""calibrate_force: force from the sideways fluctuations of tethered beads."""

from __future__ import annotations

from typing import Any

import numpy as np

from camtrack._backend import to_host
from camtrack._validation import check_choice, check_positive
from camtrack.force._methods import (
    Acquisition,
    GroupFit,
    fit_cluster,
    fit_equipartition,
    fit_psd,
)
from camtrack.force._models import autocov
from camtrack.force._physics import faxen_drag, kt_pn_nm
from camtrack.force._result import ForceResult, assemble
from camtrack.force._spectra import MIN_SEGMENT, segments

__all__ = ["METHODS", "calibrate_force"]

METHODS = ("psd", "allan", "hadamard", "equipartition", "auto")
# A fit needs the trace to span this many corner periods 1 / f_c: the lowest
# periodogram bins (or the longest Allan clusters) must reach well below the corner to
# pin the plateau, and at 20 periods the force's standard error is still ~10 %.
MIN_CORNER_PERIODS = 20.0
# auto: a linear trend this many standard errors from zero (under the fitted OU +
# noise model) counts as drift; 4 sigma gives one false alarm in ~16,000 traces.
DRIFT_SIGMAS = 4.0


def _check_trace(x_nm: Any) -> np.ndarray:
    if isinstance(x_nm, str | bytes) or (
        not hasattr(x_nm, "__len__") and not hasattr(x_nm, "shape")
    ):
        raise TypeError(
            f"`x_nm` must be an array of positions in nm, (n_frames,) or (n_beads, n_frames); "
            f"got {type(x_nm).__name__}."
        )
    # Traces are small next to images (beads x frames): fit on the host, whatever the
    # backend (a cupy array is copied over, a dask array computed).
    x = to_host(x_nm) if hasattr(x_nm, "shape") else np.asarray(x_nm)
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise TypeError(f"`x_nm` must be numeric; got dtype {x.dtype}. Use x.astype(float).")
    if x.ndim not in (1, 2):
        raise ValueError(
            f"`x_nm` must be 1-D (n_frames,) or 2-D (n_beads, n_frames); got shape {x.shape}. "
            "For a table, pivot it to one row per bead."
        )
    if x.shape[-1] < MIN_SEGMENT or x.size == 0:
        raise ValueError(
            f"`x_nm` has {x.shape[-1]} frames; a force needs at least {MIN_SEGMENT} (and "
            f"in practice {MIN_CORNER_PERIODS:g} / f_c seconds of trace)."
        )
    if np.isinf(x).any():
        raise ValueError("`x_nm` contains inf; mark lost frames as NaN instead.")
    return np.atleast_2d(x.astype(np.float64))


def _lengths(length_nm: Any, n_beads: int) -> np.ndarray:
    if isinstance(length_nm, str | bytes):
        raise TypeError(f"`length_nm` must be a number or an array; got {length_nm!r}.")
    arr = np.atleast_1d(np.asarray(length_nm, dtype=float))
    if arr.ndim != 1 or arr.size not in (1, n_beads):
        raise ValueError(
            f"`length_nm` must be one number or one per bead ({n_beads}); got shape "
            f"{np.shape(length_nm)}."
        )
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(
            f"`length_nm` must be finite and > 0 (the pendulum length, nm); got {length_nm!r}. "
            "See pendulum_length_nm(extension, radius)."
        )
    return np.broadcast_to(arr, (n_beads,)).astype(float)


def _groups(x: np.ndarray):
    """Beads without NaN form one vectorised group; each bead with NaN is its own."""
    finite = np.isfinite(x)
    clean = np.flatnonzero(finite.all(axis=1))
    out = []
    if clean.size:
        out.append((clean, segments(np.ones(x.shape[1], bool))))
    for i in np.flatnonzero(~finite.all(axis=1)):
        out.append((np.array([i]), segments(finite[i])))
    return out


def _run(method: str, x: np.ndarray, bounds, acq: Acquisition) -> GroupFit:
    if method == "psd":
        return fit_psd(x, bounds, acq)[0]
    if method in ("allan", "hadamard"):
        return fit_cluster(x, bounds, acq, method)[0]
    return fit_equipartition(x, bounds, acq)


def _drift_sigmas(x: np.ndarray, bounds, fit: GroupFit, acq: Acquisition) -> np.ndarray:
    """Pooled linear-trend slope over segments in units of its standard error."""
    sxy = np.zeros(x.shape[0])
    sxx = 0.0
    for a, b in bounds:
        t = np.arange(b - a) * acq.period_s
        t = t - t.mean()
        sxy += (x[:, a:b] - x[:, a:b].mean(axis=1, keepdims=True)) @ t
        sxx += float(t @ t)
    slope = sxy / sxx
    s2, tau = np.exp(fit.log_s2), np.exp(fit.log_tau)
    r0, a1, _ = autocov(s2, tau, acq.exposure_s, acq.period_s)
    # Var(slope) = sum_l R(l) / Sxx for a trend much longer than the correlation time.
    long_run = r0 + fit.noise_var + 2.0 * a1 / -np.expm1(-acq.period_s / tau)
    return np.abs(slope) / np.sqrt(long_run / sxx)


def calibrate_force(
    x_nm: Any,
    fs_hz: float,
    *,
    length_nm: Any,
    exposure_s: float | None = None,
    method: str = "psd",
    temperature_k: float = 296.15,
    radius_nm: float | None = None,
    height_nm: float | None = None,
    viscosity_pa_s: float = 1e-3,
    noise_nm: float | None = None,
) -> ForceResult:
    """Force on tethered beads from their sideways fluctuations.

    Parameters
    ----------
    x_nm : array_like, (n_frames,) or (n_beads, n_frames)
        Position along one sideways axis per frame, nm (drift-corrected if possible);
        numpy, cupy or dask (fitted on the host in float64).
        NaN marks lost frames: the trace is split into NaN-free segments.
    fs_hz : float
        Frame rate, Hz.
    length_nm : float or array_like (n_beads,)
        Pendulum length, nm: extension + radius for motion parallel to the field,
        extension perpendicular to it (:func:`pendulum_length_nm`).
    exposure_s : float or None
        Exposure per frame W, s, 0 <= W <= 1 / fs_hz; None: the whole frame period.
    method : {"psd", "allan", "hadamard", "equipartition", "auto"}
        "psd": maximum-likelihood fit of the blocked periodogram; "allan" / "hadamard":
        fit of the overlapping Allan / Hadamard variance (Hadamard ignores linear drift);
        "equipartition": kT L / var with the blur correction (needs ``radius_nm`` and
        ``height_nm``); "auto": "psd", or "hadamard" where a linear drift is detected,
        with the reason in ``reason``.
    temperature_k : float
        Temperature, K (sets kT; 296.15 K gives 4.09 pN nm).
    radius_nm, height_nm : float or None
        Bead radius and height of its centre above the surface, nm. Given together,
        they fix the drag to Stokes' with Faxén's wall correction (:func:`faxen_drag`)
        instead of fitting it.
    viscosity_pa_s : float
        Viscosity of the medium, Pa s.
    noise_nm : float or None
        Tracking noise (standard deviation per frame, nm), e.g. the scatter of a stuck
        bead. None: fitted as a white floor by "psd", "allan" and "hadamard" (and taken
        as 0, with a warning, where it cannot be told from a nearly white motion
        spectrum); a number fixes it in every method, equipartition included.

    Returns
    -------
    ForceResult
        Floats for a 1-D trace, arrays for a batch; see :class:`ForceResult`.

    Raises
    ------
    ValueError
        Non-positive or non-finite lengths, radii, heights, temperatures, frame rates;
        an exposure longer than the frame period; fewer than 16 frames; equipartition
        without radius and height.

    Notes
    -----
    Every model accounts exactly for aliasing and for the boxcar blur of the exposure
    (see :mod:`camtrack.force` and docs/guide/forces.md), and (PSD, Allan, Hadamard)
    for white tracking noise. Units: nm, s, pN; kappa in pN/nm, gamma in pN s/nm.
    Frame k is the average of the position over [k / fs, k / fs + W].

    Examples
    --------
    >>> from camtrack.simulate import tether_trace
    >>> from camtrack.force import calibrate_force
    >>> sim = tether_trace(20000, 100.0, force_pn=2.0, length_nm=2000.0, rng=1)
    >>> res = calibrate_force(sim.x_nm, 100.0, length_nm=2000.0)
    >>> bool(abs(res.force_pn / 2.0 - 1) < 0.1), res.method
    (True, 'psd')
    """
    x = _check_trace(x_nm)
    batch = np.ndim(x_nm) == 2
    fs = check_positive(fs_hz, "fs_hz")
    period = 1.0 / fs
    if exposure_s is None:
        w = period
    else:
        w = check_positive(exposure_s, "exposure_s", allow_zero=True)
        if w > period * (1 + 1e-9):
            raise ValueError(
                f"`exposure_s` ({exposure_s!r} s) must not exceed the frame period "
                f"1 / fs_hz = {period:g} s. Check both; pass None for a full-frame exposure."
            )
        w = min(w, period)
    check_choice(method, "method", METHODS)
    kt = kt_pn_nm(temperature_k)
    lengths = _lengths(length_nm, x.shape[0])
    if (radius_nm is None) != (height_nm is None):
        raise ValueError(
            "`radius_nm` and `height_nm` fix the drag only together; got "
            f"radius_nm={radius_nm!r}, height_nm={height_nm!r}. Pass both or neither."
        )
    gamma = None if radius_nm is None else faxen_drag(radius_nm, height_nm, viscosity_pa_s)
    if method == "equipartition" and gamma is None:
        raise ValueError(
            "`method='equipartition'` needs the drag for its blur correction; pass "
            "`radius_nm` and `height_nm` (bead centre above the surface)."
        )
    noise_var = (
        None if noise_nm is None else check_positive(noise_nm, "noise_nm", allow_zero=True) ** 2
    )
    acq = Acquisition(fs, w, kt, gamma, noise_var)
    n = x.shape[0]
    per: dict[str, Any] = {
        k: np.full(n, np.nan) for k in ("log_s2", "log_tau", "noise", "v_ss", "v_tt", "v_st")
    }
    per.update(
        method=[method] * n,
        reason=[""] * n,
        warnings=[[] for _ in range(n)],
        flagged=np.zeros(n, bool),
        used=np.zeros(n, int),
        nan=np.zeros(n, int),
        segments=np.zeros(n, int),
    )
    for idx, seg in _groups(x):
        per["nan"][idx] = seg.n_nan
        per["segments"][idx] = len(seg.bounds)
        used = sum(b - a for a, b in seg.bounds)
        per["used"][idx] = used
        if seg.n_nan:
            for i in idx:
                per["warnings"][i].append(
                    f"{seg.n_nan} NaN frames: fitted {len(seg.bounds)} NaN-free segments"
                    + (
                        f"; {seg.n_dropped} frames in pieces < {MIN_SEGMENT} frames dropped"
                        if seg.n_dropped
                        else ""
                    )
                )
        if not seg.bounds:
            per["flagged"][idx] = True
            for i in idx:
                per["warnings"][i].append(
                    f"no NaN-free run of at least {MIN_SEGMENT} frames: nothing to fit"
                )
            continue
        still = _still(x[idx], seg.bounds)
        for i in idx[still]:
            per["flagged"][i] = True
            per["warnings"][i].append(
                "the trace does not move (zero variance): check the tracking and the axis"
            )
        idx = idx[~still]
        if idx.size == 0:
            continue
        xs = x[idx]
        m_used = "psd" if method == "auto" else method
        fit = _run(m_used, xs, seg.bounds, acq)
        if method == "auto":
            sig = _drift_sigmas(xs, seg.bounds, fit, acq)
            drift = sig > DRIFT_SIGMAS
            if drift.any():
                had = _run("hadamard", xs[drift], seg.bounds, acq)
                fit = _merge(fit, had, drift)
            for j, i in enumerate(idx):
                per["method"][i] = "hadamard" if drift[j] else "psd"
                per["reason"][i] = (
                    f"linear drift at {sig[j]:.1f} standard errors: the Hadamard variance "
                    "ignores it"
                    if drift[j]
                    else f"no linear drift (trend at {sig[j]:.1f} standard errors < "
                    f"{DRIFT_SIGMAS:g}): the PSD fit is the most precise"
                )
        per["log_s2"][idx], per["log_tau"][idx] = fit.log_s2, fit.log_tau
        per["noise"][idx] = np.sqrt(np.maximum(fit.noise_var, 0.0))
        per["v_ss"][idx], per["v_tt"][idx] = fit.cov[:, 0, 0], fit.cov[:, 1, 1]
        per["v_st"][idx] = fit.cov[:, 0, 1]
        for j, i in enumerate(idx):
            _warn(per, i, used, bool(fit.converged[j]), acq, per["method"][i])
            if fit.noise_zeroed[j]:
                var = float(np.nanvar(xs[j]))
                per["warnings"][i].append(
                    "tracking noise is not separable from the motion here (its spectrum is "
                    "nearly white); taken as 0. Pass noise_nm (e.g. a stuck bead's scatter) "
                    "to include it: sigma nm of noise lowers this force by up to "
                    f"sigma^2 / var(x) = sigma^2 / {var:.3g} nm^2"
                )
    return assemble(per, lengths, acq, batch, temperature_k)


def _still(x: np.ndarray, bounds) -> np.ndarray:
    """Beads whose position never changes within any segment (nothing to fit)."""
    spread = np.zeros(x.shape[0])
    for a, b in bounds:
        spread = np.maximum(spread, np.ptp(x[:, a:b], axis=1))
    return spread == 0


def _merge(a: GroupFit, b: GroupFit, mask: np.ndarray) -> GroupFit:
    def put(u, v):
        u = u.copy()
        u[mask] = v
        return u

    return GroupFit(*(put(getattr(a, f), getattr(b, f)) for f in a.__dataclass_fields__))


def _warn(per, i: int, used: int, converged: bool, acq: Acquisition, method: str) -> None:
    tau = np.exp(per["log_tau"][i])
    fc = 1.0 / (2.0 * np.pi * tau)
    need_s = MIN_CORNER_PERIODS / fc
    have_s = used * acq.period_s
    if not converged:
        per["flagged"][i] = True
        per["warnings"][i].append("the fit did not converge; the estimate is unreliable")
    if have_s < need_s:
        per["flagged"][i] = True
        per["warnings"][i].append(
            f"trace too short: {have_s:.3g} s, but at f_c = {fc:.3g} Hz a fit needs "
            f">= {MIN_CORNER_PERIODS:g} / f_c = {need_s:.3g} s "
            f"({int(np.ceil(need_s * acq.fs_hz))} frames)"
        )
    if fc > acq.fs_hz / 2 and (acq.gamma is None or fc > acq.fs_hz):
        what = (
            "the force rests on the fixed drag and the blur-corrected variance"
            if acq.gamma is not None
            else "kappa comes from the blur-corrected variance, and kappa, the drag and "
            "the corner are poorly determined (see the intervals); pass radius_nm and "
            "height_nm to fix the drag"
        )
        per["warnings"][i].append(
            f"corner f_c = {fc:.3g} Hz is above fs/2 = {acq.fs_hz / 2:.3g} Hz: the "
            f"relaxation is not resolved; {what}"
        )
    if method == "equipartition" and acq.noise_var is None:
        per["warnings"][i].append(
            "equipartition does not separate tracking noise: it lowers the force by "
            "noise^2 / variance"
        )
