"""Camera stacks with known photon-transfer truth: flat fields, darks, illumination series."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from camtrack._validation import check_choice, check_positive
from camtrack.simulate._camera import DTYPES, Camera, as_camera, expose_frames
from camtrack.simulate._camera_truth import CameraTruth
from camtrack.simulate._illumination import pattern, signal_map
from camtrack.simulate._lazy import build_stack, check_chunks
from camtrack.simulate._optics import BeadOptics
from camtrack.simulate._render import PatternSpectra, multiply_patterns
from camtrack.simulate._seeding import (
    CAMERA,
    FRAME,
    GEOMETRY,
    RNGLike,
    child_seed,
    root_seed,
    stream,
)

__all__ = ["camera_stack", "dark_stack", "illumination_series"]


def _check_frames(n_frames: Any, name: str = "n_frames") -> int:
    if isinstance(n_frames, bool) or int(n_frames) != n_frames or n_frames < 1:
        raise ValueError(f"`{name}` must be a positive integer; got {n_frames!r}.")
    return int(n_frames)


def _crossing_tracks(
    gen: np.random.Generator,
    n_beads: int,
    n_frames: int,
    shape: tuple[int, int],
    speed: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Straight tracks (T, n) through the field, centred at mid-stack.

    ``speed`` in pixels per frame; default: cross the field once over the stack.
    """
    ny, nx = shape
    t = np.arange(n_frames) - (n_frames - 1) / 2.0
    angle = gen.uniform(0.0, 2.0 * np.pi, n_beads)
    cx = gen.uniform(0.2, 0.8, n_beads) * (nx - 1)
    cy = gen.uniform(0.2, 0.8, n_beads) * (ny - 1)
    if speed is None:
        speed = 1.2 * max(ny, nx) / max(n_frames - 1, 1)
    x = cx + np.outer(t, speed * np.cos(angle))
    y = cy + np.outer(t, speed * np.sin(angle))
    return x, y


def _make_stack(
    kind: str,
    cam: Camera,
    signal: np.ndarray,
    scale: np.ndarray,
    bleach_factor: np.ndarray,
    root: np.random.SeedSequence,
    *,
    n_beads: int = 0,
    bead_speed: float | None = None,
    optics: BeadOptics | None = None,
    level_index: np.ndarray | None = None,
    levels_e: np.ndarray | None = None,
    dtype: str = "uint16",
    chunks: int | None = None,
) -> tuple[Any, CameraTruth]:
    n_frames = scale.size
    gen = stream(root, GEOMETRY)
    if n_beads:
        optics = BeadOptics() if optics is None else optics
        bx, by = _crossing_tracks(gen, n_beads, n_frames, cam.shape, bead_speed)
        bz = gen.uniform(-3000.0, 3000.0, n_beads)
        spectra = PatternSpectra(optics, bz)
    else:
        bx = by = np.zeros((n_frames, 0))
        bz = np.zeros(0)
        spectra = None

    def modulation(t: int) -> np.ndarray | None:
        if spectra is None:
            return None
        m = np.ones(cam.shape)
        multiply_patterns(m, spectra, np.arange(n_beads), bx[t], by[t])
        return m

    def render(frames: np.ndarray) -> np.ndarray:
        out = np.empty((frames.size, *cam.shape), dtype=dtype)
        for k, t in enumerate(frames):
            s = signal * scale[t]
            mod = modulation(int(t))
            if mod is not None:
                s = s * mod
            out[k] = expose_frames(cam, s, stream(root, FRAME, int(t)), dtype)
        return out

    stack = build_stack(render, n_frames, cam.shape, dtype, chunks)
    truth = CameraTruth(
        kind=kind,
        camera=cam,
        signal_e=signal,
        frame_scale=scale,
        bleach_factor=bleach_factor,
        level_index=level_index,
        levels_e=levels_e,
        bead_x=bx,
        bead_y=by,
        bead_z_nm=bz,
        dtype=dtype,
        _modulation=modulation,
    )
    return stack, truth


