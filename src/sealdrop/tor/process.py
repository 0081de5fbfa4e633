"""Running Sealdrop's own tor: start it, hold its control connection (``tor/control.py``), watch
its bootstrap, restart it when it dies, stop it.

The control connection takes ownership of tor (TAKEOWNERSHIP): tor exits as soon as that
connection closes, and ``__OwningControllerProcess`` covers the moments before it exists, so a
killed Sealdrop never leaves an orphan tor serving its onions.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from sealdrop.errors import TorError
from sealdrop.tor.client_auth import ensure_placeholder
from sealdrop.tor.control import Bootstrap, ControlConnection, read_bootstrap
from sealdrop.tor.front import write_ob_config
from sealdrop.tor.layout import TorLayout, render_torrc

log = logging.getLogger("sealdrop.tor")

MINIMUM_VERSION = (0, 4, 8)
CONTROL_TIMEOUT_SECONDS = 30.0
STOP_GRACE_SECONDS = 5.0
# Waits before restarting a tor that died, growing while it keeps dying quickly.
RESTART_DELAYS = (0.0, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
# A tor that ran this long before dying counts as healthy: the next restart is immediate again.
HEALTHY_AFTER_SECONDS = 60.0


def find_tor(binary: str) -> str | None:
    """The tor program's path, or None when it is not installed."""
    return shutil.which(binary)


def tor_version(path: str) -> tuple[int, ...]:
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise TorError(f"{path} --version failed: {type(exc).__name__}") from None
    found = re.search(r"Tor version (\d+)\.(\d+)\.(\d+)", out)
    if not found:
        raise TorError(f"{path} did not report a tor version")
    return tuple(int(part) for part in found.groups())


