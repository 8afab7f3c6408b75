"""Shared plumbing for the tracking engine: input checks, work dtype, FFT module."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import numpy as np
import scipy.fft

from camtrack import _backend
from camtrack._jit import LazyJit
from camtrack._validation import check_stack

__all__ = [
    "as_centres",
    "as_rois",
    "bad_rois",
    "border_mean",
    "cis",
    "computed",
    "fft_module",
    "irfft2",
    "prepare",
    "quiet",
    "rfft2",
    "shift_spectrum",
    "to_work",
    "windowed",
]


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence floating-point warnings locally (NaN/constant ROIs give NaN, not noise)."""
    with np.errstate(all="ignore"):
        yield


def fft_module(xp: ModuleType) -> ModuleType:
    """scipy.fft for numpy (much faster than numpy.fft on batches of small images)."""
    if xp is np:
        return scipy.fft
    import cupyx.scipy.fft  # pragma: no cover - GPU only

    return cupyx.scipy.fft  # pragma: no cover - GPU only


def cis(xp: ModuleType, phase: Any, dtype: Any) -> Any:
    """exp(i phase) from real cos and sin (a complex exponential costs ~15x more)."""
    out = xp.empty(phase.shape, dtype=dtype)
    out.real = xp.cos(phase)
    out.imag = xp.sin(phase)
    return out


_FFT_CHUNK_PIXELS = 2**18  # ROI pixels per FFT call: pocketfft's 2-D passes stay in cache

try:  # scipy's own pocketfft binding: it writes each chunk straight into the output
    from scipy.fft._pocketfft import pypocketfft as _pocketfft
except Exception:  # pragma: no cover - a scipy without it: chunks are copied
    _pocketfft = None


