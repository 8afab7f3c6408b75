"""The ``camtrack`` command: demo, gain, pixel calibration, backgrounds, bead finding,
Z-LUTs, tracking, forces, file info.

``camtrack demo`` opens napari with the sample data and every widget the plugin
contributes docked. Without a display (or with ``--headless``) it runs the engine
on the same sample data instead and writes the results to a folder.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from camtrack import __version__

__all__ = ["has_display", "main"]


def has_display() -> bool:
    """True when a GUI can open: a display server on Linux, always elsewhere."""
    if not sys.platform.startswith("linux"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


_DATASET_HELP = (
    "which stack of the file, as `camtrack info FILE` lists them: a key ('ch1', 's1 ch0', "
    "'pages', '/events/image', '/data[0]' for a 3-D part of a 4-D dataset), a name or an "
    "index (default: the file's only 3-D stack)"
)


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
        epilog="example:\n  camtrack demo --headless --out demo-results\n\n"
        "The headless run finds the sample's beads, builds a Z-LUT from its z-sweep, tracks "
        "the beads and compares every table with the simulation's truth in summary.json.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument(
        "--headless",
        action="store_true",
        help="run the engine on the sample data and write results, without napari",
    )
    demo.add_argument(
        "-o",
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
        epilog="example:\n  camtrack gain flat.tif --dark dark.tif -o gain.json\n"
        "  camtrack gain camera.h5 --dataset /flat --dark camera.h5 --dark-dataset /dark "
        "-o gain.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    gain.add_argument("stack", type=Path, help="TIFF or HDF5 stack of a static, non-uniform scene")
    gain.add_argument("--dataset", default=None, help=_DATASET_HELP)
    gain.add_argument(
        "--dark", type=Path, default=None, help="dark stack (TIFF/HDF5) of the same camera"
    )
    gain.add_argument("--dark-dataset", default=None,
                      help="which stack of the --dark file, keys as for --dataset (e.g. the "
                           "dark and the flat stacks in one HDF5 file)")  # fmt: skip
    gain.add_argument(
        "--offset-adu", type=float, default=None, help="known offset (without --dark)"
    )
    _gain_method_options(gain)
    gain.add_argument("-o", "--out", type=Path, default=None,
                      help="JSON result file (maps go next to it as .h5; a folder is refused); "
                           "default: print only")  # fmt: skip
    gain.add_argument("--overwrite", action="store_true",
                      help="replace an existing result (the JSON and its .h5 together)")  # fmt: skip

    from camtrack import _cli_background, _cli_calibrate, _cli_find, _cli_zlut

    _cli_background.add_parser(sub, _DATASET_HELP)
    _cli_calibrate.add_parser(sub, _DATASET_HELP)
    _cli_find.add_parser(sub, _DATASET_HELP)
    _cli_zlut.add_parser(sub, _DATASET_HELP)

    track = sub.add_parser(
        "track",
        help="track beads through a stack: x, y (and z with a Z-LUT) per frame to CSV/HDF5",
        epilog="example:\n  camtrack find-beads beads.tif -o beads.csv\n"
        "  camtrack zlut zsweep.tif --z-csv zsweep_z.csv -o lut.h5\n"
        "  camtrack track beads.tif --lut lut.h5 --beads beads.csv -o tracks.csv\n"
        "  camtrack track beads.tif --lut lut.h5 --camera gain.json -o tracks.csv",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    track.add_argument("stack", type=Path, help="TIFF or HDF5 stack (T, Y, X) of the beads")
    track.add_argument("--dataset", default=None, help=_DATASET_HELP)
    track.add_argument("--lut", type=Path, default=None,
                       help="Z-LUT file (.h5/.npz from the widget or ZLut.save); none: x, y only")  # fmt: skip
    track.add_argument("--beads", type=Path, default=None,
                       help="CSV of start positions with columns x, y (px) and optionally "
                            "reference (1 = stuck bead), e.g. from `camtrack find-beads`; "
                            "default: find beads in the first frame")  # fmt: skip
    track.add_argument("--roi-size", type=int, default=None,
                       help="ROI size in px (default: the LUT's, else 64)")  # fmt: skip
    track.add_argument("--radius", type=float, default=None,
                       help="rough bead radius hint for finding beads without --beads, px "
                            "(default: every size)")  # fmt: skip
    track.add_argument("--reference", type=int, nargs="*", default=None,
                       help="indices of reference (stuck) beads for drift correction")  # fmt: skip
    _mode_option(track)
    _centre_option(track, lut=True)
    from camtrack._registry_cli import add_frame_range

    add_frame_range(track)
    track.add_argument("--nm-per-px", type=float, default=None,
                       help="pixel size (default: from the file when it says)")  # fmt: skip
    track.add_argument("--fs-hz", type=float, default=None,
                       help="frame rate in Hz, for the time column t_s (default: from the file "
                            "when it says: OME TimeIncrement, ImageJ finterval, HDF5 fs_hz)")  # fmt: skip
    track.add_argument("--exposure-s", type=float, default=None,
                       help="exposure per frame in s, at most 1/fs (default: from the file "
                            "when it says: OME ExposureTime, HDF5 exposure_s)")  # fmt: skip
    _add_camera_options(track)
    track.add_argument("--scheduler", default=None,
                       help="track frame chunks in parallel on this dask.distributed address, or "
                            "'threads'/'processes' (default: $DASK_SCHEDULER_ADDRESS, else in order here)")  # fmt: skip
    track.add_argument("-o", "--out", type=Path, required=True,
                       help="output table file (.csv or .h5; a folder is refused)")  # fmt: skip
    track.add_argument("--overwrite", action="store_true", help="replace an existing table")

    info = sub.add_parser(
        "info",
        help="describe the stacks camtrack finds in a TIFF/HDF5 file",
        epilog="example:\n  camtrack info recording.h5",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    info.add_argument("path", type=Path)
    from camtrack import _cli_force

    _cli_force.add_parser(sub)
    return parser


def _method_option(cmd: argparse.ArgumentParser, registry, *, default: str, intro: str) -> None:
    """The option that picks a method (``--method``, ``--mode``) from an engine registry,
    its help listing each method's summary."""
    from camtrack import _registry_cli

    _registry_cli.add_method_option(
        cmd, registry, default=default,
        help=intro + " " + " ".join(f"{name}: {m.summary}" for name, m in registry.cli().items()),
    )  # fmt: skip


