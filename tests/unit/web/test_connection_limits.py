"""Connection limits of the listeners (LimitedHttpProtocol): a request head must be complete within
the head timeout, a request body must keep coming, and a listener caps its open connections.
Real uvicorn in a thread, raw sockets for the slow clients; timeouts of a fraction of a second."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import uvicorn
from starlette.types import Message, Receive, Scope, Send
from support_onion import parse_response, proxy_line, running
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from sealdrop.cli import listen
from sealdrop.testing import free_port
from sealdrop.web.api import errors as api_errors
from sealdrop.web.connections import MAX_HEAD_BYTES, ConnectionLimits, LimitedHttpProtocol
from sealdrop.web.onion import ProxyProtocol, onion_listener

HEAD = 0.6
BODY = 0.6
LIMITS = ConnectionLimits(head_timeout=HEAD, body_timeout=BODY, body_min_bytes=1024)
# Long enough for any close the server should make; the tests never wait this long otherwise.
CLIENT_TIMEOUT = 10.0


class Recorder:
    """An app that answers with the size of the body it read, after ``delay`` seconds (before
    reading, like an app that is busy with something else), and records disconnects."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.requests = 0
        self.disconnects = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        self.requests += 1
        await anyio.sleep(self.delay)
        size = 0
        while True:
            message: Message = await receive()
            if message["type"] == "http.disconnect":
                self.disconnects += 1
                return
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = f"read {size}".encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


