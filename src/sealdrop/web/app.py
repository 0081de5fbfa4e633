"""The ASGI application of the source interface, built from already-constructed services."""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from sealdrop.errors import SealdropError, StorageError, TooManyRequests, UploadTooLarge
from sealdrop.services.container import Services
from sealdrop.services.monitoring import IntakeTally
from sealdrop.web.body_cap import CapBodies
from sealdrop.web.errors import HTTP_PAGES, SERVER_ERROR, ErrorPage, page_for
from sealdrop.web.fetch_metadata import RefuseCrossSitePosts
from sealdrop.web.headers import SOURCE_HEADERS, ClearnetHeaders, SecurityHeaders
from sealdrop.web.health import Health
from sealdrop.web.i18n import LanguagePicker
from sealdrop.web.onion import circuit_of
from sealdrop.web.refusals import RefusalLog
from sealdrop.web.source.routes import Redirect, SourceInterface, see_other
from sealdrop.web.templating import Templates

log = logging.getLogger("sealdrop.web")


class ContainErrors:
    """Outermost layer: Starlette re-raises an unhandled exception after it has sent the 500 page;
    stop it here so that the server never logs a traceback (its text could hold request data)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._app(scope, receive, send)
        except Exception as exc:
            log.error("unhandled %s", type(exc).__name__)


def create_source_app(
    services: Services,
    onion_address: Callable[[], str | None] = lambda: None,
    tally: IntakeTally | None = None,
    refusals: RefusalLog | None = None,
) -> ASGIApp:
    """The source interface. One app serves both listeners: requests from the onion socket
    (``sealdrop.web.onion.onion_listener``) are limited per Tor circuit; the others, when the
    TCP listener is published at ``public_url``, carry HSTS and, once ``onion_address()`` (the
    source onion, which tor creates after the app is built) returns one, Onion-Location.
    ``tally``: where submissions are counted for the metrics; ``refusals``: where refused
    requests are logged (the caller flushes it when it stops serving)."""
    refused = refusals if refusals is not None else RefusalLog(log)
    templates = Templates("sealdrop.web.source", services.settings.organisation_name)
    interface = SourceInterface(services, templates, tally)

    def error_response(request: Request, page: ErrorPage) -> Response:
        return templates.render(
            request,
            "error.html",
            status=page.status,
            title=page.title,
            message_msgid=page.message,
            params={k: templates.format_param(request, k, v) for k, v in page.params.items()},
            link=page.link,
            headers=page.headers,
        )

    async def on_redirect(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Redirect)
        return see_other(request, exc.page)

    async def on_sealdrop_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SealdropError)
        # Only the class name is logged: an error's text could one day carry user input. A
        # storage fault (a full disk, the database down or locked) is for the operator to fix,
        # and no source can report it: a warning, each time. The rest, the first of a kind at
        # once and then a count a minute (web/refusals.py).
        if isinstance(exc, StorageError):
            log.warning("request refused: %s", type(exc).__name__)
        else:
            refused.refused(type(exc).__name__)
        return error_response(request, page_for(exc))

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        page = HTTP_PAGES.get(exc.status_code, HTTP_PAGES[400])
        response = error_response(request, page)
        if exc.headers and "allow" in {k.lower() for k in exc.headers}:
            response.headers["allow"] = {k.lower(): v for k, v in exc.headers.items()}["allow"]
        return response

    async def on_server_error(request: Request, exc: Exception) -> Response:
        # Logged once, by ContainErrors, when Starlette re-raises it.
        return error_response(request, SERVER_ERROR)

    app = Starlette(
        routes=interface.routes(),
        exception_handlers={
            Redirect: on_redirect,
            SealdropError: on_sealdrop_error,
            HTTPException: on_http_error,
            Exception: on_server_error,
        },
    )

    # A trailing-slash redirect would be built from the client's Host header.
    app.router.redirect_slashes = False

    async def refuse_cross_site(scope: Scope, receive: Receive, send: Send) -> None:
        page = HTTP_PAGES[403]
        response = error_response(Request(scope), page)
        await response(scope, receive, send)

    cap = services.settings.max_form_bytes

    async def refuse_large_body(scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(Request(scope), page_for(UploadTooLarge(cap)))
        await response(scope, receive, send)

    capped = CapBodies(
        app, cap, {("POST", "/submit")}, refuse_large_body, (("PATCH", "/uploads/"),)
    )
    pages = frozenset(
        route.path
        for route in app.routes
        if isinstance(route, Route) and "GET" in (route.methods or ()) and "{" not in route.path
    )
    # The health answer is inside the circuit limit and the security headers, before any page
    # work (web/health.py).
    guarded = Health(
        RefuseCrossSitePosts(LanguagePicker(capped, pages), refuse_cross_site),
        services.readiness.ready,
    )

    async def limit_circuits(scope: Scope, receive: Receive, send: Send) -> None:
        # First of all, before any routing or page work: a flooding circuit costs us one bucket
        # lookup and a small error page. Not logged: a flood would fill the log.
        circuit = circuit_of(scope)
        if circuit is not None:
            try:
                services.circuits.charge(circuit.reveal())
            except TooManyRequests as exc:
                response = error_response(Request(scope), page_for(exc))
                await response(scope, receive, send)
                return
        await guarded(scope, receive, send)

    served: ASGIApp = limit_circuits
    if services.settings.public_url:
        served = ClearnetHeaders(served, lambda scope: circuit_of(scope) is not None, onion_address)
    # Headers outside Starlette's own error layer, so that 500 pages carry them too.
    return ContainErrors(SecurityHeaders(served, SOURCE_HEADERS))
