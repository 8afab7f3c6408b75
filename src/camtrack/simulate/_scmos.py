"""sCMOS per-pixel maps with hot pixels, and the exposure of the second bead model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from camtrack._validation import check_positive, check_range
from camtrack.simulate._seeding import CAMERA, RNGLike, child_seed, root_seed

__all__ = ["ScmosMaps", "expose", "scmos_maps"]

_MAX_ADU = 65535.0


@dataclass(frozen=True, eq=False)
class ScmosMaps:
    """Per-pixel camera maps (offset, conversion factor, read noise) of one sensor.

    Attributes
    ----------
    offset_adu : ndarray, (Y, X) float64
        Dark offset per pixel, ADU.
    e_per_adu : ndarray, (Y, X) float64
        Conversion factor per pixel, photoelectrons per ADU.
    read_noise_e : ndarray, (Y, X) float64
        Read noise per pixel, e- rms.
    hot : ndarray of bool, (Y, X)
        The hot pixels (read noise many times the median, as the random-telegraph
        pixels of an sCMOS sensor).

    Notes
    -----
    Per-pixel ADU of a pixel with expected photoelectrons ``S``: mean
    ``offset + S / g``, variance ``(S + read**2) / g**2`` (+ 1/12 rounding for uint16).
    :meth:`to_calibration` hands the maps over as a
    :class:`camtrack.gain.PixelCalibration`, the form ``calibrate_pixels`` measures.
    """

    offset_adu: np.ndarray = field(repr=False)
    e_per_adu: np.ndarray = field(repr=False)
    read_noise_e: np.ndarray = field(repr=False)
    hot: np.ndarray = field(repr=False)

    @property
    def shape(self) -> tuple[int, int]:
        """Map shape (Y, X)."""
        return tuple(self.offset_adu.shape)

    def variance_adu(self, signal_e: Any, *, quantized: bool = True) -> np.ndarray:
        """ADU variance for expected photoelectrons ``signal_e`` (..., Y, X)."""
        s = np.asarray(signal_e, dtype=np.float64)
        var = (s + self.read_noise_e**2) / self.e_per_adu**2
        return var + 1.0 / 12.0 if quantized else var

    def to_calibration(self) -> Any:
        """The maps as a :class:`camtrack.gain.PixelCalibration` (rounding noise included)."""
        from camtrack.gain import PixelCalibration

        return PixelCalibration(
            offset_map_adu=self.offset_adu.copy(),
            dark_var_map_adu2=(self.read_noise_e / self.e_per_adu) ** 2 + 1.0 / 12.0,
            adu_per_e_map=1.0 / self.e_per_adu,
            e_per_adu_map=self.e_per_adu.copy(),
            read_noise_map_e=self.read_noise_e.copy(),
            n_levels=0,
            excess_noise_factor=1.0,
        )


def scmos_maps(
    shape: tuple[int, int],
    *,
    e_per_adu: float = 0.5,
    gain_spread: float = 0.02,
    offset_adu: float = 100.0,
    offset_std_adu: float = 3.0,
    read_noise_e: float = 1.6,
    read_noise_spread: float = 0.3,
    hot_fraction: float = 0.001,
    hot_read_noise_e: float = 60.0,
    rng: RNGLike = None,
) -> ScmosMaps:
    """Draw sCMOS per-pixel maps with a fraction of hot (very noisy) pixels.

    Parameters
    ----------
    shape : (int, int)
        Sensor (or ROI) size, rows and columns.
    e_per_adu, gain_spread : float
        Median conversion factor (e-/ADU) and the standard deviation of its log.
    offset_adu, offset_std_adu : float
        Mean offset and its pixel-to-pixel standard deviation, ADU.
    read_noise_e, read_noise_spread : float
        Median read noise (e- rms) and the standard deviation of its log (lognormal).
    hot_fraction : float
        Fraction of hot pixels (0.1 % by default), placed at random.
    hot_read_noise_e : float
        Read noise of a hot pixel, e- rms.
    rng : int, numpy.random.Generator or None
        Seed of the maps.

    Returns
    -------
    ScmosMaps

    Examples
    --------
    >>> from camtrack.simulate import scmos_maps
    >>> maps = scmos_maps((64, 64), rng=0)
    >>> maps.shape, int(maps.hot.sum())
    ((64, 64), 4)
    """
    shape = (int(shape[0]), int(shape[1]))
    check_positive(e_per_adu, "e_per_adu")
    check_positive(read_noise_e, "read_noise_e")
    check_positive(hot_read_noise_e, "hot_read_noise_e")
    for name, v in (("gain_spread", gain_spread), ("offset_std_adu", offset_std_adu), ("read_noise_spread", read_noise_spread)):  # fmt: skip
        check_positive(v, name, allow_zero=True)
    check_range(hot_fraction, "hot_fraction", 0.0, 1.0)
    gen = np.random.Generator(np.random.PCG64(child_seed(root_seed(rng), CAMERA)))
    g = e_per_adu * np.exp(gain_spread * gen.standard_normal(shape))
    off = offset_adu + offset_std_adu * gen.standard_normal(shape)
    rn = read_noise_e * np.exp(read_noise_spread * gen.standard_normal(shape))
    n_hot = round(hot_fraction * shape[0] * shape[1])
    hot = np.zeros(shape, dtype=bool)
    hot.flat[gen.choice(hot.size, size=n_hot, replace=False)] = True
    rn[hot] = hot_read_noise_e
    return ScmosMaps(offset_adu=off, e_per_adu=g, read_noise_e=rn, hot=hot)


def expose(
    signal_e: np.ndarray,
    gen: np.random.Generator,
    *,
    offset_adu: Any,
    e_per_adu: Any,
    read_noise_e: Any,
    full_well_e: float | None,
    max_adu: float,
    dtype: str,
) -> np.ndarray:
    """One readout: Poisson electrons, full well, read noise, offset, rounding, ADC clip."""
    electrons = gen.poisson(signal_e).astype(np.float64)
    if full_well_e is not None:
        np.minimum(electrons, full_well_e, out=electrons)
    adu = (electrons + gen.standard_normal(electrons.shape) * read_noise_e) / e_per_adu
    adu += offset_adu
    if dtype == "uint16":
        np.rint(adu, out=adu)
    np.clip(adu, 0.0, min(max_adu, _MAX_ADU), out=adu)
    return adu.astype(dtype)
