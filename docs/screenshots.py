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
    _, widget = viewer.window.add_plugin_dock_widget("napari-camtrack", "Background")
    widget.image.value = viewer.layers["bead field"]
    widget.method.value = "temporal median"
    viewer.dims.set_current_step(0, 120)
    widget.update_preview()
    for layer in viewer.layers:
        layer.visible = layer.name == "bead field - background (preview)"
    _settle()
    viewer.screenshot(str(HERE / "background.png"), canvas_only=False, flash=False)
    viewer.close()


def gain() -> None:
    viewer = build_viewer(show=True)
    viewer.window._qt_window.resize(1500, 900)
    _, widget = viewer.window.add_plugin_dock_widget("napari-camtrack", "Camera gain")
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
    viewer.screenshot(str(HERE / "gain.png"), canvas_only=False, flash=False)
    viewer.close()


if __name__ == "__main__":
    background()
    gain()
