"""Every API error is JSON: {"error": {"code": stable code, "message": human text}}.

One table maps Sealdrop's errors to status and code; messages never echo request data.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from sealdrop.errors import (
    AuthenticationFailed,
    ClientDisconnected,
    Conflict,
    DatabaseUnavailable,
    InputError,
    InvalidAssignee,
    InvalidKeyError,
    InvalidLabels,
    InvalidReply,
    NotFound,
    PermissionDenied,
    SealdropError,
    StorageError,
    TooManyRequests,
    UploadTooLarge,
    WrongKeyKind,
)
from sealdrop.web.connections import BUSY_RETRY_AFTER_SECONDS

log = logging.getLogger("sealdrop.web")

_TABLE: list[tuple[type[SealdropError], int, str]] = [
    (AuthenticationFailed, 401, "unauthenticated"),
    (PermissionDenied, 403, "forbidden"),
    (NotFound, 404, "not_found"),
    (Conflict, 409, "conflict"),
    (UploadTooLarge, 413, "payload_too_large"),
    (InvalidReply, 400, "invalid_reply"),
    (InvalidKeyError, 400, "invalid_key"),
    # 422, not 400: the request is well formed, but names what cannot be used.
    (InvalidAssignee, 422, "invalid_assignee"),
    (InvalidLabels, 422, "invalid_labels"),
    (WrongKeyKind, 422, "wrong_key_kind"),
    (InputError, 400, "invalid_request"),
    (TooManyRequests, 429, "rate_limited"),
    (DatabaseUnavailable, 503, "unavailable"),
    (StorageError, 503, "unavailable"),
    (ClientDisconnected, 400, "invalid_request"),
]


def error_json(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


async def busy(scope: Scope, receive: Receive, send: Send) -> None:
    """The answer to a connection beyond an API listener's cap (``web/connections.py``), given
    below the app: the API's own 503, so that a client reads it like any other error; the
    connection closes after it."""
    response = error_json(
        503,
        "unavailable",
        "The server is busy. Try again in a minute.",
        headers={
            "Retry-After": str(BUSY_RETRY_AFTER_SECONDS),
            "Connection": "close",
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
    await response(scope, receive, send)


def for_error(exc: SealdropError) -> JSONResponse:
    for cls, status, code in _TABLE:
        if isinstance(exc, cls):
            headers: dict[str, str] = {}
            if status == 401:
                headers["www-authenticate"] = "Bearer"
            if isinstance(exc, TooManyRequests):
                headers["retry-after"] = str(exc.retry_after)
            # Our errors' texts are fixed strings written for people; none carries input.
            return error_json(status, code, str(exc) or code, headers)
    return error_json(500, "internal", "internal error")


async def on_sealdrop_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SealdropError)
    if isinstance(exc, StorageError):
        # A full disk or an unreachable database is the operator's to fix (class name only).
        log.warning("API request refused: %s", type(exc).__name__)
    return for_error(exc)


async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Say where the problem is, never what was sent: an unknown field's name is the client's
    # own text, so it is reported by its parent ("body: unknown field").
    places = sorted(
        ".".join(str(p) for p in e.get("loc", ())[:-1]) + ": unknown field"
        if e.get("type") == "extra_forbidden"
        else ".".join(str(p) for p in e.get("loc", ()))
        for e in exc.errors()
    )
    places = list(dict.fromkeys(places))
    return error_json(400, "invalid_request", "invalid or missing: " + ", ".join(places[:10]))


async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    codes: dict[int, Any] = {
        404: ("not_found", "no such endpoint"),
        405: ("method_not_allowed", "method not allowed here"),
        401: ("unauthenticated", "authentication required"),
        403: ("forbidden", "not allowed"),
    }
    code, message = codes.get(exc.status_code, ("invalid_request", "bad request"))
    return error_json(exc.status_code, code, message, dict(exc.headers or {}))


async def on_server_error(request: Request, exc: Exception) -> JSONResponse:
    return error_json(500, "internal", "internal error")
