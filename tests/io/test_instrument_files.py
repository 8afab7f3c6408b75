"""Files that real instruments write (#14 items 8-11): page-by-page TIFFs, OME-TIFFs whose
metadata miss pages, one naming scheme for stacks, and clear words for unreadable files."""

from __future__ import annotations

import builtins
import os
import pickle
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest
import tifffile

from camtrack import io


def _page_by_page(path, frames, byteorder=None, **kwargs) -> None:
    """As acquisition programs write: one ``write`` call per frame (one tifffile series each)."""
    with tifffile.TiffWriter(path, byteorder=byteorder) as w:
        for f in frames:
            w.write(f, **kwargs)


# -- item 9: a TIFF written page by page is one (T, Y, X) stack --------------------------


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_page_by_page_tiff_is_one_stack(tmp_path, rng, proxies, compression):
    frames = rng.integers(0, 4000, (40, 24, 30), dtype=np.uint16)
    path = tmp_path / "acq.tif"
    _page_by_page(path, frames, compression=compression)

    items = io.read_layers(path)

    assert len(items) == 1
    stack, info = items[0]
    assert stack.shape == (40, 24, 30) and info.axes == "TYX" and info.name == "acq"
    np.testing.assert_array_equal(stack[17:23].compute(), frames[17:23])
    np.testing.assert_array_equal(stack.compute(), frames)
    assert len(proxies(stack)) == 1  # one proxy in the graph, not one per page
    again = pickle.loads(pickle.dumps(stack))
    np.testing.assert_array_equal(again[5].compute(), frames[5])
    # What gain and tracking need: exactly one 3-D stack.
    assert io.open_stack(path)[0].shape == (40, 24, 30)


def test_page_by_page_tiff_opens_without_decoding_pixels(tmp_path, rng, monkeypatch):
    frames = rng.integers(0, 4000, (12, 16, 16), dtype=np.uint16)
    path = tmp_path / "acq.tif"
    _page_by_page(path, frames, compression="zlib")

    def no_pixels(*args, **kwargs):
        raise AssertionError("pixel data decoded while opening")

    with monkeypatch.context() as m:
        m.setattr(tifffile.TiffPage, "asarray", no_pixels)
        m.setattr(tifffile.TiffPage, "decode", property(no_pixels))
        ((stack, _),) = io.read_layers(path)
    np.testing.assert_array_equal(stack[3:5].compute(), frames[3:5])


def test_page_by_page_big_endian_float(tmp_path, rng):
    frames = rng.normal(size=(6, 8, 9)).astype(">f4")
    path = tmp_path / "be.tif"
    _page_by_page(path, frames, byteorder=">")
    ((stack, _),) = io.read_layers(path)
    assert stack.dtype == np.float32
    np.testing.assert_array_equal(stack.compute(), frames.astype(np.float32))


def test_page_by_page_frames_of_two_shapes_form_two_stacks(tmp_path, rng):
    a = rng.integers(0, 100, (5, 20, 24), dtype=np.uint16)
    b = rng.integers(0, 100, (3, 10, 12), dtype=np.uint16)
    path = tmp_path / "two.tif"
    with tifffile.TiffWriter(path) as w:
        for f in [*a, *b]:
            w.write(f)

    items = io.read_layers(path)

    assert [s.shape for s, _ in items] == [(5, 20, 24), (3, 10, 12)]
    assert [info.key for _, info in items] == ["s0", "s1"]
    np.testing.assert_array_equal(items[0][0].compute(), a)
    np.testing.assert_array_equal(items[1][0].compute(), b)


# -- item 8: OME-TIFF whose SizeT is smaller than its page count -------------------------


def _short_ome(path, frames) -> None:
    """An OME-TIFF of 40 pages whose metadata say SizeT=30 (as a crashed writer leaves)."""
    tifffile.imwrite(path, frames, ome=True, metadata={"axes": "TYX"})
    raw = path.read_bytes()
    assert raw.count(b'SizeT="40"') == 1
    path.write_bytes(raw.replace(b'SizeT="40"', b'SizeT="30"'))


def test_ome_sizet_smaller_than_pages_warns_and_offers_pages(tmp_path, rng):
    frames = rng.integers(0, 4000, (40, 12, 14), dtype=np.uint16)
    path = tmp_path / "run.ome.tif"
    _short_ome(path, frames)

    with pytest.warns(UserWarning, match=r"30 frames.*40 pages") as rec:
        ((stack, _),) = io.read_layers(path)
    assert "pages" in str(rec[0].message)
    assert stack.shape == (30, 12, 14)

    pages, info = io.open_stack(path, item="pages")
    assert pages.shape == (40, 12, 14) and info.key == "pages" and info.name == "run [pages]"
    np.testing.assert_array_equal(pages.compute(), frames)


def test_ome_tiff_that_matches_its_pages_does_not_warn(tmp_path, rng):
    path = tmp_path / "ok.ome.tif"
    tifffile.imwrite(path, rng.integers(0, 9, (5, 8, 8), dtype=np.uint8), ome=True,
                     metadata={"axes": "TYX"})  # fmt: skip
    ((stack, _),) = io.read_layers(path)  # warnings are errors in this suite
    assert stack.shape == (5, 8, 8)


# -- item 10: one naming scheme for HDF5 datasets, TIFF series and channels --------------


