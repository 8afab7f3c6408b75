"""``camtrack demo``: the sample data in napari, or a headless batch run of the engine."""

from __future__ import annotations

from pathlib import Path

PLUGIN = "napari-camtrack"
SAMPLES = ("flat_field", "beads")


def _widget_names() -> list[str]:
    """Every widget the plugin contributes (the demo docks all of them)."""
    from npe2 import PluginManager

    manifest = PluginManager.instance().get_manifest(PLUGIN)
    return [w.display_name for w in (manifest.contributions.widgets or [])]


def build_viewer(*, show: bool = True):
    """A napari viewer with both sample data sets and every camtrack widget docked."""
    import napari

    viewer = napari.Viewer(title="napari-camtrack demo", show=show)
    for key in SAMPLES:
        viewer.open_sample(PLUGIN, key)
    # Show the bead field (the richest picture) and select it; the others stay one
    # click away in the layer list.
    for layer in viewer.layers:
        layer.visible = layer.metadata.get("sample") == "beads"
    viewer.layers.selection.active = viewer.layers["bead field"]
    viewer.dims.set_current_step(0, 0)
    for name in _widget_names():
        viewer.window.add_plugin_dock_widget(PLUGIN, name, tabify=True)
    return viewer


def run_gui(*, screenshot: Path | None = None) -> int:
    """Open the demo viewer; with ``screenshot`` save a PNG and close instead."""
    import napari

    viewer = build_viewer(show=True)
    if screenshot is None:
        napari.run()
        return 0
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication

    viewer.window._qt_window.resize(1400, 850)

    def _shoot() -> None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        viewer.screenshot(str(screenshot), canvas_only=False, flash=False)
        print(f"camtrack demo: screenshot written to {screenshot}")
        viewer.close()

    QTimer.singleShot(1500, _shoot)  # let docks and the canvas lay out first
    QApplication.instance().exec()
    return 0


def _write_tiff(path: Path, stack) -> None:
    """Write a (lazy) stack frame chunk by frame chunk, atomically."""
    import numpy as np
    import tifffile

    from camtrack import io

    def frames():
        for start in range(0, stack.shape[0], 16):
            yield from np.asarray(stack[start : start + 16])

    with io.atomic_path(path, overwrite=True) as tmp:
        tifffile.imwrite(tmp, frames(), shape=stack.shape, dtype=stack.dtype)


def _write_hdf5_stack(path: Path, name: str, stack, attrs: dict) -> None:
    import dask.array as da
    import h5py

    from camtrack import io

    with io.atomic_path(path, overwrite=True) as tmp, h5py.File(tmp, "w") as h5:
        dset = h5.create_dataset(
            name, shape=stack.shape, dtype=stack.dtype, chunks=(1, *stack.shape[1:])
        )
        da.store(da.asarray(stack), dset, lock=True)
        for key, value in attrs.items():
            dset.attrs[key] = value


