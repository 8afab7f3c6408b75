"""Safe saves under concurrency and kills (issue 14, items 2-4), with real processes.

Every race and kill here runs in separate Python processes: two runs of camtrack that
write the same output, or a run killed with SIGKILL in the middle of a save or with a
spill folder open, and then the next start.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import dask.array as da
import h5py
import numpy as np
import pytest

from camtrack import io

posix_only = pytest.mark.skipif(os.name != "posix", reason="SIGKILL and flock are POSIX")


def _start(script: str, *args: object, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def _wait_for(proc: subprocess.Popen, word: str, timeout: float = 60.0) -> None:
    """Block until the child prints ``word`` (it then sits at the point to test)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if word in line:
            return
        if not line and proc.poll() is not None:
            raise AssertionError(f"child exited {proc.returncode}: {proc.stderr.read()}")
    raise AssertionError(f"child never printed {word!r}")


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    proc.stdout.close()
    proc.stderr.close()


def _race(script: str, n: int, out, go, timeout: float = 120.0) -> list[int]:
    """Start ``n`` children, release them together, return their exit codes."""
    procs = [_start(script, out, go, i) for i in range(n)]
    try:
        for p in procs:
            _wait_for(p, "ready")
        go.touch()
        codes = []
        for p in procs:
            p.wait(timeout)
            err = p.stderr.read()
            assert p.returncode in (0, 3), err
            codes.append(p.returncode)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
            p.stdout.close()
            p.stderr.close()
    return codes


