"""Background estimation and subtraction for camera stacks (T, Y, X).

Spatial: :func:`spatial_mean` (per-frame Gaussian mean, with the exact noise factor).
Temporal: :func:`temporal_median`, :func:`temporal_percentile` (optionally masking
moving objects or sigma-clipping them), :func:`rolling_median` (per-frame, centred
window) and :func:`sparse_median` (few cleansed median images plus per-frame offsets).
Aggregates: :func:`frame_stats` and :func:`iter_frame_stats` (min, max, mean, std,
percentile over time, with progress). :func:`subtract` returns a signed float stack.

Every function takes numpy, cupy or dask stacks, never modifies them, and returns
arrays of the same kind (lazy for dask). Long loops take ``progress``: any tqdm-like
callable used as ``progress(iterable, total=n)`` (e.g. ``tqdm.tqdm`` or
``napari.utils.progress``). This package never imports napari or Qt.

:data:`METHODS` is the registry of these methods (function, parameter specs, command
line and widget names) from which the widget, ``camtrack background`` and the docs are
built.
"""

from camtrack.background._registry import METHODS
from camtrack.background._rolling import rolling_median
from camtrack.background._sparse import SparseMedianResult, sparse_median
from camtrack.background._spatial import (
    SpatialMeanResult,
    spatial_mean,
    spatial_noise_correction,
)
from camtrack.background._stats import STATS, FrameStatsPartial, frame_stats, iter_frame_stats
from camtrack.background._subtract import subtract
from camtrack.background._temporal import temporal_median, temporal_percentile

__all__ = [
    "METHODS",
    "STATS",
    "FrameStatsPartial",
    "SparseMedianResult",
    "SpatialMeanResult",
    "frame_stats",
    "iter_frame_stats",
    "rolling_median",
    "sparse_median",
    "spatial_mean",
    "spatial_noise_correction",
    "subtract",
    "temporal_median",
    "temporal_percentile",
]
