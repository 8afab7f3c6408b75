"""Which reader for which file: `can_read`, `read_layers`, `open_stack`."""

from __future__ import annotations

import os
from typing import Any

from camtrack._validation import check_existing_file
from camtrack.io._lazy import Chunks
from camtrack.io._types import CorruptFileError, LayerInfo

__all__ = ["HDF5_EXTENSIONS", "TIFF_EXTENSIONS", "can_read", "open_stack", "read_layers"]

TIFF_EXTENSIONS = (".tif", ".tiff", ".btf", ".tf2", ".tf8", ".lsm", ".stk")
HDF5_EXTENSIONS = (".h5", ".hdf5", ".hdf", ".he5", ".rtdc")
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_HDF5_OFFSETS = (0, 512, 1024, 2048)  # the signature follows a user block, if any


def _sniff(path: str | os.PathLike) -> str | None:
    """'tiff', 'hdf5' or None, from the first bytes of the file."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HDF5_OFFSETS[-1] + 8)
    except OSError:
        return None
    if head[:4] in _TIFF_MAGIC:
        return "tiff"
    if any(head[o : o + 8] == _HDF5_MAGIC for o in _HDF5_OFFSETS):
        return "hdf5"
    return None


def _kind_by_extension(path: str | os.PathLike) -> str | None:
    ext = os.path.splitext(os.fspath(path))[1].lower()
    return "tiff" if ext in TIFF_EXTENSIONS else "hdf5" if ext in HDF5_EXTENSIONS else None


def can_read(path: str | os.PathLike) -> bool:
    """True for an existing file with a TIFF/HDF5 extension and matching magic bytes.

    Cheap (one small read) and never raises: meant for a napari ``get_reader``,
    which must return None for files that are not ours.

    Parameters
    ----------
    path : str or path-like
        Candidate file.

    Returns
    -------
    bool
        Whether `read_layers` should be tried. A file that passes may still be
        truncated or damaged; `read_layers` then raises `CorruptFileError`.

    Notes
    -----
    Extensions: ``.tif .tiff .btf .tf2 .tf8 .lsm .stk`` (TIFF, BigTIFF) and ``.h5
    .hdf5 .hdf .he5 .rtdc`` (HDF5). Directories and missing files give False.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "notes.tif"
    >>> _ = path.write_text("not an image")
    >>> can_read(path)
    False
    """
    try:
        kind = _kind_by_extension(path)
        return kind is not None and os.path.isfile(path) and _sniff(path) == kind
    except (TypeError, ValueError, OSError):
        return False


def read_layers(path: str | os.PathLike, **kwargs: Any) -> list[tuple[Any, LayerInfo]]:
    """Open a TIFF or HDF5 file lazily: a list of (dask array, `LayerInfo`) items.

    Parameters
    ----------
    path : str or path-like
        The file; its format is found from its first bytes, not its name.
    **kwargs
        Passed to `open_tiff` (``chunks``, ``series``) or `open_hdf5` (``dataset``,
        ``chunks``).

    Returns
    -------
    list of (dask.array.Array, LayerInfo)
        One item per TIFF series and channel, or per HDF5 image dataset. For a napari
        layer: ``Image(data, **info.to_layer_kwargs())``.

    Raises
    ------
    CorruptFileError
        A TIFF/HDF5 file (by name or content) that is truncated or damaged.
    ValueError
        A file that is neither TIFF nor HDF5.

    Notes
    -----
    Arrays are (frames..., rows, cols), frames first. Nothing is read beyond the
    metadata until a chunk is computed, and every chunk task reopens the file, so the
    arrays pickle and run on dask.distributed workers.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np, tifffile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "hyper.tif"
    >>> data = np.zeros((4, 2, 16, 16), np.uint16)  # (T, C, Y, X)
    >>> tifffile.imwrite(path, data, imagej=True, metadata={"axes": "TCYX"})
    >>> [info.name for _, info in read_layers(path)]
    ['hyper [ch0]', 'hyper [ch1]']
    """
    from camtrack.io._hdf5 import open_hdf5
    from camtrack.io._tiff import open_tiff

    p = check_existing_file(path)
    kind = _sniff(p)
    if kind == "tiff":
        return open_tiff(p, **kwargs)
    if kind == "hdf5":
        return open_hdf5(p, **kwargs)
    by_name = _kind_by_extension(p)
    if os.path.getsize(p) == 0:
        raise CorruptFileError(f"{p} is empty (0 bytes).")
    if by_name is not None:
        label = "a TIFF" if by_name == "tiff" else "an HDF5"
        raise CorruptFileError(
            f"{p} has {label} file name but is not {label} file (its first bytes do not "
            "match); it is damaged or mislabelled."
        )
    raise ValueError(
        f"{p} is neither a TIFF nor an HDF5 file; camtrack reads "
        f"{', '.join(TIFF_EXTENSIONS + HDF5_EXTENSIONS)}."
    )


def open_stack(
    path: str | os.PathLike, *, item: int | str | None = None, chunks: Chunks = "auto"
) -> tuple[Any, LayerInfo]:
    """Open one stack of a TIFF/HDF5 file lazily: ``(dask array, LayerInfo)``.

    Parameters
    ----------
    path : str or path-like
        The file.
    item : int or str, optional
        Which stack when the file has several (channels, series, datasets): an index
        into `read_layers`, an item name (``'movie [ch1]'``) or an HDF5 dataset path
        (any image dataset, also one the default rule of `open_hdf5` leaves out).
        Not needed when the file holds one stack.
    chunks : 'auto', int, str or tuple, optional
        Whole frames per chunk, as in `open_tiff`.

    Returns
    -------
    (dask.array.Array, LayerInfo)
        The stack, (frames..., rows, cols), and its provenance.

    Raises
    ------
    ValueError
        Several stacks and no `item`, or `item` matches none; the message lists them.

    Notes
    -----
    For engine code and scripts that need exactly one ``stack``; napari uses
    `read_layers` to show them all.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np, tifffile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "movie.tif"
    >>> tifffile.imwrite(path, np.zeros((10, 32, 32), np.uint16))
    >>> stack, info = open_stack(path)
    >>> stack.shape, info.axes
    ((10, 32, 32), 'TYX')
    """
    items = read_layers(path, chunks=chunks)
    listing = "; ".join(f"{i}: {info.name!r}" for i, (_, info) in enumerate(items))
    if item is None:
        if len(items) == 1:
            return items[0]
        raise ValueError(
            f"{os.fspath(path)} holds {len(items)} stacks ({listing}); choose one with "
            "`item=` (an index or a name)."
        )
    if isinstance(item, int) and not isinstance(item, bool):
        if -len(items) <= item < len(items):
            return items[item]
    else:
        key = "/" + str(item).lstrip("/")
        for data, info in items:
            if item == info.name or key == info.dataset:
                return data, info
        if items and items[0][1].format == "hdf5":
            # Any image dataset, also one the default rule did not offer.
            from camtrack.io._hdf5 import open_hdf5

            return open_hdf5(path, dataset=key, chunks=chunks)[0]
    raise ValueError(f"`item` {item!r} matches no stack in {os.fspath(path)}; have {listing}.")
