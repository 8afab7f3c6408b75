"""68 % intervals cover the truth in 60-76 % of 200 seeded traces; linear drift biases
the Allan variance but not the Hadamard one; auto says why it picked a method."""

from __future__ import annotations

import numpy as np
import pytest

from camtrack.force import calibrate_force, faxen_drag
from camtrack.force._methods import Acquisition
from camtrack.force._models import blocked_mean_var
from camtrack.force._spectra import cluster_sizes, cluster_variance
from camtrack.simulate import tether_trace

R_NM, H_NM = 500.0, 3000.0
GAMMA = faxen_drag(R_NM, H_NM)


def _traces(fc: float, fs: float, frames: int, n: int, seed: int, **kw):
    kappa = 2 * np.pi * GAMMA * fc
    return tether_trace(
        frames,
        fs,
        force_pn=kappa * H_NM,
        length_nm=H_NM,
        radius_nm=R_NM,
        height_nm=H_NM,
        noise_nm=1.5,
        n_beads=n,
        rng=seed,
        **kw,
    )


@pytest.mark.parametrize(
    ("method", "fixed"),
    [("psd", False), ("psd", True), ("equipartition", True), ("allan", False)],
)
def test_interval_coverage(method, fixed):
    """200 traces (corner 5 Hz at 60 Hz, 2400 frames = 200 corner periods). 60-76 % is
    the 68 % target +-2.4 binomial standard deviations (3.3 % for 200 traces)."""
    sim = _traces(5.0, 60.0, 2400, 200, seed=2026)
    kw = {"radius_nm": R_NM, "height_nm": H_NM} if fixed else {}
    res = calibrate_force(sim.x_nm, 60.0, length_nm=H_NM, method=method, **kw)
    lo, hi = res.force_ci_pn.T
    covered = np.mean((lo <= sim.force_pn) & (sim.force_pn <= hi))
    assert 0.60 <= covered <= 0.76, covered
    assert not res.flagged.any()


def test_linear_drift_biases_allan_not_hadamard():
    fs, frames = 60.0, 12000
    drift = 5.0  # nm/s: 1 um over the trace, against a 50 nm thermal amplitude
    sim = _traces(5.0, fs, frames, 8, seed=3, drift_nm_per_s=drift)
    bounds = ((0, frames),)
    kt = 4.0888
    s2 = kt / sim.kappa_pn_per_nm
    tau = sim.gamma_pn_s_per_nm / sim.kappa_pn_per_nm
    for kind in ("allan", "hadamard"):
        m = cluster_sizes(bounds, kind)
        value, _ = cluster_variance(sim.x_nm, bounds, m, kind)
        model = blocked_mean_var(m.astype(float), s2, tau, 1.5**2, 1 / fs, 1 / fs, kind)
        ratio = value.mean(axis=0)[-1] / model[-1]
        # Allan at the longest cluster time: + (v m T)^2 / 2 = several times the model.
        # Hadamard: the model to within the scatter of 8 traces at 2 degrees of freedom.
        if kind == "allan":
            assert ratio > 3
        else:
            assert 0.4 < ratio < 2.0
    allan = calibrate_force(sim.x_nm, fs, length_nm=H_NM, method="allan")
    had = calibrate_force(sim.x_nm, fs, length_nm=H_NM, method="hadamard")
    err_a = np.mean(allan.force_pn) / sim.force_pn - 1
    err_h = np.mean(had.force_pn) / sim.force_pn - 1
    assert err_a < -0.15  # drift looks like a softer trap (measured: -32 %)
    assert abs(err_h) < 0.03
    auto = calibrate_force(sim.x_nm, fs, length_nm=H_NM, method="auto")
    assert set(auto.method) == {"hadamard"}
    assert all("drift" in r for r in auto.reason)
    np.testing.assert_allclose(auto.force_pn, had.force_pn)


def test_auto_keeps_psd_without_drift():
    sim = _traces(5.0, 60.0, 6000, 4, seed=4)
    res = calibrate_force(sim.x_nm, 60.0, length_nm=H_NM, method="auto")
    assert res.method == ("psd",) * 4
    assert all("no linear drift" in r for r in res.reason)
    one = calibrate_force(sim.x_nm[0], 60.0, length_nm=H_NM, method="auto")
    assert one.method == "psd" and isinstance(one.reason, str)
    assert one.force_pn == pytest.approx(res.force_pn[0], rel=1e-9)


def test_acquisition_period():
    assert Acquisition(50.0, 0.01, 4.0, None).period_s == pytest.approx(0.02)
