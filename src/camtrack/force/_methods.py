"""Per-method fits for a group of beads that share one NaN pattern.

Every method returns the same thing per bead: log s2 (s2 = kT / kappa), log tau
(tau = gamma / kappa), the tracking-noise variance, the 2x2 covariance of
(log s2, log tau) and whether the fit converged.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from camtrack.force._fit import fit_gamma, jacobian
from camtrack.force._models import (
    autocov,
    blocked_mean_var,
    blur_factor,
    periodogram_mean,
    variance_mean,
)
from camtrack.force._spectra import (
    blocked_periodogram,
    cluster_cov,
    cluster_sizes,
    cluster_variance,
)

__all__ = ["Acquisition", "GroupFit", "fit_cluster", "fit_equipartition", "fit_psd"]


@dataclass(frozen=True)
class Acquisition:
    """What the models need besides the trace."""

    fs_hz: float
    exposure_s: float
    kt: float
    gamma: float | None  # fixed drag (pN s/nm) or None to fit it
    noise_var: float | None = None  # fixed tracking-noise variance (nm^2) or None to fit

    @property
    def period_s(self) -> float:
        return 1.0 / self.fs_hz


@dataclass(frozen=True)
class GroupFit:
    log_s2: np.ndarray
    log_tau: np.ndarray
    noise_var: np.ndarray
    cov: np.ndarray  # (B, 2, 2) of (log s2, log tau)
    converged: np.ndarray
    noise_zeroed: np.ndarray  # (B,) bool: noise not separable, assumed 0


# Where fitting the noise floor inflates the standard error of log kappa more than this
# factor over a fit without it, noise and motion are entangled (the motion's spectrum
# is nearly white: corner near or above fs/2). The noise is then taken as 0 and the
# warning says what that costs; 2 keeps the noise wherever it costs < 2x in precision.
NOISE_ENTANGLED = 2.0


def _pooled(x: np.ndarray, bounds) -> tuple[np.ndarray, np.ndarray]:
    """Pooled mean-free variance and lag-1 correlation over segments, per bead."""
    ss = np.zeros(x.shape[0])
    lag = np.zeros(x.shape[0])
    n = 0
    for a, b in bounds:
        seg = x[:, a:b] - x[:, a:b].mean(axis=1, keepdims=True)
        ss += np.sum(seg * seg, axis=1)
        lag += np.sum(seg[:, 1:] * seg[:, :-1], axis=1)
        n += b - a
    return ss / n, lag / np.maximum(ss, 1e-300)


def _start(x: np.ndarray, bounds, acq: Acquisition) -> tuple[np.ndarray, np.ndarray]:
    """Starting (log s2, log tau) from the variance and lag-1 correlation; the variance."""
    var, rho1 = _pooled(x, bounds)
    t = acq.period_s
    tau = np.where(rho1 > 0.05, -t / np.log(np.clip(rho1, 0.05, 0.999)), 0.2 * t)
    if acq.gamma is not None:
        # s2 solves s2 * blur(W kT / (gamma s2)) = var; a few fixed-point steps suffice.
        s2 = var.copy()
        for _ in range(30):
            s2 = var / blur_factor(acq.exposure_s * acq.kt / (acq.gamma * s2))
        tau = acq.gamma * s2 / acq.kt
    else:
        s2 = var / blur_factor(acq.exposure_s / tau)
    return np.stack([np.log(s2), np.log(tau)], axis=1), np.maximum(var, 1e-300)


class _Params:
    """Map the free fit parameters to (s2, tau, noise variance), each (B, 1).

    Free parameters: log s2, then log tau unless the drag is fixed, then the noise
    variance in units of the trace variance unless it is fixed. The noise variance is
    linear and may go negative (while every model mean stays positive): at noise levels
    far below the motion, a bound at zero would push its estimate, and the force's,
    to one side.
    """

    def __init__(self, acq: Acquisition, var: np.ndarray):
        self.acq, self.scale = acq, var[:, None]

    def start(self, x, bounds) -> np.ndarray:
        st, _ = _start(x, bounds, self.acq)
        cols = [st[:, :1]]
        if self.acq.gamma is None:
            cols.append(st[:, 1:2])
        if self.acq.noise_var is None:
            cols.append(np.full((st.shape[0], 1), 1e-3))
        return np.concatenate(cols, axis=1)

    def __call__(self, theta):
        acq = self.acq
        s2 = np.exp(theta[:, :1])
        tau = np.exp(theta[:, 1:2]) if acq.gamma is None else acq.gamma * s2 / acq.kt
        noise = theta[:, -1:] * self.scale if acq.noise_var is None else acq.noise_var
        return s2, tau, noise + np.zeros_like(s2)


def _entangled(info: np.ndarray, acq: Acquisition) -> np.ndarray:
    """Beads whose noise parameter inflates the error of log s2 > NOISE_ENTANGLED x."""
    if acq.noise_var is not None:
        return np.zeros(info.shape[0], dtype=bool)
    free = np.linalg.pinv(info)[:, 0, 0]
    fixed = np.linalg.pinv(info[:, :-1, :-1])[:, 0, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        return ~(free <= NOISE_ENTANGLED**2 * fixed)


def _without_noise(fit: GroupFit, again, mask: np.ndarray) -> GroupFit:
    """Replace the entangled beads' fits by fits with the noise fixed at 0."""
    if not mask.any():
        return fit
    sub = again(mask)
    out = {}
    for f in fit.__dataclass_fields__:
        v = getattr(fit, f).copy()
        v[mask] = getattr(sub, f)
        out[f] = v
    out["noise_zeroed"] = mask.copy()
    return GroupFit(**out)


