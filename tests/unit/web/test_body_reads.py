"""How a request body reaches the app through LimitedHttpProtocol (web/connections.py): in socket
reads of up to 1 MiB while a body streams in, each piece handed on without being copied, and
every byte in order. Real uvicorn in a thread, as in test_connection_limits.py."""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import threading
from collections.abc import Iterator

import anyio
from starlette.types import Message, Receive, Scope, Send
from support_onion import parse_response, running
from support_transport import ASYNCIO_READ_BYTES, FakeTransport
from uvicorn.server import ServerState

from sealdrop.cli import listen
from sealdrop.testing import free_port
from sealdrop.web.connections import (
    BODY_READ_BYTES,
    ConnectionLimits,
    LimitedHttpProtocol,
    ListenerConfig,
)


class BodyRecorder:
    """An app that waits ``delay`` seconds before reading (the socket buffers fill meanwhile),
    then records the size of each body message and answers with the body's SHA-256."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.pieces: list[int] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await anyio.sleep(self.delay)
        digest = hashlib.sha256()
        while True:
            message: Message = await receive()
            body = message.get("body", b"")
            self.pieces.append(len(body))
            digest.update(body)
            if not message.get("more_body", False):
                break
        answer = digest.hexdigest().encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(answer)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": answer})
        await anyio.sleep(self.delay)


@contextlib.contextmanager
def listener(app: BodyRecorder) -> Iterator[tuple[str, int]]:
    port = free_port()
    server = listen.listener(app, ConnectionLimits(), port=port, uds=None)
    with running(server):
        yield ("127.0.0.1", port)


def post(address: tuple[str, int], body: bytes) -> bytes:
    """POST ``body`` in one go (from a thread, so that sending and receiving overlap)."""
    with socket.create_connection(address, timeout=30) as sock:
        head = f"POST / HTTP/1.1\r\nHost: example\r\nContent-Length: {len(body)}\r\n\r\n"
        sender = threading.Thread(target=sock.sendall, args=(head.encode() + body,))
        sender.start()
        received = b""
        while b"\r\n\r\n" not in received or len(received.partition(b"\r\n\r\n")[2]) < 64:
            data = sock.recv(65536)
            assert data, f"closed after {received!r}"
            received += data
        sender.join()
    return received


def test_a_large_body_reaches_the_app_in_reads_larger_than_asyncios_default() -> None:
    """While a body streams in, the socket is read up to 1 MiB at a time (asyncio's default is
    256 KiB): a quarter of the trips through the Python of the body path per GiB. Every byte
    arrives, in order."""
    body = os.urandom(64 * 1024 * 1024)
    app = BodyRecorder(delay=0.2)
    with listener(app) as address:
        answer = parse_response(post(address, body))
    assert answer.body == hashlib.sha256(body).hexdigest().encode()
    assert sum(app.pieces) == len(body)
    assert max(app.pieces) > ASYNCIO_READ_BYTES
    assert max(app.pieces) <= BODY_READ_BYTES + 64 * 1024


def test_a_body_piece_is_handed_on_as_the_parsers_bytes_not_copied() -> None:
    """A piece of body with nothing buffered before it is kept as the bytes object the parser
    made (uvicorn copied it into a bytearray, which its ``receive`` copied again: two copies of
    every byte of an upload), and the socket reads grow to 1 MiB for the body only."""

    async def main() -> None:
        config = ListenerConfig(BodyRecorder(0), limits=ConnectionLimits(), http="httptools")
        config.load()
        protocol = LimitedHttpProtocol(config, ServerState(), {})
        transport = FakeTransport()
        protocol.connection_made(transport)  # type: ignore[arg-type]
        head = b"POST / HTTP/1.1\r\nHost: example\r\nContent-Length: 200000\r\n\r\n"
        protocol.data_received(head + b"a" * 100_000)
        assert transport.max_size == BODY_READ_BYTES
        assert protocol.cycle.body == b"a" * 100_000
        # Annotated bytearray by uvicorn; the protocol keeps the parser's bytes there.
        held: object = protocol.cycle.body
        assert type(held) is bytes
        protocol.data_received(b"b" * 100_000)  # a second piece before the app reads: appended
        assert protocol.cycle.body == b"a" * 100_000 + b"b" * 100_000
        assert transport.max_size == ASYNCIO_READ_BYTES  # the request is complete
        protocol.connection_lost(None)

    anyio.run(main)
