"""argparse options from a method registry (see :mod:`camtrack._registry`).

One option per engine keyword, ``--kebab-case`` of its name, ``dest`` the keyword and
default None meaning "not given" (so the engine's own default holds); the help names
the methods that take it (none where every method does). An option of another method,
or a missing required one, is refused naming the flags. :func:`add_method_option` adds
the ``--method`` (or ``--mode``) choice itself.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping
from typing import Any

from camtrack._registry import Method, Param, keyword_union, plain_number

__all__ = ["add_cli_options", "add_frame_range", "add_method_option", "cli_options"]


def _cli_default(p: Param) -> str | None:
    if p.required:
        return "required"
    if p.kind is bool:
        return "default on" if p.default else "default off"
    if p.default is None:
        return None  # None: the engine decides (its help says how)
    if isinstance(p.default, tuple | list):
        return "default " + " ".join(str(plain_number(v)) for v in p.default)
    return f"default {plain_number(p.default)}"


def add_method_option(
    parser: Any, methods: Mapping[str, Method], *, default: str | None = None, help: str = ""
) -> None:
    """The choice among ``methods`` (by command-line name): ``--method`` (``--mode``
    where the methods are picked by a ``mode`` keyword), ``dest`` that keyword."""
    names = [n for n, m in methods.items() if m.cli]
    select = next((m.select for m in methods.values() if m.select), "method")
    text = help or "one of: " + ", ".join(names)
    if default is not None:
        text += f" (default {default})"
    parser.add_argument("--" + select.replace("_", "-"), dest=select, choices=names,
                        default=default, required=default is None, metavar="{" +
                        ",".join(names) + "}", help=text.replace("%", "%%"))  # fmt: skip


def add_frame_range(parser: Any) -> None:
    """``--first-frame F --last-frame L`` (dest ``first_frame``, ``last_frame``, as the
    engine and the widgets name them), with the old ``--first`` / ``--last`` hidden."""
    for name, default, text in (("first_frame", 0, "first frame (default 0)"),
                                ("last_frame", None, "last frame (default: the end)")):  # fmt: skip
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=int,
                            default=default, help=text)  # fmt: skip
        old = "--" + name.split("_")[0]
        parser.add_argument(old, dest=name, type=int, default=default, help=argparse.SUPPRESS)


def add_cli_options(parser: Any, methods: Iterable[Method]) -> None:
    """Add one option per keyword of ``methods`` to an argparse parser or group
    (``dest`` = the keyword, default None meaning "not given"; the help names the
    methods that take it, the unit and the default)."""
    methods = list(methods)
    offered = [m.name for m in methods if m.cli]
    for name, (p, owners) in keyword_union(methods, "cli").items():
        per = {o: _cli_default(m.param(name)) for m in methods for o in owners if m.name == o}
        texts = set(per.values())
        tail = [p.unit] if p.unit else []
        if len(texts) == 1 and None not in texts:
            tail.append(texts.pop())
        elif len(texts) > 1:
            tail += [f"{t} for {o}" for o, t in per.items() if t is not None]
        every = len(offered) > 1 and owners == offered  # no list of every method
        text = p.help if every else f"{', '.join(owners)}: {p.help}"
        text = (text + (f" ({'; '.join(tail)})" if tail else "")).replace("%", "%%")
        if p.kind is bool:
            parser.add_argument(p.flag, dest=name, action=argparse.BooleanOptionalAction,
                                default=None, help=text)  # fmt: skip
        else:
            metavar: Any = p.name.upper() if not p.choices else "{" + ",".join(p.choices) + "}"
            if p.size == 2:
                metavar = ("LO", "HI")
            elif p.size:
                metavar = tuple(f"{p.name.upper()}{i}" for i in range(p.size))
            parser.add_argument(
                p.flag, dest=name, type=p.kind, default=None, help=text, metavar=metavar,
                nargs=p.size or ("+" if p.many else None),
            )  # fmt: skip
    _add_old_spellings(parser, methods)


def _add_old_spellings(parser: Any, methods: list[Method]) -> None:
    """Hidden options for keywords renamed within the last release (``--nbins`` for
    ``--n-bins``): same ``dest``, absent from the help and the docs."""
    union = keyword_union(methods, "cli")
    renamed: dict[str, str] = {}
    for m in methods:
        renamed.update(getattr(m.func, "__renamed_keywords__", {}))
    for old, new in renamed.items():
        if new not in union or old in union:
            continue
        p = union[new][0]
        flag = "--" + old.replace("_", "-")
        kwargs: dict[str, Any] = {"dest": new, "default": None, "help": argparse.SUPPRESS}
        if p.kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs.update(type=p.kind, nargs=p.size or ("+" if p.many else None))
        try:
            parser.add_argument(flag, **kwargs)
        except argparse.ArgumentError:  # the parser has that flag for something else
            continue


def cli_options(args: argparse.Namespace, method: Method, methods: Iterable[Method]) -> dict:
    """The keywords of ``method`` given on the command line (one value for a ``many``
    option given once). Options of other methods and missing required ones are refused
    with a ValueError naming the flags."""
    union = keyword_union(methods, "cli")
    given = {n: getattr(args, n, None) for n in union}
    given = {n: v for n, v in given.items() if v is not None}
    allowed = {p.name: p for p in method.cli_params()}
    wrong = [n for n in given if n not in allowed]
    if wrong:
        flags = ", ".join(f"{union[n][0].flag} ({', '.join(union[n][1])})" for n in wrong)
        raise ValueError(
            f"{flags} do(es) not apply to {method.option}; its options are "
            f"{', '.join(p.flag for p in allowed.values()) or 'none'}."
        )
    for p in allowed.values():
        if p.required and p.name not in given:
            what = f" ({', '.join(p.choices)})" if p.choices else ""
            raise ValueError(f"{method.option} needs {p.flag}{what}.")
        if p.many and p.name in given and len(given[p.name]) == 1:
            given[p.name] = given[p.name][0]
        elif p.many and p.name in given:
            given[p.name] = list(given[p.name])
        elif p.size and p.name in given:
            given[p.name] = tuple(given[p.name])
    return given
