"""The one table that maps Sealdrop errors to what a source sees.

Messages are fixed, translatable strings: an error page never repeats what the client sent (a
codename, a file name, a message), so nothing sensitive can be reflected into a page or a log.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sealdrop.errors import (
    ClientDisconnected,
    CsrfTokenInvalid,
    DatabaseUnavailable,
    DuplicateMessage,
    EmptySubmission,
    FilesNotAccepted,
    InputError,
    InvalidCodename,
    MalformedUpload,
    MessageTooLong,
    NotAcceptingSubmissions,
    NotFound,
    SealdropError,
    SessionRequired,
    StorageError,
    StorageFull,
    TooManyItems,
    TooManyRequests,
    UploadQuotaExceeded,
    UploadTooLarge,
)
from sealdrop.web.i18n import N_


@dataclass(frozen=True, slots=True)
class ErrorPage:
    status: int
    title: str  # msgid
    message: str  # msgid, may hold %(name)s placeholders filled from params
    link: tuple[str, str] | None = None  # (path below the root, msgid of the link text)
    params: dict[str, str | int] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


_START = ("", N_("Back to the start"))
_CONVERSATION = ("conversation", N_("Back to your conversation"))
_LOGIN = ("login", N_("Log in"))


def page_for(error: SealdropError) -> ErrorPage:
    """The page for an error; the most specific class wins."""
    match error:
        case UploadQuotaExceeded(limit=limit, retry_after=seconds):
            return ErrorPage(
                429,
                N_("Daily limit reached"),
                N_(
                    "You have reached the most this site accepts from one codename in 24 hours "
                    "(%(size)s). Nothing from this upload was stored. Please send the rest later."
                ),
                _CONVERSATION,
                {"size": limit},
                {"retry-after": str(seconds)},
            )
        case UploadTooLarge(limit=limit):
            return ErrorPage(
                413,
                N_("Too large"),
                N_(
                    "What you tried to send is larger than %(size)s, the most this site accepts "
                    "at once. Nothing was stored. Send fewer or smaller files at a time."
                ),
                _CONVERSATION,
                {"size": limit},
            )
        case TooManyItems(limit=limit):
            return ErrorPage(
                413,
                N_("Too many files"),
                N_(
                    "One submission can hold at most %(limit)s items: the message and the files "
                    "together. Nothing was stored. Send fewer files at a time."
                ),
                _CONVERSATION,
                {"limit": limit},
            )
        case DuplicateMessage():
            return ErrorPage(
                400,
                N_("More than one message"),
                N_(
                    "The form held more than one message, so nothing was stored. Write "
                    "everything in the one message box and send again."
                ),
                _CONVERSATION,
            )
        case MessageTooLong(limit=limit):
            return ErrorPage(
                400,
                N_("Message too long"),
                N_(
                    "Messages can be up to %(limit)s characters. Nothing was stored. Split your "
                    "message into parts and send them one after the other."
                ),
                _CONVERSATION,
                {"limit": limit},
            )
        case EmptySubmission():
            return ErrorPage(
                400,
                N_("Nothing to send"),
                N_("Write a message or choose a file to send."),
                _CONVERSATION,
            )
        case MalformedUpload():
            return ErrorPage(
                400,
                N_("Could not read the upload"),
                N_(
                    "The upload was incomplete or damaged, so nothing was stored. Please try again."
                ),
                _CONVERSATION,
            )
        case FilesNotAccepted():
            return ErrorPage(
                400,
                N_("Messages only"),
                N_("This site accepts messages only at the moment, not files. Nothing was stored."),
                _CONVERSATION,
            )
        case CsrfTokenInvalid():
            return ErrorPage(
                400,
                N_("Form expired"),
                N_(
                    "This form is no longer valid, so nothing was changed. Open the page again "
                    "and resend. This site needs cookies to be allowed."
                ),
                _START,
            )
        case InvalidCodename():
            return ErrorPage(400, N_("Codename not recognised"), N_("Check the seven words."))
        case TooManyRequests(retry_after=seconds):
            return ErrorPage(
                429,
                N_("Too many attempts"),
                N_("This site is busy or you tried too often. Wait a few minutes and try again."),
                _START,
                {},
                {"retry-after": str(seconds)},
            )
        case NotFound():
            return ErrorPage(
                404, N_("Not found"), N_("There is nothing here, or it was deleted."), _CONVERSATION
            )
        case InputError():
            return ErrorPage(
                400, N_("Bad request"), N_("The request could not be understood."), _START
            )
        case NotAcceptingSubmissions():
            return ErrorPage(
                503,
                N_("Not accepting submissions right now"),
                N_(
                    "This site is not accepting submissions at the moment. Nothing was stored. "
                    "Please try again later."
                ),
                _START,
            )
        case SessionRequired(expired=True):
            return ErrorPage(
                403,
                N_("Session expired"),
                N_(
                    "You were logged out after a period without activity. Nothing you sent "
                    "before is lost. Log in again with your codename."
                ),
                _LOGIN,
            )
        case SessionRequired():
            return ErrorPage(
                403,
                N_("Not logged in"),
                N_("Start a new conversation, or log in with your codename."),
                _START,
            )
        case StorageFull() | DatabaseUnavailable():
            return ErrorPage(
                503,
                N_("Temporarily unavailable"),
                N_(
                    "This site cannot store anything right now. Nothing was stored. "
                    "Please try again later."
                ),
                _START,
            )
        case StorageError():
            return ErrorPage(
                503, N_("Temporarily unavailable"), N_("Please try again later."), _START
            )
        case ClientDisconnected():
            return ErrorPage(400, N_("Connection closed"), N_("The connection closed early."))
    return SERVER_ERROR


SERVER_ERROR = ErrorPage(
    500,
    N_("Something went wrong"),
    N_(
        "An error occurred on this site. If you were sending something, it was not stored; "
        "please try again."
    ),
    _START,
)
HTTP_PAGES = {
    400: ErrorPage(400, N_("Bad request"), N_("The request could not be understood."), _START),
    403: ErrorPage(403, N_("Forbidden"), N_("This page is not available to you."), _START),
    404: ErrorPage(404, N_("Page not found"), N_("There is no page at this address."), _START),
    405: ErrorPage(405, N_("Not allowed"), N_("This page cannot be used that way."), _START),
}
