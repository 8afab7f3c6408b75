"""Turning engine results into napari layers, updated in place on re-runs."""

from __future__ import annotations

from typing import Any


def upsert_image(viewer: Any, name: str, data: Any, **kwargs: Any) -> Any:
    """Set the data of the image layer ``name``, or add it when it does not exist yet.

    Re-running a widget therefore updates its result layers instead of piling up
    copies.
    """
    if name in viewer.layers:
        layer = viewer.layers[name]
        layer.data = data
        for key, value in kwargs.items():
            setattr(layer, key, value)
        return layer
    return viewer.add_image(data, name=name, **kwargs)
