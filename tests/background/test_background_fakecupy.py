"""Background on the cupy double (tests/_fakecupy.py): device in, device out, no mixing.

Runs without a GPU; the double raises ``TypeError`` wherever a host array meets a
device array or a device array is converted to the host implicitly, as cupy does.
The same calls on a real GPU are in test_background_gpu.py (marked ``gpu``).
"""

from __future__ import annotations

import numpy as np
import pytest

from camtrack import background as bg


@pytest.fixture(scope="module")
def host():
    return np.random.default_rng(0).integers(100, 5000, (40, 33, 29)).astype(np.uint16)


def _same(fakecupy, dev, ref, **kw):
    assert isinstance(dev, fakecupy.ndarray)
    np.testing.assert_allclose(dev.get(), ref, **kw)


def test_temporal_and_percentile(fakecupy, host):
    dev = fakecupy.asarray(host)
    mask = np.random.default_rng(1).random(host.shape) < 0.3
    _same(fakecupy, bg.temporal_median(dev), bg.temporal_median(host))
    _same(
        fakecupy,
        bg.temporal_median(dev, mask=fakecupy.asarray(mask), sigma_clip=3),
        bg.temporal_median(host, mask=mask, sigma_clip=3),
    )
    frames = np.arange(40) % 3 == 0
    _same(fakecupy, bg.temporal_median(dev, mask=fakecupy.asarray(frames)), bg.temporal_median(host, mask=frames))  # fmt: skip
    _same(fakecupy, bg.temporal_percentile(dev, [10, 90]), bg.temporal_percentile(host, [10, 90]))  # fmt: skip


def test_rolling_sparse_spatial_stats_subtract(fakecupy, host):
    dev = fakecupy.asarray(host)
    _same(fakecupy, bg.rolling_median(dev, 7), bg.rolling_median(host, 7))
    sd = bg.sparse_median(dev, window=10, offset_correction=True)
    sh = bg.sparse_median(host, window=10, offset_correction=True)
    _same(fakecupy, sd.expand(), sh.expand(), rtol=1e-6)
    _same(fakecupy, bg.spatial_mean(dev, (3.0, 5.0)).background, bg.spatial_mean(host, (3.0, 5.0)).background, rtol=1e-6)  # fmt: skip
    for stat in ("min", "max", "mean", "std"):
        _same(fakecupy, bg.frame_stats(dev, stat), bg.frame_stats(host, stat), rtol=1e-6)
    _same(fakecupy, bg.frame_stats(dev, "percentile", q=30), bg.frame_stats(host, "percentile", q=30))  # fmt: skip
    last = list(bg.iter_frame_stats(dev, "percentile", 3, q=50))[-1].image
    _same(fakecupy, last, bg.temporal_median(host))
    out = bg.subtract(dev, bg.temporal_median(dev), offsets=fakecupy.asarray(np.ones(40, np.float32)), clip=True)  # fmt: skip
    _same(fakecupy, out, bg.subtract(host, bg.temporal_median(host), offsets=np.ones(40, np.float32), clip=True))  # fmt: skip


def test_host_mask_with_device_stack_is_a_type_error(fakecupy, host):
    with pytest.raises(TypeError, match=r"numpy\.ndarray"):
        bg.temporal_median(fakecupy.asarray(host), mask=np.zeros(host.shape, bool))
