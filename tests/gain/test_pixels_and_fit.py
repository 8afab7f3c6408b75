"""Per-pixel sCMOS calibration, the binned fit, and the median correction."""

from __future__ import annotations

import numpy as np
import pytest

from camtrack.gain import PixelCalibration, calibrate_pixels, fit_gain
from camtrack.gain._fit import median_correction
from camtrack.simulate import Camera, camera_stack, dark_stack


@pytest.fixture(scope="module")
def calibration():
    cam = Camera(
        shape=(48, 48),
        e_per_adu=0.5,
        gain_spread=0.05,
        offset_std_adu=3.0,
        read_noise_e=1.5,
        read_noise_spread=0.3,
        rng=4,
    )
    dark, _ = dark_stack(400, camera=cam, rng=1)
    levels = [
        camera_stack(400, camera=cam, signal_e=float(s), illumination="flat", rng=10 + i)[0]
        for i, s in enumerate((100, 400, 1000, 2000))
    ]
    return cam, calibrate_pixels(levels, dark)


def test_calibrate_pixels_recovers_maps(calibration):
    cam, cal = calibration
    assert cal.shape == cam.shape and cal.n_levels == 4
    # Offset per pixel: mean of 400 dark frames, sd = read noise (ADU) / 20; allow 5 sd
    # (2304 pixels) plus the rounding of the ADC.
    sd = np.sqrt((cam.read_noise_map_e / cam.e_per_adu_map) ** 2 + 1 / 12) / 20
    assert np.all(np.abs(cal.offset_map_adu - cam.offset_map_adu) < 5 * sd + 0.01)
    # Gain per pixel: 4 levels x 400 frames, each variance +-7%, least squares through
    # the dark point weighted to the bright levels: ~4% per pixel. The 5% pixel spread
    # of the truth must be resolved: correlation with truth and the median both checked.
    rel = cal.e_per_adu_map / cam.e_per_adu_map - 1
    assert abs(np.median(rel)) < 0.01
    assert np.std(rel) < 0.06
    assert np.corrcoef(cal.e_per_adu_map.ravel(), cam.e_per_adu_map.ravel())[0, 1] > 0.6
    # Read noise per pixel (lognormal spread 0.3): 400 dark frames give +-7% per pixel.
    rn = cal.read_noise_map_e / cam.read_noise_map_e - 1
    assert abs(np.median(rn)) < 0.05
    assert cal.e_per_adu == pytest.approx(0.5, rel=0.01)


@pytest.mark.parametrize("suffix", [".h5", ".npz"])
def test_calibration_save_load(calibration, tmp_path, suffix):
    _, cal = calibration
    path = cal.save(tmp_path / f"cal{suffix}")
    back = PixelCalibration.load(path)
    for name in ("offset_map_adu", "dark_var_map_adu2", "adu_per_e_map", "e_per_adu_map"):
        np.testing.assert_array_equal(getattr(back, name), getattr(cal, name))
    assert back.n_levels == cal.n_levels
    with pytest.raises(FileExistsError):
        cal.save(path)
    cal.save(path, overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left
    if suffix == ".h5":
        import h5py

        with h5py.File(path) as f:
            assert f["e_per_adu_map"].attrs["unit"] == "e-/ADU"


def test_calibrate_pixels_errors():
    dark = np.zeros((10, 8, 8), np.uint16)
    with pytest.raises(ValueError, match="at least 2"):
        calibrate_pixels([dark], dark)
    with pytest.raises(ValueError, match="frame shape"):
        calibrate_pixels([dark, np.zeros((10, 4, 4))], dark)
    with pytest.raises(ValueError, match=r"suffix|end in"):
        PixelCalibration(*(np.zeros((2, 2)),) * 5).save("x.txt")


def test_fit_gain_exact_line():
    mean = np.linspace(100, 1100, 20000).reshape(100, 200)
    fit = fit_gain(mean, 0.25 * (mean - 100) + 9.0)
    assert fit.slope == pytest.approx(0.25, rel=1e-12)
    assert fit.intercept == pytest.approx(9.0 - 25.0, abs=1e-9)
    assert fit.r == pytest.approx(1.0)
    lo, hi = fit.fit_range_adu
    assert np.all((fit.bin_mean[fit.in_fit] >= lo) & (fit.bin_mean[fit.in_fit] <= hi))


@pytest.mark.parametrize("order", [0, 1, 4, 8])
def test_median_correction_matches_monte_carlo(order):
    """Median/mean of the white-noise variance estimator of each order, by simulation."""
    from scipy.special import comb

    rng = np.random.default_rng(order)
    t = 120
    x = rng.standard_normal((20000, t))
    if order == 0:
        est = x.var(axis=1, ddof=1)
        n = t - 1
    else:
        d = np.diff(x, n=order, axis=1)
        est = (d * d).mean(axis=1) / comb(2 * order, order, exact=True)
        n = t - order
    mc = np.median(est) / est.mean()
    # 20000 draws: the Monte Carlo median is good to ~0.1-0.3%.
    assert median_correction(n, order) == pytest.approx(mc, abs=0.004)
