"""Temporal median and percentiles of integer stacks by counting: equal to numpy, bit for bit.

The counting kernel (numba) and its pure-numpy fallback (a partition) must give the
same order statistics, and the quantiles built from them must equal numpy's on every
integer dtype, odd shapes, odd dask chunks, even and odd frame counts, and ranges that
take each branch of the kernel (narrow: direct histogram; wide: binned, then sorted).
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from camtrack import _outofcore, _select
from camtrack.background import temporal_median, temporal_percentile

INTS = [np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.uint64, np.int64]
QS = [0, 0.1, 10, 25, 33.3, 50, 66.7, 90, 99.9, 100]


def _ints(dtype, shape, kind="narrow", seed=0):
    """Integer samples of ``dtype``: a narrow camera-like range, the full range, or a
    narrow range with rare huge outliers (hot pixels: a wide range, crowded bins)."""
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    if kind == "full":
        return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    mid = (int(info.min) + int(info.max)) // 2
    base = np.asarray(mid - 30, dtype=dtype) + rng.poisson(30.0, shape).astype(dtype)
    if kind == "outliers":
        hot = rng.random(shape) < 0.02
        base[hot] = rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)[hot]
        base[:, 0, 0] = info.min  # one pixel spans the whole dtype
        base[-1, 0, 0] = info.max
    return base


def _median_ref(stack):
    out = np.float64 if stack.dtype.itemsize >= 4 else np.float32
    return np.median(stack, axis=0).astype(out)


def _percentile_ref(stack, q):
    # numpy on float64 samples: its interpolation forms v1 - v0 in the input dtype,
    # which wraps for signed integers spanning more than the dtype's positive range.
    # 64-bit integers (not counted, float64 cannot hold them) keep numpy's own path.
    out = np.float64 if stack.dtype.itemsize >= 4 else np.float32
    if stack.dtype.itemsize == 8:
        return np.percentile(stack, q, axis=0)
    return np.percentile(stack.astype(np.float64), q, axis=0).astype(out)


@pytest.fixture(params=["numba", "numpy"])
def path(request, monkeypatch):
    """Run a test on the compiled kernel and on the pure-numpy fallback."""
    if request.param == "numba":
        if not _select.HAVE_NUMBA:
            pytest.skip("numba not installed")
    else:
        monkeypatch.setattr(_select, "HAVE_NUMBA", False)
    return request.param


@pytest.mark.parametrize("dtype", INTS)
@pytest.mark.parametrize("kind", ["narrow", "full", "outliers"])
def test_select_ranks_equals_partition(dtype, kind):
    for n_frames in (1, 2, 7, 64):
        stack = _ints(dtype, (n_frames, 5, 13), kind, seed=n_frames)
        ranks = sorted({0, (n_frames - 1) // 2, n_frames // 2, n_frames - 1})
        ref = np.sort(stack, axis=0)[ranks]
        got = _select.select_ranks(stack, ranks)
        assert got.dtype == stack.dtype
        np.testing.assert_array_equal(got, ref)
        np.testing.assert_array_equal(_select.select_ranks_numpy(stack, ranks), ref)


@pytest.mark.skipif(not _select.HAVE_NUMBA, reason="numba not installed")
def test_countable_dtypes_use_the_compiled_kernel():
    assert _select.use_counting(np.zeros((3, 2, 2), np.uint16))
    assert not _select.use_counting(np.zeros((3, 2, 2), np.int64))
    assert not _select.use_counting(np.zeros((3, 2, 2), np.float32))


def test_select_ranks_crowded_bin_and_strided_tile():
    # 200 frames at one value, one far outlier: the wide-range branch must sort a bin
    # holding almost every sample; the tile is a strided view (x slice of a wider stack).
    stack = np.full((201, 4, 40), 1000, dtype=np.uint16)
    stack[7, :, ::3] = 65535
    stack[9, 1, :] = 0
    view = stack[:, :, 5:33]
    ranks = [0, 1, 100, 199, 200]
    np.testing.assert_array_equal(_select.select_ranks(view, ranks), np.sort(view, axis=0)[ranks])


def test_select_ranks_on_odd_memory_layouts():
    # Reversed frames, Fortran order, a broadcast row, every other column: the kernel
    # reads a flat span of the array, so each layout must be mapped (or copied) right.
    base = _ints(np.int16, (9, 6, 10), "outliers", seed=7)
    layouts = [
        base[::-1],
        np.asfortranarray(base),
        np.broadcast_to(base[:, :1, :], base.shape),
        np.broadcast_to(base[:, :, :1], base.shape),
        base[:, :, ::2],
        base[:, 1:4, 2:3],
    ]
    for a in layouts:
        ref = np.sort(a, axis=0)[[0, 4, 8]]
        np.testing.assert_array_equal(_select.select_ranks(a, [0, 4, 8]), ref)


def test_select_ranks_rejects_bad_ranks():
    with pytest.raises(ValueError, match="strictly ascending"):
        _select.select_ranks(np.zeros((4, 2, 2), np.uint8), [2, 1])
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        _select.select_ranks(np.zeros((4, 2, 2), np.uint8), [4])


@pytest.mark.parametrize("dtype", INTS)
@pytest.mark.parametrize("n_frames", [1, 2, 30, 31])
def test_median_equals_numpy_every_int_dtype(path, dtype, n_frames):
    for kind in ("narrow", "full", "outliers"):
        stack = _ints(dtype, (n_frames, 9, 11), kind)
        before = stack.copy()
        out = temporal_median(stack)
        np.testing.assert_array_equal(out, _median_ref(stack))
        np.testing.assert_array_equal(stack, before)


@pytest.mark.parametrize("dtype", INTS)
@pytest.mark.parametrize("n_frames", [2, 30, 31])
def test_percentiles_equal_numpy_every_int_dtype(path, dtype, n_frames):
    # int64 "outliers" span the whole dtype, where numpy's own v1 - v0 wraps.
    for kind in ("narrow",) if dtype == np.int64 else ("narrow", "outliers"):
        stack = _ints(dtype, (n_frames, 7, 5), kind)
        out = temporal_percentile(stack, QS)
        np.testing.assert_array_equal(out, _percentile_ref(stack, QS))
        single = temporal_percentile(stack, 33.3)
        np.testing.assert_array_equal(single, _percentile_ref(stack, 33.3))


def test_percentile_of_wide_signed_ints_does_not_wrap(path):
    # numpy 2.x gives 128.0 for the 50th percentile of int8 [-100, 100] (its v1 - v0
    # wraps in int8); the exact value is 0.
    stack = np.array([-100, 100], dtype=np.int8).reshape(2, 1, 1)
    assert temporal_percentile(stack, 50)[0, 0] == 0.0
    assert temporal_percentile(stack, 25)[0, 0] == -50.0
    assert temporal_median(stack)[0, 0] == 0.0


def test_numba_and_numpy_paths_agree(monkeypatch):
    stack = _ints(np.uint16, (64, 33, 29), "outliers", seed=3)
    med, pct = temporal_median(stack), temporal_percentile(stack, QS)
    monkeypatch.setattr(_select, "HAVE_NUMBA", False)
    np.testing.assert_array_equal(temporal_median(stack), med)
    np.testing.assert_array_equal(temporal_percentile(stack, QS), pct)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.int32])
@pytest.mark.parametrize("n_frames", [24, 25])
def test_dask_odd_chunks_equal_numpy(path, dtype, n_frames):
    stack = _ints(dtype, (n_frames, 19, 23), "outliers", seed=n_frames)
    lazy = da.from_array(stack, chunks=(7, 5, 9))
    med = temporal_median(lazy)
    assert isinstance(med, da.Array)
    np.testing.assert_array_equal(med.compute(), _median_ref(stack))
    pct = temporal_percentile(lazy, [10, 50, 90])
    np.testing.assert_array_equal(pct.compute(), _percentile_ref(stack, [10, 50, 90]))


def test_frame_chunked_dask_banded_path_equals_numpy(monkeypatch, tmp_path):
    from camtrack.background import _temporal

    monkeypatch.setenv("CAMTRACK_TMPDIR", str(tmp_path))
    monkeypatch.setattr(_outofcore, "needs_bands", lambda *a: True)
    monkeypatch.setattr(_temporal, "SPILL_BAND_BYTES", 40 * 17 * 2 * 3)
    stack = _ints(np.uint16, (41, 23, 17), "outliers", seed=5)
    lazy = da.from_array(stack, chunks=(6, 23, 17))
    np.testing.assert_array_equal(temporal_median(lazy).compute(), _median_ref(stack))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("n_frames", [10, 11])
def test_float_input_with_nan_keeps_numpy_semantics(dtype, n_frames):
    # Floats keep the partition path: a NaN sample makes its pixel NaN, as numpy.
    stack = _ints(np.uint16, (n_frames, 6, 7), "narrow").astype(dtype)
    stack[3, 2, 4] = np.nan
    stack[:, 0, 0] = np.nan
    calc = np.float64 if dtype == np.float64 else np.float32
    out = temporal_median(stack)
    np.testing.assert_array_equal(out, np.median(stack.astype(calc), axis=0).astype(out.dtype))
    pct = temporal_percentile(stack, [10, 90])
    ref = np.percentile(stack.astype(calc), [10, 90], axis=0).astype(pct.dtype)
    np.testing.assert_array_equal(pct, ref)


def _masked_ref(stack, left_out, qs):
    """The quantiles of the kept samples, numpy's "linear" method in float64; NaN where
    nothing is kept (an independent loop over pixels)."""
    out = np.empty((len(qs), *stack.shape[1:]))
    for y in range(stack.shape[1]):
        for x in range(stack.shape[2]):
            kept = stack[~left_out[:, y, x], y, x].astype(np.float64)
            out[:, y, x] = np.percentile(kept, qs) if kept.size else np.nan
    return out


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int16, np.int32])
@pytest.mark.parametrize("n_frames", [1, 10, 31])
def test_masked_quantiles_equal_numpy_and_the_sorted_path(dtype, n_frames, monkeypatch):
    stack = _ints(dtype, (n_frames, 7, 9), "outliers", seed=n_frames)
    left_out = np.random.default_rng(n_frames).random(stack.shape) < 0.4
    left_out[:, 0, 1] = True  # a pixel with nothing kept: NaN, no warning
    out_dtype = np.float64 if stack.dtype.itemsize >= 4 else np.float32
    qs = [50.0, 0, 12.5, 100, 50, 99.9]
    counted = temporal_percentile(stack, qs, mask=left_out)
    med = temporal_median(stack, mask=left_out)
    np.testing.assert_array_equal(counted, _masked_ref(stack, left_out, qs).astype(out_dtype))
    np.testing.assert_array_equal(med, counted[0])
    monkeypatch.setattr(_select, "HAVE_NUMBA", False)  # the sorting path
    np.testing.assert_array_equal(temporal_percentile(stack, qs, mask=left_out), counted)


def test_masked_dask_and_sigma_clip_unchanged():
    stack = _ints(np.uint16, (25, 11, 13), "narrow", seed=9)
    left_out = np.random.default_rng(1).random(stack.shape) < 0.3
    ref = temporal_median(stack, mask=left_out)
    lazy = temporal_median(
        da.from_array(stack, chunks=(6, 5, 7)), mask=da.from_array(left_out, chunks=(4, 11, 13))
    )
    np.testing.assert_array_equal(lazy.compute(), ref)
    # sigma clipping keeps its sorted path; with the mask it must still run and agree
    # with numpy on a stack where nothing lies beyond 3 sigma of the median.
    flat = np.full((9, 3, 3), 100, dtype=np.uint16)
    flat[::2] = 101
    np.testing.assert_array_equal(temporal_median(flat, mask=np.zeros(flat.shape, bool), sigma_clip=3), np.median(flat, axis=0).astype(np.float32))  # fmt: skip


def test_engine_without_numba_falls_back_and_agrees():
    # A process where `import numba` fails (a broken install): the engine must still
    # import, never import numba with itself, and give the same values by numpy.
    import subprocess
    import sys

    code = """
import sys
sys.modules["numba"] = None  # import numba raises ImportError
import numpy as np
from camtrack import background as bg
from camtrack import _outofcore, _select
from camtrack.background import _slidehist
s = (np.arange(31 * 6 * 5) * 7919 % 4001).astype(np.uint16).reshape(31, 6, 5)
m = bg.temporal_median(s)
assert not _select.use_counting(s) and not _slidehist.use_sliding(s)
assert np.array_equal(m, np.median(s, axis=0).astype(np.float32))
r = bg.rolling_median(s, 5)
ref = [np.median(s[min(max(t - 2, 0), 26) : min(max(t - 2, 0), 26) + 5], axis=0) for t in range(31)]
assert np.array_equal(r, np.array(ref, dtype=np.float32))
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_import_does_not_load_numba():
    import subprocess
    import sys

    code = "import sys, camtrack.background; print('numba' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
