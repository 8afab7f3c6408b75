"""Running the kernels over a whole stack: tiles, threads, dask graphs and progress.

- numpy and cupy: row bands holding every frame, on a thread pool (numpy, bottleneck
  and the float32 casts release the GIL, so threads use every core); results go
  straight into the output maps.
- dask, moments (``meanvar``, ``diff``, ``robust``): blocks of consecutive frames
  (with the few frames of look-ahead the differences need), reduced to sums and merged
  in a tree. The graph never needs all frames of a pixel at once, so a stack larger
  than memory, lazily read or generated chunk by chunk, streams through in bounded
  memory whatever its chunking.
- dask, median (``median``): a median does not merge, so the stack is rechunked to
  all frames by spatial tiles and reduced with ``map_blocks`` (a frame-chunked stack:
  through a band-major spill file locally, a disk-backed p2p rechunk on a cluster).

dask graphs run where :func:`camtrack._parallel.scheduler_target` says (``scheduler=``,
an active ``distributed`` client, ``DASK_SCHEDULER_ADDRESS``, else local threads).

Progress follows the engine's protocol: any tqdm-like callable used as
``progress(iterable, total=n)``, advanced once per finished tile or block.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from camtrack import _backend, _outofcore
from camtrack._median import median_mad
from camtrack._outofcore import (
    BLOCK_BYTES,
    MEDIAN_TILE_BYTES,
    STORE_MEMORY_BYTES,
    merge_tiles,
    plan_blocks,
    plan_tiles,
    spill_reduce,
    temporal_layout,
    to_time_tiles,
    work_dtype,
)
from camtrack._parallel import (
    Hidden,
    Progress,
    compute_on_cores,
    for_each_result,
    is_distributed,
    n_workers,
    run_parallel,
    run_with_ticks,
    runs_per_task,
)
from camtrack.gain._kernels import OVERLAP, SLAB_FRAMES, merge_sums, moment_sums

__all__ = ["Progress", "n_workers", "reduce_median", "reduce_moments"]


# ----------------------------------------------------------------------------- moments


def reduce_moments(stack: Any, *, progress: Progress | None = None, scheduler: Any = None) -> dict:
    """Merged :func:`moment_sums` of a whole (T, Y, X) stack, maps on the input backend.

    dask input comes back as numpy (or cupy) maps: they are what the fit needs; its
    graph runs on ``scheduler`` (see :func:`camtrack._parallel.scheduler_target`).
    """
    if _backend.is_dask(stack):
        return _moments_dask(stack, progress, scheduler)
    xp, _ = _backend.namespace(stack)
    t, ny, _nx = (int(s) for s in stack.shape)
    gpu = xp is not np
    workers = 1 if gpu else n_workers()
    bands = [slice(0, ny)] if gpu else _outofcore.bands(ny, -(-ny // (4 * workers)))
    parts: dict[int, dict] = {}

    def work(i: int) -> None:
        parts[i] = moment_sums(xp, stack[:, bands[i]], t)

    run_parallel(work, list(range(len(bands))), progress=progress, workers=workers)
    return _stack_bands([parts[i] for i in range(len(bands))], xp)


def _stack_bands(parts: list[dict], xp: Any) -> dict:
    """Join the sums of row bands (same frames) into full maps."""
    if len(parts) == 1:
        return parts[0]
    out = dict(parts[0])
    for key, value in parts[0].items():
        if hasattr(value, "ndim") and value.ndim == 2:
            out[key] = xp.concatenate([p[key] for p in parts], axis=0)
    return out


def _moments_dask(stack: Any, progress: Progress | None, scheduler: Any = None) -> dict:
    import dask
    from dask.base import tokenize

    t = int(stack.shape[0])
    itemsize = max(np.dtype(stack.dtype).itemsize, 2)
    # Blocks: a few slabs of frames; row bands only when one frame is very large. On a
    # cluster each task reads its own frames (Hidden) and a read returns whole frames:
    # row bands would read every frame once per band.
    cluster = is_distributed(scheduler)
    bands, block_frames = plan_blocks(
        stack.shape, itemsize, frames=SLAB_FRAMES + OVERLAP, overlap=OVERLAP,
        min_frames=SLAB_FRAMES, max_frames=4 * SLAB_FRAMES, budget=BLOCK_BYTES,
        whole_rows=cluster and _whole_frames(stack),
    )  # fmt: skip
    edges = [*list(range(0, t, block_frames)), t]
    runs = [[(a, b)] for a, b in itertools.pairwise(edges)]
    if cluster:
        runs = runs_per_task(runs, scheduler, len(bands))
    token = tokenize(stack)
    kernel = dask.delayed(_run_sums, pure=True)
    merge = dask.delayed(merge_sums, pure=True)
    xp, _ = _backend.namespace(stack)
    outs, kernels = [], []
    for ys in bands:
        leaves = []
        for run in runs:
            # On a cluster each task reads its own frames (Hidden: no chunk transfers).
            pieces = [stack[a : min(t, b + OVERLAP), ys] for a, b in run]
            pieces = [Hidden(p) for p in pieces] if cluster else pieces
            key = f"camtrack-gain-block-{token}-{ys.start}-{run[0][0]}"
            leaves.append(kernel(pieces, [b - a for a, b in run], dask_key_name=key))
        kernels.extend(leaves)
        while len(leaves) > 1:  # pairwise tree, order preserved (a before b)
            nxt = [merge(leaves[i], leaves[i + 1]) for i in range(0, len(leaves) - 1, 2)]
            if len(leaves) % 2:
                nxt.append(leaves[-1])
            leaves = nxt
        outs.append(leaves[0])
    parts = compute_on_cores(outs, progress=progress, scheduler=scheduler, ticks=kernels)
    return _stack_bands(list(parts), xp)


def _run_sums(pieces: list, owns: list[int]) -> dict:
    """Merged sums of consecutive blocks, read and reduced one after the other."""
    out = None
    for piece, own in zip(pieces, owns, strict=True):
        part = _block_sums(piece, own)
        out = part if out is None else merge_sums(out, part)
    return out


def _block_sums(piece: Any, own: int) -> dict:
    if isinstance(piece, Hidden):
        piece = piece.read()
    xp, _ = _backend.namespace(piece)
    return moment_sums(xp, piece, own)


# ----------------------------------------------------------------------------- median


def _median_tiles(stack: Any, min_tiles: int) -> list[tuple[slice, slice]]:
    """All-frames tiles of the median kernel: its working copy (in the widest work dtype
    the data may need) within :data:`~camtrack._outofcore.MEDIAN_TILE_BYTES`."""
    itemsize = work_dtype(stack.dtype).itemsize
    return plan_tiles(stack.shape, itemsize, min_tiles=min_tiles, budget=MEDIAN_TILE_BYTES)


def reduce_median(
    stack: Any, *, progress: Progress | None = None, scheduler: Any = None
) -> tuple[Any, Any, Any, Any]:
    """Temporal median, MAD, max and min maps (float64) of a (T, Y, X) stack."""
    _t, ny, nx = (int(s) for s in stack.shape)
    if _backend.is_dask(stack):
        return _median_dask(stack, progress, scheduler)
    xp, _ = _backend.namespace(stack)
    gpu = xp is not np
    workers = 1 if gpu else n_workers()
    tiles = _median_tiles(stack, 1 if gpu else 4 * workers)
    med = xp.empty((ny, nx), xp.float64)
    mad = xp.empty_like(med)
    vmax = xp.empty_like(med)
    vmin = xp.empty_like(med)

    def work(tile: tuple[slice, slice]) -> None:
        block = stack[(slice(None), *tile)]
        med[tile], mad[tile] = median_mad(xp, block)
        vmax[tile] = block.max(axis=0)
        vmin[tile] = block.min(axis=0)

    run_parallel(work, tiles, progress=progress, workers=workers)
    return med, mad, vmax, vmin


def _median_tile(block: Any) -> Any:
    xp, _ = _backend.namespace(block)
    med, mad = median_mad(xp, block)
    f64 = xp.float64
    return xp.stack([med, mad, block.max(axis=0).astype(f64), block.min(axis=0).astype(f64)])


def _median_dask(
    stack: Any, progress: Progress | None, scheduler: Any = None
) -> tuple[Any, Any, Any, Any]:
    import dask.array as da
    from dask.base import tokenize

    cluster = is_distributed(scheduler)
    itemsize = work_dtype(stack.dtype).itemsize
    # The engine's one rule (shared with the background's quantiles): a spill file when
    # the all-frames tiles would gather whole frame chunks in this process; else a
    # rechunk to those tiles (a p2p shuffle on a cluster). Without room to spill (or on
    # cupy chunks) the rechunk too: one task per tile, memory bounded by the tile.
    layout = temporal_layout(stack, itemsize, cluster=cluster, budget=MEDIAN_TILE_BYTES)
    if layout == "spill":
        return _median_spill(stack, progress)
    data = to_time_tiles(stack, itemsize, cluster=cluster, budget=MEDIAN_TILE_BYTES)
    name = f"camtrack-gain-median-{tokenize(data)}"
    out = da.map_blocks(
        _median_tile,
        data,
        chunks=((4,), data.chunks[1], data.chunks[2]),
        dtype=np.float64,
        meta=_backend.dask_meta(stack, np.float64, 3),
        name=name,
    )
    maps = compute_on_cores(out, progress=progress, scheduler=scheduler)
    return maps[0], maps[1], maps[2], maps[3]


def _median_spill(stack: Any, progress: Progress | None) -> tuple[Any, Any, Any, Any]:
    """Median maps of a frame-chunked dask stack through a band-major spill file.

    Gathering all frames of a tile from frame chunks re-reads every chunk once per
    tile (I/O growing as T x Y x X squared over the tile size); the spill rewrites the
    stack once so that each tile is one contiguous read (3 x the stack in I/O), the
    next tile read while this one is reduced.
    """
    _t, ny, nx = (int(s) for s in stack.shape)
    # Twice the kernel's tiles: each is split again over the threads.
    tiles = merge_tiles(_median_tiles(stack, 1), 2)
    maps = np.empty((4, ny, nx), np.float64)

    def reduce(block: np.ndarray) -> np.ndarray:
        return np.stack(reduce_median(block))  # numpy: on every core

    spill_reduce([stack], tiles, reduce, maps, progress=progress)
    return maps[0], maps[1], maps[2], maps[3]


# ----------------------------------------------------------------------------- robust


def reduce_robust(
    stack: Any,
    usable: np.ndarray,
    *,
    shift: float = 0.0,
    progress: Progress | None = None,
    scheduler: Any = None,
) -> tuple[Any, Any, Any]:
    """Mean, variance and kept-difference count maps of the ``"robust"`` kernel.

    Two streaming passes over the stack, in row bands (numpy, cupy: threads) or in
    pieces of frames by rows (dask: a stack larger than memory streams through): the
    block sums, then, after the detection on those (1/32 as many values as the stack
    has pixels; kept in temporary files when a lazy stack makes them large), the
    per-pixel sums over the kept differences. Returns float64 mean and variance maps
    and the int64 count map, on the input's backend (numpy for dask). ``shift``: ADU
    subtracted before the level sums and added back to the mean (pass the stack's
    minimum; see :func:`~camtrack.gain._robust.kept_sums`). dask pieces are read and
    reduced on ``scheduler``; the detection between the passes runs here.
    """
    from camtrack._spill import BandStore, spill_fits
    from camtrack.gain import _robust as rb

    t, ny, nx = (int(s) for s in stack.shape)
    xp, ndi = _backend.namespace(stack)
    usable = np.asarray(_backend.to_host(usable), dtype=bool)
    nby, nbx = rb.n_blocks(ny), rb.n_blocks(nx)
    pad = np.zeros((nby * rb.BLOCK, nbx * rb.BLOCK), np.float32)
    pad[:ny, :nx] = usable
    n_pix = xp.asarray(pad.reshape(nby, rb.BLOCK, nbx, rb.BLOCK).sum(axis=(1, 3)))
    use = xp.asarray(usable)
    gpu = xp is not np
    workers = 1 if gpu else n_workers()
    if _backend.is_dask(stack):
        pieces = _robust_pieces(stack, whole=is_distributed(scheduler) and _whole_frames(stack))
    else:
        rows = -(-ny // (4 * workers)) if workers > 1 else ny
        pieces = [
            (slice(0, t - 1), ys) for ys in _outofcore.bands(ny, -(-rows // rb.BLOCK) * rb.BLOCK)
        ]
    piece_rows = sorted({(ys.start // rb.BLOCK, rb.n_blocks(ys.stop)) for _, ys in pieces})
    bands = rb.detection_bands(nby, piece_rows)
    arrays = {"energy": (t - 1, np.float32), "level": (t, np.float32), "keep": (t - 1, bool)}
    size = BandStore.nbytes(arrays, (nby, nbx))
    on_disk = (
        _backend.is_dask(stack) and size > STORE_MEMORY_BYTES and not gpu and spill_fits(size)
    )
    # Frames ts.start .. ts.stop of rows ys: the differences ts and the frame after the last.
    frames = [stack[ts.start : ts.stop + 1, ys] for ts, ys in pieces]
    out: dict[str, Any] = {}

    def run(tick: Callable[[], None]) -> None:
        tiles = [(slice(b0, b1), slice(0, nbx)) for b0, b1 in bands]
        with BandStore(arrays, (nby, nbx), tiles, xp=xp, on_disk=on_disk, kind="blocks") as store:

            def sums_done(i: int, result: tuple[Any, Any]) -> None:
                ts, ys = pieces[i]
                store.write_rows("energy", ts.start, ys.start // rb.BLOCK, result[0])
                store.write_rows("level", ts.start, ys.start // rb.BLOCK, result[1])
                tick()

            def sums_args(i: int) -> tuple[Any, float]:
                return use[pieces[i][1]], shift

            for_each_result(_energy_kernel, frames, sums_args, sums_done, scheduler=scheduler)
            _backend.release_memory()
            rb.detect(xp, ndi, store, n_pix, workers=workers)
            _backend.release_memory()
            totals = {key: xp.zeros((ny, nx), xp.float64) for key in ("s1", "s2", "sx")}
            lock = threading.Lock()

            def kept_args(i: int) -> tuple[Any, float]:
                ts, ys = pieces[i]
                return store.read_rows(
                    "keep", ys.start // rb.BLOCK, rb.n_blocks(ys.stop), ts
                ), shift

            def kept_done(i: int, part: dict) -> None:
                ys = pieces[i][1]
                with lock:
                    for key, value in part.items():
                        totals[key][ys] += xp.asarray(value)
                tick()

            for_each_result(_kept_kernel, frames, kept_args, kept_done, scheduler=scheduler)
            n_b = xp.zeros((nby, nbx), xp.int64)
            adj_b = xp.zeros((nby, nbx), xp.int64)
            for b0, b1 in bands:
                keep = store.read_rows("keep", b0, b1)
                n_b[b0:b1] = keep.sum(axis=0)
                adj_b[b0:b1] = (keep[1:] & keep[:-1]).sum(axis=0)
            out.update(totals, n_b=n_b, adj_b=adj_b)

    run_with_ticks(run, 2 * len(pieces), progress)
    n = _upsample_blocks(xp, out.pop("n_b"), ny, nx, rb.BLOCK)
    adj = _upsample_blocks(xp, out.pop("adj_b"), ny, nx, rb.BLOCK)
    mean, var = rb.finish(out, n, adj)
    mean = mean + shift
    count = xp.where(use, n, 0)
    return mean.astype(xp.float64), var.astype(xp.float64), count.astype(xp.int64)


def _energy_kernel(piece: Any, use: Any, shift: float) -> tuple[Any, Any]:
    xp, _ = _backend.namespace(piece)
    from camtrack.gain._robust import block_energy

    return block_energy(xp, xp.asarray(piece), xp.asarray(use), shift)


def _kept_kernel(piece: Any, keep: Any, shift: float) -> dict:
    xp, _ = _backend.namespace(piece)
    from camtrack.gain._robust import kept_sums

    return kept_sums(xp, xp.asarray(piece), xp.asarray(keep), shift)


def _upsample_blocks(xp: Any, b: Any, ny: int, nx: int, block: int) -> Any:
    return xp.repeat(xp.repeat(b, block, axis=0), block, axis=1)[:ny, :nx]


def _whole_frames(stack: Any) -> bool:
    """True when every chunk of a dask stack holds whole frames (a file read by frames)."""
    return len(stack.chunks[1]) == 1 and len(stack.chunks[2]) == 1


def _robust_pieces(stack: Any, whole: bool = False) -> list[tuple[slice, slice]]:
    """(differences, rows) pieces of a dask stack for the robust passes: about
    :data:`BLOCK_BYTES` of input each, rows starting at block boundaries."""
    from camtrack.gain._robust import BLOCK

    t = int(stack.shape[0])
    itemsize = max(np.dtype(stack.dtype).itemsize, 2)
    # Pieces read in their own tasks (a cluster) take whole frames, each read once.
    bands, diffs = plan_blocks(
        stack.shape, itemsize, frames=64, overlap=1, row_multiple=BLOCK, whole_rows=whole,
        budget=BLOCK_BYTES,
    )  # fmt: skip
    edges = [*range(0, t - 1, diffs), t - 1]
    return [(slice(a, b), ys) for ys in bands for a, b in itertools.pairwise(edges)]
