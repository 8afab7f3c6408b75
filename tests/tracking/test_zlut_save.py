"""ZLut.save behaves like every other save (issue 14, item 1): it refuses an existing
file unless asked, never writes an input file, and creates files with the usual
permissions."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest

from camtrack.tracking import ZLut, load_zlut


@pytest.fixture
def lut() -> ZLut:
    return ZLut(z=np.arange(3.0), profiles=np.eye(3), roi_size=16, units="um")


@pytest.mark.parametrize("suffix", [".h5", ".npz"])
def test_refuses_an_existing_file_unless_overwrite(tmp_path, lut, suffix):
    path = lut.save(tmp_path / f"lut{suffix}")
    before = path.read_bytes()
    other = ZLut(z=np.arange(4.0), profiles=np.eye(4), roi_size=16, units="nm")
    with pytest.raises(FileExistsError, match=r"already exists; pass overwrite=True"):
        other.save(path)
    assert path.read_bytes() == before
    other.save(path, overwrite=True)
    assert load_zlut(path).units == "nm"
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"lut{suffix}"]


def test_never_writes_an_input_stack(tmp_path, lut):
    stack = tmp_path / "stack.h5"
    with h5py.File(stack, "w") as f:
        f["frames"] = np.zeros((4, 8, 8), np.uint16)
    before = stack.read_bytes()
    with pytest.raises(FileExistsError):
        lut.save(stack)
    with pytest.raises(ValueError, match="it is the input file"):
        lut.save(stack, overwrite=True, protect=[stack])
    with pytest.raises(ValueError, match="it is the input file"):
        lut.save(tmp_path / "." / "stack.h5", overwrite=True, protect=str(stack))
    assert stack.read_bytes() == before
    lut.save(tmp_path / "lut.h5", protect=None)  # None: nothing to protect


def test_usual_permissions(tmp_path, lut):
    old = os.umask(0o022)
    try:
        path = lut.save(tmp_path / "lut.h5")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644  # 0o666 less the umask, not 0o600
