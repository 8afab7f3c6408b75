"""Shared plumbing for the background engine: masks (threads and progress
from :mod:`camtrack._parallel`, re-exported here; work dtypes, budgets and tile planners
from :mod:`camtrack._outofcore`, imported there directly)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from camtrack._parallel import Progress as Progress
from camtrack._parallel import n_workers as n_workers
from camtrack._parallel import run_parallel as run_parallel
from camtrack._parallel import track as track


def check_frame_or_pixel_mask(mask: Any, shape: Sequence[int], name: str = "mask") -> Any:
    """Check an exclusion mask: (T,) per frame or (T, Y, X) per pixel, boolean."""
    mshape = tuple(int(s) for s in getattr(mask, "shape", ()))
    dtype = getattr(mask, "dtype", None)
    if dtype is None or np.dtype(dtype) != np.bool_:
        raise TypeError(
            f"`{name}` must be a boolean array (True marks data to leave out); got "
            f"{type(mask).__name__} of dtype {dtype}. Build it with a comparison, "
            "e.g. stack > threshold."
        )
    t = int(shape[0])
    if mshape not in ((t,), tuple(int(s) for s in shape)):
        raise ValueError(
            f"`{name}` must have shape ({t},) (one flag per frame) or "
            f"{tuple(int(s) for s in shape)} (one flag per pixel); got {mshape}."
        )
    return mask
