"""correct_drift: several reference beads combined robustly, lost or jumping ones left
out per frame and reported."""

from __future__ import annotations

import numpy as np
import pytest

from camtrack.force import correct_drift


def _field(rng, n_frames=2000):
    t = np.arange(n_frames)
    drift = 0.05 * t + 30 * np.sin(t / 300)  # nm
    tether = 40 * rng.standard_normal(n_frames)
    refs = [100.0 * k + drift + 1.0 * rng.standard_normal(n_frames) for k in range(1, 4)]
    return np.stack([tether + drift, *refs]), tether, drift


def test_drift_from_three_references_with_a_jump_and_a_loss():
    rng = np.random.default_rng(0)
    x, tether, _ = _field(rng)
    x[2, 500:700] += 80.0  # reference 2 unsticks for 200 frames
    x[3, 1200:1300] = np.nan  # reference 3 lost
    res = correct_drift(x, reference=[1, 2, 3])
    # Recovered to the references' own noise (1 nm, median of 2-3 of them), up to the
    # constant offset of the median positions.
    err = res.corrected_nm[0] - tether
    assert np.std(err - np.median(err)) < 1.2
    assert res.dropped[1, 500:700].all() and res.dropped[1, :500].sum() < 3
    assert res.dropped[2, 1200:1300].all()
    assert res.n_used[600] == 2 and res.n_used[1250] == 2
    assert any("reference 2 left out in" in w for w in res.warnings)
    assert any("reference 3 left out in" in w for w in res.warnings)
    np.testing.assert_array_equal(res.raw_nm, x)
    # The plain mean of the references would carry a third of the jump.
    plain = x[0] - np.nanmean(x[1:] - np.nanmedian(x[1:], axis=1, keepdims=True), axis=0)
    assert np.abs(plain[500:700] - tether[500:700]).mean() > 20


def test_three_axes_and_frames_without_reference():
    rng = np.random.default_rng(1)
    x, tether, _ = _field(rng, 500)
    xyz = np.stack([x, x / 2, -x], axis=-1)
    xyz[1:, 10:20] = np.nan  # every reference lost
    res = correct_drift(xyz, reference=[1, 2, 3])
    assert res.corrected_nm.shape == xyz.shape and res.drift_nm.shape == (500, 3)
    assert np.isnan(res.corrected_nm[0, 10:20]).all()
    assert any("10 frames have no usable reference" in w for w in res.warnings)
    err = res.corrected_nm[0, :, 1] - tether / 2
    assert np.nanstd(err) < 1.0


def test_one_reference_and_bad_input():
    rng = np.random.default_rng(2)
    x, tether, _ = _field(rng, 300)
    res = correct_drift(x[:2], reference=[1])
    assert np.std(res.corrected_nm[0] - tether) < 1.5
    with pytest.raises(ValueError, match="`reference`"):
        correct_drift(x, reference=[])
    with pytest.raises(ValueError, match="`reference`"):
        correct_drift(x, reference=[1, 9])
    with pytest.raises(ValueError, match="`positions_nm`"):
        correct_drift(x[0], reference=[0])
