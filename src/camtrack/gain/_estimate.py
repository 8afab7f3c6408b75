"""estimate_gain: photon transfer on one stack (the public entry point)."""

from __future__ import annotations

from typing import Any

import numpy as np

from camtrack import _backend
from camtrack._parallel import resolve
from camtrack._validation import (
    check_choice,
    check_integer,
    check_range,
    check_stack,
    renamed_keywords,
)
from camtrack.gain._fit import check_fit_range, fit_gain
from camtrack.gain._kernels import finalize
from camtrack.gain._result import GainResult, derive
from camtrack.gain._tiles import Progress, reduce_median, reduce_moments, reduce_robust

__all__ = ["METHODS", "MIN_FRAMES", "estimate_gain"]

METHODS = ("auto", "median", "meanvar", "diff", "robust")
MIN_FRAMES = 20
MAD_TO_SIGMA = 1.482602218505602  # 1 / Phi^-1(3/4): MAD -> sigma for Gaussian noise
# "auto": a slow trend is reported when the plain variance exceeds the difference
# variance by this factor (median over pixels), i.e. when it would bias the gain by
# more than about 1%; moving objects when the per-pixel variances scatter around the
# noise model this much more than white noise allows.
TREND_RATIO = 1.01
SCATTER_RATIO = 1.5
OUTLIER_FRACTION = 0.002


