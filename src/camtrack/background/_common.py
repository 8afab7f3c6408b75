"""Shared plumbing for the background engine: dtypes, tiles, masks (threads and progress
from :mod:`camtrack._parallel`, re-exported here)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from camtrack import _backend
from camtrack._parallel import Progress as Progress
from camtrack._parallel import n_workers as n_workers
from camtrack._parallel import run_parallel as run_parallel
from camtrack._parallel import track as track

# One temporal tile (all frames of a spatial tile, in the working float dtype) stays
# below this many bytes, so a stack larger than RAM is reduced in bounded memory.
TILE_BYTES = 64 * 2**20

Tile = tuple[slice, slice]


def work_dtype(dtype: Any) -> np.dtype:
    """The float dtype computations run in.

    float32 for 8/16-bit integers, float16 and float32; float64 for float64 and for
    32/64-bit integers, whose values above 2**24 float32 would round.
    """
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return np.dtype(np.float64) if dtype.itemsize >= 8 else np.dtype(np.float32)
    if dtype.kind in "iu" and dtype.itemsize >= 4:
        return np.dtype(np.float64)
    return np.dtype(np.float32)


def plan_tiles(
    shape: Sequence[int], itemsize: int, *, min_tiles: int = 1, budget: int = TILE_BYTES
) -> list[Tile]:
    """Split (Y, X) into tiles whose full time column fits in ``budget`` bytes.

    Tiles are row bands (whole rows keep each tile's memory contiguous in a C-ordered
    stack); only when one row of all frames exceeds the budget are rows split in x.
    ``min_tiles`` asks for at least that many tiles (to feed several threads).
    """
    t, ny, nx = (int(s) for s in shape)
    row_bytes = t * nx * itemsize
    if row_bytes <= budget:
        rows = max(1, min(ny, budget // row_bytes, -(-ny // max(1, min_tiles))))
        return [(slice(y, min(y + rows, ny)), slice(0, nx)) for y in range(0, ny, rows)]
    cols = max(1, budget // (t * itemsize))
    return [
        (slice(y, y + 1), slice(x, min(x + cols, nx)))
        for y in range(ny)
        for x in range(0, nx, cols)
    ]


def dask_tile_chunks(shape: Sequence[int], itemsize: int) -> tuple[int, int, int]:
    """Chunks (T, rows, cols) for a temporal reduction of a dask stack."""
    tile = plan_tiles(shape, itemsize)[0]
    return (int(shape[0]), tile[0].stop - tile[0].start, tile[1].stop - tile[1].start)


def frame_blocks(n_frames: int, n_blocks: int) -> list[slice]:
    """``n_blocks`` (at most ``n_frames``) contiguous, near-equal frame ranges."""
    n_blocks = max(1, min(int(n_blocks), n_frames))
    edges = np.linspace(0, n_frames, n_blocks + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in itertools.pairwise(edges)]


def dask_meta(stack: Any, dtype: Any, ndim: int) -> Any:
    """An empty array of the stack's chunk backend (numpy or cupy) for ``meta=``."""
    xp, _ = _backend.namespace(stack)
    return xp.empty((0,) * ndim, dtype=dtype)


def is_dask(x: Any) -> bool:
    return _backend.is_dask(x)


def check_frame_or_pixel_mask(mask: Any, shape: Sequence[int], name: str = "mask") -> Any:
    """Check an exclusion mask: (T,) per frame or (T, Y, X) per pixel, boolean."""
    mshape = tuple(int(s) for s in getattr(mask, "shape", ()))
    dtype = getattr(mask, "dtype", None)
    if dtype is None or np.dtype(dtype) != np.bool_:
        raise TypeError(
            f"`{name}` must be a boolean array (True marks data to leave out); got "
            f"{type(mask).__name__} of dtype {dtype}. Build it with a comparison, "
            "e.g. stack > threshold."
        )
    t = int(shape[0])
    if mshape not in ((t,), tuple(int(s) for s in shape)):
        raise ValueError(
            f"`{name}` must have shape ({t},) (one flag per frame) or "
            f"{tuple(int(s) for s in shape)} (one flag per pixel); got {mshape}."
        )
    return mask


def iter_chunks(length: int, size: int) -> Iterator[slice]:
    for a in range(0, length, size):
        yield slice(a, min(a + size, length))
