"""Sparse median background: few median images, cleansed, plus per-frame offsets."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from camtrack import _backend
from camtrack._outofcore import TILE_BYTES, fit, frame_blocks, work_dtype
from camtrack._parallel import compute, is_distributed, resolve
from camtrack._validation import (
    check_integer,
    check_positive,
    check_range,
    check_stack,
    renamed_keywords,
)
from camtrack.background._common import (
    Progress,
    n_workers,
    run_parallel,
    track,
)
from camtrack.background._sparseclean import cleanse_counts, on_grid
from camtrack.background._sparsecount import offset_plan, offsets_counted, use_bisection
from camtrack.background._sparselazy import (
    OffsetsOf,
    bisect_medians,
    one_pass,
    read_pass,
)
from camtrack.background._temporal import _reduce

__all__ = ["SparseMedianResult", "sparse_median"]

# Default width in pixels of the border band whose median gives the per-frame offset
# (objects of interest usually sit away from the border; dcnum uses the channel walls).
_OFFSET_BAND = 20
# Cleansing: a pixel of a median image deviates when it differs from the reference by
# more than this many robust sigmas (automatic threshold) ...
_AUTO_SIGMAS = 5.0
# ... and an image holds an object when its count of deviating pixels exceeds the
# typical count by more than 5 Poisson sigmas plus this many pixels.
_MIN_OBJECT_PX = 4


@dataclass(frozen=True)
class SparseMedianResult:
    """Result of :func:`sparse_median`.

    Attributes
    ----------
    images : array, shape (N, Y, X)
        The kept median images (after cleansing), float32 (float64 for float64 or
        32/64-bit integer input), on the input's array module (computed also for dask
        input: cleansing needs their values).
    frame_index : numpy.ndarray of int, shape (T,)
        For each frame, the index into ``images`` of its background.
    offsets : array of float, shape (T,), or None
        Per-frame offset (median of ``frame - background`` in the offset region), to
        add to the background; lazy for dask input; None without offset correction.
    centers : numpy.ndarray of float, shape (N,)
        Centre frame (mean frame index) of each kept image's kernel.
    dropped : numpy.ndarray of float
        Centres of the images removed by cleansing.
    n_missing : int
        Non-finite samples (NaN or inf pixels of the frames in the median kernels)
        left out as missing data; a frame in two overlapping kernels counts in each.
        0 for integer input.
    """

    images: Any
    frame_index: np.ndarray
    offsets: Any
    centers: np.ndarray
    dropped: np.ndarray
    n_missing: int = 0
    _lazy: bool = field(default=False, repr=False)

    def expand(self, *, offsets: bool = True) -> Any:
        """The per-frame background stack (T, Y, X): ``images[frame_index] + offsets``.

        Lazy (dask, chunked by frames) when the input was dask; otherwise an array of
        the input's module holding T frames.

        Parameters
        ----------
        offsets : bool
            Add the per-frame offsets (when they were computed).
        """
        add = self.offsets if offsets else None
        if not self._lazy:
            xp, _ = _backend.namespace(self.images)
            out = self.images[xp.asarray(self.frame_index)]
            if add is not None:
                out = out + add.astype(out.dtype)[:, None, None]
            return out
        import dask.array as da

        _, ny, nx = self.images.shape
        per = fit(TILE_BYTES, ny * nx * self.images.dtype.itemsize, len(self.frame_index))
        idx = da.from_array(self.frame_index, chunks=per)
        imgs = da.from_array(self.images, chunks=self.images.shape)
        args: list[Any] = [idx, "t", imgs, "nyx"]
        if add is not None:
            args += [da.asarray(add).rechunk(idx.chunks), "t"]
        return da.blockwise(
            _expand_block,
            "tyx",
            *args,
            concatenate=True,
            dtype=self.images.dtype,
            meta=_backend.dask_meta(imgs, self.images.dtype, 3),
            adjust_chunks={"y": (ny,), "x": (nx,)},
        )

    def to_layers(self, stack: Any, name: str = "stack") -> list[tuple[Any, dict, str]]:
        """napari layer tuples ``(data, kwargs, "image")``: ``<name> background`` (the
        per-frame background, :meth:`expand` with the offsets), ``<name> -
        background`` (signed float) and ``<name> sparse background images`` (the few
        median images, hidden); gray, lazy for dask. ``stack`` is the one this result
        was computed from. No napari import.
        """
        from camtrack._layerdata import background_layers

        return background_layers(name, stack, self.expand(), images=self.images)


def _expand_block(idx: Any, images: Any, offsets: Any = None) -> Any:
    xp, _ = _backend.namespace(images)
    out = images[xp.asarray(idx)]
    if offsets is not None:
        out = out + offsets.astype(out.dtype)[:, None, None]
    return out


def _split_frames(split: Any, fs_hz: Any, split_time: Any, kernel: int) -> int:
    if split is not None and fs_hz is not None:
        raise ValueError(
            f"Pass either `split` (frames) or `fs_hz` (with `split_time`), not both; "
            f"got split={split!r} and fs_hz={fs_hz!r}."
        )
    if split is not None:
        return check_integer(split, "split", minimum=1)
    if fs_hz is not None:
        fr = check_positive(fs_hz, "fs_hz")
        st = check_positive(split_time, "split_time")
        return max(1, round(st * fr))
    return kernel


def _kernel_windows(n_frames: int, kernel: int, split: int) -> list[slice]:
    """One kernel window per split segment, centred on it, shifted inside the stack."""
    windows = []
    for seg in range(0, n_frames, split):
        centre = (seg + min(seg + split, n_frames)) // 2
        start = min(max(centre - kernel // 2, 0), n_frames - kernel)
        windows.append(slice(start, start + kernel))
    return windows


def _offset_mask(region: Any, shape: tuple[int, int]) -> np.ndarray:
    ny, nx = shape
    mask = np.zeros(shape, dtype=bool)
    if region is None:
        b = _OFFSET_BAND
        mask[:b] = mask[-b:] = True
        mask[:, :b] = mask[:, -b:] = True
        return mask
    if isinstance(region, tuple) and all(isinstance(s, slice) for s in region):
        if len(region) != 2:
            raise ValueError(
                "`offset_region` as slices must be a pair (rows, cols), e.g. "
                f"(slice(0, 20), slice(None)); got {len(region)} slices."
            )
        mask[region] = True
    else:
        arr = _backend.to_host(region)
        if arr.dtype != np.bool_ or arr.shape != shape:
            raise ValueError(
                "`offset_region` must be None (a 20-pixel border band), a pair of slices "
                f"(rows, cols) or a boolean image of shape {shape}; got "
                f"{type(region).__name__} {getattr(arr, 'dtype', '')} {arr.shape}."
            )
        mask = arr.copy()
    if not mask.any():
        raise ValueError(f"`offset_region` selects no pixel of the {ny} x {nx} frame.")
    return mask


def _auto_threshold(mad: float) -> float:
    """The automatic cleansing threshold from the deviations' median absolute value."""
    sigma = 1.4826 * mad
    return _AUTO_SIGMAS * sigma