def _finish(theta, cov, converged, params: _Params) -> GroupFit:
    s2, tau, noise = params(theta)
    if params.acq.gamma is None:
        c = cov[:, :2, :2]
    else:  # log tau = log s2 + const
        v = cov[:, 0, 0]
        c = np.stack([np.stack([v, v], -1), np.stack([v, v], -1)], -2)
    zero = np.zeros(theta.shape[0], dtype=bool)
    return GroupFit(np.log(s2[:, 0]), np.log(tau[:, 0]), noise[:, 0], c, converged, zero)


def fit_psd(x: np.ndarray, bounds, acq: Acquisition) -> tuple[GroupFit, object]:
    """Maximum-likelihood fit of the blocked periodogram (gamma shape = bins per block)."""
    pg = blocked_periodogram(x, bounds, acq.fs_hz)
    params = _Params(acq, _pooled(x, bounds)[0])
    theta0 = params.start(x, bounds)
    fc0 = float(np.min(1.0 / (2.0 * np.pi * params(theta0)[1])))
    omega, nfr, weight, starts = pg.nodes(fc0)

    def model(theta):
        s2, tau, noise = params(theta)
        mu = periodogram_mean(omega, nfr, s2, tau, noise, acq.exposure_s, acq.period_s)
        return np.add.reduceat(mu * weight, starts, axis=1)

    nu = np.broadcast_to(pg.count, pg.power.shape)
    theta, cov, ok, info = fit_gamma(model, theta0, pg.power, nu)
    fit = _finish(theta, cov, ok, params)
    quiet = replace(acq, noise_var=0.0)
    fit = _without_noise(fit, lambda m: fit_psd(x[m], bounds, quiet)[0], _entangled(info, acq))
    return fit, pg


