"""Tracking benchmark: camtrack vs MagTrack 1.0.0 on the same simulated beads.

Two independent image models (``--models``): "ours" (``simulate.bead_rois``: a sphere's
scattered field through a pupil by Hankel transforms) and "gauss" (the Gaussian-beam
model, ``simulate.gaussian_beam_rois``: exact pixel integrals of Gaussian beams, weak
rings, a camera of 2 e-/ADU, 100 ADU offset, 1.5 e- read noise). A tracker tuned on one
is checked on the other. Cases: 64 and 128 px ROIs, bright (4000 e-/px background) and dim (400 e-), with and
without a clipped centre (ADC clip at ``--clip-level`` x the background, the same for
the calibration sweep and the ROIs). x, y uniform within +-2 px of the ROI centre, z
uniform over +-4.5 um; a 101-plane LUT (-5 to +5 um, 100 nm steps, each plane the mean
of 16 noisy frames) shared by both trackers (MagTrack builds its own table from the very
same frames). uint16 input.

Reported errors: RMS error / RMS reported error (``x_err``, ``y_err``, ``z_err``) per
mode, target 0.8-1.25.

Accuracy: RMS error and mean bias vs truth, next to the Cramer-Rao lower bound (CRLB):
Fisher information of the simulator's expected image under Poisson + read noise,
``I_ij = sum_pixels (dmu/dth_i)(dmu/dth_j) / var``, derivatives by central differences
of the expected (clipped) ADU image, parameters (x, y, z), on a subset of the ROIs.
Clipped pixels carry no information in this bound. "NF": the same beads noise-free
(the simulator's expected image, float32). Sub-pixel bias: the error binned by the
sub-pixel phase ``x - floor(x)`` (10 bins); ``phase bias`` is the largest |bin mean|
over x and y on noise-free images (noisy: with its standard error in the JSON).

Speed (medians of ``--repeat`` timed calls after a warm-up): one core (this process and
MagTrack's subprocess pinned to one CPU, OpenMP/BLAS threads 1, ``workers=1``) and two
cores (``workers=2``) for camtrack. The speed ratio is the median over ``--pairs``
alternating timings of both trackers (on a shared machine the load drifts between two
timings taken a minute apart; each pair's are seconds apart). MagTrack runs in its own venv and process
(``peers/magtrack_track.py``); its float32 frames-last conversion is timed separately and
its ROIs/s are shown with and without it. Per-function ROIs/s of the building blocks
(64 px, bright, no clip) for both, with x, y (or z) RMS vs truth.

Run (about 6 min on 2 cores)::

    flock /tmp/bench.lock .venv/bin/python benchmarks/bench_tracking.py
    flock /tmp/bench.lock .venv/bin/python benchmarks/bench_tracking.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from camtrack import tracking as tr  # noqa: E402
from camtrack.simulate import (  # noqa: E402
    Camera,
    bead_image,
    bead_rois,
    gaussian_beam_image,
    gaussian_beam_rois,
    gaussian_beam_zsweep,
    zsweep,
)
from camtrack.tracking import build_zlut, track_rois  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers._find import run_runner  # noqa: E402

LEVELS = {"bright": 4000.0, "dim": 400.0}
MODELS = ("ours", "gauss")
GB_CAMERA = {
    "e_per_adu": 2.0,
    "offset_adu": 100.0,
    "read_noise_e": 1.5,
}  # gaussian_beam_rois' default
STEP_NM = 100.0
PLANES = np.arange(-5000.0, 5001.0, STEP_NM)
MODES = ("precise", "fast")
N_PHASE = 10
ALL_CPUS = sorted(os.sched_getaffinity(0))


def pin(cores: int) -> None:
    """Restrict this process (and the subprocesses it starts) to ``cores`` CPUs."""
    os.sched_setaffinity(0, set(ALL_CPUS[: max(1, cores)]))


def median_time(call, repeat: int) -> tuple[float, list[float], object]:
    times, out = [], None
    for _ in range(repeat):
        out = None
        t0 = time.perf_counter()
        out = call()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, out


def rms(a) -> float:
    a = np.asarray(a, np.float64)
    a = a[np.isfinite(a)]
    return float(np.sqrt(np.mean(a**2))) if a.size else float("nan")


def phase_bias(err: np.ndarray, pos: np.ndarray) -> tuple[float, float]:
    """Largest |mean error| over sub-pixel-phase bins, and the largest bin standard error."""
    phase = pos - np.floor(pos)
    idx = np.minimum((phase * N_PHASE).astype(int), N_PHASE - 1)
    worst, se = 0.0, 0.0
    for b in range(N_PHASE):
        e = err[(idx == b) & np.isfinite(err)]
        if e.size > 1:
            worst = max(worst, abs(float(e.mean())))
            se = max(se, float(e.std(ddof=1) / np.sqrt(e.size)))
    return worst, se


def crlb(x, y, z, size: int, truth, h=(0.01, 0.01, 1.0)) -> np.ndarray:
    """(N, 3) CRLB standard deviations of (x, y, z) of each ROI (clipped pixels: no info)."""
    cam = truth.camera
    scale = truth.background_e / cam.e_per_adu
    var = truth.variance_adu.astype(np.float64)

    def img(dx, dy, dz):
        mu = cam.offset_adu + bead_image(x + dx, y + dy, z + dz, size).astype(np.float64) * scale
        return np.minimum(mu, truth.saturation_adu)

    grads = []
    for i, step in enumerate(h):
        d = np.zeros(3)
        d[i] = step
        grads.append((img(*d) - img(*(-d))) / (2 * step))
    g = np.stack(grads, axis=1).reshape(len(x), 3, -1)
    w = 1.0 / np.maximum(var, 1e-9).reshape(len(x), -1)
    fisher = np.einsum("nip,np,njp->nij", g, w, g)
    return np.sqrt(np.einsum("nii->ni", np.linalg.inv(fisher)))


def accuracy(x, y, z, truth_xyz, clean_xyz=None) -> dict:
    tx, ty, tz = truth_xyz
    ex, ey, ez = np.asarray(x) - tx, np.asarray(y) - ty, np.asarray(z) - tz
    bx, sx = phase_bias(ex, tx)
    by, sy = phase_bias(ey, ty)
    out = {
        "x_rms_px": rms(ex),
        "y_rms_px": rms(ey),
        "z_rms_nm": rms(ez),
        "x_bias_px": float(np.nanmean(ex)),
        "y_bias_px": float(np.nanmean(ey)),
        "z_bias_nm": float(np.nanmean(ez)),
        "phase_bias_noisy_px": max(bx, by),
        "phase_bias_noisy_se_px": max(sx, sy),
        "nan": int(np.count_nonzero(~(np.isfinite(ex) & np.isfinite(ey) & np.isfinite(ez)))),
    }
    if clean_xyz is not None:
        cx, cy, cz = (np.asarray(v) for v in clean_xyz)
        out["nf_x_rms_px"] = rms(cx - tx)
        out["nf_y_rms_px"] = rms(cy - ty)
        out["nf_z_rms_nm"] = rms(cz - tz)
        out["phase_bias_px"] = max(phase_bias(cx - tx, tx)[0], phase_bias(cy - ty, ty)[0])
        # the same over the phase of z between LUT planes (interpolation error)
        out["z_step_phase_bias_nm"] = phase_bias(cz - tz, tz / STEP_NM)[0]
    return out


def simulate_gauss(size: int, level: str, clip: bool, n: int, n_crlb: int, clip_level: float, seed: int) -> dict:  # fmt: skip
    """The same case on the Gaussian-beam model; its CRLB by ``tracking.crlb``."""
    bg = LEVELS[level]
    sat = {"saturation": "adc", "saturation_level": clip_level} if clip else {}
    calib, ct = gaussian_beam_zsweep(PLANES, roi_size=size, frames_per_plane=16, background_e=bg, rng=seed + 1, **sat)  # fmt: skip
    rng = np.random.default_rng(seed + 2)
    c = (size - 1) / 2
    x, y = c + rng.uniform(-2, 2, n), c + rng.uniform(-2, 2, n)
    z = rng.uniform(-4500, 4500, n)
    rois, truth = gaussian_beam_rois(x, y, z, roi_size=size, background_e=bg, rng=seed + 3, **sat)
    k = min(n, n_crlb)
    g, off = GB_CAMERA["e_per_adu"], GB_CAMERA["offset_adu"]

    def model(xx, yy, zz):
        return off + gaussian_beam_image(xx, yy, zz, size) * bg / g

    sat_adu = truth.saturation_adu if clip else None
    bound = tr.crlb(model, x[:k], y[:k], z[:k], camera=GB_CAMERA, saturation=sat_adu)
    clipped = np.mean((rois >= truth.saturation_adu).reshape(n, -1).any(axis=1)) if clip else 0.0
    return {
        "calib": calib,
        "calib_z": ct.z_nm,
        "rois": rois,
        "clean": truth.expected_adu.astype(np.float32),
        "xyz": (x, y, z),
        "crlb": {"x_px": rms(bound.x), "y_px": rms(bound.y), "z_nm": rms(bound.z), "n_rois": k},
        "clipped_fraction": float(clipped),
        "saturation_adu": truth.saturation_adu if clip else None,
    }


def simulate(size: int, level: str, clip: bool, n: int, n_crlb: int, clip_level: float, seed: int) -> dict:  # fmt: skip
    bg = LEVELS[level]
    cam = Camera(shape=(size, size), rng=seed)
    sat = {"saturation": "adc", "saturation_level": clip_level} if clip else {}
    calib, ct = zsweep(PLANES, roi_size=size, frames_per_plane=16, background_e=bg, camera=cam, rng=seed + 1, **sat)  # fmt: skip
    rng = np.random.default_rng(seed + 2)
    c = (size - 1) / 2
    x, y = c + rng.uniform(-2, 2, n), c + rng.uniform(-2, 2, n)
    z = rng.uniform(-4500, 4500, n)
    rois, truth = bead_rois(
        x, y, z, roi_size=size, background_e=bg, camera=cam, rng=seed + 3, **sat
    )
    clean = truth.expected_adu  # the noise-free image (clipped like the ROIs), float32
    k = min(n, n_crlb)
    _, tsub = bead_rois(x[:k], y[:k], z[:k], roi_size=size, background_e=bg, camera=cam, noise=False, **sat)  # fmt: skip
    bound = crlb(x[:k], y[:k], z[:k], size, tsub)
    clipped = np.mean((rois >= truth.saturation_adu).reshape(n, -1).any(axis=1)) if clip else 0.0
    return {
        "calib": calib,
        "calib_z": ct.z_nm,
        "rois": rois,
        "clean": clean,
        "xyz": (x, y, z),
        "crlb": {
            "x_px": rms(bound[:, 0]),
            "y_px": rms(bound[:, 1]),
            "z_nm": rms(bound[:, 2]),
            "n_rois": k,
        },
        "clipped_fraction": float(clipped),
        "saturation_adu": truth.saturation_adu if clip else None,
    }


def run_camtrack(sim: dict, repeat: int, two_core: bool) -> tuple[dict, object]:
    rois, truth = sim["rois"], sim["xyz"]
    n = rois.shape[0]
    pin(1)
    t0 = time.perf_counter()
    lut = build_zlut(sim["calib"], sim["calib_z"])
    out = {"lut_build_s": time.perf_counter() - t0}
    for mode in MODES:
        track_rois(rois[:64], zlut=lut, mode=mode, workers=1)  # warm caches
        sec, all_s, res = median_time(lambda m=mode: track_rois(rois, zlut=lut, mode=m, workers=1), repeat)  # fmt: skip
        cl = track_rois(sim["clean"], zlut=lut, mode=mode, workers=1)
        m = {"rois_per_s": n / sec, "seconds_all": all_s}
        m.update(accuracy(res.x, res.y, res.z, truth, (cl.x, cl.y, cl.z)))
        # Reported standard errors against the observed scatter (want 0.8-1.25).
        m["err_ratio"] = {k: rms(getattr(res, k) - t) / rms(getattr(res, f"{k}_err")) for k, t in zip("xyz", truth, strict=True)}  # fmt: skip
        out[mode] = m
    if two_core:
        pin(len(ALL_CPUS))
        for mode in MODES:
            track_rois(rois[:64], zlut=lut, mode=mode, workers=2)
            sec, all_s, _ = median_time(lambda m=mode: track_rois(rois, zlut=lut, mode=m, workers=2), repeat)  # fmt: skip
            out[mode]["rois_per_s_2core"] = n / sec
            out[mode]["seconds_all_2core"] = all_s
        out["cores"] = len(ALL_CPUS)
    pin(1)
    return out, lut


def run_magtrack(sim: dict, repeat: int, tmp: Path, functions: dict | None = None) -> dict:
    """MagTrack's stack_to_xyzp on the same ROIs and LUT frames, in its own process."""
    pin(1)  # the subprocess inherits the single-CPU affinity
    for name in ("rois", "calib", "calib_z", "clean"):
        np.save(tmp / f"{name}.npy", sim[name])
    args = [tmp / "rois.npy", tmp / "calib.npy", tmp / "calib_z.npy", "--out", tmp / "mt.npz"]
    if functions is not None:
        np.save(tmp / "xy0.npy", functions["xy0"])
        np.save(tmp / "truth_xy.npy", np.stack(sim["xyz"][:2]))
        args += ["--functions", tmp / "xy0.npy", "--truth-xy", tmp / "truth_xy.npy"]
    rec = run_runner("magtrack", "magtrack_track.py", [*args, "--repeat", repeat])
    if "rois_per_s" not in rec:
        return {"skipped": rec.get("skipped") or rec}
    res = dict(np.load(tmp / "mt.npz"))
    nf = run_runner("magtrack", "magtrack_track.py", [tmp / "clean.npy", *args[1:3], "--out", tmp / "nf.npz"])  # fmt: skip
    clean = None
    if "rois_per_s" in nf:
        c = np.load(tmp / "nf.npz")
        clean = (c["x"], c["y"], c["z"])
    n = rec["n_rois"]
    out = {
        "rois_per_s": rec["rois_per_s"],
        "rois_per_s_with_convert": n / (rec["seconds"] + rec["convert_seconds"]),
        "convert_seconds": rec["convert_seconds"],
        "seconds_all": rec["seconds_all"],
        "lut_build_s": rec["zlut_seconds"],
        "peer_version": rec.get("peer_version"),
        "functions": rec.get("functions"),
        "outputs": {k: v for k, v in res.items() if k.startswith("fn_")},
    }
    out.update(accuracy(res["x"], res["y"], res["z"], sim["xyz"], clean))
    return out


