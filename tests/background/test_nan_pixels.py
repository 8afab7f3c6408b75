"""NaN pixels (a dead pixel written as NaN, a masked region) are missing data, not poison.

One NaN pixel used to make a whole sparse-median background NaN (cleansing and offsets
took medians over whole images) and a Gaussian spatial mean NaN over whole 64-row
blocks of the banded filter (6 % of a 256 x 256 frame). Now the NaN samples are left
out, only pixels with no finite data at all stay NaN, and the results count the
missing samples.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from camtrack.background import sparse_median, spatial_mean
from camtrack.simulate import camera_stack

# Pixels set to NaN: (frame, row, col); one in the default 20-pixel offset band.
HOLES = ((7, 5, 50), (20, 60, 60), (21, 60, 60), (33, 100, 17))


@pytest.fixture(scope="module")
def clean():
    stack, _ = camera_stack(40, (128, 128), rng=3)
    return stack.astype(np.float32)


@pytest.fixture(scope="module")
def holed(clean):
    s = clean.copy()
    for t, y, x in HOLES:
        s[t, y, x] = np.nan
    s.flags.writeable = False  # never modified by the engine
    return s


# ----------------------------------------------------------------------------- sparse


def _nanmedian_reference(stack: np.ndarray, kernel: int) -> np.ndarray:
    """The median images of consecutive kernels, NaN samples left out (numpy)."""
    return np.stack(
        [np.nanmedian(stack[a : a + kernel], axis=0) for a in range(0, stack.shape[0], kernel)]
    )


def test_sparse_median_leaves_nan_samples_out(holed):
    res = sparse_median(holed, window=10, frac_cleansing=1.0)
    assert np.isfinite(res.images).all()
    assert np.isfinite(res.offsets).all()
    assert np.isfinite(res.expand()).all()
    ref = _nanmedian_reference(holed.astype(np.float64), 10)
    # float32 work on float32 data: the median of 9 or 10 values is one of them or
    # the mean of two (exact in float64, rounded once to float32).
    np.testing.assert_array_equal(res.images, ref.astype(np.float32))
    assert res.n_missing == len(HOLES)


def test_sparse_median_offsets_skip_nan(holed):
    res = sparse_median(holed, window=10, frac_cleansing=1.0)
    band = np.zeros(holed.shape[1:], bool)
    band[:20] = band[-20:] = True
    band[:, :20] = band[:, -20:] = True
    bg = res.images[res.frame_index].astype(np.float64)
    ref = np.nanmedian((holed.astype(np.float64) - bg)[:, band], axis=1)
    # The offsets are medians of float32 differences (rounded once each): 1e-3 ADU
    # is ~100 float32 ulps at these levels, far below the flicker they measure.
    np.testing.assert_allclose(res.offsets, ref, rtol=0, atol=1e-3)


def test_sparse_median_cleansing_ignores_nan(holed, clean):
    # With cleansing active (>= 3 images), NaN pixels must not decide which images
    # are dropped: the same images are kept as without the holes.
    a = sparse_median(holed, window=8)
    b = sparse_median(clean, window=8)
    np.testing.assert_array_equal(a.centers, b.centers)
    assert np.isfinite(a.images).all() and np.isfinite(a.offsets).all()


def test_sparse_median_all_nan_pixel_stays_nan(clean):
    s = clean.copy()
    s[:, 64, 64] = np.nan  # no finite sample at all: nothing to estimate
    res = sparse_median(s, window=10)
    assert np.isnan(res.images[:, 64, 64]).all()
    assert np.isfinite(res.images).sum() == res.images.size - res.images.shape[0]
    assert np.isfinite(res.offsets).all()
    assert res.n_missing == s.shape[0]


def test_sparse_median_nan_dask_branch(holed):
    da = pytest.importorskip("dask.array")
    ref = sparse_median(holed, window=10, frac_cleansing=1.0)
    lazy = sparse_median(da.from_array(holed, chunks=(7, 50, -1)), window=10, frac_cleansing=1.0)  # fmt: skip
    np.testing.assert_array_equal(lazy.images, ref.images)
    np.testing.assert_array_equal(lazy.offsets.compute(), ref.offsets)
    assert lazy.n_missing == ref.n_missing


def test_sparse_median_integer_input_counts_nothing(clean):
    res = sparse_median(clean.astype(np.uint16), window=10)
    assert res.n_missing == 0


# ----------------------------------------------------------------------------- spatial


def _normalized_reference(stack: np.ndarray, radius: float) -> np.ndarray:
    """Masked Gaussian mean in float64: G(x valid) / G(valid), scipy's own filter."""
    valid = np.isfinite(stack)
    sig = (0, radius / 2.0, radius / 2.0)
    num = ndimage.gaussian_filter(np.where(valid, stack, 0.0), sig, mode="reflect")
    den = ndimage.gaussian_filter(valid.astype(np.float64), sig, mode="reflect")
    return num / den


def test_spatial_mean_nan_pixel_does_not_spread(holed, clean):
    res = spatial_mean(holed, radius=7.0)
    bg = np.asarray(res.background)
    assert np.isfinite(bg).all()
    ref = _normalized_reference(holed.astype(np.float64), 7.0)
    # float32 work (banded float32 products): 1e-4 relative at ~100-1100 ADU is
    # ~0.1 ADU at most, far below the ~5 ADU noise of one pixel; a NaN fails.
    np.testing.assert_allclose(bg, ref, rtol=1e-4, atol=0)
    # Frames without a NaN are untouched by the masking: bit for bit the plain filter.
    plain = spatial_mean(clean, radius=7.0).background
    holed_frames = {t for t, _, _ in HOLES}
    for t in range(clean.shape[0]):
        if t not in holed_frames:
            np.testing.assert_array_equal(bg[t], plain[t])
    assert res.n_missing == len(HOLES)
    np.testing.assert_array_equal(np.flatnonzero(res.missing), sorted(holed_frames))


def test_spatial_mean_nan_dask_branch(holed):
    da = pytest.importorskip("dask.array")
    ref = spatial_mean(holed, radius=7.0)
    lazy = spatial_mean(da.from_array(holed, chunks=(9, 50, 70)), radius=7.0)
    got = lazy.background.compute()
    assert np.isfinite(got).all()
    # dask filters tiles with a halo (scipy's support): the same weights, summed in a
    # different order than the banded products, so float32 rounding differs slightly.
    np.testing.assert_allclose(got, ref.background, rtol=1e-5, atol=0)
    assert lazy.n_missing == ref.n_missing
    np.testing.assert_array_equal(lazy.missing.compute(), ref.missing)


def test_spatial_mean_all_nan_neighbourhood_is_nan(clean):
    s = clean[:2].copy()
    s[0, :40, :40] = np.nan  # the corner pixel has no finite pixel within 4 sigma
    bg = spatial_mean(s, radius=4.0).background
    assert np.isnan(bg[0, 0, 0])
    assert np.isnan(bg[0, :32, :32]).all()  # more than the 8 px support inside
    assert np.isfinite(bg[0, 40:]).all() and np.isfinite(bg[0, :, 40:]).all()
    assert np.isfinite(bg[1]).all()
