"""The method registries (#17 item 1) match the engine, the command line and the docs.

Every registered keyword is a keyword of its function with the same default and a
docstring entry; every other keyword is plumbing (``COMMON``) or named as hidden, so a
keyword added to an engine function fails here until it is registered; every option of
``camtrack background`` is a registered keyword of the methods it names; the tables in
docs/guide equal the generated ones. The widget side is tests/gui/test_registry_widgets.py.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
from pathlib import Path

import pytest

from camtrack import _numpydoc, _registry, _registry_cli, cli
from camtrack._registry import COMMON, REQUIRED, Method, Param, Registry

DOCS = Path(__file__).resolve().parents[1] / "docs" / "guide"
REGISTRIES = _registry.registries()
ENTRIES = [(r.engine, m) for r in REGISTRIES.values() for m in r.values()]
IDS = [f"{engine}:{m.name}" for engine, m in ENTRIES]
# Options of `camtrack background` that are not method keywords.
BACKGROUND_GENERAL = ("help", "stack", "dataset", "method", "first", "last", "out", "overwrite")


@pytest.mark.parametrize(("engine", "method"), ENTRIES, ids=IDS)
def test_every_param_is_a_documented_keyword_with_its_default(engine, method):
    signature = inspect.signature(method.func).parameters
    docs = _numpydoc.parameter_docs(method.func)
    for p in method.params:
        assert p.name in signature, (method.name, p.name)
        default = signature[p.name].default
        expected = REQUIRED if default is inspect.Parameter.empty else default
        assert p.default == expected or (p.default is REQUIRED and expected is REQUIRED)
        assert p.name in docs, f"{method.python} does not document {p.name!r}"
        assert p.doc and p.help, (method.name, p.name)
        assert p.kind in (int, float, bool, str), (method.name, p.name)
        if p.kind is bool:
            assert isinstance(p.default, bool), (method.name, p.name)
        if p.choices:
            assert p.kind is str and (p.required or p.default in p.choices)
        if p.min is not None and p.max is not None:
            assert p.min <= p.max
        if p.gui and p.start is not None and p.kind in (int, float):
            # The widget starts inside its own range (magicgui would clamp silently).
            assert (p.min is None or p.start >= p.min) and (p.max is None or p.start <= p.max)
        if p.gui and (p.default is None or p.required) and not p.choices and p.kind is not bool:
            assert p.start is not None, f"{p.name}: the widget needs gui_none or gui_value"


@pytest.mark.parametrize(("engine", "method"), ENTRIES, ids=IDS)
def test_every_keyword_is_registered_common_or_hidden(engine, method):
    keywords = [n for n in inspect.signature(method.func).parameters if n not in method.inputs]
    unlisted = set(keywords) - set(method.keywords) - set(COMMON) - set(method.hidden)
    assert not unlisted, f"{method.python}: register or hide {sorted(unlisted)}"
    assert not set(method.hidden) & set(method.keywords)
    assert set(method.hidden) <= set(keywords), "a hidden keyword the function lacks"


@pytest.mark.parametrize(("engine", "method"), ENTRIES, ids=IDS)
def test_python_name_is_public(engine, method):
    module, name = method.python.rsplit(".", 1)
    package = importlib.import_module(module)
    assert getattr(package, name) is method.func
    assert name in package.__all__


@pytest.mark.parametrize("registry", list(REGISTRIES.values()), ids=list(REGISTRIES))
def test_shared_keywords_agree_across_methods(registry):
    """A keyword shared by methods is one widget field and one command option."""
    seen: dict[str, Param] = {}
    for method in registry.values():
        for p in method.params:
            first = seen.setdefault(p.name, p)
            for attr in ("kind", "choices", "min", "max", "step", "unit", "many", "widget"):
                assert getattr(p, attr) == getattr(first, attr), (p.name, attr)
            assert p.flag == first.flag
    assert len({m.label for m in registry.values()}) == len(registry)


def _background_parser() -> argparse.ArgumentParser:
    parser = cli._build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return subs.choices["background"]


def test_background_cli_options_are_the_registry():
    from camtrack.background import METHODS

    parser = _background_parser()
    method_action = next(a for a in parser._actions if a.dest == "method")
    assert list(method_action.choices) == [m.name for m in METHODS.values() if m.cli]
    options = {a.dest: a for a in parser._actions if a.dest not in BACKGROUND_GENERAL}
    registered = {p.name: p for m in METHODS.values() if m.cli for p in m.cli_params()}
    assert set(options) == set(registered)
    for name, action in options.items():
        p = registered[name]
        negative = [p.flag.replace("--", "--no-")] if p.kind is bool else []
        assert action.option_strings == [p.flag, *negative]
        assert action.default is None  # None: not given, so the engine's default holds
        owners = [m.name for m in METHODS.values() if name in m.keywords and m.param(name).cli]
        assert action.help.startswith(", ".join(owners) + ":"), action.help
        if p.kind is not bool:
            assert action.type is p.kind and (action.nargs == "+") == p.many


@pytest.mark.parametrize("method", list(REGISTRIES["background"].cli()))
def test_background_cli_passes_each_option_to_its_method(method, tmp_path):
    """Given every option of a method, the CLI hands the engine exactly its keywords
    (values that bind to the function's signature); another method's option is refused."""
    from camtrack.background import METHODS

    m = METHODS[method]
    argv = ["background", "s.tif", "--method", method, "-o", "o.h5"]
    for p in m.cli_params():
        if p.kind is bool:
            argv.append(p.flag)
        else:
            value = p.choices[-1] if p.choices else p.start if p.start is not None else 1
            argv += [p.flag, str(value)]
    args = cli._build_parser().parse_args(argv)
    options = _registry_cli.cli_options(args, m, METHODS.cli().values())
    assert set(options) == {p.name for p in m.cli_params()}
    inspect.signature(m.func).bind(None, **options)
    other = next(p for o in METHODS.values() for p in o.cli_params() if p.name not in m.keywords)
    extra = [other.flag] if other.kind is bool else [other.flag, str(other.start or 1)]
    args = cli._build_parser().parse_args(argv + extra)
    with pytest.raises(ValueError, match=other.flag):
        _registry_cli.cli_options(args, m, METHODS.cli().values())


@pytest.mark.parametrize("registry", list(REGISTRIES.values()), ids=list(REGISTRIES))
def test_doc_tables_are_generated_from_the_registry(registry):
    """Run `python docs/registry_tables.py` after changing a registry or a docstring."""
    assert _registry.sync_markdown(DOCS / registry.page, registry, check=True), (
        f"docs/guide/{registry.page} is stale: run `python docs/registry_tables.py`"
    )
    table = _registry.markdown_table(registry.values())
    for method in registry.values():
        assert f"`{method.python}`" in table
        assert (f"`--method {method.name}`" in table) == method.cli


def test_docstring_parsing_and_first_sentence():
    def f(stack, a=1.0, *, b=None, c=2, progress=None):
        """Do.

        Parameters
        ----------
        stack : array
            Data.
        a : float
            Deviation (e.g. ADU) above which 1.4826 x MAD counts. Then more.
        b, c
            As in :func:`g`, with ``c`` frames.
        progress : callable, optional
            Bar.

        Returns
        -------
        float
        """

    docs = _numpydoc.parameter_docs(f)
    assert docs["a"].startswith("float. Deviation") and "Returns" not in docs
    assert docs["b"] == docs["c"] == "As in g, with c frames."
    method = Method("f-x", f, "x", (Param("a"), Param("c", int)))
    assert method.param("a").help == "Deviation (e.g. ADU) above which 1.4826 x MAD counts."
    assert method.param("a").default == 1.0 and method.param("c").default == 2
    assert method.label == "f x" and method.param("c").flag == "--c"
    assert method.inputs == ("stack",)
    with pytest.raises(TypeError, match="no keyword 'd'"):
        Method("f", f, "x", (Param("d"),))
    # A method documenting a keyword "As in ..." gets the text of an earlier entry.
    g = Registry("t", [method, Method("g", f, "y", (Param("c", int),))])
    assert g["g"].param("c").help == method.param("c").help


def test_gui_kwargs_map_widget_values():
    from camtrack.background import METHODS

    stats = METHODS["frame-stats"]
    assert stats.gui_kwargs({"stat": "mean", "q": 50.0}) == {"stat": "mean", "q": None}
    assert stats.gui_kwargs({"stat": "percentile", "q": 10.0}) == {"stat": "percentile", "q": 10.0}
    assert stats.shown({"stat": "mean"}) == ("stat",)
    sparse = METHODS["sparse-median"]
    values = {p.name: p.start for p in sparse.gui_params()}
    kwargs = sparse.gui_kwargs(values)
    assert kwargs["split"] is None and kwargs["kernel_size"] == 200  # 0 in the widget: None
    inspect.signature(sparse.func).bind(None, **kwargs)
