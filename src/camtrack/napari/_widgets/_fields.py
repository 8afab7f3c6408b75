"""Widget fields built from an engine registry (:mod:`camtrack._registry`).

One field per keyword: named like the keyword, labelled with the spec's human text and
unit ("ROI size (px)"), ranged by the spec and with the keyword and its docstring entry
as tooltip ("keyword: roi_size — ..."), so a registered method needs no widget code of
its own for its parameters.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    FloatRangeSlider,
    FloatSlider,
    FloatSpinBox,
    SpinBox,
)

from camtrack._registry import Method, Param

# magicgui's spin boxes default to 0..999; an open end of a spec gets this instead.
_OPEN = 1e9


def field_for(param: Param) -> Any:
    """The magicgui widget of one parameter spec."""
    common = {"name": param.name, "label": param.label, "tooltip": param.tooltip}
    value = param.start
    if param.kind is bool:
        return CheckBox(value=bool(value), **common)
    if param.choices:
        return ComboBox(choices=list(param.choices), value=value, **common)
    lo = -_OPEN if param.min is None else param.min
    hi = _OPEN if param.max is None else param.max
    if param.size == 2:  # a (lo, hi) range
        return FloatRangeSlider(value=tuple(float(v) for v in value), min=lo, max=hi, **common)
    if param.kind is int:
        return SpinBox(value=int(value), min=int(lo), max=int(hi), step=int(param.step or 1),
                       **common)  # fmt: skip
    if param.widget == "slider":
        return FloatSlider(value=float(value), min=lo, max=hi, **common)
    step = {} if param.step is None else {"step": param.step}
    return FloatSpinBox(value=float(value), min=lo, max=hi, **step, **common)


def field_order(methods: Iterable[Method]) -> list[str]:
    """The widget keywords of ``methods`` in an order that keeps each method's own
    order where methods share keywords (("stat", "q") and ("q", "sigma_clip") give
    stat, q, sigma_clip); otherwise first come, first placed."""
    seen: dict[str, None] = {}
    after: dict[str, set[str]] = {}  # name -> names that must come before it
    for method in methods:
        names = [p.name for p in method.gui_params()]
        for i, name in enumerate(names):
            seen.setdefault(name)
            after.setdefault(name, set()).update(names[:i])
    order: list[str] = []
    while len(order) < len(seen):
        free = [n for n in seen if n not in order and after[n] <= set(order)]
        # A cycle (two methods with opposite orders): place the earliest one anyway.
        order.append(free[0] if free else next(n for n in seen if n not in order))
    return order


def fields_for(methods: Iterable[Method]) -> dict[str, Any]:
    """{keyword: widget} over the widget parameters of ``methods``: one field per
    keyword (methods sharing a keyword share its field), in :func:`field_order`."""
    methods = list(methods)
    specs: dict[str, Param] = {}
    for method in methods:
        for param in method.gui_params():
            specs.setdefault(param.name, param)
    return {name: field_for(specs[name]) for name in field_order(methods)}


def fit_label_column(container: Any) -> None:
    """Keep the label column of ``container`` as wide as its widest label drawn.

    magicgui sizes the column with the application font (9 pt under Xvfb), napari's
    stylesheet draws the labels at 10 pt: a label near the widest ("Saturation (ADU;
    0 = auto)", 176 px drawn against 167 px measured) pushed its field out of line.
    Each time the panel is shown or restyled, the column takes the labels' own size
    hints. ``_labeled_widget`` is magicgui's (its containers use it the same way).
    """
    from qtpy.QtCore import QEvent, QObject

    def fit() -> None:
        rows = [r for r in (w._labeled_widget() for w in container) if r is not None]
        if rows:
            width = max(r._label_widget.native.sizeHint().width() for r in rows)
            for row in rows:
                row.label_width = width

    events = (QEvent.Type.Show, QEvent.Type.StyleChange, QEvent.Type.FontChange)

    class _Refit(QObject):
        def eventFilter(self, obj: Any, event: Any) -> bool:  # Qt names it
            if event.type() in events:
                fit()
            return False

    # Parented to the panel: lives as long as it.
    container.native.installEventFilter(_Refit(container.native))
    fit()