def camtrack_speed(sim: dict, lut, repeat: int) -> dict:
    """camtrack's ROI/s per mode (one core), speed only (a further pair, see --pairs)."""
    pin(1)
    rois = sim["rois"]
    out = {}
    for mode in MODES:
        track_rois(rois[:64], zlut=lut, mode=mode, workers=1)
        sec, _, _ = median_time(lambda m=mode: track_rois(rois, zlut=lut, mode=m, workers=1), repeat)  # fmt: skip
        out[mode] = rois.shape[0] / sec
    return out


def magtrack_speed(repeat: int, tmp: Path) -> float | None:
    """MagTrack's ROI/s on the ROIs and LUT frames :func:`run_magtrack` saved in ``tmp``."""
    pin(1)
    args = [tmp / "rois.npy", tmp / "calib.npy", tmp / "calib_z.npy", "--out", tmp / "speed.npz"]
    rec = run_runner("magtrack", "magtrack_track.py", [*args, "--repeat", repeat])
    return rec.get("rois_per_s")


def paired_speed(sim: dict, lut, ct: dict, mt: dict, pairs: int, repeat: int, tmp: Path) -> dict:  # fmt: skip
    """Speed ratios from ``pairs`` alternating timings of both trackers, per mode.

    The machine is shared: another process's load drifts over the seconds between one
    tracker's timing and the other's, and one such pair gave ratios 2x off. Each pair's
    ratio compares timings taken close together (the first pair is the accuracy run's;
    later pairs time MagTrack first, then camtrack); the median over the pairs is the
    ratio reported.
    """
    ours = {m: [ct[m]["rois_per_s"]] for m in MODES}
    peer = [mt["rois_per_s"]]
    for _ in range(pairs - 1):
        v = magtrack_speed(repeat, tmp)
        if v is None:
            break
        peer.append(v)
        for m, rate in camtrack_speed(sim, lut, repeat).items():
            ours[m].append(rate)
    return {
        m: {
            "speed": statistics.median(o / p for o, p in zip(ours[m], peer, strict=True)),
            "camtrack_rois_per_s": ours[m],
            "magtrack_rois_per_s": peer,
        }
        for m in MODES
    }


