"""Handlers of the source interface.

Every service call blocks (database, Argon2id, disk), so each runs in a worker thread; uploads run
in a pool of their own so that slow uploads never starve page views.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar, cast
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
    UploadTooLarge,
)
from sealdrop.services.container import Services
from sealdrop.services.monitoring import IntakeTally
from sealdrop.services.replies import ShownReply
from sealdrop.services.sessions import SessionService, SourceSession
from sealdrop.services.submissions import SourceOverview, SubmissionIntake
from sealdrop.web import form_tokens
from sealdrop.web.i18n import N_
from sealdrop.web.multipart import BodyLimit, boundary_of
from sealdrop.web.onion import circuit_of
from sealdrop.web.source.tus import TusEndpoint
from sealdrop.web.source.upload import receive_form
from sealdrop.web.templating import Templates

T = TypeVar("T")

COOKIE = "sealdrop_session"
MAX_CONCURRENT_UPLOADS = 32

# How many bytes a submission may have, and the error for a body beyond that.


class SourceInterface:
    def __init__(
        self, services: Services, templates: Templates, tally: IntakeTally | None = None
    ) -> None:
        self._services = services
        self._tally = tally or IntakeTally()  # what the metrics count (services/monitoring.py)
        self._templates = templates
        self._settings = services.settings
        self._upload_slots = anyio.CapacityLimiter(MAX_CONCURRENT_UPLOADS)
        # Resumable uploads share the form's upload slots.
        self._tus = TusEndpoint(services.resumable, self._session, self._upload_slots)

    def routes(self) -> list[Route]:
        return [
            Route("/", self.index, methods=["GET"]),
            Route("/start", self.start, methods=["POST"]),
            Route("/confirm", self.confirm_form, methods=["GET"]),
            Route("/confirm", self.confirm, methods=["POST"]),
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/conversation", self.conversation, methods=["GET"]),
            Route("/submit", self.submit, methods=["POST"]),
            Route("/submitted", self.submitted, methods=["GET"]),
            Route("/replies/{reply_id}/delete", self.delete_reply, methods=["POST"]),
            *self._tus.routes(),
        ]

    # -- helpers -------------------------------------------------------------------------------

    async def _call(self, func: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(functools.partial(func, *args))

    async def _session(self, request: Request, *, confirmed: bool = True) -> SourceSession:
        """The request's live session, or SessionRequired. With ``confirmed``, a session whose
        codename has not been typed back yet is sent to the confirmation page first."""
        session, _ = await self._session_reading(request, _read_nothing, confirmed=confirmed)
        return session

    async def _session_reading(
        self, request: Request, read: Callable[[SourceSession], T], *, confirmed: bool = True
    ) -> tuple[SourceSession, T]:
        """The request's live session (as ``_session``) and what ``read`` reads for it, in one
        trip to a worker thread: each trip costs a GIL hand-over both ways, which under load is
        much of what a page waits for."""
        cookie = request.cookies.get(COOKIE)
        services = self._services

        def work() -> tuple[SourceSession, T | None]:
            session = services.sessions.resolve(cookie)
            # Per-session request budget: a script replaying one session's cookie, over any
            # number of circuits, is slowed like a flooding circuit is. Charged once the session
            # is known to exist (made-up cookies must not crowd real sessions out of the table)
            # and before any work for the page.
            services.session_requests.charge(session.id_hash)
            if confirmed and not session.confirmed:
                return session, None
            return session, read(session)

        session, value = await self._call(work)
        if confirmed and not session.confirmed:
            raise Redirect("confirm")
        return session, cast(T, value)

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

    def _render_with_form_token(
        self, request: Request, name: str, status: int = 200, **context: Any
    ) -> Response:
        """A page with a pre-session form: make sure the visitor has a form cookie."""
        value = request.cookies.get(form_tokens.COOKIE)
        fresh = not value or len(value) > 100
        if fresh:
            value = form_tokens.new_cookie_value()
        assert value is not None
        response = self._render(
            request, name, None, status, form_token=form_tokens.token_for(value), **context
        )
        if fresh:
            self._set_cookie(request, response, form_tokens.COOKIE, value)
        return response

    def _secure_cookies(self, request: Request) -> bool:
        """Cookies are Secure over HTTPS. Behind a TLS reverse proxy (``public_url``) Sealdrop
        sees plain HTTP, yet the browser is on HTTPS: mark them Secure there too, so that a
        downgraded http:// request can never carry them. Never on the onion, which is http://
        (a Secure cookie would not be sent back there)."""
        if request.url.scheme == "https":
            return True
        return bool(self._settings.public_url) and circuit_of(request.scope) is None

    def _set_cookie(self, request: Request, response: Response, name: str, value: str) -> None:
        response.set_cookie(
            name,
            value,
            httponly=True,
            samesite="strict",
            secure=self._secure_cookies(request),
            path="/",
        )

    async def _small_form(self, request: Request) -> dict[str, str]:
        """A urlencoded form of at most ``limits.max_form_bytes``; larger bodies are refused."""
        body = await self._small_body(request)
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
        except (UnicodeDecodeError, ValueError):
            pairs = []
        return dict(pairs)

    async def _small_body(self, request: Request) -> bytes:
        """A whole body of at most ``limits.max_form_bytes``; larger bodies are refused."""
        limit = self._settings.max_form_bytes
        body = b""
        try:
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise UploadTooLarge(limit)
        except ClientDisconnect:
            raise ClientDisconnected() from None
        return body

    async def _pre_session_form(self, request: Request) -> tuple[dict[str, str], bytes | None]:
        """The form of a page without a session, once its form token checks out."""
        form = await self._small_form(request)
        cookie = request.cookies.get(form_tokens.COOKIE)
        if not form_tokens.valid(cookie, form.get("form_token")):
            raise CsrfTokenInvalid()
        return form, form_tokens.visitor(cookie)

    async def _session_form(
        self, request: Request, *, confirmed: bool = True
    ) -> tuple[dict[str, str], SourceSession]:
        form = await self._small_form(request)
        session = await self._session(request, confirmed=confirmed)
        if not SessionService.csrf_valid(session, form.get("csrf_token")):
            raise CsrfTokenInvalid()
        return form, session

    # -- pages ---------------------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        return self._render_with_form_token(
            request, "index.html", title=N_("Send information securely")
        )

    async def start(self, request: Request) -> Response:
        await self._pre_session_form(request)
        new = await self._call(self._services.sources.create)
        response = self._render(
            request,
            "codename.html",
            None,
            title=N_("Your codename"),
            codename=new.codename,
            # A language link here would navigate away from the only view of the codename.
            show_languages=False,
        )
        self._set_cookie(request, response, COOKIE, new.session_cookie)
        return response

    async def confirm_form(self, request: Request) -> Response:
        session = await self._session(request, confirmed=False)
        if session.confirmed:
            return see_other(request, "conversation")
        return self._render(request, "confirm.html", session, title=N_("Check your codename"))

    async def confirm(self, request: Request) -> Response:
        form, session = await self._session_form(request, confirmed=False)
        try:
            await self._call(
                self._services.sources.confirm, session, form.get("codename", ""), session.id_hash
            )
        except InvalidCodename:
            return self._render(
                request,
                "confirm.html",
                session,
                status=400,
                title=N_("Check your codename"),
                error=self._templates.gettext(
                    request, N_("That is not the codename shown. Check the seven words.")
                ),
            )
        return see_other(request, "conversation")

    async def login_form(self, request: Request) -> Response:
        return self._render_with_form_token(request, "login.html", title=N_("Log in"))

    async def login(self, request: Request) -> Response:
        form, visitor = await self._pre_session_form(request)
        try:
            cookie = await self._call(
                self._services.sources.login, form.get("codename", ""), visitor
            )
        except InvalidCodename:
            return self._render_with_form_token(
                request,
                "login.html",
                status=400,
                title=N_("Log in"),
                error=self._templates.gettext(
                    request, N_("That codename was not recognised. Check the seven words.")
                ),
            )
        response = see_other(request, "conversation")
        self._set_cookie(request, response, COOKIE, cookie)
        return response

    async def logout(self, request: Request) -> Response:
        await self._session_form(request, confirmed=False)
        await self._call(self._services.sessions.close, request.cookies.get(COOKIE))
        response = self._render(request, "logged_out.html", None, title=N_("You are logged out"))
        # Not delete_cookie(): it writes the server's current time into Expires, a clock
        # fingerprint (the reason the Date header is dropped).
        response.set_cookie(
            COOKIE,
            "",
            max_age=0,
            expires="Thu, 01 Jan 1970 00:00:00 GMT",
            path="/",
            httponly=True,
            samesite="strict",
            secure=self._secure_cookies(request),
        )
        return response

    async def conversation(self, request: Request) -> Response:
        services = self._services

        def read(session: SourceSession) -> tuple[list[ShownReply], SourceOverview]:
            return services.replies.for_session(session), services.submissions.overview(
                session.source_id
            )

        session, (replies, overview) = await self._session_reading(request, read)
        runtime = overview.runtime
        return self._render(
            request,
            "conversation.html",
            session,
            title=N_("Your conversation"),
            replies=replies,
            received=overview.received,
            accepting=overview.accepting,
            files_enabled=runtime.files_enabled,
            max_message_chars=runtime.max_message_chars,
            max_upload=self._templates.format_param(request, "size", runtime.max_upload_bytes),
        )

    async def submitted(self, request: Request) -> Response:
        session = await self._session(request)
        return self._render(request, "submitted.html", session, title=N_("Received"))

    async def delete_reply(self, request: Request) -> Response:
        _, session = await self._session_form(request)
        await self._call(self._services.replies.delete, session, request.path_params["reply_id"])
        return see_other(request, "conversation")

    async def submit(self, request: Request) -> Response:
        with self._tally.counting():
            return await self._receive(request)

    async def _receive(self, request: Request) -> Response:
        services = self._services
        content_type = request.headers.get("content-type", "")
        header = request.headers.get("content-length")
        declared = int(header) if header and header.isascii() and header.isdigit() else None
        # A small body (a message: most submissions) is read whole first, as any form is; then
        # resolving the session, the checks, encrypting and committing take one trip to a worker
        # thread, instead of a trip per chunk of the body. Larger bodies stream. Invariant 1:
        # the plaintext held is at most limits.max_form_bytes (64 KiB), in memory only, less than
        # one read from the socket (256 KiB), and it is dropped once encrypted.
        whole = None
        if declared is not None and declared <= self._settings.max_form_bytes:
            whole = await self._small_body(request)

        def begin(session: SourceSession) -> tuple[SubmissionIntake, bool]:
            # The service decides the limits (upload size, the source's quota) before the body
            # is read, so a refused submission costs no encryption work and stages nothing.
            intake = services.submissions.intake(session.source_id, declared)
            if whole is None:
                return intake, False  # to stream
            with intake:  # ended here, stored or not
                chunks = iter((whole,))
                read = BodyLimit(lambda: next(chunks, b""), intake.limit, intake.too_large)
                receive_form(intake, session, read, boundary_of(content_type))
            return intake, True  # stored

        intake: SubmissionIntake | None = None
        try:
            session, (intake, stored) = await self._session_reading(request, begin)
            if stored:
                return see_other(request, "submitted")
            boundary = boundary_of(content_type)
            body = request.stream().__aiter__()

            def next_chunk() -> bytes:
                try:
                    return anyio.from_thread.run(_next, body)
                except ClientDisconnect:
                    raise ClientDisconnected() from None

            read = BodyLimit(next_chunk, intake.limit, intake.too_large)
            await anyio.to_thread.run_sync(
                functools.partial(receive_form, intake, session, read, boundary),
                limiter=self._upload_slots,
            )
        finally:
            # Whatever happened between the intake's start and its end (a disconnect while
            # waiting for an upload slot, a cancelled request) gives back what it set aside.
            if intake is not None:
                intake.close()
        return see_other(request, "submitted")


async def _next(body: AsyncIterator[bytes]) -> bytes:
    try:
        return await body.__anext__()
    except StopAsyncIteration:
        return b""


def _read_nothing(_session: SourceSession) -> None:
    return None


class Redirect(Exception):
    """Send the browser to another page of the site (handled in ``app``)."""

    def __init__(self, page: str) -> None:
        super().__init__(page)
        self.page = page


def see_other(request: Request, page: str) -> RedirectResponse:
    """A same-site path for a redirect; never built from the Host header, which the client sets."""
    return RedirectResponse(f"{request.scope.get('root_path', '')}/{page}", status_code=303)
