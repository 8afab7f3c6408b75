"""What a tracking run costs: the bead sample, and a long lazy stack (bounded memory).

Cases, each in a fresh child process (peak RSS its own, ``VmHWM`` reset after imports):

- ``sample``: the "Beads with calibration z-sweep" sample as the widget sees it (a lazy
  300-frame 256x256 field with 5 beads, rendered on the fly), its Z-LUT built from the
  sample sweep, ``track_beads`` over all frames. The time to render the frames alone
  (computing the lazy stack, no tracking) is measured too, so tracking = total - render.
- ``lazy``: a lazily generated stack of ``--lazy-gb`` GB (one 512x512 frame of 16 beads
  from the simulator plus fresh shot noise per 16-frame chunk), tracked 64 frames at a
  time in ``fast`` mode: the peak extra RAM must not grow with the stack. Its time
  includes generating the noise.

Usage: ``python benchmarks/bench_track_sample.py [--lazy-gb 1 4]``; JSON to
``benchmarks/results/bench_track_sample.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _memory import reset_peak_rss, vm_kib  # noqa: E402


def child_sample() -> dict:
    from camtrack.napari._sample_data import beads
    from camtrack.tracking import build_zlut, track_beads

    (field, fmeta, _), (sweep, smeta, _) = beads()
    table = {k: np.asarray(v) for k, v in fmeta["metadata"]["truth_table"].items()}
    first = table["frame"] == 0
    start = np.c_[table["x"][first], table["y"][first]]
    t0 = time.perf_counter()
    lut = build_zlut(np.asarray(sweep), smeta["metadata"]["z_nm"])
    t_lut = time.perf_counter() - t0
    before = vm_kib("VmRSS")
    reset_peak_rss()
    t0 = time.perf_counter()
    res = track_beads(field, start, roi_size=lut.roi_size, zlut=lut)  # lazy, as the widget
    t_total = time.perf_counter() - t0
    peak = (vm_kib("VmHWM") - before) / 1024
    t0 = time.perf_counter()
    frames = np.asarray(field)  # rendering the lazy frames alone
    t_render = time.perf_counter() - t0
    t0 = time.perf_counter()
    track_beads(frames, start, roi_size=lut.roi_size, zlut=lut)
    t_track = time.perf_counter() - t0
    t, b = field.shape[0], start.shape[0]
    order = np.lexsort((table["bead"], table["frame"]))
    err = {k: res_k.reshape(t, b) - table[tk][order].reshape(t, b)
           for k, res_k, tk in (("x", res.x, "x"), ("y", res.y, "y"), ("z", res.z, "z_nm"))}  # fmt: skip
    return {
        "case": "sample", "frames": int(t), "beads": int(b), "roi": lut.roi_size,
        "lut_build_s": t_lut, "render_s": t_render, "total_s": t_total,
        "tracking_s": t_track, "rois_per_s": float(res.x.size / t_track),
        "peak_extra_mb": peak,
        "rms": {k: float(np.sqrt(np.nanmean(v**2))) for k, v in err.items()},
        "nan_rows": int(np.isnan(res.x).sum()),
    }  # fmt: skip


def child_lazy(gb: float) -> dict:
    import dask.array as da

    from camtrack.simulate import bead_field
    from camtrack.tracking import track_beads

    field, truth = bead_field(1, (512, 512), n_beads=16, rng=5, dtype="float32")
    base = np.asarray(field[0], dtype=np.float32)
    sd = np.sqrt(base)
    frames = int(gb * 1e9 / (512 * 512 * 2))
    n = 16

    def block(block_id=None):
        # Shot noise as its Gaussian limit (thousands of e-): cheap to generate.
        rng = np.random.default_rng(block_id[0])
        noise = rng.standard_normal((n, 512, 512), dtype=np.float32)
        return (base + sd * noise).astype(np.uint16)

    nb = -(-frames // n)
    stack = da.map_blocks(block, dtype=np.uint16, chunks=((n,) * nb, (512,), (512,)),
                          meta=np.empty((0, 0, 0), np.uint16))  # fmt: skip
    start = np.c_[truth.x[0], truth.y[0]]
    before = vm_kib("VmRSS")
    reset_peak_rss()
    t0 = time.perf_counter()
    res = track_beads(stack, start, roi_size=48, mode="fast", frame_chunk=64)
    seconds = time.perf_counter() - t0
    return {
        "case": "lazy", "gb": stack.nbytes / 1e9, "frames": int(stack.shape[0]),
        "beads": int(start.shape[0]), "seconds": seconds,
        "rois_per_s": float(res.x.size / seconds),
        "peak_extra_mb": (vm_kib("VmHWM") - before) / 1024,
        "nan_rows": int(np.isnan(res.x).sum()),
    }  # fmt: skip


def _child(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False)  # fmt: skip
    if out.returncode:
        return {"error": out.stderr[-2000:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lazy-gb", type=float, nargs="*", default=[1.0, 4.0])
    ap.add_argument("--json", type=Path, default=HERE / "results" / "bench_track_sample.json")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind = args.child[0]
        rec = child_sample() if kind == "sample" else child_lazy(float(args.child[1]))
        print(json.dumps(rec))
        return
    rows = [_child(["sample"])] + [_child(["lazy", str(g)]) for g in args.lazy_gb]
    s = rows[0]
    if "error" not in s:
        print(f"sample: {s['frames']} frames x {s['beads']} beads, ROI {s['roi']}: total "
              f"{s['total_s']:.2f} s (rendering the lazy frames alone {s['render_s']:.2f} s; "
              f"tracking the rendered frames {s['tracking_s']:.2f} s = {s['rois_per_s']:.0f} ROI/s), Z-LUT {s['lut_build_s']:.2f} s, peak "
              f"extra RAM {s['peak_extra_mb']:.0f} MB, RMS x {s['rms']['x']:.4f} px, "
              f"y {s['rms']['y']:.4f} px, z {s['rms']['z']:.2f} nm, NaN rows {s['nan_rows']}")  # fmt: skip
    for r in rows[1:]:
        if "error" in r:
            print("lazy: error", r["error"][-300:])
            continue
        print(f"lazy {r['gb']:.2f} GB ({r['frames']} frames x {r['beads']} beads, fast): "
              f"{r['seconds']:.1f} s, {r['rois_per_s']:.0f} ROI/s, peak extra RAM "
              f"{r['peak_extra_mb']:.0f} MB")  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
