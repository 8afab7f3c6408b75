"""Track bead ROIs with MagTrack's ``stack_to_xyzp``; save x, y, z; print one JSON line.

Run with the magtrack venv's Python (see ``_find.py``)::

    python benchmarks/peers/magtrack_track.py rois.npy lut.npy z.npy --out xyz.npz

``rois.npy`` is (N, S, S) (roi, row, col), any dtype; ``lut.npy`` a calibration z-sweep
(M, S, S) with ``z.npy`` its (M,) z in nm, one frame per z or several frames per plane
(frames with the same z are averaged first). The Z-LUT is MagTrack's layout,
``vstack([z, radial_profile(lut, xc, yc)])``, with the centre (xc, yc) per plane from
MagTrack's own x, y pipeline (``--lut-center fit``, default), the ROI centre
``(S - 1) / 2`` (``middle``) or ``--lut-xy X Y``. Both conversions to MagTrack's frames-last
float layout (``(S, S, N)``, C-contiguous) and the Z-LUT are outside the timing and
reported as ``convert_seconds`` and ``zlut_seconds``.

``--functions xy0.npy`` also times MagTrack's building blocks one by one on the same
stack (``--repeat`` calls each, median): ``center_of_mass``, ``auto_conv``,
``auto_conv_sub_pixel``, ``auto_conv_multiline_sub_pixel``, ``qi`` (MagTrack's ``qi`` is
a 3-point quadratic interpolation of the intensity), ``radial_profile``, ``fft_profile``
and ``lookup_z``. ``xy0.npy`` is (2, N): the start x, y handed to the refiners; the
profiles are taken about ``--truth-xy truth.npy`` (2, N) when given, else about the
pipeline's x, y. Results per function go to ``--out`` as ``fn_<name>_x`` / ``_y`` / ``_z``
and the JSON record gets ``functions: {name: {seconds, rois_per_s}}``.

Coordinates as in camtrack: x = column, y = row, pixel centres at integers, z in the units
of ``z.npy``. ``import magtrack`` sets ``np.seterr(divide="ignore", invalid="ignore")`` for
the whole process, which is why it runs here, in its own process.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import emit, load_stack, quiet_stdout, timed


def frames_last(stack: np.ndarray, dtype: str) -> np.ndarray:
    """(N, S, S) -> C-contiguous (S, S, N) float, MagTrack's layout."""
    return np.ascontiguousarray(np.moveaxis(stack.astype(dtype, copy=False), 0, -1))


def build_zlut(mt, lut: np.ndarray, z: np.ndarray, center: str, xy, dtype: str):
    z = np.asarray(z, dtype=np.float64).ravel()
    if lut.shape[0] != z.size:
        raise SystemExit(f"lut has {lut.shape[0]} frames but z has {z.size} values")
    planes, inverse = np.unique(z, return_inverse=True)
    img = np.zeros((planes.size, *lut.shape[1:]), np.float64)
    np.add.at(img, inverse, lut.astype(np.float64))
    img /= np.bincount(inverse, minlength=planes.size)[:, None, None]
    stack = frames_last(img, dtype)
    n = planes.size
    if xy is not None:
        xc, yc = np.full(n, xy[0]), np.full(n, xy[1])
    elif center == "middle":
        xc = np.full(n, (lut.shape[2] - 1) / 2.0)
        yc = np.full(n, (lut.shape[1] - 1) / 2.0)
    else:
        xc, yc, _, _ = mt.stack_to_xyzp(stack)
    zlut = np.vstack([planes[None, :], mt.radial_profile(stack, xc, yc)])
    return zlut, float(np.mean(xc)), float(np.mean(yc))


def _time_one(fn, args: tuple, k: int, repeat: int):
    """Median time of ``fn(*args)``, warmed up on the first ``k`` ROIs (frames last)."""

    def head(v):
        return v[..., :k] if isinstance(v, np.ndarray) else v

    return timed(lambda: fn(*args), lambda: fn(*map(head, args)), repeat)


