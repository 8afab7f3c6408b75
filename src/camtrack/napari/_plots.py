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

    def line_data(self) -> tuple[np.ndarray, np.ndarray]:
        """The plotted (x, y), for tests."""
        (line,) = self.axes.get_lines()
        return np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
