"""The "Background" widget: pick a layer and a method, preview live, apply lazily.

Preview computes the background of the current frame only (for temporal methods from a
sub-sample of at most ``PREVIEW_FRAMES`` frames around it) in a thread worker, so the
GUI thread does no array work: a slider move never freezes the viewer, the newest
request wins, and a temporal background is cached per parameter set and frame window
(the temporal median's preview is computed once, not once per frame). Apply builds the
lazy result layers
``<name> background`` and ``<name> - background``; methods that need a pass over the
whole stack (temporal median, sparse median, frame statistics) run in a thread worker
with a progress bar and can be cancelled.

The methods and their parameter fields come from the registry
``camtrack.background.METHODS``: each field is named like the engine keyword, with
its range, unit and docstring from the spec (``_fields.py``).
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, PushButton

from camtrack import background as bg
from camtrack._layerdata import as_lazy, background_layers
from camtrack._parallel import compute, compute_isolated
from camtrack.napari._glguard import guard_gl_context_on_layer_removal
from camtrack.napari._layers import upsert_all, upsert_image
from camtrack.napari._widgets._fields import fields_for, fit_label_column
from camtrack.napari._widgets._threaded import ThreadedRun, deferred, message_label, while_alive
from camtrack.napari._widgets._tooltips import set_tooltips, value_fields

PREVIEW_FRAMES = 31
# Cached preview backgrounds (2-D images): a few parameter sets and windows, a few MB.
PREVIEW_CACHE = 8
PREVIEW_BG, PREVIEW_RES = "preview background: {}", "preview residual: {}"

# Widget name -> registry entry (function, parameter specs).
METHODS = bg.METHODS.gui()


def _read(x: Any) -> Any:
    """Compute a dask slice in the preview worker without dask's global callbacks
    (other arrays pass through): napari's dask cache, registered there while it
    slices in the GUI thread, is not thread-safe (see
    :func:`camtrack._parallel.compute_isolated`). benchmarks/bench_gui_freeze.py
    logged the resulting ``ERROR: ('kernel-...', 0, 0, 0)`` in 2 of 3 runs before.
    """
    return compute_isolated(x) if hasattr(x, "__dask_graph__") else x


class BackgroundWidget(ThreadedRun, Container):
    """Background estimation with live preview (Plugins > camtrack > Background)."""

    def __init__(self, napari_viewer: Any) -> None:
        self.viewer = napari_viewer
        guard_gl_context_on_layer_removal(napari_viewer)  # docs/known-issues.md
        self.image = ComboBox(label="Image", choices=self._image_layers)
        self.method = ComboBox(label="Method", choices=list(METHODS), value="spatial mean")
        # One field per engine keyword (self.radius, self.window, ...), from the registry.
        self.fields = fields_for(METHODS.values())
        for name, field in self.fields.items():
            setattr(self, name, field)
        self.preview = CheckBox(label="Live preview (current frame)", value=True)
        self.apply_button = PushButton(text="Apply")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.status = message_label("")
        super().__init__(
            widgets=[
                self.image, self.method, *self.fields.values(), self.preview,
                self.apply_button, self.cancel_button, self.status,
            ],
        )  # fmt: skip
        self.start_button = self.apply_button
        self._init_threaded()
        fit_label_column(self)  # the labels as napari draws them
        set_tooltips(  # the parameter fields have theirs from the registry
            value_fields(self),
            (),
            {
                "image": "The stack (T, Y, X) to estimate the background of.",
                "method": "Background method (see the user guide for when to use which).",
                "preview": "Show the background of the current frame, computed in the "
                "background (temporal methods from at most 31 frames around it).",
            },
        )
        self._preview_frame = -1
        self._preview_worker = None
        self._preview_pending = False
        # key -> (weak reference to the stack, background): the id in the key may be
        # reused by a new stack once the old one is gone, the reference tells.
        self._preview_cache: dict[tuple, tuple[Any, np.ndarray]] = {}
        self.offset_plot = None
        self._show_fields()
        for w in (self.method, *self.fields.values()):
            w.changed.connect(self._show_fields)  # e.g. q only with stat "percentile"
        for w in (self.image, self.method, *self.fields.values(), self.preview):
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
        """The engine function's name of the chosen method (e.g. "temporal_median")."""
        return METHODS[self.method.value].func.__name__

    def _values(self) -> dict[str, Any]:
        return {name: field.value for name, field in self.fields.items()}

    def params(self) -> dict[str, Any]:
        """The current method's keyword arguments for the engine."""
        return METHODS[self.method.value].gui_kwargs(self._values())

    def _show_fields(self, *_: Any) -> None:
        shown = METHODS[self.method.value].shown(self._values())
        for name, field in self.fields.items():
            field.visible = name in shown

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

    def _preview_request(self) -> tuple[Any, int, str, dict[str, Any]]:
        """What the preview needs, read from the widgets (GUI thread; no array work)."""
        _, stack = self._stack()
        return stack, self._current_frame(stack.shape[0]), self.engine_method, self.params()

    def preview_background(
        self, request: tuple[Any, int, str, dict[str, Any]] | None = None
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """(background, frame - background, t) of frame t, as (Y, X) arrays.

        Runs in the preview worker (or directly, for scripts and tests); ``request``
        defaults to the current layer, frame and parameters.
        """
        stack, t, method, params = request or self._preview_request()
        frame = _read(stack[t : t + 1])
        if method == "spatial_mean":
            background = np.asarray(bg.spatial_mean(frame, **params).background)
        else:
            # Temporal methods: the frames around t (the rolling or sparse kernel, or
            # the whole stack), sub-sampled to PREVIEW_FRAMES for speed.
            span = {"rolling_median": params.get("window"),
                    "sparse_median": params.get("window")}.get(method) or stack.shape[0]  # fmt: skip
            lo = max(0, min(t - span // 2, stack.shape[0] - span))
            hi = min(stack.shape[0], lo + span)
            idx = np.unique(np.linspace(lo, hi - 1, min(PREVIEW_FRAMES, hi - lo)).round())
            key = (id(stack), method, tuple(sorted(params.items())), tuple(idx.tolist()))
            ref, background = self._preview_cache.get(key, (None, None))
            if ref is None or ref() is not stack:
                sub = _read(stack[idx.astype(int)])
                if method in ("frame_stats", "temporal_median", "temporal_percentile"):
                    background = getattr(bg, method)(sub, **params)
                else:  # rolling and sparse medians: the median of the frames around t
                    background = bg.temporal_median(sub)
                background = np.asarray(background)
                if len(self._preview_cache) >= PREVIEW_CACHE:
                    self._preview_cache.pop(next(iter(self._preview_cache)))
                self._preview_cache[key] = (weakref.ref(stack), background)
        frame = np.asarray(frame)
        residual = np.asarray(bg.subtract(frame, background))
        return background.reshape(frame.shape[-2:]), residual[0], t

    def update_preview(self, *_: Any) -> None:
        """Ask for a preview of the current frame; computed in a worker, newest wins."""
        if not self.preview.value or self.image.value is None:
            return
        try:
            request = self._preview_request()
        except (ValueError, TypeError) as exc:
            self._error(exc)
            return
        if self._preview_worker is not None:
            self._preview_pending = True  # the running one finishes, then the newest
            return
        self._preview_pending = False
        name = self.image.value.name
        self._preview_worker = self._spawn(
            self.preview_background, request,
            _connect={"returned": while_alive(lambda out: self._show_preview(name, out)),
                      "errored": while_alive(self._error),
                      "finished": while_alive(self._preview_done)},
        )  # fmt: skip

    def _preview_done(self) -> None:
        self._preview_worker = None
        if self._preview_pending:
            self.update_preview()

    def _show_preview(self, name: str, out: tuple[np.ndarray, np.ndarray, int]) -> None:
        if not self.preview.value:
            return
        background, residual, t = out
        upsert_image(self.viewer, PREVIEW_BG.format(name), background, colormap="gray",
                     visible=True)  # fmt: skip
        upsert_image(self.viewer, PREVIEW_RES.format(name), residual, colormap="gray",
                     visible=True)  # fmt: skip
        self._preview_frame = t
        self.status.value = f"preview: frame {t}"

    # -- apply --------------------------------------------------------------------
    def compute(self, stack: Any, progress: Any = None) -> tuple[Any, Any, dict]:
        """Run the engine on the whole (lazy) stack: (the stack as dask, the method's
        result, extras). The result is a SpatialMeanResult, a SparseMedianResult or the
        background array (rolling median: lazy; the others: one computed image)."""
        stack = as_lazy(stack)
        method, params = self.engine_method, self.params()
        extras: dict[str, Any] = {}
        if method in ("spatial_mean", "rolling_median"):
            result = getattr(bg, method)(stack, **params)
        elif method == "sparse_median":
            result = bg.sparse_median(stack, progress=progress, **params)
            if result.offsets is not None:
                extras["offsets"] = np.asarray(result.offsets)  # (T,) floats: small
        else:  # temporal median, temporal percentile, frame statistic: one image
            # Lazy for dask input: computed here, task by task, so the bar moves and
            # Cancel stops it within one task (one spatial tile).
            image = getattr(bg, method)(stack, progress=progress, **params)
            result = np.asarray(compute(image, progress=progress))
        return stack, result, extras

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
        stack, result, extras = out
        # <name> background, <name> - background (lazy), the sparse median's images
        if hasattr(result, "to_layers"):
            upsert_all(self.viewer, result.to_layers(stack, name))
        else:
            upsert_all(self.viewer, background_layers(name, stack, result))
        if extras.get("offsets") is not None:
            self._plot_offsets(name, extras["offsets"])
        for pattern in (PREVIEW_BG, PREVIEW_RES):
            if pattern.format(name) in self.viewer.layers:
                self.viewer.layers.remove(pattern.format(name))
        self.preview.value = False
        note = getattr(result, "noise_correction", None)
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
