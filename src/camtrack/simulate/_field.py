"""A full field of view with tethered and reference beads moving in x, y and z."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from camtrack._validation import check_choice, check_positive
from camtrack.simulate._camera import DTYPES, Camera, as_camera, expose_frames
from camtrack.simulate._lazy import build_stack, check_chunks
from camtrack.simulate._optics import BeadOptics
from camtrack.simulate._render import PatternSpectra, multiply_patterns
from camtrack.simulate._seeding import (
    CAMERA,
    FRAME,
    GEOMETRY,
    MOTION,
    RNGLike,
    child_seed,
    root_seed,
    stream,
)

__all__ = ["FieldTruth", "bead_field"]

MOTIONS = ("steps", "sine")


@dataclass(frozen=True, eq=False)
class FieldTruth:
    """Truth of :func:`bead_field`: every bead's position in every frame.

    Attributes
    ----------
    x, y : ndarray, (T, N)
        Bead centres in full-frame pixels (x = column, y = row, pixel centres at
        integer coordinates), common drift included.
    z_nm : ndarray, (T, N)
        Bead centre relative to the focal plane, nm (positive: farther from the
        objective), common drift included.
    is_reference : ndarray of bool, (N,)
        Reference beads, stuck to the surface: they move only with the common drift.
    drift_x, drift_y : ndarray, (T,)
        Common (stage) drift in pixels; ``drift_z_nm`` (T,) in nm.
    background_e : float
        Photoelectrons per background pixel.
    camera : Camera
    optics : BeadOptics
    motion : str
    dtype : str

    Notes
    -----
    A tethered bead's position is ``anchor + tether motion + drift``; a reference
    bead's is ``anchor + drift``. So ``z_nm[:, i] - z_nm[:, ref]`` is drift-free.
    """

    x: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)
    z_nm: np.ndarray = field(repr=False)
    is_reference: np.ndarray
    drift_x: np.ndarray = field(repr=False)
    drift_y: np.ndarray = field(repr=False)
    drift_z_nm: np.ndarray = field(repr=False)
    background_e: float
    camera: Camera
    optics: BeadOptics
    motion: str
    dtype: str

    @property
    def n_frames(self) -> int:
        """Number of frames T."""
        return int(self.x.shape[0])

    @property
    def n_beads(self) -> int:
        """Number of beads N (reference beads included)."""
        return int(self.x.shape[1])

    def expected_e(self, frames: Any) -> np.ndarray:
        """Expected photoelectrons (n, Y, X) of ``frames`` (frame indices)."""
        idx = np.atleast_1d(np.asarray(frames))
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"`frames` must be frame indices (ints); got {frames!r}.")
        return _expected_e(self, idx % self.n_frames)

    def expected_adu(self, frames: Any) -> np.ndarray:
        """Mean ADU (n, Y, X) of ``frames``, away from clipping."""
        return self.camera.expected_adu(self.expected_e(frames))

    def to_table(self) -> dict[str, np.ndarray]:
        """Long-format columns (one row per frame and bead): frame, bead, x, y, z_nm, is_reference."""
        t, n = self.x.shape
        return {
            "frame": np.repeat(np.arange(t), n),
            "bead": np.tile(np.arange(n), t),
            "x": self.x.ravel(),
            "y": self.y.ravel(),
            "z_nm": self.z_nm.ravel(),
            "is_reference": np.tile(self.is_reference, t),
        }

    def to_dict(self) -> dict[str, Any]:
        """Small JSON-friendly summary (scalars and per-bead lists; no trajectories)."""
        return {
            "kind": "bead_field",
            "n_frames": self.n_frames,
            "shape": list(self.camera.shape),
            "n_beads": self.n_beads,
            "reference_beads": [int(i) for i in np.flatnonzero(self.is_reference)],
            "motion": self.motion,
            "x_mean": [float(v) for v in self.x.mean(axis=0)],
            "y_mean": [float(v) for v in self.y.mean(axis=0)],
            "z_nm_min": [float(v) for v in self.z_nm.min(axis=0)],
            "z_nm_max": [float(v) for v in self.z_nm.max(axis=0)],
            "drift_total": [
                float(self.drift_x[-1] - self.drift_x[0]),
                float(self.drift_y[-1] - self.drift_y[0]),
                float(self.drift_z_nm[-1] - self.drift_z_nm[0]),
            ],
            "background_e": self.background_e,
            "dtype": self.dtype,
            "optics": self.optics.summary(),
            "camera": self.camera.summary(),
        }


def _expected_e(truth: FieldTruth, frames: np.ndarray) -> np.ndarray:
    """Expected photoelectrons for the given frames (one spectra set for all of them)."""
    out = np.full((frames.size, *truth.camera.shape), truth.background_e)
    if truth.n_beads == 0:
        return out
    z = truth.z_nm[frames]
    z_u, rows = np.unique(z, return_inverse=True)
    rows = rows.reshape(z.shape)
    spectra = PatternSpectra(truth.optics, z_u)
    for k, t in enumerate(frames):
        multiply_patterns(out[k], spectra, rows[k], truth.x[t], truth.y[t])
    return out


def _anchors(gen: np.random.Generator, n: int, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Jittered-grid positions: one bead per cell, away from the cell edges."""
    ny, nx = shape
    if n == 0:
        return np.zeros(0), np.zeros(0)
    cols = int(np.ceil(np.sqrt(n * nx / ny)))
    rows = int(np.ceil(n / cols))
    cells = gen.permutation(rows * cols)[:n]
    cy, cx = np.divmod(cells, cols)
    h, w = ny / rows, nx / cols
    y = (cy + gen.uniform(0.3, 0.7, n)) * h - 0.5
    x = (cx + gen.uniform(0.3, 0.7, n)) * w - 0.5
    return x, y


