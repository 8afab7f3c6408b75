"""rolling_median: a naive per-frame loop as reference, edges, dtypes, dask, errors."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from camtrack.background import rolling_median


def _naive(stack, window):
    """Per-frame loop: median of `window` frames centred on t, shifted inside the stack."""
    n = stack.shape[0]
    out = np.empty(stack.shape, dtype=np.float64)
    for t in range(n):
        start = min(max(t - window // 2, 0), n - window)
        out[t] = np.median(stack[start : start + window], axis=0)
    return out


def _stack(dtype=np.uint16, shape=(23, 9, 7), seed=2):
    return np.random.default_rng(seed).integers(0, 60000, shape).astype(dtype)


@pytest.mark.parametrize("window", [1, 3, 5, 11, 23])
@pytest.mark.parametrize("dtype", [np.uint16, np.float32, np.float64, np.int32])
def test_matches_naive_loop(window, dtype):
    stack = _stack(dtype)
    before = stack.copy()
    out = rolling_median(stack, window)
    assert out.shape == stack.shape
    assert out.dtype == (np.float64 if dtype in (np.float64, np.int32) else np.float32)
    np.testing.assert_array_equal(out, _naive(stack, window).astype(out.dtype))
    np.testing.assert_array_equal(stack, before)


def test_edges_use_the_first_and_last_full_window():
    stack = (np.arange(10, dtype=np.uint16) * 300)[:, None, None] * np.ones((1, 2, 3), np.uint16)
    out = rolling_median(stack, 5)[:, 0, 0]
    # frames 0..2 share median(frames 0..4) = frame 2; frames 7..9 share frame 7's
    np.testing.assert_array_equal(out, [600, 600, 600, 900, 1200, 1500, 1800, 2100, 2100, 2100])


@pytest.mark.parametrize(
    ("n_frames", "window"), [(9, 3), (23, 5), (40, 7), (51, 51), (52, 51), (64, 63), (130, 101)]
)
def test_every_network_depth_matches_naive(n_frames, window):
    # The shared-network recursion may stop at any depth; all must be exact.
    from camtrack.background._sliding import choose_levels, sliding_median

    x = np.random.default_rng(window).integers(0, 40, (n_frames, 12)).astype(np.int16)
    ref = _naive(x[:, None, :], window)[window // 2 : n_frames - window // 2, 0, :]
    depth = 0
    while window - 2**depth + 1 >= 1:
        np.testing.assert_array_equal(sliding_median(x, window, depth), ref)
        depth += 1
    assert 0 <= choose_levels(window) < depth


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int64, np.float16])
def test_other_dtypes_match_naive(dtype):
    stack = np.random.default_rng(1).integers(0, 100, (21, 5, 6)).astype(dtype)
    np.testing.assert_array_equal(rolling_median(stack, 9), _naive(stack, 9))


def test_nan_reaches_only_the_windows_holding_it():
    stack = _stack(np.float32, (30, 4, 5))
    stack[12, 1, 2] = np.nan
    out = rolling_median(stack, 7)
    # frames whose 7-frame window (shifted at the edges) contains frame 12: 9..15
    assert np.isnan(out[9:16, 1, 2]).all()
    assert np.isfinite(np.delete(out[:, 1, 2], range(9, 16))).all()
    assert np.isfinite(np.delete(out.reshape(30, -1), 7, axis=1)).all()


def test_many_tiles_on_threads_match_naive(monkeypatch):
    from camtrack.background import _rolling

    # A tiny tile budget: one row per tile, and single rows split along x.
    monkeypatch.setattr(_rolling, "_TILE_BYTES", 15 * 20 * 2)
    stack = _stack(np.uint16, (15, 70, 33), seed=4)
    np.testing.assert_array_equal(rolling_median(stack, 7), _naive(stack, 7))


def test_dask_odd_chunks_equal_numpy_and_stay_lazy():
    stack = _stack(np.uint16, (29, 13, 11))
    d = da.from_array(stack, chunks=(4, 5, 3))
    out = rolling_median(d, 9)
    assert isinstance(out, da.Array) and out.dtype == np.float32
    np.testing.assert_array_equal(out.compute(), rolling_median(stack, 9))


def test_progress_reports_every_tile():
    seen = []

    def progress(iterable, total):
        for item in iterable:
            seen.append(total)
            yield item

    rolling_median(_stack(), 3, progress=progress)
    assert seen and len(seen) == seen[0]


def test_bad_input_messages():
    stack = _stack()
    with pytest.raises(ValueError, match=r"`window` must be odd .*got 4\. Use 3 or 5"):
        rolling_median(stack, 4)
    with pytest.raises(ValueError, match=r"`window` \(25\) exceeds the number of frames \(23\)"):
        rolling_median(stack, 25)
    with pytest.raises(ValueError, match=r"`window` must be >= 1; got 0"):
        rolling_median(stack, 0)
    with pytest.raises(TypeError, match=r"`window` must be an integer; got 5.5"):
        rolling_median(stack, 5.5)
    with pytest.raises(ValueError, match=r"`stack` must be 3-D"):
        rolling_median(stack[0], 3)


@pytest.mark.parametrize(("window", "block_bytes"), [(7, 40 * 23 * 17 * 3), (23, 1), (1, 1)])
@pytest.mark.parametrize("frames_per_chunk", [1, 6])
def test_frame_chunked_dask_is_processed_by_time_blocks(
    monkeypatch, window, block_bytes, frames_per_chunk
):
    from camtrack.background import _rolling

    monkeypatch.setattr(_rolling, "TILE_BYTES", block_bytes)
    monkeypatch.setattr(_rolling, "needs_bands", lambda *a: True)  # a tiny stack
    rng = np.random.default_rng(8)
    stack = rng.integers(0, 4000, (40, 23, 17)).astype(np.uint16)
    d = da.from_array(stack, chunks=(frames_per_chunk, 23, 17))  # whole frames, as a TIFF
    out = rolling_median(d, window=window)
    assert isinstance(out, da.Array) and len(out.chunks[0]) > 1  # blocks of frames
    # each block in row bands (tasks sharing the block's input chunks)
    assert out.chunks[1:] == ((6, 6, 6, 5), (17,))
    np.testing.assert_array_equal(out.compute(), rolling_median(stack, window=window))
    # One frame of the result reads only the frames its block's windows cover.
    assert out[20].compute().shape == (23, 17)


def test_time_blocks_keep_a_minimum_length():
    from camtrack.background import _rolling

    # 2048 x 2048 uint16 frames: the budget fits no block; blocks still hold
    # window // 4 frames, so each input frame is read by at most a few blocks.
    blocks = _rolling._time_blocks(1000, 51, 2048 * 2048, 2, 4)
    assert {b.stop - b.start for b in blocks[:-1]} == {12}
    small = _rolling._time_blocks(1000, 51, 512 * 512, 2, 4)
    assert small[0].stop - small[0].start > 12  # 512 x 512 uint16: more fit the budget
    assert sum(b.stop - b.start for b in small) == 1000


def test_frame_chunked_dask_memory_stays_bounded(monkeypatch):
    # 13 MB of whole-frame chunks (26 MB as float32 output), streamed to a store that
    # keeps nothing; tracemalloc sees numpy's allocations.
    import tracemalloc

    from camtrack.background import _rolling

    monkeypatch.setattr(_rolling, "TILE_BYTES", 3 * 2**20)
    stack = da.random.default_rng(3).integers(0, 4000, (200, 128, 256), chunks=(20, 128, 256))
    stack = stack.astype(np.uint16)

    class Sink:  # a store that keeps nothing, so only the working memory is seen
        def __setitem__(self, key, value):
            pass

    def peak(blocked: bool) -> int:
        monkeypatch.setattr(_rolling, "needs_bands", lambda *a: blocked)
        out = rolling_median(stack, window=11)
        tracemalloc.start()
        try:
            da.store(out, Sink(), lock=False, scheduler="sync")
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    # Rechunking the 20-frame chunks to full-time tiles holds all of them and the whole
    # output (measured ~70 MB, ~120 MB at 400 frames); blocks of ~3 MB in and out plus
    # the frame chunks being read stay far below (and do not grow with the frames).
    assert peak(False) > 40 * 2**20
    assert peak(True) < 20 * 2**20
