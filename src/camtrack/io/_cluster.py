"""Run dask graphs locally or on a dask.distributed scheduler (the ``cluster`` extra)."""

from __future__ import annotations

import os
import sys
from typing import Any

__all__ = ["LOCAL_SCHEDULERS", "compute", "get_client"]

_ENV = "DASK_SCHEDULER_ADDRESS"
_LOCAL = ("threads", "threading", "processes", "synchronous", "sync", "single-threaded")
LOCAL_SCHEDULERS = frozenset(_LOCAL)  # names dask runs in this process (no cluster)


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ImportError(
            "dask.distributed is needed to use a dask scheduler address; install it with "
            "pip install 'napari-camtrack[cluster]'."
        ) from None
    return distributed


def get_client(scheduler: Any = None) -> Any:
    """A ``distributed.Client`` for a scheduler address, or None for local threads.

    Parameters
    ----------
    scheduler : str, Client or None, optional
        A scheduler address (``'tcp://10.0.0.5:8786'``), an existing ``Client``
        (returned as is), a local dask scheduler name (``'threads'``,
        ``'processes'``, ``'synchronous'``: gives None), or None: the
        ``DASK_SCHEDULER_ADDRESS`` environment variable if set, else None.

    Returns
    -------
    distributed.Client or None
        A new client connected to the address (close it when done, e.g. with
        ``with``), the given client, or None meaning "compute locally".

    Raises
    ------
    ImportError
        An address is given but dask.distributed is not installed (the message
        names the ``cluster`` extra).

    Notes
    -----
    The readers' arrays reopen their file in every task, so a graph built on this
    machine runs on any worker that sees the same file path (shared storage).

    Examples
    --------
    >>> get_client("threads") is None
    True
    """
    if scheduler is None:
        scheduler = os.environ.get(_ENV) or None
    if scheduler is None or (isinstance(scheduler, str) and scheduler in _LOCAL):
        return None
    if isinstance(scheduler, str):
        return _distributed().Client(scheduler)
    dist = sys.modules.get("distributed")  # a Client exists only if distributed is loaded
    if dist is not None and isinstance(scheduler, dist.Client):
        return scheduler
    raise TypeError(
        f"`scheduler` must be an address string, a distributed.Client, a local scheduler "
        f"name ({', '.join(_LOCAL[:4])}) or None; got {type(scheduler).__name__}."
    )


def compute(*arrays: Any, scheduler: Any = None) -> Any:
    """Compute dask collections here or on a cluster; one result per argument.

    Parameters
    ----------
    *arrays : dask collections (or plain values)
        What to compute, in one graph (shared reads happen once).
    scheduler : str, Client or None, optional
        As in `get_client`. None with no ``DASK_SCHEDULER_ADDRESS``: dask's default
        (an active ``distributed.Client`` if one exists, else the threaded scheduler).
        A client opened here from an address is closed again afterwards.

    Returns
    -------
    object or tuple
        The computed value (numpy array, ...), or a tuple for several arguments.

    Notes
    -----
    Results come back to this process, so compute reductions (means, maps, tables),
    not whole stacks.

    Examples
    --------
    >>> import dask.array as da
    >>> compute(da.ones((4, 4), chunks=2).sum(), scheduler="threads")
    np.float64(16.0)
    """
    import dask

    if isinstance(scheduler, str) and scheduler in _LOCAL:
        results = dask.compute(*arrays, scheduler=scheduler)
    else:
        given = scheduler is not None and not isinstance(scheduler, str)
        client = get_client(scheduler)
        if client is None:
            results = dask.compute(*arrays)
        elif given:
            results = dask.compute(*arrays, scheduler=client)
        else:
            with client:
                results = dask.compute(*arrays, scheduler=client)
    return results[0] if len(arrays) == 1 else results
