"""Regenerate the documentation screenshots: `xvfb-run -a python docs/screenshots.py`.

Names pick some: `xvfb-run -a python docs/screenshots.py gain tracking` (background, gain,
gain_pixels, tracking, forces).
"""

import sys
from pathlib import Path

from qtpy.QtWidgets import QApplication

from camtrack._demo import build_viewer

HERE = Path(__file__).parent / "images"


def _settle() -> None:
    app = QApplication.instance()
    for _ in range(20):
        app.processEvents()


def background() -> None:
    viewer = build_viewer(show=True)
    viewer.window._qt_window.resize(1400, 850)
    dock, widget = viewer.window.add_plugin_dock_widget("napari-camtrack", "Background")
    dock.raise_()
    widget.image.value = viewer.layers["bead field"]
    widget.method.value = "temporal median"
    viewer.dims.set_current_step(0, 120)
    widget.update_preview()
    # The preview runs in a worker: wait for it.
    app = QApplication.instance()
    while widget._preview_worker is not None or widget._preview_frame != 120:
        app.processEvents()
    for layer in viewer.layers:
        layer.visible = layer.name == "preview residual: bead field"
    _settle()
    dock.raise_()  # its tab in front of the other camtrack docks
    _settle()
    viewer.screenshot(str(HERE / "background.png"), canvas_only=False, flash=False)
    viewer.close()


def gain() -> None:
    viewer = build_viewer(show=True)
    viewer.window._qt_window.resize(1500, 900)
    dock, widget = viewer.window.add_plugin_dock_widget("napari-camtrack", "Camera gain")
    dock.raise_()  # its tab in front of the other camtrack docks
    layer = viewer.layers["flat field (known gain)"]
    widget.image.value = layer
    widget.offset_known.value = True
    widget.offset_adu.value = float(layer.metadata["truth"]["offset_adu"])
    # Synchronously (the widget's Run does the same in a thread worker).
    first, last = widget.first_frame.value, widget.last_frame.value
    result = widget.compute(layer.data[first : last + 1], widget.params())
    widget._show(result, (layer.name, first, last))
    for other in viewer.layers:
        other.visible = other.name == "gain map"
    _settle()
    dock.raise_()
    _settle()
    viewer.screenshot(str(HERE / "gain.png"), canvas_only=False, flash=False)
    viewer.close()


def gain_pixels() -> None:
    """The Per-pixel calibration section on the sCMOS calibration sample (a dark and
    four flat stacks of the flat-field sample's sensor), the gain map shown."""
    import napari

    from camtrack.napari._widgets._pixelcal_section import _calibrate

    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1500, 1150)
    viewer.open_sample("napari-camtrack", "scmos_calibration")
    dock, widget = viewer.window.add_plugin_dock_widget("napari-camtrack", "Camera gain")
    section = widget.pixels
    section.expand.value = True
    section.stacks.value = [layer for layer in viewer.layers if layer.name.startswith("flat")]
    # Synchronously (the section's button runs the same in a thread worker).
    levels, dark, names = section.levels()
    section._show(_calibrate(levels, dark, names, 1.0, None), "done: 4 light levels")
    for other in viewer.layers:
        other.visible = other.name == "gain (e-/ADU)"
    _settle()  # the dock's final width first: the view fits the canvas it leaves
    viewer.reset_view()
    _settle()
    dock.raise_()
    _settle()
    viewer.screenshot(str(HERE / "gain_pixels.png"), canvas_only=False, flash=False)
    viewer.close()