@renamed_keywords(nbins="n_bins")
def estimate_gain(
    stack: Any,
    *,
    dark: Any = None,
    method: str = "auto",
    n_bins: int = 50,
    fit_range: tuple[float, float] = (33, 66),
    min_count: int = 10,
    excess_noise_factor: float = 1.0,
    saturation: float | None = None,
    mask: Any = None,
    progress: Progress | None = None,
    scheduler: Any = None,
) -> GainResult:
    """Conversion factor (e-/ADU), offset and read noise by photon transfer.

    Every pixel of a stack of frames of a static scene is a repeated measurement of
    one signal level; its temporal variance rises linearly with its mean, with slope
    ``F**2 / e_per_adu``. Pixels are binned by mean and the bins' variances fitted
    against their means.

    Parameters
    ----------
    stack : array, (T, Y, X)
        Frames of a static, non-uniformly lit scene (a gradient, a defocused lamp),
        numpy, cupy or dask, any integer or float dtype (ADU, not rescaled). At least
        20 frames.
    dark : array, optional
        A dark stack (T', Y, X) of the same camera and settings: per-pixel offset and
        read-noise maps. Or a known offset: a scalar or a (Y, X) map in ADU (then the
        read noise comes from the fit intercept). Without it the offset and read noise
        cannot be separated and are reported as None.
    method : {"auto", "median", "meanvar", "diff", "robust"}
        How the per-pixel mean and variance are measured (see Notes).
    n_bins : int
        Number of bins of the mean.
    fit_range : (float, float)
        Fit the bins whose mean lies between these percentiles of the mean map.
    min_count : int
        Keep bins with more than this many pixels.
    excess_noise_factor : float
        ``F**2`` in [1, 2]: the factor by which electron multiplication inflates the
        shot-noise variance. 1 for CCD and sCMOS, 2 for an EMCCD at high EM gain (pass
        2, not its square root 1.41).
    saturation : float, optional
        ADU at or above which a pixel is saturated; pixels that reach it in any frame
        are left out. Default: the integer dtype's maximum, or ``2**k - 1`` when the
        brightest pixels sit at such an ADC maximum.
    mask : bool array (Y, X), optional
        True marks pixels to leave out (hot pixels, a region with objects).
    progress : callable, optional
        tqdm-like ``progress(iterable, total=n)``, advanced per tile or block (on a
        ``dask.distributed`` cluster: per finished block task or output tile).
    scheduler : None, str or distributed.Client
        Where dask input is computed: a local dask scheduler (``"threads"``, ``"sync"``,
        ``"processes"``), a ``dask.distributed`` address (``"tcp://10.0.0.5:8786"``) or
        ``Client``. None: the active ``distributed`` client, else the address in
        ``DASK_SCHEDULER_ADDRESS``, else local threads. Workers read their own blocks
        (the camtrack readers reopen the file in every task), so a file must be at the
        same path on every worker. numpy and cupy input run in this process.

    Returns
    -------
    GainResult

    Raises
    ------
    ValueError
        Fewer than 20 frames, uniform illumination, too few distinct signal levels, all
        pixels saturated, or no clear rise of variance with mean: the message says what
        data is needed.

    Notes
    -----
    Axis order (frames, rows, cols); maps are (rows, cols), ADU and ADU**2, on the
    input's backend (cupy input: cupy maps; dask input: numpy maps).

    Methods (one pass over the stack each, in spatial tiles or blocks of frames, so a
    stack larger than memory runs in bounded memory):

    - ``"median"``: the classic recipe. Mean = temporal median, variance = (1.4826
      MAD)**2, ``n_bins`` equal bins over [min, max] of the median map, unweighted fit of
      the bins' mean variance. Robust per pixel, but the MAD of integer ADU is
      quantised and a moving object biases it once it covers many frames.
    - ``"meanvar"``: temporal mean and unbiased variance, bins over the 0.5-99.5
      percentiles, count-weighted fit. The most precise for a static, stable scene.
    - ``"diff"``: variance from consecutive-frame differences with their mean removed
      (``var(diff) / 2``), so a slow trend (bleaching, drift, lamp warm-up) does not
      inflate it. The mean is the time average, which is what the average variance of
      a trending pixel belongs to.
    - ``"robust"``: for stacks with moving or blinking objects. A consecutive-frame
      difference of a pixel is kept only when its *neighbourhood* (a box of 40 x 40
      pixels and 5 differences, the pixel's own 8 x 8 block left out) carries no more
      energy than the noise expected at its level (a photon-transfer line fitted at
      block level, refitted to the kept differences); the variance is that of the kept
      differences (mean removed, so slow trends drop out), the mean that of the frames
      they span. The decision for a pixel never uses its own values, so its kept
      differences are an unbiased sample of its noise however many are rejected;
      pooling over thousands of neighbour samples catches signal changes far below one
      noise sigma per pixel (the far rings of defocused beads). Assumes independent
      noise between pixels a few apart (no wide crosstalk), objects larger than a few
      pixels, and some undisturbed frame pairs for every pixel (pixels with fewer than
      5 kept differences are left out). Two passes over the stack plus work on its
      8 x 8 block sums: a few times the cost of ``"diff"``, and less precise (only the
      kept differences count).
    - ``"auto"``: measures the moments once, then picks ``"robust"`` when the per-pixel
      variances scatter around the fit much more than noise allows (moving objects),
      ``"diff"`` when the plain variance exceeds the difference variance (a trend), and
      ``"meanvar"`` otherwise; ``method`` and ``warnings`` say which and why.

    EMCCD: the electron-multiplying register makes the variance ``F**2`` times the
    shot noise (``F**2 -> 2`` at high gain). Fitting it without ``excess_noise_factor=2``
    halves the reported e-/ADU; passing ``sqrt(2)`` instead of 2 leaves it 29% low.

    Precision: the kernels compute in float32 (half the memory traffic) unless float32
    would round the data: float64 input, and integer data beyond +-2**24 ADU (each
    tile's own range decides), run in float64, so a large offset (an ADC with 32-bit
    output, a stack with a pedestal added) changes nothing. Sums are accumulated in
    float64 either way.

    Offset and read noise: with a dark stack, offset = temporal mean of the dark
    frames and read variance = their temporal variance (median pixel; the 1/12 ADU**2
    of ADC rounding is removed for integer data). With only an offset, the read
    variance is the fit's value at the offset. ``gain_map`` is per pixel
    ``F**2 (mean - offset) / (var - read variance)``; the classic ``mean / var`` map
    ignores the offset and is off by 20% to 200% at typical signals.

    Examples
    --------
    >>> from camtrack.gain import estimate_gain
    >>> from camtrack.simulate import camera_stack
    >>> stack, truth = camera_stack(100, (128, 128), camera={"e_per_adu": 0.5}, rng=0)
    >>> res = estimate_gain(stack)
    >>> abs(res.e_per_adu / truth.e_per_adu - 1) < 0.02
    True
    >>> res.method
    'meanvar'
    """
    check_stack(stack)
    check_choice(method, "method", METHODS)
    if dark is not None and not np.isscalar(dark):
        _backend.namespace(stack, dark)  # TypeError for numpy mixed with cupy
    with resolve(scheduler, stack, dark) as where:
        return _estimate(
            stack, dark, method, n_bins, fit_range, min_count, excess_noise_factor,
            saturation, mask, progress, where,
        )  # fmt: skip


