"""One out-of-core layer (#17 item 3): gain and background share ``camtrack._outofcore``.

The structure tests pin that the planners, the budgets, the work-dtype rule and the
BLAS limiter are defined once, in ``camtrack._outofcore``, and that neither engine
defines its own again; the unit tests pin what the shared pieces do.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import camtrack
from _progress import recording_progress
from camtrack import _outofcore as ooc

ROOT = Path(camtrack.__file__).parent
ENGINES = ("gain", "background")
# Names of the shared pieces, and the private names their former copies had.
SHARED_DEFS = {
    "work_dtype", "fitted_work_dtype", "_work_itemsize",
    "plan_tiles", "plan_blocks", "tile_chunks", "dask_tile_chunks", "merge_tiles", "_merge_tiles", "_tiles",
    "bands", "_bands", "iter_chunks", "frame_blocks",
    "needs_bands", "_needs_bands", "read_band", "_read_band", "spill_reduce",
    "single_threaded_blas", "_single_threaded_blas", "_openblas_threads_api",
    "temporal_layout", "to_time_tiles",
    "median_mad", "_mad", "sorted_mad", "_kth_deviation", "_median_inplace", "median_inplace", "_pixels_last_copy", "_pixels_last",
    "pixels_last", "middle_pair", "select_ranks", "dask_meta", "is_dask",
    "_with_ticks", "run_with_ticks", "_compute_local", "_Cancelled",
}  # fmt: skip
SHARED_BUDGETS = {
    "TILE_BYTES", "MEDIAN_TILE_BYTES", "BLOCK_BYTES", "BAND_BYTES", "_BAND_BYTES",
    "SPILL_BAND_BYTES", "_SPILL_BAND_BYTES", "MEMORY_BYTES", "STORE_MEMORY_BYTES",
    "DETECT_TILE_BYTES", "_DETECT_BYTES",
    "FLOAT32_EXACT",
}  # fmt: skip


def _engine_files():
    for sub in ENGINES:
        yield from sorted((ROOT / sub).rglob("*.py"))


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def test_engines_define_no_planner_budget_dtype_rule_or_blas_limiter_of_their_own():
    bad = []
    for path in _engine_files():
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name in SHARED_DEFS:
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno} defines {node.name}")
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id in SHARED_BUDGETS:
                        bad.append(f"{path.relative_to(ROOT)}:{node.lineno} sets {target.id}")
    assert not bad, "\n".join(bad)


def test_the_counting_selection_and_the_median_kernel_live_at_the_top_level():
    assert not (ROOT / "background" / "_select.py").exists()
    for module, names in {
        "gain/_tiles.py": {"median_mad"},
        "background/_quantiles.py": {"median_inplace", "middle_pair", "pixels_last", "sorted_mad"},
    }.items():
        got = set()
        for node in ast.walk(_tree(ROOT / module)):
            if isinstance(node, ast.ImportFrom) and node.module == "camtrack._median":
                got |= {a.name for a in node.names}
        assert names <= got, f"{module} imports {got} from camtrack._median"


def test_only_the_shared_layer_touches_blas_threads():
    bad = []
    for path in [*_engine_files(), ROOT / "_backend.py", ROOT / "_parallel.py"]:
        text = path.read_text(encoding="utf-8")
        for word in ("threadpoolctl", "openblas_set_num_threads", "set_num_threads"):
            if word in text:
                bad.append(f"{path.relative_to(ROOT)} mentions {word}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize(
    "module",
    [
        "gain/_tiles.py",
        "gain/_kernels.py",
        "gain/_robust.py",
        "background/_temporal.py",
        "background/_rolling.py",
        "background/_spatial.py",
        "background/_stats.py",
        "background/_sparse.py",
        "background/_subtract.py",
    ],
)
def test_engine_modules_take_the_shared_pieces_from_the_one_layer(module):
    names = set()
    for node in ast.walk(_tree(ROOT / module)):
        if isinstance(node, ast.ImportFrom) and node.module == "camtrack._outofcore":
            names |= {a.name for a in node.names}
        if isinstance(node, ast.ImportFrom) and node.module == "camtrack":
            names |= {a.name for a in node.names if a.name == "_outofcore"}
    assert names, f"{module} does not import from camtrack._outofcore"


def test_one_band_major_store_serves_the_spill_and_the_gain_block_arrays():
    """The spill and the robust kernel's block arrays share camtrack._spill.BandStore: no
    engine defines a store class or does file I/O of its own, and _spill has one store."""
    classes = {n.name for n in ast.walk(_tree(ROOT / "_spill.py")) if isinstance(n, ast.ClassDef)}
    assert classes == {"SpillDir", "BandStore"}
    assert not (ROOT / "gain" / "_blockstore.py").exists()
    bad = []
    for path in _engine_files():
        text = path.read_text(encoding="utf-8")
        for word in ("SpillDir", "os.pwrite", "os.preadv", "ftruncate", "memmap"):
            if word in text:
                bad.append(f"{path.relative_to(ROOT)} mentions {word}")
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.ClassDef) and ("Store" in node.name or "Spill" in node.name):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno} defines {node.name}")
    assert not bad, "\n".join(bad)


# ----------------------------------------------------------------------------- work dtype


@pytest.mark.parametrize(
    ("dtype", "work"),
    [
        ("u1", "f4"), ("i1", "f4"), ("u2", "f4"), ("i2", "f4"), ("f2", "f4"), ("f4", "f4"),
        ("u4", "f8"), ("i4", "f8"), ("u8", "f8"), ("i8", "f8"), ("f8", "f8"),
    ],
)  # fmt: skip
def test_work_dtype_from_the_dtype_alone(dtype, work):
    assert ooc.work_dtype(dtype) == np.dtype(work)


def test_fitted_work_dtype_narrows_only_wide_integers_within_float32s_exact_range():
    exact = ooc.FLOAT32_EXACT
    assert ooc.fitted_work_dtype(np, np.full((2, 2), exact, np.uint32)) == np.float32
    assert ooc.fitted_work_dtype(np, np.full((2, 2), exact + 1, np.uint32)) == np.float64
    assert ooc.fitted_work_dtype(np, np.full((2, 2), -exact - 1, np.int64)) == np.float64
    assert ooc.fitted_work_dtype(np, np.zeros((2, 2), np.float64)) == np.float64
    assert ooc.fitted_work_dtype(np, np.zeros((0, 2), np.int32)) == np.float64
    assert ooc.fitted_work_dtype(np, np.zeros((2, 2), np.uint16)) == np.float32


# ----------------------------------------------------------------------------- planners


def _covers(tiles, ny, nx):
    seen = np.zeros((ny, nx), int)
    for ys, xs in tiles:
        seen[ys, xs] += 1
    return bool((seen == 1).all())


@pytest.mark.parametrize(
    ("shape", "itemsize", "budget", "min_tiles"),
    [
        ((100, 37, 53), 4, 100 * 53 * 4 * 5, 1),  # bands of 5 rows
        ((100, 37, 53), 4, 100 * 53 * 4 * 5, 16),  # more tiles asked: thinner bands
        ((100, 37, 53), 8, 100 * 8 * 10, 1),  # one row too large: pieces of rows
        ((3, 1, 1), 4, 1, 1),  # budget below one value: one pixel a tile
    ],
)
def test_plan_tiles_cover_the_frame_once_within_the_budget(shape, itemsize, budget, min_tiles):
    t, ny, nx = shape
    tiles = ooc.plan_tiles(shape, itemsize, min_tiles=min_tiles, budget=budget)
    assert _covers(tiles, ny, nx)
    sizes = [(ys.stop - ys.start) * (xs.stop - xs.start) for ys, xs in tiles]
    assert max(sizes) * t * itemsize <= max(budget, t * itemsize)
    assert max(ys.stop - ys.start for ys, _ in tiles) <= -(-ny // min_tiles)
    assert ooc.tile_chunks(shape, itemsize, budget)[0] == t


@pytest.mark.parametrize(
    "shape", [(300, 37, 53), (1000, 512, 512), (80, 2048, 2048), (5, 3, 9000)]
)
@pytest.mark.parametrize("itemsize", [2, 4])
def test_plan_blocks_fit_the_budget(shape, itemsize):
    _t, ny, nx = shape
    budget = 2**20
    for kwargs in ({"frames": 64, "overlap": 1}, {"frames": 64, "row_multiple": 8}):
        row_bands, per = ooc.plan_blocks(shape, itemsize, budget=budget, **kwargs)
        assert _covers([(ys, slice(0, nx)) for ys in row_bands], ny, nx)
        height = row_bands[0].stop - row_bands[0].start
        step = kwargs.get("row_multiple", 1)
        if height > step:  # not the floor of one row (or one multiple): within budget
            assert 64 * height * nx * itemsize <= budget
        assert per >= 64
        assert per == 64 or (per + kwargs.get("overlap", 0)) * height * nx * itemsize <= budget
    whole, _ = ooc.plan_blocks(shape, itemsize, frames=64, whole_rows=True, budget=budget)
    assert whole == [slice(0, ny)]
    _, capped = ooc.plan_blocks(shape, itemsize, frames=8, max_frames=10, budget=budget)
    assert 8 <= capped <= 10


@pytest.mark.parametrize("nby", [1, 7, 8, 9, 64, 129])
@pytest.mark.parametrize("nd", [1, 9, 199, 20000])
@pytest.mark.parametrize("nbx", [1, 65, 2048])
def test_robust_detection_tiles_cover_once_within_the_shared_budget(nby, nd, nbx):
    """The robust detection's tiles (gain/_robust.py) are counted by the shared rule
    against the shared budget: every (difference, block row) once, each tile's one
    block-level array with its context within DETECT_TILE_BYTES unless at its minimum."""
    from camtrack.gain import _robust as rb

    within = [(0, nby // 3), (nby // 3, nby)] if nby > 2 else ()
    row_bands = rb.detection_bands(nby, within)
    assert all(b1 - b0 <= rb.BAND_ROWS for b0, b1 in row_bands)
    assert [b for band in row_bands for b in range(*band)] == list(range(nby))
    seen = np.zeros((nd, nby), int)
    for b0, b1, t0, t1 in rb._detect_tiles(nd, nbx, row_bands):
        seen[t0:t1, b0:b1] += 1
        rows = b1 - b0 + 2 * rb.RADIUS
        span = t1 - t0 + 2 * rb.HALF_WINDOW
        small = b1 - b0 <= rb.BAND_ROWS or t1 - t0 <= 8 * rb.HALF_WINDOW
        assert small or rows * span * nbx * 4 <= ooc.DETECT_TILE_BYTES
    assert (seen == 1).all()


def test_merge_tiles_joins_full_width_bands_only():
    tiles = ooc.plan_tiles((10, 9, 4), 1, budget=10 * 4 * 2)
    merged = ooc.merge_tiles(tiles, 2)
    assert _covers(merged, 9, 4) and len(merged) == -(-len(tiles) // 2)
    pieces = ooc.plan_tiles((10, 2, 9), 1, budget=10 * 4)
    assert ooc.merge_tiles(pieces, 2) == pieces


def test_bands_and_frame_blocks():
    assert ooc.bands(7, 3) == [slice(0, 3), slice(3, 6), slice(6, 7)]
    assert ooc.bands(2, 10) == [slice(0, 2)]
    assert ooc.bands(0, 3) == []
    assert ooc.frame_blocks(10, 3) == [slice(0, 3), slice(3, 7), slice(7, 10)]
    assert ooc.frame_blocks(2, 5) == [slice(0, 1), slice(1, 2)]
    assert ooc.fit(100, 30, 10) == 3 and ooc.fit(10, 30, 10) == 1 and ooc.fit(1000, 1, 4) == 4


def test_needs_bands_for_whole_frame_chunks_only():
    da = pytest.importorskip("dask.array")
    stack = da.zeros((40, 64, 64), dtype=np.uint16, chunks=(4, 64, 64))
    budget = 40 * 16 * 64 * 4  # tiles of 16 rows
    assert ooc.needs_bands(stack, 4, budget)
    assert not ooc.needs_bands(stack.rechunk((4, 16, 64)), 4, budget)
    assert not ooc.needs_bands(stack.rechunk((40, 64, 64)), 4, budget)


def test_temporal_layout_one_rule_for_every_temporal_reduction(monkeypatch):
    da = pytest.importorskip("dask.array")
    from camtrack import _spill

    frames = da.zeros((40, 64, 64), dtype=np.uint16, chunks=(4, 64, 64))
    budget = 40 * 16 * 64 * 4  # tiles of 16 rows: smaller than a frame chunk
    assert ooc.temporal_layout(frames, 4, budget=budget) == "spill"
    assert ooc.temporal_layout(frames, 4, budget=budget, cluster=True) == "tiles"
    assert ooc.temporal_layout(frames, 4) == "tiles"  # one tile holds whole frames
    assert ooc.temporal_layout(frames.rechunk((4, 16, 64)), 4, budget=budget) == "tiles"
    monkeypatch.setattr(_spill, "spill_fits", lambda *a, **k: False)
    assert ooc.temporal_layout(frames, 4, budget=budget) == "chain"
    tiles = ooc.to_time_tiles(frames, 4, budget=budget)
    assert tiles.chunks == ((40,), (16,) * 4, (64,))


def test_gain_and_background_take_the_temporal_layout_from_the_one_rule():
    for module in ("gain/_tiles.py", "background/_temporal.py"):
        got = set()
        for node in ast.walk(_tree(ROOT / module)):
            if isinstance(node, ast.ImportFrom) and node.module == "camtrack._outofcore":
                got |= {a.name for a in node.names}
        assert {"temporal_layout", "to_time_tiles"} <= got, module


# ----------------------------------------------------------------------------- banded


def test_spill_reduce_equals_numpy_and_reports_both_phases(tmp_path, monkeypatch):
    da = pytest.importorskip("dask.array")
    monkeypatch.setenv("CAMTRACK_TMPDIR", str(tmp_path))
    data = np.random.default_rng(1).integers(0, 900, (30, 17, 11)).astype(np.uint16)
    stack = da.from_array(data, chunks=(4, -1, -1))
    tiles = ooc.plan_tiles(data.shape, 2, budget=30 * 11 * 2 * 3)
    bars, progress = recording_progress()

    out = np.empty((2, 17, 11))
    ooc.spill_reduce(
        [stack], tiles, lambda b: np.stack([b.min(0), np.median(b, 0)]), out, progress=progress
    )
    np.testing.assert_array_equal(out[0], data.min(0))
    np.testing.assert_array_equal(out[1], np.median(data, 0))
    assert [total for total, _ in bars][1] == len(tiles)
    assert all(total == done for total, done in bars)
    assert not any(tmp_path.rglob("*.raw"))


@pytest.mark.parametrize("phase", [0, 1])
def test_spill_reduce_cancel_stops_and_removes_the_files(tmp_path, monkeypatch, phase):
    da = pytest.importorskip("dask.array")
    monkeypatch.setenv("CAMTRACK_TMPDIR", str(tmp_path))
    data = np.ones((30, 17, 11), np.float32)
    stack = da.from_array(data, chunks=(1, -1, -1))
    tiles = ooc.plan_tiles(data.shape, 4, budget=30 * 11 * 4 * 3)
    calls = []
    reduced = []

    def progress(it, total):
        calls.append(total)
        for i, x in enumerate(it):
            if len(calls) - 1 == phase and i == 0:
                raise KeyboardInterrupt("cancel")
            yield x

    def reduce(band):
        reduced.append(1)
        return band[:1]

    with pytest.raises(KeyboardInterrupt):
        ooc.spill_reduce([stack], tiles, reduce, np.empty((1, 17, 11)), progress=progress)
    assert not reduced  # stopped before the first band was reduced
    assert not any(tmp_path.rglob("*.raw"))


# ----------------------------------------------------------------------------- dispatch


def _row_sums(piece, scale):
    return np.asarray(piece).sum(axis=0) * scale


@pytest.mark.parametrize("kind", ["numpy", "threads", "sync"])
def test_for_each_result_hands_every_result_over_once(kind):
    """The one streaming dispatch (camtrack._parallel.for_each_result), which the gain's
    robust passes use: each piece's result reaches ``done`` once, on every scheduler."""
    from camtrack._parallel import for_each_result

    data = np.arange(5 * 12 * 4, dtype=np.float32).reshape(5, 12, 4)
    if kind != "numpy":
        da = pytest.importorskip("dask.array")
        data_in = da.from_array(data, chunks=(2, 5, -1))
    else:
        data_in = data
    rows = [slice(0, 3), slice(3, 8), slice(8, 12)]
    got = {}

    def done(i, value):
        assert i not in got
        got[i] = value

    for_each_result(
        _row_sums, [data_in[:, ys] for ys in rows], lambda i: (i + 1,), done,
        scheduler=None if kind == "numpy" else kind,
    )  # fmt: skip
    assert sorted(got) == [0, 1, 2]
    for i, ys in enumerate(rows):
        np.testing.assert_array_equal(got[i], data[:, ys].sum(axis=0) * (i + 1))


