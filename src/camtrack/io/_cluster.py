"""Run dask graphs locally or on a dask.distributed scheduler (the ``cluster`` extra)."""

from __future__ import annotations

import os
from typing import Any

__all__ = ["LOCAL_SCHEDULERS", "compute", "get_client"]

from camtrack._parallel import LOCAL_SCHEDULERS, _check_scheduler, _distributed, scheduler_target

_ENV = "DASK_SCHEDULER_ADDRESS"


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
    _check_scheduler(scheduler)
    if scheduler is None:
        scheduler = os.environ.get(_ENV) or None
    if scheduler is None or (isinstance(scheduler, str) and scheduler in LOCAL_SCHEDULERS):
        return None
    if isinstance(scheduler, str):
        return _distributed().Client(scheduler)
    return scheduler  # a distributed.Client (_check_scheduler refused anything else)


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

    # The one resolution of every camtrack compute (camtrack._parallel.scheduler_target):
    # a client opened here from an address is closed again on the way out.
    with scheduler_target(scheduler) as target:
        results = dask.compute(*arrays, scheduler=target.scheduler)
    return results[0] if len(arrays) == 1 else results
