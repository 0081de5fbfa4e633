"""The control port of Sealdrop's tor: the authenticated connection (``ControlConnection``) that
the process manager (``tor/process.py``) owns tor through, and what other commands
(``sealdrop status``, ``sealdrop access``) ask of the tor a running ``sealdrop serve`` manages:
its state, a reload, a restart."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from stem import SocketError
from stem.connection import AuthenticationFailure, authenticate
from stem.socket import ControlSocketFile

from sealdrop.errors import TorError
from sealdrop.tor.layout import TorLayout

HALT_GRACE_SECONDS = 10.0
PUBLISH_TIMEOUT_SECONDS = 60.0
PUBLISH_ATTEMPTS = 3
REUPLOAD_PAUSE_SECONDS = 2.0
_BOOTSTRAP = re.compile(r"PROGRESS=(\d+)(?:.*?SUMMARY=\"([^\"]*)\")?")


@dataclass(frozen=True, slots=True)
class Bootstrap:
    percent: int
    summary: str


class ControlConnection:
    """An authenticated control connection (cookie authentication), request by request.

    stem's low-level socket rather than its Controller: the Controller runs event threads
    whose listeners deadlock with close() after a SIGNAL (seen with stem 1.8.2), and Sealdrop
    needs only a few requests and, on a connection of its own, one kind of event."""

    def __init__(self, control_socket: Path) -> None:
        try:
            self._socket = ControlSocketFile(str(control_socket))
        except SocketError:
            raise TorError("tor is not running (no control socket)") from None
        try:
            authenticate(self._socket)
        except (AuthenticationFailure, SocketError) as exc:
            self._socket.close()
            raise TorError(f"tor refused the control connection: {type(exc).__name__}") from None
        self._lock = threading.Lock()

    def request(self, command: str) -> list[str]:
        """Send one command; the reply's lines. TorError if tor refuses it or is gone."""
        with self._lock:
            try:
                self._socket.send(command)
                reply = self._socket.recv()
            except SocketError as exc:
                raise TorError(f"lost the control connection: {type(exc).__name__}") from None
        if not reply.is_ok():
            raise TorError(f"tor refused {command.split()[0]}: {reply}")
        return [str(line) for line in reply]

    def get_info(self, key: str) -> str:
        (line,) = self.request(f"GETINFO {key}")[:1]
        return line.partition("=")[2]

    def next_event(self) -> list[str]:
        """The lines of the next asynchronous event (after SETEVENTS). Only for a connection
        that sends no more requests: replies and events would interleave."""
        try:
            return [str(line) for line in self._socket.recv()]
        except SocketError as exc:
            raise TorError(f"lost the control connection: {type(exc).__name__}") from None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._socket.close()


def read_bootstrap(control: ControlConnection) -> Bootstrap:
    found = _BOOTSTRAP.search(control.get_info("status/bootstrap-phase"))
    if not found:
        return Bootstrap(0, "starting")
    return Bootstrap(int(found.group(1)), found.group(2) or "")


@dataclass(frozen=True, slots=True)
class TorStatus:
    running: bool
    version: str | None = None
    bootstrap: Bootstrap | None = None
    pow_defense: bool | None = None
    circuit_ids_exported: bool | None = None


def read_status(layout: TorLayout) -> TorStatus:
    """What the running tor says about itself; ``running=False`` when no serve runs it."""
    if not layout.control_socket.exists():
        return TorStatus(running=False)
    try:
        controller = ControlConnection(layout.control_socket)
    except TorError:
        return TorStatus(running=False)
    try:
        options = _service_options(controller.request("GETCONF HiddenServiceOptions"))
        source = options.get(str(layout.source_onion_dir), {})
        return TorStatus(
            running=True,
            version=controller.get_info("version").split(" ")[0],
            bootstrap=read_bootstrap(controller),
            pow_defense=source.get("HiddenServicePoWDefensesEnabled") == "1",
            circuit_ids_exported=source.get("HiddenServiceExportCircuitID") == "haproxy",
        )
    finally:
        controller.close()


