"""Results make their own napari layer tuples, without napari (issue #17 item 2).

``to_layers()``, ``to_points()``, ``to_tracks()`` and ``to_electrons(stack)`` are the
arithmetic the widgets used to do; here they are checked against the simulator's truth
and against their defining formulas, with no viewer (the GUI tests check the layers
they become).
"""

from __future__ import annotations

import json
import subprocess
import sys

import dask.array as da
import numpy as np
import pytest

from camtrack import background as bg
from camtrack._layerdata import GAIN_MAP_LAYERS, PIXEL_MAP_LAYERS, points_table, robust_limits
from camtrack.gain import PixelCalibration, calibrate_pixels, estimate_gain
from camtrack.simulate import Camera, bead_field, bead_rois, camera_stack, dark_stack
from camtrack.tracking import TrackResult, ZLut, locate_beads, track_beads, track_rois

READ_NOISE_E = 1.5  # the simulated camera's (Camera() default)


@pytest.fixture(scope="module")
def gain_data():
    cam = Camera(shape=(48, 48), offset_std_adu=3.0, rng=0)
    stack, truth = camera_stack(200, camera=cam, rng=1)  # 50-2000 e- gradient
    dark, _ = dark_stack(100, camera=cam, rng=2)
    return stack, truth, estimate_gain(stack, dark=dark)


def _names(layers):
    return [kw["name"] for _, kw, _ in layers]


# -- gain -----------------------------------------------------------------------------
def test_gain_layers_are_the_maps(gain_data):
    _, _, res = gain_data
    layers = res.to_layers()
    assert _names(layers) == ["mean", "variance", "gain map", "offset"]
    for (data, kw, kind), field in zip(layers, GAIN_MAP_LAYERS, strict=True):
        assert kind == "image" and kw["colormap"] == "viridis"
        assert data.dtype == np.float32 and isinstance(data, np.ndarray)
        np.testing.assert_allclose(data, getattr(res, field), rtol=1e-6)
        lo, hi = kw["contrast_limits"]
        finite = data[np.isfinite(data)]
        # 1st-99th percentiles: about 98 % of the pixels inside the limits
        assert lo < hi and 0.95 < np.mean((finite >= lo) & (finite <= hi)) <= 1.0
    # Without a dark the offset is unknown: no offset layer.
    no_dark = estimate_gain(gain_data[0])
    assert _names(no_dark.to_layers()) == ["mean", "variance", "gain map"]


def test_gain_to_electrons_is_the_simulated_photoelectrons(gain_data):
    stack, truth, res = gain_data
    before = stack.copy()
    e = res.to_electrons(stack)
    assert e.dtype == np.float32 and e.shape == stack.shape
    np.testing.assert_array_equal(stack, before)  # the input is not modified
    # The defining formula ...
    ref = (stack.astype(np.float64) - res.offset_map) * res.e_per_adu
    np.testing.assert_allclose(e, ref, rtol=1e-5, atol=1e-3)
    # ... gives the truth: per pixel the time mean is the simulated signal (e-) and the
    # variance the photon transfer in electrons, S + read noise**2. The scalar factor's
    # error is the fit's (e_per_adu_stderr, 1 sigma ~ 3 %): the median ratio within
    # 3 standard errors. The shot noise of a 200-frame mean (<= 0.8 % at 50 e-) averages
    # out in the median over 2304 pixels.
    S = truth.signal_e
    rel_se = res.e_per_adu_stderr / res.e_per_adu
    e64 = e.astype(np.float64)
    ratio = np.median(e64.mean(axis=0) / S)
    assert abs(ratio * truth.camera.e_per_adu / res.e_per_adu - 1) < 0.005
    assert abs(ratio - 1) < 3 * rel_se
    # Variance in e-**2 scales with the factor squared: within 2 x 3 standard errors,
    # plus the 10 % scatter of a 200-frame variance (median over pixels: well below).
    var_ratio = np.median(e64.var(axis=0, ddof=1) / (S + READ_NOISE_E**2))
    assert abs(var_ratio - 1) < 6 * rel_se


