"""float16 stacks: temporal quantiles are formed in float32, not in float16.

float16 has an 11-bit significand: at ~1000 ADU its spacing is 0.5 ADU, at ~3000 it is
2 ADU, so averaging the middle pair of an even number of frames (or interpolating a
percentile) in float16 rounds the result by up to a spacing. The mean of two float16
values needs at most 12 significant bits, so float32 holds it exactly: the result must
equal numpy's float64 median of the same values, cast to float32, bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest

from camtrack.background import temporal_median, temporal_percentile


@pytest.fixture(scope="module")
def half_stack():
    rng = np.random.default_rng(0)
    # Levels up to ~3000 ADU: float16 spacing 2 there, the "up to 2 ADU off".
    level = np.linspace(200.0, 3000.0, 40 * 40).reshape(40, 40)
    return (level + rng.normal(0.0, 30.0, (6, 40, 40))).astype(np.float16)


def test_float16_even_frames_median_in_float32(half_stack):
    got = temporal_median(half_stack)
    ref = np.median(half_stack.astype(np.float64), axis=0)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, ref.astype(np.float32))


def test_float16_median_dask_branch(half_stack):
    da = pytest.importorskip("dask.array")
    lazy = temporal_median(da.from_array(half_stack, chunks=(6, 17, 40)))
    assert lazy.dtype == np.float32
    ref = np.median(half_stack.astype(np.float64), axis=0)
    np.testing.assert_array_equal(lazy.compute(), ref.astype(np.float32))


def test_float16_percentile_interpolates_in_float32(half_stack):
    q = [10.0, 25.0, 50.0, 90.0]
    got = temporal_percentile(half_stack, q)
    ref = np.percentile(half_stack.astype(np.float64), q, axis=0)
    assert got.dtype == np.float32
    # float32 rounding of the interpolated value only: half a float32 ulp at 3000 is
    # 1.2e-4 ADU, against float16's 1-2 ADU.
    np.testing.assert_allclose(got, ref, rtol=0, atol=2.5e-4)
