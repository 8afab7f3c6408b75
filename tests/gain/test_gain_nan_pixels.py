"""NaN pixels in a gain stack are left out (masked) and counted in the warnings.

A pixel with a NaN (or inf) in any frame has no usable mean or variance. It used to be
dropped by the moment methods but crashed ``method="robust"`` (its NaN reached the 8x8
block sums through ``NaN * 0`` and then numpy's ``bincount``).
"""

from __future__ import annotations

import numpy as np
import pytest

from camtrack.gain import estimate_gain
from camtrack.simulate import camera_stack

METHODS = ("median", "meanvar", "diff", "robust")
DEAD = ((10, 20), (50, 51), (90, 3))  # NaN in every frame
ONCE = ((7, 40, 60), (33, 70, 70))  # NaN in one frame only


@pytest.fixture(scope="module")
def stacks():
    clean, _ = camera_stack(60, (96, 96), rng=5)
    clean = clean.astype(np.float32)
    holed = clean.copy()
    for y, x in DEAD:
        holed[:, y, x] = np.nan
    for t, y, x in ONCE:
        holed[t, y, x] = np.nan
    holed[12, 80, 80] = np.inf
    return clean, holed


N_HOLED = len(DEAD) + len(ONCE) + 1


@pytest.mark.parametrize("method", METHODS)
def test_nan_pixels_are_masked_and_counted(stacks, method):
    clean, holed = stacks
    res = estimate_gain(holed, method=method)
    assert np.isfinite(res.e_per_adu)
    # The same result as masking those pixels by hand: the NaN pixels count for nothing
    # else. 1e-9 relative is float64 rounding; "robust" pools 8x8 blocks, and a masked
    # pixel leaves its block with 63 of 64 pixels either way, so it agrees too.
    mask = np.zeros(clean.shape[1:], bool)
    for y, x in (*DEAD, *((y, x) for _, y, x in ONCE), (80, 80)):
        mask[y, x] = True
    ref = estimate_gain(clean, method=method, mask=mask)
    assert res.e_per_adu == pytest.approx(ref.e_per_adu, rel=1e-9)
    assert res.excluded[mask].all()
    said = [w for w in res.warnings if "NaN" in w]
    assert len(said) == 1 and said[0].startswith(f"{N_HOLED} pixels"), res.warnings


def test_robust_nan_dask_branch(stacks):
    da = pytest.importorskip("dask.array")
    _, holed = stacks
    ref = estimate_gain(holed, method="robust")
    lazy = estimate_gain(da.from_array(holed, chunks=(13, 40, -1)), method="robust")
    assert lazy.e_per_adu == pytest.approx(ref.e_per_adu, rel=1e-9)


def test_no_warning_without_nan(stacks):
    clean, _ = stacks
    res = estimate_gain(clean, method="meanvar")
    assert not [w for w in res.warnings if "NaN" in w]
