"""frame_stats / iter_frame_stats: numpy references, partials, progress, dask, errors."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from camtrack.background import FrameStatsPartial, frame_stats, iter_frame_stats

REF = {"min": np.min, "max": np.max, "mean": np.mean, "std": np.std}


def _stack(dtype=np.uint16, shape=(37, 21, 13), seed=4):
    return np.random.default_rng(seed).integers(200, 60000, shape).astype(dtype)


@pytest.mark.parametrize("stat", ["min", "max", "mean", "std"])
@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_stats_equal_numpy(stat, dtype):
    stack = _stack(dtype)
    out = frame_stats(stack, stat)
    ref = REF[stat](stack.astype(np.float64), axis=0)
    if stat in ("min", "max"):
        assert out.dtype == dtype
        np.testing.assert_array_equal(out, ref)
    else:
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, ref, rtol=1e-6)
    d = frame_stats(da.from_array(stack, chunks=(5, 8, 6)), stat)
    assert isinstance(d, da.Array)
    np.testing.assert_allclose(d.compute(), ref, rtol=1e-6)


def test_std_is_accurate_with_a_large_offset():
    # mean 1e4 against std 0.1: naive float32 sums of squares would cancel.
    stack = (10000.0 + np.random.default_rng(0).normal(0, 0.1, (64, 8, 8))).astype(np.float32)
    np.testing.assert_allclose(
        frame_stats(stack, "std"), stack.astype(np.float64).std(axis=0), rtol=1e-3
    )


def test_percentile_equals_numpy_numpy_and_dask():
    stack = _stack()
    ref = np.percentile(stack, [5, 95], axis=0)
    np.testing.assert_allclose(frame_stats(stack, "percentile", q=[5, 95]), ref, rtol=1e-6)
    d = frame_stats(da.from_array(stack, chunks=(6, 5, 7)), "percentile", q=[5, 95])
    np.testing.assert_allclose(d.compute(), ref, rtol=1e-6)


@pytest.mark.parametrize("stat", ["min", "max", "mean", "std"])
def test_partials_are_exact_for_frames_done(stat):
    stack = _stack()
    parts = list(iter_frame_stats(stack, stat, 4))
    assert [p.frames_done for p in parts] == [9, 18, 28, 37]
    for p in parts:
        assert isinstance(p, FrameStatsPartial) and p.exact and p.n_frames == 37
        ref = REF[stat](stack[: p.frames_done].astype(np.float64), axis=0)
        np.testing.assert_allclose(p.image, ref, rtol=1e-6)
    lazy = list(iter_frame_stats(da.from_array(stack, chunks=(4, 21, 13)), stat, 4))
    np.testing.assert_allclose(lazy[-1].image, parts[-1].image, rtol=1e-6)


def test_percentile_partials_estimate_then_exact():
    rng = np.random.default_rng(1)
    stack = rng.normal(1000.0, 10.0, (80, 16, 16)).astype(np.float32)
    parts = list(iter_frame_stats(stack, "percentile", 4, q=20))
    assert [p.exact for p in parts] == [True, False, False, True]
    np.testing.assert_allclose(parts[-1].image, np.percentile(stack, 20, axis=0), rtol=1e-6)
    # estimates: the mean of per-chunk percentiles of 20 frames each, within a few
    # noise sigmas of the percentile of the frames so far
    ref = np.percentile(stack[:40], 20, axis=0)
    assert np.abs(parts[1].image - ref).mean() < 5.0


def test_progress_protocol():
    totals = []

    def progress(iterable, total):
        totals.append(total)
        return iterable

    frame_stats(_stack(), "mean", progress=progress)
    frame_stats(_stack(), "percentile", q=50, progress=progress)
    assert len(totals) == 2 and all(t >= 1 for t in totals)


def test_bad_input_messages():
    stack = _stack()
    with pytest.raises(ValueError, match=r"`stat` must be one of 'min', .* got 'median'"):
        frame_stats(stack, "median")
    with pytest.raises(ValueError, match=r"`q` is required with stat='percentile'"):
        frame_stats(stack, "percentile")
    with pytest.raises(ValueError, match=r"`q` is used only with stat='percentile'"):
        frame_stats(stack, "mean", q=5)
    with pytest.raises(ValueError, match=r"`n_chunks` must be >= 1; got 0"):
        list(iter_frame_stats(stack, "mean", 0))
    with pytest.raises(ValueError, match=r"`stack` must be 3-D"):
        frame_stats(stack[0], "max")
