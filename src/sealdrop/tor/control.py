"""Talking to the tor that a running ``sealdrop serve`` manages, from another command
(``sealdrop status``, ``sealdrop access``): read its state, make it reload or restart."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass

from sealdrop.errors import TorError
from sealdrop.tor.layout import TorLayout
from sealdrop.tor.process import Bootstrap, connect, read_bootstrap

HALT_GRACE_SECONDS = 10.0


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
        controller = connect(layout.control_socket)
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
    """Make a running tor re-read its configuration (new authorized clients). False when no
    serve is running: the change then takes effect at its next start."""
    try:
        controller = connect(layout.control_socket)
    except TorError:
        return False
    try:
        controller.request("SIGNAL RELOAD")
    finally:
        controller.close()
    return True


def restart(layout: TorLayout) -> bool:
    """Stop the running tor so that ``serve`` starts it again (with new introduction points).
    False when no serve is running."""
    try:
        controller = connect(layout.control_socket)
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
