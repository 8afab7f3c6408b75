"""Shared pieces of the lazy readers: chunk sizes, index keys, proxy -> dask.

A reader builds a small *proxy*: a picklable object holding only the file path and
where the data lies (offsets, dataset name), plus ``shape`` and ``dtype``. Its
``__getitem__`` opens the file, reads the requested block and closes it again, so a
dask task can run in any thread or process (dask.distributed workers included) and
nothing keeps a file handle open between tasks.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

__all__ = ["DEFAULT_CHUNK_BYTES", "as_dask", "file_stamp", "frame_chunks", "normalize_key"]

DEFAULT_CHUNK_BYTES = 8 * 2**20
"""Target bytes per chunk for ``chunks="auto"``: a few frames, never less than one."""

Chunks = str | int | tuple


def frame_chunks(
    shape: tuple[int, ...], n_frame_dims: int, itemsize: int, chunks: Chunks = "auto"
) -> tuple:
    """Dask chunks of whole frames for an array of shape (frames..., *frame).

    Parameters
    ----------
    shape : tuple of int
        Array shape; the last `n_frame_dims` axes form one frame (Y, X[, S]).
    n_frame_dims : int
        Number of trailing axes kept whole in every chunk.
    itemsize : int
        Bytes per element.
    chunks : 'auto', int, str or tuple
        ``'auto'``: about `DEFAULT_CHUNK_BYTES` per chunk; a byte string such as
        ``'32 MiB'``: that target instead; an int: that many frames per chunk;
        a tuple: handed to dask unchanged.

    Notes
    -----
    Frames are counted over all leading axes, filling the innermost leading axis
    first, so a (T, Z, Y, X) stack with small Z gets chunks of whole Z stacks.

    Examples
    --------
    >>> frame_chunks((100, 512, 512), 2, 2)
    (16, 512, 512)
    >>> frame_chunks((100, 512, 512), 2, 2, chunks=1)
    (1, 512, 512)
    """
    if isinstance(chunks, tuple):
        return chunks
    frame = shape[len(shape) - n_frame_dims :]
    frame_bytes = max(1, int(np.prod(frame, dtype=np.int64)) * itemsize)
    if isinstance(chunks, str) and chunks == "auto":
        n_frames = DEFAULT_CHUNK_BYTES // frame_bytes
    elif isinstance(chunks, str):
        from dask.utils import parse_bytes

        n_frames = parse_bytes(chunks) // frame_bytes
    elif isinstance(chunks, int | np.integer) and not isinstance(chunks, bool) and chunks > 0:
        n_frames = int(chunks)
    else:
        raise ValueError(
            f"`chunks` must be 'auto', a byte size such as '32 MiB', a positive number of "
            f"frames or a tuple of dask chunks; got {chunks!r}."
        )
    n_frames = max(1, int(n_frames))
    lead: list[int] = []
    for n in reversed(shape[: len(shape) - n_frame_dims]):
        c = max(1, min(n, n_frames))
        lead.insert(0, c)
        n_frames = max(1, n_frames // n) if c == n else 1
    return (*lead, *frame)


def normalize_key(key: Any, shape: tuple[int, ...]) -> tuple[int | slice, ...]:
    """Expand an index (ints, slices, Ellipsis) to one int or bounded slice per axis."""
    if not isinstance(key, tuple):
        key = (key,)
    if any(k is Ellipsis for k in key):
        i = next(i for i, k in enumerate(key) if k is Ellipsis)
        fill = (slice(None),) * (len(shape) - len(key) + 1)
        key = key[:i] + fill + key[i + 1 :]
    if len(key) > len(shape):
        raise IndexError(f"too many indices: {len(key)} for shape {shape}")
    key = key + (slice(None),) * (len(shape) - len(key))
    out: list[int | slice] = []
    for k, n in zip(key, shape, strict=True):
        if isinstance(k, slice):
            out.append(slice(*k.indices(n)))
        elif isinstance(k, int | np.integer):
            i = int(k) + n if k < 0 else int(k)
            if not 0 <= i < n:
                raise IndexError(f"index {int(k)} is out of bounds for an axis of size {n}")
            out.append(i)
        else:
            raise TypeError(f"only ints and slices can index a lazy file stack; got {k!r}")
    return tuple(out)


def file_stamp(path: str) -> tuple[str, int, int]:
    """(path, size, mtime_ns): part of a proxy's dask token, so an edited file gets new keys."""
    st = os.stat(path)
    return (path, st.st_size, st.st_mtime_ns)


def as_dask(proxy: Any, chunks: tuple) -> Any:
    """Wrap a proxy in a dask array; the proxy is stored once in the graph."""
    import dask.array as da

    meta = np.empty((0,) * len(proxy.shape), dtype=proxy.dtype)
    return da.from_array(proxy, chunks=chunks, meta=meta, asarray=True, fancy=False)
