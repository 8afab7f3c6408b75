"""Scale-out benchmark: a lazy ~2 GB TIFF on a dask.distributed cluster of 1 and 2 workers.

The stack is the out-of-core benchmark's (``bench_outofcore.write_stack``: uncompressed
uint16, ``--size`` x ``--size`` frames of a static lit scene with a known gain and
background), written once to a temporary folder and deleted at the end (``--keep``
keeps it). It is opened lazily with ``camtrack.io.open_stack`` (frame chunks of about
8 MB, what the napari reader does), and each case runs on a ``LocalCluster`` of one,
then two, worker processes with one thread each (``processes=True``: the graphs and the
readers are pickled to the workers, which reopen the file per task):

- ``gain_meanvar``: ``estimate_gain(stack, method="meanvar", scheduler=client)`` (blocks
  of frames reduced to sums on the workers, merged in a tree);
- ``gain_robust``: ``estimate_gain(stack, method="robust", scheduler=client)`` (two
  streaming passes of pieces of frames on the workers, the detection between them
  here; the kept-differences pass sends each piece its kept mask, a window of tasks
  at a time, so this process holds a few pieces' masks, not the whole stack's);
- ``temporal_median``: ``temporal_median(stack, scheduler=client)`` computed on the
  client (a p2p rechunk of the frame chunks to all-frames tiles through the workers'
  disks, then one median task per tile).

The local threaded scheduler (this process, every core) runs the same calls as a
reference. Both clusters run side by side and the configurations are interleaved run
by run (one warm-up run each first, which also fills the page cache; the file fits in
RAM here, so this measures compute and data movement, not the disk), so a change in
the load of shared cores hits them alike. Times are the medians of ``--runs`` runs; the
two-worker speed-up is t(1 worker) / t(2 workers) of those medians, and the median of
the per-run ratios. The JSON goes to ``benchmarks/results/bench_distributed.json``.

Each call's rise of this process's peak RSS above its RSS before the call is recorded
too (``peak_rss_over_mib``, median over runs): the client with the LocalClusters'
schedulers (the workers are other processes); memory that earlier calls freed and this
one reuses does not count, so it is a lower bound on what the call needs.

Run (about 15 min for 2 GB on 2 cores)::

    flock /tmp/bench.lock .venv/bin/python benchmarks/bench_distributed.py --gb 2
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _memory import reset_peak_rss, vm_kib  # noqa: E402
from bench_outofcore import truth, write_stack  # noqa: E402

ADU_PER_E = 0.5  # the stack's camera: e_per_adu = 2


def _cases(stack: object, scheduler: object) -> dict:
    from camtrack._parallel import compute
    from camtrack.background import temporal_median
    from camtrack.gain import estimate_gain

    return {
        "gain_meanvar": lambda: estimate_gain(stack, method="meanvar", scheduler=scheduler),
        "gain_robust": lambda: estimate_gain(stack, method="robust", scheduler=scheduler),
        "temporal_median": lambda: compute(
            temporal_median(stack, scheduler=scheduler), scheduler=scheduler
        ),
    }


def _score(case: str, value: object, meta: dict) -> float:
    """The error against the truth: relative gain error, or the median's max |error| (ADU)."""
    if case.startswith("gain_"):
        return abs(value.e_per_adu * ADU_PER_E - 1.0)
    return float(np.max(np.abs(np.asarray(value) - truth(meta["size"], ADU_PER_E))))


def run(path: Path, meta: dict, runs: int) -> dict:
    """Both clusters up at once and the configurations interleaved run by run, so that
    a change in the machine's load (shared cores) hits all of them alike."""
    import distributed

    from camtrack.io import open_stack

    stack, _ = open_stack(path)
    configs = {"threads_local": "threads"}
    with contextlib.ExitStack() as stack_of:
        for n in (1, 2):
            cluster = stack_of.enter_context(
                distributed.LocalCluster(
                    n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None
                )
            )
            configs[f"workers_{n}"] = stack_of.enter_context(
                distributed.Client(cluster, set_as_default=False)
            )
        cases = {name: _cases(stack, where) for name, where in configs.items()}
        for per_config in cases.values():  # warm-up: worker imports, page cache, p2p
            for fn in per_config.values():
                fn()
        times: dict = {name: {case: [] for case in cases[name]} for name in configs}
        peaks: dict = {name: {case: [] for case in cases[name]} for name in configs}
        errors: dict = {name: {} for name in configs}
        for r in range(runs):
            for name, per_config in cases.items():
                for case, fn in per_config.items():
                    before = vm_kib("VmRSS")
                    reset_peak_rss()
                    t0 = time.perf_counter()
                    value = fn()
                    times[name][case].append(time.perf_counter() - t0)
                    peaks[name][case].append((vm_kib("VmHWM") - before) / 1024)
                    errors[name][case] = _score(case, value, meta)
                    del value
            print(f"run {r + 1}/{runs}: {times}", file=sys.stderr)
    out: dict = {"chunks": [int(stack.chunks[0][0]), *map(int, stack.chunksize[1:])]}
    for name in configs:
        out[name] = {
            case: {
                "times_s": t,
                "median_s": statistics.median(t),
                "error": errors[name][case],
                "peak_rss_over_mib": statistics.median(peaks[name][case]),
            }
            for case, t in times[name].items()
        }
    # Paired ratios (same run, so the same load): their median is the robust speed-up.
    out["paired_speedup_median"] = {
        case: statistics.median(
            a / b for a, b in zip(times["workers_1"][case], times["workers_2"][case], strict=True)
        )
        for case in times["workers_1"]
    }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gb", type=float, default=2.0, help="stack size in GB (default 2)")
    ap.add_argument("--size", type=int, default=1024, help="frame side, px (default 1024)")
    ap.add_argument("--runs", type=int, default=3, help="timed runs per case (default 3)")
    ap.add_argument("--dir", type=Path, default=None, help="where to write the stack")
    ap.add_argument("--keep", action="store_true", help="keep the stack file")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "bench_distributed.json")
    args = ap.parse_args(argv)

    folder = Path(tempfile.mkdtemp(prefix="camtrack-bench-dist-", dir=args.dir))
    path = folder / "stack.tif"
    try:
        meta = write_stack(path, args.gb, args.size, ADU_PER_E)
        res = run(path, meta, args.runs)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    speedup = {
        case: res["workers_1"][case]["median_s"] / res["workers_2"][case]["median_s"]
        for case in res["workers_1"]
    }
    record = {
        "benchmark": "bench_distributed",
        "stack": {**meta, "gb": round(meta["frames"] * meta["size"] ** 2 * 2 / 1e9, 3)},
        "machine": {
            "cpus": len(os.sched_getaffinity(0)),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "runs": args.runs,
        "results": res,
        "speedup_2_vs_1_worker": speedup,
        "load_average_after": os.getloadavg(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"{'case':<16} {'threads':>9} {'1 worker':>9} {'2 workers':>10} {'2w/1w':>7} {'paired':>7}")  # fmt: skip
    for case, s in speedup.items():
        t = [res[k][case]["median_s"] for k in ("threads_local", "workers_1", "workers_2")]
        paired = res["paired_speedup_median"][case]
        print(f"{case:<16} {t[0]:>8.2f}s {t[1]:>8.2f}s {t[2]:>9.2f}s {s:>6.2f}x {paired:>6.2f}x")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
