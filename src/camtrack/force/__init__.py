"""Magnetic-tweezers forces from tracked bead traces.

:func:`calibrate_force` turns the sideways fluctuations of tethered beads into force,
stiffness, drag and corner frequency with 68 % intervals, by a maximum-likelihood fit
of the power spectrum ("psd"), of the overlapping Allan or Hadamard variance, or by
blur-corrected equipartition. Every model is exact for a camera: aliasing, the boxcar
blur of any exposure W <= 1 / fs and white tracking noise.

Drift: :func:`correct_drift` combines several reference beads robustly (lost or
jumping references left out per frame). Geometry and physics: :func:`pendulum_length_nm`,
:func:`extension_nm` (focal-shift factor :data:`FOCAL_SHIFT`), :func:`faxen_drag`,
:func:`kt_pn_nm`. Models for plots and checks: :func:`psd_model`, :func:`allan_model`,
:func:`blur_factor`; :func:`force_diagnostics` gives one bead's measured PSD and Allan
variance next to its fitted models. Force-extension: :func:`plateau_labels` (plateaus
from the magnet position), :func:`force_extension` (force and extension per plateau,
then ``.fit_wlc()``), :func:`wlc_force_pn`, :func:`wlc_extension_nm`, :func:`fit_wlc`.
From an exported tracking table: :func:`forces_from_table` (with :class:`ForceParams`;
what the Forces widget and ``camtrack force`` run) gives a :class:`TableForces`;
:func:`read_table` reads the table, :func:`traces_from_table` pivots it to traces.

Units: nm, s, pN; stiffness pN/nm, drag pN s/nm. Traces are (n_frames,) or
(n_beads, n_frames); frame k averages the position over [k / fs, k / fs + W].
"""

from camtrack.force._calibrate import calibrate_force
from camtrack.force._diagnostics import ForceDiagnostics, force_diagnostics
from camtrack.force._drift import DriftResult, correct_drift
from camtrack.force._models import allan_model, blur_factor, psd_model
from camtrack.force._physics import (
    FOCAL_SHIFT,
    extension_nm,
    faxen_drag,
    kt_pn_nm,
    pendulum_length_nm,
)
from camtrack.force._plateaus import ForceExtension, force_extension, plateau_labels
from camtrack.force._registry import METHODS
from camtrack.force._result import ForceResult
from camtrack.force._table import TableTraces, read_table, traces_from_table
from camtrack.force._table_forces import (
    DRAG_MODES,
    SURFACES,
    ForceParams,
    TableForces,
    forces_from_table,
    parse_beads,
    parse_ranges,
)
from camtrack.force._wlc import WLCResult, fit_wlc, wlc_extension_nm, wlc_force_pn

__all__ = [
    "DRAG_MODES",
    "FOCAL_SHIFT",
    "METHODS",
    "SURFACES",
    "DriftResult",
    "ForceDiagnostics",
    "ForceExtension",
    "ForceParams",
    "ForceResult",
    "TableForces",
    "TableTraces",
    "WLCResult",
    "allan_model",
    "blur_factor",
    "calibrate_force",
    "correct_drift",
    "extension_nm",
    "faxen_drag",
    "fit_wlc",
    "force_diagnostics",
    "force_extension",
    "forces_from_table",
    "kt_pn_nm",
    "parse_beads",
    "parse_ranges",
    "pendulum_length_nm",
    "plateau_labels",
    "psd_model",
    "read_table",
    "traces_from_table",
    "wlc_extension_nm",
    "wlc_force_pn",
]
