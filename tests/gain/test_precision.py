"""Working precision of the gain kernels: large ADU values must not be rounded.

float32 holds every integer up to 2**24 and rounds above it (to multiples of 2 ADU at
2**24, of 32 ADU at 2**28), which is more than the noise being measured. An offset
added to a stack changes neither its noise nor its gain, so every method must give the
same e-/ADU with and without it: the kernels pick float64 where float32 cannot hold the
data (integers beyond 2**24, float64 input).
"""

from __future__ import annotations

import numpy as np
import pytest

from camtrack._median import median_mad
from camtrack._outofcore import fitted_work_dtype
from camtrack.gain import estimate_gain
from camtrack.gain._kernels import moment_sums
from camtrack.simulate import camera_stack

METHODS = ("median", "meanvar", "diff", "robust")
OFFSETS = (2**24, 2**26, 2**28)


@pytest.fixture(scope="module")
def stack():
    s, _ = camera_stack(60, (96, 96), rng=0)
    return s


@pytest.fixture(scope="module")
def reference(stack):
    return {m: estimate_gain(stack, method=m).e_per_adu for m in METHODS}


# The shifted data are exact in float64, so median and MAD are identical and the
# moment sums differ only by float64 rounding of the shifted mean (~1e-16 x 2**28
# = 3e-8 ADU); "robust" fits its block noise model on levels relative to the
# stack's minimum, so it sees the same numbers too. Measured: at most 3e-9
# relative; 1e-6 allows that and fails at the old errors (2 % to 44 %, or an error).
TOL = 1e-6


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("offset", OFFSETS, ids=lambda k: f"2^{int(np.log2(k))}")
def test_offset_leaves_gain_unchanged(stack, reference, method, offset):
    shifted = stack.astype(np.uint32) + np.uint32(offset)
    got = estimate_gain(shifted, method=method).e_per_adu
    assert got == pytest.approx(reference[method], rel=TOL)


@pytest.mark.parametrize("method", ["median", "meanvar"])
def test_float64_input_with_large_offset(stack, reference, method):
    shifted = stack.astype(np.float64) + 2.0**28
    got = estimate_gain(shifted, method=method).e_per_adu
    assert got == pytest.approx(reference[method], rel=TOL)


@pytest.mark.parametrize("method", METHODS)
def test_dask_branch_large_offset(stack, reference, method):
    da = pytest.importorskip("dask.array")
    shifted = da.from_array(stack.astype(np.int64) + 2**28, chunks=(17, 50, -1))
    got = estimate_gain(shifted, method=method).e_per_adu
    assert got == pytest.approx(reference[method], rel=TOL)


def test_work_dtype_follows_the_data_range():
    assert fitted_work_dtype(np, np.zeros((2, 2), np.uint16)) == np.float32
    assert fitted_work_dtype(np, np.zeros((2, 2), np.float16)) == np.float32
    assert fitted_work_dtype(np, np.zeros((2, 2), np.float32)) == np.float32
    assert fitted_work_dtype(np, np.zeros((2, 2), np.float64)) == np.float64
    # Wide integers: float32 while every value is exact in it, float64 beyond 2**24.
    assert fitted_work_dtype(np, np.full((2, 2), 2**24, np.uint32)) == np.float32
    assert fitted_work_dtype(np, np.full((2, 2), 2**24 + 1, np.uint32)) == np.float64
    assert fitted_work_dtype(np, np.full((2, 2), -(2**24) - 1, np.int64)) == np.float64


def test_kernels_exact_against_numpy_above_2_24():
    rng = np.random.default_rng(1)
    block = (2**28 + rng.integers(0, 50, (20, 4, 5))).astype(np.int64)
    med, mad = median_mad(np, block)
    ref_med = np.median(block, axis=0)
    np.testing.assert_array_equal(med, ref_med)
    np.testing.assert_array_equal(mad, np.median(np.abs(block - ref_med), axis=0))
    sums = moment_sums(np, block, 20)
    np.testing.assert_allclose(sums["mean"], block.mean(axis=0), rtol=0, atol=1e-6)
    m2 = ((block - block.mean(axis=0)) ** 2).sum(axis=0)
    np.testing.assert_allclose(sums["m2"], m2, rtol=1e-12)
