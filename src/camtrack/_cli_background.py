"""``camtrack background STACK --method M [options] -o OUT.h5``: a background, streamed.

The stack is opened lazily (dask); the engine builds a lazy result and it is written
to a temporary HDF5 file chunk by chunk (bounded memory, with a progress bar on a
terminal), then renamed into place.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

from camtrack import _registry_cli
from camtrack.background import METHODS as _ALL

__all__ = ["METHODS", "add_parser", "run"]

# Command-line method name -> registry entry: the --method choices and every method
# option (``--kebab-case`` of the engine keyword, with help and default from the
# function) come from camtrack.background.METHODS.
METHODS = _ALL.cli()

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


def _methods_text() -> str:
    lines = [
        textwrap.fill(f"{m.name}: {m.summary}", 88, initial_indent="  ", subsequent_indent="    ")
        for m in METHODS.values()
    ]
    return "methods:\n" + "\n".join(lines) + "\n"


def add_parser(sub, dataset_help: str) -> None:
    """Register the ``background`` subcommand on an argparse subparsers object."""
    p = sub.add_parser(
        "background",
        help="background of a stack (temporal/rolling/sparse median, spatial mean, "
        "frame statistics) to HDF5",
        description="Estimate the background of a (frames, rows, cols) stack with one of "
        "camtrack.background's methods. The stack is read lazily and the result written "
        "chunk by chunk, so stacks larger than memory work.",
        epilog=_methods_text() + "\n" + _EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("stack", type=Path, help="TIFF or HDF5 stack (frames, rows, cols)")
    p.add_argument("--dataset", default=None, help=dataset_help)
    p.add_argument("--method", required=True, choices=list(METHODS), metavar="METHOD",
                   help="one of: " + ", ".join(METHODS) + " (see methods below)")  # fmt: skip
    options = p.add_argument_group("method options (each names the methods it applies to)")
    _registry_cli.add_cli_options(options, METHODS.values())
    _registry_cli.add_frame_range(p)
    p.add_argument("-o", "--out", type=Path, required=True,
                   help="output HDF5 file (.h5 or .hdf5; a folder is refused)")  # fmt: skip
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """The chosen method's options that were given; others given are refused."""
    return _registry_cli.cli_options(args, METHODS[args.method], METHODS.values())


def _as_flags(message: str, method: Any) -> str:
    """Engine messages name keywords (`window`); on the command line say --window."""
    for param in method.cli_params():
        message = message.replace(f"`{param.name}`", param.flag)
    return re.sub(r"`stack`", "the stack", message)


def _frames(stack: Any, first: int, last: int | None) -> Any:
    t = int(stack.shape[0])
    last = t - 1 if last is None else last
    if not 0 <= first <= last < t:
        raise ValueError(
            f"--first-frame {first} and --last-frame {last} must satisfy 0 <= first <= "
            f"last < {t} (the stack's frame count)."
        )
    return stack if (first, last) == (0, t - 1) else stack[first : last + 1]


def _compute(args: argparse.Namespace, stack: Any, options: dict[str, Any], progress):
    """(datasets, attrs) of the method's result; big arrays stay lazy."""
    from camtrack.background import SparseMedianResult, SpatialMeanResult

    method = METHODS[args.method]
    if args.method == "sparse-median":
        # Its median images are computed here (dask input too): advance the bar.
        options = {**options, "progress": progress}
    res = method.func(stack, **options)
    if isinstance(res, SparseMedianResult):
        data = {
            "background": res.images,
            "frame_index": res.frame_index,
            "centers": res.centers,
            "dropped": res.dropped,
        }
        if res.offsets is not None:
            data["offsets"] = res.offsets
        return data, {"n_missing": int(res.n_missing)}
    if isinstance(res, SpatialMeanResult):
        return {"background": res.background}, {
            "noise_correction": float(res.noise_correction),
            "sigma": list(res.sigma),
        }
    return {"background": res}, {}


def write_streaming(out: Path, datasets: dict[str, Any], attrs: dict[str, Any], *,
                    overwrite: bool, protect: list, progress) -> Path:  # fmt: skip
    """Write numpy arrays at once and dask arrays chunk by chunk (with progress) to a
    temporary HDF5 file renamed to ``out`` when complete."""
    import dask.array as da
    import h5py
    import numpy as np

    from camtrack import io
    from camtrack._parallel import compute
    from camtrack._writers import fill_hdf5

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

    try:
        refuse_folder(args.out, "background.h5")
        if args.out.suffix.lower() not in (".h5", ".hdf5"):
            raise ValueError(f"-o {str(args.out)!r} must end in .h5 or .hdf5 (HDF5 output).")
        options = _options(args)
        check_outputs([args.out], args.overwrite, [args.stack])
        stack = _frames(
            open_one(args.stack, args.dataset, "stack"), args.first_frame, args.last_frame
        )
        progress = terminal_progress(f"background ({args.method})")
        try:
            datasets, attrs = _compute(args, stack, dict(options), progress)
        except (ValueError, TypeError) as exc:
            raise type(exc)(_as_flags(str(exc), METHODS[args.method])) from None
        attrs.update(
            method=args.method, options=options, source=str(args.stack),
            dataset=args.dataset, first_frame=args.first_frame, unit="ADU",
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