def time_blocks(sim: dict, lut, repeat: int) -> tuple[dict, np.ndarray]:
    """camtrack's building blocks one by one (one core), with their RMS vs truth."""
    pin(1)
    rois = sim["rois"]
    n = rois.shape[0]
    tx, ty, tz = sim["xyz"]
    x0, y0 = tr.center_of_mass(rois, background="median")
    profiles = track_rois(rois, zlut=lut, workers=1).profiles
    calls = {
        "center_of_mass": lambda r: tr.center_of_mass(r, background="median"),
        "auto_conv": lambda r: tr.auto_conv(r, x0[: len(r)], y0[: len(r)]),
        "auto_conv_sub_pixel": lambda r: tr.auto_conv(
            r, x0[: len(r)], y0[: len(r)], sub_pixel=True
        ),
        "auto_conv_multiline": lambda r: tr.auto_conv_multiline(r, x0[: len(r)], y0[: len(r)]),
        "quadratic_interpolation": lambda r: tr.quadratic_interpolation(
            r, x0[: len(r)], y0[: len(r)]
        ),
        "qi": lambda r: tr.qi(r, x0[: len(r)], y0[: len(r)]),
        "radial_profile": lambda r: tr.radial_profile(r, tx[: len(r)], ty[: len(r)]),
        "fft_profile": lambda r: tr.fft_profile(r, tx[: len(r)], ty[: len(r)]),
        "lookup_z": lambda r: tr.lookup_z(profiles[: len(r)], lut),
    }
    out = {}
    for name, fn in calls.items():
        fn(rois[:64])
        sec, _, res = median_time(lambda fn=fn: fn(rois), repeat)
        row = {"rois_per_s": n / sec}
        if name == "lookup_z":
            row["z_rms_nm"] = rms(np.asarray(res) - tz)
        elif not name.endswith("profile"):
            row["x_rms_px"], row["y_rms_px"] = rms(res[0] - tx), rms(res[1] - ty)
        out[name] = row
    return out, np.stack([x0, y0])


