"""Progress and Cancel on lazy (dask) input in every whole-stack background method (#17 item 3).

Each method is driven as the Background widget drives it: the engine call with
``progress=`` (methods that compute themselves, and the spill task of a frame-chunked
temporal reduction, advance it), then :func:`camtrack._parallel.compute` of the lazy
result with the same ``progress``. Without Cancel every bar runs to its end; a Cancel
(every progress step raising once it is pressed) raises, and the reads of the stack
stop soon after: they never reach what the whole run reads.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from camtrack import _outofcore
from camtrack import background as bg
from camtrack._parallel import compute

da = pytest.importorskip("dask.array")


class Cancel(Exception):
    pass


class _Reads:
    """A lazy stack whose chunk reads are counted (and slowed, so a run takes a while)."""

    def __init__(self, data: np.ndarray, chunks, delay: float = 0.0):
        self.calls = 0
        self.lock = threading.Lock()
        self.delay = delay

        def read(block):
            with self.lock:
                self.calls += 1
            if self.delay:
                time.sleep(self.delay)
            return block

        self.array = da.from_array(data, chunks=chunks).map_blocks(read, dtype=data.dtype)

    def settled(self, timeout: float = 3.0) -> int:
        """The read count once it has stopped changing (work left over may finish)."""
        end = time.monotonic() + timeout
        last = -1
        while time.monotonic() < end and last != self.calls:
            last = self.calls
            time.sleep(0.2)
        return self.calls


class _Button:
    """A progress callable with a Cancel button pressed at the first step (or never)."""

    def __init__(self, cancel: bool):
        self.cancel = cancel
        self.bars: list[list[int]] = []

    def __call__(self, it, total=None):
        bar = [total, 0]
        self.bars.append(bar)
        for x in it:
            if self.cancel:
                raise Cancel
            bar[1] += 1
            yield x


def _data(frames=120, ny=48, nx=40):
    rng = np.random.default_rng(5)
    return (100 + rng.poisson(50, (frames, ny, nx))).astype(np.uint16)


def _run(method, stack, progress):
    result = method(stack, progress)
    return compute(result, progress=progress)


CASES = {
    "temporal_median tiles": (lambda s, p: bg.temporal_median(s, progress=p), (-1, 16, 40)),
    "temporal_median frames (spill)": (
        lambda s, p: bg.temporal_median(s, progress=p),
        (4, -1, -1),
    ),
    "temporal_percentile frames (spill)": (
        lambda s, p: bg.temporal_percentile(s, [10, 90], progress=p),
        (4, -1, -1),
    ),
    "rolling_median tiles": (lambda s, p: bg.rolling_median(s, 9, progress=p), (-1, 16, 40)),
    "rolling_median frames": (lambda s, p: bg.rolling_median(s, 9, progress=p), (4, -1, -1)),
    "spatial_mean": (lambda s, p: bg.spatial_mean(s, 3, progress=p).background, (4, -1, -1)),
    "sparse_median": (lambda s, p: bg.sparse_median(s, window=20, progress=p).images, (4, -1, -1)),
    "frame_stats mean": (lambda s, p: bg.frame_stats(s, "mean", progress=p), (4, -1, -1)),
    "frame_stats percentile": (
        lambda s, p: bg.frame_stats(s, "percentile", q=50, progress=p),
        (4, -1, -1),
    ),
}


@pytest.fixture
def small_budgets(monkeypatch, tmp_path):
    """Several bands and tiles on a small stack, spill files in a folder of the test's."""
    from camtrack.background import _rolling, _temporal

    monkeypatch.setenv("CAMTRACK_TMPDIR", str(tmp_path))
    monkeypatch.setattr(_outofcore, "needs_bands", lambda *a: True)
    monkeypatch.setattr(_temporal, "SPILL_BAND_BYTES", 120 * 8 * 40 * 2)  # 6 bands
    monkeypatch.setattr(_rolling, "TILE_BYTES", 40 * 48 * 40 * 4)  # blocks of frames
    return tmp_path


@pytest.mark.parametrize("name", list(CASES))
def test_lazy_method_progress_runs_to_the_end_and_equals_numpy(small_budgets, name):
    method, chunks = CASES[name]
    data = _data()
    button = _Button(cancel=False)
    got = _run(method, _Reads(data, chunks).array, button)
    ref = np.asarray(method(data, None))
    np.testing.assert_array_equal(np.asarray(got), ref)
    assert button.bars and all(total == done > 0 for total, done in button.bars), button.bars
    assert not any(small_budgets.rglob("*.raw"))


@pytest.mark.parametrize("name", list(CASES))
def test_lazy_method_cancel_raises_and_stops_reading(small_budgets, name):
    method, chunks = CASES[name]
    data = _data()
    reads = _Reads(data, chunks, delay=0.01)
    _run(method, reads.array, None)
    full = reads.settled()
    reads.calls = 0
    with pytest.raises(Cancel):
        _run(method, reads.array, _Button(cancel=True))
    assert reads.settled() < full
    time.sleep(0.2)
    assert not any(small_budgets.rglob("*.raw"))  # spill files removed


def test_band_chain_without_room_to_spill_reports_and_cancels(small_budgets, monkeypatch):
    """No room on disk for a spill file: the bands are read in a chain of tasks, one per
    band; compute's progress advances per task and its Cancel stops the chain."""
    from camtrack import _spill

    monkeypatch.setattr(_spill, "spill_fits", lambda *a, **k: False)
    data = _data()
    button = _Button(cancel=False)
    got = _run(lambda s, p: bg.temporal_median(s, progress=p), _Reads(data, (4, -1, -1)).array, button)  # fmt: skip
    np.testing.assert_array_equal(got, bg.temporal_median(data))
    assert button.bars and all(total == done > 0 for total, done in button.bars)
    reads = _Reads(data, (4, -1, -1), delay=0.01)
    _run(lambda s, p: bg.temporal_median(s), reads.array, None)
    full = reads.settled()
    reads.calls = 0
    with pytest.raises(Cancel):
        _run(lambda s, p: bg.temporal_median(s, progress=p), reads.array, _Button(cancel=True))
    assert reads.settled() < full
