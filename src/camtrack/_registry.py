"""Method registries: one entry per engine method, read by widgets, CLI and docs.

A :class:`Method` is the engine function plus a :class:`Param` spec per exposed keyword
(name = the keyword, its range, unit, the widget's human label and where it appears).
Defaults and help are not typed twice: :class:`Method` reads each default from the
function's signature and each help text from its numpydoc Parameters section, so the
widget, the command line and the doc tables say what the function says. A new method
is one function plus one entry. The widget labels a field in words ("ROI size (px)")
and keeps the keyword as the field's name and in its tooltip ("keyword: roi_size").

The command-line options are built by ``camtrack._registry_cli`` (plain argparse), the
widget fields by ``camtrack.napari._widgets._fields``, the doc tables by
``camtrack._registry_docs``; this module never imports napari, magicgui or Qt.
``python docs/registry_tables.py`` rewrites the generated tables in ``docs/guide/*.md``
(``--check`` only compares).

Methods of one function told apart by a keyword (``estimate_gain(method="diff")``,
``track_beads(mode="fast")``) name that keyword in :attr:`Method.select`; the entry's
name is then the keyword's value, and the command line offers ``--method diff`` (or
``--mode fast``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from camtrack._numpydoc import description, first_sentence, parameter_docs

__all__ = [
    "COMMON",
    "REQUIRED",
    "Method",
    "Param",
    "Registry",
    "human_text",
    "keyword_tooltip",
    "keyword_union",
    "plain_number",
]

# Engine keywords that are plumbing, not method parameters: no widget field, no command
# option, no doc row. Every other keyword of a registered function is either a Param or
# named in its Method's ``hidden`` (tests/test_registry.py checks this).
COMMON = ("progress", "scheduler", "chunks", "device")


class _Required:
    """The default of a keyword without one (the user must pass it)."""

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
_FROM_SIGNATURE: Any = object()


# -- spec ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Param:
    """One keyword of an engine function as the widget, the CLI and the docs show it.

    Attributes
    ----------
    name : str
        The engine keyword (the widget field's name; the CLI flag is ``--name`` with
        dashes).
    kind : type
        ``int``, ``float``, ``bool`` or ``str`` (the widget and argparse type).
    choices : tuple of str
        Allowed values of a ``str`` keyword.
    min, max, step : float, optional
        The widget's range and step; the doc tables show the range. The engine
        validates values itself (the CLI passes them on unchecked).
    unit : str
        Unit of the value ("px", "frames", "ADU", "s", "Hz", "%", "sigma").
    help : str
        One line for CLI help and doc tables. Default: the first sentence of the
        docstring's entry.
    many : bool
        Takes a sequence too (the CLI accepts several values).
    size : int
        Takes exactly this many values (2: a ``(lo, hi)`` range: a range slider in the
        widget, ``--flag LO HI`` on the command line); 0: one value.
    gui_value : optional
        The widget's start value where the engine default is None or required.
    gui_none : optional
        A widget value meaning None (e.g. 0 for "automatic"), for keywords whose
        default is None.
    when : (str, value), optional
        Passed (and shown in the widget) only while another keyword has that value,
        e.g. ``("stat", "percentile")``; None otherwise.
    note : str
        Short text in the widget label after the unit, what a special value means
        (e.g. "0 = auto").
    text : str
        The widget's human label without unit or note, sentence case (e.g. "ROI
        size"). Default: from ``name`` (:func:`human_text`: underscores to spaces,
        known abbreviations in capitals, a trailing unit word dropped: ``radius_nm``
        with unit "nm" is "Radius").
    widget : str
        "slider" for a slider instead of a spin box.
    gui, cli : bool
        Whether the widget / the command line exposes it.
    default, doc
        Filled in by :class:`Method` from the function: the signature's default
        (``REQUIRED`` where it has none) and the full docstring entry.
    """

    name: str
    kind: type = float
    choices: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    step: float | None = None
    unit: str = ""
    help: str = ""
    many: bool = False
    size: int = 0
    gui_value: Any = _FROM_SIGNATURE
    gui_none: Any = None
    when: tuple[str, Any] | None = None
    note: str = ""
    widget: str = ""
    text: str = ""
    gui: bool = True
    cli: bool = True
    default: Any = field(default=_FROM_SIGNATURE)
    doc: str = ""

    def __post_init__(self) -> None:
        if not self.text:
            object.__setattr__(self, "text", human_text(self.name, self.unit))

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def flag(self) -> str:
        """The command-line flag: ``--kernel-size`` (a bool also takes ``--no-...``)."""
        return "--" + self.name.replace("_", "-")

    @property
    def flag_text(self) -> str:
        """The flag as help and docs show it: ``--[no-]offset-correction`` for a bool,
        ``--fit-range LO HI`` for a range."""
        if self.size == 2:
            return f"{self.flag} LO HI"
        return self.flag.replace("--", "--[no-]") if self.kind is bool else self.flag

    @property
    def label(self) -> str:
        """The widget label: the human text, then unit and note in brackets
        ("Sigma clip (σ; 0 = off)"). The field's name stays the keyword."""
        extra = "; ".join(s for s in (_UNIT_TEXT.get(self.unit, self.unit), self.note) if s)
        return f"{self.text} ({extra})" if extra else self.text

    @property
    def tooltip(self) -> str:
        """The widget tooltip: the engine keyword (for Python users), then its
        docstring entry."""
        return keyword_tooltip(self.name, self.doc or self.help)

    @property
    def start(self) -> Any:
        """The widget's start value."""
        if self.gui_value is not _FROM_SIGNATURE:
            return self.gui_value
        if self.default is None and self.gui_none is not None:
            return self.gui_none
        return self.default

    @property
    def range_text(self) -> str:
        if self.choices:
            return ", ".join(self.choices)
        lo, hi = (plain_number(v) for v in (self.min, self.max))
        if lo is not None and hi is not None:
            return f"{lo} to {hi}"
        return f">= {lo}" if lo is not None else (f"<= {hi}" if hi is not None else "")

    @property
    def default_text(self) -> str:
        if self.required:
            return "required"
        if self.default is None:
            shown = self.gui and self.gui_none is not None
            return "none" + (f" ({plain_number(self.gui_none)} in the widget)" if shown else "")
        if isinstance(self.default, tuple | list):
            return ", ".join(str(plain_number(v)) for v in self.default)
        return self.default if isinstance(self.default, str) else str(plain_number(self.default))