# camtrack block -> MagTrack block
PEER_BLOCK = {
    "center_of_mass": "center_of_mass",
    "auto_conv": "auto_conv",
    "auto_conv_sub_pixel": "auto_conv_sub_pixel",
    "auto_conv_multiline": "auto_conv_multiline_sub_pixel",
    "quadratic_interpolation": "qi",
    "qi": None,
    "radial_profile": "radial_profile",
    "fft_profile": "fft_profile",
    "lookup_z": "lookup_z",
}


def peer_blocks(mt: dict, truth) -> dict:
    out = {}
    tx, ty, tz = truth
    for name, row in (mt.get("functions") or {}).items():
        r = {"rois_per_s": row["rois_per_s"]}
        o = mt["outputs"]
        if f"fn_{name}_x" in o:
            r["x_rms_px"], r["y_rms_px"] = rms(o[f"fn_{name}_x"] - tx), rms(o[f"fn_{name}_y"] - ty)
        if f"fn_{name}_z" in o:
            r["z_rms_nm"] = rms(o[f"fn_{name}_z"] - tz)
        out[name] = r
    return out


def fmt(v, spec: str) -> str:
    return "-" if v is None or (isinstance(v, float) and not np.isfinite(v)) else format(v, spec)


def print_case(r: dict) -> None:
    cb = r["crlb"]
    print(
        f"\n== [{r.get('model', 'ours')}] {r['size']}x{r['size']} {r['level']} ({r['background_e']:.0f} e-/px), "
        f"{'clipped centre' if r['clip'] else 'no clip'}"
        + (f" ({100 * r['clipped_fraction']:.0f}% of ROIs clip)" if r["clip"] else "")
        + f", {r['n_rois']} ROIs; CRLB x {cb['x_px']:.5f} px, y {cb['y_px']:.5f} px, "
        f"z {cb['z_nm']:.3f} nm"
    )
    hdr = (
        f"{'tracker':<17}{'ROI/s 1c':>9}{'2c':>8}{'x rms':>9}{'y rms':>9}{'x/CRLB':>7}{'NF x':>9}"
        f"{'ph.bias':>9}{'x bias':>9}{'z rms':>7}{'z/CRLB':>7}{'NF z':>6}{'z ph.b':>7}{'z bias':>7}{'NaN':>4}"
    )
    print(hdr)
    rows = [(f"camtrack {m}", r["camtrack"][m]) for m in MODES]
    mt = r["magtrack"]
    if "skipped" not in mt:
        rows.append(("magtrack 1.0.0", mt))
    for label, m in rows:
        print(
            f"{label:<17}{fmt(m['rois_per_s'], '.0f'):>9}{fmt(m.get('rois_per_s_2core'), '.0f'):>8}"
            f"{fmt(m['x_rms_px'], '.5f'):>9}{fmt(m['y_rms_px'], '.5f'):>9}"
            f"{fmt(m['x_rms_px'] / cb['x_px'], '.2f'):>7}{fmt(m.get('nf_x_rms_px'), '.5f'):>9}"
            f"{fmt(m.get('phase_bias_px'), '.5f'):>9}{fmt(m['x_bias_px'], '+.5f'):>9}"
            f"{fmt(m['z_rms_nm'], '.2f'):>7}{fmt(m['z_rms_nm'] / cb['z_nm'], '.2f'):>7}"
            f"{fmt(m.get('nf_z_rms_nm'), '.2f'):>6}{fmt(m.get('z_step_phase_bias_nm'), '.2f'):>7}"
            f"{fmt(m['z_bias_nm'], '+.2f'):>7}{m['nan']:>4}"
        )
    for m in MODES:
        e = r["camtrack"][m]["err_ratio"]
        print(f"  camtrack {m:<7} RMS error / RMS reported error: x {e['x']:.2f}, y {e['y']:.2f}, z {e['z']:.2f}")  # fmt: skip
    if "skipped" in mt:
        print(f"magtrack skipped: {mt['skipped']}")
        return
    print(
        f"magtrack with its float (H, W, N) conversion: {mt['rois_per_s_with_convert']:.0f} ROI/s "
        f"(conversion {1e3 * mt['convert_seconds']:.1f} ms); LUT build camtrack "
        f"{r['camtrack']['lut_build_s']:.2f} s, magtrack {mt['lut_build_s']:.2f} s"
    )
    for m in MODES:
        q = r["ratios"][m]
        print(
            f"  camtrack {m:<7} / magtrack: speed x{q['speed']:.1f} (1 core; pairs "
            f"{', '.join(f'{a / b:.1f}' for a, b in zip(q['speed_pairs']['camtrack_rois_per_s'], q['speed_pairs']['magtrack_rois_per_s'], strict=True))}), "
            f"x{q['speed_vs_with_convert']:.1f} vs its conversion included; "
            f"RMS x {q['x_rms']:.3f}, y {q['y_rms']:.3f}, z {q['z_rms']:.3f} "
            f"(magtrack error / camtrack: x {1 / q['x_rms']:.1f}, z {1 / q['z_rms']:.1f})"
        )


