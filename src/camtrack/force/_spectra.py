"""The measured statistics: NaN-free segments, blocked periodograms, overlapping Allan
and Hadamard variances with their equivalent degrees of freedom."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import fftconvolve

__all__ = ["Periodogram", "Segments", "blocked_periodogram", "cluster_variance", "segments"]

# A segment shorter than this is dropped: its periodogram has fewer than 7 bins and its
# mean removes a large part of its variance.
MIN_SEGMENT = 16
# Aim for about this many periodogram blocks: enough points to resolve the Lorentzian's
# knee on any trace, few enough that each block average is close to gamma distributed.
TARGET_BLOCKS = 500


@dataclass(frozen=True)
class Segments:
    """NaN-free runs of a group of beads that share the same NaN pattern."""

    bounds: tuple[tuple[int, int], ...]
    n_nan: int
    n_dropped: int  # finite frames in segments shorter than MIN_SEGMENT


def segments(finite: np.ndarray) -> Segments:
    """Runs of True in a 1-D mask, those of at least MIN_SEGMENT frames kept."""
    padded = np.concatenate([[False], finite, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    runs = [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]
    kept = tuple(r for r in runs if r[1] - r[0] >= MIN_SEGMENT)
    dropped = sum(b - a for a, b in runs) - sum(b - a for a, b in kept)
    return Segments(kept, int(finite.size - finite.sum()), int(dropped))


@dataclass(frozen=True)
class Periodogram:
    """Blocked one-sided periodograms of a bead group, with the bins behind each block."""

    f_hz: np.ndarray  # (n_blocks,) mean frequency of each block
    power: np.ndarray  # (B, n_blocks) nm^2/Hz, block averages
    count: np.ndarray  # (n_blocks,) bins per block = gamma shape
    first: np.ndarray  # (n_blocks,) Fourier index k of the block's first bin
    n_frames: np.ndarray  # (n_blocks,) length of the segment the block comes from
    fs_hz: float

    def nodes(self, scale_hz: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Where to evaluate the model so that its block means are exact enough.

        A block narrower than a tenth of the scale on which the spectrum changes
        (max(f, f_c)) is averaged from three bins (first, middle, last) with weights
        exact for any quadratic in k; the rule's error is then below ~1e-6 relative.
        Wider blocks use every bin. Returns (omega, n_frames, weight, starts) with the
        block mean = add.reduceat(weight * model(omega, n_frames), starts).
        """
        width = self.count * self.fs_hz / self.n_frames
        f_lo = self.first * self.fs_hz / self.n_frames
        quad = (
            (self.count >= 5) & (self.count % 2 == 1) & (width < 0.1 * np.maximum(f_lo, scale_hz))
        )
        ks, ns, ws, starts = [], [], [], []
        pos = 0
        for k0, c, n, q in zip(
            self.first, self.count.astype(int), self.n_frames, quad, strict=True
        ):
            starts.append(pos)
            if q:
                a = (c - 1) // 2
                we = (a + 1) / (6.0 * a)  # mean = g(0) + we (g(a) + g(-a) - 2 g(0))
                ks += [k0, k0 + a, k0 + c - 1]
                ws += [we, 1.0 - 2.0 * we, we]
                ns += [n] * 3
                pos += 3
            else:
                ks += list(range(k0, k0 + c))
                ws += [1.0 / c] * c
                ns += [n] * c
                pos += c
        nf = np.asarray(ns, dtype=float)
        return 2.0 * np.pi * np.asarray(ks) / nf, nf, np.asarray(ws), np.asarray(starts)


