"""Lazy HDF5 reader: image datasets -> dask through a proxy that reopens the file per task."""

from __future__ import annotations

import contextlib
import functools
import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from camtrack._validation import check_existing_file
from camtrack.io._lazy import Chunks, as_dask, file_stamp, frame_chunks, normalize_key
from camtrack.io._time_meta import hdf5_timing
from camtrack.io._types import CorruptFileError, LayerInfo, display_stem, format_bytes

__all__ = ["H5Dataset", "open_hdf5", "other_image_datasets"]

_PREFERRED = ("image", "images")
# Registered HDF5 filters (https://github.com/HDFGroup/hdf5_plugins/blob/master/docs/RegisteredFilterPlugins.md)
# that hdf5plugin provides, to name the one a dataset needs.
_FILTER_NAMES = {
    307: "bzip2",
    32001: "Blosc",
    32004: "LZ4",
    32008: "Bitshuffle",
    32013: "ZFP",
    32015: "Zstandard",
    32017: "SZ",
    32018: "FCIDECOMP",
    32024: "SZ3",
    32026: "Blosc2",
}
_MIN_SIDE = 4
# Pixel-size attributes understood on the dataset or any parent group, and their unit.
_PIXEL_ATTRS = {
    "element_size_um": "µm",  # ilastik / Fiji HDF5: one value per axis
    "pixel_size_um": "µm",
    "um_per_px": "µm",
    "imaging:pixel size": "µm",  # deformability cytometry (.rtdc) root attribute
    "pixel_size_nm": "nm",
    "nm_per_px": "nm",
}


