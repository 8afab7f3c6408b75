"""The Z look-up table: dataclass, construction from a z-sweep, files, MagTrack layout."""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.interpolate

from camtrack import _backend
from camtrack._validation import check_choice, check_existing_file, check_integer
from camtrack.tracking._camera import roi_camera
from camtrack.tracking._classic import CENTRES, SYMMETRY, measure_classic
from camtrack.tracking._common import as_rois, quiet
from camtrack.tracking._measure import (
    MODES,
    PROFILES,
    batch_size,
    default_bins,
    measure,
    shift_weights,
)
from camtrack.tracking._radial import radial_operator
from camtrack.tracking._saturation import MIN_CLIPPED, check_saturation, compact

__all__ = ["ZLut", "build_zlut", "load_zlut"]

_FORMAT = "camtrack-zlut/1"


@dataclass(frozen=True, eq=False)
class ZLut:
    """A Z look-up table: one reference profile per calibration plane.

    Attributes
    ----------
    z : ndarray, (P,) float64
        Plane positions, strictly increasing, in ``units``.
    profiles : ndarray, (P, B) float64
        Reference profiles, one row per plane, as relative contrast ``(p - bg) / bg``
        (bg: the ROI's border mean). NaN marks bins clipped in that plane.
    profile : {"radial", "fft"}
        Profile kind (radial intensity, or radial amplitude spectrum).
    roi_size : int
        ROI size S the LUT was built for (profiles of other sizes do not match).
    radii : ndarray, (B,)
        Bin centres: pixels from the bead centre ("radial") or cycles per ROI ("fft").
    units : str
        Unit of ``z`` (default "nm").
    oversample : int
        Bins per pixel.
    weights : ndarray, (B,)
        Effective pixel count per bin (shot-noise weight of the fit).
    saturation_level : float or None
        Clip level (input units) seen in the calibration, if any.
    frames_per_plane : ndarray of int, (P,)
        Calibration frames averaged into each plane.
    centre : str
        How the bead centres were measured ("symmetry", the mode's own, or a classic
        block's name, see :func:`build_zlut`); tracking with this LUT uses the same.

    Notes
    -----
    ``to_array()`` / ``from_array()`` convert to the MagTrack layout: an array of shape
    (B + 1, P), first row z, then one profile per column.

    Examples
    --------
    >>> import numpy as np
    >>> from camtrack.tracking import ZLut
    >>> lut = ZLut(z=np.array([0.0, 100.0]), profiles=np.zeros((2, 5)), roi_size=16)
    >>> lut.to_array().shape
    (6, 2)
    """

    z: np.ndarray = field(repr=False)
    profiles: np.ndarray = field(repr=False)
    profile: str = "radial"
    roi_size: int = 64
    radii: np.ndarray | None = field(default=None, repr=False)
    units: str = "nm"
    oversample: int = 1
    weights: np.ndarray | None = field(default=None, repr=False)
    saturation_level: float | None = None
    frames_per_plane: np.ndarray | None = field(default=None, repr=False)
    centre: str = SYMMETRY

    def __post_init__(self) -> None:
        z = np.asarray(self.z, dtype=np.float64).ravel()
        prof = np.asarray(self.profiles, dtype=np.float64)
        if prof.ndim != 2 or prof.shape[0] != z.size or z.size == 0:
            raise ValueError(
                f"`profiles` must have shape (n_planes, n_bins) with n_planes = len(z) = "
                f"{z.size}; got shape {prof.shape}."
            )
        if not np.all(np.isfinite(z)) or np.any(np.diff(z) <= 0):
            raise ValueError("`z` must be finite and strictly increasing (sort the planes).")
        check_choice(self.profile, "profile", PROFILES)
        check_choice(self.centre, "centre", CENTRES)
        check_integer(self.roi_size, "roi_size", minimum=8)
        check_integer(self.oversample, "oversample", minimum=1)
        b = prof.shape[1]
        radii = np.arange(b) / self.oversample if self.radii is None else self.radii
        weights = np.ones(b) if self.weights is None else self.weights
        fpp = np.ones(z.size, dtype=np.int64) if self.frames_per_plane is None else self.frames_per_plane  # fmt: skip
        for name, val in (("radii", radii), ("weights", weights)):
            val = np.asarray(val, dtype=np.float64).ravel()
            if val.size != b:
                raise ValueError(f"`{name}` must have one value per bin ({b}); got {val.size}.")
            object.__setattr__(self, name, val)
        object.__setattr__(self, "z", z)
        object.__setattr__(self, "profiles", prof)
        object.__setattr__(self, "roi_size", int(self.roi_size))
        object.__setattr__(self, "oversample", int(self.oversample))
        object.__setattr__(self, "frames_per_plane", np.asarray(fpp, dtype=np.int64).ravel())
        if self.saturation_level is not None:
            object.__setattr__(self, "saturation_level", float(self.saturation_level))

    @property
    def n_planes(self) -> int:
        """Number of planes P."""
        return int(self.z.size)

    @property
    def n_bins(self) -> int:
        """Number of profile bins B."""
        return int(self.profiles.shape[1])

    @functools.cached_property
    def _spline(self) -> tuple[np.ndarray, np.ndarray]:
        prof = self.profiles
        valid = np.isfinite(prof)
        filled = prof.copy()
        for b in np.flatnonzero(~valid.all(axis=0)):
            ok = valid[:, b]
            filled[:, b] = np.interp(self.z, self.z[ok], prof[ok, b]) if ok.any() else 0.0
        if self.n_planes < 2:
            return np.zeros((4, 0, self.n_bins)), np.zeros((0, self.n_bins), dtype=bool)
        bc = "not-a-knot" if self.n_planes >= 4 else "natural"
        spl = scipy.interpolate.CubicSpline(self.z, filled, axis=0, bc_type=bc)
        # A segment is usable for a bin when the planes that shape it there are unclipped.
        pad = np.pad(valid, ((1, 1), (0, 0)), mode="edge")
        seg_ok = pad[:-3] & pad[1:-2] & pad[2:-1] & pad[3:]
        return np.ascontiguousarray(spl.c), seg_ok

    @property
    def spline_coefficients(self) -> np.ndarray:
        """(4, P-1, B) cubic-spline coefficients in z per segment (highest power first)."""
        return self._spline[0]

    @property
    def segment_valid(self) -> np.ndarray:
        """(P-1, B) bool: bins usable within each z segment."""
        return self._spline[1]

    def to_array(self) -> np.ndarray:
        """(B + 1, P) array in the MagTrack layout: first row z, then one profile per column."""
        return np.vstack([self.z[None, :], self.profiles.T])

    @classmethod
    def from_array(
        cls,
        array: Any,
        *,
        roi_size: int,
        profile: str = "radial",
        oversample: int = 1,
        units: str = "nm",
        weights: Any = None,
    ) -> ZLut:
        """Build a ZLut from a (B + 1, P) MagTrack-layout array (first row z).

        Planes are sorted by z. Profiles must have been computed the way this engine
        computes them (``profile``, ``roi_size``, ``oversample``) to be matched.
        """
        a = np.asarray(array, dtype=np.float64)
        if a.ndim != 2 or a.shape[0] < 2:
            raise ValueError(
                f"`array` must be 2-D (1 + n_bins, n_planes), first row z; got shape {a.shape}."
            )
        order = np.argsort(a[0], kind="stable")
        return cls(
            z=a[0, order],
            profiles=a[1:, order].T,
            profile=profile,
            roi_size=roi_size,
            oversample=oversample,
            units=units,
            weights=weights,
        )

    def save(self, path: str | os.PathLike, *, overwrite: bool = False, protect: Any = ()) -> Path:
        """Write to HDF5 (``.h5``, ``.hdf5``) or ``.npz``, atomically.

        Parameters
        ----------
        path : str or path-like
            Output file; the suffix picks the format.
        overwrite : bool
            Replace an existing file (default: refuse with ``FileExistsError``).
        protect : path, iterable of paths, or None
            Input files (e.g. the calibration stack) never to write, even with
            ``overwrite`` (``ValueError``).

        Returns
        -------
        pathlib.Path
            The written file. It is written under a temporary name and appears only
            complete, with the usual permissions (``0o666`` less the umask).
        """
        from camtrack._writers import atomic_path

        p = Path(path)
        suffix = p.suffix.lower()
        if suffix not in (".h5", ".hdf5", ".npz"):
            raise ValueError(f"`path` must end in .h5, .hdf5 or .npz; got {str(p)!r}.")
        arrays = {
            "z": self.z,
            "profiles": self.profiles,
            "radii": self.radii,
            "weights": self.weights,
            "frames_per_plane": self.frames_per_plane,
        }
        attrs = {
            "format": _FORMAT,
            "profile": self.profile,
            "roi_size": self.roi_size,
            "units": self.units,
            "oversample": self.oversample,
            "saturation_level": _nan_if_none(self.saturation_level),
            "centre": self.centre,
        }
        with atomic_path(p, overwrite=overwrite, protect=protect) as tmp:
            if suffix == ".npz":
                with open(tmp, "wb") as fh:
                    np.savez(fh, **arrays, **{k: np.asarray(v) for k, v in attrs.items()})
            else:
                import h5py

                with h5py.File(tmp, "w") as fh:
                    grp = fh.create_group("zlut")
                    for k, v in arrays.items():
                        grp.create_dataset(k, data=v)
                    for k, v in attrs.items():
                        grp.attrs[k] = v
                    grp["z"].attrs["units"] = self.units
        return p

    @classmethod
    def load(cls, path: str | os.PathLike) -> ZLut:
        """Read a ZLut written by :meth:`save`."""
        return load_zlut(path)

    def to_layers(
        self, stack: Sequence[ZLut] | None = None, *, name: str = "Z-LUT"
    ) -> list[tuple[Any, dict, str]]:
        """The table as a napari image layer tuple ``(data, kwargs, "image")``, in a list.

        ``data``: the profiles vs z as float32 (rows: planes, columns: radial bins),
        or, with ``stack`` (one LUT per bead, all of this one's shape), those tables
        stacked (beads, planes, bins), a slider over beads. Pixel units, so the table
        does not stretch a field's world; colormap "twilight" (relative contrast is
        signed); ``metadata``: this LUT's ``z``, ``units`` and ``radii_px``. No napari
        import.

        Examples
        --------
        >>> import numpy as np
        >>> lut = ZLut(z=np.array([0.0, 100.0]), profiles=np.zeros((2, 5)), roi_size=16)
        >>> data, kw, kind = lut.to_layers()[0]
        >>> data.shape, kw["name"], kind
        ((2, 5), 'Z-LUT', 'image')
        """
        tables = [np.asarray(t.profiles, dtype=np.float32) for t in (stack or [self])]
        data = tables[0] if len(tables) == 1 else np.stack(tables)
        meta = {"z": np.asarray(self.z), "units": self.units, "radii_px": self.radii}
        return [(data, {"name": name, "colormap": "twilight", "metadata": meta}, "image")]