def _service_options(reply: Iterable[str]) -> dict[str, dict[str, str]]:
    """GETCONF HiddenServiceOptions, per service folder.

    Tor answers with every service's lines in order; an option belongs to the service whose
    HiddenServiceDir came last before it. (stem's get_conf_map groups by key and so loses which
    service an option belongs to; the raw lines keep it.)"""
    services: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in reply:
        key, _, value = str(line).partition("=")
        if key == "HiddenServiceDir":
            current = services.setdefault(value, {})
        elif current is not None:
            current[key] = value
    return services


def reload(layout: TorLayout) -> bool:
    """Make a running tor re-read its configuration. False when no serve is running: the
    change then takes effect at its next start."""
    try:
        controller = ControlConnection(layout.control_socket)
    except TorError:
        return False
    try:
        controller.request("SIGNAL RELOAD")
    finally:
        controller.close()
    return True


def reload_and_publish(
    layout: TorLayout, address: str, timeout: float = PUBLISH_TIMEOUT_SECONDS
) -> bool | None:
    """Reload tor (new authorized clients) and wait until it has published the API onion's new
    descriptor to at least one directory. None when no serve runs; False if tor did not confirm.

    Onion directories refuse a descriptor whose revision counter equals the one they hold, and
    tor derives the counter from the time in seconds: a reload within about a second of the
    previous upload is refused by every directory, and tor does not retry for over an hour
    (measured with tor 0.4.9 on the test network). So watch tor's HS_DESC events and reload
    again after a pause when the upload is refused."""
    try:
        watcher = ControlConnection(layout.control_socket)
    except TorError:
        return None
    onion = address.removesuffix(".onion")
    try:
        if read_bootstrap(watcher).percent < 100:
            # Nothing is published before tor is connected; it will publish the new list
            # itself once it is.
            return False if reload(layout) else None
        events = hs_desc_events(watcher)
        for _attempt in range(PUBLISH_ATTEMPTS):
            if not reload(layout):
                return None
            outcome = _upload_outcome(events, onion, timeout)
            if outcome is not None:
                return outcome
            time.sleep(REUPLOAD_PAUSE_SECONDS)
        return False
    finally:
        watcher.close()


def hs_desc_events(connection: ControlConnection) -> queue.Queue[str]:
    """Subscribe ``connection`` to tor's HS_DESC events ("HS_DESC UPLOAD|UPLOADED|FAILED <onion>
    ..."): a daemon thread puts each line in the returned queue until the connection closes."""
    events: queue.Queue[str] = queue.Queue()

    def read_events() -> None:
        with contextlib.suppress(TorError):
            while True:
                for line in connection.next_event():
                    events.put(line)

    connection.request("SETEVENTS HS_DESC")
    threading.Thread(target=read_events, name="tor-events", daemon=True).start()
    return events


def _upload_outcome(events: queue.Queue[str], onion: str, timeout: float) -> bool | None:
    """True once a directory took the descriptor, None if every try was refused (try again),
    False if tor said nothing in time."""
    deadline = time.monotonic() + timeout
    refused = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None if refused else False
        try:
            line = events.get(timeout=min(left, 1.0))
        except queue.Empty:
            if refused:
                return None  # refused and quiet for a second: every directory said no
            continue
        fields = line.split()
        # "HS_DESC UPLOADED <address> <auth> <hsdir> ..." / "HS_DESC FAILED ... REASON=..."
        if len(fields) < 3 or fields[0] != "HS_DESC" or fields[2] != onion:
            continue
        if fields[1] == "UPLOADED":
            return True
        if fields[1] == "FAILED" and "REASON=UPLOAD_REJECTED" in fields:
            refused = True


def restart(layout: TorLayout) -> bool:
    """Stop the running tor so that ``serve`` starts it again (with new introduction points).
    False when no serve is running."""
    try:
        controller = ControlConnection(layout.control_socket)
    except TorError:
        return False
    try:
        pid = int(controller.get_info("process/pid"))
        with contextlib.suppress(TorError):  # tor may close the connection as it halts
            controller.request("SIGNAL HALT")
    finally:
        controller.close()
    deadline = time.monotonic() + HALT_GRACE_SECONDS
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    # tor 0.4.9 can hang on its way out; nothing is lost by killing it.
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
