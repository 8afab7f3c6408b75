"""Stack-level work: cropping ROIs, finding beads, tracking beads through a stack."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from camtrack import _backend, _parallel
from camtrack._validation import (
    check_choice,
    check_integer,
    check_stack,
    renamed_keywords,
)
from camtrack.tracking._camera import CameraModel, as_camera_model
from camtrack.tracking._common import quiet
from camtrack.tracking._measure import MODES
from camtrack.tracking._pipeline import resolve_options, run_batches, track_options
from camtrack.tracking._result import TrackResult, check_timing
from camtrack.tracking._zlut import ZLut

__all__ = ["crop_rois", "track_beads"]

Progress = Callable[..., Iterable[Any]]


def _origins(x: np.ndarray, y: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-left pixel of an ROI that puts (x, y) within half a pixel of its centre."""
    half = (size - 1) / 2.0
    return np.rint(x - half).astype(np.int64), np.rint(y - half).astype(np.int64)


@renamed_keywords(size="roi_size")
def crop_rois(stack: Any, x: Any, y: Any, roi_size: int) -> tuple[Any, np.ndarray, np.ndarray]:
    """Cut square ROIs centred on given positions out of a stack.

    Parameters
    ----------
    stack : array, (T, Y, X) or (Y, X)
        Frames (numpy, cupy or dask; an image is treated as one frame).
    x, y : array_like, (T, B) or (B,)
        Centres per frame and bead in full-frame pixels (x = column, y = row, pixel
        centres at integer coordinates); (B,) uses the same positions in every frame.
    roi_size : int
        ROI size S (as ``track_beads`` and ``ZLut.roi_size``).

    Returns
    -------
    rois : array, (T * B, S, S)
        Frame-major (all beads of frame 0, then frame 1, ...), input dtype. For a
        dask stack a lazy dask array, one chunk per chunk of frames (B times its
        frames), each cut from whole frames.
    x0, y0 : ndarray of int, (T * B,)
        Top-left pixel of each ROI: full-frame position = ROI position + (x0, y0).

    Raises
    ------
    ValueError
        When an ROI would leave the frame (its bead lies within S/2 of the edge); the
        message names the first such frame and bead.

    Notes
    -----
    Each ROI is placed so that the bead lies within half a pixel of the ROI centre
    ``(S - 1) / 2``.

    Examples
    --------
    >>> import numpy as np
    >>> from camtrack.tracking import crop_rois
    >>> stack = np.arange(2 * 50 * 60).reshape(2, 50, 60)
    >>> rois, x0, y0 = crop_rois(stack, [20.0, 40.2], [25.0, 24.6], 16)
    >>> rois.shape, x0.tolist(), y0.tolist()
    ((4, 16, 16), [12, 33, 12, 33], [18, 17, 18, 17])
    """
    shape = getattr(stack, "shape", None)
    if shape is not None and len(shape) == 2:
        stack = stack[None]
    check_stack(stack)
    size = check_integer(roi_size, "roi_size", minimum=2)
    t, ny, nx = (int(v) for v in stack.shape)
    xa = np.asarray(_backend.to_host(x), dtype=np.float64)
    ya = np.asarray(_backend.to_host(y), dtype=np.float64)
    if xa.shape != ya.shape or xa.ndim not in (1, 2) or (xa.ndim == 2 and xa.shape[0] != t):
        raise ValueError(
            f"`x` and `y` must both have shape (n_beads,) or (n_frames={t}, n_beads); got "
            f"{xa.shape} and {ya.shape}."
        )
    if not (np.all(np.isfinite(xa)) and np.all(np.isfinite(ya))):
        raise ValueError("`x` and `y` must be finite.")
    xa = np.broadcast_to(xa, (t, xa.shape[-1]))
    ya = np.broadcast_to(ya, (t, ya.shape[-1]))
    x0, y0 = _origins(xa, ya, size)
    out = (x0 < 0) | (y0 < 0) | (x0 + size > nx) | (y0 + size > ny)
    if out.any():
        f, b = (int(v[0]) for v in np.nonzero(out))
        raise ValueError(
            f"The ROI of bead {b} in frame {f} at (x={xa[f, b]:.1f}, y={ya[f, b]:.1f}) leaves "
            f"the {nx}x{ny} frame ({size} px ROIs need the bead {size // 2} px from the edge). "
            "Drop the bead or use a smaller `roi_size`."
        )
    if _backend.is_dask(stack):
        rois = _gather_dask(stack, x0, y0, size)
    else:
        rois = _gather(stack, x0, y0, size)
    return rois, x0.ravel(), y0.ravel()


