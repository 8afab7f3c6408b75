"""The truth of a simulated camera stack."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from camtrack.simulate._camera import Camera

__all__ = ["CameraTruth"]


@dataclass(frozen=True, eq=False)
class CameraTruth:
    """What a simulated camera stack was made from.

    Attributes
    ----------
    kind : str
        "camera_stack", "dark_stack" or "illumination_series".
    camera : Camera
        The sensor, with its per-pixel maps.
    signal_e : ndarray, (Y, X)
        Expected photoelectrons per pixel per frame before ``frame_scale`` and moving
        objects (for an illumination series: the relative pattern, mean 1).
    frame_scale : ndarray, (T,)
        Multiplies ``signal_e`` in each frame: the bleach factor, or the level (e-) of
        an illumination series.
    bleach_factor : ndarray, (T,)
        Fraction of the initial signal left in each frame (1 without bleaching).
    level_index : ndarray of int, (T,) or None
        Illumination series: which of ``levels_e`` each frame belongs to.
    levels_e : ndarray, (L,) or None
        Illumination series: the mean signal of each level.
    bead_x, bead_y : ndarray, (T, n_beads)
        Moving objects' centres per frame in pixels (x = column, y = row, pixel centres
        at integer coordinates); may lie outside the frame.
    bead_z_nm : ndarray, (n_beads,)
        Their defocus (see :func:`bead_profile`), constant in time.
    dtype : str
        dtype of the stack.

    Notes
    -----
    Per pixel ``(y, x)`` and frame ``t`` the expected photoelectrons are
    ``signal_e[y, x] * frame_scale[t] * beads(t)[y, x]`` (``beads`` = 1 without moving
    objects), and the ADU follow the model of :class:`Camera`. ``expected_adu`` and
    ``variance_adu`` hold away from clipping (bit depth, full well).
    """

    kind: str
    camera: Camera
    signal_e: np.ndarray = field(repr=False)
    frame_scale: np.ndarray = field(repr=False)
    bleach_factor: np.ndarray = field(repr=False)
    level_index: np.ndarray | None = field(repr=False)
    levels_e: np.ndarray | None
    bead_x: np.ndarray = field(repr=False)
    bead_y: np.ndarray = field(repr=False)
    bead_z_nm: np.ndarray = field(repr=False)
    dtype: str
    _modulation: Callable[[int], np.ndarray | None] = field(repr=False)

    @property
    def n_frames(self) -> int:
        """Number of frames T."""
        return int(self.frame_scale.size)

    @property
    def shape(self) -> tuple[int, int]:
        """Frame shape (Y, X)."""
        return self.camera.shape

    @property
    def e_per_adu(self) -> float:
        """Photoelectrons per ADU (input-referred)."""
        return self.camera.e_per_adu

    @property
    def adu_per_e(self) -> float:
        """ADU per photoelectron."""
        return self.camera.adu_per_e

    @property
    def offset_map_adu(self) -> np.ndarray:
        """(Y, X) per-pixel offset."""
        return self.camera.offset_map_adu

    @property
    def read_noise_map_e(self) -> np.ndarray:
        """(Y, X) per-pixel read noise, electrons rms."""
        return self.camera.read_noise_map_e

    @property
    def excess_noise_factor(self) -> float:
        """F**2 (1 for CCD/sCMOS, 2 for EMCCD)."""
        return self.camera.excess_noise_factor

    @property
    def saturation_adu(self) -> float:
        """Mean ADU at which the output saturates (ADC maximum or full well)."""
        return self.camera.saturation_adu

    def _frames(self, frames: Any) -> np.ndarray:
        idx = np.arange(self.n_frames) if frames is None else np.atleast_1d(frames)
        if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"`frames` must be frame indices (ints); got {frames!r}.")
        if idx.min() < -self.n_frames or idx.max() >= self.n_frames:
            raise ValueError(f"`frames` must lie in [0, {self.n_frames}); got {frames!r}.")
        return idx % self.n_frames

    def expected_e(self, frames: Any = None) -> np.ndarray:
        """Expected photoelectrons (n, Y, X) of ``frames`` (default all: mind the memory)."""
        idx = self._frames(frames)
        out = np.empty((idx.size, *self.shape))
        for k, t in enumerate(idx):
            out[k] = self.signal_e * self.frame_scale[t]
            mod = self._modulation(int(t))
            if mod is not None:
                out[k] *= mod
        return out

    def expected_adu(self, frames: Any = None) -> np.ndarray:
        """Mean ADU (n, Y, X) of ``frames``, offset and dark current included."""
        return self.camera.expected_adu(self.expected_e(frames))

    def variance_adu(self, frames: Any = None) -> np.ndarray:
        """ADU variance (n, Y, X) of ``frames``, rounding noise included for uint16."""
        return self.camera.variance_adu(self.expected_e(frames), quantized=self.dtype == "uint16")

    def to_dict(self) -> dict[str, Any]:
        """Small JSON-friendly summary (scalars and short lists; no maps)."""
        d: dict[str, Any] = {"kind": self.kind, "n_frames": self.n_frames, "dtype": self.dtype}
        d.update(self.camera.summary())
        d.update(
            signal_e_min=float(self.signal_e.min()),
            signal_e_max=float(self.signal_e.max()),
            signal_e_mean=float(self.signal_e.mean()),
            bleach=float(1.0 - self.bleach_factor[-1]),
            n_beads=int(self.bead_z_nm.size),
            levels_e=None if self.levels_e is None else [float(v) for v in self.levels_e],
        )
        return d
