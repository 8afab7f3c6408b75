"""Throughput, memory and accuracy of camtrack.background, side by side with its peers.

Stacks (written once to temporary ``.npy`` files, all uint16, with a known noiseless
background ``truth`` (Y, X)):

- ``flat``: offset 100 ADU plus Poisson(100) photons, seeded: truth 200 ADU everywhere.
  Every case runs on it; its timings are the headline figures.
- ``beads``: ``camtrack.simulate.camera_stack`` (2 e-/ADU, gradient 50-2000 e-) with
  ``--beads`` defocused beads drifting slowly (``--bead-speed``, 0.3 px/frame: each
  covers the pixels it passes for dozens to hundreds of frames); truth
  ``camera.expected_adu(signal_e)`` (no bleaching, so static). Its object mask (for the
  ``temporal_median_mask`` case) marks the samples whose noiseless value differs from the
  background by more than 3 noise sigmas. The background cases run on it (``--beads-repeat``
  timed runs) to show how much each method absorbs the beads.

Every measurement runs in a fresh subprocess, so its peak RSS is its own: the child loads
the stack into RAM, warms up on a small stack (imports, thread pools, numba JIT), resets
the kernel's peak-RSS mark (``/proc/self/clear_refs``) and times the median of
``--repeat`` runs. ``+RSS MB`` is the increase of ``VmHWM`` over the RSS just before the
first timed run: the working memory beyond the input (and the mask). ``ref err`` checks
our result against an independent numpy reference on a sample of pixels.

Figures: ``s/GB`` = wall time per 1e9 bytes of the uint16 stack (also for the float32
case, so rows compare); ``Mpx/s`` = T * Y * X / wall time / 1e6; ``RMSE`` = root mean
square of (background - truth) over all frames and pixels (a single image is compared
with the static truth); ``RMSE@beads`` over the pixels a bead covers in 5-50 % of the frames
(where a median can stay clean; beyond 50 % no temporal estimate can);
``max|err|`` the largest |background - truth|. Peer rows give ``peer s / our s``
(> 1: we are faster).

Peers: ``numpy.median`` and ``bottleneck.median`` over frames (axis 0) for the temporal
median, run in a child of this script (BSD, same interpreter); smlmlp 0.1.20's
``bkgd_spatial_mean(radius=7)`` and ``bkgd_temporal_median(median_window_fr=25)`` (its
51-frame rolling median) and dcnum 0.31.0's ``BackgroundSparseMed(kernel_size=50)``,
each under its own Python 3.12 (``benchmarks/peers``; skipped where that venv is missing).
dcnum handles uint8 only (uint16 wraps modulo 256): it runs on a uint8 copy scaled over
the stack's range (``lo + u8 * step`` maps back to ADU), made outside its timing; its
RMSE is taken after mapping back, so it includes that quantisation.

Two more fresh processes time ``import camtrack.background`` and the first
``temporal_median`` and ``rolling_median`` of a small uint16 stack: numba's kernels
compile on their very first use (once per dtype, seconds) and load from numba's
on-disk cache afterwards (the second process shows that).

The lazy sparse cases (opt-in: ``--cases sparse_median_uint16 sparse_median_lazy
sparse_median_lazy_tiles sparse_median_lazy_read``) write the stack to a temporary TIFF
and open it lazily, as the napari reader does (8 MB chunks of whole frames):
``sparse_median_lazy`` computes the sparse median and its offsets (one pass over the
frames since #18), ``sparse_median_lazy_tiles`` the same through the temporal
quantiles' tiles (with the offsets read again), and ``sparse_median_lazy_read`` is the
floor of any pass: the TIFF read once, chunk by chunk, into one buffer, nothing
computed. Their target compares the lazy case with the numpy input's time plus that
read.

``--lazy-gb`` adds out-of-core cases: ``temporal_median`` of a lazily generated dask
stack (Poisson, 512 x 512 frames) of that many GB, never held in RAM. ``tiles`` layout
is generated in (500, rows, 512) chunks matching the engine's full-time tiles (a
chunked HDF5/zarr layout); ``--lazy-frames-gb`` the same in 50-frame chunks of whole
frames (what a TIFF reader gives), which a full-time rechunk must gather.

Usage::

    python benchmarks/bench_background.py                  # 200 x 256 x 256
    python benchmarks/bench_background.py --frames 1000 --size 512 --repeat 3 \\
        --lazy-gb 2 8 --lazy-frames-gb 1 2

Results go to ``benchmarks/results/bench_background.json`` (``--json`` to change).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from _memory import reset_peak_rss, vm_kib

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

CASES: dict[str, str] = {
    "rolling_median_uint16": "rolling_median(stack, window=51), uint16 input",
    "rolling_median_float32": "rolling_median(stack, window=51), float32 input",
    "rolling_median_dask": "rolling_median on dask (16-frame chunks), uint16",
    "bottleneck_rolling_ref": "reference: bottleneck.move_median, float32 pixel-major tiles, threads",
    "spatial_mean_uint16": "spatial_mean(stack, radius=7).background, uint16",
    "temporal_median_uint16": "temporal_median(stack), uint16",
    "temporal_median_clip": "temporal_median(stack, sigma_clip=3), uint16",
    "temporal_median_mask": "temporal_median(stack, mask=known bead mask (T, Y, X)), uint16",
    "sparse_median_uint16": "sparse_median(stack, window=50) + offsets, uint16",
    "sparse_median_lazy": "sparse_median(lazy TIFF, window=50) + offsets computed, uint16",
    "sparse_median_lazy_tiles": "the same through the temporal quantiles' tiles (before #18)",
    "sparse_median_lazy_read": "floor: that lazy TIFF read once (each chunk once), no median",
    "frame_stats_std": "frame_stats(stack, 'std'), uint16",
    "frame_stats_p10": "frame_stats(stack, 'percentile', q=10), uint16",
}
# opt-in: the lazy sparse cases write the stack to a temporary TIFF first
LAZY_SPARSE = ("sparse_median_lazy", "sparse_median_lazy_tiles", "sparse_median_lazy_read")
FLAT_CASES = [c for c in CASES if c != "temporal_median_mask" and c not in LAZY_SPARSE]
BEAD_CASES = [
    "temporal_median_uint16",
    "temporal_median_clip",
    "temporal_median_mask",
    "rolling_median_uint16",
    "sparse_median_uint16",
    "spatial_mean_uint16",
]
# in-process peers (children of this script): name -> description
LOCAL_PEERS = {
    "numpy_median": "numpy.median(stack, axis=0)",
    "bottleneck_median": "bottleneck.median(stack, axis=0)",
}


# --------------------------------------------------------------------------- stacks


def make_stack(frames: int, size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (100 + rng.poisson(100.0, (frames, size, size))).astype(np.uint16)


def write_flat(frames: int, size: int, tmp: Path) -> dict:
    np.save(tmp / "flat.npy", make_stack(frames, size))
    np.save(tmp / "flat_truth.npy", np.full((size, size), 200.0))
    return {"stack": str(tmp / "flat.npy"), "truth": str(tmp / "flat_truth.npy")}


def write_beads(frames: int, size: int, n_beads: int, tmp: Path, speed: float | None) -> dict:
    from camtrack.simulate import camera_stack

    t0 = time.perf_counter()
    stack, truth = camera_stack(
        frames, (size, size), n_beads=n_beads, bead_speed=speed, chunks=50, rng=4
    )
    bg = truth.camera.expected_adu(truth.signal_e)
    sigma = np.sqrt(truth.camera.variance_adu(truth.signal_e))
    paths = {k: str(tmp / f"beads_{k}.npy") for k in ("stack", "truth", "mask")}
    out = np.lib.format.open_memmap(paths["stack"], "w+", np.uint16, stack.shape)
    mask = np.lib.format.open_memmap(paths["mask"], "w+", np.bool_, stack.shape)
    for t in range(0, frames, 50):
        sl = slice(t, min(t + 50, frames))
        out[sl] = np.asarray(stack[sl])
        mask[sl] = np.abs(truth.expected_adu(np.arange(sl.start, sl.stop)) - bg) > 3 * sigma
    covered = float(mask.mean())
    coverage = mask.mean(axis=0)
    # pixels a bead covers in 5-50 % of the frames: a median can be kept clean there
    np.save(tmp / "beads_px.npy", (coverage > 0.05) & (coverage < 0.5))
    paths["beads_px"] = str(tmp / "beads_px.npy")
    out.flush()
    mask.flush()
    del out, mask
    np.save(paths["truth"], bg)
    return {
        **paths,
        "n_beads": n_beads,
        "bead_speed_px_per_frame": speed,
        "masked_fraction": covered,
        "pixels_covered_5_to_50_percent": float(np.load(paths["beads_px"]).mean()),
        "seconds_to_simulate": time.perf_counter() - t0,
    }


def _frame_chunks(result, n_frames: int):
    """Yield (slice, background (t, Y, X) or (Y, X)) of a result, chunk by chunk."""
    if hasattr(result, "frame_index"):  # SparseMedianResult
        images = np.asarray(result.images)
        offs = None if result.offsets is None else np.asarray(result.offsets)
        for t in range(0, n_frames, 50):
            sl = slice(t, min(t + 50, n_frames))
            chunk = images[result.frame_index[sl]].astype(np.float64)
            if offs is not None:
                chunk += offs[sl, None, None]
            yield sl, chunk
    elif np.ndim(result) == 2:
        yield slice(0, n_frames), np.asarray(result, dtype=np.float64)
    else:
        for t in range(0, n_frames, 50):
            sl = slice(t, min(t + 50, n_frames))
            yield sl, np.asarray(result[sl], dtype=np.float64)


def errors(result, truth: np.ndarray, n_frames: int, beads_px=None, scale=None) -> dict:
    """RMSE (all, bead pixels) and max |err| of a background against the truth (Y, X)."""
    sq = sq_b = 0.0
    n = n_b = 0
    worst = 0.0
    for sl, chunk in _frame_chunks(result, n_frames):
        if scale is not None:  # uint8 scale -> ADU
            chunk = scale[0] + chunk * scale[1]
        d = chunk - truth
        k = (sl.stop - sl.start) if d.ndim == 3 else n_frames  # an image stands for all
        sq += float(np.square(d).sum()) * (k if d.ndim == 2 else 1)
        n += d.size * (k if d.ndim == 2 else 1)
        worst = max(worst, float(np.nanmax(np.abs(d))))
        if beads_px is not None and beads_px.any():
            db = d[..., beads_px]
            sq_b += float(np.square(db).sum()) * (k if d.ndim == 2 else 1)
            n_b += db.size * (k if d.ndim == 2 else 1)
    return {
        "rmse": math.sqrt(sq / n),
        "rmse_beads": math.sqrt(sq_b / n_b) if n_b else None,
        "max_abs_err_truth": worst,
    }


# --------------------------------------------------------------------------- child side


def _naive_rolling(stack: np.ndarray, window: int, ys, xs) -> np.ndarray:
    n = stack.shape[0]
    out = np.empty((n, len(ys)))
    for t in range(n):
        s = min(max(t - window // 2, 0), n - window)
        out[t] = np.median(stack[s : s + window, ys, xs].astype(np.float64), axis=0)
    return out


def _bottleneck_rolling(stack: np.ndarray, window: int) -> np.ndarray:
    """The usual fast CPU baseline: bottleneck's double-heap moving median on float32,
    pixels-major tiles of 8 rows, one thread per core (bottleneck releases the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    import bottleneck as bn

    t, ny, nx = stack.shape
    half = window // 2
    out = np.empty(stack.shape, dtype=np.float32)

    def tile(y: int) -> None:
        block = stack[:, y : y + 8]
        rows = np.ascontiguousarray(block.reshape(t, -1).T, dtype=np.float32)
        med = bn.move_median(rows, window, axis=1)[:, window - 1 :]
        body = med.T.reshape(t - window + 1, block.shape[1], nx)
        out[half : t - half, y : y + 8] = body
        out[:half, y : y + 8] = body[0]
        out[t - half :, y : y + 8] = body[-1]

    with ThreadPoolExecutor(len(os.sched_getaffinity(0))) as pool:
        list(pool.map(tile, range(0, ny, 8)))
    return out


def _case(name: str, stack: np.ndarray, mask=None):
    """(run, check): run() computes, check(result) -> max abs error vs a numpy reference."""
    import dask.array as da
    import scipy.ndimage as ndi

    from camtrack import background as bg

    rng = np.random.default_rng(1)
    ys = rng.integers(0, stack.shape[1], 64)
    xs = rng.integers(0, stack.shape[2], 64)

    def check_rolling(out):
        return float(np.abs(out[:, ys, xs] - _naive_rolling(stack, 51, ys, xs)).max())

    def check_median(out):
        return float(np.abs(out[ys, xs] - np.median(stack[:, ys, xs], axis=0)).max())

    if name == "numpy_median":
        return (lambda: np.median(stack, axis=0)), check_median
    if name == "bottleneck_median":
        import bottleneck as bn

        return (lambda: bn.median(stack, axis=0)), check_median
    if name == "bottleneck_rolling_ref":
        return (lambda: _bottleneck_rolling(stack, 51)), check_rolling
    if name.startswith("rolling_median"):
        data = stack.astype(np.float32) if name.endswith("float32") else stack
        if name.endswith("dask"):
            # frame chunks, as a TIFF; stored into one preallocated array, as a writer
            # would (``.compute()`` would hold the blocks and their concatenation)
            lazy = da.from_array(stack, chunks=(16, -1, -1))

            def run_dask():
                res = bg.rolling_median(lazy, 51)
                out = np.empty(res.shape, res.dtype)
                da.store(res, out, lock=False)
                return out

            return run_dask, check_rolling
        return (lambda: bg.rolling_median(data, 51)), check_rolling
    if name == "spatial_mean_uint16":

        def check(out):
            ref = ndi.gaussian_filter(stack[:4].astype(np.float64), (0, 3.5, 3.5))
            return float(np.abs(out[:4] - ref).max())

        return (lambda: bg.spatial_mean(stack, 7.0).background), check
    if name.startswith("temporal_median"):
        clip = 3.0 if name.endswith("clip") else None
        use_mask = mask if name.endswith("mask") else None
        plain = clip is None and use_mask is None

        def run():
            return bg.temporal_median(stack, sigma_clip=clip, mask=use_mask)

        # no simple numpy reference for sigma clipping or masking
        return run, (check_median if plain else lambda out: float("nan"))
    if name == "sparse_median_lazy_read":
        return _lazy_read(stack), lambda _out: float("nan")
    if name.startswith("sparse_median"):

        def check(res):
            # every kept image against numpy's median of its 50 frames (at the sampled
            # pixels), and the offsets of 8 frames against numpy's median of frame -
            # background over the 20-px border band: 0 where the result is exact
            err = 0.0
            for img, centre in zip(res.images, res.centers, strict=True):
                start = round(float(centre) - 24.5)
                ref = np.median(stack[start : start + 50, ys, xs], axis=0)
                err = max(err, float(np.abs(img[ys, xs] - ref).max()))
            band = np.zeros(stack.shape[1:], dtype=bool)
            band[:20] = band[-20:] = True
            band[:, :20] = band[:, -20:] = True
            images = np.asarray(res.images)
            for t in np.linspace(0, stack.shape[0] - 1, 8).astype(int):
                diff = stack[t].astype(np.float32) - images[res.frame_index[t]]
                err = max(err, abs(float(np.median(diff[band])) - float(res.offsets[t])))
            return err

        if name == "sparse_median_uint16":
            return (lambda: bg.sparse_median(stack, window=50)), check
        return _lazy_sparse(stack, tiles=name.endswith("tiles")), check
    if name == "frame_stats_std":

        def check(out):
            return float(np.abs(out[ys, xs] - stack[:, ys, xs].std(axis=0)).max())

        return (lambda: bg.frame_stats(stack, "std")), check
    if name == "frame_stats_p10":

        def check(out):
            ref = np.percentile(stack[:, ys, xs], 10, axis=0)
            return float(np.abs(out[ys, xs] - ref).max())

        return (lambda: bg.frame_stats(stack, "percentile", q=10)), check
    raise KeyError(name)


def _lazy_tiff(stack: np.ndarray):
    """``stack`` written to a temporary TIFF (removed at exit) and opened lazily, as the
    napari reader does (chunks of whole frames, 8 MB)."""
    import atexit

    import tifffile

    from camtrack.io import open_stack

    fd, name = tempfile.mkstemp(prefix="camtrack-bench-sparse-", suffix=".tif")
    os.close(fd)
    path = Path(name)
    atexit.register(path.unlink, missing_ok=True)
    tifffile.imwrite(path, stack)
    lazy, _info = open_stack(str(path))
    return lazy


def _lazy_read(stack: np.ndarray) -> Callable[[], object]:
    """The floor of any pass over a lazy TIFF: its frames read once, each chunk once
    (groups of whole chunks of at most 50 frames), into one buffer; nothing computed."""
    import dask.array as da

    lazy = _lazy_tiff(stack)
    edges = np.concatenate([[0], np.cumsum(lazy.chunks[0])])
    buf = np.empty((max(50, max(lazy.chunks[0])), *stack.shape[1:]), dtype=stack.dtype)

    def run():
        k = 0
        while k < len(edges) - 1:
            j = k + 1
            while j + 1 < len(edges) and edges[j + 1] - edges[k] <= buf.shape[0]:
                j += 1
            a, b = int(edges[k]), int(edges[j])
            da.store(lazy[a:b], buf[: b - a], lock=False, scheduler="threads")
            k = j

    return run


def _lazy_sparse(stack: np.ndarray, *, tiles: bool) -> Callable[[], object]:
    """sparse_median of ``stack`` written to a temporary TIFF and opened lazily (as the
    napari reader does: whole-frame chunks), its offsets computed (read with the
    medians since #18); ``tiles``: the window medians through the temporal quantiles'
    tiles and the offsets read again, the path before the one pass served dask input."""
    import dataclasses

    from camtrack import background as bg
    from camtrack.background import _sparse

    lazy = _lazy_tiff(stack)

    def run():
        keep = _sparse._one_pass
        if tiles:
            _sparse._one_pass = lambda _stack: False
        try:
            res = bg.sparse_median(lazy, window=50)
        finally:
            _sparse._one_pass = keep
        return dataclasses.replace(res, offsets=res.offsets.compute())

    return run


def child(name: str, paths: dict, repeat: int) -> dict:
    stack = np.load(paths["stack"])
    mask = np.load(paths["mask"]) if name.endswith("mask") else None
    # Warm-up on a small stack (imports, thread pools, dask's first compute) that
    # leaves the heap small, so the first timed run's peak is the function's own.
    small = make_stack(min(stack.shape[0], 60), 32, seed=2)
    warm, _ = _case(name, small, None if mask is None else np.zeros(small.shape, bool))
    warm()
    run, check = _case(name, stack, mask)
    reset = reset_peak_rss()
    base = vm_kib("VmRSS")
    times, result, peak = [], None, 0
    for i in range(repeat):
        result = None
        t0 = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - t0)
        if i == 0:
            peak = vm_kib("VmHWM")
    best = statistics.median(times)  # medians of several runs
    rec = {
        "case": name,
        "shape": list(stack.shape),
        "seconds": best,
        "seconds_all": times,
        "extra_rss_mb": max(0, peak - base) / 1024 if reset else None,
        "max_abs_err": check(result),
    }
    # std / p10 are no background estimates, the read floor has none
    if not name.startswith("frame_stats") and not name.endswith("_read"):
        truth = np.load(paths["truth"])
        beads_px = np.load(paths["beads_px"]) if "beads_px" in paths else None
        rec.update(errors(result, truth, stack.shape[0], beads_px))
    return rec


