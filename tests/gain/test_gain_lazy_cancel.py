"""Progress and Cancel on lazy (dask) input in every whole-stack gain method (#17 item 3).

A progress callable that raises (a Cancel button) must stop the work within a task or
two, not let the rest of the graph run on in a background thread, and a progress that
does not raise must see its bar through to the end.
"""

from __future__ import annotations

import threading
import time

import pytest

from _progress import recording_progress
from camtrack.gain import calibrate_pixels, estimate_gain
from camtrack.simulate import Camera, camera_stack

da = pytest.importorskip("dask.array")


class Cancel(Exception):
    pass


def _stack(frames=256):
    cam = Camera(shape=(64, 64), e_per_adu=0.5, offset_std_adu=2.0, read_noise_e=1.6, rng=3)
    stack, _ = camera_stack(frames, camera=cam, n_beads=0, rng=4)
    return stack


class _Counting:
    """Counts the calls of a kernel (each one sleeps a little, so a run takes a while)."""

    def __init__(self, func):
        self.func, self.calls, self.lock = func, 0, threading.Lock()

    def __call__(self, *args, **kwargs):
        with self.lock:
            self.calls += 1
        time.sleep(0.05)
        return self.func(*args, **kwargs)


def _cancel_after(n):
    def progress(it, total):
        for i, x in enumerate(it):
            if i + 1 >= n:
                raise Cancel
            yield x

    return progress


LAZY = [
    ("meanvar", (8, -1, -1)),
    ("diff", (8, -1, -1)),
    ("median", (8, -1, -1)),  # frame-chunked: the band-major spill
    ("median", (-1, 16, 16)),  # all-frames tiles: one task per tile
    ("robust", (8, -1, -1)),
]


@pytest.mark.parametrize(("method", "chunks"), LAZY)
def test_lazy_estimate_gain_reports_progress_to_the_end(method, chunks):
    stack = _stack()
    bars, progress = recording_progress()
    res = estimate_gain(da.from_array(stack, chunks=chunks), method=method, progress=progress)
    ref = estimate_gain(stack, method=method)
    assert res.e_per_adu == pytest.approx(ref.e_per_adu, rel=1e-9)
    assert bars and all(total == done > 0 for total, done in bars)


def _kernel_spy(monkeypatch, method):
    from camtrack.gain import _robust, _tiles

    if method in ("meanvar", "diff"):
        spy = _Counting(_tiles.moment_sums)
        monkeypatch.setattr(_tiles, "moment_sums", spy)
    elif method == "median":
        spy = _Counting(_tiles.median_mad)
        monkeypatch.setattr(_tiles, "median_mad", spy)
    else:
        spy = _Counting(_robust.block_energy)
        monkeypatch.setattr(_robust, "block_energy", spy)
    return spy


@pytest.mark.parametrize(("method", "chunks"), LAZY)
def test_lazy_estimate_gain_cancel_stops_the_work(monkeypatch, method, chunks):
    from camtrack.gain import _tiles

    # Small budgets: many blocks of frames and many tiles, so there is work left to stop.
    monkeypatch.setattr(_tiles, "BLOCK_BYTES", 64 * 64 * 2 * 8)
    monkeypatch.setattr(_tiles, "MEDIAN_TILE_BYTES", 512 * 64 * 4 * 4, raising=False)
    stack = _stack(512)
    spy = _kernel_spy(monkeypatch, method)
    lazy = da.from_array(stack, chunks=chunks)
    estimate_gain(lazy, method=method)
    full = spy.calls
    spy.calls = 0
    with pytest.raises(Cancel):
        estimate_gain(lazy, method=method, progress=_cancel_after(1))
    stopped = spy.calls
    time.sleep(0.3)  # work left running in the background would go on counting
    assert spy.calls == stopped < full, (stopped, spy.calls, full)


def test_lazy_calibrate_pixels_progress_and_cancel(monkeypatch):
    from camtrack.gain import _tiles

    dark = da.from_array(_stack(128) // 4, chunks=(8, -1, -1))
    flats = [da.from_array(_stack(128) + k * 100, chunks=(8, -1, -1)) for k in (1, 2)]
    bars, progress = recording_progress()
    calibrate_pixels(flats, dark, progress=progress)
    assert bars and all(total == done > 0 for total, done in bars)
    monkeypatch.setattr(_tiles, "BLOCK_BYTES", 64 * 64 * 2 * 8)
    spy = _Counting(_tiles.moment_sums)
    monkeypatch.setattr(_tiles, "moment_sums", spy)
    calibrate_pixels(flats, dark)
    full, spy.calls = spy.calls, 0
    with pytest.raises(Cancel):
        calibrate_pixels(flats, dark, progress=_cancel_after(1))
    stopped = spy.calls
    time.sleep(0.3)
    assert spy.calls == stopped < full, (stopped, spy.calls, full)
