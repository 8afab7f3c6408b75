"""`camtrack track` / `camtrack zlut` take the camera noise model (#15 item 2) and name
their options, not the engine keywords, in errors."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import tifffile

from camtrack import cli, gain, simulate

SHAPE = (128, 128)


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """An sCMOS-like field (per-pixel offset, gain and read noise), its start positions
    and the sensor's true maps saved as a PixelCalibration file."""
    folder = tmp_path_factory.mktemp("cam")
    cam = simulate.Camera(shape=SHAPE, e_per_adu=0.5, offset_adu=100.0, read_noise_e=1.5,
                          offset_std_adu=4.0, gain_spread=0.03, rng=3)  # fmt: skip
    stack, truth = simulate.bead_field(24, SHAPE, n_beads=2, n_reference=0, camera=cam,
                                       background_e=600.0, rng=4)  # fmt: skip
    path = folder / "beads.tif"
    tifffile.imwrite(path, np.asarray(stack))
    beads = folder / "beads.csv"
    beads.write_text("x,y\n" + "".join(f"{x},{y}\n" for x, y in zip(truth.x[0], truth.y[0], strict=True)))  # fmt: skip
    g = cam.e_per_adu_map
    read_var_adu2 = (cam.read_noise_map_e / g) ** 2 + 1.0 / 12.0
    maps = gain.PixelCalibration(
        offset_map_adu=cam.offset_map_adu, dark_var_map_adu2=read_var_adu2,
        adu_per_e_map=1.0 / g, e_per_adu_map=g, read_noise_map_e=cam.read_noise_map_e,
        n_levels=4,
    )  # fmt: skip
    cal = maps.save(folder / "maps.h5")
    return path, beads, cal, truth


def _track(recording, tmp_path, name, *extra):
    path, beads, _, truth = recording
    out = tmp_path / f"{name}.csv"
    argv = ["track", str(path), "--beads", str(beads), "--roi-size", "48", *extra, "-o", str(out)]
    assert cli.main(argv) == 0
    with open(out) as fh:
        rows = list(csv.DictReader(fh))
    frame = np.array([int(r["frame"]) for r in rows])
    bead = np.array([int(r["bead"]) for r in rows])
    dx = np.array([float(r["x"]) for r in rows]) - truth.x[frame, bead]
    x_err = np.array([float(r["x_err"]) for r in rows])
    return dx, x_err


def test_track_camera_scalars_set_the_reported_errors(recording, tmp_path):
    # The right conversion factor: the reported x_err matches the scatter about the truth
    # (48 positions: the RMS ratio's own sampling error is ~10 %).
    dx, err = _track(recording, tmp_path, "right", "--e-per-adu", "0.5", "--offset-adu", "100",
                     "--read-noise-e", "1.5")  # fmt: skip
    ratio = np.sqrt(np.mean(dx**2)) / np.sqrt(np.mean(err**2))
    assert 0.7 < ratio < 1.4
    # Telling the fit 4x the photoelectrons per ADU (4x less ADU variance per count):
    # the errors it reports are about half, so the option reached the engine.
    _, err4 = _track(recording, tmp_path, "wrong", "--e-per-adu", "2", "--offset-adu", "100",
                     "--read-noise-e", "1.5")  # fmt: skip
    assert 1.6 < np.median(err / err4) < 2.4


def test_track_camera_file_with_per_pixel_maps(recording, tmp_path):
    _, _, cal, _ = recording
    dx, err = _track(recording, tmp_path, "maps", "--camera", str(cal))
    assert np.sqrt(np.mean(dx**2)) < 0.05
    assert 0.7 < np.sqrt(np.mean(dx**2)) / np.sqrt(np.mean(err**2)) < 1.4


def test_track_camera_errors_name_the_option(recording, tmp_path, capsys):
    path, beads, _, _ = recording
    out = tmp_path / "bad.csv"
    base = ["track", str(path), "--beads", str(beads), "--roi-size", "48", "-o", str(out)]
    assert cli.main([*base, "--camera", str(tmp_path / "missing.h5")]) == 2
    assert "--camera" in capsys.readouterr().err
    assert cli.main([*base, "--e-per-adu", "-1"]) == 2
    assert "--e-per-adu" in capsys.readouterr().err
    assert not out.exists()


def test_zlut_takes_the_camera(tmp_path, capsys):
    planes = np.arange(-1000.0, 1001.0, 100.0)
    stack, _ = simulate.zsweep(planes, roi_size=48, frames_per_plane=2, rng=6)
    sweep = tmp_path / "sweep.tif"
    tifffile.imwrite(sweep, np.asarray(stack))
    lut = tmp_path / "lut.h5"
    argv = ["zlut", str(sweep), "--z-start", "-1000", "--z-step", "100", "--frames-per-plane",
            "2", "--e-per-adu", "2", "--offset-adu", "100", "--read-noise-e", "1.5",
            "-o", str(lut)]  # fmt: skip
    assert cli.main(argv) == 0
    assert "self-check" in capsys.readouterr().out
    # Per-pixel maps of another frame size are refused, naming the option.
    maps = gain.PixelCalibration(
        offset_map_adu=np.full((64, 64), 100.0), dark_var_map_adu2=np.ones((64, 64)),
        adu_per_e_map=np.full((64, 64), 0.5), e_per_adu_map=np.full((64, 64), 2.0),
        read_noise_map_e=np.full((64, 64), 1.5),
    )  # fmt: skip
    cal = maps.save(tmp_path / "maps.h5")
    bad = [*argv[:8], "--camera", str(cal), "-o", str(tmp_path / "lut2.h5")]
    assert cli.main(bad) == 2
    err = capsys.readouterr().err
    assert "--camera" in err and "(64, 64)" in err
    assert not (tmp_path / "lut2.h5").exists()
