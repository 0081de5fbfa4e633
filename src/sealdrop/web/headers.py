"""Security headers on every response, errors included (invariant 7).

Pure ASGI middleware rather than a Starlette BaseHTTPMiddleware: it rewrites only the response
start message, so streamed bodies stay streamed and exceptions still reach the error handlers.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sealdrop.web.source.script import SCRIPT_HASH
from sealdrop.web.source.stylesheet import STYLE_HASH

SOURCE_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (
        b"content-security-policy",
        # Styles: only the inlined stylesheet, by hash. Scripts: only the conversation page's
        # inlined resumable-upload script, by hash; it may talk to this origin only (its tus
        # requests). Nothing else loads: no images, fonts, other scripts or frames.
        f"default-src 'none'; style-src '{STYLE_HASH}'; script-src '{SCRIPT_HASH}'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'".encode("ascii"),
    ),
    (b"referrer-policy", b"no-referrer"),
    # A page may show a codename: no cache, shared or private, may keep it.
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), interest-cohort=()"),
)

# Headers that identify the software or the server's clock (a clock-skew fingerprint can tie an
# onion service to a clearnet host), dropped whatever sets them.
_DROPPED = {b"server", b"date", b"x-powered-by"}


class SecurityHeaders:
    def __init__(self, app: ASGIApp, headers: tuple[tuple[bytes, bytes], ...]) -> None:
        self._app = app
        self._headers = headers
        self._names = {name for name, _ in headers} | _DROPPED

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() not in self._names
                ]
                message["headers"] = kept + list(self._headers)
            await send(message)

        await self._app(scope, receive, send_with_headers)


# Two years, the value browsers' preload lists ask for; no "preload" by default: being on the
# list is hard to undo and is the operator's decision.
HSTS: tuple[bytes, bytes] = (b"strict-transport-security", b"max-age=63072000")
_V3_ONION = re.compile(r"[a-z2-7]{56}\.onion")


class ClearnetHeaders:
    """Headers for the TCP listener when a TLS proxy publishes it at an https:// address.

    HSTS keeps a returning visitor on HTTPS (a downgrade to plain HTTP would show the pages, and
    the session cookie, to the network). ``Onion-Location`` makes Tor Browser offer the onion
    version of the same page; browsers honour it only over HTTPS, hence only with public_url.
    Requests that came over the onion (``is_onion``) get neither: an onion needs no HSTS, and
    pointing it at itself would be noise.
    """

    def __init__(
        self,
        app: ASGIApp,
        is_onion: Callable[[Scope], bool],
        onion_address: Callable[[], str | None],
    ) -> None:
        self._app = app
        self._is_onion = is_onion
        self._onion_address = onion_address

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._is_onion(scope):
            await self._app(scope, receive, send)
            return
        added = [HSTS]
        location = _onion_location(scope, self._onion_address())
        if location is not None:
            added.append((b"onion-location", location))
        names = {name for name, _ in added}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message["headers"] = kept + added
            await send(message)

        await self._app(scope, receive, send_with_headers)


def _onion_location(scope: Scope, address: str | None) -> bytes | None:
    """``http://<onion><path>?<query>`` for this request, or None without a valid address.

    Built from the configured address and the raw request target, never from the Host header
    (which the client chooses). A target that is not an origin-form path ("http://x/", "*") or
    holds bytes a header must not carry leads to the onion's front page instead."""
    if address is None or _V3_ONION.fullmatch(address) is None:
        return None
    path: bytes = scope.get("raw_path") or b"/"
    query: bytes = scope.get("query_string") or b""
    if not path.startswith(b"/") or not _is_visible_ascii(path + query):
        path, query = b"/", b""
    return b"http://" + address.encode("ascii") + path + (b"?" + query if query else b"")


def _is_visible_ascii(data: bytes) -> bool:
    return all(0x21 <= byte <= 0x7E for byte in data)
