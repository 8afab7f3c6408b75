"""A progress callback for tests that records its bars (tqdm-like: ``progress(it, total)``)."""

from __future__ import annotations


def recording_progress():
    """``(bars, progress)``: each call of ``progress`` adds ``[total, ticks]`` to ``bars``
    and counts the items that pass through it."""
    bars = []

    def progress(it, total):
        bars.append([total, 0])
        for x in it:
            bars[-1][1] += 1
            yield x

    return bars, progress
