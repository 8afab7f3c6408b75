"""One ``save``: every result's ``save(path, *, overwrite=False, protect=())`` goes
through camtrack.io's atomic writer, refuses an existing file unless ``overwrite=True``,
never writes a protected input, and leaves no temporary file behind (#17 item 7)."""

from __future__ import annotations

import inspect
import sys

import numpy as np
import pytest

from camtrack import force, gain, tracking
from camtrack.simulate import bead_rois, camera_stack, tether_trace


def _gain_result():
    stack, _ = camera_stack(30, (32, 32), rng=0)
    return gain.estimate_gain(stack, method="meanvar", min_count=2)


def _pixel_calibration():
    ones = np.ones((4, 5))
    return gain.PixelCalibration(
        offset_map_adu=100 * ones, dark_var_map_adu2=4 * ones, adu_per_e_map=2 * ones,
        e_per_adu_map=0.5 * ones, read_noise_map_e=ones, n_levels=2,
    )  # fmt: skip


def _zlut():
    return tracking.ZLut(z=np.array([0.0, 100.0]), profiles=np.zeros((2, 5)), roi_size=16)


def _track_result():
    rois, _ = bead_rois([15.2, 16.0], 15.5, 1000.0, roi_size=32, rng=0)
    return tracking.track_rois(rois)


def _table_forces():
    fs = 60.0
    sim = tether_trace(1200, fs, force_pn=2.0, length_nm=3000.0, radius_nm=500.0,
                       height_nm=3000.0, noise_nm=1.0, n_beads=1, rng=8)  # fmt: skip
    n = sim.x_nm.size
    rng = np.random.default_rng(9)
    table = {
        "frame": np.tile(np.arange(n), 2),
        "bead": np.repeat([0, 1], n),
        "x_nm": np.concatenate([np.ravel(sim.x_nm), rng.standard_normal(n)]),
        "reference": np.repeat([False, True], n),
    }
    params = force.ForceParams(fs_hz=fs, exposure_s=None, nm_per_px=None, length_nm=3000.0,
                               radius_nm=500.0, drift=False)  # fmt: skip
    return force.forces_from_table(table, params)


# (make the result, a file name it saves to, the files a save writes)
CASES = {
    "GainResult": (_gain_result, "gain.json", ("gain.json", "gain.h5")),
    "PixelCalibration.h5": (_pixel_calibration, "cal.h5", ("cal.h5",)),
    "PixelCalibration.npz": (_pixel_calibration, "cal.npz", ("cal.npz",)),
    "ZLut.h5": (_zlut, "lut.h5", ("lut.h5",)),
    "ZLut.npz": (_zlut, "lut.npz", ("lut.npz",)),
    "TrackResult.csv": (_track_result, "xy.csv", ("xy.csv",)),
    "TrackResult.h5": (_track_result, "xy.h5", ("xy.h5",)),
    "TableForces.csv": (_table_forces, "forces.csv", ("forces.csv",)),
    "TableForces.h5": (_table_forces, "forces.h5", ("forces.h5",)),
}
SAVERS = [gain.GainResult, gain.PixelCalibration, tracking.ZLut, tracking.TrackResult,
          force.TableForces]  # fmt: skip


@pytest.mark.parametrize("cls", SAVERS, ids=lambda c: c.__name__)
def test_every_save_has_the_one_signature(cls):
    """path first, then keyword-only options ending in overwrite=False, protect=()."""
    params = list(inspect.signature(cls.save).parameters.values())
    assert [p.name for p in params[:2]] == ["self", "path"]
    assert all(p.kind is p.KEYWORD_ONLY for p in params[2:])
    by_name = {p.name: p for p in params}
    assert by_name["overwrite"].default is False
    assert by_name["protect"].default == ()


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("case", CASES)
def test_save_refuses_an_existing_file_and_leaves_no_temporary(case, tmp_path):
    make, name, written = CASES[case]
    result = make()
    result.save(tmp_path / name)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(written)
    before = _snapshot(tmp_path)
    with pytest.raises(FileExistsError, match="overwrite"):
        result.save(tmp_path / name)
    # Untouched, and no temporary (".<name>.camtrack-tmp-...") left beside it.
    assert _snapshot(tmp_path) == before
    result.save(tmp_path / name, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(written)


@pytest.mark.parametrize("case", CASES)
def test_save_never_writes_a_protected_input(case, tmp_path):
    make, name, _ = CASES[case]
    target = tmp_path / name
    target.write_bytes(b"the input")
    with pytest.raises(ValueError):
        make().save(target, overwrite=True, protect=[target])
    assert target.read_bytes() == b"the input"
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_to_dataframe_without_pandas_names_the_install(monkeypatch):
    """A missing pandas is an ImportError naming ``pip install pandas``, never a silent
    dict (the table without pandas is ``to_table()``)."""
    track = _track_result()
    calib = force.calibrate_force(
        tether_trace(600, 60.0, force_pn=2.0, length_nm=3000.0, radius_nm=500.0,
                     rng=1).x_nm,
        fs_hz=60.0, length_nm=3000.0,
    )  # fmt: skip
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas -> ImportError
    for what, result in (("TrackResult", track), ("ForceResult", calib)):
        with pytest.raises(ImportError, match=r"pip install pandas") as info:
            result.to_dataframe()
        assert f"{what}.to_dataframe()" in str(info.value)
    assert set(track.to_table()) >= {"x", "y", "z"}
    assert calib.to_rows()[0]["force_pn"] > 0