def child_first_call() -> dict:
    """Seconds of the first temporal and rolling median in a fresh process (numba's
    cached kernels loaded from disk, or compiled where no cache exists yet)."""
    t0 = time.perf_counter()
    from camtrack import background as bg

    imported = time.perf_counter() - t0
    numba_at_import = "numba" in sys.modules
    small = make_stack(60, 32, seed=3)
    rec = {"import_s": imported, "numba_imported_by_import": numba_at_import}
    for name, run in [
        ("temporal_median", lambda: bg.temporal_median(small)),
        ("rolling_median", lambda: bg.rolling_median(small, 51)),
    ]:
        t0 = time.perf_counter()
        run()
        rec[f"{name}_first_s"] = time.perf_counter() - t0
    return rec


def child_lazy(gb: float, layout: str) -> dict:
    import dask.array as da

    from camtrack import background as bg

    size = 512
    frames = max(50, int(gb * 1e9 / (size * size * 2)) // 50 * 50)
    if layout == "frames":
        chunks = ((50,) * (frames // 50), (size,), (size,))
    else:  # rows such that a full-time float32 tile is <= 64 MB, like the engine's tiles
        rows = max(1, min(size, int(64e6 // (frames * size * 4))))
        t_chunks = [500] * (frames // 500) + ([frames % 500] if frames % 500 else [])
        y_chunks = [rows] * (size // rows) + ([size % rows] if size % rows else [])
        chunks = (tuple(t_chunks), tuple(y_chunks), (size,))

    def block(block_id=None):
        shape = [c[i] for c, i in zip(chunks, block_id, strict=True)]
        rng = np.random.default_rng(list(block_id))
        return (100 + rng.poisson(100.0, shape)).astype(np.uint16)

    stack = da.map_blocks(
        block, dtype=np.uint16, chunks=chunks, meta=np.empty((0, 0, 0), np.uint16)
    )
    bg.temporal_median(stack[:100, :32, :32]).compute()  # warm-up
    reset_peak_rss()
    before = vm_kib("VmRSS")
    t0 = time.perf_counter()
    med = bg.temporal_median(stack).compute()
    seconds = time.perf_counter() - t0
    peak = (vm_kib("VmHWM") - before) / 1024
    # the same generation alone (a sum per chunk), so the median's own share is visible
    t0 = time.perf_counter()
    stack.sum(dtype=np.uint64).compute()
    gen_s = time.perf_counter() - t0
    return {
        "layout": layout,
        "gb": stack.nbytes / 1e9,
        "shape": list(stack.shape),
        "chunks": [list(stack.chunks[0][:1]), list(stack.chunks[1][:1]), [size]],
        "n_chunks": int(np.prod(stack.numblocks)),
        "seconds": seconds,
        "generate_seconds": gen_s,
        "peak_extra_mb": peak,
        "rmse": float(np.sqrt(np.mean(np.square(med - 200.0)))),
    }


# -------------------------------------------------------------------------- parent side


def _run_child(args: list[str], timeout: float) -> dict:
    cmd = [sys.executable, __file__, *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": [f"timed out after {timeout:.0f} s"]}
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-3:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _measure(name: str, paths: dict, repeat: int, timeout: float) -> dict:
    return _run_child(
        ["--child", name, "--paths", json.dumps(paths), "--repeat", str(repeat)], timeout
    )


def _local_peer(name: str) -> Callable[[dict, int, Path, float], dict]:
    def run(paths: dict, repeat: int, tmp: Path, timeout: float) -> dict:
        rec = _measure(name, paths, repeat, timeout)
        rec["what"] = LOCAL_PEERS[name]
        return rec

    return run


def _external_peer(peer: str, script: str, extra: list[str], what: str, out: str):
    """A peer runner under the peer's own Python; its saved background gives the RMSE."""

    def run(paths: dict, repeat: int, tmp: Path, timeout: float) -> dict:
        from peers._find import run_runner

        bg_path = tmp / f"{peer}_bg.npy"
        args = [paths["stack"], *extra, "--repeat", str(repeat), out, str(bg_path)]
        rec = run_runner(peer, script, args, timeout=timeout)
        if "seconds" not in rec:
            return rec  # {"skipped": ...} or {"error": ...}: reported, never raised
        rec["what"] = what
        rec["extra_rss_mb"] = rec.get("peak_extra_mb")
        conv = rec.get("uint8")
        scale = None if not conv else (conv["lo"], conv["step"])
        bgs = np.load(bg_path, mmap_mode="r")
        truth = np.load(paths["truth"])
        beads_px = np.load(paths["beads_px"]) if "beads_px" in paths else None
        rec.update(errors(bgs, truth, bgs.shape[0], beads_px, scale))
        del bgs
        bg_path.unlink()
        return rec

    return run


_DCNUM_SPARSE = _external_peer(
    "dcnum",
    "dcnum_sparse.py",
    ["--kernel-size", "50", "--split-frames", "50", "--num-cpus", "2"],
    "dcnum BackgroundSparseMed(kernel_size=50), on a uint8 copy (dcnum is uint8 only)",
    "--out-full",
)

# case name -> {peer: runner(paths, repeat, tmpdir, timeout) -> measurement}
PEER_RUNNERS: dict[str, dict[str, Callable[[dict, int, Path, float], dict]]] = {
    "temporal_median_uint16": {p: _local_peer(p) for p in LOCAL_PEERS},
    "spatial_mean_uint16": {
        "smlmlp": _external_peer(
            "smlmlp",
            "smlmlp_background.py",
            ["spatial_mean", "--radius", "7"],
            "smlmlp.bkgd_spatial_mean(radius=7)",
            "--out",
        )
    },
    "rolling_median_uint16": {
        "smlmlp": _external_peer(
            "smlmlp",
            "smlmlp_background.py",
            ["temporal_median", "--window", "25"],
            "smlmlp.bkgd_temporal_median(median_window_fr=25): a 51-frame rolling median",
            "--out",
        )
    },
    "sparse_median_uint16": {"dcnum": _DCNUM_SPARSE},
    # the same peer again, next to the lazy case (its input is the same stack in RAM)
    "sparse_median_lazy": {"dcnum": _DCNUM_SPARSE},
}


def _fmt(v, spec: str) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def output_mb(name: str, shape: list[int]) -> float:
    """Size of a case's result (float32 unless said): +RSS includes it, work MB does not."""
    t, ny, nx = shape
    if name.startswith(("rolling", "bottleneck_rolling", "spatial", "smlmlp")):
        return t * ny * nx * 4 / 1e6  # a (T, Y, X) float32 background
    if name.endswith("_read"):
        return 0.0  # a 50-frame buffer, its working memory
    if name.startswith("sparse"):
        return (-(-t // 50) * ny * nx * 4 + t * 8) / 1e6  # ~T/50 images + offsets
    if name in LOCAL_PEERS:
        return ny * nx * 8 / 1e6  # float64 image
    if name == "dcnum":
        return 0.0  # written to HDF5 (its workers' RSS is workers_peak_rss_mb)
    return ny * nx * 4 / 1e6  # one float32 image


def work_mb(label: str, m: dict) -> float | None:
    extra = m.get("extra_rss_mb")
    if extra is None or "shape" not in m:
        return None
    return max(0.0, extra - output_mb(label, m["shape"]))


def _cells(label: str, stack: str, m: dict, n_px: int, ours: dict | None) -> list[str]:
    if "seconds" not in m:
        why = m.get("skipped") or "; ".join(m.get("error", ["error"]))
        return [label, stack, f"({why[:70]})"] + [""] * 10
    gb = n_px * 2 / 1e9
    ratio = (
        "" if ours is None or "seconds" not in ours else f"{m['seconds'] / ours['seconds']:.2f}"
    )
    return [
        label,
        stack,
        f"{m['seconds']:.3f}",
        f"{m['seconds'] / gb:.2f}",
        f"{n_px / m['seconds'] / 1e6:.0f}",
        _fmt(m.get("extra_rss_mb"), ".0f"),
        _fmt(work_mb(label.strip() if ours is not None else m.get("case", label), m), ".0f"),
        _fmt(m.get("rmse"), ".2f"),
        _fmt(m.get("rmse_beads"), ".2f"),
        _fmt(m.get("max_abs_err_truth"), ".1f"),
        _fmt(m.get("max_abs_err"), ".2g"),
        ratio,
        "",
    ]


HEAD = [
    "case",
    "stack",
    "s",
    "s/GB",
    "Mpx/s",
    "+RSS MB",
    "work MB",
    "RMSE",
    "RMSE@beads",
    "max|err|",
    "ref err",
    "peer/ours",
    "",
]


def _print_table(rows: list[list[str]]) -> None:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(HEAD)]
    print("  ".join(h.ljust(w) for h, w in zip(HEAD, widths, strict=True)).rstrip())
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def _targets(results: list[dict], lazy: list[dict]) -> list[dict]:
    """The issue's targets, evaluated on the flat stack (and the lazy cases)."""

    def get(case: str, stack: str = "flat") -> dict:
        return next((r for r in results if r["case"] == case and r["stack"] == stack), {})

    out = []

    def add(what: str, value, ok) -> None:
        out.append({"target": what, "value": value, "met": ok})

    tm = get("temporal_median_uint16")
    gb = math.prod(tm.get("ours", {}).get("shape", [0])) * 2 / 1e9
    if "seconds" in tm.get("ours", {}):
        s = tm["ours"]["seconds"] / gb
        add("temporal median <= 3 s/GB (2 cores)", f"{s:.2f} s/GB", s <= 3.0)
    for case, peer, need, what in [
        (
            "temporal_median_uint16",
            "bottleneck_median",
            9.0,
            "exact temporal median >= 9x bottleneck.median (#18)",
        ),
        (
            "rolling_median_uint16",
            "smlmlp",
            20.0,
            "rolling median >= 20x faster than smlmlp (#18)",
        ),
        ("spatial_mean_uint16", "smlmlp", 3.0, "spatial mean >= 3x faster than smlmlp"),
        ("sparse_median_uint16", "dcnum", 3.0, "sparse median Mpx/s >= 3x dcnum's (#18)"),
    ]:
        r = get(case)
        o, p = r.get("ours", {}), r.get("peers", {}).get(peer, {})
        if "seconds" in o and "seconds" in p:
            ratio = p["seconds"] / o["seconds"]
            add(what, f"x{ratio:.2f}", ratio >= need)
        else:
            add(what, "peer not measured", None)
    for key, what in [
        (lambda r: r["ours"].get("extra_rss_mb"), "peak extra RAM < 300 MB, result included"),
        (lambda r: work_mb(r["case"], r["ours"]), "peak extra RAM < 300 MB beyond the result"),
    ]:
        peaks = [
            (f"{r['case']} ({r['stack']})", key(r))
            for r in results
            if key(r) is not None and r["case"] != "bottleneck_rolling_ref"
        ]
        if peaks:
            worst = max(peaks, key=lambda p: p[1])
            over = [f"{n} {v:.0f}" for n, v in peaks if v >= 300]
            value = f"max {worst[1]:.0f} MB ({worst[0]})" + (
                f"; >= 300 MB: {', '.join(over)}" if over else ""
            )
            add(what, value, worst[1] < 300)
    for layout in ("tiles", "frames"):
        recs = [r for r in lazy if r.get("layout") == layout and "peak_extra_mb" in r]
        if recs:
            vals = ", ".join(f"{r['gb']:.1f} GB: {r['peak_extra_mb']:.0f} MB" for r in recs)
            ok = all(r["peak_extra_mb"] < 300 for r in recs)
            add(
                f"lazy temporal median ({layout} chunks): peak extra < 300 MB, flat in size",
                vals,
                ok,
            )
    sp, lz, rd = (
        get(c).get("ours", {})
        for c in ("sparse_median_uint16", "sparse_median_lazy", "sparse_median_lazy_read")
    )
    if "seconds" in sp and "seconds" in lz:
        # a lazy stack must be read once at least: numpy input's time plus that read
        # is the floor (the frames the numpy input holds already)
        value = f"lazy / numpy input x{lz['seconds'] / sp['seconds']:.2f}"
        ok = None
        if "seconds" in rd:
            floor = sp["seconds"] + rd["seconds"]
            value += f"; lazy / (numpy input + one read) x{lz['seconds'] / floor:.2f}"
            ok = lz["seconds"] <= 1.25 * floor
        add("lazy sparse median (TIFF) <= 1.25 x (numpy input + one read) (#18)", value, ok)
    plain, clip, masked = (get(c, "beads").get("ours", {}) for c in BEAD_CASES[:3])
    if "max_abs_err_truth" in plain:
        vals = (
            f"max|err| plain {plain['max_abs_err_truth']:.0f}, "
            f"sigma_clip {clip.get('max_abs_err_truth', float('nan')):.0f}, "
            f"mask {masked.get('max_abs_err_truth', float('nan')):.0f} ADU; RMSE@beads "
            f"{plain['rmse_beads']:.1f} / {clip.get('rmse_beads', float('nan')):.1f} / "
            f"{masked.get('rmse_beads', float('nan')):.1f}"
        )
        best = min(clip.get("rmse_beads", math.inf), masked.get("rmse_beads", math.inf))
        add(
            "object masking halves the temporal median's error at bead pixels (RMSE)",
            vals,
            best < 0.5 * plain["rmse_beads"],
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--cases", nargs="*", default=FLAT_CASES, choices=[*FLAT_CASES, *LAZY_SPARSE]
    )
    parser.add_argument("--beads", type=int, default=12, help="moving beads; 0: no beads stack")
    parser.add_argument("--beads-repeat", type=int, default=1)
    parser.add_argument(
        "--bead-speed", type=float, default=0.3, help="px/frame (slowly moving beads)"
    )
    parser.add_argument("--bead-cases", nargs="*", default=BEAD_CASES, choices=BEAD_CASES)
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--lazy-gb", type=float, nargs="*", default=[])
    parser.add_argument("--lazy-frames-gb", type=float, nargs="*", default=[])
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--json", type=Path, default=HERE / "results" / "bench_background.json")
    parser.add_argument("--report", type=Path, help="re-print (and re-judge) a stored JSON")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--paths", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.report:
        doc = json.loads(args.report.read_text())
        report(doc)
        args.report.write_text(json.dumps(doc, indent=2) + "\n")
        return 0
    if args.child == "first_call":
        print(json.dumps(child_first_call()))
        return 0
    if args.child == "lazy":
        gb, layout = args.paths.split(":")
        print(json.dumps(child_lazy(float(gb), layout)))
        return 0
    if args.child:
        print(json.dumps(child(args.child, json.loads(args.paths), args.repeat)))
        return 0

    n_px = args.frames * args.size**2
    print(
        f"camtrack.background on {args.frames} x {args.size} x {args.size} uint16 "
        f"({n_px * 2 / 1e6:.0f} MB), median of {args.repeat} (beads stack: "
        f"{args.beads_repeat}), {len(os.sched_getaffinity(0))} CPU(s)\n",
        flush=True,
    )
    results, stacks = [], {}
    with tempfile.TemporaryDirectory(prefix="camtrack-bench-bg-") as tmpdir:
        tmp = Path(tmpdir)
        plan = [("flat", c, args.repeat) for c in args.cases]
        stacks["flat"] = write_flat(args.frames, args.size, tmp)
        if args.beads:
            stacks["beads"] = write_beads(args.frames, args.size, args.beads, tmp, args.bead_speed)
            plan += [("beads", c, args.beads_repeat) for c in args.bead_cases]
        for stack, name, repeat in plan:
            paths = stacks[stack]
            ours = _measure(name, paths, repeat, args.timeout)
            peers = {}
            if not args.no_peers:
                for peer, runner in PEER_RUNNERS.get(name, {}).items():
                    peers[peer] = runner(paths, repeat, tmp, args.timeout)
            results.append(
                {"case": name, "stack": stack, "what": CASES[name], "ours": ours, "peers": peers}
            )
            print(
                "  " + " | ".join(c for c in _cells(name, stack, ours, n_px, None) if c),
                flush=True,
            )
    lazy = [
        _run_child(["--child", "lazy", "--paths", f"{gb}:tiles"], args.timeout)
        for gb in args.lazy_gb
    ]
    lazy += [
        _run_child(["--child", "lazy", "--paths", f"{gb}:frames"], args.timeout)
        for gb in args.lazy_frames_gb
    ]

    # Twice: the first may compile numba's kernels (a fresh install); the second loads
    # them from numba's on-disk cache, as every later process does.
    first_call = [_run_child(["--child", "first_call"], args.timeout) for _ in range(2)]

    import bottleneck
    import dask
    import scipy

    meta = {
        "shape": [args.frames, args.size, args.size],
        "repeat": args.repeat,
        "beads_repeat": args.beads_repeat,
        "beads": {
            k: v
            for k, v in stacks.get("beads", {}).items()
            if k not in ("stack", "truth", "mask", "beads_px")
        },
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "dask": dask.__version__,
        "bottleneck": bottleneck.__version__,
        "machine": platform.machine(),
        "cpus": len(os.sched_getaffinity(0)),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "command": " ".join(["python", "benchmarks/bench_background.py", *(argv or sys.argv[1:])]),
    }
    try:
        import numba

        meta["numba"] = numba.__version__
    except ImportError:
        meta["numba"] = None
    doc = {"meta": meta, "results": results, "lazy": lazy, "first_call": first_call}
    report(doc)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nwrote {args.json}")
    return 0


def report(doc: dict) -> None:
    """Print the table, the lazy cases and the targets; store the targets in ``doc``."""
    results, lazy = doc["results"], doc.get("lazy", [])
    n_px = math.prod(doc["meta"]["shape"])
    rows = []
    for r in results:
        rows.append(_cells(r["case"], r["stack"], r["ours"], n_px, None))
        rows += [_cells(f"  {p}", r["stack"], m, n_px, r["ours"]) for p, m in r["peers"].items()]
    print()
    _print_table(rows)
    if lazy:
        print("\nlazy (dask, generated on the fly) temporal_median, 512 x 512 frames:")
        for r in lazy:
            if "seconds" not in r:
                print(f"  error: {r.get('error')}")
                continue
            print(
                f"  {r['layout']:6s} {r['gb']:5.2f} GB {r['shape'][0]:6d} frames, chunks "
                f"{r['chunks']}: {r['seconds']:6.1f} s ({r['seconds'] / r['gb']:.1f} s/GB, of "
                f"which generation alone {r['generate_seconds']:.1f} s), peak extra "
                f"{r['peak_extra_mb']:.0f} MB, RMSE {r['rmse']:.2f} ADU"
            )
    for i, r in enumerate(doc.get("first_call", [])):
        if "temporal_median_first_s" in r:
            print(
                f"\nfirst call in a fresh process ({'compile or ' if i == 0 else ''}cached "
                f"kernels): import {r['import_s']:.2f} s, temporal_median "
                f"{r['temporal_median_first_s']:.2f} s, rolling_median "
                f"{r['rolling_median_first_s']:.2f} s"
            )
    doc["targets"] = _targets(results, lazy)
    print("\ntargets:")
    for t in doc["targets"]:
        mark = {True: "MET    ", False: "NOT MET", None: "n/a    "}[t["met"]]
        print(f"  {mark} {t['target']}: {t['value']}")


if __name__ == "__main__":
    sys.exit(main())
