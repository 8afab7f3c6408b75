"""Band-major spill files: all frames of a few rows, read once, stored contiguously.

A temporal reduction (median, percentile, MAD) needs every frame of a pixel at once,
but a TIFF or a frame-chunked HDF5 stack is read whole frames at a time. Re-reading the
file once per band of rows costs (number of bands) x the file, which grows with T x Y x
X; gathering every frame chunk at once does not fit in memory. A spill file rewrites
the stack once, in one sequential pass over its frame chunks, so that the band of rows
``k`` (all frames) is one contiguous run of bytes: each band is then a single read.
Reading, writing and reading back cost 3 x the stack in I/O whatever its size, and the
memory held is a few frame chunks while writing and one band while reducing.

Files go to a private temporary folder (``$CAMTRACK_TMPDIR``, else dask's
``temporary-directory`` setting, else the system's) that is removed on close, also
after an error or an interrupt, so nothing is left behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

__all__ = ["BandSpill", "spill_dir", "spill_fits"]

# Native bytes of the frame chunks computed together while writing (several chunks,
# so the reader's decoding runs on every core).
WRITE_BYTES = 32 * 2**20


def spill_dir() -> str:
    """Folder for spill files: $CAMTRACK_TMPDIR, dask's temporary-directory, or /tmp."""
    env = os.environ.get("CAMTRACK_TMPDIR")
    if env:
        return env
    try:
        import dask

        configured = dask.config.get("temporary-directory", None)
    except ImportError:  # pragma: no cover - dask is a core dependency
        configured = None
    return configured or tempfile.gettempdir()


def spill_fits(nbytes: int, folder: str | None = None) -> bool:
    """True when ``folder`` has room for ``nbytes`` plus a 10% / 256 MB margin."""
    try:
        free = shutil.disk_usage(folder or spill_dir()).free
    except OSError:
        return False
    return free > nbytes * 1.1 + 256 * 2**20


class BandSpill:
    """One or more (T, Y, X) dask arrays rewritten band-major into temporary files.

    Parameters
    ----------
    arrays : sequence of dask arrays
        Same shape (T, Y, X), numpy chunks; each gets its own file in its own dtype.
    bands : sequence of (slice, slice)
        Spatial tiles (rows, cols) covering the frame; tile ``k`` of every array is
        stored as one contiguous (T, rows, cols) C-ordered block.

    Use as a context manager; :meth:`read` returns band ``k`` of array ``i`` as numpy.
    """

    def __init__(
        self,
        arrays: Sequence[Any],
        bands: Sequence[tuple[slice, slice]],
        *,
        folder: str | None = None,
    ) -> None:
        self.shape = tuple(int(s) for s in arrays[0].shape)
        self.dtypes = [np.dtype(a.dtype) for a in arrays]
        self.bands = [(slice(*ys.indices(self.shape[1])[:2]), slice(*xs.indices(self.shape[2])[:2])) for ys, xs in bands]  # fmt: skip
        t = self.shape[0]
        sizes = [(ys.stop - ys.start) * (xs.stop - xs.start) for ys, xs in self.bands]
        self._offsets = np.concatenate(([0], np.cumsum(sizes)))[:-1] * t  # in elements
        self._dir = tempfile.mkdtemp(prefix="camtrack-spill-", dir=folder or spill_dir())
        self._files: list[Any] = []
        try:
            for i in range(len(arrays)):
                self._files.append(open(os.path.join(self._dir, f"array{i}.raw"), "w+b"))  # noqa: SIM115
            self._write(arrays)
        except BaseException:
            self.close()
            raise

    def _groups(self, array: Any) -> list[tuple[int, int]]:
        """Frame ranges of whole input chunks, about WRITE_BYTES each."""
        edges = np.cumsum((0, *array.chunks[0]))
        frame = int(np.prod(self.shape[1:])) * max(d.itemsize for d in self.dtypes)
        out: list[tuple[int, int]] = []
        start = 0
        for i in range(1, len(edges)):
            if (edges[i] - start) * frame >= WRITE_BYTES or i == len(edges) - 1:
                out.append((int(start), int(edges[i])))
                start = int(edges[i])
        return out

    def _write(self, arrays: Sequence[Any]) -> None:
        for a, b in self._groups(arrays[0]):
            for array, fh, dtype in zip(arrays, self._files, self.dtypes, strict=True):
                # The local threaded scheduler: this may run inside a task of an outer graph.
                part = np.asarray(array[a:b].compute(scheduler="threads"), dtype=dtype)
                for (ys, xs), off in zip(self.bands, self._offsets, strict=True):
                    block = np.ascontiguousarray(part[:, ys, xs])
                    rows_cols = block.shape[1] * block.shape[2]
                    fh.seek(int(off + a * rows_cols) * dtype.itemsize)
                    fh.write(memoryview(block).cast("B"))
                del part
        for fh in self._files:
            fh.flush()

    def read(self, k: int, i: int = 0) -> np.ndarray:
        """Band ``k`` of array ``i``: (T, rows, cols), a fresh numpy array."""
        ys, xs = self.bands[k]
        dtype = self.dtypes[i]
        shape = (self.shape[0], ys.stop - ys.start, xs.stop - xs.start)
        out = np.empty(shape, dtype=dtype)
        fh = self._files[i]
        fh.seek(int(self._offsets[k]) * dtype.itemsize)
        got = fh.readinto(memoryview(out).cast("B"))
        if got != out.nbytes:  # pragma: no cover - a full disk shows up while writing
            raise OSError(f"spill file {fh.name} is short: read {got} of {out.nbytes} bytes")
        return out

    def iter_bands(self, arrays: Sequence[int] = (0,)) -> Iterator[tuple[int, tuple[np.ndarray, ...]]]:  # fmt: skip
        """Yield ``(k, (band k of each array in arrays))`` in order, reading band k + 1
        in a thread while the caller reduces band k (two bands in memory at a time)."""

        def load(k: int) -> tuple[np.ndarray, ...]:
            return tuple(self.read(k, i) for i in arrays)

        n = len(self.bands)
        with ThreadPoolExecutor(1) as reader:
            pending = reader.submit(load, 0) if n else None
            for k in range(n):
                data = pending.result()
                if k + 1 < n:
                    pending = reader.submit(load, k + 1)
                yield k, data
                del data

    def close(self) -> None:
        for fh in self._files:
            with contextlib.suppress(OSError):
                fh.close()
        self._files = []
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> BandSpill:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
