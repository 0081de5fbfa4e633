"""The one table that maps Sealdrop errors to what a source sees.

Messages are fixed strings: an error page never repeats what the client sent (a codename, a file
name, a message) so nothing sensitive can be reflected into a page or a log.
"""

from __future__ import annotations

from dataclasses import dataclass

from sealdrop.errors import (
    ClientDisconnected,
    CsrfTokenInvalid,
    DatabaseUnavailable,
    EmptySubmission,
    InputError,
    InvalidCodename,
    MalformedUpload,
    MessageTooLong,
    NotAcceptingSubmissions,
    SealdropError,
    SessionRequired,
    StorageError,
    StorageFull,
    UploadTooLarge,
)


@dataclass(frozen=True, slots=True)
class ErrorPage:
    status: int
    title: str
    message: str
    link: tuple[str, str] | None = None


def human_size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:.4g} {unit}"
        n /= 1024  # type: ignore[assignment]
    raise AssertionError


_START = ("", "Back to the start")
_RETRY = ("submit", "Back to the form")


def page_for(error: SealdropError) -> ErrorPage:
    """The page for an error; the most specific class wins."""
    match error:
        case UploadTooLarge(limit=limit):
            return ErrorPage(
                413,
                "Too large",
                f"What you tried to send is larger than {human_size(limit)}, the most this site "
                "accepts at once. Nothing was stored. Send fewer or smaller files at a time.",
                _RETRY,
            )
        case MessageTooLong(limit=limit):
            return ErrorPage(
                400,
                "Message too long",
                f"Messages can be up to {limit:,} characters. Nothing was stored. "
                "Split your message into parts and send them one after the other.",
                _RETRY,
            )
        case EmptySubmission():
            return ErrorPage(
                400, "Nothing to send", "Write a message or choose a file to send.", _RETRY
            )
        case MalformedUpload():
            return ErrorPage(
                400,
                "Could not read the upload",
                "The upload was incomplete or damaged, so nothing was stored. Please try again.",
                _RETRY,
            )
        case CsrfTokenInvalid():
            return ErrorPage(
                400,
                "Form expired",
                "This form is no longer valid, so nothing was stored. Open the page again and "
                "resend.",
                _START,
            )
        case InvalidCodename():
            return ErrorPage(400, "Codename not recognised", "That codename was not recognised.")
        case InputError():
            return ErrorPage(400, "Bad request", "The request could not be understood.", _START)
        case NotAcceptingSubmissions():
            return ErrorPage(
                503,
                "Not accepting submissions right now",
                "This site is not accepting submissions at the moment. Nothing was stored. "
                "Please try again later.",
                _START,
            )
        case SessionRequired(expired=True):
            return ErrorPage(
                403,
                "Session expired",
                "You were logged out after a period without activity. Nothing you sent before is "
                "lost. Log in again with your codename.",
                ("login", "Log in"),
            )
        case SessionRequired():
            return ErrorPage(
                403,
                "Not logged in",
                "Start a new conversation, or log in with your codename.",
                _START,
            )
        case StorageFull() | DatabaseUnavailable():
            return ErrorPage(
                503,
                "Temporarily unavailable",
                "This site cannot store anything right now. Nothing was stored. "
                "Please try again later.",
                _START,
            )
        case StorageError():
            return ErrorPage(503, "Temporarily unavailable", "Please try again later.", _START)
        case ClientDisconnected():
            return ErrorPage(400, "Connection closed", "The connection closed early.")
    return SERVER_ERROR


SERVER_ERROR = ErrorPage(
    500,
    "Something went wrong",
    "An error occurred on this site. If you were sending something, it was not stored; "
    "please try again.",
    _START,
)
HTTP_PAGES = {
    400: ErrorPage(400, "Bad request", "The request could not be understood.", _START),
    403: ErrorPage(403, "Forbidden", "This page is not available to you.", _START),
    404: ErrorPage(404, "Page not found", "There is no page at this address.", _START),
    405: ErrorPage(405, "Not allowed", "This page cannot be used that way.", _START),
}