def tracking(n_frames: int = 120) -> None:
    """The bead sample tracked: beads, ROI boxes, tracked points coloured by z, tracks,
    the Z-LUT check and z(t) plots."""
    viewer = build_viewer(show=True)
    viewer.window._qt_window.resize(1600, 1000)
    _, background = viewer.window.add_plugin_dock_widget("napari-camtrack", "Background")
    background.preview.value = False  # its live preview follows the frame slider
    dock, widget = viewer.window.add_plugin_dock_widget("napari-camtrack", "Bead tracking")
    dock.raise_()  # its tab in front of the other camtrack docks
    widget.image.value = viewer.layers["bead field"]
    viewer.dims.set_current_step(0, 0)
    _settle()
    widget.find()
    app = QApplication.instance()
    while widget._stuck_worker is not None:  # the stuck-bead check marks the reference
        app.processEvents()
    _settle()
    sets, z = widget.calibration_sets()
    # Synchronously (the widget's buttons run the same in thread workers).
    from camtrack.napari._widgets._zlut_section import _build_luts

    how = {
        "mode": widget.mode.value,
        "centre": widget.centre.value,
        "profile": widget.profile.value,
    }
    widget._show_luts(_build_luts(sets, z, how, lambda it, total: it))
    _settle()
    layer = widget.image.value
    result = widget.compute(
        layer.data[:n_frames],
        widget.positions(),
        widget.reference(),
        zlut=widget.zlut,
        timing=widget.timing(),
    )
    widget._show(result, layer.name, 0)
    _settle()
    viewer.layers["beads"].selected_data = {2}
    shown = {"bead field", "beads", "bead ROIs", "tracked", "tracks"}
    for other in viewer.layers:
        other.visible = other.name in shown
    viewer.reset_view()
    viewer.dims.set_current_step(0, n_frames // 2)
    viewer.layers.selection.active = viewer.layers["tracked"]
    _settle()
    viewer.screenshot(str(HERE / "tracking.png"), canvas_only=False, flash=False)
    viewer.close()


def forces() -> None:
    """Forces on simulated tethers: 3 beads and a stuck reference bead rendered with
    motion blur along exact tether trajectories (4 magnet plateaus, a dsDNA-like chain:
    persistence 50 nm, contour 3000 nm), tracked by camtrack, then the Forces widget.
    z comes from the simulation (as a Z-LUT would give it, with 5 nm noise): the images
    carry the sideways motion only."""
    import numpy as np

    from camtrack import tracking
    from camtrack.force import FOCAL_SHIFT, wlc_extension_nm
    from camtrack.simulate import tether_rois, tether_trace

    fs, radius, tile, per = 60.0, 500.0, 64, 3000
    force_pn = np.array([0.2, 0.6, 2.0, 6.0])
    ext = wlc_extension_nm(force_pn, 50.0, 3000.0)
    sim = tether_trace(per * 4, fs, force_pn=force_pn, length_nm=ext + radius, radius_nm=radius,
                       height_nm=ext + radius, n_beads=3, substeps=4, rng=7)  # fmt: skip
    n = per * 4
    stack = np.empty((n, 2 * tile, 2 * tile), np.uint16)
    rng = np.random.default_rng(8)
    for b in range(4):
        r0, c0 = tile * (b // 2), tile * (b % 2)
        for k in range(4):
            sl = slice(k * per, (k + 1) * per)
            x_sub = sim.x_sub_nm[b, sl] if b < 3 else rng.normal(0, 1.0, (per, 4))
            # Defocus of the rings: a few hundred nm to 1.4 um, growing with the extension.
            z = (ext[k] - 1500.0) / FOCAL_SHIFT if b < 3 else 300.0
            stack[sl, r0 : r0 + tile, c0 : c0 + tile] = tether_rois(
                x_sub, roi_size=tile, z_nm=z, dtype="uint16", rng=100 * b + k
            )
    centre = (tile - 1) / 2
    start = np.array([[centre + tile * (b % 2), centre + tile * (b // 2)] for b in range(4)])
    result = tracking.track_beads(stack, start, roi_size=48, reference=[3], mode="fast")
    tab = result.to_table()
    bead = tab["bead"].astype(int)
    plateau = np.repeat(np.arange(4), per)[tab["frame"].astype(int)]
    z = np.where(bead < 3, ext[plateau] / FOCAL_SHIFT, 0.0) + rng.normal(0, 5.0, bead.size)

    import napari

    viewer = napari.Viewer(title="napari-camtrack: forces", show=True)
    viewer.window._qt_window.resize(1600, 1250)
    viewer.add_image(stack, name="tethered beads", colormap="gray",
                     metadata={"nm_per_px": 100.0, "fs_hz": fs})  # fmt: skip
    data = np.column_stack([tab["frame"], tab["y"], tab["x"]])
    ok = np.isfinite(data).all(axis=1)  # as the Bead tracking widget does
    feats = {"bead": bead[ok], "z": z[ok], "quality": tab["quality"][ok]}
    print(f"forces scenario: {int((~ok).sum())} NaN rows of {ok.size}")
    viewer.add_points(data[ok], name="tracked", size=2, features=feats, border_width=0,
                      face_color="#7fb8ff")  # fmt: skip
    dock, widget = viewer.window.add_plugin_dock_widget("napari-camtrack", "Forces")
    widget.source.value = viewer.layers["tracked"]
    widget.fs_hz.value = fs
    widget.nm_per_px.value = 100.0
    widget.radius_nm.value = radius
    widget.drag.value = "fixed: extension + radius"
    widget.reference.value = "3"
    widget.plateaus.value = ", ".join(f"{k * per}-{(k + 1) * per - 1}" for k in range(4))
    # Synchronously (the Run button does the same in a thread worker).
    from camtrack.force import forces_from_table

    table, origin = widget.table()
    params = widget.params()
    widget._show(forces_from_table(table, params, reference=[3]), params, origin)
    widget.bead.value = widget.bead.choices[2]
    error = [r["force_pn"] / force_pn[r["plateau"]] - 1 for r in widget.result.rows]
    print(f"forces scenario: {widget.status.value}; force errors {np.round(error, 3)}")
    pts = viewer.layers["tracked"]
    pts.face_colormap = "spring"  # bright at both ends on the dark canvas
    pts.face_color = "force_pn"
    # The reference bead has no force (NaN): limits from the others, or nothing shows.
    force = pts.features["force_pn"]
    pts.face_contrast_limits = (float(np.nanmin(force)), float(np.nanmax(force)))
    viewer.reset_view()
    viewer.dims.set_current_step(0, 2 * per + per // 2)
    _settle()
    dock.raise_()
    _settle()
    viewer.screenshot(str(HERE / "forces.png"), canvas_only=False, flash=False)
    viewer.close()


SHOTS = {"background": background, "gain": gain, "gain_pixels": gain_pixels,
         "tracking": tracking, "forces": forces}  # fmt: skip

if __name__ == "__main__":
    unknown = set(sys.argv[1:]) - set(SHOTS)
    if unknown:
        sys.exit(f"unknown screenshot(s) {sorted(unknown)}; choose from {', '.join(SHOTS)}")
    for name in sys.argv[1:] or SHOTS:
        SHOTS[name]()
