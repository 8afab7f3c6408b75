"""camtrack's napari widgets (contributed through napari.yaml)."""

from camtrack.napari._widgets._background import BackgroundWidget

__all__ = ["BackgroundWidget"]
