"""The classic tracking building blocks as registries (centre estimators, profiles).

Each block takes ROIs (N, S, S) and, for refinements and profiles, start centres x, y;
the spec lists its tuning keywords (defaults and help from the functions). The tables
of ``docs/guide/tracking-blocks.md`` are generated from these. No widget or command
offers the blocks yet (``gui=False, cli=False``): the specs (ranges, units, "0 means
default") are ready for one. The pipelines
(``track_rois``, ``track_beads``) have their own modes and are not listed here.
Conventions: x = column, y = row, pixel centres at integer coordinates.
"""

from __future__ import annotations

from camtrack._registry import Method, Param, Registry
from camtrack.tracking._blocks import (
    auto_conv,
    auto_conv_multiline,
    center_of_mass,
    qi,
    quadratic_interpolation,
)
from camtrack.tracking._profiles import fft_profile, radial_profile

__all__ = ["CENTRES", "PROFILES"]

_CENTRES = ("rois", "x", "y")  # refinements start from given centres
# Odd point counts for the sub-pixel parabola; more than ~21 points fit the bead's
# shape rather than its peak.
_N_LOCAL = Param("n_local", int, min=3, max=21, step=2, unit="points")
_SUB_PIXEL = Param("sub_pixel", bool)
# Profile bins: 0 in a widget means the default (from the ROI size).
_OVERSAMPLE = Param("oversample", int, min=1, max=8, unit="bins/px")
_N_BINS = Param("n_bins", int, min=0, max=1024, gui_none=0, note="0: from S")

CENTRES = Registry(
    "tracking-centres",
    [
        Method(
            "center-of-mass", center_of_mass,
            "Intensity-weighted centre of each ROI; a start for the refinements.",
            (Param("background", str, choices=("none", "mean", "median")),),
            gui=False, cli=False,
        ),
        Method(
            "auto-conv", auto_conv,
            "Peak of the auto-convolution of the row and column through the start.",
            (_SUB_PIXEL, _N_LOCAL),
            inputs=_CENTRES, gui=False, cli=False,
        ),
        Method(
            "auto-conv-multiline", auto_conv_multiline,
            "Auto-convolution of a band of rows and columns: less noise than one line.",
            (Param("line_ratio", float, min=0.0, max=1.0, step=0.05), _SUB_PIXEL, _N_LOCAL),
            inputs=_CENTRES, gui=False, cli=False,
        ),
        Method(
            "quadratic-interpolation", quadratic_interpolation,
            "Three-point parabola through the brightest (or darkest) pixel and its "
            "neighbours: a peak finder.",
            inputs=_CENTRES, gui=False, cli=False,
        ),
        Method(
            "qi", qi,
            "Quadrant interpolation (van Loenhout et al. 2012): symmetry of the four "
            "quadrant radial profiles, iterated.",
            (Param("n_iter", int, min=1, max=20),
             Param("n_radial", int, min=0, max=1024, unit="samples", gui_none=0,
                   note="0: 2 x radius"),
             Param("n_angular", int, min=0, max=4096, step=4, unit="samples", gui_none=0,
                   note="0: auto"),
             Param("radius", float, min=0.0, max=1024.0, unit="px", gui_none=0.0,
                   note="0: S/2 - 3")),
            label="QI", inputs=_CENTRES, gui=False, cli=False,
        ),
    ],
    page="tracking-blocks.md",
)  # fmt: skip

PROFILES = Registry(
    "tracking-profiles",
    [
        Method(
            "radial-profile", radial_profile,
            "Radial intensity profile about a sub-pixel centre (smooth in the centre).",
            (_OVERSAMPLE, _N_BINS),
            inputs=_CENTRES, gui=False, cli=False,
        ),
        Method(
            "fft-profile", fft_profile,
            "Radial profile of the windowed ROI's amplitude spectrum: insensitive to "
            "centre errors.",
            (_OVERSAMPLE, _N_BINS),
            label="FFT profile", inputs=_CENTRES, gui=False, cli=False,
        ),
    ],
    page="tracking-blocks.md",
)  # fmt: skip
