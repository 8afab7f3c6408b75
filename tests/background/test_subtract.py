"""subtract: signed float output, offsets, clipping, dask laziness, errors."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from camtrack.background import subtract, temporal_median


def _stack():
    return np.random.default_rng(9).integers(0, 5000, (6, 7, 5)).astype(np.uint16)


def test_uint16_becomes_signed_float_without_wrapping():
    stack = _stack()
    before = stack.copy()
    bg = np.full((7, 5), 2500.0, dtype=np.float32)
    out = subtract(stack, bg)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, stack.astype(np.float64) - 2500.0)
    assert out.min() < 0
    np.testing.assert_array_equal(stack, before)


def test_float64_background_promotes():
    out = subtract(_stack(), np.zeros((7, 5)))
    assert out.dtype == np.float64


def test_per_frame_background_offsets_and_clip():
    stack = _stack()
    bg = np.full(stack.shape, 2000.0, dtype=np.float32)
    offsets = np.arange(6, dtype=np.float32) * 10.0
    out = subtract(stack, bg, offsets=offsets)
    np.testing.assert_allclose(out, stack - 2000.0 - offsets[:, None, None])
    clipped = subtract(stack, bg, offsets=offsets, clip=True)
    assert clipped.dtype == np.float32 and clipped.min() == 0.0
    np.testing.assert_allclose(clipped, np.maximum(out, 0))


def test_dask_is_lazy_and_equal():
    stack = _stack()
    d = da.from_array(stack, chunks=(4, 3, 2))
    bg = temporal_median(d)
    out = subtract(d, bg, offsets=np.ones(6), clip=True)
    assert isinstance(out, da.Array)
    np.testing.assert_allclose(
        out.compute(), subtract(stack, temporal_median(stack), offsets=np.ones(6), clip=True)
    )


def test_bad_input_messages():
    stack = _stack()
    with pytest.raises(ValueError, match=r"`background` must have shape \(7, 5\) .* got \(5, 7\)"):
        subtract(stack, np.zeros((5, 7)))
    with pytest.raises(
        ValueError, match=r"`offsets` must have shape \(6,\), one per frame; got \(5,\)"
    ):
        subtract(stack, np.zeros((7, 5)), offsets=np.zeros(5))
    with pytest.raises(TypeError, match=r"`background` must be an array"):
        subtract(stack, 3.0)
