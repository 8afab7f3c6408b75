"""`camtrack calibrate` (#17 item 6): per-pixel maps against the simulated sensor."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import tifffile

from camtrack import cli, gain, simulate

LEVELS = (100.0, 400.0, 1000.0, 2000.0)
N = 100  # frames per level


@pytest.fixture(scope="module")
def sensor(tmp_path_factory):
    """An sCMOS-like sensor (per-pixel offset, read noise and gain), a dark stack and an
    illumination series of 4 levels, as one TIFF and as one TIFF per level."""
    folder = tmp_path_factory.mktemp("scmos")
    cam = simulate.Camera(shape=(32, 40), offset_std_adu=3.0, read_noise_spread=0.3,
                          gain_spread=0.05, rng=0)  # fmt: skip
    dark, _ = simulate.dark_stack(200, camera=cam, rng=1)
    series, _ = simulate.illumination_series(LEVELS, n_frames=N, camera=cam, rng=2)
    series = np.asarray(series)
    tifffile.imwrite(folder / "dark.tif", np.asarray(dark))
    tifffile.imwrite(folder / "series.tif", series)
    flats = []
    for k in range(len(LEVELS)):
        flats.append(folder / f"flat{k}.tif")
        tifffile.imwrite(flats[-1], series[k * N : (k + 1) * N])
    return cam, folder / "dark.tif", folder / "series.tif", flats


def _check_against_truth(cam, path):
    with h5py.File(path) as f:
        assert f["e_per_adu_map"].attrs["unit"] == "e-/ADU"
    cal = gain.PixelCalibration.load(path)
    # offset: each pixel's error over the dark's own sd / sqrt(200 frames) is a unit
    # normal; the max of 1280 stays below 5.
    sd = np.sqrt((cam.read_noise_map_e / cam.e_per_adu_map) ** 2 + 1 / 12) / np.sqrt(200)
    z = (cal.offset_map_adu - cam.offset_map_adu) / sd
    assert np.abs(z).max() < 5 and 0.9 < z.std() < 1.1
    # gain: a 100-frame variance scatters by sqrt(2/99) = 14 %, the slope is led by the
    # two brightest levels -> ~11 % per pixel (measured 11.5 %); unbiased within 2 %.
    # The truth spreads 5 % across pixels, so the map follows it with a correlation of
    # about 0.05 / hypot(0.05, 0.11) = 0.41 (measured 0.43).
    rel = cal.e_per_adu_map / cam.e_per_adu_map - 1
    assert abs(np.median(rel)) < 0.02 and np.sqrt(np.mean(rel**2)) < 0.15
    assert np.corrcoef(cal.e_per_adu_map.ravel(), cam.e_per_adu_map.ravel())[0, 1] > 0.25
    # read noise (lognormal truth, 30 % spread): the gain's 11 % and the 200-frame dark
    # variance's 5 % -> ~13 % per pixel (measured 13.4 %), unbiased within 3 %.
    rn = cal.read_noise_map_e / cam.read_noise_map_e - 1
    assert abs(np.median(rn)) < 0.03 and np.sqrt(np.mean(rn**2)) < 0.17
    return cal


def test_calibrate_from_files_per_level(sensor, tmp_path, capsys):
    cam, dark, _, flats = sensor
    out = tmp_path / "maps.h5"
    argv = ["calibrate", "--dark", str(dark), "--flat", *map(str, flats), "-o", str(out)]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "4 light levels" in printed and "wrote" in printed
    cal = _check_against_truth(cam, out)
    assert cal.n_levels == 4


def test_calibrate_one_series_file_and_refusals(sensor, tmp_path, capsys):
    cam, dark, series, _ = sensor
    out = tmp_path / "maps.h5"
    argv = ["calibrate", "--dark", str(dark), "--flat", str(series), "-o", str(out)]
    # one file is one level: refused, saying how to split it
    assert cli.main(argv) == 2
    assert "--frames-per-level" in capsys.readouterr().err and not out.exists()
    assert cli.main([*argv, "--frames-per-level", "30"]) == 2  # 400 frames: not a multiple
    assert "multiple" in capsys.readouterr().err
    assert cli.main([*argv, "--frames-per-level", str(N)]) == 0
    _check_against_truth(cam, out)
    # an existing output is kept without --overwrite
    before = out.read_bytes()
    assert cli.main([*argv, "--frames-per-level", str(N)]) == 2
    assert "--overwrite" in capsys.readouterr().err and out.read_bytes() == before
    # a bad value is named by its option
    assert cli.main([*argv, "--frames-per-level", str(N), "--excess-noise-factor", "3",
                     "-o", str(tmp_path / "x.h5")]) == 2  # fmt: skip
    assert "--excess-noise-factor" in capsys.readouterr().err


def test_calibrate_help_has_an_example(capsys):
    with pytest.raises(SystemExit):
        cli.main(["calibrate", "--help"])
    assert "example:\n  camtrack calibrate" in capsys.readouterr().out
