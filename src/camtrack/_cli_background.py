"""``camtrack background STACK --method M [options] -o OUT.h5``: a background, streamed.

The stack is opened lazily (dask); the engine builds a lazy result and it is written
to a temporary HDF5 file chunk by chunk (bounded memory, with a progress bar on a
terminal), then renamed into place.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["METHODS", "add_parser", "run"]

# Command-line method name -> (engine function in camtrack.background, its options).
# Option names are the engine keywords (``--kebab-case`` on the command line).
METHODS: dict[str, tuple[str, tuple[str, ...]]] = {
    "temporal-median": ("temporal_median", ("sigma_clip",)),
    "rolling-median": ("rolling_median", ("window",)),
    "sparse-median": ("sparse_median", ("kernel_size", "split", "frame_rate", "split_time",
                                        "thresh_cleansing", "frac_cleansing",
                                        "offset_correction")),
    "spatial-mean": ("spatial_mean", ("radius", "truncate")),
    "frame-stats": ("frame_stats", ("stat", "q")),
}  # fmt: skip

# (type, help) of every method option; None defaults mean "the engine's default".
_OPTIONS: dict[str, tuple[Callable[[str], Any], str]] = {
    "sigma_clip": (float, "temporal-median: leave out samples further than this many robust "
                          "sigmas from each pixel's median (e.g. 3; default: none)"),
    "window": (int, "rolling-median: odd number of frames in each median (default 51)"),
    "kernel_size": (int, "sparse-median: frames in each median image (default 200)"),
    "split": (int, "sparse-median: frames between median images (default: --kernel-size)"),
    "frame_rate": (float, "sparse-median: frames per second, with --split-time instead of "
                          "--split"),
    "split_time": (float, "sparse-median: seconds between median images (with --frame-rate; "
                          "default 1)"),
    "thresh_cleansing": (float, "sparse-median: deviation (ADU) marking an object in a median "
                                "image (default 0: automatic, 5 robust sigmas)"),
    "frac_cleansing": (float, "sparse-median: fraction of median images always kept, 0..1 "
                              "(default 0.8; 1 disables cleansing)"),
    "radius": (float, "spatial-mean: background radius, px (Gaussian sigma = radius / 2; "
                      "default 7)"),
    "truncate": (float, "spatial-mean: kernel support in sigmas (default 4)"),
    "stat": (str, "frame-stats: min, max, mean, std or percentile (required)"),
    "q": (float, "frame-stats: percentile(s) 0..100 for --stat percentile"),
}  # fmt: skip

_EXAMPLE = """\
example:
  camtrack background beads.tif --method temporal-median -o background.h5
  camtrack background beads.h5 --dataset /events/image --method rolling-median --window 31 -o bg.h5
  camtrack background beads.tif --method frame-stats --stat percentile --q 10 50 -o p.h5

The HDF5 file holds the dataset 'background' (one image (Y, X), or one per frame
(T, Y, X); frame-stats with several --q: (len(q), Y, X)) in the input's ADU as float,
and the method and its options as attributes. sparse-median writes its median images
('background', (N, Y, X)) with 'frame_index' (the image of each frame), 'offsets' and
'centers'. Open it with `camtrack info OUT.h5` or drag it into napari.
"""


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_parser(sub, dataset_help: str) -> None:
    """Register the ``background`` subcommand on an argparse subparsers object."""
    p = sub.add_parser(
        "background",
        help="background of a stack (temporal/rolling/sparse median, spatial mean, "
        "frame statistics) to HDF5",
        description="Estimate the background of a (frames, rows, cols) stack with one of "
        "camtrack.background's methods. The stack is read lazily and the result written "
        "chunk by chunk, so stacks larger than memory work.",
        epilog=_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("stack", type=Path, help="TIFF or HDF5 stack (frames, rows, cols)")
    p.add_argument("--dataset", default=None, help=dataset_help)
    p.add_argument("--method", required=True, choices=list(METHODS), metavar="METHOD",
                   help="one of: " + ", ".join(METHODS))  # fmt: skip
    for name, (kind, text) in _OPTIONS.items():
        if name == "q":
            p.add_argument("--q", type=float, nargs="+", default=None, metavar="Q", help=text)
        else:
            p.add_argument(_flag(name), dest=name, type=kind, default=None, help=text)
    p.add_argument("--no-offset-correction", dest="offset_correction", action="store_false",
                   default=None,
                   help="sparse-median: no per-frame offsets (illumination flicker)")  # fmt: skip
    p.add_argument("--first", type=int, default=0, help="first frame (default 0)")
    p.add_argument("--last", type=int, default=None, help="last frame (default: the end)")
    p.add_argument("-o", "--out", type=Path, required=True,
                   help="output HDF5 file (.h5 or .hdf5; a folder is refused)")  # fmt: skip
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """The chosen method's options that were given; others given are refused."""
    _, allowed = METHODS[args.method]
    given = {n: getattr(args, n) for n in (*_OPTIONS, "offset_correction")}
    given = {n: v for n, v in given.items() if v is not None}
    wrong = [n for n in given if n not in allowed]
    if wrong:
        owner = {n: m for m, (_, names) in METHODS.items() for n in names}
        flags = ", ".join(
            ("--no-offset-correction" if n == "offset_correction" else _flag(n)) + f" ({owner[n]})"
            for n in wrong
        )
        raise ValueError(
            f"{flags} do(es) not apply to --method {args.method}; its options are "
            f"{', '.join(_flag(n) for n in allowed) or 'none'}."
        )
    if args.method == "frame-stats":
        if "stat" not in given:
            raise ValueError("--method frame-stats needs --stat (min, max, mean, std or "
                             "percentile).")  # fmt: skip
        if "q" in given:
            given["q"] = given["q"][0] if len(given["q"]) == 1 else list(given["q"])
    return given