# Units as a label shows them (the command line and the doc tables keep the spec's).
_UNIT_TEXT = {"sigma": "\u03c3"}  # σ
# Words a label writes otherwise than lower case (first word capitalised anyway).
_WORDS = {"roi": "ROI", "rois": "ROIs", "lut": "LUT", "psd": "PSD", "fft": "FFT", "qi": "QI",
          "adu": "ADU", "ccd": "CCD", "emccd": "EMCCD", "scmos": "sCMOS", "csv": "CSV",
          "z": "z", "x": "x", "y": "y"}  # fmt: skip


def human_text(name: str, unit: str = "") -> str:
    """A label from a keyword: ``roi_size`` -> "ROI size", ``n_bins`` -> "Bins",
    ``radius_nm`` with unit "nm" -> "Radius", ``z_step`` -> "z step".

    Underscores become spaces, a leading ``n`` ("number of") and trailing words that
    spell the unit are dropped, known abbreviations are written as such and the first
    letter is capitalised (but x, y, z stay lower case).
    """
    words = name.split("_")
    tail = unit.lower().split()
    if tail and len(words) > len(tail) and [w.lower() for w in words[-len(tail) :]] == tail:
        words = words[: -len(tail)]
    if words[0] == "n" and len(words) > 1:
        words = words[1:]
    words = [_WORDS.get(w.lower(), w) for w in words]
    first = words[0]
    if first not in _WORDS.values():
        words[0] = first[:1].upper() + first[1:]
    return " ".join(words)


