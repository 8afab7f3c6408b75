"""What the widgets share for long runs: a cancellable progress bar, a thread worker,
and errors shown as notifications.

The engine reports progress from the worker thread; Qt widgets (napari's progress bars
included) may only be touched from the GUI thread. So the worker only emits Qt signals
of a QObject made in the GUI thread (queued across threads), and the slots advance the
widget's own progress bar (under its Run button: napari's bar sits in the activity
panel, closed by default) and napari's there.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable
from typing import Any


class Cancelled(Exception):
    """Raised inside the engine's progress loop when the user presses Cancel."""


def _ticker(inline: Any):
    from qtpy.QtCore import QObject, Signal

    class Ticker(QObject):
        """Progress signals, emitted by the worker, handled in the GUI thread."""

        started = Signal(int, str)  # total, description
        advanced = Signal()
        closed = Signal()

        def __init__(self, inline: Any) -> None:
            super().__init__()
            self.bar = None
            self.inline = inline  # the widget's own magicgui ProgressBar
            # Queued from the worker: they may arrive after the widget was closed.
            self.started.connect(while_alive(self._start))
            self.advanced.connect(while_alive(self._advance))
            self.closed.connect(while_alive(self._close))

        def _start(self, total: int, desc: str) -> None:
            from napari.utils import progress as napari_progress

            self._close()
            self.bar = napari_progress(total=total or None, desc=desc)
            # max 0 makes Qt draw a busy bar when the total is unknown
            self.inline.min, self.inline.max, self.inline.value = 0, max(int(total), 0), 0
            self.inline.label = desc
            self.inline.native.setFormat(f"{desc}: %p%" if total else desc)
            self.inline.visible = True

        def _advance(self) -> None:
            if self.bar is not None:
                self.bar.update(1)
            if self.inline.max:
                self.inline.value = min(self.inline.value + 1, self.inline.max)

        def _close(self) -> None:
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    return Ticker(inline)


