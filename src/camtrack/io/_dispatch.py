"""Which reader for which file: `can_read`, `read_layers`, `open_stack`."""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import replace
from typing import Any

from camtrack._validation import check_existing_file
from camtrack.io._lazy import Chunks
from camtrack.io._types import CorruptFileError, LayerInfo

__all__ = [
    "HDF5_EXTENSIONS",
    "TIFF_EXTENSIONS",
    "can_read",
    "describe_stacks",
    "open_stack",
    "pick_stack",
    "read_layers",
]

TIFF_EXTENSIONS = (".tif", ".tiff", ".btf", ".tf2", ".tf8", ".lsm", ".stk")
HDF5_EXTENSIONS = (".h5", ".hdf5", ".hdf", ".he5", ".rtdc")
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_HDF5_OFFSETS = (0, 512, 1024, 2048)  # the signature follows a user block, if any


def _sniff(path: str | os.PathLike) -> str | None:
    """'tiff', 'hdf5' or None, from the first bytes of the file; 'unreadable' if it cannot be read."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HDF5_OFFSETS[-1] + 8)
    except PermissionError:
        return "unreadable"
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
    .hdf5 .hdf .he5 .rtdc`` (HDF5). Directories and missing files give False. A file
    with one of these extensions that this user may not read gives True, so that
    `read_layers` reports the cause (permission denied) instead of "no reader".

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
        return kind is not None and os.path.isfile(path) and _sniff(path) in (kind, "unreadable")
    except (TypeError, ValueError, OSError):
        return False


def read_layers(
    path: str | os.PathLike, *, alternatives: bool = False, **kwargs: Any
) -> list[tuple[Any, LayerInfo]]:
    """Open a TIFF or HDF5 file lazily: a list of (dask array, `LayerInfo`) items.

    Parameters
    ----------
    path : str or path-like
        The file; its format is found from its first bytes, not its name.
    alternatives : bool, optional
        Also list the stacks a file offers besides its default ones: a TIFF's
        ``pages`` stack where its OME metadata describe fewer frames than it holds,
        and, for HDF5, every image dataset the
        default rule of `open_hdf5` leaves out. What ``camtrack info`` lists.
    **kwargs
        Passed to `open_tiff` (``chunks``, ``series``, ``pages``) or `open_hdf5`
        (``dataset``, ``chunks``).

    Returns
    -------
    list of (dask.array.Array, LayerInfo)
        One item per TIFF series and channel, or per HDF5 image dataset. For a napari
        layer: ``Image(data, **info.to_layer_kwargs())``. ``info.key`` names each one
        for `open_stack` and ``--dataset`` on the command line.

    Raises
    ------
    CorruptFileError
        A TIFF/HDF5 file (by name or content) that is truncated or damaged.
    PermissionError
        This user may not read the file.
    ValueError
        A file that is neither TIFF nor HDF5.

    Warns
    -----
    UserWarning
        An OME-TIFF whose metadata describe fewer frames than it holds pages (see
        `open_tiff`).

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
    from camtrack.io._hdf5 import open_hdf5, other_image_datasets
    from camtrack.io._tiff import read_tiff

    p = check_existing_file(path)
    kind = _sniff(p)
    if kind == "unreadable":
        raise PermissionError(
            f"{p}: permission denied; this user may not read the file. Check its "
            "permissions (ls -l) and owner, or copy it somewhere you can read it."
        )
    if kind == "tiff":
        full = os.path.abspath(p)
        items, note = read_tiff(full, os.path.getsize(full), alternatives=alternatives, **kwargs)  # fmt: skip
        if note:
            warnings.warn(note, UserWarning, stacklevel=2)
        return items
    if kind == "hdf5":
        items = open_hdf5(p, **kwargs)
        if alternatives and "dataset" not in kwargs:
            shown = {info.dataset for _, info in items}
            extra = [d for d in other_image_datasets(p) if d not in shown]
            if extra:
                items += open_hdf5(p, dataset=extra, chunks=kwargs.get("chunks", "auto"))
        return items
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
        Which stack when the file has several (channels, series, datasets), by the
        naming scheme that ``camtrack info`` lists and ``--dataset`` accepts: its key
        (``info.key``: ``'ch1'``, ``'s1 ch0'``, ``'pages'``, ``'/events/image'``,
        also ``'[ch1]'`` or ``'events/image'``), its full name (``'movie [ch1]'``,
        ``'cells:/events/image'``) or its index in ``read_layers(path,
        alternatives=True)``. Any HDF5 image dataset may be named, also one the
        default rule of `open_hdf5` leaves out. A 4-D or larger stack takes an index
        into its first axis: ``'/data[1]'`` is ``data[1]``, lazily. Not needed when
        the file holds one stack.
    chunks : 'auto', int, str or tuple, optional
        Whole frames per chunk, as in `open_tiff`.

    Returns
    -------
    (dask.array.Array, LayerInfo)
        The stack, (frames..., rows, cols), and its provenance.

    Raises
    ------
    ValueError
        Several stacks and no `item`, or `item` matches none; the message lists the
        keys.

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
    >>> hyper = pathlib.Path(tempfile.mkdtemp()) / "hyper.tif"
    >>> data = np.zeros((4, 2, 16, 16), np.uint16)  # (T, C, Y, X)
    >>> tifffile.imwrite(hyper, data, imagej=True, metadata={"axes": "TCYX"})
    >>> open_stack(hyper, item="ch1")[1].name
    'hyper [ch1]'
    """
    return pick_stack(path, item, chunks=chunks)


def pick_stack(
    path: str | os.PathLike,
    item: int | str | None,
    *,
    chunks: Chunks = "auto",
    label: str = "`item`",
) -> tuple[Any, LayerInfo]:
    """`open_stack`, with `label` naming the choice in messages (``'--dataset'`` for the CLI)."""
    if item is None:
        items = read_layers(path, chunks=chunks)
        if len(items) == 1:
            return items[0]
        how = "item=KEY" if label == "`item`" else f"{label} KEY"
        raise ValueError(
            f"{os.fspath(path)} holds {len(items)} stacks ({describe_stacks(items)}); "
            f"choose one with {how} (a key, a name or an index)."
        )
    with warnings.catch_warnings():
        # The caller named a stack: the OME page-count warning is beside the point.
        warnings.simplefilter("ignore", UserWarning)
        items = read_layers(path, chunks=chunks, alternatives=True)
    found = _match(items, item)
    if found is not None:
        return found
    if isinstance(item, str):
        m = re.fullmatch(r"(.*\S)\[\s*(-?\d+)\s*\]", item.strip())
        if m:
            base = pick_stack(path, m.group(1), chunks=chunks, label=label)
            return _part(base, int(m.group(2)), item, label)
        if items and items[0][1].format == "hdf5":
            # Any image dataset, also one the default rule did not offer.
            from camtrack.io._hdf5 import open_hdf5

            key = "/" + _hdf5_key(item, items[0][1]).lstrip("/")
            try:
                return open_hdf5(path, dataset=key, chunks=chunks)[0]
            except ValueError:
                pass
    raise ValueError(
        f"{label} {item!r} matches no stack in {os.fspath(path)}; it holds "
        f"{describe_stacks(items)}."
    )


def describe_stacks(items: list[tuple[Any, LayerInfo]]) -> str:
    """The stacks as ``0: key 'ch0', name 'movie [ch0]', shape (4, 16, 16); 1: ...``."""
    return "; ".join(
        f"{i}: key {info.key or ''!r}, name {info.name!r}, shape {tuple(data.shape)}"
        for i, (data, info) in enumerate(items)
    )


def _match(items: list[tuple[Any, LayerInfo]], item: int | str) -> tuple[Any, LayerInfo] | None:
    """The item named by index, full name or key (TIFF keys compared as sets of tags)."""
    if isinstance(item, bool):
        return None
    if isinstance(item, int) or (isinstance(item, str) and item.strip().isdigit()):
        i = int(item)
        return items[i] if -len(items) <= i < len(items) else None
    want = str(item).strip()
    for data, info in items:
        if want == info.name:
            return data, info
    for data, info in items:
        if info.format == "hdf5":
            if "/" + _hdf5_key(want, info).lstrip("/") == info.dataset:
                return data, info
        elif _tiff_tags(want, info) == _tiff_own_tags(info) or (
            _tiff_own_tags(info) <= _tiff_tags(want, info) <= _tiff_all_tags(info)
        ):
            return data, info
    return None


def _stem_of(info: LayerInfo) -> str:
    from camtrack.io._types import display_stem

    return display_stem(info.path)


def _hdf5_key(want: str, info: LayerInfo) -> str:
    """A dataset path from ``'/a/b'``, ``'a/b'`` or ``'<stem>:/a/b'``."""
    stem = _stem_of(info)
    return want[len(stem) + 1 :] if want.startswith(stem + ":") else want


def _tiff_tags(want: str, info: LayerInfo) -> set[str]:
    """Tags such as {'s1', 'ch0'} from ``'s1 ch0'``, ``'[s1 ch0]'`` or ``'<stem> [s1 ch0]'``."""
    stem = _stem_of(info)
    if want.startswith(stem + " [") or want.startswith(stem + "["):
        want = want[len(stem) :].strip()
    if want.startswith("[") and want.endswith("]"):
        want = want[1:-1]
    return set(want.replace(",", " ").split())


def _tiff_own_tags(info: LayerInfo) -> set[str]:
    return set((info.key or "").split())


def _tiff_all_tags(info: LayerInfo) -> set[str]:
    """Own tags plus the series tag a single-series file leaves out of its names."""
    tags = _tiff_own_tags(info)
    if info.series is not None and not any(t.startswith("s") and t[1:].isdigit() for t in tags):
        tags.add(f"s{info.series}")
    return tags


def _part(base: tuple[Any, LayerInfo], index: int, item: str, label: str) -> tuple[Any, LayerInfo]:
    """``data[index]`` of a stack of 4 or more dimensions, with its provenance."""
    data, info = base
    n = int(data.shape[0])
    if data.ndim - (1 if info.axes.endswith("S") else 0) < 4:
        raise ValueError(
            f"{label} {item!r}: {info.name} has shape {tuple(data.shape)} (axes {info.axes}); "
            "an index [i] picks a 3-D part of a stack of 4 or more dimensions only. "
            f"Name it without the index: {info.key or info.name!r}."
        )
    if not -n <= index < n:
        raise ValueError(
            f"{label} {item!r}: {info.name} has {n} parts along its first axis "
            f"({info.axes[0]}, shape {tuple(data.shape)}); pick [0] to [{n - 1}]."
        )
    index %= n
    # A lone TIFF stack has the empty key; "s0[1]" names its part so that it reads back.
    base = info.key or (f"s{info.series}" if info.series is not None else info.name)
    key = f"{base}[{index}]"
    name = f"{info.name}[{index}]"
    part = replace(info, name=name, key=key, axes=info.axes[1:])
    return data[index], part
