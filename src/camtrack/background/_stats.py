"""Frame aggregates over time (min, max, mean, std, percentile) with progress."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from camtrack import _backend
from camtrack._outofcore import TILE_BYTES, bands, fit, frame_blocks, work_dtype
from camtrack._parallel import compute, is_distributed, resolve
from camtrack._validation import check_choice, check_integer, check_stack
from camtrack.background._common import (
    Progress,
    track,
)
from camtrack.background._temporal import _check_q, _reduce

__all__ = ["STATS", "FrameStatsPartial", "frame_stats", "iter_frame_stats"]

STATS = ("min", "max", "mean", "std", "percentile")


@dataclass(frozen=True)
class FrameStatsPartial:
    """One step of :func:`iter_frame_stats`.

    Attributes
    ----------
    image : array, shape (Y, X)
        The statistic over frames ``[0, frames_done)`` (percentile: see ``exact``).
    frames_done : int
        Frames aggregated so far.
    n_frames : int
        Frames in the stack.
    exact : bool
        True when ``image`` is the exact statistic of the frames done; False for the
        intermediate percentile estimates.
    """

    image: Any
    frames_done: int
    n_frames: int
    exact: bool


def _check(stack: Any, stat: Any, q: Any) -> tuple[str, list[float] | None, bool]:
    check_stack(stack)
    stat = check_choice(stat, "stat", STATS)
    if stat == "percentile":
        if q is None:
            raise ValueError(
                "`q` is required with stat='percentile'; pass a percentile in [0, 100], e.g. q=10."
            )
        qs, scalar = _check_q(q)
        return stat, qs, scalar
    if q is not None:
        raise ValueError(f"`q` is used only with stat='percentile'; got q={q!r} for {stat!r}.")
    return stat, None, True


class _Accumulator:
    """Running min/max/mean/std over frame blocks, in float64 for the moments.

    The moments are summed relative to the first frame (a per-pixel shift), so the
    variance does not cancel catastrophically when the mean is large against the
    spread (camera offsets of hundreds of ADU, noise of a few).
    """

    def __init__(self, stat: str, dtype: Any) -> None:
        self.stat = stat
        self.dtype = dtype
        self.n = 0
        self.value: Any = None
        self.shift: Any = None
        self.s1: Any = None
        self.s2: Any = None

    def add(self, block: Any) -> None:
        xp, _ = _backend.namespace(block)
        if self.stat in ("min", "max"):
            red = block.min(axis=0) if self.stat == "min" else block.max(axis=0)
            if self.value is None:
                self.value = red
            else:
                op = xp.minimum if self.stat == "min" else xp.maximum
                self.value = op(self.value, red)
        else:
            if self.shift is None:
                self.shift = block[0].astype(xp.float64)
                self.s1 = xp.zeros_like(self.shift)
                self.s2 = xp.zeros_like(self.shift)
            d = block.astype(xp.float64) - self.shift
            self.s1 += d.sum(axis=0)
            if self.stat == "std":
                d *= d
                self.s2 += d.sum(axis=0)
        self.n += int(block.shape[0])

    def result(self) -> Any:
        if self.stat in ("min", "max"):
            return self.value.copy()
        xp, _ = _backend.namespace(self.s1)
        mean_d = self.s1 / self.n
        if self.stat == "mean":
            return (self.shift + mean_d).astype(self.dtype)
        var = xp.maximum(self.s2 / self.n - mean_d * mean_d, 0.0)
        return xp.sqrt(var).astype(self.dtype)


def _frames_per_block(stack: Any) -> int:
    """Frames whose float64 copy fits one tile's budget."""
    t, ny, nx = (int(s) for s in stack.shape)
    return fit(TILE_BYTES, ny * nx * 8, t)


