"""`sealdrop serve --workers N`: N server processes on one machine behind one set of listeners.

The parent binds every listener (the TCP ports and tor's unix sockets) and starts tor; each
worker is a new `sealdrop serve` process that inherits the listening sockets and accepts on them
itself: the kernel hands each new connection to one of the workers waiting on the socket.

Why inherited sockets rather than SO_REUSEPORT or one tor HiddenServicePort per worker:
- tor reaches the server over unix sockets, and Linux balances SO_REUSEPORT only for TCP and UDP;
  one inherited socket serves TCP and unix listeners alike, and tor's configuration does not
  change with N (a HiddenServicePort per worker would restart tor's service to add one).
- The ports stay bound by the parent while a worker is restarted: no connection is refused in
  between, and no other program can take the port.
- The PROXY line naming the circuit is per connection, read by whichever worker accepted it, so
  the per-circuit limit works as before (per worker: docs/design.md, "Limits with several
  workers").

The parent supervises: a worker that exits is started again (after a pause that grows if it keeps
dying at once); SIGTERM or SIGINT to the parent stops every worker (SIGTERM, then SIGKILL after a
grace period). A worker whose parent is gone stops itself, so none is left serving unsupervised.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from rich.console import Console

from sealdrop.config import Settings
from sealdrop.errors import ConfigError

# Seconds a worker is given to finish its requests after SIGTERM before it is killed.
STOP_GRACE_SECONDS = 15.0
# A worker that exits sooner than this after starting is restarted after a growing pause.
QUICK_EXIT_SECONDS = 10.0
MAX_RESTART_PAUSE = 30.0

LISTENERS = ("source", "api", "metrics", "source_onion", "api_onion")


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What a worker is told by its parent (the hidden `serve --inherit` option): its number,
    how many there are, whether tor runs, and the descriptors of the inherited listeners."""

    index: int
    count: int
    tor: bool
    fds: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def encode(self) -> str:
        parts = [f"index={self.index}", f"count={self.count}", f"tor={int(self.tor)}"]
        parts += [f"{name}={'.'.join(map(str, fds))}" for name, fds in self.fds.items() if fds]
        return ",".join(parts)

    @classmethod
    def parse(cls, text: str) -> WorkerSpec:
        try:
            values = dict(part.split("=", 1) for part in text.split(","))
            fds = {
                name: tuple(int(fd) for fd in values[name].split("."))
                for name in LISTENERS
                if name in values
            }
            return cls(int(values["index"]), int(values["count"]), values["tor"] == "1", fds)
        except (KeyError, ValueError):
            raise ConfigError("--inherit is for `serve --workers` only") from None

    def all_fds(self) -> list[int]:
        return [fd for fds in self.fds.values() for fd in fds]


@dataclass(slots=True)
class Bound:
    """The listening sockets of one server (inherited by its workers with --workers)."""

    source: list[socket.socket]
    api: list[socket.socket]
    metrics: list[socket.socket] = field(default_factory=list)
    source_onion: list[socket.socket] = field(default_factory=list)
    api_onion: list[socket.socket] = field(default_factory=list)

    def spec(self, index: int, count: int, tor: bool) -> WorkerSpec:
        fds = {name: tuple(s.fileno() for s in getattr(self, name)) for name in LISTENERS}
        # The metrics are one process's figures: one worker serves them (docs/operator.md).
        if index != 1:
            fds.pop("metrics")
        return WorkerSpec(index, count, tor, fds)

    @classmethod
    def inherited(cls, spec: WorkerSpec) -> Bound:
        def adopt(name: str) -> list[socket.socket]:
            return [socket.socket(fileno=fd) for fd in spec.fds.get(name, ())]

        return cls(*(adopt(name) for name in LISTENERS))


def per_worker(settings: Settings, count: int) -> Settings:
    """The settings of one of ``count`` workers on one machine: the derivation pool and the
    logins in flight are divided between them (at least one each), so the machine's memory for
    derivations stays ``kdf.max_concurrent`` x 64 MiB (``serve`` refuses more workers than that:
    ``services.instance.serving``) and its CPU is not promised N times over."""
    if count <= 1:
        return settings
    return replace(
        settings,
        kdf_max_concurrent=max(1, settings.kdf_max_concurrent // count),
        login_max_in_flight=max(1, settings.login_max_in_flight // count),
    )


def watch_parent(stop: Callable[[], None], interval: float = 1.0) -> None:
    """In a worker: call ``stop`` once the parent is gone (killed without stopping us), so no
    worker goes on serving unsupervised, holding the ports."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        stop()

    threading.Thread(target=watch, name="sealdrop-parent-watch", daemon=True).start()


class Supervisor:
    """Runs ``count`` workers, each started by ``command(index)``, until SIGTERM or SIGINT."""

    def __init__(
        self,
        count: int,
        command: Callable[[int], Sequence[str]],
        inherited: Sequence[int],
        console: Console,
    ) -> None:
        self._count = count
        self._command = command
        self._inherited = tuple(inherited)
        self._console = console
        self._stopping = threading.Event()
        self._workers: dict[int, subprocess.Popen[bytes]] = {}
        self._started: dict[int, float] = {}
        self._pause: dict[int, float] = {}

    def stop(self) -> None:
        self._stopping.set()

    def pids(self) -> dict[int, int]:
        return {index: proc.pid for index, proc in self._workers.items()}

    def run(self) -> None:
        previous = {
            sig: signal.signal(sig, lambda *_: self._stopping.set())
            for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            for index in range(1, self._count + 1):
                self._start(index)
            while not self._stopping.wait(0.5):
                for index, proc in list(self._workers.items()):
                    if proc.poll() is not None and not self._stopping.is_set():
                        self._restart(index, proc.returncode)
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _start(self, index: int) -> None:
        self._workers[index] = subprocess.Popen(
            self._command(index),
            pass_fds=self._inherited,
            # Its own process group: a Ctrl-C on the terminal reaches the parent only, which
            # stops the workers itself (and does not mistake their exit for a crash).
            start_new_session=True,
        )
        self._started[index] = time.monotonic()

    def _restart(self, index: int, code: int) -> None:
        quick = time.monotonic() - self._started[index] < QUICK_EXIT_SECONDS
        pause = min(MAX_RESTART_PAUSE, self._pause.get(index, 0.5) * 2) if quick else 1.0
        self._pause[index] = pause
        self._console.print(
            f"[yellow]worker {index} exited (status {code}); restarting it in {pause:.0f} s[/]"
        )
        if not self._stopping.wait(pause):
            self._start(index)

    def _stop_all(self) -> None:
        live = [proc for proc in self._workers.values() if proc.poll() is None]
        for proc in live:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for proc in live:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def worker_command(argv: Sequence[str], spec: WorkerSpec) -> list[str]:
    """The command line of one worker: this `sealdrop serve` with ``--inherit``."""
    return [sys.executable, "-m", "sealdrop", "serve", *argv, "--inherit", spec.encode()]
