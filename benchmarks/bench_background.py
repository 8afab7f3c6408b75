"""Throughput and memory of camtrack.background on a synthetic camera stack.

Every case runs in a fresh subprocess, so its peak RSS is its own: the child builds
the stack (uint16, offset 100 ADU plus Poisson(100) photons, seeded), imports and
warms up the function on a small stack (thread pools, dask start-up), resets the
kernel's peak-RSS mark (``/proc/self/clear_refs``), then times the median of
``--repeat`` runs. Memory is the increase of ``VmHWM`` (this process's own
high-water mark) over the RSS just before the timed runs, i.e. the working memory
the function needs beyond its input (taken on the first timed run, after a warm-up
on a small stack). Each case also checks its result against an
independent numpy reference on a sample of pixels (``max_abs_err``).

Figures: ``ns_per_element`` = wall time / (T * Y * X); ``mb_per_s`` = bytes of the
function's input (uint16, or its float32 copy) / wall time (1 MB = 1e6 bytes).

Peers: each case has a slot ``peers`` (name -> the same measurement taken on the
peer, run in its own Python in a subprocess), filled by the functions registered in
``PEER_RUNNERS``; the table gains a peer column and a speed ratio for every case a
peer has measured. Registered: smlmlp's spatial mean and 51-frame temporal (rolling)
median, dcnum's sparse median (on a uint8 copy: dcnum wraps uint16 modulo 256), run
through ``benchmarks/peers`` (skipped where their Python 3.12 venv is missing).

Usage::

    python benchmarks/bench_background.py                  # 200 x 256 x 256 uint16
    python benchmarks/bench_background.py --frames 500 --size 512 --repeat 3

Results go to ``benchmarks/results/bench_background.json`` (``--json`` to change).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from _memory import reset_peak_rss, vm_kib

HERE = Path(__file__).resolve().parent

# case name -> (description, function label)
CASES: dict[str, str] = {
    "rolling_median_uint16": "rolling_median(stack, window=51), uint16 input",
    "rolling_median_float32": "rolling_median(stack, window=51), float32 input",
    "rolling_median_dask": "rolling_median on dask (16-frame chunks), uint16",
    "bottleneck_rolling_ref": "reference: bottleneck.move_median, float32 pixel-major tiles, threads",
    "spatial_mean_uint16": "spatial_mean(stack, radius=7).background, uint16",
    "temporal_median_uint16": "temporal_median(stack), uint16",
    "temporal_median_clip": "temporal_median(stack, sigma_clip=3), uint16",
    "sparse_median_uint16": "sparse_median(stack, kernel_size=50) + offsets, uint16",
    "frame_stats_std": "frame_stats(stack, 'std'), uint16",
    "frame_stats_p10": "frame_stats(stack, 'percentile', q=10), uint16",
}

# case name -> {peer name: runner(frames, size, repeat) -> measurement dict or None}
PEER_RUNNERS: dict[str, dict[str, Callable[[int, int, int], dict | None]]] = {}


def _peer_runner(peer: str, script: str, extra: list[str], what: str):
    """A PEER_RUNNERS entry: the same stack as ours (``make_stack``) in a temporary .npy,
    timed by ``benchmarks/peers/<script>`` under the peer's own Python."""

    def run(frames: int, size: int, repeat: int) -> dict | None:
        import tempfile

        sys.path.insert(0, str(HERE))
        from peers._find import run_runner

        with tempfile.TemporaryDirectory(prefix="camtrack-bench-peer-") as tmp:
            path = Path(tmp) / "stack.npy"
            np.save(path, make_stack(frames, size))
            rec = run_runner(peer, script, [str(path), *extra, "--repeat", str(repeat)])
        if "seconds" not in rec:
            return rec  # {"skipped": ...} or {"error": ...}: reported, never raised
        rec["what"] = what
        rec["extra_rss_mb"] = rec.get("peak_extra_mb")
        return rec

    return run


