"""Tracking on device arrays: the cupy double (no GPU needed) and real cupy (``gpu``).

The double (tests/_fakecupy.py) raises ``TypeError`` where host and device arrays
meet, as cupy does, so these runs show the GPU code paths of the tracking pipeline
keep to one device.
"""

from __future__ import annotations

import numpy as np
import pytest

from camtrack.simulate import bead_field
from camtrack.tracking import track_beads


@pytest.fixture(scope="module")
def beads():
    stack, truth = bead_field(8, shape=(128, 128), n_beads=2, rng=0)
    return stack, list(zip(truth.x[0], truth.y[0], strict=True))


@pytest.mark.parametrize("mode", ["precise", "fast"])
def test_track_beads_on_the_double_equals_host(fakecupy, beads, mode):
    stack, start = beads
    dev = track_beads(fakecupy.asarray(stack), start, roi_size=48, reference=0, mode=mode)
    host = track_beads(stack, start, roi_size=48, reference=0, mode=mode)
    # The device path of "fast" is the array code, the host one a compiled loop: the same
    # positions to rounding, the error estimates to 1e-3 relative.
    np.testing.assert_allclose(np.asarray(dev.x), host.x, atol=1e-6)
    np.testing.assert_allclose(np.asarray(dev.y), host.y, atol=1e-6)
    np.testing.assert_allclose(np.asarray(dev.x_err), host.x_err, rtol=1e-2)


@pytest.mark.parametrize("mode", ["precise", "fast"])
def test_clipped_rois_on_the_double_equal_host(fakecupy, mode):
    # Clipped centres take the device's array paths: the clip check with its plateau
    # centroids, the fast mode's holed projections from them, the refinement's crops
    # cut from the batch, the shifted profile's hole denominators.
    from camtrack._backend import to_host
    from camtrack.simulate import bead_rois
    from camtrack.tracking import track_rois

    rng = np.random.default_rng(2)
    n = 12
    x, y = 23.5 + rng.uniform(-1.5, 1.5, n), 23.5 + rng.uniform(-1.5, 1.5, n)
    z = np.where(np.arange(n) % 2 == 0, rng.uniform(1500, 2500, n), rng.uniform(-2500, -500, n))
    rois, truth = bead_rois(x, y, z, roi_size=48, rng=3, saturation="adc", saturation_level=8.0)
    clipped = (rois >= truth.saturation_adu).sum(axis=(1, 2))
    assert (clipped >= 20).sum() >= 3 and (clipped == 0).sum() >= 3
    dev = track_rois(fakecupy.asarray(rois), mode=mode)
    host = track_rois(rois, mode=mode)
    np.testing.assert_allclose(to_host(dev.x), host.x, atol=2e-5)
    np.testing.assert_allclose(to_host(dev.y), host.y, atol=2e-5)
    np.testing.assert_allclose(to_host(dev.x_err), host.x_err, rtol=1e-2)
    assert float(np.sqrt(np.mean((host.x - x) ** 2))) < 0.02


@pytest.mark.gpu
def test_track_beads_on_the_gpu(beads):
    cupy = pytest.importorskip("cupy")
    if not cupy.is_available():  # pragma: no cover - depends on the machine
        pytest.skip("no CUDA device")
    stack, start = beads
    dev = track_beads(cupy.asarray(stack), start, roi_size=48, reference=0)
    host = track_beads(stack, start, roi_size=48, reference=0)
    # float32 FFTs on the GPU differ in rounding: well below the 0.01 px precision.
    np.testing.assert_allclose(np.asarray(dev.x), host.x, atol=1e-3)
