"""Where each account's notices go: set by the operator (``sealdrop user notify``), by the account
itself or by an admin (the API). What is sent, and when, is ``notifier``'s business.

Addresses and URLs are checked before they are stored, and errors never repeat them: an Apprise
URL may hold a token (ntfy, Matrix, a webhook's secret path), and an error message ends up in
API answers, terminals and logs. Turning notices off deletes the row: no address is kept for an
account that gets nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.errors import HeaderParseError, MessageError
from email.headerregistry import Address
from typing import Literal
from urllib.parse import urlsplit

from sealdrop.errors import InputError, NotFound
from sealdrop.ids import UserId, is_id
from sealdrop.services.audit import AuditTrail
from sealdrop.services.notice_delivery import apprise_url_ok
from sealdrop.services.notice_text import LANGUAGES
from sealdrop.storage.interfaces import Database

MAX_EMAIL_CHARS = 254  # RFC 5321's limit on a path
MAX_URL_CHARS = 2000
Channel = Literal["email", "apprise", "off"]


@dataclass(frozen=True, slots=True)
class NotificationView:
    """What the API and the CLI show: the address of an e-mail target, but of an Apprise URL only
    its scheme (the rest may be a token the account holder alone should see once)."""

    channel: Channel
    email: str | None
    url_scheme: str | None
    language: str


def valid_email(address: str) -> str:
    address = address.strip()
    if not address or len(address) > MAX_EMAIL_CHARS or not address.isprintable():
        raise InputError("not a usable e-mail address")
    try:
        parsed = Address(addr_spec=address)
    except (ValueError, IndexError, HeaderParseError, MessageError):
        raise InputError("not a usable e-mail address") from None
    if not parsed.username or "." not in parsed.domain or parsed.addr_spec != address:
        raise InputError("not a usable e-mail address")
    return address


def valid_apprise_url(url: str) -> str:
    url = url.strip()
    if not url or len(url) > MAX_URL_CHARS or not url.isprintable() or not apprise_url_ok(url):
        # Never the URL itself: it may carry a token.
        raise InputError("not a notification URL Apprise can use (see https://appriseit.com)")
    return url


def valid_language(language: str) -> str:
    if language not in LANGUAGES:
        raise InputError(f"the language must be one of {', '.join(LANGUAGES)}")
    return language


class NotificationService:
    def __init__(
        self, database: Database, audit: AuditTrail, default_language: str, *, allow_urls: bool
    ) -> None:
        self._db = database
        self._audit = audit
        self._default_language = default_language
        # Off unless the operator turns it on: an Apprise URL makes the server connect to the
        # host it names, so any account could learn the server's IP address (design.md R32).
        self._allow_urls = allow_urls

    def get(self, user_id: UserId) -> NotificationView:
        with self._db.transaction(read_only=True) as repos:
            if not is_id(user_id) or repos.users.get(user_id) is None:
                raise NotFound("no such user")
            target = repos.notifications.get(user_id)
        if target is None:
            return NotificationView("off", None, None, self._default_language)
        if target.channel == "email":
            return NotificationView("email", target.address, None, target.language)
        return NotificationView("apprise", None, urlsplit(target.address).scheme, target.language)

    def set(
        self,
        user_id: UserId,
        channel: Channel,
        actor: str,
        address: str | None = None,
        language: str | None = None,
    ) -> NotificationView:
        """Send the account's notices by e-mail to ``address``, to the Apprise URL ``address``,
        or (``off``) not at all. ``language``: None keeps the account's (or the instance's)."""
        if channel == "email":
            checked = valid_email(address or "")
        elif channel == "apprise":
            if not self._allow_urls:
                raise InputError(
                    "notices to URLs are off on this instance: the operator turns them on with "
                    "[notifications] allow_urls = true"
                )
            checked = valid_apprise_url(address or "")
        elif address:
            raise InputError("no address goes with notices off")
        if language is not None:
            valid_language(language)
        with self._db.transaction() as repos:
            if not is_id(user_id) or repos.users.get(user_id) is None:
                raise NotFound("no such user")
            current = repos.notifications.get(user_id)
            if channel == "off":
                repos.notifications.remove(user_id)
            else:
                kept = current.language if current is not None else self._default_language
                repos.notifications.set(user_id, channel, checked, language or kept)
            # Which channel, never the address.
            self._audit.record(repos, actor, f"notifications.{channel}", None)
        return self.get(user_id)
