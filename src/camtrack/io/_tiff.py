"""Lazy TIFF reader: multi-page, ImageJ hyperstack and OME-TIFF -> dask, one item per channel."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from camtrack._validation import check_existing_file
from camtrack.io._lazy import Chunks, as_dask, file_stamp, frame_chunks, normalize_key
from camtrack.io._tiff_meta import tiff_pixel_size
from camtrack.io._types import CorruptFileError, LayerInfo, display_stem, format_bytes

__all__ = ["TiffFrames", "open_tiff"]


class TiffFrames:
    """Picklable array-like over the pages of one TIFF series (optionally one channel).

    Holds the path, the page layout and either the offset of contiguous raw data
    (read with ``seek`` + ``readinto``, byte-swapped if needed) or the file offset of
    every page's IFD (each page decoded by tifffile). Every ``__getitem__`` opens the
    file, reads the pages the key needs, and closes it.
    """

    def __init__(
        self,
        path: str,
        *,
        series_lead: tuple[int, ...],
        page_shape: tuple[int, ...],
        dtype: np.dtype,
        byteorder: str,
        dataoffset: int | None,
        ifd_offsets: np.ndarray | None,
        channel_axis: int | None = None,
        channel: int | None = None,
    ) -> None:
        self.path = path
        self.series_lead = tuple(series_lead)
        self.page_shape = tuple(page_shape)
        self.dtype = np.dtype(dtype).newbyteorder("=")  # what the reads return
        self.byteorder = byteorder  # how the file stores it
        self.dataoffset = dataoffset
        self.ifd_offsets = ifd_offsets
        self.channel_axis = channel_axis
        self.channel = channel
        lead = list(self.series_lead)
        if channel_axis is not None:
            del lead[channel_axis]
        self.shape = (*lead, *self.page_shape)
        self.stamp = file_stamp(path)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __dask_tokenize__(self) -> tuple:
        return (
            type(self).__name__,
            self.stamp,
            self.series_lead,
            self.page_shape,
            self.dataoffset,
            self.channel_axis,
            self.channel,
            None if self.ifd_offsets is None else int(self.ifd_offsets[0]),
        )

    def __getitem__(self, key: Any) -> np.ndarray:
        key = normalize_key(key, self.shape)
        n_lead = len(self.shape) - len(self.page_shape)
        lead_key, page_key = key[:n_lead], key[n_lead:]
        ranges = [
            np.arange(k.start, k.stop, k.step) if isinstance(k, slice) else np.array([k])
            for k in lead_key
        ]
        grid = list(np.meshgrid(*ranges, indexing="ij"))
        grid_shape = tuple(len(r) for r in ranges)
        if self.channel_axis is not None:
            grid.insert(self.channel_axis, np.full(grid_shape, self.channel))
        if grid:
            flat = np.ravel_multi_index(tuple(grid), self.series_lead).ravel()
        else:
            flat = np.zeros(1, dtype=np.intp)
        pages = self._read(flat).reshape(grid_shape + self.page_shape)
        sel = tuple(0 if isinstance(k, int) else slice(None) for k in lead_key)
        return pages[sel + page_key]

    def _read(self, flat: np.ndarray) -> np.ndarray:
        return self._read_raw(flat) if self.dataoffset is not None else self._read_pages(flat)

    def _read_raw(self, flat: np.ndarray) -> np.ndarray:
        file_dtype = self.dtype.newbyteorder(self.byteorder)
        out = np.empty((len(flat), *self.page_shape), dtype=file_dtype)
        raw = out.reshape(len(flat), -1).view(np.uint8)
        page_bytes = raw.shape[1]
        # One read per run of consecutive pages (a whole chunk of a TYX stack).
        starts = np.flatnonzero(np.diff(flat, prepend=flat[0] - 2) != 1)
        ends = np.append(starts[1:], len(flat))
        with open(self.path, "rb") as fh:
            for a, b in zip(starts, ends, strict=True):
                fh.seek(self.dataoffset + int(flat[a]) * page_bytes)
                if fh.readinto(raw[a:b]) != (b - a) * page_bytes:
                    raise CorruptFileError(
                        f"{self.path} ended early: it was truncated or changed after opening."
                    )
        if not file_dtype.isnative:
            out = out.astype(self.dtype)
        return out

    def _read_pages(self, flat: np.ndarray) -> np.ndarray:
        import tifffile

        out = np.empty((len(flat), *self.page_shape), dtype=self.dtype)
        with tifffile.TiffFile(self.path) as tif:
            for j, i in enumerate(flat):
                # Jump straight to the page's IFD: no walk along the IFD chain.
                tif.filehandle.seek(int(self.ifd_offsets[i]))
                page = tifffile.TiffPage(tif, index=int(i))
                out[j] = page.asarray().reshape(self.page_shape)
        return out


@dataclass(frozen=True)
class _Series:
    index: int
    axes: str
    shape: tuple[int, ...]
    page_ndim: int
    dtype: np.dtype
    dataoffset: int | None
    ifd_offsets: np.ndarray | None
    pixel: tuple


def open_tiff(
    path: str | os.PathLike, *, chunks: Chunks = "auto", series: int | None = None
) -> list[tuple[Any, LayerInfo]]:
    """Open a TIFF file lazily as dask arrays, one per series and channel.

    Parameters
    ----------
    path : str or path-like
        A multi-page TIFF, ImageJ hyperstack or OME-TIFF (BigTIFF included).
    chunks : 'auto', int, str or tuple, optional
        Whole frames per chunk: ``'auto'`` (about 8 MiB, at least one frame), a number
        of frames, a byte target such as ``'32 MiB'``, or explicit dask chunks.
    series : int, optional
        Read only this tifffile series (default: all).

    Returns
    -------
    list of (dask.array.Array, LayerInfo)
        One item per series and channel, named ``<stem>``, ``<stem> [ch1]`` or
        ``<stem> [s1 ch0]`` when the file has several series.

    Raises
    ------
    CorruptFileError
        The file is not a readable TIFF, is truncated (image data beyond the end of
        the file), or tifffile reports damaged structure.
    FileNotFoundError
        No such file.

    Notes
    -----
    Axes keep tifffile's order, frames first and ``YX`` (then ``S`` for RGB) last;
    a ``C`` axis is split into separate items, and a lone unknown frame axis (``Q``
    or ``I``, plain multi-page files) is reported as ``T``. Pixel size comes from
    OME PhysicalSizeX/Y or ImageJ resolution + unit. Uncompressed contiguous data is
    read with plain file reads at computed offsets; anything else (compressed,
    scattered pages) is decoded page by page by tifffile, reopening the file in each
    task. Nothing is read until a chunk is computed.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np, tifffile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "movie.tif"
    >>> tifffile.imwrite(path, np.arange(5 * 4 * 6, dtype=np.uint16).reshape(5, 4, 6))
    >>> [(stack, info)] = open_tiff(path)
    >>> stack.shape, info.axes, int(stack[1].sum().compute())
    ((5, 4, 6), 'TYX', 852)
    """
    p = os.path.abspath(check_existing_file(path))
    size = os.path.getsize(p)
    if size < 8:
        raise CorruptFileError(f"{p} is not a TIFF file: it has only {size} bytes.")
    found, n_series = _scan(p, size, series)
    out = []
    for s in found:
        out.extend(_items(p, s, multi_series=n_series > 1, chunks=chunks))
    return out


def _items(path: str, s: _Series, *, multi_series: bool, chunks: Chunks) -> list[tuple]:
    n_lead = len(s.shape) - s.page_ndim
    lead_axes = s.axes[:n_lead]
    c_axis = lead_axes.find("C") if "C" in lead_axes else None
    channels = range(s.shape[c_axis]) if c_axis is not None else [None]
    axes = s.axes.replace("C", "", 1) if c_axis is not None else s.axes
    if len(axes) - s.page_ndim == 1 and axes[0] in "QI":
        axes = "T" + axes[1:]
    (px, unit, z), stem = s.pixel, display_stem(path)
    items = []
    for c in channels:
        proxy = TiffFrames(
            path,
            series_lead=s.shape[:n_lead],
            page_shape=s.shape[n_lead:],
            dtype=s.dtype,
            byteorder=s.dtype.byteorder,
            dataoffset=s.dataoffset,
            ifd_offsets=s.ifd_offsets,
            channel_axis=c_axis,
            channel=c,
        )
        tags = ([f"s{s.index}"] if multi_series else []) + ([f"ch{c}"] if c is not None else [])
        name = f"{stem} [{' '.join(tags)}]" if tags else stem
        info = LayerInfo(
            name=name,
            path=path,
            format="tiff",
            axes=axes,
            series=s.index,
            channel=c,
            pixel_size=px,
            pixel_unit=unit,
            z_spacing=z,
        )
        ck = frame_chunks(proxy.shape, s.page_ndim, s.dtype.itemsize, chunks)
        items.append((as_dask(proxy, ck), info))
    return items


def _scan(path: str, size: int, only: int | None) -> tuple[list[_Series], int]:
    """Describe the series as plain data (and count them); CorruptFileError on damage."""
    import tifffile

    with _tifffile_errors() as logged:
        try:
            with tifffile.TiffFile(path) as tif:
                _check_imagej_extent(tif, path, size)
                all_series = list(tif.series)
                found = [
                    _describe(tif, s, i, path, size)
                    for i, s in enumerate(all_series)
                    if only is None or i == only
                ]
        except CorruptFileError:
            raise
        except Exception as exc:  # tifffile raises many types on garbage input
            raise CorruptFileError(
                f"{path} is damaged: tifffile cannot parse it ({type(exc).__name__}: {exc})."
            ) from None
    if logged:
        raise CorruptFileError(
            f"{path} is damaged or truncated ({format_bytes(size)}): tifffile reports "
            + "; ".join(dict.fromkeys(logged))
        )
    if not all_series:
        raise CorruptFileError(f"{path} contains no images.")
    if only is not None and not found:
        raise ValueError(f"`series` must be in [0, {len(all_series) - 1}] for {path}; got {only}.")
    return found, len(all_series)


def _describe(tif: Any, series: Any, index: int, path: str, size: int) -> _Series:
    kf = series.keyframe
    shape = tuple(int(n) for n in series.shape)
    page_ndim = len(kf.shape)
    if 0 in shape:
        raise CorruptFileError(f"{path}: series {index} is empty (shape {shape}).")
    if shape[len(shape) - page_ndim :] != tuple(kf.shape):
        raise CorruptFileError(
            f"{path}: series {index} has shape {shape} that does not match its pages "
            f"{tuple(kf.shape)}; camtrack cannot read this layout."
        )
    dtype = np.dtype(series.dtype).newbyteorder(tif.byteorder)
    n_pages = int(np.prod(shape[: len(shape) - page_ndim], dtype=np.int64))
    page_bytes = int(np.prod(kf.shape, dtype=np.int64)) * dtype.itemsize
    offset = series.dataoffset
    if offset is not None and kf.compression == 1:
        end, ifds = offset + n_pages * page_bytes, None
    else:
        offset, pages = None, list(series.pages)
        if len(pages) != n_pages or any(pg is None for pg in pages):
            raise CorruptFileError(
                f"{path}: series {index} should have {n_pages} pages but "
                f"{sum(pg is not None for pg in pages)} were found; the file is damaged."
            )
        ifds = np.array([pg.offset for pg in pages], dtype=np.int64)
        end = max(
            (
                o + c
                for pg in pages
                for o, c in zip(pg.dataoffsets, pg.databytecounts, strict=True)
            ),
            default=0,
        )
    if end > size:
        raise CorruptFileError(
            f"{path} is truncated: the image data needs {format_bytes(end)} but the file has "
            f"{format_bytes(size)}."
        )
    return _Series(
        index=index,
        axes=series.axes,
        shape=shape,
        page_ndim=page_ndim,
        dtype=dtype,
        dataoffset=offset,
        ifd_offsets=ifds,
        pixel=tiff_pixel_size(tif, index),
    )


def _check_imagej_extent(tif: Any, path: str, size: int) -> None:
    """An ImageJ file says how many images it holds; check they fit in the file.

    Without this a truncated ImageJ stack silently opens as a single frame, because
    tifffile falls back to the pages it can still find.
    """
    meta = tif.imagej_metadata if tif.is_imagej else None
    page = tif.pages.first
    if not meta or page.compression != 1 or not page.dataoffsets:
        return
    n = int(meta.get("images", 1))
    end = int(page.dataoffsets[0]) + n * int(page.nbytes)
    if n > 1 and end > size:
        raise CorruptFileError(
            f"{path} is truncated: the image data of its {n} ImageJ images needs "
            f"{format_bytes(end)} but the file has {format_bytes(size)}."
        )


@contextlib.contextmanager
def _tifffile_errors() -> Iterator[list[str]]:
    """Collect the errors tifffile logs (instead of raising) in this thread."""
    messages: list[str] = []
    me = threading.get_ident()

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.thread == me and record.levelno >= logging.ERROR:
                messages.append(record.getMessage().split("> ", 1)[-1])

    handler = _Collect()
    logger = logging.getLogger("tifffile")
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)