def _gather_dask(stack: Any, x0: np.ndarray, y0: np.ndarray, size: int) -> Any:
    """Lazy (T*B, S, S) ROIs: `_gather` on each chunk of whole frames.

    dask has no multi-dimensional fancy indexing; each task gets only its own frames'
    origins, so the graph does not carry a copy of all of them per task.
    """
    import dask.array as da

    frames = stack.rechunk({1: -1, 2: -1})
    b = x0.shape[1]
    meta = getattr(stack, "_meta", np.empty((0, 0, 0), stack.dtype))
    parts = []
    start = 0
    for i, n in enumerate(frames.chunks[0]):
        sl = slice(start, start + n)
        parts.append(
            frames.blocks[i].map_blocks(
                _gather,
                x0[sl],
                y0[sl],
                size,
                chunks=((n * b,), (size,), (size,)),
                dtype=stack.dtype,
                meta=meta[:0, :0, :0],
            )
        )
        start += n
    return da.concatenate(parts, axis=0)


def _gather(frames: Any, x0: np.ndarray, y0: np.ndarray, size: int) -> Any:
    """(T*B, S, S) ROIs at in-frame origins (T, B) by one fancy index."""
    xp, _ = _backend.namespace(frames)
    t, b = x0.shape
    d = np.arange(size)
    ti = np.repeat(np.arange(t), b)[:, None, None]
    rows = (y0.reshape(-1)[:, None] + d[None, :])[:, :, None]
    cols = (x0.reshape(-1)[:, None] + d[None, :])[:, None, :]
    return frames[xp.asarray(ti), xp.asarray(rows), xp.asarray(cols)]


def _frame_chunks(stack: Any, chunk: int) -> Iterable[tuple[int, Any]]:
    """(first frame, numpy/cupy block) pairs; dask blocks are computed one at a time."""
    t = int(stack.shape[0])
    for s in range(0, t, chunk):
        block = stack[s : s + chunk]
        if _backend.is_dask(block):
            block = block.compute()
        yield s, block


