"""The background methods as the widget, ``camtrack background`` and the docs see them.

Defaults and help texts come from the functions themselves (see
:class:`camtrack._registry.Method`); only ranges, units and where a keyword appears are
stated here. ``docs/guide/background.md`` holds the generated tables.
"""

from __future__ import annotations

from dataclasses import replace

from camtrack._registry import Method, Param, Registry
from camtrack.background._rolling import rolling_median
from camtrack.background._sparse import sparse_median
from camtrack.background._spatial import spatial_mean
from camtrack.background._stats import STATS, frame_stats
from camtrack.background._temporal import temporal_median, temporal_percentile

__all__ = ["METHODS"]

# Widget ranges: wide enough for any stack (a window or kernel of a million frames),
# tight where the engine's meaning ends (a fraction, a percentile).
_SIGMA_CLIP = Param("sigma_clip", float, min=0.0, max=100.0, step=0.5, unit="sigma",
                    gui_none=0.0, note="0 = off")  # fmt: skip
_Q = Param("q", float, min=0.0, max=100.0, unit="%", many=True, gui_value=50.0, text="Percentile")
# Frames per median: one field for the rolling and the sparse median. Step 2 keeps the
# rolling median's window odd (its engine refuses an even one); the sparse median takes
# any count.
_WINDOW = Param("window", int, min=3, max=1_000_001, step=2, unit="frames",
                help="Frames in each median (rolling: odd, at most T; sparse: more than T "
                "means all T).")  # fmt: skip

METHODS = Registry(
    "background",
    [
        Method(
            "spatial-mean", spatial_mean,
            "Per-frame 2-D Gaussian mean (sigma = radius / 2), with the exact "
            "noise-correction factor; for backgrounds that change from frame to frame.",
            (Param("radius", float, min=0.5, max=200.0, step=0.5, unit="px"),
             Param("truncate", float, min=1.0, max=10.0, unit="sigma", gui=False)),
        ),
        Method(
            "temporal-median", temporal_median,
            "Median over time of every pixel: one image; moving objects drop out.",
            (_SIGMA_CLIP,),
            hidden=("mask",),
        ),
        Method(
            "temporal-percentile", temporal_percentile,
            "Percentile(s) over time of every pixel, optionally sigma-clipped.",
            (_Q, _SIGMA_CLIP),
            hidden=("mask",),
        ),
        Method(
            "rolling-median", rolling_median,
            "Per-frame median of the window of frames centred on each frame; follows "
            "slow drifts.",
            (_WINDOW,),
        ),
        Method(
            "sparse-median", sparse_median,
            "A cleansed median image every few frames plus a per-frame offset "
            "(illumination flicker); fast on long stacks.",
            (_WINDOW,
             Param("split", int, min=0, max=1_000_000, unit="frames", gui_none=0,
                   text="Median every", note="0 = window", help="Frames between median images (default: "
                   "window, or split_time x fs_hz)."),
             Param("fs_hz", float, min=0.0, unit="Hz", gui=False, text="Frame rate"),
             Param("split_time", float, min=0.0, unit="s", gui=False),
             Param("thresh_cleansing", float, min=0.0, max=1e6, unit="ADU", note="0 = auto",
                   text="Cleansing threshold",
                   help="Deviation from the reference marking an object in a median "
                   "image; 0: automatic (5 robust sigmas)."),
             Param("frac_cleansing", float, min=0.0, max=1.0, widget="slider",
                   text="Images kept", note="fraction; 1 = no cleansing",
                   help="Fraction of the median images always kept; 1 disables cleansing."),
             Param("offset_correction", bool)),
            hidden=("offset_region",),
        ),
        Method(
            "frame-stats", frame_stats,
            "A statistic over time of every pixel: min, max, mean, std or percentile.",
            (Param("stat", str, choices=STATS, gui_value="mean", text="Statistic"),
             replace(_Q, when=("stat", "percentile"))),
            label="frame statistic",
        ),
    ],
    page="background.md",
    command="camtrack background",
)  # fmt: skip
