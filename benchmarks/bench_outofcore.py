"""Out-of-core benchmark: a TIFF twice the size of the RAM the process may use.

The stack is written once to disk as an uncompressed uint16 TIFF of ``--gb`` GB
(``--size`` x ``--size`` frames) with a known truth: a static illumination field of
``lam(y, x)`` photoelectrons (50 to 2500 e-, a gradient and a spot) seen through a
camera of ``--adu-per-e`` ADU/e-, offset 100 ADU and 1.6 e- read noise; each sample is
``offset + g * lam + sqrt(g^2 lam + (g r)^2) * N(0, 1)`` rounded (the normal limit of
Poisson shot noise at these levels, which keeps writing fast; the mean-variance
relation is exact). Its expected image is the background truth, ``1 / g`` the gain.

Each case then runs in a child process confined to a memory cgroup of ``--limit-gb``
GB (cgroup v1 ``memory.limit_in_bytes`` or v2 ``memory.max``; the page cache it
fills counts against that limit, so the file cannot sit in RAM), after the file's
pages were dropped from the cache (``posix_fadvise(DONTNEED)``). The child opens the
file lazily with ``camtrack.io.open_stack`` (what the napari reader does), runs the
case to the end and reports the wall time, the peak extra RSS (``VmHWM`` after a reset
minus ``VmRSS`` before) and the error against the truth. Before that it runs the same
case on a 120 x 64 x 64 corner of the file (``warmup_rss_growth_mb``), as
bench_background's children warm up: numba's import and cached kernels, dask's thread
pool and its first compute's imports (100-200 MB, loaded once per process) are then
not counted as the pass's working memory; ``--cold`` skips it. Without a writable cgroup
the cases run unconfined and the record says so.

Cases: ``temporal_median`` (spilled band-major to a temporary file), ``rolling_median``
(window 51, by blocks of frames, streamed to a sink that scores every frame),
``sparse_median`` (200-frame medians every 1000 frames), ``spatial_mean`` (radius 7,
streamed and scored against the filtered truth),
``frame_mean`` / ``frame_std`` (``frame_stats``), ``gain_meanvar`` / ``gain_auto`` /
``gain_robust`` / ``gain_median`` (``estimate_gain`` with that method).

Run (about 10 min for 4 GB under a 2 GB limit)::

    flock /tmp/bench.lock .venv/bin/python benchmarks/bench_outofcore.py --gb 4 --limit-gb 2
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _memory import reset_peak_rss, vm_kib  # noqa: E402

CASES = (
    "temporal_median",
    "rolling_median",
    "sparse_median",
    "spatial_mean",
    "frame_mean",
    "frame_std",
    "gain_meanvar",
    "gain_auto",
    "gain_robust",
    "gain_median",
)
OFFSET_ADU = 100.0
READ_E = 1.6


def illumination(size: int) -> np.ndarray:
    """Expected photoelectrons per pixel: a gradient plus a Gaussian spot, 50-2500 e-."""
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    spot = np.exp(-((yy - 0.4) ** 2 + (xx - 0.6) ** 2) / (2 * 0.18**2))
    return (50.0 + 1200.0 * xx + 1250.0 * spot).astype(np.float64)


def truth(size: int, adu_per_e: float) -> np.ndarray:
    return OFFSET_ADU + adu_per_e * illumination(size)


def write_stack(path: Path, gb: float, size: int, adu_per_e: float) -> dict:
    import tifffile

    frames = int(gb * 1e9 // (size * size * 2))
    meta = {"frames": frames, "size": size, "adu_per_e": adu_per_e, "version": 1}
    stamp = path.with_suffix(".json")
    if path.exists() and stamp.exists() and json.loads(stamp.read_text()) == meta:
        return meta
    lam = illumination(size)
    mean = (OFFSET_ADU + adu_per_e * lam).astype(np.float32)
    sd = np.sqrt(adu_per_e**2 * lam + (adu_per_e * READ_E) ** 2).astype(np.float32)
    rng = np.random.default_rng(0)
    chunk = 64

    def frames_iter():
        for start in range(0, frames, chunk):
            n = min(chunk, frames - start)
            noise = rng.standard_normal((n, size, size), dtype=np.float32)
            block = np.rint(noise * sd + mean)
            yield from np.clip(block, 0, 65535).astype(np.uint16)

    tmp = path.with_suffix(".partial.tif")
    t0 = time.perf_counter()
    tifffile.imwrite(tmp, frames_iter(), shape=(frames, size, size), dtype=np.uint16, bigtiff=True)  # fmt: skip
    os.replace(tmp, path)
    stamp.write_text(json.dumps(meta))
    print(f"wrote {path} ({path.stat().st_size / 1e9:.2f} GB) in {time.perf_counter() - t0:.0f} s", file=sys.stderr)  # fmt: skip
    return meta


def drop_cache(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


# ------------------------------------------------------------------------- cgroups


class MemoryCgroup:
    """A memory cgroup (v1 or v2) the children join; None-like when not writable."""

    def __init__(self, limit_bytes: int) -> None:
        self.path: Path | None = None
        self.version = None
        name = f"camtrack-bench-{os.getpid()}"
        for root, version, limit_file in (
            (Path("/sys/fs/cgroup/memory"), 1, "memory.limit_in_bytes"),
            (Path("/sys/fs/cgroup"), 2, "memory.max"),
        ):
            if version == 2 and not (root / "cgroup.controllers").exists():
                continue
            try:
                path = root / name
                path.mkdir()
                (path / limit_file).write_text(str(limit_bytes))
                if version == 2:
                    (path / "memory.swap.max").write_text("0")
            except OSError:
                continue
            self.path, self.version = path, version
            break

    def join(self) -> None:  # runs in the child before exec
        if self.path is not None:
            (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def reset_peak(self) -> None:
        if self.path is not None and self.version == 1:
            (self.path / "memory.max_usage_in_bytes").write_text("0")

    def peak_mb(self) -> float | None:
        if self.path is None:
            return None
        name = "memory.max_usage_in_bytes" if self.version == 1 else "memory.peak"
        try:
            return int((self.path / name).read_text()) / 2**20
        except OSError:
            return None

    def remove(self) -> None:
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.rmdir()


# --------------------------------------------------------------------------- child


class ScoringSink:
    """A ``da.store`` target that keeps nothing: sums the squared error of each block
    (frames, rows, cols) against a reference image, so a stack-sized result is scored
    without being held."""

    def __init__(self, reference: np.ndarray) -> None:
        self.reference = reference
        self.sq = 0.0
        self.n = 0
        self._lock = threading.Lock()

    def __setitem__(self, key, value) -> None:
        # Frame by frame into one frame-sized buffer: never in place, since a lazy
        # result may hand the same block to two regions (rolling_median's edge blocks
        # are one pure task when their windows coincide: an in-place subtraction
        # scored the second region against corrupted values), and no block-sized copy.
        ref = self.reference[key[1:]]
        diff = np.empty(value.shape[1:], dtype=np.float32)
        err = 0.0
        for frame in value:
            np.subtract(frame, ref, out=diff)
            err += float(np.einsum("jk,jk->", diff, diff, dtype=np.float64))
        with self._lock:
            self.sq += err
            self.n += value.size

    def rmse(self) -> float:
        return float(np.sqrt(self.sq / self.n))


def child(case: str, path: str, meta: dict, warm: bool = True) -> dict:
    from camtrack.io import open_stack

    stack, _info = open_stack(path)
    size, g = meta["size"], meta["adu_per_e"]
    bg_truth = truth(size, g).astype(np.float32)
    rec: dict = {"warm": warm}
    if warm:
        # The same case on a small corner first (as bench_background's children do):
        # numba's import and cached kernels, dask's thread pool and the first
        # compute's imports are ~100-200 MB of RSS loaded once per process, not
        # working memory of the pass measured below (``--cold`` keeps them in).
        before = vm_kib("VmRSS")
        t0 = time.perf_counter()
        _run(case, stack[: min(stack.shape[0], 120), :64, :64], bg_truth[:64, :64], g)
        rec["warmup_s"] = time.perf_counter() - t0
        rec["warmup_rss_growth_mb"] = (vm_kib("VmRSS") - before) / 1024
    reset_peak_rss()
    before = vm_kib("VmRSS")
    t0 = time.perf_counter()
    rec.update(_run(case, stack, bg_truth, g))
    rec["seconds"] = time.perf_counter() - t0
    rec["peak_extra_mb"] = (vm_kib("VmHWM") - before) / 1024
    rec["case"] = case
    return rec


def _run(case: str, stack, bg_truth: np.ndarray, g: float) -> dict:
    """One case on ``stack`` (lazy), scored against ``bg_truth`` (its (Y, X) truth)."""
    import dask.array as da

    from camtrack import background as bg
    from camtrack.gain import estimate_gain

    size = bg_truth.shape[0]
    rec: dict = {}
    if case == "temporal_median":
        out = bg.temporal_median(stack).compute()
        rec["rmse_adu"] = float(np.sqrt(np.mean((out - bg_truth) ** 2)))
    elif case == "rolling_median":
        sink = ScoringSink(bg_truth)
        da.store(bg.rolling_median(stack, 51), sink, lock=False)
        rec["rmse_adu"] = sink.rmse()
        rec["frames_scored"] = sink.n // (size * size)
    elif case == "sparse_median":
        res = bg.sparse_median(stack, window=200, split=1000)
        images = np.asarray(res.images)
        rec["rmse_adu"] = float(np.sqrt(np.mean((images - bg_truth) ** 2)))
        rec["n_images"] = int(images.shape[0])
    elif case == "spatial_mean":
        # the Gaussian-filtered truth: what a perfect spatial mean of the noiseless frames gives
        import scipy.ndimage as ndi

        smooth = ndi.gaussian_filter(bg_truth.astype(np.float64), 3.5, mode="nearest")
        sink = ScoringSink(smooth.astype(np.float32))
        da.store(bg.spatial_mean(stack, 7.0).background, sink, lock=False)
        rec["rmse_vs_filtered_truth_adu"] = sink.rmse()
    elif case in ("frame_mean", "frame_std"):
        out = bg.frame_stats(stack, case.split("_")[1])
        out = out.compute() if hasattr(out, "compute") else out
        if case == "frame_mean":
            rec["rmse_adu"] = float(np.sqrt(np.mean((out - bg_truth) ** 2)))
        else:
            sd = np.sqrt(g**2 * illumination(size) + (g * READ_E) ** 2)
            rec["std_rel_err_median"] = float(np.median(out / sd - 1))
    elif case.startswith("gain_"):
        res = estimate_gain(stack, method=case.split("_")[1])
        rec["e_per_adu"] = res.e_per_adu
        rec["rel_err"] = res.e_per_adu * g - 1
        rec["method"] = res.method
    else:
        raise ValueError(case)
    return rec


# -------------------------------------------------------------------------- parent


def run_case(
    case: str, path: Path, meta: dict, cg: MemoryCgroup, timeout: float, cold: bool = False
) -> dict:
    drop_cache(path)
    cg.reset_peak()
    cmd = [sys.executable, __file__, "--child", case, "--path", str(path), "--meta", json.dumps(meta)]  # fmt: skip
    if cold:
        cmd.append("--cold")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, preexec_fn=cg.join)  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"case": case, "error": f"timed out after {timeout:.0f} s"}
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        killed = proc.returncode in (-9, 137)
        why = "killed (out of memory in the cgroup)" if killed else proc.stderr[-2000:]
        return {"case": case, "error": why, "returncode": proc.returncode}
    rec = json.loads(proc.stdout.strip().splitlines()[-1])
    rec["process_wall_s"] = wall
    rec["cgroup_peak_mb_incl_page_cache"] = cg.peak_mb()
    return rec


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gb", type=float, default=4.0, help="stack size on disk")
    ap.add_argument("--limit-gb", type=float, default=2.0, help="memory cgroup limit")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--adu-per-e", type=float, default=2.0)
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/camtrack-outofcore"))
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--json", type=Path, default=HERE / "results" / "bench_outofcore.json")
    ap.add_argument(
        "--cold",
        action="store_true",
        help="no warm-up: the peak includes numba's and dask's one-time loading",
    )
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    ap.add_argument("--meta", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        rec = child(args.child, args.path, json.loads(args.meta), warm=not args.cold)
        print(json.dumps(rec))
        return 0

    args.dir.mkdir(parents=True, exist_ok=True)
    path = args.dir / f"stack_{args.gb:g}gb_{args.size}.tif"
    meta = write_stack(path, args.gb, args.size, args.adu_per_e)
    cg = MemoryCgroup(int(args.limit_gb * 2**30))
    results = []
    try:
        for case in args.cases:
            rec = run_case(case, path, meta, cg, args.timeout, args.cold)
            results.append(rec)
            print(json.dumps(rec), file=sys.stderr)
    finally:
        cg.remove()
    gb = path.stat().st_size / 1e9
    doc = {
        "benchmark": "bench_outofcore",
        "argv": sys.argv[1:],
        "machine": {"cpus": len(os.sched_getaffinity(0)), "python": platform.python_version()},
        "file": {"path": str(path), "gb": gb, **meta},
        "memory_limit_gb": args.limit_gb if cg.path else None,
        "cgroup": f"v{cg.version}" if cg.path else "none (ran unconfined)",
        "results": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=1))
    limit = f"{args.limit_gb:g} GB cgroup" if cg.path else "no cgroup"
    print(f"\n{gb:.2f} GB TIFF ({meta['frames']} x {args.size} x {args.size} uint16), {limit}")
    print(f"{'case':18s} {'s':>8s} {'s/GB':>7s} {'peak MB':>8s}  error")
    for r in results:
        if "error" in r:
            print(f"{r['case']:18s} FAILED: {r['error'][:200]}")
            continue
        keys = ("rmse_adu", "rmse_vs_filtered_truth_adu", "rel_err", "std_rel_err_median")
        err = {k: v for k, v in r.items() if k in keys}
        err_s = ", ".join(f"{k}={v:.4g}" for k, v in err.items())
        print(f"{r['case']:18s} {r['seconds']:8.1f} {r['seconds'] / gb:7.2f} {r['peak_extra_mb']:8.0f}  {err_s}")  # fmt: skip
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
