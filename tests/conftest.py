"""Shared fixtures: where the real data lives, and a fresh temporary store."""

from __future__ import annotations

from pathlib import Path

import pytest

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The shared real-data folder beside the checkout; tests that need it skip without it."""
    if not (REAL_DATA / "MANIFEST.json").is_file():
        pytest.skip(f"real data not found at {REAL_DATA} (it sits beside the checkout in CI)")
    return REAL_DATA
