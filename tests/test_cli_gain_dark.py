"""`camtrack gain --dark FILE --dark-dataset KEY` (#17 item 6): the dark stack picked from a
file with several stacks by the same keys as --dataset."""

from __future__ import annotations

import json

import h5py
import numpy as np

from camtrack import cli
from camtrack.simulate import Camera, camera_stack, dark_stack


def test_gain_dark_dataset_picks_the_dark_stack(tmp_path, capsys):
    cam = Camera(shape=(64, 64), e_per_adu=0.5, offset_adu=90.0, read_noise_e=3.0, rng=1)
    flat, truth = camera_stack(60, camera=cam, rng=2)
    dark, _ = dark_stack(60, camera=cam, rng=3)
    path = tmp_path / "camera.h5"
    with h5py.File(path, "w") as f:
        f["flat"] = np.asarray(flat)
        f["dark"] = np.asarray(dark)
    # Without --dark-dataset the two-stack file is refused, naming the option.
    out = tmp_path / "gain.json"
    argv = ["gain", str(path), "--dataset", "/flat", "--dark", str(path), "-o", str(out)]
    assert cli.main(argv) == 2
    assert "--dark-dataset KEY" in capsys.readouterr().err and not out.exists()
    # A key that matches nothing is named with the option too.
    assert cli.main([*argv, "--dark-dataset", "/nothing"]) == 2
    assert "--dark-dataset '/nothing'" in capsys.readouterr().err
    assert cli.main([*argv, "--dark-dataset", "/dark"]) == 0
    res = json.loads(out.read_text())
    # The dark stack gives the offset to ~0.03 ADU (read sd 1.5 ADU over 60 x 4096
    # samples, plus the fixed pattern's mean); the gain within 4 standard errors.
    assert abs(res["offset_adu"] - truth.camera.offset_adu) < 0.2
    assert abs(res["e_per_adu"] / 0.5 - 1) < 4 * res["e_per_adu_stderr"] / res["e_per_adu"]
    assert abs(res["read_noise_e"] / 3.0 - 1) < 0.1


def test_dark_dataset_needs_dark(tmp_path, capsys):
    path = tmp_path / "flat.h5"
    with h5py.File(path, "w") as f:
        f["flat"] = np.zeros((4, 8, 8), np.uint16)
    assert cli.main(["gain", str(path), "--dark-dataset", "/dark"]) == 2
    assert "--dark-dataset '/dark' needs --dark" in capsys.readouterr().err
