"""Fit traces with Tweezepy 1.2.7 (PSD and Allan variance, MLE); print one JSON line.

Run with a Python that has ``tweezepy==1.2.7`` and ``numba`` (it imports numba without
declaring it), e.g. a throw-away venv::

    /root/.pyenv/versions/3.11.7/bin/python -m venv /tmp/tweezepy-venv
    /tmp/tweezepy-venv/bin/pip install tweezepy==1.2.7 numba
    /tmp/tweezepy-venv/bin/python benchmarks/peers/tweezepy_force.py traces.npy 60 \
        --kt 4.0888 [--gamma G] [--methods psd,av]

``traces.npy`` is (n_traces, n_frames) in nm. For each trace and method:
``PSD(trace, fs).mlefit(tracking_error=True, kT=kt[, gamma=G])`` (its default PSD model
is Lansdorp & Saleh 2012, Eq. 7, which assumes exposure = frame period) and the same with
``AV``. The record holds per method the lists ``k``, ``k_error``, ``g`` (or the fixed
value) and ``seconds`` (wall time per trace, after one warm-up fit for numba's JIT).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("traces")
    ap.add_argument("fs", type=float)
    ap.add_argument("--kt", type=float, default=4.1)
    ap.add_argument("--gamma", type=float, default=None)
    ap.add_argument("--methods", default="psd,av")
    args = ap.parse_args()
    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # keep stdout for the one JSON line
    t0 = time.perf_counter()
    import tweezepy
    from tweezepy import AV, PSD

    import_s = time.perf_counter() - t0
    traces = np.load(args.traces)
    kw = {"tracking_error": True, "kT": args.kt}
    if args.gamma is not None:
        kw["gamma"] = args.gamma
    out = {"peer": "tweezepy", "peer_version": getattr(tweezepy, "__version__", "1.2.7")}
    out["import_seconds"] = import_s
    for name in args.methods.split(","):
        cls = {"psd": PSD, "av": AV}[name]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warm = cls(traces[0][: min(traces.shape[1], 5000)], args.fs)
            warm.mlefit(**kw)
            rec = {"k": [], "k_error": [], "g": [], "seconds": []}
            for tr in traces:
                t0 = time.perf_counter()
                fit = cls(np.asarray(tr, dtype=float), args.fs)
                fit.mlefit(**kw)
                rec["seconds"].append(time.perf_counter() - t0)
                res = fit.results
                rec["k"].append(float(res["k"]))
                rec["k_error"].append(float(res["k_error"]))
                rec["g"].append(float(res.get("g", args.gamma or np.nan)))
        out[name] = rec
    sys.stdout = real_stdout
    print(json.dumps(out))


if __name__ == "__main__":
    main()
