"""Bead tracking: sub-pixel x, y and Z-LUT z for magnetic-tweezers beads.

Conventions: ``rois`` are (N, S, S) and ``stack`` (T, Y, X), frames first, any integer
or float dtype (computed in float32); x = column, y = row, pixel centres at integer
coordinates (the centre of pixel [0, 0] is (0.0, 0.0)); z in the Z-LUT's unit.
"""

from camtrack.tracking._lookup import lookup_z, pearson
from camtrack.tracking._pipeline import track_rois
from camtrack.tracking._result import TrackResult
from camtrack.tracking._zlut import ZLut, build_zlut, load_zlut

__all__ = [
    "TrackResult",
    "ZLut",
    "build_zlut",
    "load_zlut",
    "lookup_z",
    "pearson",
    "track_rois",
]
