"""A worker that reports many steps at once must not make the GUI recurse.

napari's progress bar widget runs ``QApplication.processEvents()`` on every value it
shows, so a slot that updates it runs the signals queued behind it inside itself. With
one queued signal per step, a fast run nested as deep as the steps waiting, hit
Python's recursion limit inside a Qt slot and stopped the event loop (a CI run hung in
the pixel calibration test this way).
"""

from __future__ import annotations

import sys
import threading

import pytest

pytest.importorskip("napari")

from camtrack.napari._widgets import GainWidget


def _depth() -> int:
    frame, n = sys._getframe(), 0
    while frame is not None:
        n, frame = n + 1, frame.f_back
    return n


def test_a_burst_of_steps_is_shown_without_nesting(make_napari_viewer, qtbot, monkeypatch):
    from napari._qt.widgets.qt_progress_bar import QtLabeledProgressBar

    viewer = make_napari_viewer()
    widget = GainWidget(viewer)  # any widget with a threaded run
    viewer.window.add_dock_widget(widget, name="Camera gain")
    depths: list[int] = []
    values: list[int] = []
    set_value = QtLabeledProgressBar.setValue

    def spy(self, value):
        depths.append(_depth())
        values.append(int(value))
        set_value(self, value)

    monkeypatch.setattr(QtLabeledProgressBar, "setValue", spy)
    n = 60  # all queued before the GUI runs them: the old code nested 60 slots deep
    wrap = widget._progress("burst")
    release = threading.Event()

    def work() -> None:
        steps = wrap(range(2 * n), total=2 * n)
        for _ in range(n + 1):  # n steps done (a step counts when the next begins)
            next(steps)
        release.wait(30)  # the bar stays open until the test has looked
        for _ in steps:
            pass

    # The worker's steps all come in before the GUI thread handles the first.
    thread = threading.Thread(target=work)
    thread.start()
    qtbot.waitUntil(lambda: widget.progress_bar.value == n, timeout=10000)
    qtbot.wait(50)
    # Every step reached napari's bar too ...
    assert values and max(values) == n
    # ... without slots nested inside slots.
    assert max(depths) - min(depths) < 20, (min(depths), max(depths))
    release.set()
    thread.join()
    qtbot.waitUntil(lambda: widget._ticker.count is None and widget._ticker.bar is None, timeout=10000)  # fmt: skip
    assert widget.progress_bar.value == 2 * n


def test_steps_of_a_bar_closed_meanwhile_are_dropped(make_napari_viewer, qtbot):
    """A second run's bar replaces the first; the first's late steps change nothing."""
    viewer = make_napari_viewer()
    widget = GainWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Camera gain")
    ticker = widget._ticker
    first, second = widget._progress("first"), widget._progress("second")
    it1 = first(range(10), total=10)
    next(it1)  # the first bar starts (queued: emitted on this thread, runs at once)
    it2 = second(range(5), total=5)
    for _ in it2:
        pass
    assert widget.progress_bar.value == 5 and ticker.count is None
    for _ in it1:  # late steps and close of the replaced bar
        pass
    qtbot.wait(50)
    assert widget.progress_bar.value == 5 and ticker.bar is None
