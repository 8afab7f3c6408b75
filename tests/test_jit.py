"""camtrack._jit.LazyJit: compiled on first use, None without numba."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import camtrack
from camtrack._jit import LazyJit


def _double(a, out):
    for i in range(a.shape[0]):
        out[i] = _twice(a[i])


def _twice(v):
    return 2.0 * v


def test_compiles_with_its_helpers_on_first_call():
    pytest.importorskip("numba")
    kern = LazyJit(_double, helpers=(_twice,), nogil=True)
    assert kern.compiled is None  # nothing compiled at definition
    a = np.arange(5.0)
    out = np.empty(5)
    kern()(a, out)
    np.testing.assert_array_equal(out, 2.0 * a)
    assert kern() is kern.compiled  # the same dispatcher every call


def test_none_without_numba_or_when_switched_off(monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)  # `import numba` raises ImportError
    assert LazyJit(_double)() is None
    kern = LazyJit(_double)
    kern.compiled = False
    assert kern() is None


def test_needs_a_function():
    with pytest.raises(TypeError, match="at least one function"):
        LazyJit()


def test_tracking_compiles_through_lazyjit_only():
    """One place imports numba for tracking's kernels (the rest ask a LazyJit)."""
    folder = Path(camtrack.__file__).parent / "tracking"
    own = [p.name for p in folder.glob("*.py") if "import numba" in p.read_text()]
    assert own == []
