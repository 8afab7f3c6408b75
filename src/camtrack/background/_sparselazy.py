"""The sparse median of a dask stack in one pass over its frames.

Each kernel window is read chunk by chunk into one buffer (row bands of at most
:data:`WINDOW_BYTES`), whose median image goes through the numpy path's own function
(the bisection kernel for integers); while the window's frames are in memory they also
give their per-frame offsets against the image each frame will get if cleansing keeps
every image (its nearest window). Frames in no window (``split`` > ``window``) are read
once, after the image they need. So every frame is read once (a frame of two
overlapping windows is kept in the buffer, not read again; a frame chunk that two
windows share is kept too, see :data:`CARRY_BYTES`), where the window medians and the
offsets used to read the stack twice (the offsets a second time, when they were
computed). Offsets against an image that cleansing then drops are left to a lazy pass
over those frames only.

Everything runs in this process, on a local scheduler, into host buffers: stacks of
numpy chunks (:func:`one_pass`); the caller takes the temporal quantiles' tiles for
the rest (cupy chunks, a cluster).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from camtrack._outofcore import bands, fit, frame_blocks
from camtrack.background._common import n_workers, run_parallel, track
from camtrack.background._sparsecount import offset_plan, window_median

__all__ = ["CARRY_BYTES", "WINDOW_BYTES", "OffsetsOf", "bisect_medians", "one_pass", "read_pass"]

# Native bytes of one band (all frames of a kernel window, some rows) of a dask stack
# held for the window's median: the bisection kernel selects in the band itself (no
# working copy; floats' tiles copy a TILE_BYTES tile per thread), so the band, the
# chunks in flight and the images stay well under 300 MB; a 200-frame window of
# 512 x 512 uint16 (105 MB) is one band, read once. Frames read for their offsets only
# (``split`` > ``window``) go through the same buffer.
WINDOW_BYTES = 128 * 2**20
# Largest frame chunk (all its frames, whole) kept for the next read, which starts
# inside it: dask reads a chunk whole for any of its frames, so a window ending inside
# a chunk read it whole, and the next window read it again (a TIFF opened in 8 MB
# chunks, 16 frames of 512 x 512 uint16, under windows of 50 frames: 512 frames read
# for 400). Larger chunks (a whole-stack chunk) are read again instead.
CARRY_BYTES = 32 * 2**20


def one_pass(stack: Any) -> bool:
    """True when a dask stack takes :func:`read_pass`: numpy chunks."""
    return isinstance(getattr(stack, "_meta", None), np.ndarray)


def bisect_medians(frames: np.ndarray, out: np.ndarray) -> None:
    """``out[...] = median(frames, axis=0)`` by the bisection kernel, on row bands in
    threads (a few bands per thread, so a thread slowed by other work is balanced)."""
    ny = frames.shape[1]
    workers = n_workers()
    parts = frame_blocks(ny, 4 * workers if workers > 1 else 1)

    def work(rows: slice) -> None:
        window_median(frames[:, rows], out[rows])

    run_parallel(work, parts, workers=workers)


def read_pass(
    stack: Any,
    windows: list[slice],
    dtype: Any,
    nearest: np.ndarray,
    offsets_of: Any,
    median: Any,
    scheduler: Any,
    progress: Any,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, int]:
    """The median images of ``windows`` and, where ``offsets_of`` is given, the offsets
    of every frame against its ``nearest`` image, reading each frame once.

    Parameters
    ----------
    stack : dask array (T, Y, X)
        Numpy chunks (:func:`one_pass` is True).
    windows : list of slice
        The kernel windows, in order (starts and stops never decrease).
    dtype : numpy dtype
        The images' and offsets' dtype.
    nearest : numpy.ndarray of int, shape (T,)
        For each frame, the window whose image is its background if cleansing keeps
        all images.
    offsets_of : callable or None
        ``offsets_of(frames, idx, images)``: the offsets of ``frames`` (t, Y', X')
        against ``images[idx]`` (the region already applied where ``Y' * X'`` is the
        region's size, see below); None: no offsets.
    median : callable
        ``median(frames, out)``: ``out[...] = median(frames, axis=0)`` for numpy frames
        (T, Y', X'), returning the missing (non-finite) samples it left out.
    scheduler : str or None
        The dask scheduler name the caller chose (``"sync"`` stays synchronous).
    progress : callable or None
        tqdm-like; advanced per window.

    Returns
    -------
    series : numpy.ndarray (N, Y, X)
        One median image per window.
    offsets : numpy.ndarray (T,) or None
        Each frame's offset against ``series[nearest[t]]``.
    done : numpy.ndarray of bool (T,) or None
        Where ``offsets`` holds a value (every frame).
    n_missing : int
        The missing samples of all windows (``median``'s counts).
    """
    reader = _Reader(stack, windows, dtype, nearest, offsets_of, median, scheduler)
    for i in track(range(len(windows)), len(windows), progress):
        reader.window(i)
    return reader.series, reader.offsets, reader.done, reader.n_missing


class _Reader:
    """The state of :func:`read_pass`: the buffer, the images, the offsets so far.

    Whole frames are read chunk by chunk in ``stack``'s frame chunks, each chunk once
    where the reads follow each other: a read that ends inside a chunk reads it whole
    into a spare buffer (:data:`CARRY_BYTES`) and keeps it for the next read.

    Frame ``t`` gets its offset at the first window ``i >= nearest[t]`` that holds it
    (its ``home``: the image it needs is known by then, and the frame is in memory),
    or, in no such window, is read alone right after window ``nearest[t]``'s median.
    A window split into row bands (larger than the buffer) gathers the offset region
    of its home frames as its bands pass, when they fit in the buffer's budget too;
    otherwise those frames are read again as whole frames after the window.
    """

    def __init__(
        self,
        stack: Any,
        windows: list[slice],
        dtype: Any,
        nearest: np.ndarray,
        offsets_of: Any,
        median: Any,
        scheduler: Any,
    ) -> None:
        n_frames, ny, nx = (int(s) for s in stack.shape)
        self.stack = stack
        self.windows = windows
        self.nearest = nearest
        self.offsets_of = offsets_of
        self.median = median
        self.n_missing = 0
        # a local scheduler that runs in this process (the stores write into our buffer)
        self.local = "sync" if scheduler in ("sync", "synchronous", "single-threaded") else "threads"  # fmt: skip
        self.series = np.empty((len(windows), ny, nx), dtype=dtype)
        kernel = max(w.stop - w.start for w in windows)
        itemsize = np.dtype(stack.dtype).itemsize
        self.rows = fit(WINDOW_BYTES, kernel * nx * itemsize, ny)
        self.buf = np.empty((kernel, self.rows, nx), dtype=stack.dtype)
        self.held: slice | None = None  # the frames (all rows) that ``buf`` holds
        # the last frame chunk read whole: (first frame, end frame, its frames)
        self.carry: tuple[int, int, np.ndarray] | None = None
        chunks = stack.chunks[0]
        self.edges = np.concatenate([[0], np.cumsum(chunks)]).astype(np.int64)
        most = max(chunks, default=0)
        fits = 0 < most * ny * nx * itemsize <= CARRY_BYTES
        self.spare = np.empty((most, ny, nx), dtype=stack.dtype) if fits else None
        self.offsets = self.done = None
        if offsets_of is None:
            return
        self.offsets = np.empty(n_frames, dtype=dtype)
        self.done = np.zeros(n_frames, dtype=bool)
        starts = np.array([w.start for w in windows])
        stops = np.array([w.stop for w in windows])
        frames = np.arange(n_frames)
        first = np.searchsorted(stops, frames, side="right")  # first window holding t
        last = np.searchsorted(starts, frames, side="right") - 1  # last window holding t
        home = np.maximum(first, nearest)
        self.home = np.where(home <= last, home, -1)

    # ------------------------------------------------------------------ reading
    def _store(self, frames: slice, rows: slice, out: np.ndarray) -> None:
        """``out[...] = stack[frames, rows]``; whole frames through the carry."""
        if rows != slice(None):
            self._dask_store([(frames, rows, out)])
            return
        a, b = frames.start, frames.stop
        carry = self.carry
        if carry is not None and carry[0] <= a < carry[1]:
            k = min(b, carry[1]) - a
            out[:k] = carry[2][a - carry[0] : a - carry[0] + k]
            a, out = a + k, out[k:]
        if a >= b:
            return
        j = int(np.searchsorted(self.edges, b - 1, side="right")) - 1
        cs, ce = int(self.edges[j]), int(self.edges[j + 1])
        if ce == b or self.spare is None:  # ends on a chunk's end (or no carry)
            self._dask_store([(slice(a, b), rows, out)])
            return
        jobs = [(slice(a, cs), rows, out[: cs - a])] if a < cs else []
        whole = self.spare[: ce - cs]
        self._dask_store([*jobs, (slice(cs, ce), rows, whole)])  # one compute
        lo = max(a, cs)
        out[lo - a :] = whole[lo - cs : b - cs]
        self.carry = (cs, ce, whole)

    def _dask_store(self, jobs: list[tuple[slice, slice, np.ndarray]]) -> None:
        """``out[...] = stack[frames, rows]`` for every job, in one compute."""
        import dask
        import dask.array as da

        parts = [self.stack[frames, rows] for frames, rows, _ in jobs]
        stores = da.store(parts, [out for *_, out in jobs], lock=False, compute=False)
        if len(jobs) == 1:
            stores = (stores,)
        # with exactly no callbacks, never dask's global ones, as compute_isolated (whose
        # reasons hold here: self.local is a local scheduler), for several collections
        dask.compute(*stores, scheduler=self.local, callbacks=[])

    def _frames_buffer(self, n: int) -> np.ndarray:
        """Up to ``n`` whole frames in the buffer's memory (one frame at least)."""
        _, ny, nx = self.series.shape
        per = min(n, self.buf.size // (ny * nx))
        self.held = None
        if per == 0:  # a frame larger than the buffer: the frame alone
            return np.empty((1, ny, nx), dtype=self.buf.dtype)
        return self.buf.reshape(-1)[: per * ny * nx].reshape(per, ny, nx)

    # ------------------------------------------------------------------ one window
    def window(self, i: int) -> None:
        w = self.windows[i]
        ny = self.series.shape[1]
        mine = [] if self.offsets_of is None else _runs(np.flatnonzero(self.home[w] == i))
        if self.rows >= ny:
            frames = self._whole_window(w)
            self.n_missing += self.median(frames, self.series[i])
            for a, b in mine:
                self._offsets(slice(w.start + a, w.start + b), frames[a:b])
        else:
            self._banded_window(i, w, mine)
        if self.offsets_of is not None:
            alone = np.flatnonzero((self.home == -1) & (self.nearest == i) & ~self.done)
            self._read_alone(alone)

    def _whole_window(self, w: slice) -> np.ndarray:
        """The window's frames in the buffer; those of the previous window kept."""
        n = w.stop - w.start
        keep = 0
        if self.held is not None and self.held.start <= w.start < self.held.stop:
            keep = self.held.stop - w.start
            shift = w.start - self.held.start
            # forward, in pieces no longer than the shift: no piece overlaps its source
            for a in range(0, keep if shift else 0, max(shift, 1)):
                b = min(a + shift, keep)
                self.buf[a:b] = self.buf[a + shift : b + shift]
        frames = self.buf[:n]
        if keep < n:
            self._store(slice(w.start + keep, w.stop), slice(None), frames[keep:])
        self.held = w
        return frames

    def _banded_window(self, i: int, w: slice, mine: list[tuple[int, int]]) -> None:
        ny = self.series.shape[1]
        n = w.stop - w.start
        frames = self.buf[:n]
        self.held = None
        region = getattr(self.offsets_of, "region", None)
        n_home = sum(b - a for a, b in mine)
        gather = None
        if n_home and region is not None:
            n_region = int(region.sum())
            if n_home * n_region * self.buf.dtype.itemsize <= WINDOW_BYTES:
                gather = np.empty((n_home, n_region), dtype=self.buf.dtype)
        pos = np.concatenate([np.arange(a, b) for a, b in mine]) if mine else None
        col = 0
        for ys in bands(ny, self.rows):
            band = frames[:, : ys.stop - ys.start]
            self._store(w, ys, band)
            self.n_missing += self.median(band, self.series[i, ys])
            if gather is not None:
                inside = region[ys]
                k = int(inside.sum())
                row = 0
                for a, b in mine:  # the region's pixels only, frame run by frame run
                    gather[row : row + b - a, col : col + k] = band[a:b][:, inside]
                    row += b - a
                col += k
        if gather is not None:
            self._offsets_gathered(w.start + pos, gather)
        elif pos is not None:
            self._read_alone(w.start + pos)

    # ------------------------------------------------------------------ offsets
    def _offsets(self, where: slice, frames: np.ndarray) -> None:
        # one thread: the kernel waits on memory (two threads ran no faster, 2 cores)
        self.offsets[where] = self.offsets_of(frames, self.nearest[where], self.series)
        self.done[where] = True

    def _offsets_gathered(self, frames: np.ndarray, values: np.ndarray) -> None:
        """Offsets of ``frames`` from their region's values (n, region pixels)."""
        region = self.offsets_of.region
        used, local = np.unique(self.nearest[frames], return_inverse=True)
        images = self.series[used][:, region][:, None, :]
        self.offsets[frames] = self.offsets_of.flat(values[:, None, :], local.reshape(-1), images)
        self.done[frames] = True

    def _read_alone(self, frames: np.ndarray) -> None:
        """Offsets of ``frames`` (sorted) read as whole frames, a buffer at a time."""
        if frames.size == 0:
            return
        buf = self._frames_buffer(frames.size)
        for a, b in _runs(frames):
            for s in range(a, b, buf.shape[0]):
                e = min(b, s + buf.shape[0])
                part = buf[: e - s]
                self._store(slice(s, e), slice(None), part)
                self._offsets(slice(s, e), part)


class OffsetsOf:
    """``offsets_of`` for :func:`read_pass`: the offsets' block function
    ``block(frames, idx, images, region, dtype, plan)`` bound to its region, dtype and
    the region's plans (made once: a plan per block cost 1 ms, a third of a small
    block's offsets)."""

    def __init__(self, block: Any, region: np.ndarray, dtype: Any, stack: Any) -> None:
        self.block = block
        self.region = region
        self.dtype = dtype
        self.plan = offset_plan(stack, np.empty(0), region)
        self.whole = np.ones((1, int(region.sum())), dtype=bool)
        self.whole_plan = offset_plan(stack, np.empty(0), self.whole)

    def __call__(self, frames: np.ndarray, idx: np.ndarray, images: np.ndarray) -> Any:
        return self.block(frames, idx, images, self.region, self.dtype, self.plan)

    def flat(self, values: np.ndarray, idx: np.ndarray, images: np.ndarray) -> Any:
        """The same from the region's values: ``values`` (t, 1, P), ``images`` (n, 1, P);
        the same medians (of the same values, in the region's row-major order)."""
        return self.block(values, idx, images, self.whole, self.dtype, self.whole_plan)


def _runs(sorted_idx: np.ndarray) -> list[tuple[int, int]]:
    """Sorted indices as ``(start, stop)`` runs of consecutive values."""
    if sorted_idx.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(sorted_idx) != 1) + 1
    starts = sorted_idx[np.concatenate([[0], breaks])]
    stops = sorted_idx[np.concatenate([breaks - 1, [sorted_idx.size - 1]])] + 1
    return [(int(a), int(b)) for a, b in zip(starts, stops, strict=True)]
