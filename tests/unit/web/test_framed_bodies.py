"""Large request bodies framed by LimitedHttpProtocol itself, past llhttp (web/connections.py,
issue 17): each read after the head reaches the app as the very bytes object asyncio read, the
body ends exactly at its Content-Length whatever the reads' boundaries, and what follows it is
parsed as the next request (or dropped, after ``Connection: close``), never as body.

The protocol is fed by hand here (reads of chosen boundaries, a fake transport); the tests at the
end run a real listener."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import socket
import time
from dataclasses import dataclass, field

import anyio
import pytest
from starlette.types import Message, Receive, Scope, Send
from support_onion import running
from support_transport import FakeTransport
from uvicorn.server import ServerState

from sealdrop.cli import listen
from sealdrop.testing import free_port
from sealdrop.web.connections import ConnectionLimits, LimitedHttpProtocol, ListenerConfig
from sealdrop.web.framed_body import FRAMED_BODY_MIN_BYTES, FramedBody, declared_length

BODY_SIZE = FRAMED_BODY_MIN_BYTES + 4099


@dataclass
class Seen:
    path: str
    pieces: list[bytes] = field(default_factory=list)
    disconnected: bool = False


class Collector:
    """An app that keeps every body message's bytes object as it came, and answers with the
    path, the body's size and its SHA-256 (or, on ``/early``, 413 without reading the body)."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        seen = Seen(scope["path"])
        self.seen.append(seen)
        status = 413 if seen.path == "/early" else 200
        while status == 200:
            message: Message = await receive()
            if message["type"] == "http.disconnect":
                seen.disconnected = True
                return
            seen.pieces.append(message["body"])
            if not message.get("more_body", False):
                break
        body = b"".join(seen.pieces)
        answer = f"{seen.path} {len(body)} {hashlib.sha256(body).hexdigest()}".encode()
        headers = [(b"content-length", str(len(answer)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": answer})


class Connection:
    """One protocol instance on a fake transport, fed read by read; the app runs between reads
    (as it would between two socket reads), so each piece is taken before the next arrives."""

    def __init__(self, app: Collector, keep_alive_timeout: float = 5) -> None:
        config = ListenerConfig(
            app, limits=ConnectionLimits(), http="httptools", timeout_keep_alive=keep_alive_timeout
        )
        config.load()
        self.protocol = LimitedHttpProtocol(config, ServerState(), {})
        self.transport = FakeTransport()
        self.protocol.connection_made(self.transport)  # type: ignore[arg-type]

    async def feed(self, *reads: bytes) -> None:
        for data in reads:
            if not self.transport.closed:
                self.protocol.data_received(data)
            await settle()

    def close(self) -> None:
        self.protocol.connection_lost(None)


async def settle() -> None:
    for _ in range(50):
        await asyncio.sleep(0)


def head(path: str, length: int, *extra: str, version: str = "1.1") -> bytes:
    lines = [f"POST {path} HTTP/{version}", "Host: example", f"Content-Length: {length}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def responses(raw: bytes) -> list[tuple[int, bytes]]:
    """(status, body) of each response in ``raw`` (each has a Content-Length)."""
    found = []
    while raw:
        top, _, rest = raw.partition(b"\r\n\r\n")
        lines = top.split(b"\r\n")
        length = next(
            int(line.partition(b":")[2])
            for line in lines[1:]
            if line.partition(b":")[0].lower() == b"content-length"
        )
        if len(rest) < length:
            raise ValueError("incomplete response")
        found.append((int(lines[0].split()[1]), rest[:length]))
        raw = rest[length:]
    return found


def split(stream: bytes, cuts: list[int]) -> list[bytes]:
    edges = [0, *cuts, len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(edges)]


def answer(path: str, body: bytes) -> bytes:
    return f"{path} {len(body)} {hashlib.sha256(body).hexdigest()}".encode()


BODY = os.urandom(BODY_SIZE)
HEAD = head("/upload", BODY_SIZE)
H = len(HEAD)
NEXT = head("/next", 4) + b"tail"
THIRD = b"GET /third HTTP/1.1\r\nHost: example\r\n\r\n"
# Reads of awkward boundaries: everything in one read; the head alone; the head in two; the head
# with the start of the body; the body exactly; the body but its last byte; the body in pieces
# ending inside the next request's head.
CUTS = [
    [],
    [H],
    [H // 2, H],
    [H + 1000],
    [H, H + BODY_SIZE],
    [H, H + BODY_SIZE - 1],
    [H + 7, H + 300_000, H + BODY_SIZE + 5, H + BODY_SIZE + 20],
]


@pytest.mark.parametrize("cuts", CUTS, ids=[",".join(map(str, c)) or "one" for c in CUTS])
def test_a_large_body_arrives_exact_and_uncopied_whatever_the_reads_boundaries(
    cuts: list[int],
) -> None:
    """A body of Content-Length >= 1 MiB arrives byte for byte however the reads split it, each
    read that lies inside the body reaching the app as the bytes object the socket read gave
    (llhttp copied each into a new one), and the pipelined requests after it are served as
    requests of their own, in order."""
    stream = HEAD + BODY + NEXT + THIRD
    reads = split(stream, cuts)

    async def main() -> None:
        app = Collector()
        connection = Connection(app)
        await connection.feed(*reads)
        assert [seen.path for seen in app.seen] == ["/upload", "/next", "/third"]
        assert b"".join(app.seen[0].pieces) == BODY
        assert responses(bytes(connection.transport.written)) == [
            (200, answer("/upload", BODY)),
            (200, answer("/next", b"tail")),
            (200, answer("/third", b"")),
        ]
        start = 0
        for data in reads:
            if start >= H and start + len(data) <= H + BODY_SIZE:  # wholly inside the body
                assert any(piece is data for piece in app.seen[0].pieces)
            start += len(data)
        connection.close()

    anyio.run(main)


def test_each_read_of_a_large_body_is_handed_on_as_the_same_object_and_flow_control_holds() -> None:
    """After the head, a read of a large body is the very object the app receives (no copy, no
    new buffer), and reading pauses until the app takes it, as uvicorn's on_body pauses past
    its high-water mark."""

    async def main() -> None:
        app = Collector()
        connection = Connection(app)
        transport = connection.transport
        connection.protocol.data_received(HEAD)
        piece = BODY[: FRAMED_BODY_MIN_BYTES // 2]
        connection.protocol.data_received(piece)
        held: object = connection.protocol.cycle.body
        assert held is piece
        assert not transport.reading  # paused: the app has not taken it yet
        await settle()
        assert app.seen[0].pieces[0] is piece
        assert transport.reading  # the app's receive() resumed reading
        await connection.feed(BODY[len(piece) :])
        assert b"".join(app.seen[0].pieces) == BODY
        connection.close()

    anyio.run(main)


def test_request_lines_inside_a_framed_body_are_body_bytes_not_requests() -> None:
    """Bytes inside the declared length that look like a request (a smuggling attempt) reach the
    app as body and are never served; the request after the declared length is."""
    smuggled = b"\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: example\r\n\r\n"
    body = smuggled + os.urandom(BODY_SIZE - 2 * len(smuggled)) + smuggled

    async def main() -> None:
        app = Collector()
        connection = Connection(app)
        await connection.feed(head("/upload", len(body)), body[:1000], body[1000:] + THIRD)
        assert [seen.path for seen in app.seen] == ["/upload", "/third"]
        assert b"".join(app.seen[0].pieces) == body
        connection.close()

    anyio.run(main)


@pytest.mark.parametrize(
    ("extra", "version"), [(("Connection: close",), "1.1"), ((), "1.0")], ids=["close", "http10"]
)
def test_nothing_after_a_framed_body_is_served_when_the_request_ends_the_connection(
    extra: tuple[str, ...], version: str
) -> None:
    """After a large body whose request said ``Connection: close`` (or HTTP/1.0 without
    keep-alive), the bytes that follow are dropped, as llhttp drops them, and the connection
    closes once the answer is sent."""

    async def main() -> None:
        app = Collector()
        connection = Connection(app)
        first = head("/upload", BODY_SIZE, *extra, version=version)
        await connection.feed(first, BODY[:5000], BODY[5000:] + THIRD, NEXT)
        assert [seen.path for seen in app.seen] == ["/upload"]
        assert responses(bytes(connection.transport.written)) == [(200, answer("/upload", BODY))]
        assert connection.transport.closed
        connection.close()

    anyio.run(main)


def test_an_answer_before_the_body_ends_keeps_the_connection_for_the_next_request() -> None:
    """An app that answers (413) without reading a large body: the rest of the body is read and
    dropped, and the next request on the connection is served, as with llhttp framing it."""

    async def main() -> None:
        app = Collector()
        connection = Connection(app)
        await connection.feed(head("/early", BODY_SIZE), BODY[:9000], BODY[9000:], THIRD)
        assert [seen.path for seen in app.seen] == ["/early", "/third"]
        assert [status for status, _ in responses(bytes(connection.transport.written))] == [
            413,
            200,
        ]
        assert not connection.transport.closed
        connection.close()

    anyio.run(main)


def test_the_rest_of_a_body_after_an_early_answer_is_not_cut_by_the_keep_alive_timeout() -> None:
    """uvicorn arms its keep-alive timeout when an answer ends and stops it at the next read; a
    body still arriving after an early answer must stop it too, or a slow client's connection
    closes mid-body, before its next request."""

    async def main() -> None:
        app = Collector()
        connection = Connection(app, keep_alive_timeout=0.05)
        await connection.feed(head("/early", BODY_SIZE), BODY[:9000])
        for start in range(9000, BODY_SIZE, 300_000):
            await anyio.sleep(0.03)
            await connection.feed(BODY[start : start + 300_000])
        await connection.feed(THIRD)
        assert [seen.path for seen in app.seen] == ["/early", "/third"]
        connection.close()

    anyio.run(main)


def test_a_client_gone_in_the_middle_of_a_framed_body_is_a_disconnect_for_the_app() -> None:
    """The connection lost halfway through a large body: the app's receive() reports a
    disconnect (an upload then keeps nothing), and no answer is written."""

    async def main() -> None:
        app = Collector()
        connection = Connection(app)
        await connection.feed(HEAD, BODY[:100_000], BODY[100_000:200_000])
        connection.close()
        await settle()
        assert app.seen[0].disconnected
        assert connection.transport.written == b""

    anyio.run(main)


BIG = str(FRAMED_BODY_MIN_BYTES).encode()


@pytest.mark.parametrize(
    ("headers", "framed"),
    [
        ([(b"content-length", BIG)], FRAMED_BODY_MIN_BYTES),
        ([(b"content-length", str(FRAMED_BODY_MIN_BYTES - 1).encode())], None),
        ([(b"content-length", BIG), (b"transfer-encoding", b"chunked")], None),
        ([(b"content-length", BIG), (b"content-length", BIG)], None),
        ([(b"content-length", b"+" + BIG)], None),
        ([(b"content-length", BIG + b"\xd9\xa0")], None),  # a non-ASCII digit
        ([(b"transfer-encoding", b"chunked")], None),
        ([], None),
    ],
    ids=["one", "small", "with-te", "twice", "sign", "unicode-digit", "chunked", "none"],
)
def test_only_one_plain_large_content_length_is_framed_past_the_parser(
    headers: list[tuple[bytes, bytes]], framed: int | None
) -> None:
    """Only a head with exactly one Content-Length of ASCII digits, no Transfer-Encoding, and
    a body of at least 1 MiB has its body framed past llhttp; anything else stays with it."""
    assert declared_length(headers) == framed


def test_a_framed_body_takes_whole_reads_and_splits_only_the_last() -> None:
    """Reads inside the body are taken as the same objects; the read in which the body ends is
    split there, the rest being the next request's bytes."""
    framed = FramedBody(10)
    first = b"abcdef"
    piece, rest = framed.take(first)
    assert piece is first
    assert rest == b""
    assert not framed.complete
    assert framed.take(b"ghijKLM") == (b"ghij", b"KLM")
    assert framed.complete


# --- a real listener ----------------------------------------------------------------------


def test_a_large_body_that_stops_is_cut_by_the_body_timeout() -> None:
    """A client that sends part of a large body and then nothing is still cut after a window
    without enough bytes (the body progress check counts framed reads), and the app sees a
    disconnect."""
    app = Collector()
    port = free_port()
    limits = ConnectionLimits(head_timeout=0.6, body_timeout=0.6, body_min_bytes=1024)
    with running(listen.listener(app, limits, port=port, uds=None)):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(HEAD)
            time.sleep(0.1)  # the head alone, so the body's reads are framed by the protocol
            sock.sendall(BODY[:300_000])
            start = time.monotonic()
            assert sock.recv(65536) == b""
            assert time.monotonic() - start >= 0.5
        deadline = time.monotonic() + 5
        while not (app.seen and app.seen[0].disconnected) and time.monotonic() < deadline:
            time.sleep(0.01)
    assert app.seen[0].disconnected


def test_a_large_body_and_a_pipelined_request_through_a_real_socket() -> None:
    """Through a real socket and uvicorn: a 16 MiB body sent with the next request right behind
    it arrives whole, and both are answered on the one connection."""
    body = os.urandom(16 * 1024 * 1024)
    app = Collector()
    port = free_port()
    server = listen.listener(app, ConnectionLimits(), port=port, uds=None)
    with running(server), socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head("/upload", len(body)) + body + NEXT)
        received = b""
        while len(responses_so_far(received)) < 2:
            data = sock.recv(65536)
            assert data, f"closed after {received!r}"
            received += data
    assert responses(received) == [(200, answer("/upload", body)), (200, answer("/next", b"tail"))]


def responses_so_far(raw: bytes) -> list[tuple[int, bytes]]:
    try:
        return responses(raw)
    except (StopIteration, ValueError, IndexError):
        return []
