"""Exact second-order statistics of a camera-sampled, motion-blurred OU trace.

The bead moves as an Ornstein-Uhlenbeck process x(t) with variance s2 = kT / kappa and
relaxation time tau = gamma / kappa. The camera reports y_k = (1/W) int x dt over the
exposure W <= T = 1/fs that starts at t_k = k T, plus white tracking noise of variance
sigma^2. Every statistic the fits use follows from the autocovariance of y:

    R(0) = s2 2 (a - 1 + e^-a) / a^2 + sigma^2,          a = W / tau
    R(l) = A1 b^(l-1)   for l >= 1,   A1 = s2 ((1 - e^-a) / a)^2 e^-(T - W)/tau,
                                      b = e^-T/tau.

(Integrate s2 e^-|t-u|/tau over two exposure windows; for l >= 1 the windows never
overlap because W <= T.) W -> 0 gives R(l) = s2 b^l, the plain sampled OU process.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "allan_model",
    "autocov",
    "blocked_mean_var",
    "blur_factor",
    "periodogram_mean",
    "psd_model",
    "variance_mean",
]


def _omb(x: np.ndarray) -> np.ndarray:
    """1 - e^-x without cancellation."""
    return -np.expm1(-x)


def blur_factor(alpha: np.ndarray) -> np.ndarray:
    """Var(blurred) / Var(true) for an exposure alpha = W / tau (Wong & Halvorsen 2006).

    Parameters
    ----------
    alpha : array_like
        Exposure over relaxation time, W kappa / gamma (>= 0).

    Returns
    -------
    ndarray
        2 / a - 2 (1 - e^-a) / a^2 = 2 (a - 1 + e^-a) / a^2 (its Taylor series below
        a = 0.01, where the closed form cancels). Plain equipartition kT / var
        overestimates kappa by 1 / blur_factor.

    Examples
    --------
    >>> from camtrack.force import blur_factor
    >>> [round(float(blur_factor(a)), 4) for a in (0.0, 1.0, 10.0)]
    [1.0, 0.7358, 0.18]
    """
    a = np.asarray(alpha, dtype=float)
    small = a < 1e-2
    safe = np.where(small, 1.0, a)
    exact = 2.0 * (safe - _omb(safe)) / safe**2
    series = 1.0 - a / 3.0 + a**2 / 12.0 - a**3 / 60.0
    return np.where(small, series, exact)


def autocov(
    s2: np.ndarray, tau: np.ndarray, exposure_s: float, period_s: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(R0, A1, b) of the blurred, sampled OU process (no tracking noise); broadcasts."""
    s2 = np.asarray(s2, dtype=float)
    tau = np.asarray(tau, dtype=float)
    a = exposure_s / tau
    r0 = s2 * blur_factor(a)
    safe = np.where(a > 0, a, 1.0)
    shape = np.where(a > 0, _omb(safe) / safe, 1.0)
    a1 = s2 * shape**2 * np.exp(-(period_s - exposure_s) / tau)
    b = np.exp(-period_s / tau)
    return r0, a1, b


def periodogram_mean(
    omega: np.ndarray,
    n_frames: np.ndarray | int | None,
    s2: np.ndarray,
    tau: np.ndarray,
    noise_var: np.ndarray,
    exposure_s: float,
    period_s: float,
) -> np.ndarray:
    """Expected one-sided periodogram, nm^2/Hz, at omega = 2 pi f / fs.

    With ``n_frames`` (per frequency or one value) the exact expectation of the
    periodogram of an ``n_frames`` trace at its Fourier frequencies (omega = 2 pi k /
    n_frames): the sum over lags weighted by (N - |l|) / N, in closed form. With None,
    the infinite-trace spectral density 2 T sum_l R(l) e^(-i omega l).
    """
    r0, a1, b = autocov(s2, tau, exposure_s, period_s)
    cos = np.cos(omega)
    denom = 1.0 - 2.0 * b * cos + b * b
    # sum_{l>=1} 2 Re A1 b^(l-1) e^(-i omega l) = 2 A1 (cos - b) / |1 - b e^(-i omega)|^2
    density = r0 + 2.0 * a1 * (cos - b) / denom
    if n_frames is not None:
        n = np.asarray(n_frames, dtype=float)
        u = b * np.exp(-1j * omega)
        # -(2/N) Re sum_l l R(l) e^(-i omega l) in closed form at Fourier frequencies,
        # where u^N = b^N.
        corr = a1 * np.exp(-1j * omega) * (np.exp(-n * period_s / tau) - 1.0) / (1.0 - u) ** 2
        density = density + (2.0 / n) * corr.real
    return 2.0 * period_s * (density + noise_var)


