"""The command line's progress bar: only on a terminal (#17 item 6)."""

from __future__ import annotations

import io

from camtrack._cli_progress import _plain, terminal_progress


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_no_bar_off_a_terminal():
    assert terminal_progress("x", io.StringIO()) is None


def test_bar_on_a_terminal_passes_every_item_through():
    out = _Tty()
    progress = terminal_progress("tracking", out)
    assert progress is not None
    assert list(progress(iter(range(5)), total=5)) == [0, 1, 2, 3, 4]


def test_plain_bar_counts_and_clears_its_line():
    out = _Tty()
    assert list(_plain(range(3), 3, "tracking", out)) == [0, 1, 2]
    text = out.getvalue()
    assert "tracking: 1/3 (33 %)" in text
    assert text.endswith("\r")
