"""The z fit's compiled loop against its array version."""

from __future__ import annotations

import numpy as np
import pytest

import camtrack.tracking._lookup as lookup
from camtrack.simulate import bead_rois, zsweep
from camtrack.tracking import build_zlut, track_rois
from camtrack.tracking._errors import profile_correlation


@pytest.mark.parametrize("mode", ["precise", "fast"])
def test_compiled_zfit_equals_the_array_version(monkeypatch, mode):
    # Same start (Pearson), steps, match and errors, with and without the bins' noise
    # model, for 0 and several iterations; a profile without finite bins and one with
    # two give NaN in both (their NaN patterns are compared exactly).
    if lookup._zfit_kernel() is None:
        pytest.skip("numba is not installed")
    size = 32
    planes = np.arange(-1000.0, 1001.0, 100.0)
    calib, truth = zsweep(planes, roi_size=size, frames_per_plane=4, rng=5)
    lut = build_zlut(calib, truth.z_nm)
    rng = np.random.default_rng(6)
    n = 60
    z = rng.uniform(-900, 900, n)
    rois, _ = bead_rois(15.5 + rng.uniform(-1, 1, n), 15.5 + rng.uniform(-1, 1, n), z, roi_size=size, rng=7)  # fmt: skip
    m = track_rois(rois, zlut=lut, mode=mode, workers=1).profiles.astype(np.float64)
    m[0] = np.nan
    m[1, 2:] = np.nan
    pvar = np.abs(rng.normal(size=m.shape)) * 1e-4
    corr = profile_correlation(size, m.shape[1], lut.oversample, mode)
    for noise in (None, (pvar, corr)):
        for n_iter in (0, 3):
            a = lookup.zfit(np, m, lut, n_iter, noise=noise)
            with monkeypatch.context() as mp:
                mp.setattr(lookup._zfit_kernel, "compiled", False)
                b = lookup.zfit(np, m, lut, n_iter, noise=noise)
            for u, v in zip(a, b, strict=True):
                np.testing.assert_array_equal(np.isnan(u), np.isnan(v))
                # The error without a noise model subtracts nearly equal sums (chi2).
                np.testing.assert_allclose(u, v, rtol=1e-8, atol=0)
            assert np.isnan(a[0][:2]).all() and np.isfinite(a[0][2:]).all()


def test_weighted_pearson_matches_a_direct_formula():
    # Shared weights (every row: the same finite bins) take the shortcut that computes
    # the references' moments once; mixed weights the general path. Both against the
    # textbook weighted correlation, row by row.
    rng = np.random.default_rng(1)
    m = rng.standard_normal((6, 20))
    ref = rng.standard_normal((9, 20))
    base = rng.random(20)
    shared = np.tile(base, (6, 1))
    mixed = shared.copy()
    mixed[2, :5] = 0.0  # one row leaves five bins out
    for w in (shared, mixed):
        got = lookup.weighted_pearson(np, m, ref, w)
        for i in range(6):
            wi = w[i]
            for j in range(9):
                a = m[i] - np.average(m[i], weights=wi)
                b = ref[j] - np.average(ref[j], weights=wi)
                want = np.sum(wi * a * b) / np.sqrt(np.sum(wi * a * a) * np.sum(wi * b * b))
                assert abs(got[i, j] - want) < 1e-12
