"""Run dcnum's ``BackgroundSparseMed`` on a .npy stack (as uint8); print one JSON line.

Run with the dcnum venv's Python (see ``_find.py``)::

    python benchmarks/peers/dcnum_sparse.py stack.npy --kernel-size 200 --split-frames 100

dcnum works on uint8 only (a uint16 stack silently wraps modulo 256), so a non-uint8
stack is converted first, outside the timing (``--uint8 scale``: ``u8 = round((x - lo) *
255 / (hi - lo))`` over the stack's range; ``clip``: ``clip(x, 0, 255)``); the JSON says
how (``uint8``) so a result can be mapped back to ADU (``x = lo + u8 * step``).

With array input dcnum has no time axis and guesses the duration as N / 3600 * 1.5 s, so
a background is computed every ``split_time`` of those seconds: ``--split-frames K``
sets ``split_time`` to K frames of that guessed axis (default: one every kernel_size
frames); ``--split-time`` passes seconds directly.

``seconds`` times the whole ``with BackgroundSparseMed(...) as bg: bg.process()`` (worker
start-up, medians, offset correction, HDF5 writing into a temporary file);
``process_seconds`` times ``bg.process()`` alone. ``peak_extra_mb`` is this process only;
``workers_peak_rss_mb`` is the largest sum of the worker processes' RSS, sampled every
20 ms with psutil during the timed calls (the shared input block they read counts in
each worker's RSS; getrusage's children ru_maxrss is useless here: on Linux it includes
this process's RSS at the moment a worker is spawned).
``--out x.npz`` saves ``image_bg`` (K, Y, X) uint8, ``basinmap`` (T,) and ``bg_off`` (T,)
when offset correction is on; ``--out-full x.npy`` the per-frame background (T, Y, X)
float32 = ``image_bg[basinmap] + bg_off``, in the uint8 scale.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import statistics
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
from _common import emit, load_stack, quiet_stdout, timed


def to_uint8(stack: np.ndarray, method: str) -> tuple[np.ndarray, dict]:
    if stack.dtype == np.uint8:
        return np.ascontiguousarray(stack), {"method": "none", "lo": 0.0, "step": 1.0}
    if method == "clip":
        u8 = np.clip(stack, 0, 255).astype(np.uint8)
        return u8, {"method": "clip", "lo": 0.0, "step": 1.0}
    if method == "scale":
        lo, hi = float(np.min(stack)), float(np.max(stack))
        step = (hi - lo) / 255.0 if hi > lo else 1.0
        u8 = np.empty(stack.shape, np.uint8)
        for i in range(0, stack.shape[0], 64):  # chunks keep the float temporaries small
            u8[i : i + 64] = np.rint((stack[i : i + 64] - lo) / step)
        return u8, {"method": "scale", "lo": lo, "step": step}
    raise SystemExit(f"input is {stack.dtype}, not uint8, and --uint8 is {method!r}")


def read_result(path: Path, n: int) -> dict:
    import h5py

    out = {}
    with h5py.File(path, "r") as h5:
        if "basin_events/image_bg" in h5:
            out["image_bg"] = h5["basin_events/image_bg"][:]
            out["basinmap"] = h5["events/basinmap0"][:]
        else:  # stored per event
            out["image_bg"] = h5["events/image_bg"][:]
            out["basinmap"] = np.arange(n)
        if "events/bg_off" in h5:
            out["bg_off"] = h5["events/bg_off"][:]
    return out


class ChildSampler:
    """Peak of the summed RSS of this process's children, sampled in a thread."""

    def __init__(self, interval: float = 0.02):
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for child in me.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    total += child.memory_info().rss
            self.peak = max(self.peak, total)
            self._stop.wait(self.interval)

    def __enter__(self) -> ChildSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input", help=".npy stack (T, Y, X); uint8, or converted (--uint8)")
    ap.add_argument("--kernel-size", type=int, default=200)
    split = ap.add_mutually_exclusive_group()
    split.add_argument("--split-frames", type=float, help="frames between backgrounds")
    split.add_argument("--split-time", type=float, help="dcnum's split_time, seconds")
    ap.add_argument("--num-cpus", type=int, default=2)
    ap.add_argument(
        "--frac-cleansing",
        type=float,
        default=0.8,
        help="dcnum's frac_cleansing: with the default 0.8 it drops the 20%% of background "
        "images that look most like events; 1 keeps them all",
    )
    ap.add_argument("--no-offset-correction", action="store_true")
    ap.add_argument("--no-compress", action="store_true", help="compress=False for HDF5")
    ap.add_argument("--uint8", choices=["scale", "clip", "refuse"], default="scale")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--load", choices=["ram", "mmap"], default="ram")
    ap.add_argument("--warmup-frames", type=int, default=60)
    ap.add_argument("--tmpdir", help="where the HDF5 output goes (default: system temp)")
    ap.add_argument("--out", help="save image_bg, basinmap, bg_off to this .npz")
    ap.add_argument("--out-full", help="save the per-frame background (float32 .npy)")
    args = ap.parse_args(argv)
    quiet_stdout()
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", message="Creating basin-based file")

    t0 = time.perf_counter()
    from dcnum.feat.feat_background import BackgroundSparseMed

    import_s = time.perf_counter() - t0
    raw = load_stack(args.input, args.load)
    t0 = time.perf_counter()
    stack, conv = to_uint8(raw, args.uint8)
    conv["seconds"] = time.perf_counter() - t0
    in_dtype, in_mb = str(raw.dtype), raw.nbytes / 1e6
    del raw

    n = stack.shape[0]
    kernel = min(args.kernel_size, n)
    dt = (n / 3600 * 1.5) / max(n - 1, 1)  # dcnum's guessed frame interval
    if args.split_time is not None:
        split_time = args.split_time
    else:
        split_time = (args.split_frames or kernel) * dt
    tmp = tempfile.TemporaryDirectory(dir=args.tmpdir)
    runs = iter(range(10**6))
    process_times = []

    def run(data, st):
        path = Path(tmp.name) / f"bg_{next(runs)}.rtdc"
        with BackgroundSparseMed(
            data,
            path,
            kernel_size=min(kernel, len(data)),
            split_time=st,
            frac_cleansing=args.frac_cleansing,
            offset_correction=not args.no_offset_correction,
            compress=not args.no_compress,
            num_cpus=args.num_cpus,
        ) as bg:
            tp = time.perf_counter()
            bg.process()
            process_times.append(time.perf_counter() - tp)
            n_bg = int(bg.step_times.size)
        return path, n_bg

    small = np.array(stack[: args.warmup_frames, :64, :64])
    warm_dt = (len(small) / 3600 * 1.5) / max(len(small) - 1, 1)
    sampler = ChildSampler()

    def warmup():
        run(small, max(1, len(small) // 2) * warm_dt)
        time.sleep(3 * sampler.interval)
        sampler.peak = 0  # count the timed calls' workers only

    with sampler:
        (path, n_bg), fig = timed(lambda: run(stack, split_time), warmup, args.repeat)
    timed_process = process_times[1:]  # drop the warm-up
    res = read_result(path, n)
    if args.out:
        np.savez(args.out, **res)
    if args.out_full:
        full = res["image_bg"][res["basinmap"]].astype(np.float32)
        if "bg_off" in res:
            full += res["bg_off"].astype(np.float32)[:, None, None]
        np.save(args.out_full, full)
    tmp.cleanup()
    emit(
        {
            "function": "BackgroundSparseMed",
            **fig,
            "process_seconds": statistics.median(timed_process),
            "import_seconds": import_s,
            "workers_peak_rss_mb": sampler.peak / 2**20,
            "shape": list(stack.shape),
            "dtype": in_dtype,
            "input_mb": in_mb,
            "uint8": conv,
            "load": args.load,
            "kernel_size": kernel,
            "split_time": split_time,
            "frames_per_split": split_time / dt,
            "n_backgrounds": n_bg,
            "n_backgrounds_kept": int(res["image_bg"].shape[0]),
            "num_cpus": args.num_cpus,
            "frac_cleansing": args.frac_cleansing,
            "offset_correction": not args.no_offset_correction,
            "compress": not args.no_compress,
            "mpx_per_s": stack.size / fig["seconds"] / 1e6,
        },
        "dcnum",
    )


if __name__ == "__main__":
    main()
