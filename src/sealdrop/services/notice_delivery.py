"""Delivering one notice: by e-mail through the instance's SMTP relay (aiosmtplib), or to an
Apprise URL (ntfy, Matrix, Signal REST, a JSON webhook, …). No protocol is written here.

What the connection itself reveals is deliberately small:

- SMTP: ``smtp://`` must upgrade with STARTTLS before anything else is sent (aiosmtplib raises
  when the relay does not offer it, so a password or a notice never crosses in the clear);
  ``smtps://`` is TLS from the start. The relay's certificate and host name are verified. The
  EHLO name is "localhost", not the machine's name (which could say where the drop runs).
- The message's Date header is the scheduled time, not the moment it was sent (retries keep it),
  and its Message-ID is random: Python's ``make_msgid`` would put the sending time and the
  process id in it. What the relay adds (a Received header with its own time and the server's
  address) is outside Sealdrop's control; docs/operator.md says so.
- Failures raise ``DeliveryFailed`` with a fixed reason: the relay's answer can quote the
  address, and an Apprise URL can hold a token, so neither appears in the error or in a log.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import secrets
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import unquote, urlsplit

from sealdrop.config import Secret
from sealdrop.errors import ConfigError, DeliveryFailed, NotDeliverable
from sealdrop.services.notice_text import Notice

SMTP_TIMEOUT_SECONDS = 30.0
Channel = Literal["email", "apprise"]


@dataclass(frozen=True, slots=True)
class Outgoing:
    channel: Channel
    address: str  # never logged
    notice: Notice
    date: float  # the scheduled time the notice belongs to (epoch seconds)


class Deliverer(Protocol):
    async def deliver(self, outgoing: Outgoing) -> None:
        """Deliver or raise DeliveryFailed."""
        ...


@dataclass(frozen=True, slots=True)
class SmtpRelay:
    url: str  # smtp://[user@]host[:port] or smtps://…, checked by the setting's kind
    sender: str
    password: Secret | None = None
    ca_file: Path | None = None

    def tls_context(self) -> ssl.SSLContext:
        # Verification on, host name checked; only the trusted authorities may change.
        try:
            return ssl.create_default_context(
                cafile=str(self.ca_file) if self.ca_file is not None else None
            )
        except (OSError, ssl.SSLError):
            raise ConfigError(
                "[notifications] ca_file cannot be read as PEM certificates"
            ) from None


def quiet_apprise() -> None:
    """Apprise logs the URLs it parses and notifies (tokens, addresses): none of it may reach
    the server's log."""
    logging.getLogger("apprise").disabled = True


# aiosmtplib and Apprise are imported where a notice is sent or an address checked, not with this
# module: every server and command composes a Delivery, few send anything, and the two cost
# ~0.14 s of start-up (Apprise loads its plugin catalogue) in every process.


def apprise_url_ok(url: str) -> bool:
    """Whether Apprise can use this URL (without contacting anything)."""
    import apprise

    quiet_apprise()
    try:
        return apprise.Apprise.instantiate(url) is not None
    except Exception:
        # Any failure to parse means "cannot use": refused, never stored.
        return False


def message(outgoing: Outgoing, sender: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = outgoing.address
    msg["Subject"] = outgoing.notice.subject
    msg["Date"] = email.utils.formatdate(outgoing.date, usegmt=True)
    domain = sender.rpartition("@")[2] or "localhost"
    msg["Message-ID"] = f"<{secrets.token_hex(16)}@{domain}>"
    msg.set_content(outgoing.notice.body)
    return msg


class Delivery:
    """The server's Deliverer: e-mail through ``relay`` (None: e-mail notices fail), Apprise
    for URLs when ``allow_urls`` (the operator's ``[notifications] allow_urls``): a URL makes the
    server connect to the host it names, which learns the server's IP address."""

    def __init__(self, relay: SmtpRelay | None, *, allow_urls: bool) -> None:
        self._relay = relay
        self._allow_urls = allow_urls
        self._tls = relay.tls_context() if relay is not None else None
        quiet_apprise()

    async def deliver(self, outgoing: Outgoing) -> None:
        if outgoing.channel == "email":
            await self._email(outgoing)
        else:
            await self._apprise(outgoing)

    async def _email(self, outgoing: Outgoing) -> None:
        relay = self._relay
        if relay is None:
            raise NotDeliverable("no mail relay is configured ([notifications] smtp_url)")
        parts = urlsplit(relay.url)
        implicit = parts.scheme == "smtps"
        username = unquote(parts.username) if parts.username else None
        password = relay.password.reveal().decode("utf-8") if relay.password else None
        if username is not None and password is None:
            raise NotDeliverable("the mail relay needs a password (secrets.toml smtp_password)")
        import aiosmtplib

        try:
            await aiosmtplib.send(
                message(outgoing, relay.sender),
                hostname=parts.hostname,
                port=parts.port or (465 if implicit else 587),
                username=username,
                password=password,
                use_tls=implicit,
                # Required, not opportunistic: a relay that does not upgrade gets nothing.
                start_tls=not implicit,
                tls_context=self._tls,
                local_hostname="localhost",
                timeout=SMTP_TIMEOUT_SECONDS,
            )
        except (TimeoutError, aiosmtplib.SMTPException, OSError, ValueError) as exc:
            # The class name only: the relay's text may quote the recipient.
            raise DeliveryFailed(
                f"the mail relay refused or failed ({type(exc).__name__})"
            ) from None

    async def _apprise(self, outgoing: Outgoing) -> None:
        if not self._allow_urls:
            # A URL stored while the operator allowed them: no connection to it now.
            raise NotDeliverable("notices to URLs are off ([notifications] allow_urls)")

        import apprise

        def send() -> bool:
            notifier = apprise.Apprise()
            if not notifier.add(outgoing.address):
                return False
            return bool(notifier.notify(title=outgoing.notice.subject, body=outgoing.notice.body))

        try:
            delivered = await asyncio.to_thread(send)
        except Exception as exc:
            # A plugin's own failure is a failed delivery (retried), not the sender's end.
            raise DeliveryFailed(
                f"the Apprise notification failed ({type(exc).__name__})"
            ) from None
        if not delivered:
            raise DeliveryFailed("the Apprise notification was not delivered")
