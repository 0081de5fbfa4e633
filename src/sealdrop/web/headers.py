"""Security headers on every response, errors included (invariant 7).

Pure ASGI middleware rather than a Starlette BaseHTTPMiddleware: it rewrites only the response
start message, so streamed bodies stay streamed and exceptions still reach the error handlers.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SOURCE_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        b"frame-ancestors 'none'; base-uri 'none'",
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
