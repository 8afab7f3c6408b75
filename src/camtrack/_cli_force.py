"""``camtrack force TABLE --fs-hz F --length-nm L -o OUT.csv``: forces per bead."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    """Register the ``force`` subcommand on an argparse subparsers object."""
    p = sub.add_parser(
        "force",
        help="force per bead from the sideways fluctuations in a tracking table (CSV/HDF5)",
        description="Force, stiffness, drag and corner frequency per bead, with 68 % "
        "intervals, from an exported tracking table (frame, bead, x_nm or x). Reference "
        "beads (the table's 'reference' column) remove common drift and are left out.",
    )
    p.add_argument("table", type=Path, help="tracking table (.csv or .h5) with frame, bead, x/y")
    p.add_argument("--fs-hz", type=float, required=True, help="frame rate, Hz")
    p.add_argument("--exposure-s", type=float, default=None,
                   help="exposure per frame, s (default: the whole frame period)")  # fmt: skip
    p.add_argument("--length-nm", type=float, required=True,
                   help="pendulum length, nm: extension + radius along the field, "
                        "extension across it")  # fmt: skip
    p.add_argument("--radius-nm", type=float, default=None,
                   help="bead radius, nm (with --height-nm: drag fixed by Faxén's law)")  # fmt: skip
    p.add_argument("--height-nm", type=float, default=None,
                   help="bead centre above the surface, nm")  # fmt: skip
    p.add_argument("--method", default="psd",
                   help="psd (default), allan, hadamard, equipartition or auto")  # fmt: skip
    p.add_argument("--axis", default="x", help="x (default) or y")
    p.add_argument("--nm-per-px", type=float, default=None,
                   help="pixel size when the table has no x_nm / y_nm column")  # fmt: skip
    p.add_argument("--temperature-k", type=float, default=296.15, help="temperature, K")
    p.add_argument("--noise-nm", type=float, default=None,
                   help="known tracking noise, nm (default: fitted)")  # fmt: skip
    p.add_argument("--no-drift", action="store_true",
                   help="do not subtract the reference beads' median displacement")  # fmt: skip
    p.add_argument("-o", "--out", type=Path, required=True, help="output CSV, one row per bead")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")


def run(args: argparse.Namespace, failure, refuse_folder, check_outputs) -> int:
    """Run ``camtrack force``; the helpers are the CLI's shared refusal/report functions."""
    from camtrack import io
    from camtrack.force import calibrate_force
    from camtrack.force._table import read_table, traces_from_table

    try:
        refuse_folder(args.out, "forces.csv")
        check_outputs([args.out], args.overwrite, [args.table])
        tt = traces_from_table(
            read_table(args.table), axis=args.axis, nm_per_px=args.nm_per_px,
            fs_hz=args.fs_hz, drift=not args.no_drift,
        )  # fmt: skip
        if tt.bead.size == 0:
            raise ValueError(
                f"{str(args.table)!r} holds only reference beads; nothing to calibrate."
            )
        res = calibrate_force(
            tt.x_nm, args.fs_hz, length_nm=args.length_nm, exposure_s=args.exposure_s,
            method=args.method, temperature_k=args.temperature_k, radius_nm=args.radius_nm,
            height_nm=args.height_nm, noise_nm=args.noise_nm,
        )  # fmt: skip
        rows = res.to_rows()
        for row, b in zip(rows, tt.bead, strict=True):
            row["bead"] = int(b)
        cols = {k: [r[k] for r in rows] for k in rows[0]}
        out = io.write_csv(args.out, cols, overwrite=args.overwrite, protect=[args.table])
        for row in rows:
            lo, hi = row["force_lo_pn"], row["force_hi_pn"]
            flag = "  FLAGGED" if row["flagged"] else ""
            print(f"bead {row['bead']}: {row['force_pn']:.4g} pN [{lo:.4g}, {hi:.4g}] "
                  f"({row['method']}){flag}")  # fmt: skip
            if row["warnings"]:
                print(f"  note: {row['warnings']}")
        if tt.reference.size:
            print(f"drift: median of reference beads {tt.reference.tolist()} subtracted")
            for note in tt.warnings:
                print(f"  note: {note}")
        print(f"wrote {out}")
    except (ValueError, TypeError, OSError, ImportError) as exc:
        print(failure("force", exc), file=sys.stderr)
        return 2
    return 0
