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


def cluster_cov(
    counts: np.ndarray,
    m_values,
    kind: str,
    r0: np.ndarray,
    a1: np.ndarray,
    b: np.ndarray,
    tau_frames: np.ndarray,
    full: bool = True,
) -> np.ndarray:
    """Covariance matrix of the pooled estimates across cluster sizes, (B, n_m, n_m).

    For Gaussian data, Q_m = (1 / (norm T_m)) sum D^m_k^2 over all T_m differences, and
    Cov(Q_a, Q_b) = 2 / (norm^2 T_a T_b) sum_s n_ab(s) rho_ab(s)^2, with
    rho_ab(s) = Cov(D^a_k, D^b_(k+s)) = sum_l c_ab(l) R(s + l) (c_ab the cross-correlation
    of the two difference weights, R the model autocovariance R0, A1 b^(l-1)) and
    n_ab(s) the number of difference pairs s apart within each segment. Exact to the
    truncation of R after 40 correlation times. The diagonal gives the equivalent degrees
    of freedom (2 E^2 / Var) that weight the fit; the whole matrix, the fit's sandwich
    covariance (neighbouring cluster sizes share data). ``full=False``: the diagonal
    only (what the weights need), about half the cost.
    """
    norm = 2.0 if kind == "allan" else 6.0
    n_m = len(m_values)
    bsz = r0.shape[0]
    tail = int(np.ceil(40 * float(np.max(tau_frames)))) + 1
    ws = [_weights(int(m), kind) for m in m_values]
    total = counts.sum(axis=0)
    kmax = max(w.size for w in ws)
    lr = 2 * kmax + tail
    lags = np.arange(lr + 1)
    rr = a1[:, None] * b[:, None] ** np.maximum(lags - 1, 0)
    rr[:, 0] = r0
    rfull = np.concatenate([rr[:, :0:-1], rr], axis=1)  # lags -lr..lr
    out = np.zeros((bsz, n_m, n_m))
    for i in range(n_m):
        for j in range(i, n_m if full else i + 1):
            wa, wb = ws[i], ws[j]
            ka, kb = wa.size, wb.size
            need = ka + kb + tail
            c = fftconvolve(wa[::-1], wb)  # c(l), l = -(ka-1)..kb-1
            sub = rfull[:, lr - need : lr + need + 1]  # lags -need..need
            rho = fftconvolve(sub, c[None, ::-1], mode="valid", axes=1)
            s = np.arange(rho.shape[1]) + ka - 1 - need
            acc = np.zeros(bsz)
            for seg in range(counts.shape[0]):
                ma, mb = counts[seg, i], counts[seg, j]
                if ma < 1 or mb < 1:
                    continue
                n_pairs = np.maximum(0, np.minimum(ma, mb - s) - np.maximum(0, -s))
                acc += rho**2 @ n_pairs
            out[:, i, j] = out[:, j, i] = 2.0 * acc / (norm**2 * total[i] * total[j])
    return out
