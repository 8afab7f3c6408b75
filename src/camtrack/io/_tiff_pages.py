"""TIFF layout as plain data: series described for `TiffFrames`, and runs of single pages.

Acquisition programs often write a movie one ``write`` call per frame; tifffile then
reports one 2-D series per page, which no stack-level engine accepts. Here such pages
(same 2-D shape, same dtype) become one (T, Y, X) series. The same scan offers every
page of a file as frames when the metadata (OME ``SizeT``) describe fewer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from camtrack.io._types import CorruptFileError, format_bytes

__all__ = ["TiffSeries", "merge_single_pages", "page_run", "written_page_by_page"]

# tifffile series kinds whose split into one series per page carries no meaning of its
# own (tifffile's own "shaped" description per write call, or no metadata at all);
# OME, ImageJ and the vendor formats describe their series on purpose.
_MERGEABLE_KINDS = ("shaped", "generic", "uniform")


@dataclass(frozen=True)
class TiffSeries:
    """One stack of a TIFF file as plain data: where its pages lie and how to read them.

    ``dataoffset`` (one contiguous block of raw pages) or ``page_offsets`` (raw data of
    each page, uncompressed pages anywhere in the file) allow plain file reads;
    otherwise ``ifd_offsets`` let tifffile decode each page.
    """

    index: int
    axes: str
    shape: tuple[int, ...]
    page_ndim: int
    dtype: np.dtype
    dataoffset: int | None
    ifd_offsets: np.ndarray | None
    pixel: tuple
    page_offsets: np.ndarray | None = None
    key: str | None = None
    timing: tuple = (None, None)  # (fs_hz, exposure_s) from the metadata


def written_page_by_page(tif: Any) -> bool:
    """True when the first page is a 2-D tifffile "shaped" series of its own.

    That is what ``TiffWriter.write`` called once per frame leaves; only the first
    page's description is read, so this is cheap.
    """
    if not tif.is_shaped or tif.is_ome or tif.is_imagej:
        return False
    first = tif.pages.first
    try:
        shape = tuple(json.loads(first.shaped_description or "{}").get("shape", ()))
    except (ValueError, TypeError, AttributeError):
        return False  # an older "shape=(...)" description: let tifffile's series decide
    return len(first.shape) == 2 and shape == tuple(first.shape) and len(tif.pages) > 1


def page_run(
    pages: Sequence[Any] | Any, index: int, path: str, size: int, byteorder: str, pixel: tuple
) -> TiffSeries | None:
    """All `pages` as one (T, Y, X) series, or None unless they are 2-D of one shape and dtype.

    Reads the pages' tags only (IFDs), never their pixels.
    """
    first = None
    ifds: list[int] = []
    data: list[int] | None = []
    end = 0
    for page in pages:
        shape, dtype = tuple(page.shape), page.dtype
        if len(shape) != 2 or dtype is None or 0 in shape:
            return None
        if first is None:
            first = (shape, np.dtype(dtype))
        elif (shape, np.dtype(dtype)) != first:
            return None
        ifds.append(int(page.offset))
        if data is not None and page.is_final:
            data.append(int(page.dataoffsets[0]))
        else:
            data = None
        segments = zip(page.dataoffsets, page.databytecounts, strict=True)
        end = max(end, max((int(o) + int(c) for o, c in segments), default=0))
    if first is None or len(ifds) < 2:
        return None
    if end > size:
        raise CorruptFileError(
            f"{path} is truncated: the image data needs {format_bytes(end)} but the file has "
            f"{format_bytes(size)}."
        )
    shape, dtype = first
    return TiffSeries(
        index=index,
        axes="TYX",
        shape=(len(ifds), *shape),
        page_ndim=2,
        dtype=dtype.newbyteorder(byteorder),
        dataoffset=None,
        ifd_offsets=np.asarray(ifds, dtype=np.int64),
        pixel=pixel,
        page_offsets=None if data is None else np.asarray(data, dtype=np.int64),
    )


def _single_page(series: Any) -> Any | None:
    """The page of a mergeable series that is one 2-D page, else None."""
    if series.kind not in _MERGEABLE_KINDS or len(series.shape) != 2:
        return None
    pages = series.pages
    if len(pages) != 1 or pages[0] is None or tuple(pages[0].shape) != tuple(series.shape):
        return None
    return pages[0]


def merge_single_pages(all_series: Sequence[Any]) -> list[list[int]]:
    """Group tifffile series indices: runs of single 2-D pages of one shape and dtype.

    Returns one list per resulting stack, in file order; a run of one stays a series
    of its own.
    """
    groups: list[list[int]] = []
    last_key = None
    for i, s in enumerate(all_series):
        page = _single_page(s)
        key = None if page is None else (tuple(page.shape), np.dtype(page.dtype))
        if key is not None and key == last_key:
            groups[-1].append(i)
        else:
            groups.append([i])
        last_key = key
    return groups
