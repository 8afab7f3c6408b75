"""rolling_median of 8/16-bit integer stacks by a sliding histogram: equal to numpy.

The compiled kernel (numba) must equal a naive per-frame numpy median and the
comparator networks it replaces (the path without numba), on every 8/16-bit dtype,
odd shapes, odd dask chunks, frame-chunked dask (time blocks), narrow and full ranges.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from camtrack import _select
from camtrack.background import _slidehist, rolling_median

SMALL_INTS = [np.uint8, np.int8, np.uint16, np.int16]


def _naive(stack, window):
    n = stack.shape[0]
    out = np.empty(stack.shape, dtype=np.float64)
    for t in range(n):
        start = min(max(t - window // 2, 0), n - window)
        out[t] = np.median(stack[start : start + window], axis=0)
    return out.astype(np.float32)


def _ints(dtype, shape, kind, seed=0):
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    if kind == "full":
        return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    mid = (int(info.min) + int(info.max)) // 2
    out = np.asarray(mid - 20, dtype=dtype) + rng.poisson(20.0, shape).astype(dtype)
    if kind == "bimodal":  # a blinking object: the median jumps across the range
        on = (np.arange(shape[0]) // 7) % 2 == 1
        out[on] = info.max - out[on] + info.min
    return out


@pytest.fixture(params=["numba", "networks"])
def path(request, monkeypatch):
    if request.param == "numba":
        if not _select.HAVE_NUMBA:
            pytest.skip("numba not installed")
    else:
        monkeypatch.setattr(_select, "HAVE_NUMBA", False)
    return request.param


@pytest.mark.parametrize("dtype", SMALL_INTS)
@pytest.mark.parametrize("kind", ["narrow", "full", "bimodal"])
@pytest.mark.parametrize(("n_frames", "window"), [(1, 1), (9, 1), (9, 9), (10, 9), (40, 7)])
def test_matches_naive_every_small_int(path, dtype, kind, n_frames, window):
    stack = _ints(dtype, (n_frames, 5, 11), kind, seed=window)
    before = stack.copy()
    out = rolling_median(stack, window)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, _naive(stack, window))
    np.testing.assert_array_equal(stack, before)


@pytest.mark.skipif(not _select.HAVE_NUMBA, reason="numba not installed")
def test_small_ints_use_the_sliding_histogram():
    assert _slidehist.use_sliding(np.zeros((3, 2, 2), np.uint16))
    assert not _slidehist.use_sliding(np.zeros((3, 2, 2), np.int32))
    assert not _slidehist.use_sliding(np.zeros((3, 2, 2), np.float32))


def test_kernel_and_networks_agree_on_a_camera_like_stack(monkeypatch):
    rng = np.random.default_rng(4)
    stack = (100 + rng.poisson(100.0, (130, 21, 37))).astype(np.uint16)
    stack[rng.random(stack.shape) < 0.01] = 65535  # hot samples: a wide range
    counted = rolling_median(stack, 51)
    monkeypatch.setattr(_select, "HAVE_NUMBA", False)
    np.testing.assert_array_equal(rolling_median(stack, 51), counted)


def test_strided_input_and_output_views(path):
    base = _ints(np.int16, (30, 8, 20), "full", seed=3)
    view = base[:, 1:7, ::2]  # strided columns: copied, rows cut: a flat span
    np.testing.assert_array_equal(rolling_median(view, 5), _naive(view, 5))
    if path == "numba":
        out = np.full((30, 8, 20), -1.0, np.float32)
        starts = np.clip(np.arange(30) - 2, 0, 25)
        _slidehist.rolling_median_counted(base[:, 1:7], 5, starts, out[:, 1:7])
        np.testing.assert_array_equal(out[:, 1:7], _naive(base[:, 1:7], 5))
        assert np.all(out[:, [0, 7]] == -1.0)  # nothing written outside the view
        _slidehist.rolling_median_counted(base[:, :, ::2], 5, starts, out[:, :, ::2])
        np.testing.assert_array_equal(out[:, :, ::2], _naive(base[:, :, ::2], 5))


@pytest.mark.parametrize("dtype", [np.uint8, np.int16])
def test_dask_odd_chunks_and_time_blocks_equal_naive(path, monkeypatch, dtype):
    from camtrack.background import _rolling

    stack = _ints(dtype, (37, 13, 11), "narrow", seed=5)
    lazy = rolling_median(da.from_array(stack, chunks=(6, 5, 4)), 7)
    assert isinstance(lazy, da.Array)
    np.testing.assert_array_equal(lazy.compute(), _naive(stack, 7))
    # whole-frame chunks: processed by blocks of frames, each with its window starts
    monkeypatch.setattr(_rolling, "TILE_BYTES", 13 * 11 * 6 * 10)
    frames = rolling_median(da.from_array(stack, chunks=(5, 13, 11)), 7)
    np.testing.assert_array_equal(frames.compute(), _naive(stack, 7))