class TorProcess:
    """One run of tor: from the start of the process until it exits."""

    def __init__(
        self,
        layout: TorLayout,
        tor_path: str,
        extra_torrc: Path | None,
        onionbalance_front: str | None = None,
    ) -> None:
        self._layout = layout
        self._tor_path = tor_path
        self._extra_torrc = extra_torrc
        self._front = onionbalance_front
        self._process: subprocess.Popen[str] | None = None
        self._controller: ControlConnection | None = None
        self._output: deque[str] = deque(maxlen=40)
        self._reader: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def output(self) -> str:
        return "\n".join(self._output)

    def start(self) -> None:
        layout = self._layout
        layout.prepare()
        ensure_placeholder(layout)
        write_ob_config(layout, self._front)
        layout.torrc.write_text(
            render_torrc(layout, os.getpid(), self._extra_torrc, self._front), encoding="utf-8"
        )
        # A control socket left by a killed run would look alive until tor replaces it.
        with contextlib.suppress(FileNotFoundError):
            layout.control_socket.unlink()
        self._process = subprocess.Popen(
            # --defaults-torrc: never pick up a system-wide torrc-defaults.
            [self._tor_path, "-f", str(layout.torrc), "--defaults-torrc", os.devnull],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,  # a Ctrl-C at the terminal reaches Sealdrop, which stops tor
        )
        self._reader = threading.Thread(target=self._read_output, name="tor-output", daemon=True)
        self._reader.start()
        try:
            self._controller = self._connect_when_ready()
            # From now on tor exits when this connection closes.
            self._controller.request("TAKEOWNERSHIP")
            # Ownership passes to this connection; the start-up safety net is no longer needed.
            self._controller.request("RESETCONF __OwningControllerProcess")
        except BaseException:
            self.stop()
            raise

    def _connect_when_ready(self) -> ControlConnection:
        assert self._process is not None
        deadline = time.monotonic() + CONTROL_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._join_reader()
                raise TorError(f"tor exited at start:\n{self.output()}")
            if self._layout.control_socket.exists():
                with contextlib.suppress(TorError):
                    return ControlConnection(self._layout.control_socket)
            time.sleep(0.1)
        raise TorError(f"tor did not open its control socket in time:\n{self.output()}")

    def _read_output(self) -> None:
        assert self._process is not None
        assert self._process.stdout is not None
        for line in self._process.stdout:
            line = line.rstrip()
            self._output.append(line)
            # Tor's own logs never name onion-service clients (SafeLogging is on by default);
            # the server's log redaction still applies to what is passed on.
            message = line.split("] ", 1)[-1]
            if "[warn]" in line or "[err]" in line:
                log.warning("tor: %s", message)
            elif "[notice]" in line:
                log.info("tor: %s", message)

    def _join_reader(self) -> None:
        if self._reader is not None:
            self._reader.join(timeout=2)

    def bootstrap(self) -> Bootstrap:
        if self._controller is None:
            return Bootstrap(0, "starting")
        return read_bootstrap(self._controller)

    def controller(self) -> ControlConnection:
        if self._controller is None:
            raise TorError("tor is not running")
        return self._controller

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for tor to exit; its exit status, or None if it still runs after ``timeout``."""
        if self._process is None:
            return 0
        try:
            return self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        """Stop tor: close the owning connection (tor exits), then SIGTERM, then SIGKILL.

        tor 0.4.9 can hang while shutting down after SIGTERM; SIGKILL loses nothing here (its
        onion keys were written when they were made)."""
        if self._controller is not None:
            self._controller.close()
            self._controller = None
        process = self._process
        if process is None:
            return
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if process.poll() is not None:
                break
            if sig is not None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(STOP_GRACE_SECONDS)
        self._join_reader()


class TorSupervisor:
    """Keeps tor running for the lifetime of ``sealdrop serve``: restarts it when it dies (after
    a growing delay if it keeps dying), and reports bootstrap progress and readiness."""

    def __init__(
        self,
        layout: TorLayout,
        tor_path: str,
        extra_torrc: Path | None,
        on_progress: Callable[[Bootstrap], None] = lambda _b: None,
        on_restart: Callable[[int | None], None] = lambda _code: None,
        onionbalance_front: str | None = None,
    ) -> None:
        self._layout = layout
        self._tor_path = tor_path
        self._extra_torrc = extra_torrc
        self._front = onionbalance_front
        self._on_progress = on_progress
        self._on_restart = on_restart
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._current: TorProcess | None = None
        self._thread: threading.Thread | None = None
        self.restarts = 0

    def start(self) -> None:
        """Start tor once, in the foreground (a broken configuration fails here, loudly), then
        supervise it in a background thread."""
        version = tor_version(self._tor_path)
        if version < MINIMUM_VERSION:
            raise TorError(
                f"tor {'.'.join(map(str, version))} is too old: Sealdrop needs 0.4.8 or newer "
                "(proof-of-work defense of onion services)"
            )
        self._layout.check_paths()
        self._current = self._launch()
        self._thread = threading.Thread(target=self._supervise, name="tor-supervisor", daemon=True)
        self._thread.start()

    def _launch(self) -> TorProcess:
        process = TorProcess(self._layout, self._tor_path, self._extra_torrc, self._front)
        process.start()
        return process

    def current(self) -> TorProcess | None:
        with self._lock:
            return self._current

    def _supervise(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            process = self.current()
            started = time.monotonic()
            if process is not None:
                self._report_bootstrap(process)
                code = process.wait()
                if self._stopping.is_set():
                    return
                process.stop()
                log.warning("tor exited (status %s); restarting it", code)
                self._on_restart(code)
                if time.monotonic() - started > HEALTHY_AFTER_SECONDS:
                    failures = 0
            delay = RESTART_DELAYS[min(failures, len(RESTART_DELAYS) - 1)]
            if self._stopping.wait(delay):
                return
            try:
                fresh = self._launch()
            except TorError as exc:
                failures += 1
                log.warning("tor did not restart: %s", str(exc).splitlines()[0])
                with self._lock:
                    self._current = None
                continue
            with self._lock:
                if self._stopping.is_set():
                    fresh.stop()
                    return
                self._current = fresh
                self.restarts += 1
            failures += 1

    def _report_bootstrap(self, process: TorProcess) -> None:
        last = -1
        while not self._stopping.is_set() and process.running():
            try:
                state = process.bootstrap()
            except TorError:
                return
            if state.percent != last:
                last = state.percent
                self._on_progress(state)
            if state.percent >= 100:
                return
            time.sleep(0.25)

    def wait_for_addresses(self, timeout: float = 15.0) -> tuple[str | None, str | None]:
        """The two onion addresses; tor writes their hostname files shortly after it starts."""
        deadline = time.monotonic() + timeout
        while True:
            source = self._layout.source_onion_address()
            api = self._layout.api_onion_address()
            if (source and api) or time.monotonic() > deadline:
                return source, api
            time.sleep(0.1)

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            process = self._current
        if process is not None:
            process.stop()
        if self._thread is not None:
            self._thread.join(timeout=15)