def _nan_if_none(v: float | None) -> float:
    return np.nan if v is None else float(v)


def load_zlut(path: str | os.PathLike) -> ZLut:
    """Read a ZLut from ``.h5``/``.hdf5`` or ``.npz`` (as written by :meth:`ZLut.save`).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from camtrack.tracking import ZLut, load_zlut
    >>> lut = ZLut(z=np.arange(3.0), profiles=np.eye(3), roi_size=16, units="um")
    >>> path = os.path.join(tempfile.mkdtemp(), "lut.npz")
    >>> load_zlut(lut.save(path)).units
    'um'
    """
    p = check_existing_file(path, "path")
    suffix = p.suffix.lower()
    if suffix == ".npz":
        with np.load(p, allow_pickle=False) as d:
            data = {k: d[k] for k in d.files}
    elif suffix in (".h5", ".hdf5"):
        import h5py

        with h5py.File(p, "r") as fh:
            if "zlut" not in fh:
                raise ValueError(f"`path` {str(p)!r} holds no 'zlut' group; not a camtrack ZLut.")
            grp = fh["zlut"]
            data = {k: grp[k][()] for k in grp}
            data.update({k: grp.attrs[k] for k in grp.attrs})
    else:
        raise ValueError(f"`path` must end in .h5, .hdf5 or .npz; got {str(p)!r}.")
    fmt = str(np.asarray(data.get("format", "")))
    if fmt != _FORMAT:
        raise ValueError(f"`path` {str(p)!r} is not a camtrack ZLut file (format {fmt!r}).")
    sat = float(np.asarray(data["saturation_level"]))
    return ZLut(
        z=data["z"],
        profiles=data["profiles"],
        profile=str(np.asarray(data["profile"])),
        roi_size=int(np.asarray(data["roi_size"])),
        radii=data["radii"],
        units=str(np.asarray(data["units"])),
        oversample=int(np.asarray(data["oversample"])),
        weights=data["weights"],
        saturation_level=None if np.isnan(sat) else sat,
        frames_per_plane=data["frames_per_plane"],
        # Files written before the classic centres were offered: the symmetry centre.
        centre=str(np.asarray(data.get("centre", SYMMETRY))),
    )


