"""Gain, background and tracking on a dask.distributed cluster of two worker processes.

Each engine call on a lazy file (TIFF and HDF5 read by camtrack.io, chunked by frames)
must give the local result and run its tasks on the workers; the scheduler is picked
in one place (camtrack._parallel.scheduler_target): explicit ``scheduler=`` > active
client > ``DASK_SCHEDULER_ADDRESS`` > local threads.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import tifffile

from camtrack import _parallel
from camtrack import background as bg
from camtrack.gain import calibrate_pixels, estimate_gain
from camtrack.io import open_hdf5, open_tiff
from camtrack.simulate import Camera, bead_field, camera_stack, dark_stack
from camtrack.tracking import track_beads

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    # Worker processes: the graphs (readers included) must pickle; one thread each.
    with distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    ) as lc:
        yield lc


@pytest.fixture(scope="module")
def client(cluster):
    # Not the default client: each test says how it reaches the cluster.
    with distributed.Client(cluster, set_as_default=False) as c:
        c.get_task_stream()  # installs the scheduler's task-stream record (no dashboard here)
        yield c


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A lit static scene as TIFF, a dark stack as HDF5, both read lazily by frames."""
    d = tmp_path_factory.mktemp("lazy")
    stack, _ = camera_stack(80, (64, 64), camera={"e_per_adu": 0.5}, rng=0)
    dark, _ = dark_stack(40, shape=(64, 64), rng=1)
    tifffile.imwrite(d / "lit.tif", stack)
    with h5py.File(d / "dark.h5", "w") as f:
        f.create_dataset("data", data=dark, chunks=(8, 64, 64))
    lit = open_tiff(d / "lit.tif", chunks=16)[0][0]
    dark_lazy = open_hdf5(d / "dark.h5", chunks=8)[0][0]
    assert len(lit.chunks[0]) > 1 and len(lit.chunks[1]) == 1  # chunked by frames only
    return lit, dark_lazy, stack, dark


def _ran_on_workers(client, cluster, start: float, name: str) -> set[str]:
    """Workers that ran tasks whose key contains ``name`` since ``start``."""
    stream = client.get_task_stream(start=start)
    workers = {t["worker"] for t in stream if name in str(t["key"])}
    assert workers <= set(cluster.scheduler_info["workers"])
    return workers


def _now(client) -> float:
    return client.run_on_scheduler(lambda: __import__("time").time())


@pytest.mark.parametrize("method", ["meanvar", "median", "robust"])
def test_estimate_gain_on_the_cluster_equals_local(client, cluster, files, method):
    lit, dark_lazy, _, _ = files
    start = _now(client)
    remote = estimate_gain(lit, dark=dark_lazy, method=method, scheduler=client)
    local = estimate_gain(lit, dark=dark_lazy, method=method, scheduler="threads")
    assert remote.e_per_adu == pytest.approx(local.e_per_adu, rel=1e-12)
    np.testing.assert_allclose(remote.gain_map, local.gain_map, rtol=1e-12)
    assert _ran_on_workers(client, cluster, start, "camtrack-gain" if method != "robust" else "kernel")  # fmt: skip


def test_calibrate_pixels_on_the_cluster_equals_local(client, cluster, tmp_path):
    cam = Camera(shape=(32, 32), gain_spread=0.02, rng=0)
    dark, _ = dark_stack(40, camera=cam, rng=1)
    paths = []
    for i, s in enumerate((200, 800)):
        paths.append(tmp_path / f"level{i}.tif")
        tifffile.imwrite(paths[-1], camera_stack(40, camera=cam, signal_e=s, rng=i)[0])
    levels = [open_tiff(p, chunks=8)[0][0] for p in paths]
    start = _now(client)
    remote = calibrate_pixels(levels, dark, scheduler=client)
    local = calibrate_pixels(levels, dark, scheduler="sync")
    np.testing.assert_allclose(remote.e_per_adu_map, local.e_per_adu_map, rtol=1e-12)
    assert _ran_on_workers(client, cluster, start, "camtrack-gain-block")


def test_temporal_median_of_a_frame_chunked_file_spreads_over_the_workers(client, cluster, files):  # fmt: skip
    lit, _, stack, _ = files
    expected = np.median(stack, axis=0)
    lazy = bg.temporal_median(lit, scheduler=client)
    tasks = lazy.__dask_graph__()
    # Not one spill task: a rechunk to full-time tiles, then one task per tile.
    assert not any("_spill_task" in str(k) for k in tasks)
    start = _now(client)
    np.testing.assert_allclose(client.compute(lazy).result(), expected)
    assert _ran_on_workers(client, cluster, start, "rechunk")
    # The local graph is still the spill (one task, bounded memory in this process).
    np.testing.assert_allclose(bg.temporal_median(lit).compute(), expected)


