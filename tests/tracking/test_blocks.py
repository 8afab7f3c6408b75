"""Building blocks against known truth and independent references."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from camtrack.simulate import bead_field, bead_rois
from camtrack.tracking import (
    auto_conv,
    auto_conv_multiline,
    center_of_mass,
    crop_rois,
    fft_profile,
    find_beads,
    parabolic_vertex,
    pearson,
    qi,
    quadratic_interpolation,
    radial_profile,
    track_beads,
)


@pytest.fixture(scope="module")
def symmetric():
    """Noise-free beads (float32) near the centre of 40 px ROIs, compact patterns.

    z in 1-2.5 um: bright focus with rings that fade before the ROI edge. Beads whose
    rings are cut by the edge bias the line auto-convolution (not QI) by ~0.2 px.
    """
    rng = np.random.default_rng(5)
    n = 12
    x = 19.5 + rng.uniform(-1, 1, n)
    y = 19.5 + rng.uniform(-1, 1, n)
    z = rng.uniform(1000, 2500, n)
    rois, _ = bead_rois(x, y, z, roi_size=40, noise=False, dtype="float32")
    return rois, x, y


def test_center_of_mass_matches_numpy_reference():
    rng = np.random.default_rng(0)
    rois = rng.uniform(0, 10, (4, 9, 9))
    x, y = center_of_mass(rois, background="none")
    yy, xx = np.mgrid[:9, :9]
    for i in range(4):
        w = rois[i] / rois[i].sum()
        assert x[i] == pytest.approx((w * xx).sum())
        assert y[i] == pytest.approx((w * yy).sum())
    xm, _ = center_of_mass(rois, background="median")
    assert np.all(np.isfinite(xm))


def test_qi_and_auto_convolution_agree_on_symmetric_beads(symmetric):
    rois, x, y = symmetric
    start = np.full(len(x), 19.5)
    qx, qy = qi(rois, start, start, n_iter=10)
    ax, ay = auto_conv_multiline(rois, start, start, sub_pixel=True)
    # Noise-free symmetric beads: QI (which converges geometrically, hence 10
    # iterations) lands within ~0.004 px; the averaged line auto-convolution with a
    # 5-point parabola within ~0.035 px (pixel locking), so they agree to 0.05 px.
    assert np.max(np.abs(qx - x)) < 0.01 and np.max(np.abs(qy - y)) < 0.01
    assert np.max(np.abs(ax - qx)) < 0.05 and np.max(np.abs(ay - qy)) < 0.05
    sx, _ = auto_conv(rois, start, start, sub_pixel=True)
    assert np.max(np.abs(sx - x)) < 0.1
    hx, _ = auto_conv(rois, start, start)  # whole-sample peak: multiples of 0.5 px
    np.testing.assert_array_equal(hx * 2, np.round(hx * 2))


def test_quadratic_interpolation_and_parabolic_vertex_exact_on_parabolas():
    yy, xx = np.mgrid[:9, :9]
    roi = (100 - (xx - 4.2) ** 2 - 2 * (yy - 3.9) ** 2)[None]
    x, y = quadratic_interpolation(roi, 4, 4)
    assert x[0] == pytest.approx(4.2) and y[0] == pytest.approx(3.9)
    u = np.arange(7) - 3.0
    assert float(parabolic_vertex(5 - (u + 0.45) ** 2)) == pytest.approx(-0.45)
    assert np.isnan(parabolic_vertex(np.ones(5)))


def test_radial_profile_of_a_cone_is_the_radius():
    yy, xx = np.mgrid[:40, :40]
    cx, cy = 19.3, 20.6
    roi = np.hypot(xx - cx, yy - cy)[None].astype(np.float32)
    p = radial_profile(roi, cx, cy)
    r = np.arange(p.shape[1], dtype=float)
    # The folded-Gaussian kernel (sigma 0.5 px) averages r over a ring: about
    # r + s^2 / r; pixel sampling of the ring adds a few hundredths.
    far = r > 3
    np.testing.assert_allclose(p[0, far], r[far] + 0.5**2 / r[far], atol=0.05)


def test_fft_profile_ignores_translation(symmetric):
    _, x, y = symmetric
    shifted, _ = bead_rois(x + 1.3, y - 0.6, 1500.0, roi_size=40, noise=False, dtype="float32")
    base, _ = bead_rois(x, y, 1500.0, roi_size=40, noise=False, dtype="float32")
    a = fft_profile(base, x, y)
    b = fft_profile(shifted, x + 1.3, y - 0.6)
    # Same spectrum up to the edge pixels entering and leaving the window: 2 % of the
    # peak amplitude.
    np.testing.assert_allclose(a, b, atol=0.02 * float(np.nanmax(a)))


def test_pearson_matches_numpy():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(3, 10))
    b = rng.normal(size=(4, 10))
    ref = np.corrcoef(np.vstack([a, b]))[:3, 3:]
    np.testing.assert_allclose(pearson(a, b), ref, atol=1e-12)


def test_crop_rois_and_edges():
    stack = np.arange(3 * 30 * 40, dtype=np.uint16).reshape(3, 30, 40)
    rois, x0, y0 = crop_rois(stack, [[10.0], [11.2], [12.6]], [[15.0], [15.0], [14.4]], 8)
    assert rois.shape == (3, 8, 8) and rois.dtype == np.uint16
    np.testing.assert_array_equal(rois[1], stack[1, y0[1] : y0[1] + 8, x0[1] : x0[1] + 8])
    with pytest.raises(ValueError, match="leaves the 40x30 frame"):
        crop_rois(stack, [2.0], [15.0], 8)


@pytest.fixture(scope="module")
def field():
    return bead_field(24, shape=(140, 180), n_beads=3, n_reference=1, rng=2)


def test_find_beads_finds_the_simulated_beads(field):
    stack, truth = field
    x, y = find_beads(stack[0], radius=15)
    assert len(x) == truth.n_beads
    d = np.hypot(x[:, None] - truth.x[0][None], y[:, None] - truth.y[0][None])
    # Candidates, not measurements: the smoothed contrast energy peaks within a few
    # pixels of each bead (track_beads then re-centres on them).
    assert np.all(d.min(axis=0) < 4)


def test_track_beads_dask_equals_numpy_and_follows_truth(field):
    da = pytest.importorskip("dask.array")
    stack, truth = field
    start = np.c_[truth.x[0] + 0.8, truth.y[0] - 0.7]  # ROIs must re-centre themselves
    res = track_beads(stack, start, roi_size=48, frame_chunk=10)
    lazy = track_beads(da.from_array(stack, chunks=(7, -1, -1)), start, roi_size=48, frame_chunk=10)  # fmt: skip
    for k in ("x", "y", "quality"):
        np.testing.assert_array_equal(getattr(res, k), getattr(lazy, k))
    t, b = truth.x.shape
    # Bright 48 px beads: ~0.002 px per frame; 0.006 bounds the RMS of 72 values.
    err = res.x.reshape(t, b) - truth.x
    assert np.sqrt(np.mean(err**2)) < 0.006
    table = res.to_table()
    assert list(table)[:4] == ["frame", "bead", "x", "y"]
    np.testing.assert_array_equal(table["frame"], np.repeat(np.arange(t), b))
    seen = []
    track_beads(stack, start, roi_size=48, frame_chunk=10, progress=lambda it, total: seen.append(total) or it)  # fmt: skip
    assert seen == [3]


def test_track_beads_reference_removes_drift(field):
    stack, truth = field
    start = np.c_[truth.x[0], truth.y[0]]
    res = track_beads(stack, start, roi_size=48, reference=[0])
    t, b = truth.x.shape
    x = res.x.reshape(t, b)
    motion = truth.x - truth.drift_x[:, None]
    err = (x - x[0]) - (motion - motion[0])
    # Bead and reference noise (~0.003 px each) plus the rings of neighbouring beads
    # reaching into the 48 px ROIs (~0.01 px, truth has no such cross-talk).
    assert np.sqrt(np.mean(err[:, 1:] ** 2)) < 0.02
    np.testing.assert_allclose(x[:, 0], x[0, 0], atol=1e-9)  # the reference is the frame


def test_track_beads_edge_beads_give_nan():
    stack = np.random.default_rng(0).normal(1000, 10, (4, 60, 60)).astype(np.float32)
    res = track_beads(stack, [[30.0, 30.0], [5.0, 30.0]], roi_size=32, saturation=None)
    x = res.x.reshape(4, 2)
    assert np.all(np.isnan(x[:, 1])) and np.all(np.isfinite(x[:, 0]))


def test_block_input_errors():
    with pytest.raises(ValueError, match="background"):
        center_of_mass(np.ones((1, 8, 8)), background="min")
    with pytest.raises(ValueError, match="n_local"):
        auto_conv(np.ones((1, 8, 8)), 4, 4, n_local=4)
    with pytest.raises(ValueError, match="multiple of 4"):
        qi(np.ones((1, 16, 16)), 8, 8, n_angular=10)
    with pytest.raises(ValueError, match="one value per ROI"):
        qi(np.ones((2, 16, 16)), [8.0, 8.0, 8.0], 8)
    with pytest.raises(ValueError, match="positions"):
        track_beads(np.ones((2, 40, 40)), [[1.0, 2.0, 3.0]], roi_size=16)
    with pytest.raises(ValueError, match="reference"):
        track_beads(np.ones((2, 40, 40)), [[20.0, 20.0]], roi_size=16, reference=3)


def test_track_beads_per_bead_luts(field):
    from camtrack.simulate import zsweep
    from camtrack.tracking import build_zlut

    stack, truth = field
    start = np.c_[truth.x[0], truth.y[0]]
    planes = np.arange(-4500.0, 4501.0, 100.0)
    luts = []
    for seed in (21, 22, 23):
        calib, ct = zsweep(planes, roi_size=48, frames_per_plane=4, rng=seed)
        luts.append(build_zlut(calib, ct.z_nm))
    one = track_beads(stack, start, roi_size=48, zlut=luts[0])
    same = track_beads(stack, start, roi_size=48, zlut=[luts[0]] * 3)
    # One LUT per bead, all the same LUT, is the shared-LUT run (batches are grouped
    # per bead, so float32 sums round differently: ~1e-4 nm).
    np.testing.assert_allclose(same.z, one.z, atol=0.01)
    each = track_beads(stack, start, roi_size=48, zlut=luts)
    t, b = truth.x.shape
    err = each.z.reshape(t, b) - truth.z_nm
    # Three independent 4-frame LUTs of the same optics: a few nm per bead-frame, with
    # the neighbours' rings in the 48 px ROIs; 10 nm bounds the RMS of 72 values.
    assert np.sqrt(np.mean(err**2)) < 10.0
    # Bead 1 looked up in its own LUT: its z differs from the shared-LUT run.
    assert not np.array_equal(each.z.reshape(t, b)[:, 1], one.z.reshape(t, b)[:, 1])
    with pytest.raises(ValueError, match="one per bead"):
        track_beads(stack, start, roi_size=48, zlut=luts[:2])
    with pytest.raises(TypeError, match="sequence of ZLut"):
        track_beads(stack, start, roi_size=48, zlut="lut.h5")


def test_track_beads_parallel_chunks_match_sequential(field):
    da = pytest.importorskip("dask.array")
    stack, truth = field
    start = np.c_[truth.x[0] + 0.8, truth.y[0] - 0.7]
    seq = track_beads(stack, start, roi_size=48, frame_chunk=5)
    lazy = da.from_array(stack, chunks=(7, -1, -1))
    seen = []
    par = track_beads(lazy, start, roi_size=48, frame_chunk=5, scheduler="threads",
                      progress=lambda it, total: seen.append(total) or it)  # fmt: skip
    # Anchored chunks cut the same ROIs as the sequential run once the beads are
    # re-centred, so the positions agree to float rounding.
    np.testing.assert_allclose(par.x, seq.x, atol=1e-6)
    np.testing.assert_allclose(par.y, seq.y, atol=1e-6)
    np.testing.assert_array_equal(par.frame, seq.frame)
    assert seen == [1]  # 5 chunks in one wave of tasks


@pytest.mark.slow
def test_track_beads_on_worker_processes(field, tmp_path):
    distributed = pytest.importorskip("distributed")
    import tifffile

    from camtrack import io

    stack, truth = field
    path = tmp_path / "field.tif"
    tifffile.imwrite(path, stack, photometric="minisblack")
    lazy, _ = io.open_stack(path, chunks=6)
    start = np.c_[truth.x[0], truth.y[0]]
    seq = track_beads(stack, start, roi_size=48, frame_chunk=6)
    with distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    ) as cluster:
        par = track_beads(lazy, start, roi_size=48, frame_chunk=6, scheduler=cluster.scheduler_address)  # fmt: skip
        with distributed.Client(cluster) as client:
            # the chunks were tracked in the worker processes
            ran = client.run(lambda: "camtrack.tracking._stack" in sys.modules)
    assert any(ran.values()), ran
    np.testing.assert_allclose(par.x, seq.x, atol=1e-6)
    np.testing.assert_allclose(par.y, seq.y, atol=1e-6)
