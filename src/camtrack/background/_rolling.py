"""Rolling (moving) temporal median: a per-frame background from nearby frames."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from camtrack import _backend
from camtrack._outofcore import (
    TILE_BYTES,
    bands,
    needs_bands,
    plan_tiles,
    to_time_tiles,
    work_dtype,
)
from camtrack._parallel import is_distributed
from camtrack._validation import check_integer, check_stack
from camtrack.background._common import (
    Progress,
    n_workers,
    run_parallel,
)
from camtrack.background._networks import BufferPool
from camtrack.background._slidehist import rolling_median_counted, use_sliding
from camtrack.background._sliding import sliding_median

__all__ = ["rolling_median"]

# Bytes of one (frames x pixels) array in the sliding-median networks: small enough
# to stay in the CPU caches between min/max passes, large enough that numpy's call
# overhead (a few microseconds per pass) stays negligible.
_TILE_BYTES = 2 * 2**20
# Row bands per time block of a frame-chunked dask stack: one task each, sharing the
# block's input chunks. The threads then mostly work on bands of one block (one
# block's input, small outputs) instead of on whole blocks (an input and a whole
# output each), at the same compute per frame (a band's windows cost what the block's
# did per pixel). Peak RSS above the input of one cold pass over a lazy 1000 x 512 x
# 512 uint16 TIFF (window 51, 2 cores, one process each, interleaved): 1 band
# 301-317 MB, 2 bands 240-285 MB, 4 bands 246-249 MB, times equal within the noise.
_ROW_BANDS = 4


def _check_window(window: Any, n_frames: int) -> int:
    window = check_integer(window, "window", minimum=1)
    if window % 2 == 0:
        raise ValueError(
            f"`window` must be odd so the window is centred on its frame; got {window}. "
            f"Use {window - 1} or {window + 1}."
        )
    if window > n_frames:
        largest = n_frames if n_frames % 2 else n_frames - 1
        raise ValueError(
            f"`window` ({window}) exceeds the number of frames ({n_frames}). Use at most "
            f"{largest}, or temporal_median(stack) for one background of all frames."
        )
    return window


def _rolling_cpu(
    tile: Any, window: int, dtype: Any, out: Any, pool: BufferPool, starts: Any = None
) -> None:
    """numpy kernel: (T, rows, cols) -> ``out`` rolling medians.

    Output frame ``j`` is the median of the window starting at frame ``starts[j]`` of
    the tile (default: centred, shifted at the ends, ``out`` shaped like the tile).
    8/16-bit integer tiles run a sliding histogram per pixel (:mod:`._slidehist`,
    numba; 2-3x the networks below on camera data). Otherwise the tile is used as (T, pixels) in its own dtype (a view for whole-row tiles):
    the shared comparator networks of :mod:`._sliding` need only min/max, exact in
    any dtype, so integers are not cast (float16 is widened: numpy has no fast
    float16 min/max).
    """
    t = tile.shape[0]
    half = window // 2
    if use_sliding(tile):  # 8/16-bit integers: a sliding histogram per pixel (numba)
        if starts is None:
            starts = np.clip(np.arange(t) - half, 0, t - window)
        rolling_median_counted(tile, window, starts, out)
        return
    x = tile.reshape(t, -1)
    if x.dtype == np.float16:
        x = x.astype(np.float32)
    body = sliding_median(x, window, pool=pool).reshape((t - window + 1, *tile.shape[1:]))
    if starts is not None:
        out[...] = body[starts]
        return
    out[half : t - half] = body
    out[:half] = body[0]
    out[t - half :] = body[-1]


def _rolling_xp(tile: Any, window: int, dtype: Any, out: Any) -> None:
    """Any-backend kernel (cupy): one median per window position."""
    xp, _ = _backend.namespace(tile)
    t = tile.shape[0]
    half = window // 2
    data = tile.astype(dtype, copy=False)
    for start in range(t - window + 1):
        out[start + half] = xp.median(data[start : start + window], axis=0)
    out[:half] = out[half]
    out[t - half :] = out[t - half - 1]


def _rolling_host(
    stack: Any,
    window: int,
    dtype: Any,
    out: Any,
    *,
    workers: int | None,
    progress: Any,
    starts: Any = None,
) -> None:
    """numpy: cache-sized spatial tiles through :func:`_rolling_cpu`, on threads."""
    tiles = plan_tiles(
        stack.shape,
        stack.dtype.itemsize,
        min_tiles=n_workers() if workers is None else workers,
        budget=_TILE_BYTES,
    )

    local = threading.local()  # one buffer pool per thread, dropped after this call

    def work(tile: tuple[slice, slice]) -> None:
        if not hasattr(local, "pool"):
            local.pool = BufferPool()
        ys, xs = tile
        _rolling_cpu(stack[:, ys, xs], window, dtype, out[:, ys, xs], local.pool, starts)

    run_parallel(work, tiles, progress=progress, workers=workers)


def _rolling_block(block: Any, window: int, out_dtype: Any) -> Any:
    xp, _ = _backend.namespace(block)
    out = xp.empty(block.shape, dtype=out_dtype)
    if xp is np:
        _rolling_host(block, window, out_dtype, out, workers=1, progress=None)
    else:
        _rolling_xp(block, window, out_dtype, out)
    return out


def _time_blocks(n_frames: int, window: int, frame_px: int, native: int, out: int) -> list[slice]:
    """Output frame ranges for the time-blocked path, each within one tile's budget.

    The working bytes of a block, its input frames (the output frames plus
    ``window - 1`` of context, native dtype) and its float output, stay within
    :data:`~camtrack._outofcore.TILE_BYTES`, as an all-frames tile of the other path.

    A block of ``L`` output frames reads ``L + window - 1`` input frames; ``L`` is at
    least ``window // 4`` (at most 5x re-reading) whatever the frame size.
    """
    per_in, per_out = frame_px * native, frame_px * out
    length = (TILE_BYTES - (window - 1) * per_in) // (per_in + per_out)
    length = int(min(n_frames, max(length, window // 4, 1)))
    return [slice(a, min(a + length, n_frames)) for a in range(0, n_frames, length)]


def _block_task(
    pieces: list[Any], starts: Any, window: int, dtype: Any, rows: slice = slice(None)
) -> Any:
    """One time block's ``rows``: ``pieces`` are its input frame chunks (whole frames),
    in order.

    The pieces are not concatenated: each cache-sized spatial tile gathers its rows
    from them, so the task's memory is its input chunks (shared with the block's other
    row bands) and its output.
    """
    xp, _ = _backend.namespace(pieces[0])
    pieces = [p[:, rows] for p in pieces]  # views
    n_in = sum(p.shape[0] for p in pieces)
    shape = pieces[0].shape[1:]
    out = xp.empty((len(starts), *shape), dtype=dtype)
    if xp is not np:
        full = _rolling_block(xp.concatenate(pieces), window, dtype)
        out[...] = full[xp.asarray(starts + window // 2)]
        return out
    pool = BufferPool()
    itemsize = pieces[0].dtype.itemsize
    for ys, xs in plan_tiles((n_in, *shape), itemsize, budget=_TILE_BYTES):
        tile = np.concatenate([p[:, ys, xs] for p in pieces]) if len(pieces) > 1 else pieces[0][:, ys, xs]  # fmt: skip
        _rolling_cpu(tile, window, dtype, out[:, ys, xs], pool, starts)
    return out


def _rolling_time_blocks(stack: Any, window: int, dtype: Any) -> Any:
    """Lazy rolling median of a frame-chunked dask stack, by blocks of frames.

    Each output block of frames ``[a, b)`` is :data:`_ROW_BANDS` tasks (one per row
    band) on the input frames its windows cover (``window - 1`` more than it
    outputs, read once for all bands), each running the in-memory kernel on its rows.
    The I/O is linear in the stack (each frame is read by at most a few neighbouring
    blocks), the memory is about one block's input and a band's output per worker
    whatever the number of frames, and the result is chunked by frames (and row
    bands), so showing one frame in napari computes one block.
    """
    import dask
    import dask.array as da

    t = int(stack.shape[0])
    half = window // 2
    native = np.dtype(stack.dtype).itemsize
    frame_px = int(np.prod(stack.shape[1:]))
    if len(stack.chunks[1]) > 1 or len(stack.chunks[2]) > 1:
        stack = stack.rechunk({1: -1, 2: -1})  # whole frames per chunk
    meta = _backend.dask_meta(stack, dtype, 3)
    task = dask.delayed(_block_task, pure=True)
    ny, nx = (int(s) for s in stack.shape[1:])
    row_bands = bands(ny, -(-ny // _ROW_BANDS))
    parts = []
    for block in _time_blocks(t, window, frame_px, native, dtype.itemsize):
        starts = np.clip(np.arange(block.start, block.stop) - half, 0, t - window)
        lo, hi = int(starts[0]), int(starts[-1]) + window
        pieces = list(stack[lo:hi].to_delayed().ravel())
        row_parts = []
        for ys in row_bands:
            value = task(pieces, starts - lo, window, dtype, ys)
            shape = (block.stop - block.start, ys.stop - ys.start, nx)
            row_parts.append([da.from_delayed(value, shape=shape, dtype=dtype, meta=meta)])
        parts.append(row_parts)
    return da.block(parts)


def rolling_median(
    stack: Any, window: int = 51, *, progress: Progress | None = None, scheduler: Any = None
) -> Any:
    """Per-frame background: the median of the ``window`` frames centred on each frame.

    Parameters
    ----------
    stack : array, shape (T, Y, X)
        numpy, cupy or dask; any integer or float dtype. Not modified.
    window : int
        Odd number of frames in each median, 1 <= window <= T. ``window=51`` is
        smlmLP's ``median_window_fr=25`` (a half-width).
    progress : callable, optional
        tqdm-like ``progress(iterable, total=n)``, advanced per spatial tile (numpy
        and cupy input; dask input stays lazy and does not call it).
    scheduler : None, str or distributed.Client
        Where dask input will be computed (a local dask scheduler name, a
        ``dask.distributed`` address or ``Client``; None: the active client, else
        ``DASK_SCHEDULER_ADDRESS``, else local threads). Checked here; the lazy graph
        is one task per chunk on every scheduler, so it runs on a cluster as it is:
        compute the result there.

    Returns
    -------
    array, shape (T, Y, X)
        float32 (float64 for float64 or 32/64-bit integer input), on the input's
        backend; lazy for dask input.

    Notes
    -----
    Frame ``t`` gets ``median(stack[s : s + window], axis=0)`` with
    ``s = clip(t - window // 2, 0, T - window)``: centred where possible, and near
    the ends shifted to stay inside the stack, so every output is a median of exactly
    ``window`` frames (the first ``window // 2 + 1`` frames share one background, as
    do the last). A NaN in a window makes that output NaN.

    On the CPU, 8/16-bit integer stacks keep a histogram of each pixel's window,
    updated by one sample out and one in per frame, with the median as a pointer
    that moves a few bins (``camtrack.background._slidehist``, compiled with numba;
    its cost hardly depends on ``window``). Other dtypes (or no numba) share sorted
    order statistics between neighbouring windows through pruned comparator
    networks run as numpy min/max passes over (windows x pixels) arrays (see
    ``camtrack.background._sliding``): exact, in the input's own dtype, about 50
    passes per output for ``window=51`` and growing as log(window). The work runs
    on spatial tiles (all frames of a few rows, ~2 MB per array so the passes stay in
    cache) on one thread per core. dask input is rechunked to the full time axis and
    spatial tiles of at most 64 MB, each processed the same way; input in chunks of
    whole frames (a TIFF, an HDF5 stack chunked by frames) is processed by blocks of
    frames instead (each block reads the ``window - 1`` frames of context its windows
    need; the result is chunked by frames and row bands), so the I/O stays linear and the working
    memory bounded whatever the number of frames. cupy input takes one
    median per window position on the GPU.

    Examples
    --------
    >>> import numpy as np
    >>> stack = np.arange(7, dtype=np.uint16)[:, None, None] * np.ones((1, 2, 2), np.uint16)
    >>> rolling_median(stack, window=3)[:, 0, 0]
    array([1., 1., 2., 3., 4., 5., 5.], dtype=float32)
    """
    check_stack(stack)
    is_distributed(scheduler)  # checks it: the graph is the same on every scheduler
    window = _check_window(window, int(stack.shape[0]))
    dtype = work_dtype(stack.dtype)

    if _backend.is_dask(stack):
        if needs_bands(stack, dtype.itemsize):
            return _rolling_time_blocks(stack, window, dtype)
        data = to_time_tiles(stack, dtype.itemsize)
        return data.map_blocks(
            _rolling_block,
            window=window,
            out_dtype=dtype,
            dtype=dtype,
            meta=_backend.dask_meta(stack, dtype, 3),
        )

    xp, _ = _backend.namespace(stack)
    out = xp.empty(stack.shape, dtype=dtype)
    if xp is np:
        _rolling_host(stack, window, dtype, out, workers=None, progress=progress)
        return out
    tiles = plan_tiles(stack.shape, dtype.itemsize)

    def work(tile: tuple[slice, slice]) -> None:
        ys, xs = tile
        _rolling_xp(stack[:, ys, xs], window, dtype, out[:, ys, xs])

    run_parallel(work, tiles, progress=progress, workers=1)
    return out
