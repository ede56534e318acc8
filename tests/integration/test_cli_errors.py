"""`coincast` as a process: every usage error, bad setting, bad config file, bad data directory and
port in use is one `error: …` line and a non-zero exit, before anything starts or is written."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SRC = str(Path(__file__).resolve().parents[2] / "src")


def coincast(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
             ) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("COINCAST_")}
    clean["PYTHONPATH"] = os.pathsep.join(filter(None, [SRC, clean.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "coincast", *args], cwd=cwd, env={**clean, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


def assert_one_error_line(res: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert res.returncode != 0, (res.returncode, res.stdout, res.stderr)
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def assert_untouched(path: Path) -> None:
    """Nothing started, written or generated (no store, lake, models or API key)."""
    left = sorted(p.name for p in path.rglob("*")) if path.exists() else []
    assert left == [], left


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["nosuch"], ["No such command 'nosuch'"]),
        (["up", "--prot", "1"], ["No such option: --prot", "--port"]),
        (["up", "--port", "abc"], ["'--port'", "integer"]),
        (["up", "--port", "70000"], ["api.port = 70000"]),
        (["up", "--symbols", "BTC USDT!"], ["symbols"]),
        (["import"], ["Missing argument 'paths'"]),
        (["import", "no-such-file.csv"], ["no-such-file.csv: no such file"]),
        (["backtest"], ["--predictions"]),
    ],
)
def test_usage_errors_are_one_line(tmp_path: Path, args: list[str], needles: list[str]) -> None:
    data = tmp_path / "data"
    res = coincast(*args, "--data-dir", str(data), cwd=tmp_path) if args[0] == "up" else coincast(*args, cwd=tmp_path)
    assert res.returncode == 2 or args[:1] == ["import"], res
    assert_one_error_line(res, *needles)
    assert_untouched(data)


def test_bare_coincast_shows_help_and_fails(tmp_path: Path) -> None:
    res = coincast(cwd=tmp_path)
    assert res.returncode == 2 and "Usage:" in res.stdout and "up" in res.stdout and "Traceback" not in res.stderr


@pytest.mark.parametrize(
    ("content", "needles"),
    [
        (None, ["does not exist", "COINCAST_CONFIG"]),
        ("symbols = [\n", ["not valid TOML"]),
        (b"\xff\xfe\x00garbage", ["not UTF-8"]),
        ("symbols = 5\n", ["symbols = 5", "must be a list"]),
        ("[api]\nport = \"abc\"\n", ["api.port", "integer"]),
        ("nosuch = 1\n", ["nosuch"]),
        ("[store]\nurl = \"mysql://u:hunter2@h/db\"\n", ["store.url", "unknown scheme"]),
        ("[api]\napikey = \"hunter2-secret\"\n", ["api.apikey"]),
    ],
)
def test_bad_config_files(tmp_path: Path, content: str | bytes | None, needles: list[str]) -> None:
    cfg = tmp_path / "conf" / "coincast.toml"
    cfg.parent.mkdir()
    if isinstance(content, bytes):
        cfg.write_bytes(content)
    elif content is not None:
        cfg.write_text(content)
    data = tmp_path / "data"
    res = coincast("up", "--port", "0", "--data-dir", str(data), cwd=tmp_path, env={"COINCAST_CONFIG": str(cfg)})
    line = assert_one_error_line(res, *needles)
    assert res.returncode == 2 and "hunter2" not in line  # a mistyped secret is never echoed
    assert_untouched(data)


def test_config_path_that_is_a_directory(tmp_path: Path) -> None:
    res = coincast("up", "--port", "0", "--data-dir", str(tmp_path / "data"), cwd=tmp_path,
                   env={"COINCAST_CONFIG": str(tmp_path)})
    assert_one_error_line(res, "is a directory")


def test_bad_environment_values(tmp_path: Path) -> None:
    env = {"COINCAST_API__RATE_LIMIT_PER_MINUTE": "zero", "COINCAST_API__API_KEY": "x"}
    res = coincast("up", "--port", "0", "--data-dir", str(tmp_path / "data"), cwd=tmp_path, env=env)
    assert_one_error_line(res, "api.rate_limit_per_minute = 'zero'")
    assert_untouched(tmp_path / "data")


@pytest.mark.parametrize("where", ["file", "under_file"])
def test_data_dir_that_cannot_be_one(tmp_path: Path, where: str) -> None:
    f = tmp_path / "plain.txt"
    f.write_text("not a directory")
    target = f if where == "file" else f / "data"
    for args in (["up", "--port", "0"], ["import", str(f)], ["models", "list"],
                 ["backfill", "--symbols", "BTCUSDT", "--start", "2024-01-01", "--end", "2024-01-02"]):
        res = coincast(*args, "--data-dir", str(target), cwd=tmp_path)
        assert_one_error_line(res, "data directory", "choose another --data-dir")
        assert res.returncode == 2
    assert f.read_text() == "not a directory"


def test_port_in_use_fails_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        data = tmp_path / "data"
        res = coincast("up", "--source", "sim", "--port", str(port), "--data-dir", str(data), cwd=tmp_path)
    assert_one_error_line(res, f"127.0.0.1:{port}", "in use", "--port")
    assert res.returncode == 2
    # the data directory may exist (checked writable), but nothing ran: no store, lake, models or API key
    assert_untouched(data)
