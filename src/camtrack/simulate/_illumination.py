"""Illumination patterns and expected-signal maps for camera stacks."""

from __future__ import annotations

from typing import Any

import numpy as np

from camtrack._validation import check_choice

__all__ = ["PATTERNS", "pattern", "signal_map"]

PATTERNS = ("gradient", "vignette", "flat")


def pattern(illumination: Any, shape: tuple[int, int]) -> np.ndarray:
    """Relative illumination in [0, 1] (Y, X)."""
    ny, nx = shape
    if isinstance(illumination, str):
        check_choice(illumination, "illumination", PATTERNS)
        if illumination == "flat":
            return np.ones(shape)
        y = np.arange(ny)[:, None] - (ny - 1) / 2.0
        x = np.arange(nx)[None, :] - (nx - 1) / 2.0
        if illumination == "gradient":
            # Diagonal ramp: every level appears along many pixels of an anti-diagonal.
            p = x / max(nx - 1, 1) + y / max(ny - 1, 1) + 1.0
        else:  # cos^4 natural vignetting with the corners at 45 degrees off axis
            f = max(np.hypot((ny - 1) / 2.0, (nx - 1) / 2.0), 1.0)
            p = 1.0 / (1.0 + (x**2 + y**2) / f**2) ** 2
    else:
        p = np.asarray(illumination, dtype=np.float64)
        if p.shape != shape or not np.all(np.isfinite(p)):
            raise ValueError(
                f"`illumination` array must be finite with shape {shape}; got shape {p.shape}."
            )
    span = p.max() - p.min()
    return (p - p.min()) / span if span > 0 else np.ones(shape)


def signal_map(signal_e: Any, illumination: Any, shape: tuple[int, int]) -> np.ndarray:
    """Expected photoelectrons (Y, X) from a scalar, a (lo, hi) range or a map."""
    s = np.asarray(signal_e, dtype=np.float64)
    if s.shape == shape:
        m = s.copy()
    elif s.ndim == 0:
        m = np.full(shape, float(s))
    elif s.shape == (2,) and s[0] <= s[1]:
        m = s[0] + (s[1] - s[0]) * pattern(illumination, shape)
    else:
        raise ValueError(
            f"`signal_e` must be a number, a (low, high) pair with low <= high, or a map of "
            f"shape {shape}; got {signal_e!r}."
        )
    if not np.all(np.isfinite(m)) or m.min() < 0:
        raise ValueError("`signal_e` must be finite and >= 0 (photoelectrons per pixel).")
    return m
