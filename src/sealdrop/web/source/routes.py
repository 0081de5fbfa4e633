"""Handlers of the source interface.

Every service call blocks (database, Argon2id, disk), so each runs in a worker thread; uploads run
in a pool of their own so that slow uploads never starve page views.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from importlib import resources
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import anyio
import anyio.from_thread
import anyio.to_thread
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from sealdrop.errors import (
    ClientDisconnected,
    CsrfTokenInvalid,
    InvalidCodename,
    NotAcceptingSubmissions,
    SessionRequired,
    UploadTooLarge,
)
from sealdrop.services.container import Services
from sealdrop.services.sessions import SessionService, SourceSession
from sealdrop.services.submissions import Receipt
from sealdrop.web.errors import human_size
from sealdrop.web.multipart import BodyLimit, MultipartReader, boundary_of
from sealdrop.web.templating import Templates

T = TypeVar("T")

COOKIE = "sealdrop_session"
# Form fields other than the upload are small; a codename is at most 1,000 characters.
MAX_FORM_BYTES = 64 * 1024
MAX_CONCURRENT_UPLOADS = 32


class SourceInterface:
    def __init__(self, services: Services, templates: Templates) -> None:
        self._services = services
        self._templates = templates
        self._settings = services.settings
        self._upload_slots = anyio.CapacityLimiter(MAX_CONCURRENT_UPLOADS)
        # Served from memory, without Last-Modified: a file time would tell when this server was
        # installed or updated (the same reason the Date header is dropped).
        self._css = (resources.files("sealdrop.web.source") / "static" / "style.css").read_bytes()

    def routes(self) -> list[Route]:
        return [
            Route("/", self.index, methods=["GET"]),
            Route("/start", self.start, methods=["POST"]),
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/submit", self.submit_form, methods=["GET"]),
            Route("/submit", self.submit, methods=["POST"]),
            Route("/submitted", self.submitted, methods=["GET"]),
            Route("/static/style.css", self._stylesheet, methods=["GET"]),
        ]

    # -- helpers -------------------------------------------------------------------------------

    async def _call(self, func: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(functools.partial(func, *args))

    async def _session(self, request: Request) -> SourceSession:
        return await self._call(self._services.sessions.resolve, request.cookies.get(COOKIE))

    async def _optional_session(self, request: Request) -> SourceSession | None:
        if COOKIE not in request.cookies:
            return None
        try:
            return await self._session(request)
        except SessionRequired:
            return None

    def _render(
        self,
        request: Request,
        name: str,
        session: SourceSession | None,
        status: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        return self._templates.render(
            request,
            name,
            status=status,
            logged_in=session is not None,
            csrf_token=session.csrf_token if session else "",
            **context,
        )

    def _with_cookie(self, request: Request, response: Response, value: str) -> Response:
        response.set_cookie(
            COOKIE,
            value,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return response

    async def _small_form(self, request: Request) -> dict[str, str]:
        """A urlencoded form of at most MAX_FORM_BYTES; larger bodies are refused unread."""
        body = b""
        try:
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_FORM_BYTES:
                    raise UploadTooLarge(MAX_FORM_BYTES)
        except ClientDisconnect:
            raise ClientDisconnected() from None
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
        except (UnicodeDecodeError, ValueError):
            pairs = []
        return dict(pairs)

    async def _stylesheet(self, request: Request) -> Response:
        return Response(self._css, media_type="text/css")

    # -- pages ---------------------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        session = await self._optional_session(request)
        return self._render(request, "index.html", session, title="Send information securely")

    async def start(self, request: Request) -> Response:
        await self._small_form(request)
        new = await self._call(self._services.sources.create)
        session = await self._call(self._services.sessions.resolve, new.session_cookie)
        response = self._render(
            request, "codename.html", session, title="Your codename", codename=new.codename
        )
        return self._with_cookie(request, response, new.session_cookie)

    async def login_form(self, request: Request) -> Response:
        return self._render(request, "login.html", None, title="Log in")

    async def login(self, request: Request) -> Response:
        form = await self._small_form(request)
        try:
            cookie = await self._call(self._services.sources.login, form.get("codename", ""))
        except InvalidCodename:
            return self._render(
                request,
                "login.html",
                None,
                status=400,
                title="Log in",
                error="That codename was not recognised. Check the seven words and try again.",
            )
        response = RedirectResponse(_path(request, "submit"), status_code=303)
        return self._with_cookie(request, response, cookie)

    async def logout(self, request: Request) -> Response:
        form = await self._small_form(request)
        session = await self._optional_session(request)
        if session is not None and not SessionService.csrf_valid(session, form.get("csrf_token")):
            raise CsrfTokenInvalid()
        await self._call(self._services.sessions.close, request.cookies.get(COOKIE))
        response = RedirectResponse(_path(request, ""), status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    async def submit_form(self, request: Request) -> Response:
        session = await self._session(request)
        accepting = await self._call(self._services.submissions.accepting)
        if not accepting:
            raise NotAcceptingSubmissions()
        return self._render(
            request,
            "submit.html",
            session,
            title="Send a message or documents",
            max_message_chars=self._settings.max_message_chars,
            max_upload=human_size(self._settings.max_upload_bytes),
        )

    async def submitted(self, request: Request) -> Response:
        session = await self._session(request)
        return self._render(request, "submitted.html", session, title="Received", day=None)

    async def submit(self, request: Request) -> Response:
        session = await self._session(request)
        limit = self._settings.max_upload_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            # Refuse before reading a byte: nothing is staged at all.
            raise UploadTooLarge(limit)
        boundary = boundary_of(request.headers.get("content-type", ""))
        # Checked before the body is read, so a refused submission costs no encryption work.
        intake = await self._call(self._services.submissions.intake, session.source_id)
        body = request.stream().__aiter__()

        def next_chunk() -> bytes:
            try:
                return anyio.from_thread.run(_next, body)
            except ClientDisconnect:
                raise ClientDisconnected() from None

        def receive() -> Receipt:
            read = BodyLimit(next_chunk, limit)
            reader = MultipartReader(read, boundary)
            checked = False
            with intake:
                for index, part in enumerate(reader.parts()):
                    if index == 0:
                        # The token is the form's first field, so a forged post is refused before
                        # any of its body is encrypted or staged.
                        token = part.read_small(256).decode("ascii", "replace")
                        if part.name != "csrf_token" or not SessionService.csrf_valid(
                            session, token
                        ):
                            raise CsrfTokenInvalid()
                        checked = True
                    elif part.name == "message" and part.filename is None:
                        intake.add_message(part)
                    elif part.name == "files" and part.filename:
                        intake.add_file(part.filename, part.content_type, part)
                    # Anything else (an empty file input, unknown fields) is skipped unread.
                if not checked:
                    raise CsrfTokenInvalid()
                while read():
                    pass  # the epilogue after the closing boundary, within the same limit
                return intake.commit()

        await anyio.to_thread.run_sync(receive, limiter=self._upload_slots)
        return RedirectResponse(_path(request, "submitted"), status_code=303)


async def _next(body: AsyncIterator[bytes]) -> bytes:
    try:
        return await body.__anext__()
    except StopAsyncIteration:
        return b""


def _path(request: Request, page: str) -> str:
    """A same-site path for a redirect; never built from the Host header, which the client sets."""
    return f"{request.scope.get('root_path', '')}/{page}"
