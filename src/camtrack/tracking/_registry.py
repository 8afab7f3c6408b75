"""Tracking as registries: the pipeline's modes and the classic building blocks.

:data:`MODES` holds the modes of :func:`track_beads` (``mode="precise"`` or
``"fast"``; :func:`track_rois`, :func:`build_zlut` and :func:`check_zlut` take the same
``mode``): the choices of ``camtrack track --mode``, ``camtrack zlut --mode`` and the
Bead tracking widget's mode field, and the table in ``docs/guide/tracking.md``. The
modes differ in how they measure, not in their keywords, so their entries list none
(every keyword of ``track_beads`` is named hidden: the widget and the commands have
their own fields for them). ``list(MODES)`` is the engine's tuple of modes.

The building blocks (centre estimators, profiles):

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
from camtrack.tracking._pipeline import TRACK_OPTIONS
from camtrack.tracking._profiles import fft_profile, radial_profile
from camtrack.tracking._stack import track_beads

__all__ = ["CENTRES", "MODES", "PROFILES"]

# track_beads' keywords besides its data (stack, positions) and the common plumbing:
# the same in both modes, so no mode lists them.
_TRACK_KEYWORDS = ("roi_size", "zlut", "reference", "frame_chunk", "camera", "e_per_adu",
                   "offset_adu", "read_noise_e", "fs_hz", "exposure_s", *TRACK_OPTIONS)  # fmt: skip


def _mode(name: str, summary: str) -> Method:
    return Method(name, track_beads, summary, hidden=_TRACK_KEYWORDS,
                  inputs=("stack", "positions"), select="mode")  # fmt: skip


MODES = Registry(
    "tracking-modes",
    [
        _mode(
            "precise",
            "Exact point-symmetry centre (2-D Fourier-series auto-convolution maximised by "
            "Newton's method, in a window that follows the bead): close to the Cramer-Rao "
            "bound. Profiles reach into the ROI corners.",
        ),
        _mode(
            "fast",
            "The same symmetry principle on windowed x and y projections (one 2-D step on "
            "a central crop for ROIs of 96 px or more): several times cheaper, a few times "
            "less precise. Profiles inside the inscribed circle.",
        ),
    ],
    page="tracking.md",
    command="camtrack track",
)

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
