"""Widget fields are the registry's keywords (#17 item 1): named like the engine
keyword, with its range, start value and docstring, and params() binds to the function."""

from __future__ import annotations

import inspect

import pytest

pytest.importorskip("napari")

from camtrack import background
from camtrack.napari._widgets import BackgroundWidget


def test_background_widget_fields_are_the_registry(make_napari_viewer):
    widget = BackgroundWidget(make_napari_viewer())
    methods = background.METHODS.gui()
    assert list(widget.method.choices) == list(methods)
    specs: dict = {}  # a field shared by methods shows the first method's spec
    for m in methods.values():
        for p in m.gui_params():
            specs.setdefault(p.name, p)
    assert set(widget.fields) == set(specs)
    for name, field in widget.fields.items():
        p = specs[name]
        assert getattr(widget, name) is field
        assert field.tooltip == p.doc and field.label == p.label
        assert field.value == p.start, name
        if p.choices:
            assert tuple(field.choices) == p.choices
        elif p.kind is not bool:
            assert field.min == p.min and field.max == p.max, name
    for label, method in methods.items():
        widget.method.value = label
        if "stat" in method.keywords:
            widget.stat.value = "percentile"  # shows q too
        shown = {n for n, f in widget.fields.items() if not f.native.isHidden()}
        assert shown == set(method.shown({n: f.value for n, f in widget.fields.items()}))
        params = widget.params()
        assert list(params) == [p.name for p in method.gui_params()]
        assert widget.engine_method == method.func.__name__
        inspect.signature(method.func).bind(None, **params)
