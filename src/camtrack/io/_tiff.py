"""Lazy TIFF reader: multi-page, ImageJ hyperstack and OME-TIFF -> dask, one item per channel."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import warnings
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import numpy as np

from camtrack._validation import check_existing_file
from camtrack.io._lazy import Chunks, as_dask, file_stamp, frame_chunks, normalize_key
from camtrack.io._tiff_meta import tiff_pixel_size
from camtrack.io._tiff_pages import (
    TiffSeries,
    merge_single_pages,
    page_run,
    written_page_by_page,
)
from camtrack.io._time_meta import tiff_timing
from camtrack.io._types import CorruptFileError, LayerInfo, display_stem, format_bytes

__all__ = ["TiffFrames", "open_tiff"]


class TiffFrames:
    """Picklable array-like over the pages of one TIFF series (optionally one channel).

    Holds the path, the page layout and either the offset of contiguous raw data,
    or the offset of each page's raw data (both read with ``seek`` + ``readinto``,
    byte-swapped if needed), or the file offset of every page's IFD (each page
    decoded by tifffile). Every ``__getitem__`` opens the file, reads the pages the
    key needs, and closes it.
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
        page_offsets: np.ndarray | None = None,
    ) -> None:
        self.path = path
        self.series_lead = tuple(series_lead)
        self.page_shape = tuple(page_shape)
        self.dtype = np.dtype(dtype).newbyteorder("=")  # what the reads return
        self.byteorder = byteorder  # how the file stores it
        self.dataoffset = dataoffset
        self.ifd_offsets = ifd_offsets
        self.page_offsets = page_offsets
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
            None if self.page_offsets is None else len(self.page_offsets),
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
        if self.dataoffset is None and self.page_offsets is None:
            return self._read_pages(flat)
        return self._read_raw(flat)

    def _read_raw(self, flat: np.ndarray) -> np.ndarray:
        file_dtype = self.dtype.newbyteorder(self.byteorder)
        out = np.empty((len(flat), *self.page_shape), dtype=file_dtype)
        raw = out.reshape(len(flat), -1).view(np.uint8)
        page_bytes = raw.shape[1]
        if self.page_offsets is not None:
            offsets = self.page_offsets[flat]
        else:
            offsets = self.dataoffset + flat.astype(np.int64) * page_bytes
        # One read per run of pages that lie back to back (a whole chunk of a TYX stack).
        starts = np.flatnonzero(np.diff(offsets, prepend=offsets[0] - 2 * page_bytes) != page_bytes)  # fmt: skip
        ends = np.append(starts[1:], len(flat))
        with open(self.path, "rb") as fh:
            for a, b in zip(starts, ends, strict=True):
                fh.seek(int(offsets[a]))
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


def open_tiff(
    path: str | os.PathLike,
    *,
    chunks: Chunks = "auto",
    series: int | None = None,
    pages: bool = False,
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
        Read only this series (default: all), counted as in the item names
        (``s1``): tifffile's series, with runs of single pages merged (see Notes).
    pages : bool, optional
        Read every page of the file as one (T, Y, X) stack, whatever the metadata
        say, named ``<stem> [pages]`` (key ``'pages'``). For files whose OME
        ``SizeT`` (or other metadata) describe fewer frames than the file holds.
        The pages must be 2-D and of one shape and dtype.

    Returns
    -------
    list of (dask.array.Array, LayerInfo)
        One item per series and channel, named ``<stem>``, ``<stem> [ch1]`` or
        ``<stem> [s1 ch0]`` when the file has several series; ``info.key`` is the
        bracketed part (``'s1 ch0'``), which `open_stack` accepts.

    Warns
    -----
    UserWarning
        An OME-TIFF whose metadata describe fewer frames than it holds pages (a
        writer that crashed or was stopped before updating ``SizeT``): the warning
        names both counts and how to read all pages (``pages=True``).

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
    or ``I``, plain multi-page files) is reported as ``T``. A file written one page
    at a time (tifffile's ``TiffWriter.write`` once per frame, as many acquisition
    programs do) holds one tifffile series per page; consecutive single 2-D pages of
    one shape and dtype are read as one (T, Y, X) stack instead (only their tags are
    read when opening). Pixel size comes from
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
    items, note = read_tiff(p, size, chunks=chunks, series=series, pages=bool(pages))
    if note:
        warnings.warn(note, UserWarning, stacklevel=2)
    return items


def read_tiff(
    path: str,
    size: int,
    *,
    chunks: Chunks = "auto",
    series: int | None = None,
    pages: bool = False,
    alternatives: bool = False,
) -> tuple[list[tuple[Any, LayerInfo]], str | None]:
    """`open_tiff` without the warning: (items, the warning's text or None).

    With `alternatives`, the items also hold the ``pages`` stack where the metadata
    describe fewer frames than the file holds (what ``camtrack info`` lists).
    """
    found, n_series, note, extra = _scan(path, size, series, pages=pages)
    out = []
    for s in found:
        out.extend(_items(path, s, multi_series=n_series > 1, chunks=chunks))
    if alternatives and extra is not None:
        out.extend(_items(path, extra, multi_series=False, chunks=chunks))
    return out, note


