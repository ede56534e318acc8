"""Settings: layers, validation messages, nothing unknown accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from coincast.domain import ConfigError, Interval
from coincast.settings import load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("COINCAST_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def test_defaults() -> None:
    s = load_settings()
    assert len(s.symbols) == 10 and s.symbols[0] == "BTCUSDT"
    assert s.stream.intervals == (Interval.M1, Interval.M5, Interval.H1, Interval.D1)
    assert s.store_url.startswith("duckdb:///") and s.store_url.endswith("/data/coincast.db")
    assert s.api.host == "127.0.0.1" and s.api.port == 8000


def test_layers_toml_then_env_then_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "coincast.toml").write_text('symbols = ["ethusdt"]\n[api]\nport = 7000\nhost = "0.0.0.0"\n')
    assert load_settings().api.port == 7000
    assert load_settings().symbols == ("ETHUSDT",)
    monkeypatch.setenv("COINCAST_API__PORT", "7100")
    s = load_settings()
    assert (s.api.port, s.api.host) == (7100, "0.0.0.0")
    s = load_settings(api__port=7200)
    assert (s.api.port, s.api.host) == (7200, "0.0.0.0")  # a flag replaces one field, not the section


def test_flat_binance_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COINCAST_BINANCE_WS_URL", "ws://127.0.0.1:9999")
    monkeypatch.setenv("COINCAST_BINANCE_REST_URL", "http://127.0.0.1:9998")
    s = load_settings()
    assert s.binance.ws_url == "ws://127.0.0.1:9999" and s.binance.rest_url == "http://127.0.0.1:9998"


def test_list_values_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COINCAST_SYMBOLS", "btcusdt, solusdt")
    monkeypatch.setenv("COINCAST_STREAM__INTERVALS", "1s,1m,1h")
    s = load_settings()
    assert s.symbols == ("BTCUSDT", "SOLUSDT")
    assert s.stream.intervals == (Interval.S1, Interval.M1, Interval.H1)


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"store__url": "mysql://db"}, "store.url = 'mysql://db': unknown scheme 'mysql'"),
        ({"bus__url": "amqp://x"}, "bus.url"),
        ({"stream__intervals": "1m,7m"}, "unknown interval '7m'; expected one of"),
        ({"stream__intervals": "3m,5m"}, "not multiples"),
        ({"symbols": "BTC!USDT"}, "invalid symbol 'BTC!USDT'"),
        ({"symbols": ""}, "at least one symbol"),
        ({"api__port": 70000}, "api.port = 70000"),
        ({"source__kind": "kraken"}, "source.kind = 'kraken'"),
        ({"stream__grace_ms": -1}, "stream.grace_ms"),
        ({"nonsense": 1}, "nonsense"),
    ],
)
def test_bad_values_name_the_field_and_value(overrides: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(**overrides)
    assert needle in str(err.value)


def test_bad_env_and_unknown_toml_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COINCAST_API__PORT", "eighty")
    with pytest.raises(ConfigError, match=r"api\.port"):
        load_settings()
    monkeypatch.delenv("COINCAST_API__PORT")
    (tmp_path / "coincast.toml").write_text("[api]\nprot = 1\n")
    with pytest.raises(ConfigError, match=r"api\.prot"):
        load_settings()


def test_cli_reports_config_errors_in_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "coincast", "up", "--symbols", "BTC!USDT", "--port", "1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip().startswith("error: invalid settings: symbols") and "Traceback" not in r.stderr
