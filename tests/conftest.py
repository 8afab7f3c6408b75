"""Shared fixtures: the cupy double (tests/_fakecupy.py)."""

from __future__ import annotations

import pytest


@pytest.fixture
def fakecupy(monkeypatch):
    """A cupy stand-in registered as ``cupy`` for one test: device arrays on the CPU
    that raise ``TypeError`` on host/device mixing and implicit host conversion."""
    import _fakecupy

    return _fakecupy.install(monkeypatch)
