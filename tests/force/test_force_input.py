"""Bad input: errors that name the parameter, flagged results that say what is needed,
NaN frames handled by segments, unresolvable corners warned about; helpers."""

from __future__ import annotations

import numpy as np
import pytest

from camtrack.force import (
    FOCAL_SHIFT,
    calibrate_force,
    extension_nm,
    faxen_drag,
    pendulum_length_nm,
)
from camtrack.simulate import tether_trace

R_NM, H_NM = 500.0, 3000.0
GAMMA = faxen_drag(R_NM, H_NM)


def _sim(fc=5.0, fs=60.0, frames=3000, **kw):
    kappa = 2 * np.pi * GAMMA * fc
    return tether_trace(
        frames,
        fs,
        force_pn=kappa * H_NM,
        length_nm=H_NM,
        radius_nm=R_NM,
        height_nm=H_NM,
        noise_nm=1.0,
        **kw,
    )


@pytest.mark.parametrize(
    ("kw", "name"),
    [
        ({"length_nm": 0.0}, "length_nm"),
        ({"length_nm": -5.0}, "length_nm"),
        ({"length_nm": [1.0, 2.0, 3.0]}, "length_nm"),
        ({"temperature_k": 0.0}, "temperature_k"),
        ({"temperature_k": -3.0}, "temperature_k"),
        ({"radius_nm": -1.0, "height_nm": 3000.0}, "radius_nm"),
        ({"radius_nm": 500.0, "height_nm": 0.0}, "height_nm"),
        ({"radius_nm": 500.0, "height_nm": 400.0}, "height_nm"),
        ({"radius_nm": 500.0}, "height_nm"),
        ({"viscosity_pa_s": 0.0, "radius_nm": 500.0, "height_nm": 3000.0}, "viscosity_pa_s"),
        ({"exposure_s": 0.05}, "exposure_s"),
        ({"exposure_s": -0.001}, "exposure_s"),
        ({"method": "lsq"}, "method"),
        ({"method": "equipartition"}, "radius_nm"),
    ],
)
def test_bad_values_name_the_parameter(kw, name):
    x = _sim(rng=0).x_nm
    args = {"length_nm": H_NM, **kw}
    with pytest.raises(ValueError, match=f"`{name}`"):
        calibrate_force(x, 60.0, **args)


def test_bad_traces():
    with pytest.raises(ValueError, match=r"`x_nm`.*frames"):
        calibrate_force(np.zeros(5), 60.0, length_nm=H_NM)
    with pytest.raises(ValueError, match="`x_nm` must be 1-D"):
        calibrate_force(np.zeros((2, 3, 100)), 60.0, length_nm=H_NM)
    with pytest.raises(TypeError, match="`x_nm`"):
        calibrate_force("trace.csv", 60.0, length_nm=H_NM)
    with pytest.raises(ValueError, match="`fs_hz`"):
        calibrate_force(np.zeros(100), 0.0, length_nm=H_NM)
    with pytest.raises(TypeError, match="`fs_hz`"):
        calibrate_force(np.zeros(100), "60", length_nm=H_NM)


def test_too_short_trace_is_flagged_with_the_length_needed():
    # Corner 0.5 Hz needs 20 / 0.5 = 40 s; 600 frames at 60 Hz are 10 s.
    sim = _sim(fc=0.5, frames=600, rng=1)
    res = calibrate_force(sim.x_nm, 60.0, length_nm=H_NM)
    assert res.flagged
    (msg,) = [w for w in res.warnings if "too short" in w]
    assert "needs >=" in msg and "frames" in msg
    long = calibrate_force(_sim(fc=0.5, frames=6000, rng=1).x_nm, 60.0, length_nm=H_NM)
    assert not long.flagged and long.warnings == ()


def test_nan_frames_are_handled_by_segments():
    sim = _sim(frames=6000, n_beads=3, rng=2)
    x = sim.x_nm.copy()
    x[1, 1000:1100] = np.nan  # a lost stretch
    x[1, 3000:3005] = np.nan
    x[1, 3010] = np.nan  # leaves a 5-frame piece (3005-3009), too short to use
    x[2, :] = np.nan  # a bead lost for good
    res = calibrate_force(x, 60.0, length_nm=H_NM)
    assert res.n_nan_frames.tolist() == [0, 106, 6000]
    assert res.n_segments.tolist() == [1, 3, 0]
    assert res.n_frames_used[1] == 6000 - 106 - 5
    assert any("106 NaN frames" in w and "dropped" in w for w in res.warnings[1])
    assert res.flagged.tolist() == [False, False, True]
    assert np.isnan(res.force_pn[2])
    # The bead with gaps still measures the force (100 corner periods: ~4 % scatter).
    assert res.force_pn[1] == pytest.approx(sim.force_pn, rel=0.1)
    for method in ("allan", "hadamard"):
        r = calibrate_force(x[:2], 60.0, length_nm=H_NM, method=method)
        assert r.force_pn[1] == pytest.approx(sim.force_pn, rel=0.1)
    eq = calibrate_force(
        x[1], 60.0, length_nm=H_NM, method="equipartition", radius_nm=R_NM, height_nm=H_NM
    )
    assert eq.force_pn == pytest.approx(sim.force_pn, rel=0.1)