def _cleanse(images: np.ndarray, thresh: float, frac: float) -> np.ndarray:
    """Boolean keep-flags for the median images (host numpy in, host numpy out).

    Pixels that are NaN in any image (no finite sample in its kernel) are left out of
    the comparison: the images are compared on the pixels they all have. Images on a
    fine dyadic grid (those of integer stacks: half-integers) are compared in integers
    by counting (:func:`cleanse_counts`), with the same counts.
    """
    n = images.shape[0]
    max_drop = min(math.floor((1.0 - frac) * n + 1e-9), n - 1)
    if max_drop <= 0 or n < 3:
        return np.ones(n, dtype=bool)
    images = images.reshape(n, -1)
    grid = on_grid(images)
    if grid is not None:
        counts = cleanse_counts(grid[0], grid[1], thresh, _auto_threshold)
    else:
        counts = _cleanse_counts_float(images.astype(np.float64), thresh)
        if counts is None:
            return np.ones(n, dtype=bool)
    typical = float(np.median(counts))
    flagged = counts > typical + 5.0 * math.sqrt(typical) + _MIN_OBJECT_PX
    keep = np.ones(n, dtype=bool)
    if flagged.any():
        worst = np.argsort(-counts, kind="stable")
        worst = worst[flagged[worst]][:max_drop]
        keep[worst] = False
    return keep