def track_beads(
    stack: Any,
    positions: Any,
    *,
    roi_size: int,
    zlut: ZLut | Sequence[ZLut] | None = None,
    reference: Any = None,
    mode: str = "precise",
    progress: Progress | None = None,
    frame_chunk: int = 64,
    scheduler: Any = None,
    camera: Any = None,
    e_per_adu: Any = None,
    offset_adu: Any = None,
    read_noise_e: Any = None,
    fs_hz: float | None = None,
    exposure_s: float | None = None,
    n_bins: int | None = None,
    oversample: int | None = None,
    profile: str | None = None,
    centre: str | None = None,
    saturation: Any = "auto",
    saturation_tol: float = 3.0,
    n_iter: int = 2,
    z_iter: int = 2,
    refine_xy: bool | None = None,
    keep_profiles: bool = True,
    workers: int | None = None,
) -> TrackResult:
    """Track beads through a stack: x, y per frame (and z with a Z-LUT).

    Parameters
    ----------
    stack : array, (T, Y, X)
        Frames, any integer or float dtype; numpy, cupy or a lazy dask array (read
        ``frame_chunk`` frames at a time, so memory stays bounded).
    positions : array_like, (B, 2)
        Start positions (x, y) of the beads in the first frame, full-frame pixels
        (e.g. from :func:`find_beads`); within a few pixels is enough.
    roi_size : int
        ROI size S (the Z-LUT's ``roi_size`` when one is given).
    zlut : ZLut or sequence of ZLut, optional
        Look-up table for z: one for every bead, or one per bead (``zlut[b]`` for bead
        ``b``, e.g. from a calibration sweep of the whole field; all built alike).
    reference : int or sequence of int, optional
        Beads stuck to the surface. Their mean displacement from their first-frame
        position (x, y, and z with a LUT) is the drift, subtracted from every bead
        (reference beads included) frame by frame.
    mode : {"precise", "fast"}
        See :func:`track_rois`.
    progress : callable, optional
        tqdm-like ``progress(iterable, total=...)`` wrapped around the frame chunks.
    frame_chunk : int
        Frames per chunk (dask stacks are rechunked to it, so numpy and dask give the
        same result).
    scheduler : str, distributed.Client or None
        None (default, and no ``DASK_SCHEDULER_ADDRESS`` set): chunk after chunk in this
        process, each chunk starting where the last one left the beads. Otherwise the
        chunks run in parallel as dask tasks on that scheduler: a dask.distributed
        address or ``Client`` (workers read their own frames: the camtrack readers are
        picklable), or ``"threads"`` / ``"processes"``. See Notes.
    camera : optional
        The camera's noise model, as for :func:`track_rois`: a :class:`CameraModel`, a
        dict, a :class:`camtrack.gain.PixelCalibration` or a
        :class:`camtrack.gain.GainResult`. Per-pixel maps are full frames (Y, X); each
        ROI gets the maps cut at its own place (:meth:`CameraModel.crop`), so every
        pixel's offset and gain are corrected and hot pixels replaced where they are.
    e_per_adu, offset_adu, read_noise_e : float, optional
        The camera as scalars (or to override ``camera``'s).
    fs_hz : float, optional
        Frame rate in Hz (e.g. ``info.fs_hz`` of the reader's ``LayerInfo``); kept in the
        result, whose table then has ``t_s`` = frame / fs_hz.
    exposure_s : float, optional
        Exposure time per frame in s, at most 1 / ``fs_hz`` (kept in the result).
    n_bins, oversample, profile, centre, saturation, saturation_tol, n_iter, z_iter, refine_xy, keep_profiles, workers
        The tracking options of :func:`track_rois`, applied to every ROI (``centre``:
        "symmetry", the mode's own centre, or a classic block's name).

    Returns
    -------
    TrackResult
        Rows frame-major (frame, bead); x, y in full-frame pixels; ``frame`` and
        ``bead`` columns; ``x_err``, ``y_err``, ``z_err`` (with ``reference``, the
        drift's own error added in quadrature); profiles are not kept.

    Notes
    -----
    ROIs follow the beads: each chunk's ROIs are centred on the beads' last measured
    positions, and any ROI whose bead turned out more than half a pixel away from its
    centre is cut again around the measured position and measured again, so every
    bead ends within half a pixel of its ROI's centre. A bead whose ROI would leave
    the frame (closer than S/2 to the edge) gives NaN in that frame and keeps its
    last good position; so do NaN or constant ROIs. Axis order (frame, row, col);
    x = column, y = row, pixel centres at integer coordinates.

    In parallel (``scheduler``), the first frame of every chunk is tracked first, in
    order, each from the previous one (one frame per chunk is read here); the chunks
    then start from these anchor positions, independently. Beads that move further
    than about a quarter ROI within one chunk are followed less reliably than in the
    sequential mode: lower ``frame_chunk`` for fast beads.

    Examples
    --------
    >>> from camtrack.simulate import bead_field
    >>> from camtrack.tracking import track_beads
    >>> stack, truth = bead_field(8, shape=(128, 128), n_beads=2, rng=0)
    >>> start = list(zip(truth.x[0], truth.y[0]))
    >>> res = track_beads(stack, start, roi_size=48, reference=0)
    >>> df = res.to_dataframe()
    >>> df.shape[0], list(df.columns)[:4]
    (16, ['frame', 'bead', 'x', 'y'])
    """
    check_stack(stack)
    fs_hz, exposure_s = check_timing(fs_hz, exposure_s)
    mode = check_choice(mode, "mode", MODES)
    roi_size = check_integer(roi_size, "roi_size", minimum=8)
    frame_chunk = check_integer(frame_chunk, "frame_chunk", minimum=1)
    pos = np.asarray(_backend.to_host(positions), dtype=np.float64)
    if pos.ndim == 1 and pos.size == 2:
        pos = pos[None]
    if pos.ndim != 2 or pos.shape[1] != 2 or pos.shape[0] == 0:
        raise ValueError(
            f"`positions` must have shape (n_beads, 2) holding (x, y); got {pos.shape}."
        )
    if not np.all(np.isfinite(pos)):
        raise ValueError("`positions` must be finite.")
    n_beads = pos.shape[0]
    refs = _references(reference, n_beads)
    options = track_options(
        n_bins=n_bins, oversample=oversample, profile=profile, centre=centre, saturation=saturation,
        saturation_tol=saturation_tol, n_iter=n_iter, z_iter=z_iter, refine_xy=refine_xy,
        keep_profiles=keep_profiles, workers=workers,
    )  # fmt: skip
    zlut, o = _resolve_luts(zlut, n_beads, roi_size, options, mode)
    o["keep_profiles"] = False
    t, ny, nx = (int(v) for v in stack.shape)
    if roi_size > min(ny, nx):
        raise ValueError(
            f"`roi_size` {roi_size} is larger than the frames of `stack` ({ny} x {nx} px, "
            f"rows x cols); use a `roi_size` of at most {min(ny, nx)} (and beads at least "
            "half an ROI from the edge), or a stack of larger frames."
        )
    cam = frame_camera(camera, {"e_per_adu": e_per_adu, "offset_adu": offset_adu, "read_noise_e": read_noise_e}, (ny, nx))  # fmt: skip
    if _backend.is_dask(stack):
        stack = stack.rechunk({0: frame_chunk, 1: -1, 2: -1})
    geometry = (roi_size, zlut, mode, o, (ny, nx), cam)
    # In parallel on a named scheduler, or on a cluster that is active or named in
    # DASK_SCHEDULER_ADDRESS (camtrack._parallel's one resolution); else in order here.
    if scheduler is None and not (_backend.is_dask(stack) and _parallel.is_distributed()):
        cols = _track_sequential(stack, pos, geometry, frame_chunk, progress)
    else:
        cols = _track_parallel(stack, pos, geometry, frame_chunk, progress, scheduler)
    out = {k: np.concatenate(v) for k, v in cols.items()}  # (T, B) each
    if refs:
        with quiet():
            for k in ("x", "y", "z"):
                v = out[k]
                drift = np.nanmean(v[:, refs] - v[0, refs], axis=1) if np.isfinite(v[0, refs]).any() else np.zeros(t)  # fmt: skip
                out[k] = v - drift[:, None]
                # The drift is a mean of differences: its variance adds to every bead's.
                e = out[f"{k}_err"]
                n_ok = np.maximum(np.isfinite(v[:, refs]).sum(axis=1), 1)
                drift_var = np.nansum(e[:, refs] ** 2 + e[0, refs] ** 2, axis=1) / n_ok**2
                drift_var[0] = 0.0  # frame 0 is the drift's origin: none subtracted
                out[f"{k}_err"] = np.sqrt(e**2 + drift_var[:, None])
    frame = np.repeat(np.arange(t), n_beads)
    bead = np.tile(np.arange(n_beads), t)
    return TrackResult(
        x=out["x"].ravel(),
        y=out["y"].ravel(),
        z=out["z"].ravel(),
        profiles=None,
        quality=out["quality"].ravel(),
        match=out["match"].ravel(),
        frame=frame,
        bead=bead,
        units=_units(zlut),
        x_err=out["x_err"].ravel(),
        y_err=out["y_err"].ravel(),
        z_err=out["z_err"].ravel(),
        fs_hz=fs_hz,
        exposure_s=exposure_s,
    )


