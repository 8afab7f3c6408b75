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


def run_headless(out: Path) -> int:
    """Run the engine on the sample data without napari; write results into ``out``."""
    import time

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
    print(f"  done in {summary['seconds']} s")
    return 0
