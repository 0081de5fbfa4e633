"""Sources: created with a fresh codename, found again by it.

The codename is derived into keys inside the bounded KDF pool and then forgotten; only the lookup
id and the reply identity's public key are stored (invariant 3).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from sealdrop.crypto import codenames
from sealdrop.crypto.codenames import Codename
from sealdrop.crypto.derive import SourceKeys
from sealdrop.crypto.keys import HybridIdentity
from sealdrop.errors import DatabaseUnavailable, InvalidCodename, StorageError
from sealdrop.ids import SourceId
from sealdrop.services.clock import Clock, Granularity, arrival_day
from sealdrop.services.kdf import KdfPool
from sealdrop.services.pseudonyms import new_pseudonym
from sealdrop.services.sessions import SessionService, SourceSession
from sealdrop.services.throttle import LoginThrottle
from sealdrop.storage.interfaces import Database

# Derived in place of a malformed codename, so that "not even seven list words" and "seven words
# nobody uses" cost the same time and look the same from outside.
_DECOY = Codename(" ".join(["abacus"] * codenames.WORDS_PER_CODENAME))


@dataclass(frozen=True, slots=True)
class NewSource:
    source_id: SourceId
    codename: Codename  # shown to the source once, then dropped
    session_cookie: str


class SourceService:
    def __init__(
        self,
        database: Database,
        kdf: KdfPool,
        sessions: SessionService,
        throttle: LoginThrottle,
        clock: Clock,
        granularity: Granularity,
        pending_purge_seconds: int,
        post_quantum: bool = False,
    ) -> None:
        self._db = database
        self._kdf = kdf
        self._sessions = sessions
        self._throttle = throttle
        self._clock = clock
        self._granularity = granularity
        self._pending_purge_seconds = pending_purge_seconds
        # crypto.post_quantum: replies are encrypted to the source's hybrid reply key.
        self._post_quantum = post_quantum

    def create(self) -> NewSource:
        """Make a new source with a fresh codename, and open a session that still has to be
        confirmed by typing the codename back."""
        for _ in range(3):
            codename = codenames.generate()
            # New codenames cost an Argon2id each, like logins, and share their budget.
            with self._throttle.attempt(None):
                keys = self._kdf.derive(codename)
            try:
                with self._db.transaction() as repos:
                    source = repos.sources.add(
                        keys.lookup_id,
                        keys.reply_key(self._post_quantum),
                        arrival_day(self._clock, self._granularity),
                        new_pseudonym(),
                        int(self._clock.now()),
                    )
            except DatabaseUnavailable:
                raise
            except StorageError:
                # A lookup-id collision means a repeated 90-bit codename: practically impossible,
                # but if it happens the other source must never be reachable with this codename.
                continue
            cookie = self._sessions.open(
                source.id,
                keys.reply_identity,
                confirmed=False,
                hybrid_reply_identity=self._hybrid(keys),
            )
            return NewSource(source.id, codename, cookie)
        raise StorageError("could not create a source")

    def login(self, codename_text: str, visitor: bytes | None = None) -> str:
        """Log in with a codename; return a session cookie value.

        Raises InvalidCodename for a malformed and for an unknown codename alike, after the same
        work, so the answer says nothing about which codenames exist. Raises TooManyRequests when
        the global or per-visitor limits are reached.
        """
        with self._throttle.attempt(visitor):
            keys = self._derive_or_decoy(codename_text)
            source = None
            if keys is not None:
                with self._db.transaction() as repos:
                    source = repos.sources.by_lookup_id(keys.lookup_id)
            if keys is None or source is None:
                self._throttle.record_failure(visitor)
                raise InvalidCodename("unknown codename")
        self._throttle.record_success(visitor)
        reply_key = keys.reply_key(self._post_quantum)
        if source.reply_recipient != reply_key:
            # A source made before the instance switched to post-quantum keys gets its hybrid
            # reply key now (only its public half; it is derived again at every login). The
            # login writes the source row anyway (the session epoch below), so this write tells
            # a seized database nothing the epoch does not.
            with self._db.transaction() as repos:
                repos.sources.set_reply_recipient(source.id, reply_key)
        # A login ends the source's other sessions (a forgotten tab, another device).
        return self._sessions.open(
            source.id,
            keys.reply_identity,
            end_others=True,
            hybrid_reply_identity=self._hybrid(keys),
        )

    def _hybrid(self, keys: SourceKeys) -> HybridIdentity | None:
        # Post-quantum instances seal the hybrid reply identity into the session as well, so the
        # conversation page opens replies to either key (before and after the switch).
        return keys.hybrid_reply_identity if self._post_quantum else None

    def confirm(self, session: SourceSession, codename_text: str, visitor: bytes | None) -> None:
        """Check that a new source has its codename, by deriving what they typed."""
        with self._throttle.attempt(visitor):
            keys = self._derive_or_decoy(codename_text)
            with self._db.transaction() as repos:
                source = repos.sources.get(session.source_id)
            if (
                keys is None
                or source is None
                or not hmac.compare_digest(keys.lookup_id, source.lookup_id)
            ):
                self._throttle.record_failure(visitor)
                raise InvalidCodename("codename does not match")
        self._sessions.confirm(session)

    def purge_pending(self) -> int:
        """Delete sources that never sent anything within the allowed time."""
        cutoff = int(self._clock.now()) - self._pending_purge_seconds
        with self._db.transaction() as repos:
            return repos.sources.purge_pending(cutoff)

    def _derive_or_decoy(self, codename_text: str) -> SourceKeys | None:
        try:
            codename = codenames.normalize(codename_text)
        except InvalidCodename:
            self._kdf.derive(_DECOY)
            return None
        return self._kdf.derive(codename)
