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

Loops that call another module's compiled helpers borrow them from that module's
LazyJit (``borrow=(_select._kernels,)``): it is compiled first, and those of its helpers
the loops name are bound into the loops' module, compiled.

Tests of a fallback set ``compiled`` to False (``monkeypatch.setattr(module._gather_kernel,
"compiled", False)``); a LazyJit that borrows from one switched off answers None too.
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
    borrow : sequence of LazyJit
        Other modules' LazyJits whose helpers the loops (or ``helpers``) call too, by
        the same name in the loops' module: each is compiled first, and those of its
        helpers that the code names are bound into the loops' module. While any of them
        answers None (no numba, switched off) this one answers None too, without
        remembering it.
    **options
        Passed to ``numba.njit`` (``nogil``, ``cache``, ``fastmath``, ...).
    """

    def __init__(self, *funcs: Callable[..., Any], helpers: tuple[Callable[..., Any], ...] = (), borrow: tuple[LazyJit, ...] = (), **options: Any) -> None:  # fmt: skip
        if not funcs:
            raise TypeError("LazyJit needs at least one function to compile.")
        self.funcs = funcs
        self.helpers = tuple(helpers)
        self.borrow = tuple(borrow)
        self.options = options
        # None: not tried yet; False: no numba (or switched off); else the result.
        self.compiled: Any = None
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        if any(other() is None for other in self.borrow):
            return None
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
        home = sys.modules[self.funcs[0].__module__]
        names = {n for f in (*self.helpers, *self.funcs) for n in f.__code__.co_names}
        for other in self.borrow:  # compiled (see __call__): their modules hold them so
            for helper in other.helpers:
                if helper.__name__ in names:
                    lent = getattr(sys.modules[helper.__module__], helper.__name__)
                    setattr(home, helper.__name__, lent)
        for helper in self.helpers:
            setattr(sys.modules[helper.__module__], helper.__name__, jit(helper))
        out = tuple(jit(f) for f in self.funcs)
        return out[0] if len(out) == 1 else out
