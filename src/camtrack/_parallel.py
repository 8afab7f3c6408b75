"""Where the engine's work runs: threads for in-memory kernels, one scheduler choice for dask.

numpy, bottleneck, scipy.ndimage and scipy.fft release the GIL in their heavy loops, so
threads scale with cores without copying data to processes. BLAS is held at one thread
while the pool runs (:func:`camtrack._outofcore.single_threaded_blas`): its own threads
would oversubscribe the cores.

dask graphs are computed through :func:`compute` (and :func:`scheduler_target`), the one
place that picks the scheduler, in this order: an explicit ``scheduler=`` argument
(``"threads"``, ``"sync"``, ``"processes"``, a ``dask.distributed`` address or
``Client``), else an active ``distributed`` client (``distributed.default_client()``),
else the ``DASK_SCHEDULER_ADDRESS`` environment variable, else dask's local default
(threads).
"""

from __future__ import annotations

import os
import queue
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from camtrack._outofcore import single_threaded_blas

__all__ = [
    "LOCAL_SCHEDULERS",
    "Hidden",
    "Progress",
    "Target",
    "compute",
    "compute_on_cores",
    "for_each_result",
    "is_distributed",
    "n_workers",
    "resolve",
    "run_parallel",
    "run_with_ticks",
    "runs_per_task",
    "scheduler_target",
    "track",
]

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
        single_threaded_blas(),
        ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool,
    ):
        futures = [pool.submit(func, item) for item in items]
        try:
            for fut in track(as_completed(futures), len(futures), progress):
                fut.result()
        finally:
            for fut in futures:
                fut.cancel()


class _Cancelled(Exception):
    """Raised by a tick in the work once the consumer of the progress has stopped."""


def run_with_ticks(
    run: Callable[[Callable[[], None]], None], n_ticks: int, progress: Progress | None
) -> None:
    """``run(tick)`` in a helper thread while this thread drives ``progress`` over the ticks.

    Iterable-style progress bars (tqdm, napari's progress) see one bar of ``n_ticks``
    steps across several phases of work; errors and interrupts propagate. When
    ``progress`` raises (a Cancel button), the next ``tick()`` in the work raises too,
    so the work stops within one piece (a task, a thread's item) instead of running
    to its end in the background; its exception is re-raised once the work has
    stopped (and cleaned up its temporary files).
    """
    if progress is None:
        run(lambda: None)
        return
    events: queue.Queue = queue.Queue()
    result: dict[str, BaseException] = {}
    stop = threading.Event()

    def tick() -> None:
        if stop.is_set():
            raise _Cancelled
        events.put(1)

    def target() -> None:
        try:
            run(tick)
        except BaseException as exc:  # re-raised in the calling thread
            result["error"] = exc
        finally:
            events.put(None)

    def ticks():
        seen = 0
        while events.get() is not None:
            seen += 1
            if seen <= n_ticks:
                yield seen

    thread = threading.Thread(target=target, name="camtrack-ticks", daemon=True)
    thread.start()
    try:
        for _ in progress(ticks(), total=n_ticks):
            pass
    except BaseException:
        stop.set()
        thread.join()
        raise
    thread.join()
    if "error" in result:
        raise result["error"]


# ----------------------------------------------------------------------------- scheduler

_ENV = "DASK_SCHEDULER_ADDRESS"
_LOCAL = ("threads", "threading", "processes", "multiprocessing", "sync", "synchronous")
LOCAL_SCHEDULERS = frozenset((*_LOCAL, "single-threaded"))
"""dask's names for the schedulers that run in this process (no cluster)."""


@dataclass(frozen=True)
class Target:
    """Where a dask compute runs: a local dask scheduler, or a ``distributed`` client.

    Attributes
    ----------
    local : str or None
        The local dask scheduler's name (``"threads"``, ``"sync"``, ``"processes"``);
        None on a cluster.
    client : distributed.Client or None
        The client on a cluster; None locally.
    """

    local: str | None = "threads"
    client: Any = None

    @property
    def distributed(self) -> bool:
        """True on a ``dask.distributed`` cluster."""
        return self.client is not None

    @property
    def scheduler(self) -> Any:
        """What ``dask.compute(..., scheduler=)`` takes: the client or the local name."""
        return self.client if self.client is not None else self.local


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ImportError(
            "dask.distributed is needed to use a dask scheduler address; install it with "
            "pip install 'napari-camtrack[cluster]'."
        ) from None
    return distributed


