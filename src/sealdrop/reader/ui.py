"""``sealdrop reader``'s local web interface: server-rendered pages on 127.0.0.1.

Access (``ui_guard``): the command prints ``http://127.0.0.1:PORT/?token=…``; that one-time token
gets this browser an HttpOnly, SameSite=Strict session cookie (shared by its tabs), and every
other request without it is refused, as is any Host header other than the interface's own. Every
POST carries a CSRF token (an HMAC of the session secret). Every answer has a strict CSP,
no-referrer, no-store and nosniff; the pages load nothing but the reader's own style sheet and
script, and every function works with JavaScript off. Errors are pages of the interface, with a
link back.

The pages, by noun: the inbox (``ui_inbox``), a conversation (``ui_conversation``, its triage
forms in ``ui_triage``), previews (``ui_preview``), the session (``ui_session``: unlock, log in
again), administration (``ui_admin``). A task of this process syncs in the background
(``ui_sync``). The identity stays in this process's memory only. What each page does is decided
by :class:`~sealdrop.reader.reader.Reader`, which the command line drives too.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import webbrowser
from collections.abc import AsyncIterator, Callable
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from sealdrop.errors import NotHere, RemoteError, SealdropError, TokenExpired
from sealdrop.reader.profile import Profile
from sealdrop.reader.reader import Reader
from sealdrop.reader.ui_admin import AdminPages
from sealdrop.reader.ui_context import ClientFactory, UiContext
from sealdrop.reader.ui_conversation import ConversationPages
from sealdrop.reader.ui_guard import COOKIE, Guard, UiState
from sealdrop.reader.ui_inbox import InboxPages
from sealdrop.reader.ui_preview import PreviewPages
from sealdrop.reader.ui_session import SessionPages
from sealdrop.reader.ui_sync import DEFAULT_INTERVAL
from sealdrop.reader.ui_views import HEADERS, SCRIPT, STYLE, Pages

__all__ = ["COOKIE", "HEADERS", "ReaderInterface", "UiState", "create_app", "serve"]


class ReaderInterface:
    """The pages of the interface, its own files, and what it answers when something fails."""

    def __init__(self, ui: UiContext) -> None:
        self._ui = ui
        self._session = SessionPages(ui)

    def routes(self) -> list[Route]:
        own = [Route("/style.css", self.style), Route("/app.js", self.script)]
        nouns = (InboxPages(self._ui), ConversationPages(self._ui), PreviewPages(self._ui))
        return own + self._session.routes() + [r for noun in nouns for r in noun.routes()]

    def exception_handlers(self) -> dict[Any, Callable[[Request, Exception], Any]]:
        return {
            HTTPException: self.http_error,
            TokenExpired: self.expired,
            SealdropError: self.failed,
            Exception: self.crashed,
        }

    async def style(self, request: Request) -> Response:
        return PlainTextResponse(STYLE, media_type="text/css")

    async def script(self, request: Request) -> Response:
        return PlainTextResponse(SCRIPT, media_type="text/javascript")

    # -- errors ----------------------------------------------------------------------------

    async def expired(self, request: Request, exc: Exception) -> Response:
        """The server's token expired or was revoked: the form to log in again, in the page."""
        self._ui.state.sync.needs_login = True
        if self._ui.client_factory is None:
            self._ui.profile.forget_token()
        back = request.url.path
        if request.method != "GET":  # after logging in, go to the page the form was on
            back = await run_in_threadpool(self._back_from, request.url.path)
        return await self._session.login_page(401, None, back)

    def _back_from(self, path: str) -> str:
        """Where an error page's link goes: the conversation the request was about, the admin
        page, or the list of sources."""
        parts = path.strip("/").split("/")
        if parts[0] in ("sources", "items", "replies") and len(parts) > 1:
            with Reader.open(self._ui.profile, self._ui.client_factory) as reader:
                if parts[0] == "replies":
                    entry = reader.outbox.get(parts[1])
                    source_id = entry.source_id if entry else ""
                else:
                    item = reader.store.item(parts[1]) if parts[0] == "items" else None
                    source_id = item.source_id if item else parts[1]
                source = reader.store.source(source_id)
            return f"/sources/{source.id}" if source is not None else "/"
        return "/admin" if parts[0] == "admin" else "/"

    async def failed(self, request: Request, exc: Exception) -> Response:
        # The server failed us: 502; not here (not synced, or deleted): 404; anything else is
        # what was asked (a missing folder, a file mat2 cannot take…): 400.
        if isinstance(exc, RemoteError):
            status = 502
        elif isinstance(exc, NotHere):
            status = 404
        else:
            status = 400
        back = await run_in_threadpool(self._back_from, request.url.path)
        return self._ui.pages.error(status, str(exc), back)

    async def http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        back = await run_in_threadpool(self._back_from, request.url.path)
        return self._ui.pages.error(exc.status_code, exc.detail, back)

    async def crashed(self, request: Request, exc: Exception) -> Response:
        # A bug: the traceback goes to the terminal (uvicorn), the page says where to look.
        return self._ui.pages.error(
            500, "unexpected error: the terminal running the reader has details"
        )


def create_app(
    profile: Profile,
    port: int,
    token: str,
    client_factory: ClientFactory | None = None,
    *,
    lang: str = "en",
    sync_every: float | None = None,
) -> ASGIApp:
    """The UI for the reader in ``profile``, answering on ``port`` to ``token`` once, in
    ``lang``; with ``sync_every`` (seconds), a background task syncs while it runs."""
    state = UiState(token=token)
    pages = Pages(lang)
    ui = UiContext(profile, state, pages, client_factory)
    interface = ReaderInterface(ui)
    admin = AdminPages(ui)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = None
        if sync_every is not None:
            task = asyncio.create_task(ui.syncer.run_every(sync_every))
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = Starlette(
        routes=interface.routes() + admin.routes(),
        exception_handlers=interface.exception_handlers(),
        lifespan=lifespan,
    )
    return Guard(app, state, port, pages)


def serve(
    profile: Profile,
    *,
    open_browser: bool = False,
    announce: Callable[[str], None],
    lang: str = "en",
    sync_every: float = DEFAULT_INTERVAL,
) -> None:
    """Run the UI on 127.0.0.1 on a free port until interrupted; ``announce`` gets the URL."""
    profile.load_config()  # fail early, with a hint, if init was never run
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    token = secrets.token_urlsafe(32)
    app = create_app(profile, port, token, lang=lang, sync_every=sync_every)
    url = f"http://127.0.0.1:{port}/?token={token}"
    announce(url)
    if open_browser:
        webbrowser.open(url)
    # No access log: the first request's URL holds the token.
    config = uvicorn.Config(app, log_level="warning", access_log=False, server_header=False)
    uvicorn.Server(config).run(sockets=[sock])
