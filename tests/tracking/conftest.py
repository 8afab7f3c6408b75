"""Small simulated data shared by the tracking tests (built once per session)."""

from __future__ import annotations

import numpy as np
import pytest

from camtrack.simulate import bead_rois, zsweep
from camtrack.tracking import build_zlut

SIZE = 48
PLANES = np.arange(-3000.0, 3001.0, 100.0)


@pytest.fixture(scope="session")
def zlut48():
    """LUT of 61 planes, 100 nm apart, each the mean of 8 noisy bright frames."""
    calib, truth = zsweep(PLANES, roi_size=SIZE, frames_per_plane=8, rng=11)
    return build_zlut(calib, truth.z_nm)


@pytest.fixture(scope="session")
def beads48():
    """200 bright noisy beads, x, y uniform within +-2 px of the centre, z over +-2.8 um."""
    rng = np.random.default_rng(3)
    n = 200
    c = (SIZE - 1) / 2
    x = c + rng.uniform(-2, 2, n)
    y = c + rng.uniform(-2, 2, n)
    z = rng.uniform(-2800, 2800, n)
    rois, truth = bead_rois(x, y, z, roi_size=SIZE, rng=4)
    clean, _ = bead_rois(x, y, z, roi_size=SIZE, noise=False, dtype="float32", rng=4)
    return rois, clean, truth
