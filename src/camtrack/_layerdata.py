"""Results as napari layer data, without importing napari or Qt.

A result turns itself into ``(data, kwargs, layer_type)`` tuples (napari's
``LayerDataTuple``), as :meth:`camtrack.io.LayerInfo.to_layer_kwargs` does for the
readers; the GUI layer only adds them or updates the layers of the same name
(:func:`camtrack.napari._layers.upsert`). Everything here is plain numpy (and dask
for lazy stacks), so the engine stays usable without a GUI, and the arithmetic that
turns a result into pictures is tested without a viewer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from camtrack import _backend

__all__ = [
    "GAIN_MAP_LAYERS",
    "PIXEL_MAP_LAYERS",
    "LayerData",
    "as_lazy",
    "background_layers",
    "electrons",
    "host_float32",
    "image_layer",
    "map_layer",
    "points_table",
    "robust_limits",
]

LayerData = tuple[Any, dict[str, Any], str]

# GainResult field -> layer name (the Camera gain widget's result layers).
GAIN_MAP_LAYERS = {
    "mean": "mean",
    "var": "variance",
    "gain_map": "gain map",
    "offset_map": "offset",
}
# PixelCalibration field -> layer name (the unit in the name, as the maps differ in it).
PIXEL_MAP_LAYERS = {
    "offset_map_adu": "offset (ADU)",
    "dark_var_map_adu2": "variance (ADU²)",
    "e_per_adu_map": "gain (e-/ADU)",
    "read_noise_map_e": "read noise (e-)",
}
# Pixels per chunk of a stack made lazy: about 4 MPixel (16 MB of float32), a few
# frames of a large sensor at a time, so converting a stack never holds a second copy.
LAZY_CHUNK_PX = 2**22


def robust_limits(data: Any) -> tuple[float, float]:
    """Contrast limits from the 1st-99th percentiles of the finite values of a map, so
    a few hot or NaN pixels do not wash it out; (0, 1) for a map without any."""
    data = np.asarray(_backend.to_host(data))
    finite = data[np.isfinite(data)]
    if finite.size == 0:
        return (0.0, 1.0)
    lo, hi = (float(v) for v in np.percentile(finite, [1, 99]))
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def host_float32(data: Any) -> np.ndarray:
    """A map as a host float32 array (cupy maps copied off the device; dask computed)."""
    if _backend.is_dask(data):
        data = data.compute()
    return np.asarray(_backend.to_host(data), dtype=np.float32)


def image_layer(name: str, data: Any, **kwargs: Any) -> LayerData:
    """An image layer tuple named ``name``."""
    return data, {"name": name, **kwargs}, "image"


def map_layer(name: str, data: Any, **kwargs: Any) -> LayerData:
    """A (Y, X) map as a viridis image layer, host float32, with robust contrast limits."""
    data = host_float32(data)
    return image_layer(
        name, data, colormap="viridis", contrast_limits=robust_limits(data), **kwargs
    )


def as_lazy(stack: Any) -> Any:
    """``stack`` as a dask array: itself when it is one, else whole-frame chunks of
    about ``LAZY_CHUNK_PX`` pixels."""
    if _backend.is_dask(stack):
        return stack
    import dask.array as da

    frame_px = max(1, int(np.prod(stack.shape[1:])))
    return da.from_array(stack, chunks=(max(1, LAZY_CHUNK_PX // frame_px), -1, -1))


def electrons(
    stack: Any, offset_adu: Any, e_per_adu: Any, *, maps: str, lazy: bool = False
) -> Any:
    """``(stack - offset_adu) * e_per_adu`` in float32, on the stack's backend.

    ``offset_adu`` and ``e_per_adu`` are scalars or (Y, X) maps (``maps`` names them
    in the message when the frames do not match). dask in, dask out (lazy); with
    ``lazy=True`` a numpy stack becomes dask first (:func:`as_lazy`), so a viewer can
    show a stack larger than memory. The input is never modified.
    """
    shape = tuple(int(s) for s in stack.shape[-2:])
    for value in (offset_adu, e_per_adu):
        if np.ndim(value) and tuple(np.shape(value)) != shape:
            ny, nx = np.shape(value)
            raise ValueError(
                f"The {maps} are {ny} x {nx} px, the stack's frames {shape[0]} x "
                f"{shape[1]}: calibrate (or load maps of) the same camera region."
            )
    if lazy:
        stack = as_lazy(stack)
    xp = _backend.namespace(stack)[0]  # a dask stack routes by its chunks' type
    if xp is np:  # host maps, so no device array enters a numpy (or dask) graph
        offset, gain = host_float32(offset_adu), host_float32(e_per_adu)
    else:
        offset = xp.asarray(offset_adu, dtype=xp.float32)
        gain = xp.asarray(e_per_adu, dtype=xp.float32)
    return (stack.astype(xp.float32) - offset) * gain


def background_layers(
    name: str, stack: Any, background: Any, *, images: Any = None
) -> list[LayerData]:
    """``<name> background`` and ``<name> - background`` (``stack - background``, signed
    float, lazy for dask) as gray image layers; with ``images`` (a sparse median's
    few median images) also ``<name> sparse background images``, hidden.

    ``background`` is one image (Y, X) or one per frame (T, Y, X), as
    :func:`camtrack.background.subtract` takes it.
    """
    from camtrack.background import subtract

    layers = [
        image_layer(f"{name} background", background, colormap="gray"),
        image_layer(f"{name} - background", subtract(stack, background), colormap="gray"),
    ]
    if images is not None:
        images = np.asarray(_backend.to_host(images))
        label = f"{name} sparse background images"
        layers.append(image_layer(label, images, colormap="gray", visible=False))
    return layers


def points_table(data: Any, features: Any) -> dict[str, np.ndarray]:
    """The tracking table of a points layer made by :meth:`TrackResult.to_points`
    (rows (t, y, x), features bead and z): columns frame (int), bead, x, y and, when
    the layer has it, z; the inverse of ``to_points`` for what the force engine reads.
    """
    data = np.asarray(data, dtype=np.float64).reshape(-1, 3)
    tab = {
        "frame": np.rint(data[:, 0]).astype(int),
        "bead": np.asarray(features["bead"]),
        "x": data[:, 2],
        "y": data[:, 1],
    }
    if "z" in features:
        tab["z"] = np.asarray(features["z"], dtype=np.float64)
    return tab
