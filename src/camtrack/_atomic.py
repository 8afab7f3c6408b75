"""Safe file creation: temporary names, exclusive commits, groups, stale-temp reclaim.

Every output is first written under a temporary name in its own folder,

    ``.<name>.camtrack-tmp-<host>-<pid>-<run><mode><suffix>``

(``<host>``: 6 hex digits of the machine name, ``<pid>``: the writing process,
``<run>``: 8 random hex digits shared by the files saved together, ``<mode>``: ``n``
for a new file, ``o`` when overwriting; ``<suffix>`` repeats the file's own suffix so
that libraries that look at it behave the same). Only a complete file is committed:

- a new file (``overwrite=False``) is hard-linked to its final name. ``link`` fails
  when the name exists, so of two runs racing for one name exactly one wins and the
  other is refused; nothing is replaced between a check and a rename. Where the
  filesystem has no hard links, an empty placeholder is created with
  ``O_CREAT | O_EXCL`` (the same guarantee) and then replaced by the file.
- with ``overwrite=True`` the file is renamed over the old one (``os.replace``).

Files saved together (a JSON and its maps) are committed together, under a lock on
their folder, so concurrent overwrites cannot interleave. A process killed while
committing a new group leaves the hard links that prove which finals it created; the
next write into that folder removes a stale temporary (its process is dead on this
machine) and undoes the half-committed group, so the run can simply be repeated.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import socket
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

try:  # POSIX only: serialises group commits within a folder
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "TEMP_TAG",
    "atomic_path",
    "atomic_paths",
    "check_targets",
    "pid_alive",
    "reclaim_temps",
]

PathLike = str | os.PathLike

TEMP_TAG = ".camtrack-tmp-"
HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]
_TEMP_RE = re.compile(
    r"^\.(?P<name>.+)\.camtrack-tmp-(?P<host>[0-9a-f]{6})-(?P<pid>\d+)-"
    r"(?P<run>[0-9a-f]{8})(?P<mode>[no])"
)
# errno values of "this filesystem cannot hard-link" (FAT, some network shares).
_NO_LINK = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK, errno.ENOSYS}


def pid_alive(pid: int) -> bool:
    """True unless process ``pid`` is known to be gone (on Windows: always True)."""
    if pid == os.getpid():
        return True
    if os.name != "posix":  # pragma: no cover - os.kill(pid, 0) would terminate it
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, owned by someone else
        return True
    return True


def _paths(value: Any, name: str) -> list[Path]:
    """``None``, a path or an iterable of paths (None items skipped) as a list."""
    if value is None:
        return []
    if isinstance(value, str | bytes | os.PathLike):
        value = [value]
    try:
        items = list(value)
    except TypeError:
        raise TypeError(
            f"`{name}` must be a path, an iterable of paths or None; got "
            f"{type(value).__name__} {value!r}."
        ) from None
    out = []
    for item in items:
        if item is None:
            continue
        if not isinstance(item, str | os.PathLike):
            raise TypeError(
                f"`{name}` must hold paths (str or os.PathLike); got "
                f"{type(item).__name__} {item!r}. Pass the input files' paths."
            )
        out.append(Path(item))
    return out


def _check_protect(target: Path, protect: Sequence[Path]) -> None:
    for p in protect:
        same = target.resolve() == p.resolve()
        if same or (target.exists() and p.exists() and os.path.samefile(target, p)):
            raise ValueError(
                f"refusing to write {str(target)!r}: it is the input file {str(p)!r}. "
                "Choose another output path; inputs are never modified."
            )


def _exists_error(target: Path) -> FileExistsError:
    exc = FileExistsError(f"{str(target)!r} already exists; pass overwrite=True to replace it.")
    exc.target = str(target)  # callers (the CLI) word their own advice from it
    return exc


def check_targets(
    paths: Iterable[PathLike], *, overwrite: bool = False, protect: Any = ()
) -> list[Path]:
    """Check output paths before any work: refuse inputs, folders, existing files.

    Parameters
    ----------
    paths : iterable of path-like
        Output files.
    overwrite : bool
        Allow replacing existing files.
    protect : path, iterable of paths, or None
        Input files never to write, even with `overwrite`.

    Returns
    -------
    list of pathlib.Path
        The targets.

    Raises
    ------
    ValueError
        A target is a protected input.
    IsADirectoryError, FileExistsError, FileNotFoundError
        A target is a folder, exists (without `overwrite`), or its folder is missing.
    TypeError
        `overwrite` is not a bool, or `protect` is not paths.

    Notes
    -----
    Stale temporaries of dead processes in the targets' folders are reclaimed first
    (:func:`reclaim_temps`), so that what a killed run left never refuses a new one.
    """
    if not isinstance(overwrite, bool):
        raise TypeError(f"`overwrite` must be True or False; got {overwrite!r}.")
    guarded = _paths(protect, "protect")
    targets = _paths(paths, "path")
    for folder in {t.parent for t in targets}:
        reclaim_temps(folder)  # a killed run's leftovers must not refuse this one
    for target in targets:
        _check_protect(target, guarded)
        if target.is_dir():
            raise IsADirectoryError(
                f"cannot write {str(target)!r}: it is a folder. Give a file name inside it, "
                f"e.g. {str(target / ('result' + (target.suffix or '.out')))!r}."
            )
        if (target.exists() or target.is_symlink()) and not overwrite:
            raise _exists_error(target)
        if not target.parent.is_dir():
            raise FileNotFoundError(
                f"cannot write {str(target)!r}: no such folder {str(target.parent)!r}."
            )
    return targets


def _suffix(target: Path) -> str:
    name = target.name.lower()
    for double in (".ome.tif", ".ome.tiff"):
        if name.endswith(double):
            return target.name[-len(double) :]
    return target.suffix


def _temp_name(target: Path, run: str) -> Path:
    return target.with_name(f".{target.name}{TEMP_TAG}{HOST}-{os.getpid()}-{run}{_suffix(target)}")


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def reclaim_temps(folder: PathLike) -> list[Path]:
    """Remove temporaries in ``folder`` whose writer is dead; undo its half commits.

    A temporary is stale when its host tag is this machine's and its process is gone.
    For a group of new files (mode ``n``) whose commit had begun but not finished,
    the finals that are hard links of its temporaries (so certainly created by that
    run) are removed too, which makes the interrupted save as if never started.

    Returns
    -------
    list of pathlib.Path
        The files removed.
    """
    folder = Path(folder)
    runs: dict[str, list[tuple[Path, Path]]] = {}
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    for entry in entries:
        m = _TEMP_RE.match(entry.name)
        if m is None or m["host"] != HOST or pid_alive(int(m["pid"])):
            continue
        key = m["pid"] + m["run"] + m["mode"]
        runs.setdefault(key, []).append((Path(entry.path), folder / m["name"]))
    removed: list[Path] = []
    for key, parts in runs.items():
        linked = [_same(tmp, final) for tmp, final in parts]
        if key.endswith("n") and any(linked) and not all(linked):
            for (_, final), own in zip(parts, linked, strict=True):
                if own:
                    with contextlib.suppress(OSError):
                        final.unlink()
                        removed.append(final)
        for tmp, _ in parts:
            with contextlib.suppress(OSError):
                tmp.unlink()
                removed.append(tmp)
    return removed


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """Exclusive lock on ``folder`` (POSIX ``flock`` on the directory; else none)."""
    fd = None
    if fcntl is not None:
        with contextlib.suppress(OSError):
            fd = os.open(folder, os.O_RDONLY)
            fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)  # releases the lock


def _fsync(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _create(tmp: Path, target: Path) -> None:
    """Give ``tmp``'s content the new name ``target``; FileExistsError if it exists."""
    try:
        os.link(tmp, target)
        return
    except FileExistsError:
        raise _exists_error(target) from None
    except OSError as exc:
        if exc.errno not in _NO_LINK:
            raise
    try:  # no hard links here: claim the name exclusively, then fill it
        os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    except FileExistsError:
        raise _exists_error(target) from None
    os.replace(tmp, target)


