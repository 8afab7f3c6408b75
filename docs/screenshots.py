"""Regenerate the documentation screenshots: `xvfb-run -a python docs/screenshots.py`."""

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


def tracking(n_frames: int = 120) -> None:
    """The bead sample tracked: beads, ROI boxes, tracked points coloured by z, tracks,
    the Z-LUT check and z(t) plots."""
    viewer = build_viewer(show=True)
    viewer.window._qt_window.resize(1600, 1000)
    _, background = viewer.window.add_plugin_dock_widget("napari-camtrack", "Background")
    background.preview.value = False  # its live preview follows the frame slider
    _, widget = viewer.window.add_plugin_dock_widget("napari-camtrack", "Bead tracking")
    widget.image.value = viewer.layers["bead field"]
    viewer.dims.set_current_step(0, 0)
    _settle()
    widget.find()
    _settle()
    sets, z = widget.calibration_sets()
    # Synchronously (the widget's buttons run the same in thread workers).
    from camtrack.napari._widgets._zlut_section import _build_luts

    widget._show_luts(_build_luts(sets, z, widget.mode.value, lambda it, total: it))
    _settle()
    layer = widget.image.value
    result = widget.compute(
        layer.data[:n_frames], widget.positions(), widget.reference(), zlut=widget.zlut
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


if __name__ == "__main__":
    background()
    gain()
    tracking()
