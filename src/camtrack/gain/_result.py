"""GainResult: the scalar conversion factor, its maps and the binned curve."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from camtrack._validation import renamed_keywords
from camtrack.gain._fit import GainFit, fit_gain

__all__ = ["GainResult", "derive"]

MIN_SIGNIFICANCE = 5.0  # slope / stderr below this: no usable mean-variance relation
WARN_REL_STDERR = 0.05


@dataclass(frozen=True, eq=False)
class GainResult:
    """Result of :func:`estimate_gain` (photon transfer).

    Attributes
    ----------
    e_per_adu : float
        Conversion factor, photoelectrons per ADU (``excess_noise_factor / slope``).
    adu_per_e : float
        ``1 / e_per_adu``.
    e_per_adu_stderr : float
        Standard error of ``e_per_adu`` from the fit's residual scatter.
    offset_adu : float or None
        Median dark offset (ADU), from ``dark``; None when it cannot be known.
    read_noise_e : float or None
        Read noise, electrons rms: from the dark stack (median pixel, ADC rounding
        noise removed), or from the fit intercept when the offset is given; else None.
    mean : array, (Y, X)
        Per-pixel mean ADU of the method (temporal median for ``"median"``).
    var : array, (Y, X)
        Per-pixel variance ADU**2 of the method.
    gain_map : array, (Y, X)
        Per-pixel e-/ADU, offset- and read-noise-corrected:
        ``F**2 (mean - offset) / (var - read variance)``; NaN where the signal is not
        above the offset or the pixel was left out.
    bin_mean, bin_var, bin_count : ndarray
        The binned mean-variance curve (also in ``fit``).
    fit : GainFit
        Slope, intercept, r, standard errors and the fit range used.
    method : str
        The method that produced the numbers ("auto" resolves to one of the others).
    n_frames : int
        Frames in the stack.
    warnings : tuple of str
        What to know about this result (method chosen by "auto", pixels left out,
        weak fits).
    excess_noise_factor : float
        ``F**2`` used (1 for sCMOS/CCD, 2 for EMCCD at high gain).
    offset_map : array (Y, X) or None
        Per-pixel offset, ADU (from ``dark``).
    read_noise_map_e : array (Y, X) or None
        Per-pixel read noise, electrons rms, from a dark stack (with the scalar
        ``e_per_adu``).
    excluded : array of bool, (Y, X)
        Pixels left out of the fit (saturated, clipped at 0, masked, not finite).
    """

    e_per_adu: float
    adu_per_e: float
    e_per_adu_stderr: float
    offset_adu: float | None
    read_noise_e: float | None
    mean: Any = field(repr=False)
    var: Any = field(repr=False)
    gain_map: Any = field(repr=False)
    bin_mean: np.ndarray = field(repr=False)
    bin_var: np.ndarray = field(repr=False)
    bin_count: np.ndarray = field(repr=False)
    fit: GainFit = field(repr=False)
    method: str = "meanvar"
    n_frames: int = 0
    warnings: tuple[str, ...] = ()
    excess_noise_factor: float = 1.0
    offset_map: Any = field(default=None, repr=False)
    read_noise_map_e: Any = field(default=None, repr=False)
    excluded: Any = field(default=None, repr=False)
    _info: dict = field(default_factory=dict, repr=False)

    @renamed_keywords(nbins="n_bins")
    def refit(
        self,
        *,
        fit_range: tuple[float, float] | None = None,
        n_bins: int | None = None,
        min_count: int | None = None,
    ) -> GainResult:
        """Refit the stored ``mean``/``var`` maps with new fit settings (no pass over the stack).

        Fast (milliseconds for 512 x 512): meant for live updates of a fit range slider.
        Warnings about the data are kept; those about the fit are recomputed.

        Examples
        --------
        >>> from camtrack.gain import estimate_gain
        >>> from camtrack.simulate import camera_stack
        >>> stack, truth = camera_stack(50, (64, 64), rng=0)
        >>> res = estimate_gain(stack, method="meanvar")
        >>> wider = res.refit(fit_range=(10, 90))
        >>> wider.fit.fit_range
        (10.0, 90.0)
        """
        info = self._info
        settings = dict(info["settings"])
        if "nbins" in settings:  # a result made before the rename to n_bins
            settings["n_bins"] = settings.pop("nbins")
        if fit_range is not None:
            settings["fit_range"] = fit_range
        if n_bins is not None:
            settings["n_bins"] = n_bins
        if min_count is not None:
            settings["min_count"] = min_count
        fit = fit_gain(
            self.mean,
            self.var,
            mask=self.excluded,
            bin_stat=info["bin_stat"],
            median_correction_factor=info["median_correction"],
            **settings,
        )
        return derive(
            fit,
            mean=self.mean,
            var=self.var,
            method=self.method,
            n_frames=self.n_frames,
            excess_noise_factor=self.excess_noise_factor,
            excluded=self.excluded,
            data_warnings=info["data_warnings"],
            dark=info["dark"],
            info={**info, "settings": settings},
        )

    def save(
        self, path: Any, *, source: dict | None = None, overwrite: bool = False, protect: Any = ()
    ) -> tuple[Any, Any]:
        """Write the scalars (JSON, with units) and the maps (HDF5 next to it).

        ``path`` names the JSON file; the maps file has the same stem and ``.h5``
        (a folder is refused). ``source`` (JSON-able) records where the data came from.
        The pair is one unit: checked before writing, written under temporary names
        and committed together; without ``overwrite`` an existing JSON *or* maps file
        refuses the save (``FileExistsError``). ``protect`` (paths or None) names input
        files never to write. The JSON records the maps' SHA-256, checked by
        :meth:`load`. Returns ``(json_path, h5_path)``.
        """
        from camtrack.gain._result_io import save_result

        return save_result(self, path, source=source, overwrite=overwrite, protect=protect)

    @staticmethod
    def load(path: Any) -> dict[str, Any]:
        """Read a saved result (JSON scalars plus ``"maps"``); see
        :func:`camtrack.gain._result_io.load_result`."""
        from camtrack.gain._result_io import load_result

        return load_result(path)

    def summary(self) -> str:
        """The result in words, one item per line: e-/ADU +- stderr, ADU/e-, offset,
        read noise, method and r."""
        lines = [
            f"{self.e_per_adu:.4g} ± {self.e_per_adu_stderr:.2g} e-/ADU",
            f"{self.adu_per_e:.4g} ADU/e-",
        ]
        if self.offset_adu is not None:
            lines.append(f"offset {self.offset_adu:.1f} ADU")
        if self.read_noise_e is not None:
            lines.append(f"read noise {self.read_noise_e:.2f} e-")
        lines.append(f"method {self.method}, r = {self.fit.r:.4f}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly scalars with units in the keys (no maps)."""
        f = self.fit
        return {
            "e_per_adu": self.e_per_adu,
            "adu_per_e": self.adu_per_e,
            "e_per_adu_stderr": self.e_per_adu_stderr,
            "offset_adu": self.offset_adu,
            "read_noise_e": self.read_noise_e,
            "excess_noise_factor": self.excess_noise_factor,
            "method": self.method,
            "n_frames": self.n_frames,
            "slope_adu_per_e": f.slope,
            "intercept_adu2": f.intercept,
            "r": f.r,
            "slope_stderr": f.slope_stderr,
            "intercept_stderr_adu2": f.intercept_stderr,
            "fit_range_percentiles": list(f.fit_range),
            "fit_range_adu": list(f.fit_range_adu),
            "n_bins_fitted": f.n_bins,
            "warnings": list(self.warnings),
        }

    def to_layers(self) -> list[tuple[Any, dict, str]]:
        """The maps as napari layer tuples ``(data, kwargs, "image")``.

        Layers ``mean`` (ADU), ``variance`` (ADU**2), ``gain map`` (e-/ADU) and, when
        the offset is known, ``offset`` (ADU): host float32, viridis, contrast limits
        from the 1st-99th percentiles of the finite values. No napari import: the GUI
        adds them or updates the layers of these names.

        Examples
        --------
        >>> from camtrack.gain import estimate_gain
        >>> from camtrack.simulate import camera_stack
        >>> stack, truth = camera_stack(50, (32, 32), rng=0)
        >>> [kw["name"] for _, kw, _ in estimate_gain(stack).to_layers()]
        ['mean', 'variance', 'gain map']
        """
        from camtrack._layerdata import GAIN_MAP_LAYERS, map_layer

        return [
            map_layer(name, getattr(self, field))
            for field, name in GAIN_MAP_LAYERS.items()
            if getattr(self, field) is not None
        ]

    def to_electrons(self, stack: Any, *, lazy: bool = False) -> Any:
        """``(stack - offset_map) * e_per_adu``: a (T, Y, X) stack in photoelectrons.

        float32 on the stack's backend; lazy for dask input (and, with ``lazy=True``,
        for any input: whole-frame dask chunks of about 4 MPixel). The stack is never
        modified. Needs the offset: a result measured with ``dark`` (a stack or a
        known offset). The per-pixel offset map (from a dark stack) and the scalar
        conversion factor are applied; for per-pixel factors use
        :meth:`PixelCalibration.to_electrons`.

        Examples
        --------
        >>> from camtrack.gain import estimate_gain
        >>> from camtrack.simulate import camera_stack
        >>> stack, truth = camera_stack(50, (32, 32), rng=0)
        >>> res = estimate_gain(stack, dark=truth.camera.offset_adu)
        >>> res.to_electrons(stack).dtype
        dtype('float32')
        """
        from camtrack._layerdata import electrons

        if self.offset_map is None:
            raise ValueError(
                "The offset is unknown: this result was measured without `dark`, so ADU "
                "cannot be turned into photoelectrons. Pass a dark stack (or the known "
                "offset in ADU) as `dark` to estimate_gain."
            )
        return electrons(stack, self.offset_map, self.e_per_adu, maps="offset maps", lazy=lazy)