def _commit(temps: list[Path], targets: list[Path], overwrite: bool, protect: list[Path]) -> None:
    for tmp in temps:
        _fsync(tmp)
    lock = _folder_lock(targets[0].parent) if len(targets) > 1 else contextlib.nullcontext()
    with lock:
        done: list[Path] = []
        try:
            for tmp, target in zip(temps, targets, strict=True):
                _check_protect(target, protect)
                if overwrite:
                    os.replace(tmp, target)
                else:
                    _create(tmp, target)
                    done.append(target)
        except BaseException:
            for target, tmp in zip(done, temps, strict=False):
                if not tmp.exists() or _same(tmp, target):  # ours: undo
                    with contextlib.suppress(OSError):
                        target.unlink()
            raise
    _fsync(targets[0].parent)


@contextlib.contextmanager
def atomic_paths(
    paths: Sequence[PathLike], *, overwrite: bool = False, protect: Any = ()
) -> Iterator[list[Path]]:
    """Yield temporary paths for several files that appear together or not at all.

    Parameters
    ----------
    paths : sequence of path-like
        Final output files, all in one folder.
    overwrite : bool, optional
        Replace existing files (default: refuse with ``FileExistsError``).
    protect : path, iterable of paths, or None, optional
        Input files never to write (``ValueError``), even with `overwrite`.

    Yields
    ------
    list of pathlib.Path
        Empty files created for this run (usual permissions: ``0o666`` less the
        umask), one per path, named as in the module notes. Write each completely
        (and close it) inside the ``with`` block.

    Notes
    -----
    Targets are checked before the block runs (so nothing is computed for an output
    that would be refused) and again when committing. Without `overwrite` each final
    name is created exclusively (hard link), so concurrent runs cannot both succeed;
    on any failure the finals this call created are removed again. An exception in
    the block deletes the temporaries and commits nothing. Stale temporaries of dead
    processes in the folder are reclaimed first (see :func:`check_targets`).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_paths([folder / "a.txt", folder / "b.txt"]) as (ta, tb):
    ...     _ = ta.write_text("a"), tb.write_text("b")
    >>> sorted(p.name for p in folder.iterdir())
    ['a.txt', 'b.txt']
    """
    targets = check_targets(paths, overwrite=overwrite, protect=protect)
    guarded = _paths(protect, "protect")
    if not targets:
        raise ValueError("`paths` must name at least one output file; got none.")
    folders = {t.parent.resolve() for t in targets}
    if len(folders) > 1:
        raise ValueError(
            f"files saved together must share one folder; got {sorted(map(str, folders))}."
        )
    if len({t.name for t in targets}) < len(targets):
        raise ValueError(f"`paths` repeats a file name: {[str(t) for t in targets]}.")
    run = secrets.token_hex(4) + ("o" if overwrite else "n")
    temps: list[Path] = []
    try:
        for target in targets:
            tmp = _temp_name(target, run)
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            temps.append(tmp)
        yield list(temps)
        _commit(temps, targets, overwrite, guarded)
    finally:
        for tmp in temps:
            with contextlib.suppress(OSError):
                tmp.unlink()


