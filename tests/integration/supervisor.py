"""Processes a chaos test kills and restarts the way a supervisor (systemd, Kubernetes) would.

:class:`Supervised` is one long-running process with a fixed command line: killed with
``SIGKILL`` it is started again, same command line and environment, once its down time is over;
found dead without having been killed (it exited on its own) it is recorded as a crash and
restarted after ``CRASH_RESTART_S``, so the data path keeps being exercised while the crash still
fails the test. Output of every run goes to one log file, each run under a marker line.

:class:`NoidaBroker` is a noida-db Kafka-protocol broker on a fixed port and data directory.
noida-db keeps the log in memory and snapshots it to ``<data dir>/kafka.json`` once a second
when it changed, so a bare ``SIGKILL`` loses up to a second of *acknowledged* writes (topics,
offsets) -- a real broker killed the same way keeps them (the page cache survives the process).
To model a real broker crash, :meth:`NoidaBroker.crash` first freezes its clients with
``SIGSTOP`` (as a long GC pause would), waits until the snapshot holds everything the broker
acknowledged, then ``SIGKILL``\\ s it and thaws the clients: they find the broker gone exactly as
after a crash, with nothing it acknowledged lost.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

CRASH_RESTART_S = 1.0


class Supervised:
    """One supervised process (see the module docstring)."""

    def __init__(self, name: str, argv: Sequence[str], env: dict[str, str], log: Path,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = env
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.restart_at: float | None = None  # set while down (killed or crashed)
        self.crashes: list[str] = []
        self.runs = 0
        self._clock = clock
        self._t0 = clock()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        self.runs += 1
        with self.log.open("ab") as fh:
            fh.write(f"\n===== run {self.runs} of {self.name} at t={self._clock() - self._t0:.1f}s\n".encode())
            fh.flush()
            self.proc = subprocess.Popen(self.argv, stdout=fh, stderr=subprocess.STDOUT, env=self.env)
        self.restart_at = None

    def kill(self, down_s: float) -> None:
        """``SIGKILL`` now, start again ``down_s`` seconds later (from :meth:`supervise`)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a frozen process must not stay frozen once restarted
            self.proc.kill()
            self.proc.wait(10)
        self.restart_at = self._clock() + down_s

    def supervise(self) -> None:
        """Record a crash and schedule its restart; restart when the down time is over."""
        now = self._clock()
        if self.restart_at is None and self.proc is not None and self.proc.poll() is not None:
            self.crashes.append(f"t={now - self._t0:.1f}s {self.name} run {self.runs} exited on its own with "
                                f"code {self.proc.returncode}")
            self.restart_at = now + CRASH_RESTART_S
        if self.restart_at is not None and now >= self.restart_at:
            self.start()

    def send(self, sig: int) -> None:
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(sig)

    def stop(self) -> None:
        """Kill for good (the test's ``finally``): never leaves the process behind."""
        self.restart_at = None
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGCONT)
                self.proc.kill()
            self.proc.wait(10)

    def tail(self, chars: int = 2_500) -> str:
        """The end of the log without librdkafka's connection chatter (lines starting with ``%``)."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        lines = text.splitlines()
        kept = [x for x in lines if not x.startswith("%")]
        noise = f" ({len(lines) - len(kept)} librdkafka lines left out)" if len(kept) < len(lines) else ""
        return f"--- {self.name} ({self.log}){noise}\n" + "\n".join(kept)[-chars:]


def noida_binary() -> Path | None:
    """The noida-db executable shipped in the ``noida-db`` wheel, if installed."""
    try:
        import noida_db
    except ImportError:
        return None
    path = Path(noida_db.__file__).parent / "noida-db"
    return path if path.exists() else None


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class NoidaBroker(Supervised):
    """A noida-db Kafka broker on ``port`` keeping its data in ``data_dir`` (see the module docstring)."""

    def __init__(self, binary: Path, port: int, data_dir: Path, log: Path) -> None:
        argv = [str(binary), "start", "--only", "kafka", "--kafka-port", str(port), "--data-dir", str(data_dir)]
        super().__init__("broker", argv, dict(os.environ), log)
        self.port = port
        self.snapshot = data_dir / "kafka.json"

    def start(self) -> None:
        super().start()
        deadline = time.monotonic() + 30
        while not port_open(self.port):
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"noida-db exited ({self.proc.returncode})\n{self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"noida-db did not open port {self.port} within 30 s\n{self.tail()}")
            time.sleep(0.05)

    def crash(self, down_s: float, clients: Iterable[Supervised], settle_s: float = 1.3) -> float:
        """``SIGKILL`` with every acknowledged write kept; returns how long clients were frozen (s).

        Clients are frozen, then the broker runs until its snapshot file has not changed for
        ``settle_s`` (> its 1 s snapshot period: whatever it acknowledged before the freeze is in
        the last snapshot), then it is killed and the clients thawed.
        """
        frozen = [c for c in clients if c.running]
        t = time.monotonic()
        for c in frozen:
            c.send(signal.SIGSTOP)
        try:
            last = self._mtime()
            stable_since = time.monotonic()
            deadline = stable_since + 10
            while time.monotonic() - stable_since < settle_s:
                if time.monotonic() > deadline:
                    raise AssertionError("noida-db kept rewriting its snapshot with every client frozen")
                time.sleep(0.02)
                if (m := self._mtime()) != last:
                    last, stable_since = m, time.monotonic()
            self.kill(down_s)
        finally:
            for c in frozen:
                c.send(signal.SIGCONT)
        return time.monotonic() - t

    def _mtime(self) -> int:
        try:
            return self.snapshot.stat().st_mtime_ns
        except FileNotFoundError:
            return 0
