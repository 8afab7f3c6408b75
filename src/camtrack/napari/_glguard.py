"""Work around napari's segfault on the first paint after a layer removal.

napari >= 0.6.3 (napari PR #8122) flushes the removed layer's queued GL deletions
(``VispyCanvas._clean_and_update_scenegraph``: ``gc.collect()`` then
``context.finish()``) from the ``layers.events.removed`` handler, outside ``paintGL``,
while another GL context (Qt's compositing one) is current. On Mesa (llvmpipe, Xvfb)
the next paint of a surviving layer then segfaults in ``glDrawArrays`` /
``glDrawElements``. Making the canvas' own context current just before napari handles
the removal avoids it; see docs/known-issues.md for the measurements and the report
for napari. Remove this module once napari ships a fix (rerun the known-issues
reproduction on the new release to check).
"""

from __future__ import annotations

import warnings
import weakref
from typing import Any

# Viewers (their layer lists) that already carry the guard: one hook per viewer however
# many camtrack widgets are opened on it. Weak, so a closed viewer is not kept alive.
_GUARDED: weakref.WeakSet[Any] = weakref.WeakSet()


def guard_gl_context_on_layer_removal(viewer: Any) -> None:
    """Make the viewer canvas' GL context current whenever a layer is about to be removed.

    Idempotent per viewer. Does nothing for a viewer without a Qt window (headless, or
    a stand-in in tests); the hook does nothing once the canvas widget is deleted
    (viewer closed).

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer whose canvas to guard.

    Notes
    -----
    Hooked on ``layers.events.removing`` (emitted before ``removed``, where napari
    flushes) and, on napari >= 0.7, on ``end_batch`` with ``position="first"``, so it
    runs before napari's own handler after batched removals. Leaving the canvas'
    context current afterwards is harmless: Qt makes its own context current before it
    composites. ``viewer.window._qt_viewer`` is private napari API, hence the fallbacks.
    """
    try:
        layers = viewer.layers
        with warnings.catch_warnings():
            # napari >= 0.8 warns on private access from plugin code; the canvas has
            # no public handle, and the guard is removed once napari is fixed.
            warnings.simplefilter("ignore", FutureWarning)
            gl_widget = viewer.window._qt_viewer.canvas.native  # vispy's QOpenGLWidget
    except AttributeError:  # no Qt window (headless viewer)
        return
    if not hasattr(gl_widget, "makeCurrent"):
        return
    try:
        if layers in _GUARDED:
            return
        _GUARDED.add(layers)
    except TypeError:  # not weak-referenceable: fall back to a mark on the widget
        if getattr(gl_widget, "_camtrack_gl_guard", False):
            return
        gl_widget._camtrack_gl_guard = True
    # A weak reference: the hook must not keep a closed viewer's canvas wrapper alive.
    widget_ref = weakref.ref(gl_widget)

    def _make_canvas_current(event: Any = None) -> None:
        widget = widget_ref()
        if widget is None:
            return
        try:
            if widget.isValid():  # False before the first show: nothing drawn yet
                widget.makeCurrent()
        except RuntimeError:  # the canvas widget is already deleted (viewer closed)
            pass

    layers.events.removing.connect(_make_canvas_current)
    if hasattr(layers.events, "end_batch"):  # napari >= 0.7 also removes in batches
        layers.events.end_batch.connect(_make_canvas_current, position="first")
