"""What a reader returns besides the array: `LayerInfo`, units and `CorruptFileError`."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = ["CorruptFileError", "LayerInfo", "display_stem", "format_bytes", "normalize_unit"]

# Canonical spelling of each length unit and its size in nm.
_NM_PER_UNIT = {"Å": 0.1, "nm": 1.0, "µm": 1e3, "mm": 1e6, "cm": 1e7, "m": 1e9}
_UNIT_ALIASES = {
    "å": "Å",
    "angstrom": "Å",
    "nm": "nm",
    "nanometer": "nm",
    "nanometre": "nm",
    "um": "µm",
    "µm": "µm",  # micro sign U+00B5
    "μm": "µm",  # greek small mu U+03BC
    "\\u00b5m": "µm",  # ImageJ writes the escape sequence literally
    "micron": "µm",
    "microns": "µm",
    "micrometer": "µm",
    "micrometre": "µm",
    "mm": "mm",
    "millimeter": "mm",
    "cm": "cm",
    "centimeter": "cm",
    "m": "m",
    "meter": "m",
}
# napari (pint) names for the canonical units.
_PINT_NAME = {
    "Å": "angstrom",
    "nm": "nanometer",
    "µm": "micrometer",
    "mm": "millimeter",
    "cm": "centimeter",
    "m": "meter",
}


class CorruptFileError(ValueError):
    """A file has the right format but is truncated or damaged.

    Raised when the file is opened, never later inside dask, and the message names
    the file and the problem.
    """


def normalize_unit(unit: Any) -> str | None:
    """Canonical length unit ('nm', 'µm', ...) for a metadata string, else None.

    Unknown or non-length units ('pixel', 'inch', '') give None, so the pixel size
    is treated as unknown rather than guessed.
    """
    if not isinstance(unit, str):
        return None
    return _UNIT_ALIASES.get(unit.strip().lower())


def format_bytes(n: float) -> str:
    """Human-readable decimal size: 1234567 -> '1.2 MB'."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError  # pragma: no cover


@dataclass(frozen=True)
class LayerInfo:
    """Provenance and geometry of one stack found in a file.

    Attributes
    ----------
    name : str
        Display name: the file stem, plus ``[ch1]`` / ``[s0 ch1]`` for TIFF channels
        and series, or ``:/group/dataset`` for HDF5.
    path : str
        Absolute path of the source file.
    format : {'tiff', 'hdf5'}
        File format.
    axes : str
        One letter per array axis, frames first and ``YX`` last (tifffile's codes:
        T time, Z depth, Q/I unknown frame axis, S samples such as RGB).
    dataset : str or None
        HDF5 dataset path (None for TIFF).
    series : int or None
        TIFF series index (None for HDF5).
    channel : int or None
        TIFF channel index taken out of a ``C`` axis, else None.
    pixel_size : tuple of float or None
        (y, x) pixel size in `pixel_unit`, or None when the file does not say.
    pixel_unit : str or None
        Canonical length unit of `pixel_size` and `z_spacing`: 'nm', 'µm', ...
    z_spacing : float or None
        Step between ``Z`` planes in `pixel_unit` (ImageJ ``spacing``, OME
        PhysicalSizeZ), used for the scale of a ``Z`` axis.
    key : str or None
        The short name that picks this stack out of its file, the same everywhere
        (``camtrack.io.open_stack(path, item=key)``, ``camtrack gain/track --dataset
        KEY``, listed by ``camtrack info``): ``'ch1'``, ``'s1 ch0'``, ``'s2'`` or
        ``'pages'`` for TIFF, the dataset path (``'/events/image'``, ``'/data[1]'``
        for one 3-D part of a 4-D dataset) for HDF5, ``''`` for a TIFF holding one
        stack.
    fs_hz : float or None
        Frame rate in Hz (OME ``TimeIncrement``, ImageJ ``finterval`` or ``fps``, HDF5
        attributes such as ``fs_hz`` / ``frame_rate``), or None when the file does not say.
    exposure_s : float or None
        Exposure time per frame in s (OME ``ExposureTime``, HDF5 ``exposure_s``), or None.

    Notes
    -----
    The array this describes is (frames..., rows, cols): any number of leading frame
    axes, then Y (rows), then X (columns), optionally followed by ``S``.
    `scale` gives 1.0 for frame axes and the pixel size for Y and X; like
    ``axis_labels`` and ``units`` in `to_layer_kwargs` it leaves out a trailing ``S``
    axis, which napari shows as colour (``rgb=True``).

    Examples
    --------
    >>> info = LayerInfo(name="beads", path="/data/beads.tif", format="tiff", axes="TYX",
    ...                  pixel_size=(0.065, 0.065), pixel_unit="µm")
    >>> info.scale
    (1.0, 0.065, 0.065)
    >>> info.nm_per_px
    65.0
    >>> info.to_layer_kwargs()["name"]
    'beads'
    """

    name: str
    path: str
    format: Literal["tiff", "hdf5"]
    axes: str
    dataset: str | None = None
    series: int | None = None
    channel: int | None = None
    pixel_size: tuple[float, float] | None = None
    pixel_unit: str | None = None
    z_spacing: float | None = None
    key: str | None = None
    fs_hz: float | None = None
    exposure_s: float | None = None

    @property
    def layer_axes(self) -> str:
        """The axes napari sees: `axes` without a trailing samples (RGB) axis."""
        return self.axes[:-1] if self.axes.endswith("S") else self.axes

    @property
    def scale(self) -> tuple[float, ...]:
        """Scale per `layer_axes` for napari: pixel size on Y and X, z spacing on Z, else 1."""
        out = []
        for ax in self.layer_axes:
            if ax in "YX" and self.pixel_size is not None:
                out.append(float(self.pixel_size["YX".index(ax)]))
            elif ax == "Z" and self.z_spacing is not None and self.pixel_size is not None:
                out.append(float(self.z_spacing))
            else:
                out.append(1.0)
        return tuple(out)

    @property
    def nm_per_px(self) -> float | None:
        """Pixel size along x in nm, or None when unknown."""
        if self.pixel_size is None or self.pixel_unit not in _NM_PER_UNIT:
            return None
        return float(self.pixel_size[1]) * _NM_PER_UNIT[self.pixel_unit]

    def to_layer_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``napari.layers.Image`` (name, scale, metadata, ...).

        ``metadata`` holds the provenance (path, format, dataset or series/channel,
        axes, pixel size and unit, nm_per_px, frame rate ``fs_hz`` and exposure
        ``exposure_s`` (None when unknown)). ``units`` is set only when the pixel
        size is known; ``rgb`` only for a trailing samples (``S``) axis.
        """
        kwargs: dict[str, Any] = {
            "name": self.name,
            "scale": self.scale,
            "axis_labels": tuple(self.layer_axes),
            "metadata": {**asdict(self), "nm_per_px": self.nm_per_px},
        }
        if self.pixel_size is not None and self.pixel_unit in _PINT_NAME:
            unit = _PINT_NAME[self.pixel_unit]
            has_z = self.z_spacing is not None
            kwargs["units"] = tuple(
                unit if ax in "YX" or (ax == "Z" and has_z) else "pixel" for ax in self.layer_axes
            )
        if self.axes.endswith("S"):
            kwargs["rgb"] = True
        return kwargs


def display_stem(path: str | os.PathLike) -> str:
    """File name without its image extension ('a.ome.tif' -> 'a')."""
    name = os.path.basename(os.fspath(path))
    for ext in (".ome.tiff", ".ome.tif"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return os.path.splitext(name)[0]
