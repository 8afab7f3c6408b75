"""``camtrack force TABLE``: one row per bead from an exported tracking table."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from camtrack import io
from camtrack.cli import main
from camtrack.force import faxen_drag
from camtrack.force._table import read_table, traces_from_table
from camtrack.simulate import tether_trace

R_NM, H_NM, FS = 500.0, 3000.0, 60.0


def _table(tmp_path, *, drift=3.0, fs_table=FS, nm=True, name="tracks.csv"):
    """Two tethered beads and one reference bead, all with the same stage drift."""
    kappa = 2 * np.pi * faxen_drag(R_NM, H_NM) * 5.0
    sim = tether_trace(6000, FS, force_pn=kappa * H_NM, length_nm=H_NM, radius_nm=R_NM,
                       height_nm=H_NM, noise_nm=1.0, n_beads=2, rng=8)  # fmt: skip
    stage = drift * sim.t_s + 20 * np.sin(sim.t_s / 7)  # nm, common to all beads
    rng = np.random.default_rng(9)
    x = np.vstack([sim.x_nm, 1.0 * rng.standard_normal(6000)]) + stage
    x[0, 100:120] = np.nan  # lost frames
    n = x.shape[1]
    cols = {
        "frame": np.tile(np.arange(n), 3),
        "bead": np.repeat([0, 1, 2], n),
        "t_s": np.tile(np.arange(n) / fs_table, 3),
        ("x_nm" if nm else "x"): (x if nm else x / 100.0).ravel(),
        "reference": np.repeat([False, False, True], n),
    }
    path = tmp_path / name
    if name.endswith(".csv"):
        io.write_csv(path, cols)
    else:
        io.write_hdf5(path, {f"tracking/{k}": v for k, v in cols.items()})
    return path, sim


@pytest.mark.parametrize("name", ["tracks.csv", "tracks.h5"])
def test_force_command_writes_one_row_per_bead(tmp_path, capsys, name):
    table, sim = _table(tmp_path, name=name)
    out = tmp_path / "forces.csv"
    rc = main(["force", str(table), "--fs-hz", "60", "--length-nm", str(H_NM), "-o", str(out)])
    assert rc == 0, capsys.readouterr().err
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["bead"]) for r in rows] == [0, 1]
    for r in rows:
        # 100 corner periods: ~4 % scatter; the drift (1 um) is removed by the reference.
        assert float(r["force_pn"]) == pytest.approx(sim.force_pn, rel=0.15)
        assert float(r["force_lo_pn"]) < float(r["force_pn"]) < float(r["force_hi_pn"])
    assert int(rows[0]["n_nan_frames"]) == 20
    text = capsys.readouterr().out
    assert "reference beads [2]" in text and "wrote" in text
    # The output exists now: refused without --overwrite, replaced with it.
    rc = main(["force", str(table), "--fs-hz", "60", "--length-nm", str(H_NM), "-o", str(out)])
    assert rc == 2 and "--overwrite" in capsys.readouterr().err
    rc = main(["force", str(table), "--fs-hz", "60", "--length-nm", str(H_NM), "-o", str(out),
               "--overwrite", "--method", "auto", "--radius-nm", "500", "--height-nm", "3000"])  # fmt: skip
    assert rc == 0


def test_force_command_refuses_bad_input(tmp_path, capsys):
    table, _ = _table(tmp_path, fs_table=50.0)
    out = tmp_path / "f.csv"
    rc = main(["force", str(table), "--fs-hz", "60", "--length-nm", "3000", "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "t_s" in err and "--fs-hz" in err
    assert not out.exists()
    table2, _ = _table(tmp_path, nm=False, name="px.csv")
    rc = main(["force", str(table2), "--fs-hz", "60", "--length-nm", "3000", "-o", str(out)])
    assert rc == 2 and "--nm-per-px" in capsys.readouterr().err
    rc = main(["force", str(table2), "--fs-hz", "60", "--length-nm", "3000", "-o", str(out),
               "--nm-per-px", "100"])  # fmt: skip
    assert rc == 0
    rc = main(
        ["force", str(table), "--fs-hz", "60", "--length-nm", "-1", "-o", str(tmp_path / "g.csv")]
    )
    assert rc == 2


def test_traces_from_table_pivots_and_removes_drift(tmp_path):
    table, sim = _table(tmp_path)
    tt = traces_from_table(read_table(table), fs_hz=FS)
    assert tt.bead.tolist() == [0, 1] and tt.reference.tolist() == [2]
    assert tt.x_nm.shape == (2, 6000)
    assert np.isnan(tt.x_nm[0, 100:120]).all()
    resid = tt.x_nm[1] - sim.x_nm[1]
    assert np.nanstd(resid - np.nanmean(resid)) < 1.5  # only the reference's own noise
    raw = traces_from_table(read_table(table), drift=False)
    assert np.nanstd(raw.x_nm[1] - sim.x_nm[1]) > 50  # the 1 um drift stays


def _plateau_table(tmp_path, forces, ext, per: int, *, moving: int = 0):
    """Two tethered beads on len(forces) plateaus and a stuck reference bead (z at the
    surface), x and z in nm, with the magnet position per frame (moving between
    plateaus for ``moving`` frames)."""
    from camtrack.force import FOCAL_SHIFT

    n = per * len(forces)
    sim = tether_trace(n, FS, force_pn=forces, length_nm=ext + R_NM, radius_nm=R_NM,
                       height_nm=ext + R_NM, n_beads=2, noise_nm=1.0, rng=3)  # fmt: skip
    rng = np.random.default_rng(4)
    magnet = np.repeat(np.linspace(8.0, 2.0, len(forces)), per)
    for k in range(1, len(forces)):  # the magnet travels over the first frames of a plateau
        magnet[k * per : k * per + moving] = np.linspace(magnet[k * per - 1], magnet[k * per], moving + 2)[1:-1]  # fmt: skip
    cols = {k: [] for k in ("frame", "bead", "x_nm", "z", "magnet_mm")}
    for b in range(3):
        x = sim.x_nm[b] if b < 2 else rng.normal(0, 1.0, n)
        z = ext[sim.plateau] / FOCAL_SHIFT if b < 2 else np.zeros(n)
        z = z + rng.normal(0, 5, n)
        for key, v in zip(cols, (np.arange(n), np.full(n, b), x, z, magnet), strict=True):
            cols[key].append(v)
    cols = {k: np.concatenate(v) for k, v in cols.items()}
    cols["reference"] = cols["bead"] == 2
    return io.write_csv(tmp_path / "fx.csv", cols), sim


def test_force_command_force_extension_from_a_magnet_column(tmp_path, capsys):
    from camtrack.force import wlc_extension_nm

    forces = np.array([0.15, 0.5, 2.0, 6.0])
    ext = wlc_extension_nm(forces, 50.0, 3000.0)
    table, _ = _plateau_table(tmp_path, forces, ext, 6000, moving=40)
    out = tmp_path / "fx_out.csv"
    rc = main(["force", str(table), "--fs-hz", "60", "--radius-nm", str(R_NM),
               "--magnet-column", "magnet_mm", "-o", str(out)])  # fmt: skip
    text = capsys.readouterr()
    assert rc == 0, text.err
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted({int(r["bead"]) for r in rows}) == [0, 1]  # the reference left out
    assert sorted({int(r["plateau"]) for r in rows}) == [0, 1, 2, 3]
    for r in rows:
        f, k = float(r["force_pn"]), int(r["plateau"])
        sigma = (float(r["force_hi_pn"]) - float(r["force_lo_pn"])) / 2
        assert abs(f - forces[k]) < 4 * sigma, r
        assert float(r["extension_nm"]) == pytest.approx(ext[k], abs=5.0)
        # the 40 moving frames are in no plateau
        assert int(r["n_frames_used"]) == (6000 if k == 0 else 5960)
    # The WLC fit per bead is printed: L_p 50 nm, L_c 3000 nm.
    assert text.out.count("worm-like chain") == 2
    # The same plateaus as frame ranges give the same forces.
    out2 = tmp_path / "fx_ranges.h5"
    ranges = ", ".join(f"{k * 6000 + (40 if k else 0)}-{k * 6000 + 5999}" for k in range(4))
    rc = main(["force", str(table), "--fs-hz", "60", "--radius-nm", str(R_NM),
               "--plateaus", ranges, "-o", str(out2)])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    import h5py

    with h5py.File(out2) as f:
        np.testing.assert_allclose(f["forces/force_pn"][()], [float(r["force_pn"]) for r in rows])
        assert f.attrs["plateaus"].shape == (4, 2)


def test_force_command_plateau_errors_name_the_option(tmp_path, capsys):
    forces = np.array([0.5, 2.0])
    table, _ = _plateau_table(tmp_path, forces, np.array([2000.0, 2600.0]), 600)
    out = tmp_path / "f.csv"
    base = ["force", str(table), "--fs-hz", "60", "-o", str(out)]
    assert main([*base, "--radius-nm", "500", "--magnet-column", "magnet"]) == 2
    err = capsys.readouterr().err
    assert "--magnet-column" in err and "magnet_mm" in err  # names the columns there are
    assert main([*base, "--magnet-column", "magnet_mm"]) == 2  # several plateaus, no radius
    assert "--radius-nm" in capsys.readouterr().err
    assert main([*base, "--radius-nm", "500", "--plateaus", "0-99, 50-199"]) == 2
    assert "overlaps" in capsys.readouterr().err
    assert not out.exists()
