"""The second bead image model (Gaussian beams, exact pixel integrals) and sCMOS maps."""

import numpy as np
import pytest

from camtrack.gain import PixelCalibration
from camtrack.simulate import (
    GaussianBeamOptics,
    gaussian_beam_image,
    gaussian_beam_rois,
    gaussian_beam_zsweep,
    scmos_maps,
)


@pytest.mark.parametrize("z", [0.0, 1500.0, -4000.0])
def test_pixel_integrals_match_supersampling(z):
    # A 24x24 midpoint rule per pixel has error ~ f'' / (24 * 24**2): below 1e-4 here.
    img = gaussian_beam_image(20.3, 19.8, z, 40)[0]
    o = GaussianBeamOptics()
    c, g = o.terms(np.array([z]))
    ss = 24
    sub = (np.arange(ss) + 0.5) / ss - 0.5
    u = (np.arange(40)[:, None] + sub[None, :]).ravel()
    r2 = (u[None, :] - 20.3) ** 2 + (u[:, None] - 19.8) ** 2
    dense = np.real(sum(c[0, t] * np.exp(-g[0, t] * r2) for t in range(c.shape[1])))
    ref = dense.reshape(40, ss, 40, ss).mean(axis=(1, 3))
    assert np.abs(img - ref).max() < 1e-4


def test_background_far_away_and_sign_of_z():
    img = gaussian_beam_image(63.5, 63.5, [2000.0, -2000.0], 128)
    assert abs(img[0, 0, 0] - 1.0) < 1e-3  # 6 waists of the widest beam out
    # The Gouy phase makes +z and -z differ (the sign of z is observable).
    assert np.abs(img[0] - img[1]).max() > 0.05
    # The image is point-symmetric about the bead centre.
    np.testing.assert_allclose(img[0], img[0][::-1, ::-1], atol=1e-12)


def test_noise_statistics_match_truth():
    # 4000 frames: the mean is checked to ~5 standard errors, the variance to ~6 %.
    rois, t = gaussian_beam_rois(15.5, 15.5, np.zeros(4000), 32, background_e=400.0, e_per_adu=2.0, offset_adu=100.0, read_noise_e=3.0, dtype="float32", rng=3)  # fmt: skip
    mean, var = rois.mean(axis=0), rois.var(axis=0)
    se = np.sqrt(t.variance_adu[0] / rois.shape[0])
    assert np.abs(mean - t.expected_adu[0]).max() < 5 * se.max()
    assert np.abs(var / t.variance_adu[0] - 1.0).max() < 0.2
    assert abs(np.median(var / t.variance_adu[0]) - 1.0) < 0.03


def test_adc_clip_and_flat_top():
    x = 31.5 + np.zeros(200)
    rois, t = gaussian_beam_rois(x, 31.5, 0.0, 64, saturation="adc", saturation_level=2.0, rng=1)  # fmt: skip
    assert rois.max() == t.saturation_adu  # clipped pixels read one exact value
    assert (rois == t.saturation_adu).reshape(200, -1).sum(axis=1).min() >= 4
    flat, tf = gaussian_beam_rois(x, 31.5, 0.0, 64, saturation="full_well", saturation_level=2.0, read_noise_e=1.5, dtype="float32", rng=2)  # fmt: skip
    core = tf.expected_e[0] >= 2.0 * 4000.0 - 1e-9
    assert core.sum() >= 4
    # Flat-topped before the noise: only read noise (1.5 e- / 2 e-/ADU) on the plateau.
    assert np.std(flat[:, core]) < 1.0
    assert np.allclose(tf.expected_adu[0][core], 100.0 + 4000.0)


def test_scmos_maps_hot_pixels_and_calibration():
    maps = scmos_maps((128, 128), rng=5)
    assert maps.hot.sum() == round(0.001 * 128 * 128)
    assert np.all(maps.read_noise_e[maps.hot] == 60.0)
    cal = maps.to_calibration()
    assert isinstance(cal, PixelCalibration)
    np.testing.assert_allclose(cal.read_noise_map_e, maps.read_noise_e)
    small = scmos_maps((64, 64), rng=5)
    rois, t = gaussian_beam_rois(np.full(2000, 31.5), 31.5, 1000.0, 64, maps=small, background_e=400.0, dtype="float32", rng=6)  # fmt: skip
    var = rois.var(axis=0)
    assert abs(np.median(var / t.variance_adu[0]) - 1.0) < 0.03
    # Hot pixels: 60 e- read noise against ~20 e- of shot noise (9x the variance).
    assert np.all(var[small.hot] > 5 * np.median(var))


def test_zsweep_and_checks():
    stack, t = gaussian_beam_zsweep([-1000.0, 0.0, 1000.0], 32, 2, rng=0)
    assert stack.shape == (6, 32, 32)
    np.testing.assert_array_equal(t.z_nm, [-1000.0, -1000.0, 0.0, 0.0, 1000.0, 1000.0])
    with pytest.raises(ValueError, match="waists_nm"):
        GaussianBeamOptics(waists_nm=(300.0,), amplitudes=(1.0, 2.0), phases_rad=(0.0,))
    with pytest.raises(ValueError, match="maps"):
        gaussian_beam_rois(15.5, 15.5, 0.0, 32, maps=scmos_maps((16, 16), rng=0))
