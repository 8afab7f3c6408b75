"""The engine's one out-of-core layer: work dtypes, memory budgets, planners, BLAS.

Gain and background both reduce stacks that may not fit in memory, on numpy, cupy or
dask. What they need for that lives here, once (#17 item 3):

- the **work-dtype rule** (:func:`work_dtype`, :func:`fitted_work_dtype`): the float
  dtype a kernel computes in for a given input;
- the **memory budgets** (the ``*_BYTES`` constants, each with the reason for its
  value) and the one rule that turns a budget into a count (:func:`fit`);
- the **planners**: row bands (:func:`bands`), all-frames tiles (:func:`plan_tiles`,
  :func:`tile_chunks`, :func:`merge_tiles`), blocks of a streaming reduction
  (:func:`plan_blocks`), frame blocks (:func:`frame_blocks`), and how a dask stack
  reaches all frames per pixel (:func:`temporal_layout`: rechunked tiles
  :func:`to_time_tiles`, a spill file, or a chain of bands :func:`read_band`;
  :func:`needs_bands` decides between tiles and bands);
- the **banded reduction** (:func:`spill_reduce`): a frame-chunked dask stack spilled
  band-major (:meth:`camtrack._spill.BandStore.spill`) and reduced band by band, with
  progress and Cancel in both phases;
- the **BLAS limiter** (:func:`single_threaded_blas`), for every place where our own
  threads are the parallelism.

The median / MAD kernel they share is :mod:`camtrack._median` (on the counting order
statistics of :mod:`camtrack._select`); the spill files are :mod:`camtrack._spill`'s.
Cache-sized constants inside a kernel (a slab of a few MB, a histogram block in L2)
are not memory budgets; they stay with the kernel they tune.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

__all__ = [
    "BAND_BYTES",
    "BLOCK_BYTES",
    "DETECT_TILE_BYTES",
    "FLOAT32_EXACT",
    "MEDIAN_TILE_BYTES",
    "SPILL_BAND_BYTES",
    "STORE_MEMORY_BYTES",
    "TILE_BYTES",
    "Tile",
    "bands",
    "fit",
    "fitted_work_dtype",
    "frame_blocks",
    "merge_tiles",
    "needs_bands",
    "plan_blocks",
    "plan_tiles",
    "read_band",
    "single_threaded_blas",
    "spill_reduce",
    "temporal_layout",
    "tile_chunks",
    "to_time_tiles",
    "work_dtype",
]

Tile = tuple[slice, slice]

# ----------------------------------------------------------------------------- work dtype

# float32's significand has 24 bits: every integer up to 2**24 in magnitude is exact, and
# above it values round to multiples of 2 (4, ..., 32 at 2**28) ADU, as much as the noise
# being measured (the median gain was 2 % off at 2**24 and 44 % at 2**26).
FLOAT32_EXACT = 2**24


def work_dtype(dtype: Any) -> np.dtype:
    """The float dtype computations on data of ``dtype`` run in (and results come in).

    float32 for 8/16-bit integers, float16 and float32; float64 for float64 and for
    32/64-bit integers, whose values above 2**24 (:data:`FLOAT32_EXACT`) float32 would
    round. Decided from the dtype alone, so a lazy stack's result dtype is known
    before anything is read.
    """
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return np.dtype(np.float64) if dtype.itemsize >= 8 else np.dtype(np.float32)
    if dtype.kind in "iu" and dtype.itemsize >= 4:
        return np.dtype(np.float64)
    return np.dtype(np.float32)


def fitted_work_dtype(xp: Any, block: Any) -> np.dtype:
    """:func:`work_dtype`, narrowed to float32 where the data of ``block`` allow it.

    32/64-bit integers whose values all lie within +-2**24 (:data:`FLOAT32_EXACT`) are
    exact in float32 too, at half the memory traffic of float64; the range is read from
    the block (one extra min / max pass, for those dtypes only). For kernels whose
    result dtype does not follow the input's (the gain maps are float64 anyway).
    """
    wdt = work_dtype(block.dtype)
    dt = np.dtype(block.dtype)
    if wdt == np.float64 and dt.kind in "iu" and int(np.prod(block.shape)) > 0:
        lo, hi = int(xp.min(block)), int(xp.max(block))
        if max(-lo, hi) <= FLOAT32_EXACT:
            return np.dtype(np.float32)
    return wdt


# ----------------------------------------------------------------------------- budgets

# One all-frames tile of a temporal reduction (background quantiles, rolling median):
# its working copy in the work dtype stays below this, so a stack larger than RAM is
# reduced in bounded memory, with room for one tile per thread and their transposes.
TILE_BYTES = 64 * 2**20
# One all-frames tile of the gain median / MAD: the kernel holds a pixel-major working
# copy next to the tile and selects in it twice, so half the quantiles' tile.
MEDIAN_TILE_BYTES = 32 * 2**20
# Input bytes of one block of frames of a streaming (mergeable) reduction: a few
# slabs of frames, so the per-task overhead of dask stays small against the work.
BLOCK_BYTES = 16 * 2**20
# Native bytes of one band (all frames of some rows) read by the banded path without a
# spill file; the band, two input chunks in flight and the tiles' pixel-major copies
# stay < 300 MB.
BAND_BYTES = 96 * 2**20
# Native bytes of one band of a spill file; two are held (one reduced, one prefetched).
SPILL_BAND_BYTES = 48 * 2**20
# Block-level arrays (the gain's robust detection) larger than this, all together, go
# to temporary files instead of memory (:class:`camtrack._spill.BandStore`, ``on_disk``).
STORE_MEMORY_BYTES = 96 * 2**20
# float32 bytes of one block-level array of a tile of the gain's robust detection, its
# context rows and differences included: a tile holds several such arrays while it is
# pooled, one tile per thread, so the detection's memory does not grow with the stack.
DETECT_TILE_BYTES = 8 * 2**20


def fit(budget: int, unit_bytes: int, limit: int) -> int:
    """How many units of ``unit_bytes`` fit in ``budget`` bytes: at least 1, at most ``limit``."""
    return max(1, min(int(limit), int(budget) // max(1, int(unit_bytes))))


# ----------------------------------------------------------------------------- planners


def bands(n: int, size: int) -> list[slice]:
    """Consecutive ranges of ``size`` (the last one shorter) covering ``range(n)``."""
    size = max(1, min(int(n), int(size)))
    return [slice(a, min(n, a + size)) for a in range(0, n, size)]


def plan_tiles(
    shape: Sequence[int], itemsize: int, *, min_tiles: int = 1, budget: int = TILE_BYTES
) -> list[Tile]:
    """Split (Y, X) into tiles whose full time column fits in ``budget`` bytes.

    ``shape`` is (T, Y, X), ``itemsize`` the bytes of one value as the kernel holds it.
    Tiles are row bands (whole rows keep each tile's memory contiguous in a C-ordered
    stack); only when one row of all frames exceeds the budget are rows split in x.
    ``min_tiles`` asks for at least that many tiles (to feed several threads).
    """
    t, ny, nx = (int(s) for s in shape)
    row_bytes = t * nx * itemsize
    if row_bytes <= budget:
        rows = fit(budget, row_bytes, min(ny, -(-ny // max(1, min_tiles))))
        return [(ys, slice(0, nx)) for ys in bands(ny, rows)]
    cols = fit(budget, t * itemsize, nx)
    return [(slice(y, y + 1), xs) for y in range(ny) for xs in bands(nx, cols)]


def plan_blocks(
    shape: Sequence[int],
    itemsize: int,
    *,
    frames: int,
    overlap: int = 0,
    min_frames: int | None = None,
    max_frames: int | None = None,
    row_multiple: int = 1,
    whole_rows: bool = False,
    budget: int = BLOCK_BYTES,
) -> tuple[list[slice], int]:
    """Row bands and frames per block of a streaming (mergeable) reduction.

    The blocks of a stack that is reduced frames first (sums that merge, whatever
    the split): bands of rows such that ``frames`` frames of one band fit in
    ``budget`` bytes (a multiple of ``row_multiple`` rows; every row when
    ``whole_rows``, for readers that return whole frames), then as many frames per
    block as fit the budget for those rows, less the ``overlap`` frames a block reads
    beyond its own, clamped to [``min_frames`` (default ``frames``), ``max_frames``].
    Returns ``(bands, frames_per_block)``.
    """
    _t, ny, nx = (int(s) for s in shape)
    rows = fit(budget, frames * nx * itemsize, ny)
    if row_multiple > 1:
        rows = max(row_multiple, rows // row_multiple * row_multiple)
    if whole_rows:
        rows = ny
    row_bands = bands(ny, rows)
    height = row_bands[0].stop - row_bands[0].start
    per = max(frames if min_frames is None else min_frames, budget // (height * nx * itemsize) - overlap)  # fmt: skip
    return row_bands, per if max_frames is None else min(per, max_frames)


def tile_chunks(
    shape: Sequence[int], itemsize: int, budget: int = TILE_BYTES
) -> tuple[int, int, int]:
    """Chunks (T, rows, cols) of a dask stack rechunked for a temporal reduction."""
    ys, xs = plan_tiles(shape, itemsize, budget=budget)[0]
    return (int(shape[0]), ys.stop - ys.start, xs.stop - xs.start)


def merge_tiles(tiles: Sequence[Tile], k: int) -> list[Tile]:
    """Join runs of ``k`` consecutive row bands (full-width tiles only; others unchanged)."""
    tiles = list(tiles)
    if any(xs.start != 0 or xs.stop != tiles[0][1].stop for _, xs in tiles):
        return tiles
    out = []
    for i in range(0, len(tiles), k):
        group = tiles[i : i + k]
        out.append((slice(group[0][0].start, group[-1][0].stop), group[0][1]))
    return out


def frame_blocks(n_frames: int, n_blocks: int) -> list[slice]:
    """``n_blocks`` (at most ``n_frames``) contiguous, near-equal frame ranges."""
    n_blocks = max(1, min(int(n_blocks), n_frames))
    edges = np.linspace(0, n_frames, n_blocks + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in itertools.pairwise(edges)]


def needs_bands(stack: Any, itemsize: int, budget: int = TILE_BYTES) -> bool:
    """True when rechunking a dask stack to all-frames tiles would gather whole frame chunks.

    Rechunking (frames, rows, cols) chunks that are larger in space than one temporal
    tile makes every tile wait for every frame chunk, so all of them stay in memory
    at once. Such stacks (e.g. a TIFF read in chunks of whole frames) are read band
    by band instead (:func:`spill_reduce`, :func:`read_band`).
    """
    if len(stack.chunks[0]) == 1:
        return False
    _, rows, cols = tile_chunks(stack.shape, itemsize, budget)
    return max(stack.chunks[1]) * max(stack.chunks[2]) > rows * cols


def temporal_layout(
    stack: Any,
    itemsize: int,
    *,
    cluster: bool = False,
    budget: int = TILE_BYTES,
    spill_bytes: int | None = None,
) -> str:
    """How a dask stack is brought to all frames of each pixel for a temporal reduction.

    ``"tiles"``: rechunked to all-frames tiles (:func:`to_time_tiles`), when that does
    not gather whole frame chunks (:func:`needs_bands` is False), and always on a
    cluster (a p2p shuffle through the workers' disks: every frame chunk read once, no
    worker holding the stack). Otherwise, in this process: ``"spill"``, a band-major
    spill file (:func:`spill_reduce`; numpy chunks and room for ``spill_bytes``,
    default the stack's bytes), else ``"chain"``, bands read one after the other, each
    re-reading its rows of every frame chunk (:func:`read_band`).
    """
    if cluster or not needs_bands(stack, itemsize, budget):
        return "tiles"
    from camtrack._spill import spill_fits

    on_host = isinstance(getattr(stack, "_meta", None), np.ndarray)
    nbytes = int(stack.nbytes) if spill_bytes is None else int(spill_bytes)
    return "spill" if on_host and spill_fits(nbytes) else "chain"


def to_time_tiles(stack: Any, itemsize: int, *, cluster: bool = False, budget: int = TILE_BYTES) -> Any:  # fmt: skip
    """A dask stack rechunked to all-frames tiles (:func:`tile_chunks`); by a p2p shuffle
    on a cluster when its frames are split over several chunks."""
    method = "p2p" if cluster and len(stack.chunks[0]) > 1 else None
    return stack.rechunk(tile_chunks(stack.shape, itemsize, budget), method=method)


def read_band(stack: Any, tile: Tile, frames_at_once: int) -> Any:
    """All frames of ``stack[:, ys, xs]`` (dask), read ``frames_at_once`` frame chunks at a time."""
    from camtrack import _backend

    ys, xs = tile
    edges = np.cumsum((0, *stack.chunks[0]))
    step = max(1, int(frames_at_once))
    buf = None
    for i in range(0, len(edges) - 1, step):
        a, b = int(edges[i]), int(edges[min(i + step, len(edges) - 1)])
        # The local threaded scheduler: this runs inside a task of the outer graph.
        part = stack[a:b, ys, xs].compute(scheduler="threads")
        if buf is None:
            xp, _ = _backend.namespace(part)
            buf = xp.empty((stack.shape[0], *part.shape[1:]), dtype=part.dtype)
        buf[a:b] = part
        del part
    return buf


def spill_reduce(
    arrays: Sequence[Any],
    tiles: Sequence[Tile],
    reduce: Callable[..., Any],
    out: np.ndarray,
    *,
    progress: Any = None,
) -> np.ndarray:
    """The banded reduction: ``out[:, ys, xs] = reduce(*bands)`` for every tile, through a spill.

    ``arrays`` (frame-chunked dask, numpy chunks, same (T, Y, X) shape) are rewritten
    band-major into temporary files in one pass over their frame chunks
    (:meth:`camtrack._spill.BandStore.spill`), then each tile's bands are read back in one
    contiguous read each (the next tile's read while this one is reduced) and handed
    to ``reduce``, which returns (planes, rows, cols). ``progress`` (tqdm-like) is
    advanced per frame group written and per tile reduced, so an exception it raises
    (Cancel) stops within a group or a tile, and the files are removed.
    """
    from camtrack._parallel import track
    from camtrack._spill import BandStore

    with BandStore.spill(arrays, tiles, progress=progress) as spill:
        it = spill.iter_bands(range(len(arrays)))
        for k, data in track(it, len(tiles), progress):
            out[(slice(None), *tiles[k])] = reduce(*data)
            del data
    return out


# ----------------------------------------------------------------------------- BLAS

_BLAS_LOCK = threading.Lock()
_BLAS_USERS = 0
_BLAS_LIMITER: Any = None
_BLAS_CONTROLLER: tuple[int, Any] | None = None
_BLAS_THREAD: Any = None


def _blas_controller() -> Any:
    """threadpoolctl's controller of the loaded BLAS libraries, or None without threadpoolctl.

    Building one scans the loaded libraries (about 3 ms), so it is kept, and built
    again only when modules were imported since (a BLAS loaded later, e.g. scipy's).
    """
    global _BLAS_CONTROLLER
    n_modules = len(sys.modules)
    if _BLAS_CONTROLLER is None or _BLAS_CONTROLLER[0] != n_modules:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - threadpoolctl is a dependency
            return None
        _BLAS_CONTROLLER = (len(sys.modules), ThreadpoolController().select(user_api="blas"))
    return _BLAS_CONTROLLER[1]


def _reset_blas_state() -> None:
    """In a forked child: no helper thread, no lock held by a thread that is not there,
    no users (the child starts with none of its parent's threads)."""
    global _BLAS_LOCK, _BLAS_USERS, _BLAS_LIMITER, _BLAS_THREAD
    _BLAS_LOCK = threading.Lock()
    _BLAS_USERS, _BLAS_LIMITER, _BLAS_THREAD = 0, None, None


if hasattr(os, "register_at_fork"):  # POSIX: dask's process scheduler forks workers
    os.register_at_fork(after_in_child=_reset_blas_state)


def _on_blas_thread(func: Callable[[], Any]) -> Any:
    """Run ``func`` on one private thread, the only one that sets BLAS thread counts.

    OpenBLAS (0.3.31 here) shrinks its thread pool when the main thread lowers the
    count, and then ignores a raise from any other thread: a limit set in the main
    thread and restored by the last user in a worker thread left BLAS at one thread
    for good. Counts set from one non-main thread go down and back up as asked.
    """
    global _BLAS_THREAD
    if _BLAS_THREAD is None:
        from concurrent.futures import ThreadPoolExecutor

        _BLAS_THREAD = ThreadPoolExecutor(1, thread_name_prefix="camtrack-blas")
    return _BLAS_THREAD.submit(func).result()


def blas_threads() -> list[int]:
    """The thread count of every loaded BLAS library (for tests and diagnostics)."""
    ctl = _blas_controller()
    return [] if ctl is None else [int(info["num_threads"]) for info in ctl.info()]


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[bool]:
    """BLAS at one thread while inside, where the engine's own threads are the parallelism.

    OpenBLAS (numpy's and scipy's) starts its own threads for every matrix product;
    called from several of our threads at once it oversubscribes the cores and
    contends for its locks, so two threads ran slower than one (tracking: 0.87x; with
    BLAS at one thread: 1.88x), and the spatial filter's small per-block products ran
    ~1.6x faster. Every BLAS vendor threadpoolctl knows is limited. Nested and
    concurrent use, from any threads, is safe: the first user sets the limit, the last
    one restores the previous counts (both on one private thread, see
    :func:`_on_blas_thread`). Yields whether a limit is in force (False: no BLAS
    library found, or no threadpoolctl), so a caller can run on one thread instead.
    """
    global _BLAS_USERS, _BLAS_LIMITER
    with _BLAS_LOCK:
        if _BLAS_USERS == 0:
            ctl = _blas_controller()
            if ctl is not None and len(ctl):
                _BLAS_LIMITER = _on_blas_thread(lambda: ctl.limit(limits=1))
        _BLAS_USERS += 1
        limited = _BLAS_LIMITER is not None
    try:
        yield limited
    finally:
        with _BLAS_LOCK:
            _BLAS_USERS -= 1
            if _BLAS_USERS == 0 and _BLAS_LIMITER is not None:
                _on_blas_thread(_BLAS_LIMITER.restore_original_limits)
                _BLAS_LIMITER = None
