"""The result of :func:`camtrack.force.calibrate_force`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from camtrack._validation import require_pandas

__all__ = ["ForceResult", "assemble", "build_result"]


@dataclass(frozen=True, eq=False)
class ForceResult:
    """Force, stiffness, drag and corner frequency of one trace or a batch of traces.

    For a 1-D trace every quantity is a float, each ``*_ci_*`` a (low, high) tuple, and
    ``method``/``reason``/``warnings`` are a str, a str and a tuple of str. For a
    (n_beads, n_frames) batch they are arrays of shape (n_beads,) and (n_beads, 2), and
    tuples with one entry per bead.

    Attributes
    ----------
    force_pn, force_ci_pn : force kappa * length_nm, pN, and its 68 % interval.
    kappa_pn_per_nm, kappa_ci_pn_per_nm : trap stiffness, pN/nm.
    gamma_pn_s_per_nm, gamma_ci_pn_s_per_nm : drag, pN s/nm (fixed from the radius and
        height when ``gamma_fixed``: its interval is then the point itself).
    corner_hz, corner_ci_hz : corner frequency kappa / (2 pi gamma), Hz.
    noise_nm : tracking-noise standard deviation fitted with the PSD, Allan or Hadamard
        model, nm (0 for equipartition, which cannot separate it).
    method : the method used per trace ("psd", "allan", "hadamard", "equipartition").
    reason : why ``method="auto"`` picked it ("" otherwise).
    flagged : True where the estimate should not be trusted (too short a trace, no
        convergence, no usable frames); ``warnings`` say why and what is needed.
    n_frames_used, n_nan_frames, n_segments : frames in the fit, NaN frames, and the
        NaN-free segments the trace was split into.
    length_nm, fs_hz, exposure_s, temperature_k, gamma_fixed : the inputs that set the
        scale.

    Notes
    -----
    Intervals are +-1 standard error of log kappa (log gamma, log f_c) from the Fisher
    information of the fit, mapped back: asymmetric and always positive. The pendulum
    length is taken as exact; its error adds to the force's in relative terms.
    """

    force_pn: Any
    force_ci_pn: Any
    kappa_pn_per_nm: Any
    kappa_ci_pn_per_nm: Any
    gamma_pn_s_per_nm: Any
    gamma_ci_pn_s_per_nm: Any
    corner_hz: Any
    corner_ci_hz: Any
    noise_nm: Any
    method: Any
    reason: Any
    warnings: Any
    flagged: Any
    n_frames_used: Any
    n_nan_frames: Any
    n_segments: Any
    length_nm: Any
    fs_hz: float
    exposure_s: float
    temperature_k: float
    gamma_fixed: bool
    _rows: tuple = field(default=(), repr=False)

    def to_rows(self) -> list[dict[str, Any]]:
        """One dict per bead (bead, force_pn, force_lo_pn, force_hi_pn, ...) for tables."""
        return [dict(r) for r in self._rows]

    def to_dataframe(self):
        """The rows as a pandas DataFrame (``ImportError`` naming ``pip install pandas``
        when pandas is missing; :meth:`to_rows` needs no pandas)."""
        pd = require_pandas("ForceResult.to_dataframe()")
        return pd.DataFrame(self.to_rows())


def build_result(per: dict[str, np.ndarray], meta: dict[str, Any], batch: bool) -> ForceResult:
    """Assemble a ForceResult from per-bead arrays (scalars for a 1-D trace)."""
    names = ("force", "kappa", "gamma", "corner")
    units = {"force": "pn", "kappa": "pn_per_nm", "gamma": "pn_s_per_nm", "corner": "hz"}
    rows = []
    n = per["force"].size
    for i in range(n):
        row: dict[str, Any] = {"bead": i}
        for k in names:
            row[f"{k}_{units[k]}"] = float(per[k][i])
            row[f"{k}_lo_{units[k]}"] = float(per[k + "_ci"][i, 0])
            row[f"{k}_hi_{units[k]}"] = float(per[k + "_ci"][i, 1])
        row["noise_nm"] = float(per["noise"][i])
        row["method"] = per["method"][i]
        row["flagged"] = bool(per["flagged"][i])
        row["n_frames_used"] = int(per["used"][i])
        row["n_nan_frames"] = int(per["nan"][i])
        row["warnings"] = " | ".join(per["warnings"][i])
        rows.append(row)

    def pick(a, ci=False):
        if batch:
            return a
        return (float(a[0, 0]), float(a[0, 1])) if ci else a[0].item()

    return ForceResult(
        force_pn=pick(per["force"]),
        force_ci_pn=pick(per["force_ci"], True),
        kappa_pn_per_nm=pick(per["kappa"]),
        kappa_ci_pn_per_nm=pick(per["kappa_ci"], True),
        gamma_pn_s_per_nm=pick(per["gamma"]),
        gamma_ci_pn_s_per_nm=pick(per["gamma_ci"], True),
        corner_hz=pick(per["corner"]),
        corner_ci_hz=pick(per["corner_ci"], True),
        noise_nm=pick(per["noise"]),
        method=tuple(per["method"]) if batch else per["method"][0],
        reason=tuple(per["reason"]) if batch else per["reason"][0],
        warnings=tuple(per["warnings"]) if batch else per["warnings"][0],
        flagged=pick(per["flagged"]),
        n_frames_used=pick(per["used"]),
        n_nan_frames=pick(per["nan"]),
        n_segments=pick(per["segments"]),
        length_nm=pick(per["length"]),
        _rows=tuple(rows),
        **meta,
    )


def assemble(per, lengths, acq, batch: bool, temperature_k) -> ForceResult:
    """The result from the per-bead fit arrays (log s2, log tau and their covariance)."""

    def ci(center, var):
        sd = np.sqrt(np.where(var >= 0, var, np.nan))
        with np.errstate(over="ignore"):  # an unresolved parameter: (0, inf) is honest
            return np.stack([center * np.exp(-sd), center * np.exp(sd)], axis=-1)

    kappa = acq.kt / np.exp(per["log_s2"])
    tau = np.exp(per["log_tau"])
    gamma = kappa * tau
    corner = 1.0 / (2.0 * np.pi * tau)
    v_k = per["v_ss"]
    v_g = per["v_ss"] + per["v_tt"] - 2.0 * per["v_st"]
    if acq.gamma is not None:
        v_g = np.zeros_like(v_g)
    out = {
        "force": kappa * lengths,
        "force_ci": ci(kappa * lengths, v_k),
        "kappa": kappa,
        "kappa_ci": ci(kappa, v_k),
        "gamma": gamma,
        "gamma_ci": ci(gamma, v_g),
        "corner": corner,
        "corner_ci": ci(corner, per["v_tt"]),
        "noise": per["noise"],
        "method": per["method"],
        "reason": per["reason"],
        "warnings": [tuple(w) for w in per["warnings"]],
        "flagged": per["flagged"],
        "used": per["used"],
        "nan": per["nan"],
        "segments": per["segments"],
        "length": lengths,
    }
    meta = {
        "fs_hz": acq.fs_hz,
        "exposure_s": acq.exposure_s,
        "temperature_k": float(temperature_k),
        "gamma_fixed": acq.gamma is not None,
    }
    return build_result(out, meta, batch)
