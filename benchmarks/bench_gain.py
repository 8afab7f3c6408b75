"""Accuracy, speed and memory of camtrack.gain.estimate_gain next to smlmlp.detect_gain.

Cases (simulated with known truth, 512 x 512 uint16 by default): clean sCMOS at 0.5, 2
and 5 ADU/e-, 40 moving beads, bleaching to 50%, EMCCD with F**2 = 2; each at every
``--frames`` (200 and 1000). Every stack is written once to a temporary ``.npy``; then
camtrack and the peer each run in a fresh child process that loads it into RAM, warms
up on a small slice, resets the kernel's peak-RSS mark and times the median of
``--repeat`` calls. ``peak_extra_mb`` is the high-water mark above the RSS just before
the first timed call: the working memory beyond the input.

The peer is ``smlmlp.detect_gain`` (the classic median/MAD recipe), run under its own
Python 3.12 venv (``benchmarks/peers``); it is reported as skipped where none exists.
camtrack runs with ``method="auto"`` and the case's ``excess_noise_factor`` (the peer
has no such parameter: it reports what an uncorrected fit gives).

``--lazy-gb`` adds out-of-core cases: a lazily generated dask stack of that many GB
(uint16 Poisson on a gradient, 512 x 512 frames) reduced by ``estimate_gain``; the peak
extra RAM must not grow with the size.

Usage::

    python benchmarks/bench_gain.py                       # 200 and 1000 frames
    python benchmarks/bench_gain.py --frames 200 --repeat 3 --lazy-gb 1 4

Results go to ``benchmarks/results/bench_gain.json`` (``--json`` to change).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _memory import reset_peak_rss, vm_kib

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

# name -> (camera kwargs, camera_stack kwargs, excess noise factor)
CASES = {
    "scmos_0.5adu": ({"e_per_adu": 2.0}, {}, 1.0),
    "scmos_2adu": ({"e_per_adu": 0.5}, {}, 1.0),
    "scmos_5adu": ({"e_per_adu": 0.2}, {}, 1.0),
    "beads_40": ({"e_per_adu": 0.5}, {"n_beads": 40}, 1.0),
    "bleach_50": ({"e_per_adu": 0.5}, {"bleach": 0.5}, 1.0),
    "emccd_f2": ({"e_per_adu": 0.05, "excess_noise_factor": 2.0}, {"signal_e": (20, 600)}, 2.0),
}


def make_case(name: str, frames: int, size: int, path: Path) -> dict:
    from camtrack.simulate import Camera, camera_stack

    cam_kw, stack_kw, f2 = CASES[name]
    cam = Camera(
        shape=(size, size), offset_adu=100.0, offset_std_adu=2.0, read_noise_e=1.6,
        read_noise_spread=0.2, rng=3, **cam_kw,
    )  # fmt: skip
    stack, truth = camera_stack(frames, camera=cam, chunks=50, rng=4, **stack_kw)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint16, shape=stack.shape)
    for t0 in range(0, frames, 50):
        out[t0 : t0 + 50] = np.asarray(stack[t0 : t0 + 50])
    out.flush()
    del out
    return {"e_per_adu": truth.e_per_adu, "excess_noise_factor": f2}


# --------------------------------------------------------------------------- child side


def child_camtrack(path: str, f2: float, repeat: int) -> dict:
    from camtrack.gain import estimate_gain

    stack = np.load(path)
    estimate_gain(stack[:30, :64, :64], excess_noise_factor=f2)  # warm-up: imports, pools
    before = vm_kib("VmRSS")
    reset_peak_rss()
    times, res = [], None
    for i in range(repeat):
        t0 = time.perf_counter()
        res = estimate_gain(stack, excess_noise_factor=f2)
        times.append(time.perf_counter() - t0)
        if i == 0:
            peak = (vm_kib("VmHWM") - before) / 1024
    return {
        "e_per_adu": res.e_per_adu,
        "e_per_adu_stderr": res.e_per_adu_stderr,
        "method": res.method,
        "seconds": statistics.median(times),
        "seconds_all": times,
        "peak_extra_mb": peak,
    }


def child_lazy(gb: float, repeat: int) -> dict:
    import dask.array as da

    from camtrack.gain import estimate_gain

    size = 512
    frames = int(gb * 1e9 / (size * size * 2))
    ramp = np.linspace(50, 2000, size)[None, :] * np.ones((size, 1))

    def block(block_id=None):
        # Frame by frame into the uint16 chunk, as a reader would deliver it: drawing a
        # whole chunk at once makes int64 temporaries (3 x 105 MB per chunk, twice that
        # on two threads) that would be counted as the engine's working memory.
        rng = np.random.default_rng(block_id[0])
        out = np.empty((50, size, size), np.uint16)
        for i in range(out.shape[0]):
            # exactly 2 ADU/e- (0.5 e-/ADU), no read noise
            out[i] = rng.poisson(ramp) * 2 + 100
        return out

    n_blocks = -(-frames // 50)
    stack = da.map_blocks(
        block,
        dtype=np.uint16,
        chunks=((50,) * n_blocks, (size,), (size,)),
        meta=np.empty((0, 0, 0), np.uint16),
    )
    before = vm_kib("VmRSS")
    reset_peak_rss()
    t0 = time.perf_counter()
    res = estimate_gain(stack, method="meanvar")
    seconds = time.perf_counter() - t0
    return {
        "gb": stack.nbytes / 1e9,
        "frames": stack.shape[0],
        "e_per_adu": res.e_per_adu,
        "truth": 0.5,
        "seconds": seconds,
        "peak_extra_mb": (vm_kib("VmHWM") - before) / 1024,
    }


# --------------------------------------------------------------------------- parent side


def _child(args: list[str]) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    if out.returncode:
        return {"error": out.stderr[-2000:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _peer(path: Path, repeat: int) -> dict:
    from peers._find import run_runner

    return run_runner("smlmlp", "smlmlp_gain.py", [str(path), "--repeat", str(repeat)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, nargs="+", default=[200, 1000])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cases", nargs="+", default=list(CASES))
    ap.add_argument("--lazy-gb", type=float, nargs="*", default=[])
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--json", type=Path, default=HERE / "results" / "bench_gain.json")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "camtrack":
            rec = child_camtrack(rest[0], float(rest[1]), int(rest[2]))
        else:
            rec = child_lazy(float(rest[0]), 1)
        print(json.dumps(rec))
        return

    rows = []
    with tempfile.TemporaryDirectory(prefix="camtrack-bench-gain-") as tmp:
        for frames in args.frames:
            for name in args.cases:
                path = Path(tmp) / f"{name}_{frames}.npy"
                truth = make_case(name, frames, args.size, path)
                f2 = truth["excess_noise_factor"]
                ours = _child(["--child", "camtrack", str(path), str(f2), str(args.repeat)])
                peer = {"skipped": "--no-peer"} if args.no_peer else _peer(path, args.repeat)
                path.unlink()
                row = {"case": name, "frames": frames, "size": args.size, **truth,
                       "camtrack": ours, "smlmlp": peer}  # fmt: skip
                rows.append(row)
                _print_row(row)
    lazy = [_child(["--child", "lazy", str(gb)]) for gb in args.lazy_gb]
    for rec in lazy:
        print(f"lazy {rec.get('gb', 0):.2f} GB ({rec.get('frames')} frames): "
              f"{rec.get('seconds', float('nan')):.1f} s, peak extra {rec.get('peak_extra_mb', float('nan')):.0f} MB, "
              f"e_per_adu {rec.get('e_per_adu', float('nan')):.4f} (truth 0.5)")  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    meta = {"python": platform.python_version(), "cpus": len(os.sched_getaffinity(0)),
            "numpy": np.__version__, "date": time.strftime("%Y-%m-%d %H:%M")}  # fmt: skip
    args.json.write_text(json.dumps({"meta": meta, "rows": rows, "lazy": lazy}, indent=2))
    print(f"wrote {args.json}")


def _err(rec: dict, truth: float) -> str:
    if "e_per_adu" not in rec or rec["e_per_adu"] is None:
        return "   n/a  "
    return f"{100 * (rec['e_per_adu'] / truth - 1):+7.2f}%"


def _print_row(row: dict) -> None:
    ours, peer, truth = row["camtrack"], row["smlmlp"], row["e_per_adu"]
    if "error" in ours:
        last = ours["error"].strip().splitlines()[-1] if ours["error"].strip() else "?"
        line = f"{row['case']:>13} {row['frames']:5d}fr  camtrack refused: {last[:90]}..."
    else:
        line = (
            f"{row['case']:>13} {row['frames']:5d}fr  camtrack {_err(ours, truth)} "
            f"({ours['method']}) {ours['seconds']:6.2f} s {ours['peak_extra_mb']:6.0f} MB"
        )
    if "seconds" in peer and "seconds" in ours:
        ratio = peer["seconds"] / ours["seconds"]
        line += (
            f" | smlmlp {_err(peer, truth)} {peer['seconds']:6.2f} s "
            f"{peer['peak_extra_mb']:6.0f} MB | {ratio:5.1f}x faster"
        )
    elif "seconds" in peer:
        line += f" | smlmlp {_err(peer, truth)} {peer['seconds']:6.2f} s {peer['peak_extra_mb']:6.0f} MB"
    else:
        line += f" | smlmlp {peer.get('skipped') or 'error'}"
    print(line, flush=True)


if __name__ == "__main__":
    main()