def keyword_tooltip(name: str, text: str) -> str:
    """A field's tooltip naming its engine keyword: "keyword: roi_size — ..."."""
    return f"keyword: {name} — {text}" if text else f"keyword: {name}"


def plain_number(value: Any) -> Any:
    """1e6 -> 1000000, 4.0 -> 4 for display."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    return value


def _public_module(func: Callable[..., Any]) -> str:
    parts = func.__module__.split(".")
    cut = next((i for i, part in enumerate(parts) if part.startswith("_")), len(parts))
    return ".".join(parts[:cut])


@dataclass(frozen=True)
class Method:
    """An engine method: the function, its parameter specs and where it appears.

    Attributes
    ----------
    name : str
        The command-line name, e.g. ``"temporal-median"``.
    func : callable
        The public engine function.
    summary : str
        One line for doc tables and CLI help.
    params : tuple of Param
        The exposed keywords, in widget order; defaults and docs are filled in from
        ``func``.
    label : str
        The widget's name of the method (default: ``name`` with spaces).
    hidden : tuple of str
        Keywords of ``func`` deliberately not exposed (e.g. ``mask``, an array), beside
        :data:`COMMON`.
    inputs : tuple of str
        The data arguments (default: the first parameter, e.g. ``stack``); ``("rois",
        "x", "y")`` for a refinement that starts from given centres.
    gui, cli : bool
        Whether the widget / the command line offers the method.
    select : str
        The keyword of ``func`` that picks this method (``"method"`` for
        ``estimate_gain(method="diff")``); ``name`` is its value. Empty: the function
        is the method.
    picked_by : str
        For a building block that a pipeline offers by name: the pipeline's keyword
        whose value ``name`` picks it (``"centre"`` for ``track_rois(centre="qi")``, the
        block being :func:`camtrack.tracking.qi`); the command line's choice is then
        ``--centre qi``. Empty: none.
    """

    name: str
    func: Callable[..., Any]
    summary: str
    params: tuple[Param, ...] = ()
    label: str = ""
    hidden: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    gui: bool = True
    cli: bool = True
    select: str = ""
    command: str = ""
    picked_by: str = ""

    def __post_init__(self) -> None:
        signature = inspect.signature(self.func).parameters
        docs = parameter_docs(self.func)
        if self.select and (self.select not in signature or self.select in self.keywords):
            raise TypeError(
                f"registry entry {self.name!r}: select={self.select!r} must be a keyword of "
                f"{self.python}() and not one of its params."
            )
        filled = []
        for p in self.params:
            if p.name not in signature:
                raise TypeError(
                    f"registry entry {self.name!r}: {self.python}() has no keyword "
                    f"{p.name!r}; its keywords are {', '.join(signature)}."
                )
            default = signature[p.name].default
            default = REQUIRED if default is inspect.Parameter.empty else default
            doc = docs.get(p.name, "")
            help_ = p.help or first_sentence(description(doc))
            gui, cli = p.gui and self.gui, p.cli and self.cli
            filled.append(replace(p, default=default, doc=doc, help=help_, gui=gui, cli=cli))
        object.__setattr__(self, "params", tuple(filled))
        if not self.label:
            object.__setattr__(self, "label", self.name.replace("-", " "))
        if not self.inputs:
            object.__setattr__(self, "inputs", (next(iter(signature)),))

    @property
    def python(self) -> str:
        """The public Python name, e.g. ``camtrack.background.temporal_median``."""
        return f"{_public_module(self.func)}.{self.func.__name__}"

    @property
    def call(self) -> str:
        """How Python picks the method: ``camtrack.gain.estimate_gain(method="diff")``,
        or the function's name when it is the method."""
        return f'{self.python}({self.select}="{self.name}")' if self.select else self.python

    @property
    def option(self) -> str:
        """The command-line choice: ``--method diff`` (``--mode fast`` for a ``mode``,
        ``--centre qi`` for a block picked by a pipeline's ``centre``)."""
        return f"--{(self.select or self.picked_by or 'method').replace('_', '-')} {self.name}"

    @property
    def keywords(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def kwargs(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The engine call's keywords: the selecting keyword (if any), then ``values``."""
        return {**({self.select: self.name} if self.select else {}), **values}

    def param(self, name: str) -> Param:
        return next(p for p in self.params if p.name == name)

    def gui_params(self) -> tuple[Param, ...]:
        return tuple(p for p in self.params if p.gui)

    def cli_params(self) -> tuple[Param, ...]:
        return tuple(p for p in self.params if p.cli)

    def shown(self, values: Mapping[str, Any]) -> tuple[str, ...]:
        """Names of the widget fields to show, given the current field values."""
        return tuple(
            p.name
            for p in self.gui_params()
            if p.when is None or values.get(p.when[0]) == p.when[1]
        )

    def gui_kwargs(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Engine keywords from widget values: ``gui_none`` and unmet ``when`` -> None;
        the selecting keyword first (``{"method": "diff", ...}``)."""
        shown = self.shown(values)
        out = {}
        for p in self.gui_params():
            value = values[p.name]
            if p.name not in shown or (p.gui_none is not None and value == p.gui_none):
                value = None
            elif p.size:
                value = tuple(value)
            out[p.name] = value
        return self.kwargs(out)


class Registry(Mapping[str, Method]):
    """The methods of one engine, by command-line name, in order."""

    def __init__(
        self, engine: str, methods: Iterable[Method], *, page: str = "", command: str = ""
    ) -> None:
        self.engine = engine
        self.page = page  # the docs/guide page holding its tables
        self.command = command  # the subcommand offering the methods ("camtrack gain")
        self._methods: dict[str, Method] = {}
        docs: dict[str, Param] = {}
        for m in methods:
            # A docstring saying "As in temporal_median." (or nothing) for a keyword
            # gets that method's text, which an earlier entry holds.
            params = tuple(
                replace(p, doc=docs[p.name].doc, help=docs[p.name].help)
                if p.name in docs and (not p.doc or p.doc.startswith("As in "))
                else p
                for p in m.params
            )
            for p in params:
                if p.doc and not p.doc.startswith("As in "):
                    docs.setdefault(p.name, p)
            object.__setattr__(m, "params", params)
            if command and not m.command:
                object.__setattr__(m, "command", f"{command} {m.option}")
            self._methods[m.name] = m

    def __getitem__(self, name: str) -> Method:
        return self._methods[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._methods)

    def __len__(self) -> int:
        return len(self._methods)

    def __repr__(self) -> str:
        return f"Registry({self.engine!r}, {list(self._methods)})"

    @property
    def select(self) -> str:
        """The keyword that picks a method (``"method"``, ``"mode"``); "" where every
        method is a function of its own."""
        return next((m.select for m in self._methods.values() if m.select), "")

    def cli(self) -> dict[str, Method]:
        return {n: m for n, m in self._methods.items() if m.cli}

    def gui(self) -> dict[str, Method]:
        """By widget label."""
        return {m.label: m for m in self._methods.values() if m.gui}


def keyword_union(methods: Iterable[Method], which: str) -> dict[str, tuple[Param, list[str]]]:
    """{keyword: (its first spec, names of the methods using it)} over ``methods``
    (``which``: "cli" or "gui" parameters)."""
    out: dict[str, tuple[Param, list[str]]] = {}
    for m in methods:
        for p in m.cli_params() if which == "cli" else m.gui_params():
            out.setdefault(p.name, (p, []))[1].append(m.name)
    return out