def test_gain_to_electrons_lazy_for_dask(gain_data):
    stack, _, res = gain_data
    lazy = da.from_array(stack, chunks=(37, 29, 48))  # odd chunks
    e = res.to_electrons(lazy)
    assert isinstance(e, da.Array) and e.dtype == np.float32
    np.testing.assert_allclose(e.compute(), res.to_electrons(stack), rtol=1e-6)
    # lazy=True: numpy in, whole-frame dask chunks out, same values
    wrapped = res.to_electrons(stack, lazy=True)
    assert isinstance(wrapped, da.Array) and wrapped.chunks[1:] == ((48,), (48,))
    np.testing.assert_array_equal(wrapped[:5].compute(), res.to_electrons(stack[:5]))


def test_gain_to_electrons_needs_the_offset(gain_data):
    no_dark = estimate_gain(gain_data[0])
    with pytest.raises(ValueError, match=r"offset is unknown.*`dark`"):
        no_dark.to_electrons(gain_data[0])


# -- per-pixel calibration ----------------------------------------------------------------
@pytest.fixture(scope="module")
def pixel_data():
    cam = Camera(shape=(32, 32), gain_spread=0.05, offset_std_adu=3.0, rng=0)
    dark, _ = dark_stack(200, camera=cam, rng=3)
    levels = [
        camera_stack(200, camera=cam, signal_e=s, illumination="flat", rng=10 + i)[0]
        for i, s in enumerate((100, 400, 1600))
    ]
    return cam, levels, calibrate_pixels(levels, dark)


def test_pixel_layers_are_the_maps(pixel_data):
    _, _, cal = pixel_data
    layers = cal.to_layers()
    assert _names(layers) == ["offset (ADU)", "variance (ADU²)", "gain (e-/ADU)", "read noise (e-)"]  # fmt: skip
    for (data, kw, kind), field in zip(layers, PIXEL_MAP_LAYERS, strict=True):
        assert kind == "image" and kw["colormap"] == "viridis" and data.dtype == np.float32
        np.testing.assert_allclose(data, getattr(cal, field), rtol=1e-6)
        assert kw["contrast_limits"] == robust_limits(data)


def test_pixel_to_electrons_with_the_true_maps_is_the_truth(pixel_data):
    cam, levels, _ = pixel_data
    stack = levels[1]  # 400 e- per pixel and frame
    true = PixelCalibration(
        cam.offset_map_adu, np.full(cam.shape, 1.0), 1 / cam.e_per_adu_map,
        cam.e_per_adu_map, cam.read_noise_map_e, n_levels=3,
    )  # fmt: skip
    e = true.to_electrons(stack).astype(np.float64)
    ref = (stack - cam.offset_map_adu) * cam.e_per_adu_map
    np.testing.assert_allclose(e, ref, rtol=1e-5, atol=1e-2)
    # The 5 % gain and 3 ADU offset pattern is gone: what is left per pixel is the shot
    # and read noise of a 200-frame mean, sqrt(402.25 / 200) / 400 = 0.35 % (plus the
    # ADU rounding, 0.29 ADU x 2 e-/ADU / sqrt(200)), so 0.5 % bounds its spread.
    rel = e.mean(axis=0) / 400 - 1
    assert abs(np.median(rel)) < 0.002 and rel.std() < 0.005


def test_pixel_to_electrons_with_estimated_maps(pixel_data):
    _, levels, cal = pixel_data
    lazy = da.from_array(levels[1], chunks=(53, 17, 32))
    e = cal.to_electrons(lazy)
    assert isinstance(e, da.Array) and e.dtype == np.float32
    mean_e = e.mean(axis=0).compute()
    # The maps' own error (3 levels, 200 frames) averages out over 1024 pixels.
    assert abs(np.median(mean_e) / 400 - 1) < 0.01
    np.testing.assert_allclose(
        e[:3].compute(), (levels[1][:3] - cal.offset_map_adu) * cal.e_per_adu_map, rtol=1e-4, atol=1e-2
    )  # fmt: skip


