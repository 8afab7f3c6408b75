"""The camera: photon-transfer truth of a sensor and the exposure of one frame."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import InitVar, dataclass, field
from typing import Any

import numpy as np

from camtrack._validation import check_choice, check_positive, check_range
from camtrack.simulate._seeding import CAMERA, RNGLike, root_seed, stream

__all__ = ["DTYPES", "Camera", "as_camera", "expose_frames"]

DTYPES = ("uint16", "float32")


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Camera:
    """A camera sensor with fixed per-pixel maps: the photon-transfer truth.

    Parameters
    ----------
    shape : (int, int)
        Sensor size (rows, cols) in pixels.
    e_per_adu : float
        Conversion factor: photoelectrons per ADU, input-referred (for an EMCCD the EM
        gain is folded in, so ``e_per_adu`` is the ADC's electrons-per-count divided by
        the EM gain). ``adu_per_e = 1 / e_per_adu``. Median of the per-pixel map when
        ``gain_spread > 0``.
    offset_adu : float
        Mean dark offset (bias) in ADU.
    offset_std_adu : float
        Pixel-to-pixel standard deviation of the offset (sCMOS fixed-pattern), ADU.
    read_noise_e : float
        Read noise in electrons rms; the median of the per-pixel map.
    read_noise_spread : float
        Standard deviation of ``log(read noise)`` across pixels. The map is lognormal
        with median ``read_noise_e``, so it has the right-skewed tail of noisy pixels of
        an sCMOS sensor; 0 gives one value for all pixels (CCD, EMCCD).
    gain_spread : float
        Standard deviation of ``log(e_per_adu)`` across pixels (sCMOS per-column and
        per-pixel amplifiers, typically 0.01-0.02); 0 for one conversion factor.
    excess_noise_factor : float
        ``F**2`` in [1, 2]: 1 for CCD and sCMOS, 2 for an EMCCD at high EM gain. It
        multiplies the shot-noise variance.
    bit_depth : int
        ADC bits in [1, 16]; output is clipped to ``[0, 2**bit_depth - 1]``.
    full_well_e : float or None
        Full-well capacity in (input-referred) electrons; electron counts above it are
        clipped before read noise is added. None: no full well.
    dark_current_e : float
        Mean dark electrons per pixel per frame (per exposure, not per second); they
        are shot-noise limited and amplified like photoelectrons.
    rng : int, numpy.random.Generator or None
        Seed for the fixed per-pixel maps. The same seed gives the same maps, so a dark
        stack and light stacks made with this one Camera share them.

    Attributes
    ----------
    offset_map_adu : ndarray, (Y, X) float64
        Per-pixel offset (read-only).
    read_noise_map_e : ndarray, (Y, X) float64
        Per-pixel read noise in electrons rms (read-only).
    e_per_adu_map : ndarray, (Y, X) float64
        Per-pixel conversion factor (read-only).

    Notes
    -----
    One pixel of one frame, with expected photoelectrons ``S`` and dark electrons
    ``D``: ``n ~ Poisson(S + D)``; for ``F**2 > 1`` the electron-multiplying register
    gives ``m ~ Gamma(shape=n / (F**2 - 1), scale=F**2 - 1)`` (mean ``n``, variance
    ``(F**2 - 1) n``, so ``var(m) = F**2 (S + D)``; at ``F**2 = 2`` this is the
    high-gain EMCCD output distribution), else ``m = n``; ``m`` is clipped at
    ``full_well_e``; then ``ADU = round(m / g + (sigma_read / g) N(0, 1) + offset)``
    with ``g = e_per_adu``, clipped to ``[0, 2**bit_depth - 1]``. Hence, away from
    clipping::

        mean(ADU) = (S + D) / g + offset
        var(ADU)  = (F**2 (S + D) + sigma_read**2) / g**2 + 1/12

    where ``1/12`` ADU**2 is the rounding noise (exact when the other noise exceeds
    about 0.5 ADU). Photon-transfer slope: ``d var / d mean = F**2 / g``.

    The maps are drawn once, in ``__post_init__``: ``dataclasses.replace(camera, ...)``
    draws new ones (pass ``rng=`` to it to keep them reproducible).

    Examples
    --------
    >>> import numpy as np
    >>> from camtrack.simulate import Camera
    >>> cam = Camera(shape=(64, 64), e_per_adu=0.5, offset_std_adu=2.0, rng=0)
    >>> cam.adu_per_e
    2.0
    >>> frames = cam.expose(np.full((10, 64, 64), 100.0), rng=1)
    >>> frames.shape, frames.dtype
    ((10, 64, 64), dtype('uint16'))
    """

    shape: tuple[int, int] = (256, 256)
    e_per_adu: float = 2.0
    offset_adu: float = 100.0
    offset_std_adu: float = 0.0
    read_noise_e: float = 1.5
    read_noise_spread: float = 0.0
    gain_spread: float = 0.0
    excess_noise_factor: float = 1.0
    bit_depth: int = 16
    full_well_e: float | None = None
    dark_current_e: float = 0.0
    rng: InitVar[RNGLike] = None
    offset_map_adu: np.ndarray = field(init=False, repr=False)
    read_noise_map_e: np.ndarray = field(init=False, repr=False)
    e_per_adu_map: np.ndarray = field(init=False, repr=False)

    def __post_init__(self, rng: RNGLike) -> None:
        shape = tuple(int(s) for s in np.atleast_1d(self.shape))
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(
                f"`shape` must be (rows, cols) with positive sizes; got {self.shape!r}."
            )
        set_ = object.__setattr__
        set_(self, "shape", shape)
        set_(self, "e_per_adu", check_positive(self.e_per_adu, "e_per_adu"))
        set_(self, "offset_adu", check_positive(self.offset_adu, "offset_adu", allow_zero=True))
        for name in ("offset_std_adu", "read_noise_e", "read_noise_spread", "gain_spread"):
            set_(self, name, check_positive(getattr(self, name), name, allow_zero=True))
        set_(self, "dark_current_e", check_positive(self.dark_current_e, "dark_current_e", allow_zero=True))  # fmt: skip
        set_(self, "excess_noise_factor", check_range(self.excess_noise_factor, "excess_noise_factor", 1.0, 2.0))  # fmt: skip
        bits = check_range(self.bit_depth, "bit_depth", 1, 16)
        if bits != int(bits):
            raise ValueError(f"`bit_depth` must be an integer; got {self.bit_depth!r}.")
        set_(self, "bit_depth", int(bits))
        if self.full_well_e is not None:
            set_(self, "full_well_e", check_positive(self.full_well_e, "full_well_e"))

        # One stream for the maps, drawn in a fixed order: same seed, same maps.
        gen = stream(root_seed(rng), CAMERA)
        offset = self.offset_adu + self.offset_std_adu * gen.standard_normal(shape)
        read = self.read_noise_e * np.exp(self.read_noise_spread * gen.standard_normal(shape))
        gain = self.e_per_adu * np.exp(self.gain_spread * gen.standard_normal(shape))
        set_(self, "offset_map_adu", _readonly(offset))
        set_(self, "read_noise_map_e", _readonly(read))
        set_(self, "e_per_adu_map", _readonly(gain))

    @property
    def adu_per_e(self) -> float:
        """ADU per photoelectron, ``1 / e_per_adu``."""
        return 1.0 / self.e_per_adu

    @property
    def max_adu(self) -> int:
        """The largest value the ADC writes, ``2**bit_depth - 1``."""
        return 2**self.bit_depth - 1

    @property
    def saturation_adu(self) -> float:
        """The mean ADU at which the output stops rising (ADC or full well, whichever first)."""
        if self.full_well_e is None:
            return float(self.max_adu)
        return float(min(self.max_adu, self.offset_adu + self.full_well_e / self.e_per_adu))

    def expected_adu(self, signal_e: Any) -> np.ndarray:
        """Mean ADU for expected photoelectrons ``signal_e`` (..., Y, X), away from clipping."""
        s = np.asarray(signal_e, dtype=np.float64)
        return self.offset_map_adu + (s + self.dark_current_e) / self.e_per_adu_map

    def variance_adu(self, signal_e: Any, *, quantized: bool = True) -> np.ndarray:
        """ADU variance for expected photoelectrons ``signal_e``, away from clipping.

        ``(F**2 (S + D) + sigma_read**2) / g**2``, plus ``1/12`` when ``quantized``.
        """
        s = np.asarray(signal_e, dtype=np.float64) + self.dark_current_e
        var = (self.excess_noise_factor * s + self.read_noise_map_e**2) / self.e_per_adu_map**2
        return var + 1.0 / 12.0 if quantized else var

    def expose(self, signal_e: Any, *, rng: RNGLike = None, dtype: str = "uint16") -> np.ndarray:
        """Read out frames with expected photoelectrons ``signal_e``.

        Parameters
        ----------
        signal_e : array_like, (..., Y, X)
            Expected photoelectrons per pixel (>= 0); broadcast against the sensor.
        rng : int, numpy.random.Generator or None
            Noise source.
        dtype : {"uint16", "float32"}
            "uint16": the ADC output (rounded, clipped). "float32": the same values
            before rounding (no quantisation noise), still clipped to the ADC range.

        Returns
        -------
        ndarray, (..., Y, X)
        """
        gen = rng if isinstance(rng, np.random.Generator) else stream(root_seed(rng), 0)
        s = np.broadcast_to(np.asarray(signal_e, dtype=np.float64), np.shape(signal_e)[:-2] + self.shape)  # fmt: skip
        return expose_frames(self, s, gen, check_choice(dtype, "dtype", DTYPES))

    def summary(self) -> dict[str, Any]:
        """JSON-friendly scalars describing the camera (no arrays)."""
        rn = self.read_noise_map_e
        return {
            "shape": list(self.shape),
            "e_per_adu": self.e_per_adu,
            "adu_per_e": self.adu_per_e,
            "e_per_adu_mean": float(self.e_per_adu_map.mean()),
            "offset_adu": self.offset_adu,
            "offset_adu_mean": float(self.offset_map_adu.mean()),
            "offset_adu_std": float(self.offset_map_adu.std()),
            "read_noise_e": self.read_noise_e,
            "read_noise_e_mean": float(rn.mean()),
            "read_noise_e_rms": float(np.sqrt(np.mean(rn**2))),
            "excess_noise_factor": self.excess_noise_factor,
            "bit_depth": self.bit_depth,
            "max_adu": self.max_adu,
            "full_well_e": self.full_well_e,
            "dark_current_e": self.dark_current_e,
            "saturation_adu": self.saturation_adu,
        }


def expose_frames(
    cam: Camera,
    signal_e: np.ndarray,
    gen: np.random.Generator,
    dtype: str,
    *,
    full_well_e: float | None = None,
    max_adu: float | None = None,
) -> np.ndarray:
    """The exposure model of :class:`Camera` (see its Notes) for expected ``signal_e``.

    ``full_well_e`` / ``max_adu`` override the camera's own (lower) limits.
    """
    mean_e = signal_e + cam.dark_current_e if cam.dark_current_e else signal_e
    if np.any(mean_e < 0) or not np.all(np.isfinite(mean_e)):
        raise ValueError("`signal_e` must be finite and >= 0 everywhere.")
    electrons = gen.poisson(mean_e).astype(np.float64)
    f2 = cam.excess_noise_factor
    if f2 > 1.0:
        # Gamma with shape n/(F^2-1): mean n, variance (F^2-1) n; shape 0 gives exactly 0.
        electrons = gen.gamma(electrons / (f2 - 1.0), f2 - 1.0)
    well = cam.full_well_e if full_well_e is None else full_well_e
    if well is not None:
        np.minimum(electrons, well, out=electrons)
    adu = electrons / cam.e_per_adu_map
    adu += gen.standard_normal(adu.shape) * (cam.read_noise_map_e / cam.e_per_adu_map)
    adu += cam.offset_map_adu
    if dtype == "uint16":
        np.rint(adu, out=adu)
    np.clip(adu, 0.0, cam.max_adu if max_adu is None else max_adu, out=adu)
    return adu.astype(dtype)


def as_camera(
    camera: Camera | Mapping[str, Any] | None, shape: Any, rng: RNGLike, name: str = "shape"
) -> Camera:
    """A Camera from ``camera`` (a Camera, keyword arguments for one, or None).

    ``shape`` is the sensor shape the caller needs (None: the camera's own, or 256 x 256),
    called ``name`` in messages; ``rng`` seeds the maps when the camera is built here.
    """
    if isinstance(camera, Camera):
        if shape is not None and tuple(int(s) for s in shape) != camera.shape:
            fix = "pass shape=None (or shape=camera.shape)" if name == "shape" else f"match `{name}`"  # fmt: skip
            raise ValueError(
                f"`camera.shape` is {camera.shape} but `{name}` is {tuple(shape)}; "
                f"{fix}, or give a Camera of the right size."
            )
        return camera
    if camera is None:
        camera = {}
    if not isinstance(camera, Mapping):
        raise TypeError(
            "`camera` must be a Camera, a dict of Camera keyword arguments or None; "
            f"got {type(camera).__name__}."
        )
    kwargs = dict(camera)
    if "shape" in kwargs and shape is not None and tuple(kwargs["shape"]) != tuple(shape):
        raise ValueError(
            f"`camera['shape']` is {kwargs['shape']} but `{name}` is {tuple(shape)}; give one."
        )
    kwargs.setdefault("shape", (256, 256) if shape is None else shape)
    kwargs.setdefault("rng", rng)
    return Camera(**kwargs)
