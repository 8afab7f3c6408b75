"""Tooltips for widget fields, from the engine's own numpydoc docstrings.

A field named like an engine keyword shows that keyword ("keyword: roi_size — ...",
for Python users reading the human label) and its documentation, so the GUI, the
Python API and the reference docs say the same thing; fields that exist only in the
GUI get their text from the widget.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

# One docstring parser for the registries, the command line and the tooltips.
from camtrack._numpydoc import parameter_docs
from camtrack._registry import keyword_tooltip

__all__ = ["parameter_docs", "set_tooltips", "value_fields"]


def set_tooltips(
    widgets: Mapping[str, Any],
    engine: Iterable[Callable[..., Any]],
    extra: Mapping[str, str] | None = None,
) -> None:
    """Name each widget like its attribute (the engine keyword where it is one) and
    set its tooltip: ``extra[name]`` if given, else the first engine function
    documenting ``name``, after "keyword: name — " where ``name`` is a keyword of
    ``engine``. Fields without either keep their tooltip."""
    docs: dict[str, str] = {}
    for func in engine:
        for key, text in parameter_docs(func).items():
            docs.setdefault(key, text)
    for name, widget in widgets.items():
        if not widget.name and widget.label:  # an unnamed one's label would become the name
            widget.name = name
        text = (extra or {}).get(name) or docs.get(name)
        if text and name in docs:
            text = keyword_tooltip(name, text)
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
