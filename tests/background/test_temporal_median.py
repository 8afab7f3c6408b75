"""temporal_median / temporal_percentile: numpy references, masks, sigma clipping, dask."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from camtrack import _outofcore
from camtrack.background import temporal_median, temporal_percentile


def _stack(dtype=np.uint16, shape=(31, 23, 17), seed=1):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 60000, shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.uint16, np.float32, np.int16, np.float64])
@pytest.mark.parametrize("n_frames", [30, 31])
def test_median_equals_numpy(dtype, n_frames):
    stack = _stack(dtype, (n_frames, 23, 17))
    if dtype == np.int16:
        stack = (stack.astype(np.int32) - 30000).astype(np.int16)
    before = stack.copy()
    out = temporal_median(stack)
    assert out.shape == (23, 17)
    assert out.dtype == (np.float64 if dtype == np.float64 else np.float32)
    np.testing.assert_array_equal(out, np.median(stack, axis=0).astype(out.dtype))
    np.testing.assert_array_equal(stack, before)


def test_uint16_values_above_255_survive():
    stack = np.full((9, 4, 4), 1000, dtype=np.uint16)
    stack[::2] = 60000
    assert np.all(temporal_median(stack) == 60000)
    assert np.all(temporal_percentile(stack, 0) == 1000)


@pytest.mark.parametrize("q", [0, 12.5, 50, 99, 100, [5, 50, 95]])
def test_percentile_equals_numpy(q):
    stack = _stack(np.uint16)
    out = temporal_percentile(stack, q)
    ref = np.percentile(stack, q, axis=0)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=1e-6)


def test_dask_odd_chunks_equal_numpy_and_stay_lazy():
    stack = _stack(np.uint16)
    d = da.from_array(stack, chunks=(4, 7, 5))
    med = temporal_median(d)
    pct = temporal_percentile(d, [10, 90])
    assert isinstance(med, da.Array) and isinstance(pct, da.Array)
    np.testing.assert_array_equal(med.compute(), temporal_median(stack))
    np.testing.assert_allclose(pct.compute(), temporal_percentile(stack, [10, 90]))


def test_pixel_mask_equals_masked_reference_and_dask():
    stack = _stack(np.uint16)
    mask = np.random.default_rng(5).random(stack.shape) < 0.4
    ref = np.ma.median(np.ma.array(stack.astype(np.float64), mask=mask), axis=0)
    np.testing.assert_allclose(temporal_median(stack, mask=mask), ref.filled(np.nan))
    d = da.from_array(stack, chunks=(5, 9, 4))
    np.testing.assert_allclose(temporal_median(d, mask=mask).compute(), ref.filled(np.nan))
    p = temporal_percentile(stack, 30, mask=mask)
    i, j = 3, 7
    assert p[i, j] == pytest.approx(np.percentile(stack[:, i, j][~mask[:, i, j]], 30))


def test_fully_masked_pixel_is_nan_without_warning():
    stack = _stack(np.float32)
    mask = np.zeros(stack.shape, dtype=bool)
    mask[:, 2, 3] = True
    out = temporal_median(stack, mask=mask)  # warnings are errors in this suite
    assert np.isnan(out[2, 3])
    assert np.isfinite(np.delete(out.ravel(), 2 * 17 + 3)).all()


def test_frame_mask_drops_frames():
    stack = _stack(np.uint16)
    drop = np.zeros(stack.shape[0], dtype=bool)
    drop[[0, 4, 9]] = True
    np.testing.assert_array_equal(
        temporal_median(stack, mask=drop), np.median(stack[~drop], axis=0).astype(np.float32)
    )


def test_sigma_clip_removes_a_passing_bead():
    # A bright bead sits on a 10 x 10 patch in 35 % of 100 frames: the plain median
    # shifts by ~0.4 sigma of the noise towards it; clipping leaves the bead out.
    rng = np.random.default_rng(7)
    background = rng.normal(100.0, 5.0, (100, 24, 24)).astype(np.float32)
    stack = background.copy()
    stack[:35, 6:16, 6:16] += 400.0
    patch = (slice(6, 16), slice(6, 16))
    plain = temporal_median(stack)[patch]
    clipped = temporal_median(stack, sigma_clip=3.0)[patch]
    truth = np.median(background[35:], axis=0)[patch]
    assert np.abs(plain - 100).mean() > 1.5
    # the clip also trims a few > 3 sigma noise samples: allow 0.3 of the 5 ADU noise
    assert np.abs(clipped - truth).max() < 1.5
    assert np.abs(clipped - 100).mean() < 0.6
    d = da.from_array(stack, chunks=(100, 7, 24))
    np.testing.assert_allclose(
        temporal_median(d, sigma_clip=3.0).compute(), temporal_median(stack, sigma_clip=3.0)
    )


def test_sigma_clip_keeps_clean_pixels():
    stack = np.random.default_rng(3).normal(50.0, 2.0, (201, 8, 8))
    clipped = temporal_median(stack, sigma_clip=3.0)
    # symmetric clipping of pure noise barely moves the median (< 0.2 of the noise)
    assert np.abs(clipped - np.median(stack, axis=0)).max() < 0.4


def test_bad_input_messages():
    stack = _stack()
    with pytest.raises(ValueError, match=r"`stack` must be 3-D .*got shape \(23, 17\)"):
        temporal_median(stack[0])
    with pytest.raises(ValueError, match=r"`q` must lie in \[0.0, 100.0\]; got 101"):
        temporal_percentile(stack, 101)
    with pytest.raises(ValueError, match=r"`q\[1\]` must lie in"):
        temporal_percentile(stack, [10, -1])
    with pytest.raises(ValueError, match=r"`mask` must have shape \(31,\) .* got \(23, 17\)"):
        temporal_median(stack, mask=np.zeros((23, 17), dtype=bool))
    with pytest.raises(TypeError, match=r"`mask` must be a boolean array"):
        temporal_median(stack, mask=np.zeros(stack.shape, dtype=np.uint8))
    with pytest.raises(ValueError, match=r"`mask` leaves out every frame"):
        temporal_median(stack, mask=np.ones(31, dtype=bool))
    with pytest.raises(ValueError, match=r"`sigma_clip` must be finite and > 0; got 0"):
        temporal_median(stack, sigma_clip=0)


@pytest.mark.parametrize("shape", [(6, 1, 1), (1, 3, 4), (7, 1, 5), (2, 3, 3)])
def test_median_never_modifies_input_and_matches_numpy_on_degenerate_shapes(shape):
    # One pixel or one frame: the pixel-major view is already contiguous, and the
    # median partitions its rows in place, so it must work on a copy.
    stack = np.random.default_rng(3).permutation(np.prod(shape)).reshape(shape)
    stack = stack.astype(np.uint16)
    before = stack.copy()
    out = temporal_median(stack)
    np.testing.assert_array_equal(out, np.median(stack, axis=0).astype(np.float32))
    np.testing.assert_array_equal(stack, before)


@pytest.mark.parametrize("n_frames", [10, 11])
def test_median_nan_sample_gives_nan_like_numpy(n_frames):
    stack = _stack(np.float32, (n_frames, 5, 6))
    stack[3, 2, 4] = np.nan
    stack[:, 0, 0] = np.nan
    out = temporal_median(stack)
    np.testing.assert_array_equal(out, np.median(stack, axis=0))


def _generated(shape, chunks, seed=0):
    """A lazily generated uint16 stack (no array behind it: every read recomputes)."""

    def block(block_id=None, block_info=None):
        shp = block_info[None]["chunk-shape"]
        rng = np.random.default_rng([seed, *block_id])
        return rng.integers(0, 4000, shp, dtype=np.uint16)

    return da.map_blocks(
        block, dtype=np.uint16, chunks=chunks, meta=np.empty((0, 0, 0), np.uint16)
    )


def test_frame_chunked_dask_is_read_in_bands():

    whole_frames = da.zeros((600, 512, 512), dtype=np.uint16, chunks=(50, 512, 512))
    row_tiles = da.zeros((600, 512, 512), dtype=np.uint16, chunks=(50, 8, 512))
    full_time = da.zeros((600, 512, 512), dtype=np.uint16, chunks=(600, 64, 512))
    assert _outofcore.needs_bands(whole_frames, 4)
    assert not _outofcore.needs_bands(row_tiles, 4)
    assert not _outofcore.needs_bands(full_time, 4)


@pytest.mark.parametrize("spill", [True, False])  # spill file; re-read bands
@pytest.mark.parametrize("band_bytes", [40 * 17 * 2 * 3, 40 * 5 * 2])  # row bands; x pieces
def test_banded_lazy_path_equals_numpy(monkeypatch, tmp_path, spill, band_bytes):
    from camtrack import _spill
    from camtrack.background import _temporal

    monkeypatch.setenv("CAMTRACK_TMPDIR", str(tmp_path))
    monkeypatch.setattr(_outofcore, "needs_bands", lambda *a: True)
    monkeypatch.setattr(_temporal, "BAND_BYTES", band_bytes)
    monkeypatch.setattr(_temporal, "SPILL_BAND_BYTES", band_bytes)
    monkeypatch.setattr(_spill, "WRITE_BYTES", 17 * 23 * 2 * 5)  # groups of whole chunks
    if not spill:
        monkeypatch.setattr(_spill, "spill_fits", lambda *a: False)
    d = _generated((40, 23, 17), ((6, 6, 6, 6, 6, 6, 4), (23,), (17,)))
    stack = d.compute()
    med = temporal_median(d)
    assert isinstance(med, da.Array)
    np.testing.assert_array_equal(med.compute(), np.median(stack, axis=0).astype(np.float32))
    pct = temporal_percentile(d, [10, 50])
    np.testing.assert_allclose(pct.compute(), np.percentile(stack, [10, 50], axis=0), rtol=1e-6)
    mask = np.random.default_rng(2).random(stack.shape) < 0.3
    lazy = temporal_median(d, mask=da.from_array(mask, chunks=(7, 23, 17)), sigma_clip=3)
    np.testing.assert_array_equal(lazy.compute(), temporal_median(stack, mask=mask, sigma_clip=3))
    assert list(tmp_path.iterdir()) == []  # spill files removed


def test_spill_file_is_removed_after_an_error(monkeypatch, tmp_path):

    monkeypatch.setenv("CAMTRACK_TMPDIR", str(tmp_path))
    monkeypatch.setattr(_outofcore, "needs_bands", lambda *a: True)
    calls = []

    def block(block_info=None):
        calls.append(1)
        if len(calls) > 3:  # the fourth frame chunk fails to read
            raise OSError("simulated read error")
        return np.ones(block_info[None]["chunk-shape"], np.uint16)

    d = da.map_blocks(block, dtype=np.uint16, chunks=((5,) * 8, (16,), (16,)),
                      meta=np.empty((0, 0, 0), np.uint16))  # fmt: skip
    with pytest.raises(OSError, match="simulated read error"):
        temporal_median(d).compute(scheduler="sync")
    assert list(tmp_path.iterdir()) == []


def test_spill_reads_each_frame_chunk_once(monkeypatch, tmp_path):
    from camtrack.background import _temporal

    monkeypatch.setenv("CAMTRACK_TMPDIR", str(tmp_path))
    monkeypatch.setattr(_outofcore, "needs_bands", lambda *a: True)
    monkeypatch.setattr(_temporal, "SPILL_BAND_BYTES", 60 * 4 * 32 * 2)  # 8 bands
    reads = []

    def block(block_info=None):
        reads.append(block_info[None]["chunk-location"])
        loc = block_info[None]["array-location"][0]
        frames = np.arange(*loc, dtype=np.uint16)[:, None, None]
        return np.broadcast_to(frames, block_info[None]["chunk-shape"]).copy()

    d = da.map_blocks(block, dtype=np.uint16, chunks=((5,) * 12, (32,), (32,)),
                      meta=np.empty((0, 0, 0), np.uint16))  # fmt: skip
    out = temporal_median(d).compute(scheduler="sync")
    np.testing.assert_array_equal(out, np.full((32, 32), 29.5, np.float32))
    assert sorted(reads) == sorted(set(reads)) and len(reads) == 12


def test_banded_lazy_path_memory_stays_bounded(monkeypatch):
    # 26 MB of whole-frame chunks: rechunking to full-time tiles would hold all of it;
    # bands of 4 MB hold a band, two chunks in flight and the tiles' copies.
    import tracemalloc

    from camtrack import _spill
    from camtrack.background import _temporal

    monkeypatch.setattr(_temporal, "BAND_BYTES", 4 * 2**20)
    monkeypatch.setattr(_temporal, "SPILL_BAND_BYTES", 2 * 2**20)
    monkeypatch.setattr(_spill, "WRITE_BYTES", 4 * 2**20)
    d = _generated((400, 128, 256), ((20,) * 20, (128,), (256,)), seed=4)
    monkeypatch.setattr(_outofcore, "needs_bands", lambda *a: True)
    med = temporal_median(d)
    tracemalloc.start()
    try:
        out = med.compute(scheduler="sync")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, peak / 2**20  # the rechunk path: ~75 MB
    np.testing.assert_array_equal(out, np.median(d.compute(), axis=0).astype(np.float32))


def test_slowly_moving_beads_mask_and_clip_beat_the_plain_median():
    # Beads drifting at 0.3 px/frame cover each pixel they pass for dozens of frames:
    # the plain median is pulled towards them; the truth mask and sigma clipping are not.
    from camtrack.simulate import camera_stack

    stack, truth = camera_stack(400, (96, 96), n_beads=4, bead_speed=0.3, rng=4)
    bg = truth.camera.expected_adu(truth.signal_e)
    sigma = np.sqrt(truth.camera.variance_adu(truth.signal_e))
    mask = np.abs(truth.expected_adu(np.arange(400)) - bg) > 3 * sigma
    covered = mask.mean(axis=0)
    px = (covered > 0.1) & (covered < 0.5)  # a bead there in 10-50 % of the frames
    assert px.sum() > 200

    def rms(image):
        return float(np.sqrt(np.mean((image - bg)[px] ** 2)))

    plain = rms(temporal_median(stack))
    clipped = rms(temporal_median(stack, sigma_clip=3.0))
    masked = rms(temporal_median(stack, mask=mask))
    noise = float(np.median(sigma[px])) * 1.2533 / np.sqrt(400)  # the median's own error
    assert plain > 3 * noise
    # measured: plain 8.6, clipped 7.3, masked 4.3 ADU (the median's own noise 0.9):
    # samples a bead shifts by less than 3 sigma can be neither masked nor clipped
    assert masked < 0.6 * plain
    assert clipped < 0.9 * plain
