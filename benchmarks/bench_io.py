"""Time to first frame and memory: camtrack's lazy readers vs napari's default reader.

Writes a multi-GB uint16 stack twice, as a contiguous multi-page TIFF and as an HDF5
file (``/events/image``, contiguous), then in a fresh subprocess per measurement
(so peak RSS is clean) opens the file and computes frame 0, recording wall time and
the peak RSS increase over the baseline taken after all imports. The peak mark is
reset after the imports (``/proc/self/clear_refs``), else import peaks would mask
the read, and the table uses ``VmHWM`` from ``/proc/self/status``: on Linux
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` also includes the parent's RSS at
``exec`` time, which no reset clears (it is still recorded in the JSON as
``ru_maxrss_increase_mb``).
Imports, and dask's one-off start-up on its first compute, happen before the clock
starts for every reader.

Peers
-----
TIFF: napari's built-in reader, i.e. what ``viewer.open(path)`` falls back to
without ``plugin=``: ``napari_builtins.io.napari_get_reader(path)`` ->
``magic_imread`` -> ``imageio.v3.imread`` (tifffile plugin), which reads the whole
file into memory.
HDF5: napari has no working built-in HDF5 reader (``*.h5`` is in its filename
patterns, but imageio cannot decode HDF5; the benchmark records the error it
raises), so the peer is an eager ``h5py`` read, ``f["/events/image"][()]``.

Cache states: ``cold`` evicts the file from the OS page cache before each run
(``posix_fadvise(DONTNEED)``, no root needed), ``warm`` reads it once beforehand.

Usage::

    python benchmarks/bench_io.py                 # 4 GB files in a temp dir
    python benchmarks/bench_io.py --size-gb 1 --dir /scratch --repeat 5

Results go to ``benchmarks/results/bench_io.json`` (``--json`` to change).
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
DATASET = "/events/image"


# --------------------------------------------------------------------------- child side


def _child(reader: str, path: str) -> dict:
    """Open `path` with `reader`, compute frame 0; return timings and peak RSS increase."""
    import gc
    import resource

    # every reader starts with the file libraries already imported
    import h5py
    import tifffile  # noqa: F401

    if reader == "camtrack":
        import dask.array

        from camtrack import io

        def run():
            t0 = time.perf_counter()
            stack, _ = io.open_stack(path)
            t1 = time.perf_counter()
            return np.asarray(stack[0]), t1 - t0

    elif reader == "napari-builtin":
        from napari_builtins.io import napari_get_reader

        def run():
            t0 = time.perf_counter()
            layer_data = napari_get_reader(path)(path)
            t1 = time.perf_counter()
            return np.asarray(layer_data[0][0][0]), t1 - t0

    elif reader == "h5py-eager":

        def run():
            t0 = time.perf_counter()
            with h5py.File(path, "r") as f:
                data = f[DATASET][()]
            t1 = time.perf_counter()
            return np.asarray(data[0]), t1 - t0

    else:
        raise ValueError(reader)

    if reader == "camtrack":
        # One-off dask start-up (its first compute imports distributed, ~0.4 s) is a
        # per-session cost, not a per-file one: pay it before the clock starts.
        dask.array.ones(2).sum().compute()
    gc.collect()
    reset = reset_peak_rss()
    base_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    base_hwm = vm_kib("VmHWM")
    t0 = time.perf_counter()
    try:
        frame, open_s = run()
    except Exception as exc:  # a peer that cannot read the file at all
        return {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    total = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_hwm = vm_kib("VmHWM")
    return {
        "time_s": total,
        "open_s": open_s,
        "rss_increase_mb": (peak_hwm - base_hwm) * 1024 / 1e6,
        "ru_maxrss_increase_mb": (peak_kib - base_kib) * 1024 / 1e6,
        "frame_shape": list(frame.shape),
        "frame_checksum": int(frame.astype(np.int64).sum()),
        "peak_reset_after_imports": reset,
    }


def _write_files(folder: Path, size_gb: float, side: int) -> tuple[Path, Path, int, list[int]]:
    import h5py
    import tifffile

    shape = (side, side)
    n = max(1, int(size_gb * 1e9 // (side * side * 2)))
    rng = np.random.default_rng(0)
    pool = [rng.integers(90, 110, shape, dtype=np.uint16) for _ in range(8)]  # reused: fast

    def frames():
        for i in range(n):
            f = pool[i % len(pool)]
            f[0, 0] = i % 65536
            yield f

    tif, h5 = folder / "bench_stack.tif", folder / "bench_stack.h5"
    t0 = time.perf_counter()
    tifffile.imwrite(tif, data=frames(), shape=(n, *shape), dtype=np.uint16)
    with h5py.File(h5, "w") as f:
        dset = f.create_dataset(DATASET, shape=(n, *shape), dtype=np.uint16)
        block = 64
        for a in range(0, n, block):
            b = min(n, a + block)
            chunk = np.stack([pool[i % len(pool)] for i in range(a, b)])
            chunk[:, 0, 0] = np.arange(a, b) % 65536
            dset[a:b] = chunk
    for p in (tif, h5):
        with open(p, "rb+") as fh:
            os.fsync(fh.fileno())
    print(
        f"wrote {n} frames of {side}x{side} uint16 twice "
        f"({tif.stat().st_size / 1e9:.2f} GB TIFF, {h5.stat().st_size / 1e9:.2f} GB HDF5) "
        f"in {time.perf_counter() - t0:.0f} s",
        flush=True,
    )
    return tif, h5, n, [tif.stat().st_size, h5.stat().st_size]


def _evict(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def _warm(path: Path) -> None:
    with open(path, "rb") as fh:
        while fh.read(64 * 2**20):
            pass


def _measure(reader: str, path: Path, cache: str, timeout: float) -> dict:
    if cache == "cold":
        _evict(path)
    else:
        _warm(path)
    proc = subprocess.run(
        [sys.executable, __file__, "--child", reader, str(path)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _summary(runs: list[dict]) -> dict:
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return {"error": runs[0]["error"], "runs": runs}
    return {
        "time_s": statistics.median(r["time_s"] for r in ok),
        "open_s": statistics.median(r["open_s"] for r in ok),
        "rss_increase_mb": max(r["rss_increase_mb"] for r in ok),
        "runs": runs,
    }


def _fmt_time(s: dict) -> str:
    return "error" if "error" in s else f"{s['time_s']:.3f} s"


def _fmt_mem(s: dict) -> str:
    return "-" if "error" in s else f"{s['rss_increase_mb']:.0f} MB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gb", type=float, default=4.0, help="file size in GB (1e9 B)")
    parser.add_argument("--side", type=int, default=1024, help="frame side in pixels")
    parser.add_argument("--dir", type=Path, default=None, help="folder for the files")
    parser.add_argument("--repeat", type=int, default=3, help="runs per cell (median time)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per run")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "bench_io.json")
    parser.add_argument("--child", nargs=2, metavar=("READER", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(*args.child)))
        return 0

    folder = Path(tempfile.mkdtemp(prefix="camtrack-bench-", dir=args.dir))
    cases = [  # (file label, camtrack path index, peer, peer label)
        ("TIFF", 0, "napari-builtin", "napari built-in (imageio/tifffile, eager)"),
        ("HDF5", 1, "h5py-eager", "h5py eager f[ds][()] (napari has no HDF5 reader)"),
    ]
    try:
        tif, h5, n, sizes = _write_files(folder, args.size_gb, args.side)
        paths = (tif, h5)
        rows = []
        for label, idx, peer, peer_label in cases:
            for cache in ("cold", "warm"):
                ours = _summary(
                    [
                        _measure("camtrack", paths[idx], cache, args.timeout)
                        for _ in range(args.repeat)
                    ]
                )
                theirs = _summary(
                    [_measure(peer, paths[idx], cache, args.timeout) for _ in range(args.repeat)]
                )
                sums = {r.get("frame_checksum") for r in ours["runs"] + theirs["runs"]} - {None}
                if len(sums) > 1:
                    raise AssertionError(f"{label}: readers disagree on frame 0 ({sums})")
                rows.append(
                    {
                        "file": label,
                        "cache": cache,
                        "peer": peer_label,
                        "camtrack": ours,
                        "peer_result": theirs,
                    }
                )
                print(
                    f"{label} {cache}: camtrack {_fmt_time(ours)}, {_fmt_mem(ours)}; "
                    f"{peer} {_fmt_time(theirs)}, {_fmt_mem(theirs)}",
                    flush=True,
                )
        h5_builtin = _measure("napari-builtin", h5, "warm", args.timeout)
    finally:
        if not args.keep:
            for p in folder.glob("bench_stack.*"):
                p.unlink()
            folder.rmdir()

    header = (
        "| file | cache | camtrack: open + frame 0 | peer | peer: open + frame 0 "
        "| time ratio (peer / camtrack) | camtrack peak RSS increase | peer peak RSS increase "
        "| RSS ratio |"
    )
    lines = [header, "|" + "---|" * 9]
    for r in rows:
        a, b = r["camtrack"], r["peer_result"]
        ok = "error" not in a and "error" not in b
        t_ratio = f"{b['time_s'] / a['time_s']:.0f}x" if ok else "-"
        m_ratio = f"{b['rss_increase_mb'] / max(a['rss_increase_mb'], 1):.0f}x" if ok else "-"
        lines.append(
            f"| {r['file']} | {r['cache']} | {_fmt_time(a)} | {r['peer']} | {_fmt_time(b)} "
            f"| {t_ratio} | {_fmt_mem(a)} | {_fmt_mem(b)} | {m_ratio} |"
        )
    table = "\n".join(lines)
    print()
    print(
        f"{n} frames of {args.side}x{args.side} uint16 ({args.size_gb:g} GB per file), "
        f"median of {args.repeat} fresh processes per cell"
    )
    print(table)
    print(f"\nnapari built-in reader on the .h5 file: {h5_builtin.get('error', 'read it')}")

    result = {
        "benchmark": "bench_io",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "config": {
            "size_gb": args.size_gb,
            "side": args.side,
            "frames": n,
            "dtype": "uint16",
            "repeat": args.repeat,
            "file_bytes": {"tiff": sizes[0], "hdf5": sizes[1]},
        },
        "rows": rows,
        "napari_builtin_on_hdf5": h5_builtin,
        "table_markdown": table,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
