"""Bead optics and rendering: physical sanity, exact pixel integration, noise and truth."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import roots_legendre

from camtrack import simulate as sim


def test_integer_translation_shifts_the_image_exactly():
    a = sim.bead_image(30.37, 31.81, 1500.0, roi_size=64)
    b = sim.bead_image(31.37, 29.81, 1500.0, roi_size=64)  # +1 column, -2 rows
    assert np.allclose(b[:-2, 1:], a[2:, :-1], rtol=0, atol=1e-10)


def test_pixel_integration_matches_brute_force():
    # 12 x 12 Gauss-Legendre nodes per pixel over the radial profile: an independent
    # evaluation of the pixel integral (the renderer works in Fourier space).
    x, y, z, size = 13.3, 14.8, -1200.0, 28
    img = sim.bead_image(x, y, z, roi_size=size)
    g, w = roots_legendre(12)
    g, w = g / 2, w / 2
    yy = (np.arange(size)[:, None] + g).ravel() - y
    xx = (np.arange(size)[:, None] + g).ravel() - x
    r_nm = np.hypot(yy[:, None], xx[None, :]).ravel() * sim.BeadOptics().nm_per_px
    prof = sim.bead_profile(z, r_nm).reshape(size, 12, size, 12)
    brute = np.einsum("ikjl,k,l->ij", prof, w, w)
    assert np.abs(img - brute).max() < 1e-3  # rings have amplitude ~1


@pytest.mark.parametrize("z", [0.0, -1000.0, 3000.0])
def test_centre_of_mass_is_unbiased_at_sub_pixel_positions(z):
    # With the whole pattern inside the ROI the centroid of the background-subtracted
    # image is exact for a band-limited pattern (sums of samples equal integrals); only
    # the taper's spectral leakage is left (< 1e-3 px).
    size = 180
    yy, xx = np.mgrid[:size, :size]
    for x, y in [(89.3, 90.6), (90.05, 89.9), (89.5, 89.5)]:
        d = sim.bead_image(x, y, z, roi_size=size) - 1.0
        assert abs((d * xx).sum() / d.sum() - x) < 1e-3
        assert abs((d * yy).sum() / d.sum() - y) < 1e-3


def test_centre_of_mass_in_a_typical_roi_near_focus():
    # A 64-px ROI cuts the rings; near focus the bias of a plain centroid stays small.
    yy, xx = np.mgrid[:64, :64]
    for x, y in [(31.3, 32.6), (30.05, 31.9), (32.5, 31.5)]:
        w = (sim.bead_image(x, y, 500.0, roi_size=64) - 1.0) ** 2
        assert abs((w * xx).sum() / w.sum() - x) < 0.02
        assert abs((w * yy).sum() / w.sum() - y) < 0.02


def test_rings_change_smoothly_and_identifiably_with_z():
    z = np.arange(-5000.0, 5001.0, 25.0)
    prof = sim.bead_profile(z, np.arange(0.0, 3200.0, 25.0))
    # Continuity: planes 25 nm apart are strongly correlated everywhere, also near
    # focus where the image changes fastest (depth of field ~ n lambda / NA^2 = 0.56 um).
    corr = [np.corrcoef(prof[i], prof[i + 1])[0, 1] for i in range(z.size - 1)]
    assert min(corr) > 0.95
    # Identifiable: on a 100 nm grid, every plane's nearest other profile (normalised
    # to zero mean and unit variance, as profile-matching trackers do) is a neighbour.
    p = prof[::4]
    p = (p - p.mean(axis=1, keepdims=True)) / p.std(axis=1, keepdims=True)
    dist = np.linalg.norm(p[:, None] - p[None], axis=2)
    np.fill_diagonal(dist, np.inf)
    assert np.all(np.abs(np.argmin(dist, axis=1) - np.arange(p.shape[0])) == 1)
    # Profiles 2 um apart differ clearly.
    assert np.abs(prof[80] - prof[160]).max() > 0.3


def test_sign_convention_bright_focus_beyond_the_bead():
    # z > 0: the focal plane lies between bead and objective, where the bead's ball-lens
    # focus is (bright centre, many times the background); the mirror plane z < 0 shows
    # a different pattern (a virtual image), so the sign of z is observable.
    prof = sim.bead_profile(np.array([-2000.0, 2000.0]), np.arange(0.0, 3000.0, 50.0))
    assert prof[1, 0] > 10.0 and prof[0, 0] < 3.0
    assert np.abs(prof[0] - prof[1]).max() > 1.0


def test_background_and_energy_normalisation():
    # Far from the bead the image is the unscattered background, 1.
    img = sim.bead_image(89.5, 89.5, 0.0, roi_size=180)
    assert np.abs(img[:5, :5] - 1).max() < 1e-4
    # A bead matched to the medium is invisible.
    ghost = sim.BeadOptics(n_bead=1.33, bead_absorption=0.0)
    assert np.abs(sim.bead_image(31.5, 31.5, 1000.0, optics=ghost) - 1).max() < 1e-9
    # Energy: propagation within the pupil conserves power, so the integral of I - 1
    # is the same at every z; it is negative (light scattered beyond the NA is lost),
    # and absorption removes more. Coherent light and a wide taper keep the integral
    # clean; the slowly decaying tails beyond 24 um leave a few percent.
    r = np.arange(0.0, 24000.0, 2.0)
    zs = [-2000.0, 0.0, 2000.0]

    def energy(absorption):
        o = sim.BeadOptics(bandwidth_nm=0.0, illumination_na=0.0, max_radius_nm=30000.0,
                           bead_absorption=absorption)  # fmt: skip
        p = sim.bead_profile(zs, r, optics=o)
        return np.array([np.trapezoid(2 * np.pi * r * (pi - 1), r) for pi in p])

    clear, dark = energy(0.0), energy(0.01)
    assert np.all(clear < 0) and np.ptp(clear) < 0.05 * abs(clear.mean())
    assert np.all(dark < clear) and np.ptp(dark) < 0.05 * abs(dark.mean())


def test_background_e_scales_the_image_and_broadcasting():
    one = sim.bead_image([10.0, 12.0], 11.0, [0.0, 500.0], roi_size=(20, 24))
    assert one.shape == (2, 20, 24)
    e = sim.bead_image([10.0, 12.0], 11.0, [0.0, 500.0], roi_size=(20, 24), background_e=300.0)
    assert np.allclose(e, 300.0 * one)
    with pytest.raises(ValueError, match="broadcast"):
        sim.bead_image([1.0, 2.0], [1.0, 2.0, 3.0], 0.0)


def test_rois_noise_matches_the_expected_image():
    n = 400
    rois, truth = sim.bead_rois(np.full(n, 15.2), 14.7, 1800.0, roi_size=32, background_e=1000.0,
                                camera={"e_per_adu": 2.0, "read_noise_e": 3.0}, rng=2)  # fmt: skip
    assert rois.shape == (n, 32, 32) and rois.dtype == np.uint16
    mu, var = truth.expected_adu[0], truth.variance_adu[0]
    # Per-pixel mean over 400 ROIs: standardised error ~ N(0, 1); mean of the squared
    # standardised errors is 1 +- sqrt(2 / 1024) for a correct mean.
    zscore = (rois.mean(axis=0) - mu) / np.sqrt(var / n)
    assert abs(np.mean(zscore**2) - 1) < 5 * np.sqrt(2 / zscore.size)
    # Variance pooled over pixels: ratio 1 within 5 standard errors sqrt(2 / (n - 1) / 1024).
    ratio = rois.astype(np.float64).var(axis=0, ddof=1) / var
    assert abs(ratio.mean() - 1) < 5 * np.sqrt(2 / (n - 1) / ratio.size)
    clean, _ = sim.bead_rois(15.2, 14.7, 1800.0, roi_size=32, background_e=1000.0, noise=False,
                             camera={"e_per_adu": 2.0}, dtype="float32")  # fmt: skip
    assert np.allclose(clean[0], mu, atol=1e-3)


def test_saturation_adc_clips_after_the_noise():
    rois, truth = sim.bead_rois(31.5, 31.5, 2000.0, roi_size=64, saturation="adc",
                                saturation_level=3.0, rng=1)  # fmt: skip
    clip = np.rint(100 + 3.0 * 4000 / 2.0)
    assert truth.saturation_adu == clip and rois.max() == clip
    clipped = rois[0] == clip
    assert 1 <= clipped.sum() < 200 and clipped[31, 31]  # the bright centre, not the rest
    assert truth.expected_adu.max() == clip
    # Default level: the bright centre reaches it.
    rois_d, truth_d = sim.bead_rois(31.5, 31.5, 2000.0, roi_size=64, saturation="adc", rng=1)
    assert truth_d.saturation_level > 1 and (rois_d == truth_d.saturation_adu).sum() >= 1


def test_saturation_full_well_plateau_has_read_noise_only():
    rois, truth = sim.bead_rois(np.full(20, 31.5), 31.5, 2000.0, roi_size=64,
                                saturation="full_well", saturation_level=3.0, rng=4)  # fmt: skip
    well = 3.0 * 4000.0
    assert np.isclose(truth.expected_e.max(), well)
    # Pixels expecting more than the well plus 5 shot-noise sigma always fill it.
    unclipped = sim.bead_image(31.5, 31.5, 2000.0, roi_size=64, background_e=4000.0)
    deep = unclipped > well + 5 * np.sqrt(well)
    assert deep.sum() >= 3
    vals = rois[:, deep].astype(np.float64)
    assert abs(vals.mean() - (100 + well / 2.0)) < 0.1  # offset + well / g
    assert vals.std() < 1.2  # read noise 1.5 e- = 0.75 ADU plus rounding; no shot noise
    assert rois.max() <= 100 + well / 2.0 + 6 * 0.8
    assert truth.saturation_adu == 100 + well / 2.0
    with pytest.raises(ValueError, match="saturation_level"):
        sim.bead_rois(31.5, 31.5, 0.0, saturation_level=2.0)


def test_zsweep_truth_and_determinism():
    planes = np.linspace(-3000, 3000, 7)
    stack, truth = sim.zsweep(planes, roi_size=32, frames_per_plane=3, rng=5)
    assert stack.shape == (21, 32, 32)
    assert np.array_equal(truth.z_nm, np.repeat(planes, 3))
    assert np.array_equal(truth.plane, np.repeat(np.arange(7), 3))
    assert np.all(truth.x == 15.5) and np.all(truth.y == 15.5)
    again, _ = sim.zsweep(planes, roi_size=32, frames_per_plane=3, rng=5)
    assert np.array_equal(stack, again)
    d = truth.to_dict()
    assert d["n_planes"] == 7 and d["frames_per_plane"] == 3
    assert len(json.dumps(d)) < 3000


def test_field_frame_matches_the_roi_renderer():
    # A single bead in the full field renders as bead_image at the same relative
    # position: same coordinates, same pixel integration. The two use different FFT
    # boxes, so they agree to the taper's spectral leakage (~1e-6 of the background).
    _, truth = sim.bead_field(n_frames=3, shape=(100, 90), n_beads=1, n_reference=0, rng=3)
    t = 2
    x, y, z = truth.x[t, 0], truth.y[t, 0], truth.z_nm[t, 0]
    c0, r0 = int(x) - 20, int(y) - 20
    roi = sim.bead_image(x - c0, y - r0, z, roi_size=40, background_e=truth.background_e)
    field = truth.expected_e([t])[0, r0 : r0 + 40, c0 : c0 + 40]
    assert np.abs(field - roi).max() < 1e-5 * truth.background_e


def test_field_truth_motion_and_lazy_equality():
    kwargs = dict(n_frames=30, shape=(128, 128), n_beads=3, n_reference=1, rng=8)
    eager, truth = sim.bead_field(**kwargs)
    assert eager.shape == (30, 128, 128) and eager.dtype == np.uint16
    assert truth.x.shape == (30, 3) and truth.is_reference.tolist() == [True, False, False]
    # The reference bead moves only with the common drift.
    assert np.allclose(truth.x[:, 0] - truth.drift_x, truth.x[0, 0])
    assert np.allclose(truth.z_nm[:, 0] - truth.drift_z_nm, truth.z_nm[0, 0])
    # Tethered beads move by themselves too.
    assert np.std(truth.x[:, 1] - truth.drift_x) > 0.05
    lo, hi = -4000 - 200, 4000 + 200  # z range plus drift and thermal motion
    assert truth.z_nm.min() > lo and truth.z_nm.max() < hi
    lazy, _ = sim.bead_field(**kwargs, chunks=7)
    assert np.array_equal(lazy.compute(), eager)
    table = truth.to_table()
    assert table["x"].shape == (90,) and table["frame"][3] == 1
    assert len(json.dumps(truth.to_dict())) < 4000


def test_sine_motion_spans_the_range():
    _, truth = sim.bead_field(n_frames=100, shape=(64, 64), n_beads=1, n_reference=0,
                              motion="sine", z_range_nm=(-3000, 3000), drift_nm=(0, 0, 0),
                              drift_walk_nm=0.0, z_std_nm=0.0, rng=1)  # fmt: skip
    assert truth.z_nm.max() > 2900 and truth.z_nm.min() < -2900


def test_field_without_beads_is_a_flat_field():
    stack, truth = sim.bead_field(n_frames=4, shape=(32, 32), n_beads=0, n_reference=0, rng=2)
    assert truth.x.shape == (4, 0)
    assert np.allclose(truth.expected_e([0]), 4000.0)
    assert abs(stack.mean() - (4000 / 2 + 100)) < 1.0
