"""The GL-context guard against napari's segfault after a layer removal.

napari >= 0.6.3 flushes GL commands on layer removal with the wrong GL context current;
on Mesa/Xvfb the next paint segfaults (docs/known-issues.md). A segfault would kill
pytest, so the viewer scenarios run in a child Python (it inherits pytest-xvfb's
DISPLAY) with faulthandler on, and the test reads its exit status and output.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("napari")

from camtrack.napari._glguard import guard_gl_context_on_layer_removal

MARKER = "CAMTRACK-GL-OK"
# A hang guard only: each child takes about 5-10 s (napari import and one viewer).
CHILD_TIMEOUT_S = 120

PRELUDE = """
import faulthandler, json, sys
faulthandler.enable()
import numpy as np
import napari
from qtpy.QtWidgets import QApplication

def pump():  # let napari paint (a few event-loop turns)
    for _ in range(5):
        QApplication.processEvents()
"""

# docs/known-issues.md "Smallest reproduction": 3-D + 2-D image, remove the 3-D one.
MINIMAL = """
viewer = napari.Viewer()
if GUARD:
    from camtrack.napari._glguard import guard_gl_context_on_layer_removal
    guard_gl_context_on_layer_removal(viewer)
viewer.add_image(np.zeros((20, 64, 64), np.float32), name="stack")
viewer.add_image(np.zeros((64, 64), np.float32), name="frame")
pump()
viewer.layers.remove("stack")  # dims 3 -> 2; napari flushes GL commands here
pump()                         # unguarded: SIGSEGV in glDrawArrays
print(MARKER, flush=True)
viewer.close()
"""

# The layer kinds the Bead tracking widget makes, with the widget open (its __init__
# installs the guard); then a canvas screenshot of a newly added image.
WIDGET = """
from camtrack.napari import _glguard
from camtrack.napari._widgets import TrackingWidget

viewer = napari.Viewer()
rng = np.random.default_rng(0)
viewer.add_image(rng.random((20, 64, 64), dtype=np.float32), name="stack")
widget = TrackingWidget(viewer)
viewer.window.add_dock_widget(widget, name="Bead tracking")
assert viewer.layers in _glguard._GUARDED, "the widget did not install the guard"
t = np.repeat(np.arange(20.0), 5)
bead = np.tile(np.arange(5), 20)
yx = 10.0 + 8 * np.column_stack([bead, bead])
viewer.add_points(np.column_stack([t, yx]), features={"bead": bead}, name="tracked")
viewer.add_tracks(np.column_stack([bead, t, yx]), name="tracks")
pump()
viewer.layers.remove("stack")
pump()
viewer.layers.remove("tracked")
pump()  # unguarded: SIGSEGV in glDrawElements / glDrawArrays
ramp = np.broadcast_to(np.linspace(0, 1, 256, dtype=np.float32), (256, 256))
viewer.add_image(np.ascontiguousarray(ramp), name="ramp", colormap="gray")
viewer.reset_view()
pump()
shot = viewer.screenshot(canvas_only=True, flash=False)
grey = shot[..., :3].astype(int).mean(axis=-1)
print(MARKER, json.dumps({"shape": list(shot.shape), "max": int(shot[..., :3].max()),
                          "levels": int(np.unique(grey).size)}), flush=True)
