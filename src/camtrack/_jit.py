"""Compiled kernels on first use: one place for numba's lazy import and compilation.

Every compiled kernel of the engine is a plain-Python loop with a numpy fallback next
to it, tested equal. :class:`LazyJit` compiles the loop the first time it is asked for
(``import camtrack`` never imports numba) and answers None where numba is missing or
broken, so the caller takes its numpy path::

    _gather_kernel = LazyJit(_gather_loop, nogil=True, cache=True)
    ...
    kern = _gather_kernel()
    if kern is not None:
        kern(...)

Tests of a fallback set ``compiled`` to False (``monkeypatch.setattr(module._gather_kernel,
"compiled", False)``).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["LazyJit"]


class LazyJit:
    """``numba.njit(**options)`` of ``funcs``, compiled on the first call.

    Parameters
    ----------
    *funcs : callable
        The loops to compile; calling the LazyJit returns the compiled one (a tuple
        for several) or None without a working numba.
    helpers : sequence of callable
        Functions the loops call through their module's globals: numba reads those
        globals when it compiles, so each helper is compiled first and written back
        into its module under its own name.
    **options
        Passed to ``numba.njit`` (``nogil``, ``cache``, ``fastmath``, ...).
    """

    def __init__(self, *funcs: Callable[..., Any], helpers: tuple[Callable[..., Any], ...] = (), **options: Any) -> None:  # fmt: skip
        if not funcs:
            raise TypeError("LazyJit needs at least one function to compile.")
        self.funcs = funcs
        self.helpers = tuple(helpers)
        self.options = options
        # None: not tried yet; False: no numba (or switched off); else the result.
        self.compiled: Any = None
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        if self.compiled is None:
            with self._lock:
                if self.compiled is None:
                    self.compiled = self._compile()
        return self.compiled or None

    def _compile(self) -> Any:
        try:
            import numba
        except Exception:  # numba missing or broken: the numpy paths run
            return False
        jit = numba.njit(**self.options)
        for helper in self.helpers:
            setattr(sys.modules[helper.__module__], helper.__name__, jit(helper))
        out = tuple(jit(f) for f in self.funcs)
        return out[0] if len(out) == 1 else out