def print_blocks(blocks: dict) -> None:
    print("\n== building blocks, 64x64 bright, no clip, one core (start x, y: centre of mass)")
    print(f"{'camtrack':<24}{'ROI/s':>9}{'x rms':>9}{'y rms':>9}{'z rms':>7} | {'magtrack':<30}{'ROI/s':>9}{'x rms':>9}{'z rms':>7}{'speed':>7}")  # fmt: skip
    for name, row in blocks["camtrack"].items():
        pname = PEER_BLOCK[name]
        p = blocks["magtrack"].get(pname, {}) if pname else {}
        ratio = row["rois_per_s"] / p["rois_per_s"] if p else None
        print(
            f"{name:<24}{row['rois_per_s']:>9.0f}{fmt(row.get('x_rms_px'), '.4f'):>9}"
            f"{fmt(row.get('y_rms_px'), '.4f'):>9}{fmt(row.get('z_rms_nm'), '.2f'):>7} | "
            f"{(pname or '(none)'):<30}{fmt(p.get('rois_per_s'), '.0f'):>9}"
            f"{fmt(p.get('x_rms_px'), '.4f'):>9}{fmt(p.get('z_rms_nm'), '.2f'):>7}"
            f"{fmt(ratio, '.1f'):>7}"
        )


def targets(rows: list[dict]) -> list[dict]:
    """The issue's accuracy and speed targets, each with the worst figure over the cases."""
    checks = []

    def add(what, value, limit, ok):
        if np.isfinite(value):  # nan: no case of that kind in this run
            checks.append({"target": what, "worst": value, "limit": limit, "met": bool(ok)})

    def worst(cases, f):
        vals = [f(r) for r in cases]
        return max(vals) if vals else float("nan")

    # Issue #15, on every case of both image models.
    for model in MODELS:
        ms = [r for r in rows if r.get("model", "ours") == model]
        for m, lim_xy in (("precise", 1.5), ("fast", 3.0)):
            v = worst(ms, lambda r, m=m: max(r["camtrack"][m]["x_rms_px"] / r["crlb"]["x_px"], r["camtrack"][m]["y_rms_px"] / r["crlb"]["y_px"]))  # fmt: skip
            add(f"[{model}] {m} x,y RMS / CRLB <= {lim_xy}", v, lim_xy, v <= lim_xy)
        v = worst(ms, lambda r: r["camtrack"]["precise"]["z_rms_nm"] / r["crlb"]["z_nm"])
        add(f"[{model}] precise z RMS / CRLB <= 2", v, 2.0, v <= 2)
        # 2 nm where the bound allows it; the Gaussian-beam model's weak rings put the z
        # bound itself above 2 nm (3.2 nm at 64 px bright), so there 2x the bound.
        v = worst(ms, lambda r: r["camtrack"]["fast"]["z_rms_nm"] / max(2.0, 2.0 * r["crlb"]["z_nm"]))  # fmt: skip
        add(f"[{model}] fast z RMS / max(2 nm, 2 CRLB) <= 1", v, 1.0, v <= 1)
        for m in MODES:
            keys = "xyz"  # fast z included since its profile's kernels are moment-matched
            lo = min((r["camtrack"][m]["err_ratio"][k] for r in ms for k in keys), default=float("nan"))  # fmt: skip
            hi = worst(ms, lambda r, m=m, keys=keys: max(r["camtrack"][m]["err_ratio"][k] for k in keys))  # fmt: skip
            add(f"[{model}] {m} reported errors ({','.join(keys)}): RMS err / RMS reported >= 0.8", lo, 0.8, lo >= 0.8)  # fmt: skip
            add(f"[{model}] {m} reported errors ({','.join(keys)}): RMS err / RMS reported <= 1.25", hi, 1.25, hi <= 1.25)  # fmt: skip
        # Issue #18: speed against MagTrack in the same run, every case (1 core).
        mt = [r for r in ms if r.get("magtrack") and r["magtrack"].get("rois_per_s")]
        for m, lim in (("precise", 4.0), ("fast", 10.0)):
            v = min((r["ratios"][m]["speed"] for r in mt if "ratios" in r), default=float("nan"))  # fmt: skip
            add(f"[{model}] {m} >= {lim:g}x magtrack's ROI/s, every case, 1 core", v, lim, v >= lim)  # fmt: skip
    rows = [r for r in rows if r.get("model", "ours") == "ours"]  # the older targets: our model
    for clip in (False, True):
        cs = [r for r in rows if r["clip"] == clip]
        tag = "clipped" if clip else "no clip"
        xy_ratio = worst(cs, lambda r: max(r["camtrack"]["precise"]["x_rms_px"] / r["crlb"]["x_px"], r["camtrack"]["precise"]["y_rms_px"] / r["crlb"]["y_px"]))  # fmt: skip
        add(f"precise x,y RMS / CRLB <= 2 ({tag})", xy_ratio, 2.0, xy_ratio <= 2)
        nf = worst(cs, lambda r: max(r["camtrack"]["precise"]["nf_x_rms_px"], r["camtrack"]["precise"]["nf_y_rms_px"]))  # fmt: skip
        add(f"precise noise-free x,y RMS <= 0.0003 px ({tag})", nf, 3e-4, nf <= 3e-4)
        for level, lim in (("bright", 1.0), ("dim", 2.0)):
            v = worst([r for r in cs if r["level"] == level], lambda r: r["camtrack"]["precise"]["z_rms_nm"])  # fmt: skip
            add(f"precise z RMS <= {lim} nm {level} ({tag})", v, lim, v <= lim)
        bright = [r for r in cs if r["level"] == "bright"]
        v = worst(bright, lambda r: max(r["camtrack"]["fast"]["x_rms_px"], r["camtrack"]["fast"]["y_rms_px"]))  # fmt: skip
        add(f"fast x,y RMS <= 0.008 px bright ({tag})", v, 0.008, v <= 0.008)
        v = worst(bright, lambda r: r["camtrack"]["fast"]["z_rms_nm"])
        add(f"fast z RMS <= 2 nm bright ({tag})", v, 2.0, v <= 2)
        for m in MODES:
            v = worst(cs, lambda r, m=m: r["camtrack"][m]["nan"])
            add(f"{m}: no NaN ({tag})", v, 0, v == 0)
            v = worst(cs, lambda r, m=m: r["camtrack"][m]["phase_bias_px"])
            add(f"{m}: sub-pixel phase bias <= 0.001 px, noise-free ({tag})", v, 1e-3, v <= 1e-3)
    plain = [r for r in rows if not r["clip"] and r["level"] == "bright"]
    for size, lim in ((64, 30000), (128, 8000)):
        v = [r["camtrack"]["fast"]["rois_per_s"] for r in plain if r["size"] == size]
        if v:
            add(f"fast >= {lim} ROI/s at {size}x{size}, 1 core", min(v), lim, min(v) >= lim)
        q = [r["ratios"]["fast"]["speed"] for r in plain if r["size"] == size and "ratios" in r]
        if q:
            add(f"fast >= 10x magtrack at {size}x{size}, 1 core", min(q), 10, min(q) >= 10)
    v = [r["camtrack"]["precise"]["rois_per_s"] for r in plain if r["size"] == 64]
    if v:
        add("precise >= 3000 ROI/s at 64x64, 1 core (aim 10000)", min(v), 3000, min(v) >= 3000)
    sp = [r["camtrack"][m]["rois_per_s_2core"] / r["camtrack"][m]["rois_per_s"] for r in plain for m in MODES if "rois_per_s_2core" in r["camtrack"][m]]  # fmt: skip
    if sp and len(ALL_CPUS) > 1:
        add("both cores used: 2-core / 1-core speed-up (want > 1.5)", min(sp), 1.5, min(sp) > 1.5)
    return checks


