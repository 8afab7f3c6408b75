"""Small matplotlib plots docked in napari (matplotlib comes with the `gui` extra)."""

from __future__ import annotations

from typing import Any

import numpy as np
from qtpy.QtWidgets import QVBoxLayout, QWidget


class LinePlot(QWidget):
    """A docked line plot (x, y) with axis labels, redrawn in place by :meth:`plot`."""

    def __init__(self, parent: Any = None) -> None:
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        super().__init__(parent)
        self.figure = Figure(figsize=(4, 2.5), layout="constrained")
        self.figure.patch.set_facecolor("#262930")  # napari's dark theme background
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.axes = self.figure.add_subplot()
        self.setMinimumSize(300, 200)  # below this the axes collapse
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas)

    def plot(self, x: Any, y: Any, *, xlabel: str, ylabel: str, title: str = "") -> None:
        ax = self.axes
        ax.clear()
        ax.set_facecolor("#262930")
        ax.plot(np.asarray(x), np.asarray(y), color="#7fb8ff", lw=1.2)
        ax.set_xlabel(xlabel, color="white")
        ax.set_ylabel(ylabel, color="white")
        ax.set_title(title, color="white", fontsize=10)
        ax.tick_params(colors="white")
        for spine in ax.spines.values():
            spine.set_color("#888888")
        self.canvas.draw_idle()

    def plot_series(
        self,
        series: dict[str, tuple[Any, Any]],
        *,
        xlabel: str,
        ylabel: str,
        title: str = "",
        highlight: set[str] | None = None,
        bands: dict[str, tuple[Any, Any]] | None = None,
    ) -> None:
        """Several labelled lines, e.g. one trace per bead; ``highlight`` labels are
        drawn bold and the others faded; ``bands[label] = (low, high)`` shades a band
        around that line in its colour (e.g. +- 2 standard errors)."""
        ax = self.axes
        ax.clear()
        ax.set_facecolor("#262930")
        for label, (x, y) in series.items():
            if highlight is None:
                style = {"lw": 1.0}
            elif label in highlight:
                style = {"lw": 2.0, "zorder": 3}
            else:
                style = {"lw": 0.8, "alpha": 0.3}
            (line,) = ax.plot(np.asarray(x), np.asarray(y), label=label, **style)
            if bands and label in bands:
                low, high = bands[label]
                alpha = 0.25 * style.get("alpha", 1.0)
                ax.fill_between(np.asarray(x), np.asarray(low), np.asarray(high), lw=0,
                                color=line.get_color(), alpha=alpha)  # fmt: skip
        if len(series) > 1:
            ax.legend(fontsize=7, facecolor="#262930", labelcolor="white", ncols=2)
        ax.set_xlabel(xlabel, color="white")
        ax.set_ylabel(ylabel, color="white")
        ax.set_title(title, color="white", fontsize=10)
        ax.tick_params(colors="white")
        for spine in ax.spines.values():
            spine.set_color("#888888")
        self.canvas.draw_idle()

    def band_count(self) -> int:
        """How many error bands are drawn (for tests)."""
        return len(self.axes.collections)

    def highlighted(self) -> list[str]:
        """Labels of the lines drawn bold (for tests)."""
        return [line.get_label() for line in self.axes.get_lines() if line.get_linewidth() >= 2]

    def series_data(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Every plotted line by label, for tests."""
        return {
            line.get_label(): (np.asarray(line.get_xdata()), np.asarray(line.get_ydata()))
            for line in self.axes.get_lines()
        }

    def line_data(self) -> tuple[np.ndarray, np.ndarray]:
        """The plotted (x, y), for tests."""
        (line,) = self.axes.get_lines()
        return np.asarray(line.get_xdata()), np.asarray(line.get_ydata())


class GainPlot(QWidget):
    """Photon-transfer plot: binned mean vs variance, the fit line, the fit range
    shaded, a residual panel below, and the result as text."""

    def __init__(self, parent: Any = None) -> None:
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        super().__init__(parent)
        self.figure = Figure(figsize=(5, 4), layout="constrained")
        self.figure.patch.set_facecolor("#262930")
        self.canvas = FigureCanvasQTAgg(self.figure)
        grid = self.figure.add_gridspec(2, 1, height_ratios=(3, 1))
        self.axes = self.figure.add_subplot(grid[0])
        self.resid_axes = self.figure.add_subplot(grid[1], sharex=self.axes)
        self.text = ""
        self.setMinimumSize(360, 320)  # below this the axes collapse
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas)

    def show_result(self, result: Any, title: str = "") -> None:
        """Draw a :class:`camtrack.gain.GainResult` (its binned curve and fit)."""
        fit = result.fit
        x = np.asarray(result.bin_mean)
        y = np.asarray(result.bin_var)
        inside = np.asarray(fit.in_fit)
        line = fit.intercept + fit.slope * x
        ax, rx = self.axes, self.resid_axes
        for a in (ax, rx):
            a.clear()
            a.set_facecolor("#262930")
            a.tick_params(colors="white", labelsize=8)
            for spine in a.spines.values():
                spine.set_color("#888888")
        lo, hi = fit.fit_range_adu
        for a in (ax, rx):
            a.axvspan(lo, hi, color="#7fb8ff", alpha=0.15, lw=0)
        ax.plot(x[~inside], y[~inside], "o", ms=3, color="#999999", label="bins")
        ax.plot(x[inside], y[inside], "o", ms=4, color="#ffb347", label="bins in fit")
        ax.plot(x, line, "-", color="#7fb8ff", lw=1.2, label="fit")
        ax.set_ylabel("variance (ADU²)", color="white", fontsize=9)
        ax.legend(fontsize=7, facecolor="#262930", labelcolor="white", loc="upper left")
        with np.errstate(divide="ignore", invalid="ignore"):
            resid = 100.0 * (y - line) / line
        rx.axhline(0.0, color="#7fb8ff", lw=0.8)
        rx.plot(x, resid, "o", ms=3, color="#ffb347")
        rx.set_xlabel("mean (ADU)", color="white", fontsize=9)
        rx.set_ylabel("resid. (%)", color="white", fontsize=9)
        self.text = gain_text(result)
        ax.text(
            0.98, 0.04, self.text, transform=ax.transAxes, ha="right", va="bottom",
            color="white", fontsize=8, family="monospace",
            bbox={"facecolor": "#1b1d22", "edgecolor": "#888888", "alpha": 0.8},
        )  # fmt: skip
        ax.set_title(title, color="white", fontsize=10)
        self.canvas.draw_idle()

    def clear(self, message: str) -> None:
        """Remove the plotted result and say why (a failed run leaves nothing stale)."""
        for a in (self.axes, self.resid_axes):
            a.clear()
            a.set_facecolor("#262930")
            a.tick_params(colors="#666666", labelsize=8)
        self.text = ""
        self.axes.text(0.5, 0.5, message, transform=self.axes.transAxes, ha="center",
                       va="center", color="#ff9e80", fontsize=9, wrap=True)  # fmt: skip
        self.canvas.draw_idle()

    def points(self) -> tuple[np.ndarray, np.ndarray]:
        """All plotted bins (x, y), for tests."""
        xs, ys = [], []
        for line in self.axes.get_lines()[:2]:
            xs.append(np.asarray(line.get_xdata()))
            ys.append(np.asarray(line.get_ydata()))
        return np.concatenate(xs), np.concatenate(ys)


def gain_text(result: Any) -> str:
    """The result in words (see :meth:`camtrack.gain.GainResult.summary`)."""
    return result.summary()


def share_width(left: Any, right: Any, ratio: tuple[int, int]) -> None:
    """Split the width of two side-by-side docks by ``ratio`` (cosmetic; skipped when
    the main window is not a QMainWindow)."""
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QMainWindow

    # napari hands out its docks wrapped in a public-API proxy; Qt needs the objects.
    left, right = (getattr(d, "__wrapped__", d) for d in (left, right))
    window = left.parentWidget()
    while window is not None and not isinstance(window, QMainWindow):
        window = window.parentWidget()
    if window is not None:
        total = max(left.width() + right.width(), 600)
        sizes = [total * r // sum(ratio) for r in ratio]
        window.resizeDocks([left, right], sizes, Qt.Orientation.Horizontal)
