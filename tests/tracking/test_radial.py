"""The radial profiles (moment-matched kernels, compiled gather) and the compiled ROI preparation, window and chunked FFT."""

from __future__ import annotations

import numpy as np
import pytest

from camtrack.simulate import bead_rois, zsweep
from camtrack.tracking import build_zlut, track_rois
from camtrack.tracking._radial import radial_operator


def _rings(size: int, cx: np.ndarray, cy: np.ndarray) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy[None] - cy[:, None, None], xx[None] - cx[:, None, None])
    return (np.cos(1.2 * r) * np.exp(-r / 15.0)).astype(np.float32)


def test_matched_profiles_do_not_depend_on_the_phase():
    size = 48
    rng = np.random.default_rng(0)
    cx = 24.0 + rng.uniform(-1, 1, 40)
    cy = 24.0 + rng.uniform(-1, 1, 40)
    g = _rings(size, cx, cy)
    plain = radial_operator(size, 18, 1).apply(np, g, cx, cy)
    matched = radial_operator(size, 18, 1, matched=True).apply(np, g, cx, cy)
    # Bins from 2 px on are matched; bins 0 and 1 (4 and 8 pixels) keep the plain kernel.
    spread_plain = np.sqrt(np.mean(plain[:, 2:].var(axis=0)))
    spread_matched = np.sqrt(np.mean(matched[:, 2:].var(axis=0)))
    # Rings of period 5.2 px: RMS over bins of the spread 0.0021 -> 0.0007.
    assert spread_matched < 0.5 * spread_plain
    # A bead centred on a pixel has the centred kernel's moments already: same profile
    # (up to the quadratic expansion of the weights in the centre, ~1e-3).
    c = np.array([24.0])
    one = _rings(size, c, c)
    a = radial_operator(size, 18, 1, matched=True).apply(np, one, c, c)
    b = radial_operator(size, 18, 1).apply(np, one, c, c)
    np.testing.assert_allclose(a, b, atol=3e-3)


def test_fast_z_has_no_phase_offset_noise_free():
    # Our model, 48 px, noise-free: the plain kernel average gave the fast mode ~1 nm
    # of z scatter from the centre's sub-pixel phase; matched kernels leave a few tenths.
    size = 48
    planes = np.arange(-2000.0, 2001.0, 100.0)
    calib, truth = zsweep(planes, roi_size=size, frames_per_plane=8, background_e=4000.0, rng=1)
    lut = build_zlut(calib, truth.z_nm)
    rng = np.random.default_rng(2)
    n = 80
    x = 23.5 + rng.uniform(-1.5, 1.5, n)
    y = 23.5 + rng.uniform(-1.5, 1.5, n)
    z = rng.uniform(-1500, 1500, n)
    _, t = bead_rois(x, y, z, roi_size=size, background_e=4000.0, noise=False)
    res = track_rois(t.expected_adu.astype(np.float32), zlut=lut, mode="fast", workers=1)
    assert np.sqrt(np.mean((res.z - z) ** 2)) < 0.45


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32, np.uint32])
def test_compiled_prepare_equals_the_array_passes(monkeypatch, dtype):
    # The fused pass (extremes, exact border sum, subtraction and the clip check's
    # count) and the array passes (numba missing) give the same bits.
    import camtrack.tracking._common as common
    from camtrack.tracking._saturation import clipped_rows

    if common._prepare_kernel() is None:
        pytest.skip("numba is not installed")
    info = np.iinfo(dtype)
    rng = np.random.default_rng(3)
    lo = max(info.min, -3000)
    hi = min(info.max, 3_000_000)
    rois = rng.integers(lo, hi, size=(12, 16, 16), endpoint=True).astype(dtype)
    rois[0] = rois[0, 0, 0]  # constant: a bad ROI
    rois[1, 6:9, 6:9] = info.max  # clipped at the dtype's maximum
    rois[2, 5:8, 5:8] = rois[2].max()  # a plateau at the ROI's maximum
    a = common.prepare(np, rois, near=3.0)
    clip_a = clipped_rows(np, rois, a[3], "auto", 3.0, None, a[2], a[4])
    monkeypatch.setattr(common._prepare_kernel, "compiled", False)
    b = common.prepare(np, rois, near=3.0)
    assert b[4] is None
    clip_b = clipped_rows(np, rois, b[3], "auto", 3.0, None, b[2])
    for u, v in zip(a[:4], b[:4], strict=True):
        assert u.dtype == v.dtype
        np.testing.assert_array_equal(u, v)
    assert (clip_a is None) == (clip_b is None)
    if clip_a is not None:
        np.testing.assert_array_equal(clip_a[0], clip_b[0])
        np.testing.assert_array_equal(clip_a[1], clip_b[1])


