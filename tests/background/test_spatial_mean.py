"""spatial_mean: scipy reference, exact noise factor against measured noise, dask, errors."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import scipy.ndimage as ndi

from camtrack.background import SpatialMeanResult, spatial_mean, spatial_noise_correction


def _stack(dtype=np.uint16, shape=(5, 61, 47), seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(100, 4000, shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.uint16, np.float32, np.float64, np.int32])
@pytest.mark.parametrize("radius", [3.0, 7.0, (3.0, 9.0)])
def test_matches_scipy_per_frame(dtype, radius):
    stack = _stack(dtype)
    before = stack.copy()
    res = spatial_mean(stack, radius)
    ry, rx = np.broadcast_to(radius, 2)
    ref = np.stack([ndi.gaussian_filter(f.astype(np.float64), (ry / 2, rx / 2)) for f in stack])
    assert isinstance(res, SpatialMeanResult)
    assert res.sigma == (ry / 2, rx / 2)
    expected = np.float64 if dtype in (np.float64, np.int32) else np.float32
    assert res.background.dtype == expected
    # float32 output of values up to 4000: relative rounding ~1e-7.
    np.testing.assert_allclose(res.background, ref, rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(stack, before)


@pytest.mark.parametrize("radius", [3.0, 7.0, (3.0, 9.0), (8.0, 2.5)])
def test_noise_correction_matches_measured_white_noise(radius):
    # std(w - k*w) / std(w) over 4 x 344^2 interior pixels: the std estimate itself is
    # good to ~0.1 %, so 1 % separates the exact factor from approximations (the
    # product of two 1-D factors gives 0.853 at radius 7 where the truth is 0.990).
    rng = np.random.default_rng(42)
    noise = rng.standard_normal((4, 384, 384))
    res = spatial_mean(noise, radius)
    edge = 20  # beyond the kernel support (4 sigma = 18 px at radius 9)
    resid = (noise - res.background)[:, edge:-edge, edge:-edge]
    measured = resid.std() / noise[:, edge:-edge, edge:-edge].std()
    assert res.noise_correction == pytest.approx(measured, rel=0.01)
    assert spatial_noise_correction(radius) == res.noise_correction


def test_noise_correction_known_value_and_impulse_response():
    assert spatial_noise_correction(7.0) == pytest.approx(0.990, abs=5e-4)
    # Exact from the kernel scipy really applies: filter an impulse, sum (delta - k)^2.
    impulse = np.zeros((1, 101, 101))
    impulse[0, 50, 50] = 1.0
    k = spatial_mean(impulse, (5.0, 3.0)).background[0]
    delta = impulse[0]
    exact = np.sqrt(np.sum((delta - k) ** 2))
    assert spatial_noise_correction((5.0, 3.0)) == pytest.approx(exact, rel=1e-12)


def test_dask_odd_chunks_equal_numpy_and_stay_lazy():
    stack = _stack(np.uint16, (7, 53, 41))
    d = da.from_array(stack, chunks=(3, 11, 9))  # chunks smaller than the 18 px halo
    res = spatial_mean(d, (3.0, 9.0))
    assert isinstance(res.background, da.Array)
    assert res.background.dtype == np.float32
    np.testing.assert_allclose(
        res.background.compute(), spatial_mean(stack, (3.0, 9.0)).background, rtol=1e-6
    )


def test_progress_is_called_per_block():
    calls = []

    def progress(iterable, total):
        calls.append(total)
        yield from iterable

    spatial_mean(_stack(shape=(20, 16, 16)), 3, progress=progress)
    assert calls == [3]


def test_bad_input_messages():
    with pytest.raises(
        ValueError, match=r"`stack` must be 3-D .*got shape \(16, 16\).*image\[None\]"
    ):
        spatial_mean(np.zeros((16, 16)))
    with pytest.raises(ValueError, match=r"`radius` must be finite and > 0; got 0"):
        spatial_mean(_stack(), 0)
    with pytest.raises(ValueError, match=r"`radius\[1\]` must be finite and > 0; got -2"):
        spatial_mean(_stack(), (3, -2))
    with pytest.raises(ValueError, match=r"`radius` must be one number or a pair"):
        spatial_mean(_stack(), (1, 2, 3))
    with pytest.raises(ValueError, match=r"`truncate` must be finite and > 0"):
        spatial_mean(_stack(), 3, truncate=0)
    with pytest.raises(TypeError, match=r"`stack` must have an integer or float dtype"):
        spatial_mean(np.zeros((2, 4, 4), dtype=bool))


def test_blas_thread_limit_is_restored_and_nests():
    from camtrack import _outofcore

    before = _outofcore.blas_threads()
    if not before:
        pytest.skip("no BLAS library under threadpoolctl's control")
    with _outofcore.single_threaded_blas() as outer:
        assert outer and set(_outofcore.blas_threads()) == {1}
        with _outofcore.single_threaded_blas():
            assert set(_outofcore.blas_threads()) == {1}
        # the inner exit does not restore while outer holds it
        assert set(_outofcore.blas_threads()) == {1}
    assert _outofcore.blas_threads() == before
    spatial_mean(_stack(shape=(20, 40, 40)), 3)
    assert _outofcore.blas_threads() == before


@pytest.mark.parametrize("shape", [(3, 1, 200), (2, 150, 1), (9, 130, 70)])
def test_blocked_operator_matches_scipy_on_thin_and_multi_block_frames(shape):
    # Frames thinner than the kernel support, and more than one 64-row/column block.
    stack = _stack(np.float64, shape)
    ref = np.stack([ndi.gaussian_filter(f, (3.5, 2.0)) for f in stack])
    np.testing.assert_allclose(spatial_mean(stack, (7.0, 4.0)).background, ref, rtol=1e-12)
