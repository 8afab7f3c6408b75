"""``camtrack zlut SWEEP (--z-csv Z.csv | --z-start Z0 --z-step DZ) -o LUT.h5``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

__all__ = ["add_parser", "read_z_csv", "run"]

_EXAMPLE = """\
example:
  camtrack zlut zsweep.tif --z-csv zsweep_z.csv -o lut.h5
  camtrack zlut zsweep.tif --z-start -4500 --z-step 100 --frames-per-plane 4 -o lut.h5
  camtrack zlut field_sweep.h5 --z-start 0 --z-step 50 --roi-size 64 --bead 120.5 88 -o lut.h5
  camtrack zlut zsweep.tif --z-csv zsweep_z.csv --centre qi --profile radial -o lut_qi.h5

A classic --centre (here QI) is recorded in the LUT: `camtrack track --lut lut_qi.h5`
then measures x, y with it too (and refuses another --centre).

z is in nm (the Z-LUT's unit). The self-check tracks held-out sweep frames with a LUT
built from the others and prints their RMS error and the unambiguous z range.
"""


def add_parser(sub, dataset_help: str) -> None:
    """Register the ``zlut`` subcommand on an argparse subparsers object."""
    p = sub.add_parser(
        "zlut",
        help="build a Z look-up table from a calibration z-sweep and check it",
        description="Build a Z-LUT from a z-sweep of one bead (frames at known focus "
        "positions), check it on held-out frames and save it for `camtrack track --lut`.",
        epilog=_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("sweep", type=Path, help="TIFF or HDF5 calibration stack (frames, rows, cols)")
    p.add_argument("--dataset", default=None, help=dataset_help)
    z = p.add_mutually_exclusive_group(required=True)
    z.add_argument("--z-csv", type=Path, default=None,
                   help="CSV with a z_nm (or z) column: one z per frame, or one per plane")  # fmt: skip
    z.add_argument("--z-start", type=float, default=None,
                   help="z of the first plane, nm (with --z-step)")  # fmt: skip
    p.add_argument("--z-step", type=float, default=None,
                   help="z step between planes, nm (with --z-start; negative for a downward sweep)")  # fmt: skip
    p.add_argument("--frames-per-plane", type=int, default=None,
                   help="frames recorded at each plane (default: 1 with --z-start; with "
                        "--z-csv, from the number of z values)")  # fmt: skip
    p.add_argument("--roi-size", type=int, default=None,
                   help="ROI size, px (default: the sweep's frame when square, else 64); a "
                        "larger frame is cropped around the bead")  # fmt: skip
    p.add_argument("--bead", type=float, nargs=2, default=None, metavar=("X", "Y"),
                   help="the bead's centre in the frame, px (default: found in the middle frame)")  # fmt: skip
    from camtrack.cli import _centre_option, _mode_option, _profile_option

    _mode_option(p)  # --mode, from camtrack.tracking._registry.MODES
    _centre_option(p, lut=False)  # --centre, from CENTRES
    _profile_option(p)  # --profile, from PROFILES
    from camtrack.cli import _add_camera_options

    _add_camera_options(p)
    p.add_argument("-o", "--out", type=Path, required=True, help="output LUT (.h5, .hdf5 or .npz)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing LUT")


def read_z_csv(path: Path) -> np.ndarray:
    """z values from a CSV: the ``z_nm`` column, else ``z``, else its only column."""
    import csv

    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    cols = list(rows[0]) if rows else []
    name = next((c for c in ("z_nm", "z") if c in cols), cols[0] if len(cols) == 1 else None)
    if not rows or name is None:
        raise ValueError(
            f"--z-csv {str(path)!r} needs a header row and a z_nm (or z) column, one value per "
            f"frame or per plane; got columns {cols} and {len(rows)} rows."
        )
    try:
        return np.array([float(r[name]) for r in rows])
    except (TypeError, ValueError):
        raise ValueError(
            f"--z-csv {str(path)!r}: column {name!r} must hold numbers (z in nm)."
        ) from None


def _z_values(args: argparse.Namespace, n_frames: int) -> np.ndarray:
    from camtrack import tracking

    per = args.frames_per_plane
    if per is not None and per < 1:
        raise ValueError(f"--frames-per-plane must be 1 or more; got {per}.")
    if args.z_csv is not None:
        if args.z_step is not None:
            raise ValueError("--z-step goes with --z-start, not with --z-csv.")
        values = read_z_csv(args.z_csv)
    else:
        if args.z_step is None or args.z_step == 0:
            raise ValueError(
                f"--z-start needs a non-zero --z-step (nm between planes); got {args.z_step}."
            )
        per = per or 1
        if n_frames % per:
            raise ValueError(
                f"--frames-per-plane {per} does not divide the sweep's {n_frames} frames."
            )
        values = args.z_start + args.z_step * np.arange(n_frames // per)
    return tracking.sweep_z(n_frames, values, frames_per_plane=per)


def _rois(
    stack, args: argparse.Namespace
) -> tuple[np.ndarray, int, tuple[float, float] | None, tuple[int, int]]:
    """(F, S, S) ROIs of the sweep's bead, the ROI size, the centre it was cut at and the
    ROI's top-left pixel (x0, y0) in the frame."""
    from camtrack import tracking
    from camtrack._cli_find import frame_of

    ny, nx = (int(v) for v in stack.shape[1:])
    size = args.roi_size
    if size is None:
        size = ny if ny == nx else 64
    if size < 8 or size > min(ny, nx):
        raise ValueError(
            f"--roi-size must be 8 to {min(ny, nx)} px (the sweep's frames are {ny} x {nx}); "
            f"got {size}."
        )
    if (ny, nx) == (size, size) and args.bead is None:
        return np.asarray(stack), size, None, (0, 0)
    if args.bead is not None:
        x, y = args.bead
    else:
        middle = frame_of(stack, int(stack.shape[0]) // 2, "middle frame")
        found = tracking.locate_beads(middle, roi_size=size)
        if len(found) == 0:
            raise ValueError(
                f"No bead found in the sweep's middle frame whose {size} px ROI fits the "
                "frame; give its centre with --bead X Y or a smaller --roi-size."
            )
        x, y = float(found.x[0]), float(found.y[0])
    rois, x0, y0 = tracking.crop_rois(stack, [x], [y], size)
    return np.asarray(rois), size, (x, y), (int(x0[0]), int(y0[0]))


def _camera(args: argparse.Namespace, corner: tuple[int, int], size: int, frame: tuple[int, int]):
    """The camera model of the ROI: per-pixel maps of the whole frame (checked against
    the frame by the engine's own check, as track_beads does) cut to it."""
    from camtrack.cli import _camera_kwargs
    from camtrack.tracking._stack import frame_camera

    scalars = _camera_kwargs(args)
    cam = frame_camera(scalars.pop("camera"), scalars, frame)
    if cam is None or cam.shape is None:
        return cam
    return cam.crop([corner[1]], [corner[0]], size)


def run(args: argparse.Namespace, failure, refuse_folder, check_outputs, open_one) -> int:
    """Run ``camtrack zlut``; the helpers are the CLI's shared functions."""
    from camtrack import tracking

    try:
        refuse_folder(args.out, "lut.h5")
        if args.out.suffix.lower() not in (".h5", ".hdf5", ".npz"):
            raise ValueError(f"-o {str(args.out)!r} must end in .h5, .hdf5 or .npz.")
        inputs = [p for p in (args.sweep, args.z_csv, args.camera) if p is not None]
        check_outputs([args.out], args.overwrite, inputs)
        stack = open_one(args.sweep, args.dataset, "sweep")
        z = _z_values(args, int(stack.shape[0]))
        rois, size, centre, corner = _rois(stack, args)
        camera = _camera(args, corner, size, tuple(int(v) for v in stack.shape[1:]))
        how = {"mode": args.mode, "centre": args.centre, "profile": args.profile}
        lut = tracking.build_zlut(rois, z, camera=camera, **how)
        check = tracking.check_zlut(rois, z, camera=camera, **how)
        out = lut.save(args.out, overwrite=args.overwrite, protect=inputs)
        where = "" if centre is None else f", cut at x {centre[0]:.2f}, y {centre[1]:.2f}"
        print(
            f"Z-LUT: {lut.n_planes} planes from {lut.z.min():g} to {lut.z.max():g} {lut.units}, "
            f"{size} px ROI{where}, {lut.n_bins} {lut.profile} bins, centre {lut.centre}"
        )
        print(f"self-check: {check.summary()}")
        print(f"wrote {out}")
    except (ValueError, TypeError, OSError, ImportError) as exc:
        print(failure("zlut", exc), file=sys.stderr)
        return 2
    return 0
