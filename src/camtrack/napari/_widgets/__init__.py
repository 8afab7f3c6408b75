"""camtrack's napari widgets (contributed through napari.yaml)."""

from camtrack.napari._widgets._background import BackgroundWidget
from camtrack.napari._widgets._gain import GainWidget

__all__ = ["BackgroundWidget", "GainWidget"]
