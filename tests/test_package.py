"""Packaging: the engine import stays Qt-free; the npe2 manifest validates both for the
editable install and for a built wheel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )


def test_engine_import_loads_no_gui():
    code = (
        "import sys, json, camtrack, camtrack.io, camtrack.simulate, camtrack.background, camtrack.cli\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('napari', 'magicgui', 'qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'cupy', 'vispy')]\n"
        "print(json.dumps(bad))\n"
    )
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []


def test_engine_and_command_line_run_without_any_gui_package(tmp_path):
    """`pip install napari-camtrack` without the gui extra: napari, magicgui, qtpy and
    every Qt binding missing, the engine and the command line (the whole headless demo:
    gain, background, find beads, Z-LUT, tracking against the truth) still run."""
    code = (
        "import importlib.abc, sys\n"
        "GUI = ('napari', 'magicgui', 'qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'vispy', 'superqt')\n"
        "class Missing(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in GUI:\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Missing())\n"
        "from camtrack.cli import main\n"
        f"sys.exit(main(['demo', '--headless', '--out', {str(tmp_path / 'out')!r}]))\n"
    )
    proc = _run(code)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    gain = summary["flat_field"]
    assert abs(gain["e_per_adu"] - gain["e_per_adu_truth"]) < 4 * gain["e_per_adu_stderr"]
    found = summary["beads_tracking"]["find"]
    assert found["matched"] == found["n_true"] and found["false"] == 0
    per_bead = summary["beads_tracking"]["track"]["per_bead"]
    assert max(b["x_rms_px"] for b in per_bead) < 0.02
    assert max(b["z_rms_nm"] for b in per_bead) < 5.0


def test_manifest_symlink_is_relative_and_points_to_root():
    link = ROOT / "src" / "camtrack" / "napari.yaml"
    assert link.is_symlink()
    assert os.readlink(link) == "../../napari.yaml"
    assert link.resolve() == (ROOT / "napari.yaml").resolve()


def test_npe2_validate_editable_install():
    proc = subprocess.run(
        [sys.executable, "-m", "npe2", "validate", "--imports", "napari-camtrack"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "valid" in proc.stdout.lower()


@pytest.mark.slow
def test_npe2_validate_wheel_install(tmp_path):
    """Build a wheel offline, install it into a private target dir and validate from there."""
    wheel_dir = tmp_path / "wheel"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(wheel_dir), str(ROOT)],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (wheel,) = wheel_dir.glob("napari_camtrack-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        manifest = zf.read("camtrack/napari.yaml").decode()
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        assert "camtrack:napari.yaml" in zf.read(entry_points).decode()
    # The symlink is materialised as the real manifest inside the wheel.
    assert manifest == (ROOT / "napari.yaml").read_text()

    target = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
         str(wheel)],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    env = dict(os.environ, PYTHONPATH=str(target))
    code = (
        "import camtrack, importlib.metadata as md, sys\n"
        f"assert camtrack.__file__.startswith({str(target)!r}), camtrack.__file__\n"
        "from npe2 import PluginManifest\n"
        "m = PluginManifest.from_distribution('napari-camtrack')\n"
        "m.validate_imports()\n"
        "print(m.name, len(m.contributions.readers), len(m.contributions.sample_data))\n"
    )
    proc = _run(code, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["napari-camtrack", "1", "3"]