def _estimate(
    stack: Any,
    dark: Any,
    method: str,
    n_bins: int,
    fit_range: Any,
    min_count: int,
    excess_noise_factor: float,
    saturation: float | None,
    mask: Any,
    progress: Progress | None,
    scheduler: Any,
) -> GainResult:
    n_bins = check_integer(n_bins, "n_bins", minimum=3)
    min_count = check_integer(min_count, "min_count", minimum=0)
    fit_range = check_fit_range(fit_range)
    f2 = check_range(excess_noise_factor, "excess_noise_factor", 1.0, 2.0)
    t, ny, nx = (int(s) for s in stack.shape)
    if t < MIN_FRAMES:
        raise ValueError(
            f"`stack` has {t} frames; photon transfer needs at least {MIN_FRAMES} frames of a "
            "static scene (100 or more for a precise gain). Record a longer stack."
        )
    if saturation is not None:
        saturation = float(saturation)
    mask = _check_mask(mask, (ny, nx))
    integer = np.issubdtype(stack.dtype, np.integer)
    dark_info = _dark_info(dark, (ny, nx), progress, scheduler)  # maps on the stack's backend
    settings = {"n_bins": n_bins, "fit_range": fit_range, "min_count": min_count}
    warnings: list[str] = []

    if method == "median":
        med, mad, vmax, vmin = reduce_median(stack, progress=progress, scheduler=scheduler)
        mean, var = med, (MAD_TO_SIGMA * mad) ** 2
        bin_stat, corr = "classic", 1.0
        chosen = "median"
    else:
        maps = finalize(reduce_moments(stack, progress=progress, scheduler=scheduler))
        vmax, vmin = maps["max"], maps["min"]
        chosen = method
    excluded = _excluded(vmax, vmin, stack.dtype, saturation, mask, warnings)
    if method != "median":
        if method == "auto":
            chosen, reason = _choose(maps, excluded, settings, t)
            warnings.append(f"method='auto' chose {chosen!r}: {reason}")
        bin_stat, corr = "mean", 1.0
        if chosen == "robust":
            _backend.release_memory()  # the moments pass's buffers, before the next passes
            shift = _level_shift(vmin, excluded)
            mean, var, kept = reduce_robust(
                stack, ~excluded, shift=shift, progress=progress, scheduler=scheduler
            )
            excluded = excluded | ~np.isfinite(_backend.to_host(var))  # host mask, host test
            _robust_warnings(_backend.to_host(kept), excluded, t, warnings)
        else:  # "meanvar": the plain variance; "diff": from consecutive differences
            mean, var = maps["mean"], maps["var" if chosen == "meanvar" else "var_diff"]

    fit = fit_gain(
        mean, var, mask=excluded, bin_stat=bin_stat, median_correction_factor=corr, **settings
    )
    if chosen != "robust" and _scatter_ratio(mean, var, excluded, fit, chosen, t) > SCATTER_RATIO:
        warnings.append(
            "The per-pixel variances scatter far more than noise allows: moving or blinking "
            "objects, flicker or hot pixels. Try method='robust', mask the objects, or "
            "record a static scene."
        )
    info = {
        "settings": settings,
        "bin_stat": bin_stat,
        "median_correction": corr,
        "integer": integer,
    }
    try:
        return derive(
            fit,
            mean=mean,
            var=var,
            method=chosen,
            n_frames=t,
            excess_noise_factor=f2,
            excluded=excluded,
            data_warnings=tuple(warnings),
            dark=dark_info,
            info=info,
        )
    except ValueError as exc:
        if chosen != "robust":
            raise
        raise ValueError(
            f"{exc} Here moving or blinking objects were detected: too few frames of too "
            "few pixels are free of them to measure the noise. Record a longer stack, one "
            "with fewer moving objects, or mask them."
        ) from None


def _robust_warnings(kept: np.ndarray, excluded: np.ndarray, t: int, warnings: list) -> None:
    used = kept[~excluded]
    frac = float(used.mean()) / (t - 1) if used.size else 0.0
    warnings.append(
        f"moving objects: on average {100 * frac:.0f}% of each pixel's frame differences are "
        "free of them and were used"
        + (
            "; so few frames are left that e_per_adu is imprecise (record a longer stack)."
            if frac < 0.1
            else "."
        )
    )


# ----------------------------------------------------------------------------- helpers


