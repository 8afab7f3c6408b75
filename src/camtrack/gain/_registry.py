"""The gain methods as the Camera gain widget, ``camtrack gain`` and the docs see them.

:data:`METHODS` holds the methods of :func:`estimate_gain` (picked by its ``method``
keyword, in the engine's order, so ``list(METHODS)`` is the tuple of method names it
accepts); :data:`PIXELS` the per-pixel calibration (:func:`calibrate_pixels`, the
widget's *Per-pixel calibration* section, ``camtrack calibrate``). Defaults and help
come from the functions (see :class:`camtrack._registry.Method`); ranges, units and
where a keyword appears are stated here. ``docs/guide/gain.md`` holds the tables.
"""

from __future__ import annotations

from camtrack._registry import Method, Param, Registry
from camtrack.gain._estimate import estimate_gain
from camtrack.gain._pixels import calibrate_pixels

__all__ = ["METHODS", "PIXELS"]

# F**2 is 1 (CCD, sCMOS) to 2 (EMCCD at high EM gain); the engine refuses values outside.
_F2 = Param(
    "excess_noise_factor",
    float,
    min=1.0,
    max=2.0,
    step=0.1,
    text="Excess noise F²",
    note="EMCCD = 2",
)
# Every estimate_gain method bins the per-pixel means and fits the bins alike: the same
# keywords for all. 3 bins is the engine's minimum; 1000 bins leave too few pixels per
# bin for any camera frame below 4 Mpx (min_count 10). The saturation field's upper end
# is a 32-bit ADC's maximum.
_FIT = (
    Param("n_bins", int, min=3, max=1000),
    Param("fit_range", float, min=0.0, max=100.0, unit="%", size=2),
    Param("min_count", int, min=0, max=1_000_000, unit="px", text="Min count per bin"),
    _F2,
    Param("saturation", float, min=0.0, max=2.0**32 - 1, unit="ADU", gui_none=0.0,
          note="0 = auto"),
)  # fmt: skip
_HIDDEN = ("dark", "mask")  # arrays: the widget's dark layer, --dark / --offset-adu


def _method(name: str, summary: str) -> Method:
    return Method(name, estimate_gain, summary, _FIT, hidden=_HIDDEN, select="method")


METHODS = Registry(
    "gain",
    [
        _method(
            "auto",
            "Measures the moments once, then picks robust (moving objects), diff (a slow "
            "trend) or meanvar; the result says which and why.",
        ),
        _method(
            "median",
            "The classic recipe: temporal median and (1.4826 MAD)**2 per pixel, equal bins, "
            "unweighted fit.",
        ),
        _method(
            "meanvar",
            "Temporal mean and unbiased variance, count-weighted fit: the most precise for a "
            "static, stable scene.",
        ),
        _method(
            "diff",
            "Variance from consecutive-frame differences: a slow trend (bleaching, drift, "
            "lamp warm-up) does not inflate it.",
        ),
        _method(
            "robust",
            "For moving or blinking objects: frame differences kept only where their "
            "neighbourhood carries no more than noise.",
        ),
    ],
    page="gain.md",
    command="camtrack gain",
)

PIXELS = Registry(
    "gain-pixels",
    [
        Method(
            "calibrate-pixels", calibrate_pixels,
            "Per-pixel sCMOS maps (offset, read noise, e-/ADU) from a dark stack and flat "
            "stacks at two or more light levels.",
            (_F2,),
            label="Per-pixel calibration", inputs=("stacks", "dark"),
            command="camtrack calibrate",
        ),
    ],
    page="gain.md",
)  # fmt: skip
