"""Worm-like chain: Bouchiat et al. (1999) interpolation, its inverse, and fits of
force-extension plateaus."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from camtrack._validation import check_positive
from camtrack.force._physics import kt_pn_nm

__all__ = ["WLCResult", "fit_wlc", "wlc_extension_nm", "wlc_force_pn"]

# Bouchiat, Wang, Allemand, Strick, Block & Croquette 1999, Biophys. J. 76, 409, Eq. 11:
# F Lp / kT = 1 / (4 (1 - l)^2) - 1/4 + l + sum_i a_i l^i, accurate to 0.01 % of the
# exact WLC force for 0 <= l < 0.97.
_A = (0.0, 0.0, -0.5164228, -2.737418, 16.07497, -38.87607, 39.49944, -14.17718)


def _reduced_force(rel: np.ndarray) -> np.ndarray:
    """F Lp / kT as a function of the relative extension l (0 <= l < 1)."""
    poly = np.polynomial.polynomial.polyval(rel, _A)
    return 0.25 / (1.0 - rel) ** 2 - 0.25 + rel + poly


def _solve_rel(target: np.ndarray, extra: np.ndarray | float = 0.0) -> np.ndarray:
    """l in [0, 1) with l + extra * f(l) = target (f increasing: bisection, 1e-15)."""
    lo = np.zeros_like(target)
    hi = np.ones_like(target)
    for _ in range(55):
        mid = 0.5 * (lo + hi)
        big = mid + extra * _reduced_force(mid) > target
        hi = np.where(big, mid, hi)
        lo = np.where(big, lo, mid)
    return 0.5 * (lo + hi)


def wlc_force_pn(
    extension_nm: Any,
    persistence_nm: float,
    contour_nm: float,
    *,
    stretch_modulus_pn: float | None = None,
    temperature_k: float = 296.15,
) -> Any:
    """Force of a worm-like chain at a given extension (Bouchiat 1999), pN.

    Parameters
    ----------
    extension_nm : float or array_like
        End-to-end extension, nm (values <= 0 give 0 pN).
    persistence_nm, contour_nm : float
        Persistence length and contour length, nm (dsDNA: about 50 nm and
        0.34 nm per base pair).
    stretch_modulus_pn : float or None
        Stretch modulus K0, pN (dsDNA: about 1000-1500 pN) for the extensible chain,
        where l = z / L0 - F / K0; None: inextensible.
    temperature_k : float
        Temperature, K.

    Returns
    -------
    float or ndarray
        Force, pN.

    Examples
    --------
    >>> from camtrack.force import wlc_force_pn
    >>> round(wlc_force_pn(2000.0, 50.0, 3000.0), 3)
    0.19
    """
    lp = check_positive(persistence_nm, "persistence_nm")
    l0 = check_positive(contour_nm, "contour_nm")
    scale = kt_pn_nm(temperature_k) / lp
    z = np.clip(np.asarray(extension_nm, dtype=float) / l0, 0.0, None)
    if stretch_modulus_pn is None:
        if np.any(z >= 1):
            raise ValueError(
                "`extension_nm` must be below `contour_nm` for an inextensible chain; got "
                f"a maximum of {float(np.max(z)) * l0:g} nm >= {l0:g} nm. Pass "
                "stretch_modulus_pn for an extensible chain."
            )
        out = scale * _reduced_force(z)
    else:
        k0 = check_positive(stretch_modulus_pn, "stretch_modulus_pn")
        rel = _solve_rel(z, scale / k0)
        out = scale * _reduced_force(rel)
    return float(out) if out.ndim == 0 else out


def wlc_extension_nm(
    force_pn: Any,
    persistence_nm: float,
    contour_nm: float,
    *,
    stretch_modulus_pn: float | None = None,
    temperature_k: float = 296.15,
) -> Any:
    """Extension of a worm-like chain under a given force (inverse of
    :func:`wlc_force_pn`), nm.

    Examples
    --------
    >>> from camtrack.force import wlc_extension_nm, wlc_force_pn
    >>> z = wlc_extension_nm(1.0, 50.0, 3000.0)
    >>> round(wlc_force_pn(z, 50.0, 3000.0), 6)
    1.0
    """
    lp = check_positive(persistence_nm, "persistence_nm")
    l0 = check_positive(contour_nm, "contour_nm")
    f = np.asarray(force_pn, dtype=float)
    if not np.all(np.isfinite(f)) or np.any(f < 0):
        raise ValueError(f"`force_pn` must be finite and >= 0; got {force_pn!r}.")
    target = f * lp / kt_pn_nm(temperature_k)
    # l solves f(l) = target; f increases on [0, 1), so bisect (55 halvings: 3e-17).
    lo = np.zeros_like(target)
    hi = np.ones_like(target)
    for _ in range(55):
        mid = 0.5 * (lo + hi)
        big = _reduced_force(mid) > target
        hi = np.where(big, mid, hi)
        lo = np.where(big, lo, mid)
    rel = 0.5 * (lo + hi)
    if stretch_modulus_pn is not None:
        rel = rel + f / check_positive(stretch_modulus_pn, "stretch_modulus_pn")
    out = l0 * rel
    return float(out) if out.ndim == 0 else out


@dataclass(frozen=True, eq=False)
class WLCResult:
    """Worm-like-chain fit of force-extension points.

    Attributes
    ----------
    persistence_nm, persistence_err_nm : persistence length and its standard error, nm.
    contour_nm, contour_err_nm : contour length and its standard error, nm.
    stretch_modulus_pn, stretch_modulus_err_pn : K0 and its error, pN (None if
        inextensible).
    chi2_reduced : float
        Sum of squared normalised residuals / (points - parameters); about 1 when the
        errors are right. Errors are scaled up by sqrt(chi2_reduced) when it exceeds 1.
    n_points : int
    covariance : ndarray
        Covariance of (persistence, contour[, stretch modulus]).
    temperature_k : float
    """

    persistence_nm: float
    persistence_err_nm: float
    contour_nm: float
    contour_err_nm: float
    stretch_modulus_pn: float | None
    stretch_modulus_err_pn: float | None
    chi2_reduced: float
    n_points: int
    covariance: np.ndarray = field(repr=False)
    temperature_k: float = 296.15


def _as_errors(force, force_err_pn, force_ci_pn) -> np.ndarray:
    if force_err_pn is not None:
        err = np.broadcast_to(np.asarray(force_err_pn, dtype=float), force.shape)
    elif force_ci_pn is not None:
        ci = np.asarray(force_ci_pn, dtype=float)
        if ci.shape != (force.size, 2):
            raise ValueError(
                f"`force_ci_pn` must have shape (n_points, 2) = ({force.size}, 2); got "
                f"{ci.shape}. Pass ForceResult.force_ci_pn of a batch."
            )
        # The intervals are +-1 sigma in log force: half their log width is sigma.
        err = force * 0.5 * np.log(ci[:, 1] / ci[:, 0])
    else:
        raise ValueError(
            "Pass the force uncertainties: `force_err_pn` (standard errors) or "
            "`force_ci_pn` (68 % intervals, e.g. ForceResult.force_ci_pn)."
        )
    if not np.all(np.isfinite(err)) or np.any(err <= 0):
        raise ValueError(f"force uncertainties must be finite and > 0; got {err!r}.")
    return err


def fit_wlc(
    extension_nm: Any,
    force_pn: Any,
    *,
    force_err_pn: Any = None,
    force_ci_pn: Any = None,
    extension_err_nm: Any = 0.0,
    extensible: bool = False,
    temperature_k: float = 296.15,
) -> WLCResult:
    """Fit the worm-like chain (Bouchiat 1999) to force-extension plateaus.

    Parameters
    ----------
    extension_nm, force_pn : array_like, (n_points,)
        Mean extension (nm) and force (pN) per plateau (force > 0).
    force_err_pn : array_like or None
        Standard errors of the forces, pN.
    force_ci_pn : array_like (n_points, 2) or None
        Or their 68 % intervals (as :func:`calibrate_force` returns them).
    extension_err_nm : float or array_like
        Standard errors of the extensions, nm.
    extensible : bool
        Fit the stretch modulus K0 too (needs forces of several pN and up).
    temperature_k : float
        Temperature, K.

    Returns
    -------
    WLCResult

    Notes
    -----
    Residuals are taken in extension, (z - z_WLC(F)) / sigma, with the effective
    variance sigma^2 = sigma_z^2 + (dz/dF sigma_F)^2 (re-evaluated at the fit, three
    passes), so both errors count and the extensible chain needs no implicit solve.

    Examples
    --------
    >>> import numpy as np
    >>> from camtrack.force import fit_wlc, wlc_extension_nm
    >>> f = np.geomspace(0.05, 5.0, 8)
    >>> z = wlc_extension_nm(f, 50.0, 3000.0)
    >>> res = fit_wlc(z, f, force_err_pn=0.03 * f)
    >>> round(res.persistence_nm, 3), round(res.contour_nm, 1)
    (50.0, 3000.0)
    """
    z = np.asarray(extension_nm, dtype=float).ravel()
    f = np.asarray(force_pn, dtype=float).ravel()
    if z.shape != f.shape:
        raise ValueError(
            f"`extension_nm` and `force_pn` must have the same length; got {z.size} and {f.size}."
        )
    n_par = 3 if extensible else 2
    if z.size <= n_par:
        raise ValueError(
            f"a WLC fit with {n_par} parameters needs more than {n_par} plateaus; got {z.size}."
        )
    if not (np.all(np.isfinite(z)) and np.all(np.isfinite(f))) or np.any(f <= 0):
        raise ValueError("`extension_nm` must be finite and `force_pn` finite and > 0.")
    sf = _as_errors(f, force_err_pn, force_ci_pn)
    sz = np.broadcast_to(np.asarray(extension_err_nm, dtype=float), z.shape)
    kt_pn_nm(temperature_k)  # validates the temperature before the fit

    def model(p, force):
        k0 = p[2] if extensible else None
        return wlc_extension_nm(
            force, p[0], p[1], stretch_modulus_pn=k0, temperature_k=temperature_k
        )

    p = np.array([50.0, 1.1 * float(np.max(z)), 1000.0][:n_par])
    sigma = np.sqrt(sz**2 + (0.1 * z) ** 2)
    for _ in range(3):
        fit = least_squares(
            lambda q, s=sigma: (z - model(q, f)) / s, p, bounds=(1e-6, np.inf), x_scale=p
        )
        p = fit.x
        slope = (model(p, f * (1 + 1e-6)) - model(p, f)) / (f * 1e-6)
        sigma = np.sqrt(sz**2 + (slope * sf) ** 2)
    res = (z - model(p, f)) / sigma
    dof = z.size - n_par
    chi2 = float(res @ res / dof)
    jac = fit.jac
    cov = np.linalg.pinv(jac.T @ jac) * max(chi2, 1.0)
    err = np.sqrt(np.diag(cov))
    return WLCResult(
        persistence_nm=float(p[0]),
        persistence_err_nm=float(err[0]),
        contour_nm=float(p[1]),
        contour_err_nm=float(err[1]),
        stretch_modulus_pn=float(p[2]) if extensible else None,
        stretch_modulus_err_pn=float(err[2]) if extensible else None,
        chi2_reduced=chi2,
        n_points=int(z.size),
        covariance=cov,
        temperature_k=float(temperature_k),
    )