def _items(path: str, s: TiffSeries, *, multi_series: bool, chunks: Chunks) -> list[tuple]:
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
            page_offsets=s.page_offsets,
        )
        tags = ([f"s{s.index}"] if multi_series else []) + ([f"ch{c}"] if c is not None else [])
        key = s.key if s.key is not None else " ".join(tags)
        name = f"{stem} [{key}]" if key else stem
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
            key=key,
            fs_hz=s.timing[0],
            exposure_s=s.timing[1],
        )
        ck = frame_chunks(proxy.shape, s.page_ndim, s.dtype.itemsize, chunks)
        items.append((as_dask(proxy, ck), info))
    return items


def _scan(
    path: str, size: int, only: int | None, *, pages: bool
) -> tuple[list[TiffSeries], int, str | None, TiffSeries | None]:
    """The stacks as plain data, their count, a warning (or None) and the pages stack.

    The pages stack (every page as a frame) is returned only where the OME metadata
    describe fewer frames than the file holds. CorruptFileError on damage.
    """
    import tifffile

    with _tifffile_errors() as logged:
        try:
            with tifffile.TiffFile(path) as tif:
                _check_imagej_extent(tif, path, size)
                found, n_series, note, extra = _stacks(tif, path, size, only, pages)
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
    if pages and not found:
        raise ValueError(
            f"`pages`=True needs pages that are all 2-D images of one shape and dtype; those "
            f"of {path} are not. Read its series instead (pages=False)."
        )
    if n_series == 0:
        raise CorruptFileError(f"{path} contains no images.")
    if only is not None and not found:
        raise ValueError(f"`series` must be in [0, {n_series - 1}] for {path}; got {only}.")
    return found, n_series, note, extra


def _stacks(
    tif: Any, path: str, size: int, only: int | None, pages: bool
) -> tuple[list[TiffSeries], int, str | None, TiffSeries | None]:
    """What `_scan` returns, from an open file (inside its error handling)."""
    order = tif.byteorder
    if pages or written_page_by_page(tif):
        # Straight from the pages' tags: tifffile's series for a file of N single
        # pages cost about 4x the page scan (2.1 s against 0.5 s for 5000 pages).
        run = page_run(tif.pages, 0, path, size, order, tiff_pixel_size(tif, 0))
        if pages:
            pages_run = (
                [] if run is None else [replace(run, key="pages", timing=tiff_timing(tif, 0))]
            )
            return pages_run, 1, None, None
        if run is not None:
            return [run], 1, None, None
    all_series = list(tif.series)
    if tif.is_ome or tif.is_imagej:
        groups = [[i] for i in range(len(all_series))]
    else:
        groups = merge_single_pages(all_series)
    found = []
    for k, group in enumerate(groups):
        if only is not None and k != only:
            continue
        first = all_series[group[0]]
        if len(group) == 1:
            found.append(replace(_describe(tif, first, group[0], path, size), index=k))
        else:
            run = page_run([all_series[i].pages[0] for i in group], k, path, size, order,
                           tiff_pixel_size(tif, group[0]))  # fmt: skip
            found.append(run)
    note, extra = _missed_pages(tif, all_series, path, size)
    return found, len(groups), note, extra


def _missed_pages(
    tif: Any, all_series: list, path: str, size: int
) -> tuple[str | None, TiffSeries | None]:
    """Warning text and the all-pages stack when OME metadata describe fewer pages than exist.

    A writer stopped before it rewrote ``SizeT`` (or one that never counted) leaves
    such files; tifffile then reads only the frames the metadata describe.
    """
    if not tif.is_ome:
        return None, None
    n_pages = len(tif.pages)
    described = sum(len(s.pages) for s in all_series)
    if described >= n_pages:
        return None, None
    sizes = [f"SizeT={s.shape[s.axes.index('T')]}" for s in all_series if "T" in s.axes]
    said = f" ({', '.join(sizes)})" if sizes else ""
    import tifffile

    # A fresh handle: after tif.series its pages are light frames without a shape.
    with tifffile.TiffFile(path) as fresh:
        run = page_run(fresh.pages, 0, path, size, tif.byteorder, tiff_pixel_size(tif, 0))
    if run is None:
        offer = "The pages differ in shape or dtype, so they cannot be offered as one stack."
    else:
        run = replace(run, key="pages", timing=tiff_timing(tif, 0))
        offer = (
            f"To read all {n_pages} pages as frames, open the stack 'pages': "
            "camtrack.io.open_stack(path, item='pages'), `--dataset pages` on the "
            "command line, or open_tiff(path, pages=True)."
        )
    note = (
        f"{path}: its OME metadata describe {described} frames{said} but the file holds "
        f"{n_pages} pages; reading the {described} frames the metadata describe. {offer}"
    )
    return note, run


def _describe(tif: Any, series: Any, index: int, path: str, size: int) -> TiffSeries:
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
    return TiffSeries(
        index=index,
        axes=series.axes,
        shape=shape,
        page_ndim=page_ndim,
        dtype=dtype,
        dataoffset=offset,
        ifd_offsets=ifds,
        pixel=tiff_pixel_size(tif, index),
        timing=tiff_timing(tif, index),
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
