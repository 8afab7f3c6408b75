"""Tethered-bead traces: exact, camera-blurred Ornstein-Uhlenbeck motion with its truth.

A magnetic-tweezers bead on a tether of pendulum length L under force F moves
sideways as an Ornstein-Uhlenbeck process with stiffness kappa = F / L and drag gamma.
The camera averages the position over the exposure W (W <= 1 / fs) of every frame.

The simulation is exact, not an Euler scheme and not a Riemann sum over a fine grid:
per frame it draws the position at the end of the exposure and the exposure average
jointly from their conditional Gaussian law given the position at the start of the
exposure (the limit of infinitely many sub-steps), then propagates over the dead time
T - W. Its statistics therefore equal the models in :mod:`camtrack.force` to rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.signal import lfilter

from camtrack._validation import check_integer, check_positive
from camtrack.force import faxen_drag, kt_pn_nm
from camtrack.simulate._seeding import MOTION, RNGLike, root_seed, stream

__all__ = ["TetherTrace", "tether_trace"]


@dataclass(frozen=True, eq=False)
class TetherTrace:
    """A simulated tethered-bead trace and its truth.

    Attributes
    ----------
    x_nm : ndarray, (n_frames,) or (n_beads, n_frames)
        Camera-measured position per frame, nm (exposure average + tracking noise +
        drift).
    t_s : ndarray, (n_frames,)
        Start of each frame's exposure, s (frame k at k / fs).
    plateau : ndarray of int, (n_frames,)
        Plateau (magnet position) index of each frame.
    fs_hz, exposure_s, temperature_k, noise_nm, drift_nm_per_s : float
        The acquisition and the disturbances.
    force_pn, length_nm, kappa_pn_per_nm, gamma_pn_s_per_nm, corner_hz : float or ndarray
        Truth per plateau (floats for one plateau): force, pendulum length, stiffness
        kappa = F / L, drag, corner frequency kappa / (2 pi gamma).
    x_sub_nm : ndarray, (..., n_frames, substeps) or None
        With ``substeps``: the true positions (no noise, with drift) at the midpoints of
        ``substeps`` equal slices of each exposure, to render motion-blurred images
        (average the images of one frame's positions); ``x_nm`` is then their mean
        plus noise.
    """

    x_nm: np.ndarray = field(repr=False)
    t_s: np.ndarray = field(repr=False)
    plateau: np.ndarray = field(repr=False)
    fs_hz: float
    exposure_s: float
    temperature_k: float
    noise_nm: float
    drift_nm_per_s: float
    force_pn: float | np.ndarray
    length_nm: float | np.ndarray
    kappa_pn_per_nm: float | np.ndarray
    gamma_pn_s_per_nm: float | np.ndarray
    corner_hz: float | np.ndarray
    x_sub_nm: np.ndarray | None = field(default=None, repr=False)


def _per_plateau(value, name: str, n: int) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(value, dtype=float))
    if arr.ndim != 1 or arr.size not in (1, n):
        raise ValueError(
            f"`{name}` must be a number or one value per plateau ({n}); got shape "
            f"{np.shape(value)}."
        )
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"`{name}` must be finite and > 0; got {value!r}.")
    return np.broadcast_to(arr, (n,)).copy()


def _exposure_moments(tau: float, w: float, s2: float) -> tuple[float, float, float, float]:
    """(c, var_end, cov, var_mean) of the exposure given its starting position x0.

    x(W) = a x0 + e1 and mean = c x0 + e2 with a = e^-W/tau, c = tau/W (1 - a),
    Var e1 = s2 (1 - a^2), Cov(e1, e2) = s2 tau/W (1 - a)^2,
    Var e2 = s2 / al^2 (2 al - 2 (1 - a) - (1 - a)^2), al = W / tau.
    """
    if w == 0:
        return 1.0, 0.0, 0.0, 0.0
    al = w / tau
    omb = -np.expm1(-al)
    c = omb / al
    var_end = s2 * omb * (2.0 - omb)
    cov = s2 * omb**2 / al
    if al < 1e-4:  # the closed form cancels; its series to second order
        var_mean = s2 * (2.0 * al / 3.0 - al**2 / 2.0)
    else:
        var_mean = s2 * (2.0 * al - 2.0 * omb - omb**2) / al**2
    return c, var_end, cov, var_mean


def _ou_segment(
    gen: np.random.Generator, shape: tuple[int, int], s2: float, tau: float, w: float, t: float
) -> np.ndarray:
    """Exposure averages of a stationary OU process for ``shape`` = (beads, frames)."""
    c, var_end, cov, var_mean = _exposure_moments(tau, w, s2)
    n1, n2, n3 = (gen.standard_normal(shape) for _ in range(3))
    e1 = np.sqrt(var_end) * n1
    e2 = (cov / np.sqrt(var_end) * n1 if var_end > 0 else 0.0) + np.sqrt(
        max(var_mean - (cov**2 / var_end if var_end > 0 else 0.0), 0.0)
    ) * n2
    g = np.exp(-(t - w) / tau)
    e3 = np.sqrt(s2 * -np.expm1(-2.0 * (t - w) / tau)) * n3
    # x0_{k+1} = g x(W)_k + e3_k = e^-T/tau x0_k + (g e1_k + e3_k): an AR(1) recursion.
    innov = g * e1 + e3
    innov = np.concatenate([np.sqrt(s2) * gen.standard_normal((shape[0], 1)), innov[:, :-1]], 1)
    x0 = lfilter([1.0], [1.0, -np.exp(-t / tau)], innov, axis=1)
    return c * x0 + e2


def _ou_substeps(
    gen: np.random.Generator,
    shape: tuple[int, int],
    s2: float,
    tau: float,
    w: float,
    t: float,
    sub: int,
) -> np.ndarray:
    """Exact OU positions at the midpoints of ``sub`` slices of each exposure,
    (beads, frames, sub): an exact AR(1) step between consecutive points (h = W / sub
    inside an exposure, T - W + h across the dead time)."""
    h = w / sub
    j = np.arange(sub)
    a = np.exp(-h / tau)
    # Within a frame, given the first point: x_j = a^j x_0 + e_j with
    # Cov(e_i, e_j) = s2 (a^|i-j| - a^(i+j)); its Cholesky factor for j >= 1.
    cov = s2 * (a ** np.abs(j[:, None] - j[None, :]) - a ** (j[:, None] + j[None, :]))
    chol = np.zeros((sub, sub))
    if sub > 1 and h > 0:
        chol[1:, 1:] = np.linalg.cholesky(cov[1:, 1:] + 1e-15 * s2 * np.eye(sub - 1))
    g = np.exp(-(t - (sub - 1) * h) / tau)
    beads, frames = shape
    out = np.empty((beads, frames, sub))
    first = np.sqrt(s2) * gen.standard_normal(beads)
    for k in range(frames):
        if k:
            first = g * out[:, k - 1, -1] + np.sqrt(s2 * (1 - g * g)) * gen.standard_normal(beads)
        out[:, k] = first[:, None] * a**j + gen.standard_normal((beads, sub)) @ chol.T
    return out


def tether_trace(
    n_frames: int,
    fs_hz: float,
    *,
    force_pn: float | Sequence[float],
    length_nm: float | Sequence[float],
    exposure_s: float | None = None,
    radius_nm: float = 500.0,
    height_nm: float | Sequence[float] | None = None,
    gamma_pn_s_per_nm: float | Sequence[float] | None = None,
    viscosity_pa_s: float = 1e-3,
    temperature_k: float = 296.15,
    noise_nm: float = 0.0,
    drift_nm_per_s: float = 0.0,
    n_beads: int | None = None,
    substeps: int | None = None,
    rng: RNGLike = None,
) -> TetherTrace:
    """Simulate the sideways motion of tethered beads as a camera records it.

    Parameters
    ----------
    n_frames : int
        Frames in total (split evenly over the plateaus, the remainder to the last).
    fs_hz : float
        Frame rate, Hz.
    force_pn : float or sequence of float
        Force per plateau, pN; a sequence makes one plateau (magnet position) each.
    length_nm : float or sequence of float
        Pendulum length per plateau, nm (see :func:`camtrack.force.pendulum_length_nm`).
    exposure_s : float or None
        Exposure W, s, 0 <= W <= 1 / fs; None: the whole frame period.
    radius_nm : float
        Bead radius, nm; sets the drag with ``height_nm`` (Faxén) unless
        ``gamma_pn_s_per_nm`` is given.
    height_nm : float, sequence of float or None
        Bead centre above the surface per plateau, nm; None: no wall correction.
    gamma_pn_s_per_nm : float, sequence of float or None
        Drag per plateau, pN s/nm, overriding the radius and height.
    viscosity_pa_s, temperature_k : float
        Medium viscosity (Pa s) and temperature (K).
    noise_nm : float
        Standard deviation of white tracking noise per frame, nm.
    drift_nm_per_s : float
        Linear drift added to every trace, nm/s.
    n_beads : int or None
        Independent beads with the same parameters; None gives a 1-D trace.
    substeps : int or None
        Also return the positions at ``substeps`` points per exposure (``x_sub_nm``),
        e.g. to render motion-blurred bead images; the frame value is then their mean
        (a midpoint rule, within (W / substeps / tau)^2 / 12 of the exact average).
        None: the exact exposure average, no sub-exposure positions (faster).
    rng : int, numpy Generator, SeedSequence or None
        Seed; the same seed gives the same traces.

    Returns
    -------
    TetherTrace
        The traces and the truth per plateau.

    Notes
    -----
    Each plateau starts in its stationary state (the magnet moved and the bead
    settled before recording). Frame k's exposure starts at t = k / fs. Units: nm, s,
    pN; kappa in pN/nm, gamma in pN s/nm.

    Examples
    --------
    >>> from camtrack.simulate import tether_trace
    >>> sim = tether_trace(6000, 100.0, force_pn=2.0, length_nm=2000.0, rng=0)
    >>> sim.x_nm.shape, round(sim.kappa_pn_per_nm, 4)
    ((6000,), 0.001)
    """
    n_frames = check_integer(n_frames, "n_frames", minimum=2)
    fs = check_positive(fs_hz, "fs_hz")
    period = 1.0 / fs
    w = period if exposure_s is None else check_positive(exposure_s, "exposure_s", allow_zero=True)
    if w > period * (1 + 1e-9):
        raise ValueError(
            f"`exposure_s` must not exceed the frame period 1 / fs_hz = {period:g} s; "
            f"got {exposure_s!r}. Pass None for a full-frame exposure."
        )
    w = min(w, period)
    kt = kt_pn_nm(temperature_k)
    noise = check_positive(noise_nm, "noise_nm", allow_zero=True)
    drift = float(drift_nm_per_s)
    n_plat = int(np.size(force_pn))
    force = _per_plateau(force_pn, "force_pn", n_plat)
    length = _per_plateau(length_nm, "length_nm", n_plat)
    if gamma_pn_s_per_nm is not None:
        gamma = _per_plateau(gamma_pn_s_per_nm, "gamma_pn_s_per_nm", n_plat)
    else:
        heights = [None] * n_plat
        if height_nm is not None:
            heights = list(_per_plateau(height_nm, "height_nm", n_plat))
        gamma = np.array([faxen_drag(radius_nm, h, viscosity_pa_s) for h in heights])
    if n_frames < n_plat:
        raise ValueError(f"`n_frames` ({n_frames}) must be at least one per plateau ({n_plat}).")
    beads = 1 if n_beads is None else check_integer(n_beads, "n_beads", minimum=1)
    kappa = force / length
    tau = gamma / kappa
    per = n_frames // n_plat
    sizes = [per] * (n_plat - 1) + [n_frames - per * (n_plat - 1)]
    gen = stream(root_seed(rng), MOTION)
    t_s = np.arange(n_frames) * period
    x_sub = None
    if substeps is None:
        parts = [
            _ou_segment(gen, (beads, size), kt / k, ta, w, period)
            for size, k, ta in zip(sizes, kappa, tau, strict=True)
        ]
        x = np.concatenate(parts, axis=1)
    else:
        sub = check_integer(substeps, "substeps", minimum=1)
        parts = [
            _ou_substeps(gen, (beads, size), kt / k, ta, w, period, sub)
            for size, k, ta in zip(sizes, kappa, tau, strict=True)
        ]
        t_sub = t_s[:, None] + (np.arange(sub) + 0.5) * (w / sub)
        x_sub = np.concatenate(parts, axis=1) + drift * t_sub
        x = x_sub.mean(axis=2) - drift * t_s
    if noise > 0:
        x = x + noise * gen.standard_normal(x.shape)
    x = x + drift * t_s
    plateau = np.repeat(np.arange(n_plat), sizes)

    def out(v: np.ndarray) -> float | np.ndarray:
        return float(v[0]) if np.ndim(force_pn) == 0 else v

    return TetherTrace(
        x_nm=x[0] if n_beads is None else x,
        t_s=t_s,
        plateau=plateau,
        fs_hz=fs,
        exposure_s=float(w),
        temperature_k=float(temperature_k),
        noise_nm=noise,
        drift_nm_per_s=drift,
        force_pn=out(force),
        length_nm=out(length),
        kappa_pn_per_nm=out(kappa),
        gamma_pn_s_per_nm=out(gamma),
        corner_hz=out(kappa / (2.0 * np.pi * gamma)),
        x_sub_nm=None if x_sub is None else (x_sub[0] if n_beads is None else x_sub),
    )
