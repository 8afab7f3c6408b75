"""Worm-like chain: the Bouchiat interpolation, its inverse, and a fit of simulated
dsDNA plateaus (persistence 50 nm) calibrated from simulated bead traces."""

from __future__ import annotations

import numpy as np
import pytest

from camtrack.force import (
    fit_wlc,
    force_extension,
    kt_pn_nm,
    plateau_labels,
    wlc_extension_nm,
    wlc_force_pn,
)
from camtrack.simulate import tether_trace

LP, L0, R_NM = 50.0, 3000.0, 500.0


def test_bouchiat_limits_and_inverse():
    kt = kt_pn_nm(296.15)
    # Small extension: the entropic spring F = 3 kT z / (2 Lp L0) (linear response).
    z = 1.0
    assert wlc_force_pn(z, LP, L0) == pytest.approx(1.5 * kt * z / (LP * L0), rel=1e-3)
    # The interpolation equals Marko-Siggia plus the polynomial at l = 0.5 (by hand:
    # 1 - 0.25 + 0.5 + sum a_i 0.5^i = 1.25 - 0.1291057 - 0.3421773 + 1.0046856
    # - 1.2148772 + 0.6171788 - 0.1107592 = 1.0749450).
    assert wlc_force_pn(0.5 * L0, LP, L0) * LP / kt == pytest.approx(1.074945, rel=1e-6)
    f = np.geomspace(0.01, 50.0, 30)
    for k0 in (None, 1000.0):
        z = wlc_extension_nm(f, LP, L0, stretch_modulus_pn=k0)
        np.testing.assert_allclose(wlc_force_pn(z, LP, L0, stretch_modulus_pn=k0), f, rtol=1e-9)
    # The extensible chain is longer by L0 F / K0 at the same force.
    dz = wlc_extension_nm(10.0, LP, L0, stretch_modulus_pn=1000.0) - wlc_extension_nm(10.0, LP, L0)
    assert dz == pytest.approx(L0 * 10.0 / 1000.0, rel=1e-9)
    with pytest.raises(ValueError, match="`extension_nm`"):
        wlc_force_pn(L0 * 1.01, LP, L0)
    with pytest.raises(ValueError, match="`persistence_nm`"):
        wlc_force_pn(10.0, 0.0, L0)


def test_fit_recovers_exact_and_noisy_points():
    f = np.geomspace(0.05, 20.0, 12)
    z = wlc_extension_nm(f, LP, L0, stretch_modulus_pn=1200.0)
    ext = fit_wlc(z, f, force_err_pn=0.02 * f, extensible=True)
    assert ext.persistence_nm == pytest.approx(LP, rel=1e-4)
    assert ext.contour_nm == pytest.approx(L0, rel=1e-5)
    assert ext.stretch_modulus_pn == pytest.approx(1200.0, rel=1e-3)
    # Noisy forces: the estimate lies within 3 standard errors, for 20 seeds out of 20.
    rng = np.random.default_rng(0)
    z = wlc_extension_nm(f, LP, L0)
    pulls = []
    for _ in range(20):
        fn = f * np.exp(0.05 * rng.standard_normal(f.size))
        res = fit_wlc(z, fn, force_err_pn=0.05 * fn)
        pulls.append((res.persistence_nm - LP) / res.persistence_err_nm)
    assert np.all(np.abs(pulls) < 3)
    assert 0.5 < np.std(pulls) < 1.6  # errors of the right size
    with pytest.raises(ValueError, match="force uncertainties"):
        fit_wlc(z, f)
    with pytest.raises(ValueError, match="more than 3"):
        fit_wlc(z[:3], f[:3], force_err_pn=0.1, extensible=True)


def test_dsdna_plateaus_from_simulated_traces():
    """Eight magnet positions, 0.05-5 pN: traces simulated with the WLC extension,
    calibrated by PSD with the drag fixed (Faxén at extension + R), then fitted. The
    persistence and contour lengths lie within 2 of their standard errors (95 %; one
    fixed seed) and the errors are below 15 % and 2 %."""
    fs = 60.0
    forces = np.geomspace(0.05, 5.0, 8)
    ext = wlc_extension_nm(forces, LP, L0)
    sim = tether_trace(
        8 * 6000,
        fs,
        force_pn=forces,
        length_nm=ext + R_NM,
        radius_nm=R_NM,
        height_nm=ext + R_NM,
        noise_nm=1.5,
        rng=16,
    )
    rng = np.random.default_rng(17)
    z = ext[sim.plateau] + 5.0 * rng.standard_normal(sim.plateau.size)  # 5 nm z noise
    fe = force_extension(sim.x_nm, z, fs, sim.plateau, radius_nm=R_NM)
    np.testing.assert_allclose(fe.extension_nm, ext, atol=1.0)
    assert np.all(fe.force_ci_pn[:, 0] < fe.force_pn)
    res = fe.fit_wlc()
    assert abs(res.persistence_nm - LP) < 2 * res.persistence_err_nm
    assert abs(res.contour_nm - L0) < 2 * res.contour_err_nm
    assert res.persistence_err_nm / LP < 0.15
    assert res.contour_err_nm / L0 < 0.02
    assert res.n_points == 8


def test_plateau_labels_from_the_magnet_position():
    magnet = np.concatenate([np.full(100, 5.0), np.linspace(5.0, 4.0, 10), np.full(50, 4.0),
                             np.full(5, 3.0), np.full(40, 5.0)])  # fmt: skip
    labels = plateau_labels(magnet)
    assert labels[:101].tolist() == [0] * 101  # the ramp starts at 5.0 and ends at 4.0
    assert (labels[101:109] == -1).all()  # moving
    assert (labels[109:160] == 1).all()
    assert (labels[160:165] == -1).all()  # too short to be a plateau
    assert (labels[165:] == 2).all()  # the same position revisited: a new plateau
    assert plateau_labels(magnet, min_frames=5)[160] == 2
    with pytest.raises(ValueError, match="`magnet_position`"):
        plateau_labels([[1.0, 2.0]])