def iter_frame_stats(
    stack: Any, stat: str, n_chunks: int = 10, *, q: Any = None, scheduler: Any = None
) -> Iterator[FrameStatsPartial]:
    """Yield the statistic over time after each of ``n_chunks`` frame chunks.

    For progress bars and an early preview: the frames are split into ``n_chunks``
    contiguous chunks (at most T) and, after each, the statistic of all frames so far
    is yielded. The last item is the full result.

    Parameters
    ----------
    stack : array, shape (T, Y, X)
        numpy, cupy or dask; any integer or float dtype. Not modified.
    stat : {"min", "max", "mean", "std", "percentile"}
        The statistic over axis 0 (time).
    n_chunks : int
        Number of partial results (>= 1).
    q : float or sequence of float, optional
        Percentile(s) in [0, 100]; required for ``stat="percentile"`` only.
    scheduler : None, str or distributed.Client
        Where the chunks of dask input are computed: a local dask scheduler name, a
        ``dask.distributed`` address or ``Client``; None: the active client, else
        ``DASK_SCHEDULER_ADDRESS``, else local threads (one connection for all items).

    Yields
    ------
    FrameStatsPartial
        ``image`` (Y, X) (or (len(q), Y, X)), ``frames_done``, ``n_frames``, ``exact``.

    Notes
    -----
    min, max, mean and std partials are exact for the frames done (one pass; the
    moments accumulate in float64; std is the population std, ddof=0). Percentile
    partials are estimates: the frame-weighted mean of per-chunk percentiles
    (``exact=False``); the last item is the exact percentile of all frames, which
    costs one more pass over the stack. Items are computed arrays (also for dask
    input, one chunk at a time in bounded memory), on the input's array module.
    min and max keep the input dtype; the others are float32 (float64 for float64
    or 32/64-bit integer input).

    Examples
    --------
    >>> import numpy as np
    >>> stack = np.arange(4, dtype=np.uint16)[:, None, None] * np.ones((1, 2, 2), np.uint16)
    >>> [(p.frames_done, float(p.image[0, 0])) for p in iter_frame_stats(stack, "max", 2)]
    [(2, 1.0), (4, 3.0)]
    """
    stat, qs, scalar = _check(stack, stat, q)
    n_chunks = check_integer(n_chunks, "n_chunks", minimum=1)
    is_distributed(scheduler)  # checks it now, not at the first item
    return _iterate_on(stack, stat, qs, scalar, frame_blocks(int(stack.shape[0]), n_chunks), scheduler)  # fmt: skip


def _iterate_on(
    stack: Any,
    stat: str,
    qs: list[float] | None,
    scalar: bool,
    chunks: list[slice],
    scheduler: Any,
) -> Iterator[FrameStatsPartial]:
    with resolve(scheduler, stack) as where:
        yield from _iterate(stack, stat, qs, scalar, chunks, where)


def _iterate(
    stack: Any,
    stat: str,
    qs: list[float] | None,
    scalar: bool,
    chunks: list[slice],
    scheduler: Any = None,
) -> Iterator[FrameStatsPartial]:
    n_frames = int(stack.shape[0])
    cluster = _backend.is_dask(stack) and is_distributed(scheduler)

    def _compute(x: Any) -> Any:
        return compute(x, scheduler=scheduler) if _backend.is_dask(x) else x

    dtype = work_dtype(stack.dtype)
    if stat == "percentile":
        assert qs is not None
        acc: Any = None
        for i, ch in enumerate(chunks):
            done = ch.stop
            if i == len(chunks) - 1:
                image = _compute(_reduce(stack, qs, None, None, None, cluster=cluster))
                yield FrameStatsPartial(image[0] if scalar else image, done, n_frames, True)
                return
            part = _compute(_reduce(stack[ch], qs, None, None, None, cluster=cluster))
            part = part.astype(np.float64)
            w = (ch.stop - ch.start) / done
            acc = part if acc is None else acc + (part - acc) * w
            image = acc.astype(dtype)
            # The first chunk's percentile is exact for the frames done; later ones mix.
            yield FrameStatsPartial(image[0] if scalar else image, done, n_frames, i == 0)
        return

    acc = _Accumulator(stat, dtype)
    per = _frames_per_block(stack)
    for ch in chunks:
        for sub in bands(ch.stop - ch.start, per):
            block = stack[ch.start + sub.start : ch.start + sub.stop]
            acc.add(_compute(block))
        yield FrameStatsPartial(acc.result(), ch.stop, n_frames, True)


# float64 bytes of the frames converted at a time inside a chunk (lazy mean and std).
_SLAB_BYTES = 4 * 2**20


