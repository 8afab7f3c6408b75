"""The client's memory on a dask.distributed cluster stays bounded in the robust passes.

``estimate_gain(method="robust")`` keeps its block arrays in an on-disk store
(:class:`camtrack._spill.BandStore`) when the stack is large, and its kept-differences
pass hands each piece's kept mask to its task. On a cluster the tasks run elsewhere, so
the masks are read in the client: built for every piece up front, they were all in the
client's memory at once (1/128 of a uint16 stack's bytes, a client out of memory for a
stack larger than RAM). :func:`camtrack._parallel.for_each_result` now submits a window
of tasks, each built as an earlier one's result comes back; these tests count the
pieces whose arguments are alive at once (weak references: the old code, which held
them all, fails them) and check the result against the local one.
"""

from __future__ import annotations

import threading
import time
import weakref

import numpy as np
import pytest

from _progress import recording_progress
from camtrack import _parallel
from camtrack.gain import estimate_gain
from camtrack.simulate import Camera, camera_stack

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

THREADS = 2
PER_THREAD = 2  # a smaller window than the default, so that few pieces are many windows
WINDOW = PER_THREAD * THREADS
# The most pieces whose arguments may be alive at once: the window in flight, the next
# one built while a result is handed over, and up to a window of finished tasks whose
# data the worker drops only when the scheduler passes on the client's release (a few
# ms later). Every piece's, in the old code: 30 and 56 here.
BOUND = 2 * WINDOW + 1


@pytest.fixture(scope="module")
def client():
    # In-process workers (fast to start; nothing is pickled, so an argument the client
    # built is the very object the worker runs on: alive until the task is released).
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=THREADS, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as c,  # the default client: the engine finds it
    ):
        yield c


@pytest.fixture(autouse=True)
def _window(monkeypatch):
    monkeypatch.setattr(_parallel, "WINDOW_PER_THREAD", PER_THREAD, raising=False)


