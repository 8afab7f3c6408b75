"""camtrack.tracking.crlb: the Cramer-Rao bound, checked by scaling and by an ML fit."""

import numpy as np
import pytest

from camtrack.simulate import (
    gaussian_beam_image,
    gaussian_beam_rois,
    gaussian_beam_zsweep,
    scmos_maps,
)
from camtrack.tracking import CameraModel, as_camera_model, build_zlut, crlb

S = 32
Z0 = 800.0


def _model(bg_adu, offset=100.0):
    return lambda x, y, _z: offset + bg_adu * gaussian_beam_image(x, y, Z0, S)


def test_bound_scales_as_one_over_sqrt_photons():
    # Pure shot noise (no read noise, no rounding): 16x the photons, a quarter the bound.
    cam = CameraModel(1.0, 0.0, 0.0, quantized=False)
    lo = crlb(lambda x, y, z: 100.0 * gaussian_beam_image(x, y, z, S), 15.3, 15.6, Z0, camera=cam)
    hi = crlb(lambda x, y, z: 1600.0 * gaussian_beam_image(x, y, z, S), 15.3, 15.6, Z0, camera=cam)
    for k in ("x", "y", "z"):
        assert getattr(hi, k)[0] / getattr(lo, k)[0] == pytest.approx(0.25, rel=1e-3)
    # Read noise only adds variance: the bound grows.
    noisy = crlb(lambda x, y, z: 100.0 * gaussian_beam_image(x, y, z, S), 15.3, 15.6, Z0, read_noise_e=5.0)  # fmt: skip
    assert noisy.x[0] > lo.x[0]


def test_ml_fit_with_the_true_template_reaches_the_bound():
    # 400 ROIs: the RMS of the scatter is known to ~3.5 % (1 sigma); 0.85-1.15 is > 4 sigma.
    rng = np.random.default_rng(0)
    n = 400
    x, y = 15.5 + rng.uniform(-1, 1, n), 15.5 + rng.uniform(-1, 1, n)
    for bg_e in (400.0, 4000.0):
        rois, truth = gaussian_beam_rois(x, y, Z0, S, background_e=bg_e, dtype="float32", rng=1)
        model = _model(bg_e / 2.0)
        bound = crlb(model, x, y, e_per_adu=2.0, offset_adu=100.0, read_noise_e=1.5, camera=None)
        ex, ey = x + 0.1, y - 0.1
        w = 1.0 / truth.variance_adu.reshape(n, -1)
        d = rois.reshape(n, -1).astype(np.float64)
        h = 1e-3
        for _ in range(5):  # Gauss-Newton on the weighted least squares (ML, Gaussian limit)
            mu = model(ex, ey, None).reshape(n, -1)
            gx = ((model(ex + h, ey, None) - model(ex - h, ey, None)) / (2 * h)).reshape(n, -1)
            gy = ((model(ex, ey + h, None) - model(ex, ey - h, None)) / (2 * h)).reshape(n, -1)
            j = np.stack([gx, gy], 1)
            a = np.einsum("nip,np,njp->nij", j, w, j)
            r = np.einsum("nip,np,np->ni", j, w, d - mu)
            step = np.linalg.solve(a, r[..., None])[..., 0]
            ex, ey = ex + step[:, 0], ey + step[:, 1]
        rms = np.sqrt(np.mean((ex - x) ** 2 + (ey - y) ** 2) / 2)
        assert 0.85 < rms / bound.rms()["x"] < 1.15


def test_zlut_model_close_to_the_true_model():
    planes = np.arange(-3000.0, 3001.0, 100.0)
    calib, _ = gaussian_beam_zsweep(planes, S, 1, noise=False, dtype="float32")
    lut = build_zlut(calib, planes)
    true_z = crlb(lambda x, y, z: 100.0 + 2000.0 * gaussian_beam_image(x, y, z, S), 15.5, 15.5, Z0, e_per_adu=2.0, offset_adu=100.0)  # fmt: skip
    from_lut = crlb(lut, 15.5, 15.5, Z0, e_per_adu=2.0, offset_adu=100.0, background_adu=2000.0)
    # The LUT's profiles are smoothed by the 0.5 px radial kernel and stop at the
    # profile's last bin: its bound is a little looser, never much tighter.
    assert 0.9 < from_lut.x[0] / true_z.x[0] < 1.5
    assert 0.9 < from_lut.z[0] / true_z.z[0] < 1.5
    with pytest.raises(ValueError, match="background_adu"):
        crlb(lut, 15.5, 15.5, Z0)
    # z a parameter the model ignores: an infinite bound, not an error.
    assert np.isinf(crlb(_model(2000.0), 15.5, 15.5, Z0).z[0])


def test_camera_maps_and_hot_pixels():
    maps = scmos_maps((S, S), hot_fraction=0.0, rng=0)
    hot = scmos_maps((S, S), hot_fraction=0.02, rng=0)
    model = _model(800.0)
    cold = crlb(model, 15.5, 15.5, camera=maps.to_calibration())
    warm = crlb(model, 15.5, 15.5, camera=hot.to_calibration())
    assert warm.x[0] > cold.x[0]  # noisy pixels carry less information
    assert cold.x[0] == pytest.approx(crlb(model, 15.5, 15.5, camera=maps).x[0], rel=1e-6)
    m = as_camera_model({"e_per_adu": 2.0, "read_noise_e": 1.5})
    assert m.offset_adu == 0.0 and as_camera_model() is None
    with pytest.raises(TypeError, match="camera"):
        crlb(model, 15.5, 15.5, camera=3.5)
    # A string is a saved calibration's path.
    with pytest.raises(FileNotFoundError, match="`camera`: no such file 'sCMOS'"):
        crlb(model, 15.5, 15.5, camera="sCMOS")
    with pytest.raises(ValueError, match="e_per_adu"):
        CameraModel(0.0, 0.0, 0.0)


def test_saturated_pixels_carry_no_information():
    model = _model(2000.0)
    free = crlb(model, 15.5, 15.5, e_per_adu=2.0, offset_adu=100.0)
    clipped = crlb(model, 15.5, 15.5, e_per_adu=2.0, offset_adu=100.0, saturation=100.0 + 2.0 * 2000.0)  # fmt: skip
    assert clipped.x[0] > free.x[0]
