"""The "Camera gain" widget: photon transfer on an image layer, with the fitted plot.

Run measures the per-pixel maps once (a thread worker with a progress bar, cancellable);
the fit range slider and the bin count then refit the stored maps
(:meth:`camtrack.gain.GainResult.refit`, milliseconds), so the plot and the numbers
follow the slider live. Result layers ``mean``, ``variance``, ``gain map`` and
``offset`` (when known) are updated in place on re-runs. The *Per-pixel calibration*
section (:mod:`._pixelcal_section`) makes or loads sCMOS maps, which *Convert to
photoelectrons* applies when ``convert with`` is "per-pixel maps".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FloatSpinBox,
    PushButton,
    SpinBox,
)

from camtrack import gain
from camtrack.gain import estimate_gain
from camtrack.napari._glguard import guard_gl_context_on_layer_removal
from camtrack.napari._layers import image_stacks, upsert_all, upsert_image
from camtrack.napari._widgets._fields import fields_for, fit_label_column
from camtrack.napari._widgets._pixelcal_section import PixelCalibrationSection
from camtrack.napari._widgets._threaded import ThreadedRun, message_label
from camtrack.napari._widgets._tooltips import set_tooltips, value_fields

SCALAR, PER_PIXEL = "scalar fit", "per-pixel maps"
CONVERT_WITH = [SCALAR, PER_PIXEL]
# Widget name -> registry entry of estimate_gain's methods (camtrack.gain.METHODS).
METHODS = gain.METHODS.gui()


class GainWidget(ThreadedRun, Container):
    """Photon transfer (Plugins > camtrack > Camera gain)."""

    def __init__(self, napari_viewer: Any) -> None:
        self.viewer = napari_viewer
        guard_gl_context_on_layer_removal(napari_viewer)  # docs/known-issues.md
        self.image = ComboBox(label="Image", choices=self._stacks)
        self.dark = ComboBox(label="Dark (optional)", choices=self._dark_choices)
        self.offset_known = CheckBox(label="Known offset (no dark)", value=False)
        self.offset_adu = FloatSpinBox(label="Offset (ADU)", value=100.0, min=-1e6, max=1e6)
        self.method = ComboBox(label="Method", choices=list(METHODS), value="auto")
        # One field per engine keyword (self.n_bins, self.fit_range, ...), from the registry.
        self.fields = fields_for(METHODS.values())
        for name, field in self.fields.items():
            setattr(self, name, field)
        self.first_frame = SpinBox(label="First frame", value=0, min=0, max=0)
        self.last_frame = SpinBox(label="Last frame", value=0, min=0, max=0)
        self.run_button = PushButton(text="Run")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.convert_with = ComboBox(label="Convert with", choices=CONVERT_WITH, value=SCALAR)
        self.convert_button = PushButton(text="Convert to photoelectrons", enabled=False)
        self.save_button = PushButton(text="Save calibration", enabled=False)
        self.status = message_label("")
        self.result_label = message_label("")
        self.pixels = PixelCalibrationSection(napari_viewer, on_change=self._sync_convert)
        super().__init__(
            widgets=[
                self.image, self.dark, self.offset_known, self.offset_adu, self.method,
                *self.fields.values(), self.first_frame, self.last_frame, self.run_button, self.cancel_button,
                self.convert_with, self.convert_button, self.save_button, self.status,
                self.result_label, self.pixels,
            ],
        )  # fmt: skip
        self.result = None
        self.plot = None
        self._source = None  # (layer name, first frame, last frame) of the result
        self.start_button = self.run_button
        self._init_threaded()
        fit_label_column(self)  # the labels as napari draws them
        set_tooltips(  # the parameter fields have theirs from the registry
            value_fields(self),
            (estimate_gain,),
            {
                "image": "A stack (T, Y, X) of a static scene under constant light.",
                "dark": "A dark stack of the same camera settings: gives the offset (and "
                "read noise). Without it the offset is fitted or typed below.",
                "offset_known": "Use a typed offset (ADU) instead of a dark stack.",
                "offset_adu": "The camera's offset in ADU (from its data sheet).",
                "first_frame": "First frame used.",
                "last_frame": "Last frame used (inclusive).",
                "convert_with": "What 'Convert to photoelectrons' applies: the scalar fit "
                "(the last Run's e-/ADU and offset, to its stack) or the per-pixel maps "
                "(Per-pixel calibration below, to the stack picked in 'image').",
            },
        )
        self.offset_adu.visible = False
        self._show_fields()
        for w in (self.method, *self.fields.values()):
            w.changed.connect(self._show_fields)
        self.offset_known.changed.connect(self._on_offset_known)
        self.image.changed.connect(self._on_image)
        self.fit_range.changed.connect(self.refit)
        self.n_bins.changed.connect(self.refit)
        self.min_count.changed.connect(self.refit)
        self.run_button.changed.connect(self.run)
        self.convert_button.changed.connect(self.convert)
        self.save_button.changed.connect(self._ask_save)
        self._on_image()
        _hide_label(self.pixels)

    # -- inputs -------------------------------------------------------------------
    def _stacks(self, _widget: Any = None) -> list[Any]:
        return image_stacks(self.viewer)

    def _dark_choices(self, _widget: Any = None) -> list[Any]:
        return [("none", None), *((layer.name, layer) for layer in self._stacks())]

    def _on_offset_known(self, *_: Any) -> None:
        self.offset_adu.visible = self.offset_known.value

    def _on_image(self, *_: Any) -> None:
        layer = self.image.value
        if layer is None:
            return
        last = int(layer.data.shape[0]) - 1
        self.first_frame.max = self.last_frame.max = last
        self.first_frame.value, self.last_frame.value = 0, last

    def params(self) -> dict[str, Any]:
        """Keyword arguments for :func:`camtrack.gain.estimate_gain`."""
        dark = self.dark.value.data if self.dark.value is not None else None
        if dark is None and self.offset_known.value:
            dark = float(self.offset_adu.value)
        return {"dark": dark, **METHODS[self.method.value].gui_kwargs(self._values())}

    def _values(self) -> dict[str, Any]:
        return {name: field.value for name, field in self.fields.items()}

    def _show_fields(self, *_: Any) -> None:
        """The fields of the picked method only (today every method takes them all)."""
        shown = METHODS[self.method.value].shown(self._values())
        for name, field in self.fields.items():
            field.visible = name in shown

    def _stack(self) -> tuple[Any, Any, int, int]:
        layer = self.image.value
        if layer is None:
            raise ValueError("No image layer selected: open a stack first.")
        first, last = int(self.first_frame.value), int(self.last_frame.value)
        if last < first:
            raise ValueError(
                f"`last frame` ({last}) is before `first frame` ({first}); pick a frame range "
                "of at least 20 frames."
            )
        return layer, layer.data[first : last + 1], first, last

    # -- run ----------------------------------------------------------------------
    def compute(self, stack: Any, params: dict, progress: Any = None) -> Any:
        return estimate_gain(stack, progress=progress, **params)

    def run(self, *_: Any) -> None:
        try:
            layer, stack, first, last = self._stack()
            params = self.params()
        except (ValueError, TypeError) as exc:
            self._failed()
            self._error(exc)
            return
        self._start(
            self.compute,
            stack,
            params,
            self._progress("camera gain"),
            returned=lambda res: self._show(res, (layer.name, first, last)),
            status=f"measuring {layer.name} frames {first}-{last} ...",
        )

    def _show(self, result: Any, source: tuple[str, int, int]) -> None:
        self.result = result
        self._source = source
        upsert_all(self.viewer, result.to_layers())  # mean, variance, gain map, offset
        self.convert_button.enabled = self.save_button.enabled = True
        self._update_plot()
        self.status.value = f"done: {source[0]}, {result.n_frames} frames"
        for message in result.warnings:
            if not message.startswith("method='auto'"):
                from napari.utils.notifications import show_warning

                show_warning(message)

    def _failed(self) -> None:
        """A failed run replaces the previous result with nothing: no stale numbers,
        plot or maps of another stack under the new error."""
        self.result = None
        self._source = None
        self.result_label.value = ""
        self.save_button.enabled = False
        self._sync_convert()
        if self.plot is not None:
            self.plot.clear("no result: the last run failed (see the status line)")

    def refit(self, *_: Any) -> None:
        """Refit the stored maps with the current fit range and bins (no new pass)."""
        if self.result is None:
            return
        try:
            self.result = self.result.refit(
                fit_range=tuple(float(v) for v in self.fit_range.value),
                n_bins=int(self.n_bins.value),
                min_count=int(self.min_count.value),
            )
        except (ValueError, TypeError) as exc:
            # A bad fit range keeps the measured maps: say so without clearing them.
            from napari.utils.notifications import show_error

            self.status.value = f"error: {exc}"
            show_error(str(exc))
            return
        self._update_plot()

    def _update_plot(self) -> None:
        from camtrack.napari._plots import GainPlot, gain_text

        result = self.result
        if self.plot is None:
            self.plot = GainPlot()
            self.viewer.window.add_dock_widget(self.plot, name="Photon transfer", area="right")
        name, first, last = self._source
        self.plot.show_result(result, title=f"{name} [{first}:{last + 1}]: photon transfer")
        self.result_label.value = gain_text(result).replace("\n", "; ")

    # -- outputs ------------------------------------------------------------------
    def _sync_convert(self, calibration: Any = None) -> None:
        """Convert is offered while a scalar result or per-pixel maps exist; new maps
        become the conversion in use (they are the better one for an sCMOS camera)."""
        if calibration is not None:
            self.convert_with.value = PER_PIXEL
        elif self.pixels.calibration is None and self.result is not None:
            self.convert_with.value = SCALAR
        self.convert_button.enabled = self.result is not None or self.pixels.calibration is not None  # fmt: skip

    def camera(self) -> Any:
        """The calibration picked in ``convert with``: the per-pixel maps
        (:class:`camtrack.gain.PixelCalibration`) or the scalar result
        (:class:`camtrack.gain.GainResult`); None when it has not been made."""
        return self.pixels.calibration if self.convert_with.value == PER_PIXEL else self.result

    def convert(self, *_: Any) -> None:
        """Add the lazy layer ``<image> (e-)``: (stack - offset) x e-/ADU, with the
        scalar fit or pixel by pixel with the per-pixel maps."""
        if self.convert_with.value == PER_PIXEL:
            self._convert_per_pixel()
            return
        result = self.result
        if result is None:
            self._error(
                ValueError(
                    "No scalar fit to convert with: press Run first, or pick 'per-pixel "
                    "maps' in 'convert with'."
                )
            )
            return
        if result.offset_map is None:
            self._error(
                ValueError(
                    "The offset is unknown: pick a dark layer or tick 'known offset' and "
                    "run again before converting to photoelectrons."
                )
            )
            return
        layer = self.viewer.layers[self._source[0]]
        electrons = result.to_electrons(layer.data, lazy=True)
        upsert_image(self.viewer, f"{layer.name} (e-)", electrons, colormap="gray")

    def _convert_per_pixel(self) -> None:
        cal, layer = self.pixels.calibration, self.image.value
        try:
            if cal is None:
                raise ValueError(
                    "No per-pixel maps yet: calibrate the pixels or load maps in 'Per-pixel "
                    "calibration', or pick 'scalar fit' in 'convert with'."
                )
            if layer is None:
                raise ValueError("No image layer selected: pick the stack to convert in 'image'.")
            data = cal.to_electrons(layer.data, lazy=True)
        except (ValueError, TypeError) as exc:
            self._error(exc)
            return
        upsert_image(self.viewer, f"{layer.name} (e-)", data, colormap="gray")
        self.status.value = f"converted {layer.name} with the per-pixel maps"

    def save_calibration(self, path: str | Path, *, overwrite: bool = False) -> tuple[Path, Path]:
        """JSON of the scalars with units at ``path``; the maps as HDF5 next to it. An
        existing pair is replaced only with ``overwrite=True``, the input never."""
        if self.result is None:
            raise ValueError("Nothing to save yet: run the gain measurement first.")
        name = self._source[0]
        layer = self.viewer.layers[name] if name in self.viewer.layers else None  # noqa: SIM401
        src = getattr(getattr(layer, "source", None), "path", None)
        source = {"layer": self._source[0], "frames": [self._source[1], self._source[2]],
                  "path": str(src) if src else None}  # fmt: skip
        return self.result.save(
            path, source=source, overwrite=overwrite, protect=[src] if src else ()
        )

    def _ask_save(self, *_: Any) -> None:
        from qtpy.QtWidgets import QFileDialog

        name, _ = QFileDialog.getSaveFileName(
            self.native, "Save gain calibration", "gain_calibration.json", "JSON (*.json)"
        )
        if not name:
            return
        try:
            # The file dialog has asked before replacing an existing file.
            json_path, h5_path = self.save_calibration(name, overwrite=True)
        except (ValueError, OSError) as exc:
            self._error(exc)
            return
        self.status.value = f"saved {json_path.name} and {h5_path.name}"


def _hide_label(widget: Any) -> None:
    """The section spans the panel: its row's (empty) label column would only indent it."""
    labeled = getattr(widget, "_labeled_widget_ref", None)
    labeled = labeled() if labeled is not None else None
    if labeled is not None:
        labeled._label_widget.visible = False
