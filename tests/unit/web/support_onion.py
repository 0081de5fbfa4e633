"""Helpers of the onion-listener tests: a real uvicorn server on a unix socket, configured as the
source onion's listener (ProxyProtocol + onion_listener), and a raw-socket client that
speaks for tor (a PROXY line, then HTTP)."""

from __future__ import annotations

import contextlib
import logging
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from sealdrop.cli import listen
from sealdrop.web.connections import ConnectionLimits
from sealdrop.web.onion import ProxyProtocol, onion_listener

_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


def proxy_line(circuit: int, virtual_port: int = 80) -> bytes:
    """The line tor writes for a stream on this circuit (tor's export_hs_client_circuit_id)."""
    return (
        f"PROXY TCP6 fc00:dead:beef:4dad::{circuit >> 16:x}:{circuit & 0xFFFF:x} ::1 "
        f"{circuit & 0xFFFF} {virtual_port}\r\n"
    ).encode("ascii")


def get(path: str = "/", host: str = "example.onion") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode("ascii")


@contextlib.contextmanager
def running(server: uvicorn.Server) -> Iterator[None]:
    """Run a listener built by ``listen.listener`` in a thread (with its own event loop: uvicorn
    installs no signal handlers outside the main thread) until the block ends."""
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive(), "the server thread died"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)
        yield
    finally:
        server.should_exit = True
        thread.join(10)


@contextlib.contextmanager
def onion_server(app: ASGIApp, **config: Any) -> Iterator[str]:
    """Serve ``app`` as ``sealdrop serve`` serves the source onion; yields the socket path.

    The server runs in a thread with its own event loop (uvicorn installs no signal handlers
    outside the main thread). The socket lives in a short /tmp folder: AF_UNIX paths are
    limited to 108 bytes, which pytest's tmp_path can exceed. uvicorn's logger levels are
    restored afterwards (log_level="trace" changes them process-wide)."""
    levels = {name: logging.getLogger(name).level for name in _UVICORN_LOGGERS}
    propagate = {name: logging.getLogger(name).propagate for name in _UVICORN_LOGGERS}
    folder = Path(tempfile.mkdtemp(prefix="sd-onion-", dir="/tmp"))
    path = str(folder / "source.sock")
    # Built by `serve`'s own function: what these tests check is the server's configuration.
    server = listen.listener(
        onion_listener(app),
        ConnectionLimits(),
        uds=Path(path),
        **({"http": ProxyProtocol} | config),
    )
    try:
        with running(server):
            yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        for name in _UVICORN_LOGGERS:
            logging.getLogger(name).setLevel(levels[name])
            logging.getLogger(name).propagate = propagate[name]


def exchange(path: str, *chunks: bytes, pause: float = 0.0) -> bytes:
    """Send the chunks as separate writes (``pause`` seconds apart, so that the server reads
    them separately) and return everything the server sent until it closed the connection.

    A server that closes while bytes of ours are still unread resets the connection; that, or
    a write into the closed socket, counts as "closed" like a clean end of stream."""
    received = bytearray()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(5)
        client.connect(path)
        try:
            for chunk in chunks:
                client.sendall(chunk)
                if pause:
                    time.sleep(pause)
            while data := client.recv(65536):
                received += data
        except (BrokenPipeError, ConnectionResetError):
            pass
    return bytes(received)


@dataclass(frozen=True)
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name.lower()]


def parse_response(raw: bytes) -> Response:
    """One HTTP/1.1 response with a Content-Length body (what Starlette sends here)."""
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = []
    for line in lines:
        name, _, value = line.partition(":")
        headers.append((name.strip().lower(), value.strip()))
    response = Response(int(status_line.split(" ")[1]), headers, body)
    lengths = response.header("content-length")
    assert lengths, raw[:300]
    assert int(lengths[0]) == len(body), raw[:300]
    return response
