"""Shared fixtures for the reader tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def proxies() -> Callable:
    """Function giving the file proxies (TiffFrames / H5Dataset) in a dask array's graph."""
    from camtrack.io._hdf5 import H5Dataset
    from camtrack.io._tiff import TiffFrames

    def find(arr) -> list:
        graph = dict(arr.__dask_graph__())
        return [v for v in graph.values() if isinstance(v, TiffFrames | H5Dataset)]

    return find
