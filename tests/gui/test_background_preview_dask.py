"""The Background preview's dask computes are isolated from napari's slicing.

napari slices a dask layer in the GUI thread with its opportunistic ``dask.cache.Cache``
in dask's global callbacks; a preview compute in the worker that picked it up raced
with the slice and failed with ``KeyError(<task key>)`` (bench_gui_freeze.py logged
``ERROR: ('kernel-...', 0, 0, 0)``). See ``_read`` in the widget module.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

pytest.importorskip("napari")

from dask.callbacks import Callback

from camtrack.napari._widgets import BackgroundWidget


class _Spy(Callback):
    """A global callback, as napari's cache is while it slices a dask layer."""

    def __init__(self) -> None:
        super().__init__()
        self.tasks = 0

    def _pretask(self, key, dsk, state) -> None:
        self.tasks += 1


@pytest.fixture
def widget(make_napari_viewer):
    return BackgroundWidget(make_napari_viewer())


def _stack(seed: int) -> da.Array:
    data = np.random.default_rng(seed).poisson(300.0, (40, 32, 48)).astype(np.uint16)
    return da.from_array(data, chunks=(7, -1, -1))  # odd chunks on purpose


@pytest.mark.parametrize(
    ("method", "params"),
    [("spatial_mean", {"radius": 3.0}), ("temporal_median", {}),
     ("frame_stats", {"stat": "mean", "q": None}),
     ("temporal_percentile", {"q": 10.0, "sigma_clip": 3.0})],
)  # fmt: skip
def test_preview_leaves_global_dask_callbacks_alone(widget, method, params):
    stack = _stack(0)
    spy = _Spy()
    with spy:  # registered globally, as during a napari slice in the GUI thread
        active = set(Callback.active)
        background, residual, t = widget.preview_background((stack, 5, method, params))
        # The preview neither ran the global callbacks nor swapped the global set.
        assert spy.tasks == 0
        assert Callback.active == active
    assert background.shape == residual.shape == (32, 48) and t == 5
    np.testing.assert_allclose(residual, np.asarray(stack[5]) - background, atol=1e-3)


def test_preview_cache_is_not_fooled_by_a_reused_id(widget):
    a, b = _stack(1), _stack(2) + 1000
    bg_a, _, _ = widget.preview_background((a, 5, "temporal_median", {}))
    # CPython reuses the id of a freed object: make b look like a's cache entry.
    widget._preview_cache = {
        (id(b), *key[1:]): value for key, value in widget._preview_cache.items()
    }
    bg_b, _, _ = widget.preview_background((b, 5, "temporal_median", {}))
    # The preview's frames: at most PREVIEW_FRAMES (31) spread over the 40.
    idx = np.unique(np.linspace(0, 39, 31).round()).astype(int)
    np.testing.assert_allclose(bg_b, np.median(np.asarray(b)[idx], axis=0), atol=1e-3)
    assert abs(float(np.mean(bg_b - bg_a)) - 1000.0) < 5.0