def _find_lut_track(out: Path, field, sweep, truth_table: dict, sweep_z_nm) -> dict:
    """find-beads, zlut and track on the sample files; their tables against the truth."""
    import numpy as np

    from camtrack import io, tracking

    truth = {k: np.asarray(v) for k, v in truth_table.items()}
    n_beads = int(truth["bead"].max()) + 1
    tx, ty, tz = (truth[k].reshape(-1, n_beads) for k in ("x", "y", "z_nm"))
    roi_size = int(sweep.shape[-1])  # the LUT's ROI, so found ROIs fit the LUT

    found = tracking.locate_beads(np.asarray(field[0]), roi_size=roi_size)
    positions = np.column_stack([found.x, found.y])
    stuck = tracking.flag_stuck_beads(field, positions, roi_size=roi_size).stuck
    table = found.to_table()
    table["reference"] = stuck.astype(int)
    io.write_csv(out / "beads_found.csv", table, overwrite=True)
    d = np.hypot(np.subtract.outer(found.x, tx[0]), np.subtract.outer(found.y, ty[0]))
    ids = d.argmin(axis=1) if len(found) else np.zeros(0, int)
    ok = d.min(axis=1) < 1.5 if len(found) else np.zeros(0, bool)
    is_ref = np.asarray(truth["is_reference"]).reshape(-1, n_beads)[0]
    find = {
        "n_true": n_beads,
        "n_found": len(found),
        "matched": len(set(ids[ok].tolist())),
        "false": int((~ok).sum()),
        "max_centre_error_px": float(d.min(axis=1).max()) if len(found) else float("nan"),
        "left_out": list(found.rejected_reason),
        "stuck_flagged": [int(i) for i in ids[stuck & ok]],
        "stuck_truth": [int(i) for i in np.flatnonzero(is_ref)],
    }

    z = tracking.sweep_z(int(sweep.shape[0]), sweep_z_nm)
    rois = np.asarray(sweep)
    lut = tracking.build_zlut(rois, z)
    check = tracking.check_zlut(rois, z)
    lut.save(out / "zlut.h5", overwrite=True)
    zlut = {
        "n_planes": lut.n_planes,
        "roi_size": lut.roi_size,
        "self_check": check.summary(),
        "rms_nm": check.rms,
        "unambiguous_range_nm": list(check.unambiguous_range or ()),
        "held_out": check.held_out,
    }

    # Track every found bead, the flagged stuck beads as the drift reference (as
    # `camtrack track --beads beads_found.csv` does); the truth only decides which
    # true bead each one is, and its drift is the true reference bead's own motion.
    reference = [int(i) for i in np.flatnonzero(stuck)] or None
    res = tracking.track_beads(field, positions, roi_size=lut.roi_size, zlut=lut,
                               reference=reference)  # fmt: skip
    if reference is not None and is_ref.any():
        r0 = int(np.flatnonzero(is_ref)[0])
        tx, ty, tz = (v - (v[:, r0] - v[0, r0])[:, None] for v in (tx, ty, tz))
    res.save(out / "beads_tracked.csv", nm_per_px=100.0, source="beads.h5", overwrite=True,
             reference=reference)  # fmt: skip
    n_frames = int(field.shape[0])
    x, y, zt = (np.asarray(v, dtype=float).reshape(n_frames, -1) for v in (res.x, res.y, res.z))
    per_bead = []
    for b, t in enumerate(ids.tolist()):
        if not ok[b]:
            continue  # a false bead (counted under "find")
        per_bead.append({
            "bead": b,
            "truth_bead": int(t),
            "x_rms_px": float(np.sqrt(np.nanmean((x[:, b] - tx[:, t]) ** 2))),
            "y_rms_px": float(np.sqrt(np.nanmean((y[:, b] - ty[:, t]) ** 2))),
            "z_rms_nm": float(np.sqrt(np.nanmean((zt[:, b] - tz[:, t]) ** 2))),
            "nan_frames": int(np.isnan(x[:, b]).sum()),
        })  # fmt: skip
    xy = [max(p["x_rms_px"], p["y_rms_px"]) for p in per_bead]
    track = {
        "drift_corrected": reference is not None,
        "n_beads": len(per_bead),
        "n_frames": n_frames,
        "per_bead": per_bead,
        "xy_rms_px_max": max(xy, default=float("nan")),
        "z_rms_nm_max": max((p["z_rms_nm"] for p in per_bead), default=float("nan")),
    }
    return {"find": find, "zlut": zlut, "track": track}


def _forces(out: Path, tracked: Path, truth: dict, fs_hz: float) -> dict:
    """Stiffness of the tethered beads from their tracked x (the force engine, PSD fit)
    against the simulated motion: kappa = kT / sd**2, corner 1 / (2 pi tau)."""
    import numpy as np

    from camtrack import force, io
    from camtrack.force import read_table, traces_from_table

    table = read_table(tracked)
    tt = traces_from_table(table, axis="x", nm_per_px=100.0, fs_hz=fs_hz)
    kt = force.kt_pn_nm(296.15)
    # The simulator renders each frame at one instant: exposure 0 (no blur to undo).
    res = force.calibrate_force(tt.x_nm, fs_hz, length_nm=1000.0, exposure_s=0.0)
    kappa_truth = kt / truth["xy_std_nm"] ** 2
    corner_truth = fs_hz / (2 * np.pi * truth["tau_frames"])
    kappa = np.atleast_1d(res.kappa_pn_per_nm)
    ci = np.atleast_2d(np.asarray(res.kappa_ci_pn_per_nm))
    rows = {
        "bead": tt.bead, "kappa_pn_per_nm": kappa, "kappa_lo_pn_per_nm": ci[:, 0],
        "kappa_hi_pn_per_nm": ci[:, 1], "corner_hz": np.atleast_1d(res.corner_hz),
    }  # fmt: skip
    io.write_csv(out / "beads_forces.csv", rows, overwrite=True)
    return {
        "method": "psd",
        "n_beads": int(kappa.size),
        "kappa_truth_pn_per_nm": kappa_truth,
        "corner_truth_hz": corner_truth,
        "kappa_ratio": [float(v) for v in kappa / kappa_truth],
        "corner_ratio": [float(v) for v in np.atleast_1d(res.corner_hz) / corner_truth],
        "truth_in_ci": [bool(lo <= kappa_truth <= hi) for lo, hi in ci],
    }


