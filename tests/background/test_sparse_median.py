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


# ------------------------------------------------------- exact integer paths (#18)

INT_DTYPES = ["u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8"]


def _int_stack(dtype, shape, seed=0, spread=40):
    """Camera-like samples of ``dtype`` around mid-range, plus a few wild pixels that
    span the dtype's whole range (a hot pixel, a cosmic ray)."""
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    # 64-bit values stay below 2**50: numpy's float64 median is exact there
    lo, hi = max(int(info.min), -(2**50)), min(int(info.max), 2**50)
    centre = (lo + hi) // 2
    half = min(spread, (hi - lo) // 4)
    stack = centre + rng.integers(-half, half + 1, shape)
    stack[:, 1, 2] = rng.integers(lo // 2, hi // 2, shape[0])
    stack[::3, -1, -1] = hi
    stack[1::3, -1, -1] = lo
    return stack.astype(dtype)


def _reference(stack, window, split, region):
    """sparse_median's images and offsets from numpy.median, frame by frame."""
    from camtrack.background._sparse import _kernel_windows

    n = stack.shape[0]
    work = np.float64 if np.dtype(stack.dtype).itemsize >= 4 else np.float32
    windows = _kernel_windows(n, min(window, n), split)
    images = np.stack([np.median(stack[w], axis=0) for w in windows]).astype(work)
    return images, region


@pytest.mark.parametrize("dtype", INT_DTYPES)
@pytest.mark.parametrize("window", [1, 2, 7, 20, 33])
def test_integer_images_and_offsets_equal_numpy(dtype, window):
    stack = _int_stack(dtype, (47, 13, 29), seed=window)
    region = np.zeros((13, 29), dtype=bool)
    region[:3] = region[-2:] = True
    region[:, :2] = True
    res = sparse_median(stack, window=window, frac_cleansing=1.0, offset_region=region)
    ref, _ = _reference(stack, window, min(window, 47), region)
    np.testing.assert_array_equal(res.images, ref)
    assert res.images.dtype == ref.dtype and res.n_missing == 0
    # offsets: numpy's median of the float differences over the region, per frame
    bgs = res.images[res.frame_index]
    diff = stack.astype(res.images.dtype) - bgs
    expect = np.median(diff[:, region], axis=1).astype(res.images.dtype)
    np.testing.assert_array_equal(res.offsets, expect)


@pytest.mark.parametrize("dtype", ["u1", "i2", "u2", "i4", "u4"])
@pytest.mark.parametrize("shape", [(1, 1, 1), (2, 3, 1), (9, 1, 300), (31, 5, 517)])
def test_window_median_kernel_odd_shapes(dtype, shape):
    from camtrack.background import _sparsecount

    stack = _int_stack(dtype, (shape[0], max(shape[1], 2), max(shape[2], 3)))
    stack = stack[:, : shape[1], : shape[2]]
    if not _sparsecount.use_bisection(stack):
        pytest.skip("numba not installed")
    work = np.float64 if np.dtype(dtype).itemsize >= 4 else np.float32
    # a strided view (every other column) as well as the plain stack
    for data in (stack, stack[:, :, ::2], stack[:, ::-1]):
        out = np.full(data.shape[1:], np.nan, dtype=work)
        _sparsecount.window_median(data, out)
        np.testing.assert_array_equal(out, np.median(data, axis=0).astype(work))


@pytest.mark.parametrize("window", [10, 25])
def test_numba_and_numpy_paths_agree(monkeypatch, window):
    from camtrack import _select

    stack, _, _ = _scene(seed=5)
    stack[:, 0, 0] = 65535  # a hot pixel in the offset band
    stack[::2, 1, 1] = 0
    a = sparse_median(stack, window=window, offset_region=(slice(0, 6), slice(None)))
    monkeypatch.setattr(_select, "HAVE_NUMBA", False)
    b = sparse_median(stack, window=window, offset_region=(slice(0, 6), slice(None)))
    for name in ("images", "offsets", "frame_index", "centers", "dropped"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    # the object (frames 100..119) is found either way: in the images over it
    assert a.dropped.size >= 1 and np.all((a.dropped > 90) & (a.dropped < 130))


@pytest.mark.parametrize("thresh", [0.0, 0.5, 3.0, 40.0])
@pytest.mark.parametrize("scale", [1.0, 0.5, 0.125, -3.25])
def test_integer_cleansing_counts_equal_the_float_ones(thresh, scale):
    from camtrack.background import _sparse, _sparseclean

    rng = np.random.default_rng(int(10 * thresh) + 7)
    for n, p in [(3, 1), (4, 7), (8, 1001), (11, 4096)]:
        images = (200 + rng.integers(-9, 10, (n, p)) * 0.5) * scale
        images[n // 2, : p // 3] += 60 * scale  # an object in one image
        images = images.astype(np.float32)
        grid = _sparseclean.on_grid(images)
        if grid is None:
            pytest.skip("numba not installed")
        got = _sparseclean.cleanse_counts(*grid, thresh, _sparse._auto_threshold)
        want = _sparse._cleanse_counts_float(images.astype(np.float64), thresh)
        np.testing.assert_array_equal(got, want)
    # off the grid (a float stack's images): the float path
    assert _sparseclean.on_grid(np.array([[0.1, 0.2]], np.float32)) is None
    assert _sparseclean.on_grid(np.array([[np.nan, 1.0]])) is None


def test_offsets_counted_with_a_wide_range_equal_numpy():
    from camtrack.background import _sparse, _sparsecount

    rng = np.random.default_rng(11)
    stack = (1000 + rng.integers(-30, 31, (64, 40, 40))).astype(np.uint16)
    stack[:, 0, :5] = rng.integers(0, 65536, (64, 5))  # wild pixels in the region
    images = np.stack([np.median(stack[i : i + 16], axis=0) for i in (0, 16, 32, 48)])
    images = images.astype(np.float32)
    idx = np.repeat(np.arange(4), 16)
    for region in (np.ones((40, 40), bool), _sparse._offset_mask(None, (40, 40))):
        plan = _sparsecount.offset_plan(stack, images, region)
        if plan is None:
            pytest.skip("numba not installed")
        for frames in (stack, stack[:, :, ::-1][:, :, ::-1], stack[5:9]):
            sub = idx[: frames.shape[0]] if frames.shape[0] == 64 else idx[5:9]
            got = _sparsecount.offsets_counted(frames, sub, images, plan, np.float32)
            diff = frames.astype(np.float32) - images[sub]
            np.testing.assert_array_equal(got, np.median(diff[:, region], axis=1))


def test_offsets_counted_declines_images_off_the_half_integer_grid():
    from camtrack.background import _sparse, _sparsecount

    stack = _int_stack("u2", (12, 9, 11), seed=4)
    images = np.stack([np.median(stack[:6], axis=0), np.median(stack[6:], axis=0)])
    region = np.ones((9, 11), dtype=bool)
    idx = np.repeat([0, 1], 6)
    plan = _sparsecount.offset_plan(stack, images, region)
    if plan is None:
        pytest.skip("numba not installed")
    assert _sparsecount.offsets_counted(stack, idx, images + 0.25, plan, np.float64) is None
    # the block function then takes the float path, with numpy's values
    got = _sparse._offsets_block(stack, idx, images + 0.25, region, np.float64)
    want = np.median(stack.astype(np.float64)[:, region] - (images + 0.25)[idx][:, region], axis=1)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", INT_DTYPES)
@pytest.mark.parametrize("window", [4, 7, 13])
def test_dask_integer_images_equal_numpy(dtype, window):
    """Lazy integer input takes the numpy path's bisection kernel, read chunk by chunk:
    the same images, bit for bit, on odd shapes and odd chunks (also across windows)."""
    stack = _int_stack(dtype, (41, 11, 23), seed=window + 3)
    ref = sparse_median(stack, window=window, frac_cleansing=1.0, offset_correction=False)
    for chunks in [(5, 4, 7), (41, 11, 23), (1, -1, -1), (17, 3, -1)]:
        res = sparse_median(
            da.from_array(stack, chunks=chunks),
            window=window,
            frac_cleansing=1.0,
            offset_correction=False,
        )
        np.testing.assert_array_equal(res.images, ref.images)
        assert isinstance(res.images, np.ndarray) and res.images.dtype == ref.images.dtype
        assert res.n_missing == 0


def test_dask_windows_read_in_bands_and_every_scheduler(monkeypatch):
    """A window larger than the band budget is read in row bands, with the same values;
    the synchronous scheduler and the numpy fallback (no numba, still one pass) agree
    too."""
    from camtrack import _select
    from camtrack.background import _sparse, _sparselazy

    stack, _, _ = _scene(seed=8)
    ref = sparse_median(stack, window=30, split=17)
    d = da.from_array(stack, chunks=(9, 13, -1))
    # about 3 rows of 30 frames per band: 16 bands per window
    monkeypatch.setattr(_sparselazy, "WINDOW_BYTES", 30 * X * 2 * 3)
    assert _sparse._one_pass(d)
    for scheduler in (None, "sync"):
        res = sparse_median(d, window=30, split=17, scheduler=scheduler)
        for name in ("images", "frame_index", "centers", "dropped"):
            np.testing.assert_array_equal(getattr(res, name), getattr(ref, name), err_msg=name)
        np.testing.assert_array_equal(res.offsets.compute(), ref.offsets)
    monkeypatch.setattr(_select, "HAVE_NUMBA", False)
    assert _sparse._one_pass(d)
    res = sparse_median(d, window=30, split=17)
    np.testing.assert_array_equal(res.images, ref.images)
    np.testing.assert_array_equal(res.offsets.compute(), ref.offsets)
