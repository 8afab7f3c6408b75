"""Photon transfer: conversion factor, offset and read noise of a camera.

:func:`estimate_gain` measures the conversion factor (e-/ADU) of one stack of a
static, non-uniformly lit scene, with its uncertainty, offset and read noise (from a
dark stack) and per-pixel maps, by one of several methods (classic median/MAD,
mean/variance, frame differences for bleaching, robust per-bin medians for moving
objects, or automatic choice). :meth:`GainResult.refit` refits the binned curve with a
new fit range without a new pass over the stack. :func:`calibrate_pixels` makes
per-pixel sCMOS maps from a dark stack and stacks at several light levels.

Stacks are (frames, rows, cols), numpy, cupy or dask, any integer or float dtype in
ADU (computed in float32; float64 for float64 input and for integers beyond 2**24).
Statistics run in spatial tiles or blocks of frames, so a stack larger than memory
runs in bounded memory; long loops take ``progress`` (any tqdm-like callable). This
package never imports napari or Qt.
"""

from camtrack.gain._estimate import estimate_gain
from camtrack.gain._fit import GainFit, fit_gain
from camtrack.gain._pixels import PixelCalibration, calibrate_pixels
from camtrack.gain._registry import METHODS, PIXELS
from camtrack.gain._result import GainResult

__all__ = [
    "METHODS",
    "PIXELS",
    "GainFit",
    "GainResult",
    "PixelCalibration",
    "calibrate_pixels",
    "estimate_gain",
    "fit_gain",
]