def test_keys_of_tiff_channels_series_and_hdf5_datasets(tmp_path):
    hyper = tmp_path / "hyper.tif"
    tifffile.imwrite(hyper, np.zeros((4, 2, 16, 16), np.uint16), imagej=True,
                     metadata={"axes": "TCYX"})  # fmt: skip
    assert [i.key for _, i in io.read_layers(hyper)] == ["ch0", "ch1"]
    h5 = tmp_path / "cells.h5"
    with h5py.File(h5, "w") as f:
        f["a/movie"] = np.zeros((3, 8, 8), np.uint16)
        f["dark"] = np.zeros((8, 8), np.uint16)
    assert [i.key for _, i in io.read_layers(h5)] == ["/a/movie", "/dark"]


@pytest.mark.parametrize("item", ["ch1", "[ch1]", "hyper [ch1]", "s0 ch1", 1])
def test_open_stack_by_key_or_name(tmp_path, item):
    data = np.arange(4 * 2 * 16 * 16, dtype=np.uint16).reshape(4, 2, 16, 16)
    path = tmp_path / "hyper.tif"
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "TCYX"})
    stack, info = io.open_stack(path, item=item)
    assert info.channel == 1
    np.testing.assert_array_equal(stack.compute(), data[:, 1])


def test_open_stack_unknown_key_lists_the_keys(tmp_path):
    path = tmp_path / "hyper.tif"
    tifffile.imwrite(path, np.zeros((4, 2, 16, 16), np.uint16), imagej=True,
                     metadata={"axes": "TCYX"})  # fmt: skip
    with pytest.raises(ValueError, match=r"`item` 'ch7'.*'ch0'.*'ch1'"):
        io.open_stack(path, item="ch7")


def test_open_stack_picks_a_3d_part_of_a_4d_dataset(tmp_path):
    data = np.arange(2 * 3 * 8 * 8, dtype=np.uint16).reshape(2, 3, 8, 8)
    path = tmp_path / "four.h5"
    with h5py.File(path, "w") as f:
        f["data"] = data
    stack, info = io.open_stack(path, item="/data[1]")
    assert info.key == "/data[1]" and info.axes == "TYX"
    np.testing.assert_array_equal(stack.compute(), data[1])
    with pytest.raises(ValueError, match=r"\[0\] to \[1\]"):
        io.open_stack(path, item="data[2]")


def test_a_part_of_a_lone_4d_tiff_has_a_key_that_reads_back(tmp_path):
    data = np.arange(3 * 4 * 8 * 8, dtype=np.uint16).reshape(3, 4, 8, 8)
    path = tmp_path / "tz.tif"
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "TZYX"})
    _, info = io.open_stack(path, item="s0[1]")
    assert info.key == "s0[1]" and info.axes == "ZYX"
    again, _ = io.open_stack(path, item=info.key)
    np.testing.assert_array_equal(again.compute(), data[1])


# -- item 11: clear words for the real cause -----------------------------------------------


@pytest.fixture
def unreadable(monkeypatch):
    """Make a path unreadable: chmod 000, and for root (who reads anyway) a refusing open."""

    def make(path):
        os.chmod(path, 0)
        if os.geteuid() == 0:
            real_open = builtins.open

            def refusing_open(file, *args, **kwargs):
                if os.fspath(file) == os.fspath(path):
                    raise PermissionError(13, "Permission denied", os.fspath(file))
                return real_open(file, *args, **kwargs)

            monkeypatch.setattr(builtins, "open", refusing_open)
        return path

    return make


def test_unreadable_tiff_says_permission_denied(tmp_path, unreadable):
    path = tmp_path / "locked.tif"
    tifffile.imwrite(path, np.zeros((5, 8, 8), np.uint16))
    unreadable(path)
    assert io.can_read(path)  # ours by name: the reader reports the cause, not "no reader"
    with pytest.raises(PermissionError, match="permission") as exc:
        io.read_layers(path)
    assert "damaged" not in str(exc.value) and "locked.tif" in str(exc.value)


def test_missing_hdf5_filter_is_named(tmp_path):
    path = tmp_path / "blosc.h5"
    with h5py.File(path, "w") as f:
        d = f.create_dataset("movie", shape=(4, 8, 8), dtype=np.uint16, chunks=(1, 8, 8),
                             compression=32001, allow_unknown_filter=True)  # fmt: skip
        for i in range(4):
            d.id.write_direct_chunk((i, 0, 0), b"\x00" * 128)
    with pytest.raises(ValueError, match=r"Blosc \(HDF5 filter 32001\).*pip install hdf5plugin"):
        io.read_layers(path)


@pytest.mark.skipif(
    os.environ.get("HDF5_USE_FILE_LOCKING", "").upper() == "FALSE",
    reason="HDF5 file locking is switched off in this environment",
)
def test_hdf5_locked_by_a_writer_is_not_called_corrupt(tmp_path):
    path = tmp_path / "live.h5"
    with h5py.File(path, "w") as f:
        f["movie"] = np.zeros((3, 8, 8), np.uint16)
    writer = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time, h5py
            f = h5py.File({str(path)!r}, "a")
            print("open", flush=True)
            sys.stdin.read()
            f.close()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert writer.stdout.readline().strip() == "open"
        with pytest.raises(
            OSError, match=r"(?s)locked.*another program.*HDF5_USE_FILE_LOCKING"
        ) as exc:
            io.read_layers(path)
        assert not isinstance(exc.value, io.CorruptFileError)
        assert "corrupt" not in str(exc.value).lower()
    finally:
        writer.communicate("")
