"""The reader's transport through Tor's SOCKS port, with every read bounded by the client's timeout.

httpx's own SOCKS transport (httpcore's ``SOCKSProxy``) reads the proxy's answers to the SOCKS
handshake with no timeout at all: the client's timeout starts only once the tunnel is up. Tor
answers a CONNECT to an onion service only when it has reached it or given up, which for a device
whose client key was revoked, or a service that is down, is tor's ``SocksTimeout`` (2 minutes) or
longer: `sealdrop reader sync` then hung past its own 60 s timeout, and the reader UI's background
sync with it. Here the same ``SOCKSProxy`` is given a network backend whose streams use the
client's timeout for any read or write that httpcore leaves unbounded; a read that times out is
httpx's ``ReadTimeout``, which the client reports as a connection failure.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

__all__ = ["socks_transport"]

# httpx's default limits, stated: the pool below is built by hand, and httpcore's own defaults
# would keep idle connections without end.
_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)


class _BoundedStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream, timeout: float) -> None:
        self._stream = stream
        self._timeout = timeout

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._timeout if timeout is None else timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._timeout if timeout is None else timeout)

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        bounded = self._timeout if timeout is None else timeout
        return _BoundedStream(
            self._stream.start_tls(ssl_context, server_hostname, bounded), bounded
        )

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _BoundedBackend(httpcore.NetworkBackend):
    def __init__(self, timeout: float) -> None:
        self._backend = httpcore.SyncBackend()
        self._timeout = timeout

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        bounded = self._timeout if timeout is None else timeout
        stream = self._backend.connect_tcp(host, port, bounded, local_address, socket_options)
        return _BoundedStream(stream, self._timeout)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def socks_transport(proxy: str, timeout: float, ssl_context: ssl.SSLContext) -> httpx.BaseTransport:
    """An httpx transport through the SOCKS5 proxy ``proxy`` (``socks5h://HOST:PORT``), as httpx
    builds it for ``proxy=``, but with no read or write left without ``timeout``."""
    url = httpx.URL(proxy)
    transport = httpx.HTTPTransport(verify=ssl_context, proxy=proxy, limits=_LIMITS)
    # httpx builds this very SOCKSProxy for ``proxy=``, without a way to pass a network backend;
    # the test of the handshake's timeout fails if httpx stops using this attribute.
    transport._pool = httpcore.SOCKSProxy(
        proxy_url=httpcore.URL(
            scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
        ),
        ssl_context=ssl_context,
        max_connections=_LIMITS.max_connections,
        max_keepalive_connections=_LIMITS.max_keepalive_connections,
        keepalive_expiry=_LIMITS.keepalive_expiry,
        network_backend=_BoundedBackend(timeout),
    )
    return transport
