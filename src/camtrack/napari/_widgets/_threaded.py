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


class _Count:
    """One progress bar's finished steps, counted by the worker and read by the GUI.

    The worker only adds to ``n`` and emits ``advanced`` when no emission is pending,
    so a fast loop queues one signal, not one per step (plain attribute access: the
    GIL orders it, and the GUI clears ``pending`` before it reads ``n``).
    """

    __slots__ = ("n", "pending")

    def __init__(self) -> None:
        self.n = 0
        self.pending = False


def _ticker(inline: Any):
    from qtpy.QtCore import QObject, Signal

    class Ticker(QObject):
        """Progress signals, emitted by the worker, handled in the GUI thread.

        napari's progress bar widget calls ``QApplication.processEvents()`` on every
        value it shows, so a slot that updates it runs the signals queued behind it
        inside itself. One queued signal per step made that a recursion as deep as the
        steps waiting, and a fast run (hundreds of steps queued) hit Python's recursion
        limit inside a Qt slot, after which the event loop stopped. Steps are counted
        (:class:`_Count`) and shown in one update, and a slot entered again from inside
        an update returns at once: the running update shows what came in meanwhile.
        """

        started = Signal(int, str, object)  # total, description, its _Count
        advanced = Signal(object)  # the _Count
        closed = Signal(object)  # the _Count

        def __init__(self, inline: Any) -> None:
            super().__init__()
            self.bar = None
            self.inline = inline  # the widget's own magicgui ProgressBar
            self.count: _Count | None = None  # the bar shown now
            self.shown = 0
            self._updating = False
            # Queued from the worker: they may arrive after the widget was closed.
            self.started.connect(while_alive(self._start))
            self.advanced.connect(while_alive(self._advance))
            self.closed.connect(while_alive(self._close))

        def _start(self, total: int, desc: str, count: _Count) -> None:
            from napari.utils import progress as napari_progress

            self._close(self.count)
            self.count, self.shown = count, 0
            # max 0 makes Qt draw a busy bar when the total is unknown
            self.inline.min, self.inline.max, self.inline.value = 0, max(int(total), 0), 0
            self.inline.label = desc
            self.inline.native.setFormat(f"{desc}: %p%" if total else desc)
            self.inline.visible = True
            bar = napari_progress(total=total or None, desc=desc)  # may run queued slots
            if self.count is not count:  # closed or replaced meanwhile
                bar.close()
                return
            self.bar = bar
            if self.shown:
                bar.update(self.shown)  # the steps counted while it was made
            self._advance(count)

        def _advance(self, count: _Count) -> None:
            if count is not self.count or self._updating:
                return
            self._updating = True
            try:
                while count is self.count:
                    count.pending = False  # before reading n: a later step emits again
                    delta = count.n - self.shown
                    if delta <= 0:
                        break
                    self.shown += delta
                    if self.inline.max:
                        self.inline.value = min(self.shown, self.inline.max)
                    if self.bar is not None:
                        self.bar.update(delta)  # napari processes events here
            finally:
                self._updating = False

        def _close(self, count: _Count | None) -> None:
            if count is None or count is not self.count:
                return  # an earlier bar's late signal
            if self.inline.max:  # the last steps, even if no update showed them
                self.inline.value = min(count.n, self.inline.max)
            self.count = None
            bar, self.bar = self.bar, None
            if bar is not None:
                bar.close()

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
            count = _Count()
            ticker.started.emit(int(total or 0), desc, count)
            try:
                for item in iterable:
                    if cancel.is_set():
                        raise Cancelled
                    yield item
                    count.n += 1
                    if not count.pending:
                        count.pending = True
                        ticker.advanced.emit(count)
            finally:
                ticker.closed.emit(count)

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
