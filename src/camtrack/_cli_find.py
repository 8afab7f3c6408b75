"""``camtrack find-beads STACK [--radius R] -o BEADS.csv``: bead start positions to CSV."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

__all__ = ["add_parser", "run"]

_EXAMPLE = """\
example:
  camtrack find-beads beads.tif -o beads.csv
  camtrack find-beads beads.h5 --dataset /events/image --frame 10 --roi-size 48 -o beads.csv
  camtrack track beads.tif --lut lut.h5 --beads beads.csv -o tracks.csv

The CSV has one row per bead (bead, x, y, radius_px, score, symmetry, reference) and
is what `camtrack track --beads` reads. reference is 1 for beads stuck to the surface,
judged from their motion over --stuck-frames frames; track uses them for drift
correction (edit the column to choose others).
"""


def add_parser(sub, dataset_help: str) -> None:
    """Register the ``find-beads`` subcommand on an argparse subparsers object."""
    p = sub.add_parser(
        "find-beads",
        help="find beads in one frame of a stack (any size, no radius needed) to CSV",
        description="Find the beads in one frame: every pattern size is searched, "
        "candidates are kept by the rotational symmetry of their rings, and beads whose "
        "ROIs would overlap or leave the frame are left out (and listed). x = column, "
        "y = row, pixel centres at integer coordinates.",
        epilog=_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("stack", type=Path, help="TIFF or HDF5 stack (frames, rows, cols)")
    p.add_argument("--dataset", default=None, help=dataset_help)
    p.add_argument("--frame", type=int, default=0, help="frame to search (default 0)")
    p.add_argument("--radius", type=float, default=None,
                   help="rough bead-pattern radius, px: only a speed hint (a quarter to 4 "
                        "times the true size finds the same beads); default: every size")  # fmt: skip
    p.add_argument("--roi-size", type=int, default=64,
                   help="ROI size you will track with, px: beads whose ROIs overlap or leave "
                        "the frame are left out (default 64, as `camtrack track`; 0: keep them)")  # fmt: skip
    p.add_argument("--min-distance", type=float, default=None,
                   help="beads closer than this, px, are left out as doublets")  # fmt: skip
    p.add_argument("--stuck-frames", type=int, default=100,
                   help="track this many frames from --frame to flag beads stuck to the "
                        "surface by their motion (reference = 1); 0: flag none (default 100)")  # fmt: skip
    p.add_argument("--threshold", type=float, default=0.01,
                   help="keep beads of at least this fraction (0..1) of the strongest "
                        "bead's contrast (default 0.01)")  # fmt: skip
    p.add_argument("-o", "--out", type=Path, required=True, help="output CSV, one row per bead")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")


def frame_of(stack, t: int, label: str = "--frame") -> np.ndarray:
    """Frame ``t`` of a (lazy) stack as a host array, with a message naming ``label``."""
    n = int(stack.shape[0])
    if not 0 <= t < n:
        raise ValueError(f"{label} {t} is outside the stack's {n} frames (0 to {n - 1}).")
    image = stack[t]
    return np.asarray(image.compute() if hasattr(image, "compute") else image)


def _open_image_or_stack(args: argparse.Namespace, open_one):
    """The stack, or a file's single 2-D image as a one-frame stack (nothing to track
    for stuck beads then)."""
    from camtrack import io

    if args.dataset is None:
        items = io.read_layers(args.stack)
        if len(items) == 1 and items[0][0].ndim == 2:
            return items[0][0][None]
    return open_one(args.stack, args.dataset, "stack")


def _stuck(stack, found, args: argparse.Namespace) -> np.ndarray:
    """Stuck-bead flags from the motion over ``--stuck-frames`` frames (all False if 0)."""
    from camtrack import tracking

    n = args.stuck_frames
    if n < 0 or n in (1, 2):
        raise ValueError(f"--stuck-frames must be 0 (flag none) or 3 or more; got {n}.")
    left = int(stack.shape[0]) - args.frame
    if n == 0 or len(found) == 0:
        return np.zeros(len(found), dtype=bool)
    if left < 3:
        print(f"note: only {left} frame(s) from --frame {args.frame}; stuck beads not flagged")
        return np.zeros(len(found), dtype=bool)
    ny, nx = (int(v) for v in stack.shape[1:])
    roi = args.roi_size or max(8, min(64, ny, nx))
    flags = tracking.flag_stuck_beads(
        stack, np.column_stack([found.x, found.y]), roi_size=roi,
        n_frames=min(n, left), first_frame=args.frame,
    )  # fmt: skip
    return flags.stuck


def run(args: argparse.Namespace, failure, refuse_folder, check_outputs, open_one) -> int:
    """Run ``camtrack find-beads``; the helpers are the CLI's shared functions."""
    from camtrack import io, tracking

    try:
        refuse_folder(args.out, "beads.csv")
        if args.out.suffix.lower() != ".csv":
            raise ValueError(f"-o {str(args.out)!r} must end in .csv (a table of beads).")
        if args.roi_size < 0 or args.roi_size == 1:
            raise ValueError(
                f"--roi-size must be 0 (keep beads whatever their ROIs) or an ROI size of "
                f"2 px or more; got {args.roi_size}."
            )
        check_outputs([args.out], args.overwrite, [args.stack])
        stack = _open_image_or_stack(args, open_one)
        image = frame_of(stack, args.frame)
        found = tracking.locate_beads(
            image, radius=args.radius, roi_size=args.roi_size or None,
            min_distance=args.min_distance, threshold=args.threshold,
        )  # fmt: skip
        stuck = _stuck(stack, found, args)
        table = found.to_table()
        table["reference"] = stuck.astype(int)
        out = io.write_csv(args.out, table, overwrite=args.overwrite, protect=[args.stack])
        how = "every pattern size" if args.radius is None else f"radius hint {args.radius:g} px"
        print(f"found {len(found)} beads in frame {args.frame} of {args.stack} ({how})")
        for b in range(len(found)):
            print(f"  bead {b}: x {found.x[b]:.2f}, y {found.y[b]:.2f}, radius "
                  f"{found.radius_px[b]:.1f} px, symmetry {found.symmetry[b]:.2f}"
                  + ("  STUCK (reference)" if stuck[b] else ""))  # fmt: skip
        for x, y, why in zip(found.rejected_x, found.rejected_y, found.rejected_reason, strict=True):  # fmt: skip
            print(f"  left out ({why}): x {x:.1f}, y {y:.1f}")
        if len(found) == 0:
            print("note: no beads kept; check the frame, lower --roi-size or --threshold")
        print(f"wrote {out}")
    except (ValueError, TypeError, OSError, ImportError) as exc:
        print(failure("find-beads", exc), file=sys.stderr)
        return 2
    return 0
