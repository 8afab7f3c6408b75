"""The photon-transfer fit: bin pixels by mean, fit variance against mean.

Separate from the per-pixel statistics, so a new fit range or bin count is a refit of
the ``mean`` and ``var`` maps (milliseconds for a 512 x 512 map), never a new pass over
the stack.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from scipy.special import comb

from camtrack import _backend
from camtrack._validation import check_integer, check_range, renamed_keywords

__all__ = [
    "BIN_STATS",
    "GainFit",
    "check_fit_range",
    "fit_gain",
    "median_correction",
]

# How each bin's variance is summarised, and over which mean range bins are laid out:
# "classic": n_bins equal bins over [min, max] of the mean map, bin variance = mean,
#            unweighted fit (the classic recipe);
# "mean":    equal bins over the 0.5-99.5 percentiles (a few hot pixels or bright
#            objects cannot squeeze every pixel into one bin), bin variance = mean,
#            count-weighted fit;
# "median":  as "mean", bin variance = median / small-sample median correction.
BIN_STATS = ("classic", "mean", "median")
_ROBUST_SPAN = (0.5, 99.5)


@dataclass(frozen=True, eq=False)
class GainFit:
    """Binned mean-variance curve and its straight-line fit.

    Attributes
    ----------
    bin_mean, bin_var : ndarray, (B,)
        Mean ADU and variance ADU**2 of every bin holding more than ``min_count``
        pixels, in increasing mean.
    bin_count : ndarray of int, (B,)
        Pixels per bin.
    in_fit : ndarray of bool, (B,)
        Bins used by the fit (mean inside the fit range).
    slope : float
        d var / d mean, ADU per photoelectron times ``excess_noise_factor``.
    intercept : float
        Variance at mean 0 ADU, ADU**2.
    r : float
        (Weighted) correlation coefficient of the fitted bins.
    slope_stderr, intercept_stderr : float
        Standard errors from the residual scatter of the fitted bins.
    fit_range : (float, float)
        The percentiles of the mean map that bound the fit.
    fit_range_adu : (float, float)
        The same bounds in ADU.
    weighted : bool
        True for a count-weighted fit, False for the classic unweighted one.
    """

    bin_mean: np.ndarray = field(repr=False)
    bin_var: np.ndarray = field(repr=False)
    bin_count: np.ndarray = field(repr=False)
    in_fit: np.ndarray = field(repr=False)
    slope: float
    intercept: float
    r: float
    slope_stderr: float
    intercept_stderr: float
    fit_range: tuple[float, float]
    fit_range_adu: tuple[float, float]
    weighted: bool

    @property
    def stderr(self) -> float:
        """Standard error of the slope (alias of ``slope_stderr``)."""
        return self.slope_stderr

    @property
    def n_bins(self) -> int:
        """Number of bins in the fit."""
        return int(self.in_fit.sum())


def check_fit_range(fit_range: Any) -> tuple[float, float]:
    """A (low, high) pair of percentiles with 0 <= low < high <= 100."""
    try:
        lo, hi = fit_range
    except (TypeError, ValueError):
        raise TypeError(
            f"`fit_range` must be a (low, high) pair of percentiles; got {fit_range!r}."
        ) from None
    lo = check_range(lo, "fit_range[0]", 0.0, 100.0)
    hi = check_range(hi, "fit_range[1]", 0.0, 100.0)
    if not lo < hi:
        raise ValueError(f"`fit_range` must have low < high; got {fit_range!r}.")
    return lo, hi


@lru_cache(maxsize=64)
def median_correction(n_terms: int, order: int) -> float:
    """Median / mean of a white-noise variance estimator, for per-bin medians.

    The estimator is the mean of ``n_terms`` squared order-``order`` differences
    (order 0: squared deviations, i.e. the sample variance with ``n_terms`` degrees
    of freedom). For Gaussian noise it is a quadratic form with mean 1 (in units of the
    variance), variance ``2 c2 / n`` and third cumulant ``8 c3 / n**2``, where ``c2``
    and ``c3`` sum products of the autocorrelation ``rho_j`` of the differences. The
    Cornish-Fisher expansion gives ``median = 1 - 2 c3 / (3 c2 n) + O(n**-2)``; for
    order 0 this is the familiar ``1 - 2 / (3 n)`` (Wilson-Hilferty to first order).
    """
    n = max(int(n_terms), 1)
    k = int(order)
    if k == 0:
        # Wilson-Hilferty, more accurate than the first-order term for small n.
        return float((1.0 - 2.0 / (9.0 * n)) ** 3)
    norm = float(comb(2 * k, k, exact=True))
    lags = np.arange(-k, k + 1)
    rho = np.array([(-1.0) ** abs(j) * comb(2 * k, k + j, exact=True) / norm for j in lags])
    c2 = float(np.sum(rho**2))
    full = np.zeros(4 * k + 1)
    full[k : 3 * k + 1] = rho  # rho on lags -2k..2k (zero beyond +-k)
    c3 = 0.0
    for i in range(-k, k + 1):
        for j in range(-k, k + 1):
            lag = -(i + j)
            if -2 * k <= lag <= 2 * k:
                c3 += rho[i + k] * rho[j + k] * full[lag + 2 * k]
    return float(1.0 - 2.0 * c3 / (3.0 * c2 * n))


@renamed_keywords(nbins="n_bins")
def fit_gain(
    mean: Any,
    var: Any,
    *,
    n_bins: int = 50,
    fit_range: tuple[float, float] = (33, 66),
    min_count: int = 10,
    bin_stat: str = "mean",
    median_correction_factor: float = 1.0,
    mask: Any = None,
) -> GainFit:
    """Bin pixels by mean and fit variance against mean (photon transfer).

    Parameters
    ----------
    mean, var : array, (Y, X)
        Per-pixel mean (ADU) and variance (ADU**2) maps, numpy or cupy; NaNs are
        left out.
    n_bins : int
        Number of equal-width bins of the mean.
    fit_range : (float, float)
        Fit the bins whose mean lies between these percentiles of the mean map.
    min_count : int
        Keep bins with more than this many pixels.
    bin_stat : {"mean", "median", "classic"}
        "mean": bins over the 0.5-99.5 percentiles of the mean map, per-bin mean
        variance, count-weighted fit. "median": the same with per-bin median
        variances divided by ``median_correction_factor``. "classic": bins over the
        full [min, max] range, per-bin mean variance, unweighted fit.
    median_correction_factor : float
        Median / mean of the per-pixel variance estimator (see
        :func:`median_correction`); only used by ``bin_stat="median"``.
    mask : bool array, (Y, X), optional
        True marks pixels to leave out.

    Returns
    -------
    GainFit

    Raises
    ------
    ValueError
        When fewer than 3 bins fall in the fit range (too few distinct levels).

    Examples
    --------
    >>> import numpy as np
    >>> mean = np.linspace(100, 1100, 10000).reshape(100, 100)
    >>> fit = fit_gain(mean, 0.5 * (mean - 100) + 2.0)
    >>> round(fit.slope, 6), round(fit.intercept, 3)
    (0.5, -48.0)
    """
    n_bins = check_integer(n_bins, "n_bins", minimum=3)
    min_count = check_integer(min_count, "min_count", minimum=0)
    lo_pct, hi_pct = check_fit_range(fit_range)
    if bin_stat not in BIN_STATS:
        raise ValueError(f"`bin_stat` must be one of {BIN_STATS}; got {bin_stat!r}.")
    m = np.asarray(_backend.to_host(mean), dtype=np.float64).ravel()
    v = np.asarray(_backend.to_host(var), dtype=np.float64).ravel()
    if m.shape != v.shape:
        raise ValueError(
            f"`mean` and `var` must have the same shape; got {np.shape(mean)} and {np.shape(var)}."
        )
    ok = np.isfinite(m) & np.isfinite(v)
    if mask is not None:
        ok &= ~np.asarray(_backend.to_host(mask), dtype=bool).ravel()
    m, v = m[ok], v[ok]
    if m.size < 3:
        raise ValueError(
            f"Only {m.size} usable pixels; photon transfer needs many pixels at several "
            "signal levels (check `mask`, `saturation` and the data)."
        )
    pct_lo, pct_hi = (float(p) for p in np.percentile(m, [lo_pct, hi_pct]))

    if bin_stat == "classic":
        lo, hi = float(m.min()), float(m.max())
    else:
        lo, hi = (float(p) for p in np.percentile(m, _ROBUST_SPAN))
    if not hi > lo:
        raise ValueError(
            f"All usable pixels have the same mean ({lo:g} ADU): the illumination is "
            "uniform, so there is no mean-variance curve to fit. Record a stack whose "
            "pixels see many different intensities (a gradient or a defocused lamp), or "
            "several stacks at different intensities (see calibrate_pixels)."
        )
    inside = (m >= lo) & (m <= hi)
    m_in, v_in = m[inside], v[inside]
    idx = np.floor((m_in - lo) / (hi - lo) * n_bins).astype(np.intp)
    np.clip(idx, 0, n_bins - 1, out=idx)  # the maximum belongs to the last bin
    count = np.bincount(idx, minlength=n_bins)
    bin_mean = np.bincount(idx, weights=m_in, minlength=n_bins)
    keep = count > min_count
    bin_mean = bin_mean[keep] / count[keep]
    if bin_stat == "median":
        order = np.argsort(idx, kind="stable")
        groups = np.split(v_in[order], np.cumsum(count)[:-1])
        bin_var = np.array([np.median(g) for g, k in zip(groups, keep, strict=True) if k])
        bin_var = bin_var / float(median_correction_factor)
    else:
        bin_var = np.bincount(idx, weights=v_in, minlength=n_bins)[keep] / count[keep]
    bin_count = count[keep]

    in_fit = (bin_mean >= pct_lo) & (bin_mean <= pct_hi)
    weighted = bin_stat != "classic"
    if int(in_fit.sum()) < 3:
        raise ValueError(
            f"Only {int(in_fit.sum())} bins with more than {min_count} pixels lie between "
            f"the {lo_pct:g}th and {hi_pct:g}th percentiles of the mean map "
            f"({pct_lo:.6g}-{pct_hi:.6g} ADU); the fit needs at least 3 distinct signal "
            "levels. Use a stack whose illumination spans a wider range of intensities, "
            "widen `fit_range`, or lower `min_count`."
        )
    w = bin_count[in_fit].astype(np.float64) if weighted else np.ones(int(in_fit.sum()))
    slope, intercept, r, se_s, se_i = _wls(bin_mean[in_fit], bin_var[in_fit], w)
    return GainFit(
        bin_mean=bin_mean,
        bin_var=bin_var,
        bin_count=bin_count,
        in_fit=in_fit,
        slope=slope,
        intercept=intercept,
        r=r,
        slope_stderr=se_s,
        intercept_stderr=se_i,
        fit_range=(lo_pct, hi_pct),
        fit_range_adu=(pct_lo, pct_hi),
        weighted=weighted,
    )


def _wls(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, float, float, float, float]:
    """Weighted least-squares line; standard errors from the weighted residual scatter.

    With unit weights this is :func:`scipy.stats.linregress` (same slope, intercept, r
    and standard errors).
    """
    sw = w.sum()
    xm = (w * x).sum() / sw
    ym = (w * y).sum() / sw
    dx, dy = x - xm, y - ym
    sxx = (w * dx * dx).sum()
    syy = (w * dy * dy).sum()
    sxy = (w * dx * dy).sum()
    slope = sxy / sxx
    intercept = ym - slope * xm
    r = sxy / np.sqrt(sxx * syy) if syy > 0 else 1.0
    n = x.size
    resid = dy - slope * dx
    # Residual variance per unit weight, scaled so unit weights give linregress's values.
    s2 = (w * resid * resid).sum() / (n - 2) if n > 2 else np.nan
    se_slope = np.sqrt(s2 / sxx)
    se_int = np.sqrt(s2 * (1.0 / sw + xm * xm / sxx))
    return (
        float(slope),
        float(intercept),
        float(min(max(r, -1.0), 1.0)),
        float(se_slope),
        float(se_int),
    )
