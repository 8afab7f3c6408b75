"""The ``camtrack`` command: demo (napari or headless), gain, and file inspection.

``camtrack demo`` opens napari with the sample data and every widget the plugin
contributes docked. Without a display (or with ``--headless``) it runs the engine
on the same sample data instead and writes the results to a folder.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from camtrack import __version__

__all__ = ["has_display", "main"]


def has_display() -> bool:
    """True when a GUI can open: a display server on Linux, always elsewhere."""
    if not sys.platform.startswith("linux"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="camtrack",
        description="Quantitative camera image stacks: gain, backgrounds, bead tracking.",
    )
    parser.add_argument("--version", action="version", version=f"camtrack {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser(
        "demo",
        help="open napari with the sample data (headless batch run without a display)",
    )
    demo.add_argument(
        "--headless",
        action="store_true",
        help="run the engine on the sample data and write results, without napari",
    )
    demo.add_argument(
        "--out",
        type=Path,
        default=Path("camtrack-demo-results"),
        help="folder for the headless results (default: ./camtrack-demo-results)",
    )
    demo.add_argument(
        "--screenshot",
        type=Path,
        default=None,
        help="save a screenshot of the viewer to this PNG and close (GUI mode)",
    )

    gain = sub.add_parser(
        "gain",
        help="photon transfer of a stack: e-/ADU, offset, read noise; JSON + HDF5 maps",
    )
    gain.add_argument("stack", type=Path, help="TIFF or HDF5 stack of a static, non-uniform scene")
    gain.add_argument("--dataset", default=None, help="HDF5 dataset (default: the only stack)")
    gain.add_argument(
        "--dark", type=Path, default=None, help="dark stack (TIFF/HDF5) of the same camera"
    )
    gain.add_argument(
        "--offset-adu", type=float, default=None, help="known offset (without --dark)"
    )
    gain.add_argument("--method", default="auto", help="auto, median, meanvar, diff or robust")
    gain.add_argument("--nbins", type=int, default=50)
    gain.add_argument(
        "--fit-range", type=float, nargs=2, default=(33.0, 66.0), metavar=("LO", "HI")
    )
    gain.add_argument("--excess-noise-factor", type=float, default=1.0, help="F**2: 2 for EMCCD")
    gain.add_argument("-o", "--out", type=Path, default=None,
                      help="JSON result (maps go next to it as .h5); default: print only")  # fmt: skip
    gain.add_argument("--overwrite", action="store_true")

    info = sub.add_parser("info", help="describe the stacks camtrack finds in a TIFF/HDF5 file")
    info.add_argument("path", type=Path)
    return parser


def _cmd_info(path: Path) -> int:
    from camtrack import io

    try:
        items = io.read_layers(path)
    except (ValueError, OSError) as exc:
        print(f"camtrack info: {exc}", file=sys.stderr)
        return 2
    for data, meta in items:
        kwargs = meta.to_layer_kwargs()
        print(
            f"{kwargs['name']}: shape {tuple(data.shape)}, dtype {data.dtype}, "
            f"chunks {tuple(c[0] for c in data.chunks)}, scale {kwargs.get('scale')}"
        )
    return 0


def _open_one(path: Path, dataset: str | None, what: str):
    from camtrack import io

    items = io.read_layers(path)
    if dataset is not None:
        items = [
            (a, m) for a, m in items if getattr(m, "dataset", None) in (dataset, "/" + dataset)
        ]
    stacks = [(a, m) for a, m in items if a.ndim == 3]
    if len(stacks) != 1:
        names = [m.name for _, m in items]
        raise ValueError(
            f"{what} {str(path)!r} holds {len(stacks)} 3-D stacks ({names}); name one with --dataset."
        )
    return stacks[0][0]


def _cmd_gain(args: argparse.Namespace) -> int:
    from camtrack.gain import estimate_gain

    try:
        stack = _open_one(args.stack, args.dataset, "stack")
        dark = _open_one(args.dark, None, "--dark") if args.dark else args.offset_adu
        res = estimate_gain(
            stack,
            dark=dark,
            method=args.method,
            nbins=args.nbins,
            fit_range=tuple(args.fit_range),
            excess_noise_factor=args.excess_noise_factor,
        )
        print(res.summary())
        for message in res.warnings:
            print(f"note: {message}")
        if args.out is not None:
            inputs = [p for p in (args.stack, args.dark) if p is not None]
            json_path, h5_path = res.save(
                args.out,
                source={"stack": str(args.stack), "dark": str(args.dark) if args.dark else None},
                overwrite=args.overwrite,
                protect=inputs,
            )
            print(f"wrote {json_path} and {h5_path}")
    except (ValueError, TypeError, OSError) as exc:
        print(f"camtrack gain: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``camtrack`` command; returns the exit status."""
    args = _build_parser().parse_args(argv)
    if args.command == "info":
        return _cmd_info(args.path)
    if args.command == "gain":
        return _cmd_gain(args)
    if args.command == "demo":
        from camtrack import _demo

        if args.headless or not has_display():
            if not args.headless:
                print("camtrack demo: no display found; running the headless batch demo.")
            return _demo.run_headless(args.out)
        return _demo.run_gui(screenshot=args.screenshot)
    raise AssertionError(args.command)  # pragma: no cover - argparse enforces choices


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
