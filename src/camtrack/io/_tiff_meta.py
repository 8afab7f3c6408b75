"""Pixel size from TIFF metadata: ImageJ (resolution + unit + spacing) and OME-XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from camtrack.io._types import normalize_unit

__all__ = ["PixelSize", "tiff_pixel_size"]

# (pixel_size (y, x), unit, z_spacing); all None when the file does not say.
PixelSize = tuple[tuple[float, float] | None, str | None, float | None]
_UNKNOWN: PixelSize = (None, None, None)


def tiff_pixel_size(tif: Any, series_index: int) -> PixelSize:
    """Pixel size of one series of an open ``tifffile.TiffFile``.

    OME PhysicalSizeX/Y/Z (unit attributes, default µm) win over ImageJ metadata;
    ImageJ gives XResolution/YResolution (pixels per `unit`) and ``spacing`` (z).
    Plain TIFF resolution tags (usually a 72 dpi default) are ignored.
    """
    try:
        if tif.is_ome and tif.ome_metadata:
            found = _ome_pixel_size(tif.ome_metadata, series_index)
            if found[0] is not None:
                return found
        if tif.is_imagej and tif.imagej_metadata:
            return _imagej_pixel_size(tif.imagej_metadata, tif.series[series_index].keyframe)
    except (ValueError, TypeError, KeyError, IndexError, ZeroDivisionError, ET.ParseError):
        # Unreadable metadata only loses the pixel size, never the image.
        pass
    return _UNKNOWN


def _imagej_pixel_size(meta: dict, page: Any) -> PixelSize:
    unit = normalize_unit(meta.get("unit"))
    if unit is None:
        return _UNKNOWN
    res_x, res_y = page.resolution  # pixels per unit
    if not (res_x > 0 and res_y > 0):
        return _UNKNOWN
    spacing = meta.get("spacing")
    z = float(spacing) if isinstance(spacing, int | float) and spacing > 0 else None
    return (1.0 / float(res_y), 1.0 / float(res_x)), unit, z


def ome_pixels(xml: str, series_index: int) -> ET.Element | None:
    """The ``Pixels`` element of the OME image ``series_index``, or None."""
    root = ET.fromstring(xml)
    images = [el for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "Image"]
    if series_index >= len(images):
        return None
    return next((el for el in images[series_index] if el.tag.rsplit("}", 1)[-1] == "Pixels"), None)


def _ome_pixel_size(xml: str, series_index: int) -> PixelSize:
    pixels = ome_pixels(xml, series_index)
    if pixels is None or "PhysicalSizeX" not in pixels.attrib:
        return _UNKNOWN

    def size(axis: str) -> tuple[float | None, str | None]:
        value = pixels.attrib.get(f"PhysicalSize{axis}")
        if value is None:
            return None, None
        # OME's default unit for physical sizes is the micrometre.
        return float(value), normalize_unit(pixels.attrib.get(f"PhysicalSize{axis}Unit", "µm"))

    x, ux = size("X")
    y, uy = size("Y")
    z, uz = size("Z")
    if y is None:
        y, uy = x, ux
    if ux is None or ux != uy or not (x and y and x > 0 and y > 0):
        return _UNKNOWN
    return (y, x), ux, (z if uz == ux and z and z > 0 else None)