class _Live:
    """Counts the objects it watches that are still alive, and the most at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = self.most = self.seen = 0

    def watch(self, obj):
        with self.lock:
            self.now += 1
            self.seen += 1
            self.most = max(self.most, self.now)
        weakref.finalize(obj, self._gone)
        return obj

    def _gone(self) -> None:
        with self.lock:
            self.now -= 1


def _slow_sum(piece, mask):
    time.sleep(0.01)  # tasks that take a while: the old code had built every one by then
    return np.asarray(piece).sum(axis=0) * mask


def test_for_each_result_on_a_cluster_holds_a_window_of_arguments(client):
    data = np.arange(60 * 6 * 4, dtype=np.float64).reshape(60, 6, 4)
    lazy = da.from_array(data, chunks=(5, -1, -1))
    pieces = [lazy[i : i + 2] for i in range(0, 60, 2)]  # 30 pieces, window 4
    live = _Live()
    got = {}

    def args(i):
        return (live.watch(np.full((6, 4), float(i + 1))),)

    def done(i, value):
        assert i not in got
        got[i] = value

    _parallel.for_each_result(_slow_sum, pieces, args, done)
    assert sorted(got) == list(range(30))
    for i, value in got.items():
        np.testing.assert_array_equal(value, data[2 * i : 2 * i + 2].sum(axis=0) * (i + 1))
    assert live.seen == 30
    assert live.most <= BOUND, (live.most, BOUND)


def test_for_each_result_sends_the_arguments_with_the_tasks_where_none_can_be_scattered(
    client, monkeypatch
):
    """No running worker to scatter to (an adaptive cluster scaled down): the arguments
    go with the tasks (one failed scatter, not one per piece), the results are the same."""
    data = np.arange(20 * 3 * 4, dtype=np.float64).reshape(20, 3, 4)
    lazy = da.from_array(data, chunks=(5, -1, -1))
    tries = []

    def no_workers(*args, **kwargs):
        tries.append(1)
        raise TimeoutError("No valid workers found")

    monkeypatch.setattr(client, "scatter", no_workers)
    got = {}
    _parallel.for_each_result(
        _slow_sum, [lazy[i : i + 2] for i in range(0, 20, 2)], lambda i: (float(i),),
        lambda i, value: got.setdefault(i, value),
    )  # fmt: skip
    assert tries == [1]
    assert sorted(got) == list(range(10))
    for i, value in got.items():
        np.testing.assert_array_equal(value, data[2 * i : 2 * i + 2].sum(axis=0) * i)


def _slow_down(monkeypatch, name: str) -> list:
    """Make ``camtrack.gain._robust.<name>`` sleep 10 ms a call (the in-process workers
    see it); returns the list its calls are appended to."""
    from camtrack.gain import _robust

    calls = []
    func = getattr(_robust, name)

    def slow(*args, **kwargs):
        calls.append(1)
        time.sleep(0.01)
        return func(*args, **kwargs)

    monkeypatch.setattr(_robust, name, slow)
    return calls


def _stack():
    cam = Camera(shape=(64, 64), e_per_adu=0.5, offset_std_adu=2.0, read_noise_e=1.6, rng=3)
    stack, _ = camera_stack(400, camera=cam, n_beads=2, rng=4)
    return stack


def test_robust_gain_on_a_cluster_reads_a_window_of_kept_masks(client, monkeypatch, tmp_path):
    """Many pieces, block arrays on disk: the kept masks read from the store are alive
    for a window of pieces at a time, and the result is the local one, bit for bit."""
    from camtrack import _spill
    from camtrack.gain import _tiles

    stack = _stack()
    # Small pieces (64 differences of 8 rows: 7 x 8 = 56 of them, 14 windows) and the
    # block arrays on disk, as for a stack larger than memory.
    monkeypatch.setattr(_tiles, "BLOCK_BYTES", 64 * 64 * 2 * 2)
    monkeypatch.setattr(_tiles, "STORE_MEMORY_BYTES", 0)
    monkeypatch.setenv("CAMTRACK_TMPDIR", str(tmp_path))
    lazy = da.from_array(stack, chunks=(16, 16, -1))
    local = estimate_gain(lazy, method="robust", scheduler="threads")

    live = _Live()
    disk = []
    read_rows = _spill.BandStore.read_rows

    def counted(self, array, r0, r1, ts=None):
        out = read_rows(self, array, r0, r1, ts)
        disk.append(self.on_disk)
        # The kept-differences pass reads a piece's mask by its differences (``ts``).
        return live.watch(out) if array == "keep" and ts is not None else out

    monkeypatch.setattr(_spill.BandStore, "read_rows", counted)
    _slow_down(monkeypatch, "kept_sums")  # tasks that take a while, as on a real stack
    remote = estimate_gain(lazy, method="robust")  # the active client
    assert disk and all(disk)
    assert live.seen == _n_pieces(lazy) >= 5 * BOUND  # many more pieces than the window
    assert live.most <= BOUND, (live.most, BOUND, live.seen)
    assert remote.e_per_adu == local.e_per_adu
    np.testing.assert_array_equal(remote.mean, local.mean)
    np.testing.assert_array_equal(remote.var, local.var)
    assert list(tmp_path.iterdir()) == []


def test_robust_gain_on_a_cluster_reports_progress_and_stops_on_cancel(client, monkeypatch):
    from camtrack.gain import _tiles

    monkeypatch.setattr(_tiles, "BLOCK_BYTES", 64 * 64 * 2 * 2)
    lazy = da.from_array(_stack(), chunks=(16, 16, -1))
    bars, progress = recording_progress()

    estimate_gain(lazy, method="robust", progress=progress)
    assert bars and all(total == n > 0 for total, n in bars)

    class Cancel(Exception):
        pass

    calls = _slow_down(monkeypatch, "kept_sums")

    def cancel_in_second_pass(it, total):
        for i, x in enumerate(it):
            if i + 1 > total // 2:  # the first kept-differences result
                raise Cancel
            yield x

    with pytest.raises(Cancel):
        estimate_gain(lazy, method="robust", progress=cancel_in_second_pass)
    stopped = len(calls)
    time.sleep(0.3)  # tasks left running (or still to submit) would go on counting
    assert len(calls) == stopped < _n_pieces(lazy) // 2, (stopped, len(calls))


def _n_pieces(lazy) -> int:
    """The robust passes' pieces of ``lazy`` on a cluster (under the patched budget)."""
    from camtrack.gain import _tiles

    return len(_tiles._robust_pieces(lazy, whole=_tiles._whole_frames(lazy)))