def _as_flags(message: str, names: Any) -> str:
    """Engine messages name keywords (`window`); on the command line say --window."""
    for name in names:
        message = message.replace(f"`{name}`", _flag(name))
    return re.sub(r"`stack`", "the stack", message)


def _frames(stack: Any, first: int, last: int | None) -> Any:
    t = int(stack.shape[0])
    last = t - 1 if last is None else last
    if not 0 <= first <= last < t:
        raise ValueError(
            f"--first {first} and --last {last} must satisfy 0 <= first <= last < {t} "
            "(the stack's frame count)."
        )
    return stack if (first, last) == (0, t - 1) else stack[first : last + 1]


def _compute(args: argparse.Namespace, stack: Any, options: dict[str, Any], progress):
    """(datasets, attrs) of the method's result; big arrays stay lazy."""
    from camtrack import background

    func = getattr(background, METHODS[args.method][0])
    if args.method == "frame-stats":
        stat = options.pop("stat")
        return {"background": func(stack, stat, **options)}, {}
    if args.method == "sparse-median":
        res = func(stack, progress=progress, **options)
        data = {
            "background": res.images,
            "frame_index": res.frame_index,
            "centers": res.centers,
            "dropped": res.dropped,
        }
        if res.offsets is not None:
            data["offsets"] = res.offsets
        return data, {"n_missing": int(res.n_missing)}
    if args.method == "spatial-mean":
        res = func(stack, **options)
        return {"background": res.background}, {
            "noise_correction": float(res.noise_correction),
            "sigma": list(res.sigma),
        }
    return {"background": func(stack, **options)}, {}


def write_streaming(out: Path, datasets: dict[str, Any], attrs: dict[str, Any], *,
                    overwrite: bool, protect: list, progress) -> Path:  # fmt: skip
    """Write numpy arrays at once and dask arrays chunk by chunk (with progress) to a
    temporary HDF5 file renamed to ``out`` when complete."""
    import dask.array as da
    import h5py
    import numpy as np

    from camtrack import io
    from camtrack._parallel import compute
    from camtrack.io._writers import fill_hdf5

    lazy = {k: v for k, v in datasets.items() if hasattr(v, "__dask_graph__")}
    eager = {k: np.asarray(v) for k, v in datasets.items() if k not in lazy}
    with io.atomic_path(out, overwrite=overwrite, protect=protect) as tmp:
        fill_hdf5(tmp, eager, attrs)
        if lazy:
            with h5py.File(tmp, "a") as f:
                targets = []
                for name, arr in lazy.items():
                    # Frame-sized HDF5 chunks: a reader then loads one frame per read.
                    chunks = (1, *arr.shape[1:]) if arr.ndim == 3 and arr.shape[0] > 1 else None
                    targets.append(f.create_dataset(name, shape=arr.shape, dtype=arr.dtype,
                                                    chunks=chunks))  # fmt: skip
                stored = da.store(list(lazy.values()), targets, lock=True, compute=False)
                compute(stored, progress=progress)
    return out


def run(args: argparse.Namespace, failure, refuse_folder, check_outputs, open_one) -> int:
    """Run ``camtrack background``; the helpers are the CLI's shared functions."""
    from camtrack._cli_progress import terminal_progress

    names = (*_OPTIONS, "offset_correction")
    try:
        refuse_folder(args.out, "background.h5")
        if args.out.suffix.lower() not in (".h5", ".hdf5"):
            raise ValueError(f"-o {str(args.out)!r} must end in .h5 or .hdf5 (HDF5 output).")
        options = _options(args)
        check_outputs([args.out], args.overwrite, [args.stack])
        stack = _frames(open_one(args.stack, args.dataset, "stack"), args.first, args.last)
        progress = terminal_progress(f"background ({args.method})")
        try:
            datasets, attrs = _compute(args, stack, dict(options), progress)
        except (ValueError, TypeError) as exc:
            raise type(exc)(_as_flags(str(exc), names)) from None
        attrs.update(
            method=args.method, options=options, source=str(args.stack),
            dataset=args.dataset, first_frame=args.first, unit="ADU",
        )  # fmt: skip
        out = write_streaming(args.out, datasets, attrs, overwrite=args.overwrite,
                              protect=[args.stack], progress=progress)  # fmt: skip
        shape = tuple(datasets["background"].shape)
        print(f"background ({args.method}) of {int(stack.shape[0])} frames: shape {shape}; "
              f"wrote {out}")  # fmt: skip
    except (ValueError, TypeError, OSError, ImportError) as exc:
        print(failure("background", exc), file=sys.stderr)
        return 2
    return 0
