"""Live-preview cost of the Bead tracking widget: one frame, many beads.

What the widget does on a frame-slider or parameter change: cut one ROI per bead out
of the current frame (``crop_rois``) and track them with the Z-LUT (``track_rois``).
The budget is "well under 100 ms for 50 beads" on a 512x512 frame; the table gives the
median of ``--repeat`` runs and its ratio to that budget.

Usage: ``python benchmarks/bench_preview.py [--beads 50] [--repeat 15]``; JSON to
``benchmarks/results/bench_preview.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from camtrack.simulate import bead_rois, zsweep
from camtrack.tracking import build_zlut, crop_rois, track_rois

BUDGET_S = 0.100


def frame_with_beads(n: int, size: int, rng: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A uint16 frame tiled with ``n`` simulated beads (8 x 8 cells for 50 beads of 64 px:
    448 x 576), and their centres."""
    gen = np.random.default_rng(rng)
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    c = (size - 1) / 2
    x = c + gen.uniform(-1, 1, n)
    y = c + gen.uniform(-1, 1, n)
    z = gen.uniform(-4000, 4000, n)
    rois, _ = bead_rois(x, y, z, roi_size=size, rng=rng + 1)
    cell, pad = size + 8, 4  # a margin so every ROI fits whatever the sub-pixel offset
    frame = np.full((rows * cell, cols * cell), np.median(rois), dtype=rois.dtype)
    centres = []
    for k in range(n):
        r, q = divmod(k, cols)
        y0, x0 = r * cell + pad, q * cell + pad
        frame[y0 : y0 + size, x0 : x0 + size] = rois[k]
        centres.append((x0 + x[k], y0 + y[k]))
    return frame, np.asarray(centres)


def run(n: int, size: int, mode: str, repeat: int) -> dict:
    planes = np.arange(-4500.0, 4501.0, 100.0)
    calib, ct = zsweep(planes, roi_size=size, frames_per_plane=4, rng=3)
    lut = build_zlut(calib, ct.z_nm, mode=mode)
    frame, xy = frame_with_beads(n, size)

    def preview() -> None:
        rois, _, _ = crop_rois(frame, xy[:, 0], xy[:, 1], size)
        track_rois(rois, zlut=lut, mode=mode)

    preview()  # warm caches (radial operators, FFT plans)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        preview()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return {"beads": n, "roi": size, "mode": mode, "frame": list(frame.shape),
            "median_s": med, "all_s": times, "budget_ratio": med / BUDGET_S}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--beads", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--json", type=Path, default=Path(__file__).with_name("results") / "bench_preview.json")  # fmt: skip
    args = ap.parse_args()
    rows = [run(args.beads, s, m, args.repeat) for s in (48, 64) for m in ("precise", "fast")]
    print(f"{'beads':>5} {'roi':>4} {'mode':>8} {'frame':>10} {'median ms':>10} {'/ 100 ms':>9}")
    for r in rows:
        shape = "x".join(str(v) for v in r["frame"])
        print(f"{r['beads']:>5} {r['roi']:>4} {r['mode']:>8} {shape:>10} "
              f"{1e3 * r['median_s']:>10.1f} {r['budget_ratio']:>9.2f}")  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