def test_rolling_and_sparse_median_on_the_cluster(client, cluster, files):
    lit, _, stack, _ = files
    start = _now(client)
    remote = client.compute(bg.rolling_median(lit, 9, scheduler=client)).result()
    np.testing.assert_array_equal(remote, bg.rolling_median(stack, 9))
    sparse = bg.sparse_median(lit, window=40, offset_correction=False, scheduler=client)
    np.testing.assert_allclose(
        sparse.images, bg.sparse_median(stack, window=40, offset_correction=False).images
    )
    assert _ran_on_workers(client, cluster, start, "")


def test_track_beads_on_the_cluster_equals_local_threads(client, cluster, tmp_path):
    stack, truth = bead_field(32, shape=(96, 96), n_beads=2, rng=0)
    tifffile.imwrite(tmp_path / "beads.tif", stack)
    lazy = open_tiff(tmp_path / "beads.tif", chunks=8)[0][0]
    start_xy = list(zip(truth.x[0], truth.y[0], strict=True))
    start = _now(client)
    remote = track_beads(lazy, start_xy, roi_size=32, frame_chunk=8, scheduler=client)
    local = track_beads(lazy, start_xy, roi_size=32, frame_chunk=8, scheduler="threads")
    np.testing.assert_allclose(remote.x, local.x, rtol=0, atol=1e-12)
    assert _ran_on_workers(client, cluster, start, "track_block")
    # An active client is used without naming it, as gain and background do.
    with client.as_current():
        start = _now(client)
        current = track_beads(lazy, start_xy, roi_size=32, frame_chunk=8)
    np.testing.assert_allclose(current.x, local.x, rtol=0, atol=1e-12)
    assert _ran_on_workers(client, cluster, start, "track_block")


def test_an_address_and_the_environment_route_to_the_cluster(client, cluster, files, monkeypatch):  # fmt: skip
    lit, _, _, _ = files
    local = estimate_gain(lit, method="meanvar", scheduler="threads").e_per_adu
    start = _now(client)
    by_address = estimate_gain(lit, method="meanvar", scheduler=cluster.scheduler_address)
    assert by_address.e_per_adu == pytest.approx(local, rel=1e-12)
    assert _ran_on_workers(client, cluster, start, "camtrack-gain-block")

    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cluster.scheduler_address)
    assert _parallel.is_distributed()
    start = _now(client)
    from_env = bg.temporal_median(lit)  # None: the environment's scheduler
    assert not any("_spill_task" in str(k) for k in from_env.__dask_graph__())
    steps: list[int] = []

    def progress(it, total=None):
        for item in it:
            steps.append(item)
            yield item

    by_env = estimate_gain(lit, method="meanvar", progress=progress)
    assert by_env.e_per_adu == pytest.approx(local, rel=1e-12)
    assert steps and steps[-1] == len(steps)  # one step per finished block task
    assert _ran_on_workers(client, cluster, start, "camtrack-gain-block")

    # An explicit local scheduler wins over the environment.
    start = _now(client)
    estimate_gain(lit, method="meanvar", scheduler="sync")
    assert not _ran_on_workers(client, cluster, start, "camtrack-gain-block")


def test_an_active_client_is_used_and_local_names_win(client, cluster, files):
    lit, _, _, _ = files
    assert not _parallel.is_distributed()
    with client.as_current():
        assert _parallel.is_distributed()
        with _parallel.scheduler_target() as target:
            assert target.client is client
        with _parallel.scheduler_target("threads") as target:
            assert not target.distributed
        start = _now(client)
        estimate_gain(lit, method="meanvar")
        assert _ran_on_workers(client, cluster, start, "camtrack-gain-block")


def test_a_progress_that_raises_stops_the_cluster_compute(client, files):
    lit, _, _, _ = files

    class Stop(Exception):
        pass

    def cancel(it, total=None):  # a Cancel at the first finished task
        for _ in it:
            raise Stop
        yield  # pragma: no cover - a generator

    with pytest.raises(Stop):
        estimate_gain(lit, method="meanvar", progress=cancel, scheduler=client)
    with pytest.raises(Stop):
        _parallel.compute(bg.temporal_median(lit, scheduler=client), progress=cancel, scheduler=client)  # fmt: skip


def test_a_bad_scheduler_is_a_type_error():
    with pytest.raises(TypeError, match="scheduler"):
        estimate_gain(np.zeros((30, 8, 8)), scheduler=3)
    with pytest.raises(TypeError, match="scheduler"):
        bg.temporal_median(np.zeros((3, 8, 8)), scheduler=object())
