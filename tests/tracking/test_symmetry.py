"""Compiled symmetry-centre steps, clipped-centre holes and clip checks against the array versions."""

from __future__ import annotations

import numpy as np
import pytest

import camtrack.tracking._symmetry as symmetry
from camtrack.simulate import bead_rois
from camtrack.tracking._common import prepare


@pytest.mark.parametrize("crop", [None, 33])
def test_compiled_newton_steps_equal_the_array_version(monkeypatch, crop):
    # Same centres (to float32 rounding of the phase sums), quality and spectrum, for
    # a full and an odd-sized ROI, with a clipped centre's hole in some; a NaN start
    # stays NaN in both.
    if symmetry._newton_kernel() is None:
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(8)
    n, size = 30, 48
    x = 23.5 + rng.uniform(-1.5, 1.5, n)
    y = 23.5 + rng.uniform(-1.5, 1.5, n)
    rois, _ = bead_rois(x, y, rng.uniform(-2000, 2000, n), roi_size=size, rng=9)
    g, _, _, _ = prepare(np, rois)
    cx, cy, _ = symmetry.projection_centre(np, g, n_iter=2)
    if crop is not None:
        g = np.ascontiguousarray(g[:, 7 : 7 + crop, 8 : 8 + crop])
        cx, cy = cx - 8, cy - 7
    cx[0] = np.nan
    hole = np.where(np.arange(n) % 4 == 1, 3.0, 0.0).astype(np.float32)
    for kw in ({"n_iter": 2, "keep": True}, {"n_iter": 1, "quality": False, "first_steps": 1}, {"n_iter": 2, "hole": hole}):  # fmt: skip
        a = symmetry.symmetry_centre(np, g, cx, cy, **kw)
        with monkeypatch.context() as mp:
            mp.setattr(symmetry._newton_kernel, "compiled", False)
            b = symmetry.symmetry_centre(np, g, cx, cy, **kw)
        for u, v in zip(a[:3], b[:3], strict=True):
            if v is None:
                assert u is None
                continue
            np.testing.assert_array_equal(np.isnan(u), np.isnan(v))
            # float32 centres near 24 px: a few ulps (4e-6 px)
            np.testing.assert_allclose(u, v, rtol=0, atol=2e-5)
        assert np.isnan(a[0][0]) and np.isfinite(a[0][1:]).all()


@pytest.mark.parametrize("smooth", [False, True])
def test_compiled_hole_equals_the_array_update(monkeypatch, smooth):
    # The compiled box loop computes the hole weights with the array version's float32
    # arithmetic: the same bits, for float32 and float64 centres.
    if symmetry._hole_kernel() is None:
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(10)
    a = rng.normal(size=(40, 36, 36)).astype(np.float32)
    rows = np.sort(rng.choice(40, 15, replace=False))
    hole = rng.uniform(2.0, 7.0, 15).astype(np.float32)
    for dtype in (np.float32, np.float64):
        cx = (18.0 + rng.uniform(-3, 3, 15)).astype(dtype)
        cy = (18.0 + rng.uniform(-3, 3, 15)).astype(dtype)
        x = a.copy()
        symmetry.multiply_hole(np, x, rows, cx, cy, hole, smooth=smooth)
        with monkeypatch.context() as mp:
            mp.setattr(symmetry._hole_kernel, "compiled", False)
            y = a.copy()
            symmetry.multiply_hole(np, y, rows, cx, cy, hole, smooth=smooth)
        np.testing.assert_array_equal(x, y)
        assert not np.array_equal(x, a)


def test_compiled_hole_cut_equals_the_array_version(monkeypatch):
    # The holed projections (fast mode, clipped centres): the compiled box pass and
    # the array version give the same projections and centres to float32 rounding.
    if symmetry._cut_kernel() is None:
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(11)
    n, size = 30, 48
    x = 23.5 + rng.uniform(-1.5, 1.5, n)
    y = 23.5 + rng.uniform(-1.5, 1.5, n)
    rois, _ = bead_rois(x, y, rng.uniform(-2000, 2000, n), roi_size=size, rng=12)
    g, _, _, _ = prepare(np, rois)
    cx, cy, _ = symmetry.projection_centre(np, g, n_iter=2)
    hole = rng.uniform(2.0, 6.0, n).astype(np.float32)
    a = symmetry.projection_centre(np, g, n_iter=2, cx=cx, cy=cy, hole=hole, noise=True)
    with monkeypatch.context() as mp:
        mp.setattr(symmetry._cut_kernel, "compiled", False)
        b = symmetry.projection_centre(np, g, n_iter=2, cx=cx, cy=cy, hole=hole, noise=True)
    np.testing.assert_allclose(a[0], b[0], rtol=0, atol=2e-5)
    np.testing.assert_allclose(a[1], b[1], rtol=0, atol=2e-5)
    p, q = a[4][0], b[4][0]
    np.testing.assert_allclose(p, q, rtol=0, atol=1e-5 * float(np.abs(q).max()))