def _block_sums(
    m: np.ndarray, r0: np.ndarray, a1: np.ndarray, b: np.ndarray, period_s: float, tau
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Covariances V_d of sums of m consecutive samples d blocks apart (d = 0, 1, 2)."""
    m = np.asarray(m, dtype=float)
    x = period_s / np.asarray(tau, dtype=float)
    omb = _omb(x)
    big_m = m - 1.0
    # sum_{j=0}^{M-1} (M - j) b^j = (M - (M + 1) b + b^(M + 1)) / (1 - b)^2, written
    # with 1 - b and b^(M+1) - 1 computed without cancellation.
    tri = (big_m * omb - _omb((big_m + 1.0) * x) + omb) / omb**2
    v0 = m * r0 + 2.0 * a1 * tri
    geo = _omb(m * x) / omb  # sum_{j=0}^{m-1} b^j
    v1 = a1 * geo**2
    v2 = a1 * np.exp(-m * x) * geo**2
    return v0, v1, v2


def blocked_mean_var(
    m: np.ndarray,
    s2: np.ndarray,
    tau: np.ndarray,
    noise_var: np.ndarray,
    exposure_s: float,
    period_s: float,
    kind: str = "allan",
) -> np.ndarray:
    """Expected overlapping Allan (or Hadamard) variance at m frames per cluster, nm^2.

    Allan: (1/2) E[(mean_2 - mean_1)^2] = (V0 - V1) / m^2.
    Hadamard: (1/6) E[(mean_3 - 2 mean_2 + mean_1)^2] = (6 V0 - 8 V1 + 2 V2) / (6 m^2),
    where V_d is the covariance of two m-frame sums d clusters apart.
    """
    r0, a1, b = autocov(s2, tau, exposure_s, period_s)
    v0, v1, v2 = _block_sums(m, r0, a1, b, period_s, tau)
    m = np.asarray(m, dtype=float)
    v0 = v0 + m * noise_var
    if kind == "allan":
        return (v0 - v1) / m**2
    return (6.0 * v0 - 8.0 * v1 + 2.0 * v2) / (6.0 * m**2)


def variance_mean(
    n_frames: np.ndarray,
    s2: np.ndarray,
    tau: np.ndarray,
    noise_var: np.ndarray,
    exposure_s: float,
    period_s: float,
) -> np.ndarray:
    """Expected mean-subtracted variance (divided by N) of an N-frame segment, nm^2.

    E[(1/N) sum (y - ybar)^2] = R0 + sigma^2 - V0(N) / N^2: the variance minus the
    variance of the segment mean, which matters for segments of a few corner times.
    """
    r0, a1, b = autocov(s2, tau, exposure_s, period_s)
    n = np.asarray(n_frames, dtype=float)
    v0, _, _ = _block_sums(n, r0, a1, b, period_s, tau)
    v0 = v0 + n * noise_var
    return r0 + noise_var - v0 / n**2


def _check_model_args(fs_hz, kappa, gamma, exposure_s, temperature_k, noise_nm):
    from camtrack._validation import check_positive
    from camtrack.force._physics import kt_pn_nm

    fs = check_positive(fs_hz, "fs_hz")
    k = check_positive(kappa, "kappa_pn_per_nm")
    g = check_positive(gamma, "gamma_pn_s_per_nm")
    w = (
        1.0 / fs
        if exposure_s is None
        else check_positive(exposure_s, "exposure_s", allow_zero=True)
    )
    if w > (1 + 1e-9) / fs:
        raise ValueError(
            f"`exposure_s` must not exceed 1 / fs_hz = {1 / fs:g} s; got {exposure_s!r}."
        )
    s2 = kt_pn_nm(temperature_k) / k
    noise = check_positive(noise_nm, "noise_nm", allow_zero=True) ** 2
    return fs, min(w, 1.0 / fs), s2, g / k, noise


def psd_model(
    f_hz,
    fs_hz: float,
    *,
    kappa_pn_per_nm: float,
    gamma_pn_s_per_nm: float,
    exposure_s: float | None = None,
    temperature_k: float = 296.15,
    noise_nm: float = 0.0,
    n_frames: int | None = None,
) -> np.ndarray:
    """One-sided power spectral density of a camera-recorded tethered bead, nm^2/Hz.

    The exact spectrum of exposure averages of an Ornstein-Uhlenbeck process sampled at
    fs (aliasing and boxcar blur for any exposure W <= 1 / fs) plus white noise:

        P(f) = 2 / fs [R0 + 2 A1 (cos w - b) / (1 - 2 b cos w + b^2) + noise^2],
        w = 2 pi f / fs, b = e^(-1 / (fs tau)), tau = gamma / kappa,

    with R0 = (kT / kappa) 2 (a - 1 + e^-a) / a^2, A1 = (kT / kappa)
    ((1 - e^-a) / a)^2 e^(-(1/fs - W) / tau) and a = W / tau. W = 0 gives the aliased
    Lorentzian (kT / kappa) 2 / fs (1 - b^2) / (1 - 2 b cos w + b^2).

    Parameters
    ----------
    f_hz : array_like
        Frequencies, Hz (0 <= f <= fs / 2).
    fs_hz : float
        Frame rate, Hz.
    kappa_pn_per_nm, gamma_pn_s_per_nm : float
        Stiffness (pN/nm) and drag (pN s/nm).
    exposure_s : float or None
        Exposure, s; None: 1 / fs.
    temperature_k : float
        Temperature, K.
    noise_nm : float
        Standard deviation of white tracking noise, nm.
    n_frames : int or None
        With a trace length, the exact expectation of that trace's periodogram at its
        Fourier frequencies f = k fs / n_frames (finite-length leakage included).

    Returns
    -------
    ndarray
        nm^2/Hz, the shape of ``f_hz``.

    Examples
    --------
    >>> from camtrack.force import psd_model
    >>> p = psd_model([0.1, 10.0], 100.0, kappa_pn_per_nm=1e-3, gamma_pn_s_per_nm=1e-5)
    >>> bool(p[0] > p[1])
    True
    """
    fs, w, s2, tau, noise = _check_model_args(
        fs_hz, kappa_pn_per_nm, gamma_pn_s_per_nm, exposure_s, temperature_k, noise_nm
    )
    omega = 2.0 * np.pi * np.asarray(f_hz, dtype=float) / fs
    return periodogram_mean(omega, n_frames, s2, tau, noise, w, 1.0 / fs)


def allan_model(
    tau_s,
    fs_hz: float,
    *,
    kappa_pn_per_nm: float,
    gamma_pn_s_per_nm: float,
    exposure_s: float | None = None,
    temperature_k: float = 296.15,
    noise_nm: float = 0.0,
    kind: str = "allan",
) -> np.ndarray:
    """Expected overlapping Allan (or Hadamard) variance of a camera-recorded bead, nm^2.

    Exact for exposure averages sampled at fs plus white noise, at cluster times
    ``tau_s`` rounded to whole frames m = round(tau_s fs) >= 1:
    Allan = (V0 - V1) / m^2, Hadamard = (6 V0 - 8 V1 + 2 V2) / (6 m^2), where V_d is the
    covariance of two m-frame sums d clusters apart (closed forms in the module notes).

    Examples
    --------
    >>> from camtrack.force import allan_model
    >>> a = allan_model([0.01, 1.0], 100.0, kappa_pn_per_nm=1e-3, gamma_pn_s_per_nm=1e-5)
    >>> a.shape
    (2,)
    """
    from camtrack._validation import check_choice

    check_choice(kind, "kind", ("allan", "hadamard"))
    fs, w, s2, tau, noise = _check_model_args(
        fs_hz, kappa_pn_per_nm, gamma_pn_s_per_nm, exposure_s, temperature_k, noise_nm
    )
    m = np.maximum(np.round(np.asarray(tau_s, dtype=float) * fs), 1.0)
    return blocked_mean_var(m, s2, tau, noise, w, 1.0 / fs, kind)
