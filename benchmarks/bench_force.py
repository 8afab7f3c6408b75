"""Force calibration benchmark: camtrack.force vs Tweezepy 1.2.7 on the same traces.

Cases (issue 16), 1.5 nm white tracking noise, bead R = 500 nm with its centre 3 um
above the surface (Faxén drag), pendulum length 3 um:

- low: corner 1 Hz, fs 60 Hz, exposure W = 1/fs, 10 minutes;
- medium: corner 0.4 fs = 24 Hz, fs 60 Hz, W = 1/fs, 10 minutes;
- high: corner 80 Hz above fs/2 = 50 Hz, fs 100 Hz, short shutter W = 0.3/fs, 10 minutes;

each with the drag fitted and with it fixed at the true value (camtrack: from radius and
height; Tweezepy: ``gamma=``). Traces: ``camtrack.simulate.tether_trace`` (exact OU,
exposure-averaged). Tweezepy gets the true kT (its default 4.1 pN nm would add 0.3 %).

Reported per method: bias (mean of F / F_true - 1) and scatter (standard deviation),
coverage of the 68 % intervals (Tweezepy: k +- k_error), and seconds per trace. Speed:
100 beads x 100,000 frames through camtrack's batch PSD fit vs Tweezepy's PSD per trace
(timed on a few traces, per-trace ratio).

Tweezepy runs as a subprocess under its own Python (``peers/tweezepy_force.py``):
``$CAMTRACK_PEER_TWEEZEPY`` (interpreter or venv folder), else ``/tmp/tweezepy-venv``
(make it with ``python3.11 -m venv /tmp/tweezepy-venv && /tmp/tweezepy-venv/bin/pip
install tweezepy==1.2.7 numba``); without one the peer columns say "skipped".

End to end: bead images rendered along simulated trajectories (``tether_rois``), tracked
by ``track_rois``, calibrated; 2-minute traces (24 s with --quick).

Run (about 8 minutes on 2 cores; --quick about 1)::

    .venv/bin/python benchmarks/bench_force.py [--quick] [--traces 16]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from camtrack.force import calibrate_force, faxen_drag, kt_pn_nm
from camtrack.simulate import tether_rois, tether_trace
from camtrack.tracking import track_rois

HERE = Path(__file__).resolve().parent
R_NM, H_NM, NOISE_NM, T_K = 500.0, 3000.0, 1.5, 296.15
GAMMA = faxen_drag(R_NM, H_NM)
KT = kt_pn_nm(T_K)
CASES = {  # fs (Hz), corner (Hz), exposure (x 1/fs)
    "low": (60.0, 1.0, 1.0),
    "medium": (60.0, 24.0, 1.0),
    "high": (100.0, 80.0, 0.3),
}


def peer_python() -> Path | None:
    env = os.environ.get("CAMTRACK_PEER_TWEEZEPY")
    cands = [Path(env)] if env else [Path("/tmp/tweezepy-venv"), Path("/work/peer-venvs/tweezepy")]
    for c in cands:
        p = c / "bin" / "python" if c.is_dir() else c
        if p.is_file() and os.access(p, os.X_OK):
            return p
    return None


def run_peer(traces: np.ndarray, fs: float, gamma: float | None, methods="psd,av") -> dict:
    py = peer_python()
    if py is None:
        return {"skipped": "no Tweezepy interpreter (see the module docstring)"}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "traces.npy"
        np.save(path, traces)
        cmd = [str(py), str(HERE / "peers" / "tweezepy_force.py"), str(path), str(fs)]
        cmd += ["--kt", repr(KT), "--methods", methods]
        if gamma is not None:
            cmd += ["--gamma", repr(gamma)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=3600)
    if proc.returncode != 0:
        return {"error": proc.stderr[-2000:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def stats(force, lo, hi, truth, seconds) -> dict:
    rel = np.asarray(force) / truth - 1
    ok = np.isfinite(rel)
    cov = np.mean((np.asarray(lo) <= truth) & (truth <= np.asarray(hi)))
    return {
        "bias_pct": float(np.mean(rel[ok]) * 100),
        "scatter_pct": float(np.std(rel[ok], ddof=1) * 100),
        "coverage": float(cov),
        "s_per_trace": float(seconds),
        "n": int(ok.sum()),
    }


def bench_case(name: str, seconds: float, n: int, rng: int) -> dict:
    fs, fc, wf = CASES[name]
    kappa = 2 * np.pi * GAMMA * fc
    force = kappa * H_NM
    frames = int(seconds * fs)
    sim = tether_trace(
        frames,
        fs,
        force_pn=force,
        length_nm=H_NM,
        exposure_s=wf / fs,
        radius_nm=R_NM,
        height_nm=H_NM,
        noise_nm=NOISE_NM,
        n_beads=n,
        rng=rng,
    )
    out = {
        "fs_hz": fs,
        "corner_hz": fc,
        "exposure_s": wf / fs,
        "frames": frames,
        "force_pn": force,
        "rows": {},
    }
    for mode in ("fitted", "fixed"):
        kw = {"radius_nm": R_NM, "height_nm": H_NM} if mode == "fixed" else {}
        methods = ["psd", "allan", "hadamard", "auto"] + (["equipartition"] if kw else [])
        for m in methods:
            t0 = time.perf_counter()
            res = calibrate_force(
                sim.x_nm,
                fs,
                length_nm=H_NM,
                exposure_s=wf / fs,
                method=m,
                temperature_k=T_K,
                **kw,
            )
            dt = (time.perf_counter() - t0) / n
            lo, hi = res.force_ci_pn.T
            out["rows"][f"camtrack {m} ({mode})"] = stats(res.force_pn, lo, hi, force, dt)
        peer = run_peer(sim.x_nm, fs, GAMMA if mode == "fixed" else None)
        for key, label in (("psd", "PSD"), ("av", "AV")):
            if key not in peer:
                out["rows"][f"tweezepy {label} ({mode})"] = {"skipped": str(peer)[:200]}
                continue
            k = np.array(peer[key]["k"])
            ke = np.array(peer[key]["k_error"])
            out["rows"][f"tweezepy {label} ({mode})"] = stats(
                k * H_NM,
                (k - ke) * H_NM,
                (k + ke) * H_NM,
                force,
                np.median(peer[key]["seconds"]),
            )
    return out


def bench_speed(n_beads: int, frames: int, n_peer: int) -> dict:
    fs, fc, _wf = CASES["medium"]
    kappa = 2 * np.pi * GAMMA * fc
    sim = tether_trace(
        frames,
        fs,
        force_pn=kappa * H_NM,
        length_nm=H_NM,
        radius_nm=R_NM,
        height_nm=H_NM,
        noise_nm=NOISE_NM,
        n_beads=n_beads,
        rng=99,
    )
    out = {"n_beads": n_beads, "frames": frames}
    for mode, kw in (("fitted", {}), ("fixed", {"radius_nm": R_NM, "height_nm": H_NM})):
        t0 = time.perf_counter()
        calibrate_force(sim.x_nm, fs, length_nm=H_NM, **kw)
        total = time.perf_counter() - t0
        peer = run_peer(sim.x_nm[:n_peer], fs, GAMMA if mode == "fixed" else None, "psd")
        per = float(np.median(peer["psd"]["seconds"])) if "psd" in peer else None
        out[mode] = {
            "camtrack_total_s": total,
            "camtrack_s_per_trace": total / n_beads,
            "tweezepy_s_per_trace": per,
            "speedup_per_trace": None if per is None else per / (total / n_beads),
        }
    return out


def bench_end_to_end(n: int, seconds: float) -> dict:
    """Bead images along simulated trajectories (4 positions per exposure, 32 px ROIs,
    100 nm/px, default bead and camera, 4000 e- background), tracked by camtrack
    (precise), converted to nm, calibrated by PSD. Corner 5 Hz at fs 60 Hz, W = 1/fs."""
    fs, nm_px, size = 60.0, 100.0, 32
    kappa = 2 * np.pi * GAMMA * 5.0
    force = kappa * H_NM
    frames = int(seconds * fs)
    sim = tether_trace(
        frames, fs, force_pn=force, length_nm=H_NM, radius_nm=R_NM, height_nm=H_NM,
        n_beads=n, substeps=4, rng=7,
    )  # fmt: skip
    tracked = np.empty_like(sim.x_nm)
    t_render = t_track = 0.0
    for b in range(n):
        t0 = time.perf_counter()
        rois = tether_rois(sim.x_sub_nm[b], nm_per_px=nm_px, roi_size=size, rng=1000 + b)
        t1 = time.perf_counter()
        tracked[b] = (np.asarray(track_rois(rois).x) - (size - 1) / 2) * nm_px
        t_track += time.perf_counter() - t1
        t_render += t1 - t0
    out = {"frames": frames, "traces": n, "force_pn": force, "render_s": t_render,
           "track_s": t_track, "rows": {}}  # fmt: skip
    for mode, kw in (("fitted", {}), ("fixed", {"radius_nm": R_NM, "height_nm": H_NM})):
        img = calibrate_force(tracked, fs, length_nm=H_NM, **kw)
        ref = calibrate_force(sim.x_nm, fs, length_nm=H_NM, **kw)
        lo, hi = img.force_ci_pn.T
        row = stats(img.force_pn, lo, hi, force, 0.0)
        row["vs_simulated_trace_pct"] = float(np.mean(img.force_pn / ref.force_pn - 1) * 100)
        out["rows"][f"images -> camtrack psd ({mode})"] = row
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="2-minute traces, 30k-frame speed test")
    ap.add_argument("--traces", type=int, default=16)
    ap.add_argument("--out", default=str(HERE / "results" / "bench_force.json"))
    args = ap.parse_args()
    seconds = 120.0 if args.quick else 600.0
    report = {"traces_per_case": args.traces, "seconds_per_trace": seconds, "cases": {}}
    for i, name in enumerate(CASES):
        report["cases"][name] = bench_case(name, seconds, args.traces, rng=100 + i)
        print(
            f"\n{name}: fs {CASES[name][0]:g} Hz, corner {CASES[name][1]:g} Hz, "
            f"W = {CASES[name][2]:g}/fs, {seconds:g} s, {args.traces} traces"
        )
        print(f"  {'method':34s} {'bias %':>8s} {'scatter %':>10s} {'cover':>6s} {'s/trace':>9s}")
        for label, r in report["cases"][name]["rows"].items():
            if "skipped" in r:
                print(f"  {label:34s} skipped")
                continue
            print(
                f"  {label:34s} {r['bias_pct']:8.2f} {r['scatter_pct']:10.2f} "
                f"{r['coverage']:6.2f} {r['s_per_trace']:9.4f}"
            )
    e2e = report["end_to_end"] = bench_end_to_end(args.traces, seconds / 5)
    print(
        f"\nend to end: {args.traces} x {e2e['frames']} frames of bead images "
        f"(render {e2e['render_s']:.0f} s, track {e2e['track_s']:.0f} s)"
    )
    for label, r in e2e["rows"].items():
        print(f"  {label:34s} bias {r['bias_pct']:6.2f} %  scatter {r['scatter_pct']:5.2f} %  "
              f"cover {r['coverage']:.2f}  vs simulated trace {r['vs_simulated_trace_pct']:+.3f} %")  # fmt: skip
    frames = 30000 if args.quick else 100000
    report["speed"] = bench_speed(100, frames, 4)
    sp = report["speed"]
    print(f"\nspeed, 100 beads x {frames} frames (medium case), PSD fit:")
    for mode in ("fitted", "fixed"):
        s = sp[mode]
        peer = (
            "skipped"
            if s["tweezepy_s_per_trace"] is None
            else f"{s['tweezepy_s_per_trace']:.3f} s/trace"
        )
        ratio = "" if s["speedup_per_trace"] is None else f"  -> {s['speedup_per_trace']:.0f}x"
        print(
            f"  drag {mode:6s}: camtrack {s['camtrack_total_s']:.2f} s total, "
            f"{s['camtrack_s_per_trace'] * 1e3:.1f} ms/trace; tweezepy {peer}{ratio}"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(args.out).with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=1))
    tmp.replace(args.out)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
