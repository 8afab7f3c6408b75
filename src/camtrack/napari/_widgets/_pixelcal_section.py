"""The "Per-pixel calibration" section of the Camera gain widget (sCMOS).

A dark stack and stacks at two or more light levels (or one stack holding a series of
levels) go to :func:`camtrack.gain.calibrate_pixels` in a thread worker with a progress
bar and Cancel; the maps become the layers ``offset (ADU)``, ``variance (ADU²)``,
``gain (e-/ADU)`` and ``read noise (e-)``, updated in place on re-runs. The maps are
saved and loaded with :class:`camtrack.gain.PixelCalibration`'s own writer (temporary
name and rename; an existing file is replaced only when the user confirmed it), and the
Camera gain widget's *Convert to photoelectrons* applies them pixel by pixel.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    PushButton,
    Select,
    SpinBox,
)

from camtrack._layerdata import PIXEL_MAP_LAYERS
from camtrack.gain import PIXELS, PixelCalibration, calibrate_pixels
from camtrack.napari._layers import image_stacks, upsert_all
from camtrack.napari._widgets._fields import fields_for, fit_label_column
from camtrack.napari._widgets._threaded import ThreadedRun, message_label
from camtrack.napari._widgets._tooltips import set_tooltips, value_fields

# PixelCalibration field -> result layer (PixelCalibration.to_layers() names them)
MAP_LAYERS = PIXEL_MAP_LAYERS
# Rows the flat-stack list shows before it scrolls: enough for a typical series of
# levels without pushing the buttons below a laptop screen.
LIST_ROWS = 5

_TIPS = {
    "expand": "Show the per-pixel (sCMOS) calibration: a dark stack and flat stacks at "
    "several light levels give offset, variance, gain and read-noise maps per pixel.",
    "dark": "A dark stack (no light) of the same camera region and settings as the flats.",
    "stacks": "Stacks of a static, evenly lit scene, one light level each (select 2 or more; "
    "5 or more spanning the camera's range are better). Ctrl-click selects several.",
    "frames_per_level": "0: every selected flat stack is one light level. N: each flat stack "
    "holds a series of levels of N consecutive frames (an illumination series).",
}


class PixelCalibrationSection(ThreadedRun, Container):
    """Per-pixel maps from a dark and flat stacks; save, load, and the maps in use.

    ``on_change(calibration)`` is called when maps are made or loaded (and with None
    when a run fails), so the owner can offer them for conversion.
    """

    def __init__(self, viewer: Any, on_change: Callable[[Any], None] | None = None) -> None:
        self.viewer = viewer
        self._on_change = on_change
        self.expand = CheckBox(text="Per-pixel calibration (sCMOS)", value=False)
        self.dark = ComboBox(label="Dark stack", choices=self._dark_choices)
        self.stacks = Select(label="Flat stacks", choices=self._stacks)
        self.frames_per_level = SpinBox(label="Frames per level", value=0, min=0, max=10**7)
        # The keywords of calibrate_pixels (excess_noise_factor), from camtrack.gain.PIXELS.
        self.fields = fields_for(PIXELS.gui().values())
        for name, field in self.fields.items():
            setattr(self, name, field)
        self.calibrate_button = PushButton(text="Calibrate pixels")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.save_button = PushButton(text="Save maps…", enabled=False)
        self.load_button = PushButton(text="Load maps…")
        self.status = message_label("")
        self.result_label = message_label("")
        super().__init__(
            widgets=[
                self.expand, self.dark, self.stacks, self.frames_per_level,
                *self.fields.values(), self.calibrate_button, self.cancel_button,
                self.save_button, self.load_button, self.status, self.result_label,
            ],
        )  # fmt: skip
        self.margins = (0, 0, 0, 0)
        self.calibration: PixelCalibration | None = None
        self._inputs: tuple[str, ...] = ()  # files of the layers used: never overwritten
        self.start_button = self.calibrate_button
        self._init_threaded()
        fit_label_column(self)  # the labels as napari draws them
        row = self.stacks.native.fontMetrics().lineSpacing() + 4
        self.stacks.native.setMaximumHeight(LIST_ROWS * row + 8)
        set_tooltips(value_fields(self), (calibrate_pixels,), _TIPS)
        self.expand.changed.connect(self._on_expand)
        self.calibrate_button.changed.connect(self.run)
        self.save_button.changed.connect(self._ask_save)
        self.load_button.changed.connect(self._ask_load)
        self._on_expand()

    # -- inputs -------------------------------------------------------------------
    def _stacks(self, _widget: Any = None) -> list[Any]:
        return image_stacks(self.viewer)

    def _dark_choices(self, _widget: Any = None) -> list[Any]:
        # A layer named "dark ..." comes first, so it is the default pick.
        stacks = self._stacks()
        return sorted(stacks, key=lambda layer: "dark" not in layer.name.lower())

    def _on_expand(self, *_: Any) -> None:
        for widget in self:
            if widget is not self.expand and widget is not self.progress_bar:
                widget.visible = self.expand.value

    def levels(self) -> tuple[list[Any], Any, list[str]]:
        """The light-level stacks, the dark stack and a name for each level; raises
        ValueError saying what to pick when the fields do not make a calibration."""
        dark = self.dark.value
        flats = list(self.stacks.value or ())
        if dark is None:
            raise ValueError(
                "No dark stack: open a dark stack (no light, same camera settings) and "
                "pick it in 'dark stack'."
            )
        if not flats:
            raise ValueError(
                "No flat stacks selected: pick 2 or more lit stacks (one light level each) "
                "in 'flat stacks', or one series with 'frames per level'."
            )
        if any(layer is dark for layer in flats):
            raise ValueError(
                f"{dark.name!r} is both the dark stack and a flat stack: unselect it in "
                "'flat stacks'."
            )
        per = int(self.frames_per_level.value)
        if per == 0:
            return [layer.data for layer in flats], dark.data, [layer.name for layer in flats]
        if per < 2:
            raise ValueError(f"`frames per level` must be 0 or 2 or more (a variance per level); got {per}.")  # fmt: skip
        levels, names = [], []
        for layer in flats:
            t = int(layer.data.shape[0])
            if t % per:
                raise ValueError(
                    f"{layer.name!r} has {t} frames, not a multiple of `frames per level` "
                    f"({per}): give the number of frames of each level."
                )
            for k in range(t // per):
                levels.append(layer.data[k * per : (k + 1) * per])  # lazy for dask
                names.append(f"{layer.name} frames {k * per}-{(k + 1) * per - 1}")
        return levels, dark.data, names

    def _paths(self) -> tuple[str, ...]:
        """Files behind the dark and flat layers (a save must never replace them)."""
        layers = [self.dark.value, *(self.stacks.value or ())]
        paths = (getattr(getattr(layer, "source", None), "path", None) for layer in layers)
        return tuple(str(p) for p in paths if p)

    # -- run ----------------------------------------------------------------------
    def run(self, *_: Any) -> None:
        try:
            levels, dark, names = self.levels()
        except (ValueError, TypeError) as exc:
            self._error(exc)
            return
        inputs = self._paths()
        self._start(
            _calibrate,
            levels,
            dark,
            names,
            float(self.excess_noise_factor.value),
            self._progress("per-pixel calibration"),
            returned=lambda cal: self._show(cal, f"done: {len(levels)} light levels", inputs),
            status=f"calibrating from {self.dark.value.name} and {len(levels)} light levels ...",
        )

    def _show(self, cal: PixelCalibration, status: str, inputs: tuple[str, ...] = ()) -> None:
        self.calibration = cal
        self._inputs = inputs
        upsert_all(self.viewer, cal.to_layers())  # offset, variance, gain, read noise
        self.save_button.enabled = True
        self.result_label.value = summary(cal)
        self.status.value = status
        self.expand.value = True
        if self._on_change is not None:
            self._on_change(cal)

    def _failed(self) -> None:
        """A failed run leaves no maps in use from before it (they may be of another
        camera region); the layers stay until the next run replaces them."""
        self.calibration = None
        self._inputs = ()
        self.result_label.value = ""
        self.save_button.enabled = False
        if self._on_change is not None:
            self._on_change(None)

    # -- save and load ------------------------------------------------------------
    def save_maps(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the maps (``.h5``/``.hdf5`` or ``.npz``); an existing file is replaced
        only with ``overwrite=True``, the input stacks' files never."""
        if self.calibration is None:
            raise ValueError("Nothing to save yet: calibrate the pixels (or load maps) first.")
        return self.calibration.save(path, overwrite=overwrite, protect=self._inputs)

    def load_maps(self, path: str | Path) -> PixelCalibration:
        """Read maps saved by :meth:`save_maps` (or ``camtrack calibrate``) and show them."""
        cal = PixelCalibration.load(path)
        self._show(cal, f"loaded {Path(path).name}")
        return cal

    def _ask_save(self, *_: Any) -> None:
        from qtpy.QtWidgets import QFileDialog

        name, _ = QFileDialog.getSaveFileName(
            self.native, "Save per-pixel calibration", "pixel_calibration.h5",
            "HDF5 (*.h5 *.hdf5);;NumPy (*.npz)",
        )  # fmt: skip
        if not name:
            return
        path = Path(name)
        if path.suffix.lower() not in (".h5", ".hdf5", ".npz"):
            path = path.with_name(path.name + ".h5")
        try:
            # The file dialog has asked before replacing an existing file.
            out = self.save_maps(path, overwrite=True)
        except (ValueError, OSError) as exc:
            self._error(exc)
            return
        self.status.value = f"saved {out.name}"

    def _ask_load(self, *_: Any) -> None:
        from qtpy.QtWidgets import QFileDialog

        name, _ = QFileDialog.getOpenFileName(
            self.native, "Load per-pixel calibration", "",
            "Pixel calibration (*.h5 *.hdf5 *.npz)",
        )  # fmt: skip
        if name:
            self.load(name)

    def load(self, path: str | Path) -> None:
        """:meth:`load_maps` with errors as notifications (a file that is not a
        calibration, a missing map)."""
        try:
            self.load_maps(path)
        except (ValueError, TypeError, OSError, KeyError) as exc:
            message = str(exc)
            if isinstance(exc, KeyError):  # h5py: a map missing from the file
                message = f"{str(path)!r} is not a complete camtrack pixel calibration ({exc})."
            self._error(ValueError(message))


def _calibrate(
    levels: list[Any], dark: Any, names: list[str], f2: float, progress: Any
) -> PixelCalibration:
    """:func:`calibrate_pixels` in the worker; its messages name the layers instead of
    the keywords (`stacks[1]`, `dark`)."""
    try:
        return calibrate_pixels(levels, dark, excess_noise_factor=f2, progress=progress)
    except (ValueError, TypeError) as exc:
        message = re.sub(
            r"`stacks\[(\d+)\]`", lambda m: f"flat stack {names[int(m[1])]!r}", str(exc)
        )
        message = message.replace("`stacks`", "'flat stacks'").replace("`dark`", "the dark stack")  # fmt: skip
        raise type(exc)(message) from None


def summary(cal: PixelCalibration) -> str:
    """The maps in a few numbers (:meth:`camtrack.gain.PixelCalibration.summary`)."""
    return cal.summary()
