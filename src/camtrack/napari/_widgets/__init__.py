"""camtrack's napari widgets (contributed through napari.yaml)."""

from camtrack.napari._widgets._background import BackgroundWidget
from camtrack.napari._widgets._force import ForceWidget
from camtrack.napari._widgets._gain import GainWidget
from camtrack.napari._widgets._tracking import TrackingWidget

__all__ = ["BackgroundWidget", "ForceWidget", "GainWidget", "TrackingWidget"]
