"""Run smlmLP's ``detect_gain`` on a (T, Y, X) .npy stack; print one JSON line.

Run with the smlmlp venv's Python (see ``_find.py``)::

    python benchmarks/peers/smlmlp_gain.py stack.npy [--nbins 50] [--repeat 3]

``e_per_adu`` is smlmLP's scalar "gain" (1 / slope of the robust variance vs the robust
mean, both in ADU, fitted on the bins between the 33rd and 66th percentile of the mean
map); ``info`` keeps the fit and the binned points, not the maps (``--save-maps``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import emit, load_stack, quiet_stdout, timed


def _info(info: dict) -> dict:
    fit = info["fit"][0]
    mean_bins = np.asarray(info["mean_bins"][0], dtype=float)
    var_bins = np.asarray(info["var_bins"][0], dtype=float)
    gain_map = np.asarray(info["gain"][0], dtype=float)
    return {
        "slope": float(fit.slope),
        "intercept": float(fit.intercept),
        "rvalue": float(fit.rvalue),
        "stderr": float(fit.stderr),
        "intercept_stderr": float(fit.intercept_stderr),
        "mean_bins": mean_bins,
        "var_bins": var_bins,
        "n_bins_used": int(mean_bins.size),
        "mean_map_median": float(np.median(info["mean"][0])),
        "var_map_median": float(np.median(info["var"][0])),
        "gain_map_median": float(np.nanmedian(gain_map[np.isfinite(gain_map)]))
        if np.isfinite(gain_map).any()
        else None,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input", help=".npy stack (T, Y, X), any dtype")
    ap.add_argument("--nbins", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--load", choices=["ram", "mmap"], default="ram")
    ap.add_argument("--warmup-frames", type=int, default=60)
    ap.add_argument("--save-maps", help="save the mean, var and gain maps to this .npz")
    args = ap.parse_args(argv)
    quiet_stdout()

    t0 = time.perf_counter()
    from smlmlp import detect_gain

    import_s = time.perf_counter() - t0
    stack = load_stack(args.input, args.load)
    small = np.array(stack[: args.warmup_frames, :64, :64])
    warm_error = []

    def warmup():
        try:
            detect_gain([small], nbins=args.nbins)
        except Exception as exc:  # a tiny flat slice may leave no bins to fit
            warm_error.append(repr(exc))

    (gains, info), fig = timed(lambda: detect_gain([stack], nbins=args.nbins), warmup, args.repeat)
    if args.save_maps:
        np.savez(args.save_maps, mean=info["mean"][0], var=info["var"][0], gain=info["gain"][0])
    rec = {
        "function": "detect_gain",
        "e_per_adu": float(gains[0]),
        "info": _info(info),
        **fig,
        "import_seconds": import_s,
        "shape": list(stack.shape),
        "dtype": str(stack.dtype),
        "input_mb": stack.nbytes / 1e6,
        "load": args.load,
        "nbins": args.nbins,
    }
    if warm_error:
        rec["warmup_error"] = warm_error[0]
    emit(rec, "smlmlp")


if __name__ == "__main__":
    main()