def camera_stack(
    n_frames: int = 200,
    shape: tuple[int, int] | None = None,
    *,
    camera: Camera | Mapping[str, Any] | None = None,
    signal_e: Any = (50.0, 2000.0),
    illumination: str | np.ndarray = "gradient",
    n_beads: int = 0,
    bead_speed: float | None = None,
    bleach: float = 0.0,
    optics: BeadOptics | None = None,
    dtype: str = "uint16",
    chunks: int | None = None,
    rng: RNGLike = None,
) -> tuple[Any, CameraTruth]:
    """A stack of illuminated frames with known gain, offset and read noise.

    Parameters
    ----------
    n_frames : int
        Number of frames T.
    shape : (int, int), optional
        Frame shape (Y, X); default the camera's shape, else (256, 256).
    camera : Camera or dict, optional
        The sensor, or keyword arguments for :class:`Camera` (its maps are then seeded
        from ``rng``). Default ``Camera()``: 2 e-/ADU, offset 100 ADU, read noise 1.5 e-.
    signal_e : float, (low, high) or ndarray (Y, X)
        Expected photoelectrons per pixel per frame: a constant, a range spanned by the
        ``illumination`` pattern (so a mean-variance curve has many levels), or a map.
    illumination : {"gradient", "vignette", "flat"} or ndarray (Y, X)
        Spatial pattern mapped onto the ``signal_e`` range: a diagonal ramp, cos^4
        vignetting (centre high, corners low), uniform (at ``high``), or your own
        pattern (min-max normalised). Ignored when ``signal_e`` is a map or a number.
    n_beads : int
        Moving objects (defocused bead images, dark and bright rings) that cross the
        field once over the stack on straight tracks: the non-stationary content a
        robust background or gain estimator must reject.
    bead_speed : float, optional
        Bead speed in pixels per frame along the tracks (centred at mid-stack).
        Default: ``1.2 * max(Y, X) / (T - 1)``, each bead crossing the field once. A
        small value (e.g. 0.05) gives slowly moving beads that cover the same pixels
        for hundreds of frames, the hard case for a plain temporal median.
    bleach : float
        Fraction of the signal lost by the last frame, in [0, 1); exponential decay.
    optics : BeadOptics, optional
        Optics of the moving beads.
    dtype : {"uint16", "float32"}
        ADC output, or the same values before rounding.
    chunks : int, optional
        Frames per chunk: return a lazy dask array, generated chunk by chunk. Every
        frame has its own seeded noise stream, so the values do not depend on
        ``chunks`` and equal the eager (numpy) stack with the same ``rng``.
    rng : int, numpy.random.Generator or None
        Seed.

    Returns
    -------
    stack : ndarray or dask.array.Array, (T, Y, X)
    truth : CameraTruth

    Notes
    -----
    Axis order (frames, rows, cols). Per pixel and frame, expected photoelectrons
    ``S = signal_e * bleach_factor[t] * beads(t)``; ADU mean ``S / e_per_adu + offset``
    and variance ``(F**2 S + read_noise_e**2) / e_per_adu**2 + 1/12`` (see
    :class:`Camera`). ``bleach_factor[t] = (1 - bleach) ** (t / (T - 1))``.

    Examples
    --------
    >>> from camtrack.simulate import camera_stack
    >>> stack, truth = camera_stack(n_frames=20, shape=(64, 64), rng=1)
    >>> stack.shape, stack.dtype, truth.e_per_adu
    ((20, 64, 64), dtype('uint16'), 2.0)
    >>> lazy, _ = camera_stack(n_frames=20, shape=(64, 64), chunks=8, rng=1)
    >>> bool((lazy.compute() == stack).all())
    True
    """
    n_frames = _check_frames(n_frames)
    dtype = check_choice(dtype, "dtype", DTYPES)
    chunks = check_chunks(chunks)
    if isinstance(n_beads, bool) or int(n_beads) != n_beads or n_beads < 0:
        raise ValueError(f"`n_beads` must be a non-negative integer; got {n_beads!r}.")
    if bead_speed is not None:
        bead_speed = check_positive(bead_speed, "bead_speed", allow_zero=True)
    bleach = check_positive(bleach, "bleach", allow_zero=True)
    if bleach >= 1.0:
        raise ValueError(f"`bleach` must lie in [0, 1) (fraction lost by the last frame); got {bleach}.")  # fmt: skip
    root = root_seed(rng)
    cam = as_camera(camera, shape, child_seed(root, CAMERA))
    signal = signal_map(signal_e, illumination, cam.shape)
    decay = np.arange(n_frames) / max(n_frames - 1, 1)
    bleach_factor = (1.0 - bleach) ** decay
    return _make_stack(
        "camera_stack",
        cam,
        signal,
        bleach_factor.copy(),
        bleach_factor,
        root,
        n_beads=int(n_beads),
        bead_speed=bead_speed,
        optics=optics,
        dtype=dtype,
        chunks=chunks,
    )


