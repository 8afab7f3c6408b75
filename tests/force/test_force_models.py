"""The exact camera models against independent numerical references, and the
simulator against an independent fine-grid Ornstein-Uhlenbeck simulation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate
from scipy.signal import lfilter

from camtrack.force import allan_model, blur_factor, faxen_drag, kt_pn_nm, psd_model
from camtrack.force._models import autocov, blocked_mean_var, periodogram_mean, variance_mean
from camtrack.simulate import tether_trace

FS = 100.0
T = 1.0 / FS


def _blurred_cov_quad(lag: int, s2: float, tau: float, w: float) -> float:
    """Cov(y_0, y_lag) by 2-D quadrature of s2 e^-|t-u|/tau over two exposures."""
    if w == 0:
        return s2 * np.exp(-lag * T / tau)
    f = lambda u, t: s2 * np.exp(-abs(lag * T + u - t) / tau)  # noqa: E731
    if lag == 0:  # the kink at t = u: integrate both triangles separately
        lo, _ = integrate.dblquad(f, 0, w, 0, lambda t: t, epsabs=1e-12, epsrel=1e-10)
        return 2 * lo / w**2
    val, _ = integrate.dblquad(f, 0, w, 0, w, epsabs=1e-12, epsrel=1e-10)
    return val / w**2


@pytest.mark.parametrize("w_frac", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("tau", [0.002, 0.01, 0.2])
def test_autocovariance_matches_quadrature(w_frac, tau):
    s2, w = 3.0, w_frac * T
    r0, a1, b = autocov(s2, tau, w, T)
    for lag, closed in [(0, r0), (1, a1), (3, a1 * b**2)]:
        assert closed == pytest.approx(_blurred_cov_quad(lag, s2, tau, w), rel=1e-7, abs=1e-12)


def test_zero_exposure_is_the_plain_aliased_lorentzian():
    kappa, gamma = 2e-3, 1.5e-5
    s2, tau = kt_pn_nm(296.15) / kappa, gamma / kappa
    f = np.linspace(0.01, FS / 2, 400)
    b = np.exp(-T / tau)
    w = 2 * np.pi * f / FS
    plain = 2 * T * s2 * (1 - b * b) / (1 - 2 * b * np.cos(w) + b * b)
    p0 = psd_model(f, FS, kappa_pn_per_nm=kappa, gamma_pn_s_per_nm=gamma, exposure_s=0.0)
    np.testing.assert_allclose(p0, plain, rtol=1e-12)
    # ... and it is the W -> 0 limit, continuously.
    tiny = psd_model(f, FS, kappa_pn_per_nm=kappa, gamma_pn_s_per_nm=gamma, exposure_s=1e-9)
    np.testing.assert_allclose(tiny, plain, rtol=1e-6)
    # Blur lowers the spectrum at high frequency, most for the full-frame exposure.
    full = psd_model(f, FS, kappa_pn_per_nm=kappa, gamma_pn_s_per_nm=gamma)
    assert np.all(full[-50:] < p0[-50:])


def test_spectrum_integrates_to_the_blurred_variance():
    """Parseval: the one-sided density integrated to fs/2 equals R0 (Wong-Halvorsen)."""
    kappa, gamma, w = 2e-3, 1.5e-5, 0.7 * T
    s2, tau = kt_pn_nm(296.15) / kappa, gamma / kappa
    f = np.linspace(0, FS / 2, 200001)
    p = psd_model(f, FS, kappa_pn_per_nm=kappa, gamma_pn_s_per_nm=gamma, exposure_s=w)
    total = integrate.trapezoid(p, f)
    a = w / tau
    assert total == pytest.approx(s2 * (2 / a - 2 / a**2 * (1 - np.exp(-a))), rel=1e-6)
    # Below a = 0.01 the closed form cancels; its series must join it smoothly.
    a = np.array([0.0099999, 0.0100001])
    assert blur_factor(a)[0] == pytest.approx(blur_factor(a)[1], rel=1e-6)
    assert blur_factor(np.array(1e-3)) == pytest.approx(1 - 1e-3 / 3 + 1e-6 / 12, rel=1e-10)


@pytest.mark.parametrize("w_frac", [0.0, 0.5, 1.0])
def test_finite_length_periodogram_expectation(w_frac):
    """Closed form vs the explicit sum (T / N) sum_l (N - |l|) R(l) e^(-i w l)."""
    n, s2, tau, noise = 64, 2.0, 0.03, 0.1
    r0, a1, b = autocov(s2, tau, w_frac * T, T)
    lags = np.arange(1, n)
    r = a1 * b ** (lags - 1)
    k = np.arange(1, n // 2)
    omega = 2 * np.pi * k / n
    explicit = r0 + noise + 2 * np.sum((n - lags) / n * r * np.cos(np.outer(omega, lags)), axis=1)
    closed = periodogram_mean(omega, n, s2, tau, noise, w_frac * T, T)
    np.testing.assert_allclose(closed, 2 * T * explicit, rtol=1e-10)


@pytest.mark.parametrize("kind", ["allan", "hadamard"])
def test_cluster_variances_match_explicit_quadratic_forms(kind):
    s2, tau, noise, w = 2.0, 0.03, 0.2, 0.6 * T
    r0, a1, b = autocov(s2, tau, w, T)
    for m in (1, 3, 8):
        k = 2 if kind == "allan" else 3
        wts = {2: [-1, 1], 3: [1, -2, 1]}[k]
        weights = np.repeat(wts, m) / m
        idx = np.arange(k * m)
        lag = np.abs(idx[:, None] - idx[None, :])
        cov = np.where(lag == 0, r0 + noise, a1 * b ** np.maximum(lag - 1, 0))
        explicit = weights @ cov @ weights / (2.0 if kind == "allan" else 6.0)
        got = blocked_mean_var(float(m), s2, tau, noise, w, T, kind)
        assert got == pytest.approx(explicit, rel=1e-10)
    # The public wrapper rounds cluster times to frames.
    kappa = kt_pn_nm(296.15) / s2
    pub = allan_model(
        [3 * T], FS, kappa_pn_per_nm=kappa, gamma_pn_s_per_nm=kappa * tau, exposure_s=w, kind=kind
    )
    assert pub[0] == pytest.approx(blocked_mean_var(3.0, s2, tau, 0.0, w, T, kind), rel=1e-9)


def test_segment_variance_subtracts_the_variance_of_the_mean():
    s2, tau, noise, w, n = 2.0, 0.05, 0.0, T, 40
    r0, a1, b = autocov(s2, tau, w, T)
    idx = np.arange(n)
    lag = np.abs(idx[:, None] - idx[None, :])
    cov = np.where(lag == 0, r0, a1 * b ** np.maximum(lag - 1, 0))
    centre = np.eye(n) - 1.0 / n
    explicit = np.trace(centre @ cov @ centre) / n
    assert variance_mean(n, s2, tau, noise, w, T) == pytest.approx(explicit, rel=1e-10)


def test_faxen_and_stokes():
    # 6 pi eta R for R = 1 um in water (1 mPa s): 1.885e-8 N s/m = 1.885e-5 pN s/nm.
    assert faxen_drag(1000.0) == pytest.approx(6 * np.pi * 1e-3 * 1e-6 * 1e3, rel=1e-12)
    # At h = 2 R, R/h = 1/2: 1 / (1 - 9/32 + 1/64 - 45/4096 - 1/512) = 4096 / 2955.
    assert faxen_drag(1000.0, 2000.0) / faxen_drag(1000.0) == pytest.approx(4096 / 2955, rel=1e-12)
    # Far from the wall the correction vanishes as 9/16 R/h.
    assert faxen_drag(1000.0, 1e7) / faxen_drag(1000.0) == pytest.approx(
        1 + 9 / 16 * 1e-4, rel=1e-7
    )


@pytest.mark.parametrize(("w_frac", "tau"), [(1.0, 0.004), (0.3, 0.002), (1.0, 0.05)])
def test_simulator_matches_an_independent_fine_grid_simulation(w_frac, tau):
    """Variance and lag-1 covariance of tether_trace vs an exact AR(1) on a grid of
    T / 400 averaged over the exposure (a Riemann sum, independent of the closed forms).
    Tolerances: 4 standard errors of each estimate (from the scatter over beads)."""
    kt = kt_pn_nm(296.15)
    kappa = 1e-3
    gamma = tau * kappa
    s2 = kt / kappa
    sim = tether_trace(
        4000,
        FS,
        force_pn=kappa * 1000.0,
        length_nm=1000.0,
        exposure_s=w_frac * T,
        gamma_pn_s_per_nm=gamma,
        n_beads=40,
        rng=7,
    )
    x = sim.x_nm
    sub, nfr = 400, 2000
    rng = np.random.default_rng(8)
    a = np.exp(-T / sub / tau)
    e = np.sqrt(s2 * (1 - a * a)) * rng.standard_normal((40, nfr * sub))
    e[:, 0] = np.sqrt(s2) * rng.standard_normal(40)
    fine = lfilter([1.0], [1.0, -a], e, axis=1).reshape(40, nfr, sub)
    y = fine[:, :, : max(1, round(w_frac * sub))].mean(axis=2)
    for stat in (lambda v: v.var(axis=1), lambda v: np.mean(v[:, 1:] * v[:, :-1], axis=1)):
        s_sim, s_ref = stat(x), stat(y)
        se = np.hypot(s_sim.std() / np.sqrt(40), s_ref.std() / np.sqrt(40))
        assert abs(s_sim.mean() - s_ref.mean()) < 4 * se + 1e-3 * s2
    r0, _, _ = autocov(s2, tau, w_frac * T, T)
    assert x.var(axis=1).mean() == pytest.approx(r0, rel=0.05)


def test_force_diagnostics_model_follows_the_data():
    """The blocked periodogram scatters about its fitted model with gamma statistics:
    the mean of data / model is 1 within 4 standard errors; same for a batch bead."""
    from camtrack.force import calibrate_force, force_diagnostics

    sim = tether_trace(20000, FS, force_pn=0.5, length_nm=2000.0, noise_nm=1.0, n_beads=2, rng=3)
    res = calibrate_force(sim.x_nm, FS, length_nm=2000.0)
    d = force_diagnostics(sim.x_nm, res, bead=1)
    ratio = d.psd_nm2_per_hz / d.psd_model_nm2_per_hz
    n_bins = 9999 // d.f_hz.size  # bins per block: the gamma shape
    assert abs(ratio.mean() - 1) < 4 / np.sqrt(n_bins * d.f_hz.size)
    assert d.force_pn == res.force_pn[1]
    np.testing.assert_allclose(d.allan_nm2[:3], d.allan_model_nm2[:3], rtol=0.1)
    with pytest.raises(ValueError, match="`bead`"):
        force_diagnostics(sim.x_nm, res, bead=2)