def _plateau_level(mean_images: np.ndarray, tol: float) -> float | None:
    """Clip level revealed by averaged planes: a compact flat top at the maximum.

    Averaging frames shrinks the noise on a full-well plateau (only read noise there)
    far below the shot noise elsewhere, so the plateau stands out in the mean image.
    """
    xp = np
    levels = []
    for img in mean_images:
        top = float(img.max())
        mask = (img >= top - tol)[None]
        if int(mask.sum()) < MIN_CLIPPED:
            continue
        yy, xx = np.nonzero(mask[0])
        cx, cy = np.array([xx.mean()]), np.array([yy.mean()])
        kept, _ = compact(xp, mask, cx, cy)
        if bool(kept.any()):
            levels.append(top)
    return min(levels) if levels else None


def build_zlut(
    calib_rois: Any,
    z: Any,
    *,
    profile: str = "radial",
    oversample: int = 1,
    n_bins: int | None = None,
    mode: str = "precise",
    centre: str = "symmetry",
    saturation: Any = "auto",
    saturation_tol: float = 3.0,
    units: str = "nm",
    camera: Any = None,
    e_per_adu: Any = None,
    offset_adu: Any = None,
    read_noise_e: Any = None,
) -> ZLut:
    """Build a Z look-up table from a calibration z-sweep of one bead.

    Parameters
    ----------
    calib_rois : array, (F, S, S) or (P, F, S, S)
        Calibration ROIs of a bead, any integer or float dtype. (F, S, S): one z per
        frame, frames with equal z are averaged into one plane. (P, F, S, S): P
        planes of F frames each.
    z : array_like, (F,) or (P,)
        Stage (focus) position of each frame or plane, in ``units``.
    profile : {"radial", "fft"}
        Radial intensity profile (default), or the radial profile of the amplitude
        spectrum (insensitive to the centre, less sensitive to z).
    oversample : int
        Radial bins per pixel.
    n_bins : int, optional
        Number of bins. Default for radial profiles in "precise" mode: out to the
        corners of the shift window's flat top, ``oversample * sqrt(2) (S/2 - 5)`` px
        (partial rings beyond the inscribed circle: much of a small ROI's z
        information lies there); else ``oversample * (S // 2 - 4)``.
    mode : {"precise", "fast"}
        How the bead centre is found in each frame (see :func:`track_rois`).
    centre : {"symmetry", "center-of-mass", "auto-conv", "auto-conv-multiline", "quadratic-interpolation", "qi"}
        "symmetry": the mode's own centre; else a classic block's centre, as in
        :func:`track_rois`. Recorded in the LUT (``ZLut.centre``), so tracking with it
        measures centres the same way.
    saturation : None, "auto" or float
        Clipped-pixel handling, as in :func:`track_rois`; clipped bins become NaN in
        the planes where any frame clipped them.
    saturation_tol : float
        Tolerance (input units) of the "auto" plateau detection.
    units : str
        Unit of ``z``, stored in the table.
    camera : optional
        The camera, as for :func:`track_rois`. Per-pixel maps are (S, S) (the sweep's
        ROI stayed put on the sensor; cut them with :meth:`CameraModel.crop` at the
        ROI's corner) or one per frame, (F, S, S) (``(P * F, S, S)`` for 4-D input).
        Each frame's offset and gain are corrected and hot pixels replaced before its
        profile is taken, so a hot pixel does not print a ring into every plane.
    e_per_adu, offset_adu, read_noise_e : float, optional
        The camera as scalars (or to override ``camera``'s).

    Returns
    -------
    ZLut

    Notes
    -----
    Each frame's bead centre is found on its own and its profile computed about it;
    the profiles (not the images) of a plane's frames are averaged, so jitter of the
    bead between frames does not blur the plane. Profiles are relative contrast
    ``(p - bg) / bg`` with bg the ROI's border mean. Axis order (frame, row, col);
    x = column, y = row, pixel centres at integer coordinates.

    Raises
    ------
    ValueError
        On shapes that do not match, fewer than 2 distinct planes, or non-finite z.

    Examples
    --------
    >>> import numpy as np
    >>> from camtrack.simulate import zsweep
    >>> from camtrack.tracking import build_zlut
    >>> planes = np.arange(-1000.0, 1001.0, 250.0)
    >>> calib, truth = zsweep(planes, roi_size=32, frames_per_plane=3, rng=0)
    >>> lut = build_zlut(calib, truth.z_nm)
    >>> lut.n_planes, lut.n_bins, lut.units
    (9, 16, 'nm')
    """
    check_choice(profile, "profile", PROFILES)
    check_choice(mode, "mode", MODES)
    check_choice(centre, "centre", CENTRES)
    saturation = check_saturation(saturation)
    oversample = check_integer(oversample, "oversample", minimum=1, maximum=8)
    shape = getattr(calib_rois, "shape", None)
    if shape is not None and len(shape) == 4:
        p_, f_ = int(shape[0]), int(shape[1])
        rois = calib_rois.reshape(p_ * f_, *shape[2:])
        zz = np.asarray(z, dtype=np.float64).ravel()
        if zz.size != p_:
            raise ValueError(f"`z` must have one value per plane ({p_}) for 4-D `calib_rois`; got {zz.size}.")  # fmt: skip
        zz = np.repeat(zz, f_)
    else:
        rois = calib_rois
        zz = np.asarray(z, dtype=np.float64).ravel()
    as_rois(rois, "calib_rois")
    if zz.size != rois.shape[0]:
        raise ValueError(
            f"`z` must have one value per calibration frame ({rois.shape[0]}); got {zz.size}."
        )
    if not np.all(np.isfinite(zz)):
        raise ValueError("`z` must be finite.")
    planes, inverse = np.unique(zz, return_inverse=True)
    if planes.size < 2:
        raise ValueError(f"`z` must hold at least 2 distinct planes; got {planes.size}.")
    size = int(rois.shape[-1])
    cam = roi_camera(camera, {"e_per_adu": e_per_adu, "offset_adu": offset_adu, "read_noise_e": read_noise_e}, int(rois.shape[0]), size)  # fmt: skip
    n_bins = default_bins(size, oversample, profile, mode) if n_bins is None else check_integer(n_bins, "n_bins", minimum=2)  # fmt: skip
    xp, _ = _backend.namespace(rois)
    step = batch_size(size, mode)
    profs = []
    sums = np.zeros((planes.size, size, size))
    for s in range(0, rois.shape[0], step):
        batch = xp.asarray(rois[s : s + step])
        bcam = None if cam is None else cam.rows(slice(s, s + step))
        kw = {"mode": mode, "profile": profile, "n_bins": n_bins, "oversample": oversample,
              "saturation": saturation, "saturation_tol": saturation_tol, "camera": bcam}  # fmt: skip
        if centre == SYMMETRY:
            out = measure(xp, batch, **kw)
        else:
            out = measure_classic(xp, batch, centre=centre, **kw)
        profs.append(_backend.to_host(out["profiles"]))
        np.add.at(sums, inverse[s : s + step], _backend.to_host(batch).astype(np.float64))
    prof = np.concatenate(profs)
    counts = np.bincount(inverse, minlength=planes.size)
    with quiet():
        table = np.zeros((planes.size, n_bins))
        np.add.at(table, inverse, np.where(np.isfinite(prof), prof, 0.0))
        # A bin clipped (NaN) in any frame of a plane is NaN in that plane.
        nan_any = np.zeros((planes.size, n_bins), dtype=bool)
        np.logical_or.at(nan_any, inverse, ~np.isfinite(prof))
        table = np.where(nan_any, np.nan, table / counts[:, None])
    level = None
    if saturation is not None:
        mean_images = sums / counts[:, None, None]
        level = _plateau_level(mean_images, saturation_tol / np.sqrt(counts.min()))
        if saturation != "auto":
            level = float(saturation)
    if profile == "radial":
        op = radial_operator(size, n_bins, oversample)
        radii = op.radii
        weights = shift_weights(size, n_bins, oversample) if mode == "precise" else op.n_eff
    else:
        radii = np.arange(n_bins) / oversample
        weights = np.ones(n_bins)
    return ZLut(
        z=planes,
        profiles=table,
        profile=profile,
        roi_size=size,
        radii=radii,
        units=units,
        oversample=oversample,
        weights=weights,
        saturation_level=level,
        frames_per_plane=counts,
        centre=centre,
    )
