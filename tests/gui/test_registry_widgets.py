"""Widget fields are the registry's keywords (#17 item 1): named like the engine
keyword, with its range, start value and docstring, and params() binds to the function.

Background and Camera gain (with its per-pixel section) build their parameter fields
from the registries; Forces and Bead tracking take their method / mode choices from
them, and every Forces field named like a ``calibrate_force`` keyword is a registered
one shown in the widget.
"""

from __future__ import annotations

import inspect

import pytest

pytest.importorskip("napari")

from camtrack import background, force, gain
from camtrack.napari._widgets import BackgroundWidget, ForceWidget, GainWidget
from camtrack.napari._widgets._tooltips import value_fields
from camtrack.tracking._registry import MODES


def _specs(methods) -> dict:
    specs: dict = {}  # a field shared by methods shows the first method's spec
    for m in methods.values():
        for p in m.gui_params():
            specs.setdefault(p.name, p)
    return specs


def _check_fields(owner, fields: dict, methods) -> None:
    """Each field: the registry's keyword (its name), human label, tooltip, start value
    and range."""
    specs = _specs(methods)
    assert set(fields) == set(specs)
    for name, field in fields.items():
        p = specs[name]
        assert getattr(owner, name) is field and field.name == name
        assert field.tooltip == p.tooltip and field.label == p.label
        assert field.value == (tuple(p.start) if p.size else p.start), name
        if p.choices:
            assert tuple(field.choices) == p.choices
        elif p.kind is not bool:
            assert field.min == p.min and field.max == p.max, name


def test_background_widget_fields_are_the_registry(make_napari_viewer):
    widget = BackgroundWidget(make_napari_viewer())
    methods = background.METHODS.gui()
    assert list(widget.method.choices) == list(methods)
    _check_fields(widget, widget.fields, methods)
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


def test_gain_widget_fields_are_the_registry(make_napari_viewer):
    """The method choices are estimate_gain's; the fields are the registered keywords;
    params() picks the method and binds to estimate_gain; 0 in saturation is None."""
    widget = GainWidget(make_napari_viewer())
    methods = gain.METHODS.gui()
    assert list(widget.method.choices) == list(methods) == list(gain._estimate.METHODS)
    _check_fields(widget, widget.fields, methods)
    for label, method in methods.items():
        widget.method.value = label
        params = widget.params()
        assert params.pop("dark") is None and params["method"] == method.name
        assert list(params) == [method.select, *(p.name for p in method.gui_params())]
        assert params["saturation"] is None and params["fit_range"] == (33.0, 66.0)
        inspect.signature(method.func).bind(None, **params)
    widget.saturation.value = 4095.0
    widget.fit_range.value = (10.0, 90.0)
    params = widget.params()
    assert params["saturation"] == 4095.0 and params["fit_range"] == (10.0, 90.0)
    # The per-pixel section's fields are calibrate_pixels' registered keywords.
    _check_fields(widget.pixels, widget.pixels.fields, gain.PIXELS.gui())


# Forces widget fields that are the table pipeline's (camtrack.force.ForceParams), not
# keywords of calibrate_force.
FORCE_GENERAL = ("source", "table_file", "nm_per_px", "axis", "direction", "drag", "surface",
                 "surface_nm", "focal_shift", "reference", "plateaus", "magnet_column", "bead",
                 "results", "overwrite")  # fmt: skip


def test_force_widget_method_and_fields_are_registered(make_napari_viewer):
    widget = ForceWidget(make_napari_viewer())
    assert list(widget.method.choices) == list(force.METHODS.gui())
    assert list(widget.method.choices) == list(force._calibrate.METHODS)
    fields = value_fields(widget)
    assert fields.pop(force.METHODS.select) is widget.method
    specs = _specs(force.METHODS.gui())
    keywords = set(inspect.signature(force.calibrate_force).parameters)
    for name in fields:
        assert name in specs or name in FORCE_GENERAL, f"Forces field {name!r}: register it"
        if name in keywords:
            assert name in specs, f"{name} is a calibrate_force keyword: register it"
    # Every keyword the registry shows in the widget is a field there (by that name),
    # with the registry's label (the docs' tables show it), unit included.
    for name, p in specs.items():
        assert name in fields, name
        assert fields[name].label == p.label and fields[name].name == name
        assert not p.unit or p.unit in fields[name].label, (name, fields[name].label)
    hidden = {p.name for m in force.METHODS.values() for p in m.params if not p.gui}
    assert not hidden & set(fields)


