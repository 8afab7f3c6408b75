"""`camtrack background` (#17 item 6), checked against the simulator's truth."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import tifffile

from camtrack import cli, simulate

SHAPE = (48, 64)


@pytest.fixture(scope="module")
def moving(tmp_path_factory):
    """60 frames of a gradient with 3 beads crossing it, as a TIFF, with the truth
    background (offset + signal / gain, the beads left out)."""
    folder = tmp_path_factory.mktemp("bg")
    stack, truth = simulate.camera_stack(
        60, SHAPE, signal_e=(200.0, 800.0), n_beads=3, bead_speed=6.0, rng=4
    )
    path = folder / "stack.tif"
    tifffile.imwrite(path, np.asarray(stack))
    bg = truth.camera.expected_adu(truth.signal_e[None])[0]
    sd = np.sqrt(truth.camera.variance_adu(truth.signal_e[None])[0])
    return path, bg, sd


def _read(path, name="background"):
    with h5py.File(path) as f:
        return f[name][()], dict(f.attrs)


def test_temporal_median_against_truth(moving, tmp_path, capsys):
    path, bg, sd = moving
    out = tmp_path / "bg.h5"
    before = path.read_bytes()
    assert cli.main(["background", str(path), "--method", "temporal-median",
                     "--sigma-clip", "3", "-o", str(out)]) == 0  # fmt: skip
    assert "wrote" in capsys.readouterr().out
    got, attrs = _read(out)
    assert got.shape == SHAPE and attrs["method"] == "temporal-median"
    # The median of 60 Gaussian samples scatters by ~1.25 sd / sqrt(60) = 0.16 sd; the
    # crossing beads cover a pixel in a few frames only. RMS within 0.3 sd, bias 0.1 sd.
    z = (got - bg) / sd
    assert np.sqrt(np.mean(z**2)) < 0.3 and abs(np.mean(z)) < 0.1
    assert path.read_bytes() == before  # the input is never touched


def test_spatial_mean_against_truth_and_frames(moving, tmp_path):
    path, bg, sd = moving
    out = tmp_path / "sm.h5"
    argv = ["background", str(path), "--method", "spatial-mean", "--radius", "4",
            "--first-frame", "10", "--last-frame", "19", "-o", str(out)]  # fmt: skip
    assert cli.main(argv) == 0
    got, attrs = _read(out)
    assert got.shape == (10, *SHAPE)
    assert 0 < attrs["noise_correction"] < 1
    # Gaussian mean (sigma 2 px) of a linear ramp is the ramp away from the borders,
    # and averages ~50 pixels: noise < 0.2 sd; beads bias the frames they cross, so
    # compare the median over the frames, 8 px (2 sigma x 2) away from the borders.
    inner = (slice(8, -8), slice(8, -8))
    z = (np.median(got, axis=0)[inner] - bg[inner]) / sd[inner]
    assert np.sqrt(np.mean(z**2)) < 0.2


def test_rolling_sparse_and_frame_stats_run(moving, tmp_path):
    path, _, _ = moving
    out = tmp_path / "r.h5"
    assert cli.main(["background", str(path), "--method", "rolling-median", "--window", "11",
                     "-o", str(out)]) == 0  # fmt: skip
    assert _read(out)[0].shape == (60, *SHAPE)
    out = tmp_path / "s.h5"
    assert cli.main(["background", str(path), "--method", "sparse-median", "--window",
                     "20", "-o", str(out)]) == 0  # fmt: skip
    images, _ = _read(out)
    assert images.ndim == 3 and _read(out, "frame_index")[0].shape == (60,)
    out = tmp_path / "p.h5"
    assert cli.main(["background", str(path), "--method", "frame-stats", "--stat",
                     "percentile", "--q", "10", "90", "-o", str(out)]) == 0  # fmt: skip
    p, _ = _read(out)
    assert p.shape == (2, *SHAPE) and np.all(p[0] <= p[1])


def test_temporal_percentile_is_the_median_at_50(moving, tmp_path, capsys):
    """--method temporal-percentile (from the registry): q 50 is the temporal median
    (numpy's linear interpolation gives the mean of the middle pair, as the median);
    several --q give one image each; without --q it is refused, naming --q."""
    path, _, _ = moving
    median, p50, p1090 = (tmp_path / n for n in ("m.h5", "p50.h5", "p.h5"))
    argv = ["background", str(path), "--method"]
    assert cli.main([*argv, "temporal-median", "-o", str(median)]) == 0
    assert cli.main(["background", str(path), "--method", "temporal-percentile", "--q", "50",
                     "-o", str(p50)]) == 0  # fmt: skip
    np.testing.assert_allclose(_read(p50)[0], _read(median)[0], rtol=1e-6)
    assert cli.main(["background", str(path), "--method", "temporal-percentile", "--q", "10",
                     "90", "--sigma-clip", "3", "-o", str(p1090)]) == 0  # fmt: skip
    both, attrs = _read(p1090)
    assert both.shape == (2, *SHAPE) and np.all(both[0] <= both[1])
    assert attrs["method"] == "temporal-percentile"
    capsys.readouterr()
    missing = tmp_path / "missing.h5"
    assert cli.main(["background", str(path), "--method", "temporal-percentile",
                     "-o", str(missing)]) == 2  # fmt: skip
    assert "needs --q" in capsys.readouterr().err and not missing.exists()


def test_refuses_existing_output_and_bad_options(moving, tmp_path, capsys):
    path, _, _ = moving
    out = tmp_path / "bg.h5"
    out.write_bytes(b"keep")
    assert cli.main(["background", str(path), "--method", "temporal-median", "-o", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err and out.read_bytes() == b"keep"
    # a bad value is named by its option
    new = tmp_path / "new.h5"
    assert cli.main(["background", str(path), "--method", "rolling-median", "--window", "4",
                     "-o", str(new)]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "--window" in err and "odd" in err and not new.exists()
    # an option of another method is refused, naming both
    assert cli.main(["background", str(path), "--method", "temporal-median", "--radius", "3",
                     "-o", str(new)]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "--radius" in err and "spatial-mean" in err and not new.exists()
    # never into the input, even with --overwrite
    h5 = tmp_path / "bg-of-bg.h5"
    assert cli.main(["background", str(path), "--method", "rolling-median", "--window", "3",
                     "-o", str(h5)]) == 0  # fmt: skip
    before = h5.read_bytes()
    assert cli.main(["background", str(h5), "--method", "temporal-median", "--overwrite",
                     "-o", str(h5)]) == 2  # fmt: skip
    assert h5.read_bytes() == before
    with pytest.raises(SystemExit):
        cli.main(["background", str(path), "--method", "median", "-o", str(new)])


def test_lazy_result_streams_with_progress(moving, tmp_path, monkeypatch):
    """The lazy result is stored chunk by chunk through the progress callable."""
    from camtrack import _cli_progress

    steps = []

    def progress(iterable, total=None):
        for item in iterable:
            steps.append(item)
            yield item

    monkeypatch.setattr(_cli_progress, "terminal_progress", lambda label: progress)
    path, _, _ = moving
    out = tmp_path / "r.h5"
    assert cli.main(["background", str(path), "--method", "rolling-median", "--window", "5",
                     "-o", str(out)]) == 0  # fmt: skip
    assert steps and steps[-1] == 200  # camtrack._parallel.compute's full bar
    with h5py.File(out) as f:
        assert f["background"].chunks == (1, *SHAPE)


def test_dataset_of_an_hdf5_file_and_help(moving, tmp_path, capsys):
    """--dataset picks the stack of a file with several (the keys of `camtrack info`);
    `camtrack info` reads the output."""
    path, _, _ = moving
    src = tmp_path / "two.h5"
    with h5py.File(src, "w") as f:
        f["movie"] = tifffile.imread(path)
        f["other"] = np.zeros((5, 8, 8), np.uint16)
    out = tmp_path / "bg.h5"
    argv = ["background", str(src), "--method", "frame-stats", "--stat", "mean", "-o", str(out)]
    assert cli.main(argv) == 2
    assert "--dataset KEY" in capsys.readouterr().err and not out.exists()
    assert cli.main([*argv, "--dataset", "/movie"]) == 0
    got, attrs = _read(out)
    assert attrs["dataset"] == "/movie" and got.shape == SHAPE
    assert cli.main(["info", str(out)]) == 0
    assert "background" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["background", "--help"])
    assert "example:\n  camtrack background" in capsys.readouterr().out