def dark_stack(
    n_frames: int = 100,
    shape: tuple[int, int] | None = None,
    *,
    camera: Camera | Mapping[str, Any] | None = None,
    dtype: str = "uint16",
    chunks: int | None = None,
    rng: RNGLike = None,
) -> tuple[Any, CameraTruth]:
    """A dark stack (no light): offset, read noise and dark current only.

    Parameters
    ----------
    n_frames : int
        Number of frames T.
    shape : (int, int), optional
        Frame shape; default the camera's shape, else (256, 256).
    camera : Camera or dict, optional
        The sensor; pass the same Camera to :func:`camera_stack` or
        :func:`illumination_series` for light frames with the same per-pixel maps.
    dtype : {"uint16", "float32"}
        ADC output, or the values before rounding.
    chunks : int, optional
        Frames per chunk for a lazy dask array (same values as eager).
    rng : int, numpy.random.Generator or None
        Seed.

    Returns
    -------
    stack : ndarray or dask.array.Array, (T, Y, X)
    truth : CameraTruth

    Notes
    -----
    Per pixel: mean ``offset_map_adu + dark_current_e / e_per_adu``, variance
    ``(F**2 dark_current_e + read_noise_map_e**2) / e_per_adu**2 + 1/12``.

    Examples
    --------
    >>> from camtrack.simulate import Camera, dark_stack
    >>> cam = Camera(shape=(32, 32), offset_std_adu=3.0, read_noise_spread=0.3, rng=0)
    >>> dark, truth = dark_stack(50, camera=cam, rng=2)
    >>> truth.offset_map_adu.shape
    (32, 32)
    """
    n_frames = _check_frames(n_frames)
    dtype = check_choice(dtype, "dtype", DTYPES)
    root = root_seed(rng)
    cam = as_camera(camera, shape, child_seed(root, CAMERA))
    ones = np.ones(n_frames)
    return _make_stack(
        "dark_stack",
        cam,
        np.zeros(cam.shape),
        ones,
        ones.copy(),
        root,
        dtype=dtype,
        chunks=check_chunks(chunks),
    )


def illumination_series(
    levels_e: Any = (0.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0),
    n_frames: int = 50,
    shape: tuple[int, int] | None = None,
    *,
    camera: Camera | Mapping[str, Any] | None = None,
    illumination: str | np.ndarray = "flat",
    dtype: str = "uint16",
    chunks: int | None = None,
    rng: RNGLike = None,
) -> tuple[Any, CameraTruth]:
    """Blocks of frames at several illumination levels (per-pixel sCMOS calibration).

    Parameters
    ----------
    levels_e : sequence of float
        Mean photoelectrons per pixel of each level (>= 0; 0 is a dark block).
    n_frames : int
        Frames per level; the stack has ``len(levels_e) * n_frames`` frames, level by
        level.
    shape : (int, int), optional
        Frame shape; default the camera's shape, else (256, 256).
    camera : Camera or dict, optional
        The sensor (share one Camera across dark and light stacks).
    illumination : {"flat", "gradient", "vignette"} or ndarray (Y, X)
        Relative pattern, normalised to mean 1: "flat" is uniform; "gradient" and
        "vignette" vary by +-15 % around the mean (``0.7 + 0.3 p``, renormalised); an
        array is used as given (normalised to mean 1).
    dtype : {"uint16", "float32"}
        ADC output, or the values before rounding.
    chunks : int, optional
        Frames per chunk for a lazy dask array (same values as eager).
    rng : int, numpy.random.Generator or None
        Seed.

    Returns
    -------
    stack : ndarray or dask.array.Array, (L * n_frames, Y, X)
    truth : CameraTruth
        ``truth.signal_e`` is the relative pattern; ``truth.frame_scale[t]`` the level
        of frame ``t``; ``truth.level_index`` and ``truth.levels_e`` name the blocks.

    Notes
    -----
    Frame ``t`` has expected photoelectrons ``levels_e[t // n_frames] * signal_e``.

    Examples
    --------
    >>> from camtrack.simulate import illumination_series
    >>> stack, truth = illumination_series([0, 100, 1000], n_frames=10, shape=(16, 16), rng=3)
    >>> stack.shape, truth.level_index[10]
    ((30, 16, 16), np.int64(1))
    """
    levels = np.atleast_1d(np.asarray(levels_e, dtype=np.float64))
    if levels.ndim != 1 or levels.size == 0 or not np.all(np.isfinite(levels)) or levels.min() < 0:  # fmt: skip
        raise ValueError(f"`levels_e` must be a non-empty sequence of numbers >= 0; got {levels_e!r}.")  # fmt: skip
    per_level = _check_frames(n_frames)
    dtype = check_choice(dtype, "dtype", DTYPES)
    root = root_seed(rng)
    cam = as_camera(camera, shape, child_seed(root, CAMERA))
    if isinstance(illumination, str):
        p = pattern(illumination, cam.shape)
        rel = np.ones(cam.shape) if illumination == "flat" else 0.7 + 0.3 * p
    else:
        rel = np.asarray(illumination, dtype=np.float64)
        if rel.shape != cam.shape or not np.all(np.isfinite(rel)) or rel.min() < 0 or rel.mean() <= 0:  # fmt: skip
            raise ValueError(
                f"`illumination` array must be finite, >= 0, not all 0, with shape {cam.shape}."
            )
    rel = rel / rel.mean()
    index = np.repeat(np.arange(levels.size), per_level)
    return _make_stack(
        "illumination_series",
        cam,
        rel,
        levels[index],
        np.ones(index.size),
        root,
        level_index=index,
        levels_e=levels,
        dtype=dtype,
        chunks=check_chunks(chunks),
    )