def rfft2(xp: ModuleType, a: Any) -> Any:
    """Real 2-D FFT over the last two axes of (N, S, S), in cache-sized chunks of ROIs.

    One call on a large batch is up to 1.5x slower per ROI than calls on chunks of
    about 256k pixels (the column pass of a large batch misses the cache).
    """
    fft = fft_module(xp)
    n, s, _ = a.shape
    step = max(1, _FFT_CHUNK_PIXELS // (s * s))
    if xp is not np or n <= step:
        return fft.rfft2(a, axes=(-2, -1))
    out = np.empty((n, s, s // 2 + 1), dtype=np.result_type(a.dtype, np.complex64))
    if _pocketfft is not None and a.dtype in (np.float32, np.float64):
        # The transform scipy.fft.rfft2 runs, with each chunk's result written in place
        # instead of allocated and copied (64 px: 9.0 -> 8.2 us per ROI).
        try:
            for i in range(0, n, step):
                _pocketfft.r2c(a[i : i + step], axes=(1, 2), forward=True, inorm=0, out=out[i : i + step], nthreads=1)  # fmt: skip
            return out
        except TypeError:  # pragma: no cover - another binding signature: the public call
            pass
    for i in range(0, n, step):
        out[i : i + step] = fft.rfft2(a[i : i + step], axes=(-2, -1))
    return out


def irfft2(xp: ModuleType, spec: Any, size: int) -> Any:
    """Inverse of :func:`rfft2` for (N, size, size // 2 + 1) spectra, chunked likewise."""
    fft = fft_module(xp)
    n = spec.shape[0]
    step = max(1, _FFT_CHUNK_PIXELS // (size * size))
    if xp is not np or n <= step:
        return fft.irfft2(spec, s=(size, size), axes=(-2, -1))
    out = np.empty((n, size, size), dtype=spec.real.dtype)
    for i in range(0, n, step):
        out[i : i + step] = fft.irfft2(spec[i : i + step], s=(size, size), axes=(-2, -1))
    return out


def as_rois(rois: Any, name: str = "rois", *, min_size: int = 8) -> Any:
    """Check (N, S, S) square ROIs of at least ``min_size`` pixels; return them unchanged."""
    if isinstance(rois, list | tuple):
        raise TypeError(
            f"`{name}` must be an array of shape (n_rois, size, size); got a "
            f"{type(rois).__name__}. Wrap it with numpy.asarray(...)."
        )
    shape = getattr(rois, "shape", None)
    if shape is not None and len(shape) == 2:
        raise ValueError(
            f"`{name}` must be 3-D (n_rois, size, size); got shape {tuple(shape)}. "
            f"For one ROI pass {name}[None]."
        )
    check_stack(rois, name)
    s = rois.shape
    if s[1] != s[2]:
        raise ValueError(
            f"`{name}` must hold square ROIs (n_rois, size, size); got shape {tuple(s)}. "
            "Crop them square, e.g. with camtrack.tracking.crop_rois."
        )
    if s[1] < min_size:
        raise ValueError(f"`{name}` ROIs must be at least {min_size} pixels wide; got shape {tuple(s)}.")  # fmt: skip
    return rois


def native(a: Any) -> Any:
    """``a`` in the machine's byte order (a big-endian numpy array, e.g. from a FITS
    file, converted; anything else unchanged). The compiled kernels take native
    numbers only: big-endian ROIs had stopped tracking with a numba typing error."""
    dt = getattr(a, "dtype", None)
    if isinstance(a, np.ndarray) and dt is not None and not dt.isnative:
        return a.astype(dt.newbyteorder("="))
    return a


def computed(a: Any) -> Any:
    """A dask array computed to numpy/cupy; anything else unchanged.

    The building blocks gather pixels by fancy indexing, which dask does not support
    in more than one dimension; their ROIs and results fit in memory, so they work
    on the computed ROIs (track_rois computes them batch by batch instead).
    """
    return a.compute() if _backend.is_dask(a) else a


def work_dtype(dtype: Any) -> np.dtype:
    """float64 for float64 input, float32 otherwise (uint16 camera data and float16 included)."""
    return np.dtype(np.float64) if np.dtype(dtype) == np.float64 else np.dtype(np.float32)


def to_work(rois: Any) -> Any:
    """The ROIs in the work dtype (a copy only when the dtype changes)."""
    return rois.astype(work_dtype(rois.dtype), copy=False)


def _extremes(xp: ModuleType, f: Any) -> tuple[Any, Any]:
    """(N,) bool bad ROIs (a non-finite pixel or no contrast at all), (N,) ROI maxima."""
    flat = f.reshape(f.shape[0], -1)
    with quiet():
        lo = flat.min(axis=1)
        hi = flat.max(axis=1)
        if f.dtype.kind in "biu":  # integers are always finite
            return ~(hi > lo), hi
        return ~(xp.isfinite(lo) & xp.isfinite(hi) & (hi > lo)), hi


def bad_rois(xp: ModuleType, f: Any) -> Any:
    """(N,) bool: ROIs with a non-finite pixel or no contrast at all."""
    return _extremes(xp, f)[0]


def prepare(xp: ModuleType, rois: Any, near: float | None = None) -> tuple[Any, ...]:
    """Background-free ROIs ``g`` in the work dtype, border means, bad rows, ROI maxima.

    Returns (g, bg, bad, top): ``g = rois - bg`` (N, S, S), a new array; bad ROIs (see
    :func:`bad_rois`) are all zero in ``g`` with ``bg`` 0 for float input; ``top`` (N,)
    the maxima in input units. Min and max run on the input itself (half the bytes of
    float32 for uint16) and are shared by the bad-ROI and clipping checks; the border
    mean of integer input is summed exactly.

    ``near`` (a tolerance, input units): also return (N,) the count of pixels at or
    above ``top - near`` (the "auto" clipping check's, see
    :func:`~camtrack.tracking._saturation.clipped_rows`), counted in the same pass
    for 8-32 bit integer input on numpy with numba; else None.
    """
    n = rois.shape[0]
    dt = work_dtype(rois.dtype)
    if xp is np and rois.dtype.kind in "iu" and rois.dtype.itemsize <= 4 and rois.size:
        kern = _prepare_kernel()
        if kern is not None:
            # One compiled pass per ROI over the input (extremes, exact border sum),
            # one more to subtract: bit for bit the array passes' result.
            g = np.empty(rois.shape, dtype=np.float32)
            bg = np.empty(n, dtype=np.float32)
            top = np.empty(n, dtype=rois.dtype)
            bad = np.empty(n, dtype=np.bool_)
            count = np.empty(n, dtype=np.int64)
            info = np.iinfo(rois.dtype)
            tol = -1.0 if near is None else float(near)
            kern(np.ascontiguousarray(rois), g, bg, top, bad, count, tol, info.min, info.max)  # fmt: skip
            return (g, bg, bad, top) if near is None else (g, bg, bad, top, count)
    bad, top = _extremes(xp, rois)
    src = rois
    with quiet():
        if rois.dtype.kind not in "biu" and bool(bad.any()):
            src = xp.where(bad[:, None, None], 0.0, rois).astype(rois.dtype)
        bg = border_mean(src).astype(dt)
        # astype + in-place subtract: two passes, but cheaper than one mixed-type ufunc.
        g = src.astype(dt, order="C", copy=True)
        flat = g.reshape(n, -1)
        flat -= bg[:, None]
    return (g, bg, bad, top) if near is None else (g, bg, bad, top, None)


def _prepare_loop(rois, g, bg, top, bad, count, tol, vmin, vmax):  # type: ignore[no-untyped-def]
    """:func:`prepare` of integer ROIs (compiled): extremes and the exact border sum of
    each ROI in one pass over the input, then ``g = float32(roi) - float32(bg)`` and
    (``tol`` >= 0) the count of pixels >= ``ceil(top - tol)`` (clipped to the dtype)."""
    n, s, _ = rois.shape
    edge = 4 * s - 4
    for i in range(n):
        roi = rois[i]
        lo = roi[0, 0]
        hi = roi[0, 0]
        for y in range(s):
            for x in range(s):
                v = roi[y, x]
                lo = min(lo, v)
                hi = max(hi, v)
        tot = 0
        for x in range(s):
            tot += np.int64(roi[0, x]) + np.int64(roi[s - 1, x])
        for y in range(1, s - 1):
            tot += np.int64(roi[y, 0]) + np.int64(roi[y, s - 1])
        b = np.float32(tot / edge)
        bg[i] = b
        top[i] = hi
        bad[i] = not (hi > lo)
        out = g[i]
        thr = min(max(math.ceil(np.float64(hi) - tol), vmin), vmax)
        c = 0
        for y in range(s):
            for x in range(s):
                v = roi[y, x]
                out[y, x] = np.float32(v) - b
                c += 1 if v >= thr else 0
        count[i] = c if tol >= 0.0 else -1


# The compiled :func:`_prepare_loop`, or None without a working numba (then the array
# passes run; tested equal).
_prepare_kernel = LazyJit(_prepare_loop, nogil=True, cache=True)


def windowed(xp: ModuleType, g: Any, wy: Any, wx: Any) -> Any:
    """``g * wy[:, :, None] * wx[:, None, :]``: ROIs (N, S, S) under separable windows.

    Compiled on numpy (one pass, the same products in the same order, so the same
    bits; 64 px: 1.8 -> 0.4 us per ROI), else two array passes.
    """
    kern = _window_kernel() if xp is np and g.dtype == wy.dtype == wx.dtype else None
    if kern is None:
        gw = g * wy[:, :, None]
        gw *= wx[:, None, :]
        return gw
    out = np.empty(g.shape, dtype=g.dtype)
    kern(np.ascontiguousarray(g), np.ascontiguousarray(wy), np.ascontiguousarray(wx), out)
    return out


def _window_loop(g, wy, wx, out):  # type: ignore[no-untyped-def]
    n, s, t = g.shape
    for i in range(n):
        for y in range(s):
            a = wy[i, y]
            for x in range(t):
                out[i, y, x] = g[i, y, x] * a * wx[i, x]


# The compiled :func:`_window_loop`, or None without a working numba.
_window_kernel = LazyJit(_window_loop, nogil=True, cache=True)


def shift_spectrum(xp: ModuleType, spec: Any, sx: Any, sy: Any, size: int) -> None:
    """Multiply ``rfft2`` half spectra (N, S, S//2+1) in place by the phase ramps of a
    shift (sx, sy) px (each (N,)): the images move by (+sx, +sy).

    Compiled on numpy for complex64 (one pass, the ramps by recurrence from one cos and
    sin per axis in float64), else two array passes with float32 phases; the two agree
    to float32 rounding.
    """
    kern = _shift_kernel() if xp is np and spec.dtype == np.complex64 else None
    if kern is not None:
        kern(spec, np.asarray(sx, dtype=np.float64), np.asarray(sy, dtype=np.float64), size)
        return
    dt = spec.real.dtype
    m = spec.shape[-1]
    kx = xp.arange(m, dtype=dt)
    ky = xp.arange(size, dtype=dt)
    ky = xp.where(ky >= (size + 1) // 2, ky - size, ky)
    om = 2.0 * math.pi / size
    spec *= cis(xp, -om * ky[None, :] * sy.astype(dt)[:, None], spec.dtype)[:, :, None]
    spec *= cis(xp, -om * kx[None, :] * sx.astype(dt)[:, None], spec.dtype)[:, None, :]


def _shift_loop(spec, sx, sy, size):  # type: ignore[no-untyped-def]
    n, s, m = spec.shape
    om = 2.0 * math.pi / size
    half = (s + 1) // 2
    exr = np.empty(m)
    exi = np.empty(m)
    eyr = np.empty(s)
    eyi = np.empty(s)
    for i in range(n):
        c1 = math.cos(om * sx[i])
        s1 = -math.sin(om * sx[i])
        cr, ci = 1.0, 0.0
        for k in range(m):
            exr[k] = cr
            exi[k] = ci
            cr, ci = cr * c1 - ci * s1, cr * s1 + ci * c1
        c1 = math.cos(om * sy[i])
        s1 = -math.sin(om * sy[i])
        cr, ci = 1.0, 0.0
        for k in range(half):
            eyr[k] = cr
            eyi[k] = ci
            cr, ci = cr * c1 - ci * s1, cr * s1 + ci * c1
        cr, ci = 1.0, 0.0
        for k in range(1, s - half + 1):
            cr, ci = cr * c1 + ci * s1, ci * c1 - cr * s1
            eyr[s - k] = cr
            eyi[s - k] = ci
        for y in range(s):
            ar = eyr[y]
            ai = eyi[y]
            row = spec[i, y]
            for k in range(m):
                pr = np.float32(ar * exr[k] - ai * exi[k])
                pi = np.float32(ar * exi[k] + ai * exr[k])
                z = row[k]
                row[k] = complex(z.real * pr - z.imag * pi, z.real * pi + z.imag * pr)


# The compiled :func:`_shift_loop`, or None without a working numba.
_shift_kernel = LazyJit(_shift_loop, nogil=True, cache=True)


def boxes(xp: ModuleType, a: Any, y0: Any, x0: Any, b: int, rows: Any = None) -> Any:
    """(N, b, b) copies of ``a[n, y0[n]:y0[n] + b, x0[n]:x0[n] + b]`` (boxes inside ``a``).

    numpy: one strided window per ROI (row copies; a per-element fancy index costs
    about 5 ns per pixel, 20x more). ``rows`` (N,): the boxes of ``a[rows]``, without
    copying those whole images first.
    """
    idx = xp.arange(a.shape[0]) if rows is None else rows
    if xp is np:
        view = np.lib.stride_tricks.sliding_window_view(a, (b, b), axis=(1, 2))
        return view[idx, y0, x0]
    span = xp.arange(b)
    iy = (y0[:, None] + span[None, :])[:, :, None]
    ix = (x0[:, None] + span[None, :])[:, None, :]
    return a[idx[:, None, None], iy, ix]


def border_mean(f: Any) -> Any:
    """(N,) mean of each ROI's one-pixel border (the local background).

    Floats narrower than float32 are summed in float32: a float16 sum of 188 pixels of
    ~1000 ADU overflows float16 (max 65504) to inf.
    """
    acc = np.float32 if f.dtype.kind == "f" and f.dtype.itemsize < 4 else None
    top = f[:, 0, :].sum(axis=1, dtype=acc) + f[:, -1, :].sum(axis=1, dtype=acc)
    side = f[:, 1:-1, 0].sum(axis=1, dtype=acc) + f[:, 1:-1, -1].sum(axis=1, dtype=acc)
    s = f.shape[-1]
    return (top + side) / (4 * s - 4)


def as_centres(xp: ModuleType, n: int, x: Any, y: Any, dtype: Any = np.float64) -> tuple[Any, Any]:
    """Broadcast ``x`` and ``y`` to (n,) arrays on the ROIs' backend."""
    out = []
    for v, name in ((x, "x"), (y, "y")):
        a = xp.asarray(_backend.to_host(v) if not _backend.is_cupy(v) else v, dtype=dtype)
        if a.ndim > 1 or (a.ndim == 1 and a.shape[0] not in (1, n)):
            raise ValueError(
                f"`{name}` must be a scalar or have one value per ROI ({n}); got shape "
                f"{tuple(a.shape)}."
            )
        out.append(xp.broadcast_to(a, (n,)).astype(dtype))
    return out[0], out[1]
