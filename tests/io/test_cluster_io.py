"""Scheduler helpers, and reader graphs running on dask.distributed worker processes."""

from __future__ import annotations

import sys

import dask.array as da
import h5py
import numpy as np
import pytest
import tifffile

from camtrack import io


def test_local_by_default(monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    assert io.get_client() is None
    assert io.get_client("threads") is None
    x = da.arange(10, chunks=3)
    assert io.compute(x.sum()) == 45
    total, biggest = io.compute(x.sum(), x.max(), scheduler="synchronous")
    assert (total, biggest) == (45, 9)


def test_missing_distributed_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails like uninstalled
    with pytest.raises(ImportError, match=r"napari-camtrack\[cluster\]"):
        io.get_client("tcp://127.0.0.1:8786")
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://127.0.0.1:8786")
    with pytest.raises(ImportError, match="cluster"):
        io.compute(da.ones(3).sum())


def test_bad_scheduler_type():
    with pytest.raises(TypeError, match="`scheduler` must be"):
        io.get_client(8786)


@pytest.mark.slow
def test_mean_over_frames_on_worker_processes(tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")
    rng = np.random.default_rng(7)
    data = rng.integers(0, 4000, (40, 32, 48), dtype=np.uint16)
    tif, packed, h5 = tmp_path / "s.tif", tmp_path / "z.tif", tmp_path / "s.h5"
    tifffile.imwrite(tif, data)
    tifffile.imwrite(packed, data, compression="zlib")
    with h5py.File(h5, "w") as f:
        f.create_dataset("events/image", data=data, chunks=(5, 32, 48))
    expected = data.mean(axis=0)
    means = [io.open_stack(p, chunks=6)[0].mean(axis=0) for p in (tif, packed, h5)]

    with (
        distributed.LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        # an existing client, the address string, and the environment variable
        for mean in io.compute(*means, scheduler=client):
            np.testing.assert_allclose(mean, expected, rtol=1e-12)
        by_address = io.compute(means[2], scheduler=cluster.scheduler_address)
        monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cluster.scheduler_address)
        by_env = io.compute(means[0])
        # the chunks were read in the worker processes, by our unpickled proxies
        readers = ("camtrack.io._tiff", "camtrack.io._hdf5")
        loaded = client.run(lambda: sorted(m for m in readers if m in sys.modules))
        assert len(loaded) == 2 and any(loaded.values()), loaded
    np.testing.assert_allclose(by_address, expected, rtol=1e-12)
    np.testing.assert_allclose(by_env, expected, rtol=1e-12)
