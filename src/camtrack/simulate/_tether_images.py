"""Motion-blurred bead ROIs along simulated tether trajectories (end-to-end tests)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from camtrack._validation import check_choice, check_integer, check_positive, renamed_keywords
from camtrack.simulate._beads import bead_image
from camtrack.simulate._camera import DTYPES, Camera, as_camera, expose_frames
from camtrack.simulate._optics import BeadOptics
from camtrack.simulate._seeding import CAMERA, FRAME, RNGLike, child_seed, root_seed, stream

__all__ = ["tether_rois"]

# x-only motion renders from a table of images shifted by this step (px), linearly
# interpolated: the centre of mass moves exactly linearly, the ring pattern is off by
# at most (step / 2)^2 / 2 of its curvature, far below the shot noise.
_TABLE_STEP_PX = 0.02
# Frames rendered per batch: bounds the float32 working set to ~100 MB at 64 px.
_BATCH = 1000


@renamed_keywords(size="roi_size")
def tether_rois(
    x_sub_nm: Any,
    *,
    nm_per_px: float = 100.0,
    roi_size: int = 32,
    z_nm: float = 3000.0,
    y_sub_nm: Any = None,
    optics: BeadOptics | None = None,
    background_e: float = 4000.0,
    camera: Camera | Mapping[str, Any] | None = None,
    dtype: str = "float32",
    rng: RNGLike = None,
) -> np.ndarray:
    """Camera ROIs of a bead moving within each exposure (motion blur), with noise.

    Parameters
    ----------
    x_sub_nm : array_like, (n_frames, substeps)
        Positions inside each exposure, nm, e.g. ``TetherTrace.x_sub_nm`` of one bead
        (``tether_trace(..., substeps=S)``). 0 is the ROI centre.
    nm_per_px : float
        Pixel size, nm.
    roi_size : int
        ROI size S (square).
    z_nm : float
        Defocus of the bead, nm (as in :func:`bead_image`).
    y_sub_nm : array_like or None
        Positions along y, same shape; None keeps y at the centre and renders from a
        table of x-shifted images (fast); with y every image is rendered exactly.
    optics, background_e, camera, dtype, rng
        As in :func:`bead_rois`.

    Returns
    -------
    ndarray, (n_frames, S, S)
        The mean of the bead images at the sub-exposure positions, exposed through the
        camera model (shot, read noise; ADU). The bead centre of frame k in ROI pixels
        is ((S - 1) / 2 + mean(x_sub_nm[k]) / nm_per_px, (S - 1) / 2 + ...), x = column.

    Examples
    --------
    >>> from camtrack.simulate import tether_rois, tether_trace
    >>> sim = tether_trace(50, 60.0, force_pn=1.0, length_nm=2000.0, substeps=4, rng=0)
    >>> tether_rois(sim.x_sub_nm, rng=1).shape
    (50, 32, 32)
    """
    x = np.asarray(x_sub_nm, dtype=float)
    if x.ndim != 2:
        raise ValueError(
            f"`x_sub_nm` must be (n_frames, substeps); got shape {x.shape}. Pass "
            "tether_trace(..., substeps=S).x_sub_nm of one bead (or [i] of a batch)."
        )
    px = check_positive(nm_per_px, "nm_per_px")
    roi_size = check_integer(roi_size, "roi_size", minimum=8)
    check_choice(dtype, "dtype", DTYPES)
    y = None if y_sub_nm is None else np.asarray(y_sub_nm, dtype=float)
    if y is not None and y.shape != x.shape:
        raise ValueError(f"`y_sub_nm` must have the shape of `x_sub_nm` {x.shape}; got {y.shape}.")
    root = root_seed(rng)
    cam = as_camera(camera, (roi_size, roi_size), child_seed(root, CAMERA), name="roi_size")
    gen = stream(root, FRAME)
    c = (roi_size - 1) / 2
    xs = x / px
    if y is None:
        lo = np.floor(xs.min()) - 1.0
        grid = np.arange(lo, np.ceil(xs.max()) + 1.0 + _TABLE_STEP_PX, _TABLE_STEP_PX)
        table = (bead_image(c + grid, c, z_nm, roi_size, optics=optics) * background_e).astype(
            np.float32
        )
    out = np.empty(
        (x.shape[0], roi_size, roi_size), np.float32 if dtype == "float32" else np.uint16
    )
    for a in range(0, x.shape[0], _BATCH):
        sl = slice(a, a + _BATCH)
        if y is None:
            pos = (xs[sl] - grid[0]) / _TABLE_STEP_PX
            i = np.floor(pos).astype(int)
            f = (pos - i).astype(np.float32)[..., None, None]
            img = np.zeros((pos.shape[0], roi_size, roi_size), np.float32)
            for j in range(pos.shape[1]):
                img += (1 - f[:, j]) * table[i[:, j]] + f[:, j] * table[i[:, j] + 1]
            img /= pos.shape[1]
        else:
            img = bead_image(c + xs[sl], c + y[sl] / px, z_nm, roi_size, optics=optics)
            img = (img.mean(axis=1) * background_e).astype(np.float32)
        out[sl] = expose_frames(cam, img.astype(np.float64), gen, dtype)
    return out