def _gain_method_options(gain: argparse.ArgumentParser) -> None:
    """--method and the fit options of ``camtrack gain``, from camtrack.gain.METHODS."""
    from camtrack import _registry_cli
    from camtrack.gain import METHODS

    _method_option(gain, METHODS, default="auto",
                   intro="how the per-pixel mean and variance are measured.")  # fmt: skip
    group = gain.add_argument_group("fit options (every method; default: the engine's)")
    _registry_cli.add_cli_options(group, METHODS.cli().values())


def _mode_option(cmd: argparse.ArgumentParser) -> None:
    """--mode of ``camtrack track`` and ``camtrack zlut``, from the tracking registry."""
    from camtrack.tracking._registry import MODES

    _method_option(cmd, MODES, default="precise",
                   intro="how x, y (and the profiles) are measured.")  # fmt: skip


def _centre_option(cmd: argparse.ArgumentParser, *, lut: bool) -> None:
    """--centre of ``camtrack track`` (``lut``: default the LUT's) and ``camtrack zlut``,
    its choices and help from camtrack.tracking._registry.CENTRES."""
    from camtrack.tracking._registry import CENTRES

    names = list(CENTRES.cli())
    default = "the LUT's, else symmetry" if lut else "symmetry"
    text = (
        f"how x, y are measured (default: {default}): "
        + " ".join(f"{name}: {m.summary}" for name, m in CENTRES.cli().items())
        + " A classic block (not symmetry) runs at its defaults and gives no x_err, y_err."
    )
    cmd.add_argument("--centre", dest="centre", choices=names, default=None if lut else names[0],
                     metavar="{" + ",".join(names) + "}", help=text.replace("%", "%%"))  # fmt: skip


