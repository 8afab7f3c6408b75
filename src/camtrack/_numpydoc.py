"""numpydoc Parameters sections read as data: the help texts of the method registries.

Engine-side (no napari, no Qt), so the registries, the command line and the widgets'
tooltips quote the functions' own documentation.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

__all__ = ["description", "first_sentence", "parameter_docs"]

_HEADER = re.compile(r"^(\w[\w, ]*?)\s*(?::\s*(.*))?$")


def parameter_docs(func: Callable[..., Any]) -> dict[str, str]:
    """{name: "type. description"} from the Parameters section of ``func``'s numpydoc
    docstring, with Sphinx roles and double backticks removed. Names documented
    together ("x, y : float", or "mask, progress" without a type) each get the entry."""
    lines = (inspect.getdoc(func) or "").splitlines()
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
        out.update(dict.fromkeys(names, text))

    for i in range(start, len(lines)):
        line, after = lines[i], lines[i + 1].strip() if i + 1 < len(lines) else ""
        if line and not line.startswith(" "):
            head = _HEADER.match(line)
            if head is None or (after and set(after) <= {"-"}):
                break  # the next section ("Returns" over its dashes)
            flush()
            names = [n.strip() for n in head.group(1).split(",")]
            body = [head.group(2).rstrip(".") + "."] if head.group(2) else []
        else:
            body.append(line)
    flush()
    return out


def description(doc: str) -> str:
    """The description of a ``parameter_docs`` entry, without its "type." head."""
    if not doc or doc[0].isupper():
        return doc  # no type given: all description
    depth = 0
    for i, ch in enumerate(doc):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "." and depth == 0 and doc[i + 1 : i + 2] in (" ", ""):
            return doc[i + 1 :].strip()
    return ""


def first_sentence(text: str) -> str:
    """The first sentence of ``text``: up to a full stop and a space outside brackets
    (so "1.4826 x" and "(ddof=0). std" read right), not after "e.g."."""
    depth = 0
    for i, ch in enumerate(text):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "." and depth == 0 and text[i + 1 : i + 2] in (" ", ""):
            word = text[: i + 1].rsplit(None, 1)[-1]
            if word.lower() not in ("e.g.", "i.e.", "cf.", "approx."):
                return text[: i + 1]
    return text
