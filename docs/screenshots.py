"""Regenerate the documentation screenshots: `xvfb-run -a python docs/screenshots.py`."""

from pathlib import Path

from qtpy.QtWidgets import QApplication

from camtrack._demo import build_viewer

HERE = Path(__file__).parent / "images"


def main() -> None:
    viewer = build_viewer(show=True)
    viewer.window._qt_window.resize(1400, 850)
    _, widget = viewer.window.add_plugin_dock_widget("napari-camtrack", "Background")
    widget.image.value = viewer.layers["beads"]
    widget.method.value = "temporal median"
    viewer.dims.set_current_step(0, 120)
    widget.update_preview()
    for layer in viewer.layers:
        layer.visible = layer.name == "beads - background (preview)"
    app = QApplication.instance()
    for _ in range(20):
        app.processEvents()
    viewer.screenshot(str(HERE / "background.png"), canvas_only=False, flash=False)
    viewer.close()


if __name__ == "__main__":
    main()
