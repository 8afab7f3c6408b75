"""camtrack._parallel.compute: progress, Cancel, and dask's global callbacks left alone."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from dask.callbacks import Callback

from camtrack._parallel import compute


def _counting(steps):
    def progress(it, total=None):
        for item in it:
            steps.append(item)
            yield item

    return progress


class _Spy(Callback):
    """A global callback, as napari's dask cache registers while it slices."""

    def __init__(self):
        super().__init__()
        self.tasks = 0

    def _pretask(self, key, dsk, state):
        self.tasks += 1


def test_progress_compute_leaves_global_callbacks_alone():
    x = da.arange(64, chunks=8).reshape(8, 8).sum(axis=0)
    steps: list[int] = []
    with _Spy() as spy:
        out = compute(x, progress=_counting(steps))
        assert spy._callback in Callback.active  # still registered after the compute
    np.testing.assert_array_equal(out, np.arange(64).reshape(8, 8).sum(axis=0))
    assert steps and steps[-1] > 0
    assert spy.tasks == 0  # the global callback never saw the compute's tasks


def test_plain_compute_leaves_global_callbacks_alone():
    x = da.ones((16, 16), chunks=4).sum()
    with _Spy() as spy:
        assert compute(x) == 256.0
    assert spy.tasks == 0


def test_progress_that_raises_stops_the_compute():
    class Stop(Exception):
        pass

    def cancel(it, total=None):
        for i, item in enumerate(it):
            if i == 1:
                raise Stop
            yield item

    x = da.ones((64, 64), chunks=4).map_blocks(lambda b: b * 2).sum()
    with pytest.raises(Stop):
        compute(x, progress=cancel)
