"""``camtrack demo``: the sample data in napari, or a headless batch run of the engine."""

from __future__ import annotations

from pathlib import Path

PLUGIN = "napari-camtrack"
SAMPLES = ("flat_field", "beads")


def _widget_names() -> list[str]:
    """Every widget the plugin contributes (the demo docks all of them)."""
    from npe2 import PluginManager

    manifest = PluginManager.instance().get_manifest(PLUGIN)
    return [w.display_name for w in (manifest.contributions.widgets or [])]


def build_viewer(*, show: bool = True):
    """A napari viewer with both sample data sets and every camtrack widget docked."""
    import napari

    viewer = napari.Viewer(title="napari-camtrack demo", show=show)
    for key in SAMPLES:
        viewer.open_sample(PLUGIN, key)
    # The flat field is the first thing to look at: show it on top, others hidden.
    for layer in viewer.layers:
        layer.visible = layer.metadata.get("sample") == "flat_field"
    for name in _widget_names():
        viewer.window.add_plugin_dock_widget(PLUGIN, name, tabify=True)
    return viewer


def run_gui(*, screenshot: Path | None = None) -> int:
    """Open the demo viewer; with ``screenshot`` save a PNG and close instead."""
    import napari

    viewer = build_viewer(show=True)
    if screenshot is None:
        napari.run()
        return 0
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication

    viewer.window._qt_window.resize(1400, 850)

    def _shoot() -> None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        viewer.screenshot(str(screenshot), canvas_only=False, flash=False)
        print(f"camtrack demo: screenshot written to {screenshot}")
        viewer.close()

    QTimer.singleShot(1500, _shoot)  # let docks and the canvas lay out first
    QApplication.instance().exec()
    return 0
