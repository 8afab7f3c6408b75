"""``camtrack calibrate --dark DARK --flat FLAT [FLAT ...] -o MAPS.h5``: sCMOS pixel maps."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

__all__ = ["add_parser", "run"]

_EXAMPLE = """\
example:
  camtrack calibrate --dark dark.tif --flat flat_100.tif flat_500.tif flat_2000.tif -o maps.h5
  camtrack calibrate --dark dark.tif --flat series.tif --frames-per-level 50 -o maps.h5

Each FLAT is a static, evenly lit scene at one light level (5 or more levels spanning
the camera's range are better than 2); with --frames-per-level one file holds the
levels one after the other. MAPS.h5 holds offset_map_adu, dark_var_map_adu2,
adu_per_e_map, e_per_adu_map and read_noise_map_e (each with its unit), which
camtrack.gain.PixelCalibration.load and the tracking camera options read.
"""


def add_parser(sub, dataset_help: str) -> None:
    """Register the ``calibrate`` subcommand on an argparse subparsers object."""
    p = sub.add_parser(
        "calibrate",
        help="per-pixel sCMOS maps (offset, variance, gain, read noise) from a dark and "
        "flat stacks, to HDF5",
        description="Per-pixel photon transfer (camtrack.gain.calibrate_pixels): for every "
        "pixel the offset and variance of the dark stack and the slope of variance over "
        "mean across the light levels, through the dark point (ADU per e-), its inverse "
        "(e- per ADU) and the read noise in e-.",
        epilog=_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dark", type=Path, required=True,
                   help="dark stack (TIFF/HDF5) of the same camera region and settings")  # fmt: skip
    p.add_argument("--dark-dataset", default=None,
                   help="which stack of the --dark file (keys as for --dataset)")  # fmt: skip
    p.add_argument("--flat", type=Path, nargs="+", required=True, metavar="FLAT",
                   help="stacks of a static, lit scene, one light level each")  # fmt: skip
    p.add_argument("--dataset", default=None, help="for every --flat file: " + dataset_help)
    p.add_argument("--frames-per-level", type=int, default=None, metavar="N",
                   help="split each --flat stack into levels of N consecutive frames "
                        "(one file holding an illumination series)")  # fmt: skip
    p.add_argument("--excess-noise-factor", type=float, default=1.0,
                   help="F**2: 1 for sCMOS (default), 2 for an EMCCD")  # fmt: skip
    p.add_argument("-o", "--out", type=Path, required=True,
                   help="output maps (.h5, .hdf5 or .npz; a folder is refused)")  # fmt: skip
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")


def _levels(stacks: list, paths: list[Path], n: int | None) -> tuple[list, list[str]]:
    """The light-level stacks and a label for each (file, and frames when split)."""
    if n is None:
        return stacks, [str(p) for p in paths]
    if n < 2:
        raise ValueError(f"--frames-per-level must be 2 or more (a variance per level); got {n}.")
    levels, labels = [], []
    for stack, path in zip(stacks, paths, strict=True):
        t = int(stack.shape[0])
        if t % n:
            raise ValueError(
                f"--flat {str(path)!r} has {t} frames, not a multiple of --frames-per-level "
                f"{n}; give the number of frames of each level."
            )
        for k in range(t // n):
            levels.append(stack[k * n : (k + 1) * n])
            labels.append(f"{path} frames {k * n}-{(k + 1) * n - 1}")
    return levels, labels


def _as_flags(message: str, labels: list[str]) -> str:
    """Engine messages name keywords (`dark`, `stacks[1]`); say the option instead."""
    message = re.sub(r"`stacks\[(\d+)\]`", lambda m: f"--flat ({labels[int(m[1])]})", message)
    message = message.replace("`stacks`", "--flat").replace("`dark`", "--dark")
    return message.replace("`excess_noise_factor`", "--excess-noise-factor")


def run(args: argparse.Namespace, failure, refuse_folder, check_outputs, open_one) -> int:
    """Run ``camtrack calibrate``; the helpers are the CLI's shared functions."""
    from camtrack._cli_progress import terminal_progress
    from camtrack.gain import calibrate_pixels

    try:
        refuse_folder(args.out, "maps.h5")
        if args.out.suffix.lower() not in (".h5", ".hdf5", ".npz"):
            raise ValueError(f"-o {str(args.out)!r} must end in .h5, .hdf5 or .npz.")
        inputs = [args.dark, *args.flat]
        check_outputs([args.out], args.overwrite, inputs)
        dark = open_one(args.dark, args.dark_dataset, "--dark", option="--dark-dataset")
        flats = [open_one(p, args.dataset, "--flat") for p in args.flat]
        levels, labels = _levels(flats, list(args.flat), args.frames_per_level)
        if len(levels) < 2:
            raise ValueError(
                f"--flat gives {len(levels)} light level; per-pixel calibration needs at "
                "least 2 (several --flat files, or --frames-per-level N for one file "
                "holding a series)."
            )
        try:
            cal = calibrate_pixels(
                levels, dark, excess_noise_factor=args.excess_noise_factor,
                progress=terminal_progress("calibrate"),
            )  # fmt: skip
        except (ValueError, TypeError) as exc:
            raise type(exc)(_as_flags(str(exc), labels)) from None
        out = cal.save(args.out, overwrite=args.overwrite, protect=inputs)
        gain = cal.e_per_adu_map[np.isfinite(cal.e_per_adu_map)]
        print(
            f"per-pixel calibration of {cal.shape[0]} x {cal.shape[1]} px from {len(levels)} "
            f"light levels: e-/ADU median {cal.e_per_adu:.4g} (5-95 %: "
            f"{np.percentile(gain, 5):.4g}-{np.percentile(gain, 95):.4g}), offset median "
            f"{np.median(cal.offset_map_adu):.5g} ADU, read noise median "
            f"{np.nanmedian(cal.read_noise_map_e):.3g} e-"
        )
        bad = int(cal.e_per_adu_map.size - gain.size)
        if bad:
            print(f"note: {bad} pixel(s) without a positive slope (NaN gain): check them")
        print(f"wrote {out}")
    except (ValueError, TypeError, OSError, ImportError) as exc:
        print(failure("calibrate", exc), file=sys.stderr)
        return 2
    return 0
