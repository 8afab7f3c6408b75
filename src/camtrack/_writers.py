"""Result writers (HDF5, JSON, CSV) that never leave a half-written file behind."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from camtrack._atomic import atomic_path, atomic_paths, check_targets

__all__ = [
    "atomic_path",
    "atomic_paths",
    "check_targets",
    "fill_hdf5",
    "json_text",
    "write_csv",
    "write_hdf5",
    "write_json",
]

PathLike = str | os.PathLike


def write_hdf5(
    path: PathLike,
    datasets: Mapping[str, Any],
    attrs: Mapping[str, Any] | None = None,
    *,
    overwrite: bool = False,
    protect: Iterable[PathLike] | PathLike | None = (),
    compression: str | None = None,
) -> Path:
    """Write arrays (numpy or dask) and attributes to a new HDF5 file, atomically.

    Parameters
    ----------
    path : str or path-like
        Output file.
    datasets : mapping of str to array-like
        Dataset path (``'maps/gain'``; groups are created) to data. dask arrays are
        written chunk by chunk with the local threaded scheduler.
    attrs : mapping, optional
        Root attributes. Numbers, strings and arrays are stored as is; dicts, lists
        of mixed values and None are stored as JSON strings.
    overwrite, protect
        As in `atomic_path`.
    compression : str, optional
        h5py compression for every dataset (e.g. ``'gzip'``).

    Returns
    -------
    pathlib.Path
        The written file.

    Notes
    -----
    Pixel sizes written as a root attribute ``nm_per_px`` are read back by
    `open_hdf5`.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np, h5py
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "gain.h5"
    >>> _ = write_hdf5(out, {"maps/gain": np.ones((4, 4))}, attrs={"e_per_adu": 0.5})
    >>> with h5py.File(out) as f:
    ...     f["maps/gain"].shape, float(f.attrs["e_per_adu"])
    ((4, 4), 0.5)
    """
    with atomic_path(path, overwrite=overwrite, protect=protect) as tmp:
        fill_hdf5(tmp, datasets, attrs, compression=compression)
    return Path(path)


def fill_hdf5(
    path: PathLike,
    datasets: Mapping[str, Any],
    attrs: Mapping[str, Any] | None = None,
    *,
    compression: str | None = None,
) -> None:
    """Write datasets and root attributes into ``path`` (created or truncated), as
    `write_hdf5` does, for a temporary path from `atomic_path` / `atomic_paths`."""
    import h5py

    with h5py.File(path, "w") as f:
        for key, value in (attrs or {}).items():
            f.attrs[key] = _h5_attr(value)
        for name, data in datasets.items():
            if type(data).__module__.startswith("dask"):
                dset = f.create_dataset(
                    name, shape=data.shape, dtype=data.dtype, compression=compression
                )
                data.store(dset, lock=True, scheduler="threads")
            else:
                f.create_dataset(name, data=np.asarray(data), compression=compression)


def _h5_attr(value: Any) -> Any:
    if value is None or isinstance(value, Mapping):
        return json.dumps(value, default=_json_default)
    if isinstance(value, list | tuple):
        arr = np.asarray(value)
        return arr if arr.dtype.kind in "biufU" else json.dumps(value, default=_json_default)
    return value


def write_json(
    path: PathLike,
    obj: Any,
    *,
    overwrite: bool = False,
    protect: Iterable[PathLike] | PathLike | None = (),
    indent: int = 2,
) -> Path:
    """Write `obj` as JSON, atomically; numpy values, dataclasses and paths are converted.

    Parameters
    ----------
    path : str or path-like
        Output file.
    obj : object
        JSON-able data; numpy scalars and arrays become numbers and lists,
        dataclasses (e.g. result objects) dicts, paths strings.
    overwrite, protect
        As in `atomic_path`.
    indent : int, optional
        Indentation (default 2).

    Returns
    -------
    pathlib.Path
        The written file.

    Notes
    -----
    NaN and infinity are written as ``NaN`` / ``Infinity`` (Python's json default).

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "fit.json"
    >>> _ = write_json(out, {"e_per_adu": np.float32(0.5), "bins": np.arange(3)})
    >>> out.read_text().split()
    ['{', '"e_per_adu":', '0.5,', '"bins":', '[', '0,', '1,', '2', ']', '}']
    """
    text = json_text(obj, indent=indent)
    with atomic_path(path, overwrite=overwrite, protect=protect) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def json_text(obj: Any, *, indent: int = 2) -> str:
    """``obj`` as the JSON text `write_json` writes (numpy, dataclasses, paths converted)."""
    return json.dumps(obj, indent=indent, default=_json_default) + "\n"


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON; convert it first.")


def write_csv(
    path: PathLike,
    table: Any,
    *,
    overwrite: bool = False,
    protect: Iterable[PathLike] | PathLike | None = (),
) -> Path:
    """Write a table to CSV, atomically.

    Parameters
    ----------
    path : str or path-like
        Output file.
    table : DataFrame, mapping of columns, or structured array
        A pandas DataFrame (written without its index), a mapping of column name
        to equal-length 1-D sequences, or a numpy structured array.
    overwrite, protect
        As in `atomic_path`.

    Returns
    -------
    pathlib.Path
        The written file.

    Notes
    -----
    Comma separated, one header row, ``\\n`` line ends; floats as Python prints them
    (shortest round-trip form).

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "tracks.csv"
    >>> _ = write_csv(out, {"frame": np.arange(2), "x": [1.5, 2.25]})
    >>> out.read_text().splitlines()
    ['frame,x', '0,1.5', '1,2.25']
    """
    with atomic_path(path, overwrite=overwrite, protect=protect) as tmp:
        if hasattr(table, "to_csv"):
            table.to_csv(tmp, index=False, lineterminator="\n")
            return Path(path)
        names, columns = _columns(table)
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(names)
            for row in zip(*columns, strict=True):
                writer.writerow([v.item() if isinstance(v, np.generic) else v for v in row])
    return Path(path)


def _columns(table: Any) -> tuple[list[str], list[Any]]:
    if isinstance(table, np.ndarray) and table.dtype.names:
        names = list(table.dtype.names)
        return names, [table[n] for n in names]
    if isinstance(table, Mapping):
        names = [str(k) for k in table]
        columns = [np.ravel(np.asarray(v)) for v in table.values()]
        lengths = {len(c) for c in columns}
        if len(lengths) > 1:
            sizes = ", ".join(f"{n}: {len(c)}" for n, c in zip(names, columns, strict=True))
            raise ValueError(f"`table` columns must have equal lengths; got {sizes}.")
        return names, columns
    raise TypeError(
        "`table` must be a pandas DataFrame, a mapping of column name to values or a "
        f"numpy structured array; got {type(table).__name__}."
    )
