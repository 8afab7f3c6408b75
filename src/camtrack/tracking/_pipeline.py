"""track_rois: x, y (and z with a Z-LUT) for a batch of ROIs."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from camtrack import _backend
from camtrack._parallel import n_workers
from camtrack._validation import check_choice, check_integer, check_positive
from camtrack.tracking._camera import CameraModel, roi_camera
from camtrack.tracking._classic import CENTRES, SYMMETRY, measure_classic
from camtrack.tracking._common import as_rois, computed
from camtrack.tracking._errors import profile_correlation
from camtrack.tracking._fftnoise import fft_z_error
from camtrack.tracking._lookup import zfit
from camtrack.tracking._measure import (
    MODES,
    PROFILES,
    REFINE_MIN_SIZE,
    batch_size,
    default_bins,
    measure,
)
from camtrack.tracking._result import TrackResult, check_timing
from camtrack.tracking._saturation import check_saturation
from camtrack.tracking._zlut import ZLut

__all__ = ["track_rois"]


# The tracking options of track_rois and track_beads (keyword-only in both).
TRACK_OPTIONS = ("n_bins", "oversample", "profile", "centre", "saturation", "saturation_tol",
                 "n_iter", "z_iter", "refine_xy", "keep_profiles", "workers")  # fmt: skip
# Those a Z-LUT fixes: None means "the LUT's, else the default".
_FROM_LUT = ("n_bins", "oversample", "profile", "centre")


def track_options(**options: Any) -> dict[str, Any]:
    """The given tracking options as a dict, without the LUT-fixed ones left at None."""
    return {k: v for k, v in options.items() if not (k in _FROM_LUT and v is None)}


def resolve_options(
    size: int, zlut: ZLut | None, options: dict[str, Any], mode: str = "precise"
) -> dict[str, Any]:
    """Check the tracking options of track_rois/track_beads; fill defaults from the LUT."""
    o = dict(options)
    if zlut is not None:
        if not isinstance(zlut, ZLut):
            raise TypeError(f"`zlut` must be a ZLut (see build_zlut) or None; got {type(zlut).__name__}.")  # fmt: skip
        if zlut.roi_size != size:
            raise ValueError(
                f"`zlut` was built for {zlut.roi_size}x{zlut.roi_size} ROIs; got {size}x{size}. "
                "Use ROIs of the LUT's size (crop_rois) or build a LUT for this size."
            )
        for key, val in (("n_bins", zlut.n_bins), ("oversample", zlut.oversample), ("profile", zlut.profile), ("centre", zlut.centre)):  # fmt: skip
            if key in o and o[key] != val:
                raise ValueError(
                    f"`{key}`={o[key]!r} differs from the ZLut's {val!r} (the LUT's profiles "
                    f"were taken that way); leave `{key}` out to use the LUT's, or build a "
                    f"LUT with {key}={o[key]!r}."
                )
            o[key] = val
    o.setdefault("oversample", 1)
    o["oversample"] = check_integer(o["oversample"], "oversample", minimum=1, maximum=8)
    o["profile"] = check_choice(o.get("profile", "radial"), "profile", PROFILES)
    o["centre"] = check_choice(o.get("centre", SYMMETRY), "centre", CENTRES)
    o.setdefault("n_bins", default_bins(size, o["oversample"], o["profile"], mode))
    o["n_bins"] = check_integer(o["n_bins"], "n_bins", minimum=2)
    o["saturation"] = check_saturation(o.get("saturation", "auto"))
    o["saturation_tol"] = check_positive(o.get("saturation_tol", 3.0), "saturation_tol", allow_zero=True)  # fmt: skip
    o["n_iter"] = check_integer(o.get("n_iter", 2), "n_iter", minimum=1, maximum=20)
    o["z_iter"] = check_integer(o.get("z_iter", 2), "z_iter", minimum=0, maximum=50)
    o["keep_profiles"] = bool(o.get("keep_profiles", True))
    refine = o.get("refine_xy")
    if refine is not None and not isinstance(refine, bool | np.bool_):
        raise TypeError(f"`refine_xy` must be None (auto), True or False; got {refine!r}.")
    auto = True if size >= REFINE_MIN_SIZE else "clipped"
    o["refine_xy"] = auto if refine is None else bool(refine)
    workers = o.get("workers")
    o["workers"] = None if workers is None else check_integer(workers, "workers", minimum=1)
    return o


def _one_batch(xp: Any, batch: Any, zlut: ZLut | None, mode: str, o: dict[str, Any], camera: CameraModel | None = None) -> dict[str, Any]:  # fmt: skip
    level = None if zlut is None else zlut.saturation_level
    common = {
        "mode": mode, "profile": o["profile"], "n_bins": o["n_bins"],
        "oversample": o["oversample"], "saturation": o["saturation"],
        "saturation_tol": o["saturation_tol"], "saturation_level": level,
        "profiles": zlut is not None or o["keep_profiles"], "camera": camera,
    }  # fmt: skip
    if o.get("centre", SYMMETRY) == SYMMETRY:
        out = measure(xp, batch, n_iter=o["n_iter"], refine_xy=o["refine_xy"], **common)
    else:
        out = measure_classic(xp, batch, centre=o["centre"], **common)
    m = out["x"].shape[0]
    if zlut is None:
        z = xp.full(m, np.nan)
        match = xp.full(m, np.nan)
        z_err = xp.full(m, np.nan)
    else:
        pnoise = out["profile_noise"]
        if o["profile"] == "fft" and pnoise is not None:
            # The FFT profile's exact z error (module _fftnoise): the fit's response per
            # bin under the noise of the spectrum's samples; where the fit's own error
            # is defined (a finite residual and curvature).
            z, match, z_err, (u, curv) = zfit(xp, out["profiles"], zlut, o["z_iter"], influence=True)  # fmt: skip
            fpp = float(np.mean(zlut.frames_per_plane))
            exact = fft_z_error(xp, u, curv, pnoise, out["background"], o["oversample"], fpp)
            z_err = xp.where(xp.isfinite(z_err), exact, xp.nan)
        else:
            noise = None
            if pnoise is not None:
                size = int(batch.shape[-1])
                noise = (pnoise, profile_correlation(size, o["n_bins"], o["oversample"], mode))
            z, match, z_err = zfit(xp, out["profiles"], zlut, o["z_iter"], noise=noise)
    res = {
        "x": out["x"].astype(xp.float64),
        "y": out["y"].astype(xp.float64),
        "x_err": out["x_err"].astype(xp.float64),
        "y_err": out["y_err"].astype(xp.float64),
        "quality": out["quality"].astype(xp.float64),
        "z": z,
        "z_err": z_err,
        "match": match,
    }
    if o["keep_profiles"]:
        res["profiles"] = out["profiles"]
    return res


def run_batches(xp: Any, rois: Any, zlut: ZLut | None, mode: str, o: dict[str, Any], camera: CameraModel | None = None) -> dict[str, Any]:  # fmt: skip
    """Measure (and look up z) batch by batch; concatenated arrays on the ROIs' backend.

    numpy input: batches run on a thread pool of ``o["workers"]`` threads (default:
    every usable core); numpy and scipy.fft release the GIL in the heavy loops.
    """
    n, size = int(rois.shape[0]), int(rois.shape[-1])
    step = batch_size(size, mode)
    starts = range(0, n, step)
    workers = min(o.get("workers") or n_workers(), len(starts))

    def one(s: int) -> dict[str, Any]:
        # dask ROIs are computed batch by batch (the kernels gather pixels by fancy
        # indexing, which dask lacks), so memory stays bounded by the batch size.
        cam = None if camera is None else camera.rows(slice(s, s + step))
        return _one_batch(xp, computed(rois[s : s + step]), zlut, mode, o, cam)

    if xp is not np or len(starts) <= 1:
        outs = [one(s) for s in starts]
    else:
        # BLAS at one thread: on products this small its threads gain nothing, spin
        # against the caller, and oversubscribe the cores of our own pool.
        with _backend.single_threaded_blas():
            if workers > 1:
                with ThreadPoolExecutor(max_workers=workers) as pool:
                    outs = list(pool.map(one, starts))
            else:
                outs = [one(s) for s in starts]
    keys = ("x", "y", "z", "x_err", "y_err", "z_err", "quality", "match", "profiles")
    res = {k: xp.concatenate([r[k] for r in outs]) for k in keys if outs and k in outs[0]}
    res.setdefault("profiles", None)
    return res


def track_rois(
    rois: Any,
    *,
    zlut: ZLut | None = None,
    mode: str = "precise",
    camera: Any = None,
    e_per_adu: Any = None,
    offset_adu: Any = None,
    read_noise_e: Any = None,
    fs_hz: float | None = None,
    exposure_s: float | None = None,
    n_bins: int | None = None,
    oversample: int | None = None,
    profile: str | None = None,
    centre: str | None = None,
    saturation: Any = "auto",
    saturation_tol: float = 3.0,
    n_iter: int = 2,
    z_iter: int = 2,
    refine_xy: bool | None = None,
    keep_profiles: bool = True,
    workers: int | None = None,
) -> TrackResult:
    """Sub-pixel x, y (and z with a Z-LUT) of one bead per ROI.

    Parameters
    ----------
    rois : array, (N, S, S)
        ROIs, one bead each, any integer or float dtype (uint16 camera data directly),
        numpy, cupy or dask (computed one batch at a time). Never modified.
    zlut : ZLut, optional
        Look-up table for z (built for S x S ROIs); without it z is NaN.
    camera : optional
        The camera's noise model: a :class:`CameraModel`, a dict of ``e_per_adu``,
        ``offset_adu``, ``read_noise_e``, a :class:`camtrack.gain.PixelCalibration`
        (per-pixel maps from ``calibrate_pixels``) or a :class:`camtrack.gain.GainResult`.
        Maps are (S, S) (the same pixels in every ROI) or (N, S, S). With maps, each
        pixel's offset and gain are corrected (to the median camera's ADU scale, so a
        Z-LUT built without maps still matches) and hot pixels (read variance over 4x a
        background pixel's) are replaced by their neighbours' mean. The camera's
        variances give ``x_err``, ``y_err``; without a camera they are estimated from
        each ROI's residuals about its radial template.
    e_per_adu, offset_adu, read_noise_e : float, optional
        The camera as scalars (or to override ``camera``'s).
    fs_hz, exposure_s : float, optional
        Frame rate (Hz) and exposure per frame (s, at most 1 / fs_hz), kept in the result.
    mode : {"precise", "fast"}
        "precise": exact point-symmetry centre (2-D Fourier-series auto-convolution
        maximised by Newton's method, iterated with a window that follows the bead),
        close to the Cramer-Rao bound. "fast": the same symmetry principle on windowed
        x and y projections (for ROIs of 96 px or more followed by one 2-D step on a
        central crop, see ``refine_xy``), several times cheaper and a few times less
        precise.
    n_bins, oversample, profile : optional
        The radial profile's bins, sub-pixel oversampling and kind ("radial" or "fft");
        taken from the LUT when one is given (a different value is refused), else the
        defaults of :func:`build_zlut`.
    centre : {"symmetry", "center-of-mass", "auto-conv", "auto-conv-multiline", "quadratic-interpolation", "qi"}, optional
        How x, y are measured. "symmetry" (the default): the mode's own centre, as
        described under ``mode``. Any other value names a classic building block
        (:func:`center_of_mass`, :func:`auto_conv`, :func:`auto_conv_multiline`,
        :func:`quadratic_interpolation`, :func:`qi`), run at its defaults; the
        refinements start from the peak of the ROI's 2-D auto-convolution. The profile (``mode`` still
        picks how it is taken) and z are then measured about those centres; ``x_err``,
        ``y_err`` and ``quality`` are NaN (no error model of these estimators; see
        Notes). Taken from the LUT when one is given (a different value is refused).
    saturation : None, "auto" or float
        Clipped pixels: "auto" (default) finds them in each ROI, a number is the clip
        level in input units, None: no clipping.
    saturation_tol : float
        How far below an ROI's maximum a pixel still counts as clipped in "auto" (3.0).
    n_iter : int
        Window re-centring iterations (2; the second is a secant step that removes the
        window's pull).
    z_iter : int
        Gauss-Newton steps of the z fit from the best-correlated plane (2; a third
        changed no simulated case's z rms by 0.001 nm).
    refine_xy : bool or None
        Fast mode: after the projections, one 2-D symmetry step on a central crop of
        3/8 of the ROI side; None: for every ROI of 96 px and more, and for clipped
        ROIs at any size; True / False: for every ROI / none. Projections sum whole
        columns of background noise, so their precision falls behind as ROIs grow,
        and a clipped centre's hole costs them more: measured at 128 px the step takes
        x from 0.0055 to 0.0023 px bright and 0.017 to 0.0075 px dim (MagTrack 1.0.0:
        0.0046 and 0.0092) for 1.2-1.25x the time, and clipped 64 px dim ROIs from
        0.020 to 0.013 px; unclipped 64 px ROIs (0.0048 and 0.016 px, as precise as
        MagTrack's) would gain a fifth for a similar share of time.
    keep_profiles : bool
        Keep each ROI's profile in the result (True).
    workers : int or None
        Threads (None: every core this process may use; 1: one thread).

    Returns
    -------
    TrackResult
        ``x``, ``y`` (ROI pixels), ``z``, their standard errors ``x_err``, ``y_err``,
        ``z_err``, ``profiles``, ``quality``, ``match``.

    Notes
    -----
    Axis order (roi, row, col); x = column, y = row, pixel centres at integer
    coordinates (the centre of pixel [0, 0] is (0.0, 0.0)). Work is float32 (float64
    for float64 input), in batches of about 1 Mpixel (2 in fast mode), so memory stays bounded.

    Profiles (precise mode) reach into the ROI corners: every bead within 2.5 px of
    the ROI centre is windowed alike, so its outer bins (partial rings) match the
    LUT's. The fast mode fills only the bins inside the inscribed circle (NaN beyond).

    Classic centres (``centre``), RMS from the truth of 64 px ROIs of beads within
    1.5 px of the ROI middle, bright (4000 e-/px background), on the two image models
    of :mod:`camtrack.simulate` (``bead_rois``; ``gaussian_beam_rois``), against
    0.0017 and 0.009 px for "symmetry": see ``docs/guide/tracking-blocks.md`` for the
    table. Their x_err, y_err are NaN: an error formula of the symmetry centre
    evaluated at another estimator's centre gives that estimator's bound, not its
    scatter, which is 1.5-100x larger and includes pixel locking.

    Failure modes: a NaN or constant ROI gives NaN in every field of its row, without
    warnings. A bead more than 2.5 px off the ROI centre loses the profile bins beyond
    its own smaller window's flat top (NaN, left out of the z fit); a second bead in the ROI breaks the symmetry and
    shows as a low ``quality``. Clipped pixels ("auto": at least 4 pixels within
    ``saturation_tol`` of the ROI maximum; or at/above a given level; or the level the
    Z-LUT calibration revealed) are left out: a disc around them is cut from the
    symmetry window in "precise" mode (the fast mode relies on the clipped plateau
    being symmetric itself), and profile bins touching them are NaN.

    Examples
    --------
    >>> import numpy as np
    >>> from camtrack.simulate import bead_rois
    >>> from camtrack.tracking import track_rois
    >>> rois, truth = bead_rois([30.3, 32.7], [31.9, 30.1], 1500.0, roi_size=64, rng=1)
    >>> res = track_rois(rois)
    >>> bool(np.all(np.abs(res.x - truth.x) < 0.02)), bool(np.isnan(res.z).all())
    (True, True)
    """
    as_rois(rois)
    fs_hz, exposure_s = check_timing(fs_hz, exposure_s)
    mode = check_choice(mode, "mode", MODES)
    xp, _ = _backend.namespace(rois)
    size = int(rois.shape[-1])
    options = track_options(
        n_bins=n_bins, oversample=oversample, profile=profile, centre=centre, saturation=saturation,
        saturation_tol=saturation_tol, n_iter=n_iter, z_iter=z_iter, refine_xy=refine_xy,
        keep_profiles=keep_profiles, workers=workers,
    )  # fmt: skip
    o = resolve_options(size, zlut, options, mode)
    scalars = {"e_per_adu": e_per_adu, "offset_adu": offset_adu, "read_noise_e": read_noise_e}
    cam = roi_camera(camera, scalars, int(rois.shape[0]), size)
    res = run_batches(xp, rois, zlut, mode, o, cam)
    return TrackResult(
        units="nm" if zlut is None else zlut.units, fs_hz=fs_hz, exposure_s=exposure_s, **res
    )