def fit_cluster(x: np.ndarray, bounds, acq: Acquisition, kind: str) -> tuple[GroupFit, object]:
    """Fit of the overlapping Allan ("allan") or Hadamard ("hadamard") variance.

    Each point is gamma distributed with shape EDOF / 2; the EDOF are computed from
    the model at the start and again at the first fit (the fit is repeated once).
    """
    m = cluster_sizes(bounds, kind)
    value, counts = cluster_variance(x, bounds, m, kind)
    keep = np.all(np.isfinite(value), axis=0) & (counts.sum(axis=0) > 0)
    m, value, counts = m[keep], value[:, keep], counts[:, keep]
    mm = m[None, :].astype(float)

    params = _Params(acq, _pooled(x, bounds)[0])

    def model(theta):
        s2, tau, noise = params(theta)
        return blocked_mean_var(mm, s2, tau, noise, acq.exposure_s, acq.period_s, kind)

    theta = params.start(x, bounds)
    for full in (False, True):  # weights from the start, then from the first fit
        s2, tau, noise = params(theta)
        r0, a1, b = autocov(s2[:, 0], tau[:, 0], acq.exposure_s, acq.period_s)
        taus = tau[:, 0] / acq.period_s
        cmat = cluster_cov(counts, m, kind, r0 + noise[:, 0], a1, b, taus, full=full)
        mu = model(theta)
        edof = 2.0 * mu**2 / np.diagonal(cmat, axis1=1, axis2=2)
        theta, cov, ok, info = fit_gamma(model, theta, value, np.maximum(edof, 1e-3) / 2.0)
    # Sandwich covariance: the points are fitted as if independent, but neighbouring
    # cluster sizes share data; I^-1 J^T W C W J I^-1 with the model's C corrects that.
    mu = model(theta)
    jac = jacobian(model, theta, mu) * (edof / 2.0 / mu**2)[:, :, None]
    meat = np.einsum("bip,bij,bjq->bpq", jac, cmat, jac)
    cov = cov @ meat @ cov
    fit = _finish(theta, cov, ok, params)
    quiet = replace(acq, noise_var=0.0)
    redo = _entangled(info, acq)
    fit = _without_noise(fit, lambda k: fit_cluster(x[k], bounds, quiet, kind)[0], redo)
    return fit, (m / acq.fs_hz, value, edof)


def fit_equipartition(x: np.ndarray, bounds, acq: Acquisition) -> GroupFit:
    """kT / var with the exposure blur (Wong & Halvorsen 2006) and the finite-segment
    mean removed, solved for kappa with the drag fixed; noise is not separated."""
    if acq.gamma is None:
        raise ValueError(
            "`method='equipartition'` needs the drag for its blur correction; pass "
            "`radius_nm` and `height_nm` (bead centre above the surface)."
        )
    var, _ = _pooled(x, bounds)
    lengths = np.array([b - a for a, b in bounds], dtype=float)[None, :]
    weights = lengths / lengths.sum()
    noise = 0.0 if acq.noise_var is None else acq.noise_var

    def expected(log_s2):
        s2 = np.exp(log_s2)[:, None]
        tau = acq.gamma * s2 / acq.kt
        vm = variance_mean(lengths, s2, tau, noise, acq.exposure_s, acq.period_s)
        return np.sum(weights * vm, axis=1)

    if np.any(var <= noise):
        raise ValueError(
            f"`noise_nm` ({np.sqrt(noise):g} nm) leaves no thermal motion: the trace "
            f"variance is {float(np.min(var)):.3g} nm^2. Check the noise estimate."
        )
    lo = np.log(np.maximum(var - noise, 1e-300))
    hi = lo + 40.0  # s2 >= var - noise (blur and mean removal only lower the variance)
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        big = expected(mid) > var
        hi = np.where(big, mid, hi)
        lo = np.where(big, lo, mid)
    log_s2 = 0.5 * (lo + hi)
    s2 = np.exp(log_s2)
    tau = acq.gamma * s2 / acq.kt
    r0, a1, _b = autocov(s2, tau, acq.exposure_s, acq.period_s)
    # Var of a sample variance of a Gaussian series: (2 / N) sum_l R(l)^2.
    n = lengths.sum()
    var_v = (2.0 / n) * ((r0 + noise) ** 2 + 2.0 * a1**2 / -np.expm1(-2.0 * acq.period_s / tau))
    slope = (np.log(expected(log_s2 + 1e-6)) - np.log(expected(log_s2))) / 1e-6
    v = var_v / var**2 / slope**2
    cov = np.stack([np.stack([v, v], -1), np.stack([v, v], -1)], -2)
    ones = np.ones(s2.size, dtype=bool)
    return GroupFit(log_s2, np.log(tau), np.full_like(s2, noise), cov, ones, ~ones)
