"""Clear words for bad input to tracking (#14 item 11): frames smaller than the ROI, dask
input to the building blocks and the fast mode, argument type slips."""

from __future__ import annotations

import numpy as np
import pytest

from camtrack import tracking
from camtrack.simulate import bead_rois

da = pytest.importorskip("dask.array")


@pytest.fixture(scope="module")
def rois():
    r, _ = bead_rois([30.3, 32.7, 31.1], [31.9, 30.1, 32.4], 1500.0, roi_size=64, rng=1)
    return r


def test_track_beads_on_frames_smaller_than_the_roi():
    stack = np.random.default_rng(0).integers(0, 100, (3, 10, 12)).astype(np.uint16)
    with pytest.raises(ValueError, match=r"`roi_size`.*32.*10 x 12.*at most 10") as exc:
        tracking.track_beads(stack, [(5, 5)], roi_size=32)
    assert not isinstance(exc.value, IndexError)


@pytest.mark.parametrize(
    "call",
    [
        lambda r: tracking.track_rois(r, mode="fast").x,
        lambda r: tracking.track_rois(r, mode="precise").x,
        lambda r: tracking.auto_conv(r, 32.0, 32.0, sub_pixel=True),
        lambda r: tracking.auto_conv_multiline(r, 32.0, 32.0),
        lambda r: tracking.quadratic_interpolation(r, 32.0, 32.0),
        lambda r: tracking.radial_profile(r, [31.3, 32.7, 31.1], 32.0),
        lambda r: tracking.fft_profile(r, 32.0, 32.0),
    ],
    ids=[
        "track_rois-fast",
        "track_rois-precise",
        "auto_conv",
        "auto_conv_multiline",
        "quadratic_interpolation",
        "radial_profile",
        "fft_profile",
    ],
)
def test_dask_rois_give_the_numpy_result(rois, call):
    lazy = da.from_array(rois, chunks=(2, 64, 64))  # odd chunks: 2 + 1 ROIs
    want = call(rois)
    got = call(lazy)
    want = want if isinstance(want, tuple) else (want,)
    got = got if isinstance(got, tuple) else (got,)
    for w, g in zip(want, got, strict=True):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-6, atol=1e-9)


def test_crop_rois_of_a_dask_stack_stays_lazy(rois):
    stack = np.tile(rois[:1], (5, 2, 2))  # (5, 128, 128)
    x, y = [32.0, 96.2], [32.0, 95.6]
    want, x0, y0 = tracking.crop_rois(stack, x, y, 32)
    lazy = da.from_array(stack, chunks=(2, 64, 128))
    got, gx0, gy0 = tracking.crop_rois(lazy, x, y, 32)
    assert isinstance(got, da.Array) and got.chunks[0] == (4, 4, 2)
    np.testing.assert_array_equal(got.compute(), want)
    np.testing.assert_array_equal(gx0, x0)
    np.testing.assert_array_equal(gy0, y0)


@pytest.mark.parametrize("value", ["5", b"5"])
def test_nm_per_px_as_text_is_a_clear_type_error(tmp_path, rois, value):
    res = tracking.track_rois(rois[:1])
    with pytest.raises(TypeError, match=r"`nm_per_px` must be a number; got b?'5'"):
        res.save(tmp_path / "xy.csv", nm_per_px=value)
    assert not (tmp_path / "xy.csv").exists()
