"""Sliding-window median over time by shared comparator networks, vectorised over pixels.

Neighbouring windows share most of their samples, and order statistics of the shared
part decide the medians (the trimming argument): if a window is a core ``C`` plus
``e`` extra samples, the middle ``e + 1`` ranks of ``C`` together with the extras
have the same median as the window, because every dropped core sample is either
below or above the window median, in equal numbers. Applied recursively:

* level 0 windows (size ``w``, every position) come in pairs that share a core of
  ``w - 1`` samples: each needs only the middle 2 of that core, plus its 1 extra;
* those cores are level 1 windows (stride 2), in pairs sharing ``w - 3`` samples,
  each needing the middle 4 of its core, plus its 2 extras; and so on, the band
  doubling and the stride doubling, up to a top level sorted outright.

At level j each window merges its parent's sorted band (``2k`` samples, or the whole
parent when smaller) with its own ``k = 2**j`` extras (sorted first) and keeps the
middle ``k``. Every step is a pruned Batcher network applied with
``numpy.minimum``/``numpy.maximum`` to arrays of (windows, pixels), about 50 passes
per output for ``w = 51``, in the input's own dtype (min/max are exact, so integers
are not cast). NaN propagates through min/max: a window holding a NaN gives NaN.
"""

from __future__ import annotations

import numpy as np

from camtrack.background._networks import (
    BufferPool,
    merge_network,
    network_cost,
    run_network,
    sort_network,
)


def _plan(window: int, top: int) -> float:
    """Min/max passes per output for a recursion with ``top`` levels."""
    cost = 0.0
    for j in range(top):
        k = 2**j
        parent_n = window - 2 * k + 1
        band = min(2 * k, parent_n)
        _, ops = merge_network(band, k, band // 2, band // 2 + k)
        cost += (network_cost(sort_network(k)) + network_cost(ops)) / k
    kt = 2**top
    nt = window - kt + 1
    lo = max(0, (nt - kt) // 2)
    cost += network_cost(sort_network(nt, lo, min(nt, lo + kt))) / kt
    return cost


def choose_levels(window: int) -> int:
    """Number of recursion levels with the fewest passes per output."""
    best, best_cost = 0, float("inf")
    j = 0
    while window - 2**j + 1 >= 1:
        c = _plan(window, j)
        if c < best_cost:
            best, best_cost = j, c
        j += 1
    return best


def sliding_median(
    x: np.ndarray, window: int, levels: int | None = None, pool: BufferPool | None = None
) -> np.ndarray:
    """Medians of ``x[s : s + window]`` along axis 0 for s = 0..T-window -> (T-window+1, P).

    ``x`` is (T, P); ``window`` is odd and <= T. ``pool`` lends reusable buffers (pass
    one pool for many tiles of one shape).
    """
    pool = BufferPool() if pool is None else pool
    t, n_px = x.shape
    n_out = t - window + 1
    top = choose_levels(window) if levels is None else levels
    group = 2**top
    n_top = -(-n_out // group)  # top-level windows; outputs padded to n_top * group

    def gather(start: np.ndarray) -> np.ndarray:
        # mode="clip": samples past the end only reach padded windows, later dropped.
        buf = pool.get((start.size, n_px), x.dtype)
        return np.take(x, start, axis=0, out=buf, mode="clip")

    # Top level: windows of size window - group + 1 at stride `group`, sorted (or the
    # middle `group` ranks selected) outright.
    nat = np.arange(n_top)  # natural window index of each stored row
    size = window - group + 1
    pos = nat * group + group - 1
    lo = max(0, (size - group) // 2)
    hi = min(size, lo + group)
    wires = {i: gather(pos + i) for i in range(size)}
    spare = run_network(wires, sort_network(size, lo, hi), pool)
    band = [wires[i] for i in range(lo, hi)]
    pool.put([*wires.values(), spare], keep=band)

    for j in range(top - 1, -1, -1):
        k = 2**j
        parent_pos = nat * (2 * k) + 2 * k - 1
        parent_size = window - 2 * k + 1
        # Both children of every parent at once: rows [child 0 ..., child 1 ...].
        first = parent_pos - k
        second = parent_pos + parent_size
        extras = {i: gather(np.concatenate([first + i, second + i])) for i in range(k)}
        pool.put([run_network(extras, sort_network(k), pool)])
        m = len(band)
        p, ops = merge_network(m, k, m // 2, m // 2 + k)
        wires = {}
        for i, b in enumerate(band):
            both = pool.get((2 * b.shape[0], n_px), x.dtype)
            both[: b.shape[0]] = b
            both[b.shape[0] :] = b
            wires[i] = both
        pool.put(band)
        wires.update({p + i: extras[i] for i in range(k)})
        spare = run_network(wires, ops, pool)
        band = [wires[i] for i in range(m // 2, m // 2 + k)]
        pool.put([*wires.values(), spare], keep=band)
        nat = np.concatenate([2 * nat, 2 * nat + 1])

    out = np.empty((nat.size, n_px), dtype=x.dtype)
    out[nat] = band[0]
    pool.put(band)
    return out[:n_out]
