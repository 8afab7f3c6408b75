"""Gain on device arrays: the cupy double (no GPU needed) and real cupy (``gpu``).

The double (tests/_fakecupy.py) raises ``TypeError`` wherever host and device arrays
meet, as cupy does; before the fix ``estimate_gain`` failed that way for every method
(a host ``excluded`` mask OR'd with a device map, ``xp.clip`` on the host dark
variance, ``mean - offset_map`` with a host offset map).
"""

from __future__ import annotations

import numpy as np
import pytest

from camtrack.gain import calibrate_pixels, estimate_gain
from camtrack.simulate import Camera, camera_stack, dark_stack

MAPS = ("mean", "var", "gain_map", "offset_map", "read_noise_map_e", "excluded")


@pytest.fixture(scope="module")
def data():
    stack, _ = camera_stack(60, (48, 48), camera={"e_per_adu": 0.5}, rng=0)
    dark, _ = dark_stack(40, shape=(48, 48), rng=1)
    return stack, dark


def test_the_double_refuses_mixing_and_implicit_host_copies(fakecupy):
    dev = fakecupy.asarray(np.ones((3, 3)))
    with pytest.raises(TypeError):
        dev + np.ones((3, 3))
    with pytest.raises(TypeError):
        np.asarray(dev)
    with pytest.raises(TypeError):
        fakecupy.clip(np.ones(3), 0, 1)
    assert float((dev * 2).sum()) == 18.0  # scalars and explicit reads are fine
    np.testing.assert_array_equal(dev.get(), np.ones((3, 3)))


@pytest.mark.parametrize("method", ["meanvar", "diff", "median", "robust", "auto"])
@pytest.mark.parametrize("dark_kind", [None, "scalar", "map", "stack"])
def test_estimate_gain_on_device_equals_host(fakecupy, data, method, dark_kind):
    stack, dark = data
    host_dark = {None: None, "scalar": 100.0, "map": np.full(stack.shape[1:], 100.0), "stack": dark}[dark_kind]  # fmt: skip
    dev_dark = host_dark if dark_kind in (None, "scalar") else fakecupy.asarray(host_dark)
    dev = estimate_gain(fakecupy.asarray(stack), method=method, dark=dev_dark)
    host = estimate_gain(stack, method=method, dark=host_dark)
    assert dev.method == host.method
    assert dev.e_per_adu == pytest.approx(host.e_per_adu, rel=1e-12)
    for name in MAPS:
        d, h = getattr(dev, name), getattr(host, name)
        assert (d is None) == (h is None), name
        if d is not None:
            assert isinstance(d, fakecupy.ndarray), name  # stays on the device
            np.testing.assert_allclose(d.get(), h, rtol=1e-12, err_msg=name)
    refit = dev.refit(fit_range=(20, 80))
    assert isinstance(refit.gain_map, fakecupy.ndarray)


def test_calibrate_pixels_on_device_equals_host(fakecupy):
    cam = Camera(shape=(32, 32), gain_spread=0.02, rng=0)
    dark, _ = dark_stack(60, camera=cam, rng=1)
    levels = [camera_stack(60, camera=cam, signal_e=s, rng=i)[0] for i, s in enumerate((200, 800))]  # fmt: skip
    dev = calibrate_pixels([fakecupy.asarray(x) for x in levels], fakecupy.asarray(dark))
    host = calibrate_pixels(levels, dark)
    assert isinstance(dev.e_per_adu_map, fakecupy.ndarray)
    np.testing.assert_allclose(dev.e_per_adu_map.get(), host.e_per_adu_map, rtol=1e-12)
    assert dev.e_per_adu == pytest.approx(host.e_per_adu)


def test_mixing_host_and_device_is_a_type_error_naming_both(fakecupy, data):
    stack, dark = data
    with pytest.raises(TypeError, match=r"numpy\.ndarray"):
        estimate_gain(fakecupy.asarray(stack), dark=dark)
    with pytest.raises(TypeError, match=r"numpy\.ndarray"):
        calibrate_pixels([fakecupy.asarray(stack), stack], fakecupy.asarray(dark))


@pytest.mark.gpu
@pytest.mark.parametrize("method", ["meanvar", "diff", "median", "robust", "auto"])
def test_estimate_gain_on_the_gpu(data, method):
    cupy = pytest.importorskip("cupy")
    if not cupy.is_available():  # pragma: no cover - depends on the machine
        pytest.skip("no CUDA device")
    stack, dark = data
    dev = estimate_gain(cupy.asarray(stack), method=method, dark=cupy.asarray(dark))
    host = estimate_gain(stack, method=method, dark=dark)
    assert dev.method == host.method
    # The GPU sums in another order: float64 accumulations agree to ~1e-9.
    assert dev.e_per_adu == pytest.approx(host.e_per_adu, rel=1e-6)
    for name in MAPS:
        assert isinstance(getattr(dev, name), cupy.ndarray), name
    np.testing.assert_allclose(dev.gain_map.get(), host.gain_map, rtol=1e-5)


@pytest.mark.gpu
def test_calibrate_pixels_on_the_gpu():
    cupy = pytest.importorskip("cupy")
    if not cupy.is_available():  # pragma: no cover - depends on the machine
        pytest.skip("no CUDA device")
    cam = Camera(shape=(32, 32), gain_spread=0.02, rng=0)
    dark, _ = dark_stack(60, camera=cam, rng=1)
    levels = [camera_stack(60, camera=cam, signal_e=s, rng=i)[0] for i, s in enumerate((200, 800))]  # fmt: skip
    dev = calibrate_pixels([cupy.asarray(x) for x in levels], cupy.asarray(dark))
    assert isinstance(dev.e_per_adu_map, cupy.ndarray)
    np.testing.assert_allclose(dev.e_per_adu_map.get(), calibrate_pixels(levels, dark).e_per_adu_map, rtol=1e-5)  # fmt: skip
