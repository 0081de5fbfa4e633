"""Split-knowledge source sessions (invariant 4).

The cookie holds a random session id and a random session key. The server stores only
SHA-256(session id) and, sealed under the session key, the source id, the source's session epoch
and its reply identity. So the database alone (a seized server) opens no session, reveals no
reply identity and cannot tell whose session a row is, so the rows' times are no timeline of
any source's visits (invariant 6); the cookie alone (a stolen browser profile after logout or
expiry) finds no row. The codename itself never leaves the request that carried it.

A codename login replaces the source's session epoch (random bytes in the source row); a session
whose sealed epoch is no longer the source's, or whose source is gone, is refused and deleted.
So a login ends the source's other sessions without any row linking them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sealdrop.crypto import sealing
from sealdrop.crypto.keys import HybridIdentity, Identity, parse_identity
from sealdrop.errors import CryptoError, SessionRequired
from sealdrop.ids import SourceId, is_id
from sealdrop.services.clock import Clock
from sealdrop.storage.interfaces import Database, SessionRecord

_ID_BYTES = 32
_KEY_BYTES = 32
_CSRF_LABEL = b"sealdrop/v1/csrf"
_UPLOAD_LABEL = b"sealdrop/v1/resumable-upload-state"


@dataclass(frozen=True, slots=True)
class SourceSession:
    source_id: SourceId
    reply_identity: Identity
    csrf_token: str
    id_hash: bytes
    confirmed: bool  # False between "start" and the source typing the codename back
    # Seals a resumable upload's stream state (services/resumable.py). Derived from the session
    # key, which only the cookie holds, and never stored: the server alone cannot resume, read or
    # re-key an upload. Empty (fails closed) where a session is built without a key.
    upload_key: bytes = b""
    # On a post-quantum instance: the source's hybrid reply identity, for the replies encrypted
    # to its hybrid key (``reply_identity`` still opens those from before the switch).
    hybrid_reply_identity: HybridIdentity | None = None

    @property
    def reply_identities(self) -> list[Identity]:
        """Every identity a reply to this source may be encrypted to."""
        hybrid = [] if self.hybrid_reply_identity is None else [self.hybrid_reply_identity]
        return [self.reply_identity, *hybrid]


# How stale a session's last-seen time may get before a request writes it again.
TOUCH_INTERVAL_SECONDS = 60
# Opening times are stored to the minute: the expiry checks need no more, and a "start"
# session's second would equal its new source's ``pending_since``, pairing the two.
OPENED_GRANULARITY_SECONDS = 60

_SOURCE_ID_CHARS = 32  # ids.new_id(): 32 hex characters
_EPOCH_BYTES = 16  # storage's SESSION_EPOCH_BYTES


def _seal_payload(
    source_id: SourceId, epoch: bytes, identity: Identity, hybrid: HybridIdentity | None
) -> bytes:
    # Fixed lengths, so every sealed value has the same size and none stands out (on a
    # post-quantum instance every new session seals both identities, so they are all alike).
    if len(source_id) != _SOURCE_ID_CHARS or len(epoch) != _EPOCH_BYTES:
        raise ValueError("unexpected source id or session epoch length")
    identities = str(identity) if hybrid is None else f"{identity}\n{hybrid}"
    return source_id.encode("ascii") + epoch + identities.encode("ascii")


def _open_payload(payload: bytes) -> tuple[SourceId, bytes, Identity, HybridIdentity | None]:
    """Raises CryptoError or UnicodeDecodeError if the payload is not one _seal_payload made."""
    source_id = payload[:_SOURCE_ID_CHARS].decode("ascii")
    epoch = payload[_SOURCE_ID_CHARS : _SOURCE_ID_CHARS + _EPOCH_BYTES]
    texts = payload[_SOURCE_ID_CHARS + _EPOCH_BYTES :].decode("ascii").split("\n")
    if not is_id(source_id) or len(epoch) != _EPOCH_BYTES or len(texts) > 2:
        raise CryptoError("malformed session payload")
    identity = parse_identity(texts[0])
    hybrid = None
    if len(texts) == 2:
        parsed = parse_identity(texts[1])
        if not isinstance(parsed, HybridIdentity):
            raise CryptoError("malformed session payload")
        hybrid = parsed
    return SourceId(source_id), epoch, identity, hybrid


def _hash_id(session_id: bytes) -> bytes:
    return hashlib.sha256(session_id).digest()


def _split(cookie_value: str) -> tuple[bytes, bytes]:
    try:
        raw = base64.urlsafe_b64decode(cookie_value.encode("ascii") + b"==")
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise SessionRequired() from None
    if len(raw) != _ID_BYTES + _KEY_BYTES:
        raise SessionRequired()
    return raw[:_ID_BYTES], raw[_ID_BYTES:]


def _upload_key(session_key: bytes) -> bytes:
    # Its own label: independent of the CSRF token, which the page shows.
    return hmac.new(session_key, _UPLOAD_LABEL, hashlib.sha256).digest()


def _csrf_token(session_key: bytes) -> str:
    # Derived from the half only the cookie holds, so no token is stored and none can be forged
    # without the cookie; SameSite=Strict already keeps other sites from sending the cookie.
    return hmac.new(session_key, _CSRF_LABEL, hashlib.sha256).hexdigest()


class SessionService:
    def __init__(
        self, database: Database, clock: Clock, idle_seconds: int, absolute_seconds: int
    ) -> None:
        self._db = database
        self._clock = clock
        self._idle = idle_seconds
        self._absolute = absolute_seconds

    def open(
        self,
        source_id: SourceId,
        reply_identity: Identity,
        *,
        confirmed: bool = True,
        end_others: bool = False,
        hybrid_reply_identity: HybridIdentity | None = None,
    ) -> str:
        """Start a session; return the cookie value (the only copy of the id and key).
        ``hybrid_reply_identity`` (post-quantum instances) is sealed beside ``reply_identity``.

        ``end_others`` (a codename login): first replace the source's session epoch, which ends
        every session opened before. Raises SessionRequired if the source does not exist.
        """
        if end_others:
            # Its own transaction, not the one that inserts the session: on PostgreSQL, rows
            # written in one transaction share a transaction id (xmin), which would link the
            # session row to the source row.
            with self._db.transaction() as repos:
                epoch = repos.sources.renew_session_epoch(source_id)
        else:
            with self._db.transaction(read_only=True) as repos:
                epoch = repos.sources.session_epoch(source_id)
        if epoch is None:
            raise SessionRequired()
        session_id = secrets.token_bytes(_ID_BYTES)
        session_key = sealing.new_session_key()
        id_hash = _hash_id(session_id)
        payload = _seal_payload(source_id, epoch, reply_identity, hybrid_reply_identity)
        sealed = sealing.seal(session_key, payload, id_hash)
        now = int(self._clock.now())
        opened = now - now % OPENED_GRANULARITY_SECONDS
        with self._db.transaction() as repos:
            repos.sessions.add(SessionRecord(id_hash, sealed, opened, opened, confirmed))
        return base64.urlsafe_b64encode(session_id + session_key).rstrip(b"=").decode("ascii")

    def resolve(self, cookie_value: str | None) -> SourceSession:
        """The live session a cookie opens; SessionRequired (expired=True if timed out) if none.

        A session whose source is gone, or that a later login of its source superseded, is
        refused (not "expired": it did not time out) and its row deleted.
        """
        if not cookie_value:
            raise SessionRequired()
        session_id, session_key = _split(cookie_value)
        id_hash = _hash_id(session_id)
        now = int(self._clock.now())
        # One read-only transaction for the row and its source's epoch (a page's session check
        # runs on every request: one trip, no write lock).
        with self._db.transaction(read_only=True) as repos:
            record = repos.sessions.get(id_hash)
            if record is None:
                raise SessionRequired()
            expired = (
                now - record.last_seen_at > self._idle or now - record.created_at > self._absolute
            )
            if not expired:
                try:
                    payload = sealing.unseal(session_key, record.sealed_identity, id_hash)
                    source_id, epoch, identity, hybrid = _open_payload(payload)
                except (CryptoError, UnicodeDecodeError):
                    # A cookie whose id matches but whose key does not: forged or corrupted.
                    raise SessionRequired() from None
                current = repos.sources.session_epoch(source_id)
        if expired:
            with self._db.transaction() as repos:
                repos.sessions.delete(id_hash)
            raise SessionRequired(expired=True)
        if current is None or not hmac.compare_digest(current, epoch):
            with self._db.transaction() as repos:
                repos.sessions.delete(id_hash)
            raise SessionRequired()
        if now - record.last_seen_at >= TOUCH_INTERVAL_SECONDS:
            # At most once a minute: the idle timeout is counted in minutes anyway, and a write
            # (with its fsync) on every page would queue each page behind uploads and logins.
            with self._db.transaction() as repos:
                repos.sessions.touch(id_hash, now)
        return SourceSession(
            source_id,
            identity,
            _csrf_token(session_key),
            id_hash,
            record.confirmed,
            _upload_key(session_key),
            hybrid,
        )

    def confirm(self, session: SourceSession) -> None:
        with self._db.transaction() as repos:
            repos.sessions.confirm(session.id_hash)

    def close(self, cookie_value: str | None) -> None:
        """Log out: delete the server half, so the cookie opens nothing any more."""
        if not cookie_value:
            return
        try:
            session_id, _ = _split(cookie_value)
        except SessionRequired:
            return
        with self._db.transaction() as repos:
            repos.sessions.delete(_hash_id(session_id))

    def purge_expired(self) -> int:
        now = int(self._clock.now())
        with self._db.transaction() as repos:
            return repos.sessions.purge(now - self._idle, now - self._absolute)

    @staticmethod
    def csrf_valid(session: SourceSession, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(
            session.csrf_token.encode("ascii"), token.encode("utf-8", "replace")
        )
