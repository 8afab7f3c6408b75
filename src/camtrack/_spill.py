"""Band-major spill files: all frames of a few rows, read once, stored contiguously.

A temporal reduction (median, percentile, MAD) needs every frame of a pixel at once,
but a TIFF or a frame-chunked HDF5 stack is read whole frames at a time. Re-reading the
file once per band of rows costs (number of bands) x the file, which grows with T x Y x
X; gathering every frame chunk at once does not fit in memory. A spill file rewrites
the stack once, in one sequential pass over its frame chunks, so that the band of rows
``k`` (all frames) is one contiguous run of bytes: each band is then a single read.
Reading, writing and reading back cost 3 x the stack in I/O whatever its size, and the
memory held is a few frame chunks while writing and one band while reducing.

Files go to a private folder per run, ``<base>/camtrack-spill/<kind>-<host>-<pid>-<random>``
(``<base>``: ``$CAMTRACK_TMPDIR``, else dask's ``temporary-directory`` setting, else the
system's temporary folder), removed on close, also after an error or an interrupt.
A process killed outright (SIGKILL, the OOM killer) cannot clean up, so each run
folder holds an ``owner`` file locked (``flock``) for the life of the run: the next
run that spills finds folders whose lock is free (or, without a lock, whose process
is gone) and removes them (:func:`reclaim_spills`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from camtrack._atomic import HOST, pid_alive

try:  # POSIX: a lock that dies with its process, however it dies
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["BandStore", "SpillDir", "reclaim_spills", "spill_dir", "spill_fits"]

ROOT_NAME = "camtrack-spill"  # one folder under the base for every camtrack run
OWNER_FILE = "owner"

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


def _owner_dead(run: str) -> bool:
    """True when the run folder's owner is gone: its lock is free, or, where there is
    no lock file yet or no ``flock``, its process (named in the folder) is dead here."""
    owner = os.path.join(run, OWNER_FILE)
    if fcntl is not None:
        try:
            fd = os.open(owner, os.O_RDONLY)
        except FileNotFoundError:
            pass
        except OSError:
            return False
        else:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return False  # held: the run is alive
            finally:
                os.close(fd)
            return True
    parts = os.path.basename(run).split("-")
    if len(parts) < 4 or parts[1] != HOST or not parts[2].isdigit():
        return False
    return not pid_alive(int(parts[2]))


def reclaim_spills(folder: str | None = None) -> list[str]:
    """Remove run folders under ``<folder>/camtrack-spill`` whose owner is gone.

    Parameters
    ----------
    folder : str, optional
        Base folder (default :func:`spill_dir`).

    Returns
    -------
    list of str
        The folders removed.

    Notes
    -----
    Folders left by older camtrack versions (``<folder>/camtrack-spill-XXXXXXXX`` or
    ``camtrack-blocks-XXXXXXXX``, no owner file) are removed too once nothing in them has changed for
    :data:`LEGACY_AGE_S` (a day): they hold no lock to ask, and a run of such a version
    still working writes its spill within minutes of starting.
    """
    base = folder or spill_dir()
    root = os.path.join(base, ROOT_NAME)
    removed = _reclaim_legacy(base)
    try:
        runs = [e.path for e in os.scandir(root) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return removed
    for run in runs:
        if _owner_dead(run):
            shutil.rmtree(run, ignore_errors=True)
            removed.append(run)
    with contextlib.suppress(OSError):
        os.rmdir(root)  # only when empty
    return removed


# Untouched for this long, an old-style spill folder (no owner lock) is taken as stale.
LEGACY_AGE_S = 24 * 3600.0
_LEGACY = re.compile(r"camtrack-(spill|blocks)-[A-Za-z0-9_]{8}")


def _newest_mtime(path: str) -> float:
    newest = os.lstat(path).st_mtime
    for dirpath, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                newest = max(newest, os.lstat(os.path.join(dirpath, name)).st_mtime)
    return newest


def _reclaim_legacy(base: str) -> list[str]:
    """Remove old-style ``camtrack-{spill,blocks}-XXXXXXXX`` folders untouched for a day."""
    removed = []
    now = time.time()
    try:
        entries = [e for e in os.scandir(base) if _LEGACY.fullmatch(e.name) and e.is_dir(follow_symlinks=False)]  # fmt: skip
    except OSError:
        return removed
    for e in entries:
        try:
            stale = now - _newest_mtime(e.path) > LEGACY_AGE_S
        except OSError:
            continue
        if stale:
            shutil.rmtree(e.path, ignore_errors=True)
            removed.append(e.path)
    return removed


class SpillDir:
    """A private folder for one run's spill files, reclaimable if the run is killed.

    Parameters
    ----------
    kind : str
        First part of the folder name (``spill``, ``blocks``).
    folder : str, optional
        Base folder (default :func:`spill_dir`); the run folder goes under
        ``<folder>/camtrack-spill/``.

    Notes
    -----
    Creating one first removes stale run folders (:func:`reclaim_spills`). The run
    folder holds an ``owner`` file (pid and host) locked while the run lives; the
    lock is taken before the file gets its name, so a live run is never mistaken for
    a dead one. :meth:`close` removes the folder (and the shared root when empty).
    """

    def __init__(self, kind: str = "spill", folder: str | None = None) -> None:
        base = folder or spill_dir()
        reclaim_spills(base)
        self.root = os.path.join(base, ROOT_NAME)
        for _ in range(10):  # a concurrent close may remove the empty root meanwhile
            os.makedirs(self.root, exist_ok=True)
            try:
                self.path = tempfile.mkdtemp(prefix=f"{kind}-{HOST}-{os.getpid()}-", dir=self.root)
                break
            except FileNotFoundError:
                continue
        else:  # pragma: no cover - needs a pathological race
            raise OSError(f"cannot create a spill folder under {self.root!r}")
        self._fd: int | None = None
        try:
            pending = os.path.join(self.path, OWNER_FILE + ".new")
            self._fd = os.open(pending, os.O_CREAT | os.O_RDWR, 0o600)
            os.write(self._fd, f"{os.getpid()} {HOST}\n".encode())
            try:
                if fcntl is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    # Only a locked file is called "owner"; without a lock (a share
                    # without flock) others judge the run by the pid in its name.
                    os.replace(pending, os.path.join(self.path, OWNER_FILE))
            except OSError:
                pass
        except BaseException:
            self.close()
            raise

    def file(self, name: str) -> str:
        """Path of ``name`` inside the run folder."""
        return os.path.join(self.path, name)

    def close(self) -> None:
        """Remove the run folder (idempotent)."""
        if self.path is None:
            return
        shutil.rmtree(self.path, ignore_errors=True)
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
        with contextlib.suppress(OSError):
            os.rmdir(self.root)  # only when empty
        self.path = None

    def __enter__(self) -> SpillDir:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def spill_fits(nbytes: int, folder: str | None = None) -> bool:
    """True when ``folder`` has room for ``nbytes`` plus a 10% / 256 MB margin."""
    try:
        free = shutil.disk_usage(folder or spill_dir()).free
    except OSError:
        return False
    return free > nbytes * 1.1 + 256 * 2**20


class BandStore:
    """Named (n_t, Y, X) arrays stored band-major: tile ``k`` of an array, all its
    times, is one contiguous C-ordered (n_t, rows, cols) run of bytes.

    The one out-of-core store of the engine (#17 item 3). Two uses:

    - a **spill** (:meth:`spill`): frame-chunked dask stacks rewritten once, in one
      sequential pass over their frame chunks, so that each all-frames tile of a
      temporal reduction is then a single read (:meth:`read`, :meth:`iter_bands`);
    - a **block store** (the gain's robust detection): arrays filled piece by piece
      (:meth:`write_rows`: whole row bands, any range of times) and read by ranges of
      rows and times (:meth:`read_rows`), on disk or, below a memory budget, in plain
      arrays (``on_disk=False``).

    Parameters
    ----------
    arrays : dict name -> (n_t, dtype)
        The arrays: times and dtype of each; every array has the frame ``shape``.
    shape : (int, int)
        Rows and columns of one frame (time step).
    tiles : sequence of (slice, slice)
        Spatial tiles (rows, cols) covering the frame: the on-disk layout.
        :meth:`write_rows` and :meth:`read_rows` need full-width tiles (row bands).
    xp : module
        numpy or cupy: what reads return (files are always read to the host).
    on_disk : bool
        Files in a private run folder (:class:`SpillDir`, kind ``kind``; sparse zeros
        until written), else zeroed arrays on ``xp``.
    folder : str, optional
        Base folder of the files (default :func:`spill_dir`).

    Use as a context manager: :meth:`close` removes the files, also after an error or a
    Cancel raised while they are written.
    """

    def __init__(
        self,
        arrays: dict[str, tuple[int, Any]],
        shape: Sequence[int],
        tiles: Sequence[tuple[slice, slice]],
        *,
        xp: Any = np,
        on_disk: bool = True,
        folder: str | None = None,
        kind: str = "spill",
    ) -> None:
        self.xp = xp
        self.ny, self.nx = (int(s) for s in shape)
        self.tiles = [(slice(*ys.indices(self.ny)[:2]), slice(*xs.indices(self.nx)[:2])) for ys, xs in tiles]  # fmt: skip
        self.spec = {name: (int(n), np.dtype(dt)) for name, (n, dt) in arrays.items()}
        self.names = list(self.spec)
        self.on_disk = bool(on_disk)
        sizes = [(ys.stop - ys.start) * (xs.stop - xs.start) for ys, xs in self.tiles]
        self._starts = [int(v) for v in np.cumsum([0, *sizes])[:-1]]  # elements per time
        self._mem: dict[str, Any] = {}
        self._fds: dict[str, int] = {}
        self._dir: SpillDir | None = None
        if not self.on_disk:
            for name, (n, dt) in self.spec.items():
                self._mem[name] = xp.zeros((n, self.ny, self.nx), dtype=dt)
            return
        self._dir = SpillDir(kind, folder)
        try:
            for name, (n, dt) in self.spec.items():
                fd = os.open(self._dir.file(f"{name}.raw"), os.O_RDWR | os.O_CREAT | os.O_TRUNC | _BINARY, 0o600)  # fmt: skip
                self._fds[name] = fd
                os.ftruncate(fd, n * self.ny * self.nx * dt.itemsize)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def nbytes(arrays: dict[str, tuple[int, Any]], shape: Sequence[int]) -> int:
        """Bytes the arrays take (in memory or on disk)."""
        px = int(np.prod([int(s) for s in shape]))
        return sum(int(n) * px * np.dtype(dt).itemsize for n, dt in arrays.values())

    @classmethod
    def spill(
        cls,
        arrays: Sequence[Any],
        tiles: Sequence[tuple[slice, slice]],
        *,
        folder: str | None = None,
        progress: Any = None,
    ) -> BandStore:
        """A store of (T, Y, X) dask arrays (numpy chunks, same shape), rewritten band-major.

        Array ``i`` is named ``i`` (file ``array<i>.raw``, its own dtype). One pass over
        the frame chunks, about :data:`WRITE_BYTES` of whole chunks computed at a time;
        ``progress`` (tqdm-like ``progress(iterable, total=n)``) is advanced per group
        written, and an exception it raises (Cancel) stops the write and removes the files.
        """
        t, ny, nx = (int(s) for s in arrays[0].shape)
        spec = {f"array{i}": (t, a.dtype) for i, a in enumerate(arrays)}
        store = cls(spec, (ny, nx), tiles, folder=folder, kind="spill")
        try:
            store._fill(arrays, progress)
        except BaseException:
            store.close()
            raise
        return store

    def _groups(self, array: Any) -> list[tuple[int, int]]:
        """Frame ranges of whole input chunks, about WRITE_BYTES each."""
        edges = np.cumsum((0, *array.chunks[0]))
        frame = self.ny * self.nx * max(dt.itemsize for _, dt in self.spec.values())
        out: list[tuple[int, int]] = []
        start = 0
        for i in range(1, len(edges)):
            if (edges[i] - start) * frame >= WRITE_BYTES or i == len(edges) - 1:
                out.append((int(start), int(edges[i])))
                start = int(edges[i])
        return out

    def _fill(self, arrays: Sequence[Any], progress: Any) -> None:
        from camtrack._parallel import track

        groups = self._groups(arrays[0])
        for a, b in track(groups, len(groups), progress):
            for array, name in zip(arrays, self.names, strict=True):
                # The local threaded scheduler: this may run inside a task of an outer graph.
                part = np.asarray(array[a:b].compute(scheduler="threads"), dtype=self.spec[name][1])  # fmt: skip
                for k in range(len(self.tiles)):
                    self.write(k, a, part[(slice(None), *self.tiles[k])], name)
                del part

    def _name(self, array: int | str) -> str:
        return self.names[array] if isinstance(array, int | np.integer) else array

    def _offset(self, name: str, k: int, t0: int) -> int:
        """Byte offset of time ``t0`` of tile ``k`` of array ``name``."""
        n, dt = self.spec[name]
        ys, xs = self.tiles[k]
        rows_cols = (ys.stop - ys.start) * (xs.stop - xs.start)
        return (self._starts[k] * n + t0 * rows_cols) * dt.itemsize

    def write(self, k: int, t0: int, value: Any, array: int | str = 0) -> None:
        """Store ``value`` (n, rows, cols): tile ``k`` of ``array`` at times ``t0 ..``.

        Thread-safe for disjoint regions.
        """
        name = self._name(array)
        if not self.on_disk:
            ys, xs = self.tiles[k]
            self._mem[name][t0 : t0 + value.shape[0], ys, xs] = value
            return
        host = value.get() if hasattr(value, "get") else value
        block = np.ascontiguousarray(host, dtype=self.spec[name][1])
        _pwrite_all(self._fds[name], memoryview(block).cast("B"), self._offset(name, k, t0))

    def read(self, k: int, array: int | str = 0, ts: slice | None = None) -> Any:
        """Tile ``k`` of ``array`` (index or name) at times ``ts`` (contiguous; default
        all): (n, rows, cols) on ``xp``, a fresh array when on disk."""
        name = self._name(array)
        n, dt = self.spec[name]
        t0, t1, _ = (ts or slice(None)).indices(n)
        ys, xs = self.tiles[k]
        if not self.on_disk:
            return self._mem[name][t0:t1, ys, xs]
        out = np.empty((t1 - t0, ys.stop - ys.start, xs.stop - xs.start), dtype=dt)
        _pread_all(self._fds[name], memoryview(out).cast("B"), self._offset(name, k, t0))
        return self.xp.asarray(out)

    @property
    def row_bands(self) -> list[tuple[int, int]]:
        """(first, end) row of each tile: the bands of a store of full-width tiles."""
        return [(ys.start, ys.stop) for ys, _ in self.tiles]

    def _bands_in(self, r0: int, r1: int) -> list[int]:
        if any(xs.stop - xs.start != self.nx for _, xs in self.tiles):
            raise ValueError("BandStore rows need full-width tiles (row bands)")
        return [k for k, (ys, _) in enumerate(self.tiles) if ys.start < r1 and ys.stop > r0]

    def write_rows(self, array: int | str, t0: int, r0: int, value: Any) -> None:
        """Store ``value`` (n, rows, X) at times ``t0 ..`` and rows ``r0 ..``.

        On disk the rows must cover whole bands. Thread-safe for disjoint regions.
        """
        name = self._name(array)
        n_rows = int(value.shape[1])
        if not self.on_disk:
            self._mem[name][t0 : t0 + value.shape[0], r0 : r0 + n_rows] = value
            return
        host = value.get() if hasattr(value, "get") else np.asarray(value)
        for k in self._bands_in(r0, r0 + n_rows):
            ys, _ = self.tiles[k]
            if ys.start < r0 or ys.stop > r0 + n_rows:
                raise ValueError("BandStore.write_rows must cover whole bands on disk")
            self.write(k, t0, host[:, ys.start - r0 : ys.stop - r0], name)

    def read_rows(self, array: int | str, r0: int, r1: int, ts: slice | None = None) -> Any:
        """Rows ``r0:r1`` of ``array`` at times ``ts`` (a contiguous slice; default all)."""
        name = self._name(array)
        n, dt = self.spec[name]
        if not self.on_disk:
            t0, t1, _ = (ts or slice(None)).indices(n)
            return self._mem[name][t0:t1, r0:r1]
        bands = self._bands_in(r0, r1)
        if len(bands) == 1 and self.tiles[bands[0]][0] == slice(r0, r1):
            return self.read(bands[0], name, ts)
        t0, t1, _ = (ts or slice(None)).indices(n)
        out = np.empty((t1 - t0, r1 - r0, self.nx), dtype=dt)
        for k in bands:
            ys, _ = self.tiles[k]
            lo, hi = max(ys.start, r0), min(ys.stop, r1)
            out[:, lo - r0 : hi - r0] = self.read(k, name, ts)[:, lo - ys.start : hi - ys.start]
        return self.xp.asarray(out)

    def iter_bands(self, arrays: Sequence[int | str] = (0,)) -> Iterator[tuple[int, tuple[Any, ...]]]:  # fmt: skip
        """Yield ``(k, (tile k of each array in arrays))`` in order, reading tile k + 1
        in a thread while the caller reduces tile k (two tiles in memory at a time)."""

        def load(k: int) -> tuple[Any, ...]:
            return tuple(self.read(k, i) for i in arrays)

        n = len(self.tiles)
        with ThreadPoolExecutor(1) as reader:
            pending = reader.submit(load, 0) if n else None
            for k in range(n):
                data = pending.result()
                if k + 1 < n:
                    pending = reader.submit(load, k + 1)
                yield k, data
                del data

    def close(self) -> None:
        """Close and remove the files (idempotent)."""
        for fd in self._fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = {}
        self._mem = {}
        if self._dir is not None:
            self._dir.close()
            self._dir = None

    def __enter__(self) -> BandStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation

# Positioned reads and writes (thread-safe, no shared file position) where the system
# has them; elsewhere (Windows) a seek and a read or write under one lock.
_SEEK_LOCK = threading.Lock()


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    while data.nbytes:
        if hasattr(os, "pwrite"):
            done = os.pwrite(fd, data, offset)
        else:  # pragma: no cover - Windows
            with _SEEK_LOCK:
                os.lseek(fd, offset, os.SEEK_SET)
                done = os.write(fd, data)
        data = data[done:]
        offset += done


def _pread_all(fd: int, buf: memoryview, offset: int) -> None:
    while buf.nbytes:
        if hasattr(os, "preadv"):
            got = os.preadv(fd, [buf], offset)
        else:  # pragma: no cover - systems without preadv
            with _SEEK_LOCK:
                os.lseek(fd, offset, os.SEEK_SET)
                chunk = os.read(fd, buf.nbytes)
            got = len(chunk)
            buf[:got] = chunk
        if got == 0:  # pragma: no cover - the file is sized at creation
            raise OSError("spill file is short")
        buf = buf[got:]
        offset += got
