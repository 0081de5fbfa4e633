"""Binding the listeners' sockets before anything is announced or started.

`serve` binds every socket itself and hands them to uvicorn, so that a port already in use is
one readable error, before the URLs are printed and before tor starts, instead of uvicorn's
exit from inside the event loop after success was announced.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from dataclasses import dataclass
from pathlib import Path

from sealdrop.cli.logs import endpoint
from sealdrop.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Knobs:
    """What changes a listener's address and port, named in the error when it cannot bind."""

    host: str
    port: str


SERVE_SOURCE = Knobs(host="--host or [source] host", port="--port or [source] port")
SERVE_API = Knobs(host="--api-host or [api] host", port="--api-port or [api] port")


def _reason(exc: OSError, knobs: Knobs) -> str:
    if exc.errno == errno.EADDRINUSE:
        return f"address in use); choose another port with {knobs.port}"
    if exc.errno == errno.EACCES:
        return f"permission denied); choose a port above 1023 with {knobs.port}"
    if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror):
        return f"no such address on this machine); choose another address with {knobs.host}"
    return f"{exc.strerror or type(exc).__name__}); check {knobs.host} and {knobs.port}"


def bind_tcp(host: str, port: int, knobs: Knobs) -> list[socket.socket]:
    """Listening sockets for every address ``host`` names (as uvicorn would bind them).

    Raises ConfigError naming the address and the option or setting that changes it."""
    bound: list[socket.socket] = []
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            bound.append(sock)
            # As asyncio does: no TIME_WAIT delay after a restart (a live listener on the
            # same port still refuses us), and an IPv6 socket that leaves IPv4 to its own.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(2048)
    except OSError as exc:
        for sock in bound:
            sock.close()
        reason = _reason(exc, knobs)
        raise ConfigError(f"cannot listen on {endpoint(host, port)} ({reason}") from None
    return bound


def bind_unix(path: Path) -> socket.socket:
    """A listening unix socket at ``path`` (in the instance's 0700 tor folder), owner-only."""
    try:
        # A socket file left by a server that died: the instance lock says nobody else uses it.
        if stat.S_ISSOCK(path.lstat().st_mode):
            path.unlink()
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        os.chmod(path, 0o600)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {path} ({exc.strerror})") from None
    return sock
