"""estimate_gain against the simulator's known truth and an independent classic recipe."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from _progress import recording_progress
from camtrack.gain import METHODS, GainResult, estimate_gain
from camtrack.simulate import Camera, camera_stack, dark_stack


def _camera(e_per_adu: float, **kw) -> Camera:
    return Camera(
        shape=(192, 192),
        e_per_adu=e_per_adu,
        offset_adu=100.0,
        offset_std_adu=2.0,
        read_noise_e=1.6,
        read_noise_spread=0.2,
        rng=11,
        **kw,
    )


@pytest.fixture(scope="module")
def clean():
    cam = _camera(0.5)
    stack, truth = camera_stack(150, camera=cam, rng=1)
    dark, _ = dark_stack(100, camera=cam, rng=2)
    return stack, dark, truth


def _tol(res: GainResult, floor: float) -> float:
    # 4 standard errors of this fit plus a floor for the estimator's residual bias:
    # the fit's own uncertainty grows as the data shrink, so the test stays honest
    # at the small sizes a unit test can afford.
    return 4.0 * res.e_per_adu_stderr / res.e_per_adu + floor


@pytest.mark.parametrize("method", [m for m in METHODS])
def test_clean_scmos_every_method(clean, method):
    stack, dark, truth = clean
    res = estimate_gain(stack, dark=dark, method=method)
    assert isinstance(res, GainResult)
    err = res.e_per_adu / truth.e_per_adu - 1
    assert abs(err) < _tol(res, 0.005), (method, err, res.e_per_adu_stderr)
    assert res.adu_per_e == pytest.approx(1 / res.e_per_adu)
    # Offset: median of the per-pixel dark means vs the median of the true offset map
    # (100 frames: the mean's error per pixel is ~0.03 ADU).
    assert res.offset_adu == pytest.approx(np.median(truth.offset_map_adu), abs=0.05)
    # Read noise: median pixel, from 100 dark frames (+-7% per pixel, median much tighter)
    # scaled by the fitted e_per_adu.
    assert res.read_noise_e == pytest.approx(
        np.median(truth.read_noise_map_e), rel=0.03 + abs(err)
    )
    assert res.n_frames == 150
    assert res.fit.n_bins >= 5


@pytest.mark.parametrize("e_per_adu", [2.0, 0.2])
def test_gains_and_auto_picks_meanvar(e_per_adu):
    stack, _truth = camera_stack(120, camera=_camera(e_per_adu), rng=3)
    res = estimate_gain(stack)
    assert res.method == "meanvar"
    assert any("auto" in w for w in res.warnings)
    assert abs(res.e_per_adu / e_per_adu - 1) < _tol(res, 0.005)
    # No dark: offset and read noise are not separable.
    assert res.offset_adu is None and res.read_noise_e is None


def test_median_method_is_the_classic_recipe(clean):
    """Independent reimplementation of the classic recipe with numpy and scipy."""
    stack, _, _ = clean
    res = estimate_gain(stack, method="median", n_bins=40, fit_range=(25, 75), min_count=10)
    a = stack.astype(np.float64)
    med = np.median(a, axis=0)
    var = (1.4826 * np.median(np.abs(a - med), axis=0)) ** 2
    m, v = med.ravel(), var.ravel()
    edges = np.linspace(m.min(), m.max(), 41)
    idx = np.clip(np.digitize(m, edges) - 1, 0, 39)
    bm = np.array([m[idx == i].mean() for i in range(40) if (idx == i).sum() > 10])
    bv = np.array([v[idx == i].mean() for i in range(40) if (idx == i).sum() > 10])
    lo, hi = np.percentile(m, [25, 75])
    sel = (bm >= lo) & (bm <= hi)
    ref = stats.linregress(bm[sel], bv[sel])
    assert res.fit.slope == pytest.approx(ref.slope, rel=2e-3)
    assert res.fit.intercept == pytest.approx(ref.intercept, rel=2e-2, abs=1.0)
    assert res.e_per_adu == pytest.approx(1 / ref.slope, rel=2e-3)


def test_bleaching_needs_differences():
    stack, truth = camera_stack(200, camera=_camera(0.5), bleach=0.5, rng=4)
    plain = estimate_gain(stack, method="meanvar")
    # The bleach trend dominates the plain variance: the classic estimate is far off.
    assert plain.e_per_adu / truth.e_per_adu - 1 < -0.5
    for method in ("diff", "auto", "robust"):
        res = estimate_gain(stack, method=method)
        assert abs(res.e_per_adu / truth.e_per_adu - 1) < _tol(res, 0.01), method
    assert estimate_gain(stack).method == "diff"


def test_emccd_excess_noise_factor():
    cam = _camera(0.05, excess_noise_factor=2.0)
    stack, truth = camera_stack(150, camera=cam, signal_e=(20, 600), rng=5)
    naive = estimate_gain(stack)
    right = estimate_gain(stack, excess_noise_factor=2.0)
    # Without F**2 the conversion factor comes out halved (the factor-2 trap).
    assert naive.e_per_adu / truth.e_per_adu == pytest.approx(0.5, rel=0.05)
    assert abs(right.e_per_adu / truth.e_per_adu - 1) < _tol(right, 0.01)
    assert right.excess_noise_factor == 2.0


def test_offset_scalar_gives_read_noise_from_intercept():
    cam = Camera(shape=(192, 192), e_per_adu=0.5, offset_adu=100.0, read_noise_e=8.0, rng=2)
    stack, _truth = camera_stack(150, camera=cam, rng=6)
    res = estimate_gain(stack, dark=100.0)
    assert res.offset_adu == 100.0
    # Read variance from the intercept: (8 e- / 0.5)**2 = 256 ADU**2 against a fit
    # slope error of ~1% over ~2000 ADU: the read noise is good to ~20%.
    assert res.read_noise_e == pytest.approx(8.0, rel=0.2)


def test_gain_map_is_offset_corrected(clean):
    stack, dark, truth = clean
    res = estimate_gain(stack, dark=dark, method="meanvar")
    ok = np.isfinite(res.gain_map)
    assert ok.mean() > 0.99
    # Per pixel: 150 frames give a +-12% variance; the median is tight.
    assert np.median(res.gain_map[ok]) == pytest.approx(truth.e_per_adu, rel=0.02)
    # The classic uncorrected mean / var map counts the 100 ADU offset as signal: on a
    # median signal of ~1700 ADU that is +6% here (and +100% at 100 ADU of signal).
    classic = np.median(res.mean / res.var)
    assert classic / truth.e_per_adu > 1.04


def test_refit_changes_fit_not_maps(clean):
    stack, dark, truth = clean
    res = estimate_gain(stack, dark=dark, method="meanvar")
    wide = res.refit(fit_range=(10, 90), n_bins=30)
    assert wide.fit.fit_range == (10.0, 90.0)
    assert wide.mean is res.mean and wide.var is res.var
    assert wide.fit.n_bins > res.fit.n_bins
    assert abs(wide.e_per_adu / truth.e_per_adu - 1) < _tol(wide, 0.005)
    assert wide.offset_adu == res.offset_adu
    d = wide.to_dict()
    assert d["e_per_adu"] == wide.e_per_adu and d["fit_range_percentiles"] == [10.0, 90.0]


def test_dask_odd_chunks_equal_numpy(clean):
    da = pytest.importorskip("dask.array")
    stack, dark, _ = clean
    lazy = da.from_array(stack, chunks=(37, 61, 50))
    for method in ("meanvar", "diff", "robust", "median"):
        a = estimate_gain(stack, method=method)
        b = estimate_gain(lazy, method=method, dark=da.from_array(dark, chunks=(23, 192, 100)))
        assert b.e_per_adu == pytest.approx(a.e_per_adu, rel=1e-6), method
        np.testing.assert_allclose(b.mean, a.mean, rtol=1e-7)
        np.testing.assert_allclose(b.var, a.var, rtol=2e-4, atol=1e-3)


def test_median_of_frame_chunked_dask_spills_and_cleans_up(clean, tmp_path, monkeypatch):
    """A frame-chunked lazy stack goes through a band-major spill file (one read per
    tile instead of one per tile and chunk): same maps as numpy, no file left behind."""
    da = pytest.importorskip("dask.array")
    from camtrack.gain import _tiles

    stack, _, _ = clean
    monkeypatch.setenv("CAMTRACK_TMPDIR", str(tmp_path))
    ref = estimate_gain(stack, method="median")
    # Tiles smaller than a frame chunk (a long stack of large frames, scaled down).
    monkeypatch.setattr(_tiles, "MEDIAN_TILE_BYTES", stack.shape[0] * stack.shape[2] * 4 * 16)
    # (total, ticks) per bar: the spill's writes, then its bands
    bars, progress = recording_progress()

    res = estimate_gain(
        da.from_array(stack, chunks=(16, -1, -1)), method="median", progress=progress
    )
    np.testing.assert_array_equal(res.mean, ref.mean)
    np.testing.assert_array_equal(res.var, ref.var)
    assert res.e_per_adu == ref.e_per_adu
    assert len(bars) == 2 and all(total == done > 0 for total, done in bars)
    assert list(tmp_path.iterdir()) == []


def test_robust_lazy_block_arrays_on_disk_equal_numpy(tmp_path, monkeypatch):
    """A lazy stack whose block arrays exceed the memory budget keeps them in band-major
    temporary files: the same result as numpy, no file left behind."""
    da = pytest.importorskip("dask.array")
    from camtrack import _spill
    from camtrack.gain import _tiles

    cam = Camera(shape=(128, 128), e_per_adu=0.5, offset_std_adu=2.0, read_noise_e=1.6, rng=3)
    stack, _ = camera_stack(120, camera=cam, n_beads=3, rng=4)
    ref = estimate_gain(stack, method="robust")
    monkeypatch.setattr(_tiles, "STORE_MEMORY_BYTES", 0)
    monkeypatch.setenv("CAMTRACK_TMPDIR", str(tmp_path))
    seen = []
    real = _spill.BandStore.__init__

    def spy(self, *args, **kwargs):
        real(self, *args, **kwargs)
        seen.append(self.on_disk)

    monkeypatch.setattr(_spill.BandStore, "__init__", spy)
    res = estimate_gain(da.from_array(stack, chunks=(25, 64, -1)), method="robust")
    assert seen == [True]
    np.testing.assert_allclose(res.var, ref.var, rtol=1e-6, equal_nan=True)
    np.testing.assert_allclose(res.mean, ref.mean, rtol=1e-9, equal_nan=True)
    assert res.e_per_adu == pytest.approx(ref.e_per_adu, rel=1e-9)
    assert list(tmp_path.iterdir()) == []


def test_lazy_simulated_stack():
    stack, truth = camera_stack(120, (160, 160), camera={"e_per_adu": 0.5}, chunks=25, rng=7)
    ticks = []

    def progress(it, total):
        for x in it:
            ticks.append(total)
            yield x

    res = estimate_gain(stack, progress=progress)
    assert ticks and len(ticks) == ticks[0]
    assert abs(res.e_per_adu / truth.e_per_adu - 1) < _tol(res, 0.005)


def test_saturated_pixels_left_out():
    cam = Camera(shape=(160, 160), e_per_adu=0.5, bit_depth=12, rng=3)
    # Up to 2000 e- = 4000 ADU + 100 offset: the top of the gradient clips at 4095.
    stack, truth = camera_stack(100, camera=cam, signal_e=(50, 2100), rng=8)
    assert int(stack.max()) == 4095
    res = estimate_gain(stack, fit_range=(5, 99))
    assert res.excluded.any()
    assert any("saturation" in w for w in res.warnings)
    assert abs(res.e_per_adu / truth.e_per_adu - 1) < _tol(res, 0.01)


def test_mask_leaves_pixels_out(clean):
    stack, _, _ = clean
    mask = np.zeros(stack.shape[1:], bool)
    mask[:20] = True
    res = estimate_gain(stack, mask=mask)
    assert res.excluded[:20].all() and np.isnan(res.gain_map[:20]).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "fancy"}, "`method` must be one of"),
        ({"n_bins": 2}, "`n_bins` must be >= 3"),
        ({"fit_range": (70, 30)}, "low < high"),
        ({"fit_range": 5}, "pair of percentiles"),
        ({"excess_noise_factor": 4}, r"`excess_noise_factor` must lie in \[1.0, 2.0\]"),
        ({"mask": np.zeros((3, 3), bool)}, "`mask` must be a boolean"),
        ({"dark": np.zeros((5, 3, 3))}, "same frame shape"),
    ],
)
def test_bad_arguments(clean, kwargs, match):
    stack, _, _ = clean
    with pytest.raises((ValueError, TypeError), match=match):
        estimate_gain(stack[:30], **kwargs)


def test_bad_data_clear_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="at least 20 frames"):
        estimate_gain(rng.poisson(100, (10, 32, 32)).astype(np.uint16))
    with pytest.raises(ValueError, match="3-D"):
        estimate_gain(np.zeros((32, 32)))
    flat = (rng.poisson(500, (50, 64, 64)) + 100).astype(np.uint16)
    with pytest.raises(ValueError, match=r"uniform|distinct signal levels|does not rise"):
        estimate_gain(flat)
    dark = (rng.normal(100, 2, (50, 64, 64))).round().astype(np.uint16)
    with pytest.raises(ValueError, match=r"uniform|distinct|does not rise"):
        estimate_gain(dark)
    full = np.full((30, 16, 16), 65535, np.uint16)
    with pytest.raises(ValueError, match="saturated"):
        estimate_gain(full)


def test_input_not_modified(clean):
    stack, _, _ = clean
    before = stack.copy()
    estimate_gain(stack, method="median")
    estimate_gain(stack, method="robust")
    np.testing.assert_array_equal(stack, before)


def _check_auto_rejects_moving_objects(stack, truth, tolerance):
    """The plain fit is ruined; "auto" picks "robust", says so, and lands within tolerance."""
    plain = estimate_gain(stack, method="meanvar")
    assert plain.e_per_adu / truth.e_per_adu - 1 < -0.5
    res = estimate_gain(stack)
    assert res.method == "robust"
    assert any("moving" in w for w in res.warnings)
    assert abs(res.e_per_adu / truth.e_per_adu - 1) < tolerance


def test_moving_object_detected_and_rejected():
    """One defocused bead crossing a 320 x 320 field: ~10% of the pixels are crossed.

    The plain mean/variance fit is ruined (the bead's bright rings dominate the bins'
    mean variances); "auto" must notice, switch to the per-bin medians and say so. The
    median still feels the crossed pixels (documented: several percent low), so the
    tolerance here is the documented one, not the clean-data one.
    """
    cam = Camera(shape=(320, 320), e_per_adu=0.5, offset_std_adu=2, read_noise_e=1.6, rng=3)
    stack, truth = camera_stack(150, camera=cam, n_beads=1, rng=4)
    _check_auto_rejects_moving_objects(stack, truth, tolerance=0.10)


def test_many_moving_beads_within_two_percent():
    """Ten defocused beads crossing a 256 x 256 field (the density of 40 on 512 x 512).

    Their rings reach ~80 px, so most pixels are disturbed in most frames (the plain
    fit is off by -99.9%, per-bin medians refuse). The robust kernel keeps only frame
    differences whose neighbourhood is undisturbed; about 30% of them survive, so over
    400 frames the fit's statistical error is about 1% (its reported stderr here):
    2% is the issue's target and about two standard errors.
    """
    cam = Camera(
        shape=(256, 256), e_per_adu=0.5, offset_std_adu=2.0, read_noise_e=1.6,
        read_noise_spread=0.2, rng=3,
    )  # fmt: skip
    stack, truth = camera_stack(400, camera=cam, n_beads=10, rng=5)
    _check_auto_rejects_moving_objects(stack, truth, tolerance=0.02)
