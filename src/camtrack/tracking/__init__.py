"""Bead tracking: sub-pixel x, y and Z-LUT z for magnetic-tweezers beads.

Conventions: ``rois`` are (N, S, S) and ``stack`` (T, Y, X), frames first, any integer
or float dtype (computed in float32); x = column, y = row, pixel centres at integer
coordinates (the centre of pixel [0, 0] is (0.0, 0.0)); z in the Z-LUT's unit.

Pipelines: :func:`track_rois` (``mode="precise"``: exact point-symmetry centre near
the Cramer-Rao bound; ``mode="fast"``: the same principle on projections) and
:func:`track_beads` over whole stacks (numpy, cupy or lazy dask). Z look-up tables:
:func:`build_zlut`, :class:`ZLut`, :func:`lookup_z`, :func:`check_zlut`. Building blocks: centre of mass,
auto-convolution, quadratic interpolation, QI, radial and FFT profiles, Pearson
correlation, cropping and bead finding. Precision: :func:`crlb` (the Cramer-Rao
bound for an image model or a Z-LUT and a camera), :class:`CameraModel`.
"""

from camtrack.tracking._blocks import (
    auto_conv,
    auto_conv_multiline,
    center_of_mass,
    parabolic_vertex,
    qi,
    quadratic_interpolation,
)
from camtrack.tracking._camera import CameraModel, as_camera_model
from camtrack.tracking._crlb import CRLB, crlb, lut_image
from camtrack.tracking._find import FoundBeads, find_beads, locate_beads
from camtrack.tracking._lookup import lookup_z, pearson
from camtrack.tracking._pipeline import track_rois
from camtrack.tracking._profiles import fft_profile, radial_profile
from camtrack.tracking._result import TrackResult
from camtrack.tracking._stack import crop_rois, track_beads
from camtrack.tracking._stuck import StuckBeads, flag_stuck_beads
from camtrack.tracking._zcheck import ZLutCheck, check_zlut, sweep_z
from camtrack.tracking._zlut import ZLut, build_zlut, load_zlut

__all__ = [
    "CRLB",
    "CameraModel",
    "FoundBeads",
    "StuckBeads",
    "TrackResult",
    "ZLut",
    "ZLutCheck",
    "as_camera_model",
    "auto_conv",
    "auto_conv_multiline",
    "build_zlut",
    "center_of_mass",
    "check_zlut",
    "crlb",
    "crop_rois",
    "fft_profile",
    "find_beads",
    "flag_stuck_beads",
    "load_zlut",
    "locate_beads",
    "lookup_z",
    "lut_image",
    "parabolic_vertex",
    "pearson",
    "qi",
    "quadratic_interpolation",
    "radial_profile",
    "sweep_z",
    "track_beads",
    "track_rois",
]