def _moment_block(block: Any, shift: Any, k: int) -> Any:
    """Sums of ``d = block - shift`` (and of ``d**2`` when k == 2) over the chunk's frames.

    Converted to float64 a few frames at a time, so a chunk costs a few MB beyond
    itself. Returns (1, k, rows, cols).
    """
    xp, _ = _backend.namespace(block)
    t, ny, nx = block.shape
    out = xp.zeros((1, k, ny, nx), dtype=xp.float64)
    per = max(1, _SLAB_BYTES // max(1, ny * nx * 8))
    for a in range(0, t, per):
        d = block[a : a + per].astype(xp.float64)
        d -= shift
        out[0, 0] += d.sum(axis=0)
        if k == 2:
            d *= d
            out[0, 1] += d.sum(axis=0)
    return out


def _lazy_moments(stack: Any, stat: str, dtype: Any) -> Any:
    """Lazy mean or std: per-chunk shifted sums in float64, summed in a tree.

    The shift (the first frame) keeps the variance from cancelling catastrophically
    when the mean is large against the spread, as in :class:`_Accumulator`.
    """
    import dask.array as da

    k = 2 if stat == "std" else 1
    shift = stack[:1].astype(np.float64)
    parts = da.map_blocks(
        _moment_block,
        stack,
        shift,
        k=k,
        new_axis=1,
        chunks=((1,) * len(stack.chunks[0]), (k,), *stack.chunks[1:]),
        dtype=np.float64,
        meta=_backend.dask_meta(stack, np.float64, 4),
    )
    sums = parts.sum(axis=0, split_every=4)
    n = int(stack.shape[0])
    mean_d = sums[0] / n
    if stat == "mean":
        return (shift[0] + mean_d).astype(dtype)
    var = da.maximum(sums[1] / n - mean_d * mean_d, 0.0)
    return da.sqrt(var).astype(dtype)


def _lazy_stat(
    stack: Any, stat: str, qs: list[float] | None, scalar: bool, cluster: bool = False
) -> Any:
    dtype = work_dtype(stack.dtype)
    if stat == "min":
        return stack.min(axis=0)
    if stat == "max":
        return stack.max(axis=0)
    if stat in ("mean", "std"):
        return _lazy_moments(stack, stat, dtype)
    assert qs is not None
    res = _reduce(stack, qs, None, None, None, cluster=cluster)
    return res[0] if scalar else res


def frame_stats(
    stack: Any,
    stat: str,
    *,
    q: Any = None,
    progress: Progress | None = None,
    scheduler: Any = None,
) -> Any:
    """A statistic over time of every pixel: min, max, mean, std or percentile.

    Parameters
    ----------
    stack : array, shape (T, Y, X)
        numpy, cupy or dask; any integer or float dtype. Not modified.
    stat : {"min", "max", "mean", "std", "percentile"}
        The statistic over axis 0 (time). std is the population std (ddof=0).
    q : float or sequence of float, optional
        Percentile(s) in [0, 100]; required for ``stat="percentile"`` only.
    progress : callable, optional
        tqdm-like ``progress(iterable, total=n)``: advanced per block of frames
        (per spatial tile for percentiles). dask input returns a lazy result and does
        not call it; use :func:`iter_frame_stats` to compute dask input with progress.
    scheduler : None, str or distributed.Client
        Where dask input will be computed, which decides the layout of a percentile's
        graph (as in :func:`temporal_median`: a p2p rechunk of a frame-chunked stack on
        a cluster); the result stays lazy: compute it there.

    Returns
    -------
    array, shape (Y, X) (or (len(q), Y, X))
        On the input's backend, lazy for dask. min and max keep the input dtype; the
        others are float32 (float64 for float64 or 32/64-bit integer input).

    Notes
    -----
    One pass over the frames in blocks of at most 64 MB (float64); mean and std
    accumulate in float64. Percentiles use spatial tiles holding every frame, like
    :func:`temporal_percentile`; they equal ``numpy.percentile(stack, q, axis=0)``.

    Examples
    --------
    >>> import numpy as np
    >>> stack = np.arange(4, dtype=np.uint16)[:, None, None] * np.ones((1, 2, 2), np.uint16)
    >>> frame_stats(stack, "mean")
    array([[1.5, 1.5],
           [1.5, 1.5]], dtype=float32)
    """
    stat, qs, scalar = _check(stack, stat, q)
    cluster = is_distributed(scheduler)
    if _backend.is_dask(stack):
        return _lazy_stat(stack, stat, qs, scalar, cluster)
    if stat == "percentile":
        assert qs is not None
        res = _reduce(stack, qs, None, None, progress)
        return res[0] if scalar else res
    n_frames = int(stack.shape[0])
    chunks = frame_blocks(n_frames, -(-n_frames // _frames_per_block(stack)))
    image = None
    for part in track(_iterate(stack, stat, qs, scalar, chunks), len(chunks), progress):
        image = part.image
    return image
