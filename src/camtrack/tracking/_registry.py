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
of ``docs/guide/tracking-blocks.md`` are generated from these. The pipelines
(``track_rois``, ``track_beads``, ``build_zlut``, ``check_zlut``) offer them by name:
:data:`CENTRES` through their ``centre`` keyword (first entry "symmetry", the mode's
own centre; the others the classic blocks, run at their defaults), :data:`PROFILES`
through ``profile``. The Bead tracking widget's "centre" and "profile" fields and the
``--centre`` / ``--profile`` options of ``camtrack track`` and ``camtrack zlut`` list
them from here; the blocks' own keywords are Python-only (``gui=False, cli=False``:
the pipelines run each block at its defaults). ``tuple(CENTRES)`` is the engine's tuple
of centres (``tracking._classic.CENTRES``). Conventions: x = column, y = row, pixel
centres at integer coordinates.
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
from camtrack.tracking._pipeline import TRACK_OPTIONS, track_rois
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
# The blocks' keywords are Python-only: the pipelines run each block at its defaults.
_PY = {"gui": False, "cli": False}
# Odd point counts for the sub-pixel parabola; more than ~21 points fit the bead's
# shape rather than its peak.
_N_LOCAL = Param("n_local", int, min=3, max=21, step=2, unit="points", text="Peak fit", **_PY)
_SUB_PIXEL = Param("sub_pixel", bool, text="Sub-pixel", **_PY)
_SEARCH = Param("search", float, min=0.5, max=512.0, unit="px", text="Search range", **_PY)
# Profile bins: 0 in a widget means the default (from the ROI size).
_OVERSAMPLE = Param("oversample", int, min=1, max=8, unit="bins/px", text="Oversampling", **_PY)
_N_BINS = Param("n_bins", int, min=0, max=1024, gui_none=0, note="0 = from S", **_PY)
# track_rois' keywords besides ``centre`` (the data is ``rois``).
_ROIS_KEYWORDS = ("zlut", "mode", "camera", "e_per_adu", "offset_adu", "read_noise_e",
                  "fs_hz", "exposure_s", *(k for k in TRACK_OPTIONS if k != "centre"))  # fmt: skip

CENTRES = Registry(
    "tracking-centres",
    [
        Method(
            "symmetry", track_rois,
            "The tracking mode's own centre (precise: exact point symmetry near the "
            "Cramer-Rao bound; fast: symmetry of projections), with standard errors. "
            "The default.",
            label="symmetry (mode)", hidden=_ROIS_KEYWORDS, select="centre",
        ),
        Method(
            "center-of-mass", center_of_mass,
            "Intensity-weighted centre of each ROI above its mean: a quick start, "
            "biased towards the ROI middle.",
            (Param("background", str, choices=("none", "mean", "median"), **_PY),),
            label="centre of mass", picked_by="centre",
        ),
        Method(
            "auto-conv", auto_conv,
            "Peak of the auto-convolution of the row and column through the start.",
            (_SUB_PIXEL, _N_LOCAL, _SEARCH),
            label="auto-convolution", inputs=_CENTRES, picked_by="centre",
        ),
        Method(
            "auto-conv-multiline", auto_conv_multiline,
            "Auto-convolution of a band of rows and columns: less noise than one line.",
            (Param("line_ratio", float, min=0.0, max=1.0, step=0.05, **_PY), _SUB_PIXEL,
             _N_LOCAL, _SEARCH),
            label="auto-convolution (multi-line)", inputs=_CENTRES, picked_by="centre",
        ),
        Method(
            "quadratic-interpolation", quadratic_interpolation,
            "Three-point parabola through the brightest (or darkest) pixel and its "
            "neighbours: a peak finder.",
            inputs=_CENTRES, picked_by="centre",
        ),
        Method(
            "qi", qi,
            "Quadrant interpolation (van Loenhout et al. 2012): symmetry of the four "
            "quadrant radial profiles, iterated to convergence.",
            (Param("n_iter", int, min=1, max=100, text="Iterations", **_PY),
             Param("tol", float, min=0.0, max=1.0, unit="px", text="Tolerance", **_PY),
             Param("n_radial", int, min=0, max=1024, unit="samples", gui_none=0,
                   text="Radial", note="0 = 2 x radius", **_PY),
             Param("n_angular", int, min=0, max=4096, step=4, unit="samples", gui_none=0,
                   text="Angular", note="0 = auto", **_PY),
             Param("radius", float, min=0.0, max=1024.0, unit="px", gui_none=0.0,
                   note="0 = S/2 - 3", **_PY)),
            label="QI", inputs=_CENTRES, picked_by="centre",
        ),
    ],
    page="tracking-blocks.md",
    command="camtrack track",
)  # fmt: skip

PROFILES = Registry(
    "tracking-profiles",
    [
        Method(
            "radial", radial_profile,
            "Radial intensity profile about a sub-pixel centre (smooth in the centre). "
            "The default.",
            (_OVERSAMPLE, _N_BINS),
            label="radial profile", inputs=_CENTRES, picked_by="profile",
        ),
        Method(
            "fft", fft_profile,
            "Radial profile of the windowed ROI's amplitude spectrum: insensitive to "
            "centre errors, less sensitive to z.",
            (_OVERSAMPLE, _N_BINS),
            label="FFT profile", inputs=_CENTRES, picked_by="profile",
        ),
    ],
    page="tracking-blocks.md",
    command="camtrack zlut",
)  # fmt: skip
