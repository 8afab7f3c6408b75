"""Sample data: simulated stacks with their ground truth in layer metadata.

Both samples are generated lazily (dask, chunk by chunk, deterministic seeds), so they
open instantly; the truth used to make them sits in ``layer.metadata["truth"]`` (a
JSON-friendly summary) and, for the beads, per-frame positions in
``layer.metadata["truth_table"]``.
"""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np

from camtrack import simulate

LayerData = tuple[Any, dict[str, Any], str]

# One sCMOS-like sensor for both samples: 2 ADU/e-, a fixed-pattern offset and a
# lognormal read-noise map, as a real sCMOS camera has.
_CAMERA = dict(
    e_per_adu=0.5,
    offset_adu=100.0,
    offset_std_adu=3.0,
    read_noise_e=1.6,
    read_noise_spread=0.3,
)


SAMPLE_FS_HZ = 100.0  # the bead sample's frame rate
SAMPLE_XY_STD_NM = 30.0  # its tethered beads' sideways fluctuation (sd, nm)
SAMPLE_TAU_FRAMES = 5.0  # and their correlation time, frames


def flat_field() -> list[LayerData]:
    """Camera flat field (known gain): 200 frames of 256x256 uint16, lazy."""
    camera = simulate.Camera(shape=(256, 256), rng=11, **_CAMERA)
    stack, truth = simulate.camera_stack(
        200, camera=camera, signal_e=(20.0, 3000.0), illumination="gradient", chunks=10, rng=7
    )
    meta = {
        "name": "flat field (known gain)",
        "colormap": "gray",
        "axis_labels": ("t", "y", "x"),
        "contrast_limits": _contrast_limits(stack),
        "metadata": {"sample": "flat_field", "truth": truth.to_dict()},
    }
    return [(stack, meta, "image")]


def beads() -> list[LayerData]:
    """Beads with a calibration z-sweep (known xyz): a drifting field and a z-sweep."""
    camera = simulate.Camera(shape=(256, 256), rng=13, **_CAMERA)
    field, field_truth = simulate.bead_field(
        300, (256, 256), n_beads=5, n_reference=1, camera=camera, chunks=4, rng=3,
        xy_std_nm=SAMPLE_XY_STD_NM, tau_frames=SAMPLE_TAU_FRAMES,
    )  # fmt: skip
    z_planes = np.arange(-4500.0, 4500.0 + 1.0, 100.0)
    sweep, sweep_truth = simulate.zsweep(
        z_planes, roi_size=48, frames_per_plane=4, camera=dict(_CAMERA), rng=4
    )
    sweep = da.from_array(sweep, chunks=(16, *sweep.shape[1:]))
    field_meta = {
        "name": "bead field",
        "colormap": "gray",
        "axis_labels": ("t", "y", "x"),
        "contrast_limits": _contrast_limits(field),
        "metadata": {
            "sample": "beads",
            # A label, as a recording's file would give it: the simulated motion is in
            # frames (correlation time 5 frames), so at 100 Hz tau is 50 ms. Exposure is
            # left unknown: the simulator renders each frame at one instant.
            "fs_hz": SAMPLE_FS_HZ,
            "truth": {
                **field_truth.to_dict(),
                # the tethered beads' sideways motion: stationary OU, this sd and time
                # constant (frames), the truth of a force calibration
                "xy_std_nm": SAMPLE_XY_STD_NM,
                "tau_frames": SAMPLE_TAU_FRAMES,
            },
            "truth_table": field_truth.to_table(),
        },
    }
    sweep_meta = {
        "name": "calibration z-sweep",
        "colormap": "gray",
        "axis_labels": ("t", "y", "x"),
        "visible": False,
        "contrast_limits": _contrast_limits(sweep),
        "metadata": {
            "sample": "beads_zsweep",
            "truth": sweep_truth.to_dict(),
            "z_nm": np.asarray(sweep_truth.z_nm, dtype=float),
        },
    }
    return [(field, field_meta, "image"), (sweep, sweep_meta, "image")]


# The per-pixel calibration sample: light levels (mean e- per pixel) and frames each.
SCMOS_LEVELS_E = (200.0, 500.0, 1000.0, 2000.0)
SCMOS_FRAMES = 100


def scmos_calibration() -> list[LayerData]:
    """sCMOS calibration (known maps): a dark stack and evenly lit stacks at 4 light
    levels of the flat-field sample's sensor, lazy; the per-pixel truth maps (offset,
    e-/ADU, read noise) in each layer's ``metadata["truth_maps"]``."""
    camera = simulate.Camera(shape=(256, 256), rng=11, **_CAMERA)  # the flat field's
    truth_maps = {
        "offset_map_adu": camera.offset_map_adu,
        "e_per_adu_map": camera.e_per_adu_map,
        "read_noise_map_e": camera.read_noise_map_e,
    }
    dark, dark_truth = simulate.dark_stack(2 * SCMOS_FRAMES, camera=camera, chunks=20, rng=21)
    layers = [
        (dark, {
            "name": "dark (sCMOS)", "colormap": "gray", "axis_labels": ("t", "y", "x"),
            "contrast_limits": _contrast_limits(dark),
            "metadata": {"sample": "scmos_dark", "truth": dark_truth.to_dict(),
                         "truth_maps": truth_maps},
        }, "image"),
    ]  # fmt: skip
    for k, level in enumerate(SCMOS_LEVELS_E):
        flat, truth = simulate.camera_stack(
            SCMOS_FRAMES, camera=camera, signal_e=level, illumination="flat", chunks=20,
            rng=22 + k,
        )  # fmt: skip
        layers.append((flat, {
            "name": f"flat {level:g} e- (sCMOS)", "colormap": "gray",
            "axis_labels": ("t", "y", "x"), "contrast_limits": _contrast_limits(flat),
            "visible": False,
            "metadata": {"sample": "scmos_flat", "truth": truth.to_dict(),
                         "truth_maps": truth_maps, "level_e": level},
        }, "image"))  # fmt: skip
    return layers


def _contrast_limits(stack: Any) -> list[float]:
    """Robust display range from the first frame only (reads one chunk, not the stack)."""
    first = np.asarray(stack[0], dtype=np.float32)
    lo, hi = np.percentile(first, [0.1, 99.9])
    return [float(lo), float(max(hi, lo + 1.0))]