class ThreadedRun:
    """Mixin for a magicgui Container with ``start_button``, ``cancel_button`` and a
    ``status`` label: runs one engine call at a time in a napari thread worker."""

    start_button: Any
    cancel_button: Any
    status: Any

    def _init_threaded(self) -> None:
        from magicgui.widgets import ProgressBar

        self._cancel = threading.Event()
        self._worker = None
        # One event per worker this widget started (runs, previews, checks), set when
        # its function returns: closing the widget (or the viewer) cancels and waits
        # for them (halt_workers, given the event and the list, not the widget).
        self._running: list[threading.Event] = []
        self.native.destroyed.connect(functools.partial(halt_workers, self._cancel, self._running))
        # The run's progress, right under the Run and Cancel buttons (hidden when idle).
        self.progress_bar = ProgressBar(value=0, min=0, max=1, visible=False)
        self.insert(list(self).index(self.cancel_button) + 1, self.progress_bar)
        self._ticker = _ticker(self.progress_bar)
        self.cancel_button.changed.connect(self._cancel.set)
        self.cancel_button.changed.connect(self._on_cancel)
        tidy_panel(self)

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
        self._cancel.clear()
        self.start_button.enabled, self.cancel_button.enabled = False, True
        self.progress_bar.min, self.progress_bar.max, self.progress_bar.value = 0, 0, 0
        self.progress_bar.native.setFormat(status)
        self.progress_bar.visible = True  # busy until the engine reports a total
        self.status.value = status
        # Connecting `errored` up front keeps superqt from re-raising engine errors in
        # the main thread: they become notifications instead of traceback dialogs.
        self._worker = self._spawn(
            func,
            *args,
            _connect={
                "returned": while_alive(returned),
                "errored": while_alive(self._worker_error),
                "finished": while_alive(self._done),
            },
        )

    def _spawn(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``napari.qt.threading.create_worker(func, *args, **kwargs)``, registered so
        that closing the widget cancels and waits for it (:func:`halt_workers`). Every
        worker a widget starts goes through here."""
        from napari.qt.threading import create_worker

        done = threading.Event()
        self._running[:] = [e for e in self._running if not e.is_set()]
        self._running.append(done)

        @functools.wraps(func)
        def call(*a: Any, **k: Any) -> Any:
            try:
                return func(*a, **k)
            finally:
                done.set()

        return create_worker(call, *args, **kwargs)

    def _on_cancel(self, *_: Any) -> None:
        if self._worker is not None:
            self.status.value = "cancelling ..."

    def _worker_error(self, exc: BaseException) -> None:
        if isinstance(exc, Cancelled):
            self.status.value = "cancelled (nothing was changed)"
            return
        self._failed()
        self._error(exc)

    def _done(self) -> None:
        self.start_button.enabled, self.cancel_button.enabled = True, False
        self.progress_bar.visible = False
        self._worker = None

    def _error(self, exc: BaseException) -> None:
        from napari.utils.notifications import show_error

        self.status.value = f"error: {exc}"
        show_error(str(exc))

    def _failed(self) -> None:
        """Called when a run fails: clear or grey the results it would have replaced
        (the widgets override it), so nothing stale sits under the error."""


# How long closing a widget waits for its workers (s): a cancelled run stops at its
# next progress step; a preview or a stuck-bead check finishes (seconds at most).
HALT_WAIT_S = 30.0


def halt_workers(cancel: threading.Event, running: list[threading.Event], *_: Any) -> None:
    """Cancel a closed widget's workers and wait (up to HALT_WAIT_S) until they end.

    Connected to the widget's ``destroyed`` signal with the widget's cancel event and
    its workers' done events (the widget itself is gone by then). Without it a run or
    a stuck-bead check went on computing (through dask, in a pool thread) after its
    viewer closed, its signals aimed at deleted widgets; one such worker outliving its
    viewer once crashed a test process. The engine's progress loops raise
    :class:`Cancelled` at their next step; the slots of the finished workers arrive
    later and do nothing (:func:`while_alive`).
    """
    cancel.set()
    deadline = time.monotonic() + HALT_WAIT_S
    for done in list(running):
        done.wait(max(0.0, deadline - time.monotonic()))


def while_alive(slot: Callable[..., Any]) -> Callable[..., Any]:
    """A worker's result slot that does nothing once its widget's Qt objects are gone.

    A worker started before the viewer (or the dock) was closed still returns into
    the GUI thread; its slot then touches deleted Qt widgets, and Qt raises
    ``RuntimeError: wrapped C/C++ object ... has been deleted``. That run's result has
    nowhere to go, so it is dropped; any other error propagates.
    """

    @functools.wraps(slot)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return slot(*args, **kwargs)
        except RuntimeError as exc:
            if "has been deleted" in str(exc):
                return None
            raise

    return wrapped


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


# The dock's widest: enough for the longest field label plus a spin box; wider panels
# squeeze the canvas on a 1920 px screen.
PANEL_MAX_WIDTH = 520
# Lines a status or result label shows at most (a gain result takes four).
MESSAGE_LINES = 5


def tidy_panel(container: Any) -> None:
    """Keep a widget panel within PANEL_MAX_WIDTH: labels wrap, and a text that still
    does not fit (a long path) is clipped with the full text in its tooltip."""
    from magicgui.widgets import Label
    from qtpy.QtWidgets import QSizePolicy

    container.native.setMaximumWidth(PANEL_MAX_WIDTH)
    for widget in container:
        if not isinstance(widget, Label):
            continue
        label = widget.native
        label.setWordWrap(True)
        # An unbreakable word must not widen the panel: a set minimum width replaces
        # the label's minimum size hint (its longest word). (A Minimum vertical policy
        # with height-for-width made Qt size the dock for a 1 px wide label: 3000 px.)
        label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        # Nor may a long error grow the window's height: the label asks for its
        # wrapped height (at most MESSAGE_LINES lines) but makes do with one line
        # where the window has no room (the whole text is in the tooltip and in the
        # notification). An explicit minimum size replaces the minimum size hint.
        lines = label.fontMetrics().lineSpacing()
        label.setMinimumSize(1, lines + 4)
        label.setMaximumHeight(MESSAGE_LINES * lines + 4)


def message_label(value: str = "") -> Any:
    """A magicgui Label for status and result lines: wraps (see :func:`tidy_panel`)
    and keeps its whole text in the tooltip, for text clipped by the panel width."""
    from magicgui.widgets import Label

    class MessageLabel(Label):
        def set_value(self, value: Any) -> None:
            super().set_value(value)
            self.native.setToolTip(str(value))

    return MessageLabel(value=value)