def _level_shift(vmin: Any, excluded: np.ndarray) -> float:
    """The robust kernel's level reference: the lowest value of the used pixels (whole
    ADU), so that its block levels start near 0 however large the offset."""
    lo = np.asarray(_backend.to_host(vmin), dtype=np.float64)[~excluded]
    lo = lo[np.isfinite(lo)]
    return float(np.floor(lo.min())) if lo.size else 0.0


def _check_mask(mask: Any, shape: tuple[int, int]) -> Any:
    if mask is None:
        return None
    if tuple(getattr(mask, "shape", ())) != shape:
        raise ValueError(
            f"`mask` must be a boolean (rows, cols) map of shape {shape}; got "
            f"{getattr(mask, 'shape', type(mask).__name__)}."
        )
    return _backend.to_host(mask).astype(bool)


def _dark_info(
    dark: Any, shape: tuple[int, int], progress: Progress | None, scheduler: Any = None
) -> dict:
    """Offset / read-variance information from ``dark`` (a stack, a map or a scalar)."""
    if dark is None:
        return {}
    if np.isscalar(dark):
        value = float(dark)
        if not np.isfinite(value):
            raise ValueError(f"`dark` as an offset must be a finite ADU value; got {dark!r}.")
        # A host map: derive() moves every map to the backend of the mean map.
        return {"offset_map": np.full(shape, value), "offset_adu": value}
    ndim = len(getattr(dark, "shape", ()))
    if ndim == 2:
        if tuple(dark.shape) != shape:
            raise ValueError(
                f"`dark` as an offset map must have the frame shape {shape}; got {tuple(dark.shape)}."
            )
        xp, _ = _backend.namespace(dark)
        offset_map = dark.compute() if _backend.is_dask(dark) else dark
        offset_map = xp.asarray(offset_map, dtype=xp.float64)
        return {"offset_map": offset_map, "offset_adu": float(xp.median(offset_map))}
    check_stack(dark, "dark")
    if tuple(dark.shape[1:]) != shape:
        raise ValueError(
            f"`dark` must have the same frame shape as `stack` {shape}; got {tuple(dark.shape[1:])}. "
            "Record the dark stack with the same camera region and binning."
        )
    if dark.shape[0] < 2:
        raise ValueError(
            f"`dark` has {dark.shape[0]} frame; a dark stack needs at least 2 frames "
            "(20 or more for a precise read noise), or pass an offset value or map."
        )
    maps = finalize(reduce_moments(dark, progress=progress, scheduler=scheduler))
    offset_map, var_map = maps["mean"], maps["var"]  # on the dark stack's backend
    xp, _ = _backend.namespace(offset_map)
    quant = 1.0 / 12.0 if np.issubdtype(dark.dtype, np.integer) else 0.0
    return {
        "offset_map": offset_map,
        "offset_adu": float(xp.median(offset_map)),
        "var_map": var_map,
        "read_var_adu2": float(xp.median(var_map)) - quant,
        "quantization": quant,
    }


def _saturation_level(vmax: np.ndarray, dtype: Any) -> float | None:
    """The ADU at which the data clip: the dtype's maximum, or an ADC's 2**k - 1."""
    top = float(np.max(vmax))
    if not np.isfinite(top):
        return None
    if np.issubdtype(dtype, np.integer) and top >= np.iinfo(dtype).max:
        return float(np.iinfo(dtype).max)
    k = np.log2(top + 1.0)
    if top >= 255 and abs(k - round(k)) < 1e-9:
        return top
    return None


def _excluded(
    vmax: Any, vmin: Any, dtype: Any, saturation: float | None, mask: Any, warnings: list
) -> np.ndarray:
    vmax = np.asarray(_backend.to_host(vmax), dtype=np.float64)
    vmin = np.asarray(_backend.to_host(vmin), dtype=np.float64)
    level = saturation if saturation is not None else _saturation_level(vmax, dtype)
    excluded = ~(np.isfinite(vmax) & np.isfinite(vmin))
    n_missing = int(excluded.sum())
    if n_missing:
        warnings.append(
            f"{n_missing} pixels hold NaN or inf in at least one frame and were left out "
            "as missing."
        )
    n_sat = 0
    if level is not None:
        sat = vmax >= level
        n_sat = int(sat.sum())
        excluded |= sat
    zero = vmin <= 0
    excluded |= zero
    if mask is not None:
        excluded |= mask
    total = excluded.size
    if n_sat:
        warnings.append(
            f"{n_sat} pixels ({100 * n_sat / total:.2g}%) reach the saturation level "
            f"{level:g} ADU and were left out."
        )
    if int(zero.sum()):
        warnings.append(
            f"{int(zero.sum())} pixels touch 0 ADU (clipped below the offset) and were left out."
        )
    if excluded.all():
        raise ValueError(
            "Every pixel is saturated, clipped at 0 or masked, so no gain can be measured. "
            "Lower the illumination or exposure so no pixel reaches "
            f"{level if level is not None else 'the ADC maximum'} ADU, and check `mask`."
        )
    return excluded