def scmos_cases(n: int, seed: int) -> list[dict]:
    """sCMOS maps with 0.1 % hot pixels: x, y with the maps given, ignored, vs the bound.

    Frames of 128 x 128 px from the Gaussian-beam model through ``scmos_maps`` (2 % gain
    spread, 3 ADU offset spread, lognormal read noise, 0.1 % hot pixels at 60 e-), one
    bead within +-0.4 px of a fixed spot (so its 64 px ROI keeps one corner and one
    bound), z over +-2 um; ``track_beads`` cuts the full-frame maps with the ROI.
    """
    from camtrack.simulate import scmos_maps

    out = []
    frame, size, x0, y0 = 128, 64, 28, 32
    for level in LEVELS:
        bg = LEVELS[level]
        maps = scmos_maps((frame, frame), rng=seed)
        rng = np.random.default_rng(seed + 10)
        x, y = 59.5 + rng.uniform(-0.4, 0.4, n), 63.5 + rng.uniform(-0.4, 0.4, n)
        z = rng.uniform(-2000, 2000, n)
        stack, _ = gaussian_beam_rois(x, y, z, size=frame, background_e=bg, maps=maps, rng=seed + 20)  # fmt: skip
        cal = maps.to_calibration()
        cam = tr.as_camera_model(cal).crop([y0], [x0], size)
        g, off = cam.e_per_adu[0], cam.offset_adu[0]

        def model(xx, yy, zz, g=g, off=off, bg=bg):
            return off + gaussian_beam_image(xx, yy, zz, size) * bg / g

        bound = tr.crlb(model, x - x0, y - y0, z, camera={"e_per_adu": g, "offset_adu": off, "read_noise_e": cam.read_noise_e[0]}).rms()  # fmt: skip
        row = {"level": level, "background_e": bg, "n": n, "crlb_x_px": bound["x"], "crlb_y_px": bound["y"], "hot_in_roi": int(maps.hot[y0 : y0 + size, x0 : x0 + size].sum())}  # fmt: skip
        for m in MODES:
            given = tr.track_beads(stack, [(x[0], y[0])], roi_size=size, mode=m, camera=cal)
            ignored = tr.track_beads(stack, [(x[0], y[0])], roi_size=size, mode=m)
            gx = max(rms(given.x - x) / bound["x"], rms(given.y - y) / bound["y"])
            ix = max(rms(ignored.x - x) / bound["x"], rms(ignored.y - y) / bound["y"])
            row[m] = {"maps_xy_over_crlb": gx, "ignored_xy_over_crlb": ix, "gain": ix / gx, "err_ratio_x": rms(given.x - x) / rms(given.x_err)}  # fmt: skip
        out.append(row)
    return out


