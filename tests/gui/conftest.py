"""GUI test hooks: no widget worker outlives its test.

A widget's thread workers (Find beads' stuck-bead check, previews, runs) may still be
computing when a test's body returns; one that ran on while its viewer closed and the
next test started once crashed the test process. After each GUI test's body, before
its fixtures (the viewer) are torn down, every worker is waited for and its last
signals delivered, so each test ends with none running.
"""

from __future__ import annotations

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    yield
    from qtpy.QtWidgets import QApplication
    from superqt.utils._qthreading import WorkerBase

    if not WorkerBase._worker_set:
        return
    WorkerBase.await_workers(msecs=120_000)
    app = QApplication.instance()
    if app is not None:
        app.processEvents()
