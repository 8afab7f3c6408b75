"""Laziness (only the needed chunk is read) and picklability (no file handles in graphs)."""

from __future__ import annotations

import pickle
import tracemalloc

import cloudpickle
import h5py
import numpy as np
import pytest
import tifffile

from camtrack import io
from camtrack.io._hdf5 import H5Dataset
from camtrack.io._tiff import TiffFrames


@pytest.fixture
def three_files(tmp_path, rng):
    data = rng.integers(0, 4000, (12, 24, 20), dtype=np.uint16)
    raw, packed, h5 = tmp_path / "raw.tif", tmp_path / "packed.tif", tmp_path / "d.h5"
    tifffile.imwrite(raw, data)
    tifffile.imwrite(packed, data, compression="zlib")
    with h5py.File(h5, "w") as f:
        f.create_dataset("events/image", data=data, chunks=(3, 24, 20))
    return data, [raw, packed, h5]


@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps])
def test_arrays_and_graphs_pickle_round_trip(three_files, dumps, proxies):
    data, paths = three_files
    for path in paths:
        stack, info = io.open_stack(path, chunks=5)
        again = pickle.loads(dumps(stack))
        np.testing.assert_array_equal(again.compute(), data)
        graph = pickle.loads(dumps(dict(stack.__dask_graph__())))
        [proxy] = proxies(stack)
        assert len(dumps(proxy)) < 4000  # path + layout only, no pixel data
        key = next(k for k, v in graph.items() if isinstance(v, TiffFrames | H5Dataset))
        np.testing.assert_array_equal(graph[key][2:4], data[2:4])
        assert pickle.loads(dumps(info)) == info


def test_same_file_gives_same_keys_and_edit_changes_them(three_files):
    _, paths = three_files
    a, _ = io.open_stack(paths[0])
    b, _ = io.open_stack(paths[0])
    assert a.name == b.name  # deterministic tokens: dask can share cached chunks
    tifffile.imwrite(paths[0], np.zeros((12, 24, 20), np.uint16))
    c, _ = io.open_stack(paths[0])
    assert c.name != a.name


def test_first_frame_of_300_mb_tiff_reads_one_chunk(tmp_path, monkeypatch):
    n, shape = 600, (512, 512)  # 600 x 512 KiB = 315 MB
    path = tmp_path / "big.tif"
    frames = (np.full(shape, i, np.uint16) for i in range(n))
    tifffile.imwrite(path, data=frames, shape=(n, *shape), dtype=np.uint16)

    pages_read: list[int] = []
    original = TiffFrames._read

    def counting(self, flat):
        pages_read.extend(int(i) for i in flat)
        return original(self, flat)

    monkeypatch.setattr(TiffFrames, "_read", counting)
    tracemalloc.start()
    try:
        stack, _ = io.open_stack(path)
        frame0 = stack[0].compute()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert not frame0.any()
    chunk = stack.chunks[0][0]
    assert chunk == 16  # 8 MiB of whole frames
    assert pages_read and set(pages_read) <= set(range(chunk))
    # at most about one 8 MiB chunk held at once, versus 315 MB for an eager read
    assert peak < 20e6, peak
    pages_read.clear()
    assert int(stack[n - 1, 0, 0].compute()) == n - 1
    last_chunk_start = (n - 1) // chunk * chunk
    assert set(pages_read) <= set(range(last_chunk_start, n))
    path.unlink()  # 315 MB: do not keep it in pytest's basetemp


def test_hdf5_frame_reads_one_chunk(tmp_path, monkeypatch):
    path = tmp_path / "d.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset(
            "image", data=np.arange(40 * 64 * 64, dtype=np.float32).reshape(40, 64, 64)
        )
    keys = []
    original = H5Dataset.__getitem__

    def counting(self, key):
        keys.append(key)
        return original(self, key)

    monkeypatch.setattr(H5Dataset, "__getitem__", counting)
    stack, _ = io.open_stack(path, chunks=4)
    assert keys == []  # opening reads no pixels through the proxy
    assert float(stack[5, 0, 1].compute()) == 5 * 64 * 64 + 1
    assert len(keys) == 1
    first = keys[0][0]
    assert 4 <= (first.start if isinstance(first, slice) else first) < 8
