"""A stand-in for cupy that runs on the CPU and refuses host/device mixing as cupy does.

``FakeDevice`` arrays wrap a numpy array and behave like cupy arrays where camtrack's
code can tell: numpy's ufuncs and functions dispatch to them (``__array_ufunc__`` /
``__array_function__``) but raise ``TypeError`` when a plain numpy array takes part,
an implicit host conversion (``numpy.asarray(x)``, ``numpy.array(x)``) raises
``TypeError`` as cupy's ``__array__`` does, and ``x.get()`` is the explicit copy to
the host. Python and numpy scalars mix freely, ``float(x)`` of a one-element array
works, and ``xp.asarray(host)`` / ``x[...] = host`` copy host data in (all as cupy).

:func:`install` puts the module in ``sys.modules`` as ``cupy`` (and ``cupyx.scipy.
ndimage`` / ``cupyx.scipy.fft`` as wrappers of scipy's), so ``camtrack._backend`` routes these
arrays down its real GPU paths without any hook in the package. Use it through the
``fakecupy`` fixture (tests/conftest.py), which removes it again after the test.
"""

from __future__ import annotations

import sys
import types
from typing import Any

import numpy as np
import scipy.fft
import scipy.ndimage
from numpy.lib.mixins import NDArrayOperatorsMixin

_MSG = (
    "Implicit conversion to a NumPy array is not allowed (fake cupy). Please use "
    "`.get()` to construct a NumPy array explicitly."
)


def _mixing(what: str, value: Any) -> TypeError:
    return TypeError(f"{what}: unsupported type {type(value).__module__}.{type(value).__name__} mixed with a device array (fake cupy)")  # fmt: skip


def _unwrap(value: Any, what: str, *, host_ok: bool = False) -> Any:
    """Device arrays -> their numpy data; a numpy array raises unless ``host_ok``."""
    if isinstance(value, ndarray):
        return value._a
    if isinstance(value, np.ndarray) and not host_ok:
        raise _mixing(what, value)
    if isinstance(value, list | tuple):
        return type(value)(_unwrap(v, what, host_ok=host_ok) for v in value)
    if isinstance(value, dict):
        return {k: _unwrap(v, what, host_ok=host_ok) for k, v in value.items()}
    return value