def _profile_option(cmd: argparse.ArgumentParser) -> None:
    """--profile of ``camtrack zlut``, from camtrack.tracking._registry.PROFILES."""
    from camtrack.tracking._registry import PROFILES

    names = list(PROFILES.cli())
    text = f"the z profile (default {names[0]}): " + " ".join(
        f"{name}: {m.summary}" for name, m in PROFILES.cli().items()
    )
    cmd.add_argument("--profile", dest="profile", choices=names, default=names[0],
                     metavar="{" + ",".join(names) + "}", help=text.replace("%", "%%"))  # fmt: skip


def _add_camera_options(cmd: argparse.ArgumentParser) -> None:
    """The camera noise model of the fit: a calibration file or scalars (#15 item 2)."""
    group = cmd.add_argument_group(
        "camera noise model (optional; weights each pixel by its variance and gives "
        "x_err, y_err, z_err in that camera's noise)"
    )
    group.add_argument("--camera", type=Path, default=None,
                       help="calibration file: the JSON of `camtrack gain -o` (with a dark "
                            "stack, for offset and read noise) or the .h5 of `camtrack "
                            "calibrate` (per-pixel sCMOS maps)")  # fmt: skip
    group.add_argument("--e-per-adu", type=float, default=None,
                       help="photoelectrons per ADU (overrides the file's)")  # fmt: skip
    group.add_argument("--offset-adu", type=float, default=None,
                       help="dark offset in ADU (overrides the file's; default 0)")  # fmt: skip
    group.add_argument("--read-noise-e", type=float, default=None,
                       help="read noise in e- RMS (overrides the file's; default 0)")  # fmt: skip
    group.add_argument("--excess-noise-factor", type=float, default=None,
                       help="F**2 of the shot noise with the scalars: 2 for an EMCCD whose "
                            "--e-per-adu is input-referred (a datasheet's); a --camera "
                            "file carries its own (camtrack gain --excess-noise-factor)")  # fmt: skip


def _camera_kwargs(args: argparse.Namespace) -> dict:
    """The engine's camera keywords from the --camera options (a camera dict where
    --excess-noise-factor is given, which the engine takes only that way)."""
    kw = {
        "camera": args.camera, "e_per_adu": args.e_per_adu,
        "offset_adu": args.offset_adu, "read_noise_e": args.read_noise_e,
    }  # fmt: skip
    f2 = getattr(args, "excess_noise_factor", None)
    if f2 is None:
        return kw
    if args.camera is not None:
        raise ValueError(
            "--excess-noise-factor goes with the scalars only: the --camera file carries "
            "the factor its gain was fitted with (camtrack gain --excess-noise-factor 2)."
        )
    if args.e_per_adu is None:
        raise ValueError("--excess-noise-factor needs --e-per-adu (input-referred e-/ADU).")
    camera = {k: kw[k] for k in ("e_per_adu", "offset_adu", "read_noise_e") if kw[k] is not None}
    return {"camera": {**camera, "excess_noise_factor": f2}}


