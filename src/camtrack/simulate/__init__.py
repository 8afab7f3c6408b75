"""Synthetic camera stacks and bead images with known truth.

Camera (photon transfer): :class:`Camera` holds a sensor's fixed per-pixel maps;
:func:`camera_stack`, :func:`dark_stack` and :func:`illumination_series` make stacks
(eager numpy or lazy dask) with a :class:`CameraTruth`.

Beads (magnetic tweezers): :class:`BeadOptics` sets the optics; :func:`bead_profile`
gives the radial intensity I(r; z), :func:`bead_image` pixel-integrated expected
images, :func:`bead_rois` noisy ROIs, :func:`zsweep` a calibration z-sweep (both with a
:class:`BeadTruth`), and :func:`bead_field` a full field of view with tethered and
reference beads over time (:class:`FieldTruth`).

Tethers (force calibration): :func:`tether_trace` gives exact, camera-blurred
Ornstein-Uhlenbeck traces of tethered beads with their truth (:class:`TetherTrace`);
:func:`tether_rois` renders motion-blurred bead ROIs along them.

A second, independent bead image model for tests and benchmarks: paraxial Gaussian
beams with exact pixel integrals (:class:`GaussianBeamOptics`,
:func:`gaussian_beam_image`, :func:`gaussian_beam_rois`, :func:`gaussian_beam_zsweep`),
with scalar cameras or sCMOS per-pixel maps with hot pixels (:func:`scmos_maps`,
:class:`ScmosMaps`). A tracker tuned on one model is checked on the other.

Conventions: stacks are (frames, rows, cols); x = column, y = row, pixel centres at
integer coordinates (the centre of pixel [0, 0] is (0.0, 0.0)); z in nm relative to the
focal plane, positive when the bead is farther from the objective. Every function takes
``rng`` (int seed, numpy Generator or None) and is deterministic for a given seed.
"""

from camtrack.simulate._beads import bead_image
from camtrack.simulate._camera import Camera
from camtrack.simulate._camera_truth import CameraTruth
from camtrack.simulate._field import FieldTruth, bead_field
from camtrack.simulate._gaussbeam import (
    GaussianBeamOptics,
    GaussianBeamTruth,
    gaussian_beam_image,
    gaussian_beam_rois,
    gaussian_beam_zsweep,
)
from camtrack.simulate._optics import BeadOptics, bead_profile
from camtrack.simulate._rois import BeadTruth, bead_rois, zsweep
from camtrack.simulate._scmos import ScmosMaps, scmos_maps
from camtrack.simulate._stacks import camera_stack, dark_stack, illumination_series
from camtrack.simulate._tether import TetherTrace, tether_trace
from camtrack.simulate._tether_images import tether_rois

__all__ = [
    "BeadOptics",
    "BeadTruth",
    "Camera",
    "CameraTruth",
    "FieldTruth",
    "GaussianBeamOptics",
    "GaussianBeamTruth",
    "ScmosMaps",
    "TetherTrace",
    "bead_field",
    "bead_image",
    "bead_profile",
    "bead_rois",
    "camera_stack",
    "dark_stack",
    "gaussian_beam_image",
    "gaussian_beam_rois",
    "gaussian_beam_zsweep",
    "illumination_series",
    "scmos_maps",
    "tether_rois",
    "tether_trace",
    "zsweep",
]
