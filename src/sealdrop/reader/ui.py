"""``sealdrop reader``'s local web interface: server-rendered pages on 127.0.0.1, no JavaScript.

Access: the command prints ``http://127.0.0.1:PORT/?token=…``; the first request with that
one-time token gets an HttpOnly, SameSite=Strict session cookie holding a random session secret,
and the token is spent. Every other request without the cookie is refused (403), and a Host header
other than ``127.0.0.1:PORT`` or ``localhost:PORT`` is refused (400, against DNS rebinding). A
navigation that arrives from another site or application (``Sec-Fetch-Site`` cross-site or
same-site), to which the browser does not send a Strict cookie, is first bounced once through a
same-origin refresh, so that the link (or the bare address) opened again in the same browser
session still works; a browser without the cookie is refused after the bounce. Every POST carries
a CSRF token (an HMAC of the session secret). Every answer has a strict CSP, no-referrer, no-store
and nosniff; the pages load nothing but their own style sheet. Errors are pages of the interface,
with a link back.

The identity passphrase is asked once per run; the identity stays in this process's memory only.
Messages and replies are decrypted in memory and shown as escaped text; files are never rendered,
only listed (decrypted name and size) and exported through ``export`` (mat2).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import socket
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from sealdrop.crypto.keys import Identity
from sealdrop.errors import ApiError, ReaderError, SealdropError, TokenExpired, WrongPassphrase
from sealdrop.reader.client import ApiClient
from sealdrop.reader.connection import open_client
from sealdrop.reader.content import decrypt_item, file_info, seal_reply
from sealdrop.reader.display import WHY_CANNOT_DECRYPT, shown_name, shown_text
from sealdrop.reader.export import export as export_file
from sealdrop.reader.keystore import load_identity
from sealdrop.reader.profile import Profile
from sealdrop.reader.store import CiphertextCache, LocalItem, LocalSource, Store
from sealdrop.reader.sync import (
    SyncReport,
    delete_item,
    delete_source,
    mark_source_seen,
    star_source,
)
from sealdrop.reader.sync import sync as run_sync
from sealdrop.reader.ui_views import BOUNCE, HEADERS, STYLE, ItemView, Pages, item_view

__all__ = ["COOKIE", "HEADERS", "UiState", "create_app", "serve"]

COOKIE = "sealdrop_reader"
ClientFactory = Callable[[], ApiClient]


@dataclass
class UiState:
    """What one run of the UI holds in memory: the one-time token, the session secret, the
    unlocked identity."""

    token: str | None
    session: str = field(default_factory=lambda: secrets.token_hex(32))
    identity: Identity | None = None

    @property
    def csrf(self) -> str:
        return hmac.new(bytes.fromhex(self.session), b"csrf", hashlib.sha256).hexdigest()


def create_app(
    profile: Profile,
    port: int,
    token: str,
    client_factory: ClientFactory | None = None,
) -> Starlette:
    """The UI for the reader in ``profile``, answering on ``port`` to ``token`` once.

    ``client_factory`` makes the API client (by default from the saved token, read on each use so
    that a `sealdrop reader login` in a terminal takes effect at once).
    """
    state = UiState(token=token)
    hosts = {f"127.0.0.1:{port}", f"localhost:{port}"}
    pages = Pages()

    def make_client() -> ApiClient:
        if client_factory is not None:
            return client_factory()
        return open_client(profile)

    def page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
        return pages.render(template, status, csrf=state.csrf, **context)

    error_page = pages.error

    def store() -> Store:
        return Store(profile.db_path)

    async def form(request: Request) -> dict[str, str]:
        data = await request.form()
        sent = data.get("csrf")
        if not isinstance(sent, str) or not hmac.compare_digest(sent, state.csrf):
            raise HTTPException(403, "missing or wrong CSRF token")
        return {k: v for k, v in data.items() if isinstance(v, str)}

    def with_client(work: Callable[[ApiClient, Store], Any]) -> Any:
        client = make_client()
        try:
            with store() as local:
                return work(client, local)
        finally:
            if client_factory is None:
                client.close()

    def sync_now(client: ApiClient, local: Store) -> SyncReport:
        return run_sync(client, local, profile.cache_dir)

    def need_source(local: Store, source_id: str) -> LocalSource:
        found = local.source(source_id)
        if found is None:
            raise HTTPException(404, "no such source")
        return found

    def need_item(local: Store, item_id: str) -> LocalItem:
        found = local.item(item_id)
        if found is None:
            raise HTTPException(404, "no such item")
        return found

    def admin_flag() -> bool:
        """Whether the logged-in account is an admin (the Admin link shows only then)."""
        try:
            client = make_client()
        except SealdropError:
            return False
        try:
            return client.me().role == "admin"
        except SealdropError:
            return False
        finally:
            if client_factory is None:
                client.close()

    # -- pages -----------------------------------------------------------------------------

    async def source_list(report: SyncReport | None) -> Response:
        """The sources page, after a sync (with its report) or not."""

        def load() -> list[tuple[LocalSource, int]]:
            with store() as local:
                return [(s, len(local.items(s.id))) for s in local.sources()]

        rows = await run_in_threadpool(load)
        admin = await run_in_threadpool(admin_flag)
        return page(
            "index.html",
            sources=rows,
            report=report,
            unlocked=state.identity is not None,
            admin=admin,
        )

    async def index(request: Request) -> Response:
        return await source_list(None)

    async def sync_view(request: Request) -> Response:
        await form(request)
        report: SyncReport = await run_in_threadpool(with_client, sync_now)
        return await source_list(report)

    async def unlock(request: Request) -> Response:
        if request.method == "GET":
            return page("unlock.html", error=None)
        data = await form(request)
        try:
            identity = await run_in_threadpool(
                load_identity, profile.identity_path, data.get("passphrase", "")
            )
        except WrongPassphrase as exc:
            return page("unlock.html", status=400, error=str(exc))
        state.identity = identity
        return RedirectResponse("/", status_code=303)

    async def conversation(request: Request) -> Response:
        identity = state.identity
        if identity is None:
            return RedirectResponse("/unlock", status_code=303)
        source_id = str(request.path_params["source_id"])

        def load() -> tuple[LocalSource, list[ItemView]]:
            with store() as local:
                source = need_source(local, source_id)
                cache = CiphertextCache(profile.cache_dir)
                return source, [item_view(cache, item, identity) for item in local.items(source.id)]

        source, views = await run_in_threadpool(load)
        not_here = any(view.not_for_this_device for view in views)
        return page(
            "source.html",
            source=source,
            views=views,
            why=WHY_CANNOT_DECRYPT if not_here else None,
            exports=profile.exports_dir,
        )

    async def star(request: Request) -> Response:
        data = await form(request)
        source_id = str(request.path_params["source_id"])
        starred = data.get("starred") == "1"

        def work(client: ApiClient, local: Store) -> None:
            star_source(client, local, profile.cache_dir, need_source(local, source_id).id, starred)

        await run_in_threadpool(with_client, work)
        back = f"/sources/{source_id}" if data.get("back") == "source" else "/"
        return RedirectResponse(back, status_code=303)

    async def seen(request: Request) -> Response:
        await form(request)
        source_id = str(request.path_params["source_id"])

        def work(client: ApiClient, local: Store) -> None:
            mark_source_seen(client, local, profile.cache_dir, need_source(local, source_id).id)

        await run_in_threadpool(with_client, work)
        return RedirectResponse(f"/sources/{source_id}", status_code=303)

    async def reply(request: Request) -> Response:
        data = await form(request)
        source_id = str(request.path_params["source_id"])
        text = data.get("text", "")

        def work(client: ApiClient, local: Store) -> None:
            source = need_source(local, source_id)
            ciphertext = seal_reply(text, [source.reply_key, *client.reply_keys()])
            client.upload_reply(source.id, ciphertext)
            sync_now(client, local)

        await run_in_threadpool(with_client, work)
        return RedirectResponse(f"/sources/{source_id}", status_code=303)

    async def delete_source_view(request: Request) -> Response:
        source_id = str(request.path_params["source_id"])
        if request.method == "GET":
            with store() as local:
                source = need_source(local, source_id)
            what = f"source {shown_name(source.pseudonym)}"
            return page("confirm.html", what=what, action=request.url.path)
        await form(request)

        def work(client: ApiClient, local: Store) -> None:
            delete_source(client, local, profile.cache_dir, need_source(local, source_id).id)

        await run_in_threadpool(with_client, work)
        return RedirectResponse("/", status_code=303)

    async def delete_item_view(request: Request) -> Response:
        item_id = str(request.path_params["item_id"])
        if request.method == "GET":
            with store() as local:
                item = need_item(local, item_id)
            what = f"{item.kind} #{item.seq}"
            return page("confirm.html", what=what, action=request.url.path)
        await form(request)

        def work(client: ApiClient, local: Store) -> str:
            item = need_item(local, item_id)
            delete_item(client, local, profile.cache_dir, item)
            return item.source_id

        source_id = await run_in_threadpool(with_client, work)
        return RedirectResponse(f"/sources/{source_id}", status_code=303)

    async def export_view(request: Request) -> Response:
        data = await form(request)
        identity = state.identity
        if identity is None:
            return RedirectResponse("/unlock", status_code=303)
        item_id = str(request.path_params["item_id"])
        dest = data.get("dest", "").strip()
        # Nothing to type: by default the data folder's exports/, made 0700 here. Another folder
        # must exist already (a typo must not create folders elsewhere).
        chosen = Path(dest).expanduser() if dest else profile.exports_dir
        if chosen == profile.exports_dir:
            folder = await run_in_threadpool(profile.ensure_exports)
        elif chosen.is_dir():
            folder = chosen
        else:
            raise HTTPException(400, f"the folder {chosen} does not exist: create it first")

        def work() -> tuple[LocalItem, str, Any]:
            with store() as local:
                item = need_item(local, item_id)
            if item.kind != "file":
                raise HTTPException(400, "only files are exported")
            info = file_info(item, identity)
            plaintext = decrypt_item(CiphertextCache(profile.cache_dir), item, identity)
            result = export_file(
                plaintext,
                info.name,
                folder,
                strip_metadata=data.get("strip") == "1",
                keep_original=data.get("keep_original") == "1",
            )
            return item, info.name, result

        item, name, result = await run_in_threadpool(work)
        removed = [shown_text(entry) for entry in result.removed]  # mat2's words about the file
        shown = shown_name(name)
        return page("exported.html", item=item, name=shown, result=result, removed=removed)

    # -- administration (admins only) -------------------------------------------------------

    def is_admin(client: ApiClient) -> bool:
        return client.me().role == "admin"

    def admin_page(
        client: ApiClient, status: int = 200, **shown: Any
    ) -> tuple[str, int, dict[str, Any]]:
        return (
            "admin.html",
            status,
            {
                "admin": True,
                "users": client.users(),
                "recipients": client.recipients(),
                "settings": client.settings(),
                **shown,
            },
        )

    def admin_work(
        work: Callable[[ApiClient], dict[str, Any] | None],
    ) -> tuple[str, int, dict[str, Any]] | None:
        """Run ``work`` as an admin; its dict (one-time secrets) is shown on the admin page, None
        redirects back to it. An API error is shown on the page as text."""
        client = make_client()
        try:
            if not is_admin(client):
                raise HTTPException(403, "administration is for admins only")
            try:
                shown = work(client)
            except ApiError as exc:
                return admin_page(client, status=400, error=str(exc))
            return None if shown is None else admin_page(client, **shown)
        finally:
            if client_factory is None:
                client.close()

    async def run_admin(work: Callable[[ApiClient], dict[str, Any] | None]) -> Response:
        answer = await run_in_threadpool(admin_work, work)
        if answer is None:
            return RedirectResponse("/admin", status_code=303)
        template, status, context = answer
        return page(template, status=status, **context)

    async def admin(request: Request) -> Response:
        return await run_admin(lambda client: {})

    async def create_user(request: Request) -> Response:
        data = await form(request)
        username = data.get("username", "").strip()
        role = data.get("role", "journalist")

        def work(client: ApiClient) -> dict[str, Any]:
            return {"created": client.create_user(username, role)}

        return await run_admin(work)

    async def user_action(request: Request) -> Response:
        await form(request)
        user_id = str(request.path_params["user_id"])
        action = str(request.path_params["action"])

        def work(client: ApiClient) -> dict[str, Any] | None:
            if action == "disable":
                client.disable_user(user_id)
            elif action == "enable":
                client.enable_user(user_id)
            elif action == "reset-2fa":
                uri = client.reset_2fa(user_id)
                users = {u.id: u.username for u in client.users()}
                return {"enrolment": {"username": users.get(user_id, user_id), "totp_uri": uri}}
            else:
                raise HTTPException(404, "no such action")
            return None

        return await run_admin(work)

    async def add_recipient(request: Request) -> Response:
        data = await form(request)
        key, name = data.get("public_key", "").strip(), data.get("name", "").strip()

        def work(client: ApiClient) -> None:
            client.add_recipient(key, name)

        return await run_admin(work)

    async def remove_recipient(request: Request) -> Response:
        await form(request)
        recipient_id = str(request.path_params["recipient_id"])

        def work(client: ApiClient) -> None:
            client.remove_recipient(recipient_id)

        return await run_admin(work)

    async def change_settings(request: Request) -> Response:
        data = await form(request)

        def work(client: ApiClient) -> dict[str, Any] | None:
            current = client.settings()
            wanted: dict[str, Any] = {
                "accepting_submissions": data.get("accepting_submissions") == "1",
                "files_enabled": data.get("files_enabled") == "1",
            }
            for name in ("max_upload_bytes", "max_message_chars"):
                raw = data.get(name, "").strip()
                try:
                    wanted[name] = int(raw)
                except ValueError:
                    return {"error": f"{name} must be a whole number, not {raw!r}"}
            changes = {k: v for k, v in wanted.items() if getattr(current, k) != v}
            if changes:
                client.change_settings(changes)
            return None

        return await run_admin(work)

    async def style(request: Request) -> Response:
        return PlainTextResponse(STYLE, media_type="text/css")

    # -- errors ----------------------------------------------------------------------------

    async def expired(request: Request, exc: Exception) -> Response:
        profile.forget_token()
        return page("expired.html", status=401)

    def back_from(path: str) -> str:
        """Where an error page's link goes: the conversation the request was about, the admin
        page, or the list of sources."""
        parts = path.strip("/").split("/")
        if parts[0] in ("sources", "items") and len(parts) > 1:
            with store() as local:
                item = local.item(parts[1]) if parts[0] == "items" else None
                source = local.source(item.source_id if item else parts[1])
            return f"/sources/{source.id}" if source is not None else "/"
        return "/admin" if parts[0] == "admin" else "/"

    async def failed(request: Request, exc: Exception) -> Response:
        status = 502 if isinstance(exc, ReaderError) else 400
        back = await run_in_threadpool(back_from, request.url.path)
        return error_page(status, str(exc), back)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        back = await run_in_threadpool(back_from, request.url.path)
        return error_page(exc.status_code, exc.detail, back)

    async def crashed(request: Request, exc: Exception) -> Response:
        # A bug: the traceback goes to the terminal (uvicorn), the page says where to look.
        return error_page(500, "unexpected error: the terminal running the reader has details")

    # -- access ----------------------------------------------------------------------------

    class Guard(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
            response = await self._answer(request, call_next)
            response.headers.update(HEADERS)
            return response

        async def _answer(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
            if request.headers.get("host") not in hosts:
                # No link back: this is not a name the interface answers to.
                return error_page(400, "bad Host header: open the reader's own link", back=None)
            cookie = request.cookies.get(COOKIE, "")
            if cookie and hmac.compare_digest(cookie, state.session):
                return await call_next(request)
            if request.method == "GET" and request.headers.get("sec-fetch-site") in (
                "cross-site",
                "same-site",
            ):
                # A browser withholds a SameSite=Strict cookie from a navigation that comes from
                # elsewhere (a link in another application or site). Answer with a same-origin
                # refresh to the same address: that navigation carries the cookie if this browser
                # has it, and is refused below if not. The page holds nothing but the address
                # (the spent token at most); Strict stays, so no other site's request carries it.
                return HTMLResponse(BOUNCE, headers=HEADERS)
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
                response.set_cookie(
                    COOKIE, state.session, httponly=True, samesite="strict", path="/"
                )
                return response
            return error_page(
                403,
                "this browser has no session of this reader: open the link that `sealdrop reader` "
                "printed (it works once; to start again, stop the reader and run it again)",
                back=None,
            )

    routes = [
        Route("/", index),
        Route("/style.css", style),
        Route("/sync", sync_view, methods=["POST"]),
        Route("/unlock", unlock, methods=["GET", "POST"]),
        Route("/sources/{source_id:str}", conversation),
        Route("/sources/{source_id:str}/star", star, methods=["POST"]),
        Route("/sources/{source_id:str}/seen", seen, methods=["POST"]),
        Route("/sources/{source_id:str}/reply", reply, methods=["POST"]),
        Route("/sources/{source_id:str}/delete", delete_source_view, methods=["GET", "POST"]),
        Route("/items/{item_id:str}/delete", delete_item_view, methods=["GET", "POST"]),
        Route("/items/{item_id:str}/export", export_view, methods=["POST"]),
        Route("/admin", admin),
        Route("/admin/users", create_user, methods=["POST"]),
        Route("/admin/users/{user_id:str}/{action:str}", user_action, methods=["POST"]),
        Route("/admin/recipients", add_recipient, methods=["POST"]),
        Route("/admin/recipients/{recipient_id:str}/remove", remove_recipient, methods=["POST"]),
        Route("/admin/settings", change_settings, methods=["POST"]),
    ]
    handlers: dict[Any, Callable[[Request, Exception], Any]] = {
        HTTPException: http_error,
        TokenExpired: expired,
        SealdropError: failed,
        Exception: crashed,
    }
    app = Starlette(routes=routes, middleware=[Middleware(Guard)], exception_handlers=handlers)
    app.state.ui = state
    return app


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
