"""The onion listener: tor's PROXY line is read before HTTP, strictly, and its circuit reaches
the app under a scope key of ours, never as the client address. Real uvicorn on a unix socket,
raw sockets for tor."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest
from starlette.types import Receive, Scope, Send
from support_onion import exchange, get, onion_server, parse_response, proxy_line

from sealdrop.web import onion
from sealdrop.web.onion import Circuit, circuit_of, onion_listener, parse_proxy_line


async def echo_circuit(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers with the request's circuit id and client, as the app sees them."""
    assert scope["type"] == "http"
    circuit = circuit_of(scope)
    body = f"circuit={circuit.reveal() if circuit else None} client={scope['client']}".encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def socket_path() -> Iterator[str]:
    """One onion listener serving echo_circuit for the whole module."""
    with onion_server(echo_circuit) as path:
        yield path


# --- the parser --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "circuit"),
    [
        # The lines of tor's own unit test of export_hs_client_circuit_id.
        (b"PROXY TCP6 fc00:dead:beef:4dad::0:29a ::1 666 42\r\n", 666),
        (b"PROXY TCP6 fc00:dead:beef:4dad::ffff:ffff ::1 65535 42\r\n", 0xFFFF_FFFF),
        (b"PROXY TCP6 fc00:dead:beef:4dad::1:0 ::1 0 80\r\n", 0x1_0000),
        # The same address written out in full is the same address.
        (b"PROXY TCP6 fc00:dead:beef:4dad:0:0:3:4 ::1 4 80\r\n", 0x3_0004),
    ],
)
def test_parser_takes_the_circuit_id_from_the_low_32_bits(line: bytes, circuit: int) -> None:
    """The circuit id is the low 32 bits of tor's fc00:dead:beef:4dad:: source address."""
    assert parse_proxy_line(line) == circuit


BAD_LINES = {
    "http instead": b"GET / HTTP/1.1\r\n",
    "ipv4": b"PROXY TCP4 192.0.2.1 127.0.0.1 1234 80\r\n",
    "unknown": b"PROXY UNKNOWN\r\n",
    "other prefix": b"PROXY TCP6 fc00:dead:beef:4dae::0:29a ::1 666 80\r\n",
    "other address": b"PROXY TCP6 2001:db8::29a ::1 666 80\r\n",
    "bits between prefix and id": b"PROXY TCP6 fc00:dead:beef:4dad:1::29a ::1 666 80\r\n",
    "lf only": b"PROXY TCP6 fc00:dead:beef:4dad::0:29a ::1 666 80\n",
    "cr only": b"PROXY TCP6 fc00:dead:beef:4dad::0:29a ::1 666 80\r",
    "no line end": b"PROXY TCP6 fc00:dead:beef:4dad::0:29a ::1 666 80",
    "bad address": b"PROXY TCP6 fc00:dead:beef:4dad::0:29a:: ::1 666 80\r\n",
    "scoped address": b"PROXY TCP6 fc00:dead:beef:4dad::0:29a%1 ::1 666 80\r\n",
    "port too large": b"PROXY TCP6 fc00:dead:beef:4dad::0:29a ::1 666 65536\r\n",
    "missing port": b"PROXY TCP6 fc00:dead:beef:4dad::0:29a ::1 666\r\n",
    "double space": b"PROXY TCP6  fc00:dead:beef:4dad::0:29a ::1 666 80\r\n",
    "lower case": b"proxy tcp6 fc00:dead:beef:4dad::0:29a ::1 666 80\r\n",
    "too long": b"PROXY TCP6 fc00:dead:beef:4dad::0:29a ::1 666 80" + b" " * 60 + b"\r\n",
    "proxy v2": b"\r\n\r\n\x00\r\nQUIT\n!\x11\x00\x0c",
}


@pytest.mark.parametrize("line", BAD_LINES.values(), ids=BAD_LINES.keys())
def test_parser_refuses_anything_but_tors_line(line: bytes) -> None:
    """Only `PROXY TCP6 <fc00:dead:beef:4dad::/96 address> <IPv6> <port> <port>` + CRLF
    in at most 107 bytes gives a circuit."""
    assert parse_proxy_line(line) is None


