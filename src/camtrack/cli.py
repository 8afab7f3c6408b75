"""The ``camtrack`` command: demo (napari or headless), and file inspection.

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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``camtrack`` command; returns the exit status."""
    args = _build_parser().parse_args(argv)
    if args.command == "info":
        return _cmd_info(args.path)
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
