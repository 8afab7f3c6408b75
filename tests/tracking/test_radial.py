"""The fast profile's moment-matched kernels: no dependence on the sub-pixel phase."""

from __future__ import annotations

import numpy as np

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
    calib, truth = zsweep(planes, size=size, frames_per_plane=8, background_e=4000.0, rng=1)
    lut = build_zlut(calib, truth.z_nm)
    rng = np.random.default_rng(2)
    n = 80
    x = 23.5 + rng.uniform(-1.5, 1.5, n)
    y = 23.5 + rng.uniform(-1.5, 1.5, n)
    z = rng.uniform(-1500, 1500, n)
    _, t = bead_rois(x, y, z, size=size, background_e=4000.0, noise=False)
    res = track_rois(t.expected_adu.astype(np.float32), zlut=lut, mode="fast", workers=1)
    assert np.sqrt(np.mean((res.z - z) ** 2)) < 0.45
