"""TrackResult: per-ROI positions, profiles and quality, convertible to a table."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from camtrack import _backend
from camtrack._validation import check_positive, require_pandas

__all__ = ["TrackResult"]


def check_timing(fs_hz: Any, exposure_s: Any) -> tuple[float | None, float | None]:
    """Validate the frame rate and exposure: positive, finite, exposure <= 1 / fs_hz."""
    fs = None if fs_hz is None else check_positive(fs_hz, "fs_hz")
    w = None if exposure_s is None else check_positive(exposure_s, "exposure_s")
    if fs is not None and w is not None and w * fs > 1 + 1e-9:
        raise ValueError(
            f"`exposure_s` ({w:g} s) must not exceed the frame period 1 / `fs_hz` "
            f"({1 / fs:g} s at {fs:g} Hz); check both, or leave `exposure_s` out for an "
            "exposure of the whole frame period."
        )
    return fs, w


@dataclass(frozen=True, eq=False)
class TrackResult:
    """Result of :func:`track_rois` and :func:`track_beads`.

    Attributes
    ----------
    x, y : array, (N,) float64
        Bead centres, x = column, y = row, pixel centres at integer coordinates (ROI
        pixels for ``track_rois``, full-frame pixels for ``track_beads``).
    z : array, (N,) float64
        z in ``units`` from the Z-LUT; NaN without a LUT.
    x_err, y_err, z_err : array, (N,) float64 or None
        Standard errors of x, y (pixels) and z (``units``): the expected scatter of
        each position about the truth from the noise of its own ROI. x, y: the
        centre's first- and second-order noise propagation through the symmetry fit,
        with the bead's radial template and the camera's pixel variances (or variances
        estimated from the ROI's residuals); z: the z fit's curvature and residuals.
        Checked on two image models: RMS error / RMS reported error within 0.8-1.25.
        A bead's position +- 2 ``x_err`` covers the truth about 95 % of the time.
    profiles : array, (N, B) or None
        Relative radial profiles ``(p - bg) / bg`` (None when not kept).
    quality : array, (N,) float64
        Point-symmetry score in [-1, 1] of the ROI about (x, y): 1 for a perfectly
        symmetric bead; noise, a neighbouring bead or a wrong centre lower it.
    match : array, (N,) float64
        Weighted correlation of the profile with the LUT at z (NaN without a LUT).
    frame, bead : array, (N,) int or None
        Frame and bead index per row (``track_beads``); None for ``track_rois``.
    units : str
        Unit of z.
    fs_hz : float or None
        Frame rate in Hz (from the file's metadata or the user); with it the table has
        a time column ``t_s`` = frame / fs_hz.
    exposure_s : float or None
        Exposure time per frame in s (at most 1 / fs_hz); None: unknown (or the whole
        frame period).

    Notes
    -----
    Rows with NaN x, y come from NaN or constant ROIs, or beads too close to the frame
    edge (``track_beads``). Arrays are on the input's backend (numpy or cupy).
    """

    x: Any = field(repr=False)
    y: Any = field(repr=False)
    z: Any = field(repr=False)
    profiles: Any = field(repr=False)
    quality: Any = field(repr=False)
    match: Any = field(repr=False)
    frame: Any = field(default=None, repr=False)
    bead: Any = field(default=None, repr=False)
    units: str = "nm"
    x_err: Any = field(default=None, repr=False)
    y_err: Any = field(default=None, repr=False)
    z_err: Any = field(default=None, repr=False)
    fs_hz: float | None = None
    exposure_s: float | None = None

    def __post_init__(self) -> None:
        fs, w = check_timing(self.fs_hz, self.exposure_s)
        object.__setattr__(self, "fs_hz", fs)
        object.__setattr__(self, "exposure_s", w)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def to_table(self) -> dict[str, np.ndarray]:
        """Columns as host numpy arrays: [frame, bead, [t_s,]] x, y, z, [x_err, y_err, z_err,] quality, match.

        ``t_s`` = frame / ``fs_hz`` (s; frame 0 at t = 0) when the frame rate is known.
        """  # fmt: skip
        cols: dict[str, np.ndarray] = {}
        if self.frame is not None:
            cols["frame"] = _backend.to_host(self.frame)
            cols["bead"] = _backend.to_host(self.bead)
            if self.fs_hz is not None:
                cols["t_s"] = cols["frame"] / float(self.fs_hz)
        for name in ("x", "y", "z", "x_err", "y_err", "z_err", "quality", "match"):
            val = getattr(self, name)
            if val is not None:
                cols[name] = _backend.to_host(val)
        return cols

    def to_dict(self) -> dict[str, np.ndarray]:
        """Same as :meth:`to_table`."""
        return self.to_table()

    def to_dataframe(self) -> Any:
        """A pandas DataFrame of :meth:`to_table`.

        Raises ``ImportError`` naming the install (``pip install pandas``) when pandas
        is missing; :meth:`to_table` gives the same columns without it.

        Examples
        --------
        >>> import numpy as np
        >>> from camtrack.simulate import bead_rois
        >>> from camtrack.tracking import track_rois
        >>> rois, _ = bead_rois([15.2, 16.0], 15.5, 1000.0, roi_size=32, rng=0)
        >>> list(track_rois(rois).to_dataframe().columns)
        ['x', 'y', 'z', 'x_err', 'y_err', 'z_err', 'quality', 'match']
        """
        pd = require_pandas("TrackResult.to_dataframe()")
        return pd.DataFrame(self.to_table())

    def save(
        self,
        path: str | PathLike,
        *,
        nm_per_px: float | None = None,
        first_frame: int = 0,
        source: str | None = None,
        reference: Iterable[int] | None = None,
        zlut: str | Sequence[str] | None = None,
        overwrite: bool = False,
        protect: Iterable[str | PathLike] | str | PathLike | None = (),
    ) -> Path:
        """Write the table to ``.csv`` or ``.h5``/``.hdf5``, atomically.

        Parameters
        ----------
        path : str or path-like
            Output file; the suffix picks the format. An HDF5 file holds one dataset
            per column under ``tracking/`` with its unit in the ``units`` attribute,
            and ``fs_hz`` / ``exposure_s`` attributes when they are known.
        nm_per_px : float, optional
            Pixel size; when given, columns ``x_nm`` and ``y_nm`` (and ``x_err_nm``,
            ``y_err_nm``) are added.
        first_frame : int
            Added to the ``frame`` column (a run over a frame range starting there);
            ``t_s`` (with ``fs_hz``) follows it: (frame + first_frame) / fs_hz.
        source : str, optional
            Where the data came from (stored in the HDF5 attributes).
        reference : iterable of int, optional
            Beads used as reference (stuck) beads: a boolean ``reference`` column
            (needs the ``bead`` column) and, in HDF5, the ``reference`` attribute.
        zlut : str or sequence of str, optional
            The Z-LUT used (a description: file, bead, planes), one for all beads or
            one per bead: a ``zlut`` column in CSV, the ``zlut`` attribute in HDF5.
        overwrite : bool
            Replace an existing file (default: refuse with ``FileExistsError``, also
            when another process creates it meanwhile).
        protect : path, paths or None
            Input files that must never be written (refused even with ``overwrite``).

        Returns
        -------
        pathlib.Path
            The written file. The file appears only once complete (temporary name,
            then rename), so an interrupted run leaves no half file.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> from camtrack.simulate import bead_rois
        >>> from camtrack.tracking import track_rois
        >>> rois, _ = bead_rois([15.2, 16.0], 15.5, 1000.0, roi_size=32, rng=0)
        >>> out = track_rois(rois).save(pathlib.Path(tempfile.mkdtemp()) / "xy.csv")
        >>> out.read_text().splitlines()[0]
        'x,y,z,x_err,y_err,z_err,quality,match'
        """
        from camtrack import io

        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".csv", ".h5", ".hdf5"):
            raise ValueError(
                f"`path` must end in .csv, .h5 or .hdf5; got {path.name!r}. Pick one of them."
            )
        tab = self.to_table()
        if "frame" in tab:
            tab["frame"] = tab["frame"] + int(first_frame)
            if "t_s" in tab:
                tab["t_s"] = tab["frame"] / float(self.fs_hz)
        if nm_per_px is not None:
            nm_per_px = check_positive(nm_per_px, "nm_per_px")
            tab["x_nm"] = tab["x"] * float(nm_per_px)
            tab["y_nm"] = tab["y"] * float(nm_per_px)
            for k in ("x", "y"):
                if f"{k}_err" in tab:
                    tab[f"{k}_err_nm"] = tab[f"{k}_err"] * float(nm_per_px)
        refs = sorted({int(b) for b in reference}) if reference is not None else None
        luts = [zlut] if isinstance(zlut, str) else (None if zlut is None else [str(v) for v in zlut])  # fmt: skip
        if (refs is not None or (luts and len(luts) > 1)) and "bead" not in tab:
            raise ValueError(
                "`reference` and per-bead `zlut` need the bead column: save the result of "
                "track_beads (frames x beads), or pass one `zlut` string."
            )
        if refs is not None:
            tab["reference"] = np.isin(tab["bead"], refs)
        if suffix == ".csv":
            if luts is not None:
                per = np.asarray(luts, dtype=object)
                tab["zlut"] = per[tab["bead"].astype(int)] if len(luts) > 1 else np.full(len(tab["x"]), luts[0], dtype=object)  # fmt: skip
            return io.write_csv(path, tab, overwrite=overwrite, protect=protect)
        units = {"x": "px", "y": "px", "z": self.units, "x_nm": "nm", "y_nm": "nm", "x_err": "px", "y_err": "px", "z_err": self.units, "x_err_nm": "nm", "y_err_nm": "nm", "t_s": "s"}  # fmt: skip
        timing = {k: v for k, v in (("fs_hz", self.fs_hz), ("exposure_s", self.exposure_s)) if v is not None}  # fmt: skip
        return io.write_hdf5(
            path,
            {f"tracking/{k}": v for k, v in tab.items()},
            attrs={
                "units": {k: units.get(k, "") for k in tab},
                "source": source or "",
                "nm_per_px": None if nm_per_px is None else float(nm_per_px),
                "reference": [] if refs is None else refs,
                "zlut": json.dumps(luts or []),  # JSON: h5py stores no unicode arrays
                **timing,
            },
            overwrite=overwrite,
            protect=protect,
        )

    def to_points(
        self, first_frame: int = 0, *, origin: Any = None, name: str = "tracked", **kwargs: Any
    ) -> tuple[np.ndarray, dict[str, Any], str]:
        """The positions as a napari points layer tuple ``(data, kwargs, "points")``.

        Parameters
        ----------
        first_frame : int
            Added to the frame index (a run over a frame range starting there), so the
            points sit on the frames of the whole stack.
        origin : (y0, x0) arrays (N,), optional
            ``track_rois`` results only: each ROI's top-left corner in the frame (from
            :func:`crop_rois`), so ROI coordinates become frame coordinates.
        name : str
            Layer name.
        **kwargs
            Layer keyword arguments that replace the defaults (e.g. ``face_color``).

        Returns
        -------
        tuple
            ``data``: (M, 3) rows (t, y, x) for ``track_beads`` results (t = frame +
            ``first_frame``), (M, 2) rows (y, x) for ``track_rois`` results; float64,
            pixel centres at integer coordinates. Rows with a NaN coordinate (lost
            beads, beads at the edge) are left out. ``kwargs``: ``features`` bead (with
            frames), z, x_err, y_err, z_err (when measured) and quality of each row;
            coloured by z (viridis) when any z is known; ``metadata`` ``fs_hz`` and
            ``exposure_s``. No napari import.

        Examples
        --------
        >>> from camtrack.simulate import bead_rois
        >>> from camtrack.tracking import track_rois
        >>> rois, _ = bead_rois([15.2, 16.0], 15.5, 1000.0, roi_size=32, rng=0)
        >>> data, kw, kind = track_rois(rois).to_points()
        >>> data.shape, kind, list(kw["features"])
        ((2, 2), 'points', ['z', 'x_err', 'y_err', 'z_err', 'quality'])
        """
        tab = self.to_table()
        y, x = tab["y"], tab["x"]
        if origin is not None:
            y0, x0 = origin
            y = y + np.asarray(_backend.to_host(y0), dtype=np.float64)
            x = x + np.asarray(_backend.to_host(x0), dtype=np.float64)
        cols = [y, x]
        features: dict[str, np.ndarray] = {}
        if "frame" in tab:
            cols.insert(0, tab["frame"].astype(np.float64) + int(first_frame))
            features["bead"] = tab["bead"]
        data = np.column_stack(cols).astype(np.float64).reshape(-1, len(cols))
        ok = np.isfinite(data).all(axis=1)
        for key in ("z", "x_err", "y_err", "z_err", "quality"):
            if key in tab:
                features[key] = tab[key]
        features = {k: np.asarray(v)[ok] for k, v in features.items()}
        has_z = bool(np.isfinite(features["z"]).any())
        colour = {"face_color": "z", "face_colormap": "viridis"} if has_z else {"face_color": "#7fb8ff"}  # fmt: skip
        layer = {
            "name": name, "size": 6, "border_width": 0, "features": features, **colour,
            "metadata": {"fs_hz": self.fs_hz, "exposure_s": self.exposure_s},
        }  # fmt: skip
        layer.update(kwargs)
        return data[ok], layer, "points"

    def to_tracks(
        self, first_frame: int = 0, *, name: str = "tracks", **kwargs: Any
    ) -> tuple[np.ndarray, dict[str, Any], str]:
        """Each bead's path as a napari tracks layer tuple ``(data, kwargs, "tracks")``.

        ``data``: (M, 4) float64 rows (bead, t, y, x), t = frame + ``first_frame``,
        sorted by bead and then time (napari's order for track data); rows with a NaN
        coordinate are left out. ``kwargs``: ``name``, a 50-frame tail, translucent
        blending, replaced by ``**kwargs``. Only for ``track_beads`` results (with
        frames and beads). No napari import.

        Examples
        --------
        >>> import numpy as np
        >>> from camtrack.tracking import TrackResult
        >>> res = TrackResult(x=np.array([1.0, 2.0]), y=np.array([3.0, 4.0]),
        ...                   z=np.full(2, np.nan), profiles=None, quality=np.ones(2),
        ...                   match=np.full(2, np.nan), frame=np.array([1, 0]),
        ...                   bead=np.array([0, 0]))
        >>> res.to_tracks()[0]
        array([[0., 0., 4., 2.],
               [0., 1., 3., 1.]])
        """
        if self.frame is None:
            raise ValueError(
                "to_tracks needs the frame and bead of each row: call it on a result of "
                "track_beads (frames x beads), not of track_rois."
            )
        tab = self.to_table()
        t = tab["frame"].astype(np.float64) + int(first_frame)
        data = np.column_stack([tab["bead"].astype(np.float64), t, tab["y"], tab["x"]])
        data = data[np.isfinite(data).all(axis=1)]
        data = data[np.lexsort((data[:, 1], data[:, 0]))]
        layer = {"name": name, "tail_length": 50, "blending": "translucent", **kwargs}
        return data, layer, "tracks"