def _ou(gen: np.random.Generator, n_frames: int, n: int, std: float, tau: float) -> np.ndarray:
    """Ornstein-Uhlenbeck (stationary) samples (T, n) with std ``std`` and time constant ``tau``."""
    rho = np.exp(-1.0 / tau)
    kick = gen.standard_normal((n_frames, n)) * std * np.sqrt(1.0 - rho**2)
    out = np.empty((n_frames, n))
    out[0] = gen.standard_normal(n) * std
    for t in range(1, n_frames):
        out[t] = rho * out[t - 1] + kick[t]
    return out


def bead_field(
    n_frames: int = 200,
    shape: tuple[int, int] | None = None,
    n_beads: int = 4,
    *,
    n_reference: int = 1,
    optics: BeadOptics | None = None,
    background_e: float = 4000.0,
    camera: Camera | Mapping[str, Any] | None = None,
    z_range_nm: tuple[float, float] = (-4000.0, 4000.0),
    motion: str = "steps",
    n_steps: int = 4,
    xy_std_nm: float = 30.0,
    z_std_nm: float = 20.0,
    tau_frames: float = 5.0,
    drift_nm: tuple[float, float, float] = (150.0, -100.0, 80.0),
    drift_walk_nm: float = 1.0,
    dtype: str = "uint16",
    chunks: int | None = None,
    rng: RNGLike = None,
) -> tuple[Any, FieldTruth]:
    """A magnetic-tweezers field of view: tethered and reference beads over time.

    Parameters
    ----------
    n_frames : int
        Number of frames T.
    shape : (int, int), optional
        Frame shape (Y, X); default the camera's shape, else (256, 256).
    n_beads : int
        Beads in the field, reference beads included.
    n_reference : int
        How many of them (the first ones) are reference beads stuck to the surface.
    optics : BeadOptics, optional
        Optical parameters (default ``BeadOptics()``).
    background_e : float
        Photoelectrons per background pixel.
    camera : Camera or dict, optional
        The sensor or keyword arguments for :class:`Camera` (default 2 e-/ADU, offset
        100 ADU, read noise 1.5 e-).
    z_range_nm : (float, float)
        Range of the tethered beads' z motion and of the reference beads' heights.
    motion : {"steps", "sine"}
        Tethered-bead z: ``n_steps`` plateaus at random heights (force steps), or one
        sine period over the stack spanning ``z_range_nm`` with a random phase.
    n_steps : int
        Plateaus for ``motion="steps"``.
    xy_std_nm, z_std_nm : float
        Thermal fluctuation (standard deviation) of tethered beads around their
        anchor / z program, as Ornstein-Uhlenbeck processes.
    tau_frames : float
        Their correlation time in frames.
    drift_nm : (float, float, float)
        Common stage drift (x, y, z) accumulated linearly over the stack, nm.
    drift_walk_nm : float
        Per-frame random-walk step (standard deviation) added to the drift in x, y, z.
    dtype : {"uint16", "float32"}
        ADC output, or the values before rounding.
    chunks : int, optional
        Frames per chunk: a lazy dask array rendered chunk by chunk (same values as
        eager).
    rng : int, numpy.random.Generator or None
        Seed.

    Returns
    -------
    stack : ndarray or dask.array.Array, (T, Y, X)
    truth : FieldTruth
        ``x``, ``y`` (T, N) in pixels, ``z_nm`` (T, N), ``is_reference`` (N,), drift.

    Notes
    -----
    Axis order (frames, rows, cols); pixel centres at integer coordinates. Each frame's
    expected photoelectrons are ``background_e`` times the product of the beads'
    pixel-integrated patterns (:func:`bead_image`), then exposed with the camera model
    (Poisson, read noise, offset, rounding). Every frame has its own noise stream.

    Examples
    --------
    >>> from camtrack.simulate import bead_field
    >>> stack, truth = bead_field(n_frames=10, shape=(128, 128), n_beads=3, rng=0)
    >>> stack.shape, truth.z_nm.shape, truth.is_reference.tolist()
    ((10, 128, 128), (10, 3), [True, False, False])
    """
    if isinstance(n_frames, bool) or int(n_frames) != n_frames or n_frames < 1:
        raise ValueError(f"`n_frames` must be a positive integer; got {n_frames!r}.")
    if isinstance(n_beads, bool) or int(n_beads) != n_beads or n_beads < 0:
        raise ValueError(f"`n_beads` must be a non-negative integer; got {n_beads!r}.")
    if int(n_reference) != n_reference or not 0 <= n_reference <= n_beads:
        raise ValueError(f"`n_reference` must be an integer in [0, n_beads={n_beads}]; got {n_reference!r}.")  # fmt: skip
    if int(n_steps) != n_steps or n_steps < 1:
        raise ValueError(f"`n_steps` must be a positive integer; got {n_steps!r}.")
    z_lo, z_hi = (float(v) for v in z_range_nm)
    if not z_lo <= z_hi:
        raise ValueError(f"`z_range_nm` must be (low, high) with low <= high; got {z_range_nm!r}.")  # fmt: skip
    motion = check_choice(motion, "motion", MOTIONS)
    dtype = check_choice(dtype, "dtype", DTYPES)
    chunks = check_chunks(chunks)
    background_e = check_positive(background_e, "background_e")
    xy_std, z_std = check_positive(xy_std_nm, "xy_std_nm", allow_zero=True), check_positive(z_std_nm, "z_std_nm", allow_zero=True)  # fmt: skip
    tau = check_positive(tau_frames, "tau_frames")
    walk = check_positive(drift_walk_nm, "drift_walk_nm", allow_zero=True)
    drift_total = np.asarray(drift_nm, dtype=np.float64)
    if drift_total.shape != (3,) or not np.all(np.isfinite(drift_total)):
        raise ValueError(f"`drift_nm` must be three numbers (x, y, z); got {drift_nm!r}.")
    optics = BeadOptics() if optics is None else optics
    root = root_seed(rng)
    cam = as_camera(camera, shape, child_seed(root, CAMERA))
    n_frames, n_beads, n_reference = int(n_frames), int(n_beads), int(n_reference)

    geo = stream(root, GEOMETRY)
    anchor_x, anchor_y = _anchors(geo, n_beads, cam.shape)
    anchor_z = geo.uniform(z_lo, z_hi, n_beads)
    mov = stream(root, MOTION)
    t = np.arange(n_frames)
    frac = t / max(n_frames - 1, 1)
    drift = frac[:, None] * drift_total + np.cumsum(mov.standard_normal((n_frames, 3)) * walk, axis=0)  # fmt: skip
    drift -= drift[0]
    px = optics.nm_per_px
    tether = ~(np.arange(n_beads) < n_reference)
    dx = _ou(mov, n_frames, n_beads, xy_std, tau) / px
    dy = _ou(mov, n_frames, n_beads, xy_std, tau) / px
    dz = _ou(mov, n_frames, n_beads, z_std, tau)
    if motion == "steps":
        levels = mov.uniform(z_lo, z_hi, (int(n_steps), n_beads))
        program = levels[np.minimum((frac * n_steps).astype(int), n_steps - 1)]
    else:
        phase = mov.uniform(0.0, 2.0 * np.pi, n_beads)
        program = (z_lo + z_hi) / 2 + (z_hi - z_lo) / 2 * np.sin(2 * np.pi * frac[:, None] + phase)
    x = anchor_x + np.where(tether, dx, 0.0) + drift[:, :1] / px
    y = anchor_y + np.where(tether, dy, 0.0) + drift[:, 1:2] / px
    z = np.where(tether, program + dz, anchor_z) + drift[:, 2:3]

    truth = FieldTruth(
        x=x,
        y=y,
        z_nm=z,
        is_reference=~tether,
        drift_x=drift[:, 0] / px,
        drift_y=drift[:, 1] / px,
        drift_z_nm=drift[:, 2],
        background_e=background_e,
        camera=cam,
        optics=optics,
        motion=motion,
        dtype=dtype,
    )

    def render(frames: np.ndarray) -> np.ndarray:
        expected = _expected_e(truth, frames)
        out = np.empty(expected.shape, dtype=dtype)
        for k, f in enumerate(frames):
            out[k] = expose_frames(cam, expected[k], stream(root, FRAME, int(f)), dtype)
        return out

    return build_stack(render, n_frames, cam.shape, dtype, chunks), truth