def test_compiled_compact_equals_the_array_version(monkeypatch):
    # The clipped-disc check: the compiled counts and farthest distance give the same
    # masks and hole radii, with stray far pixels (rejected sets) and float64 centres.
    import camtrack.tracking._saturation as saturation

    if saturation._compact_kernel() is None:
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(13)
    n, size = 40, 48
    cx = 23.5 + rng.uniform(-2, 2, n)
    cy = 23.5 + rng.uniform(-2, 2, n)
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy[None] - cy[:, None, None], xx[None] - cx[:, None, None])
    mask = r < rng.uniform(1.0, 6.0, n)[:, None, None]
    mask[::5, 3, 40] = True  # a stray pixel far out: not a clipped disc
    mask[::7] &= rng.uniform(size=(6, size, size)) < 0.2  # scattered: not a disc either
    for dtype in (np.float32, np.float64):
        a = saturation.compact(np, mask, cx.astype(dtype), cy.astype(dtype))
        with monkeypatch.context() as mp:
            mp.setattr(saturation._compact_kernel, "compiled", False)
            b = saturation.compact(np, mask, cx.astype(dtype), cy.astype(dtype))
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
        assert (a[1] > 0).any() and (a[1] == 0).any()


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32, np.uint32])
@pytest.mark.parametrize("level", [None, "inside", "below", "above", "inf", "-inf", "nan"])
def test_compiled_clipped_rows_equal_the_array_version(monkeypatch, dtype, level):
    # The clip check's masks and the plateaus' counts and centroids: the compiled pass
    # (one compare per pixel on the input dtype, the level's test folded into it) and
    # the array passes (a float compare for the level) agree exactly, with the Z-LUT's
    # level inside the dtype's range, below it (every pixel) and above it (none).
    import camtrack.tracking._saturation as saturation
    from camtrack.tracking._common import prepare

    if saturation._clip_kernel() is None:
        pytest.skip("numba is not installed")
    info = np.iinfo(dtype)
    rng = np.random.default_rng(5)
    lo, hi = max(info.min, -100), min(info.max, 200)
    rois = rng.integers(lo, hi - 40, size=(30, 24, 24), endpoint=True).astype(dtype)
    yy, xx = np.mgrid[:24, :24]
    for i in range(0, 30, 2):  # plateaus: discs at the ROI's maximum
        cx, cy, r = rng.uniform(9, 14, 3)
        rois[i][np.hypot(yy - cy, xx - cx) < r / 3.0] = hi
    rois[3, 2:4, 2:4] = hi - 10  # near the level, too few pixels for a plateau
    rois[5, :, 3] = hi - 10  # a line near the level: enough pixels
    lev = {None: None, "inside": float(hi - 10) + 0.5, "below": float(info.min) - 50.0, "above": float(info.max) + 50.0, "inf": np.inf, "-inf": -np.inf, "nan": np.nan}[level]  # fmt: skip
    _, _, bad, top, count = prepare(np, rois, near=3.0)
    a = saturation.clipped_rows(np, rois, top, "auto", 3.0, lev, bad, count, centroids=True)
    with monkeypatch.context() as mp:
        mp.setattr(saturation._clip_kernel, "compiled", False)
        b = saturation.clipped_rows(np, rois, top, "auto", 3.0, lev, bad, count, centroids=True)
    assert a is not None and b is not None
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    for u, v in zip(a[2], b[2], strict=True):
        np.testing.assert_array_equal(u, v)
    # The centroids against the masks themselves.
    m = a[1].astype(np.float64)
    cnt = m.sum(axis=(1, 2))
    ok = cnt > 0
    np.testing.assert_allclose(a[2][0], cnt)
    np.testing.assert_allclose(a[2][1][ok], (m * xx).sum(axis=(1, 2))[ok] / cnt[ok], rtol=1e-12)
    np.testing.assert_allclose(a[2][2][ok], (m * yy).sum(axis=(1, 2))[ok] / cnt[ok], rtol=1e-12)
    if level in ("below", "-inf"):
        assert a[1].all()  # every pixel is at or above the level
