"""Saving and loading a GainResult: a JSON of scalars with units plus an HDF5 of maps,
written and committed as one unit, the JSON recording the maps file's SHA-256."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from camtrack.gain._result import GainResult

__all__ = ["load_result", "result_paths", "save_result"]

_MAP_UNITS = {
    "mean_adu": "ADU",
    "var_adu2": "ADU^2",
    "gain_map_e_per_adu": "e-/ADU",
    "offset_map_adu": "ADU",
    "read_noise_map_e": "e- rms",
}


def result_paths(path: Any) -> tuple[Any, Any]:
    """``(json_path, maps_path)`` of a saved result named by ``path``.

    The JSON file is ``path`` with the suffix ``.json``; the maps file is next to it
    with ``.h5``. A folder is refused (``IsADirectoryError``): name a file inside it.
    """
    from pathlib import Path

    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(
            f"`path` {str(p)!r} is a folder; name the result file inside it, e.g. "
            f"{str(p / 'gain.json')!r} (the maps go next to it as gain.h5)."
        )
    json_path = p.with_suffix(".json")
    return json_path, json_path.with_suffix(".h5")


def save_result(
    result: GainResult,
    path: Any,
    *,
    source: dict | None = None,
    overwrite: bool = False,
    protect: Any = (),
) -> tuple[Any, Any]:
    """Write ``result`` as JSON (scalars, units) plus an HDF5 file of its maps.

    ``path`` names the JSON file (suffix forced to ``.json``); the maps go next to it
    with the suffix ``.h5``. The two are one unit: both are written under temporary
    names and committed together (neither appears without the other; without
    ``overwrite`` the save is refused if either exists, also against a concurrent
    run), and the JSON records the maps file's SHA-256 (``maps_sha256``), so
    :func:`load_result` detects a pair that does not belong together.
    Returns the two paths.
    """
    from camtrack import _backend
    from camtrack._writers import atomic_paths, fill_hdf5, json_text

    json_path, maps_path = result_paths(path)
    maps = {"mean_adu": result.mean, "var_adu2": result.var, "gain_map_e_per_adu": result.gain_map}
    if result.offset_map is not None:
        maps["offset_map_adu"] = result.offset_map
    if result.read_noise_map_e is not None:
        maps["read_noise_map_e"] = result.read_noise_map_e
    maps = {k: np.asarray(_backend.to_host(v), dtype=np.float32) for k, v in maps.items()}
    info = {
        **result.to_dict(),
        "units": {
            "e_per_adu": "e-/ADU",
            "adu_per_e": "ADU/e-",
            "offset_adu": "ADU",
            "read_noise_e": "e- rms",
            "maps": {k: _MAP_UNITS[k] for k in maps},
        },
        "maps_file": maps_path.name,
    }
    if source:
        info["source"] = source
    # The maps first in the commit: the JSON (the file users open) appears last.
    with atomic_paths([maps_path, json_path], overwrite=overwrite, protect=protect) as tmps:
        tmp_maps, tmp_json = tmps
        fill_hdf5(
            tmp_maps,
            maps,
            attrs={"units": {k: _MAP_UNITS[k] for k in maps}, "e_per_adu": result.e_per_adu},
        )
        info["maps_sha256"] = _sha256(tmp_maps)
        tmp_json.write_text(json_text(info), encoding="utf-8")
    return json_path, maps_path


def _sha256(path: Any) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_result(path: Any) -> dict[str, Any]:
    """Read a result written by :meth:`GainResult.save`: the JSON scalars and the maps.

    Parameters
    ----------
    path : str or path-like
        The JSON file (its maps file is found from its ``maps_file`` entry).

    Returns
    -------
    dict
        The JSON's entries (``e_per_adu``, ``units``, ...) plus ``"maps"``: a dict of
        map name (``mean_adu``, ``var_adu2``, ``gain_map_e_per_adu``, ...) to float32
        arrays (Y, X).

    Raises
    ------
    ValueError
        The maps file is not the one saved with this JSON (its SHA-256 differs: the
        pair comes from different saves), or the JSON is not a camtrack gain result.
    FileNotFoundError
        The JSON or its maps file is missing.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from camtrack.gain import estimate_gain
    >>> from camtrack.gain._result_io import load_result
    >>> from camtrack.simulate import camera_stack
    >>> stack, _ = camera_stack(30, (32, 32), rng=0)
    >>> json_path, _ = estimate_gain(stack).save(pathlib.Path(tempfile.mkdtemp()) / "g.json")
    >>> sorted(load_result(json_path)["maps"])
    ['gain_map_e_per_adu', 'mean_adu', 'var_adu2']
    """
    import json

    import h5py

    from camtrack._validation import check_existing_file

    json_path = check_existing_file(path, "path")
    try:
        info = json.loads(json_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"`path` {str(json_path)!r} is not a JSON file ({exc}).") from None
    if not isinstance(info, dict) or "maps_file" not in info or "e_per_adu" not in info:
        raise ValueError(
            f"`path` {str(json_path)!r} is not a camtrack gain result (no 'maps_file' and "
            "'e_per_adu' entries). Pass the JSON written by GainResult.save."
        )
    maps_path = json_path.with_name(info["maps_file"])
    if not maps_path.is_file():
        raise FileNotFoundError(
            f"the maps file {str(maps_path)!r} of {str(json_path)!r} is missing; keep the "
            "two files together (or save the result again)."
        )
    expected = info.get("maps_sha256")
    if expected is not None and _sha256(maps_path) != expected:
        raise ValueError(
            f"the maps file {str(maps_path)!r} does not belong to {str(json_path)!r}: its "
            "SHA-256 differs from the one the JSON recorded, so the two come from different "
            "saves (an interrupted or concurrent save, or a file copied over). Save the "
            "result again (with overwrite) to get a matching pair."
        )
    with h5py.File(maps_path, "r") as f:
        info["maps"] = {k: np.asarray(f[k]) for k in f if isinstance(f[k], h5py.Dataset)}
    return info