def test_pixel_to_electrons_nan_gain_and_shape():
    gain = np.full((4, 4), 2.0)
    gain[1, 2] = np.nan  # no positive slope there
    cal = PixelCalibration(np.full((4, 4), 100.0), np.ones((4, 4)), 1 / gain, gain, np.ones((4, 4)))  # fmt: skip
    e = cal.to_electrons(np.full((2, 4, 4), 110, dtype=np.uint16))
    assert np.isfinite(e).all() and e[0, 1, 2] == 20.0  # the median gain, not a hole
    with pytest.raises(ValueError, match=r"4 x 4 px.*6 x 5"):
        cal.to_electrons(np.zeros((2, 6, 5), dtype=np.uint16))


# -- tracking -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def field():
    return bead_field(n_frames=8, shape=(128, 128), n_beads=3, rng=0)


@pytest.fixture(scope="module")
def tracked(field):
    stack, truth = field
    start = np.column_stack([truth.x[0], truth.y[0]])
    return truth, track_beads(stack, start, roi_size=32)  # every bead 32/2 px from the edges


def test_found_beads_points(field):
    stack, truth = field
    found = locate_beads(stack[0], roi_size=32)
    data, kw, kind = found.to_points(size=8)
    assert kind == "points" and kw["name"] == "beads" and kw["size"] == 8
    np.testing.assert_array_equal(data, np.column_stack([found.y, found.x]))
    np.testing.assert_array_equal(kw["features"]["bead"], np.arange(len(found)))
    assert not kw["features"]["reference"].any()
    # Each simulated bead is found within a pixel (find_beads: a few tenths).
    for x, y in zip(truth.x[0], truth.y[0], strict=True):
        assert np.hypot(data[:, 1] - x, data[:, 0] - y).min() < 1.0


def test_points_are_the_table(tracked):
    truth, res = tracked
    data, kw, kind = res.to_points(first_frame=5)
    tab = res.to_table()
    assert kind == "points" and kw["name"] == "tracked" and data.shape == (len(res), 3)
    np.testing.assert_array_equal(data[:, 0], tab["frame"] + 5)
    np.testing.assert_array_equal(data[:, 1:], np.column_stack([tab["y"], tab["x"]]))
    assert list(kw["features"]) == ["bead", "z", "x_err", "y_err", "z_err", "quality"]
    for key, value in kw["features"].items():
        np.testing.assert_array_equal(value, tab[key])
    # No Z-LUT: no z, so a fixed colour instead of colouring by z.
    assert kw["face_color"] == "#7fb8ff" and "face_colormap" not in kw
    assert kw["metadata"] == {"fs_hz": None, "exposure_s": None}
    # Against the simulated truth: every bead within 0.1 px in every frame.
    frame, bead = tab["frame"], tab["bead"]
    assert np.hypot(data[:, 2] - truth.x[frame, bead], data[:, 1] - truth.y[frame, bead]).max() < 0.1  # fmt: skip
    # Overrides replace the defaults.
    assert res.to_points(name="other", size=9)[1]["size"] == 9


def test_points_table_inverts_to_points(tracked):
    # What the Forces widget reads back from the `tracked` layer: the result's table,
    # frames shifted by first_frame.
    _, res = tracked
    data, kw, _ = res.to_points(first_frame=4)
    back, tab = points_table(data, kw["features"]), res.to_table()
    np.testing.assert_array_equal(back["frame"], tab["frame"] + 4)
    for key in ("bead", "x", "y", "z"):
        np.testing.assert_array_equal(back[key], tab[key])


def test_points_leave_out_nan_rows_and_colour_by_z():
    res = TrackResult(
        x=np.array([1.0, np.nan, 3.0]), y=np.array([4.0, 5.0, 6.0]),
        z=np.array([10.0, 20.0, np.nan]), profiles=None, quality=np.ones(3),
        match=np.full(3, np.nan), frame=np.array([0, 0, 1]), bead=np.array([0, 1, 0]),
        fs_hz=100.0,
    )  # fmt: skip
    data, kw, _ = res.to_points()
    np.testing.assert_array_equal(data, [[0, 4, 1], [1, 6, 3]])
    np.testing.assert_array_equal(kw["features"]["z"], [10.0, np.nan])
    assert kw["face_color"] == "z" and kw["face_colormap"] == "viridis"
    assert kw["metadata"]["fs_hz"] == 100.0


