"""Per-pixel sCMOS calibration from a dark stack and stacks at several light levels."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from camtrack import _backend
from camtrack._parallel import resolve
from camtrack._validation import check_range, check_stack
from camtrack.gain._kernels import finalize
from camtrack.gain._tiles import Progress, reduce_moments

__all__ = ["PixelCalibration", "calibrate_pixels"]

_MAPS = {
    # name: unit
    "offset_map_adu": "ADU",
    "dark_var_map_adu2": "ADU^2",
    "adu_per_e_map": "ADU/e-",
    "e_per_adu_map": "e-/ADU",
    "read_noise_map_e": "e- rms",
}


@dataclass(frozen=True, eq=False)
class PixelCalibration:
    """Per-pixel camera maps (sCMOS): offset, read variance and conversion factor.

    Attributes
    ----------
    offset_map_adu : array (Y, X)
        Dark offset per pixel, ADU.
    dark_var_map_adu2 : array (Y, X)
        Temporal variance of the dark frames per pixel, ADU**2 (read noise plus ADC
        rounding).
    adu_per_e_map : array (Y, X)
        Per-pixel photon-transfer slope over ``excess_noise_factor``, ADU per e-.
    e_per_adu_map : array (Y, X)
        ``1 / adu_per_e_map``; NaN where the slope is not positive.
    read_noise_map_e : array (Y, X)
        Read noise per pixel, e- rms (rounding noise removed for integer data).

    The maps are float64 on the input's backend: cupy for cupy stacks, numpy for
    numpy and dask stacks.
    n_levels : int
        Light levels used.
    excess_noise_factor : float
        ``F**2`` used.
    """

    offset_map_adu: np.ndarray = field(repr=False)
    dark_var_map_adu2: np.ndarray = field(repr=False)
    adu_per_e_map: np.ndarray = field(repr=False)
    e_per_adu_map: np.ndarray = field(repr=False)
    read_noise_map_e: np.ndarray = field(repr=False)
    n_levels: int = 0
    excess_noise_factor: float = 1.0

    @property
    def shape(self) -> tuple[int, int]:
        """Map shape (Y, X)."""
        return tuple(self.offset_map_adu.shape)

    @property
    def e_per_adu(self) -> float:
        """Median conversion factor, e-/ADU."""
        return float(np.nanmedian(_backend.to_host(self.e_per_adu_map)))

    def save(self, path: str | os.PathLike, *, overwrite: bool = False, protect: Any = ()) -> Path:
        """Write to ``.h5``/``.hdf5`` (datasets with a ``unit`` attribute) or ``.npz``.

        Written to a temporary name and renamed, so an interrupted save leaves no
        half file; an existing file is replaced only with ``overwrite=True``, and
        the files in ``protect`` (inputs; paths or None) never. Returns the path.
        """
        from camtrack.io import atomic_path

        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".h5", ".hdf5", ".npz"):
            raise ValueError(f"`path` must end in .h5, .hdf5 or .npz; got {str(path)!r}.")
        meta = {
            "kind": "camtrack.PixelCalibration",
            "n_levels": self.n_levels,
            "excess_noise_factor": self.excess_noise_factor,
            "units": _MAPS,
        }
        with atomic_path(path, overwrite=overwrite, protect=protect) as tmp:
            if suffix == ".npz":
                with open(tmp, "wb") as fh:
                    np.savez(
                        fh,
                        meta=np.array(json.dumps(meta)),
                        **{k: _backend.to_host(getattr(self, k)) for k in _MAPS},
                    )
            else:
                import h5py

                with h5py.File(tmp, "w") as f:
                    for key, value in meta.items():
                        f.attrs[key] = json.dumps(value) if isinstance(value, dict) else value
                    for key, unit in _MAPS.items():
                        data = _backend.to_host(getattr(self, key))
                        f.create_dataset(key, data=data).attrs["unit"] = unit
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> PixelCalibration:
        """Read a file written by :meth:`save`."""
        from camtrack._validation import check_existing_file

        path = check_existing_file(path)
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                arrays = {k: np.asarray(z[k]) for k in _MAPS}
        else:
            import h5py

            with h5py.File(path, "r") as f:
                meta = {k: f.attrs[k] for k in ("kind", "n_levels", "excess_noise_factor")}
                arrays = {k: np.asarray(f[k]) for k in _MAPS}
        if meta.get("kind") != "camtrack.PixelCalibration":
            raise ValueError(f"{str(path)!r} is not a camtrack pixel calibration file.")
        return cls(
            **arrays,
            n_levels=int(meta["n_levels"]),
            excess_noise_factor=float(meta["excess_noise_factor"]),
        )

    def to_layers(self) -> list[tuple[Any, dict, str]]:
        """The maps as napari layer tuples ``(data, kwargs, "image")``.

        Layers ``offset (ADU)``, ``variance (ADU²)`` (of the dark frames), ``gain
        (e-/ADU)`` and ``read noise (e-)``: host float32 (cupy maps are copied off the
        device), viridis, contrast limits from the 1st-99th percentiles of the finite
        values. No napari import: the GUI adds them or updates the layers of these
        names.
        """
        from camtrack._layerdata import PIXEL_MAP_LAYERS, map_layer

        return [map_layer(name, getattr(self, field)) for field, name in PIXEL_MAP_LAYERS.items()]

    def to_electrons(self, stack: Any, *, lazy: bool = False) -> Any:
        """``(stack - offset_map_adu) * e_per_adu_map`` pixel by pixel: photoelectrons.

        float32 on the stack's backend; lazy for dask input (and, with ``lazy=True``,
        for any input: whole-frame dask chunks of about 4 MPixel). The stack is never
        modified. Pixels without a usable factor (NaN: no positive photon-transfer
        slope) take the median factor ``e_per_adu``, as the tracking camera model
        does, so one bad pixel is not a hole. ValueError when the stack's frames are
        not the maps' shape.

        Examples
        --------
        >>> import numpy as np
        >>> cal = PixelCalibration(np.full((4, 4), 100.0), np.ones((4, 4)),
        ...                        np.full((4, 4), 0.5), np.full((4, 4), 2.0), np.ones((4, 4)))
        >>> cal.to_electrons(np.full((2, 4, 4), 110, dtype=np.uint16))[0, 0, 0]
        np.float32(20.0)
        """
        from camtrack._layerdata import electrons

        gain = _backend.to_host(self.e_per_adu_map).astype(np.float64)
        usable = np.isfinite(gain) & (gain > 0)
        gain = np.where(usable, gain, self.e_per_adu if usable.any() else np.nan)
        return electrons(stack, self.offset_map_adu, gain, maps="per-pixel maps", lazy=lazy)

    def summary(self) -> str:
        """The maps in a few numbers, one line: size, levels, the median gain with its
        5-95 % spread, the median read noise and offset, and the pixels without a gain."""
        gain = _backend.to_host(self.e_per_adu_map)
        ok = gain[np.isfinite(gain)]
        lo, hi = np.percentile(ok, [5, 95]) if ok.size else (np.nan, np.nan)
        text = (
            f"{self.shape[0]} x {self.shape[1]} px, {self.n_levels} light levels; "
            f"gain median {self.e_per_adu:.4g} e-/ADU (5-95 %: {lo:.4g}-{hi:.4g}); "
            f"read noise median {np.nanmedian(_backend.to_host(self.read_noise_map_e)):.3g} e-; "
            f"offset median {np.median(_backend.to_host(self.offset_map_adu)):.5g} ADU"
        )
        bad = int(gain.size - ok.size)
        if bad:
            text += f"; {bad} pixel(s) without a positive slope (NaN gain)"
        return text


def calibrate_pixels(
    stacks: Sequence[Any],
    dark: Any,
    *,
    excess_noise_factor: float = 1.0,
    progress: Progress | None = None,
    scheduler: Any = None,
) -> PixelCalibration:
    """Per-pixel offset, read noise and conversion factor of an sCMOS camera.

    Parameters
    ----------
    stacks : sequence of arrays (T, Y, X), or one array (L, T, Y, X)
        Stacks of a static scene at two or more light levels (the same pixels, the
        same settings), numpy, cupy or dask. A flat, uniform field per level is ideal.
    dark : array (T, Y, X)
        A dark stack of the same camera region.
    excess_noise_factor : float
        ``F**2`` (1 for sCMOS).
    progress : callable, optional
        tqdm-like callable, advanced per tile or block of every stack.
    scheduler : None, str or distributed.Client
        Where dask input is computed, as in :func:`estimate_gain`: a local dask
        scheduler name, a ``dask.distributed`` address or ``Client``; None: the active
        client, else ``DASK_SCHEDULER_ADDRESS``, else local threads.

    Returns
    -------
    PixelCalibration

    Notes
    -----
    For every pixel and level ``i``: ``m_i = mean_i - offset`` and
    ``v_i = var_i - dark_var``; the slope through the origin
    ``g = sum(m_i v_i) / sum(m_i**2)`` (least squares, the photon-transfer line
    through the dark point) is ADU per e- times ``F**2``. Read noise per pixel is
    ``sqrt(dark_var - 1/12) / g`` (rounding noise removed for integer data).

    Examples
    --------
    >>> from camtrack.simulate import Camera, dark_stack, camera_stack
    >>> cam = Camera(shape=(32, 32), gain_spread=0.02, rng=0)
    >>> dark, _ = dark_stack(100, camera=cam, rng=1)
    >>> levels = [camera_stack(100, camera=cam, signal_e=s, rng=i)[0] for i, s in enumerate((200, 800))]
    >>> cal = calibrate_pixels(levels, dark)
    >>> round(cal.e_per_adu, 1)
    2.0
    """
    f2 = check_range(excess_noise_factor, "excess_noise_factor", 1.0, 2.0)
    if hasattr(stacks, "ndim") and stacks.ndim == 4:
        stacks = [stacks[i] for i in range(stacks.shape[0])]
    if isinstance(stacks, str | bytes) or (
        not isinstance(stacks, Sequence) and not hasattr(stacks, "__iter__")
    ):
        raise TypeError(
            f"`stacks` must be a sequence of (T, Y, X) stacks; got {type(stacks).__name__}."
        )
    stacks = list(stacks)
    if len(stacks) < 2:
        raise ValueError(
            f"`stacks` holds {len(stacks)} stack(s); per-pixel calibration needs at least 2 "
            "light levels (5 or more spanning the camera's range are better)."
        )
    check_stack(dark, "dark")
    shape = tuple(int(s) for s in dark.shape[1:])
    for i, s in enumerate(stacks):
        check_stack(s, f"stacks[{i}]")
        if tuple(s.shape[1:]) != shape:
            raise ValueError(
                f"`stacks[{i}]` has frame shape {tuple(s.shape[1:])}, `dark` {shape}; all must match."
            )
        if s.shape[0] < 2:
            raise ValueError(
                f"`stacks[{i}]` has {s.shape[0]} frame; each level needs >= 2 frames."
            )
    _backend.namespace(dark, *stacks)  # TypeError for numpy mixed with cupy
    with resolve(scheduler, dark, *stacks) as where:
        return _calibrate(stacks, dark, shape, f2, progress, where)


def _calibrate(
    stacks: list, dark: Any, shape: tuple, f2: float, progress: Progress | None, scheduler: Any
) -> PixelCalibration:
    dmaps = finalize(reduce_moments(dark, progress=progress, scheduler=scheduler))
    xp, _ = _backend.namespace(dmaps["mean"])  # the maps' backend: cupy for cupy input
    offset = dmaps["mean"].astype(xp.float64)
    dvar = dmaps["var"].astype(xp.float64)
    smm = xp.zeros(shape)
    smv = xp.zeros(shape)
    for s in stacks:
        maps = finalize(reduce_moments(s, progress=progress, scheduler=scheduler))
        m = maps["mean"].astype(xp.float64) - offset
        v = maps["var"].astype(xp.float64) - dvar
        smm += m * m
        smv += m * v
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = smv / smm
        adu_per_e = slope / f2
        e_per_adu = xp.where(adu_per_e > 0, 1.0 / adu_per_e, xp.nan)
        quant = 1.0 / 12.0 if np.issubdtype(dark.dtype, np.integer) else 0.0
        read = xp.sqrt(xp.clip(dvar - quant, 0.0, None)) * e_per_adu
    if not bool(xp.isfinite(e_per_adu).any()):
        raise ValueError(
            "No pixel's variance rises with its mean across the levels: check that the "
            "stacks are lit at clearly different intensities and that `dark` is dark."
        )
    return PixelCalibration(
        offset_map_adu=offset,
        dark_var_map_adu2=dvar,
        adu_per_e_map=adu_per_e,
        e_per_adu_map=e_per_adu,
        read_noise_map_e=read,
        n_levels=len(stacks),
        excess_noise_factor=f2,
    )
