"""Camera model: simulated pixels follow the photon-transfer truth they report."""

from __future__ import annotations

import json

import dask.array as da
import numpy as np
import pytest

from camtrack import simulate as sim


def _pooled(stack: np.ndarray) -> tuple[float, float, int]:
    """Mean, unbiased variance and count over all frames and pixels (float64)."""
    v = stack.astype(np.float64).ravel()
    return float(v.mean()), float(v.var(ddof=1)), v.size


def _assert_moments(block: np.ndarray, mean: float, var: float) -> None:
    """Pooled iid samples against the model.

    Mean: 5 standard errors sqrt(var / n). Variance: the sample variance of n nearly
    Gaussian samples has relative standard error sqrt(2 / (n - 1)) (0.7 % at n = 40960);
    we allow 5 of them (the Poisson excess kurtosis 1/S is negligible at these S).
    """
    m, v, n = _pooled(block)
    assert abs(m - mean) < 5 * np.sqrt(var / n), (m, mean)
    assert abs(v / var - 1) < 5 * np.sqrt(2 / (n - 1)), (v, var)


@pytest.mark.parametrize("f2", [1.0, 1.5, 2.0])
def test_mean_and_variance_follow_the_model(f2):
    cam = sim.Camera(shape=(32, 32), e_per_adu=2.0, offset_adu=100.0, read_noise_e=1.5,
                     excess_noise_factor=f2)  # fmt: skip
    levels = [0.0, 100.0, 2000.0]
    stack, truth = sim.illumination_series(levels, n_frames=40, camera=cam, rng=7)
    for i, s in enumerate(levels):
        block = stack[truth.level_index == i]
        # mean = S/g + offset; var = (F^2 S + rn^2)/g^2 + 1/12 (rounding)
        mean = s / 2.0 + 100.0
        var = (f2 * s + 1.5**2) / 2.0**2 + 1 / 12
        _assert_moments(block, mean, var)
        assert np.allclose(truth.expected_adu([i * 40])[0], mean)
        assert np.allclose(truth.variance_adu([i * 40])[0], var)


def test_emccd_doubles_the_shot_noise_variance():
    kwargs = dict(shape=(32, 32), e_per_adu=1.0, read_noise_e=0.0, offset_adu=500.0)
    ccd, _ = sim.camera_stack(40, camera=sim.Camera(**kwargs), signal_e=400.0, rng=1)
    em, _ = sim.camera_stack(40, camera=sim.Camera(**kwargs, excess_noise_factor=2.0),
                             signal_e=400.0, rng=1)  # fmt: skip
    (m1, v1, n), (m2, v2, _) = _pooled(ccd), _pooled(em)
    # Same mean (the EM register is unbiased), twice the shot-noise variance; the 1/12
    # rounding term is removed first. Ratio tolerance: 5 relative standard errors of a
    # variance ratio, 5 * sqrt(4 / n).
    assert abs(m2 - m1) < 5 * np.sqrt((v1 + v2) / n)
    assert abs((v2 - 1 / 12) / (v1 - 1 / 12) - 2.0) < 2.0 * 5 * np.sqrt(4 / n)


def test_scalar_noise_without_rounding_for_float32():
    stack, truth = sim.camera_stack(30, (32, 32), signal_e=1000.0, dtype="float32", rng=3)
    assert stack.dtype == np.float32
    assert np.any(stack != np.round(stack))
    _assert_moments(stack, 1000 / 2 + 100, (1000 + 1.5**2) / 4)
    assert np.allclose(truth.variance_adu([0]), (1000 + 1.5**2) / 4)


def test_dark_stack_gives_the_per_pixel_maps():
    cam = sim.Camera(shape=(32, 32), e_per_adu=0.5, offset_adu=300.0, offset_std_adu=8.0,
                     read_noise_e=2.0, read_noise_spread=0.3, rng=11)  # fmt: skip
    dark, truth = sim.dark_stack(400, camera=cam, rng=12)
    assert truth.offset_map_adu is cam.offset_map_adu
    sigma_adu = cam.read_noise_map_e / 0.5
    # Per-pixel mean: error sigma / sqrt(T); 5 sigma over 1024 pixels.
    mean = dark.mean(axis=0)
    assert np.all(np.abs(mean - cam.offset_map_adu) < 5 * np.sqrt(sigma_adu**2 + 1 / 12) / 20)
    # Per-pixel std: relative error ~ 1 / sqrt(2 (T - 1)) = 3.5 %; 6 of them per pixel,
    # and the map is recovered (its own spread is 30 %).
    std = dark.std(axis=0, ddof=1)
    model = np.sqrt(sigma_adu**2 + 1 / 12)
    assert np.all(np.abs(std / model - 1) < 6 / np.sqrt(2 * 399))
    assert np.corrcoef(std.ravel(), model.ravel())[0, 1] > 0.95
    # The read-noise map is lognormal with median read_noise_e.
    assert abs(np.median(cam.read_noise_map_e) / 2.0 - 1) < 0.05
    assert cam.offset_map_adu.std() > 6


