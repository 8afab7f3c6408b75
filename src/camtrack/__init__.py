"""napari-camtrack: quantitative camera image stacks.

The engine (``camtrack.io``, ``camtrack.simulate`` and, as they land, ``gain``,
``background`` and ``tracking``) runs on numpy, cupy and dask and never imports
napari or Qt. The napari plugin lives in ``camtrack.napari`` and is imported only
by napari itself (through ``napari.yaml``) or by ``camtrack demo``.
"""

__version__ = "0.1.0"

from camtrack import background, force, gain, io, simulate, tracking

__all__ = ["__version__", "background", "force", "gain", "io", "simulate", "tracking"]