def frame_camera(camera: Any, scalars: dict[str, Any], frame: tuple[int, ...]) -> CameraModel | None:  # fmt: skip
    """The camera for whole frames: maps must have the frames' shape (Y, X).

    Package-internal (no underscore): ``camtrack track``, ``camtrack zlut`` and the Bead
    tracking widget check a camera against their frames with this one function.
    """
    cam = as_camera_model(camera, **scalars)
    if cam is not None and cam.shape is not None and tuple(cam.shape) != tuple(frame):
        raise ValueError(
            f"`camera` maps have shape {tuple(cam.shape)}; `stack` frames are {frame} "
            "(rows, cols). Pass maps of the whole sensor area the stack was recorded on "
            "(crop them to the stack's region first)."
        )
    return cam


def _advance(last: np.ndarray, res: dict[str, np.ndarray]) -> None:
    """Move ``last`` (B, 2) to each bead's last finite (x, y) in a chunk's result."""
    for k, i in (("x", 0), ("y", 1)):
        v = res[k]
        ok = np.isfinite(v)
        idx = np.where(ok, np.arange(v.shape[0])[:, None], -1)
        lastrow = np.maximum.accumulate(idx, axis=0)[-1]
        has = lastrow >= 0
        last[has, i] = v[lastrow[has], np.flatnonzero(has)]


_KEYS = ("x", "y", "z", "x_err", "y_err", "z_err", "quality", "match")