def _hidden(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# -- item 2: refuse-unless-overwrite holds between processes ----------------------

RACE_CSV = """
    import sys, time, pathlib
    import numpy as np
    from camtrack import io
    out, go, i = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), int(sys.argv[3])
    table = {"run": np.full(20000, i), "x": np.arange(20000) * 0.5}
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.0005)
    try:
        io.write_csv(out, table)
    except FileExistsError:
        sys.exit(3)
    print("wrote", i)
"""


@posix_only
def test_concurrent_write_csv_exactly_one_wins(tmp_path):
    out = tmp_path / "tracks.csv"
    codes = _race(RACE_CSV, 5, out, tmp_path / "go")
    assert codes.count(0) == 1, f"{codes.count(0)} of 5 runs reported writing {out.name}"
    winner = codes.index(0)
    runs = np.loadtxt(out, delimiter=",", skiprows=1)[:, 0]
    assert runs.size == 20000 and (runs == winner).all()
    assert _hidden(tmp_path) == []


STALL_GAIN = """
    import os, pickle, sys, time, pathlib
    import numpy as np
    from camtrack.gain._result import replace
    pkl, out, go = map(pathlib.Path, sys.argv[1:4])
    stall_on, value, overwrite = sys.argv[4], float(sys.argv[5]), sys.argv[6] == "1"
    big = np.full((256, 256), value, np.float32)
    res = replace(pickle.loads(pkl.read_bytes()), e_per_adu=value, mean=big, var=big, gain_map=big)

    def stall(fn):  # hold this run just before it puts `stall_on` in place
        def wrapped(src, dst, *args, **kwargs):
            if stall_on and os.fspath(dst).endswith(os.sep + stall_on):
                print("stalled", flush=True)
                while not go.exists():
                    time.sleep(0.01)
            return fn(src, dst, *args, **kwargs)
        return wrapped

    os.link, os.replace, os.rename = stall(os.link), stall(os.replace), stall(os.rename)
    try:
        res.save(out, overwrite=overwrite)
    except FileExistsError:
        sys.exit(3)
"""


def _pair(folder) -> tuple[float, float]:
    """e_per_adu in the JSON and in its maps file."""
    info = json.loads((folder / "gain.json").read_text())
    with h5py.File(folder / "gain.h5") as f:
        assert (f["mean_adu"][()] == f.attrs["e_per_adu"]).all()
        return info["e_per_adu"], float(f.attrs["e_per_adu"])


@pytest.fixture(scope="module")
def result_pickle(tmp_path_factory, gain_result):
    import pickle

    path = tmp_path_factory.mktemp("pickled") / "result.pkl"
    path.write_bytes(pickle.dumps(gain_result))
    return path


def _interleave(pickle_path, folder, stall_on: str, overwrite: int) -> list[int]:
    """Run 1 stalls just before putting ``stall_on`` in place (its checks passed);
    run 2 saves meanwhile (or waits, if run 1 holds the commit); then run 1 goes on.
    Returns both exit codes (0 saved, 3 refused)."""
    out, go = folder / "gain.json", folder.parent / f"{folder.name}-go"
    procs = [_start(STALL_GAIN, pickle_path, out, go, stall_on, 1.0, overwrite)]
    try:
        _wait_for(procs[0], "stalled")
        procs.append(_start(STALL_GAIN, pickle_path, out, go, "", 2.0, overwrite))
        with contextlib.suppress(subprocess.TimeoutExpired):
            procs[1].wait(6)  # it finishes, or waits for run 1's commit to end
        go.touch()
        codes = [p.wait(60) for p in procs]
        for p, code in zip(procs, codes, strict=True):
            assert code in (0, 3), p.stderr.read()
        return codes
    finally:
        for p in procs:
            _kill(p)


@posix_only
def test_a_run_overtaking_a_checked_save_leaves_one_matching_pair(tmp_path, result_pickle):
    """Run 1 has passed every check and is about to put its maps in place when run 2
    saves: exactly one of them may report success, and the pair on disk is its own."""
    codes = _interleave(result_pickle, tmp_path, "gain.h5", 0)
    assert sorted(codes) == [0, 3], f"exit codes {codes}: both runs reported saving"
    winner = codes.index(0) + 1.0
    assert _pair(tmp_path) == (winner, winner)
    assert _hidden(tmp_path) == []


@posix_only
def test_concurrent_overwrites_leave_a_matching_pair(tmp_path, result_pickle):
    """Run 1 (overwrite) has put its maps in place and is about to write its JSON when
    run 2 (overwrite) saves: the final JSON and maps come from one run."""
    assert _interleave(result_pickle, tmp_path, "gain.json", 1) == [0, 0]
    json_value, maps_value = _pair(tmp_path)
    assert json_value == maps_value

    from camtrack.gain._result_io import load_result

    assert load_result(tmp_path / "gain.json")["e_per_adu"] == json_value
    assert _hidden(tmp_path) == []


# -- item 3: the JSON and its maps are one unit -----------------------------------


@pytest.fixture(scope="module")
def gain_result():
    from camtrack.gain import estimate_gain
    from camtrack.simulate import camera_stack

    stack, _ = camera_stack(50, (64, 64), rng=0)
    return estimate_gain(stack)


def test_existing_json_refuses_before_any_maps_are_written(tmp_path, gain_result):
    (tmp_path / "gain.json").write_text("{}")
    with pytest.raises(FileExistsError, match=r"gain\.json"):
        gain_result.save(tmp_path / "gain.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gain.json"]


def test_existing_maps_refuse_and_keep_the_json_away(tmp_path, gain_result):
    (tmp_path / "gain.h5").write_bytes(b"old")
    with pytest.raises(FileExistsError, match=r"gain\.h5"):
        gain_result.save(tmp_path / "gain.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gain.h5"]


def test_load_checks_the_maps_belong_to_the_json(tmp_path, gain_result):
    from camtrack.gain._result import replace
    from camtrack.gain._result_io import load_result

    json_a, h5_a = gain_result.save(tmp_path / "a.json")
    loaded = load_result(json_a)
    assert loaded["e_per_adu"] == gain_result.e_per_adu
    np.testing.assert_array_equal(
        loaded["maps"]["mean_adu"], np.asarray(gain_result.mean, dtype=np.float32)
    )
    assert loaded["maps_sha256"] and loaded["maps_file"] == "a.h5"
    other = replace(gain_result, mean=np.asarray(gain_result.mean) + 1)
    _, h5_b = other.save(tmp_path / "b.json")
    os.replace(h5_b, h5_a)  # a maps file from another save
    with pytest.raises(ValueError, match=r"a.h5' does not belong to .*a.json'"):
        load_result(json_a)
    h5_a.unlink()
    with pytest.raises(FileNotFoundError, match=r"maps file .* is missing"):
        type(gain_result).load(json_a)


KILL_GAIN = """
    import os, sys, time, pathlib
    from camtrack.gain import estimate_gain
    from camtrack.simulate import camera_stack
    out, overwrite = pathlib.Path(sys.argv[1]), sys.argv[2] == "1"
    stack, _ = camera_stack(50, (64, 64), rng=1)
    res = estimate_gain(stack)

    def stall(fn):  # the moment between committing the maps and the JSON
        def wrapped(src, dst, *args, **kwargs):
            if os.fspath(dst).endswith(out.name):
                print("committing", flush=True)
                time.sleep(600)
            return fn(src, dst, *args, **kwargs)
        return wrapped

    os.link, os.replace, os.rename = stall(os.link), stall(os.replace), stall(os.rename)
    res.save(out, overwrite=overwrite)
"""


@posix_only
def test_kill_between_maps_and_json_then_the_rerun_succeeds(tmp_path, gain_result):
    from camtrack.gain._result_io import load_result

    out = tmp_path / "gain.json"
    child = _start(KILL_GAIN, out, 0)
    _wait_for(child, "committing")
    _kill(child)
    assert not out.exists()
    # The rerun is not refused by the maps the killed run left: it completes.
    json_path, _ = gain_result.save(out)
    assert load_result(json_path)["e_per_adu"] == gain_result.e_per_adu
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gain.h5", "gain.json"]


@posix_only
def test_kill_while_overwriting_a_pair_is_detected_on_load(tmp_path, gain_result):
    from camtrack.gain._result_io import load_result

    out = tmp_path / "gain.json"
    gain_result.save(out)
    child = _start(KILL_GAIN, out, 1)
    _wait_for(child, "committing")
    _kill(child)
    # new maps beside the old JSON: never silently used
    with pytest.raises(ValueError, match="does not belong"):
        load_result(out)
    gain_result.save(out, overwrite=True)
    assert load_result(out)["e_per_adu"] == gain_result.e_per_adu
    assert _hidden(tmp_path) == []  # the killed run's temporaries were reclaimed


# -- item 4: what a kill leaves is recognisable and reclaimed ---------------------

KILL_WRITE = """
    import sys, time, pathlib
    from camtrack import io
    out = pathlib.Path(sys.argv[1])
    with io.atomic_path(out) as tmp:
        tmp.write_bytes(b"x" * 100000)
        print("writing", flush=True)
        time.sleep(600)
"""


@posix_only
def test_killed_write_leaves_a_named_temporary_that_the_next_write_removes(tmp_path):
    out = tmp_path / "tracks.csv"
    child = _start(KILL_WRITE, out)
    _wait_for(child, "writing")
    _kill(child)
    [left] = _hidden(tmp_path)
    assert left.startswith(".tracks.csv.camtrack-tmp-") and left.endswith(".csv")
    assert f"-{child.pid}-" in left  # the owner is in the name
    assert not out.exists()
    # A live writer's temporary is left alone ...
    live = _start(KILL_WRITE, tmp_path / "live.h5")
    try:
        _wait_for(live, "writing")
        io.write_json(tmp_path / "other.json", {"a": 1})
        # ... the dead one's is gone.
        assert [n.split(".camtrack-tmp-")[0] for n in _hidden(tmp_path)] == [".live.h5"]
    finally:
        _kill(live)
    io.write_csv(out, {"a": [1]})
    assert _hidden(tmp_path) == []


SPILL = """
    import time
    import dask.array as da, numpy as np
    from camtrack._spill import BandStore
    a = da.ones((8, 16, 16), dtype=np.uint16, chunks=(4, 16, 16))
    spill = BandStore.spill([a], [(slice(0, 8), slice(None)), (slice(8, 16), slice(None))])
    print("spilled", flush=True)
    time.sleep(600)
"""


def _files_under(folder) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), folder)
                  for d, _, fs in os.walk(folder) for f in fs)  # fmt: skip