def test_one_camera_shares_its_maps_across_stacks():
    cam = sim.Camera(shape=(16, 16), offset_std_adu=5.0, read_noise_spread=0.4, rng=5)
    _, t_dark = sim.dark_stack(3, camera=cam, rng=1)
    _, t_light = sim.camera_stack(3, camera=cam, rng=2)
    assert t_dark.offset_map_adu is t_light.offset_map_adu
    same = sim.Camera(shape=(16, 16), offset_std_adu=5.0, read_noise_spread=0.4, rng=5)
    other = sim.Camera(shape=(16, 16), offset_std_adu=5.0, read_noise_spread=0.4, rng=6)
    assert np.array_equal(same.read_noise_map_e, cam.read_noise_map_e)
    assert not np.array_equal(other.offset_map_adu, cam.offset_map_adu)
    with pytest.raises(ValueError):
        cam.offset_map_adu[0, 0] = 0  # read-only maps


def test_bleach_is_exponential_to_the_stated_fraction():
    stack, truth = sim.camera_stack(50, (32, 32), signal_e=2000.0, bleach=0.4, rng=4)
    b = truth.bleach_factor
    assert b[0] == 1.0 and np.isclose(b[-1], 0.6)
    assert np.allclose(np.diff(np.log(b)), np.log(0.6) / 49)
    # Frame means: 1024 pixels, error sqrt(var/1024) < 0.8 ADU; allow 5 ADU.
    means = stack.reshape(50, -1).mean(axis=1)
    assert np.allclose(means, 2000 * b / 2 + 100, atol=5)
    assert np.allclose(truth.expected_adu([0, 49])[:, 0, 0], 2000 * b[[0, -1]] / 2 + 100)


def test_patterns_span_the_signal_range():
    for pattern in ("gradient", "vignette"):
        _, truth = sim.camera_stack(1, (64, 48), signal_e=(50, 2000), illumination=pattern, rng=0)
        s = truth.signal_e
        assert np.isclose(s.min(), 50) and np.isclose(s.max(), 2000)
        assert np.unique(np.round(s)).size > 100  # many levels for a mean-variance curve
    _, flat = sim.camera_stack(1, (8, 8), signal_e=(50, 2000), illumination="flat", rng=0)
    assert np.all(flat.signal_e == 2000)


def test_clipping_full_well_and_bit_depth():
    cam = sim.Camera(shape=(16, 16), e_per_adu=2.0, full_well_e=500.0, read_noise_e=1.5)
    stack, truth = sim.camera_stack(20, camera=cam, signal_e=5000.0, rng=1)
    # Every pixel holds a full well: 500/2 + 100 ADU with read noise 0.75 ADU only.
    assert abs(stack.mean() - 350) < 0.1
    assert stack.std() < 1.2
    assert truth.saturation_adu == 350
    small = sim.Camera(shape=(8, 8), bit_depth=8)
    stack8, _ = sim.camera_stack(5, camera=small, signal_e=1000.0, rng=1)
    assert stack8.max() == 255 and np.all(stack8 == 255)


def test_same_seed_same_stack_and_generators():
    a, _ = sim.camera_stack(5, (16, 16), n_beads=1, rng=9)
    b, _ = sim.camera_stack(5, (16, 16), n_beads=1, rng=9)
    c, _ = sim.camera_stack(5, (16, 16), n_beads=1, rng=10)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    g1, g2 = np.random.default_rng(3), np.random.default_rng(3)
    first = sim.camera_stack(3, (8, 8), rng=g1)[0]
    assert np.array_equal(first, sim.camera_stack(3, (8, 8), rng=g2)[0])
    # A Generator advances, so a second call with it differs.
    assert not np.array_equal(first, sim.camera_stack(3, (8, 8), rng=g1)[0])


