"""Atomic writers: no half files, no silent overwrite, never the input file."""

from __future__ import annotations

import dataclasses
import json

import dask.array as da
import h5py
import numpy as np
import pytest

from camtrack import io


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if "tmp" in p.name)


def test_atomic_path_replaces_only_on_success(tmp_path):
    out = tmp_path / "result.txt"
    with pytest.raises(RuntimeError, match="interrupted"), io.atomic_path(out) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert not out.exists() and _leftovers(tmp_path) == []
    with io.atomic_path(out) as tmp:
        assert tmp.parent == tmp_path and tmp.exists() and not out.exists()
        tmp.write_text("complete")
    assert out.read_text() == "complete" and _leftovers(tmp_path) == []


def test_refuses_to_overwrite_unless_asked(tmp_path):
    out = tmp_path / "fit.json"
    io.write_json(out, {"a": 1})
    with pytest.raises(FileExistsError, match=r"fit.json' already exists; pass overwrite=True"):
        io.write_json(out, {"a": 2})
    io.write_json(out, {"a": 2}, overwrite=True)
    assert json.loads(out.read_text()) == {"a": 2}


def test_never_overwrites_the_input(tmp_path):
    stack = tmp_path / "stack.h5"
    with h5py.File(stack, "w") as f:
        f["image"] = np.zeros((2, 4, 4))
    before = stack.read_bytes()
    with pytest.raises(ValueError, match="it is the input file"):
        io.write_hdf5(stack, {"gain": np.ones((4, 4))}, overwrite=True, protect=[stack])
    with pytest.raises(ValueError, match="it is the input file"):
        io.write_csv(tmp_path / "." / "stack.h5", {"a": [1]}, overwrite=True, protect=str(stack))
    assert stack.read_bytes() == before


def test_write_hdf5_numpy_dask_and_attrs(tmp_path, rng):
    gain = rng.random((8, 6))
    frames = da.from_array(rng.integers(0, 9, (10, 8, 6), dtype=np.uint16), chunks=(3, 8, 6))
    out = io.write_hdf5(
        tmp_path / "maps.h5",
        {"maps/gain": gain, "background": frames},
        attrs={
            "e_per_adu": 0.42,
            "fit": {"slope": 1.5},
            "bins": [1, 2, 3],
            "note": None,
            "nm_per_px": 65.0,
        },
        compression="gzip",
    )
    with h5py.File(out) as f:
        np.testing.assert_array_equal(f["maps/gain"][()], gain)
        np.testing.assert_array_equal(f["background"][()], frames.compute())
        assert f.attrs["e_per_adu"] == 0.42
        assert json.loads(f.attrs["fit"]) == {"slope": 1.5}
        assert list(f.attrs["bins"]) == [1, 2, 3] and json.loads(f.attrs["note"]) is None
    # what we write, we read back (with the pixel size)
    [(stack, info)] = io.open_hdf5(out, dataset="/background")
    assert info.nm_per_px == 65.0
    np.testing.assert_array_equal(stack.compute(), frames.compute())


def test_write_json_converts_numpy_and_dataclasses(tmp_path):
    @dataclasses.dataclass(frozen=True)
    class Result:
        e_per_adu: float
        n: int

    out = io.write_json(
        tmp_path / "r.json",
        {"result": Result(np.float32(0.5), np.int64(3)), "map": np.eye(2), "path": tmp_path},
    )
    assert json.loads(out.read_text()) == {
        "result": {"e_per_adu": 0.5, "n": 3},
        "map": [[1.0, 0.0], [0.0, 1.0]],
        "path": str(tmp_path),
    }
    with pytest.raises(TypeError, match="cannot write object to JSON"):
        io.write_json(tmp_path / "bad.json", {"x": object()})
    assert not (tmp_path / "bad.json").exists() and _leftovers(tmp_path) == []


def test_write_csv_mapping_structured_and_dataframe(tmp_path):
    cols = {"frame": np.arange(3), "x": np.array([1.5, 2.25, -0.125])}
    a = io.write_csv(tmp_path / "a.csv", cols)
    assert a.read_text().splitlines() == ["frame,x", "0,1.5", "1,2.25", "2,-0.125"]
    rec = np.array([(0, 1.5), (1, 2.25)], dtype=[("frame", "i4"), ("x", "f8")])
    b = io.write_csv(tmp_path / "b.csv", rec)
    assert b.read_text().splitlines() == ["frame,x", "0,1.5", "1,2.25"]
    with pytest.raises(ValueError, match="equal lengths; got a: 2, b: 3"):
        io.write_csv(tmp_path / "d.csv", {"a": [1, 2], "b": [1, 2, 3]})
    with pytest.raises(TypeError, match="`table` must be"):
        io.write_csv(tmp_path / "e.csv", [1, 2, 3])
    assert _leftovers(tmp_path) == []


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        io.write_json(tmp_path / "nope" / "r.json", {})


def test_write_csv_dataframe(tmp_path):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"frame": np.arange(3), "x": [1.5, 2.25, -0.125]})
    out = io.write_csv(tmp_path / "c.csv", df)
    assert pd.read_csv(out).equals(df)
