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


def robust_limits(data: Any) -> tuple[float, float]:
    """Contrast limits from the 1st-99th percentiles of the finite values of a map, so
    a few hot or NaN pixels do not wash it out."""
    import numpy as np

    data = np.asarray(data)
    finite = data[np.isfinite(data)]
    if finite.size == 0:
        return (0.0, 1.0)
    lo, hi = (float(v) for v in np.percentile(finite, [1, 99]))
    return (lo, hi) if hi > lo else (lo, lo + 1.0)
