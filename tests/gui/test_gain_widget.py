"""The Camera gain widget on the sample flat field: layers, the plot, live refit, outputs."""

from __future__ import annotations

import json

import dask.array as da
import numpy as np
import pytest

pytest.importorskip("napari")

from camtrack.napari._widgets import GainWidget

NAME = "flat field (known gain)"


@pytest.fixture
def gain_run(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-camtrack", "flat_field")
    widget = GainWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Camera gain")
    widget.image.value = viewer.layers[NAME]
    widget.run_button.native.click()
    qtbot.waitUntil(lambda: widget.result is not None, timeout=120000)
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=10000)
    return widget, viewer


def test_run_recovers_known_gain_and_plots(gain_run, qtbot):
    widget, viewer = gain_run
    truth = viewer.layers[NAME].metadata["truth"]
    res = widget.result
    # 200 frames of 256 x 256: the fit's standard error is ~0.5%; allow 4 of them.
    assert (
        abs(res.e_per_adu / truth["e_per_adu"] - 1)
        < 4 * res.e_per_adu_stderr / res.e_per_adu + 0.005
    )
    for name in ("mean", "variance", "gain map"):
        assert name in viewer.layers
        assert viewer.layers[name].data.shape == viewer.layers[NAME].data.shape[1:]
    np.testing.assert_allclose(viewer.layers["mean"].data, res.mean)
    # The plot shows the binned curve of the result and its text.
    x, y = widget.plot.points()
    np.testing.assert_allclose(np.sort(x), np.sort(res.bin_mean))
    np.testing.assert_allclose(np.sort(y), np.sort(res.bin_var))
    assert "e-/ADU" in widget.plot.text and "ADU/e-" in widget.plot.text
    assert f"{res.e_per_adu:.4g}" in widget.result_label.value


def test_fit_range_refits_live_without_new_pass(gain_run):
    widget, _ = gain_run
    before = widget.result
    widget.fit_range.value = (10, 90)
    after = widget.result
    assert after is not before
    assert after.mean is before.mean  # same maps: a refit, not a new pass
    assert after.fit.fit_range == (10.0, 90.0)
    assert after.fit.n_bins > before.fit.n_bins
    lo, hi = after.fit.fit_range_adu
    # The shaded fit range follows the slider.
    spans = [p for p in widget.plot.axes.patches]
    assert spans and np.isclose(spans[0].get_x(), lo) and np.isclose(spans[0].get_width(), hi - lo)


def test_rerun_updates_layers_in_place(gain_run, qtbot):
    widget, viewer = gain_run
    n = len(viewer.layers)
    widget.first_frame.value, widget.last_frame.value = 0, 99
    widget.method.value = "diff"
    widget.run_button.native.click()
    qtbot.waitUntil(lambda: widget.result.n_frames == 100, timeout=120000)
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=10000)
    assert len(viewer.layers) == n
    assert widget.result.method == "diff"


def test_known_offset_convert_and_save(gain_run, qtbot, tmp_path):
    widget, viewer = gain_run
    truth = viewer.layers[NAME].metadata["truth"]
    widget.offset_known.value = True
    widget.offset_adu.value = float(truth["offset_adu"])
    widget.run_button.native.click()
    qtbot.waitUntil(lambda: widget.result.offset_adu is not None, timeout=120000)
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=10000)
    assert "offset" in viewer.layers
    widget.convert_button.native.click()
    electrons = viewer.layers[f"{NAME} (e-)"].data
    assert isinstance(electrons, da.Array)  # lazy
    raw = np.asarray(viewer.layers[NAME].data[:50], dtype=np.float64)
    e = np.asarray(electrons[:50], dtype=np.float64)
    np.testing.assert_allclose(
        e, (raw - truth["offset_adu"]) * widget.result.e_per_adu, rtol=1e-5, atol=1e-3
    )
    json_path, h5_path = widget.save_calibration(tmp_path / "cal.json")
    info = json.loads(json_path.read_text())
    assert info["e_per_adu"] == pytest.approx(widget.result.e_per_adu)
    assert info["units"]["e_per_adu"] == "e-/ADU"
    import h5py

    with h5py.File(h5_path) as f:
        np.testing.assert_allclose(f["gain_map_e_per_adu"][()], widget.result.gain_map)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cal.h5", "cal.json"]
    # One save (#17 item 7): a second save refuses unless asked to replace.
    with pytest.raises(FileExistsError, match="overwrite"):
        widget.save_calibration(tmp_path / "cal.json")
    widget.save_calibration(tmp_path / "cal.json", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cal.h5", "cal.json"]


def test_bad_input_is_a_notification(make_napari_viewer, qtbot):
    from napari.utils.notifications import notification_manager

    viewer = make_napari_viewer()
    rng = np.random.default_rng(1)
    viewer.add_image((rng.poisson(300, (40, 32, 32)) + 100).astype(np.uint16), name="flat")
    widget = GainWidget(viewer)
    widget.image.value = viewer.layers["flat"]
    n_before = len(notification_manager.records)
    widget.run_button.native.click()
    qtbot.waitUntil(
        lambda: widget.run_button.enabled and widget.status.value.startswith("error"),
        timeout=60000,
    )
    messages = [str(n.message) for n in notification_manager.records[n_before:]]
    assert any("uniform" in m or "distinct" in m or "does not rise" in m for m in messages), (
        messages
    )
    assert widget.result is None
