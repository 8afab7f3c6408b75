"""Comparator networks (Batcher's odd-even merge sort), pruned to the outputs needed.

A network is a list of ops on "wires". Executed by :func:`run_network` on whole
arrays, every comparator is one ``numpy.minimum`` and/or ``numpy.maximum`` over a
vector of independent problems (pixels x windows), so sorting and order-statistic
selection vectorise without per-element Python or compiled code.

Ops are ``("cmp", i, j, keep_min, keep_max)`` (wire i gets the min, wire j the max;
a False flag means that output is never used and is not computed) and
``("swap", i, j)`` (exchange two wires, no arithmetic). Wires known to hold +inf (the
padding up to a power of two) are resolved while building, so they never exist as
arrays.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import cache
from typing import Any

import numpy as np

Op = tuple[Any, ...]


def _pow2(n: int) -> int:
    p = 1
    while p < n:
        p *= 2
    return p


def _merge(lo: int, n: int, r: int) -> Iterator[tuple[int, int]]:
    """Batcher's odd-even merge of wires lo..lo+n-1 whose halves are sorted."""
    step = 2 * r
    if step < n:
        yield from _merge(lo, n, step)
        yield from _merge(lo + r, n, step)
        for i in range(lo + r, lo + n - r, step):
            yield (i, i + r)
    else:
        yield (lo, lo + r)


def _sort(lo: int, n: int) -> Iterator[tuple[int, int]]:
    if n > 1:
        half = n // 2
        yield from _sort(lo, half)
        yield from _sort(lo + half, half)
        yield from _merge(lo, n, 1)


def _prune(
    comparators: Iterable[tuple[int, int]], inf_wires: Iterable[int], outputs: Iterable[int]
) -> tuple[Op, ...]:
    """Resolve +inf wires forwards, then drop what no needed output depends on."""
    inf = set(inf_wires)
    ops: list[Op] = []
    for i, j in comparators:
        if j in inf:  # min(a, inf) = a stays on i, inf stays on j
            continue
        if i in inf:  # the value moves to i, inf to j
            ops.append(("swap", i, j))
            inf.discard(i)
            inf.add(j)
            continue
        ops.append(("cmp", i, j))
    need = set(outputs)
    kept: list[Op] = []
    for op in reversed(ops):
        _, i, j = op
        ni, nj = i in need, j in need
        if op[0] == "swap":
            need.discard(i)
            need.discard(j)
            if ni:
                need.add(j)
            if nj:
                need.add(i)
            kept.append(op)
        elif ni or nj:
            kept.append(("cmp", i, j, ni, nj))
            need.update((i, j))
    kept.reverse()
    return tuple(kept)


@cache
def sort_network(n: int, lo: int = 0, hi: int | None = None) -> tuple[Op, ...]:
    """Sort wires 0..n-1; only sorted ranks [lo, hi) are guaranteed on wires lo..hi-1."""
    hi = n if hi is None else hi
    p = _pow2(n)
    return _prune(_sort(0, p), range(n, p), range(lo, hi))


@cache
def merge_network(a: int, b: int, lo: int, hi: int) -> tuple[int, tuple[Op, ...]]:
    """Merge sorted wires 0..a-1 with sorted wires p..p+b-1 (returned ``p``).

    Afterwards wires lo..hi-1 hold the sorted ranks [lo, hi) of the union.
    """
    p = _pow2(max(a, b))
    inf = [*range(a, p), *range(p + b, 2 * p)]
    return p, _prune(_merge(0, 2 * p, 1), inf, range(lo, hi))


def network_cost(ops: tuple[Op, ...]) -> int:
    """Number of elementwise min/max passes the network needs."""
    return sum(int(op[3]) + int(op[4]) for op in ops if op[0] == "cmp")


class BufferPool:
    """Reusable arrays: the networks run thousands of passes over arrays of a few MB,
    and fresh allocations of that size each cost page faults (glibc maps them anew).

    Requests are served as views of flat buffers (any free buffer at least as large),
    so the arrays of successive recursion levels, whose shapes differ, share memory:
    a pool holds about the peak of one level, not the sum over levels.
    """

    def __init__(self) -> None:
        self._free: list[np.ndarray] = []
        self._owner: dict[int, np.ndarray] = {}

    def get(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        dtype = np.dtype(dtype)
        n = int(np.prod(shape)) * dtype.itemsize
        fits = [i for i, b in enumerate(self._free) if b.size >= n]
        if fits:
            base = self._free.pop(min(fits, key=lambda i: self._free[i].size))
        else:
            base = np.empty(n, dtype=np.uint8)
        view = base[:n].view(dtype).reshape(shape)
        self._owner[id(view)] = base
        return view

    def put(self, arrays: Iterable[Any], keep: Iterable[Any] = ()) -> None:
        """Return ``arrays`` (each once; None and those in ``keep`` are skipped)."""
        skip = {id(a) for a in keep}
        for a in arrays:
            if a is None or id(a) in skip:
                continue
            skip.add(id(a))
            self._free.append(self._owner.pop(id(a)))


def run_network(wires: dict[int, Any], ops: tuple[Op, ...], pool: BufferPool) -> Any:
    """Apply ``ops`` in place to ``wires`` (wire -> array owned by the caller).

    Arrays are updated with ``out=``; one spare buffer from ``pool`` rotates through
    the full comparators. Returns the spare (the caller gives it back to the pool).
    """
    spare = None
    for op in ops:
        i, j = op[1], op[2]
        if op[0] == "swap":
            wires[i], wires[j] = wires.get(j), wires.get(i)
            continue
        a, b = wires[i], wires[j]
        if op[3] and op[4]:
            if spare is None:
                spare = pool.get(a.shape, a.dtype)
            np.minimum(a, b, out=spare)
            np.maximum(a, b, out=b)
            wires[i], spare = spare, a
        elif op[3]:
            np.minimum(a, b, out=a)
        else:
            np.maximum(a, b, out=b)
    return spare