def derive(
    fit: GainFit,
    *,
    mean: Any,
    var: Any,
    method: str,
    n_frames: int,
    excess_noise_factor: float,
    excluded: Any,
    data_warnings: tuple[str, ...],
    dark: dict,
    info: dict,
) -> GainResult:
    """Turn a fit (and the dark information) into a GainResult; checks the fit is usable.

    Every map of the result is on the backend of ``mean`` (cupy input: the device):
    host maps (the excluded mask, a scalar dark's offset map) are copied there
    explicitly, never mixed with device arrays.
    """
    xp = _xp(mean)

    def on_backend(a: Any) -> Any:
        return None if a is None else xp.asarray(a)

    excluded = on_backend(excluded)
    f2 = float(excess_noise_factor)
    slope, se = fit.slope, fit.slope_stderr
    lo, hi = fit.fit_range_adu
    if not (slope > 0 and np.isfinite(slope)) or not (slope > MIN_SIGNIFICANCE * se):
        raise ValueError(
            f"The variance does not rise clearly with the mean (slope {slope:.3g} +- {se:.2g} "
            f"ADU**2/ADU over {fit.n_bins} bins between {lo:.6g} and {hi:.6g} ADU), so no gain "
            "can be measured. Photon transfer needs pixels at clearly different intensities: "
            "the illumination looks uniform (or there is no light). Record a stack with a "
            "gradient or a defocused lamp, or several stacks at different intensities "
            "(calibrate_pixels), and check that the stack is not dark."
        )
    e_per_adu = f2 / slope
    e_se = f2 * se / slope**2
    warnings = list(data_warnings)
    if se / slope > WARN_REL_STDERR:
        warnings.append(
            f"The fit is weak: e_per_adu has a {100 * se / slope:.1f}% standard error. Use more "
            "frames, a wider intensity range or a wider `fit_range`."
        )
    offset_adu = read_noise_e = None
    offset_map = read_map = None
    q = dark.get("quantization", 0.0)
    if dark.get("offset_map") is not None:
        offset_map = on_backend(dark["offset_map"])
        offset_adu = float(dark["offset_adu"])
    if dark.get("var_map") is not None:
        # Dark stack: per-pixel read variance measured directly.
        rv_map = on_backend(dark["var_map"])
        read_noise_e = float(np.sqrt(max(dark["read_var_adu2"], 0.0)) * e_per_adu)
        read_map = xp.sqrt(xp.clip(rv_map - q, 0.0, None)) * e_per_adu
        num = mean - offset_map
        den = var - rv_map
    elif offset_map is not None:
        # Offset known: the intercept gives the read variance, var(offset).
        rv = fit.intercept + slope * offset_adu
        rv_se = np.hypot(fit.intercept_stderr, se * offset_adu)
        if rv - q > 2.0 * rv_se:
            read_noise_e = float(np.sqrt(rv - q) * e_per_adu)
        else:
            warnings.append(
                f"The read noise is not identifiable from the fit intercept (read variance "
                f"{rv - q:.3g} +- {rv_se:.2g} ADU**2 at the offset); pass a dark stack as `dark`."
            )
        num = mean - offset_map
        den = var - rv
    else:
        # No dark: offset and read variance are not separable, but their combination
        # is the intercept, which is all the per-pixel conversion needs.
        num = mean
        den = var - fit.intercept
    with np.errstate(divide="ignore", invalid="ignore"):
        gain_map = f2 * num / den
    bad = ~((num > 0) & (den > 0))
    if excluded is not None:
        bad = bad | excluded
    gain_map = xp.where(bad, xp.nan, gain_map)
    return GainResult(
        e_per_adu=float(e_per_adu),
        adu_per_e=float(1.0 / e_per_adu),
        e_per_adu_stderr=float(e_se),
        offset_adu=offset_adu,
        read_noise_e=read_noise_e,
        mean=mean,
        var=var,
        gain_map=gain_map,
        bin_mean=fit.bin_mean,
        bin_var=fit.bin_var,
        bin_count=fit.bin_count,
        fit=fit,
        method=method,
        n_frames=int(n_frames),
        warnings=tuple(warnings),
        excess_noise_factor=f2,
        offset_map=offset_map,
        read_noise_map_e=read_map,
        excluded=excluded,
        _info={**info, "data_warnings": tuple(data_warnings), "dark": dark},
    )


def _xp(a: Any) -> Any:
    from camtrack import _backend

    return _backend.namespace(a)[0]


def replace(result: GainResult, **changes: Any) -> GainResult:
    return dataclasses.replace(result, **changes)
