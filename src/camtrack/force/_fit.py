"""Batched maximum-likelihood fits of gamma-distributed statistics by Fisher scoring.

Both the blocked periodogram (shape = bins per block) and the Allan variance (shape =
equivalent degrees of freedom / 2) are gamma distributed about their model mean mu, so
one fitter serves both: the log-likelihood is sum nu (-x / mu - log mu), its score
sum nu (x - mu) / mu^2 dmu/dtheta and its Fisher information
sum nu dmu/dtheta dmu/dtheta^T / mu^2. The data are never log-transformed (least
squares on logs is biased for gamma data).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["fit_gamma", "jacobian"]

# Forward-difference step in log-parameters: ~sqrt(machine eps) balances truncation and
# rounding for models that are smooth on the scale of their parameters.
_STEP = 1e-6
# A Fisher step is capped at this many e-folds so a poor start cannot overshoot into a
# flat region (exp(3) = 20x per iteration still crosses any plausible start quickly).
_MAX_STEP = 3.0


def _loglik(x: np.ndarray, mu: np.ndarray, nu: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        ll = np.sum(nu * (-x / mu - np.log(mu)), axis=-1)
    return np.where(np.isfinite(ll), ll, -np.inf)


def jacobian(model: Callable, theta: np.ndarray, mu: np.ndarray) -> np.ndarray:
    cols = []
    for j in range(theta.shape[1]):
        t = theta.copy()
        t[:, j] += _STEP
        cols.append((model(t) - mu) / _STEP)
    return np.stack(cols, axis=-1)  # (B, n, p)


def fit_gamma(
    model: Callable[[np.ndarray], np.ndarray],
    theta0: np.ndarray,
    x: np.ndarray,
    nu: np.ndarray,
    *,
    floor: np.ndarray | None = None,
    max_iter: int = 60,
    tol: float = 1e-8,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Maximise the gamma log-likelihood for a batch of independent fits.

    Parameters
    ----------
    model : callable
        theta (B, p) -> mean (B, n), positive.
    theta0 : (B, p)
        Start (log-parameters).
    x, nu : (B, n)
        Observed statistics and their gamma shapes.
    floor : (B, p) or None
        Lower bounds of the parameters (NaN: none). A parameter held at its floor is
        dropped from the covariance (reported with zero variance).

    Returns
    -------
    theta (B, p), cov (B, p, p), converged (B,) bool, info (B, p, p)
        The estimate, its covariance (inverse Fisher information) and the information.
    """
    theta = np.array(theta0, dtype=float)
    b, p = theta.shape
    lo = np.full((b, p), -np.inf) if floor is None else np.where(np.isnan(floor), -np.inf, floor)
    theta = np.maximum(theta, lo)
    mu = model(theta)
    ll = _loglik(x, mu, nu)
    converged = np.zeros(b, dtype=bool)
    info = np.zeros((b, p, p))
    for _ in range(max_iter):
        jac = jacobian(model, theta, mu)
        w = nu / mu**2
        score = np.einsum("bn,bnp->bp", w * (x - mu), jac)
        info = np.einsum("bn,bnp,bnq->bpq", w, jac, jac)
        at_floor = (theta <= lo + 1e-12) & (score < 0)
        free = ~at_floor
        mask = free[:, :, None] & free[:, None, :]
        step = np.einsum("bpq,bq->bp", np.linalg.pinv(np.where(mask, info, 0.0)), score)
        step = np.where(free, step, 0.0)
        big = np.max(np.abs(step), axis=1, keepdims=True)
        step = step * np.minimum(1.0, _MAX_STEP / np.maximum(big, 1e-300))
        step[converged] = 0.0
        # Newton decrement: the log-likelihood the full step would still gain. A
        # parameter the data barely constrain (noise far below the motion) then no
        # longer blocks convergence, as a step-size test would.
        done = np.einsum("bp,bp->b", score, step) < tol
        converged |= done
        if converged.all():
            break
        # Backtracking: halve a bead's step until its likelihood does not drop.
        scale = np.ones((b, 1))
        for _ in range(30):
            trial = np.maximum(theta + scale * step, lo)
            mu_t = model(trial)
            ll_t = _loglik(x, mu_t, nu)
            bad = (ll_t < ll - 1e-10 * np.abs(ll)) & ~converged
            if not bad.any():
                break
            scale[bad] *= 0.5
        # A bead whose step cannot raise its likelihood is at its optimum to rounding.
        converged |= bad
        ok = ~converged
        theta[ok] = trial[ok]
        mu[ok] = mu_t[ok]
        ll[ok] = ll_t[ok]
    jac = jacobian(model, theta, mu)
    w = nu / mu**2
    info = np.einsum("bn,bnp,bnq->bpq", w, jac, jac)
    free = theta > lo + 1e-9
    mask = free[:, :, None] & free[:, None, :]
    info = np.where(mask, info, 0.0)
    return theta, np.linalg.pinv(info), converged, info
