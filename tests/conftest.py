"""Fixtures shared by every test layer."""

from __future__ import annotations

import os
from collections.abc import Iterator
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


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh schema in the local PostgreSQL ($COINCAST_TEST_POSTGRES, default the CI service).

    Skips with the reason when no server answers; the schema is dropped afterwards.
    """
    import uuid

    psycopg = pytest.importorskip("psycopg")
    base = os.environ.get("COINCAST_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
    try:
        conn = psycopg.connect(base, connect_timeout=3, autocommit=True)
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL not reachable at {base}: {exc}")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}schema={schema}"
    finally:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.close()