def _cleanse_counts_float(images: np.ndarray, thresh: float) -> np.ndarray | None:
    """Deviating pixels per image (n, P) in floats; None when no pixel is shared."""
    shared = np.isfinite(images).all(axis=0)
    if not shared.all():
        images = images[:, shared]
    if images.shape[1] == 0:
        return None
    ref = np.median(images, axis=0)
    dev = images - ref
    # Each image's own level is removed: global brightness changes are the offsets'
    # job, objects are local.
    dev -= np.median(dev, axis=1)[:, None]
    if thresh <= 0:
        thresh = _auto_threshold(float(np.median(np.abs(dev))))
    return (np.abs(dev) > thresh).sum(axis=1)


def _nearest(frames: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Index of the nearest centre for each frame (ties go to the earlier image)."""
    pos = np.searchsorted(centers, frames, side="left")
    right = np.clip(pos, 0, centers.size - 1)
    left = np.clip(pos - 1, 0, centers.size - 1)
    take_left = np.abs(frames - centers[left]) <= np.abs(centers[right] - frames)
    return np.where(take_left, left, right).astype(np.intp)


def _offsets_block(
    frames: Any, idx: Any, images: Any, region: Any, out_dtype: Any = np.float32, plan: Any = None
) -> Any:
    """Median over ``region`` of frame - background, per frame of the block.

    Non-finite differences (a NaN pixel of the frame or of its background) are left
    out; a frame with no finite one gets NaN. Frames without any run the plain median.
    Integer frames with half-integer images (numpy, numba) are counted instead, with
    the same values (:func:`offsets_counted`); ``plan``: the region's
    :func:`offset_plan`, for a caller with many small blocks.
    """
    xp, _ = _backend.namespace(frames)
    if xp is np:
        plan = offset_plan(frames, images, region) if plan is None else plan
        counted = None if plan is None else offsets_counted(frames, idx, images, plan, out_dtype)
        if counted is not None:
            return counted
    reg = xp.asarray(region)
    # The region of each image first, then one row per frame: gathering whole images
    # per frame (images[idx]) copied 4 bytes per pixel of every frame, a third of the
    # block's time.
    vals = frames[:, reg].astype(out_dtype) - images[:, reg][xp.asarray(idx)]
    with np.errstate(invalid="ignore"):  # inf - inf: missing either way
        finite = xp.isfinite(vals)
    holed = ~finite.all(axis=1)
    if not bool(holed.any()):
        return xp.median(vals, axis=1).astype(out_dtype)
    out = xp.median(vals, axis=1)
    out[holed] = _finite_median(xp, vals[holed], finite[holed])
    return out.astype(out_dtype)


def _finite_median(xp: Any, vals: Any, finite: Any) -> Any:
    """Per-row median of the finite entries (NaN for a row with none), without the
    nan-functions' warnings: non-finite entries become +inf and sort last."""
    v = xp.sort(xp.where(finite, vals, xp.inf), axis=1)
    k = finite.sum(axis=1)
    lo = xp.take_along_axis(v, xp.maximum((k - 1) // 2, 0)[:, None], axis=1)[:, 0]
    hi = xp.take_along_axis(v, xp.maximum(k // 2, 0)[:, None], axis=1)[:, 0]
    with np.errstate(invalid="ignore"):  # inf + inf for empty rows, replaced below
        med = (lo.astype(xp.float64) + hi.astype(xp.float64)) / 2.0
    return xp.where(k > 0, med, xp.nan)


@renamed_keywords(kernel_size="window", frame_rate="fs_hz")
def sparse_median(
    stack: Any,
    *,
    window: int = 200,
    split: int | None = None,
    fs_hz: float | None = None,
    split_time: float = 1.0,
    thresh_cleansing: float = 0.0,
    frac_cleansing: float = 0.8,
    offset_correction: bool = True,
    offset_region: Any = None,
    progress: Progress | None = None,
    scheduler: Any = None,
) -> SparseMedianResult:
    """Sparse median background: a median image every ``split`` frames, cleansed.

    Parameters
    ----------
    stack : array, shape (T, Y, X)
        numpy, cupy or dask; any integer or float dtype (uint16 and wider are never
        narrowed). Not modified.
    window : int
        Frames in each median image; larger than T means all T frames.
    split : int, optional
        Frames between background images. Default: ``window`` (consecutive,
        non-overlapping kernels), or ``round(split_time * fs_hz)`` when
        ``fs_hz`` is given. Pass one of ``split`` and ``fs_hz``.
    fs_hz : float, optional
        Frame rate (frames per second); with ``split_time`` sets ``split`` in seconds.
    split_time : float
        Seconds between background images (used only with ``fs_hz``).
    thresh_cleansing : float
        Deviation (in the stack's intensity units, e.g. ADU) from the reference above
        which a pixel of a median image counts as object. 0 (default): automatic,
        5 robust sigmas (1.4826 x MAD) of the deviations of all median images.
    frac_cleansing : float
        Fraction of the median images that is always kept (as in dcnum): at most
        ``floor((1 - frac_cleansing) * N)`` images are dropped. 1 disables cleansing.
    offset_correction : bool
        Compute per-frame offsets (illumination flicker).
    offset_region : pair of slices or bool image (Y, X), optional
        Pixels whose median of ``frame - background`` is the frame's offset. Default:
        a 20-pixel band along the four image borders.
    progress : callable, optional
        tqdm-like ``progress(iterable, total=n)``, advanced per median image (dask
        input too: its images are computed here).
    scheduler : None, str or distributed.Client
        Where the median images of dask input are computed: a local dask scheduler
        name, a ``dask.distributed`` address or ``Client``; None: the active client,
        else ``DASK_SCHEDULER_ADDRESS``, else local threads. On a cluster each image's
        frames are rechunked to all-frames tiles by a p2p shuffle over the workers
        (see :func:`temporal_median`); the offsets stay lazy.

    Returns
    -------
    SparseMedianResult
        ``images``, ``frame_index``, ``offsets``, ``centers``, ``dropped``,
        ``n_missing``; call ``expand()`` for the (T, Y, X) background stack.

    Notes
    -----
    Segments of ``split`` frames start at frames 0, split, 2 split, ...; each gets the
    median (over time, per pixel) of the ``window`` frames centred on the
    segment's centre, shifted to stay inside the stack.

    Cleansing (needs at least 3 images): the reference is the per-pixel median of all
    median images; each image's deviation from it has its own median level removed
    (global brightness is the offsets' job). A pixel deviates when its absolute
    deviation exceeds ``thresh_cleansing`` (or the automatic threshold). An image is
    taken to contain an object, and dropped, when its count of deviating pixels
    exceeds the typical (median) count ``c`` by more than ``5 sqrt(c) + 4`` pixels;
    when more images qualify than ``frac_cleansing`` allows, the worst (most
    deviating pixels) are dropped. Unlike dcnum, ``thresh_cleansing=0`` is an
    automatic noise threshold rather than "drop a fixed fraction".

    Every frame then gets the kept image with the nearest centre (ties: the earlier).
    With ``offset_correction`` the offset of frame t is
    ``median((frame_t - background_t)[offset_region])``, so
    ``background_t + offset_t`` follows frame-to-frame flicker.

    Non-finite pixels (NaN, inf: dead or masked pixels) are missing data: left out of
    the median images (a pixel with no finite sample in a kernel stays NaN in that
    image), of the cleansing comparison and of the offsets' medians; ``n_missing``
    counts them. A NaN pixel therefore costs its own sample only.

    For dask input the median images are computed here. Stacks of numpy chunks (in
    this process) are read once, window by window, chunk by chunk into one buffer (row
    bands of at most 128 MB) that goes through the same kernels as numpy input (equal
    images); the frames in memory give their offsets too (equal values), and frames in
    no window are read once for theirs. Only frames whose image cleansing dropped are
    read again, lazily. Cupy chunks and clusters go through the temporal quantiles'
    all-frames tiles, and their offsets read the stack again, lazily. ``offsets`` is a
    dask array either way, and ``expand()`` is lazy.

    Examples
    --------
    >>> import numpy as np
    >>> stack = np.full((40, 32, 32), 100, dtype=np.uint16)
    >>> res = sparse_median(stack, window=10)
    >>> res.images.shape, res.frame_index[[0, 15, 39]].tolist(), res.expand().shape
    ((4, 32, 32), [0, 1, 3], (40, 32, 32))
    """
    check_stack(stack)
    n_frames, ny, nx = (int(s) for s in stack.shape)
    kernel = min(check_integer(window, "window", minimum=1), n_frames)
    split = _split_frames(split, fs_hz, split_time, kernel)
    thresh = check_positive(thresh_cleansing, "thresh_cleansing", allow_zero=True)
    frac = check_range(frac_cleansing, "frac_cleansing", 0.0, 1.0)
    region = _offset_mask(offset_region, (ny, nx)) if offset_correction else None
    dtype = work_dtype(stack.dtype)
    is_distributed(scheduler)  # checks it before any work
    lazy = _backend.is_dask(stack)

    windows = _kernel_windows(n_frames, kernel, split)
    centres_all = np.array([(w.start + w.stop - 1) / 2.0 for w in windows])
    frames = np.arange(n_frames, dtype=np.float64)
    early = None  # dask: offsets found in the medians' pass, and their image
    if lazy:
        with resolve(scheduler, stack) as where:
            if not is_distributed(where) and _one_pass(stack):
                nearest = _nearest(frames, centres_all)
                of = None if region is None else OffsetsOf(_offsets_block, region, dtype, stack)
                series, values, done, n_missing = read_pass(stack, windows, dtype, nearest, of, _window_median, where, progress)  # fmt: skip
                early = None if values is None else (values, done, nearest)
            else:
                series, n_missing = _lazy_medians(stack, windows, dtype, where, progress)
    else:
        xp, _ = _backend.namespace(stack)
        series = xp.empty((len(windows), ny, nx), dtype=dtype)
        n_missing = 0
        for i in track(range(len(windows)), len(windows), progress):
            n_missing += _window_median(stack[windows[i]], series[i])

    keep = _cleanse(_backend.to_host(series), thresh, frac)
    xp, _ = _backend.namespace(series)
    kept = np.flatnonzero(keep)
    images = series[xp.asarray(kept)]
    centers = centres_all[keep]
    frame_index = _nearest(frames, centers)

    offsets = None
    if region is not None:
        if early is not None:  # those whose image cleansing kept
            values, done, nearest = early
            early = (values, done & (nearest == kept[frame_index]))
        offsets = _offsets(stack, frame_index, images, region, dtype, early)
    return SparseMedianResult(
        images=images,
        frame_index=frame_index,
        offsets=offsets,
        centers=centers,
        dropped=centres_all[~keep],
        n_missing=n_missing,
        _lazy=lazy,
    )


def _window_median(frames: Any, out: Any) -> int:
    """``out[...] = median(frames, axis=0)`` for one kernel window (or a row band of
    it), numpy or cupy; returns the missing samples left out. Integers go through the
    bisection kernel (no missing samples), the rest through the temporal quantiles."""
    if use_bisection(frames):
        bisect_medians(frames, out)
        return 0
    xp, _ = _backend.namespace(frames)
    med, missing = _reduce(frames, [50.0], None, None, None, skip_nan=True)
    out[...] = med
    return int(missing.sum(dtype=xp.int64))


def _one_pass(stack: Any) -> bool:
    """True when a dask stack takes :func:`read_pass` (a name of this module, so that a
    benchmark can switch it off)."""
    return one_pass(stack)


def _lazy_medians(
    stack: Any, windows: list[slice], dtype: Any, where: Any, progress: Any
) -> tuple[Any, int]:
    """The median images of a dask stack's kernel windows and their missing samples,
    through the temporal quantiles' tiles (cupy chunks, a cluster).

    One kernel window at a time (each uses every core inside): several windows in
    flight would hold several kernels of frames at once.
    """
    cluster = is_distributed(where)
    planes = []
    for w in track(windows, len(windows), progress):
        lazy_plane = _reduce(stack[w], [50.0], None, None, None, skip_nan=True, cluster=cluster)  # fmt: skip
        planes.append(compute(lazy_plane, scheduler=where))
    xp, _ = _backend.namespace(planes[0])
    series = xp.stack([p[0] for p in planes])
    n_missing = sum(int(p[1].sum(dtype=xp.int64)) for p in planes)
    return series, n_missing


def _offsets(
    stack: Any,
    frame_index: np.ndarray,
    images: Any,
    region: np.ndarray,
    dtype: Any,
    early: tuple[np.ndarray, np.ndarray] | None = None,
):
    n_frames, ny, nx = (int(s) for s in stack.shape)
    if _backend.is_dask(stack):
        return _lazy_offsets(stack, frame_index, images, region, dtype, early)
    xp, _ = _backend.namespace(stack)
    out = xp.empty(n_frames, dtype=dtype)
    per = fit(TILE_BYTES, ny * nx * dtype.itemsize, n_frames)
    # blocks whose float copy (the float path) stays within a tile, and a few per
    # thread to balance them
    workers = n_workers() if xp is np else 1
    blocks = frame_blocks(n_frames, max(-(-n_frames // per), 4 * workers))

    def work(b: slice) -> None:
        out[b] = _offsets_block(stack[b], frame_index[b], images, region, dtype)

    run_parallel(work, blocks, workers=workers)
    return out


def _lazy_offsets(
    stack: Any,
    frame_index: np.ndarray,
    images: Any,
    region: np.ndarray,
    dtype: Any,
    early: tuple[np.ndarray, np.ndarray] | None,
) -> Any:
    """The offsets of a dask stack, lazy, chunked as its frames: the values found in
    the medians' pass (``early``: values and where they hold) for the frame chunks that
    have all of them, computed from the frames for the others (only those are read)."""
    import dask.array as da

    frames = stack.rechunk({1: -1, 2: -1})
    chunks = frames.chunks[0]
    edges = np.concatenate([[0], np.cumsum(chunks)]).astype(int)
    have = np.zeros(len(chunks), dtype=bool)
    if early is not None:
        have = np.logical_and.reduceat(early[1], edges[:-1])
    imgs = None
    pieces = []
    k = 0
    while k < len(chunks):  # runs of chunks alike
        j = k
        while j < len(chunks) and have[j] == have[k]:
            j += 1
        a, b = int(edges[k]), int(edges[j])
        if have[k]:
            pieces.append(da.from_array(early[0][a:b], chunks=(chunks[k:j],)))
        else:
            if imgs is None:
                imgs = da.from_array(images, chunks=images.shape)
            part = frames[a:b]
            idx = da.from_array(frame_index[a:b], chunks=(part.chunks[0],))
            pieces.append(
                da.blockwise(
                    _offsets_block,
                    "t",
                    part,
                    "tyx",
                    idx,
                    "t",
                    imgs,
                    "nyx",
                    concatenate=True,
                    region=region,
                    out_dtype=dtype,
                    dtype=dtype,
                    meta=_backend.dask_meta(stack, dtype, 1),
                )
            )
        k = j
    return pieces[0] if len(pieces) == 1 else da.concatenate(pieces)
