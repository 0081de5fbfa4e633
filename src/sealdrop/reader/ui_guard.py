"""Who may use the reader's local web interface: plain ASGI middleware in front of its pages.

The first request with the one-time token gets an HttpOnly, SameSite=Strict session cookie
holding a random session secret, and the token is spent. Every other request without the cookie
is refused (403), and a Host header other than ``127.0.0.1:PORT`` or ``localhost:PORT`` is refused
(400, against DNS rebinding). A navigation from another site or application is bounced once
through a same-origin refresh (see ``Guard``). Every answer, refusals included, carries the
interface's headers (``ui_views.HEADERS``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sealdrop.crypto.keys import Identity
from sealdrop.reader.ui_sync import SyncStatus
from sealdrop.reader.ui_views import BOUNCE, HEADERS, Pages

__all__ = ["COOKIE", "Guard", "UiState", "posted_form"]

COOKIE = "sealdrop_reader"


@dataclass
class UiState:
    """What one run of the UI holds in memory: the one-time token, the session secret, the
    unlocked identity, the state of syncing, whether the account is an admin."""

    token: str | None
    session: str = field(default_factory=lambda: secrets.token_hex(32))
    identity: Identity | None = None
    sync: SyncStatus = field(default_factory=SyncStatus)
    admin: bool | None = None  # None: not known yet (asked of the server once it answers)

    @property
    def csrf(self) -> str:
        return hmac.new(bytes.fromhex(self.session), b"csrf", hashlib.sha256).hexdigest()


class Guard:
    """Lets through only requests of this browser's session, to this interface's own names."""

    def __init__(self, app: ASGIApp, state: UiState, port: int, pages: Pages) -> None:
        self._app = app
        self._state = state
        self._hosts = {f"127.0.0.1:{port}", f"localhost:{port}"}
        self._pages = pages

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers[name] = value
            await send(message)

        refusal = self._refusal(Request(scope))
        if refusal is None:
            await self._app(scope, receive, with_headers)
        else:
            await refusal(scope, receive, with_headers)

    def _refusal(self, request: Request) -> Response | None:
        """None to let the request through; otherwise the answer instead of the page."""
        state = self._state
        if request.headers.get("host") not in self._hosts:
            # No link back: this is not a name the interface answers to.
            return self._pages.error(400, "bad Host header: open the reader's own link", back=None)
        cookie = request.cookies.get(COOKIE, "")
        if cookie and hmac.compare_digest(cookie, state.session):
            return None
        if request.method == "GET" and request.headers.get("sec-fetch-site") in (
            "cross-site",
            "same-site",
        ):
            # A browser withholds a SameSite=Strict cookie from a navigation that comes from
            # elsewhere (a link in another application or site). Answer with a same-origin
            # refresh to the same address: that navigation carries the cookie if this browser
            # has it, and is refused below if not. The page holds nothing but the address (the
            # spent token at most); Strict stays, so no other site's request carries it.
            return HTMLResponse(BOUNCE)
        offered = request.query_params.get("token", "")
        expected = state.token
        if (
            request.url.path == "/"
            and expected is not None
            and offered
            and hmac.compare_digest(offered, expected)
        ):
            state.token = None  # single use
            response = RedirectResponse("/", status_code=303)
            response.set_cookie(COOKIE, state.session, httponly=True, samesite="strict", path="/")
            return response
        return self._pages.error(
            403,
            "this browser has no session of this reader: open the link that `sealdrop reader` "
            "printed (it works once; to start again, stop the reader and run it again)",
            back=None,
        )


async def posted_form(request: Request, state: UiState) -> dict[str, str]:
    """The fields of a POSTed form that carries this session's CSRF token (403 otherwise)."""
    data = await request.form()
    sent = data.get("csrf")
    if not isinstance(sent, str) or not hmac.compare_digest(sent, state.csrf):
        raise HTTPException(403, "missing or wrong CSRF token")
    return {k: v for k, v in data.items() if isinstance(v, str)}
