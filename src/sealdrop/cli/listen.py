"""The listeners of `serve`: their sockets bound before anything is announced or started, the
uvicorn servers as `serve` configures them, and running them together.

`serve` binds every socket itself and hands them to uvicorn, so that a port already in use is
one readable error, before the URLs are printed and before tor starts, instead of uvicorn's
exit from inside the event loop after success was announced.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import resource
import signal
import socket
import stat
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from sealdrop.cli.logs import endpoint
from sealdrop.config import Settings
from sealdrop.errors import ConfigError
from sealdrop.web.connections import ConnectionLimits, LimitedHttpProtocol, ListenerConfig


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


# Tor Browser on a slow circuit can take long between chunks; a connection idle this long is cut.
KEEP_ALIVE_SECONDS = 30


class Listener(uvicorn.Server):
    """A uvicorn server that leaves signals to us, so that one signal stops both listeners."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def listener(
    app: ASGIApp,
    limits: ConnectionLimits,
    host: str = "127.0.0.1",
    port: int = 0,
    uds: Path | None = None,
    http: type[LimitedHttpProtocol] = LimitedHttpProtocol,
    busy: ASGIApp | None = None,
    **extra: Any,
) -> Listener:
    """One listener exactly as `serve` configures it (the tests of the listeners use this
    too, so that what they check is the server's own configuration). ``extra``: more
    uvicorn options, for tests (a log level, say)."""
    return Listener(
        ListenerConfig(
            app,
            # Every listener cuts slow clients off and caps its connections (web/connections.py).
            limits=limits,
            busy=busy,
            host=host,
            port=port,
            # The onion listeners are unix sockets in the instance's 0700 tor folder.
            uds=str(uds) if uds is not None else None,
            http=http,
            ws="none",  # no websockets anywhere; nothing should upgrade a connection
            server_header=False,
            date_header=False,
            access_log=False,
            log_config=None,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            lifespan="off",
            # Behind Tor every client connects from 127.0.0.1, which uvicorn would trust for
            # X-Forwarded-* headers: any visitor could set the scheme (and so the cookies'
            # Secure flag) and a client address. Trust no proxy headers at all.
            proxy_headers=False,
            forwarded_allow_ips="",
            **extra,
        )
    )


def connection_limits(settings: Settings) -> ConnectionLimits:
    return ConnectionLimits(
        head_timeout=settings.head_timeout_seconds,
        body_timeout=settings.body_timeout_seconds,
        body_min_bytes=settings.body_min_bytes,
        max_connections=settings.max_connections,
    )


def raise_file_limit(wanted: int) -> None:
    """Raise the soft limit on open files towards the hard one: each connection, upload and
    database connection takes a descriptor, and the usual soft limit (1,024) is below what
    the connection caps of the listeners allow together."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


async def run_listeners(
    listeners: list[tuple[Listener, list[socket.socket]]],
    background: Callable[[], Coroutine[Any, Any, None]] | None = None,
) -> None:
    """Serve each listener on the sockets bound for it, and ``background`` beside them, until
    SIGINT or SIGTERM stops them all."""
    loop = asyncio.get_running_loop()

    def stop() -> None:
        for listener, _ in listeners:
            listener.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    # The scheduled notices: a task beside the listeners, never on a request's path.
    task = asyncio.create_task(background()) if background is not None else None
    try:
        # Each listener serves the sockets bound before anything was announced.
        await asyncio.gather(*(listener.serve(sockets) for listener, sockets in listeners))
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