PEER_RUNNERS.update(
    {
        "spatial_mean_uint16": {
            "smlmlp": _peer_runner(
                "smlmlp", "smlmlp_background.py", ["spatial_mean", "--radius", "7"],
                "smlmlp.bkgd_spatial_mean(radius=7)",
            )
        },
        "rolling_median_uint16": {
            "smlmlp": _peer_runner(
                "smlmlp", "smlmlp_background.py", ["temporal_median", "--window", "25"],
                "smlmlp.bkgd_temporal_median(median_window_fr=25): a 51-frame rolling median",
            )
        },
        "sparse_median_uint16": {
            "dcnum": _peer_runner(
                "dcnum", "dcnum_sparse.py",
                ["--kernel-size", "50", "--split-frames", "50", "--num-cpus", "2"],
                "dcnum BackgroundSparseMed(kernel_size=50), on a uint8 copy (dcnum is uint8 only)",
            )
        },
    }
)  # fmt: skip


# --------------------------------------------------------------------------- child side


def make_stack(frames: int, size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (100 + rng.poisson(100.0, (frames, size, size))).astype(np.uint16)


def _naive_rolling(stack: np.ndarray, window: int, ys, xs) -> np.ndarray:
    n = stack.shape[0]
    out = np.empty((n, len(ys)))
    for t in range(n):
        s = min(max(t - window // 2, 0), n - window)
        out[t] = np.median(stack[s : s + window, ys, xs].astype(np.float64), axis=0)
    return out


def _bottleneck_rolling(stack: np.ndarray, window: int) -> np.ndarray:
    """The usual fast CPU baseline: bottleneck's double-heap moving median on float32,
    pixels-major tiles of 8 rows, one thread per core (bottleneck releases the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    import bottleneck as bn

    t, ny, nx = stack.shape
    half = window // 2
    out = np.empty(stack.shape, dtype=np.float32)

    def tile(y: int) -> None:
        block = stack[:, y : y + 8]
        rows = np.ascontiguousarray(block.reshape(t, -1).T, dtype=np.float32)
        med = bn.move_median(rows, window, axis=1)[:, window - 1 :]
        body = med.T.reshape(t - window + 1, block.shape[1], nx)
        out[half : t - half, y : y + 8] = body
        out[:half, y : y + 8] = body[0]
        out[t - half :, y : y + 8] = body[-1]

    with ThreadPoolExecutor(len(os.sched_getaffinity(0))) as pool:
        list(pool.map(tile, range(0, ny, 8)))
    return out


def _case(name: str, stack: np.ndarray):
    """(run, check, input_bytes): run() computes, check(result) -> max abs error."""
    import dask.array as da
    import scipy.ndimage as ndi

    from camtrack import background as bg

    rng = np.random.default_rng(1)
    ys = rng.integers(0, stack.shape[1], 64)
    xs = rng.integers(0, stack.shape[2], 64)

    if name == "bottleneck_rolling_ref":

        def run():
            return _bottleneck_rolling(stack, 51)

        def check(out):
            return float(np.abs(out[:, ys, xs] - _naive_rolling(stack, 51, ys, xs)).max())

        return run, check, stack.nbytes
    if name.startswith("rolling_median"):
        data = stack.astype(np.float32) if name.endswith("float32") else stack
        if name.endswith("dask"):
            lazy = da.from_array(stack, chunks=(16, -1, -1))

            def run():
                return bg.rolling_median(lazy, 51).compute()
        else:

            def run():
                return bg.rolling_median(data, 51)

        def check(out):
            return float(np.abs(out[:, ys, xs] - _naive_rolling(stack, 51, ys, xs)).max())

        return run, check, data.nbytes
    if name == "spatial_mean_uint16":

        def check(out):
            ref = ndi.gaussian_filter(stack[:4].astype(np.float64), (0, 3.5, 3.5))
            return float(np.abs(out[:4] - ref).max())

        return (lambda: bg.spatial_mean(stack, 7.0).background), check, stack.nbytes
    if name.startswith("temporal_median"):
        clip = 3.0 if name.endswith("clip") else None

        def check(out):
            if clip is not None:
                return float("nan")  # no simple numpy reference for sigma clipping
            return float(np.abs(out[ys, xs] - np.median(stack[:, ys, xs], axis=0)).max())

        return (lambda: bg.temporal_median(stack, sigma_clip=clip)), check, stack.nbytes
    if name == "sparse_median_uint16":

        def check(res):
            ref = np.median(stack[:50, ys, xs], axis=0)
            return float(np.abs(res.images[0][ys, xs] - ref).max())

        return (lambda: bg.sparse_median(stack, kernel_size=50)), check, stack.nbytes
    if name == "frame_stats_std":

        def check(out):
            return float(np.abs(out[ys, xs] - stack[:, ys, xs].std(axis=0)).max())

        return (lambda: bg.frame_stats(stack, "std")), check, stack.nbytes
    if name == "frame_stats_p10":

        def check(out):
            ref = np.percentile(stack[:, ys, xs], 10, axis=0)
            return float(np.abs(out[ys, xs] - ref).max())

        return (lambda: bg.frame_stats(stack, "percentile", q=10)), check, stack.nbytes
    raise KeyError(name)


def child(name: str, frames: int, size: int, repeat: int) -> dict:
    stack = make_stack(frames, size)
    # Warm-up on a small stack (imports, thread pools, dask's first compute) that
    # leaves the heap small, so the first timed run's peak is the function's own.
    warm, _, _ = _case(name, make_stack(min(frames, 60), 32, seed=2))
    warm()
    run, check, nbytes = _case(name, stack)
    reset = reset_peak_rss()
    base = vm_kib("VmRSS")
    times = []
    err = float("nan")
    for i in range(repeat):
        t0 = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - t0)
        if i == 0:
            peak = vm_kib("VmHWM")
            err = check(result)
        del result
    best = statistics.median(times)  # the brief asks for medians of several runs
    return {
        "case": name,
        "shape": list(stack.shape),
        "seconds": best,
        "seconds_all": times,
        "ns_per_element": best / stack.size * 1e9,
        "mb_per_s": nbytes / best / 1e6,
        "input_mb": nbytes / 1e6,
        "extra_rss_mb": max(0, peak - base) / 1024 if reset else None,
        "max_abs_err": err,
        # process-wide high-water mark incl. the stack (Linux counts the parent's RSS
        # at exec too, so the table uses the VmHWM increase above)
        "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


# -------------------------------------------------------------------------- parent side


def _measure(name: str, frames: int, size: int, repeat: int, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--child", name]
    cmd += ["--frames", str(frames), "--size", str(size), "--repeat", str(repeat)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        return {"case": name, "error": proc.stderr.strip().splitlines()[-1:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _row(name: str, ours: dict, peers: dict) -> list[str]:
    if "error" in ours:
        return [name, "error", "", "", "", "", ""]
    cells = [
        name,
        f"{ours['seconds']:.3f}",
        f"{ours['ns_per_element']:.1f}",
        f"{ours['mb_per_s']:.0f}",
        "n/a" if ours["extra_rss_mb"] is None else f"{ours['extra_rss_mb']:.0f}",
        f"{ours['max_abs_err']:.2g}",
    ]
    peer_cells = []
    for peer, m in peers.items():
        if m and "seconds" in m:
            peer_cells.append(
                f"{peer} {m['seconds']:.3f} s (x{m['seconds'] / ours['seconds']:.2f})"
            )
    cells.append("; ".join(peer_cells))
    return cells


def _print_table(rows: list[list[str]], with_peers: bool) -> None:
    head = ["case", "s (median)", "ns/elem", "MB/s", "+RSS MB", "max err"]
    if with_peers:
        head.append("peer s (peer/ours)")
    else:
        rows = [r[:-1] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--json", type=Path, default=HERE / "results" / "bench_background.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        print(json.dumps(child(args.child, args.frames, args.size, args.repeat)))
        return 0

    print(
        f"camtrack.background on {args.frames} x {args.size} x {args.size} uint16 "
        f"({args.frames * args.size**2 * 2 / 1e6:.0f} MB), median of {args.repeat}, "
        f"{len(os.sched_getaffinity(0))} CPU(s)\n"
    )
    results = []
    rows = []
    for name in args.cases:
        ours = _measure(name, args.frames, args.size, args.repeat, args.timeout)
        peers = {
            peer: runner(args.frames, args.size, args.repeat)
            for peer, runner in PEER_RUNNERS.get(name, {}).items()
        }
        results.append({"case": name, "what": CASES[name], "ours": ours, "peers": peers})
        rows.append(_row(name, ours, peers))
    _print_table(rows, with_peers=any(r["peers"] for r in results))

    import bottleneck
    import dask
    import scipy

    meta = {
        "shape": [args.frames, args.size, args.size],
        "repeat": args.repeat,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "dask": dask.__version__,
        "bottleneck": bottleneck.__version__,
        "machine": platform.machine(),
        "cpus": len(os.sched_getaffinity(0)),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
