"""cupy input gives the numpy results, on the GPU (skipped without cupy and a GPU)."""

from __future__ import annotations

import numpy as np
import pytest

from camtrack import background as bg

pytestmark = pytest.mark.gpu
cupy = pytest.importorskip("cupy")
if not cupy.is_available():  # pragma: no cover - depends on the machine
    pytest.skip("no CUDA device", allow_module_level=True)


@pytest.fixture
def stacks():
    rng = np.random.default_rng(0)
    host = rng.integers(100, 5000, (40, 33, 29)).astype(np.uint16)
    return host, cupy.asarray(host)


def test_spatial_mean(stacks):
    host, dev = stacks
    res = bg.spatial_mean(dev, (3.0, 5.0))
    assert isinstance(res.background, cupy.ndarray)
    np.testing.assert_allclose(
        res.background.get(), bg.spatial_mean(host, (3.0, 5.0)).background, rtol=1e-5
    )


def test_temporal(stacks):
    host, dev = stacks
    mask = np.random.default_rng(1).random(host.shape) < 0.3
    np.testing.assert_allclose(bg.temporal_median(dev).get(), bg.temporal_median(host))
    np.testing.assert_allclose(
        bg.temporal_median(dev, mask=cupy.asarray(mask), sigma_clip=3).get(),
        bg.temporal_median(host, mask=mask, sigma_clip=3),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        bg.temporal_percentile(dev, [10, 90]).get(), bg.temporal_percentile(host, [10, 90])
    )


def test_rolling_sparse_stats_subtract(stacks):
    host, dev = stacks
    np.testing.assert_array_equal(bg.rolling_median(dev, 7).get(), bg.rolling_median(host, 7))
    sd, sh = bg.sparse_median(dev, window=10), bg.sparse_median(host, window=10)
    np.testing.assert_array_equal(sd.frame_index, sh.frame_index)
    np.testing.assert_allclose(sd.expand().get(), sh.expand(), rtol=1e-6)
    for stat in ("min", "max", "mean", "std"):
        np.testing.assert_allclose(
            bg.frame_stats(dev, stat).get(), bg.frame_stats(host, stat), rtol=1e-5
        )
    out = bg.subtract(dev, bg.temporal_median(dev))
    assert isinstance(out, cupy.ndarray) and out.dtype == np.float32


def test_mixing_numpy_and_cupy_is_a_type_error(stacks):
    host, dev = stacks
    with pytest.raises(TypeError, match="mix numpy and cupy"):
        bg.subtract(dev, np.zeros(host.shape[1:], np.float32))