def test_tracking_widget_modes_are_the_registry(make_napari_viewer):
    from camtrack.napari._widgets import TrackingWidget
    from camtrack.tracking._measure import MODES as ENGINE_MODES

    widget = TrackingWidget(make_napari_viewer())
    assert list(widget.mode.choices) == list(MODES.gui()) == list(ENGINE_MODES)
    assert widget.mode.value == next(iter(MODES))


def _labels_and_tips(widget) -> dict:
    """{field name: (label, tooltip)} of a widget's value fields (sections included)."""
    out = {}
    for name, field in value_fields(widget).items():
        if hasattr(field, "fields") and not hasattr(field, "label"):
            continue
        label = field.label or getattr(field, "text", "")
        if label:  # a table without a label shows none
            out[name] = (label, field.tooltip or "")
    return out


@pytest.mark.parametrize("which", ["background", "gain", "pixels", "force", "tracking"])
def test_field_labels_are_words_and_tooltips_name_the_keyword(make_napari_viewer, which):
    """A first-use defect: labels were the engine's keywords (``roi_size (px)``,
    ``sigma_clip (sigma, 0: none)``). Every field of every widget has a human label (no
    underscore, sentence case); every registry-built field keeps the keyword as its
    name and names it in its tooltip, as does every field named like a keyword of the
    engine function it feeds."""
    from camtrack.napari._widgets import TrackingWidget

    viewer = make_napari_viewer()
    built = {"background": BackgroundWidget, "gain": GainWidget, "pixels": GainWidget,
             "force": ForceWidget, "tracking": TrackingWidget}[which](viewer)  # fmt: skip
    widget = built.pixels if which == "pixels" else built
    registry = {"background": background.METHODS, "gain": gain.METHODS,
                "pixels": gain.PIXELS, "force": force.METHODS, "tracking": MODES}[which]  # fmt: skip
    fields = getattr(widget, "fields", {})
    for name, field in fields.items():  # registry-built
        assert field.name == name
        assert "_" not in field.label, (name, field.label)
        assert field.tooltip.startswith(f"keyword: {name} — "), (name, field.tooltip)
    keywords = {k for m in registry.values() for k in inspect.signature(m.func).parameters}
    for name, (label, tip) in _labels_and_tips(widget).items():
        assert label and "_" not in label, (name, label)
        assert label[0].isupper() or label.split()[0] in ("z", "x", "y"), (name, label)
        if name in keywords:
            assert tip.startswith(f"keyword: {name} — "), (name, tip)


@pytest.mark.parametrize("name", ["Camera gain", "Forces"])
def test_fields_line_up_with_napari_fonts(make_napari_viewer, qtbot, name):
    """magicgui sizes the label column with the application font, napari draws the
    labels larger: the longest labels ("Saturation (ADU; 0 = auto)") pushed their
    fields out of line. Every labelled field of the docked panel starts at one x."""
    from magicgui.widgets import Container
    from qtpy.QtCore import QPoint

    viewer = make_napari_viewer(show=True)
    _, widget = viewer.window.add_plugin_dock_widget("napari-camtrack", name)
    qtbot.wait(50)
    starts = {
        field.label: field.native.mapTo(widget.native, QPoint(0, 0)).x()
        for field in widget
        if field.label and not isinstance(field, Container)
        and field._labeled_widget() is not None and field.native.isVisible()
    }  # fmt: skip
    assert len(starts) > 5 and len(set(starts.values())) == 1, starts