def _wrap(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return ndarray(value)
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


class ndarray(NDArrayOperatorsMixin):  # the name cupy uses
    """A device array double over a numpy array (see the module docstring)."""

    __slots__ = ("_a",)

    def __init__(self, data: np.ndarray) -> None:
        self._a = data

    # -- what cupy refuses: implicit host conversion
    def __array__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise TypeError(_MSG)

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        args = _unwrap(inputs, f"numpy.{ufunc.__name__}")
        if "out" in kwargs:
            kwargs["out"] = _unwrap(kwargs["out"], f"numpy.{ufunc.__name__}(out=)")
        return _wrap(getattr(ufunc, method)(*args, **kwargs))

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        name = f"numpy.{func.__name__}"
        return _wrap(func(*_unwrap(args, name), **_unwrap(kwargs, name)))

    # -- what cupy allows: explicit copies, scalars, host data copied in
    def get(self) -> np.ndarray:
        return self._a.copy()

    def __float__(self) -> float:
        return float(self._a)

    def __int__(self) -> int:
        return int(self._a)

    def __index__(self) -> int:
        return self._a.__index__()

    def __bool__(self) -> bool:
        return bool(self._a)

    def __len__(self) -> int:
        return len(self._a)

    def __iter__(self) -> Any:
        return (_wrap(v) if isinstance(v, np.ndarray) else ndarray(np.asarray(v)) for v in self._a)  # fmt: skip

    def __getitem__(self, key: Any) -> Any:
        out = self._a[_unwrap(key, "indexing", host_ok=True)]
        return ndarray(out) if isinstance(out, np.ndarray) else ndarray(np.asarray(out))

    def __setitem__(self, key: Any, value: Any) -> None:
        self._a[_unwrap(key, "indexing", host_ok=True)] = _unwrap(value, "setitem", host_ok=True)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "_a":
            object.__setattr__(self, name, value)
        else:  # x.real = ..., x.imag = ...
            setattr(self._a, name, _unwrap(value, f"ndarray.{name} ="))

    def __repr__(self) -> str:
        return f"fakecupy.{self._a!r}"

    # -- everything else: numpy's attribute, device arrays in and out
    @property
    def T(self) -> ndarray:  # numpy's name
        return ndarray(self._a.T)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # __array_interface__ & co would hand numpy the data
            raise AttributeError(name)
        attr = getattr(self._a, name)
        if not callable(attr):
            return _wrap(attr)

        def method(*args: Any, **kwargs: Any) -> Any:
            what = f"ndarray.{name}"
            out = attr(*_unwrap(args, what), **_unwrap(kwargs, what))
            if isinstance(out, np.generic) and name not in ("item", "tolist"):
                return ndarray(np.asarray(out))  # cupy reductions return 0-d arrays
            return _wrap(out)

        return method

    def __dask_tokenize__(self) -> Any:
        return ("fakecupy", self._a.shape, self._a.dtype.str, self._a.tobytes())


def _host_in(func: Any) -> Any:
    """cupy.asarray & co: explicit host -> device copies."""

    def f(a: Any, *args: Any, **kwargs: Any) -> ndarray:
        return ndarray(np.array(_unwrap(a, func.__name__, host_ok=True), *args, copy=True, **kwargs))  # fmt: skip

    return f


class _Module(types.ModuleType):
    """numpy's namespace on device arrays: numpy arrays as arguments are refused."""

    def __init__(self, name: str, base: Any) -> None:
        super().__init__(name)
        self._base = base

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._base, name)
        if not callable(attr) or isinstance(attr, type):
            return attr  # dtypes, constants, classes (np.float64, np.nan, np.errstate)

        def func(*args: Any, **kwargs: Any) -> Any:
            what = f"{self.__name__}.{name}"
            return _wrap(attr(*_unwrap(args, what), **_unwrap(kwargs, what)))

        func.__name__ = name
        return func


def make() -> tuple[types.ModuleType, types.ModuleType, types.ModuleType]:
    """(cupy, cupyx.scipy.ndimage, cupyx.scipy.fft) doubles."""
    cp = _Module("cupy", np)
    cp.ndarray = ndarray
    cp.is_available = lambda: True
    cp.asarray = _host_in(np.asarray)
    cp.array = _host_in(np.array)
    cp.asnumpy = lambda a: a.get() if isinstance(a, ndarray) else np.asarray(a)
    cp.get_array_module = lambda *a: cp if any(isinstance(x, ndarray) for x in a) else np
    ndi = _Module("cupyx.scipy.ndimage", scipy.ndimage)
    fft = _Module("cupyx.scipy.fft", scipy.fft)
    return cp, ndi, fft


def install(monkeypatch: Any) -> types.ModuleType:
    """Register the doubles as ``cupy`` and ``cupyx.scipy.ndimage`` for one test."""
    cp, ndi, fft = make()
    cupyx = types.ModuleType("cupyx")
    cupyx_scipy = types.ModuleType("cupyx.scipy")
    cupyx_scipy.__path__ = []  # a package, so `import cupyx.scipy.fft` finds its modules
    cupyx.__path__ = []
    cupyx.scipy = cupyx_scipy
    cupyx_scipy.ndimage = ndi
    cupyx_scipy.fft = fft
    mods = {"cupy": cp, "cupyx": cupyx, "cupyx.scipy": cupyx_scipy, "cupyx.scipy.ndimage": ndi, "cupyx.scipy.fft": fft}  # fmt: skip
    for name, mod in mods.items():
        monkeypatch.setitem(sys.modules, name, mod)
    return cp
