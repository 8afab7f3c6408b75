"""Closing the viewer while a run is computing cancels the run and waits
for it: no worker outlives its widget."""

from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("napari")

from qtpy.QtCore import QCoreApplication, QEvent

from camtrack.napari._widgets import BackgroundWidget
from camtrack.napari._widgets._threaded import Cancelled


def _slow_engine(widget, log):
    """An engine call with a progress loop (as the engine's whole-stack passes): about
    100 s unless cancelled."""

    def run():
        log["started"].set()
        try:
            for _ in widget._progress("slow")(range(10_000)):
                time.sleep(0.01)
        except Cancelled:
            log["cancelled"] = True
            raise
        finally:
            log["ended"] = time.monotonic()
        return None

    return run


def _deliver_deferred_deletes():
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)
    QCoreApplication.processEvents()


def test_closing_the_viewer_mid_run_cancels_and_waits(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    widget = BackgroundWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Background")
    log = {"started": threading.Event(), "cancelled": False, "ended": None}
    widget._start(_slow_engine(widget, log), returned=lambda _: None, status="running ...")
    assert log["started"].wait(10.0)
    qtbot.wait(50)
    assert log["ended"] is None  # still computing

    t0 = time.monotonic()
    viewer.close()
    _deliver_deferred_deletes()
    # The widget's destroyed signal cancelled the run and waited for it to end.
    assert log["cancelled"] is True
    assert log["ended"] is not None and log["ended"] - t0 < 5.0


def test_every_widget_worker_is_registered():
    """Workers start only through ThreadedRun._spawn (so closing waits for them)."""
    from pathlib import Path

    import camtrack.napari._widgets as widgets

    folder = Path(widgets.__file__).parent
    direct = [p.name for p in folder.glob("*.py") if p.name != "_threaded.py" and "create_worker(" in p.read_text()]  # fmt: skip
    assert direct == [], f"start workers with self._spawn, not create_worker: {direct}"
