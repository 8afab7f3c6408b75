"""TrackResult: per-ROI positions, profiles and quality, convertible to a table."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from camtrack import _backend

__all__ = ["TrackResult"]


@dataclass(frozen=True, eq=False)
class TrackResult:
    """Result of :func:`track_rois` and :func:`track_beads`.

    Attributes
    ----------
    x, y : array, (N,) float64
        Bead centres, x = column, y = row, pixel centres at integer coordinates (ROI
        pixels for ``track_rois``, full-frame pixels for ``track_beads``).
    z : array, (N,) float64
        z in ``units`` from the Z-LUT; NaN without a LUT.
    profiles : array, (N, B) or None
        Relative radial profiles ``(p - bg) / bg`` (None when not kept).
    quality : array, (N,) float64
        Point-symmetry score in [-1, 1] of the ROI about (x, y): 1 for a perfectly
        symmetric bead; noise, a neighbouring bead or a wrong centre lower it.
    match : array, (N,) float64
        Weighted correlation of the profile with the LUT at z (NaN without a LUT).
    frame, bead : array, (N,) int or None
        Frame and bead index per row (``track_beads``); None for ``track_rois``.
    units : str
        Unit of z.

    Notes
    -----
    Rows with NaN x, y come from NaN or constant ROIs, or beads too close to the frame
    edge (``track_beads``). Arrays are on the input's backend (numpy or cupy).
    """

    x: Any = field(repr=False)
    y: Any = field(repr=False)
    z: Any = field(repr=False)
    profiles: Any = field(repr=False)
    quality: Any = field(repr=False)
    match: Any = field(repr=False)
    frame: Any = field(default=None, repr=False)
    bead: Any = field(default=None, repr=False)
    units: str = "nm"

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def to_table(self) -> dict[str, np.ndarray]:
        """Columns as host numpy arrays: [frame, bead,] x, y, z, quality, match."""
        cols: dict[str, np.ndarray] = {}
        if self.frame is not None:
            cols["frame"] = _backend.to_host(self.frame)
            cols["bead"] = _backend.to_host(self.bead)
        for name in ("x", "y", "z", "quality", "match"):
            cols[name] = _backend.to_host(getattr(self, name))
        return cols

    def to_dict(self) -> dict[str, np.ndarray]:
        """Same as :meth:`to_table`."""
        return self.to_table()

    def to_dataframe(self) -> Any:
        """A pandas DataFrame of :meth:`to_table` (a dict of columns if pandas is missing).

        Examples
        --------
        >>> import numpy as np
        >>> from camtrack.simulate import bead_rois
        >>> from camtrack.tracking import track_rois
        >>> rois, _ = bead_rois([15.2, 16.0], 15.5, 1000.0, size=32, rng=0)
        >>> list(track_rois(rois).to_dataframe().columns)
        ['x', 'y', 'z', 'quality', 'match']
        """
        table = self.to_table()
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - pandas is usually installed
            return table
        return pd.DataFrame(table)
