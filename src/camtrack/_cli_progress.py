"""A progress bar for the command line: on a terminal only, tqdm when installed."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

__all__ = ["terminal_progress"]

# Redraw at most this often: a bar updated per frame chunk of a fast stack would
# otherwise spend its time writing to the terminal.
_MIN_INTERVAL_S = 0.2


def terminal_progress(label: str, stream: Any = None) -> Callable[..., Iterable[Any]] | None:
    """A tqdm-like ``progress(iterable, total=...)`` writing to ``stream`` (stderr), or
    None when it is not a terminal (pipes, files and tests get no bar)."""
    out = sys.stderr if stream is None else stream
    if not getattr(out, "isatty", lambda: False)():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        tqdm = None

    def progress(iterable: Iterable[Any], total: int | None = None) -> Iterable[Any]:
        if tqdm is not None:
            return tqdm(iterable, total=total, desc=label, file=out, leave=False)
        return _plain(iterable, total, label, out)

    return progress


def _plain(iterable: Iterable[Any], total: int | None, label: str, out: Any) -> Iterator[Any]:
    """``label: k/total (p %)`` on one line, cleared at the end."""
    last = 0.0
    k = 0
    for k, item in enumerate(iterable, start=1):
        yield item
        now = time.monotonic()
        if now - last >= _MIN_INTERVAL_S:
            last = now
            pct = f" ({100 * k / total:.0f} %)" if total else ""
            out.write(f"\r{label}: {k}/{total or '?'}{pct}")
            out.flush()
    out.write("\r" + " " * (len(label) + 24) + "\r")
    out.flush()