def _relative_sd(method: str, t: int) -> float:
    """Relative standard deviation of a pixel's variance estimate for white noise."""
    if method in ("meanvar", "median"):
        c2, n = 1.0, t - 1
    else:  # "diff" and "robust": mean-removed first differences
        c2, n = 1.5, t - 1
    if method == "median":
        return float(np.sqrt(2.0 * 2.7 / n))  # the MAD's variance is ~2.7x the sample variance's
    return float(np.sqrt(2.0 * c2 / n))


def _deviations(mean: Any, var: Any, excluded: np.ndarray, fit: Any, method: str, t: int):
    """Relative deviations of the pixel variances from the fit, in white-noise sd units."""
    m = np.asarray(_backend.to_host(mean), dtype=np.float64)
    v = np.asarray(_backend.to_host(var), dtype=np.float64)
    lo, hi = fit.fit_range_adu
    sel = (~excluded) & (m >= lo) & (m <= hi) & np.isfinite(v)
    if sel.sum() < 50:
        return None
    pred = fit.intercept + fit.slope * m[sel]
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = (v[sel] / pred - 1.0) / _relative_sd(method, t)
    return rel[np.isfinite(rel)]


def _scatter_ratio(
    mean: Any, var: Any, excluded: np.ndarray, fit: Any, method: str, t: int
) -> float:
    """Robust scatter of var / fitted var in the fit range, over the white-noise value."""
    rel = _deviations(mean, var, excluded, fit, method, t)
    if rel is None:
        return 1.0
    return float(MAD_TO_SIGMA * np.median(np.abs(rel - np.median(rel))))


def _outlier_fraction(
    mean: Any, var: Any, excluded: np.ndarray, fit: Any, method: str, t: int
) -> float:
    """Fraction of fitted pixels whose variance lies over 8 white-noise sd above the fit.

    For Gaussian noise (even with the chi-square skew of a variance estimate) this is
    below 1e-5; pixels crossed by a moving object, blinking ones and RTS pixels land
    there.
    """
    rel = _deviations(mean, var, excluded, fit, method, t)
    if rel is None or rel.size == 0:
        return 0.0
    return float(np.mean(rel > 8.0))


def _choose(maps: dict, excluded: np.ndarray, settings: dict, t: int) -> tuple[str, str]:
    """Pick the method for "auto" from the moments, and say why."""
    mean = maps["mean"]
    fit = fit_gain(mean, maps["var_diff"], mask=excluded, bin_stat="mean", **settings)
    scatter = _scatter_ratio(mean, maps["var_diff"], excluded, fit, "diff", t)
    outliers = _outlier_fraction(mean, maps["var_diff"], excluded, fit, "diff", t)
    if scatter > SCATTER_RATIO or outliers > OUTLIER_FRACTION:
        return "robust", (
            f"{100 * outliers:.2g}% of the pixels have variances far above the noise model and "
            f"the rest scatter {scatter:.1f}x the white-noise value (moving or blinking objects, "
            "RTS pixels), so only frame differences free of them are used"
        )
    v = np.asarray(_backend.to_host(maps["var"]), dtype=np.float64)
    vd = np.asarray(_backend.to_host(maps["var_diff"]), dtype=np.float64)
    ok = (~excluded) & (vd > 0) & np.isfinite(v)
    ratio = float(np.median(v[ok] / vd[ok])) if ok.any() else 1.0
    if ratio > TREND_RATIO:
        return "diff", (
            f"the temporal variance exceeds the frame-difference variance by {100 * (ratio - 1):.1f}% "
            "(a slow trend: bleaching or drift), so frame differences are used"
        )
    return "meanvar", "no trend or moving objects detected"
