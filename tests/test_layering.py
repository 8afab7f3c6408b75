"""The engine's subpackages use each other's public API only (#17 item 3).

``camtrack.gain``, ``background``, ``tracking``, ``force``, ``io`` and ``simulate`` import
another subpackage by its public names (``from camtrack.force import faxen_drag``),
never its private modules (``camtrack.force._physics``); what several of them share
(spill files, atomic writers, the scheduler, backends) lives in camtrack's own
top-level private modules (``camtrack._spill``, ``camtrack._writers``, ...).
"""

from __future__ import annotations

import ast
from pathlib import Path

import camtrack

ENGINE = ("gain", "background", "tracking", "force", "io", "simulate")
ROOT = Path(camtrack.__file__).parent


def _imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
            out += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
    return out


def test_no_private_imports_across_engine_subpackages():
    bad = []
    for sub in ENGINE:
        for path in sorted((ROOT / sub).rglob("*.py")):
            for line, name in _imports(path):
                parts = name.split(".")
                if len(parts) < 3 or parts[0] != "camtrack" or parts[1] == sub:
                    continue
                if parts[1] in ENGINE and parts[2].startswith("_"):
                    bad.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not bad, "\n".join(bad)


def test_the_check_sees_a_private_import(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("from camtrack.io._dispatch import pick_stack\n")
    assert (1, "camtrack.io._dispatch") in _imports(probe)
