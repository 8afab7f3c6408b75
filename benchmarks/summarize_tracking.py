"""Medians over several bench_tracking.py runs: speed, same-run ratios, 2-core scaling.

The host is shared and its speed drifts by tens of percent between minutes, so one run's
ROI/s is a noisy sample; the ratio to MagTrack measured in the same run is steadier.
This prints, per case and mode, the median over the runs of camtrack's ROI/s (1 and 2
cores), MagTrack's, the per-run speed ratio and the per-run 2-core / 1-core speed-up.
Accuracy does not vary between runs (same seed), so it is taken from the first file.

Run::

    .venv/bin/python benchmarks/summarize_tracking.py run1.json run2.json run3.json
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def main(paths: list[str]) -> None:
    runs = [json.loads(Path(p).read_text()) for p in paths]
    print(f"{len(runs)} runs: " + ", ".join(paths))
    head = "case                     mode      ROI/s 1c  ROI/s 2c  2c/1c  magtrack  speed ratio (runs)"  # fmt: skip
    print(head)
    for i, case in enumerate(runs[0]["cases"]):
        label = f"{case.get('model', 'ours')} {case['size']} px {case['level']}{' clip' if case['clip'] else ''}"
        mt = [r["cases"][i]["magtrack"].get("rois_per_s") for r in runs]
        for mode in ("precise", "fast"):
            ct = [r["cases"][i]["camtrack"][mode] for r in runs]
            one = [c["rois_per_s"] for c in ct]
            two = [c.get("rois_per_s_2core") for c in ct]
            ratio = [a / m for a, m in zip(one, mt, strict=True) if m]
            scale = [b / a for a, b in zip(one, two, strict=True) if b]
            med = statistics.median
            print(
                f"{label:24s} {mode:8s} {med(one):9.0f} "
                + (f"{med([t for t in two if t]):9.0f} {med(scale):6.2f}" if scale else f"{'-':>9s} {'-':>6s}")
                + (f" {med([m for m in mt if m]):9.0f} {med(ratio):6.1f} ({', '.join(f'{r:.1f}' for r in ratio)})" if ratio else "")
            )  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
