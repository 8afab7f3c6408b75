"""One place for input checks and their messages.

Message shape: name the parameter, show what was received, say the fix.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "check_choice",
    "check_existing_file",
    "check_integer",
    "check_positive",
    "check_range",
    "check_stack",
    "renamed_keywords",
    "require_pandas",
]

# Old keywords stay accepted for one release after a rename (CHANGELOG "Renamed"); the
# release that drops them is named in the warning so a user can plan the edit.
RENAMED_UNTIL = "0.3"


def check_stack(stack: Any, name: str = "stack") -> Any:
    """Check a (frames, rows, cols) numeric array; return it unchanged."""
    shape = getattr(stack, "shape", None)
    dtype = getattr(stack, "dtype", None)
    if shape is None or dtype is None:
        raise TypeError(
            f"`{name}` must be an array (numpy, cupy or dask) of shape (frames, rows, cols); "
            f"got {type(stack).__name__}. Wrap lists with numpy.asarray(...)."
        )
    if len(shape) != 3:
        hint = " For one image pass image[None]." if len(shape) == 2 else ""
        raise ValueError(
            f"`{name}` must be 3-D (frames, rows, cols); got shape {tuple(shape)}.{hint}"
        )
    if not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
        raise TypeError(
            f"`{name}` must have an integer or float dtype; got {dtype}. "
            "Convert it with stack.astype(numpy.float32)."
        )
    if min(shape) == 0:
        raise ValueError(f"`{name}` is empty; got shape {tuple(shape)}.")
    return stack


def _not_text(value: Any, name: str) -> None:
    """Refuse text where a number belongs: float("5") would hide a type slip."""
    if isinstance(value, str | bytes):
        raise TypeError(
            f"`{name}` must be a number; got {value!r} (a {type(value).__name__}). Pass "
            "the number itself, e.g. float(text) where it was read from text."
        )


def check_positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    """Check a finite positive (or non-negative) scalar (not text)."""
    _not_text(value, name)
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be a number; got {value!r}.") from None
    ok = v >= 0 if allow_zero else v > 0
    if not np.isfinite(v) or not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"`{name}` must be finite and {bound}; got {value!r}.")
    return v


def check_range(value: Any, name: str, lo: float, hi: float) -> float:
    """Check a scalar in the closed interval [lo, hi] (not text)."""
    _not_text(value, name)
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be a number; got {value!r}.") from None
    if not (lo <= v <= hi):
        raise ValueError(f"`{name}` must lie in [{lo}, {hi}]; got {value!r}.")
    return v


def check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    """Check that ``value`` is one of ``choices``."""
    if value not in choices:
        opts = ", ".join(repr(c) for c in choices)
        raise ValueError(f"`{name}` must be one of {opts}; got {value!r}.")
    return value


def check_existing_file(path: str | os.PathLike, name: str = "path") -> Path:
    """Check that ``path`` names an existing regular file."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"`{name}`: no such file {str(p)!r}. Check the path.")
    if not p.is_file():
        raise ValueError(f"`{name}` must be a file; got the directory {str(p)!r}.")
    return p


def check_integer(
    value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """Check an integer (bools and non-integral floats refused) within optional bounds."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        if isinstance(value, float | np.floating) and float(value).is_integer():
            value = int(value)
        else:
            raise TypeError(f"`{name}` must be an integer; got {value!r}.")
    v = int(value)
    if minimum is not None and v < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}; got {v}.")
    if maximum is not None and v > maximum:
        raise ValueError(f"`{name}` must be <= {maximum}; got {v}.")
    return v


def renamed_keywords(**old_to_new: str) -> Callable[[Callable], Callable]:
    """Accept old keyword names of a renamed parameter for one release.

    ``@renamed_keywords(nbins="n_bins")`` lets ``f(nbins=20)`` run as ``f(n_bins=20)``
    with a ``DeprecationWarning`` naming the new keyword; passing both is a
    ``TypeError``. The wrapper keeps the new signature (``inspect.signature`` follows
    ``__wrapped__``), so registries, widgets and the command line see only the new
    names. The map is on the wrapper as ``__renamed_keywords__`` (read by
    tests/test_vocabulary.py and the command line's hidden aliases).
    """

    def decorate(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in old_to_new.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(
                            f"{func.__name__}() got both `{old}` and `{new}`; `{old}` is "
                            f"the old name of `{new}`: pass only `{new}`."
                        )
                    warnings.warn(
                        f"{func.__name__}(): `{old}` is renamed `{new}`; pass "
                        f"`{new}=` (`{old}` stops working in {RENAMED_UNTIL}).",
                        DeprecationWarning,
                        stacklevel=2,
                    )
                    kwargs[new] = kwargs.pop(old)
            return func(*args, **kwargs)

        merged = {**getattr(func, "__renamed_keywords__", {}), **old_to_new}
        wrapper.__renamed_keywords__ = merged  # type: ignore[attr-defined]
        return wrapper

    return decorate


def require_pandas(what: str) -> Any:
    """Import pandas for ``what`` (e.g. "TrackResult.to_dataframe()"), or raise an
    ImportError that names the install and the pandas-free alternative."""
    try:
        import pandas
    except ImportError:
        raise ImportError(
            f"{what} needs pandas, an optional dependency of napari-camtrack: install it "
            "with `pip install pandas`, or use to_table() / to_rows() (numpy columns, no "
            "pandas)."
        ) from None
    return pandas
