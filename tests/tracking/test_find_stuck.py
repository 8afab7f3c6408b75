"""Stuck beads flagged from their motion (#17 item 9), against the simulator's truth."""

from __future__ import annotations

import numpy as np
import pytest

from camtrack import simulate
from camtrack.tracking import StuckBeads, find_beads, flag_stuck_beads

SAMPLE_CAMERA = dict(
    e_per_adu=0.5, offset_adu=100.0, offset_std_adu=3.0, read_noise_e=1.6, read_noise_spread=0.3
)


def _flags_vs_truth(stack, truth, **kwargs):
    x, y = find_beads(np.asarray(stack[0]), roi_size=48)
    ids = [int(np.argmin(np.hypot(truth.x[0] - a, truth.y[0] - b))) for a, b in zip(x, y, strict=True)]  # fmt: skip
    assert sorted(ids) == list(range(truth.n_beads))  # every bead found once
    flags = flag_stuck_beads(stack, np.c_[x, y], roi_size=48, **kwargs)
    return flags, truth.is_reference[ids]


def test_the_sample_reference_bead_is_flagged():
    # The napari bead sample (lazy, 4-frame chunks): bead 0 is stuck.
    camera = simulate.Camera(shape=(256, 256), rng=13, **SAMPLE_CAMERA)
    field, truth = simulate.bead_field(
        300, (256, 256), n_beads=5, n_reference=1, camera=camera, chunks=4, rng=3
    )
    flags, expected = _flags_vs_truth(field, truth, n_frames=50)
    assert isinstance(flags, StuckBeads) and flags.n_frames == 50
    np.testing.assert_array_equal(flags.stuck, expected)
    # tethered beads step ~0.18 px per frame (30 nm, tau 5 frames), the stuck one
    # ~0.01 px (the stage's random walk): far apart
    assert flags.step_px[flags.stuck].max() * 5 < flags.step_px[~flags.stuck].min()
    assert flags.reference == [int(i) for i in np.flatnonzero(expected)]


@pytest.mark.parametrize("n_reference", [0, 1, 2, 3, 4])
def test_any_number_of_stuck_beads(n_reference):
    # none, some, and all beads stuck: the gap between the groups, or (all stuck)
    # every bead's step less the common one within its tracking noise
    stack, truth = simulate.bead_field(60, (256, 256), n_beads=4, n_reference=n_reference,
                                       rng=10 + n_reference)  # fmt: skip
    flags, expected = _flags_vs_truth(stack, truth, n_frames=60)
    np.testing.assert_array_equal(flags.stuck, expected)


def test_one_bead_alone():
    # A lone bead has no partner to share the stage's jitter with: it is judged against
    # its own tracking noise (measured: 0.008 px steps, 0.004 px noise, under the
    # factor 3, with the sample's 1 nm per frame random walk of the stage).
    stuck, t1 = simulate.bead_field(40, (128, 128), n_beads=1, n_reference=1, rng=1)
    tethered, t2 = simulate.bead_field(40, (128, 128), n_beads=1, n_reference=0, rng=1)
    assert _flags_vs_truth(stuck, t1)[0].stuck.tolist() == [True]
    assert _flags_vs_truth(tethered, t2)[0].stuck.tolist() == [False]


def test_bad_arguments_name_the_parameter():
    stack, truth = simulate.bead_field(5, (96, 96), n_beads=1, rng=0)
    pos = [(truth.x[0, 0], truth.y[0, 0])]
    with pytest.raises(ValueError, match="`n_frames`"):
        flag_stuck_beads(stack, pos, roi_size=32, n_frames=2)
    with pytest.raises(ValueError, match="`first_frame`"):
        flag_stuck_beads(stack, pos, roi_size=32, first_frame=4)
    with pytest.raises(ValueError, match="`positions`"):
        flag_stuck_beads(stack, [[1.0, 2.0, 3.0]], roi_size=32)
