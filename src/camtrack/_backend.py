"""Array-backend routing: numpy or cupy, chosen once at each public function.

``namespace(x)`` returns ``(xp, ndi)``: the array module and its ``ndimage``. cupy
is imported only when a cupy array is actually passed (or ``device="gpu"`` is
asked for), so ``import camtrack`` never touches CUDA.
"""

from __future__ import annotations

import contextlib
import sys
from types import ModuleType
from typing import Any

import numpy as np
import scipy.ndimage

__all__ = [
    "dask_meta", "is_cupy", "is_dask", "namespace", "release_memory", "single_threaded_blas", "to_host",
]  # fmt: skip


def is_cupy(x: Any) -> bool:
    """True when ``x`` is a cupy array (checked without importing cupy)."""
    cupy = sys.modules.get("cupy")
    return cupy is not None and isinstance(x, cupy.ndarray)


def is_dask(x: Any) -> bool:
    """True when ``x`` is a dask array (checked without importing dask.array)."""
    da = sys.modules.get("dask.array")
    return da is not None and isinstance(x, da.Array)


def _cupy_modules() -> tuple[ModuleType, ModuleType]:
    try:
        import cupy
        import cupyx.scipy.ndimage as cndi
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise ImportError(
            "GPU arrays need cupy; install it with `pip install napari-camtrack[gpu]`."
        ) from exc
    if not cupy.is_available():  # pragma: no cover - depends on the machine
        raise RuntimeError("cupy is installed but no CUDA device is available.")
    return cupy, cndi


def namespace(*arrays: Any, device: str | None = None) -> tuple[ModuleType, ModuleType]:
    """Return ``(xp, ndi)`` for the given arrays.

    Parameters
    ----------
    *arrays
        numpy, cupy or dask arrays (a dask array routes by its ``_meta``).
        ``None`` entries are ignored.
    device : {"cpu", "gpu"}, optional
        Force a backend; by default it follows the inputs.

    Raises
    ------
    TypeError
        When numpy and cupy arrays are mixed.
    """
    if device not in (None, "cpu", "gpu"):
        raise ValueError(f"`device` must be 'cpu', 'gpu' or None; got {device!r}.")
    kinds = set()
    for a in arrays:
        if a is None:
            continue
        inner = getattr(a, "_meta", a) if is_dask(a) else a
        kinds.add("cupy" if is_cupy(inner) else "numpy")
    if len(kinds) > 1:
        types = ", ".join(sorted(f"{type(a).__module__}.{type(a).__name__}" for a in arrays))
        raise TypeError(
            f"Arrays mix numpy and cupy ({types}); move them to one device first "
            "(cupy.asarray(x) or cupy.asnumpy(x))."
        )
    if device == "gpu" or kinds == {"cupy"}:
        return _cupy_modules()
    return np, scipy.ndimage


def dask_meta(stack: Any, dtype: Any, ndim: int) -> Any:
    """An empty array of ``stack``'s chunk backend (numpy or cupy) for dask's ``meta=``."""
    xp, _ = namespace(stack)
    return xp.empty((0,) * ndim, dtype=dtype)


def to_host(x: Any) -> np.ndarray:
    """Return ``x`` as a numpy array (copies cupy data to the host)."""
    if is_cupy(x):
        return x.get()
    return np.asarray(x)


_LIBC: Any = None


def release_memory() -> None:
    """Return freed heap memory to the operating system (glibc's ``malloc_trim``).

    After a pass over a large stack on several threads, glibc keeps the freed
    multi-MB work buffers in its per-thread arenas (its mmap threshold grows after
    the first large frees), so the process holds on to memory it no longer uses and
    the next pass stacks its working set on top. Called between the passes of the
    out-of-core reductions; a no-op where there is no glibc.
    """
    global _LIBC
    if _LIBC is None:
        try:
            import ctypes

            _LIBC = ctypes.CDLL("libc.so.6")
            _LIBC.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            _LIBC = False
    if _LIBC:
        _LIBC.malloc_trim(0)


def single_threaded_blas() -> contextlib.AbstractContextManager[bool]:
    """The engine's one BLAS limiter, :func:`camtrack._outofcore.single_threaded_blas`
    (kept here under its old name for the callers that route through this module)."""
    from camtrack._outofcore import single_threaded_blas as limiter

    return limiter()
