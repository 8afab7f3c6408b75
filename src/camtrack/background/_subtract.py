"""Background subtraction into a signed float stack."""

from __future__ import annotations

from typing import Any

import numpy as np

from camtrack import _backend
from camtrack._outofcore import work_dtype
from camtrack._validation import check_stack

__all__ = ["subtract"]


def subtract(stack: Any, background: Any, *, offsets: Any = None, clip: bool = False) -> Any:
    """``stack - (background + offsets)`` as a signed float stack.

    Parameters
    ----------
    stack : array, shape (T, Y, X)
        numpy, cupy or dask; any integer or float dtype. Not modified.
    background : array, shape (Y, X) or (T, Y, X)
        One background image for all frames or one per frame (e.g. the output of
        :func:`temporal_median`, :func:`rolling_median`, ``spatial_mean(...).background``
        or ``sparse_median(...).expand()``).
    offsets : array, shape (T,), optional
        Per-frame offsets added to the background (e.g. ``SparseMedianResult.offsets``).
    clip : bool
        Set negative results to 0 (keeps the float dtype).

    Returns
    -------
    array, shape (T, Y, X)
        float32 (float64 when any input is float64 or a 32/64-bit integer), so
        uint16 data below the background give negative values instead of wrapping.
        Lazy for dask input (either operand).

    Examples
    --------
    >>> import numpy as np
    >>> stack = np.array([[[5, 10]]], dtype=np.uint16)
    >>> subtract(stack, np.array([[7.0, 7.0]], dtype=np.float32))
    array([[[-2.,  3.]]], dtype=float32)
    """
    check_stack(stack)
    shape = tuple(int(s) for s in stack.shape)
    bshape = tuple(int(s) for s in getattr(background, "shape", ()))
    if getattr(background, "dtype", None) is None:
        raise TypeError(
            f"`background` must be an array of shape {shape[1:]} or {shape}; got "
            f"{type(background).__name__}."
        )
    if bshape not in (shape[1:], shape):
        raise ValueError(
            f"`background` must have shape {shape[1:]} (one image) or {shape} (one per "
            f"frame) to match `stack`; got {bshape}."
        )
    if offsets is not None:
        oshape = tuple(int(s) for s in getattr(offsets, "shape", np.shape(offsets)))
        if oshape != shape[:1]:
            raise ValueError(
                f"`offsets` must have shape ({shape[0]},), one per frame; got {oshape}."
            )
    _backend.namespace(stack, background, offsets)  # TypeError for numpy mixed with cupy
    dtype = np.result_type(
        work_dtype(stack.dtype),
        work_dtype(background.dtype),
        *(() if offsets is None else (work_dtype(offsets.dtype),)),
    )
    lazy = _backend.is_dask(stack) or _backend.is_dask(background) or _backend.is_dask(offsets)
    if lazy:
        import dask.array as da

        stack, background = da.asarray(stack), da.asarray(background)
        offsets = None if offsets is None else da.asarray(offsets)
    if lazy:
        out = stack.astype(dtype) - background.astype(dtype)
        if offsets is not None:
            out = out - offsets.astype(dtype)[:, None, None]
        return da.maximum(out, 0) if clip else out
    xp, _ = _backend.namespace(stack)
    out = stack.astype(dtype)  # a copy: the input is never modified
    out -= background.astype(dtype, copy=False)
    if offsets is not None:
        out -= xp.asarray(offsets).astype(dtype, copy=False)[:, None, None]
    if clip:
        xp.maximum(out, 0, out=out)
    return out
