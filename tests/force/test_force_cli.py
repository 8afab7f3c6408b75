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
