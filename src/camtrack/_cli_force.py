"""``camtrack force TABLE --fs-hz F [--length-nm L | --radius-nm R] -o OUT.csv``: forces
per bead, and per plateau with a worm-like-chain fit."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_parser", "run"]


_EXAMPLE = """\
example:
  camtrack force tracks.csv --fs-hz 60 --length-nm 3000 -o forces.csv
  camtrack force tracks.csv --fs-hz 60 --radius-nm 500 --magnet-column magnet_mm -o fx.csv
  camtrack force tracks.h5 --fs-hz 60 --radius-nm 500 --plateaus "0-5999, 6000-11999" -o fx.h5

One row per bead (and plateau). With several plateaus (frame ranges, or runs of one
magnet position in a column of the table) the extension comes from z (the reference
beads' median z, or --surface-nm, is the surface), the pendulum length is extension +
radius, the drag is fixed there, and a worm-like chain is fitted per bead.
"""

_DRAG = {
    "fitted": "fitted",
    "height": "fixed: height_nm",
    "extension": "fixed: extension + radius",
}


def add_parser(sub) -> None:
    """Register the ``force`` subcommand on an argparse subparsers object."""
    p = sub.add_parser(
        "force",
        help="force per bead (and per plateau, with a WLC fit) from a tracking table",
        description="Force, stiffness, drag and corner frequency per bead, with 68 % "
        "intervals, from an exported tracking table (frame, bead, x_nm or x, z). Reference "
        "beads (the table's 'reference' column, or --reference) remove common drift and "
        "are left out.",
        epilog=_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("table", type=Path, help="tracking table (.csv or .h5) with frame, bead, x/y")
    p.add_argument("--fs-hz", type=float, required=True, help="frame rate, Hz")
    p.add_argument("--exposure-s", type=float, default=None,
                   help="exposure per frame, s (default: the whole frame period)")  # fmt: skip
    p.add_argument("--length-nm", type=float, default=0.0,
                   help="pendulum length, nm: extension + radius along the field, extension "
                        "across it (default: from z, the surface and --radius-nm)")  # fmt: skip
    p.add_argument("--radius-nm", type=float, default=0.0,
                   help="bead radius, nm (with --height-nm: drag fixed by Faxén's law; "
                        "needed for several plateaus)")  # fmt: skip
    p.add_argument("--height-nm", type=float, default=0.0,
                   help="bead centre above the surface, nm")  # fmt: skip
    p.add_argument("--drag", choices=sorted(_DRAG), default=None,
                   help="fitted, or fixed (Faxén) at --height-nm or at extension + radius "
                        "(default: height with --radius-nm and --height-nm, extension with "
                        "several plateaus, else fitted)")  # fmt: skip
    p.add_argument("--direction", choices=["parallel", "perpendicular"], default="parallel",
                   help="sideways motion along (default) or across the field")  # fmt: skip
    from camtrack import _registry_cli
    from camtrack.force import METHODS

    _registry_cli.add_method_option(
        p, METHODS, default="psd",
        help="how the force is measured. " + " ".join(
            f"{name}: {m.summary}" for name, m in METHODS.cli().items()),
    )  # fmt: skip
    p.add_argument("--axis", default="x", help="x (default) or y")
    p.add_argument("--nm-per-px", type=float, default=None,
                   help="pixel size when the table has no x_nm / y_nm column")  # fmt: skip
    p.add_argument("--temperature-k", type=float, default=296.15, help="temperature, K")
    p.add_argument("--noise-nm", type=float, default=None,
                   help="known tracking noise, nm (default: fitted)")  # fmt: skip
    p.add_argument("--reference", type=int, nargs="+", default=None,
                   help="reference (stuck) beads (default: the table's reference column)")  # fmt: skip
    p.add_argument("--no-drift", action="store_true",
                   help="do not subtract the reference beads' median displacement")  # fmt: skip
    p.add_argument("--surface-nm", type=float, default=None,
                   help="z of the surface, nm (default: the reference beads' median z)")  # fmt: skip
    p.add_argument("--focal-shift", type=float, default=None,
                   help="bead z per objective z (default: camtrack.force.FOCAL_SHIFT)")  # fmt: skip
    plateaus = p.add_mutually_exclusive_group()
    plateaus.add_argument("--plateaus", default="",
                          help="frame ranges at constant force, e.g. '0-5999, 6000-11999'")  # fmt: skip
    plateaus.add_argument("--magnet-column", default=None,
                          help="a column of the table with the magnet position per frame: "
                               "plateaus are its runs of 16 or more frames at one value")  # fmt: skip
    p.add_argument("-o", "--out", type=Path, required=True,
                   help="output table (.csv or .h5), one row per bead and plateau")  # fmt: skip
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")


def _params(args: argparse.Namespace, n_plateaus_hint: bool):
    from camtrack import force

    if args.drag is not None:
        drag = _DRAG[args.drag]
    elif args.radius_nm > 0 and args.height_nm > 0:
        drag = _DRAG["height"]
    elif n_plateaus_hint and args.radius_nm > 0:
        drag = _DRAG["extension"]
    else:
        drag = _DRAG["fitted"]
    return force.ForceParams(
        fs_hz=args.fs_hz, exposure_s=args.exposure_s, nm_per_px=args.nm_per_px,
        axis=args.axis, length_nm=args.length_nm, radius_nm=args.radius_nm,
        height_nm=args.height_nm, drag=drag, direction=args.direction, method=args.method,
        temperature_k=args.temperature_k,
        surface="surface_nm" if args.surface_nm is not None else "reference beads",
        surface_nm=args.surface_nm or 0.0,
        focal_shift=force.FOCAL_SHIFT if args.focal_shift is None else args.focal_shift,
        plateaus=force.parse_ranges(args.plateaus), magnet_column=args.magnet_column,
        drift=not args.no_drift, noise_nm=args.noise_nm,
    )  # fmt: skip


def run(args: argparse.Namespace, failure, refuse_folder, check_outputs) -> int:
    """Run ``camtrack force``; the helpers are the CLI's shared refusal/report functions."""
    from camtrack import force
    from camtrack.force import read_table

    try:
        refuse_folder(args.out, "forces.csv")
        if args.out.suffix.lower() not in (".csv", ".h5", ".hdf5"):
            raise ValueError(f"-o {str(args.out)!r} must end in .csv, .h5 or .hdf5.")
        check_outputs([args.out], args.overwrite, [args.table])
        several = bool(args.magnet_column) or len(force.parse_ranges(args.plateaus)) > 1
        params = _params(args, several)
        res = force.forces_from_table(read_table(args.table), params,
                                      reference=args.reference or ())  # fmt: skip
        if not res.rows:
            raise ValueError(f"{str(args.table)!r} holds only reference beads; nothing to calibrate.")  # fmt: skip
        out = res.save(args.out, source=str(args.table), overwrite=args.overwrite,
                       protect=[args.table])  # fmt: skip
        several = len({r["plateau"] for r in res.rows}) > 1
        for row in res.rows:
            lo, hi = row["force_lo_pn"], row["force_hi_pn"]
            flag = "  FLAGGED" if row["flagged"] else ""
            where = f", plateau {row['plateau']}, extension {row['extension_nm']:.0f} nm" if several else ""  # fmt: skip
            print(f"bead {row['bead']}{where}: {row['force_pn']:.4g} pN [{lo:.4g}, {hi:.4g}] "
                  f"({row['method']}){flag}")  # fmt: skip
            if row["warnings"]:
                print(f"  note: {row['warnings']}")
        for b, fit in res.wlc.items():
            if isinstance(fit, str):
                print(f"bead {b}: {fit}")
            else:
                print(f"bead {b}: worm-like chain L_p {fit.persistence_nm:.1f} +- "
                      f"{fit.persistence_err_nm:.1f} nm, L_c {fit.contour_nm:.0f} +- "
                      f"{fit.contour_err_nm:.0f} nm")  # fmt: skip
        if res.reference.size:
            print(f"drift: median of reference beads {res.reference.tolist()} subtracted")
        for note in res.notes:
            print(f"  note: {note}")
        print(f"wrote {out}")
    except (ValueError, TypeError, OSError, ImportError) as exc:
        print(failure("force", exc), file=sys.stderr)
        return 2
    return 0
