"""napari reader: lazy TIFF and HDF5 stacks through ``camtrack.io``.

``get_reader`` returns None for files that are not ours, so napari can try other
readers. A file that looks like ours but is truncated or corrupt is accepted and
reported as a napari notification naming the file and the problem; the viewer
never crashes and no layer is added.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from camtrack import io

LayerData = tuple[Any, dict[str, Any], str]
PathLike = str | os.PathLike

# npe2's sentinel for "accepted the file, but no layers": napari adds nothing and
# raises nothing, which is what we want after telling the user what went wrong.
_NO_LAYERS: list[tuple[None]] = [(None,)]


def get_reader(path: PathLike | Sequence[PathLike]) -> Callable | None:
    """Return a reader for one TIFF/HDF5 path (or a list of them), else None."""
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    if not paths or not all(io.can_read(p) for p in paths):
        return None
    return read_paths


def read_paths(path: PathLike | Sequence[PathLike]) -> list[LayerData] | list[tuple[None]]:
    """Read each path into lazy image layers (one per channel or dataset)."""
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    layers: list[LayerData] = []
    for p in paths:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", UserWarning)
                items = io.read_layers(p)
            pages = _pages_stack(p) if caught else []
        except (ValueError, OSError, TypeError) as exc:
            _notify_error(f"napari-camtrack could not open {os.fspath(p)!r}: {exc}")
            continue
        layers.extend((data, info.to_layer_kwargs(), "image") for data, info in items)
        for data, info in pages:
            layers.append((data, {**info.to_layer_kwargs(), "visible": False}, "image"))
        for w in caught:
            extra = ""
            if pages:
                extra = f" Every page is also opened, hidden, as layer {pages[0][1].name!r}."  # fmt: skip
            _notify_warning(f"{os.fspath(p)}: {w.message}{extra}")
    return layers or _NO_LAYERS


def _pages_stack(path: PathLike) -> list[tuple[Any, Any]]:
    """The ``pages`` stack (every page a frame) a TIFF offers besides its series."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        items = io.read_layers(path, alternatives=True)
    return [(data, info) for data, info in items if info.key == "pages"]


def _notify_error(message: str) -> None:
    from napari.utils.notifications import show_error

    show_error(message)


def _notify_warning(message: str) -> None:
    from napari.utils.notifications import show_warning

    show_warning(message)