def test_points_of_rois_in_frame_coordinates():
    x, y = np.array([15.2, 16.4]), np.array([15.5, 14.8])
    rois, _ = bead_rois(x, y, 1000.0, roi_size=32, rng=0)
    res = track_rois(rois)
    y0, x0 = np.array([100, 7]), np.array([3, 50])  # the ROIs' corners in a frame
    data, kw, _ = res.to_points(origin=(y0, x0), name="tracked (preview)")
    assert data.shape == (2, 2) and "bead" not in kw["features"]
    np.testing.assert_allclose(data, np.column_stack([y + y0, x + x0]), atol=0.1)


def test_tracks_sorted_per_bead_and_time(tracked):
    truth, res = tracked
    data, kw, kind = res.to_tracks(first_frame=2)
    assert kind == "tracks" and kw == {"name": "tracks", "tail_length": 50, "blending": "translucent"}  # fmt: skip
    order = np.lexsort((data[:, 1], data[:, 0]))
    np.testing.assert_array_equal(order, np.arange(len(data)))
    n_frames, n_beads = truth.x.shape
    for b in range(n_beads):
        rows = data[data[:, 0] == b]
        np.testing.assert_array_equal(rows[:, 1], np.arange(n_frames) + 2)
        np.testing.assert_allclose(rows[:, 3], truth.x[:, b], atol=0.1)
        np.testing.assert_allclose(rows[:, 2], truth.y[:, b], atol=0.1)
    rois, _ = bead_rois([15.2], 15.5, 1000.0, roi_size=32, rng=0)
    with pytest.raises(ValueError, match="track_beads"):
        track_rois(rois).to_tracks()


# -- Z-LUT and background ----------------------------------------------------------------
def test_zlut_layer():
    a = ZLut(z=np.array([0.0, 50.0, 100.0]), profiles=np.arange(15.0).reshape(3, 5), roi_size=16)
    b = ZLut(z=a.z, profiles=-a.profiles, roi_size=16)
    ((data, kw, kind),) = a.to_layers()
    assert kind == "image" and kw["name"] == "Z-LUT" and kw["colormap"] == "twilight"
    assert data.dtype == np.float32 and data.shape == (3, 5)
    np.testing.assert_array_equal(kw["metadata"]["z"], a.z)
    assert kw["metadata"]["units"] == "nm"
    ((both, _, _),) = a.to_layers([a, b])
    np.testing.assert_array_equal(both, np.stack([a.profiles, b.profiles]))


def test_background_layers():
    stack, _ = camera_stack(12, (32, 32), rng=0)
    layers = bg.spatial_mean(stack, radius=4.0).to_layers(stack, "cells")
    assert _names(layers) == ["cells background", "cells - background"]
    np.testing.assert_allclose(
        layers[1][0], bg.subtract(stack, bg.spatial_mean(stack, radius=4.0).background)
    )
    sparse = bg.sparse_median(stack, window=5)
    layers = sparse.to_layers(stack, "cells")
    assert _names(layers) == ["cells background", "cells - background", "cells sparse background images"]  # fmt: skip
    assert layers[2][1]["visible"] is False
    np.testing.assert_allclose(layers[1][0], bg.subtract(stack, sparse.expand()))


def test_calling_them_loads_no_gui():
    code = (
        "import sys, json, numpy as np\n"
        "from camtrack.gain import estimate_gain\n"
        "from camtrack.simulate import camera_stack\n"
        "from camtrack.tracking import TrackResult, ZLut\n"
        "s, t = camera_stack(50, (32, 32), rng=0)\n"
        "r = estimate_gain(s, dark=100.0)\n"
        "r.to_layers(); r.to_electrons(s, lazy=True)\n"
        "tr = TrackResult(x=np.ones(2), y=np.ones(2), z=np.ones(2), profiles=None,\n"
        "    quality=np.ones(2), match=np.ones(2), frame=np.arange(2), bead=np.zeros(2, int))\n"
        "tr.to_points(); tr.to_tracks()\n"
        "ZLut(z=np.arange(2.0), profiles=np.zeros((2, 3)), roi_size=8).to_layers()\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('napari', 'magicgui', 'qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'vispy')]\n"
        "print(json.dumps(bad))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []
