"""Input dtypes that numpy cannot sum in: float16 is computed in float32 like uint16.

A float16 ROI holds values up to 65504, so a 48 px border of ~1000-ADU pixels (188 of
them) summed in float16 overflows to inf and used to make every tracked value NaN.
Each test compares float16 input with float32 input holding the very same values (the
float16 rounding applied to both), so only the work dtype can differ.
"""

from __future__ import annotations

import numpy as np
import pytest

from camtrack.simulate import bead_field, bead_rois, zsweep
from camtrack.tracking import (
    auto_conv,
    build_zlut,
    center_of_mass,
    fft_profile,
    qi,
    quadratic_interpolation,
    radial_profile,
    track_beads,
    track_rois,
)

SIZE = 48

# float32 work on identical values: the two runs agree to float32 rounding. 1e-4 px
# (1e-3 nm in z) is ~100x the float32 spacing near 24 px and far below the 0.002 px
# precision of these bright beads, so any real difference (NaN, a float16 sum) fails.
XY_TOL = 1e-4
Z_TOL = 1e-3


def _pair(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(float16 array, float32 array with the same values)."""
    half = a.astype(np.float16)
    assert np.isfinite(half).all()  # the simulated data fits float16's range
    return half, half.astype(np.float32)


@pytest.fixture(scope="module")
def calib():
    planes = np.arange(-1500.0, 1501.0, 100.0)
    rois, truth = zsweep(planes, roi_size=SIZE, frames_per_plane=4, rng=5)
    return _pair(rois), truth.z_nm


@pytest.fixture(scope="module")
def beads():
    rng = np.random.default_rng(8)
    n = 12
    c = (SIZE - 1) / 2
    x, y = c + rng.uniform(-2, 2, n), c + rng.uniform(-2, 2, n)
    z = rng.uniform(-1200, 1200, n)
    rois, truth = bead_rois(x, y, z, roi_size=SIZE, rng=9)
    return _pair(rois), truth


def test_build_zlut_float16_equals_float32(calib):
    (half, single), z = calib
    lut16 = build_zlut(half, z)
    lut32 = build_zlut(single, z)
    assert np.isfinite(lut16.profiles).any()
    np.testing.assert_allclose(lut16.profiles, lut32.profiles, rtol=1e-5, atol=1e-6, equal_nan=True)  # fmt: skip


@pytest.mark.parametrize("mode", ["precise", "fast"])
def test_track_rois_float16_equals_float32(calib, beads, mode):
    (_, single), z = calib
    lut = build_zlut(single, z, mode=mode)
    (half, single_rois), truth = beads
    r16 = track_rois(half, zlut=lut, mode=mode)
    r32 = track_rois(single_rois, zlut=lut, mode=mode)
    assert np.isfinite(r16.x).all() and np.isfinite(r16.z).all()
    np.testing.assert_allclose(r16.x, r32.x, rtol=0, atol=XY_TOL)
    np.testing.assert_allclose(r16.y, r32.y, rtol=0, atol=XY_TOL)
    np.testing.assert_allclose(r16.z, r32.z, rtol=0, atol=Z_TOL)
    # And both near the truth: bright 48 px beads are ~0.002 px precise; float16's
    # rounding (spacing 0.5-1 ADU at these levels) adds less than the shot noise.
    assert np.max(np.abs(r16.x - truth.x)) < 0.02


def test_track_beads_float16_equals_float32():
    stack, truth = bead_field(6, shape=(140, 180), n_beads=3, n_reference=0, rng=2)
    half, single = _pair(stack)
    start = np.c_[truth.x[0], truth.y[0]]
    r16 = track_beads(half, start, roi_size=SIZE)
    r32 = track_beads(single, start, roi_size=SIZE)
    assert np.isfinite(r16.x).all()
    np.testing.assert_allclose(r16.x, r32.x, rtol=0, atol=XY_TOL)
    np.testing.assert_allclose(r16.y, r32.y, rtol=0, atol=XY_TOL)


def test_track_beads_float16_dask_branch():
    da = pytest.importorskip("dask.array")
    stack, truth = bead_field(6, shape=(140, 180), n_beads=3, n_reference=0, rng=2)
    half, _ = _pair(stack)
    start = np.c_[truth.x[0], truth.y[0]]
    ref = track_beads(half, start, roi_size=SIZE, frame_chunk=4)
    lazy = track_beads(da.from_array(half, chunks=(5, -1, -1)), start, roi_size=SIZE, frame_chunk=4)  # fmt: skip
    assert np.isfinite(lazy.x).all()
    np.testing.assert_array_equal(ref.x, lazy.x)


@pytest.mark.parametrize(
    "block",
    [center_of_mass, auto_conv, quadratic_interpolation, qi],
    ids=lambda f: f.__name__,
)
def test_building_blocks_float16_equals_float32(beads, block):
    (half, single), truth = beads
    args = () if block is center_of_mass else (truth.x, truth.y)
    x16, y16 = block(half, *args)
    x32, y32 = block(single, *args)
    assert np.isfinite(x16).all() and np.isfinite(y16).all()
    np.testing.assert_allclose(x16, x32, rtol=0, atol=XY_TOL)
    np.testing.assert_allclose(y16, y32, rtol=0, atol=XY_TOL)


@pytest.mark.parametrize("profile", [radial_profile, fft_profile], ids=lambda f: f.__name__)
def test_profiles_float16_equals_float32(beads, profile):
    (half, single), truth = beads
    p16 = profile(half, truth.x, truth.y)
    p32 = profile(single, truth.x, truth.y)
    assert p16.dtype == np.float32
    assert np.isfinite(p16).any()
    np.testing.assert_allclose(p16, p32, rtol=1e-5, atol=1e-3, equal_nan=True)


@pytest.mark.parametrize(
    ("mode", "centre"), [("precise", "symmetry"), ("fast", "symmetry"), ("precise", "qi")]
)
def test_big_endian_rois_track_as_native(mode, centre):
    # Big-endian arrays (a FITS file, an array read without our readers): the compiled
    # kernels take native numbers only, and tracking stopped with a numba typing error.
    rois, _ = bead_rois([23.3, 24.1], [23.8, 22.9], [0.0, 1500.0], roi_size=48, rng=1)
    swapped = rois.astype(rois.dtype.newbyteorder(">" if np.little_endian else "<"))
    assert not swapped.dtype.isnative
    a = track_rois(swapped, mode=mode, centre=centre)
    b = track_rois(rois, mode=mode, centre=centre)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    assert np.isfinite(a.x).all()
