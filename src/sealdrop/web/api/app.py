"""The journalist API application: FastAPI on its own listener (invariant 8).

It serves only /api/v1 (no source page); the source application serves no API route. Every
response is JSON or ciphertext, with no-store caching and a CSP that forbids everything, since
nothing here is meant to be rendered by a browser.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sealdrop.errors import SealdropError
from sealdrop.services.container import Services
from sealdrop.web.api import errors
from sealdrop.web.api.routes import build_router
from sealdrop.web.app import ContainErrors
from sealdrop.web.headers import SecurityHeaders
from sealdrop.web.health import Health

API_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
# JSON bodies are small; a reply (an age file) may be up to [replies] max_bytes.
MAX_JSON_BYTES = 64 * 1024
REPLY_OVERHEAD = 1024


class LimitBodies:
    """Refuse request bodies over the limit with 413 JSON, before the app sees them.

    The body is read here (it is at most the limit, so memory stays bounded) and replayed to the
    application; a declared Content-Length over the limit is refused without reading.
    """

    def __init__(self, app: ASGIApp, json_limit: int, reply_limit: int) -> None:
        self._app = app
        self._json_limit = json_limit
        self._reply_limit = reply_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self._app(scope, receive, send)
            return
        is_reply = scope["path"].endswith("/replies")
        limit = self._reply_limit if is_reply else self._json_limit
        for name, value in scope["headers"]:
            if name == b"content-length" and (
                not value.isdigit() or len(value) > 18 or int(value) > limit
            ):
                await errors.error_json(413, "payload_too_large", f"body over {limit} bytes")(
                    scope, receive, send
                )
                return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limit:
                await errors.error_json(413, "payload_too_large", f"body over {limit} bytes")(
                    scope, receive, send
                )
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self._app(scope, replay, send)


def create_api_app(services: Services) -> ASGIApp:
    app = FastAPI(
        title="Sealdrop journalist API",
        version="1",
        description=(
            "Journalists' access to a Sealdrop instance. Everything returned is ciphertext or "
            "metadata; decryption happens on the journalist's own machine."
        ),
        openapi_url="/api/v1/openapi.json",
        docs_url=None,
        redoc_url=None,
        # A trailing-slash redirect would be built from the client's Host header.
        redirect_slashes=False,
    )
    app.include_router(build_router(services))

    def openapi() -> dict[str, Any]:
        """FastAPI documents a 422 for validation errors; this API answers 400 (see errors.py),
        so the document must say so, or clients and schemathesis are misled. (The 422 that
        triage's routes declare themselves, with the API's error body, stays.)"""
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            for path in document.get("paths", {}).values():
                for operation in path.values():
                    responses = operation.get("responses", {})
                    if _is_validation_error(responses.get("422")):
                        responses.pop("422")
            schemas = document.get("components", {}).get("schemas", {})
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_exception_handler(SealdropError, errors.on_sealdrop_error)
    app.add_exception_handler(RequestValidationError, errors.on_validation_error)
    app.add_exception_handler(HTTPException, errors.on_http_error)
    app.add_exception_handler(Exception, errors.on_server_error)
    limited = LimitBodies(app, MAX_JSON_BYTES, services.settings.max_reply_bytes + REPLY_OVERHEAD)
    return ContainErrors(SecurityHeaders(Health(limited, services.readiness.ready), API_HEADERS))


def _is_validation_error(response: Any) -> bool:
    """Whether a documented response is FastAPI's default 422 (its HTTPValidationError body)."""
    if not isinstance(response, dict):
        return False
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return str(schema.get("$ref", "")).endswith("/HTTPValidationError")
