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

__all__ = ["Progress", "compute", "n_workers", "run_parallel", "track"]

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


# Progress updates a compute sends at most: one per task would flood a GUI thread with
# signals on graphs of tens of thousands of tasks; 200 steps move a bar smoothly.
_MAX_STEPS = 200


class _Stopped(Exception):
    """Raised by the scheduler callback once the consumer of the progress stopped."""


def compute_isolated(x: Any, *callbacks: Any) -> Any:
    """Compute a dask collection with exactly ``callbacks``, never dask's global ones.

    dask's local schedulers take the global callbacks (``Callback.active``) when a
    compute starts and swap in an empty set until it ends, which is not thread-safe:
    napari registers its opportunistic ``dask.cache.Cache`` there while it slices a
    dask layer in the GUI thread, and that cache keeps one dict of task start times
    for every compute, so a compute in a worker thread that starts during a slice
    shares it, and whichever ends first clears it under the other: ``KeyError(<task
    key>)`` (dask/dask#10396, open). Slicing in one thread while computing in another
    for 15 s failed 16 of 795 previews and 32 of 199 progress computes; none with
    explicit callbacks. On a ``dask.distributed`` client there are no local callbacks
    and the collection is computed as usual.
    """
    import dask.base
    import dask.local
    import dask.threaded

    if dask.base.get_scheduler(collections=[x]) in (dask.threaded.get, dask.local.get_sync):
        return x.compute(callbacks=list(callbacks))
    return x.compute()


def compute(x: Any, *, progress: Progress | None = None) -> Any:
    """Compute a dask array (numpy / cupy arrays pass through) with progress.

    Parameters
    ----------
    x : array
        A dask array, or any other array (returned as is).
    progress : callable, optional
        tqdm-like ``progress(iterable, total=n)``; advanced as the graph's tasks finish
        (at most 200 steps). If it raises (a Cancel button), no further task starts,
        the running ones are abandoned and its exception propagates, so a stop takes
        effect within one task instead of at the end of the whole compute.

    Returns
    -------
    array
        The computed array (on the dask array's chunk backend).

    Notes
    -----
    The compute never touches dask's global callbacks (see :func:`compute_isolated`).
    Progress comes from dask's local-scheduler callbacks (threads, the default). On a
    ``dask.distributed`` client (an address in ``DASK_SCHEDULER_ADDRESS``) the
    callbacks do not fire: the bar then shows one step at the end.

    Examples
    --------
    >>> import dask.array as da
    >>> steps = []
    >>> def progress(it, total=None):
    ...     for item in it:
    ...         steps.append(item)
    ...         yield item
    >>> compute(da.ones((4, 4), chunks=2).sum(), progress=progress).item(), steps[-1] > 0
    (16.0, True)
    """
    import queue
    import threading

    if not hasattr(x, "__dask_graph__"):
        return x
    if progress is None:
        return compute_isolated(x)
    from dask.callbacks import Callback

    events: queue.Queue = queue.Queue()
    stop = threading.Event()
    box: dict[str, Any] = {}

    class _Report(Callback):
        def _start_state(self, dsk: Any, state: Any) -> None:
            events.put(("total", sum(len(state[k]) for k in ("ready", "waiting", "running"))))

        def _pretask(self, key: Any, dsk: Any, state: Any) -> None:
            if stop.is_set():
                raise _Stopped

        def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
            events.put(("done", 1))

    def run() -> None:
        try:
            box["out"] = compute_isolated(x, _Report()._callback)
        except BaseException as exc:  # handed to the consumer below
            box["error"] = exc
        finally:
            events.put(("end", 0))

    worker = threading.Thread(target=run, name="camtrack-compute", daemon=True)
    worker.start()

    def steps() -> Iterable[int]:
        total, done, shown = None, 0, 0
        while True:
            kind, n = events.get()
            if kind == "end":
                break
            if kind == "total":
                total = max(int(n), 1)
                continue
            done += n
            step = _MAX_STEPS * done // total if total else 0
            while shown < min(step, _MAX_STEPS):
                shown += 1
                yield shown

    try:
        for _ in track(steps(), _MAX_STEPS, progress):
            pass
    except BaseException:
        stop.set()  # the scheduler starts no further task; the thread ends by itself
        raise
    worker.join()
    if "error" in box:
        raise box["error"]
    return box["out"]