@posix_only
def test_killed_spill_is_reclaimed_at_the_next_start(tmp_path, monkeypatch):
    from camtrack._spill import BandStore

    monkeypatch.setenv("CAMTRACK_TMPDIR", str(tmp_path))
    killed = _start(SPILL, env={"CAMTRACK_TMPDIR": str(tmp_path)})
    live = _start(SPILL, env={"CAMTRACK_TMPDIR": str(tmp_path)})
    try:
        _wait_for(killed, "spilled")
        _wait_for(live, "spilled")
        _kill(killed)
        spilled = [f for f in _files_under(tmp_path) if f.endswith("array0.raw")]
        assert len(spilled) == 2
        assert all(f.startswith("camtrack-spill" + os.sep) for f in spilled)
        a = da.ones((8, 16, 16), dtype=np.uint16, chunks=(4, 16, 16))
        with BandStore.spill([a], [(slice(0, 16), slice(None))]) as spill:
            assert spill.read(0).sum() == 8 * 16 * 16
        # the dead run's folder is gone, the live run's is kept
        [kept] = [f for f in _files_under(tmp_path) if f.endswith("array0.raw")]
        assert f"-{live.pid}-" in kept
    finally:
        _kill(live)
    with BandStore.spill([a], [(slice(0, 16), slice(None))]):
        pass
    assert list(tmp_path.iterdir()) == []


