"""End-to-end fixtures: a real `coincast up --source sim` process and a real headless Chromium.

Chromium is the system one (/usr/bin/chromium, or $COINCAST_CHROMIUM), driven by the Python
`playwright` package; browsers are never downloaded. Without it the e2e tests skip and say why.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts" / "e2e"
CHROMIUM = Path(os.environ.get("COINCAST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# 1s candles make a fresh simulator draw a chart within seconds; the rest are the defaults.
SERVER_ENV = {"COINCAST_STREAM__INTERVALS": "1s,1m,5m,1h,1d", "COINCAST_SOURCE__SIM_HISTORY_S": "120"}

T = TypeVar("T")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A running `coincast up` process."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def get(self, path: str, **params: Any) -> Any:
        r = httpx.get(self.url + path, params=params, timeout=10)
        r.raise_for_status()
        return r.json()

    def wait_for(self, probe: Callable[[], T | None], timeout: float, what: str) -> T:
        """Poll `probe` until it returns something truthy; fail with the server log otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"coincast up exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if got := probe():
                    return got
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout}s waiting for {what}\n{self.log_tail()}")
            time.sleep(0.1)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGINT (what Ctrl-C sends), then wait; SIGKILL only if it does not stop in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                pytest.fail(f"coincast up ignored SIGINT for {timeout}s\n{self.log_tail()}")
        return int(self.proc.returncode)


@pytest.fixture(scope="module")
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (install Debian's chromium or set COINCAST_CHROMIUM)")
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    return CHROMIUM


@contextmanager
def running_server(root: Path, extra_env: dict[str, str] | None = None, *, wait_tickers: int = 0) -> Iterator[Server]:
    """`python -m coincast up --source sim` on a free 127.0.0.1 port, data under ``root/data``.

    Waits for /health (and ``wait_tickers`` tickers), and on exit stops it and checks it exited cleanly.
    """
    port = _free_port()
    log = root / "up.log"
    cmd = [sys.executable, "-m", "coincast", "up", "--source", "sim", "--port", str(port),
           "--data-dir", str(root / "data")]  # fmt: skip
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=root,
                                env={**os.environ, **SERVER_ENV, **(extra_env or {})})  # fmt: skip
    srv = Server(proc, f"http://127.0.0.1:{port}", log)
    try:
        # a first start generates the simulated history before it answers
        srv.wait_for(lambda: srv.get("/health")["status"] == "ok", timeout=90, what="/health")
        if wait_tickers:
            srv.wait_for(lambda: len(srv.get("/api/v1/tickers")["tickers"]) >= wait_tickers, timeout=30,
                         what="tickers")  # fmt: skip
        yield srv
    finally:
        code = srv.stop()
        assert code in (0, 130, -signal.SIGINT), f"coincast up exited with {code}\n{srv.log_tail()}"


@pytest.fixture(scope="module")
def server(chromium_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The dashboard's server with a throw-away data dir."""
    with running_server(tmp_path_factory.mktemp("coincast-e2e")) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser(chromium_path: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()
