"""The Forces widget on tracked layers built from the tether simulator (known force)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

pytest.importorskip("napari")

from camtrack import io
from camtrack.force import FOCAL_SHIFT, wlc_extension_nm
from camtrack.napari._widgets import ForceWidget
from camtrack.simulate import tether_trace

FS, R_NM, NM_PER_PX = 60.0, 500.0, 100.0
REF = 4  # the stuck reference bead's number with the default 4 tethered beads


def tracked_table(force_pn, ext_nm, n_frames: int, n_beads: int = 4, seed: int = 0):
    """A tracking table (frame, bead, x, y, z in px and nm) of ``n_beads`` tethered beads
    plus one stuck reference bead, as the Bead tracking widget would make it, and the
    simulation (truth)."""
    ext_nm = np.asarray(ext_nm, dtype=float)
    sim = tether_trace(
        n_frames, FS, force_pn=force_pn, length_nm=ext_nm + R_NM, radius_nm=R_NM,
        height_nm=ext_nm + R_NM, n_beads=n_beads, noise_nm=1.0, rng=seed,
    )  # fmt: skip
    rng = np.random.default_rng(seed + 100)
    frame = np.arange(n_frames)
    cols = {k: [] for k in ("frame", "bead", "x", "y", "z")}
    for b in range(n_beads + 1):
        if b < n_beads:  # z from the Z-LUT: extension over the focal shift, 5 nm noise
            x = 30.0 + 20 * b + sim.x_nm[b] / NM_PER_PX
            z = np.atleast_1d(ext_nm)[sim.plateau] / FOCAL_SHIFT + rng.normal(0, 5, n_frames)
        else:  # stuck: 1 nm of tracking noise around its place, z at the surface
            x = 130.0 + rng.normal(0, 0.01, n_frames)
            z = rng.normal(0, 5, n_frames)
        y = 40.0 + b + rng.normal(0, 0.01, n_frames)
        for key, v in zip(cols, (frame, np.full(n_frames, b), x, y, z), strict=True):
            cols[key].append(v)
    return {k: np.concatenate(v) for k, v in cols.items()}, sim


def add_tracked(viewer, table):
    data = np.column_stack([table["frame"], table["y"], table["x"]]).astype(float)
    feats = {"bead": table["bead"], "z": table["z"], "quality": np.ones(len(data))}
    return viewer.add_points(data, name="tracked", features=feats, size=4)


def make_widget(viewer, **values):
    widget = ForceWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Forces")
    widget.source.value = viewer.layers["tracked"]
    widget.fs_hz.value = FS
    widget.nm_per_px.value = NM_PER_PX
    widget.radius_nm.value = R_NM
    # The stuck bead is the last one (see tracked_table).
    widget.reference.value = str(int(viewer.layers["tracked"].features["bead"].max()))
    for key, value in values.items():
        getattr(widget, key).value = value
    return widget


def run(widget, qtbot):
    widget.result = None
    widget.run_button.native.click()
    qtbot.waitUntil(lambda: widget.run_button.enabled and widget._worker is None, timeout=60000)


@pytest.fixture
def one_plateau(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    # 1 pN on a 2000 nm tether: corner ~3 Hz; 400 s per bead gives ~1.3 % standard error.
    table, sim = tracked_table(1.0, 2000.0, 24000)
    add_tracked(viewer, table)
    widget = make_widget(viewer, drag="fixed: extension + radius")
    run(widget, qtbot)
    return widget, viewer, sim


def test_force_per_bead_against_truth(one_plateau):
    widget, _, sim = one_plateau
    assert widget.result is not None, widget.status.value
    rows = widget.result.rows
    assert [r["bead"] for r in rows] == [0, 1, 2, 3]  # the reference bead is left out
    for r in rows:
        # Length from the measured extension (reference bead as surface, focal shift):
        # within a few nm of 2000 + 500 (5 nm z noise averaged over 24,000 frames).
        assert r["length_nm"] == pytest.approx(2500.0, abs=3.0)
        # ~1.3 % standard error per bead: 5 % is almost 4 of them.
        assert r["force_pn"] == pytest.approx(sim.force_pn, rel=0.05)
        assert r["force_lo_pn"] < r["force_pn"] < r["force_hi_pn"]
        assert not r["flagged"]
    forces = np.array([r["force_pn"] for r in rows])
    # The mean of 4 beads: ~0.7 % standard error.
    assert forces.mean() == pytest.approx(sim.force_pn, rel=0.03)
    assert (
        "median force" in widget.status.value and "reference [4] left out" in widget.status.value
    )


def test_features_table_and_plots(one_plateau):
    widget, viewer, _ = one_plateau
    pts = viewer.layers["tracked"]
    feats = pts.features
    assert {"force_pn", "force_lo_pn", "force_hi_pn", "extension_nm"} <= set(feats)
    rows = {r["bead"]: r for r in widget.result.rows}
    for b in range(4):
        sel = np.asarray(feats["bead"]) == b
        np.testing.assert_allclose(feats["force_pn"][sel], rows[b]["force_pn"])
    assert np.isnan(feats["force_pn"][np.asarray(feats["bead"]) == REF]).all()
    assert widget.results.shape == (4, 7)
    assert widget.results.data[0][2].startswith(f"{rows[0]['force_pn']:.3g} [")
    assert len(widget.bead.choices) == 4
    psd = widget.plot.lines("psd")
    f, model = psd["fit (aliasing + blur + noise)"]
    assert f.size > 50 and np.all(model > 0)
    assert set(widget.plot.lines("allan")) == {"data", "model"}
    (trace,) = widget.plot.lines("trace").values()
    assert np.nanmedian(trace[1]) == pytest.approx(2000.0, abs=10.0)
    # The figure really draws: data points, fit lines, text in many colours.
    widget.plot.canvas.draw()
    rgba = np.asarray(widget.plot.canvas.buffer_rgba())[..., :3].reshape(-1, 3)
    assert len(np.unique(rgba, axis=0)) > 100
    # Picking another bead redraws the plot with its title.
    widget.bead.value = widget.bead.choices[2]
    assert widget.plot.psd_axes.get_title().startswith("bead 2:")


def test_export_csv_and_hdf5_refuses_overwrite(one_plateau, tmp_path):
    widget, _, _ = one_plateau
    csv = widget.export(tmp_path / "forces.csv")
    back = io_table(csv)
    np.testing.assert_allclose(back["force_pn"], [r["force_pn"] for r in widget.result.rows])
    with pytest.raises(FileExistsError):
        widget.export(tmp_path / "forces.csv")
    widget.overwrite.value = True
    widget.export(tmp_path / "forces.csv")
    h5 = widget.export(tmp_path / "forces.h5")
    with h5py.File(h5) as fh:
        assert fh["forces/force_pn"].shape == (4,)
        assert float(fh.attrs["fs_hz"]) == FS
    with pytest.raises(ValueError, match=r"\.csv or \.h5"):
        widget.export(tmp_path / "forces.txt")


def io_table(path):
    from camtrack.force._table import read_table

    return read_table(path)


def test_force_extension_with_wlc_fit(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    # dsDNA-like chain: Lp 50 nm, L0 3000 nm; extensions from the WLC at each force.
    forces = np.array([0.15, 0.5, 2.0, 6.0])
    ext = wlc_extension_nm(forces, 50.0, 3000.0)
    table, _ = tracked_table(forces, ext, 4 * 9000, n_beads=2, seed=3)
    add_tracked(viewer, table)
    widget = make_widget(viewer, drag="fixed: extension + radius",
                         plateaus="0-8999, 9000-17999, 18000-26999, 27000-35999")  # fmt: skip
    run(widget, qtbot)
    assert widget.result is not None, widget.status.value
    assert len(widget.result.rows) == 8 and len(widget.bead.choices) == 8
    for r in widget.result.rows:
        # 150 s per plateau: a few % standard error at the low forces; 4 of them.
        sigma = (r["force_hi_pn"] - r["force_lo_pn"]) / 2
        assert abs(r["force_pn"] - forces[r["plateau"]]) < 4 * sigma, r
        assert r["extension_nm"] == pytest.approx(ext[r["plateau"]], abs=5.0)
    for b in (0, 1):
        wlc = widget.result.wlc[b]
        assert abs(wlc.persistence_nm - 50.0) < 3 * wlc.persistence_err_nm + 2.0
        assert abs(wlc.contour_nm - 3000.0) < 3 * wlc.contour_err_nm + 20.0
    fe = widget.plot.fe_axes
    assert any(line.get_label().startswith("WLC") for line in fe.get_lines())
    # Each point's force is that of its plateau.
    feats = viewer.layers["tracked"].features
    sel = (np.asarray(feats["bead"]) == 1) & (viewer.layers["tracked"].data[:, 0] >= 27000)
    np.testing.assert_allclose(feats["force_pn"][sel], widget.result.rows[-1]["force_pn"])


@pytest.mark.parametrize("suffix", [".csv", ".h5"])
def test_loaded_table_file(make_napari_viewer, qtbot, tmp_path, suffix):
    viewer = make_napari_viewer()
    table, sim = tracked_table(2.0, 2500.0, 12000, n_beads=2, seed=5)
    table["reference"] = table["bead"] == 2
    if suffix == ".csv":
        path = io.write_csv(tmp_path / "tracking.csv", table)
    else:  # the layout of TrackResult.save: one dataset per column under tracking/
        path = io.write_hdf5(
            tmp_path / "tracking.h5", {f"tracking/{k}": v for k, v in table.items()}
        )
    widget = ForceWidget(viewer)
    assert widget.source.value is None and not widget.table_file.native.isHidden()
    widget.table_file.value = path
    widget.fs_hz.value, widget.nm_per_px.value = FS, NM_PER_PX
    widget.length_nm.value = 3000.0
    run(widget, qtbot)
    assert widget.result is not None, widget.status.value
    assert [r["bead"] for r in widget.result.rows] == [0, 1]
    for r in widget.result.rows:
        assert r["force_pn"] == pytest.approx(sim.force_pn, rel=0.08)
    # The input table is never overwritten by the export.
    with pytest.raises((ValueError, OSError)):
        widget.export(path, overwrite=True)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("fs_hz", 0.0, "fs_hz"),
        ("plateaus", "0-10, twelve", "plateaus"),
        ("reference", "0, x", "reference"),
    ],
)
def test_bad_input_is_a_message(make_napari_viewer, monkeypatch, field, value, message):
    viewer = make_napari_viewer()
    table, _ = tracked_table(1.0, 2000.0, 600, n_beads=1)
    add_tracked(viewer, table)
    shown = []
    monkeypatch.setattr("napari.utils.notifications.show_error", shown.append)
    widget = make_widget(viewer)
    getattr(widget, field).value = value
    widget.run_button.native.click()
    assert widget._worker is None and widget.result is None
    assert message in widget.status.value and shown and message in shown[0]


def test_engine_errors_from_the_worker_are_messages(make_napari_viewer, qtbot, monkeypatch):
    viewer = make_napari_viewer()
    table, _ = tracked_table(1.0, 2000.0, 600, n_beads=1)
    add_tracked(viewer, table)
    shown = []
    monkeypatch.setattr("napari.utils.notifications.show_error", shown.append)
    widget = make_widget(viewer, reference="7")  # no such bead
    run(widget, qtbot)
    assert widget.result is None and "not in the table" in widget.status.value
    # No pixel size and no x_nm column: the engine says what to pass.
    widget.reference.value, widget.nm_per_px.value = "", 0.0
    run(widget, qtbot)
    assert widget.result is None and "nm_per_px" in widget.status.value
    # No length, and the radius cannot help without a surface: named.
    widget.nm_per_px.value, widget.radius_nm.value = NM_PER_PX, 0.0
    run(widget, qtbot)
    assert "length_nm" in widget.status.value
    assert len(shown) == 3


def test_no_source_and_tooltips(make_napari_viewer, monkeypatch):
    from camtrack.napari._widgets._tooltips import value_fields

    viewer = make_napari_viewer()
    monkeypatch.setattr("napari.utils.notifications.show_error", lambda msg: None)
    widget = ForceWidget(viewer)
    widget.fs_hz.value = FS
    widget.run_button.native.click()
    assert "No tracking" in widget.status.value
    missing = [name for name, w in value_fields(widget).items() if not w.tooltip]
    assert not missing
    # A tracked layer added later is offered and picked.
    table, _ = tracked_table(1.0, 2000.0, 100, n_beads=1)
    add_tracked(viewer, table)
    assert viewer.layers["tracked"] in widget.source.choices
    assert widget.source.value is viewer.layers["tracked"]


def test_cancel_keeps_the_previous_result(one_plateau, qtbot, monkeypatch):
    import time

    from camtrack import force

    widget, viewer, _ = one_plateau
    before = widget.result
    slow = force.calibrate_force

    def calibrate(*args, **kwargs):
        time.sleep(0.5)  # a long batch: Cancel must land between beads
        return slow(*args, **kwargs)

    monkeypatch.setattr(force, "calibrate_force", calibrate)
    widget.length_nm.value = 3000.0  # would change every force
    widget.run_button.native.click()
    qtbot.waitUntil(lambda: not widget.progress_bar.native.isHidden(), timeout=5000)
    widget.cancel_button.native.click()
    qtbot.waitUntil(lambda: widget._worker is None, timeout=20000)
    assert "cancelled" in widget.status.value
    assert widget.result is before and widget.export_button.enabled
    np.testing.assert_allclose(
        viewer.layers["tracked"].features["force_pn"][:1], before.rows[0]["force_pn"]
    )


def test_on_the_bead_tracking_widgets_layer(make_napari_viewer, qtbot):
    """The glue: the Bead tracking widget's `tracked` layer is offered and picked, its
    reference marks and the image's pixel size are taken over, the run writes features.
    (40 frames of the sample are far too short for a trustworthy force: flagged.)"""
    from camtrack.napari._widgets import TrackingWidget

    viewer = make_napari_viewer()
    viewer.open_sample("napari-camtrack", "beads")
    tracking = TrackingWidget(viewer)
    tracking.image.value = viewer.layers["bead field"]
    viewer.dims.set_current_step(0, 0)
    tracking.find()
    viewer.layers["beads"].selected_data = {0}
    tracking.toggle_reference()
    tracking.last_frame.value = 39
    tracking.track_button.native.click()
    qtbot.waitUntil(lambda: tracking.result is not None, timeout=120000)
    qtbot.waitUntil(lambda: tracking.track_button.enabled, timeout=10000)
    widget = ForceWidget(viewer)
    assert widget.source.value is viewer.layers["tracked"]
    assert widget.reference.value == "0"
    assert widget.nm_per_px.value == pytest.approx(tracking.nm_per_px.value)
    widget.fs_hz.value, widget.length_nm.value = FS, 3000.0
    run(widget, qtbot)
    assert widget.result is not None, widget.status.value
    n_beads = len(viewer.layers["beads"].data)
    assert [r["bead"] for r in widget.result.rows] == list(range(1, n_beads))
    assert "force_pn" in viewer.layers["tracked"].features


def test_closed_plot_dock_comes_back_on_the_next_run(one_plateau, qtbot):
    widget, viewer, _ = one_plateau
    viewer.window.remove_dock_widget(widget._plot_dock)
    assert widget._plot_dock.parent() is None
    run(widget, qtbot)
    assert widget.result is not None and widget._plot_dock.parent() is not None


def test_selecting_a_point_plots_its_bead(one_plateau):
    widget, viewer, _ = one_plateau
    pts = viewer.layers["tracked"]
    first_of_bead_3 = int(np.flatnonzero(np.asarray(pts.features["bead"]) == 3)[0])
    pts.selected_data = {first_of_bead_3}
    assert widget.bead.value == (3, 0)
    assert widget.plot.psd_axes.get_title().startswith("bead 3:")


def test_force_extension_from_a_magnet_column(make_napari_viewer, qtbot, tmp_path):
    """Plateaus from the magnet position in a table file (the runs of one value;
    frames while the magnet moves in none), as the frame ranges would give them."""
    viewer = make_napari_viewer()
    forces = np.array([0.5, 2.0, 6.0])
    ext = wlc_extension_nm(forces, 50.0, 3000.0)
    per = 6000
    table, _ = tracked_table(forces, ext, 3 * per, n_beads=2, seed=4)
    frame = table["frame"]
    magnet = np.array([8.0, 5.0, 2.0])[np.minimum(frame // per, 2)]
    moving = (frame % per < 30) & (frame >= per)  # the magnet travels for 30 frames
    magnet[moving] = 8.0 - 3.0 * (frame[moving] // per) + (frame[moving] % per) * 0.01
    table["magnet_mm"] = magnet
    table["reference"] = table["bead"] == 2
    path = io.write_csv(tmp_path / "fx.csv", table)
    widget = ForceWidget(viewer)
    widget.table_file.value = path
    widget.fs_hz.value, widget.nm_per_px.value, widget.radius_nm.value = FS, NM_PER_PX, R_NM
    widget.drag.value = "fixed: extension + radius"
    widget.magnet_column.value = "magnet_mm"
    run(widget, qtbot)
    assert widget.result is not None, widget.status.value
    assert widget.result.n_plateaus == 3 and "3 plateaus" in widget.status.value
    for r in widget.result.rows:
        sigma = (r["force_hi_pn"] - r["force_lo_pn"]) / 2
        assert abs(r["force_pn"] - forces[r["plateau"]]) < 4 * sigma, r
        assert r["n_frames_used"] == (per if r["plateau"] == 0 else per - 30)
    assert set(widget.result.wlc) == {0, 1}
    # A column the table lacks: a notification naming the columns there are.
    widget.magnet_column.value = "magnet"
    widget.result = None
    widget.run_button.native.click()
    qtbot.waitUntil(lambda: widget.run_button.enabled and widget._worker is None, timeout=60000)
    assert widget.result is None and "magnet_mm" in widget.status.value
