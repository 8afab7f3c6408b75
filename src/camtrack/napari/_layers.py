"""Turning engine results into napari layers, updated in place on re-runs."""

from __future__ import annotations

from typing import Any

import numpy as np

from camtrack._layerdata import LayerData, image_layer, robust_limits

__all__ = ["keep_on_top", "robust_limits", "upsert", "upsert_all", "upsert_image"]


# What a re-run sets again on an existing layer besides its data and metadata: every
# keyword for images; for points and tracks only what follows the result (features,
# colouring by z), so a size or tail length set in the layer controls survives a re-run.
REFRESH = {"points": ("features", "face_color"), "tracks": ("features",)}
# Set once, when the layer is added (an existing layer keeps where it sits).
ADD_ONLY = ("name", "scale", "translate")


def upsert(viewer: Any, layer_data: LayerData, **kwargs: Any) -> Any:
    """Add the layer tuple ``(data, kwargs, layer_type)`` (as the engine's
    ``to_layers()``, ``to_points()`` and ``to_tracks()`` make them), or, when a layer of
    its name and kind exists, set its data (and metadata, and the keywords in
    ``REFRESH``) in place. ``kwargs`` add to or replace the tuple's keywords (e.g. the
    image's ``scale`` and ``translate`` for an overlay).

    Re-running a widget therefore updates its result layers instead of piling up
    copies. A layer of the same name but another kind or dimensionality is replaced.
    Returns the layer.
    """
    data, options, kind = layer_data
    options = {**options, **kwargs}
    name = options["name"]
    if name in viewer.layers:
        layer = viewer.layers[name]
        if _fits(layer, data, kind):
            layer.data = data
            keep = REFRESH.get(kind)
            for key, value in options.items():
                if key == "metadata":
                    layer.metadata.update(value)
                elif key not in ADD_ONLY and (keep is None or key in keep):
                    setattr(layer, key, value)
            return layer
        viewer.layers.remove(layer)
    return getattr(viewer, f"add_{kind}")(data, **options)


def upsert_all(viewer: Any, layers: list[LayerData], **kwargs: Any) -> list[Any]:
    """:func:`upsert` of every tuple of a result's ``to_layers()``."""
    return [upsert(viewer, layer_data, **kwargs) for layer_data in layers]


def upsert_image(viewer: Any, name: str, data: Any, **kwargs: Any) -> Any:
    """:func:`upsert` of the image ``data`` named ``name``."""
    return upsert(viewer, image_layer(name, data, **kwargs))


def _fits(layer: Any, data: Any, kind: str) -> bool:
    """Whether ``data`` can replace the layer's own: same kind, same dimensionality
    (an image's axes; the coordinates per point or track vertex)."""
    if type(layer).__name__.lower() != kind:
        return False
    old, new = np.shape(layer.data), np.shape(data)
    if kind == "image":
        return len(old) == len(new)
    return old[-1:] == new[-1:]


def keep_on_top(viewer: Any, names: tuple[str, ...]) -> None:
    """Keep the overlay layers ``names`` (points, boxes, tracks) above image layers
    added later, so a stack opened after tracking does not hide them."""

    def raise_overlays(event: Any) -> None:
        layers = viewer.layers
        added = getattr(event, "value", None)
        if added is None or added.name in names:
            return
        ours = [i for i, layer in enumerate(layers) if layer.name in names]
        if ours and layers.index(added) > min(ours):
            # Move the new layer just below our lowest overlay.
            layers.move(layers.index(added), min(ours))

    viewer.layers.events.inserted.connect(raise_overlays)


def image_stacks(viewer: Any) -> list[Any]:
    """The viewer's image layers that are stacks (frames, rows, cols): the choices of
    every widget's stack fields."""
    from napari.layers import Image

    return [
        layer
        for layer in viewer.layers
        if isinstance(layer, Image) and getattr(layer.data, "ndim", 0) == 3
    ]
