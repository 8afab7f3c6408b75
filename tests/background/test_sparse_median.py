"""sparse_median: median images, cleansing, nearest assignment, offsets, dask, errors."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from camtrack.background import SparseMedianResult, sparse_median

T, Y, X = 200, 48, 56


def _scene(seed=0, obj=True):
    """uint16 stack: a 1000-3000 ADU gradient, 10 ADU noise, 20 ADU flicker per frame,
    and (obj=True) a 500 ADU object parked at the centre during frames 100..119."""
    rng = np.random.default_rng(seed)
    image = 1000.0 + 2000.0 * np.linspace(0, 1, X)[None, :] * np.ones((Y, 1))
    flicker = rng.normal(0.0, 20.0, T)
    stack = image[None] + flicker[:, None, None] + rng.normal(0.0, 10.0, (T, Y, X))
    if obj:
        stack[100:120, 18:30, 20:34] += 500.0
    return np.clip(np.rint(stack), 0, 65535).astype(np.uint16), image, flicker


def test_images_are_medians_of_kernels_and_frames_get_the_nearest():
    stack, _, _ = _scene(obj=False)
    res = sparse_median(stack, window=20, offset_correction=False)
    assert isinstance(res, SparseMedianResult)
    assert res.images.shape == (10, Y, X) and res.images.dtype == np.float32
    for i in range(10):
        ref = np.median(stack[20 * i : 20 * i + 20], axis=0)
        np.testing.assert_array_equal(res.images[i], ref.astype(np.float32))
    np.testing.assert_array_equal(res.centers, 9.5 + 20 * np.arange(10))
    np.testing.assert_array_equal(res.frame_index, np.arange(T) // 20)
    assert res.offsets is None and res.dropped.size == 0
    # values far above 255 survive (never narrowed to 8 bits)
    assert res.images.max() > 2500


def test_cleansing_drops_the_image_with_an_object():
    stack, _, _ = _scene()
    res = sparse_median(stack, window=20)
    np.testing.assert_array_equal(res.dropped, [109.5])
    assert res.images.shape[0] == 9
    # frames of the dropped segment use the neighbouring images (ties go earlier)
    assert set(res.centers[res.frame_index[100:120]]) == {89.5, 129.5}
    background = res.expand()
    assert background[110, 18:30, 20:34].mean() < stack[0, 18:30, 20:34].mean() + 100


def test_frac_cleansing_one_keeps_all_and_caps_the_drops():
    stack, _, _ = _scene()
    assert sparse_median(stack, window=20, frac_cleansing=1).images.shape[0] == 10
    # 10 images: 1 - 0.95 allows floor(0.5) = 0 drops
    assert sparse_median(stack, window=20, frac_cleansing=0.95).dropped.size == 0
    # an explicit threshold above the object's 500 ADU contrast finds nothing
    assert sparse_median(stack, window=20, thresh_cleansing=600).dropped.size == 0
    assert sparse_median(stack, window=20, thresh_cleansing=100).dropped.size == 1


def test_offsets_recover_a_known_flicker():
    stack, image, flicker = _scene()
    res = sparse_median(stack, window=20)
    # Within one background image's frames, offset - flicker is that image's own
    # level (a constant) plus errors of ~0.5 ADU (the median of ~2600 border pixels
    # with ~10.4 ADU noise, 0.25 ADU, plus each frame's own share in the 20-frame
    # median image), against 20 ADU of flicker. Segment 5 (dropped) mixes two images.
    resid = (res.offsets - flicker).reshape(10, 20)
    assert np.delete(resid.std(axis=1), 5).max() < 1.0
    # The expanded background follows the flicker: its level error (which includes
    # each image's mean-vs-median difference, ~0.5 ADU) is far below the flicker.
    level = (res.expand() - image[None]).mean(axis=(1, 2))
    assert np.std(level - flicker) < 1.0
    level_no = (res.expand(offsets=False) - image[None]).mean(axis=(1, 2))
    assert np.std(level_no - flicker) > 10.0


def test_offset_region_slices_and_mask():
    stack, _, _ = _scene(obj=False)
    region = (slice(0, 10), slice(None))
    mask = np.zeros((Y, X), dtype=bool)
    mask[region] = True
    a = sparse_median(stack, window=50, offset_region=region)
    b = sparse_median(stack, window=50, offset_region=mask)
    np.testing.assert_array_equal(a.offsets, b.offsets)


def test_split_from_fs_hz_and_large_window():
    stack, _, _ = _scene(obj=False)
    res = sparse_median(stack, window=40, fs_hz=50.0, split_time=0.4)
    # split = 20 frames: 10 segments; kernels of 40 centred on each, shifted inside
    assert res.images.shape[0] == 10
    np.testing.assert_array_equal(res.images[0], np.median(stack[0:40], axis=0).astype(np.float32))
    whole = sparse_median(stack, window=1000, offset_correction=False)
    assert whole.images.shape[0] == 1
    np.testing.assert_array_equal(whole.images[0], np.median(stack, axis=0).astype(np.float32))


def test_dask_equals_numpy_and_expand_is_lazy():
    stack, _, _ = _scene(seed=3)
    d = da.from_array(stack, chunks=(17, 25, 19))
    ref = sparse_median(stack, window=20)
    res = sparse_median(d, window=20)
    np.testing.assert_array_equal(res.images, ref.images)
    np.testing.assert_array_equal(res.frame_index, ref.frame_index)
    assert isinstance(res.offsets, da.Array)
    np.testing.assert_allclose(res.offsets.compute(), ref.offsets)
    expanded = res.expand()
    assert isinstance(expanded, da.Array) and expanded.shape == stack.shape
    np.testing.assert_allclose(expanded.compute(), ref.expand())


def test_bad_input_messages():
    stack, _, _ = _scene(obj=False)
    with pytest.raises(ValueError, match=r"either `split` .* not both"):
        sparse_median(stack, split=10, fs_hz=100.0)
    with pytest.raises(ValueError, match=r"`frac_cleansing` must lie in \[0.0, 1.0\]; got 1.5"):
        sparse_median(stack, frac_cleansing=1.5)
    with pytest.raises(ValueError, match=r"`thresh_cleansing` must be finite and >= 0"):
        sparse_median(stack, thresh_cleansing=-1)
    with pytest.raises(ValueError, match=r"`window` must be >= 1; got 0"):
        sparse_median(stack, window=0)
    with pytest.raises(ValueError, match=r"`offset_region` must be None"):
        sparse_median(stack, offset_region=np.ones((3, 3), dtype=bool))
    with pytest.raises(ValueError, match=r"`offset_region` selects no pixel"):
        sparse_median(stack, offset_region=(slice(0, 0), slice(None)))
    with pytest.raises(ValueError, match=r"`stack` must be 3-D"):
        sparse_median(stack[0])
