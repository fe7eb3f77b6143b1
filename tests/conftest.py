"""Shared test set-up."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private ``AUDIOREPRO_HOME`` (data, caches and result records of this test only)."""
    root = tmp_path / "home"
    root.mkdir()
    monkeypatch.setenv("AUDIOREPRO_HOME", str(root))
    return root
