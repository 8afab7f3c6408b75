"""z from profiles: Pearson start, then a noise-weighted fit to the spline-interpolated LUT."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from camtrack import _backend
from camtrack._jit import LazyJit
from camtrack._validation import check_integer, renamed_keywords
from camtrack.tracking._common import quiet

if TYPE_CHECKING:
    from camtrack.tracking._zlut import ZLut

__all__ = ["lookup_z", "pearson", "weighted_pearson", "zfit"]


def pearson(profiles: Any, references: Any) -> Any:
    """Pearson correlation of every profile with every reference profile.

    Parameters
    ----------
    profiles : array, (N, B)
        Profiles (e.g. radial profiles of N ROIs).
    references : array, (P, B)
        Reference profiles (e.g. the planes of a Z-LUT), same bins.

    Returns
    -------
    array, (N, P)
        Correlation coefficients in [-1, 1]; NaN bins are left out pairwise per
        profile; NaN where a profile (or reference) is constant or all NaN.

    Notes
    -----
    Computed in float64 with matrix products, so it is cheap for many planes.

    Examples
    --------
    >>> import numpy as np
    >>> from camtrack.tracking import pearson
    >>> p = np.array([[1.0, 2.0, 3.0, 4.0]])
    >>> np.round(pearson(p, np.array([[2.0, 4.0, 6.0, 8.0], [4.0, 3.0, 2.0, 1.0]])), 6)
    array([[ 1., -1.]])
    """
    xp, _ = _backend.namespace(profiles, references)
    m = xp.asarray(profiles, dtype=xp.float64)
    ref = xp.asarray(references, dtype=xp.float64)
    if m.ndim != 2 or ref.ndim != 2 or m.shape[1] != ref.shape[1]:
        raise ValueError(
            "`profiles` (N, B) and `references` (P, B) must be 2-D with the same number of "
            f"bins; got shapes {tuple(m.shape)} and {tuple(ref.shape)}."
        )
    w = xp.isfinite(m).astype(xp.float64)
    return weighted_pearson(xp, m, ref, w)


def _dot(xp: Any, a: Any, b: Any) -> Any:
    """Row-wise sum of a * b for (N, B) arrays, one pass (no product temporary).

    numpy's ``sum(axis=1)`` over short rows costs about twice a product; einsum fuses both.
    """
    return xp.einsum("ij,ij->i", a, b)


def weighted_pearson(xp: Any, m: Any, ref: Any, w: Any) -> Any:
    """(N, P) weighted Pearson correlation; ``w`` (N, B) weights (0 leaves a bin out).

    Where every row has the same weights (the usual case: the same bins finite in
    every profile), the references' weighted means and variances are computed once.
    """
    with quiet():
        rf = xp.where(xp.isfinite(ref), ref, 0.0)
        m0 = xp.where(w > 0, m, 0.0)
        sw = (w @ xp.ones(w.shape[1]))[:, None]
        mu_m = _dot(xp, w, m0)[:, None] / sw
        mc = xp.where(w > 0, m0 - mu_m, 0.0)
        wmc = w * mc
        cov = wmc @ rf.T
        same = w.shape[0] > 1 and bool((w == w[:1]).all())
        wr = w[:1] if same else w
        swr = sw[:1] if same else sw
        mu_r = (wr @ rf.T) / swr
        var_r = wr @ (rf * rf).T - swr * mu_r * mu_r
        var_m = _dot(xp, wmc, mc)[:, None]
        r = cov / xp.sqrt(var_m * xp.maximum(var_r, 0.0))
    return r


def zfit(xp: Any, m: Any, zlut: ZLut, n_iter: int, noise: Any = None, influence: bool = False) -> tuple[Any, ...]:  # fmt: skip
    """Vectorised z fit; returns (z, match, z_err), and with ``influence`` a fourth item
    ``(u, curv)``: the fit's response at its solution, ``dz = u . dm / curv`` (u (N, B),
    0 where not finite), for a noise model of the bins other than ``noise``'s (the FFT
    profile's, module ``_fftnoise``).

    ``match`` is the weighted correlation at z. ``z_err`` is the standard error of z,
    the fit linearised at its solution: ``dz = u . dm / (u . J)`` with ``J = a L'(z)``
    less its weighted projection on 1 and L (a and b are refitted at every z) and ``u =
    w J``. With ``noise = (var, G)``, var (N, B) each bin's pixel variance on the
    profile's scale and G (B, B) the bins' shared-pixel covariance
    (:func:`~camtrack.tracking._errors.profile_correlation`), the sandwich ``var(z) =
    sum u_b s_b G_bc s_c u_c (1 + 1/F) / (u . J)**2`` (s = sqrt(var); F frames per LUT
    plane: the LUT's own noise). Without ``noise``: ``s2 / (u . J)`` with s2 the fit's
    weighted residual variance (bins taken as independent, so about 1.3x too small for
    kernel-averaged profiles).
    """
    zp = xp.asarray(zlut.z)
    lut = xp.asarray(zlut.profiles)
    # (P-1, 4, B): one segment's coefficients are contiguous, a row gather per ROI.
    coef = xp.ascontiguousarray(xp.asarray(zlut.spline_coefficients).transpose(1, 0, 2))
    ok_seg = xp.asarray(zlut.segment_valid)  # (P-1, B)
    all_ok = bool(ok_seg.all())
    n_eff = xp.asarray(zlut.weights)
    p = zp.size
    m = xp.asarray(m, dtype=xp.float64)
    finite = xp.isfinite(m)
    with quiet():
        w0 = finite * n_eff[None, :]
        r = weighted_pearson(xp, m, lut, w0)
        r = xp.where(xp.isfinite(r), r, -2.0)
        k0 = xp.argmax(r, axis=1)
        # Shot-noise weights: variance of a relative profile bin ~ (1 + contrast) / n_eff.
        level = xp.where(xp.isfinite(lut[k0]), 1.0 + lut[k0], 1.0)
        w = w0 / xp.maximum(level, 0.05)
        mz = xp.where(finite, m, 0.0)
        z = zp[k0].astype(xp.float64)
        steps = xp.diff(zp)
        if p < 2:
            out = (xp.where(finite.any(axis=1), z, xp.nan), r.max(axis=1), xp.full(z.shape, xp.nan))  # fmt: skip
            return (*out, (xp.zeros(m.shape), xp.full(z.shape, xp.nan))) if influence else out
        kern = _zfit_kernel() if xp is np else None
        if kern is not None:
            # Compiled: the Gauss-Newton steps and the final statistics per profile in
            # one pass over its bins (the array version runs ~100 passes over (N, B)).
            zp64 = np.ascontiguousarray(zp, dtype=np.float64)
            nb_ = m.shape[1]
            if noise is None:
                pvar, corr, fpp = np.zeros((1, nb_)), np.zeros((nb_, nb_)), 1.0
            else:
                pvar = np.ascontiguousarray(noise[0], dtype=np.float64)
                corr = np.ascontiguousarray(noise[1], dtype=np.float64)
                fpp = float(np.mean(zlut.frames_per_plane))
            out_z = np.empty(z.shape[0])
            out_m = np.empty(z.shape[0])
            out_e = np.empty(z.shape[0])
            kern(np.ascontiguousarray(mz), np.ascontiguousarray(w), finite.sum(axis=1), z, zp64,
                 np.ascontiguousarray(coef, dtype=np.float64), np.ascontiguousarray(ok_seg, dtype=np.float64),
                 all_ok, int(n_iter), noise is not None, pvar, corr, fpp, out_z, out_m, out_e)  # fmt: skip
            if not influence:
                return out_z, out_m, out_e
            # The kernel keeps its sums: the response again at its solution, as below.
            zc = xp.where(xp.isfinite(out_z), out_z, zp[0])
            _, val, der, ww = _spline(xp, zc, zp, coef, w, ok_seg, all_ok)
            _, _, curv, _, u = _at_solution(xp, mz, ww, val, der)
            return out_z, out_m, out_e, (xp.where(xp.isfinite(u), u, 0.0), curv)
        ones = xp.ones(m.shape[1])
        for _ in range(n_iter):
            seg, val, der, ww = _spline(xp, z, zp, coef, w, ok_seg, all_ok)
            wv = ww * val
            s1 = ww @ ones
            sl = wv @ ones
            sll = _dot(xp, wv, val)
            sm = _dot(xp, ww, mz)
            sml = _dot(xp, wv, mz)
            det = s1 * sll - sl * sl
            a = (s1 * sml - sl * sm) / det
            b = (sm - a * sl) / s1
            # Variable projection: a and b are re-solved at every z, so the step uses the
            # part of the Jacobian J = a L'(z) they cannot absorb (J minus its weighted
            # projection on 1 and L(z)); the plain J converges several times slower.
            # With wd = w L', every sum over J is a (or a**2) times a sum over wd, and
            # sum wj (m - a L - b) needs no residual array.
            wd = ww * der
            d = wd @ ones
            dv = _dot(xp, wd, val)
            proj = (sll * d * d - 2.0 * sl * d * dv + s1 * dv * dv) / det
            num = _dot(xp, wd, mz) - a * dv - b * d
            dz = num / (a * (_dot(xp, wd, der) - proj))
            lim = steps[seg]
            dz = xp.clip(xp.where(xp.isfinite(dz), dz, 0.0), -lim, lim)
            z = xp.clip(z + dz, zp[0], zp[-1])
        _, val, der, ww = _spline(xp, z, zp, coef, w, ok_seg, all_ok)
        match, s2, curv, nb, u = _at_solution(xp, mz, ww, val, der)
        if noise is None:
            z_err = xp.sqrt(xp.maximum(s2, 0.0) / curv)
        else:
            pvar, corr = noise
            v = xp.where(ww > 0, u * xp.sqrt(xp.maximum(xp.asarray(pvar, dtype=u.dtype), 0.0)), 0.0)  # fmt: skip
            g = xp.asarray(corr, dtype=v.dtype)
            fpp = float(np.mean(zlut.frames_per_plane))
            z_err = xp.sqrt(_dot(xp, v @ g, v) * (1.0 + 1.0 / fpp)) / curv
        good = xp.isfinite(match) & (finite.sum(axis=1) >= 3)
        z = xp.where(good, z, xp.nan)
        match = xp.where(good, match, xp.nan)
        z_err = xp.where(good & (nb > 3) & (curv > 0), z_err, xp.nan)
    if influence:
        return z, match, z_err, (xp.where(xp.isfinite(u), u, 0.0), curv)
    return z, match, z_err


def _spline(xp: Any, z: Any, zp: Any, coef: Any, w: Any, ok_seg: Any, all_ok: bool) -> tuple[Any, Any, Any, Any]:  # fmt: skip
    """The LUT spline at ``z`` (N,): (segment, value, derivative, weights), (N, B) each;
    bins whose segment is not valid get weight 0."""
    seg = xp.clip(xp.searchsorted(zp, z, side="right") - 1, 0, zp.size - 2)
    t = (z - zp[seg])[:, None]
    c = coef[seg]  # (N, 4, B)
    c0, c1, c2, c3 = c[:, 0], c[:, 1], c[:, 2], c[:, 3]
    val = ((c0 * t + c1) * t + c2) * t + c3
    der = (3.0 * c0 * t + 2.0 * c1) * t + c2
    ww = w if all_ok else w * ok_seg[seg]
    return seg, val, der, ww


def _at_solution(xp: Any, mz: Any, ww: Any, val: Any, der: Any) -> tuple[Any, ...]:
    """The fit's statistics at its solution: (match, s2, curv, nb, u).

    ``match`` the weighted correlation, ``s2`` the weighted residual variance of the
    affine fit, ``curv`` the variable-projection curvature, ``nb`` the bins used and
    ``u`` (N, B) the influence of each bin: ``dz = u . dm / curv`` (``u = w J``, J the
    part of ``a L'`` that a and b cannot absorb).
    """
    ones = xp.ones(mz.shape[1])
    sw = ww @ ones
    mm = _dot(xp, ww, mz) / sw
    wv = ww * val
    mv = (wv @ ones) / sw
    cov = _dot(xp, wv, mz) - sw * mm * mv
    vm = _dot(xp, ww * mz, mz) - sw * mm * mm
    vv = _dot(xp, wv, val) - sw * mv * mv
    match = cov / xp.sqrt(vm * vv)
    slope = cov / vv
    chi2 = vm - slope * cov  # sum w (m - a L - b)**2 at the best a, b
    nb = (ww > 0).sum(axis=1)
    s2 = chi2 / xp.maximum(nb - 3, 1)
    wd = ww * der
    d = wd @ ones
    dv = _dot(xp, wd, val)
    sl = wv @ ones
    sll = _dot(xp, wv, val)
    det = sw * sll - sl * sl
    proj = (sll * d * d - 2.0 * sl * d * dv + sw * dv * dv) / det
    curv = slope * slope * (_dot(xp, wd, der) - proj)
    alpha = (sll * d - sl * dv) / det
    beta = (sw * dv - sl * d) / det
    u = ww * slope[:, None] * (der - alpha[:, None] - beta[:, None] * val)
    return match, s2, curv, nb, u


def _zfit_loop(mz, w, n_finite, z0, zp, coef, ok_seg, all_ok, n_iter, with_noise, pvar, corr, fpp, out_z, out_m, out_e):  # type: ignore[no-untyped-def]  # fmt: skip
    """:func:`zfit` after the Pearson start (compiled, numpy error model): per profile
    the same sums, steps and statistics as the array version, bin by bin."""
    n, nb = mz.shape
    p = zp.shape[0]
    val = np.empty(nb)
    der = np.empty(nb)
    ww = np.empty(nb)
    u = np.empty(nb)
    for i in range(n):
        z = z0[i]
        mi = mz[i]
        wi = w[i]
        for it in range(n_iter + 1):
            seg = min(max(np.searchsorted(zp, z, side="right") - 1, 0), p - 2)
            t = z - zp[seg]
            for b in range(nb):
                c0 = coef[seg, 0, b]
                c1 = coef[seg, 1, b]
                c2 = coef[seg, 2, b]
                val[b] = ((c0 * t + c1) * t + c2) * t + coef[seg, 3, b]
                der[b] = (3.0 * c0 * t + 2.0 * c1) * t + c2
                ww[b] = wi[b] if all_ok else wi[b] * ok_seg[seg, b]
            s1 = sl = sll = sm = sml = d = dv = sdm = sdd = smm = 0.0
            nw = 0
            for b in range(nb):
                wb = ww[b]
                wv = wb * val[b]
                wd = wb * der[b]
                s1 += wb
                sl += wv
                sll += wv * val[b]
                sm += wb * mi[b]
                sml += wv * mi[b]
                smm += wb * mi[b] * mi[b]
                d += wd
                dv += wd * val[b]
                sdm += wd * mi[b]
                sdd += wd * der[b]
                nw += 1 if wb > 0 else 0
            det = s1 * sll - sl * sl
            proj = (sll * d * d - 2.0 * sl * d * dv + s1 * dv * dv) / det
            if it < n_iter:
                a = (s1 * sml - sl * sm) / det
                bb = (sm - a * sl) / s1
                num = sdm - a * dv - bb * d
                dz = num / (a * (sdd - proj))
                lim = zp[seg + 1] - zp[seg]
                if not math.isfinite(dz):
                    dz = 0.0
                dz = min(max(dz, -lim), lim)
                z = min(max(z + dz, zp[0]), zp[p - 1])
                continue
            mm = sm / s1
            mv = sl / s1
            cov = sml - s1 * mm * mv
            vm = smm - s1 * mm * mm
            vv = sll - s1 * mv * mv
            match = cov / math.sqrt(vm * vv)
            slope = cov / vv
            chi2 = vm - slope * cov
            s2 = chi2 / max(nw - 3, 1)
            curv = slope * slope * (sdd - proj)
            if not with_noise:
                z_err = math.sqrt(max(s2, 0.0) / curv)
            else:
                alpha = (sll * d - sl * dv) / det
                beta = (s1 * dv - sl * d) / det
                for b in range(nb):
                    if ww[b] > 0:
                        u[b] = ww[b] * slope * (der[b] - alpha - beta * val[b]) * math.sqrt(max(pvar[i, b], 0.0))  # fmt: skip
                    else:
                        u[b] = 0.0
                q = 0.0
                for b in range(nb):
                    acc = 0.0
                    for c in range(nb):
                        acc += u[c] * corr[c, b]
                    q += acc * u[b]
                z_err = math.sqrt(q * (1.0 + 1.0 / fpp)) / curv
            good = math.isfinite(match) and n_finite[i] >= 3
            out_z[i] = z if good else math.nan
            out_m[i] = match if good else math.nan
            out_e[i] = z_err if (good and nw > 3 and curv > 0) else math.nan


# The compiled :func:`_zfit_loop`, or None without a working numba (then the array
# version runs; tested equal to rounding).
_zfit_kernel = LazyJit(_zfit_loop, nogil=True, cache=True, error_model="numpy")


@renamed_keywords(n_iter="z_iter")
def lookup_z(profiles: Any, zlut: ZLut, *, z_iter: int = 5) -> Any:
    """z of each profile from a Z look-up table.

    Parameters
    ----------
    profiles : array, (N, B)
        Profiles computed like the LUT's (e.g. ``track_rois(...).profiles`` or the
        relative radial profiles of :func:`build_zlut`); NaN bins are left out.
    zlut : ZLut
        The look-up table.
    z_iter : int
        Gauss-Newton iterations of the continuous fit (``z_iter`` of
        :func:`track_rois`).

    Returns
    -------
    array, (N,) float64
        z in the LUT's unit (``zlut.units``); NaN for profiles with fewer than 3
        finite bins or no contrast.

    Notes
    -----
    1. The weighted Pearson correlation with every LUT plane picks the start plane.
    2. The LUT is interpolated continuously in z by a cubic spline through the planes
       (per radial bin), and ``sum_b w_b (m_b - a L_b(z) - c)^2`` is minimised over z
       (Gauss-Newton on the variable projection) with the affine terms a, c solved
       exactly at every step, so illumination changes and background errors do not
       move z. The weights
       ``w_b = n_eff_b / (1 + L_b)`` are the inverse shot-noise variance of a bin
       averaging ``n_eff_b`` pixels. LUT bins that were clipped in a plane are left
       out of the spline segments they touch.
    A parabola through the correlation peak leaves about a third of a LUT step of
    error even without noise; the spline fit removes it. z is clamped to the LUT's
    range: a bead outside it reads as the nearest end (and a low ``match``).

    Examples
    --------
    >>> import numpy as np
    >>> from camtrack.simulate import zsweep
    >>> from camtrack.tracking import build_zlut, track_rois, lookup_z
    >>> planes = np.arange(-1000.0, 1001.0, 100.0)
    >>> calib, _ = zsweep(planes, roi_size=32, frames_per_plane=2, noise=False)
    >>> lut = build_zlut(calib, np.repeat(planes, 2))
    >>> probe, _ = zsweep([250.0], roi_size=32, frames_per_plane=1, noise=False)
    >>> z = lookup_z(track_rois(probe).profiles, lut)
    >>> bool(abs(z[0] - 250.0) < 5.0)
    True
    """
    from camtrack.tracking._zlut import ZLut

    if not isinstance(zlut, ZLut):
        raise TypeError(f"`zlut` must be a ZLut (see build_zlut); got {type(zlut).__name__}.")
    xp, _ = _backend.namespace(profiles)
    m = xp.asarray(profiles)
    if m.ndim != 2 or m.shape[1] != zlut.n_bins:
        raise ValueError(
            f"`profiles` must have shape (n, {zlut.n_bins}) to match the ZLut's bins; got "
            f"shape {tuple(m.shape)}. Compute them with the LUT's settings."
        )
    z_iter = check_integer(z_iter, "z_iter", minimum=0)
    return zfit(xp, m, zlut, z_iter)[0]
