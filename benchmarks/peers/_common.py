"""Shared helpers for the peer runner scripts (stdlib + numpy; run under a peer's Python).

Timing and memory follow ``benchmarks/bench_background.py``: a warm-up call on a small
slice (numba JIT, imports, worker start-up), then the peak-RSS mark is reset by writing 5
to ``/proc/self/clear_refs``; ``peak_extra_mb`` is ``VmHWM`` after the first timed call
minus ``VmRSS`` just before it (the memory the call needs beyond its input, which is
already resident), and ``seconds`` is the median of ``--repeat`` timed calls.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def vm_kib(field: str) -> int | None:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in KiB, None off Linux."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def load_stack(path: str, load: str = "ram") -> np.ndarray:
    """``np.load(path, mmap_mode="r")``; ``load="ram"`` copies it into memory first.

    With "ram" the input is resident before the timed call, so ``peak_extra_mb`` is the
    peer's own working memory; with "mmap" the pages it touches count as well.
    """
    arr = np.load(path, mmap_mode="r")
    if load == "ram":
        return np.array(arr)
    if load == "mmap":
        return arr
    raise ValueError(f"load must be 'ram' or 'mmap', got {load!r}")


def timed(
    call: Callable[[], Any], warmup: Callable[[], Any] | None, repeat: int
) -> tuple[Any, dict[str, Any]]:
    """Warm up, then time ``repeat`` calls; return the last result and the figures."""
    tw = time.perf_counter()
    if warmup is not None:
        warmup()
    warmup_s = time.perf_counter() - tw
    reset = reset_peak_rss()
    base = vm_kib("VmRSS")
    times = []
    peak = None
    result = None
    for i in range(max(1, repeat)):
        result = None  # free the previous result before the next call
        t0 = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - t0)
        if i == 0:
            peak = vm_kib("VmHWM")
    extra = None
    if reset and peak is not None and base is not None:
        extra = max(0, peak - base) / 1024
    return result, {
        "seconds": statistics.median(times),
        "seconds_all": times,
        "warmup_seconds": warmup_s,
        "peak_extra_mb": extra,
        "rss_before_mb": None if base is None else base / 1024,
    }


def jsonable(obj: Any) -> Any:
    """numpy scalars/arrays and non-finite floats made JSON-safe (NaN/inf -> None)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


_RESULT_FD: int | None = None


def quiet_stdout() -> None:
    """Send everything printed from here on (Python or C level) to stderr.

    The runner's stdout then carries only the JSON line written by :func:`emit`.
    """
    global _RESULT_FD
    if _RESULT_FD is None:
        sys.stdout.flush()
        _RESULT_FD = os.dup(1)
        os.dup2(2, 1)


def emit(record: dict[str, Any], peer: str) -> None:
    """Write the one JSON result line to the real stdout; add peer version and Python."""
    from importlib.metadata import version

    out = {"peer": peer, "peer_version": version(peer), "python": platform.python_version()}
    out["numpy"] = np.__version__
    out.update(record)
    line = (json.dumps(jsonable(out)) + "\n").encode()
    sys.stdout.flush()
    fd = 1 if _RESULT_FD is None else _RESULT_FD
    os.write(fd, line)
