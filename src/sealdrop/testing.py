"""Helpers for Sealdrop's own tests only: a movable clock, a free port, a server process.

Nothing in the running product imports this module.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import httpx

from sealdrop.testing_fork import ForkedProcess, Forker


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.value = start

    def now(self) -> float:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += seconds


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sealdrop_command(*args: str | os.PathLike[str]) -> list[str]:
    return [sys.executable, "-m", "sealdrop", *map(str, args)]


class ServerProcess:
    """``sealdrop serve`` in a child process on an ephemeral loopback port: a new interpreter, or
    a fork of one that has imported Sealdrop already when ``forker`` is set (the test suite's,
    tests/conftest.py; see testing_fork.py)."""

    forker: ClassVar[Forker | None] = None

    def __init__(
        self, instance: Path, env: Mapping[str, str] | None = None, log: Path | None = None
    ) -> None:
        self.instance = instance
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_port = free_port()
        while self.api_port == self.port:
            # The first probe's port is free again once its socket closed, so the second can be
            # the same one; `serve` refuses one port for both listeners.
            self.api_port = free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        # Tests reach the instance on loopback; a managed tor would try the real Tor network.
        # Tests that want the onion services pass their own SEALDROP_TOR_* settings.
        self._env = {**os.environ, "SEALDROP_TOR_ENABLED": "no", **(env or {})}
        self._log_path = log or instance.parent / f"server-{self.port}.log"
        self.process: subprocess.Popen[bytes] | ForkedProcess | None = None

    def start(self, timeout: float = 30.0) -> ServerProcess:
        args = ["serve", str(self.instance), "--port", str(self.port)]
        args += ["--api-port", str(self.api_port)]
        with self._log_path.open("ab") as log:
            if self.forker is not None:
                self.process = self.forker.spawn(args, env=self._env, stdout=log)
            else:
                self.process = subprocess.Popen(
                    sealdrop_command(*args), stdout=log, stderr=subprocess.STDOUT, env=self._env
                )
        deadline = time.monotonic() + timeout
        # One client for every probe: each new httpx client (httpx.get makes one) builds an SSL
        # context, ~25 ms of CPU, and two probes every 0.1 s while the server imports made that
        # one to several CPU-seconds per server, taken from the rest of a parallel test run.
        with httpx.Client(timeout=1.0) as probe:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"server exited early:\n{self.log()}")
                try:
                    # /healthz on both listeners: the cheapest answer each gives. (The API's
                    # OpenAPI document, the probe before, cost the server ~0.2 s of CPU to build
                    # at every start, ~100 starts a test run.)
                    probe.get(self.url + "/healthz").raise_for_status()
                    probe.get(self.api_url + "/healthz").raise_for_status()
                    return self
                except httpx.TransportError:
                    time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start in {timeout} s:\n{self.log()}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log(self) -> str:
        return self._log_path.read_text(errors="replace") if self._log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: the crash that durability must survive."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
