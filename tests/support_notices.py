"""Real receivers for notices to journalists (tests/ is on the path through its conftest.py):

- ``SmtpServer``: an aiosmtpd server on loopback, with STARTTLS (a self-signed certificate made
  here with ``cryptography``) and AUTH required after it, recording every message, every AUTH
  attempt and whether the connection had upgraded; or, with ``tls=False``, one that offers no
  STARTTLS at all (to check that nothing is sent to it).
- ``JsonReceiver``: an HTTP server on loopback for Apprise's ``json://`` URLs, recording every
  body; it can answer 500 to its first requests (a failed delivery).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
import warnings
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sealdrop.testing import free_port

SMTP_USER = "sealdrop"
SMTP_PASSWORD = "relay-passphrase-123"


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (and localhost) and its key, as PEM files in ``directory``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test relay")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "relay-cert.pem", directory / "relay-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class Received:
    recipients: list[str]
    message: Message
    raw: bytes
    tls: bool


@dataclass
class _Record:
    messages: list[Received] = field(default_factory=list)
    logins: list[tuple[str, bool]] = field(default_factory=list)  # (user, over TLS)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler:
    def __init__(self, record: _Record) -> None:
        self._record = record

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        raw = envelope.original_content or b""
        with self._record.lock:
            self._record.messages.append(
                Received(
                    [str(r) for r in envelope.rcpt_tos],
                    message_from_bytes(raw),
                    raw,
                    session.ssl is not None,
                )
            )
        return "250 OK"


class _QuietController(Controller):
    def factory(self) -> SMTP:
        with warnings.catch_warnings():
            # Without TLS, aiosmtpd warns (per connection, in its thread) that AUTH may then
            # cross in the clear: that is the careless relay this server stands for. The test
            # run turns warnings into errors, which would end each connection unanswered.
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            # aiosmtpd's Controller.factory carries no annotations.
            return cast(SMTP, super().factory())  # type: ignore[no-untyped-call]


class SmtpServer:
    """aiosmtpd on 127.0.0.1; ``url`` is what [notifications] smtp_url should be."""

    def server_settings(self, interval: int) -> dict[str, str]:
        """`sealdrop serve` settings that send notices through this relay every ``interval``
        seconds (password and CA as an operator gives them)."""
        return {
            "notifications_interval_seconds": str(interval),
            "notifications_smtp_url": self.url,
            "notifications_smtp_password": SMTP_PASSWORD,
            "notifications_ca_file": str(self.cert),
            "notifications_from": "drop@example.org",
        }

    def __init__(self, directory: Path, *, tls: bool = True) -> None:
        self.record = _Record()
        self.port = free_port()
        self.cert, key = self_signed(directory)
        record = self.record

        def authenticate(
            server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
        ) -> AuthResult:
            assert isinstance(data, LoginPassword)
            user = data.login.decode()
            with record.lock:
                record.logins.append((user, session.ssl is not None))
            ok = user == SMTP_USER and data.password.decode() == SMTP_PASSWORD
            return AuthResult(success=ok)

        options: dict[str, Any] = {}
        if tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.cert, key)
            options = {"tls_context": context, "require_starttls": True}
        self._controller = _QuietController(
            _Handler(record),
            hostname="127.0.0.1",
            port=self.port,
            authenticator=authenticate,
            auth_required=True,
            # Without TLS there is no STARTTLS to require; AUTH is then offered in the clear, so
            # that a client willing to send a password without TLS would be seen doing it.
            auth_require_tls=tls,
            **options,
        )
        self.url = f"smtp://{SMTP_USER}@127.0.0.1:{self.port}"

    @property
    def messages(self) -> list[Received]:
        with self.record.lock:
            return list(self.record.messages)

    @property
    def logins(self) -> list[tuple[str, bool]]:
        with self.record.lock:
            return list(self.record.logins)

    def __enter__(self) -> SmtpServer:
        self._controller.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._controller.stop()


class JsonReceiver:
    """An HTTP server on 127.0.0.1 recording the JSON bodies POSTed to it."""

    def __init__(self, failures: int = 0) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.failures_left = failures
        self.attempts = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                receiver.attempts += 1
                if receiver.failures_left > 0:
                    receiver.failures_left -= 1
                    self.send_response(500)
                else:
                    receiver.bodies.append(json.loads(body))
                    receiver.headers.append(dict(self.headers))
                    self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.url = f"json://127.0.0.1:{self.port}/notify/secret-token-42"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> JsonReceiver:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
