"""Measured spectra and Allan variances next to their fitted models, ready to plot."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from camtrack._backend import to_host
from camtrack.force._models import allan_model, periodogram_mean
from camtrack.force._physics import kt_pn_nm
from camtrack.force._result import ForceResult
from camtrack.force._spectra import (
    blocked_periodogram,
    cluster_sizes,
    cluster_variance,
    segments,
)

__all__ = ["ForceDiagnostics", "force_diagnostics"]


@dataclass(frozen=True, eq=False)
class ForceDiagnostics:
    """One bead's data and fitted models (for the PSD and Allan-variance plots).

    Attributes
    ----------
    f_hz, psd_nm2_per_hz, psd_model_nm2_per_hz : ndarray
        Block frequencies, the blocked periodogram (one-sided) and the fitted model
        averaged over the same blocks.
    tau_s, allan_nm2, allan_model_nm2 : ndarray
        Cluster times, the overlapping Allan variance and the fitted model.
    force_pn : float
        The bead's force, for the plot title.
    """

    f_hz: np.ndarray = field(repr=False)
    psd_nm2_per_hz: np.ndarray = field(repr=False)
    psd_model_nm2_per_hz: np.ndarray = field(repr=False)
    tau_s: np.ndarray = field(repr=False)
    allan_nm2: np.ndarray = field(repr=False)
    allan_model_nm2: np.ndarray = field(repr=False)
    force_pn: float


def force_diagnostics(x_nm: Any, result: ForceResult, *, bead: int = 0) -> ForceDiagnostics:
    """The measured PSD and Allan variance of one bead with the fit of ``result``.

    Parameters
    ----------
    x_nm : array_like, (n_frames,) or (n_beads, n_frames)
        The trace(s) ``result`` was computed from.
    result : ForceResult
        From :func:`calibrate_force` on ``x_nm``.
    bead : int
        Which bead of a batch.

    Returns
    -------
    ForceDiagnostics
        Host arrays; the model curves use the fitted kappa, gamma and noise of the bead
        and the trace's own length (exact finite-trace expectation).

    Examples
    --------
    >>> from camtrack.simulate import tether_trace
    >>> from camtrack.force import calibrate_force, force_diagnostics
    >>> sim = tether_trace(6000, 60.0, force_pn=0.5, length_nm=2000.0, rng=0)
    >>> d = force_diagnostics(sim.x_nm, calibrate_force(sim.x_nm, 60.0, length_nm=2000.0))
    >>> d.f_hz.shape == d.psd_model_nm2_per_hz.shape
    True
    """
    x = np.atleast_2d(to_host(x_nm).astype(np.float64))
    if not 0 <= bead < x.shape[0]:
        raise ValueError(f"`bead` must lie in [0, {x.shape[0] - 1}]; got {bead}.")

    def pick(v) -> float:
        return float(v) if np.ndim(v) == 0 else float(np.asarray(v)[bead])

    trace = x[bead : bead + 1]
    seg = segments(np.isfinite(trace[0]))
    if not seg.bounds:
        raise ValueError(f"bead {bead} has no NaN-free run long enough to plot.")
    fs = result.fs_hz
    kappa, gamma, noise = (pick(result.kappa_pn_per_nm), pick(result.gamma_pn_s_per_nm),
                           pick(result.noise_nm))  # fmt: skip
    kw = {
        "kappa_pn_per_nm": kappa,
        "gamma_pn_s_per_nm": gamma,
        "exposure_s": result.exposure_s,
        "temperature_k": result.temperature_k,
        "noise_nm": noise,
    }
    pg = blocked_periodogram(trace, seg.bounds, fs)
    omega, nfr, weight, starts = pg.nodes(0.0)
    s2 = kt_pn_nm(result.temperature_k) / kappa
    # The exact finite-trace expectation per bin, averaged over each block as fitted.
    exact = periodogram_mean(omega, nfr, s2, gamma / kappa, noise**2, result.exposure_s, 1 / fs)
    psd_fit = np.add.reduceat(exact * weight, starts)
    m = cluster_sizes(seg.bounds, "allan")
    avar, _ = cluster_variance(trace, seg.bounds, m, "allan")
    return ForceDiagnostics(
        f_hz=pg.f_hz,
        psd_nm2_per_hz=pg.power[0],
        psd_model_nm2_per_hz=psd_fit,
        tau_s=m / fs,
        allan_nm2=avar[0],
        allan_model_nm2=allan_model(m / fs, fs, **kw),
        force_pn=float(pick(result.force_pn)),
    )
