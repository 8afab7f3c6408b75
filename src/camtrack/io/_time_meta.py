"""Frame rate and exposure from file metadata: OME-XML, ImageJ and HDF5 attributes."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from typing import Any

import numpy as np

from camtrack.io._tiff_meta import ome_pixels

__all__ = ["Timing", "hdf5_timing", "tiff_timing", "to_seconds"]

# (fs_hz, exposure_s); None where the file does not say.
Timing = tuple[float | None, float | None]
_UNKNOWN: Timing = (None, None)

_SECONDS = {
    "s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0,
    "ms": 1e-3, "msec": 1e-3, "millisecond": 1e-3, "milliseconds": 1e-3,
    "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "\\u00b5s": 1e-6, "microsecond": 1e-6,
    "microseconds": 1e-6,
    "ns": 1e-9, "nanosecond": 1e-9, "nanoseconds": 1e-9,
    "min": 60.0, "minute": 60.0, "minutes": 60.0,
    "h": 3600.0, "hr": 3600.0, "hour": 3600.0, "hours": 3600.0,
}  # fmt: skip

# HDF5 attribute -> how to turn its value into (fs_hz or exposure_s).
_FS_ATTRS = {"fs_hz": 1.0, "frame_rate_hz": 1.0, "frame_rate": 1.0, "fps": 1.0, "fs": 1.0}
_INTERVAL_ATTRS = {"frame_interval_s": 1.0, "dt_s": 1.0, "frame_interval_ms": 1e-3}
_EXPOSURE_ATTRS = {
    "exposure_s": 1.0, "exposure_time_s": 1.0, "exposure_ms": 1e-3, "exposure_time_ms": 1e-3,
    "exposure_us": 1e-6,
}  # fmt: skip


def to_seconds(value: Any, unit: Any = "s") -> float | None:
    """A positive finite time in s from a value and its unit name, else None."""
    scale = _SECONDS.get(str(unit).strip().lower()) if unit is not None else None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    if scale is None or not math.isfinite(v) or v <= 0:
        return None
    return v * scale


def _checked(fs_hz: float | None, exposure_s: float | None) -> Timing:
    """Drop an exposure longer than the frame period (inconsistent metadata, not guessed)."""
    if fs_hz is not None and not (math.isfinite(fs_hz) and fs_hz > 0):
        fs_hz = None
    if exposure_s is not None and fs_hz is not None and exposure_s * fs_hz > 1 + 1e-6:
        exposure_s = None
    return fs_hz, exposure_s


def tiff_timing(tif: Any, series_index: int) -> Timing:
    """Frame rate and exposure of one series of an open ``tifffile.TiffFile``.

    OME ``Pixels/@TimeIncrement`` (``TimeIncrementUnit``, default s) and
    ``Plane/@ExposureTime`` (``ExposureTimeUnit``, default s; the first plane's) win
    over ImageJ ``finterval`` (in ``tunit``, default s) or ``fps``. Unreadable
    metadata give None, never an error.
    """
    try:
        if tif.is_ome and tif.ome_metadata:
            found = _ome_timing(tif.ome_metadata, series_index)
            if found != _UNKNOWN:
                return _checked(*found)
        if tif.is_imagej and tif.imagej_metadata:
            return _checked(*_imagej_timing(tif.imagej_metadata))
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, ET.ParseError):
        pass
    return _UNKNOWN


def _imagej_timing(meta: dict) -> Timing:
    interval = to_seconds(meta.get("finterval"), meta.get("tunit") or "s")
    if interval is not None:
        return 1.0 / interval, None
    fps = to_seconds(meta.get("fps"), "s")  # a positive number, any unit: Hz
    return fps, None


def _ome_timing(xml: str, series_index: int) -> Timing:
    pixels = ome_pixels(xml, series_index)
    if pixels is None:
        return _UNKNOWN
    a = pixels.attrib
    interval = to_seconds(a.get("TimeIncrement"), a.get("TimeIncrementUnit", "s"))
    exposure = None
    for plane in pixels:
        if plane.tag.rsplit("}", 1)[-1] == "Plane" and "ExposureTime" in plane.attrib:
            p = plane.attrib
            exposure = to_seconds(p["ExposureTime"], p.get("ExposureTimeUnit", "s"))
            break
    return (None if interval is None else 1.0 / interval), exposure


def hdf5_timing(dset: Any) -> Timing:
    """Frame rate and exposure from attributes of an HDF5 dataset or its parent groups.

    Frame rate: ``fs_hz``, ``frame_rate_hz``, ``frame_rate``, ``fps``, ``fs`` (Hz) or
    the interval ``frame_interval_s``, ``dt_s``, ``frame_interval_ms``; exposure:
    ``exposure_s``, ``exposure_time_s``, ``exposure_ms``, ``exposure_time_ms``,
    ``exposure_us``. The nearest object that has one wins.
    """
    fs = exposure = None
    obj = dset
    while True:
        attrs = obj.attrs
        if fs is None:
            for name, scale in _FS_ATTRS.items():
                if name in attrs and (v := _number(attrs[name])) is not None:
                    fs = v * scale
                    break
            else:
                for name, scale in _INTERVAL_ATTRS.items():
                    if name in attrs and (v := _number(attrs[name])) is not None:
                        fs = 1.0 / (v * scale)
                        break
        if exposure is None:
            for name, scale in _EXPOSURE_ATTRS.items():
                if name in attrs and (v := _number(attrs[name])) is not None:
                    exposure = v * scale
                    break
        if (fs is not None and exposure is not None) or obj.name == "/":
            return _checked(fs, exposure)
        obj = obj.parent


def _number(value: Any) -> float | None:
    try:
        arr = np.ravel(np.asarray(value, dtype=float))
    except (TypeError, ValueError):
        return None
    if arr.size != 1 or not np.isfinite(arr[0]) or arr[0] <= 0:
        return None
    return float(arr[0])
