"""Threads for the engine's GIL-releasing kernels: one pool runner for every module.

numpy, bottleneck, scipy.ndimage and scipy.fft release the GIL in their heavy loops, so
threads scale with cores without copying data to processes. BLAS is held at one thread
while the pool runs (:func:`camtrack._backend.single_threaded_blas`): its own threads
would oversubscribe the cores.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from camtrack import _backend

__all__ = ["Progress", "n_workers", "run_parallel", "track"]

Progress = Callable[..., Iterable[Any]]


def n_workers() -> int:
    """Threads for the GIL-releasing kernels: the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


def track(iterable: Iterable[Any], total: int, progress: Progress | None) -> Iterable[Any]:
    """Wrap ``iterable`` with a tqdm-like ``progress(iterable, total=...)`` callable."""
    if progress is None:
        return iterable
    return progress(iterable, total=total)


def run_parallel(
    func: Callable[[Any], None],
    items: Sequence[Any],
    *,
    progress: Progress | None = None,
    workers: int | None = None,
) -> None:
    """Call ``func(item)`` for every item on ``workers`` threads (default: every usable
    core), reporting each finished item; the first error is raised, the rest cancelled."""
    workers = n_workers() if workers is None else workers
    if workers <= 1 or len(items) <= 1:
        for item in track(items, len(items), progress):
            func(item)
        return
    with (
        _backend.single_threaded_blas(),
        ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool,
    ):
        futures = [pool.submit(func, item) for item in items]
        try:
            for fut in track(as_completed(futures), len(futures), progress):
                fut.result()
        finally:
            for fut in futures:
                fut.cancel()
