"""BandStore: the one band-major store, as the gain's block store and as a spill."""

from __future__ import annotations

import numpy as np
import pytest

from camtrack._spill import BandStore


@pytest.mark.parametrize("on_disk", [False, True])
def test_write_read_rows_round_trip(tmp_path, on_disk):
    rng = np.random.default_rng(0)
    arrays = {"e": (30, np.float32), "k": (30, bool)}
    tiles = [(slice(0, 3), slice(None)), (slice(3, 4), slice(None)), (slice(4, 9), slice(None))]
    full = rng.random((30, 9, 5)).astype(np.float32)
    mask = rng.random((30, 9, 5)) < 0.5
    with BandStore(arrays, (9, 5), tiles, on_disk=on_disk, folder=str(tmp_path)) as st:
        # Written in pieces of frames covering whole bands, as the robust passes do.
        for t0 in range(0, 30, 7):
            st.write_rows("e", t0, 0, full[t0 : t0 + 7, :4])
            st.write_rows("e", t0, 4, full[t0 : t0 + 7, 4:])
        st.write_rows("k", 0, 0, mask)
        np.testing.assert_array_equal(st.read_rows("e", 0, 9), full)
        np.testing.assert_array_equal(st.read_rows("e", 2, 6, slice(5, 17)), full[5:17, 2:6])
        np.testing.assert_array_equal(st.read_rows("e", 4, 9, slice(3, 8)), full[3:8, 4:9])
        np.testing.assert_array_equal(st.read_rows("k", 1, 8), mask[:, 1:8])
        assert st.row_bands == [(0, 3), (3, 4), (4, 9)]
        np.testing.assert_array_equal(st.read(2, "e"), full[:, 4:9])
        np.testing.assert_array_equal(st.read(1, 1), mask[:, 3:4])
        if on_disk:
            assert len(list(tmp_path.iterdir())) == 1
            with pytest.raises(ValueError, match="whole bands"):
                st.write_rows("e", 0, 1, full[:, 1:4])
    assert list(tmp_path.iterdir()) == []


def test_tiles_split_in_x_round_trip_and_rows_need_row_bands(tmp_path):
    data = np.arange(4 * 3 * 6, dtype=np.int16).reshape(4, 3, 6)
    tiles = [(slice(y, y + 1), xs) for y in range(3) for xs in (slice(0, 4), slice(4, 6))]
    with BandStore({"a": (4, np.int16)}, (3, 6), tiles, folder=str(tmp_path)) as st:
        for k, (ys, xs) in enumerate(tiles):
            st.write(k, 0, data[:2, ys, xs], "a")
            st.write(k, 2, data[2:, ys, xs], "a")
        for k, (ys, xs) in enumerate(tiles):
            np.testing.assert_array_equal(st.read(k), data[:, ys, xs])
            np.testing.assert_array_equal(st.read(k, "a", slice(1, 3)), data[1:3, ys, xs])
        with pytest.raises(ValueError, match="full-width"):
            st.read_rows("a", 0, 1)
    assert list(tmp_path.iterdir()) == []


def test_spill_equals_the_arrays_and_its_old_name_still_builds_one(tmp_path):
    da = pytest.importorskip("dask.array")
    rng = np.random.default_rng(2)
    a = rng.integers(0, 9000, (23, 17, 11)).astype(np.uint16)
    b = rng.random((23, 17, 11)).astype(np.float32)
    tiles = [(slice(0, 5), slice(None)), (slice(5, 17), slice(None))]
    arrays = [da.from_array(a, chunks=(4, -1, -1)), da.from_array(b, chunks=(4, -1, -1))]
    with BandStore.spill(arrays, tiles, folder=str(tmp_path)) as st:
        assert sorted(p.name for p in next(tmp_path.rglob("spill-*")).iterdir() if p.suffix == ".raw") == ["array0.raw", "array1.raw"]  # fmt: skip
        got = list(st.iter_bands((0, 1)))
        assert [k for k, _ in got] == [0, 1]
        for k, (ys, xs) in enumerate(tiles):
            np.testing.assert_array_equal(got[k][1][0], a[:, ys, xs])
            np.testing.assert_array_equal(got[k][1][1], b[:, ys, xs])
            assert got[k][1][0].dtype == np.uint16 and got[k][1][1].dtype == np.float32
    assert list(tmp_path.iterdir()) == []
    with BandStore.spill(arrays[:1], tiles, folder=str(tmp_path)) as st:
        assert isinstance(st, BandStore)
        np.testing.assert_array_equal(st.read(1), a[:, 5:])
    assert list(tmp_path.iterdir()) == []


def test_a_cancelled_spill_write_leaves_no_files(tmp_path, monkeypatch):
    da = pytest.importorskip("dask.array")
    from camtrack import _spill

    monkeypatch.setattr(_spill, "WRITE_BYTES", 1)  # a group per frame chunk
    stack = da.ones((12, 8, 8), dtype=np.uint16, chunks=(1, -1, -1))

    def progress(it, total):
        for i, x in enumerate(it):
            if i == 1:
                raise KeyboardInterrupt("cancel")
            yield x

    with pytest.raises(KeyboardInterrupt):
        BandStore.spill([stack], [(slice(0, 8), slice(None))], folder=str(tmp_path), progress=progress)  # fmt: skip
    assert list(tmp_path.iterdir()) == []
