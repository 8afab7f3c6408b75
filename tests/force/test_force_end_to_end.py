"""End to end: bead images rendered along simulated tether trajectories (motion-blurred
over each exposure), tracked by camtrack, converted to nm and calibrated."""

from __future__ import annotations

import numpy as np

from camtrack.force import calibrate_force, faxen_drag
from camtrack.simulate import bead_image, tether_trace
from camtrack.tracking import track_rois

R_NM, H_NM, FS = 500.0, 3000.0, 60.0
NM_PER_PX, SIZE, SUB = 100.0, 32, 4
# Images are interpolated linearly in a table of shifted images, GRID_PX apart: that
# moves the centre of mass exactly linearly and the rings by < (GRID_PX / 2)^2 px.
GRID_PX = 0.02
GRID = np.arange(-6.0, 6.0 + GRID_PX / 2, GRID_PX)  # the thermal motion is 1 px rms


def _render(x_sub_nm: np.ndarray, table: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(frames, SUB) positions -> (frames, S, S) float32 ROIs: the mean of the images at
    the sub-exposure positions (motion blur), then shot and read noise (4000 e- per
    background pixel, 1 e-/ADU, 2 e- read noise, offset 100 ADU)."""
    pos = (x_sub_nm / NM_PER_PX - GRID[0]) / GRID_PX
    i = np.clip(np.floor(pos).astype(int), 0, GRID.size - 2)
    f = (pos - i).astype(np.float32)[..., None, None]
    img = np.zeros((pos.shape[0], SIZE, SIZE), np.float32)
    for j in range(pos.shape[1]):
        img += (1 - f[:, j]) * table[i[:, j]] + f[:, j] * table[i[:, j] + 1]
    img /= pos.shape[1]
    noisy = rng.poisson(img).astype(np.float32)
    return noisy + (2.0 * rng.standard_normal(img.shape, dtype=np.float32) + 100.0)


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
    rng = np.random.default_rng(22)
    c = (SIZE - 1) / 2
    table = (bead_image(c + GRID, c, 3000.0, SIZE) * 4000.0).astype(np.float32)
    assert np.abs(sim.x_sub_nm).max() / NM_PER_PX < GRID[-1]
    tracked = np.empty_like(sim.x_nm)
    for b in range(4):
        rois = _render(sim.x_sub_nm[b], table, rng)
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