viewer.close()
"""


def _run(tmp_path, body: str, *, guard: bool) -> subprocess.CompletedProcess:
    script = tmp_path / "scenario.py"
    script.write_text(
        textwrap.dedent(PRELUDE) + f"GUARD = {guard!r}\nMARKER = {MARKER!r}\n" + body
    )
    return subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        env={**os.environ, "PYTHONFAULTHANDLER": "1"},
    )


def _segfaulted(proc: subprocess.CompletedProcess) -> bool:
    return proc.returncode == -signal.SIGSEGV or "Segmentation fault" in proc.stderr


def _report(proc: subprocess.CompletedProcess) -> str:
    return (
        f"exit {proc.returncode}\nstdout:\n{proc.stdout[-2000:]}\nstderr:\n{proc.stderr[-4000:]}"
    )


needs_display = pytest.mark.skipif(
    not os.environ.get("DISPLAY"), reason="needs an X display (pytest-xvfb or a desktop)"
)


@needs_display
def test_napari_without_the_guard_still_segfaults(tmp_path):
    """Is the upstream bug still there? Passes while it is; skips once napari (or this
    platform's GL driver) no longer crashes, which is the sign to drop the guard."""
    proc = _run(tmp_path, MINIMAL, guard=False)
    if not _segfaulted(proc):
        # Anything but a clean run or a segfault is a broken scenario, not a finding.
        assert proc.returncode == 0 and MARKER in proc.stdout, _report(proc)
        pytest.skip(
            "plain napari no longer segfaults after a layer removal here: the guarded "
            "tests below are no regression check on this platform; see whether "
            "camtrack/napari/_glguard.py can go (docs/known-issues.md)"
        )
    assert MARKER not in proc.stdout  # it died on the paint after the removal


@needs_display
def test_guard_prevents_the_segfault(tmp_path):
    proc = _run(tmp_path, MINIMAL, guard=True)
    assert proc.returncode == 0 and MARKER in proc.stdout, _report(proc)


@needs_display
def test_tracking_widget_viewer_survives_removals_and_renders(tmp_path):
    proc = _run(tmp_path, WIDGET, guard=True)
    assert proc.returncode == 0 and MARKER in proc.stdout, _report(proc)
    stats = json.loads(proc.stdout.split(MARKER, 1)[1].strip().splitlines()[0])
    assert stats["shape"][0] > 0 and stats["shape"][1] > 0
    assert stats["max"] > 0  # not all black
    # The ramp spans 256 grey values across the canvas; an empty or stale canvas
    # shows a handful (background, track lines).
    assert stats["levels"] > 50, stats


# -- the hook itself (no GL: a stand-in canvas widget) ----------------------------------
class _FakeGLWidget:
    def __init__(self) -> None:
        self.calls = 0
        self.deleted = False

    def isValid(self) -> bool:
        if self.deleted:
            raise RuntimeError("wrapped C/C++ object has been deleted")
        return True

    def makeCurrent(self) -> None:
        self.calls += 1


def _fake_viewer():
    from napari.components import LayerList

    gl = _FakeGLWidget()
    window = SimpleNamespace(_qt_viewer=SimpleNamespace(canvas=SimpleNamespace(native=gl)))
    return SimpleNamespace(layers=LayerList(), window=window), gl


def test_guard_is_installed_once_and_runs_before_removal():
    from napari.layers import Image

    viewer, gl = _fake_viewer()
    for _ in range(3):  # three widgets on one viewer
        guard_gl_context_on_layer_removal(viewer)
    viewer.layers.append(Image(np.zeros((4, 4)), name="a"))
    seen = []
    viewer.layers.events.removed.connect(lambda e: seen.append(gl.calls))
    viewer.layers.remove("a")
    assert seen == [1]  # made current once, before napari's `removed` handlers


def test_guard_without_qt_window_or_after_the_canvas_is_deleted():
    from napari.components import LayerList
    from napari.layers import Image

    headless = SimpleNamespace(layers=LayerList())  # no window: a no-op
    guard_gl_context_on_layer_removal(headless)
    headless.layers.append(Image(np.zeros((4, 4)), name="a"))
    headless.layers.remove("a")

    viewer, gl = _fake_viewer()
    guard_gl_context_on_layer_removal(viewer)
    viewer.layers.append(Image(np.zeros((4, 4)), name="a"))
    gl.deleted = True  # viewer closed: Qt deleted the canvas widget
    viewer.layers.remove("a")  # no RuntimeError
    assert gl.calls == 0