def _in_worker() -> bool:
    """True inside a task on a ``distributed`` worker: nested work stays in that task."""
    dist = sys.modules.get("distributed")
    if dist is None:
        return False
    try:
        dist.get_worker()
    except ValueError:
        return False
    return True


def _active_client() -> Any:
    """The default ``distributed`` client of this process, or None (never imports it)."""
    dist = sys.modules.get("distributed")
    if dist is None or _in_worker():
        return None
    try:
        return dist.default_client()
    except ValueError:
        return None


def _local_default() -> str:
    """dask's configured local scheduler (``dask.config.set(scheduler=...)``), else threads."""
    import dask

    name = dask.config.get("scheduler", None)
    return name if isinstance(name, str) and name in LOCAL_SCHEDULERS else "threads"


def _check_scheduler(scheduler: Any) -> None:
    if scheduler is None or isinstance(scheduler, str):
        return
    dist = sys.modules.get("distributed")  # a Client exists only if distributed is loaded
    if dist is not None and isinstance(scheduler, dist.Client):
        return
    raise TypeError(
        "`scheduler` must be None, a local dask scheduler name ('threads', 'sync', "
        "'processes'), a dask.distributed address such as 'tcp://10.0.0.5:8786' or a "
        f"distributed.Client; got {type(scheduler).__name__}."
    )


def is_distributed(scheduler: Any = None) -> bool:
    """True when ``scheduler`` (resolved as in :func:`scheduler_target`) is a cluster.

    Opens no connection: for graphs whose layout depends on where they will run (one
    in-process spill task locally, a shuffle that spreads over the workers on a cluster).
    """
    _check_scheduler(scheduler)
    if isinstance(scheduler, str):
        return scheduler not in LOCAL_SCHEDULERS
    if scheduler is not None:
        return True
    if _in_worker():
        return False
    return _active_client() is not None or bool(os.environ.get(_ENV))


@contextmanager
def scheduler_target(scheduler: Any = None) -> Iterator[Target]:
    """The one place that picks where a dask compute runs; yields a :class:`Target`.

    Parameters
    ----------
    scheduler : None, str or distributed.Client
        In order of precedence: an explicit local scheduler name (``"threads"``,
        ``"sync"``, ``"processes"``), a ``dask.distributed`` address or ``Client``;
        None: the active ``distributed`` client (``distributed.default_client()``),
        else the address in ``DASK_SCHEDULER_ADDRESS``, else dask's local default
        (threads, or the name set with ``dask.config.set(scheduler=...)``). Inside a
        task on a ``distributed`` worker, None stays local: the task's own work.

    Yields
    ------
    Target
        A client opened here from an address is closed on exit.

    Raises
    ------
    TypeError
        ``scheduler`` is none of the above.
    ImportError
        An address is given but dask.distributed is not installed (the message names
        the ``cluster`` extra).

    Examples
    --------
    >>> with scheduler_target("sync") as target:
    ...     target.distributed, target.scheduler
    (False, 'sync')
    """
    _check_scheduler(scheduler)
    if isinstance(scheduler, str) and scheduler in LOCAL_SCHEDULERS:
        yield Target(local=scheduler)
        return
    if scheduler is not None and not isinstance(scheduler, str):
        yield Target(local=None, client=scheduler)
        return
    if scheduler is None:
        client = _active_client()
        if client is not None:
            yield Target(local=None, client=client)
            return
        if _in_worker() or not os.environ.get(_ENV):
            yield Target(local=_local_default())
            return
        scheduler = os.environ[_ENV]
    client = _distributed().Client(scheduler, set_as_default=False)
    try:
        yield Target(local=None, client=client)
    finally:
        client.close()


@contextmanager
def resolve(scheduler: Any, *arrays: Any) -> Iterator[Any]:
    """Resolve ``scheduler`` once for a public function's dask input; yields what to pass on.

    With a dask array among ``arrays``: the :class:`Target`'s ``scheduler`` (a local
    name or a client, kept open until the function returns, so its passes share one
    connection). Without one (numpy, cupy): ``scheduler`` unchanged, nothing connected.
    """
    from camtrack._backend import is_dask

    _check_scheduler(scheduler)
    if not any(is_dask(a) for a in arrays):
        yield scheduler
        return
    with scheduler_target(scheduler) as target:
        yield target.scheduler


