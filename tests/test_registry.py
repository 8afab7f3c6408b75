"""The method registries (#17 item 1) match the engine, the command line and the docs.

Every registry (background, gain, per-pixel gain, force, tracking modes, tracking
building blocks): every registered keyword is a keyword of its function with the same
default and a docstring entry; every other keyword is plumbing (``COMMON``), the one
that picks the method, or named as hidden, so a keyword added to an engine function
fails here until it is registered; a registry of one function's methods lists exactly
the engine's choices. Every option of every command offering registered methods
(background, gain, calibrate, force, track, zlut) is a registered keyword of the
methods it names or one of the command's named general options; the tables in
docs/guide equal the generated ones. The widget side is tests/gui/test_registry_widgets.py.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
from pathlib import Path

import pytest

from camtrack import _numpydoc, _registry_cli, _registry_docs, cli
from camtrack._registry import COMMON, REQUIRED, Method, Param, Registry

DOCS = Path(__file__).resolve().parents[1] / "docs" / "guide"
REGISTRIES = _registry_docs.registries()
ENTRIES = [(r.engine, m) for r in REGISTRIES.values() for m in r.values()]
IDS = [f"{engine}:{m.name}" for engine, m in ENTRIES]


@pytest.mark.parametrize(("engine", "method"), ENTRIES, ids=IDS)
def test_every_param_is_a_documented_keyword_with_its_default(engine, method):
    signature = inspect.signature(method.func).parameters
    docs = _numpydoc.parameter_docs(method.func)
    if method.select:
        assert method.select in docs and method.select not in method.keywords
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
        if p.size:
            assert not p.required and len(p.default) == p.size, (method.name, p.name)
        if p.gui and p.start is not None and p.kind in (int, float):
            # The widget starts inside its own range (magicgui would clamp silently).
            for v in p.start if p.size else (p.start,):
                assert (p.min is None or v >= p.min) and (p.max is None or v <= p.max)
        if p.gui and (p.default is None or p.required) and not p.choices and p.kind is not bool:
            assert p.start is not None, f"{p.name}: the widget needs gui_none or gui_value"


@pytest.mark.parametrize(("engine", "method"), ENTRIES, ids=IDS)
def test_every_keyword_is_registered_common_or_hidden(engine, method):
    keywords = [n for n in inspect.signature(method.func).parameters if n not in method.inputs]
    picked = {method.select} if method.select else set()
    unlisted = set(keywords) - set(method.keywords) - set(COMMON) - set(method.hidden) - picked
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
            for attr in ("kind", "choices", "min", "max", "step", "unit", "many", "widget",
                         "text", "note"):  # fmt: skip
                assert getattr(p, attr) == getattr(first, attr), (p.name, attr)
            assert p.flag == first.flag
    assert len({m.label for m in registry.values()}) == len(registry)


# Each command offering registered methods: its registry, whether its method options
# are built from the registry (then they are exactly the registry's), and its options
# that are no engine keyword at all (files, frame ranges, outputs, table columns).
_FILES = ("help", "dataset", "out", "overwrite")
COMMANDS = {
    "background": ("background", True, (*_FILES, "stack", "first_frame", "last_frame")),
    "gain": ("gain", True, (*_FILES, "stack", "dark", "dark_dataset", "offset_adu")),
    "calibrate": ("gain-pixels", False,
                  (*_FILES, "dark", "dark_dataset", "flat", "frames_per_level")),
    # The table pipeline's own settings (camtrack.force.ForceParams beyond calibrate_force).
    "force": ("force", False, ("help", "out", "overwrite", "table", "drag", "direction",
                               "axis", "nm_per_px", "reference", "no_drift", "surface_nm",
                               "focal_shift", "plateaus", "magnet_column")),
    "track": ("tracking-modes", False, (*_FILES, "stack", "lut", "beads", "radius", "first_frame",
                                        "last_frame", "nm_per_px", "excess_noise_factor")),
    "zlut": ("tracking-modes", False, (*_FILES, "sweep", "z_csv", "z_start", "z_step",
                                       "frames_per_plane", "bead", "profile",
                                       "excess_noise_factor")),
}  # fmt: skip


def _subparser(command: str) -> argparse.ArgumentParser:
    parser = cli._build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return subs.choices[command]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_cli_options_are_registered_keywords_or_named_general(command):
    """Every option of a command is a registered keyword of the methods it names (with
    the registry's flag), the keyword picking the method (with the registry's choices),
    a keyword the methods share (named hidden or common) or one of the command's named
    general options; a command built from the registry has every registered option."""
    engine, built, general = COMMANDS[command]
    registry = REGISTRIES[engine]
    methods = list(registry.cli().values())
    parser = _subparser(command)
    # Hidden options are old spellings of renamed keywords (same dest, tests/test_vocabulary.py).
    actions = {a.dest: a for a in parser._actions if a.help != argparse.SUPPRESS}
    registered = {p.name: p for m in methods for p in m.cli_params()}
    shared = {n for m in methods for n in (*m.hidden, *COMMON, *m.inputs)}
    select = registry.select or "method"  # background: a function per method
    if len(methods) > 1:  # (calibrate is a command of its own, for one method)
        assert list(actions[select].choices) == list(registry.cli())
        assert actions[select].option_strings == ["--" + select.replace("_", "-")]
        default = actions[select].default  # None: required; else the engine's first choice
        assert default is None or default == methods[0].name
    unknown = set(actions) - set(registered) - shared - set(general) - {select}
    assert not unknown, f"camtrack {command}: register or name {sorted(unknown)}"
    assert not set(general) & (set(registered) | {select}), "a general option is registered"
    for name, p in registered.items():
        if not built and name not in actions:
            continue
        action = actions[name]
        if not built:  # hand-written: the registry's flag and type
            assert p.flag in action.option_strings and action.type in (p.kind, None), name
            continue
        negative = [p.flag.replace("--", "--no-")] if p.kind is bool else []
        assert action.option_strings == [p.flag, *negative]
        assert action.default is None  # None: not given, so the engine's default holds
        owners = [m.name for m in methods if name in m.keywords and m.param(name).cli]
        if owners != [m.name for m in methods]:
            assert action.help.startswith(", ".join(owners) + ":"), action.help
        if p.kind is not bool:
            nargs = p.size or ("+" if p.many else None)
            assert action.type is p.kind and action.nargs == nargs, name
    if built:
        assert set(registered) <= set(actions)


BUILT = [(c, m) for c, (e, built, _) in COMMANDS.items() if built for m in REGISTRIES[e].cli()]


@pytest.mark.parametrize(("command", "method"), BUILT, ids=[f"{c}:{m}" for c, m in BUILT])
def test_cli_passes_each_option_to_its_method(command, method):
    """Given every option of a method, the CLI hands the engine exactly its keywords
    (values that bind to the function's signature, the method picked); another
    method's option is refused."""
    methods = REGISTRIES[COMMANDS[command][0]]
    m = methods[method]
    flag = "--" + (methods.select or "method").replace("_", "-")
    argv = [command, "s.tif", flag, method, "-o", "o.h5"]
    for p in m.cli_params():
        if p.kind is bool:
            argv.append(p.flag)
        else:
            value = p.choices[-1] if p.choices else p.start if p.start is not None else 1
            argv += [p.flag, *(str(v) for v in (value if p.size else (value,)))]
    args = cli._build_parser().parse_args(argv)
    options = _registry_cli.cli_options(args, m, methods.cli().values())
    assert set(options) == {p.name for p in m.cli_params()}
    kwargs = m.kwargs(options)
    if m.select:
        assert kwargs[m.select] == method
    for p in m.cli_params():
        if p.size:
            assert isinstance(options[p.name], tuple) and len(options[p.name]) == p.size
    inspect.signature(m.func).bind(None, **kwargs)
    others = [p for o in methods.values() for p in o.cli_params() if p.name not in m.keywords]
    if not others:  # every method takes every option (gain)
        return
    other = others[0]
    extra = [other.flag] if other.kind is bool else [other.flag, str(other.start or 1)]
    args = cli._build_parser().parse_args(argv + extra)
    with pytest.raises(ValueError, match=other.flag):
        _registry_cli.cli_options(args, m, methods.cli().values())


def test_registries_of_one_function_list_the_engine_choices():
    """gain.METHODS, force.METHODS and the tracking modes keep the engine's tuples of
    method names (iteration, ``in``, ``len``), so code written for the tuple still works."""
    from camtrack import force, gain
    from camtrack.force import _calibrate
    from camtrack.gain import _estimate
    from camtrack.tracking import _measure
    from camtrack.tracking._registry import MODES

    for registry, names in ((gain.METHODS, _estimate.METHODS),
                            (force.METHODS, _calibrate.METHODS), (MODES, _measure.MODES)):  # fmt: skip
        assert tuple(registry) == tuple(names)
        assert {m.select for m in registry.values()} == {registry.select}
        doc = _numpydoc.parameter_docs(next(iter(registry.values())).func)[registry.select]
        assert all(f'"{n}"' in doc for n in names), doc  # the docstring's {choices}


def test_gain_cli_runs_a_registered_method(tmp_path):
    """`camtrack gain --method meanvar --fit-range 10 90 --saturation ...` reaches the
    engine with those keywords: the result is estimate_gain's with them."""
    from camtrack.gain import estimate_gain
    from camtrack.simulate import camera_stack

    tifffile = pytest.importorskip("tifffile")
    stack, _ = camera_stack(40, (48, 48), camera={"e_per_adu": 0.5}, rng=0)
    path = tmp_path / "flat.tif"
    tifffile.imwrite(path, stack)
    out = tmp_path / "gain.json"
    argv = ["gain", str(path), "--offset-adu", "100", "--method", "meanvar", "--fit-range",
            "10", "90", "--min-count", "5", "--saturation", "60000", "-o", str(out)]  # fmt: skip
    assert cli.main(argv) == 0
    saved = json.loads(out.read_text())
    want = estimate_gain(stack, dark=100.0, method="meanvar", fit_range=(10, 90), min_count=5,
                         saturation=60000)  # fmt: skip
    assert saved["method"] == "meanvar"
    assert saved["e_per_adu"] == pytest.approx(want.e_per_adu, rel=1e-9)
    with pytest.raises(SystemExit):  # not a registered method: argparse refuses it
        cli.main([*argv[:-2], "--method", "nope"])


@pytest.mark.parametrize("registry", list(REGISTRIES.values()), ids=list(REGISTRIES))
def test_doc_tables_are_generated_from_the_registry(registry):
    """Run `python docs/registry_tables.py` after changing a registry or a docstring."""
    assert _registry_docs.sync_markdown(DOCS / registry.page, registry, check=True), (
        f"docs/guide/{registry.page} is stale: run `python docs/registry_tables.py`"
    )
    table = _registry_docs.markdown_table(registry.values())
    for method in registry.values():
        assert f"`{method.call}`" in table
        assert (f"`{method.command or method.option}`" in table) == method.cli
        if method.cli and not method.command.startswith("camtrack calibrate"):
            assert method.command.endswith(method.option)


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
    assert kwargs["split"] is None and kwargs["window"] == 200  # 0 in the widget: None
    inspect.signature(sparse.func).bind(None, **kwargs)


def test_human_labels_from_keywords():
    """Widget labels are words, not keywords (a first-use defect: users read
    ``sigma_clip (sigma, 0: none)``); the keyword stays the field's name and tooltip."""
    from camtrack._registry import human_text

    assert human_text("roi_size") == "ROI size" and human_text("n_bins") == "Bins"
    assert human_text("z_step") == "z step" and human_text("lut_beads") == "LUT beads"
    assert human_text("radius_nm", "nm") == "Radius"
    assert human_text("exposure_s", "s") == "Exposure" and human_text("psd_fit") == "PSD fit"
    assert human_text("viscosity_pa_s", "Pa s") == "Viscosity"
    assert human_text("fft_profile") == "FFT profile" and human_text("n") == "N"
    p = Param("sigma_clip", unit="sigma", note="0 = off")
    assert p.text == "Sigma clip" and p.label == "Sigma clip (\u03c3; 0 = off)"
    assert Param("q", unit="%", text="Percentile").label == "Percentile (%)"
    assert Param("offset_correction", bool).label == "Offset correction"


@pytest.mark.parametrize(("engine", "method"), ENTRIES, ids=IDS)
def test_every_param_has_a_human_label_and_a_keyword_tooltip(engine, method):
    for p in method.params:
        assert "_" not in p.label and p.label[:1] not in "abcdefghijklmnopqrstuvw", p.label
        assert p.tooltip.startswith(f"keyword: {p.name} — ") and p.doc in p.tooltip