class H5Dataset:
    """Picklable array-like over one HDF5 dataset: path, dataset name, shape, dtype.

    ``__getitem__`` opens the file with h5py, reads the hyperslab and closes it, so no
    h5py object ever sits in a dask graph.
    """

    def __init__(self, path: str, name: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.path = path
        self.name = name
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.stamp = file_stamp(path)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __dask_tokenize__(self) -> tuple:
        return (type(self).__name__, self.stamp, self.name, self.shape, self.dtype.str)

    def __getitem__(self, key: Any) -> np.ndarray:
        import h5py

        _load_filter_plugins()  # in every worker process too
        key = normalize_key(key, self.shape)
        with h5py.File(self.path, "r") as f:
            return np.asarray(f[self.name][key])


def open_hdf5(
    path: str | os.PathLike,
    dataset: str | Sequence[str] | None = None,
    *,
    chunks: Chunks = "auto",
) -> list[tuple[Any, LayerInfo]]:
    """Open image datasets of an HDF5 file lazily as dask arrays.

    Parameters
    ----------
    path : str or path-like
        An HDF5 file (``.h5``, ``.hdf5``, ``.rtdc``, ...).
    dataset : str or sequence of str, optional
        Dataset path(s) to open, e.g. ``'/events/image'``. Default: the rule below.
    chunks : 'auto', int, str or tuple, optional
        Whole frames per chunk: ``'auto'`` (about 8 MiB, rounded to the dataset's own
        HDF5 chunking), a number of frames, a byte target such as ``'32 MiB'``, or
        explicit dask chunks.

    Returns
    -------
    list of (dask.array.Array, LayerInfo)
        One item per dataset, named ``<stem>:/group/dataset``.

    Raises
    ------
    CorruptFileError
        Not a readable HDF5 file, truncated, or unreadable image data.
    ValueError
        No image dataset, or `dataset` names none.

    Notes
    -----
    Image datasets are numeric (int, uint, float), at least 2-D, with both image
    sides of at least 4 pixels (so 1-D metadata and (N, 3) coordinate tables are
    skipped). Without `dataset`: if a dataset of 3 or more dimensions is named
    ``image`` or ``images`` (as ``/events/image`` in deformability-cytometry
    files), the largest such dataset is opened alone; otherwise every image dataset
    is offered, in path order. Axes are ``YX`` (2-D), ``TYX`` (3-D), ``QTYX`` (4-D),
    ...: frames first, rows and columns last. Pixel size comes from an attribute on
    the dataset or a parent group: ``element_size_um``, ``pixel_size_um``,
    ``um_per_px``, ``imaging:pixel size`` (µm) or ``pixel_size_nm``, ``nm_per_px``.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np, h5py
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "cells.h5"
    >>> with h5py.File(path, "w") as f:
    ...     _ = f.create_dataset("events/image", data=np.ones((5, 8, 10), np.uint8))
    ...     _ = f.create_dataset("events/area", data=np.arange(5.0))
    >>> [(stack, info)] = open_hdf5(path)
    >>> info.name, stack.shape, int(stack.sum().compute())
    ('cells:/events/image', (5, 8, 10), 400)
    """
    p = os.path.abspath(check_existing_file(path))
    size = os.path.getsize(p)
    _load_filter_plugins()
    f = _open(p, size)
    with f:
        try:
            found = _image_datasets(f)
        except (OSError, RuntimeError, KeyError, ValueError) as exc:
            raise CorruptFileError(f"{p} is damaged: listing its datasets failed: {exc}") from None
        names = _select(p, f, found, dataset)
        return [_item(p, size, f[name], chunks, multi=len(names) > 1) for name in names]


def other_image_datasets(path: str | os.PathLike) -> list[str]:
    """Every image dataset of an HDF5 file (also those the default rule of `open_hdf5` skips)."""
    p = os.path.abspath(os.fspath(path))
    with _open(p, os.path.getsize(p)) as f:
        return _image_datasets(f)


def _open(path: str, size: int) -> Any:
    """``h5py.File(path, 'r')``, or the real reason it cannot be opened."""
    import h5py

    try:
        return h5py.File(path, "r")
    except PermissionError:
        raise PermissionError(
            f"{path}: permission denied; this user may not read the file. Check its "
            "permissions (ls -l) and owner, or copy it somewhere you can read it."
        ) from None
    except OSError as exc:
        msg = str(exc)
        if "lock" in msg.lower() and ("errno = 11" in msg or "unavailable" in msg.lower()):
            raise BlockingIOError(
                f"{path} is locked by another program that has it open for writing (HDF5 "
                "file locking). Wait until that program closes it (e.g. the acquisition "
                "ends) and open it again. To read it while it is being written, at the "
                "risk of reading half-written data, set the environment variable "
                "HDF5_USE_FILE_LOCKING=FALSE before starting."
            ) from None
        raise CorruptFileError(_open_error(path, size, exc)) from None


@functools.cache
def _load_filter_plugins() -> None:
    """Register the compression filters of ``hdf5plugin`` with h5py, when it is installed.

    Cached: a failed import searches sys.path again each time, and this runs per task.
    """
    with contextlib.suppress(ImportError):
        import hdf5plugin  # noqa: F401  (importing registers its filters)


def _filters(dset: Any) -> list[tuple[int, str]]:
    """(id, name) of every filter in a dataset's pipeline."""
    plist = dset.id.get_create_plist()
    out = []
    for i in range(plist.get_nfilters()):
        code, _flags, _values, name = plist.get_filter(i)
        label = _FILTER_NAMES.get(int(code)) or (name.decode(errors="replace") if isinstance(name, bytes) else str(name))  # fmt: skip
        out.append((int(code), label or "unnamed"))
    return out


def _item(path: str, size: int, dset: Any, chunks: Chunks, multi: bool) -> tuple:
    _check_readable(path, size, dset)
    shape, nd = tuple(dset.shape), dset.ndim
    ck = list(frame_chunks(shape, 2, dset.dtype.itemsize, chunks))
    if chunks == "auto" and dset.chunks is not None:
        # Whole HDF5 chunks per task, so no HDF5 chunk is decoded twice.
        for ax in range(nd - 2):
            h = dset.chunks[ax]
            if ck[ax] < shape[ax]:
                ck[ax] = min(shape[ax], max(h, ck[ax] // h * h))
    axes = "YX" if nd == 2 else "Q" * (nd - 3) + "TYX"
    px, unit = _pixel_size(dset)
    fs_hz, exposure_s = hdf5_timing(dset)
    info = LayerInfo(
        name=f"{display_stem(path)}:{dset.name}",
        path=path,
        format="hdf5",
        axes=axes,
        dataset=dset.name,
        pixel_size=px,
        pixel_unit=unit,
        key=dset.name,
        fs_hz=fs_hz,
        exposure_s=exposure_s,
    )
    return as_dask(H5Dataset(path, dset.name, shape, dset.dtype), tuple(ck)), info


def _is_image(obj: Any) -> bool:
    import h5py

    return (
        isinstance(obj, h5py.Dataset)
        and obj.dtype.kind in "iuf"
        and obj.ndim >= 2
        and min(obj.shape) > 0
        and min(obj.shape[-2:]) >= _MIN_SIDE
    )


def _image_datasets(f: Any) -> list[str]:
    found: list[str] = []
    f.visititems(lambda name, obj: found.append(obj.name) if _is_image(obj) else None)
    return sorted(found)


def _select(path: str, f: Any, found: list[str], dataset: str | Sequence[str] | None) -> list:
    listing = ", ".join(found) if found else "none"
    if dataset is None:
        if not found:
            raise ValueError(
                f"{path} has no image dataset (numeric, at least 2-D, sides >= {_MIN_SIDE})."
            )
        preferred = [
            n for n in found if n.rsplit("/", 1)[-1].lower() in _PREFERRED and f[n].ndim >= 3
        ]
        if preferred:
            return [max(preferred, key=lambda n: f[n].size * f[n].dtype.itemsize)]
        return found
    names = [dataset] if isinstance(dataset, str) else list(dataset)
    out = []
    for name in names:
        full = "/" + str(name).lstrip("/")
        if full not in f or not _is_image(f[full]):
            what = "no such dataset" if full not in f else "not an image dataset"
            raise ValueError(f"`dataset` {name!r} in {path}: {what}. Image datasets: {listing}.")
        out.append(full)
    return out


def _check_readable(path: str, size: int, dset: Any) -> None:
    """Fail now, with a clear message, instead of later inside a dask task."""
    offset = dset.id.get_offset()  # None unless contiguous and allocated
    if offset is not None:
        end = offset + dset.id.get_storage_size()
        if end > size:
            raise CorruptFileError(
                f"{path} is truncated: dataset {dset.name} needs {format_bytes(end)} but the "
                f"file has {format_bytes(size)}."
            )
    try:
        dset[(0,) * dset.ndim]  # decodes one HDF5 chunk: catches missing filters early
    except (OSError, RuntimeError, ValueError) as exc:
        import h5py

        missing = [
            (code, name) for code, name in _filters(dset) if not h5py.h5z.filter_avail(code)
        ]
        if missing or "filter" in str(exc).lower() or "plugin" in str(exc).lower():
            which = ", ".join(f"{name} (HDF5 filter {code})" for code, name in missing)
            raise ValueError(
                f"{path}: dataset {dset.name} is compressed with "
                f"{which or 'a filter'} that this h5py cannot decode. Install the "
                "filter plugins with `pip install hdf5plugin` (camtrack loads them "
                f"itself when installed). HDF5 said: {exc}"
            ) from None
        raise CorruptFileError(f"{path}: dataset {dset.name} cannot be read: {exc}") from None


def _open_error(path: str, size: int, exc: OSError) -> str:
    msg = str(exc)
    m = re.search(r"\beof = (\d+).*stored_eof = (\d+)", msg)
    if m and int(m.group(2)) > int(m.group(1)):
        return (
            f"{path} is truncated: the HDF5 file should have {format_bytes(int(m.group(2)))} "
            f"but has {format_bytes(size)}."
        )
    if "signature" in msg or "not an HDF5" in msg.lower():
        return f"{path} is not an HDF5 file (no HDF5 signature found)."
    return f"{path} is not a readable HDF5 file: {msg}"


def _pixel_size(dset: Any) -> tuple[tuple[float, float] | None, str | None]:
    obj = dset
    while True:
        for attr, unit in _PIXEL_ATTRS.items():
            if attr in obj.attrs:
                try:
                    value = np.ravel(np.asarray(obj.attrs[attr], dtype=float))
                except (TypeError, ValueError):
                    continue  # a text attribute: not a usable pixel size
                if value.size and np.all(value[-2:] > 0) and np.all(np.isfinite(value[-2:])):
                    y, x = (value[-2], value[-1]) if value.size >= 2 else (value[0], value[0])
                    return (float(y), float(x)), unit
        if obj.name == "/":
            return None, None
        obj = obj.parent
