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

__all__ = ["BandSpill", "SpillDir", "reclaim_spills", "spill_dir", "spill_fits"]

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


class BandSpill:
    """One or more (T, Y, X) dask arrays rewritten band-major into temporary files.

    Parameters
    ----------
    arrays : sequence of dask arrays
        Same shape (T, Y, X), numpy chunks; each gets its own file in its own dtype.
    bands : sequence of (slice, slice)
        Spatial tiles (rows, cols) covering the frame; tile ``k`` of every array is
        stored as one contiguous (T, rows, cols) C-ordered block.

    progress : callable, optional
        tqdm-like ``progress(iterable, total=n)``, advanced per group of input frames
        written; an exception it raises (Cancel) stops the write and removes the files.

    Use as a context manager; :meth:`read` returns band ``k`` of array ``i`` as numpy.
    """

    def __init__(
        self,
        arrays: Sequence[Any],
        bands: Sequence[tuple[slice, slice]],
        *,
        folder: str | None = None,
        progress: Any = None,
    ) -> None:
        self.progress = progress  # tqdm-like, advanced per frame group written
        self.shape = tuple(int(s) for s in arrays[0].shape)
        self.dtypes = [np.dtype(a.dtype) for a in arrays]
        self.bands = [(slice(*ys.indices(self.shape[1])[:2]), slice(*xs.indices(self.shape[2])[:2])) for ys, xs in bands]  # fmt: skip
        t = self.shape[0]
        sizes = [(ys.stop - ys.start) * (xs.stop - xs.start) for ys, xs in self.bands]
        self._offsets = np.concatenate(([0], np.cumsum(sizes)))[:-1] * t  # in elements
        self._dir = SpillDir("spill", folder)
        self._files: list[Any] = []
        try:
            for i in range(len(arrays)):
                self._files.append(open(self._dir.file(f"array{i}.raw"), "w+b"))  # noqa: SIM115
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
        from camtrack._parallel import track

        groups = self._groups(arrays[0])
        for a, b in track(groups, len(groups), self.progress):
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
        self._dir.close()

    def __enter__(self) -> BandSpill:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
