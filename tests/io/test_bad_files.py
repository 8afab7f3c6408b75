"""Files that are not ours, corrupt or truncated: `can_read` and clear open-time errors."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import tifffile

from camtrack import io


def _truncate(path, keep: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_can_read_ours_and_not_ours(tmp_path):
    tif, h5 = tmp_path / "a.tif", tmp_path / "b.h5"
    tifffile.imwrite(tif, np.zeros((2, 4, 4), np.uint8))
    with h5py.File(h5, "w") as f:
        f["image"] = np.zeros((2, 4, 4))
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "fake.tif").write_text("this is not a TIFF")
    (tmp_path / "table.csv").write_text("a,b\n1,2\n")
    (tmp_path / "tiff_inside.dat").write_bytes(tif.read_bytes())
    assert io.can_read(tif) and io.can_read(str(h5))
    assert not io.can_read(tmp_path / "notes.txt")
    assert not io.can_read(tmp_path / "table.csv")
    assert not io.can_read(tmp_path / "fake.tif")  # right name, wrong content
    assert not io.can_read(tmp_path / "tiff_inside.dat")  # right content, unknown name
    assert not io.can_read(tmp_path / "missing.tif")
    assert not io.can_read(tmp_path)


def test_non_image_file_is_refused(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(ValueError, match=r"notes.txt is neither a TIFF nor an HDF5 file"):
        io.read_layers(path)
    with pytest.raises(FileNotFoundError, match=r"no such file"):
        io.read_layers(tmp_path / "missing.tif")


def test_random_bytes_with_tif_extension(tmp_path, rng):
    path = tmp_path / "noise.tif"
    path.write_bytes(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(io.CorruptFileError, match=r"noise.tif has a TIFF file name but is not"):
        io.read_layers(path)


def test_tiff_magic_then_garbage(tmp_path):
    path = tmp_path / "broken.tif"
    path.write_bytes(b"II*\x00" + bytes(range(256)) * 8)
    assert io.can_read(path)  # looks like ours: the reader must report, not skip
    with pytest.raises(io.CorruptFileError, match=r"broken.tif is damaged"):
        io.read_layers(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.tif"
    path.touch()
    with pytest.raises(io.CorruptFileError, match=r"empty"):
        io.read_layers(path)


@pytest.mark.parametrize(
    ("keep", "message"),
    [
        # pixel data cut short: the size check names what is missing
        (0.5, r"cut.tif is truncated: the image data needs 100.3 kB but the file has 51.\d kB"),
        # pixels complete, trailing page directories cut: tifffile's own complaint
        (0.99, r"cut.tif is damaged or truncated \(10\d.\d kB\): tifffile reports invalid page"),
    ],
)
def test_truncated_multipage_tiff(tmp_path, keep, message):
    path = tmp_path / "cut.tif"
    tifffile.imwrite(path, np.ones((20, 50, 50), np.uint16))  # 100 kB of pixels
    _truncate(path, keep)
    with pytest.raises(io.CorruptFileError, match=message):
        io.read_layers(path)


def test_truncated_imagej_hyperstack(tmp_path):
    path = tmp_path / "hyper.tif"
    tifffile.imwrite(
        path, np.ones((10, 2, 40, 40), np.uint16), imagej=True, metadata={"axes": "TCYX"}
    )
    _truncate(path, 0.9)
    # tifffile alone would silently fall back to fewer frames
    with pytest.raises(io.CorruptFileError, match=r"hyper.tif is truncated: .* 20 ImageJ images"):
        io.read_layers(path)


def test_truncated_compressed_tiff(tmp_path, rng):
    path = tmp_path / "packed.tif"
    tifffile.imwrite(
        path, rng.integers(0, 1000, (10, 32, 32), dtype=np.uint16), compression="zlib"
    )
    _truncate(path, 0.95)
    with pytest.raises(io.CorruptFileError, match=r"packed.tif is (truncated|damaged)"):
        io.read_layers(path)


@pytest.mark.parametrize("keep", [0.3, 0.99])
def test_truncated_hdf5(tmp_path, keep):
    path = tmp_path / "cut.h5"
    with h5py.File(path, "w") as f:
        f["events/image"] = np.ones((20, 40, 40), np.uint8)
    _truncate(path, keep)
    with pytest.raises(io.CorruptFileError, match=r"cut.h5 is truncated: the HDF5 file should"):
        io.read_layers(path)


def test_random_bytes_after_hdf5_signature(tmp_path, rng):
    path = tmp_path / "junk.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + rng.integers(0, 256, 3000, dtype=np.uint8).tobytes())
    with pytest.raises(io.CorruptFileError, match=r"junk.h5"):
        io.read_layers(path)
