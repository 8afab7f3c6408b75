"""Block-level arrays of the ``"robust"`` kernel: in memory, or band-major on disk.

The robust kernel keeps, per block of pixels, the energy of each frame difference, the
summed level of each frame and the kept mask: about 1/32 as many values as the stack
has pixels.
For a stack in memory that is a small overhead; for a lazily read stack larger than
memory it would grow with the stack. Above
:data:`camtrack._outofcore.STORE_MEMORY_BYTES` the arrays go to
temporary files instead, stored band-major (all frames of a band of block rows
contiguous), so that the detection reads one band with a few reads and the passes over
the stack write their pieces with one write per band. Files go to the spill folder
(``$CAMTRACK_TMPDIR``, dask's ``temporary-directory``, or the system's), in a per-run
folder under ``camtrack-spill/`` (:class:`camtrack._spill.SpillDir`), removed on
close, also after an error or an interrupt, and reclaimed by the next run if killed.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["BlockStore"]


class BlockStore:
    """Named (n_t, nby, nbx) arrays, readable by bands of block rows and ranges of t.

    Parameters
    ----------
    xp : module
        numpy or cupy: what :meth:`read` returns (files are always read to the host).
    arrays : dict name -> (n_t, dtype)
    nby, nbx : int
        Blocks per column and row.
    bands : sequence of (int, int)
        The block-row bands of the on-disk layout; writes must cover whole bands.
    on_disk : bool
        Use files (else plain arrays on ``xp``).
    """

    def __init__(
        self,
        xp: Any,
        arrays: dict[str, tuple[int, Any]],
        nby: int,
        nbx: int,
        bands: Sequence[tuple[int, int]],
        *,
        on_disk: bool,
        folder: str | None = None,
    ) -> None:
        self.xp = xp
        self.nby, self.nbx = int(nby), int(nbx)
        self.bands = [(int(a), int(b)) for a, b in bands]
        self.spec = {name: (int(n), np.dtype(dt)) for name, (n, dt) in arrays.items()}
        self.on_disk = bool(on_disk)
        self._mem: dict[str, Any] = {}
        self._fds: dict[str, int] = {}
        self._dir: Any = None  # SpillDir when on disk
        if not self.on_disk:
            for name, (n, dt) in self.spec.items():
                self._mem[name] = xp.zeros((n, self.nby, self.nbx), dtype=dt)
            return
        from camtrack._spill import SpillDir

        self._dir = SpillDir("blocks", folder)
        try:
            for name, (n, dt) in self.spec.items():
                path = self._dir.file(f"{name}.raw")
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
                self._fds[name] = fd
                os.ftruncate(fd, n * self.nby * self.nbx * dt.itemsize)  # sparse zeros
        except BaseException:
            self.close()
            raise

    @staticmethod
    def nbytes(arrays: dict[str, tuple[int, Any]], nby: int, nbx: int) -> int:
        return sum(int(n) * nby * nbx * np.dtype(dt).itemsize for n, dt in arrays.values())

    def _offset(self, name: str, k: int, t0: int) -> int:
        n, dt = self.spec[name]
        b0, b1 = self.bands[k]
        return (b0 * n + t0 * (b1 - b0)) * self.nbx * dt.itemsize

    def _bands_in(self, r0: int, r1: int) -> list[int]:
        return [k for k, (b0, b1) in enumerate(self.bands) if b0 < r1 and b1 > r0]

    def write(self, name: str, t0: int, r0: int, value: Any) -> None:
        """Store ``value`` (n, rows, nbx) at times ``t0 ..`` and block rows ``r0 ..``.

        On disk the rows must cover whole bands. Thread-safe for disjoint regions.
        """
        n_rows = int(value.shape[1])
        if not self.on_disk:
            self._mem[name][t0 : t0 + value.shape[0], r0 : r0 + n_rows] = value
            return
        _, dt = self.spec[name]
        host = value.get() if hasattr(value, "get") else np.asarray(value)
        for k in self._bands_in(r0, r0 + n_rows):
            b0, b1 = self.bands[k]
            if b0 < r0 or b1 > r0 + n_rows:
                raise ValueError("BlockStore.write must cover whole bands on disk")
            part = np.ascontiguousarray(host[:, b0 - r0 : b1 - r0], dtype=dt)
            _pwrite_all(self._fds[name], memoryview(part).cast("B"), self._offset(name, k, t0))

    def read(self, name: str, r0: int, r1: int, ts: slice | None = None) -> Any:
        """Block rows ``r0:r1`` at times ``ts`` (a contiguous slice; default all)."""
        n, dt = self.spec[name]
        t0, t1, _ = (ts or slice(None)).indices(n)
        if not self.on_disk:
            return self._mem[name][t0:t1, r0:r1]
        out = np.empty((t1 - t0, r1 - r0, self.nbx), dtype=dt)
        for k in self._bands_in(r0, r1):
            b0, b1 = self.bands[k]
            buf = np.empty((t1 - t0, b1 - b0, self.nbx), dtype=dt)
            _pread_all(self._fds[name], memoryview(buf).cast("B"), self._offset(name, k, t0))
            lo, hi = max(b0, r0), min(b1, r1)
            out[:, lo - r0 : hi - r0] = buf[:, lo - b0 : hi - b0]
        return self.xp.asarray(out)

    def close(self) -> None:
        for fd in self._fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = {}
        self._mem = {}
        if self._dir is not None:
            self._dir.close()
            self._dir = None

    def __enter__(self) -> BlockStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    while data.nbytes:
        done = os.pwrite(fd, data, offset)
        data = data[done:]
        offset += done


def _pread_all(fd: int, buf: memoryview, offset: int) -> None:
    while buf.nbytes:
        got = os.preadv(fd, [buf], offset)
        if got == 0:  # pragma: no cover - the file was sized at creation
            raise OSError("block store file is short")
        buf = buf[got:]
        offset += got
