"""Tooltips for widget fields, from the engine's own numpydoc docstrings.

A field named like an engine keyword shows that keyword's documentation, so the GUI,
the Python API and the reference docs say the same thing; fields that exist only in
the GUI get their text from the widget.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

# One docstring parser for the registries, the command line and the tooltips.
from camtrack._numpydoc import parameter_docs

__all__ = ["parameter_docs", "set_tooltips", "value_fields"]


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
