"""Finding beads in a frame without knowing their size.

A bead's diffraction pattern (rings, bright or dark centre) is a blob of contrast
energy, ``((image - background) / noise)**2``, whose size depends on the bead's height:
the same bead is 10 px across in focus and 80 px across 3 um away. The finder therefore
looks at every scale from 1.5 px up to a quarter of the frame, takes each scale's peaks
as candidates, moves every candidate to the centre of point symmetry of the pattern
around it, and keeps the centres whose surroundings are rotationally symmetric: a true
bead's pattern is (nearly) a function of the distance from its centre alone, a ring
segment, a crossing of two beads' rings or dirt is not. The scale at which a bead's
centre stands out most against its surround is its pattern's own size; beads whose
cores (or, with ``roi_size``, whose ROIs) overlap are rejected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from camtrack import _backend
from camtrack._validation import check_integer, check_positive, check_range
from camtrack.tracking._find_scales import (
    MIN_Z,
    RADIUS_PER_SCALE,
    SCALE_STEP,
    SURROUND,
    background_maps,
    best_scale,
    candidates,
    highpass,
    scales_for,
    searched,
    vertex,
    z_at,
    zmap,
)

__all__ = ["FoundBeads", "find_beads", "locate_beads"]

# Rotational symmetry (fraction of the pattern's energy, less the window's plane, that
# its radial profile explains, noise removed). Simulated beads in fields of 6 beads per
# 256^2 frame score 0.66-1.0 (5th percentile 0.75) with their neighbours' rings in the
# window; a ring segment or a point between two beads 0.0-0.4; the worst leftover of a
# steep vignetting (3x from centre to corner) 0.62 at a significance of 27.
_MIN_SYMMETRY = 0.6
# Final centring window half-width in units of the bead's own scale (see the loop in
# locate_beads): on the bead sample, 3 / 2 / 1.5 / 1 scales gave worst centre errors of
# 1.5 / 1.0 / 0.3 / 0.17 px next to neighbours' rings.
_FINAL_REACH = 1.0
# Symmetry window radius in units of the candidate's scale: 2.5 sigma holds 96 % of a
# Gaussian blob's energy and, for a candidate found on a ring, the pattern's centre.
_WINDOW = 2.5
# Smallest symmetry window radius, px: in a window of 4-6 px a smooth patch (a ring
# segment, a bright spot where two beads' rings cross) looks symmetric; at 12 px the
# crossing rings show (no such false beads left next to touching 2.8 um beads at any
# z), while an in-focus bead's core (radius 2-3 px) stays ringed by its own rings.
_MIN_WINDOW = 12.0
# Symmetry margin between a pattern's centre and an off-centre point of it: centres
# score 0.95-1.0 alone, 0.85+ with neighbours; off-centre points within the centre's
# core (at least 12 px) that pass the floor score at least 0.15 less (0.61-0.82 in 48 px
# calibration-sweep frames whose centre scores 1.0). The two members of a doublet score
# alike, so they stay two beads (and are rejected as a doublet).
_GHOST = 0.1


@dataclass(frozen=True)
class FoundBeads:
    """Beads found in one frame, best first (see :func:`locate_beads`).

    Attributes
    ----------
    x, y : ndarray (M,)
        Centres in full-frame pixels (x = column, y = row, pixel centres at integer
        coordinates), to within a few tenths of a pixel.
    radius_px : ndarray (M,)
        The pattern's core radius, px (1.33 times its own scale; the rings reach
        farther).
    score : ndarray (M,)
        Significance: excess contrast energy in noise standard deviations.
    symmetry : ndarray (M,)
        Rotational symmetry in [0, 1] (1: the pattern depends on the radius alone).
    rejected_x, rejected_y : ndarray (K,)
        Symmetric candidates left out (doublets, overlapping ROIs, near an edge).
    rejected_reason : tuple of str (K,)
        Why each was left out: ``"doublet"``, ``"roi overlap"``, ``"edge"``,
        ``"faint"`` (below ``threshold``).
    """

    x: np.ndarray
    y: np.ndarray
    radius_px: np.ndarray
    score: np.ndarray
    symmetry: np.ndarray
    rejected_x: np.ndarray = field(default_factory=lambda: np.empty(0))
    rejected_y: np.ndarray = field(default_factory=lambda: np.empty(0))
    rejected_reason: tuple[str, ...] = ()

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def to_table(self) -> dict[str, np.ndarray]:
        """Columns ``bead, x, y, radius_px, score, symmetry`` (one row per bead)."""
        return {
            "bead": np.arange(len(self)),
            "x": self.x,
            "y": self.y,
            "radius_px": self.radius_px,
            "score": self.score,
            "symmetry": self.symmetry,
        }

    def to_points(self, *, name: str = "beads", **kwargs: Any) -> tuple[np.ndarray, dict, str]:
        """The beads as a napari points layer tuple ``(data, kwargs, "points")``.

        ``data``: (M, 2) rows (y, x), full-frame pixels; ``features``: ``bead`` (its
        index, the number a trace legend shows) and ``reference`` (False: no bead is
        marked stuck yet). ``**kwargs`` add to or replace the layer keywords (styling).
        No napari import.

        Examples
        --------
        >>> import numpy as np
        >>> found = FoundBeads(np.array([3.0]), np.array([4.0]), np.ones(1), np.ones(1), np.ones(1))
        >>> found.to_points()[0]
        array([[4., 3.]])
        """
        data = np.column_stack([self.y, self.x]).astype(np.float64).reshape(-1, 2)
        features = {"reference": np.zeros(len(self), dtype=bool), "bead": np.arange(len(self))}
        return data, {"name": name, "features": features, **kwargs}, "points"


def locate_beads(
    image: Any,
    *,
    radius: float | None = None,
    roi_size: int | None = None,
    min_distance: float | None = None,
    threshold: float = 0.01,
) -> FoundBeads:
    """Beads in a full frame, at any pattern size, with their own radius and scores.

    Parameters
    ----------
    image : array, (Y, X)
        One frame, any dtype (numpy, cupy or dask; computed on the host).
    radius : float, optional
        Rough bead-pattern radius in px: a speed hint. Candidates come from the scales
        of patterns ``radius / 4`` .. ``4 * radius`` across; every scale still decides
        a candidate's own size, so a candidate on a large pattern's ring leads to its
        centre and the beads found barely depend on ``radius`` (None: every scale).
    roi_size : int, optional
        ROI size S that will be tracked: beads whose S x S ROIs would overlap are both
        rejected (``"roi overlap"``), and so are beads whose ROI would leave the frame
        (``"edge"``). None: only beads whose centre lies outside the frame's outer
        pixel ring are left out.
    min_distance : float, optional
        Two beads closer than this (px) are both rejected as a doublet, in addition to
        pairs whose cores overlap (closer than the sum of their radii).
    threshold : float
        Keep beads whose contrast (rms deviation from the background over the pattern)
        is at least this fraction (0..1) of the strongest bead's.

    Returns
    -------
    FoundBeads
        Centres, pattern radii and scores, best first, and the rejected candidates.

    Notes
    -----
    Background and noise are local: the median, and the robust (MAD) standard
    deviation of neighbouring-pixel differences over the square root of 2, in blocks,
    median-filtered over 128 px (larger than any bead pattern; a whole small frame),
    so uneven illumination and its shot noise make no beads. The contrast energy
    ``((image - background) / noise)**2 - 1`` is blurred by Gaussians of sigma 1.5 px
    times powers of 1.5 (up to a quarter of the frame). Each local maximum of a
    centre-surround map (the blur at sigma minus the blur at 2.25 sigma) is a
    candidate; its own scale is the sigma where that difference peaks, and it is
    refined to the centre of point symmetry of the pattern around it (the peak of the
    pattern's auto-convolution, twice). A candidate is a bead when its rotational
    symmetry (the fraction of its energy within ``max(2.5 sigma, 12 px)`` explained by
    its radial profile, noise removed) is at least 0.6 and its significance is at least
    12 noise standard deviations. Its (core) radius is ``1.33 sigma``. Two beads closer
    than the sum of their radii are doublets. Axis order (rows, cols); x = column,
    y = row, pixel centres at integer coordinates.

    Examples
    --------
    >>> from camtrack.simulate import bead_field
    >>> from camtrack.tracking import locate_beads
    >>> stack, truth = bead_field(2, shape=(160, 160), n_beads=2, rng=1)
    >>> found = locate_beads(stack[0])
    >>> len(found), bool(found.radius_px.min() > 3)
    (2, True)
    """
    img = np.asarray(_backend.to_host(image), dtype=np.float64)
    if img.ndim != 2:
        raise ValueError(
            f"`image` must be 2-D (rows, cols); got shape {img.shape}. Pass stack[t]."
        )
    if radius is not None:
        radius = check_positive(radius, "radius")
    if roi_size is not None:
        roi_size = check_integer(roi_size, "roi_size", minimum=2)
    if min_distance is not None:
        min_distance = check_positive(min_distance, "min_distance")
    threshold = check_range(threshold, "threshold", 0.0, 1.0)
    if not np.all(np.isfinite(img)):
        raise ValueError("`image` must be finite; replace NaN pixels first.")
    ny, nx = img.shape
    empty = FoundBeads(*(np.empty(0) for _ in range(5)))
    if min(ny, nx) < 8:
        return empty
    bg, sigma = background_maps(img)
    dev = highpass(img - bg)
    if sigma is None:  # a constant frame
        return empty
    energy = (dev / sigma) ** 2 - 1.0
    # Every scale's map is needed to tell a bead's own scale; `radius` only limits the
    # scales whose peaks become candidates (the refinements are the costly part).
    scales = scales_for((ny, nx))
    zmaps = [zmap(energy, s) for s in scales]
    cands = candidates(zmaps, scales, searched(scales, radius))
    # The frame's own centre of symmetry, searched over the whole frame: a bead whose
    # rings fill an ROI-sized image (a calibration sweep) has no scale of its own
    # below a quarter of the frame, but is the whole frame's symmetry centre.
    whole = ((nx - 1) / 2.0, (ny - 1) / 2.0, min(ny, nx) / 6.0)
    beads = []
    for k, (cx, cy, s0) in enumerate([*cands, whole]):
        # The pattern's own scale at the candidate (a candidate on a ring sees the
        # whole pattern's blob there), the symmetry centre in a window of it, and the
        # scale again at that centre (the candidate may have been off the pattern's).
        s = s0 if k == len(cands) else best_scale(zmaps, scales, cx, cy)
        c = _refine(dev, cx, cy, s)
        if c is None:
            continue
        s = best_scale(zmaps, scales, c[0], c[1])
        # again in a window of the pattern's own core: the wide first window (it has
        # to reach the centre from a ring) holds neighbours' rings that pull the
        # centre by up to 1.5 px; one scale wide, 0.2 px (the bead sample)
        c = _refine(dev, c[0], c[1], s, reach=_FINAL_REACH) or c
        noise = float(sigma[min(round(c[1]), ny - 1), min(round(c[0]), nx - 1)])
        sym = _symmetry(dev, c[0], c[1], max(_WINDOW * s, _MIN_WINDOW), noise)
        if sym >= _MIN_SYMMETRY:
            beads.append((c[0], c[1], s, sym))
    return _select(beads, zmaps, scales, dev, (ny, nx), roi_size, min_distance, threshold)


def find_beads(
    image: Any,
    *,
    radius: float | None = None,
    roi_size: int | None = None,
    min_distance: float | None = None,
    threshold: float = 0.01,
) -> tuple[np.ndarray, np.ndarray]:
    """Bead centres in a full frame, at any pattern size (see :func:`locate_beads`).

    Parameters
    ----------
    image : array, (Y, X)
        One frame (any dtype; a stack's first frame or mean).
    radius : float, optional
        Rough bead-pattern radius in px, a speed hint: any value from a quarter to 4
        times the beads' sizes finds the same beads (None: every scale is searched).
    roi_size : int, optional
        ROI size to be tracked: beads with overlapping ROIs, or ROIs leaving the
        frame, are dropped.
    min_distance : float, optional
        Beads closer than this (px) are dropped as doublets (besides beads whose cores
        overlap).
    threshold : float
        Keep beads of at least this fraction (0..1) of the strongest bead's contrast.

    Returns
    -------
    x, y : ndarray, (M,) float64
        Centres (x = column, y = row, pixel centres at integer coordinates) to within
        a few tenths of a pixel, best first. Refine them with :func:`track_rois` /
        :func:`track_beads`.

    Notes
    -----
    Scale-free: every bead-pattern size from 2 px to a quarter of the frame decides a
    candidate's own scale, and candidates are kept by the rotational symmetry of the
    pattern around them, so the beads found barely depend on ``radius`` (a speed
    hint). See :func:`locate_beads` for the method, the pattern radii and the rejected
    candidates, and :func:`flag_stuck_beads` for the beads stuck to the surface (from
    their motion over frames).

    Examples
    --------
    >>> from camtrack.simulate import bead_field
    >>> from camtrack.tracking import find_beads
    >>> stack, truth = bead_field(2, shape=(160, 160), n_beads=2, rng=1)
    >>> x, y = find_beads(stack[0], radius=20)
    >>> len(x)
    2
    """
    found = locate_beads(
        image, radius=radius, roi_size=roi_size, min_distance=min_distance, threshold=threshold
    )
    return found.x, found.y


def _patch(dev: np.ndarray, cx: float, cy: float, h: int) -> tuple[np.ndarray, int, int] | None:
    """The (2h+1)^2 window around the pixel nearest (cx, cy), clipped to the frame."""
    ny, nx = dev.shape
    i, j = round(cy), round(cx)
    if not (0 <= i < ny and 0 <= j < nx):
        return None
    i0, i1 = max(0, i - h), min(ny, i + h + 1)
    j0, j1 = max(0, j - h), min(nx, j + h + 1)
    return dev[i0:i1, j0:j1], j0, i0


def _refine(
    dev: np.ndarray, cx: float, cy: float, s: float, reach: float = 3.0
) -> tuple[float, float] | None:
    """Centre of point symmetry near (cx, cy): the auto-convolution peak, twice, in a
    window of half-width ``reach * s`` (at least 4 px)."""
    from scipy.signal import fftconvolve

    h = max(4, math.ceil(reach * s))
    for _ in range(2):
        got = _patch(dev, cx, cy, h)
        if got is None:
            return None
        p, j0, i0 = got
        if min(p.shape) < 5:
            return None
        # taper (Hann) centred on the window, so its edges do not pull the peak
        wy = np.hanning(p.shape[0] + 2)[1:-1]
        wx = np.hanning(p.shape[1] + 2)[1:-1]
        q = (p - p.mean()) * wy[:, None] * wx[None, :]
        c = fftconvolve(q, q, mode="full")
        k = int(np.argmax(c))
        u, v = divmod(k, c.shape[1])
        du = vertex(c[max(u - 1, 0) : u + 2, v]) if 0 < u < c.shape[0] - 1 else 0.0
        dv = vertex(c[u, max(v - 1, 0) : v + 2]) if 0 < v < c.shape[1] - 1 else 0.0
        nx_, ny_ = j0 + (v + dv) / 2.0, i0 + (u + du) / 2.0
        if math.hypot(nx_ - cx, ny_ - cy) > h:
            return None
        cx, cy = nx_, ny_
    ny, nx = dev.shape
    if not (0 <= cx <= nx - 1 and 0 <= cy <= ny - 1):
        return None
    return cx, cy


def _symmetry(dev: np.ndarray, cx: float, cy: float, r: float, sigma: float) -> float:
    """Fraction of the energy within ``r`` of (cx, cy) explained by the radial profile.

    Both energies have the noise (sigma^2 per pixel) removed, so a faint bead scores
    as high as a bright one; half-pixel radial bins resolve rings 3+ px apart. The
    window's best-fitting plane is removed first.
    """
    h = max(3, math.ceil(r))
    got = _patch(dev, cx, cy, h)
    if got is None:
        return 0.0
    p, j0, i0 = got
    yy, xx = np.mgrid[i0 : i0 + p.shape[0], j0 : j0 + p.shape[1]]
    rr = np.hypot(xx - cx, yy - cy)
    inside = rr <= r
    # a window cut to less than half by the frame edge shows too little of the
    # pattern to judge it (a corner of an ROI-sized ring pattern looks symmetric)
    if inside.sum() < max(12, 0.5 * math.pi * r * r):
        return 0.0
    b = np.floor(rr[inside] * 2.0).astype(np.int64)
    # less the window's best plane: a background offset (radially symmetric) or slope
    # (point-antisymmetric) left by the background estimate is no bead's pattern
    u, w, v = xx[inside] - cx, yy[inside] - cy, p[inside]
    design = np.column_stack([np.ones_like(u), u, w])
    v = v - design @ np.linalg.lstsq(design, v, rcond=None)[0]
    counts = np.bincount(b)
    mean = np.bincount(b, weights=v) / np.maximum(counts, 1)
    resid = float(((v - mean[b]) ** 2).sum())
    total = float((v**2).sum())
    # each pixel's residual keeps sigma^2 (1 - 1/n_bin) of noise, its energy sigma^2
    noise_resid = sigma**2 * float((1.0 - 1.0 / counts[b]).sum())
    noise_total = sigma**2 * (v.size - 3)
    signal = total - noise_total
    if signal <= 0:
        return 0.0
    return float(np.clip(1.0 - (resid - noise_resid) / signal, 0.0, 1.0))


def _select(
    beads: list[tuple[float, float, float, float]],
    zmaps: list,
    scales: np.ndarray,
    dev: np.ndarray,
    shape: tuple[int, int],
    roi_size: int | None,
    min_distance: float | None,
    threshold: float,
) -> FoundBeads:
    """Merge refined candidates into beads; reject doublets, overlaps, edges, faint."""
    if not beads:
        return FoundBeads(*(np.empty(0) for _ in range(5)))
    rows = []
    reach = SCALE_STEP**SURROUND * max(_MIN_WINDOW / _WINDOW, 0.0)
    for cx, cy, s, sym in beads:
        # significance over the scales the symmetry test looked at (and their
        # surround): a bead whose energy sits in its rings, not its centre, counts
        z = np.array([z_at(zm, cx, cy) for zm in zmaps])
        near = scales <= max(SCALE_STEP**SURROUND * s, reach)
        rows.append((cx, cy, float(z[near].max() if near.any() else z[0]), s, sym))
    # Most symmetric first: an off-centre point of a pattern (symmetric enough, but
    # less so than the pattern's centre) is then recognised as part of that bead.
    rows.sort(key=lambda r: (-r[4], -r[2]))
    merged: list[list[float]] = []
    for cx, cy, z, s, sym in rows:
        if z < MIN_Z:
            continue
        same = False
        for m in merged:
            d = math.hypot(cx - m[0], cy - m[1])
            # the same bead, reached from several candidates (within a third of its
            # scale), or a ghost in its core (or smallest window), clearly less
            # symmetric; a neighbour beyond the core is a bead of its own
            core = max(RADIUS_PER_SCALE * m[3], _MIN_WINDOW)
            if d <= max(1.5, m[3] / 3) or (d < core and sym < m[4] - _GHOST):
                same = True
                break
        if not same:
            merged.append([cx, cy, z, s, sym])
    merged.sort(key=lambda m: -m[2])
    arr = np.array(merged, dtype=np.float64).reshape(-1, 5)
    radius = arr[:, 3] * RADIUS_PER_SCALE
    reason = [""] * len(arr)
    ny, nx = shape
    for a in range(len(arr)):
        for b in range(a + 1, len(arr)):
            d = math.hypot(arr[a, 0] - arr[b, 0], arr[a, 1] - arr[b, 1])
            doublet = d < radius[a] + radius[b] or (min_distance is not None and d < min_distance)  # fmt: skip
            overlap = roi_size is not None and max(abs(arr[a, 0] - arr[b, 0]), abs(arr[a, 1] - arr[b, 1])) < roi_size  # fmt: skip
            for i in (a, b):
                if doublet:
                    reason[i] = reason[i] or "doublet"
                elif overlap:
                    reason[i] = reason[i] or "roi overlap"
    for i in range(len(arr)):
        x, y = arr[i, 0], arr[i, 1]
        if roi_size is not None:
            x0 = round(x - (roi_size - 1) / 2.0)
            y0 = round(y - (roi_size - 1) / 2.0)
            edge = x0 < 0 or y0 < 0 or x0 + roi_size > nx or y0 + roi_size > ny
        else:
            edge = not (0.5 <= x <= nx - 1.5 and 0.5 <= y <= ny - 1.5)
        if edge:
            reason[i] = reason[i] or "edge"
    contrast = np.array([_contrast(dev, arr[i, 0], arr[i, 1], radius[i]) for i in range(len(arr))])  # fmt: skip
    ok = np.array([not r for r in reason], dtype=bool)
    if ok.any():
        faint = contrast < threshold * contrast[ok].max()
        for i in np.flatnonzero(faint & ok):
            reason[i] = "faint"
        ok &= ~faint
    rej = ~ok
    return FoundBeads(
        x=arr[ok, 0],
        y=arr[ok, 1],
        radius_px=radius[ok],
        score=arr[ok, 2],
        symmetry=arr[ok, 4],
        rejected_x=arr[rej, 0],
        rejected_y=arr[rej, 1],
        rejected_reason=tuple(reason[i] for i in np.flatnonzero(rej)),
    )


def _contrast(dev: np.ndarray, x: float, y: float, r: float) -> float:
    """rms deviation from the background within ``r`` of (x, y)."""
    got = _patch(dev, x, y, max(2, math.ceil(r)))
    if got is None:
        return 0.0
    p, j0, i0 = got
    yy, xx = np.mgrid[i0 : i0 + p.shape[0], j0 : j0 + p.shape[1]]
    inside = np.hypot(xx - x, yy - y) <= max(r, 2.0)
    return float(np.sqrt(np.mean(p[inside] ** 2)))
