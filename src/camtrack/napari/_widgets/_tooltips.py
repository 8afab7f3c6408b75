"""Tooltips for widget fields, from the engine's own numpydoc docstrings.

A field named like an engine keyword shows that keyword's documentation, so the GUI,
the Python API and the reference docs say the same thing; fields that exist only in
the GUI get their text from the widget.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

_HEADER = re.compile(r"^(\w[\w, ]*?)\s*:\s*(.*)$")


def parameter_docs(func: Callable[..., Any]) -> dict[str, str]:
    """{name: "type. description"} from the Parameters section of ``func``'s docstring
    (numpydoc). Names documented together ("x, y : float") each get the entry."""
    doc = inspect.getdoc(func) or ""
    lines = doc.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Parameters") + 2
    except StopIteration:
        return {}
    out: dict[str, str] = {}
    names: list[str] = []
    body: list[str] = []

    def flush() -> None:
        text = " ".join(part.strip() for part in body if part.strip())
        text = re.sub(r":\w+:`~?([^`]+)`", r"\1", text).replace("``", "")
        for name in names:
            out[name] = text

    for line in lines[start:]:
        if line and not line.startswith(" "):
            if set(line.strip()) <= {"-"} or not _HEADER.match(line):
                break  # the next section
            flush()
            head = _HEADER.match(line)
            names = [n.strip() for n in head.group(1).split(",")]
            body = [head.group(2).rstrip(".") + "."] if head.group(2) else []
        elif line.strip() and set(line.strip()) <= {"-"}:
            break
        else:
            body.append(line)
    flush()
    return out


def set_tooltips(
    widgets: Mapping[str, Any],
    engine: Iterable[Callable[..., Any]],
    extra: Mapping[str, str] | None = None,
) -> None:
    """Set each widget's tooltip: ``extra[name]`` if given, else the first engine
    function documenting ``name``. Fields without either keep their tooltip."""
    docs: dict[str, str] = {}
    for func in engine:
        for key, text in parameter_docs(func).items():
            docs.setdefault(key, text)
    for name, widget in widgets.items():
        text = (extra or {}).get(name) or docs.get(name)
        if text and not widget.tooltip:
            widget.tooltip = text


def value_fields(container: Any) -> dict[str, Any]:
    """{attribute name: widget} of a widget class's value fields (not buttons/labels)."""
    from magicgui.widgets import Label, ProgressBar, PushButton
    from magicgui.widgets.bases import ValueWidget

    return {
        name: w
        for name, w in vars(container).items()
        if isinstance(w, ValueWidget) and not isinstance(w, Label | PushButton | ProgressBar)
    }
