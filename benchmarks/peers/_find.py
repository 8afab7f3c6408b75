"""Find, or make, the throw-away venvs of the benchmark peers, and run their runners.

Stdlib only: the benchmarks import it (``sys.path`` holding ``benchmarks/``)::

    from peers._find import ensure_peer, peer_python, run_runner

    py = peer_python("smlmlp")                  # Path or None, creates nothing
    py, why = ensure_peer("dcnum")              # creates the venv on demand
    rec = run_runner("magtrack", "magtrack_track.py", ["rois.npy", "lut.npy", "z.npy"])

Interpreters: ``$CAMTRACK_PEER_SMLMLP`` / ``_DCNUM`` / ``_MAGTRACK`` (a Python executable or
a venv folder) when set, else ``/work/peer-venvs/py312`` (smlmlp and dcnum together),
then ``/work/peer-venvs/smlmlp`` or ``/dcnum``, and ``/work/peer-venvs/magtrack``
(``$CAMTRACK_PEER_VENVS`` moves that root). smlmlp 0.1.20 and dcnum 0.31.0 need
Python >= 3.12; magtrack 1.0.0 runs on >= 3.11.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

PINS = {"smlmlp": "smlmlp==0.1.20", "dcnum": "dcnum==0.31.0", "magtrack": "magtrack==1.0.0"}
MIN_PYTHON = {"smlmlp": (3, 12), "dcnum": (3, 12), "magtrack": (3, 11)}
# venv folder names tried in order; the first is the one ensure_peer creates
VENVS = {"smlmlp": ("py312", "smlmlp"), "dcnum": ("py312", "dcnum"), "magtrack": ("magtrack",)}
# what ensure_peer installs into a new venv of that folder name
INSTALL = {
    "py312": [PINS["smlmlp"], PINS["dcnum"], "psutil"],
    "smlmlp": [PINS["smlmlp"], "psutil"],
    "dcnum": [PINS["dcnum"], "psutil"],
    "magtrack": [PINS["magtrack"], "psutil"],
}


def _check(name: str) -> str:
    if name not in PINS:
        raise ValueError(f"unknown peer {name!r}; one of {sorted(PINS)}")
    return name


def venv_root() -> Path:
    return Path(os.environ.get("CAMTRACK_PEER_VENVS", "/work/peer-venvs"))


def _as_python(p: Path) -> Path:
    return p / "bin" / "python" if p.is_dir() else p


def _usable(p: Path) -> bool:
    return p.is_file() and os.access(p, os.X_OK)


def peer_python(name: str) -> Path | None:
    """The interpreter for peer ``name`` ("smlmlp", "dcnum", "magtrack"), None if missing.

    Only checks that the file exists; :func:`ensure_peer` also checks the pinned package.
    """
    env = os.environ.get(f"CAMTRACK_PEER_{_check(name).upper()}")
    if env:
        p = _as_python(Path(env))
        return p if _usable(p) else None
    for folder in VENVS[name]:
        p = venv_root() / folder / "bin" / "python"
        if _usable(p):
            return p
    return None


def _run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def _version_of(python: Path | str) -> tuple[int, int] | None:
    try:
        proc = _run([str(python), "-c", "import sys; print(*sys.version_info[:2])"], 60)
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    major, minor = proc.stdout.split()
    return int(major), int(minor)


def installed_version(python: Path, name: str) -> str | None:
    """The version of distribution ``name`` installed for ``python``, None if absent."""
    code = f"import importlib.metadata as m; print(m.version({name!r}))"
    try:
        proc = _run([str(python), "-c", code], 120)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def _base_pythons(minimum: tuple[int, int]) -> list[Path]:
    """Candidate base interpreters, the lowest version >= minimum first."""
    found: list[Path] = []
    pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    for root in dict.fromkeys([pyenv_root, "/root/.pyenv"]):
        found += [Path(p) for p in sorted(glob.glob(f"{root}/versions/3.*/bin/python3"))]
    for minor in range(minimum[1], minimum[1] + 4):
        exe = shutil.which(f"python3.{minor}")
        if exe:
            found.append(Path(exe))
    found.append(Path(getattr(sys, "_base_executable", sys.executable)))
    ok = {}
    for p in found:
        v = _version_of(p) if _usable(p) else None
        if v is not None and v >= minimum and p.resolve() not in ok.values():
            ok[(v, len(ok))] = p.resolve()
    return [ok[k] for k in sorted(ok)]


def ensure_peer(name: str, *, timeout: float = 1800) -> tuple[Path | None, str | None]:
    """Peer ``name``'s interpreter, creating its venv if needed: ``(python, None)``.

    Returns ``(None, reason)`` when that is impossible (no Python >= 3.12 for smlmlp and
    dcnum, pip failing without network, ...), so a benchmark can report "skipped: reason".
    An interpreter named by ``$CAMTRACK_PEER_<NAME>`` is used as it is, never created.
    """
    pin = PINS[_check(name)]
    want = pin.split("==")[1]
    env = os.environ.get(f"CAMTRACK_PEER_{name.upper()}")
    py = peer_python(name)
    if py is not None:
        have = installed_version(py, name)
        if have == want:
            return py, None
        if env:
            return None, f"{py} has {name} {have or 'not installed'}, want {want}"
    elif env:
        return None, f"$CAMTRACK_PEER_{name.upper()}={env} is not an interpreter"
    folder = venv_root() / VENVS[name][0]
    if py is not None and py.parent.parent != folder:
        folder = py.parent.parent  # a fallback venv lacking the pin: reinstall there
    try:
        if not _usable(folder / "bin" / "python"):
            bases = _base_pythons(MIN_PYTHON[name])
            if not bases:
                need = ".".join(map(str, MIN_PYTHON[name]))
                return None, f"{name} needs Python >= {need}; none found (pyenv, PATH)"
            folder.parent.mkdir(parents=True, exist_ok=True)
            proc = _run([str(bases[0]), "-m", "venv", "--clear", str(folder)], 600)
            if proc.returncode != 0:
                return None, f"venv with {bases[0]} failed: {proc.stderr.strip()[-500:]}"
        py = folder / "bin" / "python"
        pip = [str(py), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        proc = _run(pip + INSTALL[folder.name if folder.name in INSTALL else name], timeout)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"could not create the {name} venv: {exc}"
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if not ln.startswith("WARNING:")]
        return None, f"pip install {pin} failed: {' '.join(lines[-3:])[-500:]}"
    have = installed_version(py, name)
    if have != want:
        return None, f"{py} has {name} {have}, want {want} after pip install"
    return py, None


def run_runner(
    name: str,
    runner: str,
    args: list[str],
    *,
    timeout: float = 3600,
    env: dict[str, str] | None = None,
    create: bool = False,
) -> dict:
    """Run ``benchmarks/peers/<runner>`` under peer ``name``'s Python; its JSON record.

    Never raises for a missing peer or a failing run: returns ``{"skipped": reason}`` or
    ``{"error": last stderr lines, "returncode": rc}`` instead.
    """
    if create:
        py, why = ensure_peer(name)
    else:
        py = peer_python(name)
        why = None if py else f"no {name} venv (benchmarks/peers/README.md)"
    if py is None:
        return {"skipped": why}
    cmd = [str(py), str(HERE / runner), *map(str, args)]
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=None if env is None else {**os.environ, **env},
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s", "returncode": None}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": proc.stderr.strip().splitlines()[-3:], "returncode": proc.returncode}
    return json.loads(lines[-1])