@contextlib.contextmanager
def listener(
    app: Any,
    limits: ConnectionLimits = LIMITS,
    http: type[LimitedHttpProtocol] = LimitedHttpProtocol,
    busy: Any = None,
) -> Iterator[tuple[str, int] | str]:
    """A listener configured as `sealdrop serve` configures its own; yields its address (a
    (host, port) pair, or a unix socket path for the onion protocol)."""
    folder = Path(tempfile.mkdtemp(prefix="sd-conn-", dir="/tmp"))
    uds = str(folder / "listener.sock") if http is ProxyProtocol else None
    port = free_port()
    # Built by `serve`'s own function: what these tests check is the server's configuration.
    server = listen.listener(
        onion_listener(app) if uds else app,
        limits,
        port=port,
        uds=Path(uds) if uds else None,
        http=http,
        busy=busy,
    )
    try:
        with running(server):
            yield uds if uds else ("127.0.0.1", port)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def connect(address: tuple[str, int] | str) -> socket.socket:
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(CLIENT_TIMEOUT)
    sock.connect(address)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (a reset counts as closed)."""
    received = bytearray()
    try:
        while data := sock.recv(65536):
            received += data
    except ConnectionResetError:
        pass
    return bytes(received)


def trickle(sock: socket.socket, data: bytes, pause: float, limit: float) -> bool:
    """Send ``data`` one byte at a time, ``pause`` seconds apart, for at most ``limit`` seconds.
    Returns whether the server closed the connection meanwhile."""
    start = time.monotonic()
    for byte in data:
        if time.monotonic() - start > limit:
            return False
        try:
            sock.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            return True
        time.sleep(pause)
    return False


def request_head(method: str = "GET", length: int | None = None, *extra: str) -> bytes:
    lines = [f"{method} / HTTP/1.1", "Host: example"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    lines += extra
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


# --- the request head -------------------------------------------------------------------------


def test_a_connection_that_sends_nothing_is_closed_at_the_head_timeout() -> None:
    """A silent connection is closed without a response once the head timeout has passed, and
    not before it."""
    app = Recorder()
    with listener(app) as address, connect(address) as sock:
        start = time.monotonic()
        assert read_until_closed(sock) == b""
        assert time.monotonic() - start >= HEAD * 0.9
    assert app.requests == 0


def test_a_head_trickled_byte_by_byte_is_cut_although_bytes_keep_coming() -> None:
    """Slowloris: each byte arrives well within the timeout, but the head as a whole does not;
    the connection is closed at the deadline and the app never sees the request."""
    app = Recorder()
    head = request_head("GET", None, *(f"X-Pad-{i}: {'a' * 20}" for i in range(20)))
    with listener(app) as address, connect(address) as sock:
        start = time.monotonic()
        # 0.05 s a byte: the 600-byte head would take 30 s; it is cut after 0.6 s.
        assert trickle(sock, head, pause=0.05, limit=CLIENT_TIMEOUT)
        assert HEAD * 0.9 <= time.monotonic() - start < CLIENT_TIMEOUT
        assert read_until_closed(sock) == b""
    assert app.requests == 0


def test_the_head_deadline_runs_from_the_end_of_the_previous_response() -> None:
    """On a kept-alive connection the next head is due within the timeout of the last response,
    not of the connection: time the app spends working, and the time before it, do not count."""
    app = Recorder()
    app.delay = HEAD * 1.5  # the first answer comes after the connection's first deadline
    with listener(app) as address, connect(address) as sock:
        start = time.monotonic()
        sock.sendall(request_head())
        first = read_response(sock)
        assert parse_response(first).body == b"read 0"
        app.delay = 0.0
        # The second head takes HEAD / 2 to arrive, ending well past a deadline counted from
        # the connection (HEAD after it opened), within the one counted from the response.
        second = request_head()
        for piece in (second[:5], second[5:10], second[10:]):
            sock.sendall(piece)
            time.sleep(HEAD / 4)
        assert time.monotonic() - start > HEAD * 1.5
        assert parse_response(read_response(sock)).body == b"read 0"
        # Then silence: closed again after the timeout.
        assert read_until_closed(sock) == b""
    assert app.requests == 2


def test_a_head_beyond_the_size_cap_is_refused_431_before_it_ends() -> None:
    """A request head that keeps growing (one endless header, never finished) is answered 431
    and the connection closed once it passes MAX_HEAD_BYTES, before the head ends and without
    the app seeing a request: a parser with no cap of its own would hold all of it in memory."""
    app = Recorder()
    with listener(app) as address, connect(address) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: example\r\nX-Pad: ")
        # Well past the cap, in pieces the server reads separately; the head never ends.
        for _ in range(8):
            try:
                sock.sendall(b"p" * (MAX_HEAD_BYTES // 4))
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.02)
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert app.requests == 0


def test_a_head_just_under_the_size_cap_is_served() -> None:
    """The cap leaves room for large but legitimate heads (long cookies, many headers)."""
    app = Recorder()
    pad = "p" * (MAX_HEAD_BYTES - 200)
    with listener(app) as address, connect(address) as sock:
        sock.sendall(request_head("GET", None, f"X-Pad: {pad}"))
        assert parse_response(read_response(sock)).body == b"read 0"
    assert app.requests == 1


# --- the request body ---------------------------------------------------------------------


def test_a_body_that_stops_is_cut_and_the_app_sees_a_disconnect() -> None:
    """A client that sends part of its body and then nothing is closed after a window without
    enough bytes; the app's receive() reports the disconnect (an upload then discards its
    staged blob)."""
    app = Recorder()
    with listener(app) as address, connect(address) as sock:
        sock.sendall(request_head("POST", 100_000) + os.urandom(2000))
        start = time.monotonic()
        assert read_until_closed(sock) == b""
        assert time.monotonic() - start >= BODY * 0.9
    assert disconnects_seen(app) == 1


def test_a_trickling_body_is_cut_although_it_never_stops() -> None:
    """A body arriving at 20 bytes a second never idles, but brings fewer than body_min_bytes
    per window: the connection is closed."""
    app = Recorder()
    with listener(app) as address, connect(address) as sock:
        sock.sendall(request_head("POST", 10_000))
        assert trickle(sock, b"x" * 10_000, pause=0.05, limit=CLIENT_TIMEOUT)
    assert disconnects_seen(app) == 1


def disconnects_seen(app: Recorder, timeout: float = 5.0) -> int:
    """The app's disconnect count once it has seen one (the app runs in the server's thread,
    a moment after the client saw the connection close)."""
    deadline = time.monotonic() + timeout
    while app.disconnects == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    return app.disconnects


def test_a_body_arriving_fast_enough_is_received_whole() -> None:
    """A body that brings more than body_min_bytes in every window, over several windows, is
    not cut."""
    app = Recorder()
    # Windows of 2 s, a piece every 0.5 s: a stall of the test's own thread on a loaded
    # machine must not empty a whole window and fail the test for the wrong reason.
    limits = ConnectionLimits(head_timeout=HEAD, body_timeout=2.0, body_min_bytes=1024)
    with listener(app, limits) as address, connect(address) as sock:
        sock.sendall(request_head("POST", 8 * 2048))
        for _ in range(8):
            sock.sendall(b"y" * 2048)
            time.sleep(0.5)
        assert parse_response(read_response(sock)).body == b"read 16384"


def test_a_body_the_server_is_not_reading_yet_is_not_held_against_the_client() -> None:
    """While the app is busy and uvicorn has stopped reading (flow control), the client cannot
    send: windows that pass meanwhile do not count, and the whole body is received after."""
    app = Recorder()
    app.delay = BODY * 4
    size = 1024 * 1024
    with listener(app) as address, connect(address) as sock:
        sock.sendall(request_head("POST", size) + b"z" * size)
        assert parse_response(read_response(sock)).body == f"read {size}".encode()


def test_a_client_waiting_for_100_continue_is_not_cut() -> None:
    """A client that sent ``Expect: 100-continue`` sends no body until the app asks for it; the
    time before that does not count against it."""
    app = Recorder()
    app.delay = BODY * 3
    with listener(app) as address, connect(address) as sock:
        sock.sendall(request_head("POST", 5000, "Expect: 100-continue"))
        interim = sock.recv(65536)
        assert interim.startswith(b"HTTP/1.1 100 ")
        sock.sendall(b"b" * 5000)
        assert parse_response(read_response(sock)).body == b"read 5000"


def read_response(sock: socket.socket) -> bytes:
    """One complete response with a Content-Length body."""
    received = bytearray()
    while b"\r\n\r\n" not in received or not response_complete(bytes(received)):
        data = sock.recv(65536)
        assert data, f"closed after {bytes(received)!r}"
        received += data
    return bytes(received)


def response_complete(raw: bytes) -> bool:
    head, _, body = raw.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


# --- the connection cap ---------------------------------------------------------------------


def test_connections_beyond_the_cap_get_a_503_and_are_closed() -> None:
    """With two connections open, a third one's request is answered 503 (with the security
    headers and Retry-After) without reaching the app; once they close, requests pass again."""
    app = Recorder()
    limits = ConnectionLimits(head_timeout=30, body_timeout=30, max_connections=2)
    with listener(app, limits) as address:
        with connect(address), connect(address), connect(address) as third:
            third.sendall(request_head())
            response = parse_response(read_until_closed(third))
        assert response.status == 503
        assert response.header("retry-after") == ["60"]
        assert response.header("cache-control") == ["no-store"]
        assert response.header("x-content-type-options") == ["nosniff"]
        assert response.header("content-security-policy")[0].startswith("default-src 'none'")
        assert app.requests == 0
        # Once the server has noticed the two closed connections, requests pass again.
        deadline = time.monotonic() + 5
        while True:
            with connect(address) as again:
                again.sendall(request_head())
                status = parse_response(read_response(again)).status
            if status != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert status == 200
    assert app.requests == 1


def test_the_api_listener_answers_its_cap_in_the_api_json() -> None:
    """On an API listener the connection beyond the cap gets the API's own 503 (JSON, code
    "unavailable", Retry-After), which API clients parse like any other error."""
    app = Recorder()
    limits = ConnectionLimits(head_timeout=30, body_timeout=30, max_connections=1)
    with (
        listener(app, limits, busy=api_errors.busy) as address,
        connect(address),
        connect(address) as second,
    ):
        second.sendall(request_head())
        response = parse_response(read_until_closed(second))
    assert response.status == 503
    assert response.header("content-type") == ["application/json"]
    assert response.header("retry-after") == ["60"]
    assert json.loads(response.body) == {
        "error": {"code": "unavailable", "message": "The server is busy. Try again in a minute."}
    }
    assert app.requests == 0


# --- the onion listener ---------------------------------------------------------------------


def test_the_onion_listener_has_the_same_head_timeout_after_the_proxy_line() -> None:
    """ProxyProtocol keeps the limits: tor's line arrives at once, then a head trickles in
    and is cut at the same deadline."""
    app = Recorder()
    with listener(app, http=ProxyProtocol) as address, connect(address) as sock:
        sock.sendall(proxy_line(7))
        start = time.monotonic()
        assert trickle(sock, request_head("GET", None, "X-Pad: " + "p" * 400), 0.05, 10)
        assert time.monotonic() - start >= HEAD * 0.8
    assert app.requests == 0


def test_the_onion_listener_still_serves_a_prompt_request() -> None:
    """With the limits in place a normal request over the onion socket is served as before."""
    app = Recorder()
    with listener(app, http=ProxyProtocol) as address, connect(address) as sock:
        sock.sendall(proxy_line(7) + request_head("POST", 3) + b"abc")
        assert parse_response(read_response(sock)).body == b"read 3"


def test_a_plain_uvicorn_config_gets_the_default_limits() -> None:
    """Without ListenerConfig (a plain uvicorn.Config) the protocol applies the defaults rather
    than no limits at all."""
    loop = asyncio.new_event_loop()
    try:
        protocol = LimitedHttpProtocol(uvicorn.Config(Recorder()), ServerState(), {}, _loop=loop)
    finally:
        loop.close()
    assert protocol.limits == ConnectionLimits()
    assert protocol.limits.head_timeout > 0


def test_every_listener_parses_http_with_httptools() -> None:
    """`serve`'s listeners (the onion's too) parse with httptools (llhttp, in C), not h11 (in
    Python, ~0.2 CPU-s more per GiB uploaded: bench/README.md)."""
    server = listen.listener(Recorder(), LIMITS, port=free_port())
    server.config.load()
    assert issubclass(server.config.http_protocol_class, HttpToolsProtocol)
    assert issubclass(ProxyProtocol, HttpToolsProtocol)
