"""Stacks frame by frame: eager numpy, or a lazy dask array built chunk by chunk.

A stack is defined by ``render(frames) -> (len(frames), Y, X)``, a pure function of
the frame indices (each frame draws from its own seeded stream). The eager stack and
every chunking of the lazy one therefore hold the same numbers, and a lazy stack never
materialises more than one chunk per worker.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["build_stack", "check_chunks"]

_EAGER_BLOCK_BYTES = 64 * 2**20  # float64 scratch per eager block


def check_chunks(chunks: Any) -> int | None:
    """None, or a positive number of frames per chunk."""
    if chunks is None:
        return None
    if isinstance(chunks, bool) or not isinstance(chunks, int | np.integer) or chunks < 1:
        raise ValueError(
            f"`chunks` must be None (eager numpy) or a positive int (frames per dask chunk); "
            f"got {chunks!r}."
        )
    return int(chunks)


def build_stack(
    render: Callable[[np.ndarray], np.ndarray],
    n_frames: int,
    frame_shape: tuple[int, int],
    dtype: str,
    chunks: int | None,
) -> Any:
    """(n_frames, Y, X) from ``render``: numpy when ``chunks`` is None, else lazy dask."""
    if chunks is None:
        out = np.empty((n_frames, *frame_shape), dtype=dtype)
        block = max(1, _EAGER_BLOCK_BYTES // (8 * frame_shape[0] * frame_shape[1]))
        for start in range(0, n_frames, block):
            frames = np.arange(start, min(n_frames, start + block))
            out[frames] = render(frames)
        return out

    import dask.array as da

    def _chunk(frames: np.ndarray) -> np.ndarray:
        return render(np.asarray(frames, dtype=np.intp)).astype(dtype, copy=False)

    index = da.arange(n_frames, chunks=chunks)
    return index.map_blocks(
        _chunk,
        new_axis=[1, 2],
        chunks=(index.chunks[0], (frame_shape[0],), (frame_shape[1],)),
        dtype=np.dtype(dtype),
        meta=np.empty((0, 0, 0), dtype=dtype),
        token="camtrack-simulate",
    )
