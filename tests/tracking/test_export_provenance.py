"""The exported tracking table records the reference beads and the Z-LUT used."""

from __future__ import annotations

import csv
import json

import h5py
import numpy as np
import pytest

from camtrack.simulate import bead_field
from camtrack.tracking import track_beads


@pytest.fixture(scope="module")
def result():
    stack, truth = bead_field(3, (96, 160), n_beads=2, n_reference=1, rng=2)
    tab = truth.to_table()
    first = np.asarray(tab["frame"]) == 0
    xy = np.column_stack([np.asarray(tab["x"])[first], np.asarray(tab["y"])[first]])
    return track_beads(stack, np.round(xy), roi_size=32)


def test_reference_and_per_bead_luts_in_csv_and_hdf5(result, tmp_path):
    path = result.save(tmp_path / "t.csv", reference=[1], zlut=["lut of bead 0", "lut of bead 1"])
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        assert row["reference"] == str(int(row["bead"]) == 1)
        assert row["zlut"] == f"lut of bead {row['bead']}"
    h5 = result.save(tmp_path / "t.h5", reference=[1], zlut="one lut")
    with h5py.File(h5) as f:
        assert list(f.attrs["reference"]) == [1]
        assert json.loads(f.attrs["zlut"]) == ["one lut"]
        bead = f["tracking/bead"][()]
        np.testing.assert_array_equal(f["tracking/reference"][()], bead == 1)
