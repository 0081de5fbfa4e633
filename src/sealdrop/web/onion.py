"""The source onion's listener: the Tor circuit of each request, from tor's PROXY line.

With ``HiddenServiceExportCircuitID haproxy`` tor starts every stream it forwards to the onion
socket with one PROXY protocol v1 line (tor's ``export_hs_client_circuit_id``)::

    PROXY TCP6 fc00:dead:beef:4dad::HHHH:LLLL ::1 <sport> <virtual port>\\r\\n

where the low 32 bits of the source address are tor's global circuit id. ``ProxyProtocol``
reads that line before HTTP starts and ``onion_listener`` hands the circuit to the app under
``scope["sealdrop.circuit"]``, so that the source app can limit requests per circuit.

A connection whose first bytes are not exactly such a line is closed without a response: only
tor writes to this socket, so anything else is a misconfiguration or somebody else's process,
and serving it would skip the per-circuit limit.

The circuit id never goes into ``scope["client"]`` (uvicorn's access and trace logs print the
client) nor into any log line: it travels inside a ``Circuit`` whose repr hides the number.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
from typing import Any, Final, final

from starlette.types import ASGIApp, Receive, Scope, Send

from sealdrop.web.connections import LimitedHttpProtocol, send_plain

log = logging.getLogger("sealdrop.web")

CIRCUIT_SCOPE_KEY: Final = "sealdrop.circuit"

# The PROXY v1 spec: the longest valid line is 107 bytes, CRLF included.
MAX_PROXY_LINE: Final = 107
# tor writes the line before any HTTP byte, as soon as it connects; waiting longer for it would
# only let a stray local connection hold a slot.
PROXY_LINE_TIMEOUT_SECONDS: Final = 10.0

_START: Final = b"PROXY TCP6 "
_LINE = re.compile(
    rb"PROXY TCP6 ([0-9A-Fa-f:]{2,39}) ([0-9A-Fa-f:]{2,39}) ([0-9]{1,5}) ([0-9]{1,5})\r\n"
)
# tor puts the circuit id in the low 32 bits of fc00:dead:beef:4dad::/64 and zeros between.
_CIRCUIT_NETWORK: Final = ipaddress.IPv6Network("fc00:dead:beef:4dad::/96")


@final
class Circuit:
    """A Tor circuit id. Its repr and str hide the number, so that printing a scope (uvicorn's
    trace logging does) or an f-string by mistake cannot put it in a log."""

    __slots__ = ("_id",)

    def __init__(self, circuit_id: int) -> None:
        self._id = circuit_id

    def reveal(self) -> int:
        return self._id

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Circuit) and other._id == self._id

    def __hash__(self) -> int:
        return hash((Circuit, self._id))

    def __repr__(self) -> str:
        return "Circuit(<hidden>)"

    __str__ = __repr__


def parse_proxy_line(line: bytes) -> int | None:
    """The circuit id in tor's PROXY line (CRLF included), or None if the line is not one."""
    if len(line) > MAX_PROXY_LINE:
        return None
    match = _LINE.fullmatch(line)
    if match is None:
        return None
    source, destination, source_port, destination_port = match.groups()
    try:
        source_address = ipaddress.IPv6Address(source.decode("ascii"))
        ipaddress.IPv6Address(destination.decode("ascii"))
    except ValueError:
        return None
    if source_address not in _CIRCUIT_NETWORK:
        return None
    if int(source_port) > 65535 or int(destination_port) > 65535:
        return None
    return int(source_address) & 0xFFFF_FFFF


class ProxyProtocol(LimitedHttpProtocol):
    """The listeners' HTTP protocol that first reads tor's PROXY line (for the onion socket only).

    Use as ``ListenerConfig(onion_listener(app), limits=..., uds=..., http=ProxyProtocol,
    ws="none")``. The head timeout of ``LimitedHttpProtocol`` runs from the connection, so it
    covers the PROXY line and the first request head together.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head = bytearray()
        self._circuit: Circuit | None = None
        self._refused = False
        self._line_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._line_timer = self.loop.call_later(PROXY_LINE_TIMEOUT_SECONDS, self._refuse)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_line_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._circuit is not None:
            super().data_received(data)
            return
        if self._refused:
            return
        # The line may come in pieces, or together with the first request: keep what has come
        # and look for its end within the first MAX_PROXY_LINE bytes only.
        self._head += data
        end = self._head.find(b"\n", 0, MAX_PROXY_LINE)
        if end < 0:
            seen = bytes(self._head[: len(_START)])
            # Refuse as soon as the bytes cannot become a PROXY line: no waiting on garbage.
            if len(self._head) >= MAX_PROXY_LINE or not _START.startswith(seen):
                self._refuse()
            return
        circuit_id = parse_proxy_line(bytes(self._head[: end + 1]))
        if circuit_id is None:
            self._refuse()
            return
        self._cancel_line_timer()
        self._circuit = Circuit(circuit_id)
        # Every request of this connection goes through the wrapper that tags its scope.
        self.app = _OnCircuit(self.app, self._circuit)
        http_bytes = bytes(self._head[end + 1 :])
        self._head = bytearray()
        # Pass on only bytes that are there (an empty feed is not data).
        if http_bytes:
            super().data_received(http_bytes)

    def _refuse(self) -> None:
        """Close without a word: whatever is connected did not come through the onion."""
        self._cancel_line_timer()
        if self._circuit is not None or self._refused:
            return
        self._refused = True
        self._head = bytearray()
        # No content of the line is logged: it would hold a circuit id.
        log.warning("closed a connection to the onion socket that did not start with a PROXY line")
        self.transport.close()

    def _cancel_line_timer(self) -> None:
        if self._line_timer is not None:
            self._line_timer.cancel()
            self._line_timer = None


class _OnCircuit:
    """One connection's app: each request's scope gets the connection's circuit."""

    __slots__ = ("_app", "_circuit")

    def __init__(self, app: ASGIApp, circuit: Circuit) -> None:
        self._app = app
        self._circuit = circuit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app({**scope, CIRCUIT_SCOPE_KEY: self._circuit}, receive, send)


def circuit_of(scope: Scope) -> Circuit | None:
    """The circuit of a request that came over the source onion; None for any other listener."""
    circuit = scope.get(CIRCUIT_SCOPE_KEY)
    return circuit if isinstance(circuit, Circuit) else None


def onion_listener(app: ASGIApp) -> ASGIApp:
    """The app as the onion socket serves it: every request carries its circuit, and no client
    address (the socket has none; the circuit id must not pass for one)."""

    async def listener(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await app(scope, receive, send)
            return
        if circuit_of(scope) is None:
            # Fail closed: without ProxyProtocol every onion request would go unlimited.
            log.error("onion request without a circuit: the listener needs http=ProxyProtocol")
            if scope["type"] == "http":
                await send_plain(send, 500, b"Internal Server Error")
            return
        await app({**scope, "client": None}, receive, send)

    return listener
