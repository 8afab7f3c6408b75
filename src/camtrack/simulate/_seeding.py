"""Random streams: one root seed per call, one independent stream per purpose and frame.

Every random draw of the simulator comes from a generator keyed by *what* it is for
(camera maps, trajectories, the noise of frame ``t``), never from a shared running
generator. So a frame's noise does not depend on how the stack is chunked, a lazy dask
stack equals the eager one drawn with the same seed, and chunks can be computed in any
order or on any worker.
"""

from __future__ import annotations

import numbers
from typing import TypeAlias

import numpy as np

__all__ = ["CAMERA", "FRAME", "GEOMETRY", "MOTION", "RNGLike", "child_seed", "root_seed", "stream"]

RNGLike: TypeAlias = int | np.random.Generator | np.random.SeedSequence | None

# Stream keys, kept apart so adding a purpose never shifts another's numbers.
CAMERA = 0  # fixed per-pixel maps of a Camera
GEOMETRY = 1  # object placement
FRAME = 2  # per-frame noise: stream(root, FRAME, t)
MOTION = 3  # trajectories


def root_seed(rng: RNGLike) -> np.random.SeedSequence:
    """Turn ``rng`` (int seed, Generator, SeedSequence or None) into a root SeedSequence.

    A Generator is advanced by one draw of 128 bits, so two calls with the same Generator
    give different (but reproducible) results, as numpy users expect.
    """
    if rng is None:
        return np.random.SeedSequence()
    if isinstance(rng, np.random.SeedSequence):
        return rng
    if isinstance(rng, np.random.Generator):
        return np.random.SeedSequence(rng.integers(0, 2**63, size=2).tolist())
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        if int(rng) < 0:
            raise ValueError(f"`rng` must be a non-negative integer seed; got {rng!r}.")
        return np.random.SeedSequence(int(rng))
    raise TypeError(
        "`rng` must be an int seed, a numpy.random.Generator, a SeedSequence or None; "
        f"got {type(rng).__name__}."
    )


def child_seed(root: np.random.SeedSequence, *key: int) -> np.random.SeedSequence:
    """The seed for one purpose (and frame) under ``root``; same key, same seed."""
    return np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, *key))


def stream(root: np.random.SeedSequence, *key: int) -> np.random.Generator:
    """The generator for one purpose (and frame) under ``root``; same key, same numbers."""
    return np.random.Generator(np.random.PCG64(child_seed(root, *key)))
