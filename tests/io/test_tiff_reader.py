"""TIFF reading: multi-page, ImageJ hyperstack, OME-TIFF, compressed, big-endian, 2-D."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from camtrack import io


def test_multipage_contiguous_values_and_chunks(tmp_path, rng, proxies):
    data = rng.integers(0, 60000, (40, 64, 48), dtype=np.uint16)
    path = tmp_path / "movie.tif"
    tifffile.imwrite(path, data)
    [(stack, info)] = io.open_tiff(path, chunks=7)
    assert stack.shape == data.shape and stack.dtype == data.dtype
    assert stack.chunks[0] == (7,) * 5 + (5,)  # whole frames, 7 per chunk
    assert stack.chunks[1:] == ((64,), (48,))
    assert info.name == "movie" and info.axes == "TYX" and info.format == "tiff"
    assert info.path == str(path) and info.series == 0 and info.channel is None
    assert info.pixel_size is None and info.scale == (1.0, 1.0, 1.0)
    [proxy] = proxies(stack)
    assert proxy.dataoffset is not None  # raw offset reads, no tifffile per task
    np.testing.assert_array_equal(stack.compute(), data)
    # odd slices across chunk boundaries, with steps, through the proxy itself
    np.testing.assert_array_equal(stack[3:30:4, 5:40:3, -7:].compute(), data[3:30:4, 5:40:3, -7:])
    np.testing.assert_array_equal(proxy[...], data)
    np.testing.assert_array_equal(proxy[-1, 2], data[-1, 2])


def test_auto_chunks_are_whole_frames_near_8_mib(tmp_path):
    path = tmp_path / "big.tif"
    tifffile.imwrite(path, np.zeros((50, 512, 512), np.uint16))
    [(stack, _)] = io.open_tiff(path)
    assert stack.chunks == ((16, 16, 16, 2), (512,), (512,))  # 16 x 512 KiB = 8 MiB
    [(stack, _)] = io.open_tiff(path, chunks="2 MiB")
    assert stack.chunks[0][0] == 4


def test_imagej_hyperstack_one_item_per_channel_with_pixel_size(tmp_path, rng):
    data = rng.integers(0, 4000, (6, 3, 20, 30), dtype=np.uint16)  # T, C, Y, X
    path = tmp_path / "hyper.tif"
    tifffile.imwrite(
        path,
        data,
        imagej=True,
        resolution=(1 / 0.108, 1 / 0.108),
        metadata={"axes": "TCYX", "unit": "um"},
    )
    items = io.read_layers(path)
    assert [info.name for _, info in items] == ["hyper [ch0]", "hyper [ch1]", "hyper [ch2]"]
    for c, (stack, info) in enumerate(items):
        assert info.channel == c and info.axes == "TYX"
        assert info.pixel_unit == "µm"
        np.testing.assert_allclose(info.pixel_size, (0.108, 0.108), rtol=1e-6)
        assert info.nm_per_px == pytest.approx(108.0)
        np.testing.assert_array_equal(stack.compute(), data[:, c])
    kwargs = items[1][1].to_layer_kwargs()
    assert kwargs["name"] == "hyper [ch1]"
    np.testing.assert_allclose(kwargs["scale"], (1.0, 0.108, 0.108), rtol=1e-6)
    assert kwargs["units"] == ("pixel", "micrometer", "micrometer")
    assert kwargs["metadata"]["path"] == str(path) and kwargs["metadata"]["channel"] == 1


def test_imagej_zstack_spacing_scales_z(tmp_path):
    path = tmp_path / "zstack.tif"
    tifffile.imwrite(
        path,
        np.zeros((5, 16, 16), np.uint8),
        imagej=True,
        resolution=(10.0, 10.0),
        metadata={"axes": "ZYX", "unit": "micron", "spacing": 0.5},
    )
    [(_, info)] = io.read_layers(path)
    assert info.axes == "ZYX" and info.z_spacing == 0.5
    assert info.scale == pytest.approx((0.5, 0.1, 0.1))


def test_ome_tiff_pixel_size_in_nm(tmp_path, rng):
    data = rng.integers(0, 255, (4, 2, 16, 24), dtype=np.uint8)
    path = tmp_path / "cells.ome.tif"
    tifffile.imwrite(
        path,
        data,
        ome=True,
        metadata={
            "axes": "TCYX",
            "PhysicalSizeX": 65.0,
            "PhysicalSizeY": 65.0,
            "PhysicalSizeXUnit": "nm",
            "PhysicalSizeYUnit": "nm",
        },
    )
    items = io.read_layers(path)
    assert [info.name for _, info in items] == ["cells [ch0]", "cells [ch1]"]
    stack, info = items[1]
    assert info.pixel_size == (65.0, 65.0) and info.pixel_unit == "nm"
    assert info.nm_per_px == 65.0
    np.testing.assert_array_equal(stack.compute(), data[:, 1])


def test_zlib_compressed_reads_pages_with_tifffile(tmp_path, rng, proxies):
    data = rng.integers(0, 1000, (9, 32, 40), dtype=np.uint16)
    path = tmp_path / "packed.tif"
    tifffile.imwrite(path, data, compression="zlib")
    [(stack, _)] = io.open_tiff(path, chunks=2)
    [proxy] = proxies(stack)
    assert proxy.dataoffset is None and len(proxy.ifd_offsets) == 9  # page-by-page path
    np.testing.assert_array_equal(stack.compute(), data)
    np.testing.assert_array_equal(stack[7:2:-2].compute(), data[7:2:-2])


def test_big_endian_float_is_byteswapped(tmp_path, rng):
    data = rng.random((5, 8, 8)).astype(np.float32)
    path = tmp_path / "motorola.tif"
    tifffile.imwrite(path, data, byteorder=">")
    [(stack, _)] = io.open_tiff(path)
    out = stack.compute()
    assert out.dtype == np.float32 and out.dtype.isnative
    np.testing.assert_array_equal(out, data)


def test_single_image_is_2d(tmp_path):
    data = np.arange(12 * 10, dtype=np.int16).reshape(12, 10)
    path = tmp_path / "one.tiff"
    tifffile.imwrite(path, data)
    stack, info = io.open_stack(path)
    assert stack.shape == (12, 10) and info.axes == "YX" and info.scale == (1.0, 1.0)
    np.testing.assert_array_equal(stack.compute(), data)


def test_several_series_are_tagged(tmp_path):
    path = tmp_path / "two.tif"
    with tifffile.TiffWriter(path) as tw:
        tw.write(np.zeros((3, 8, 8), np.uint8), photometric="minisblack")
        tw.write(np.ones((2, 6, 6), np.uint16), photometric="minisblack")
    items = io.read_layers(path)
    assert [info.name for _, info in items] == ["two [s0]", "two [s1]"]
    assert items[1][0].shape == (2, 6, 6) and int(items[1][0].sum().compute()) == 72
    [(only, info)] = io.open_tiff(path, series=1)
    assert info.series == 1 and only.shape == (2, 6, 6)
    with pytest.raises(ValueError, match="`series` must be in"):
        io.open_tiff(path, series=5)


def test_open_stack_needs_item_for_several_channels(tmp_path):
    path = tmp_path / "hyper.tif"
    tifffile.imwrite(
        path, np.zeros((2, 2, 8, 8), np.uint8), imagej=True, metadata={"axes": "TCYX"}
    )
    with pytest.raises(ValueError, match=r"holds 2 stacks .*'hyper \[ch1\]'.*item="):
        io.open_stack(path)
    assert io.open_stack(path, item="hyper [ch1]")[1].channel == 1
    assert io.open_stack(path, item=-1)[1].channel == 1
    with pytest.raises(ValueError, match="matches no stack"):
        io.open_stack(path, item="nope")


def test_bad_chunks_message(tmp_path):
    path = tmp_path / "a.tif"
    tifffile.imwrite(path, np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="`chunks` must be"):
        io.open_tiff(path, chunks=0)