def test_circuit_repr_and_str_hide_the_id() -> None:
    """Printing a Circuit (a scope in a trace log, an f-string) shows no number."""
    circuit = Circuit(981_242_341)
    for text in (repr(circuit), str(circuit), f"{circuit}", f"{ {'c': circuit} }"):
        assert "981242341" not in text
        assert not any(ch.isdigit() for ch in text)
    assert circuit == Circuit(981_242_341) != Circuit(1)


# --- the listener ------------------------------------------------------------------------------


def test_a_request_after_the_proxy_line_reaches_the_app_with_its_circuit(
    socket_path: str,
) -> None:
    """The line and the request in one write: the app sees the circuit, and no client."""
    response = parse_response(exchange(socket_path, proxy_line(666) + get()))
    assert response.status == 200
    assert response.body == b"circuit=666 client=None"


def test_a_proxy_line_split_across_reads_is_reassembled(socket_path: str) -> None:
    """The line may arrive in pieces (even byte by byte, and the CRLF split); it still works."""
    line = proxy_line(0xFFFF_FFFF)
    pieces = [line[:3], line[3:20], *[bytes([b]) for b in line[20:-1]], line[-1:] + get()[:5]]
    response = parse_response(exchange(socket_path, *pieces, get()[5:], pause=0.005))
    assert response.body == b"circuit=4294967295 client=None"


def test_every_request_on_a_kept_alive_connection_carries_the_circuit(socket_path: str) -> None:
    """The line comes once per connection; each request on it belongs to that circuit."""
    keep_alive = b"GET / HTTP/1.1\r\nHost: example.onion\r\n\r\n"
    raw = exchange(socket_path, proxy_line(42) + keep_alive, keep_alive, get(), pause=0.05)
    assert raw.count(b"circuit=42 client=None") == 3


@pytest.mark.parametrize("line", BAD_LINES.values(), ids=BAD_LINES.keys())
def test_a_connection_without_tors_line_is_closed_without_a_response(
    socket_path: str, line: bytes
) -> None:
    """Any other first line (garbage, plain HTTP, PROXY TCP4, another prefix, LF without CR,
    too long …) closes the connection and nothing is sent back: not even a 400."""
    assert exchange(socket_path, line + get()) == b""


def test_a_line_longer_than_107_bytes_is_refused_before_its_end(socket_path: str) -> None:
    """The server does not wait for a line end past 107 bytes: it closes while the client is
    still sending, so a long line cannot make it buffer more."""
    assert exchange(socket_path, b"PROXY TCP6 " + b"f" * 200, pause=0.1) == b""


def test_garbage_is_refused_at_its_first_bytes(socket_path: str) -> None:
    """Bytes that cannot begin a PROXY line close the connection without waiting for more."""
    assert exchange(socket_path, b"GET", pause=0.2) == b""


def test_a_silent_connection_is_closed_after_a_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection that sends no PROXY line at all does not hold a slot forever."""
    monkeypatch.setattr(onion, "PROXY_LINE_TIMEOUT_SECONDS", 0.2)
    with onion_server(echo_circuit) as path:
        assert exchange(path, b"PROXY TCP6 fc00:") == b""


def test_the_wrapper_refuses_requests_that_came_without_a_circuit() -> None:
    """onion_listener behind uvicorn's plain h11 (ProxyProtocol forgotten) answers 500 to
    everything rather than serve onion requests without a circuit limit."""
    with onion_server(echo_circuit, http="h11") as path:
        response = parse_response(exchange(path, get()))
    assert response.status == 500
    assert b"circuit" not in response.body


def test_the_listener_wrapper_passes_other_scopes_through() -> None:
    """Lifespan events are not requests: they pass without a circuit."""
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    async def nothing() -> dict[str, str]:
        return {}

    async def ignore(message: object) -> None:
        pass

    anyio.run(onion_listener(app), {"type": "lifespan"}, nothing, ignore)
    assert seen == ["lifespan"]
