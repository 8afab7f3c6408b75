"""Figures for docs/guide/forces.md: one simulated bead per regime, its blocked PSD and
Allan variance with camtrack's fit, and what the plain aliased Lorentzian (no blur)
would predict with the same parameters.

Run: ``.venv/bin/python docs/force_figures.py`` (writes docs/images/forces-fits.png).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from camtrack.force import (
    calibrate_force,
    faxen_drag,
    force_diagnostics,
    psd_model,
)
from camtrack.simulate import tether_trace

R_NM, H_NM = 500.0, 3000.0
CASES = [("low: f_c 1 Hz, fs 60 Hz, W = 1/fs", 60.0, 1.0, 1.0),
         ("medium: f_c 24 Hz, fs 60 Hz, W = 1/fs", 60.0, 24.0, 1.0),
         ("high: f_c 80 Hz, fs 100 Hz, W = 0.3/fs", 100.0, 80.0, 0.3)]  # fmt: skip


def main() -> None:
    fig, axes = plt.subplots(2, 3, figsize=(13, 7), constrained_layout=True)
    gamma = faxen_drag(R_NM, H_NM)
    for col, (title, fs, fc, wf) in enumerate(CASES):
        kappa = 2 * np.pi * gamma * fc
        sim = tether_trace(
            int(300 * fs), fs, force_pn=kappa * H_NM, length_nm=H_NM, exposure_s=wf / fs,
            radius_nm=R_NM, height_nm=H_NM, noise_nm=1.5, rng=col,
        )  # fmt: skip
        res = calibrate_force(sim.x_nm, fs, length_nm=H_NM, exposure_s=wf / fs,
                              radius_nm=R_NM, height_nm=H_NM)  # fmt: skip
        d = force_diagnostics(sim.x_nm, res)
        plain = psd_model(d.f_hz, fs, kappa_pn_per_nm=res.kappa_pn_per_nm,
                          gamma_pn_s_per_nm=res.gamma_pn_s_per_nm, exposure_s=0.0)  # fmt: skip
        ax = axes[0, col]
        ax.loglog(d.f_hz, d.psd_nm2_per_hz, ".", ms=3, color="0.6", label="blocked periodogram")
        ax.loglog(d.f_hz, d.psd_model_nm2_per_hz, "C0", label="fit: aliasing + blur + noise")
        ax.loglog(d.f_hz, plain, "C3--", lw=1, label="same kappa, gamma, no blur")
        lo, hi = res.force_ci_pn
        ax.set_title(f"{title}\nF = {res.force_pn:.3f} pN [{lo:.3f}, {hi:.3f}] "
                     f"(true {sim.force_pn:.3f})", fontsize=9)  # fmt: skip
        ax.set_xlabel("f (Hz)")
        ax.set_ylabel("PSD (nm²/Hz)")
        ax = axes[1, col]
        ax.loglog(d.tau_s, d.allan_nm2, "o", ms=4, color="0.5", label="overlapping Allan variance")
        ax.loglog(d.tau_s, d.allan_model_nm2, "C0", label="model at the PSD fit")
        ax.set_xlabel("tau (s)")
        ax.set_ylabel("Allan variance (nm²)")
    axes[0, 0].legend(fontsize=8)
    axes[1, 0].legend(fontsize=8)
    out = Path(__file__).resolve().parent / "images" / "forces-fits.png"
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