def print_scmos(rows: list[dict]) -> None:
    print("\n== sCMOS maps, 0.1 % hot pixels (Gaussian-beam frames, 64 px ROIs): worst of x, y / CRLB")  # fmt: skip
    for r in rows:
        for m in MODES:
            q = r[m]
            print(
                f"  {r['level']:<6} {m:<7} maps given {q['maps_xy_over_crlb']:.2f}x, ignored "
                f"{q['ignored_xy_over_crlb']:.2f}x (gain {q['gain']:.2f}x); CRLB x "
                f"{r['crlb_x_px']:.4f} px; {r['hot_in_roi']} hot px in the ROI; RMS err / "
                f"reported {q['err_ratio_x']:.2f}"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--levels", nargs="+", choices=list(LEVELS), default=list(LEVELS))
    ap.add_argument("--clip", choices=["no", "yes", "both"], default="both")
    ap.add_argument("--clip-level", type=float, default=3.0, help="ADC clip, x background")
    ap.add_argument("--n", type=int, default=2000, help="ROIs per case at 64 px")
    ap.add_argument("--n128", type=int, default=1000, help="ROIs per case at 128 px")
    ap.add_argument("--n-crlb", type=int, default=250, help="ROIs for the CRLB")
    ap.add_argument("--repeat", type=int, default=3, help="timed calls (median)")
    ap.add_argument("--pairs", type=int, default=3, help="alternating speed timings of both trackers per case; the speed ratio is the median of the pairs' ratios")  # fmt: skip
    ap.add_argument("--no-magtrack", action="store_true")
    ap.add_argument("--no-blocks", action="store_true")
    ap.add_argument("--no-2core", action="store_true")
    ap.add_argument("--quick", action="store_true", help="64 px, bright, 500 ROIs, 3 repeats")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scmos-only", action="store_true", help="only the sCMOS-map cases (own JSON)")  # fmt: skip
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("results") / "bench_tracking.json")  # fmt: skip
    args = ap.parse_args()
    if args.quick:
        args.sizes, args.levels, args.n = [64], ["bright"], 500
    if args.scmos_only:
        rows = scmos_cases(400, args.seed)
        print_scmos(rows)
        path = args.out.with_name(args.out.stem + "_scmos.json")
        path.write_text(json.dumps(_finite({"benchmark": "bench_tracking --scmos-only", "cases": rows}), indent=2, default=_json_default))  # fmt: skip
        return
    clips = {"no": [False], "yes": [True], "both": [False, True]}[args.clip]
    t_start = time.perf_counter()
    rows, blocks = [], None
    with tempfile.TemporaryDirectory(prefix="bench_tracking_") as td:
        tmp = Path(td)
        cases = [(mo, s, lv, c) for mo in args.models for s in args.sizes for lv in args.levels for c in clips]  # fmt: skip
        for model, size, level, clip in cases:
            n = args.n if size <= 64 else args.n128
            make = simulate if model == "ours" else simulate_gauss
            sim = make(size, level, clip, n, args.n_crlb, args.clip_level, args.seed)
            ct, lut = run_camtrack(sim, args.repeat, not args.no_2core)
            want_blocks = not args.no_blocks and blocks is None and model == "ours" and size == 64 and level == "bright" and not clip  # fmt: skip
            ours, xy0 = time_blocks(sim, lut, args.repeat) if want_blocks else (None, None)
            mt = {"skipped": "--no-magtrack"}
            if not args.no_magtrack:
                fn = {"xy0": xy0} if want_blocks else None
                mt = run_magtrack(sim, args.repeat, tmp, fn)
            r = {
                "model": model,
                "size": size,
                "level": level,
                "background_e": LEVELS[level],
                "clip": clip,
                "clip_level": args.clip_level if clip else None,
                "clipped_fraction": sim["clipped_fraction"],
                "n_rois": n,
                "crlb": sim["crlb"],
                "camtrack": ct,
                "magtrack": {k: v for k, v in mt.items() if k != "outputs"},
            }
            if want_blocks:
                blocks = {"camtrack": ours, "magtrack": peer_blocks(mt, sim["xyz"])}
            if "skipped" not in mt:
                pairs = paired_speed(sim, lut, ct, mt, args.pairs, args.repeat, tmp)
                r["ratios"] = {
                    m: {
                        "speed": pairs[m]["speed"],
                        "speed_first_pair": ct[m]["rois_per_s"] / mt["rois_per_s"],
                        "speed_pairs": pairs[m],
                        "speed_vs_with_convert": ct[m]["rois_per_s"]
                        / mt["rois_per_s_with_convert"],
                        "x_rms": ct[m]["x_rms_px"] / mt["x_rms_px"],
                        "y_rms": ct[m]["y_rms_px"] / mt["y_rms_px"],
                        "z_rms": ct[m]["z_rms_nm"] / mt["z_rms_nm"],
                    }
                    for m in MODES
                }
            print_case(r)
            rows.append(r)
    pin(len(ALL_CPUS))
    if blocks:
        print_blocks(blocks)
    checks = targets(rows)
    print("\n== targets (worst case over the runs above)")
    for c in checks:
        print(f"  [{'met' if c['met'] else 'MISSED'}] {c['target']}: {c['worst']:.5g}")
    wall = time.perf_counter() - t_start
    print(f"\ntotal {wall:.0f} s; ratios are camtrack / magtrack (speed: > 1 faster, RMS: < 1 better)")  # fmt: skip
    record = {
        "benchmark": "bench_tracking",
        "argv": sys.argv[1:],
        "cpus": len(ALL_CPUS),
        "lut": {"planes": int(PLANES.size), "step_nm": 100.0, "frames_per_plane": 16},
        "wall_s": wall,
        "cases": rows,
        "blocks_64_bright": blocks,
        "targets": checks,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(_finite(record), indent=2, default=_json_default))
    tmp_out.replace(args.out)


def _finite(o):
    """NaN and inf as null, so the JSON is strict."""
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite(v) for v in o]
    if isinstance(o, (float, np.floating)) and not np.isfinite(o):
        return None
    return o


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o).__name__)


if __name__ == "__main__":
    main()