def test_lazy_stack_equals_eager_for_any_chunking():
    kwargs = dict(n_frames=23, shape=(24, 20), n_beads=2, bleach=0.2, rng=21)
    eager, _ = sim.camera_stack(**kwargs)
    lazy, _ = sim.camera_stack(**kwargs, chunks=5)
    assert isinstance(lazy, da.Array)
    assert lazy.chunks[0] == (5, 5, 5, 5, 3) and lazy.dtype == np.uint16
    assert np.array_equal(lazy.compute(), eager)
    assert np.array_equal(lazy.compute(), lazy.compute())
    other, _ = sim.camera_stack(**kwargs, chunks=7)
    assert np.array_equal(other[::3].compute(), eager[::3])


def test_lazy_stack_is_never_materialised():
    # 100k frames of 512 x 512 (52 GB as uint16): only the frames asked for are drawn.
    lazy, truth = sim.dark_stack(100_000, (512, 512), chunks=1, rng=4)
    frame = lazy[54_321].compute()
    assert frame.shape == (512, 512) and truth.n_frames == 100_000
    small, _ = sim.dark_stack(3, (512, 512), rng=4)
    assert np.array_equal(lazy[2].compute(), small[2])  # frame t depends on (seed, t) only


def test_truth_summary_is_small_json():
    _, truth = sim.illumination_series([0, 10, 100], 5, (16, 16), rng=1)
    text = json.dumps(truth.to_dict())
    assert len(text) < 2000
    d = truth.to_dict()
    assert d["e_per_adu"] == 2.0 and d["adu_per_e"] == 0.5 and d["levels_e"] == [0, 10, 100]


def test_bad_input_messages():
    with pytest.raises(ValueError, match="`dtype`"):
        sim.camera_stack(2, (8, 8), dtype="int8")
    with pytest.raises(ValueError, match="`bleach`"):
        sim.camera_stack(2, (8, 8), bleach=1.0)
    with pytest.raises(ValueError, match=r"`camera\.shape`"):
        sim.camera_stack(2, (8, 8), camera=sim.Camera(shape=(4, 4)))
    with pytest.raises(ValueError, match="`excess_noise_factor`"):
        sim.Camera(excess_noise_factor=3.0)
    with pytest.raises(ValueError, match="`chunks`"):
        sim.dark_stack(2, (8, 8), chunks=0)
    with pytest.raises(TypeError, match="`rng`"):
        sim.dark_stack(2, (8, 8), rng="seed")


def test_dark_current_and_gain_map_enter_mean_and_variance():
    cam = sim.Camera(shape=(32, 32), e_per_adu=2.0, read_noise_e=1.5, dark_current_e=50.0,
                     gain_spread=0.02, rng=3)  # fmt: skip
    assert abs(np.median(cam.e_per_adu_map) / 2.0 - 1) < 0.01
    dark, truth = sim.dark_stack(40, camera=cam, rng=1)
    g = cam.e_per_adu_map
    assert np.allclose(truth.expected_adu([0])[0], 100 + 50 / g)
    assert np.allclose(truth.variance_adu([0])[0], (50 + 1.5**2) / g**2 + 1 / 12)
    # Standardised per-pixel residuals pooled: mean 0 +- 5 / sqrt(n), variance 1 +- 5 sqrt(2/n).
    z = (dark - truth.expected_adu([0])) / np.sqrt(truth.variance_adu([0]))
    assert abs(z.mean()) < 5 / np.sqrt(z.size)
    assert abs(z.var() - 1) < 5 * np.sqrt(2 / z.size)


def test_expose_method_and_illumination_series_patterns():
    cam = sim.Camera(shape=(16, 16))
    frames = cam.expose(np.full((4, 16, 16), 500.0), rng=2)
    assert frames.shape == (4, 16, 16) and np.array_equal(frames, cam.expose(np.full((4, 16, 16), 500.0), rng=2))  # fmt: skip
    _, truth = sim.illumination_series([10, 20], 2, camera=cam, illumination="vignette", rng=0)
    rel = truth.signal_e
    assert np.isclose(rel.mean(), 1) and 0.75 < rel.min() < rel.max() < 1.25
    assert np.array_equal(truth.frame_scale, [10, 10, 20, 20])
