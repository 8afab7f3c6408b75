"""Detection of clipped (saturated) pixels in ROIs."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np

from camtrack._validation import check_positive

__all__ = ["check_saturation", "clipped_mask", "compact"]

# At least this many pixels at the ROI maximum (within the tolerance) mark a plateau:
# an unclipped bright centre has one brightest pixel, its neighbours lie far below in
# shot noise. Five, not four: a noise-free bead centred on a pixel corner has four
# equal brightest pixels without any clipping.
MIN_CLIPPED = 5


def check_saturation(saturation: Any) -> Any:
    """None, "auto" or a finite level (input units)."""
    if saturation is None or saturation == "auto":
        return saturation
    if isinstance(saturation, str):
        raise ValueError(
            f"`saturation` must be None, 'auto' or a pixel value (the clip level); got "
            f"{saturation!r}."
        )
    return check_positive(saturation, "saturation")


def clipped_mask(
    xp: ModuleType, f: Any, saturation: Any, tol: float, level: float | None = None
) -> Any:
    """(N, S, S) bool of clipped pixels, or None when nothing is clipped.

    ``saturation``: None (no detection), a level (pixels >= level), or "auto": pixels
    within ``tol`` of their ROI's maximum when at least ``MIN_CLIPPED`` of them are (an
    ADC clip gives identical values; a full-well plateau differs only by read noise),
    plus pixels >= ``level - tol`` when a level is known from the Z-LUT calibration.
    """
    if saturation is None:
        return None
    if saturation != "auto":
        mask = f >= float(saturation)
    else:
        n = f.shape[0]
        with np.errstate(invalid="ignore"):
            top = f.reshape(n, -1).max(axis=1)
            near = f >= (top - tol)[:, None, None]
            count = near.reshape(n, -1).sum(axis=1)
            mask = near & (count >= MIN_CLIPPED)[:, None, None]
            if level is not None:
                mask = mask | (f >= level - tol)
    if not bool(mask.any()):
        return None
    return mask


def compact(xp: ModuleType, mask: Any, cx: Any, cy: Any) -> tuple[Any, Any]:
    """Keep only clipped sets that fill a disc about the centre; return (mask, hole radius).

    A clipped bright centre is a filled disc of pixels around the bead centre, so its
    pixel count is about pi r^2 for its farthest pixel at r. Equal maxima scattered on
    a ring (a coincidence of noise) fill almost none of their disc and are not clipping.
    The hole radius (farthest clipped pixel + 1 px; 0 where none) is what the symmetry
    fit leaves out around the centre.
    """
    n, s, _ = mask.shape
    pos = xp.arange(s, dtype=cx.dtype)
    r2 = (pos[None, None, :] - cx[:, None, None]) ** 2 + (pos[None, :, None] - cy[:, None, None]) ** 2  # fmt: skip
    far = xp.where(mask, r2, -1.0).reshape(n, -1).max(axis=1)
    count = mask.reshape(n, -1).sum(axis=1)
    r = xp.sqrt(xp.maximum(far, 0.0))
    keep = (far >= 0) & (count >= 0.3 * math.pi * (r + 0.5) ** 2) & (r < 0.25 * s)
    mask = mask & keep[:, None, None]
    return mask, xp.where(keep, r + 1.0, 0.0)