class Hidden:
    """A dask collection that ``dask.delayed`` hands to its task uncomputed.

    On a cluster, a task given ``stack[a:b]`` as a dependency waits for the chunk
    reads, which the scheduler spreads over the workers, and then pulls every chunk
    to its own worker: for a stack read from a file in page-cache speed that transfer
    costs more than the reduction (estimate_gain's moments on a 2 GB TIFF: 0.9x with
    two workers against one). A task that gets the slice hidden reads it itself
    (:meth:`read`, the readers reopen the file), so only its small result moves.
    """

    __slots__ = ("array",)

    def __init__(self, array: Any) -> None:
        self.array = array

    def __dask_tokenize__(self) -> Any:
        from dask.base import tokenize

        return ("camtrack-hidden", tokenize(self.array))

    def read(self) -> Any:
        """Compute the collection in the calling task (dask's synchronous scheduler)."""
        return self.array.compute(scheduler="sync")


# ----------------------------------------------------------------------------- compute

# Progress updates a compute sends at most: one per task would flood a GUI thread with
# signals on graphs of tens of thousands of tasks; 200 steps move a bar smoothly.
_MAX_STEPS = 200


class _Stopped(Exception):
    """Raised by the scheduler callback once the consumer of the progress stopped."""


def compute_isolated(x: Any, *callbacks: Any, scheduler: Any = None, **kwargs: Any) -> Any:
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
    and the collection is computed as usual. ``scheduler`` and ``kwargs`` (such as
    ``num_workers``) go to dask's ``compute`` (None: dask's default).
    """
    import dask.base
    import dask.local
    import dask.multiprocessing
    import dask.threaded

    local = (dask.threaded.get, dask.local.get_sync, dask.multiprocessing.get)
    if dask.base.get_scheduler(scheduler=scheduler, collections=[x]) in local:
        return x.compute(scheduler=scheduler, callbacks=list(callbacks), **kwargs)
    return x.compute(scheduler=scheduler)


def compute(
    x: Any,
    *,
    progress: Progress | None = None,
    scheduler: Any = None,
    ticks: Sequence[Any] = (),
    **kwargs: Any,
) -> Any:
    """Compute a dask collection (numpy / cupy arrays pass through) with progress.

    Parameters
    ----------
    x : array or dask collection
        A dask array (or any dask collection, e.g. a list of delayed values), or any
        other value (returned as is).
    progress : callable, optional
        tqdm-like ``progress(iterable, total=n)``; advanced as the graph's tasks finish
        (at most 200 steps). If it raises (a Cancel button), no further task starts,
        the running ones are abandoned and its exception propagates, so a stop takes
        effect within one task instead of at the end of the whole compute.
    scheduler : None, str or distributed.Client
        Where to compute, resolved by :func:`scheduler_target`: explicit argument >
        active ``distributed`` client > ``DASK_SCHEDULER_ADDRESS`` > local threads.
    ticks : sequence of dask collections, optional
        On a cluster, progress advances once per finished item of ``ticks`` (part of
        ``x``'s graph, e.g. its kernel tasks before a reduction tree) instead of per
        output chunk of ``x``.
    **kwargs
        Passed to dask's local scheduler (e.g. ``num_workers``); ignored on a cluster.

    Returns
    -------
    array
        The computed value (on the dask array's chunk backend).

    Notes
    -----
    Locally, the compute never touches dask's global callbacks (see
    :func:`compute_isolated`) and progress comes from dask's local-scheduler callbacks,
    per task. On a ``dask.distributed`` cluster there are no such callbacks: the
    collection is persisted on the workers and progress advances per finished output
    chunk (or per item of ``ticks``); a Cancel cancels its futures on the cluster.

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
    if not hasattr(x, "__dask_graph__") and not isinstance(x, list | tuple):
        return x
    if isinstance(x, list | tuple) and not any(hasattr(v, "__dask_graph__") for v in x):
        return x
    if scheduler is None and not (_active_client() is not None or os.environ.get(_ENV)):
        # The default, unchanged: dask's own choice of local scheduler.
        return _compute_local(x, progress, None, kwargs)
    with scheduler_target(scheduler) as target:
        if target.distributed:
            return _compute_distributed(target.client, x, progress, ticks)
        return _compute_local(x, progress, target.local, kwargs)


def _compute_distributed(client: Any, x: Any, progress: Progress | None, ticks: Sequence[Any]) -> Any:  # fmt: skip
    """Compute on a cluster; progress per finished tick (or output chunk) future."""
    import dask
    from distributed import as_completed, futures_of

    single = not isinstance(x, list | tuple)
    items = [x] if single else list(x)
    if progress is None:
        out = dask.compute(*items, scheduler=client)
        return out[0] if single else list(out)
    if ticks:
        futures = client.compute([*ticks, *items])
        watch, outs = futures[: len(ticks)], futures[len(ticks) :]
        out_keys = {f.key for f in outs}  # a tick that is an output itself stays
    else:
        items = client.persist(items)
        watch = futures_of(items)
        outs, out_keys = None, set()
    try:

        def steps() -> Iterator[int]:  # numbered steps, as the local progress gives
            for i, fut in enumerate(as_completed(watch, loop=client.loop)):
                if ticks and fut.key not in out_keys:
                    fut.release()  # a kernel's result is needed by the reduction only
                yield i + 1

        for _ in track(steps(), len(watch), progress):
            pass
        out = dask.compute(*items, scheduler=client) if outs is None else client.gather(outs)
    except BaseException:
        client.cancel([*watch, *(outs or futures_of(items))])
        raise
    return out[0] if single else list(out)


def _compute_local(x: Any, progress: Progress | None, scheduler: Any, kwargs: dict) -> Any:
    """Compute with dask's local scheduler, progress from its per-task callbacks."""
    if isinstance(x, list | tuple):
        import dask

        single = False
        x = dask.delayed(list)(list(x))  # one collection: one graph, shared reads once
    else:
        single = True
    if progress is None:
        out = compute_isolated(x, scheduler=scheduler, **kwargs)
        return out if single else list(out)
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
            box["out"] = compute_isolated(x, _Report()._callback, scheduler=scheduler, **kwargs)
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
    return box["out"] if single else list(box["out"])


# ----------------------------------------------------------------------------- streaming

# Kernel tasks per worker thread on a cluster when runs of blocks are joined into tasks
# (:func:`runs_per_task`): each task merges its run itself, so only a few results cross
# between workers; 2 keep the threads busy while the slower ones finish (gain moments,
# a 2 GB TIFF, 2 workers: 16 one-block tasks 0.85x, 2 per thread 0.99-1.09x under a
# load of 7-13 on 2 cores).
TASKS_PER_THREAD = 2


def runs_per_task(runs: list, scheduler: Any, n_parallel: int) -> list:
    """Join consecutive runs (lists of items) into about :data:`TASKS_PER_THREAD` tasks
    per thread of the cluster ``scheduler`` resolves to (one thread locally), where
    ``n_parallel`` independent chains (e.g. row bands) are split that way each."""
    with scheduler_target(scheduler) as target:
        threads = sum(target.client.nthreads().values()) if target.distributed else 1
    want = max(1, -(-TASKS_PER_THREAD * max(threads, 1) // n_parallel))
    per = max(1, -(-len(runs) // want))
    return [[item for run in runs[i : i + per] for item in run] for i in range(0, len(runs), per)]


def _read_and_call(kernel: Callable[..., Any], piece: Any, *args: Any) -> Any:
    """A cluster task: read its own piece (:class:`Hidden`), then run the kernel."""
    return kernel(piece.read(), *args)


def _call_scattered(kernel: Callable[..., Any], call: tuple) -> Any:
    """:func:`_read_and_call` of a scattered ``(piece, *args)`` tuple."""
    return _read_and_call(kernel, *call)


# Tasks of :func:`for_each_result` in flight per worker thread of a cluster: a piece's
# arguments (the gain's kept masks, read from its on-disk store) exist in this process
# only from its submission to its scatter, and on the workers until its result, so the
# cluster holds this many pieces' arguments per thread instead of every piece's (the
# kept masks alone are 1/128 of a uint16 stack's bytes: a client out of memory for a
# stack far larger than RAM). 4: the queue behind each thread hides the client's round
# trips (robust gain, 4 GB TIFF of 256 x 256 frames, 241 pieces a pass, 2 workers on 2
# shared cores: 2 a thread ran 1.04-1.09x the time of every piece submitted at once in
# 6 of 6 paired runs; 4 a thread 0.82-1.18x, see the commit that chose it).
WINDOW_PER_THREAD = 4


def for_each_result(
    kernel: Callable[..., Any],
    pieces: Sequence[Any],
    args: Callable[[int], tuple],
    done: Callable[[int, Any], None],
    *,
    scheduler: Any = None,
) -> None:
    """``done(i, kernel(pieces[i], *args(i)))`` for every piece, with the results
    handed over one by one as they come, never all held at once.

    numpy: threads (one for cupy). dask, locally: one task per piece on the local
    scheduler picked by :func:`scheduler_target`, ``kernel`` and ``done`` inside the
    task (dask computes the piece first; BLAS held at one thread; no dask callbacks of
    anyone else's, see :func:`compute_isolated`). dask on a cluster: ``kernel`` runs on
    the workers, each task reading its own piece (:class:`Hidden`), and ``done`` here
    as the results arrive (what it fills lives in this process); an error or a Cancel
    raised by ``done`` cancels the tasks in flight and submits no more.

    ``args(i)`` is evaluated where the task is built, just before it runs: in the task
    (threads, local dask), or here on a cluster, piece by piece as a window of
    :data:`WINDOW_PER_THREAD` tasks per worker thread frees up, so that this process
    holds the arguments of that many pieces at a time, never of all of them.
    """
    if not any(hasattr(p, "__dask_graph__") for p in pieces):
        from camtrack import _backend

        gpu = any(_backend.is_cupy(p) for p in pieces)

        def whole(i: int) -> None:
            done(i, kernel(pieces[i], *args(i)))

        run_parallel(whole, list(range(len(pieces))), workers=1 if gpu else n_workers())
        return
    import dask

    with scheduler_target(scheduler) as target:
        if target.distributed:
            _stream_on_cluster(target.client, kernel, pieces, args, done)
            return

        def local(i: int, piece: Any) -> None:
            done(i, kernel(piece, *args(i)))

        tasks = [dask.delayed(local)(i, p) for i, p in enumerate(pieces)]
        with single_threaded_blas():
            compute_isolated(
                dask.delayed(list)(tasks), scheduler=target.local, **_cores(target.local)
            )


def _stream_on_cluster(
    client: Any,
    kernel: Callable[..., Any],
    pieces: Sequence[Any],
    args: Callable[[int], tuple],
    done: Callable[[int, Any], None],
) -> None:
    """:func:`for_each_result` on a cluster: a bounded window of tasks, each submitted
    (its ``args`` built) as an earlier one's result is handed over, in piece order."""
    from dask.base import tokenize
    from distributed import as_completed

    threads = sum(client.nthreads().values())
    window = max(2, WINDOW_PER_THREAD * threads)
    todo = iter(range(len(pieces)))
    live: dict[Any, tuple[int, Any, Any]] = {}  # key -> (piece, task, its data): in flight
    arriving = as_completed(loop=client.loop, with_results=True)
    # Without a running worker (an adaptive cluster scaled to zero) a scatter has nowhere
    # to go: the arguments then go with the tasks, whose queue makes the cluster scale up.
    scatter = threads > 0

    def submit() -> None:
        nonlocal scatter
        i = next(todo, None)
        if i is None:
            return
        call = (Hidden(pieces[i]), *args(i))
        # Keys named after the kernel (as a task of the kernel itself would be).
        key = f"{kernel.__name__}-{tokenize(kernel, *call)}"
        # The arguments travel by scatter, not inside the task's message: the client's
        # stream to the scheduler keeps its last 1000 messages under 1 MB for debugging
        # (distributed.admin.low-level-log-length), and with them the arrays they carry
        # (pickled out of band, so the originals): up to 1000 pieces' arguments.
        data = None
        if scatter:
            try:
                [data] = client.scatter([call], hash=False)
            except TimeoutError:  # no running worker left (scaled down): as above
                scatter = False
        fut = client.submit(_call_scattered, kernel, call if data is None else data, key=key, pure=True)  # fmt: skip
        del call  # alive on a worker until its task has run, no longer here
        live[key] = (i, fut, data)
        arriving.add(fut)

    try:
        for _ in range(window):
            submit()
        for fut, value in arriving:
            i, _, data = live.pop(fut.key)
            fut.release()
            if data is not None:
                data.release()
            submit()  # the next task runs while this result is handed over
            done(i, value)
            del value
    except BaseException:
        client.cancel([f for _, *futures in live.values() for f in futures if f is not None])
        raise


def _cores(local: Any) -> dict:
    """dask options for a local scheduler: the threaded one on :func:`n_workers` threads
    (the CPUs this process may use, where dask's default counts every CPU of the
    machine); the others take no thread count ("sync" would refuse one)."""
    return {"num_workers": n_workers()} if local in ("threads", "threading") else {}


def compute_on_cores(x: Any, *, progress: Progress | None = None, scheduler: Any = None, ticks: Sequence[Any] = ()) -> Any:  # fmt: skip
    """:func:`compute` where ``scheduler`` resolves to (:func:`scheduler_target`), the local
    threaded scheduler on :func:`n_workers` threads; on a cluster progress advances per
    finished item of ``ticks``."""
    with scheduler_target(scheduler) as target:
        if target.distributed:
            return compute(x, progress=progress, scheduler=target.client, ticks=ticks)
        return compute(x, progress=progress, scheduler=target.local, **_cores(target.local))
