"""Tracking benchmark: accuracy (RMS vs truth, next to the Cramer-Rao bound) and speed.

Simulated bright beads (4000 e-/px background), x, y uniform within +-2 px of the ROI
centre, z over +-4.5 um, a 101-plane LUT at 100 nm steps (16 noisy frames per plane).
CRLB: Fisher information of the simulator's expected image under Poisson + read noise,
I_ij = sum_pixels (dmu/dth_i)(dmu/dth_j) / (mu + sigma_read^2), derivatives by central
finite differences of the expected image, parameters (x, y, z).

MagTrack 1.0.0 side by side (in its own venv, see ../shared/PEERS.md) is not wired in
yet. Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_tracking.py [--sizes 64 128]``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np

from camtrack.simulate import bead_image, bead_rois, zsweep
from camtrack.tracking import build_zlut, track_rois


def crlb(x, y, z, size, truth, h=(0.01, 0.01, 1.0)):
    """(N, 3) CRLB standard deviations of (x, y, z) for each ROI."""
    cam = truth.camera
    scale = truth.background_e / cam.e_per_adu
    mu = truth.expected_adu.astype(np.float64)
    var = truth.variance_adu.astype(np.float64)

    def img(dx, dy, dz):
        return bead_image(x + dx, y + dy, z + dz, size) * scale

    grads = []
    for i, step in enumerate(h):
        d = np.zeros(3)
        d[i] = step
        grads.append((img(*d) - img(*(-d))) / (2 * step))
    g = np.stack(grads, axis=1).reshape(len(x), 3, -1)
    w = 1.0 / np.maximum(var, 1e-9).reshape(len(x), -1)
    fisher = np.einsum("nip,np,njp->nij", g, w, g)
    cov = np.linalg.inv(fisher)
    del mu
    return np.sqrt(np.einsum("nii->ni", cov))


def run(size: int, n: int, seed: int) -> dict:
    planes = np.arange(-5000.0, 5001.0, 100.0)
    calib, ct = zsweep(planes, size=size, frames_per_plane=16, rng=seed)
    t0 = time.perf_counter()
    lut = build_zlut(calib, ct.z_nm)
    t_lut = time.perf_counter() - t0
    rng = np.random.default_rng(seed + 1)
    c = (size - 1) / 2
    x = c + rng.uniform(-2, 2, n)
    y = c + rng.uniform(-2, 2, n)
    z = rng.uniform(-4500, 4500, n)
    rois, truth = bead_rois(x, y, z, size=size, rng=seed + 2)
    clean, _ = bead_rois(x, y, z, size=size, noise=False, dtype="float32", rng=seed + 2)
    bound = crlb(x, y, z, size, truth)
    out = {"size": size, "n_rois": n, "lut_build_s": t_lut, "crlb_x_px": float(np.sqrt(np.mean(bound[:, 0] ** 2))), "crlb_y_px": float(np.sqrt(np.mean(bound[:, 1] ** 2))), "crlb_z_nm": float(np.sqrt(np.mean(bound[:, 2] ** 2)))}  # fmt: skip
    for mode in ("precise", "fast"):
        track_rois(rois[:64], zlut=lut, mode=mode)  # warm caches
        reps = []
        for _ in range(3):
            t0 = time.perf_counter()
            res = track_rois(rois, zlut=lut, mode=mode)
            reps.append(time.perf_counter() - t0)
        cl = track_rois(clean, zlut=lut, mode=mode, saturation=None)
        out[mode] = {
            "rois_per_s": n / min(reps),
            "x_rms_px": float(np.sqrt(np.mean((res.x - x) ** 2))),
            "y_rms_px": float(np.sqrt(np.mean((res.y - y) ** 2))),
            "z_rms_nm": float(np.sqrt(np.mean((res.z - z) ** 2))),
            "x_bias_px": float(np.mean(res.x - x)),
            "z_bias_nm": float(np.mean(res.z - z)),
            "noise_free_x_rms_px": float(np.sqrt(np.mean((cl.x - x) ** 2))),
            "noise_free_z_rms_nm": float(np.sqrt(np.mean((cl.z - z) ** 2))),
            "nan": int(np.isnan(res.z).sum() + np.isnan(res.x).sum()),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("results") / "bench_tracking.json")  # fmt: skip
    args = ap.parse_args()
    rows = [run(s, args.n, args.seed) for s in args.sizes]
    hdr = f"{'size':>4} {'mode':>8} {'ROI/s':>8} {'x rms':>8} {'x/CRLB':>7} {'xNF':>8} {'z rms':>7} {'z/CRLB':>7} {'zNF':>6}"  # fmt: skip
    print(hdr)
    for r in rows:
        for mode in ("precise", "fast"):
            m = r[mode]
            print(
                f"{r['size']:>4} {mode:>8} {m['rois_per_s']:>8.0f} {m['x_rms_px']:>8.5f} "
                f"{m['x_rms_px'] / r['crlb_x_px']:>7.2f} {m['noise_free_x_rms_px']:>8.5f} "
                f"{m['z_rms_nm']:>7.2f} {m['z_rms_nm'] / r['crlb_z_nm']:>7.2f} "
                f"{m['noise_free_z_rms_nm']:>6.2f}"
            )
        print(f"     CRLB x {r['crlb_x_px']:.5f} px, y {r['crlb_y_px']:.5f} px, z {r['crlb_z_nm']:.3f} nm")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
