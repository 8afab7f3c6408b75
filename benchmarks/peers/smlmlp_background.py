"""Run smlmLP's spatial-mean or temporal-median background on a .npy stack; one JSON line.

Run with the smlmlp venv's Python (see ``_find.py``)::

    python benchmarks/peers/smlmlp_background.py stack.npy spatial_mean [--radius 7]
    python benchmarks/peers/smlmlp_background.py stack.npy temporal_median [--window 25]

``spatial_mean`` is ``bkgd_spatial_mean`` (Gaussian filter per frame, sigma = radius / 2);
``temporal_median`` is ``bkgd_temporal_median`` with ``median_window_fr`` = ``--window``,
a half-width (25 -> 51 frames). Both cast the stack to float32 first (inside the timing).
``--out`` saves the (T, Y, X) float32 background for accuracy comparisons.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import emit, load_stack, quiet_stdout, timed


def _import():
    # smlmlp 0.1.20 imports ``get_xp`` from stacklp, which stacklp 0.1.9 lacks.
    import arrlp
    import stacklp

    if not hasattr(stacklp, "get_xp"):
        stacklp.get_xp = arrlp.get_xp
    from smlmlp import bkgd_spatial_mean, bkgd_temporal_median

    return bkgd_spatial_mean, bkgd_temporal_median


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input", help=".npy stack (T, Y, X), any dtype")
    ap.add_argument("mode", choices=["spatial_mean", "temporal_median"])
    ap.add_argument("--radius", type=float, default=7.0, help="spatial_mean radius, px")
    ap.add_argument("--window", type=int, default=25, help="temporal_median half-width")
    ap.add_argument("--parallel", action="store_true", help="smlmLP's parallel=True")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--load", choices=["ram", "mmap"], default="ram")
    ap.add_argument("--warmup-frames", type=int, default=60)
    ap.add_argument("--out", help="save the background (float32 .npy)")
    args = ap.parse_args(argv)
    quiet_stdout()

    t0 = time.perf_counter()
    spatial, temporal = _import()
    import_s = time.perf_counter() - t0
    stack = load_stack(args.input, args.load)
    if args.mode == "spatial_mean":

        def run(data):
            return spatial([data], channels_mean_radii_pix=args.radius, parallel=args.parallel)
    else:

        def run(data):
            return temporal([data], median_window_fr=args.window, parallel=args.parallel)

    n_warm = max(args.warmup_frames, min(stack.shape[0], 2 * args.window + 2))
    small = np.array(stack[:n_warm, :64, :64])
    (bkgds, noise_corr, info), fig = timed(lambda: run(stack), lambda: run(small), args.repeat)
    bg = bkgds[0]
    if args.out:
        np.save(args.out, np.asarray(bg, dtype=np.float32))
    rec = {
        "function": "bkgd_" + args.mode,
        "mode": args.mode,
        **fig,
        "import_seconds": import_s,
        "shape": list(stack.shape),
        "dtype": str(stack.dtype),
        "out_dtype": str(bg.dtype),
        "input_mb": stack.nbytes / 1e6,
        "load": args.load,
        "parallel": args.parallel,
        "noise_correction": float(noise_corr[0]),
    }
    if args.mode == "spatial_mean":
        rec["radius"] = args.radius
        rec["sigmas"] = list(info["spatial_mean_sigmas"][0])
    else:
        rec["window_half_width"] = args.window
        rec["window_frames"] = 2 * args.window + 1
    emit(rec, "smlmlp")


if __name__ == "__main__":
    main()
