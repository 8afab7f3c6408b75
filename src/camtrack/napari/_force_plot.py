"""The Forces widget's docked plot: one bead's PSD and Allan variance with their fits,
its extension (or sideways position) over time, and force versus extension with the
worm-like-chain fit. Drawn from engine results only (no fitting here)."""

from __future__ import annotations

from typing import Any

import numpy as np
from qtpy.QtWidgets import QVBoxLayout, QWidget

BACKGROUND = "#262930"  # napari's dark theme
DATA, FIT, MARK = "#b0b0b0", "#7fb8ff", "#ffb347"


def _style(ax: Any, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_facecolor(BACKGROUND)
    ax.set_title(title, color="white", fontsize=9)
    ax.set_xlabel(xlabel, color="white", fontsize=8)
    ax.set_ylabel(ylabel, color="white", fontsize=8)
    ax.tick_params(colors="white", labelsize=7, which="both")
    for spine in ax.spines.values():
        spine.set_color("#888888")


def _major_labels_only(ax: Any) -> None:
    """Log axes label their decades only (minor labels overlap in a small panel)."""
    from matplotlib.ticker import NullFormatter

    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())


def _note(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center",
            color="#ff9e80", fontsize=8, wrap=True)  # fmt: skip


class ForcePlot(QWidget):
    """PSD, Allan variance, extension(t) and force-extension of one bead, 2 x 2."""

    def __init__(self, parent: Any = None) -> None:
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        super().__init__(parent)
        self.figure = Figure(figsize=(7, 4.5), layout="constrained")
        self.figure.patch.set_facecolor(BACKGROUND)
        self.canvas = FigureCanvasQTAgg(self.figure)
        axes = self.figure.subplots(2, 2)
        self.psd_axes, self.allan_axes = axes[0]
        self.trace_axes, self.fe_axes = axes[1]
        self.setMinimumSize(480, 320)  # below this the four axes collapse
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas)

    def show_bead(
        self,
        diag: Any,
        *,
        title: str,
        t_s: np.ndarray | None = None,
        trace: np.ndarray | None = None,
        trace_label: str = "",
        plateaus: np.ndarray | None = None,
        fe: dict[str, np.ndarray] | None = None,
        wlc: Any = None,
    ) -> None:
        """Draw one bead.

        ``diag`` is a :class:`camtrack.force.ForceDiagnostics` (or a str saying why there
        is none); ``trace`` its extension (or position) per frame at times ``t_s``,
        ``plateaus`` the plateau per frame (shaded); ``fe`` force-extension points
        (extension_nm, extension_err_nm, force_pn, force_lo_pn, force_hi_pn) and ``wlc``
        a :class:`camtrack.force.WLCResult` (or the reason there is none).
        """
        for ax in (self.psd_axes, self.allan_axes, self.trace_axes, self.fe_axes):
            ax.clear()
        ax = self.psd_axes
        _style(ax, title, "f (Hz)", "PSD (nm²/Hz)")
        if isinstance(diag, str):
            _note(ax, diag)
            _note(self.allan_axes, diag)
            _style(self.allan_axes, "Allan variance", "τ (s)", "σ² (nm²)")
        else:
            # Blocks of several NaN-free segments come segment after segment: sort by f.
            order = np.argsort(diag.f_hz, kind="stable")
            f_hz = diag.f_hz[order]
            ax.loglog(f_hz, diag.psd_nm2_per_hz[order], ".", ms=2.5, color=DATA, label="data")
            ax.loglog(f_hz, diag.psd_model_nm2_per_hz[order], "-", color=FIT, lw=1.4,
                      label="fit (aliasing + blur + noise)")  # fmt: skip
            ax.legend(fontsize=6, facecolor=BACKGROUND, labelcolor="white", loc="lower left")
            a = self.allan_axes
            _style(a, "Allan variance", "τ (s)", "σ² (nm²)")
            a.loglog(diag.tau_s, diag.allan_nm2, "o", ms=3.5, color=DATA, label="data")
            a.loglog(diag.tau_s, diag.allan_model_nm2, "-", color=FIT, lw=1.4, label="model")
            a.legend(fontsize=6, facecolor=BACKGROUND, labelcolor="white")
            _major_labels_only(ax)
            _major_labels_only(a)
        ax = self.trace_axes
        _style(ax, f"{trace_label.split(' (')[0]}(t)" if trace_label else "", "t (s)",
               trace_label)  # fmt: skip
        if trace is None or t_s is None or not np.isfinite(trace).any():
            _note(ax, "no z (track with a Z-LUT): no extension trace")
        else:
            ax.plot(t_s, trace, color=FIT, lw=0.5)
            if plateaus is not None and plateaus.max(initial=-1) > 0:
                for k in np.unique(plateaus[plateaus >= 0]):
                    inside = t_s[plateaus == k]
                    ax.axvspan(inside[0], inside[-1], color=MARK, alpha=0.12 + 0.08 * (k % 2),
                               lw=0)  # fmt: skip
        ax = self.fe_axes
        _style(ax, "force-extension", "extension (nm)", "force (pN)")
        if fe is None or len(fe["force_pn"]) < 2:
            _note(ax, "one plateau: give several (frame ranges)\nfor a force-extension curve")
        else:
            f = fe["force_pn"]
            yerr = np.abs(np.vstack([f - fe["force_lo_pn"], fe["force_hi_pn"] - f]))
            ax.errorbar(fe["extension_nm"], f, yerr=yerr, xerr=fe["extension_err_nm"], fmt="o",
                        ms=4, color=MARK, ecolor=MARK, label="plateaus")  # fmt: skip
            ax.set_yscale("log")
            _major_labels_only(ax)
            if isinstance(wlc, str) or wlc is None:
                _note(ax, wlc or "no WLC fit")
            else:
                from camtrack.force import wlc_force_pn

                z = np.linspace(0.3 * wlc.contour_nm, 0.97 * wlc.contour_nm, 200)
                fit = wlc_force_pn(z, persistence_nm=wlc.persistence_nm,
                                   contour_nm=wlc.contour_nm, temperature_k=wlc.temperature_k,
                                   stretch_modulus_pn=wlc.stretch_modulus_pn)  # fmt: skip
                ax.plot(z, fit, "-", color=FIT, lw=1.2,
                        label=f"WLC: Lp {wlc.persistence_nm:.0f} ± {wlc.persistence_err_nm:.0f} "
                        f"nm, L0 {wlc.contour_nm:.0f} ± {wlc.contour_err_nm:.0f} nm")  # fmt: skip
                lo, hi = np.nanmin(fe["extension_nm"]), np.nanmax(fe["extension_nm"])
                ax.set_xlim(lo - 0.15 * (hi - lo), min(hi + 0.15 * (hi - lo), wlc.contour_nm))
            ax.legend(fontsize=6, facecolor=BACKGROUND, labelcolor="white", loc="upper left")
        self.canvas.draw_idle()

    def clear(self, message: str) -> None:
        """Remove the plotted bead and say why (a failed run leaves nothing stale)."""
        for ax in (self.psd_axes, self.allan_axes, self.trace_axes, self.fe_axes):
            ax.clear()
            _style(ax, "", "", "")
        _note(self.psd_axes, message)
        self.canvas.draw_idle()

    def lines(self, which: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Plotted lines of one panel ("psd", "allan", "trace", "fe") by label, for tests."""
        ax = getattr(self, f"{which}_axes")
        return {
            line.get_label(): (np.asarray(line.get_xdata()), np.asarray(line.get_ydata()))
            for line in ax.get_lines()
        }
