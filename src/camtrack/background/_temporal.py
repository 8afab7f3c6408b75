"""Temporal background: one median (or percentile) image over all frames."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from camtrack import _backend
from camtrack._outofcore import (
    BAND_BYTES,
    SPILL_BAND_BYTES,
    plan_tiles,
    read_band,
    spill_reduce,
    temporal_layout,
    to_time_tiles,
    work_dtype,
)
from camtrack._parallel import Hidden, is_distributed
from camtrack._validation import check_positive, check_range, check_stack
from camtrack.background._common import (
    Progress,
    check_frame_or_pixel_mask,
    n_workers,
    run_parallel,
)
from camtrack.background._quantiles import tile_quantiles

__all__ = ["temporal_median", "temporal_percentile"]


def _check_q(q: Any) -> tuple[list[float], bool]:
    """Percentile(s) in [0, 100] -> (list, scalar?)."""
    if np.ndim(q) == 0:
        return [check_range(q, "q", 0.0, 100.0)], True
    vals = np.ravel(np.asarray(q, dtype=object)).tolist()
    if np.ndim(q) != 1 or not vals:
        raise ValueError(
            f"`q` must be a number or a 1-D sequence of numbers in [0, 100]; got {q!r}."
        )
    return [check_range(v, f"q[{i}]", 0.0, 100.0) for i, v in enumerate(vals)], False


def _prepare(stack: Any, mask: Any, sigma_clip: Any) -> tuple[Any, Any, float | None]:
    """Validate; apply a per-frame mask by dropping frames; return (stack, pixel_mask, k)."""
    check_stack(stack)
    if sigma_clip is not None:
        sigma_clip = check_positive(sigma_clip, "sigma_clip")
    pixel_mask = None
    if mask is not None:
        check_frame_or_pixel_mask(mask, stack.shape)
        if mask.ndim == 1:
            keep = np.flatnonzero(~_backend.to_host(mask))
            if keep.size == 0:
                raise ValueError(
                    "`mask` leaves out every frame; True marks frames to leave out, "
                    "so at least one entry must be False."
                )
            xp, _ = _backend.namespace(stack)
            stack = stack[keep if xp is np else xp.asarray(keep)]
        else:
            _backend.namespace(stack, mask)  # TypeError for numpy mixed with cupy
            pixel_mask = (
                mask.compute() if _backend.is_dask(mask) and not _backend.is_dask(stack) else mask
            )
    return stack, pixel_mask, sigma_clip


def _band_task(
    _previous: Any,
    src: Hidden,
    mask_src: Hidden | None,
    tile: tuple[slice, slice],
    qs: list[float],
    sigma_clip: float | None,
    dtype: Any,
    skip_nan: bool = False,
) -> Any:
    band = read_band(src.array, tile, n_workers())
    left_out = None if mask_src is None else read_band(mask_src.array, tile, n_workers())
    return _reduce(band, qs, left_out, sigma_clip, None, skip_nan=skip_nan)


def _reduce_bands(
    stack: Any,
    qs: list[float],
    pixel_mask: Any,
    sigma_clip: float | None,
    dtype: Any,
    skip_nan: bool = False,
    progress: Progress | None = None,
    spill: bool = True,
) -> Any:
    """Lazy quantiles of a frame-chunked dask stack: spilled band-major, or band by band.

    ``progress`` (hidden from dask in the graph) is advanced by the spill task per
    frame group written and per band reduced, so a Cancel raised from it stops that
    single long task within a group or a band, not at its end.

    ``spill`` (the ``"spill"`` layout of :func:`camtrack._outofcore.temporal_layout`:
    numpy chunks and room on disk): one task rewrites the stack band-major into a
    temporary spill file in a single pass over its frame chunks (:func:`camtrack._outofcore.spill_reduce`),
    then reduces the bands one after the other, each a single contiguous read: the
    I/O is 3 x the stack whatever its size. Otherwise (the ``"chain"`` layout) each band
    task reads its rows of every frame chunk, recomputing or re-reading the chunks once
    per band, and the bands are chained so that they run one after the other. Memory
    stays bounded either way.
    """
    import dask
    import dask.array as da

    meta = _backend.dask_meta(stack, dtype, 3)
    src = Hidden(stack)
    mask_src = None if pixel_mask is None else Hidden(da.asarray(pixel_mask))
    planes = len(qs) + int(skip_nan)
    shape = (planes, *stack.shape[1:])
    if spill:
        task = dask.delayed(_spill_task, pure=False)
        value = task(src, mask_src, qs, sigma_clip, dtype, skip_nan, Hidden(progress))
        return da.from_delayed(value, shape=shape, dtype=dtype, meta=meta)

    native = np.dtype(stack.dtype).itemsize
    tiles = plan_tiles(stack.shape, native, budget=BAND_BYTES)
    task = dask.delayed(_band_task, pure=False)
    previous = None
    by_row: dict[int, list[Any]] = {}
    for tile in tiles:
        ys, xs = tile
        previous = task(previous, src, mask_src, tile, qs, sigma_clip, dtype, skip_nan)
        shape = (planes, ys.stop - ys.start, xs.stop - xs.start)
        part = da.from_delayed(previous, shape=shape, dtype=dtype, meta=meta)
        by_row.setdefault(ys.start, []).append(part)
    # da.block: outer list = axis 0 (one entry), then row bands, then column pieces.
    return da.block([list(by_row.values())])


def _spill_bytes(stack: Any, pixel_mask: Any) -> int:
    n = int(np.prod(stack.shape))
    return n * np.dtype(stack.dtype).itemsize + (0 if pixel_mask is None else n)


def _spill_task(
    src: Hidden,
    mask_src: Hidden | None,
    qs: list[float],
    sigma_clip: float | None,
    dtype: Any,
    skip_nan: bool = False,
    progress_src: Hidden | None = None,
) -> np.ndarray:
    """Spill the stack (and mask) band-major, then reduce band by band (next one prefetched)."""
    stack = src.array
    arrays = [stack] if mask_src is None else [stack, mask_src.array]
    per_pixel = sum(np.dtype(a.dtype).itemsize for a in arrays)
    # Two bands in memory (the one reduced, the one prefetched).
    tiles = plan_tiles(stack.shape, per_pixel, budget=SPILL_BAND_BYTES)
    out = np.empty((len(qs) + int(skip_nan), *stack.shape[1:]), dtype=dtype)

    def reduce(band: np.ndarray, left_out: np.ndarray | None = None) -> Any:
        return _reduce(band, qs, left_out, sigma_clip, None, skip_nan=skip_nan)

    progress = None if progress_src is None else progress_src.array
    return spill_reduce(arrays, tiles, reduce, out, progress=progress)


def _reduce(
    stack: Any,
    qs: list[float],
    pixel_mask: Any,
    sigma_clip: float | None,
    progress: Progress | None,
    *,
    skip_nan: bool = False,
    cluster: bool = False,
) -> Any:
    """(T, Y, X) -> (len(qs), Y, X) quantiles over time, tiled, on the input's backend.

    ``skip_nan``: non-finite samples are missing data, left out, and a last plane
    counts them per pixel: (len(qs) + 1, Y, X) (see :func:`tile_quantiles`).
    ``cluster``: the graph will run on ``dask.distributed``: a frame-chunked stack is
    rechunked by a p2p shuffle (every frame chunk read once, pieces exchanged through
    the workers' disks, so no worker holds the whole stack) into the same full-time
    tiles, one task each, instead of the in-process spill or band chain.
    """
    dtype = work_dtype(stack.dtype)
    itemsize = dtype.itemsize
    planes = len(qs) + int(skip_nan)

    if _backend.is_dask(stack):
        import dask.array as da

        spill_bytes = _spill_bytes(stack, pixel_mask)
        layout = temporal_layout(stack, itemsize, cluster=cluster, spill_bytes=spill_bytes)
        if layout != "tiles":
            spill = layout == "spill"
            return _reduce_bands(stack, qs, pixel_mask, sigma_clip, dtype, skip_nan, progress, spill)  # fmt: skip
        data = to_time_tiles(stack, itemsize, cluster=cluster)
        args = [data]
        if pixel_mask is not None:
            left_out = da.asarray(pixel_mask)
            method = "p2p" if cluster and len(left_out.chunks[0]) > 1 else None
            args.append((~left_out).rechunk(data.chunks, method=method))

        def kernel(block: Any, *rest: Any) -> Any:
            return tile_quantiles(
                block,
                qs,
                valid=rest[0] if rest else None,
                sigma_clip=sigma_clip,
                out_dtype=dtype,
                skip_nan=skip_nan,
            )

        return da.map_blocks(
            kernel,
            *args,
            chunks=((planes,), *data.chunks[1:]),
            dtype=dtype,
            meta=_backend.dask_meta(stack, dtype, 3),
        )

    xp, _ = _backend.namespace(stack)
    ny, nx = stack.shape[1:]
    out = xp.empty((planes, ny, nx), dtype=dtype)
    gpu = xp is not np
    tiles = plan_tiles(stack.shape, itemsize, min_tiles=1 if gpu else 4 * n_workers())

    def work(tile: tuple[slice, slice]) -> None:
        ys, xs = tile
        valid = None if pixel_mask is None else ~pixel_mask[:, ys, xs]
        out[:, ys, xs] = tile_quantiles(
            stack[:, ys, xs],
            qs,
            valid=valid,
            sigma_clip=sigma_clip,
            out_dtype=dtype,
            skip_nan=skip_nan,
        )

    run_parallel(work, tiles, progress=progress, workers=1 if gpu else None)
    return out


def temporal_median(
    stack: Any,
    *,
    mask: Any = None,
    sigma_clip: float | None = None,
    progress: Progress | None = None,
    scheduler: Any = None,
) -> Any:
    """Median over time of every pixel: one background image.

    Parameters
    ----------
    stack : array, shape (T, Y, X)
        numpy, cupy or dask; any integer or float dtype. Not modified.
    mask : bool array, shape (T,) or (T, Y, X), optional
        True marks data to leave out: whole frames (T,) or single samples (T, Y, X),
        e.g. pixels covered by moving beads, so they are not absorbed into the
        background.
    sigma_clip : float, optional
        Leave out samples further than ``sigma_clip`` robust standard deviations
        (1.4826 x the median absolute deviation) from each pixel's median, iterated
        on the kept samples until stable (at most 5 passes). A bead covering a pixel
        in a minority of the frames is then left out instead of biasing the median
        towards it; 3 is a common choice.
    progress : callable, optional
        tqdm-like ``progress(iterable, total=n)``, advanced per spatial tile (numpy
        and cupy input). Dask input stays lazy: a frame-chunked stack (a file read
        frame by frame) is reduced in one spill task that advances it when computed,
        per frame group written and per band reduced, so an exception it raises
        (a Cancel button) stops that task; compute other dask graphs with
        :func:`camtrack._parallel.compute` for task-level progress.
    scheduler : None, str or distributed.Client
        Where dask input will be computed, which decides the graph's layout: a local
        dask scheduler name (``"threads"``, ``"sync"``, ``"processes"``), a
        ``dask.distributed`` address or ``Client``; None: the active ``distributed``
        client, else ``DASK_SCHEDULER_ADDRESS``, else local threads. A frame-chunked
        stack is reduced through an in-process spill file locally and through a p2p
        rechunk (full time axis by spatial tiles, shuffled over the workers' disks) on
        a cluster. The result stays lazy: compute it there (with the client active, or
        ``camtrack._parallel.compute(result, scheduler=...)``).

    Returns
    -------
    array, shape (Y, X)
        float32 (float64 for float64 or 32/64-bit integer input), on the input's
        backend; lazy for dask input. float16 input is reduced in float32 too: for an
        even number of frames the mean of the middle pair is formed in float32, where
        it is exact (in float16 it would round by up to 2 ADU at 3000 ADU).

    Notes
    -----
    Axis 0 is time. Pixels whose samples are all left out are NaN. A NaN sample that
    is kept makes its pixel NaN (as :func:`numpy.median`); pass
    ``mask=numpy.isnan(stack)`` to skip NaNs instead. Work runs on spatial tiles
    holding every frame (at most 64 MB each), so memory stays bounded; dask input is
    rechunked to that layout (full time axis, spatial tiles).

    Examples
    --------
    >>> import numpy as np
    >>> stack = np.arange(5 * 2 * 2, dtype=np.uint16).reshape(5, 2, 2)
    >>> temporal_median(stack)
    array([[ 8.,  9.],
           [10., 11.]], dtype=float32)
    """
    cluster = is_distributed(scheduler)
    stack, pixel_mask, sigma_clip = _prepare(stack, mask, sigma_clip)
    return _reduce(stack, [50.0], pixel_mask, sigma_clip, progress, cluster=cluster)[0]


def temporal_percentile(
    stack: Any,
    q: float | Sequence[float],
    *,
    mask: Any = None,
    sigma_clip: float | None = None,
    progress: Progress | None = None,
    scheduler: Any = None,
) -> Any:
    """Percentile(s) over time of every pixel.

    Parameters
    ----------
    stack : array, shape (T, Y, X)
        numpy, cupy or dask; any integer or float dtype. Not modified.
    q : float or sequence of float
        Percentile(s) in [0, 100], interpolated linearly between samples (numpy's
        default method).
    mask, sigma_clip, progress, scheduler
        As in :func:`temporal_median`.

    Returns
    -------
    array, shape (Y, X) or (len(q), Y, X)
        float32 (float64 for float64 or 32/64-bit integer input; float16 input is
        interpolated in float32), on the input's backend; lazy for dask input.

    Notes
    -----
    Equals ``numpy.percentile(stack, q, axis=0)`` without mask and clipping. Memory
    and NaN handling as in :func:`temporal_median`.

    Examples
    --------
    >>> import numpy as np
    >>> stack = np.arange(5, dtype=np.uint16).reshape(5, 1, 1) * np.ones((1, 2, 2), np.uint16)
    >>> temporal_percentile(stack, [0, 25, 100])[:, 0, 0]
    array([0., 1., 4.], dtype=float32)
    """
    qs, scalar = _check_q(q)
    cluster = is_distributed(scheduler)
    stack, pixel_mask, sigma_clip = _prepare(stack, mask, sigma_clip)
    res = _reduce(stack, qs, pixel_mask, sigma_clip, progress, cluster=cluster)
    return res[0] if scalar else res
