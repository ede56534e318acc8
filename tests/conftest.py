"""Fixtures shared by every test layer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """../shared/data beside the repo root, or $COINCAST_SHARED_DATA."""
    env = os.environ.get("COINCAST_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The recorded Binance data; tests that need it skip with the reason when it is absent."""
    path = shared_data_dir()
    if not (path / "klines_1h.parquet").exists():
        pytest.skip(f"recorded market data not found at {path} (set COINCAST_SHARED_DATA)")
    return path
