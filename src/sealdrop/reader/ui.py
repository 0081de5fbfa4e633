"""``sealdrop reader``'s local web interface: server-rendered pages on 127.0.0.1, no JavaScript.

Access (``ui_guard``): the command prints ``http://127.0.0.1:PORT/?token=…``; that one-time token
gets this browser an HttpOnly, SameSite=Strict session cookie, and every other request without it
is refused, as is any Host header other than the interface's own. Every POST carries a CSRF token
(an HMAC of the session secret). Every answer has a strict CSP, no-referrer, no-store and nosniff;
the pages load nothing but their own style sheet. Errors are pages of the interface, with a link
back.

The identity passphrase is asked once per run; the identity stays in this process's memory only.
Messages and replies are decrypted in memory and shown as escaped text; files are never rendered,
only listed (decrypted name and size) and exported through ``export`` (mat2). What each page does
is decided by :class:`~sealdrop.reader.reader.Reader`, which the command line drives too.
"""

from __future__ import annotations

import secrets
import socket
import webbrowser
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from sealdrop.errors import NotHere, RemoteError, SealdropError, TokenExpired, WrongPassphrase
from sealdrop.reader.client import ApiClient
from sealdrop.reader.connection import open_client
from sealdrop.reader.display import WHY_CANNOT_DECRYPT, shown_name, shown_text
from sealdrop.reader.keystore import load_identity
from sealdrop.reader.profile import Profile
from sealdrop.reader.reader import Reader
from sealdrop.reader.sync import SyncReport
from sealdrop.reader.ui_admin import AdminPages
from sealdrop.reader.ui_guard import COOKIE, Guard, UiState, posted_form
from sealdrop.reader.ui_views import HEADERS, STYLE, Pages

__all__ = ["COOKIE", "HEADERS", "ReaderInterface", "UiState", "create_app", "serve"]

T = TypeVar("T")
ClientFactory = Callable[[], ApiClient]


