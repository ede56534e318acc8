"""Fixtures shared by every test layer."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


TEST_DATA = REPO / "tests" / "data"


def shared_data_dir() -> Path:
    """$COINCAST_SHARED_DATA, else ../shared/data beside the repo root (the full recorded data)."""
    env = os.environ.get("COINCAST_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The recorded Binance data: the full set when present, else the committed slice in tests/data.

    Both have the same layout (klines_1h/1d, trades_btcusdt, binance_fixtures/); the slice holds
    the 10 coins' hourly klines up to 2022-07-31 (tests/data/README.md), which every test reads
    inside, so results are the same either way.
    """
    path = shared_data_dir()
    return path if (path / "klines_1h.parquet").exists() else TEST_DATA


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _noida_binary() -> Path | None:
    try:
        import noida_db
    except ImportError:
        return None
    path = Path(noida_db.__file__).parent / "noida-db"
    return path if path.exists() else None


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of a Kafka broker: $COINCAST_TEST_KAFKA, else a noida-db started for the session."""
    import os

    if env := os.environ.get("COINCAST_TEST_KAFKA"):
        yield env
        return
    binary = _noida_binary()
    if binary is None:
        pytest.skip("no Kafka broker: install noida-db (pip) or set COINCAST_TEST_KAFKA=host:port")
    port = _free_port()
    data = tmp_path_factory.mktemp("kafka")
    log = (data / "noida.log").open("wb")
    proc = subprocess.Popen([str(binary), "start", "--only", "kafka", "--kafka-port", str(port),
                             "--data-dir", str(data)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        if proc.poll() is not None:
            pytest.fail(f"noida-db exited: {(data / 'noida.log').read_text()[-2000:]}")
        time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("noida-db did not open its Kafka port within 30 s")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database for one test ($COINCAST_TEST_REDIS, default db 15 of the local server), flushed after."""
    redis = pytest.importorskip("redis")
    url = os.environ.get("COINCAST_TEST_REDIS", "redis://127.0.0.1:6379/15")
    client = redis.Redis.from_url(url, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis not reachable at {url}: {exc}")
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()
