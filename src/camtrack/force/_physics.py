"""Physical constants and geometry: kT, Stokes drag near a wall, pendulum length,
extension from z.

Units everywhere in :mod:`camtrack.force`: nm, s, pN, pN/nm (stiffness), pN s/nm (drag).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from camtrack._validation import check_choice, check_positive

__all__ = [
    "BOLTZMANN_PN_NM_PER_K",
    "FOCAL_SHIFT",
    "extension_nm",
    "faxen_drag",
    "kt_pn_nm",
    "pendulum_length_nm",
]

# Boltzmann constant, 1.380649e-23 J/K exactly (SI 2019); 1 J = 1e21 pN nm.
BOLTZMANN_PN_NM_PER_K = 1.380649e-2

# Focal shift for an oil objective imaging into water: the focus moves by n_water /
# n_oil of the objective's displacement (paraxial), 1.33 / 1.515 = 0.878.
FOCAL_SHIFT = 1.33 / 1.515


def kt_pn_nm(temperature_k: float) -> float:
    """Thermal energy k_B T in pN nm.

    Parameters
    ----------
    temperature_k : float
        Absolute temperature, K (> 0).

    Returns
    -------
    float
        k_B T, pN nm (k_B = 1.380649e-23 J/K exactly; 1 J = 1e21 pN nm).

    Examples
    --------
    >>> from camtrack.force import kt_pn_nm
    >>> round(kt_pn_nm(296.15), 4)
    4.0888
    """
    return BOLTZMANN_PN_NM_PER_K * check_positive(temperature_k, "temperature_k")


def faxen_drag(
    radius_nm: float, height_nm: float | None = None, viscosity_pa_s: float = 1e-3
) -> float:
    """Drag coefficient of a sphere moving parallel to a wall, pN s/nm.

    Parameters
    ----------
    radius_nm : float
        Bead radius, nm (> 0).
    height_nm : float or None
        Height of the bead *centre* above the surface, nm (> radius_nm). None: far
        from any wall (plain Stokes drag).
    viscosity_pa_s : float
        Dynamic viscosity, Pa s (water at 20-25 C: about 1.0e-3 to 0.89e-3).

    Returns
    -------
    float
        gamma = 6 pi eta R / (1 - 9/16 (R/h) + 1/8 (R/h)^3 - 45/256 (R/h)^4
        - 1/16 (R/h)^5), in pN s/nm.

    Notes
    -----
    Faxén's series for motion parallel to a plane wall (Happel & Brenner 1965,
    Eq. 7-4.28; Schäffer, Nørrelykke & Howard 2007, Langmuir 23, 3654). It is good to
    about 1 % down to h = 1.1 R and is not meant for motion perpendicular to the wall.
    1 N s/m = 1e3 pN s/nm, so gamma[pN s/nm] = 6 pi eta[Pa s] R[nm] 1e-6 / (...).

    Examples
    --------
    >>> from camtrack.force import faxen_drag
    >>> round(faxen_drag(500.0) * 1e6, 3)  # 6 pi eta R far from the wall, 1e-6 pN s/nm
    9.425
    >>> faxen_drag(500.0, 1000.0) > faxen_drag(500.0)
    True
    """
    r = check_positive(radius_nm, "radius_nm")
    eta = check_positive(viscosity_pa_s, "viscosity_pa_s")
    stokes = 6.0 * np.pi * eta * r * 1e-6
    if height_nm is None:
        return float(stokes)
    h = check_positive(height_nm, "height_nm")
    if h <= r:
        raise ValueError(
            f"`height_nm` is the height of the bead centre above the surface and must "
            f"exceed `radius_nm` ({r:g}); got {height_nm!r}. Pass extension + radius."
        )
    q = r / h
    return float(stokes / (1.0 - 9.0 / 16.0 * q + q**3 / 8.0 - 45.0 / 256.0 * q**4 - q**5 / 16.0))


def pendulum_length_nm(extension_nm: Any, radius_nm: float, direction: str = "parallel") -> Any:
    """Pendulum length of a magnetic-tweezers tether for sideways fluctuations, nm.

    Parameters
    ----------
    extension_nm : float or array_like
        Tether extension (bead bottom above the surface), nm (> 0).
    radius_nm : float
        Bead radius, nm (> 0).
    direction : {"parallel", "perpendicular"}
        Fluctuations parallel to the magnetic field (the bead also rotates about its
        locked magnetic moment, so it swings about the attachment point with length
        L + R) or perpendicular to it (the bead rotates freely: length L).

    Returns
    -------
    float or ndarray
        The length to pass as ``length_nm`` to :func:`calibrate_force`.

    Notes
    -----
    The transverse stiffness is kappa = F / length (te Velthuis et al. 2010, Biophys. J.
    99, 1292; Lansdorp & Saleh 2012, Rev. Sci. Instrum. 83, 025115). For large beads
    and short tethers the difference between the two directions is large.

    Examples
    --------
    >>> from camtrack.force import pendulum_length_nm
    >>> pendulum_length_nm(2000.0, 500.0, "parallel")
    2500.0
    >>> pendulum_length_nm(2000.0, 500.0, "perpendicular")
    2000.0
    """
    check_choice(direction, "direction", ("parallel", "perpendicular"))
    r = check_positive(radius_nm, "radius_nm")
    ext = np.asarray(extension_nm, dtype=float)
    if not np.all(np.isfinite(ext)) or np.any(ext <= 0):
        raise ValueError(
            f"`extension_nm` must be finite and > 0; got {extension_nm!r}. "
            "Compute it with extension_nm(z, surface) first."
        )
    out = ext + r if direction == "parallel" else ext
    return float(out) if out.ndim == 0 else out


def extension_nm(
    z_nm: Any,
    surface_nm: Any,
    *,
    focal_shift: float = FOCAL_SHIFT,
    radius_nm: float | None = None,
) -> Any:
    """Tether extension from z, the surface reference and the focal-shift factor, nm.

    Parameters
    ----------
    z_nm : array_like
        Bead z from the Z-LUT, nm (positive: farther from the objective), any shape.
    surface_nm : float or array_like
        The surface reference in the same frame: a user value, or the z trace of a bead
        stuck to the surface (broadcast against ``z_nm``, e.g. shape (n_frames,)).
    focal_shift : float
        True displacement per Z-LUT unit: n_water / n_oil = 1.33 / 1.515 = 0.878 for an
        oil objective whose z-sweep moved the objective (set 1.0 for a water objective).
    radius_nm : float or None
        When ``surface_nm`` is the surface itself (not a stuck bead's centre), the bead
        radius to subtract so the result is bead bottom to surface.

    Returns
    -------
    ndarray or float
        ``focal_shift * (z_nm - surface_nm) - radius_nm``.

    Notes
    -----
    With a stuck reference bead of the same radius the centre-to-centre difference is
    already the extension; leave ``radius_nm=None``. The reference also removes
    common z drift when it is a trace.

    Examples
    --------
    >>> import numpy as np
    >>> from camtrack.force import extension_nm
    >>> float(extension_nm(np.array([1000.0]), 0.0, focal_shift=0.9)[0])
    900.0
    """
    factor = check_positive(focal_shift, "focal_shift")
    z = np.asarray(z_nm, dtype=float)
    ref = np.asarray(surface_nm, dtype=float)
    try:
        out = factor * (z - ref)
    except ValueError:
        raise ValueError(
            f"`surface_nm` (shape {ref.shape}) must broadcast against `z_nm` "
            f"(shape {z.shape}); pass a scalar or one value per frame."
        ) from None
    if radius_nm is not None:
        out = out - check_positive(radius_nm, "radius_nm")
    return float(out) if out.ndim == 0 else out
