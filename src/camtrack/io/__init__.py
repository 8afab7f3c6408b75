"""Lazy readers (TIFF, HDF5 -> dask) and atomic result writers (HDF5, JSON, CSV).

Readers return ``(dask_array, LayerInfo)`` items: arrays are (frames..., rows, cols),
read only when a chunk is computed, and picklable (every task reopens the file), so
they run unchanged on dask.distributed workers. ``LayerInfo`` carries provenance and
pixel size; ``info.to_layer_kwargs()`` gives the napari image-layer arguments.
``info.key`` names each stack of a file the same way everywhere (``'ch1'``,
``'s1 ch0'``, ``'pages'``, ``'/events/image'``, ``'/data[0]'``): ``open_stack(path,
item=key)``, ``camtrack gain/track --dataset KEY``, listed by ``camtrack info``.
Writers write a temporary file next to the target and rename it into place.
This package never imports napari or Qt.
"""

from camtrack._writers import atomic_path, write_csv, write_hdf5, write_json
from camtrack.io._cluster import LOCAL_SCHEDULERS, compute, get_client
from camtrack.io._dispatch import can_read, open_stack, read_layers
from camtrack.io._hdf5 import open_hdf5
from camtrack.io._tiff import open_tiff
from camtrack.io._types import CorruptFileError, LayerInfo

__all__ = [
    "LOCAL_SCHEDULERS",
    "CorruptFileError",
    "LayerInfo",
    "atomic_path",
    "can_read",
    "compute",
    "get_client",
    "open_hdf5",
    "open_stack",
    "open_tiff",
    "read_layers",
    "write_csv",
    "write_hdf5",
    "write_json",
]