def _cmd_info(path: Path) -> int:
    """Each stack with its shape and the ``--dataset`` key that picks it (#14 item 10)."""
    import shlex
    import warnings

    from camtrack import io

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        try:
            items = io.read_layers(path, alternatives=True)
        except (ValueError, OSError) as exc:
            print(f"camtrack info: {exc}", file=sys.stderr)
            return 2
    for data, meta in items:
        kwargs = meta.to_layer_kwargs()
        line = (
            f"{kwargs['name']}: shape {tuple(data.shape)}, dtype {data.dtype}, "
            f"chunks {tuple(c[0] for c in data.chunks)}, scale {kwargs.get('scale')}"
        )
        known = [
            f"{label} {value:g} {unit}"
            for label, value, unit in (
                ("pixel", meta.nm_per_px, "nm"),
                ("frame rate", meta.fs_hz, "Hz"),
                ("exposure", meta.exposure_s, "s"),
            )
            if value
        ]
        if known:  # what track / force take by default (--nm-per-px, --fs-hz, --exposure-s)
            line += "; " + ", ".join(known)
        if len(items) > 1:
            line += f"; pick with --dataset {shlex.quote(meta.key or meta.name)}"
        n_parts = _n_parts(data, meta)
        if n_parts:
            key = _part_key(meta)
            line += (
                f"; its 3-D parts: --dataset {shlex.quote(f'{key}[0]')} to "
                f"{shlex.quote(f'{key}[{n_parts - 1}]')}"
            )
        print(line)
    for w in caught:
        print(f"note: {w.message}", file=sys.stderr)
    return 0


def _n_parts(data, meta) -> int:
    """Length of the first axis of a stack of 4 or more dimensions (not counting RGB), else 0."""
    nd = data.ndim - (1 if meta.axes.endswith("S") else 0)
    return int(data.shape[0]) if nd >= 4 else 0


def _part_key(meta) -> str:
    """The key to which ``[i]`` is appended: a single TIFF stack has the empty key."""
    return meta.key or (f"s{meta.series}" if meta.series is not None else meta.name)


def _open_one(
    path: Path, dataset: str | None, what: str, *, with_info: bool = False,
    option: str = "--dataset",
):  # fmt: skip
    """The one (frames, rows, cols) stack of a file, or the one `dataset` names (#14 item 10);
    ``option`` is the command-line option that gave `dataset` (named in messages)."""
    from camtrack import io
    from camtrack.io._dispatch import describe_stacks, pick_stack

    if dataset is not None:
        data, meta = pick_stack(path, dataset, label=option)
    else:
        items = io.read_layers(path)
        stacks = [(a, m) for a, m in items if a.ndim == 3 and not m.axes.endswith("S")]
        if len(items) == 1:
            data, meta = items[0]
        elif len(stacks) == 1:
            data, meta = stacks[0]
        else:
            raise ValueError(
                f"{what} {str(path)!r} holds {len(items)} stacks ({describe_stacks(items)}); "
                f"choose one with {option} KEY (a key, a name or an index, as `camtrack "
                "info FILE` lists them)."
            )
    nd = data.ndim - (1 if meta.axes.endswith("S") else 0)
    if nd == 2:
        raise ValueError(
            f"{what} {str(path)!r}: {meta.name!r} is one 2-D image (shape "
            f"{tuple(data.shape)}); this command needs a stack of frames (frames, rows, "
            "cols). Save the frames as one 3-D stack (a multi-page TIFF or a 3-D HDF5 "
            "dataset)."
        )
    if nd >= 4 or data.ndim != 3:
        n, key = _n_parts(data, meta), _part_key(meta)
        raise ValueError(
            f"{what} {str(path)!r}: {meta.name!r} has shape {tuple(data.shape)} (axes "
            f"{meta.axes}); this command needs one (frames, rows, cols) stack. Pick a 3-D "
            f"part with {option} '{key}[0]' (up to '{key}[{n - 1}]')."
        )
    return (data, meta) if with_info else data


def _check_outputs(paths: Sequence[Path], overwrite: bool, inputs: list) -> None:
    """Refuse the outputs before any work: an input, or (without --overwrite) an
    existing file."""
    from camtrack._writers import check_targets

    check_targets(paths, overwrite=overwrite, protect=inputs)


def _refuse_folder(out: Path, example: str) -> None:
    """-o names the output file; a folder is refused (never a silent ``<folder>.json``)."""
    if out.is_dir():
        raise IsADirectoryError(
            f"-o {str(out)!r} is a folder; give a file name inside it, "
            f"e.g. -o {str(out / example)!r}."
        )