def test_gain_dispatches_through_the_shared_layer():
    """gain/_tiles.py keeps no threads / dask / cluster dispatch of its own."""
    tree = _tree(ROOT / "gain" / "_tiles.py")
    names = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    assert not names & {"_robust_pass", "_runs_per_task"}
    text = (ROOT / "gain" / "_tiles.py").read_text(encoding="utf-8")
    assert "_compute_dask" not in names
    for word in ("as_completed", "client.compute", "nthreads", "compute_isolated", "num_workers"):
        assert word not in text, word


# ----------------------------------------------------------------------------- median


@pytest.mark.parametrize("dtype", ["u1", "i1", "u2", "i2", "u4", "i4", "i8", "f2", "f4", "f8"])
@pytest.mark.parametrize("frames", [1, 2, 7, 64, 129])
def test_median_mad_equals_numpy(dtype, frames):
    from camtrack._median import median_mad

    rng = np.random.default_rng(frames)
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    lo, hi = (max(info.min, -3000), min(info.max, 3000)) if info else (-3000, 3000)
    data = rng.integers(lo, hi, (frames, 6, 9)).astype(dtype)
    data[:, 0, 0] = hi - 1  # one pixel pinned at the top of the range
    if frames > 2:
        data[frames // 2, 1, 1] = lo  # one wild sample
    view = data[:, 1:, ::2]  # a strided view, as a tile cut from a stack
    for block in (data, view):
        med, mad = median_mad(np, block)
        x = block.astype(np.float64)
        ref = np.median(x, axis=0)
        np.testing.assert_array_equal(med, ref)
        np.testing.assert_array_equal(mad, np.median(np.abs(x - ref), axis=0))
        assert med.dtype == mad.dtype == np.float64


def test_sorted_mad_equals_numpy_on_kept_ranges():
    """The MAD of a kept range of sorted samples (sigma clipping) is numpy's."""
    from camtrack._median import sorted_mad

    rng = np.random.default_rng(5)
    rows = np.sort(np.round(rng.normal(100, 20, (400, 37))), axis=1)
    lo = rng.integers(0, 37, 400)
    count = rng.integers(0, 38, 400).clip(0, 37 - lo)
    kept = [r[a : a + n] for r, a, n in zip(rows, lo, count, strict=True)]
    med = np.array([np.median(k) if k.size else 0.0 for k in kept])
    got = sorted_mad(np, rows, lo, count, med)
    want = [np.median(np.abs(k - m)) if k.size else 0.0 for k, m in zip(kept, med, strict=True)]
    np.testing.assert_array_equal(got, want)


def test_median_mad_counted_and_partition_paths_agree(monkeypatch):
    from camtrack import _median, _select

    data = np.random.default_rng(3).integers(0, 60000, (100, 12, 40)).astype(np.uint16)
    counted = _median.median_mad(np, data)
    monkeypatch.setattr(_select, "HAVE_NUMBA", False)
    assert not _select.use_counting(data)
    sorted_ = _median.median_mad(np, data)
    for a, b in zip(counted, sorted_, strict=True):
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------- ticks


def test_run_with_ticks_reports_every_tick_and_stops_the_work_on_cancel():
    import time

    from camtrack._parallel import run_with_ticks

    done = []

    def run(tick):
        for _ in range(50):
            time.sleep(0.002)
            done.append(1)
            tick()

    seen = []

    def progress(it, total):
        for x in it:
            seen.append(total)
            yield x

    run_with_ticks(run, 50, progress)
    assert len(done) == len(seen) == 50 and set(seen) == {50}

    class Cancel(Exception):
        pass

    def cancel(it, total):
        for i, x in enumerate(it):
            if i == 2:
                raise Cancel
            yield x

    done.clear()
    with pytest.raises(Cancel):
        run_with_ticks(run, 50, cancel)
    stopped = len(done)
    time.sleep(0.1)
    assert len(done) == stopped < 10  # joined: nothing runs on after the cancel


# ----------------------------------------------------------------------------- BLAS


def test_blas_limiter_nests_across_threads_and_restores():
    import threading

    before = ooc.blas_threads()
    if not before:
        pytest.skip("no BLAS library under threadpoolctl's control")
    inside = threading.Event()
    release = threading.Event()

    def other():
        with ooc.single_threaded_blas():
            inside.set()
            release.wait(5)

    thread = threading.Thread(target=other)
    with ooc.single_threaded_blas() as limited:
        assert limited
        thread.start()
        inside.wait(5)
    # the first user left while the other thread still holds the limit
    assert set(ooc.blas_threads()) == {1}
    release.set()
    thread.join()
    assert ooc.blas_threads() == before


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="POSIX fork only")
@pytest.mark.parametrize("held", [False, True])
def test_blas_limiter_works_in_a_forked_child(held):
    """dask's process scheduler forks: the child has none of the parent's threads, so
    the limiter's helper thread (and a lock it may have held) must not be relied on."""
    import contextlib
    import multiprocessing

    if not ooc.blas_threads():
        pytest.skip("no BLAS library under threadpoolctl's control")
    with ooc.single_threaded_blas():
        pass  # the helper thread exists from here on
    ctx = multiprocessing.get_context("fork")
    hold = ooc.single_threaded_blas() if held else contextlib.nullcontext()
    with hold, ctx.Pool(1) as pool:
        assert pool.apply_async(_limit_in_child).get(timeout=30)


def _limit_in_child() -> bool:
    with ooc.single_threaded_blas() as limited:
        inside = set(ooc.blas_threads()) == {1}
    return limited and inside
