"""The sparse and sliding medians' kernels through :class:`camtrack._jit.LazyJit`: helpers
borrowed from another module's LazyJit are bound compiled, and a kernel is off while
the one it borrows from is."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from camtrack import _select
from camtrack._jit import LazyJit
from camtrack.background import _slidehist, _sparseclean, _sparsecount, sparse_median

pytest.importorskip("numba")

FIELDS = ("images", "offsets", "frame_index", "centers", "dropped")


def _stack():
    rng = np.random.default_rng(4)
    stack = 500 + rng.poisson(40, (60, 20, 24))
    stack[30:40, 5:12, 6:14] += 300  # an object: cleansing drops its image
    return stack.astype(np.uint16)


def test_borrowed_helpers_are_bound_compiled():
    assert _sparseclean._cleanse_fns() is not None and _slidehist._kernel() is not None
    assert _sparseclean._rank_pair is _sparsecount._rank_pair
    assert _slidehist._load_block is _select._load_block
    for helper in (_sparseclean._rank_pair, _slidehist._load_block):
        assert hasattr(helper, "py_func"), helper  # a numba dispatcher


def test_kernels_are_off_with_the_kernels_they_borrow_from(monkeypatch):
    """_select's kernels switched off turn off the sparse median's and the sliding
    median's (without remembering it); the numpy paths give the same result."""
    stack = _stack()
    ref = sparse_median(stack, window=10, frac_cleansing=0.6)
    assert ref.dropped.size == 1
    with monkeypatch.context() as mp:
        mp.setattr(_select._kernels, "compiled", False)
        assert _sparsecount._kernel() is None and _sparsecount._offsets_fn() is None
        assert _sparseclean._cleanse_fns() is None and _slidehist._kernel() is None
        assert not _sparsecount.use_bisection(stack) and not _slidehist.use_sliding(stack)
        res = sparse_median(stack, window=10, frac_cleansing=0.6)
        for name in FIELDS:
            np.testing.assert_array_equal(getattr(res, name), getattr(ref, name), err_msg=name)
    assert _sparsecount._kernel() is not None and _sparseclean._cleanse_fns() is not None
    assert _slidehist._kernel() is not None


def test_the_cleansing_is_off_with_the_offsets_kernel(monkeypatch):
    stack = _stack()
    ref = sparse_median(stack, window=10, frac_cleansing=0.6)
    with monkeypatch.context() as mp:
        mp.setattr(_sparsecount._offsets_jit, "compiled", False)
        assert _sparseclean._cleanse_fns() is None and _sparsecount._offsets_fn() is None
        assert _sparsecount._kernel() is not None  # the window medians stay compiled
        res = sparse_median(stack, window=10, frac_cleansing=0.6)
        for name in FIELDS:
            np.testing.assert_array_equal(getattr(res, name), getattr(ref, name), err_msg=name)
    assert _sparseclean._cleanse_fns() is not None


def _module(monkeypatch, name: str, source: str) -> types.ModuleType:
    mod = types.ModuleType(name)
    monkeypatch.setitem(sys.modules, name, mod)
    exec(compile(source, f"<{name}>", "exec"), mod.__dict__)
    return mod


def test_lazyjit_borrow_binds_the_named_helpers_only(monkeypatch):
    lender = _module(
        monkeypatch,
        "camtrack_test_lender",
        "def _twice(x):\n    return 2 * x\n\n"
        "def _same(x):\n    return x\n\n"
        "def loop(x):\n    return _twice(x) + _same(x)\n",
    )
    borrower = _module(
        monkeypatch,
        "camtrack_test_borrower",
        "_twice = None\n\ndef use(x):\n    return _twice(x) + 1\n",
    )
    lent = LazyJit(lender.loop, helpers=(lender._twice, lender._same))
    jit = LazyJit(borrower.use, borrow=(lent,))
    assert jit()(3) == 7 and lent()(3) == 9
    assert borrower._twice is lender._twice and hasattr(borrower._twice, "py_func")
    assert not hasattr(borrower, "_same")
    lent.compiled = False  # the lender switched off: so is the borrower, for now
    assert jit() is None
    lent.compiled = None
    assert jit()(3) == 7
