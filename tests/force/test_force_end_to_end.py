"""End to end: bead images rendered along simulated tether trajectories (motion-blurred
over each exposure), tracked by camtrack, converted to nm and calibrated."""

from __future__ import annotations

import numpy as np

from camtrack.force import calibrate_force, faxen_drag
from camtrack.simulate import tether_rois, tether_trace
from camtrack.tracking import track_rois

R_NM, H_NM, FS = 500.0, 3000.0, 60.0
NM_PER_PX, SIZE, SUB = 100.0, 32, 4


def test_images_to_forces_within_3_percent():
    """4 beads x 6000 frames (100 s, 500 corner periods each): the tracked positions
    follow the truth (gain 1 within 0.5 %, < 2 nm error); the force from the tracked
    traces equals the force from the simulator's own traces within 1 %, and the mean
    over beads the true force within 3 % (statistical scatter of the mean: 0.9 %)."""
    kappa = 2 * np.pi * faxen_drag(R_NM, H_NM) * 5.0
    sim = tether_trace(
        6000,
        FS,
        force_pn=kappa * H_NM,
        length_nm=H_NM,
        radius_nm=R_NM,
        height_nm=H_NM,
        n_beads=4,
        substeps=SUB,
        rng=21,
    )
    tracked = np.empty_like(sim.x_nm)
    for b in range(4):
        # 4000 e- per background pixel, the default camera (2 e-/ADU, 1.5 e- read noise)
        rois = tether_rois(sim.x_sub_nm[b], nm_per_px=NM_PER_PX, roi_size=SIZE, rng=22 + b)
        tracked[b] = (np.asarray(track_rois(rois).x) - (SIZE - 1) / 2) * NM_PER_PX
    err = tracked - sim.x_nm
    assert np.sqrt(np.mean((err - err.mean(axis=1, keepdims=True)) ** 2)) < 2.0
    gain = np.polyfit(sim.x_nm.ravel(), tracked.ravel(), 1)[0]
    assert abs(gain - 1) < 0.005
    kw = {"length_nm": H_NM, "radius_nm": R_NM, "height_nm": H_NM}
    from_images = calibrate_force(tracked, FS, **kw)
    from_truth = calibrate_force(sim.x_nm, FS, **kw)
    np.testing.assert_allclose(from_images.force_pn, from_truth.force_pn, rtol=0.01)
    assert abs(np.mean(from_images.force_pn) / sim.force_pn - 1) < 0.03
    assert not from_images.flagged.any()


def test_tether_rois_table_matches_exact_rendering():
    """The fast x-only path (interpolated image table) tracks like exact rendering."""
    sim = tether_trace(200, FS, force_pn=0.2, length_nm=2000.0, substeps=SUB, rng=30)
    fast = tether_rois(sim.x_sub_nm, roi_size=SIZE, rng=31)
    exact = tether_rois(sim.x_sub_nm, y_sub_nm=np.zeros_like(sim.x_sub_nm), roi_size=SIZE, rng=31)
    xf = np.asarray(track_rois(fast).x)
    xe = np.asarray(track_rois(exact).x)
    assert np.sqrt(np.mean((xf - xe) ** 2)) * NM_PER_PX < 1.0
    y = tether_rois(sim.x_sub_nm, y_sub_nm=sim.x_sub_nm, roi_size=SIZE, rng=32)
    ty = track_rois(y)
    np.testing.assert_allclose(np.asarray(ty.y), np.asarray(ty.x), atol=0.05)
