"""Noise-free bead images in ROIs (pixel-integrated, background 1 or in electrons)."""

from __future__ import annotations

from typing import Any

import numpy as np

from camtrack._validation import check_positive, renamed_keywords
from camtrack.simulate._optics import BeadOptics
from camtrack.simulate._render import PatternSpectra, render_in_box, roi_box_size

__all__ = ["bead_image", "broadcast_xyz", "expected_images", "roi_shape"]

_BATCH_VALUES = 8_000_000  # box pixels rendered per batch


def roi_shape(size: Any) -> tuple[int, int]:
    s = np.atleast_1d(np.asarray(size))
    if s.size == 1:
        s = np.repeat(s, 2)
    if s.shape != (2,) or not np.issubdtype(s.dtype, np.integer) or s.min() < 1:
        raise ValueError(f"`roi_size` must be a positive int or (rows, cols); got {size!r}.")
    return int(s[0]), int(s[1])


def broadcast_xyz(x: Any, y: Any, z: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    try:
        xb, yb, zb = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (x, y, z)))
    except ValueError:
        raise ValueError(
            f"`x`, `y` and `z` must broadcast together; got shapes {np.shape(x)}, "
            f"{np.shape(y)} and {np.shape(z)}."
        ) from None
    if not (np.all(np.isfinite(xb)) and np.all(np.isfinite(yb)) and np.all(np.isfinite(zb))):
        raise ValueError("`x`, `y` and `z` must be finite.")
    return xb, yb, zb


def expected_images(
    optics: BeadOptics, x: np.ndarray, y: np.ndarray, z: np.ndarray, size: tuple[int, int]
) -> np.ndarray:
    """(N, H, W) pixel-integrated intensity (background 1) for 1-D x, y, z in ROI pixels."""
    triples, inverse = np.unique(np.stack([x, y, z], axis=1), axis=0, return_inverse=True)
    z_u, rows = np.unique(triples[:, 2], return_inverse=True)
    spectra = PatternSpectra(optics, z_u)
    box = roi_box_size(size, triples[:, 0], triples[:, 1], spectra.radius_px)
    unique = np.empty((triples.shape[0], *size))
    step = max(1, _BATCH_VALUES // box**2)
    for s in range(0, triples.shape[0], step):
        sl = slice(s, s + step)
        boxes = render_in_box(spectra, rows[sl], triples[sl, 0], triples[sl, 1], box)
        unique[sl] = boxes[:, : size[0], : size[1]] + 1.0
    return unique[inverse.ravel()]


@renamed_keywords(size="roi_size")
def bead_image(
    x: Any,
    y: Any,
    z: Any,
    roi_size: int | tuple[int, int] = 64,
    *,
    optics: BeadOptics | None = None,
    background_e: float | None = None,
) -> np.ndarray:
    """Expected (noise-free) image of a defocused bead in an ROI.

    Parameters
    ----------
    x, y : float or array_like
        Bead centre in ROI pixels: x = column, y = row, pixel centres at integer
        coordinates (the centre of pixel [0, 0] is (0.0, 0.0)). May lie outside the ROI.
    z : float or array_like
        Bead centre relative to the focal plane in nm; ``z > 0`` when the bead is
        farther from the objective than the focal plane (light passes the bead first),
        where its ball-lens focus gives a bright centre. ``x``, ``y``, ``z`` broadcast.
    roi_size : int or (int, int)
        ROI size S (square) or (rows, cols).
    optics : BeadOptics, optional
        Optical parameters (default ``BeadOptics()``).
    background_e : float, optional
        Scale to photoelectrons per pixel of background; default: relative intensity
        with background 1.

    Returns
    -------
    ndarray, float64, shape ``broadcast(x, y, z).shape + (rows, cols)``

    Notes
    -----
    The radial profile of :func:`bead_profile` (scalar thin-sphere model, angular
    spectrum propagation through the objective pupil, partial coherence) is
    integrated over each pixel's square exactly (Fourier-space box filter of the
    band-limited intensity), so sub-pixel positions are rendered without bias and a
    whole-pixel shift of ``(x, y)`` shifts the image by exactly one pixel.

    Examples
    --------
    >>> from camtrack.simulate import bead_image
    >>> img = bead_image(31.3, 32.0, 2000.0, roi_size=64)
    >>> img.shape, bool(img.max() > 2.0)
    ((64, 64), True)
    >>> bead_image([10.0, 20.0], 30.0, [-1000.0, 1000.0], roi_size=48).shape
    (2, 48, 48)
    """
    optics = BeadOptics() if optics is None else optics
    xb, yb, zb = broadcast_xyz(x, y, z)
    hw = roi_shape(roi_size)
    img = expected_images(optics, xb.ravel(), yb.ravel(), zb.ravel(), hw).reshape(xb.shape + hw)
    if background_e is not None:
        img *= check_positive(background_e, "background_e")
    return img
