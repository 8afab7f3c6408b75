"""How long the napari GUI thread stays blocked by the Background widget.

A 5 ms QTimer ticks in the GUI thread while the widget works; the longest gap
between two ticks is the longest freeze a user sees (the slider, the canvas and
the buttons do not react for that long). Two scenes on a lazily opened TIFF
(``--frames`` x 512 x 512 uint16, opened with the camtrack reader as dask):

1. *Apply* of each method, from the click to the result layers shown (the worker
   does the pass; what remains in the GUI thread is the freeze).
2. *Frame-slider steps* with the live preview on, for the temporal methods: the
   freeze per step and the time until the preview shows the new frame.

Run under a display: ``xvfb-run -a python benchmarks/bench_gui_freeze.py``; JSON to
``benchmarks/results/bench_gui_freeze.json``. Medians of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


class FreezeMeter:
    """Longest gap between ticks of a GUI-thread timer while ``run`` waits."""

    def __init__(self, app) -> None:
        from qtpy.QtCore import QTimer

        self.app = app
        self.last = time.perf_counter()
        self.worst = 0.0
        self.timer = QTimer()
        self.timer.setInterval(5)
        self.timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.worst = max(self.worst, now - self.last)
        self.last = now

    def measure(self, action, done, timeout: float = 300.0) -> tuple[float, float]:
        """(longest freeze, total time) of ``action()`` until ``done()`` is true."""
        self.worst = 0.0
        self.timer.start()
        t0 = self.last = time.perf_counter()
        action()
        while not done():
            self.app.processEvents()
            time.sleep(0.001)
            if time.perf_counter() - t0 > timeout:
                raise TimeoutError("the widget did not finish")
        # the result layers are drawn on the next turns of the event loop
        end = time.perf_counter() + 0.3
        while time.perf_counter() < end:
            self.app.processEvents()
            time.sleep(0.001)
        self._tick()
        self.timer.stop()
        return self.worst, time.perf_counter() - t0 - 0.3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument(
        "--source",
        choices=["tiff", "sample"],
        default="tiff",
        help="a lazily opened TIFF, or the lazily simulated flat-field sample",
    )
    parser.add_argument("--out", default="benchmarks/results/bench_gui_freeze.json")
    args = parser.parse_args()

    import napari
    import tifffile
    from qtpy.QtWidgets import QApplication

    from camtrack.napari._widgets import BackgroundWidget

    tmp = Path(tempfile.mkdtemp(prefix="camtrack-bench-"))
    path = tmp / "movie.tif"
    out = tifffile.memmap(path, shape=(args.frames, 512, 512), dtype=np.uint16)
    rng = np.random.default_rng(0)
    for a in range(0, args.frames, 100):
        out[a : a + 100] = rng.poisson(300.0, (min(100, args.frames - a), 512, 512))
    out.flush()
    del out

    viewer = napari.Viewer(show=True)
    app = QApplication.instance()
    if args.source == "sample":
        (layer,) = viewer.open_sample("napari-camtrack", "flat_field")
    else:
        (layer,) = viewer.open(path, plugin="napari-camtrack")
    widget = BackgroundWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Background")
    meter = FreezeMeter(app)
    results: dict[str, dict[str, float]] = {}

    methods = ["spatial mean", "temporal median", "rolling median", "sparse median",
               "frame statistic"]  # fmt: skip
    widget.preview.value = False
    for method in methods:
        widget.image.value = layer
        widget.method.value = method
        runs = [
            meter.measure(
                widget.apply_button.native.click,
                lambda: widget.apply_button.enabled and widget._worker is None,
            )
            for _ in range(args.repeat)
        ]
        results[f"apply: {method}"] = {
            "freeze_s": statistics.median(r[0] for r in runs),
            "total_s": statistics.median(r[1] for r in runs),
        }
        print(f"apply {method:16s} freeze {results[f'apply: {method}']['freeze_s']:.3f} s")

    for method in ("temporal median", "rolling median", "sparse median", "frame statistic"):
        widget.method.value = method
        widget.preview.value = True
        freezes, latencies = [], []
        for step in range(args.steps):
            t = 10 + 25 * step % (int(layer.data.shape[0]) - 10)
            name = f"preview background: {layer.name}"
            before = widget._preview_frame

            def shown(t=t, before=before) -> bool:
                return (
                    widget._preview_frame == t and getattr(widget, "_preview_worker", None) is None
                )

            f, total = meter.measure(lambda t=t: viewer.dims.set_current_step(0, t), shown)
            freezes.append(f)
            latencies.append(total)
            del name, before
        widget.preview.value = False
        results[f"slider step, preview: {method}"] = {
            "freeze_s": statistics.median(freezes),
            "preview_shown_s": statistics.median(latencies),
        }
        r = results[f"slider step, preview: {method}"]
        print(
            f"step  {method:16s} freeze {r['freeze_s']:.3f} s, shown after {r['preview_shown_s']:.3f} s"
        )

    frames = int(layer.data.shape[0])
    Path(args.out).write_text(
        json.dumps({"source": args.source, "frames": frames, "results": results}, indent=2)
    )
    viewer.close()


if __name__ == "__main__":
    main()
