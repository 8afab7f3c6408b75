"""BlockStore: the robust kernel's block arrays in memory or band-major on disk."""

from __future__ import annotations

import numpy as np
import pytest

from camtrack.gain._blockstore import BlockStore


@pytest.mark.parametrize("on_disk", [False, True])
def test_write_read_round_trip(tmp_path, on_disk):
    rng = np.random.default_rng(0)
    arrays = {"e": (30, np.float32), "k": (30, bool)}
    bands = [(0, 3), (3, 4), (4, 9)]
    full = rng.random((30, 9, 5)).astype(np.float32)
    mask = rng.random((30, 9, 5)) < 0.5
    with BlockStore(np, arrays, 9, 5, bands, on_disk=on_disk, folder=str(tmp_path)) as st:
        # Written in pieces of frames covering whole bands, as the passes do.
        for t0 in range(0, 30, 7):
            st.write("e", t0, 0, full[t0 : t0 + 7, :4])
            st.write("e", t0, 4, full[t0 : t0 + 7, 4:])
        st.write("k", 0, 0, mask)
        np.testing.assert_array_equal(st.read("e", 0, 9), full)
        np.testing.assert_array_equal(st.read("e", 2, 6, slice(5, 17)), full[5:17, 2:6])
        np.testing.assert_array_equal(st.read("k", 1, 8), mask[:, 1:8])
        if on_disk:
            assert len(list(tmp_path.iterdir())) == 1
            with pytest.raises(ValueError, match="whole bands"):
                st.write("e", 0, 1, full[:, 1:4])
    assert list(tmp_path.iterdir()) == []