# The running subcommand's options by engine keyword (dest), e.g. {"fs_hz": "--fs-hz"}:
# set by main() so that an engine message naming `fs_hz` reads --fs-hz on the terminal.
_OPTION_OF: dict[str, str] = {}


def _subcommand_options(parser: argparse.ArgumentParser, command: str) -> dict[str, str]:
    """dest -> the long option string, for the optional arguments of one subcommand."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    sub = subs[0].choices.get(command) if subs else None
    if sub is None:
        return {}
    return {
        a.dest: max(a.option_strings, key=len)
        for a in sub._actions
        if a.option_strings and a.dest != "help"
    }


def _as_options(text: str) -> str:
    """Engine keywords in backticks that are options of this command, as the options."""
    return re.sub(
        r"`([A-Za-z_][A-Za-z0-9_]*)`",
        lambda m: _OPTION_OF.get(m.group(1), m.group(0)),
        text,
    )


def _failure(command: str, exc: BaseException) -> str:
    """The error line for the terminal, with command-line advice for existing outputs;
    an engine keyword the message names (`fs_hz`) is written as its option (--fs-hz)."""
    target = getattr(exc, "target", None)
    if isinstance(exc, FileExistsError) and target:
        return f"camtrack {command}: {target!r} already exists; add --overwrite to replace it."
    return f"camtrack {command}: {_as_options(str(exc))}"


def _read_beads(path: Path) -> tuple[list[tuple[float, float]], list[int]]:
    """Start positions (x, y) and reference-bead indices from a CSV with a header."""
    import csv

    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or not {"x", "y"} <= set(rows[0]):
        cols = sorted(rows[0]) if rows else []
        raise ValueError(
            f"--beads {str(path)!r} needs a header row with columns x and y (px), one bead "
            f"per row; got columns {cols} and {len(rows)} rows."
        )
    try:
        xy = [(float(r["x"]), float(r["y"])) for r in rows]
        ref = [i for i, r in enumerate(rows) if str(r.get("reference", "0")).strip().lower()
               in ("1", "true", "yes")]  # fmt: skip
    except ValueError as exc:
        raise ValueError(f"--beads {str(path)!r}: {exc}; x and y must be numbers.") from None
    return xy, ref


def _cmd_track(args: argparse.Namespace) -> int:
    from camtrack import tracking
    from camtrack._cli_progress import terminal_progress

    try:
        inputs = [p for p in (args.stack, args.lut, args.beads, args.camera) if p is not None]
        _refuse_folder(args.out, "tracking.csv")
        if args.out.suffix.lower() not in (".csv", ".h5", ".hdf5"):
            raise ValueError(
                f"-o {str(args.out)!r} must end in .csv, .h5 or .hdf5 (the suffix picks the "
                "format)."
            )
        _check_outputs([args.out], args.overwrite, inputs)
        stack, info = _open_one(args.stack, args.dataset, "stack", with_info=True)
        zlut = tracking.load_zlut(args.lut) if args.lut is not None else None
        roi_size = args.roi_size or (zlut.roi_size if zlut is not None else 64)
        t = int(stack.shape[0])
        first = args.first_frame
        last = t - 1 if args.last_frame is None else args.last_frame
        if not 0 <= first <= last < t:
            raise ValueError(
                f"--first-frame {first} and --last-frame {last} must satisfy 0 <= first <= "
                f"last < {t} (the stack's frame count)."
            )
        if args.beads is not None:
            positions, reference = _read_beads(args.beads)
        else:
            x, y = tracking.find_beads(
                stack[first].compute() if hasattr(stack, "compute") else stack[first],
                radius=args.radius, roi_size=roi_size,
            )  # fmt: skip
            positions, reference = list(zip(x.tolist(), y.tolist(), strict=True)), []
            if not positions:
                raise ValueError("No beads found in the first frame; pass --beads CSV.")
            print(f"found {len(positions)} beads in frame {first}")
        if args.reference is not None:
            reference = args.reference
        fs_hz = args.fs_hz if args.fs_hz is not None else info.fs_hz
        exposure_s = args.exposure_s
        if exposure_s is None and info.exposure_s is not None:
            # The file's exposure only where it fits the frame rate used (--fs-hz may differ).
            fits = fs_hz is None or not fs_hz > 0 or info.exposure_s * fs_hz <= 1 + 1e-9
            exposure_s = info.exposure_s if fits else None
        res = tracking.track_beads(
            stack[first : last + 1], positions, roi_size=roi_size, zlut=zlut,
            reference=reference or None, mode=args.mode, centre=args.centre,
            scheduler=args.scheduler,
            progress=terminal_progress("tracking"), fs_hz=fs_hz, exposure_s=exposure_s,
            **_camera_kwargs(args),
        )  # fmt: skip
        nm_per_px = args.nm_per_px or info.nm_per_px
        out = res.save(
            args.out, nm_per_px=nm_per_px, first_frame=first, source=str(args.stack),
            overwrite=args.overwrite, protect=inputs, reference=reference or None,
        )  # fmt: skip
        n_nan = int(np.isnan(np.asarray(res.x)).sum())
        print(
            f"tracked {len(positions)} beads over {last - first + 1} frames "
            f"({n_nan} NaN rows); wrote {out}"
        )
    except (ValueError, TypeError, OSError, ImportError) as exc:
        print(_failure("track", exc), file=sys.stderr)
        return 2
    return 0


def _cmd_gain(args: argparse.Namespace) -> int:
    from camtrack import _registry_cli
    from camtrack.gain import METHODS, estimate_gain

    try:
        inputs = [p for p in (args.stack, args.dark) if p is not None]
        if args.out is not None:  # both files checked before the computation
            from camtrack.gain._result_io import result_paths

            _refuse_folder(args.out, "gain.json")
            _check_outputs(result_paths(args.out), args.overwrite, inputs)
        if args.dark_dataset is not None and args.dark is None:
            raise ValueError(
                f"--dark-dataset {args.dark_dataset!r} needs --dark FILE (the file holding "
                "that dark stack); give --dark, or leave --dark-dataset out."
            )
        stack = _open_one(args.stack, args.dataset, "stack")
        dark = (
            _open_one(args.dark, args.dark_dataset, "--dark", option="--dark-dataset")
            if args.dark else args.offset_adu
        )  # fmt: skip
        method = METHODS[args.method]
        options = _registry_cli.cli_options(args, method, METHODS.cli().values())
        res = estimate_gain(stack, dark=dark, **method.kwargs(options))
        print(res.summary())
        for message in res.warnings:
            print(f"note: {message}")
        if args.out is not None:
            json_path, h5_path = res.save(
                args.out,
                source={"stack": str(args.stack), "dark": str(args.dark) if args.dark else None},
                overwrite=args.overwrite,
                protect=inputs,
            )
            print(f"wrote {json_path} and {h5_path}")
    except (ValueError, TypeError, OSError) as exc:
        print(_failure("gain", exc), file=sys.stderr)
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``camtrack`` command; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    _OPTION_OF.clear()
    _OPTION_OF.update(_subcommand_options(parser, args.command))
    if args.command == "info":
        return _cmd_info(args.path)
    if args.command == "gain":
        return _cmd_gain(args)
    if args.command == "track":
        return _cmd_track(args)
    if args.command in ("find-beads", "zlut", "background", "calibrate"):
        from camtrack import _cli_background, _cli_calibrate, _cli_find, _cli_zlut

        module = {"find-beads": _cli_find, "zlut": _cli_zlut, "background": _cli_background,
                  "calibrate": _cli_calibrate}[args.command]  # fmt: skip
        return module.run(args, _failure, _refuse_folder, _check_outputs, _open_one)
    if args.command == "force":
        from camtrack import _cli_force

        return _cli_force.run(args, _failure, _refuse_folder, _check_outputs)
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