def _track_sequential(
    stack: Any, pos: np.ndarray, geometry: tuple, frame_chunk: int, progress: Progress | None
) -> dict[str, list[np.ndarray]]:
    """Chunk after chunk; each starts from the beads' last positions in the previous."""
    cols: dict[str, list[np.ndarray]] = {k: [] for k in _KEYS}
    last = pos.copy()
    chunks = _frame_chunks(stack, frame_chunk)
    if progress is not None:
        chunks = progress(chunks, total=math.ceil(int(stack.shape[0]) / frame_chunk))
    for _, block in chunks:
        res = _track_block(block, last, *geometry)
        for k in cols:
            cols[k].append(res[k])
        _advance(last, res)
    return cols


def _track_parallel(
    stack: Any,
    pos: np.ndarray,
    geometry: tuple,
    frame_chunk: int,
    progress: Progress | None,
    scheduler: Any,
) -> dict[str, list[np.ndarray]]:
    """Anchor frames in order here, then every chunk as a dask task on ``scheduler``."""
    import dask

    t = int(stack.shape[0])
    starts = list(range(0, t, frame_chunk))
    anchors = []
    last = pos.copy()
    for s in starts:
        block = stack[s : s + 1]
        if _backend.is_dask(block):
            block = block.compute()
        _advance(last, _track_block(block, last, *geometry))
        anchors.append(last.copy())
    task = dask.delayed(_track_block, pure=True)
    tasks = [task(stack[s : s + frame_chunk], a, *geometry) for s, a in zip(starts, anchors, strict=True)]  # fmt: skip
    with _parallel.scheduler_target(scheduler) as target:
        client = target.client
        # Waves of tasks: progress (and Cancel) between waves, bounded results in flight.
        wave = 8 if client is None else max(8, _parallel.TASKS_PER_THREAD * sum(client.nthreads().values()))  # fmt: skip
        waves = [tasks[i : i + wave] for i in range(0, len(tasks), wave)]
        if progress is not None:
            waves = progress(waves, total=len(waves))
        results: list[dict[str, np.ndarray]] = []
        for w in waves:
            results.extend(dask.compute(*w, scheduler=target.scheduler))
    return {k: [r[k] for r in results] for k in _KEYS}


def _resolve_luts(
    zlut: Any, n_beads: int, roi_size: int, options: dict[str, Any], mode: str
) -> tuple[Any, dict[str, Any]]:
    """Check one LUT or one per bead; a per-bead list must be built alike."""
    if zlut is None or isinstance(zlut, ZLut):
        return zlut, resolve_options(roi_size, zlut, options, mode)
    if not isinstance(zlut, Sequence) or isinstance(zlut, str):
        raise TypeError(
            f"`zlut` must be a ZLut, a sequence of ZLut (one per bead) or None; got "
            f"{type(zlut).__name__}."
        )
    luts = list(zlut)
    if len(luts) != n_beads:
        raise ValueError(
            f"`zlut` holds {len(luts)} LUTs for {n_beads} beads; give one per bead (in the "
            "order of `positions`) or a single ZLut for all."
        )
    resolved = [resolve_options(roi_size, lut, dict(options), mode) for lut in luts]
    keys = ("n_bins", "oversample", "profile", "centre")
    for b, o in enumerate(resolved[1:], start=1):
        if any(o[k] != resolved[0][k] for k in keys):
            raise ValueError(
                f"`zlut[{b}]` was built with { ({k: o[k] for k in keys}) }, `zlut[0]` with "
                f"{ ({k: resolved[0][k] for k in keys}) }; build every bead's LUT alike."
            )
    return luts, resolved[0]


def _measure_rois(
    xp: Any,
    rois: Any,
    bead: np.ndarray,
    zlut: Any,
    mode: str,
    o: dict[str, Any],
    cam: CameraModel | None = None,
) -> dict[str, np.ndarray]:
    """x, y, z, their errors, quality, match (host arrays) of ROIs; ``bead`` picks
    per-bead LUTs; ``cam`` the camera with maps cut for these ROIs."""
    if not isinstance(zlut, list):
        res = run_batches(xp, rois, zlut, mode, o, cam)
        return {k: _backend.to_host(res[k]) for k in _KEYS}
    out = {k: np.full(bead.shape[0], np.nan) for k in _KEYS}
    for b in np.unique(bead):
        sel = np.flatnonzero(bead == b)
        sub = None if cam is None else cam.rows(sel)
        res = run_batches(xp, rois[xp.asarray(sel)], zlut[int(b)], mode, o, sub)
        for k in _KEYS:
            out[k][sel] = _backend.to_host(res[k])
    return out