def run_headless(out: Path) -> int:
    """Run the engine on the sample data without napari; write results into ``out``."""
    import time

    import numpy as np

    from camtrack import io
    from camtrack.napari import _sample_data

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict = {"results_folder": str(out.resolve())}
    t0 = time.perf_counter()

    # 1. Sample data -> files, as a user would have them, then reopened lazily.
    ((flat, flat_meta, _),) = _sample_data.flat_field()
    (field, field_meta, _), (sweep, sweep_meta, _) = _sample_data.beads()
    flat_path, beads_path = out / "flat_field.tif", out / "beads.h5"
    _write_tiff(flat_path, flat)
    _write_hdf5_stack(beads_path, "events/image", field, {"nm_per_px": 100.0})
    io.write_json(out / "flat_field_truth.json", flat_meta["metadata"]["truth"], overwrite=True)
    io.write_csv(out / "beads_truth.csv", field_meta["metadata"]["truth_table"], overwrite=True)
    _write_tiff(out / "zsweep.tif", sweep)
    io.write_csv(out / "zsweep_z.csv", {"z_nm": sweep_meta["metadata"]["z_nm"]}, overwrite=True)

    ((flat_lazy, flat_info),) = io.read_layers(flat_path)
    ((beads_lazy, beads_info),) = io.read_layers(beads_path)
    summary["opened"] = {
        info.name: {
            "shape": list(arr.shape),
            "dtype": str(arr.dtype),
            "chunks": len(arr.chunks[0]),
        }
        for arr, info in ((flat_lazy, flat_info), (beads_lazy, beads_info))
    }

    # 2. Photon transfer on the lazily opened TIFF (out of core, in tiles), with the
    #    sample's known offset so the read noise is identifiable.
    from camtrack import background, gain

    truth = flat_meta["metadata"]["truth"]
    res = gain.estimate_gain(flat_lazy, dark=float(truth["offset_adu"]))
    res.save(out / "flat_field_gain.json", overwrite=True)
    summary["flat_field"] = {
        "e_per_adu_truth": truth["e_per_adu"],
        "e_per_adu": res.e_per_adu,
        "e_per_adu_stderr": res.e_per_adu_stderr,
        "read_noise_e": res.read_noise_e,
        "read_noise_e_truth": truth["read_noise_e"],
        "method": res.method,
    }

    # 3. Background: temporal median of the bead field (lazy HDF5, spatial tiles).
    bg = background.temporal_median(beads_lazy)
    io.write_hdf5(out / "beads_background.h5", {"background": bg}, attrs={"unit": "ADU"},
                  overwrite=True)  # fmt: skip
    summary["beads_background"] = {"shape": list(bg.shape)}

    # 4. Bead tracking as on the command line: find-beads -> zlut -> track, each table
    #    compared with the simulation's truth.
    ((sweep_lazy, _),) = io.read_layers(out / "zsweep.tif")
    summary["beads_tracking"] = _find_lut_track(
        out, beads_lazy, sweep_lazy, field_meta["metadata"]["truth_table"],
        np.asarray(sweep_meta["metadata"]["z_nm"], dtype=float),
    )  # fmt: skip

    # 5. Forces: each tethered bead's stiffness from its tracked sideways motion.
    summary["beads_forces"] = _forces(
        out, out / "beads_tracked.csv", field_meta["metadata"]["truth"],
        float(field_meta["metadata"]["fs_hz"]),
    )  # fmt: skip

    summary["seconds"] = round(time.perf_counter() - t0, 2)
    io.write_json(out / "summary.json", summary, overwrite=True)
    print(f"camtrack demo (headless): results in {out}")
    for name, item in summary["opened"].items():
        print(f"  opened {name}: {item['shape']} {item['dtype']} in {item['chunks']} chunks")
    ff = summary["flat_field"]
    rn = ff["read_noise_e"]
    noise = f"{rn:.2f} e-" if rn is not None else "not identifiable from this fit (needs dark frames)"  # fmt: skip
    print(
        f"  flat field gain: {ff['e_per_adu']:.4f} +- {ff['e_per_adu_stderr']:.4f} e-/ADU "
        f"({ff['method']}; truth {ff['e_per_adu_truth']:.4f}), read noise {noise}"
    )
    print("  bead field background: beads_background.h5")
    bt = summary["beads_tracking"]
    fb, zl, tr = bt["find"], bt["zlut"], bt["track"]
    print(
        f"  beads: found {fb['matched']} of {fb['n_true']} (false {fb['false']}, centres within "
        f"{fb['max_centre_error_px']:.2f} px), stuck {fb['stuck_flagged']} (truth "
        f"{fb['stuck_truth']}) -> beads_found.csv"
    )
    print(f"  Z-LUT from the sweep: {zl['self_check']} -> zlut.h5")
    print(
        f"  tracked {tr['n_beads']} beads x {tr['n_frames']} frames: x, y RMS error up to "
        f"{tr['xy_rms_px_max']:.4f} px, z up to {tr['z_rms_nm_max']:.2f} nm -> beads_tracked.csv"
    )
    fc = summary["beads_forces"]
    print(
        f"  forces (PSD fit, {fc['n_beads']} tethered beads): stiffness / truth "
        + ", ".join(f"{r:.2f}" for r in fc["kappa_ratio"])
        + f"; truth inside the 68 % interval for {sum(fc['truth_in_ci'])} -> beads_forces.csv"
    )
    print(f"  done in {summary['seconds']} s")
    return 0