@contextlib.contextmanager
def atomic_path(path: PathLike, *, overwrite: bool = False, protect: Any = ()) -> Iterator[Path]:
    """Yield a temporary path next to `path`; it becomes `path` only on success.

    Parameters
    ----------
    path : str or path-like
        Final output file.
    overwrite : bool, optional
        Replace an existing `path` (default: refuse with ``FileExistsError``).
    protect : path, iterable of paths, or None, optional
        Input files that must never be replaced (``ValueError``), even with
        `overwrite`.

    Yields
    ------
    pathlib.Path
        An empty, newly created file in the same folder, named
        ``.<name>.camtrack-tmp-<host>-<pid>-<run><mode><suffix>``. Write it
        completely (closing it) inside the ``with`` block.

    Notes
    -----
    On normal exit the temporary becomes `path`: created exclusively (hard link, so
    of two concurrent runs only one succeeds) or, with `overwrite`, renamed over it
    (``os.replace``, atomic on one filesystem). On an exception it is deleted, so an
    interrupted run leaves either the old file or the complete new one, never a half
    file. A temporary left by a killed process is removed by the next write into the
    same folder. See :func:`atomic_paths` for several files that belong together.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "note.txt"
    >>> with atomic_path(out) as tmp:
    ...     _ = tmp.write_text("done")
    >>> out.read_text()
    'done'
    """
    with atomic_paths([path], overwrite=overwrite, protect=protect) as (tmp,):
        yield tmp