class ReaderInterface:
    """The pages of the interface for the reader in ``profile``.

    ``client_factory`` makes the API client (by default from the saved token, read on each use so
    that a `sealdrop reader login` in a terminal takes effect at once; then the client is closed
    after each use, otherwise the factory's owner closes it)."""

    def __init__(
        self,
        profile: Profile,
        state: UiState,
        pages: Pages,
        client_factory: ClientFactory | None = None,
    ) -> None:
        self._profile = profile
        self._state = state
        self._pages = pages
        self._client_factory = client_factory

    def routes(self) -> list[Route]:
        return [
            Route("/", self.index),
            Route("/style.css", self.style),
            Route("/sync", self.sync, methods=["POST"]),
            Route("/unlock", self.unlock, methods=["GET", "POST"]),
            Route("/sources/{source_id:str}", self.conversation),
            Route("/sources/{source_id:str}/star", self.star, methods=["POST"]),
            Route("/sources/{source_id:str}/seen", self.seen, methods=["POST"]),
            Route("/sources/{source_id:str}/reply", self.reply, methods=["POST"]),
            Route("/sources/{source_id:str}/delete", self.delete_source, methods=["GET", "POST"]),
            Route("/items/{item_id:str}/delete", self.delete_item, methods=["GET", "POST"]),
            Route("/items/{item_id:str}/export", self.export, methods=["POST"]),
        ]

    def exception_handlers(self) -> dict[Any, Callable[[Request, Exception], Any]]:
        return {
            HTTPException: self.http_error,
            TokenExpired: self.expired,
            SealdropError: self.failed,
            Exception: self.crashed,
        }

    # -- plumbing --------------------------------------------------------------------------

    @contextmanager
    def client(self) -> Iterator[ApiClient]:
        if self._client_factory is not None:
            yield self._client_factory()
            return
        with open_client(self._profile) as client:
            yield client

    async def _with_reader(self, work: Callable[[Reader], T]) -> T:
        """``work`` with the reader, in a worker thread (it blocks: SQLite, HTTP, decryption)."""

        def run() -> T:
            with Reader.open(self._profile, self._client_factory) as reader:
                return work(reader)

        return await run_in_threadpool(run)

    def _page(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        return self._pages.render(template, status, csrf=self._state.csrf, **context)

    def _is_admin(self) -> bool:
        """Whether the logged-in account is an admin (the Admin link shows only then)."""
        try:
            with self.client() as client:
                return client.me().role == "admin"
        except SealdropError:
            return False

    @staticmethod
    def _see(path: str) -> RedirectResponse:
        return RedirectResponse(path, status_code=303)

    # -- pages -----------------------------------------------------------------------------

    async def _source_list(self, report: SyncReport | None) -> Response:
        """The sources page, after a sync (with its report) or not."""
        rows = await self._with_reader(Reader.sources)
        admin = await run_in_threadpool(self._is_admin)
        unlocked = self._state.identity is not None
        return self._page("index.html", sources=rows, report=report, unlocked=unlocked, admin=admin)

    async def index(self, request: Request) -> Response:
        return await self._source_list(None)

    async def style(self, request: Request) -> Response:
        return PlainTextResponse(STYLE, media_type="text/css")

    async def sync(self, request: Request) -> Response:
        await posted_form(request, self._state)
        return await self._source_list(await self._with_reader(lambda reader: reader.sync()))

    async def unlock(self, request: Request) -> Response:
        if request.method == "GET":
            return self._page("unlock.html", error=None)
        data = await posted_form(request, self._state)
        path = self._profile.identity_path
        try:
            identity = await run_in_threadpool(load_identity, path, data.get("passphrase", ""))
        except WrongPassphrase as exc:
            return self._page("unlock.html", status=400, error=str(exc))
        self._state.identity = identity
        return self._see("/")

    async def conversation(self, request: Request) -> Response:
        identity = self._state.identity
        if identity is None:
            return self._see("/unlock")
        source_id = str(request.path_params["source_id"])

        def load(reader: Reader) -> tuple[Any, list[Any]]:
            source = reader.source(source_id)
            return source, [reader.view(item, identity) for item in reader.items(source.id)]

        source, views = await self._with_reader(load)
        not_here = any(view.not_for_this_device for view in views)
        return self._page(
            "source.html",
            source=source,
            views=views,
            why=WHY_CANNOT_DECRYPT if not_here else None,
            exports=self._profile.exports_dir,
        )

    async def star(self, request: Request) -> Response:
        data = await posted_form(request, self._state)
        source_id = str(request.path_params["source_id"])
        starred = data.get("starred") == "1"
        await self._with_reader(lambda r: r.star(r.source(source_id).id, starred))
        return self._see(f"/sources/{source_id}" if data.get("back") == "source" else "/")

    async def seen(self, request: Request) -> Response:
        await posted_form(request, self._state)
        source_id = str(request.path_params["source_id"])
        await self._with_reader(lambda r: r.seen(r.source(source_id).id))
        return self._see(f"/sources/{source_id}")

    async def reply(self, request: Request) -> Response:
        data = await posted_form(request, self._state)
        source_id = str(request.path_params["source_id"])
        await self._with_reader(lambda r: r.send_reply(source_id, data.get("text", "")))
        return self._see(f"/sources/{source_id}")

    async def delete_source(self, request: Request) -> Response:
        source_id = str(request.path_params["source_id"])
        if request.method == "GET":
            source = await self._with_reader(lambda r: r.source(source_id))
            what = f"source {shown_name(source.pseudonym)}"
            return self._page("confirm.html", what=what, action=request.url.path)
        await posted_form(request, self._state)
        await self._with_reader(lambda r: r.delete_source(r.source(source_id).id))
        return self._see("/")

    async def delete_item(self, request: Request) -> Response:
        item_id = str(request.path_params["item_id"])
        if request.method == "GET":
            item = await self._with_reader(lambda r: r.item(item_id))
            return self._page(
                "confirm.html", what=f"{item.kind} #{item.seq}", action=request.url.path
            )
        await posted_form(request, self._state)

        def work(reader: Reader) -> str:
            item = reader.item(item_id)
            reader.delete_item(item)
            return item.source_id

        return self._see(f"/sources/{await self._with_reader(work)}")

    async def export(self, request: Request) -> Response:
        data = await posted_form(request, self._state)
        identity = self._state.identity
        if identity is None:
            return self._see("/unlock")
        item_id = str(request.path_params["item_id"])
        dest = data.get("dest", "").strip()
        chosen = Path(dest).expanduser() if dest else None

        def work(reader: Reader) -> Any:
            folder = reader.export_folder(chosen)
            return reader.export(
                item_id,
                identity,
                folder,
                strip_metadata=data.get("strip") == "1",
                keep_original=data.get("keep_original") == "1",
            )

        done = await self._with_reader(work)
        removed = [shown_text(entry) for entry in done.result.removed]  # mat2's words
        return self._page(
            "exported.html",
            item=done.item,
            name=shown_name(done.name),
            result=done.result,
            removed=removed,
        )

    # -- errors ----------------------------------------------------------------------------

    async def expired(self, request: Request, exc: Exception) -> Response:
        self._profile.forget_token()
        return self._page("expired.html", status=401)

    def _back_from(self, path: str) -> str:
        """Where an error page's link goes: the conversation the request was about, the admin
        page, or the list of sources."""
        parts = path.strip("/").split("/")
        if parts[0] in ("sources", "items") and len(parts) > 1:
            with Reader.open(self._profile, self._client_factory) as reader:
                item = reader.store.item(parts[1]) if parts[0] == "items" else None
                source = reader.store.source(item.source_id if item else parts[1])
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
        return self._pages.error(status, str(exc), back)

    async def http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        back = await run_in_threadpool(self._back_from, request.url.path)
        return self._pages.error(exc.status_code, exc.detail, back)

    async def crashed(self, request: Request, exc: Exception) -> Response:
        # A bug: the traceback goes to the terminal (uvicorn), the page says where to look.
        return self._pages.error(
            500, "unexpected error: the terminal running the reader has details"
        )


def create_app(
    profile: Profile, port: int, token: str, client_factory: ClientFactory | None = None
) -> ASGIApp:
    """The UI for the reader in ``profile``, answering on ``port`` to ``token`` once."""
    state = UiState(token=token)
    pages = Pages()
    interface = ReaderInterface(profile, state, pages, client_factory)
    admin = AdminPages(pages, state, interface.client)
    app = Starlette(
        routes=interface.routes() + admin.routes(),
        exception_handlers=interface.exception_handlers(),
    )
    return Guard(app, state, port, pages)


def serve(profile: Profile, *, open_browser: bool = False, announce: Callable[[str], None]) -> None:
    """Run the UI on 127.0.0.1 on a free port until interrupted; ``announce`` gets the URL."""
    profile.load_config()  # fail early, with a hint, if init was never run
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    token = secrets.token_urlsafe(32)
    app = create_app(profile, port, token)
    url = f"http://127.0.0.1:{port}/?token={token}"
    announce(url)
    if open_browser:
        webbrowser.open(url)
    # No access log: the first request's URL holds the token.
    config = uvicorn.Config(app, log_level="warning", access_log=False, server_header=False)
    uvicorn.Server(config).run(sockets=[sock])
