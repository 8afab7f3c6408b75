"""One name per concept (#17 item 7).

Renamed keywords keep their old name for one release (a DeprecationWarning naming the
new one, ``camtrack._validation.renamed_keywords``), and a walk over every public
function and method fails when an old name, or a known synonym, comes back.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
import warnings

import numpy as np
import pytest

from camtrack import background, cli, gain, simulate, tracking
from camtrack._validation import renamed_keywords

ENGINE = ("gain", "background", "tracking", "force", "io", "simulate")

# old or synonym name -> the one name of its concept. A public keyword spelled like a
# key fails test_no_public_keyword_uses_a_retired_name.
SYNONYMS = {
    "nbins": "n_bins",  # bins of a histogram or profile (tracking's spelling)
    "kernel_size": "window",  # frames per median (rolling and sparse median)
    "frame_rate": "fs_hz",  # frame rate, Hz (force, tracking, io)
    "fps": "fs_hz",
    "saturation_adu": "saturation",  # clip level (estimate_gain, track_rois, crlb)
    "first": "first_frame",  # first frame of a run (TrackResult.save, flag_stuck_beads)
}
# `n_iter` is the centre's re-centring iterations (qi, track_rois); the z fit's
# Gauss-Newton steps are `z_iter` (track_rois, lookup_z).
CONCEPT_OWNERS = {"z_iter": {"tracking.lookup_z", "tracking.track_rois", "tracking.track_beads"}}

# Known debt, not to grow: (qualified function, name) pairs that still use a retired
# name. Empty since simulate's and CameraModel.crop's `size` became `roi_size`.
PENDING: set[tuple[str, str]] = set()
PENDING_SYNONYMS = {"size": "roi_size"}


def _public_callables():
    """(qualified name, callable) for every public function and public method of a
    public class of the engine subpackages (dataclass constructors are fields, not
    keywords, and are left out)."""
    for sub in ENGINE:
        mod = importlib.import_module(f"camtrack.{sub}")
        for name in mod.__all__:
            obj = getattr(mod, name)
            if inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    member = getattr(member, "__func__", member)  # static/class methods
                    if attr.startswith("_") or not inspect.isfunction(member):
                        continue
                    yield f"{sub}.{name}.{attr}", member
                if not dataclasses.is_dataclass(obj) and "__init__" in vars(obj):
                    yield f"{sub}.{name}", obj.__init__
            elif callable(obj):
                yield f"{sub}.{name}", obj


CALLABLES = dict(_public_callables())


def test_the_walk_sees_the_public_api():
    assert {"gain.estimate_gain", "gain.GainResult.refit", "background.sparse_median",
            "tracking.lookup_z", "tracking.crlb", "tracking.ZLut.save"} <= set(CALLABLES)  # fmt: skip


def test_no_public_keyword_uses_a_retired_name():
    found = []
    for qual, func in CALLABLES.items():
        for name in inspect.signature(func).parameters:
            if name in SYNONYMS:
                found.append(f"{qual}({name}=): use {SYNONYMS[name]!r}")
            elif name in PENDING_SYNONYMS and (qual, name) not in PENDING:
                found.append(f"{qual}({name}=): use {PENDING_SYNONYMS[name]!r}")
    assert not found, "one name per concept (tests/test_vocabulary.py):\n" + "\n".join(found)


def test_pending_renames_are_still_pending():
    """A pending pair that got fixed is struck from PENDING (so the list only shrinks)."""
    stale = [
        (qual, name)
        for qual, name in PENDING
        if name not in inspect.signature(CALLABLES[qual]).parameters
    ]
    assert not stale, f"renamed already, remove from PENDING: {stale}"


def test_a_concept_name_is_used_only_by_its_owners():
    for name, owners in CONCEPT_OWNERS.items():
        users = {q for q, f in CALLABLES.items() if name in inspect.signature(f).parameters}
        assert users <= owners, (name, users - owners)


def test_every_renamed_keyword_is_gone_from_the_signature():
    """The wrapper shows the new signature (registries, widgets and the command line
    read it) and records the old names."""
    renamed = {q: f for q, f in CALLABLES.items() if getattr(f, "__renamed_keywords__", None)}
    assert {"gain.estimate_gain", "gain.fit_gain", "gain.GainResult.refit",
            "background.sparse_median", "tracking.lookup_z", "tracking.crlb",
            "tracking.flag_stuck_beads"} <= set(renamed)  # fmt: skip
    for qual, func in renamed.items():
        params = inspect.signature(func).parameters
        for old, new in func.__renamed_keywords__.items():
            assert old not in params and new in params, (qual, old, new)
            assert SYNONYMS.get(old, new) == new, (qual, old)


# -- the old keywords still work, and warn ---------------------------------------------
def _warns_with(old, new):
    return pytest.warns(DeprecationWarning, match=rf"`{old}` is renamed `{new}`; pass `{new}=`")


@pytest.fixture(scope="module")
def flat():
    stack, _ = simulate.camera_stack(30, (32, 32), rng=0)
    return stack


def test_gain_nbins(flat):
    new = gain.estimate_gain(flat, method="meanvar", n_bins=40, min_count=2)
    with _warns_with("nbins", "n_bins"):
        old = gain.estimate_gain(flat, method="meanvar", nbins=40, min_count=2)
    assert old.e_per_adu == new.e_per_adu
    with _warns_with("nbins", "n_bins"):
        fit = gain.fit_gain(new.mean, new.var, nbins=60, min_count=2)
    assert fit.slope == gain.fit_gain(new.mean, new.var, n_bins=60, min_count=2).slope
    with _warns_with("nbins", "n_bins"):
        assert new.refit(nbins=60).fit.n_bins == new.refit(n_bins=60).fit.n_bins


def test_sparse_median_window_and_fs_hz(flat):
    new = background.sparse_median(flat, window=10, fs_hz=50.0, split_time=0.2)
    with _warns_with("kernel_size", "window"), _warns_with("frame_rate", "fs_hz"):
        old = background.sparse_median(flat, kernel_size=10, frame_rate=50.0, split_time=0.2)
    np.testing.assert_array_equal(old.images, new.images)
    np.testing.assert_array_equal(old.frame_index, new.frame_index)


def test_tracking_old_keywords():
    planes = np.arange(-500.0, 501.0, 100.0)
    calib, _ = simulate.zsweep(planes, roi_size=32, frames_per_plane=1, noise=False)
    lut = tracking.build_zlut(calib, planes)
    prof = tracking.track_rois(calib[3:5]).profiles
    with _warns_with("n_iter", "z_iter"):
        old = tracking.lookup_z(prof, lut, n_iter=2)
    np.testing.assert_array_equal(old, tracking.lookup_z(prof, lut, z_iter=2))

    def model(x, y, z):
        return 100.0 + 1000.0 * simulate.gaussian_beam_image(x, y, z, 16)

    kw = {"e_per_adu": 2.0, "offset_adu": 100.0}
    with _warns_with("saturation_adu", "saturation"):
        old = tracking.crlb(model, 7.5, 7.5, 0.0, saturation_adu=600.0, **kw)
    assert old.x[0] == tracking.crlb(model, 7.5, 7.5, 0.0, saturation=600.0, **kw).x[0]

    stack, truth = simulate.bead_field(8, (64, 64), n_beads=1, rng=0)
    pos = [(truth.x[0, 0], truth.y[0, 0])]
    with _warns_with("first", "first_frame"):
        old = tracking.flag_stuck_beads(stack, pos, roi_size=32, n_frames=5, first=2)
    new = tracking.flag_stuck_beads(stack, pos, roi_size=32, n_frames=5, first_frame=2)
    np.testing.assert_array_equal(old.step_px, new.step_px)
    with _warns_with("size", "roi_size"):
        old = tracking.crop_rois(stack, truth.x[0], truth.y[0], size=24)
    np.testing.assert_array_equal(
        old[0], tracking.crop_rois(stack, truth.x[0], truth.y[0], roi_size=24)[0]
    )


@pytest.mark.parametrize(
    "name, args",
    [
        ("bead_image", (15.2, 15.7, 800.0)),
        ("gaussian_beam_image", (15.2, 15.7, 800.0)),
        ("bead_rois", (15.2, 15.7, 800.0)),
        ("gaussian_beam_rois", (15.2, 15.7, 800.0)),
        ("zsweep", ([-500.0, 500.0],)),
        ("gaussian_beam_zsweep", ([-500.0, 500.0],)),
    ],
)
def test_simulate_size_is_roi_size(name, args):
    """The simulators' ROI side is `roi_size`, as in find_beads and track_beads; the old
    `size` still works for one release, with a warning, and gives the same images."""
    func = getattr(simulate, name)
    seeded = {} if name.endswith("image") else {"rng": 3}
    new = func(*args, roi_size=32, **seeded)
    with _warns_with("size", "roi_size"):
        old = func(*args, size=32, **seeded)
    new, old = (new[0], old[0]) if isinstance(new, tuple) else (new, old)
    assert new.shape[-2:] == (32, 32)
    np.testing.assert_array_equal(old, new)


def test_tether_rois_and_camera_crop_take_roi_size():
    from camtrack.tracking import CameraModel

    sim = simulate.tether_trace(20, 60.0, force_pn=1.0, length_nm=2000.0, substeps=2, rng=0)
    new = simulate.tether_rois(sim.x_sub_nm, roi_size=24, rng=2)
    with _warns_with("size", "roi_size"):
        old = simulate.tether_rois(sim.x_sub_nm, size=24, rng=2)
    assert new.shape == (20, 24, 24)
    np.testing.assert_array_equal(old, new)

    cam = CameraModel(np.full((40, 40), 2.0), np.full((40, 40), 100.0), 1.5)
    with _warns_with("size", "roi_size"):
        old = cam.crop([3], [5], size=16)
    new = cam.crop([3], [5], roi_size=16)
    assert new.e_per_adu.shape == (1, 16, 16)
    np.testing.assert_array_equal(old.offset_adu, new.offset_adu)


def test_old_and_new_together_is_refused():
    @renamed_keywords(nbins="n_bins")
    def f(*, n_bins=3):
        return n_bins

    with pytest.raises(TypeError, match=r"got both `nbins` and `n_bins`.*pass only `n_bins`"):
        f(nbins=4, n_bins=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert f(n_bins=5) == 5  # the new name never warns
    assert inspect.signature(f).parameters.keys() == {"n_bins"}


# -- the command line keeps the old spellings, hidden ------------------------------------
def _subparser(command):
    parser = cli._build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return subs.choices[command]


@pytest.mark.parametrize(
    ("command", "old", "new", "value"),
    [
        ("gain", "--nbins", "n_bins", "20"),
        ("background", "--kernel-size", "window", "20"),
        ("background", "--frame-rate", "fs_hz", "50"),
    ],
)
def test_old_cli_spellings_are_hidden_aliases(command, old, new, value):
    sub = _subparser(command)
    method = ["--method", "sparse-median"] if command == "background" else []
    args = sub.parse_args(["stack.tif", *method, old, value, "-o", "out.h5"])
    assert float(getattr(args, new)) == float(value)
    assert old not in sub.format_help()
    assert "--" + new.replace("_", "-") in sub.format_help()


@pytest.mark.parametrize("command", ["background", "track"])
def test_frame_range_options_are_first_frame_and_last_frame(command):
    """The frame range is --first-frame/--last-frame (first_frame as in TrackResult.save
    and the widgets); the old --first/--last still parse, hidden."""
    sub = _subparser(command)
    method = ["--method", "temporal-median"] if command == "background" else []
    base = ["stack.tif", *method, "-o", "out.h5"]
    new = sub.parse_args([*base, "--first-frame", "3", "--last-frame", "9"])
    old = sub.parse_args([*base, "--first", "3", "--last", "9"])
    assert (new.first_frame, new.last_frame) == (old.first_frame, old.last_frame) == (3, 9)
    default = sub.parse_args(base)
    assert (default.first_frame, default.last_frame) == (0, None)
    text = sub.format_help()
    assert "--first-frame" in text and "--first " not in text and "--last " not in text
