"""sparse_median on dask input in one pass over the frames (#18): the window medians and
the per-frame offsets from the same reads, bit for bit the numpy path's values."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from camtrack.background import _sparselazy, sparse_median

da = pytest.importorskip("dask.array")

INT_DTYPES = ["u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8"]


def _stack(dtype, shape, seed=0, obj=None):
    """Camera-like samples of ``dtype`` around mid-range, a flicker per frame, wild pixels
    (a hot pixel, one spanning the dtype's range) and, in frames ``obj`` (a slice), a
    bright object that cleansing drops the image of."""
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    # 64-bit values stay below 2**50: numpy's float64 median is exact there
    lo, hi = max(int(info.min), -(2**50)), min(int(info.max), 2**50)
    half = min(20, (hi - lo) // 8)
    centre = (lo + hi) // 2
    t, ny, nx = shape
    flicker = rng.integers(-half // 2, half // 2 + 1, t)[:, None, None]
    stack = centre + flicker + rng.integers(-half, half + 1, shape)
    stack[:, 1, 2] = rng.integers(lo // 2, hi // 2, t)
    stack[::3, -1, -1] = hi
    stack[1::3, -1, -1] = lo
    if obj is not None:
        stack[obj, ny // 4 : ny // 2, nx // 4 : nx // 2] += 3 * half
    return stack.astype(dtype)


def _assert_bits(res, ref):
    for name in ("images", "frame_index", "centers", "dropped"):
        got, want = np.asarray(getattr(res, name)), getattr(ref, name)
        assert got.dtype == want.dtype and got.shape == want.shape, name
        assert got.tobytes() == want.tobytes(), name
    assert isinstance(res.offsets, da.Array)
    got = res.offsets.compute()
    assert got.dtype == ref.offsets.dtype and got.tobytes() == ref.offsets.tobytes()
    assert res.n_missing == ref.n_missing


# window, split, whether cleansing drops the object's image: consecutive kernels (odd,
# even), overlapping ones (frames kept in the buffer), gaps between kernels (frames
# read for their offsets alone; the object falls in a gap once), a last kernel shifted
# inside the stack, one-frame kernels (no object image stands out)
CONFIGS = [
    (7, None, True),
    (8, None, True),
    (9, 4, True),
    (6, 3, True),
    (4, 11, False),
    (5, 9, True),
    (1, None, False),
    (2, 7, True),
]


@pytest.mark.parametrize("dtype", INT_DTYPES)
@pytest.mark.parametrize(("window", "split", "drops"), CONFIGS)
def test_lazy_equals_numpy_bit_for_bit(dtype, window, split, drops):
    """Every integer dtype, odd shapes and chunks, with cleansing (dropping an image: its frames' offsets are then
    computed lazily) and offsets over a ragged region or the whole frame."""
    stack = _stack(dtype, (53, 31, 37), seed=window, obj=slice(20, 26))
    region = None  # the default 20-px band: the whole of these frames
    if window % 2:
        region = np.zeros(stack.shape[1:], dtype=bool)
        region[:4] = region[-3:] = True
        region[:, :5] = region[:, -2:] = True
    kw = dict(window=window, split=split, frac_cleansing=0.6, offset_region=region)
    ref = sparse_median(stack, **kw)
    assert (ref.dropped.size >= 1) == drops
    for chunks in [(5, 4, 7), (1, -1, -1), (17, -1, -1), (53, 31, 37)]:
        _assert_bits(sparse_median(da.from_array(stack, chunks=chunks), **kw), ref)


@pytest.mark.parametrize("dtype", ["f2", "f4", "f8"])
@pytest.mark.parametrize(("window", "split"), [(7, None), (8, 3), (4, 11)])
def test_lazy_floats_equal_numpy_bit_for_bit(dtype, window, split):
    """Floats take the one pass too (their window medians through the temporal
    quantiles, as numpy input's): NaN and inf samples are missing alike, counted alike."""
    stack = (_stack("i2", (45, 21, 26), seed=window, obj=slice(20, 26)) * 0.37).astype(dtype)
    stack[::4, 2, 3] = np.nan
    stack[:, 6, 6] = np.nan  # NaN in every image
    stack[5, :3] = np.inf  # a frame whose offset region is partly missing
    stack[9:12, -1] = -np.inf
    kw = dict(window=window, split=split, frac_cleansing=0.6, offset_region=(slice(0, 4), slice(None)))  # fmt: skip
    ref = sparse_median(stack, **kw)
    assert ref.n_missing > 0
    for chunks in [(5, 4, 7), (1, -1, -1), (17, -1, -1)]:
        _assert_bits(sparse_median(da.from_array(stack, chunks=chunks), **kw), ref)


@pytest.mark.parametrize("dtype", ["i1", "u2", "i4", "f4"])
@pytest.mark.parametrize("budget_rows", [1, 4])
@pytest.mark.parametrize("region", ["border", "all"])
def test_lazy_in_row_bands_equals_numpy(monkeypatch, dtype, budget_rows, region):
    """Windows larger than the buffer are read in row bands: the region's values are
    gathered band by band (or, where they would not fit the budget either, the frames
    are read again whole for their offsets), with the same values."""
    base = "i2" if dtype == "f4" else dtype
    stack = _stack(base, (41, 23, 29), seed=budget_rows, obj=slice(10, 14)).astype(dtype)
    if dtype == "f4":
        stack[::3, 1, 4] = np.nan  # in the region: missing samples
    mask = np.ones(stack.shape[1:], dtype=bool)
    if region == "border":
        mask[3:-3, 3:-3] = False
    kw = dict(window=9, split=7, frac_cleansing=0.6, offset_region=mask)
    ref = sparse_median(stack, **kw)
    budget = 9 * 29 * stack.dtype.itemsize * budget_rows
    monkeypatch.setattr(_sparselazy, "WINDOW_BYTES", budget)
    for chunks in [(4, 5, -1), (1, -1, -1)]:
        for scheduler in (None, "sync"):
            res = sparse_median(da.from_array(stack, chunks=chunks), scheduler=scheduler, **kw)
            _assert_bits(res, ref)


class _Counted:
    """A lazy stack of ``frames``-frame chunks that counts the reads of every frame (a
    chunk's read counts for each of its frames)."""

    def __init__(self, data: np.ndarray, frames: int = 1) -> None:
        self.reads = np.zeros(data.shape[0], dtype=int)
        lock = threading.Lock()

        def read(block, block_info=None):
            a, b = block_info[0]["array-location"][0]
            with lock:
                self.reads[a:b] += 1
            return block

        chunked = da.from_array(data, chunks=(frames, -1, -1))
        self.array = chunked.map_blocks(read, dtype=data.dtype)


@pytest.mark.parametrize(
    ("window", "split"),
    [(10, None), (10, 4), (6, 13), (7, 11), (8, 3), (12, 12)],
)
def test_every_frame_is_read_once(window, split):
    """Medians and offsets from one read of each frame (each frame was read twice before:
    for its window's median, then for its offset), whatever the windows' overlap, gaps
    or shift at the end; computing the offsets afterwards reads nothing."""
    stack = _stack("u2", (61, 24, 30), seed=split or 0)
    counted = _Counted(stack)
    res = sparse_median(counted.array, window=window, split=split, frac_cleansing=1.0)
    np.testing.assert_array_equal(counted.reads, 1)
    ref = sparse_median(stack, window=window, split=split, frac_cleansing=1.0)
    _assert_bits(res, ref)
    np.testing.assert_array_equal(counted.reads, 1)
    res.expand().compute()
    np.testing.assert_array_equal(counted.reads, 1)


@pytest.mark.parametrize(("window", "split"), [(10, None), (9, None), (10, 4), (8, 3)])
@pytest.mark.parametrize("chunk", [7, 16])
def test_every_frame_chunk_is_read_once(monkeypatch, window, split, chunk):
    """A window that ends inside a frame chunk (dask reads a chunk whole for any of its
    frames; a TIFF's 8 MB chunks are 16 frames of 512 x 512 uint16) keeps that chunk
    for the next window: every chunk is read once. Without room for it
    (``CARRY_BYTES``), the chunks that windows share are read again, same values."""
    stack = _stack("u2", (61, 24, 30), seed=chunk)
    kw = dict(window=window, split=split, frac_cleansing=1.0)
    ref = sparse_median(stack, **kw)
    counted = _Counted(stack, chunk)
    _assert_bits(sparse_median(counted.array, **kw), ref)
    np.testing.assert_array_equal(counted.reads, 1)
    monkeypatch.setattr(_sparselazy, "CARRY_BYTES", 0)
    counted = _Counted(stack, chunk)
    _assert_bits(sparse_median(counted.array, **kw), ref)
    assert counted.reads.max() >= 2


def test_only_frames_whose_image_was_dropped_are_read_again():
    stack = _stack("u2", (60, 24, 30), seed=3, obj=slice(30, 40))
    counted = _Counted(stack)
    res = sparse_median(counted.array, window=10, frac_cleansing=0.6)
    ref = sparse_median(stack, window=10, frac_cleansing=0.6)
    np.testing.assert_array_equal(res.dropped, [34.5])  # the object's window
    np.testing.assert_array_equal(counted.reads, 1)
    _assert_bits(res, ref)
    again = np.zeros(60, dtype=int)
    again[30:40] = 1  # the frames of the dropped image, now on their neighbours'
    np.testing.assert_array_equal(counted.reads, 1 + again)


@pytest.mark.parametrize(("rows", "reads"), [(2, 3), (24, 4)])
def test_a_window_in_bands_reads_its_frames_once_per_band(monkeypatch, rows, reads):
    """A window larger than the buffer costs one read of its frames per row band (the
    buffer holds a band of every frame); the offsets come with the bands where the
    region's values fit the budget too, else from one more read of whole frames."""
    stack = _stack("u2", (40, 24, 30), seed=1)
    monkeypatch.setattr(_sparselazy, "WINDOW_BYTES", 10 * 30 * 2 * 8)  # 8 rows: 3 bands
    counted = _Counted(stack)
    kw = dict(window=10, frac_cleansing=1.0, offset_region=(slice(0, rows), slice(None)))
    res = sparse_median(counted.array, **kw)
    np.testing.assert_array_equal(counted.reads, reads)
    _assert_bits(res, sparse_median(stack, **kw))
    np.testing.assert_array_equal(counted.reads, reads)


def test_progress_and_cancel_per_window():
    """The pass advances the progress once per window; a Cancel raised from it stops
    the reads at that window."""
    stack = _stack("u2", (60, 24, 30), seed=2)
    steps = []

    def progress(it, total=None):
        for x in it:
            steps.append(total)
            yield x

    sparse_median(da.from_array(stack, chunks=(7, -1, -1)), window=10, progress=progress)
    assert steps == [6] * 6

    class Cancel(Exception):
        pass

    def cancel_at_third(it, total=None):
        for k, x in enumerate(it):
            if k == 2:
                raise Cancel
            yield x

    counted = _Counted(stack)
    with pytest.raises(Cancel):
        sparse_median(counted.array, window=10, progress=cancel_at_third)
    np.testing.assert_array_equal(counted.reads, np.repeat([1, 0], [20, 40]))
