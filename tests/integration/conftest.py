"""Start `coincast up` as a real process on a free port and wait for it to be ready."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class UpProcess:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.proc, self.port, self.log = proc, port, log
        self.url = f"http://127.0.0.1:{port}"

    def get(self, path: str, **params: object) -> httpx.Response:
        return httpx.get(self.url + path, params=params, timeout=10)

    def wait_until(self, predicate, timeout: float = 30.0, what: str = "condition"):  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"coincast up exited ({self.proc.returncode}):\n{self.log.read_text()[-3000:]}")
            try:
                if (got := predicate()):
                    return got
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{self.log.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError(f"coincast up did not stop on {sig!r}\n{self.log.read_text()[-3000:]}") from None
        return int(self.proc.returncode)


@contextmanager
def coincast_up(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[UpProcess]:
    port = free_port()
    log = data_dir / f"up-{port}.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **(env or {})}
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "coincast", "up", "--port", str(port), "--data-dir", str(data_dir), *args],
            stdout=fh, stderr=subprocess.STDOUT, env=full_env,
        )
    up = UpProcess(proc, port, log)
    try:
        up.wait_until(lambda: up.get("/health").status_code == 200, timeout=60, what="/health")
        yield up
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