def test_corner_far_above_nyquist_warns():
    sim = _sim(fc=200.0, fs=60.0, frames=6000, exposure_s=0.3 / 60.0, rng=3)
    res = calibrate_force(
        sim.x_nm, 60.0, length_nm=H_NM, exposure_s=0.3 / 60, radius_nm=R_NM, height_nm=H_NM
    )
    assert any("above fs/2" in w and "fixed drag" in w for w in res.warnings)
    # What can still be said: with the drag fixed, the force from the blurred variance.
    assert res.force_pn == pytest.approx(sim.force_pn, rel=0.1)
    free = calibrate_force(sim.x_nm, 60.0, length_nm=H_NM, exposure_s=0.3 / 60)
    assert any("radius_nm and height_nm" in w for w in free.warnings)


def test_result_shapes_and_rows():
    sim = _sim(frames=3000, n_beads=2, rng=4)
    res = calibrate_force(sim.x_nm, 60.0, length_nm=[H_NM, H_NM])
    assert res.force_pn.shape == (2,) and res.force_ci_pn.shape == (2, 2)
    assert np.all(res.force_ci_pn[:, 0] < res.force_pn)
    assert np.all(res.force_pn < res.force_ci_pn[:, 1])
    rows = res.to_rows()
    assert [r["bead"] for r in rows] == [0, 1]
    assert rows[0]["force_pn"] == res.force_pn[0]
    assert rows[1]["force_hi_pn"] == res.force_ci_pn[1, 1]
    one = calibrate_force(sim.x_nm[0], 60.0, length_nm=H_NM)
    assert isinstance(one.force_pn, float) and isinstance(one.force_ci_pn, tuple)
    assert one.force_pn == pytest.approx(res.force_pn[0], rel=1e-9)
    assert one.method == "psd" and one.warnings == ()
    # A float32 trace (as a tracker writes) gives the same answer.
    f32 = calibrate_force(sim.x_nm[0].astype(np.float32), 60.0, length_nm=H_NM)
    assert f32.force_pn == pytest.approx(one.force_pn, rel=1e-4)
    # The input is never modified.
    before = sim.x_nm.copy()
    calibrate_force(sim.x_nm, 60.0, length_nm=H_NM, method="allan")
    np.testing.assert_array_equal(sim.x_nm, before)


def test_temperature_sets_kt():
    sim = _sim(frames=3000, rng=5)
    a = calibrate_force(sim.x_nm, 60.0, length_nm=H_NM, temperature_k=296.15)
    b = calibrate_force(sim.x_nm, 60.0, length_nm=H_NM, temperature_k=310.15)
    assert b.force_pn / a.force_pn == pytest.approx(310.15 / 296.15, rel=1e-6)


def test_geometry_helpers():
    assert pendulum_length_nm(2000.0, 500.0) == 2500.0
    assert pendulum_length_nm(2000.0, 500.0, "perpendicular") == 2000.0
    np.testing.assert_allclose(pendulum_length_nm([100.0, 200.0], 10.0), [110.0, 210.0])
    with pytest.raises(ValueError, match="`direction`"):
        pendulum_length_nm(2000.0, 500.0, "up")
    with pytest.raises(ValueError, match="`extension_nm`"):
        pendulum_length_nm(-1.0, 500.0)
    with pytest.raises(ValueError, match="`radius_nm`"):
        pendulum_length_nm(100.0, 0.0)
    z = np.array([1000.0, 1500.0])
    assert abs(FOCAL_SHIFT - 0.8779) < 1e-4
    np.testing.assert_allclose(extension_nm(z, 200.0), FOCAL_SHIFT * (z - 200.0))
    np.testing.assert_allclose(
        extension_nm(z, np.array([100.0, 300.0]), focal_shift=1.0), [900.0, 1200.0]
    )
    np.testing.assert_allclose(
        extension_nm(z, 0.0, focal_shift=1.0, radius_nm=500.0), [500.0, 1000.0]
    )
    with pytest.raises(ValueError, match="`focal_shift`"):
        extension_nm(z, 0.0, focal_shift=0.0)
    with pytest.raises(ValueError, match="`surface_nm`"):
        extension_nm(z, np.zeros(3))


def test_a_bead_that_does_not_move_is_flagged_not_fitted():
    sim = _sim(frames=3000, rng=6)
    x = np.vstack([sim.x_nm, np.full(3000, 1234.5)])
    for method in ("psd", "allan", "auto"):
        res = calibrate_force(x, 60.0, length_nm=H_NM, method=method)
        assert res.flagged.tolist() == [False, True]
        assert np.isnan(res.force_pn[1]) and np.isfinite(res.force_pn[0])
        assert any("does not move" in w for w in res.warnings[1])


def test_dask_input_gives_the_same_result():
    da = pytest.importorskip("dask.array")
    sim = _sim(frames=3000, n_beads=3, rng=7)
    lazy = calibrate_force(da.from_array(sim.x_nm, chunks=(1, 700)), 60.0, length_nm=H_NM)
    eager = calibrate_force(sim.x_nm, 60.0, length_nm=H_NM)
    np.testing.assert_array_equal(lazy.force_pn, eager.force_pn)
