"""The "Background" widget: pick a layer and a method, preview live, apply lazily.

Preview computes the background of the current frame only (for temporal methods from a
sub-sample of at most ``PREVIEW_FRAMES`` frames around it), so a slider move or a
parameter change shows within about 100 ms. Apply builds the lazy result layers
``<name> background`` and ``<name> - background``; methods that need a pass over the
whole stack (temporal median, sparse median, frame statistics) run in a thread worker
with a progress bar and can be cancelled.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FloatSlider,
    FloatSpinBox,
    PushButton,
    SpinBox,
)

from camtrack import background as bg
from camtrack._parallel import compute
from camtrack.napari._layers import upsert_image
from camtrack.napari._widgets._threaded import ThreadedRun, deferred, message_label

PREVIEW_FRAMES = 31

METHODS = {
    "spatial mean": "spatial_mean",
    "temporal median": "temporal_median",
    "rolling median": "rolling_median",
    "sparse median": "sparse_median",
    "frame statistic": "frame_stats",
}
# Which parameter fields each method shows (names equal the engine's keywords).
FIELDS = {
    "spatial_mean": ("radius",),
    "temporal_median": (),
    "rolling_median": ("window",),
    "sparse_median": ("kernel_size", "split", "thresh_cleansing", "frac_cleansing",
                      "offset_correction"),
    "frame_stats": ("stat", "q"),
}  # fmt: skip


class BackgroundWidget(ThreadedRun, Container):
    """Background estimation with live preview (Plugins > camtrack > Background)."""

    def __init__(self, napari_viewer: Any) -> None:
        self.viewer = napari_viewer
        self.image = ComboBox(label="image", choices=self._image_layers)
        self.method = ComboBox(label="method", choices=list(METHODS), value="spatial mean")
        self.radius = FloatSpinBox(label="radius (px)", value=7.0, min=0.5, max=200.0, step=0.5)
        self.window = SpinBox(label="window (frames)", value=51, min=3, max=100_001, step=2)
        self.kernel_size = SpinBox(label="kernel_size", value=200, min=3, max=1_000_000)
        self.split = SpinBox(label="split (0: = kernel)", value=0, min=0, max=1_000_000)
        self.thresh_cleansing = FloatSpinBox(
            label="thresh_cleansing (0: auto)", value=0.0, min=0.0, max=1e6
        )
        self.frac_cleansing = FloatSlider(label="frac_cleansing", value=0.8, min=0.0, max=1.0)
        self.offset_correction = CheckBox(label="offset_correction", value=True)
        self.stat = ComboBox(label="stat", choices=list(bg.STATS), value="mean")
        self.q = FloatSpinBox(label="q (percentile)", value=50.0, min=0.0, max=100.0)
        self.preview = CheckBox(label="live preview (current frame)", value=True)
        self.apply_button = PushButton(text="Apply")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.status = message_label("")
        super().__init__(
            widgets=[
                self.image, self.method, self.radius, self.window, self.kernel_size,
                self.split, self.thresh_cleansing, self.frac_cleansing,
                self.offset_correction, self.stat, self.q, self.preview,
                self.apply_button, self.cancel_button, self.status,
            ],
        )  # fmt: skip
        self.start_button = self.apply_button
        self._init_threaded()
        self._preview_frame = 0
        self.offset_plot = None
        self._show_fields()
        self.method.changed.connect(self._show_fields)
        for w in (self.image, self.method, self.radius, self.window, self.kernel_size,
                  self.split, self.thresh_cleansing, self.frac_cleansing,
                  self.offset_correction, self.stat, self.q, self.preview):  # fmt: skip
            w.changed.connect(self.update_preview)
        self.viewer.dims.events.current_step.connect(deferred(self.update_preview, self.native))
        self.apply_button.changed.connect(self.apply)

    # -- inputs -------------------------------------------------------------------
    def _image_layers(self, _widget: Any = None) -> list[Any]:
        from napari.layers import Image

        # Stacks only: the 2-D preview and result images are not inputs.
        return [
            layer
            for layer in self.viewer.layers
            if isinstance(layer, Image) and getattr(layer.data, "ndim", 0) == 3
        ]

    @property
    def engine_method(self) -> str:
        return METHODS[self.method.value]

    def params(self) -> dict[str, Any]:
        """The current method's keyword arguments for the engine."""
        values = {
            "radius": self.radius.value,
            "window": self.window.value,
            "kernel_size": self.kernel_size.value,
            "split": self.split.value or None,
            "thresh_cleansing": self.thresh_cleansing.value,
            "frac_cleansing": self.frac_cleansing.value,
            "offset_correction": self.offset_correction.value,
            "stat": self.stat.value,
            "q": self.q.value if self.stat.value == "percentile" else None,
        }
        return {k: values[k] for k in FIELDS[self.engine_method]}

    def _show_fields(self, *_: Any) -> None:
        shown = FIELDS[self.engine_method]
        for name in ("radius", "window", "kernel_size", "split", "thresh_cleansing",
                     "frac_cleansing", "offset_correction", "stat", "q"):  # fmt: skip
            getattr(self, name).visible = name in shown

    def _stack(self) -> tuple[Any, Any]:
        layer = self.image.value
        if layer is None:
            raise ValueError("No image layer selected: open a stack first.")
        data = layer.data
        if getattr(data, "ndim", 0) != 3:
            raise ValueError(
                f"`image` must be a (frames, rows, cols) stack; layer {layer.name!r} has "
                f"shape {tuple(data.shape)}."
            )
        return layer, data

    # -- preview ------------------------------------------------------------------
    def _current_frame(self, n_frames: int) -> int:
        return int(np.clip(self.viewer.dims.current_step[0], 0, n_frames - 1))

    def preview_background(self) -> tuple[np.ndarray, np.ndarray]:
        """(background, frame - background) of the current frame, as (Y, X) arrays."""
        _, stack = self._stack()
        t = self._current_frame(stack.shape[0])
        method, params = self.engine_method, self.params()
        frame = stack[t : t + 1]
        if method == "spatial_mean":
            background = bg.spatial_mean(frame, **params).background
        else:
            # Temporal methods: the frames around t (the rolling or sparse kernel, or
            # the whole stack), sub-sampled to PREVIEW_FRAMES for speed.
            span = {"rolling_median": params.get("window"),
                    "sparse_median": params.get("kernel_size")}.get(method) or stack.shape[0]  # fmt: skip
            lo = max(0, min(t - span // 2, stack.shape[0] - span))
            hi = min(stack.shape[0], lo + span)
            idx = np.unique(np.linspace(lo, hi - 1, min(PREVIEW_FRAMES, hi - lo)).round())
            sub = stack[idx.astype(int)]
            if method == "frame_stats":
                background = bg.frame_stats(sub, params["stat"], q=params["q"])
            else:
                background = bg.temporal_median(sub)
        background = np.asarray(background)
        residual = np.asarray(bg.subtract(np.asarray(frame), background))
        self._preview_frame = t
        return background.reshape(frame.shape[-2:]), residual[0]

    def update_preview(self, *_: Any) -> None:
        if not self.preview.value or self.image.value is None:
            return
        try:
            background, residual = self.preview_background()
        except (ValueError, TypeError) as exc:
            self._error(exc)
            return
        name = self.image.value.name
        upsert_image(self.viewer, f"{name} background (preview)", background,
                     colormap="gray", visible=True)  # fmt: skip
        upsert_image(self.viewer, f"{name} - background (preview)", residual,
                     colormap="gray", visible=True)  # fmt: skip
        self.status.value = f"preview: frame {self._preview_frame}"

    # -- apply --------------------------------------------------------------------
    def compute(self, stack: Any, progress: Any = None) -> tuple[Any, Any, dict]:
        """Run the engine on the whole (lazy) stack: (background, subtracted, extras)."""
        import dask.array as da

        if not isinstance(stack, da.Array):
            stack = da.from_array(stack, chunks=(max(1, 2**22 // stack[0].size), -1, -1))
        method, params = self.engine_method, self.params()
        extras: dict[str, Any] = {}
        if method == "spatial_mean":
            result = bg.spatial_mean(stack, **params)
            background, offsets = result.background, None
            extras["noise_correction"] = result.noise_correction
        elif method == "rolling_median":
            background, offsets = bg.rolling_median(stack, **params), None
        elif method == "sparse_median":
            result = bg.sparse_median(stack, progress=progress, **params)
            background, offsets = result.expand(), None
            extras["images"] = result.images
            if result.offsets is not None:
                extras["offsets"] = np.asarray(result.offsets)  # (T,) floats: small
        elif method == "temporal_median":
            # Lazy for dask input: computed here, task by task, so the bar moves and
            # Cancel stops it within one task (one spatial tile).
            background = compute(bg.temporal_median(stack, progress=progress), progress=progress)
            background, offsets = np.asarray(background), None
        else:
            stat = bg.frame_stats(stack, params["stat"], q=params["q"], progress=progress)
            background, offsets = np.asarray(compute(stat, progress=progress)), None
        return background, bg.subtract(stack, background, offsets=offsets), extras

    def apply(self, *_: Any) -> None:
        try:
            layer, stack = self._stack()
        except ValueError as exc:
            self._error(exc)
            return
        self._start(
            self.compute,
            stack,
            self._progress(self.method.value),
            returned=lambda out: self._show_result(layer.name, out),
            status=f"computing {self.method.value} ...",
        )

    def _show_result(self, name: str, out: tuple[Any, Any, dict]) -> None:
        background, subtracted, extras = out
        upsert_image(self.viewer, f"{name} background", background, colormap="gray")
        upsert_image(self.viewer, f"{name} - background", subtracted, colormap="gray")
        if "images" in extras:
            upsert_image(self.viewer, f"{name} sparse background images",
                         np.asarray(extras["images"]), colormap="gray", visible=False)  # fmt: skip
        if extras.get("offsets") is not None:
            self._plot_offsets(name, extras["offsets"])
        for suffix in ("background (preview)", "- background (preview)"):
            if f"{name} {suffix}" in self.viewer.layers:
                self.viewer.layers.remove(f"{name} {suffix}")
        self.preview.value = False
        note = extras.get("noise_correction")
        self.status.value = f"done: {self.method.value}" + (
            f" (noise correction {note:.4f})" if note is not None else ""
        )

    def _plot_offsets(self, name: str, offsets: np.ndarray) -> None:
        """Dock (or update) the per-frame offset plot of the sparse median."""
        from camtrack.napari._plots import LinePlot

        if self.offset_plot is None:
            self.offset_plot = LinePlot()
            self.viewer.window.add_dock_widget(
                self.offset_plot, name="Background offsets", area="bottom"
            )
        self.offset_plot.plot(
            np.arange(offsets.size), offsets, xlabel="frame", ylabel="offset (ADU)",
            title=f"{name}: per-frame offset of the sparse median",
        )  # fmt: skip