def test_old_style_spill_folders_are_reclaimed_once_untouched_for_a_day(tmp_path):
    """older camtrack versions spilled to <tmp>/camtrack-spill-XXXXXXXX (mkdtemp, no owner
    lock): a day-old one is removed at the next start, a recent one is left alone."""
    from camtrack._spill import LEGACY_AGE_S, reclaim_spills

    old, recent = tmp_path / "camtrack-blocks-a1b2c3d4", tmp_path / "camtrack-spill-e5f6g7h8"
    other = tmp_path / "camtrack-spill-notours-at-all"
    for d in (old, recent, other):
        d.mkdir()
        (d / "band.raw").write_bytes(b"x" * 64)
    stale = time.time() - LEGACY_AGE_S - 60
    for p in (old / "band.raw", old, other / "band.raw", other):
        os.utime(p, (stale, stale))
    assert reclaim_spills(str(tmp_path)) == [str(old)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([other.name, recent.name])


# -- permissions and argument types ----------------------------------------------


def test_outputs_get_the_usual_permissions(tmp_path, gain_result):
    old = os.umask(0o027)
    try:
        io.write_csv(tmp_path / "t.csv", {"a": [1]})
        json_path, h5_path = gain_result.save(tmp_path / "g.json")
    finally:
        os.umask(old)
    for p in (tmp_path / "t.csv", json_path, h5_path):
        assert p.stat().st_mode & 0o777 == 0o640, p.name


def test_protect_none_and_bad_types(tmp_path):
    io.write_json(tmp_path / "a.json", {"a": 1}, protect=None)
    io.write_json(tmp_path / "b.json", {"a": 1}, protect=[None, tmp_path / "in.h5"])
    with pytest.raises(
        TypeError, match=r"`protect` must be a path, an iterable of paths or None; got int 5"
    ):
        io.write_json(tmp_path / "c.json", {}, protect=5)
    with pytest.raises(TypeError, match=r"`protect` must hold paths .* got int 3"):
        io.write_json(tmp_path / "c.json", {}, protect=[3])
    with pytest.raises(TypeError, match="`overwrite` must be True or False; got 'yes'"):
        io.write_json(tmp_path / "c.json", {}, overwrite="yes")
    assert not (tmp_path / "c.json").exists()


def test_a_folder_is_refused_with_its_name(tmp_path, gain_result):
    (tmp_path / "out.json").mkdir()
    with pytest.raises(IsADirectoryError, match=r"out\.json': it is a folder"):
        io.write_json(tmp_path / "out.json", {})
    with pytest.raises(IsADirectoryError, match="is a folder; name the result file inside it"):
        gain_result.save(tmp_path / "out.json")


def test_without_hard_links_names_are_still_claimed_exclusively(tmp_path, monkeypatch):
    """Filesystems without hard links (FAT, some shares): an O_EXCL placeholder."""
    import errno

    def no_link(src, dst):
        raise OSError(errno.EPERM, "no hard links here")

    monkeypatch.setattr(os, "link", no_link)
    out = io.write_csv(tmp_path / "t.csv", {"a": [1]})
    assert out.read_text() == "a\n1\n"
    with pytest.raises(FileExistsError, match="already exists"):
        io.write_csv(out, {"a": [2]})
    io.write_csv(out, {"a": [3]}, overwrite=True)
    assert out.read_text() == "a\n3\n" and _hidden(tmp_path) == []