def blocked_periodogram(x: np.ndarray, bounds, fs_hz: float, block: int | None = None):
    """Blocked periodogram of (B, N) traces over the given segments (Nyquist and DC off).

    Blocks hold ``block`` consecutive bins (odd, so a block has a middle bin); the
    default gives about TARGET_BLOCKS blocks.
    """
    t = 1.0 / fs_hz
    powers, firsts, counts, lengths = [], [], [], []
    sizes = [(b - a - 1) // 2 for a, b in bounds]
    if block is None:
        block = max(1, round(sum(sizes) / TARGET_BLOCKS))
        block += 1 - block % 2
    for (a, b), nk in zip(bounds, sizes, strict=True):
        n = b - a
        seg = x[:, a:b]
        spec = np.fft.rfft(seg - seg.mean(axis=1, keepdims=True), axis=1)[:, 1 : nk + 1]
        power = (2.0 * t / n) * (spec.real**2 + spec.imag**2)
        first = np.arange(0, nk, block)
        cnt = np.diff(np.append(first, nk))
        powers.append(np.add.reduceat(power, first, axis=1) / cnt)
        firsts.append(first + 1)
        counts.append(cnt)
        lengths.append(np.full(first.size, n))
    first = np.concatenate(firsts)
    count = np.concatenate(counts).astype(float)
    n_frames = np.concatenate(lengths).astype(float)
    return Periodogram(
        f_hz=(first + (count - 1) / 2) * fs_hz / n_frames,
        power=np.concatenate(powers, axis=1),
        count=count,
        first=first,
        n_frames=n_frames,
        fs_hz=fs_hz,
    )


def cluster_sizes(bounds, kind: str) -> np.ndarray:
    """Octave-spaced cluster sizes m that the longest segment supports."""
    longest = max(b - a for a, b in bounds)
    k = 2 if kind == "allan" else 3
    m_max = max(1, longest // (2 * k))  # at least about (k + 1) clusters' worth of data
    return 2 ** np.arange(int(np.log2(m_max)) + 1)


def _weights(m: int, kind: str) -> np.ndarray:
    w = np.ones(m) / m
    if kind == "allan":
        return np.concatenate([-w, w])
    return np.concatenate([w, -2.0 * w, w])


def cluster_variance(x: np.ndarray, bounds, m_values, kind: str):
    """Overlapping Allan or Hadamard variance of (B, N) traces pooled over segments.

    Returns (value (B, n_m), counts (n_seg, n_m)): the pooled variance and the number
    of overlapping differences each segment contributes at each m.
    """
    norm = 2.0 if kind == "allan" else 6.0
    k = 2 if kind == "allan" else 3
    sums = np.zeros((x.shape[0], len(m_values)))
    counts = np.zeros((len(bounds), len(m_values)))
    for s, (a, b) in enumerate(bounds):
        seg = x[:, a:b]
        csum = np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(seg, axis=1)], axis=1)
        for i, m in enumerate(m_values):
            n_diff = (b - a) - k * m + 1
            if n_diff < 1:
                continue
            means = (csum[:, m:] - csum[:, :-m]) / m
            if kind == "allan":
                d = means[:, m : m + n_diff] - means[:, :n_diff]
            else:
                d = (
                    means[:, 2 * m : 2 * m + n_diff]
                    - 2 * means[:, m : m + n_diff]
                    + means[:, :n_diff]
                )
            sums[:, i] += np.sum(d * d, axis=1)
            counts[s, i] = n_diff
    total = counts.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / (norm * total), counts


def cluster_edof(
    counts: np.ndarray,
    m_values,
    kind: str,
    r0: np.ndarray,
    a1: np.ndarray,
    b: np.ndarray,
    tau_frames: np.ndarray,
) -> np.ndarray:
    """Equivalent degrees of freedom of the pooled estimates, (B, n_m).

    For Gaussian data the estimate (1 / (norm M)) sum D_k^2 has variance
    2 / (norm M)^2 sum_{j,k} rho(j - k)^2 with rho the autocovariance of the differences
    D_k, so EDOF = 2 E^2 / Var = rho0^2 M^2 / sum_|j|<M (M - |j|) rho(j)^2 (exact given
    the model autocovariance R0, A1 b^(l-1); rho beyond the weights' support decays with
    the correlation time and is cut after 40 of them).
    """
    bsz = r0.shape[0]
    edof = np.zeros((bsz, len(m_values)))
    tail = int(np.ceil(40 * float(np.max(tau_frames)))) + 1
    for i, m in enumerate(m_values):
        w = _weights(int(m), kind)
        c = fftconvolve(w, w[::-1])  # autocorrelation of the weights, lags -(K-1)..K-1
        kk = w.size
        m_max = int(counts[:, i].max())
        if m_max < 1:
            continue
        nj = min(m_max, kk + tail)
        lags = np.arange(nj + kk)
        rr = a1[:, None] * b[:, None] ** np.maximum(lags - 1, 0)
        rr[:, 0] = r0
        full = np.concatenate([rr[:, :0:-1], rr], axis=1)  # lags -(nj+kk-1)..nj+kk-1
        rho = fftconvolve(full, c[None, :], mode="valid", axes=1)
        # 'valid' covers lags -(nj)..nj; keep 0..nj-1
        mid = rho.shape[1] // 2
        rho = rho[:, mid : mid + nj]
        inv = np.zeros(bsz)
        tot = counts[:, i].sum()
        for n_diff in counts[:, i]:
            if n_diff < 1:
                continue
            j = np.arange(min(nj, int(n_diff)))
            var_sum = np.sum((n_diff - j) * rho[:, : j.size] ** 2 * np.where(j > 0, 2, 1), axis=1)
            eta = rho[:, 0] ** 2 * n_diff**2 / var_sum
            inv += (n_diff / tot) ** 2 / eta
        edof[:, i] = 1.0 / inv
    return edof