def time_blocks(mt, stack, small, zlut, xy0, centres, repeat: int, arrays: dict) -> dict:
    """Time MagTrack's building blocks on ``stack``; put their outputs into ``arrays``."""
    n, k = stack.shape[2], small.shape[2]
    x0, y0 = (np.asarray(v, np.float64) for v in xy0)
    cx, cy = (np.asarray(v, np.float64) for v in centres)
    prof = mt.radial_profile(stack, cx, cy)
    calls = {
        "center_of_mass": (mt.center_of_mass, (stack,)),
        "auto_conv": (mt.auto_conv, (stack, x0, y0)),
        "auto_conv_sub_pixel": (mt.auto_conv_sub_pixel, (stack, x0, y0)),
        "auto_conv_multiline_sub_pixel": (mt.auto_conv_multiline_sub_pixel, (stack, x0, y0)),
        "qi": (mt.qi, (stack, x0, y0)),
        "radial_profile": (mt.radial_profile, (stack, cx, cy)),
        "fft_profile": (mt.fft_profile, (stack,)),
        "lookup_z": (lambda p: mt.lookup_z(p, zlut), (prof,)),
    }
    out = {}
    for name, (fn, args) in calls.items():
        res, fig = _time_one(fn, args, k, repeat)
        if name == "lookup_z":
            arrays[f"fn_{name}_z"] = res
        elif not name.endswith("profile"):
            arrays[f"fn_{name}_x"], arrays[f"fn_{name}_y"] = res[0], res[1]
        out[name] = {"seconds": fig["seconds"], "seconds_all": fig["seconds_all"], "rois_per_s": n / fig["seconds"]}  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rois", help=".npy (N, S, S) ROIs")
    ap.add_argument("lut", help=".npy (M, S, S) calibration z-sweep")
    ap.add_argument("z", help=".npy (M,) z of each lut frame")
    ap.add_argument("--out", help="save x, y, z (N,) to this .npz")
    ap.add_argument("--lut-center", choices=["fit", "middle"], default="fit")
    ap.add_argument("--lut-xy", type=float, nargs=2, metavar=("X", "Y"))
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--load", choices=["ram", "mmap"], default="ram")
    ap.add_argument("--warmup-rois", type=int, default=16)
    ap.add_argument("--functions", metavar="XY0", help=".npy (2, N) start x, y: time blocks")
    ap.add_argument("--truth-xy", metavar="XY", help=".npy (2, N) centres for the profiles")
    args = ap.parse_args(argv)
    quiet_stdout()

    t0 = time.perf_counter()
    import magtrack as mt

    import_s = time.perf_counter() - t0
    rois = load_stack(args.rois, args.load)
    if rois.ndim != 3 or rois.shape[1] != rois.shape[2]:
        raise SystemExit(f"rois must be (N, S, S) with square ROIs; got {rois.shape}")
    t0 = time.perf_counter()
    zlut, lut_x, lut_y = build_zlut(
        mt, np.load(args.lut), np.load(args.z), args.lut_center, args.lut_xy, args.dtype
    )
    zlut_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    stack = frames_last(rois, args.dtype)
    convert_s = time.perf_counter() - t0
    small = np.ascontiguousarray(stack[:, :, : args.warmup_rois])

    (x, y, z, _profiles), fig = timed(
        lambda: mt.stack_to_xyzp(stack, zlut),
        lambda: mt.stack_to_xyzp(small, zlut),
        args.repeat,
    )
    arrays = {"x": x, "y": y, "z": z}
    functions = None
    if args.functions:
        centres = np.load(args.truth_xy) if args.truth_xy else np.stack([x, y])
        functions = time_blocks(mt, stack, small, zlut, np.load(args.functions), centres, args.repeat, arrays)  # fmt: skip
    if args.out:
        np.savez(args.out, **arrays)
    n = stack.shape[2]
    emit(
        {
            "function": "stack_to_xyzp",
            **fig,
            "rois_per_s": n / fig["seconds"],
            "convert_seconds": convert_s,
            "zlut_seconds": zlut_s,
            "import_seconds": import_s,
            "n_rois": n,
            "roi_size": int(stack.shape[0]),
            "dtype": str(rois.dtype),
            "work_dtype": args.dtype,
            "input_mb": rois.nbytes / 1e6,
            "load": args.load,
            "lut_planes": int(zlut.shape[1]),
            "lut_center": "xy" if args.lut_xy else args.lut_center,
            "lut_center_mean_xy": [lut_x, lut_y],
            "n_nan": int(np.count_nonzero(~np.isfinite(x) | ~np.isfinite(y) | ~np.isfinite(z))),
            "functions": functions,
        },
        "magtrack",
    )


if __name__ == "__main__":
    main()
