"""The `camtrack` command: headless demo (also chosen automatically without a display), info."""

from __future__ import annotations

import json

import numpy as np
import tifffile

from camtrack import cli


def test_demo_without_display_runs_headless(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    out = tmp_path / "results"

    assert cli.main(["demo", "--out", str(out)]) == 0

    assert "no display" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    ff = summary["flat_field"]
    # 200 frames x 65k pixels: the slope of var vs mean is known to well under 1 %;
    # the per-pixel offset spread (3 ADU) and read noise barely bias it.
    assert abs(ff["e_per_adu_naive_moments"] / ff["e_per_adu_truth"] - 1) < 0.02
    for name in ("flat_field.tif", "beads.h5", "zsweep.tif", "beads_truth.csv"):
        assert (out / name).stat().st_size > 0
    # Results are written atomically: no temporary files are left behind.
    assert not [p.name for p in out.iterdir() if ".tmp" in p.name]
    truth = json.loads((out / "flat_field_truth.json").read_text())
    assert truth["e_per_adu"] == ff["e_per_adu_truth"]


def test_info_lists_stacks(tmp_path, capsys):
    path = tmp_path / "movie.tif"
    tifffile.imwrite(path, np.zeros((7, 12, 13), np.uint16))
    assert cli.main(["info", str(path)]) == 0
    assert "(7, 12, 13)" in capsys.readouterr().out


def test_info_on_a_broken_file_reports_and_fails(tmp_path, capsys):
    path = tmp_path / "broken.tif"
    path.write_bytes(b"II*\x00" + b"\x00" * 64)
    assert cli.main(["info", str(path)]) == 2
    assert "broken.tif" in capsys.readouterr().err