def _units(zlut: Any) -> str:
    if zlut is None:
        return "nm"
    return zlut[0].units if isinstance(zlut, list) else zlut.units


def _references(reference: Any, n_beads: int) -> list[int]:
    if reference is None:
        return []
    refs = np.atleast_1d(np.asarray(reference))
    if refs.ndim != 1 or not np.issubdtype(refs.dtype, np.integer):
        raise TypeError(f"`reference` must be a bead index or a sequence of them; got {reference!r}.")  # fmt: skip
    if refs.size and (refs.min() < 0 or refs.max() >= n_beads):
        raise ValueError(f"`reference` indices must lie in [0, {n_beads - 1}]; got {refs.tolist()}.")  # fmt: skip
    return sorted({int(r) for r in refs})


def _track_block(
    block: Any,
    last: np.ndarray,
    size: int,
    zlut: ZLut | list[ZLut] | None,
    mode: str,
    o: dict[str, Any],
    frame_shape: tuple[int, int],
    cam: CameraModel | None = None,
) -> dict[str, np.ndarray]:
    """Track one chunk of frames; (t, B) host arrays in full-frame pixels."""
    xp, _ = _backend.namespace(block)
    t = int(block.shape[0])
    b = last.shape[0]
    ny, nx = frame_shape
    cx = np.broadcast_to(last[:, 0], (t, b)).copy()
    cy = np.broadcast_to(last[:, 1], (t, b)).copy()
    result: dict[str, np.ndarray] = {}
    for attempt in range(2):
        x0, y0 = _origins(cx, cy, size)
        inside = (x0 >= 0) & (y0 >= 0) & (x0 + size <= nx) & (y0 + size <= ny)
        x0c = np.clip(x0, 0, nx - size)
        y0c = np.clip(y0, 0, ny - size)
        if attempt == 0:
            todo = np.ones((t, b), dtype=bool)
        else:
            # Re-cut ROIs whose bead sat more than half a pixel off their centre.
            half = (size - 1) / 2.0
            mx = result["x"] - (result["x0"] + half)
            my = result["y"] - (result["y0"] + half)
            todo = np.isfinite(mx) & ((np.abs(mx) > 0.5) | (np.abs(my) > 0.5))
            if not todo.any():
                break
        fi, bi = np.nonzero(todo)
        rois = _select_frames(block, fi, x0c[fi, bi], y0c[fi, bi], size)
        # Maps cut where each ROI lies (scalars pass through untouched).
        rcam = None if cam is None else cam.crop(y0c[fi, bi], x0c[fi, bi], size)
        vals = _measure_rois(xp, rois, bi, zlut, mode, o, rcam)
        vals["x"] = vals["x"] + x0c[fi, bi]
        vals["y"] = vals["y"] + y0c[fi, bi]
        bad = ~inside[fi, bi]
        for k in vals:
            vals[k] = np.where(bad, np.nan, vals[k])
        if attempt == 0:
            result = {k: np.full((t, b), np.nan) for k in vals}
            result["x0"] = x0c.astype(np.float64)
            result["y0"] = y0c.astype(np.float64)
        for k, v in vals.items():
            result[k][fi, bi] = v
        result["x0"][fi, bi] = x0c[fi, bi]
        result["y0"][fi, bi] = y0c[fi, bi]
        with quiet():
            cx = np.where(np.isfinite(result["x"]), result["x"], cx)
            cy = np.where(np.isfinite(result["y"]), result["y"], cy)
    return {k: result[k] for k in _KEYS}


def _select_frames(block: Any, fi: np.ndarray, x0: np.ndarray, y0: np.ndarray, size: int) -> Any:
    """ROIs (n, S, S) of frame ``fi[k]`` at origin (x0[k], y0[k])."""
    xp, _ = _backend.namespace(block)
    d = np.arange(size)
    rows = (y0[:, None] + d[None, :])[:, :, None]
    cols = (x0[:, None] + d[None, :])[:, None, :]
    return block[xp.asarray(fi[:, None, None]), xp.asarray(rows), xp.asarray(cols)]
