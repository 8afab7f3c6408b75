"""What the widgets share for long runs: a cancellable progress bar, a thread worker,
and errors shown as notifications.

The engine reports progress from the worker thread; Qt widgets (napari's progress bars
included) may only be touched from the GUI thread. So the worker only emits Qt signals
of a QObject made in the GUI thread (queued across threads), and the slots create,
advance and close the napari progress bar there.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any


class Cancelled(Exception):
    """Raised inside the engine's progress loop when the user presses Cancel."""


def _ticker():
    from qtpy.QtCore import QObject, Signal

    class Ticker(QObject):
        """Progress signals, emitted by the worker, handled in the GUI thread."""

        started = Signal(int, str)  # total, description
        advanced = Signal()
        closed = Signal()

        def __init__(self) -> None:
            super().__init__()
            self.bar = None
            self.started.connect(self._start)
            self.advanced.connect(self._advance)
            self.closed.connect(self._close)

        def _start(self, total: int, desc: str) -> None:
            from napari.utils import progress as napari_progress

            self._close()
            self.bar = napari_progress(total=total or None, desc=desc)

        def _advance(self) -> None:
            if self.bar is not None:
                self.bar.update(1)

        def _close(self) -> None:
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    return Ticker()


class ThreadedRun:
    """Mixin for a magicgui Container with ``start_button``, ``cancel_button`` and a
    ``status`` label: runs one engine call at a time in a napari thread worker."""

    start_button: Any
    cancel_button: Any
    status: Any

    def _init_threaded(self) -> None:
        self._cancel = threading.Event()
        self._worker = None
        self._ticker = _ticker()
        self.cancel_button.changed.connect(self._cancel.set)

    def _progress(self, desc: str) -> Callable[..., Any]:
        """A tqdm-like progress callable for the engine (called in the worker thread)
        that honours Cancel and drives a napari progress bar in the GUI thread."""
        cancel, ticker = self._cancel, self._ticker

        def wrap(iterable, total=None):
            ticker.started.emit(int(total or 0), desc)
            try:
                for item in iterable:
                    if cancel.is_set():
                        raise Cancelled
                    yield item
                    ticker.advanced.emit()
            finally:
                ticker.closed.emit()

        return wrap

    def _start(
        self, func: Callable[..., Any], *args: Any, returned: Callable, status: str
    ) -> None:
        """Run ``func(*args)`` in a thread worker; ``returned(result)`` in the GUI thread."""
        from napari.qt.threading import create_worker

        self._cancel.clear()
        self.start_button.enabled, self.cancel_button.enabled = False, True
        self.status.value = status
        # Connecting `errored` up front keeps superqt from re-raising engine errors in
        # the main thread: they become notifications instead of traceback dialogs.
        self._worker = create_worker(
            func,
            *args,
            _connect={"returned": returned, "errored": self._worker_error, "finished": self._done},
        )

    def _worker_error(self, exc: BaseException) -> None:
        if isinstance(exc, Cancelled):
            self.status.value = "cancelled"
            return
        self._error(exc)

    def _done(self) -> None:
        self.start_button.enabled, self.cancel_button.enabled = True, False
        self._worker = None

    def _error(self, exc: BaseException) -> None:
        from napari.utils.notifications import show_error

        self.status.value = f"error: {exc}"
        show_error(str(exc))


def deferred(func: Callable[[], Any], parent: Any) -> Callable[..., None]:
    """A slot that runs ``func()`` once from the Qt event loop, after the event that
    fired it (and any burst of such events) has been handled.

    Previews connect the viewer's ``dims.events.current_step`` through it: adding a
    layer changes the dims, and adding a preview layer from inside that insertion
    event corrupts napari's layer-list model (Qt aborts while painting it). Dragging
    the frame slider also coalesces into one preview per event-loop turn. The timer
    is a child of ``parent`` (the widget's QWidget), so it dies with the widget and
    never fires into deleted widgets.
    """
    from qtpy.QtCore import QTimer

    timer = QTimer(parent)
    timer.setSingleShot(True)
    timer.setInterval(0)
    timer.timeout.connect(func)

    def slot(*_: Any) -> None:
        # After the widget (and its timer) was closed there is nothing to do.
        with contextlib.suppress(RuntimeError):
            timer.start()

    slot.timer = timer  # type: ignore[attr-defined]  # keep the QTimer alive
    return slot