@pytest.mark.parametrize(("size", "n_bins", "oversample", "matched"), [(64, 28, 1, True), (48, 40, 2, False), (33, 12, 1, True)])  # fmt: skip
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_gather_equals_the_array_gather(monkeypatch, size, n_bins, oversample, matched, dtype):  # fmt: skip
    # The profile's compiled gather (each row its own cell, discs past the ROI edge
    # masked in the same pass) and the array gather (numba missing, cupy) gather the
    # same pixels: the same partial bins (NaN), the values to the BLAS product's
    # rounding (its row blocking differs with the row order).
    import camtrack.tracking._radial as radial

    if radial._gather_kernel() is None:
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(4)
    n = 120
    g = rng.normal(size=(n, size, size)).astype(dtype)
    # Centres up to 6 px off the middle: many discs reach past the edge.
    cx = (size - 1) / 2.0 + rng.uniform(-6, 6, n)
    cy = (size - 1) / 2.0 + rng.uniform(-6, 6, n)
    op = radial_operator(size, n_bins, oversample, matched=matched)
    a = op.apply(np, g, cx, cy)
    with monkeypatch.context() as mp:
        mp.setattr(radial._gather_kernel, "compiled", False)
        b = op.apply(np, g, cx, cy)
    assert np.isnan(a).any() and np.isfinite(a).any()
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(a, b, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_chunked_rfft2_equals_scipy(dtype):
    # Chunks written in place by scipy's pocketfft binding: the bits of scipy.fft.rfft2,
    # for a batch of several chunks and a strided (cropped) input.
    import scipy.fft

    from camtrack.tracking._common import rfft2

    rng = np.random.default_rng(5)
    a = rng.normal(size=(150, 64, 64)).astype(dtype)
    np.testing.assert_array_equal(rfft2(np, a), scipy.fft.rfft2(a, axes=(-2, -1)))
    b = rng.normal(size=(400, 33, 33)).astype(dtype)[:, 1:, :-1]
    np.testing.assert_array_equal(rfft2(np, b), scipy.fft.rfft2(b, axes=(-2, -1)))


def test_compiled_window_equals_the_array_passes(monkeypatch):
    # One compiled pass, the same two products in the same order: the same bits.
    import camtrack.tracking._common as common

    if common._window_kernel() is None:
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(6)
    g = rng.normal(size=(20, 40, 40)).astype(np.float32)
    wy = rng.uniform(size=(20, 40)).astype(np.float32)
    wx = rng.uniform(size=(20, 40)).astype(np.float32)
    a = common.windowed(np, g, wy, wx)
    with monkeypatch.context() as mp:
        mp.setattr(common._window_kernel, "compiled", False)
        b = common.windowed(np, g, wy, wx)
    np.testing.assert_array_equal(a, b)


def test_compiled_phase_shift_equals_the_array_passes(monkeypatch):
    # The precise profile's Fourier shift: ramps by recurrence (compiled) and from
    # float32 phases (array passes) agree to float32 rounding, odd sizes included.
    import camtrack.tracking._common as common

    if common._shift_kernel() is None:
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(7)
    for size in (64, 33):
        shape = (25, size, size // 2 + 1)
        spec = (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(np.complex64)
        sx = rng.uniform(-3, 3, 25).astype(np.float32)
        sy = rng.uniform(-3, 3, 25).astype(np.float32)
        a = spec.copy()
        common.shift_spectrum(np, a, sx, sy, size)
        with monkeypatch.context() as mp:
            mp.setattr(common._shift_kernel, "compiled", False)
            b = spec.copy()
            common.shift_spectrum(np, b, sx, sy, size)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * float(np.abs(b).max()))
    # and it is the shift: a delta at 0 moves to (sx, sy) = (2, 3)
    img = np.zeros((1, 16, 16), dtype=np.float32)
    img[0, 0, 0] = 1.0
    spec = np.fft.rfft2(img).astype(np.complex64)
    common.shift_spectrum(np, spec, np.array([2.0]), np.array([3.0]), 16)
    back = np.fft.irfft2(spec, s=(16, 16))
    assert np.unravel_index(np.argmax(back[0]), (16, 16)) == (3, 2)
