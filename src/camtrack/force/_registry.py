"""The force methods as the Forces widget, ``camtrack force`` and the docs see them.

:data:`METHODS` holds the methods of :func:`calibrate_force` (picked by its ``method``
keyword, in the engine's order, so ``list(METHODS)`` is the tuple of method names it
accepts) with the keywords each one uses. Defaults and help come from the function
(see :class:`camtrack._registry.Method`); ranges and units are stated here. The widget
and ``camtrack force`` take the acquisition and geometry (frame rate, exposure, length,
radius, height) in the table pipeline's terms (:class:`ForceParams`: 0 means "not
given"), so only the method choice is built from here there; the tests check that
their fields and options carry these keywords' names. ``docs/guide/forces.md`` holds
the tables.
"""

from __future__ import annotations

from camtrack._registry import Method, Param, Registry
from camtrack.force._calibrate import calibrate_force

__all__ = ["METHODS"]

# Ranges as the Forces widget offers them: frame rates up to 1 MHz, lengths and
# heights up to 1 mm; noise up to 1 um (beyond that the trace is no tether).
_ACQUISITION = (
    Param("fs_hz", float, min=0.0, max=1e6, unit="Hz", gui_value=0.0,
          text="Frame rate"),
    Param("exposure_s", float, min=0.0, max=100.0, unit="s", gui_none=0.0,
          note="0 = whole frame"),
    Param("length_nm", float, min=0.0, max=1e6, unit="nm", gui_value=0.0,
          text="Pendulum length", note="0 = auto"),
    Param("temperature_k", float, min=1.0, max=1000.0, unit="K"),
)  # fmt: skip
_DRAG = (
    Param("radius_nm", float, min=0.0, max=1e5, unit="nm", gui_none=0.0, note="0 = unknown",
          text="Bead radius",
          help="Bead radius; with height_nm it fixes the drag (Stokes with Faxén's wall "
          "correction) instead of fitting it."),
    Param("height_nm", float, min=0.0, max=1e6, unit="nm", gui_none=0.0, note="0 = unknown",
          text="Bead height",
          help="Height of the bead's centre above the surface (with radius_nm)."),
    # Not in the widget or the table pipeline yet: water at room temperature there.
    Param("viscosity_pa_s", float, min=0.0, unit="Pa s", gui=False, cli=False),
)  # fmt: skip
_NOISE = Param("noise_nm", float, min=0.0, max=1000.0, unit="nm", gui=False, gui_none=0.0,
               text="Tracking noise", note="0 = fitted")  # fmt: skip


def _method(name: str, summary: str, params: tuple[Param, ...]) -> Method:
    return Method(name, calibrate_force, summary, params, inputs=("x_nm",), select="method")


METHODS = Registry(
    "force",
    [
        _method(
            "psd",
            "Maximum-likelihood fit of the blocked periodogram, with aliasing, exposure "
            "blur and a white tracking-noise floor.",
            (*_ACQUISITION, *_DRAG, _NOISE),
        ),
        _method(
            "allan",
            "Fit of the overlapping Allan variance (the same model in the time domain).",
            (*_ACQUISITION, *_DRAG, _NOISE),
        ),
        _method(
            "hadamard",
            "Fit of the overlapping Hadamard variance: ignores a linear drift.",
            (*_ACQUISITION, *_DRAG, _NOISE),
        ),
        _method(
            "equipartition",
            "kT L / variance with the blur correction; needs radius_nm and height_nm (the "
            "drag fixed by Faxén's law).",
            (*_ACQUISITION, *_DRAG, _NOISE),
        ),
        _method(
            "auto",
            "psd, or hadamard where a linear drift is detected; the result's reason says which.",
            (*_ACQUISITION, *_DRAG, _NOISE),
        ),
    ],
    page="forces.md",
    command="camtrack force",
)
