"""Sources: created with a fresh codename, found again by it.

The codename is derived into keys inside the bounded KDF pool and then forgotten; only the lookup
id and the reply identity's public key are stored (invariant 3).
"""

from __future__ import annotations

from dataclasses import dataclass

from sealdrop.crypto import codenames
from sealdrop.crypto.codenames import Codename
from sealdrop.errors import DatabaseUnavailable, InvalidCodename, StorageError
from sealdrop.ids import SourceId
from sealdrop.services.clock import Clock, Granularity, arrival_day
from sealdrop.services.kdf import KdfPool
from sealdrop.services.sessions import SessionService
from sealdrop.storage.interfaces import Database


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
        clock: Clock,
        granularity: Granularity,
    ) -> None:
        self._db = database
        self._kdf = kdf
        self._sessions = sessions
        self._clock = clock
        self._granularity = granularity

    def create(self) -> NewSource:
        """Make a new source with a fresh codename, and log it in."""
        for _ in range(3):
            codename = codenames.generate()
            keys = self._kdf.derive(codename)
            try:
                with self._db.transaction() as repos:
                    source = repos.sources.add(
                        keys.lookup_id,
                        str(keys.reply_recipient),
                        arrival_day(self._clock, self._granularity),
                    )
            except DatabaseUnavailable:
                raise
            except StorageError:
                # A lookup-id collision means a repeated 90-bit codename: practically impossible,
                # but if it happens the other source must never be reachable with this codename.
                continue
            cookie = self._sessions.open(source.id, keys.reply_identity)
            return NewSource(source.id, codename, cookie)
        raise StorageError("could not create a source")

    def login(self, codename_text: str) -> str:
        """Log in with a codename; return a session cookie value. Raises InvalidCodename.

        A malformed codename and a well-formed but unknown one raise the same error, so the answer
        says nothing about which codenames exist.
        """
        codename = codenames.normalize(codename_text)
        keys = self._kdf.derive(codename)
        with self._db.transaction() as repos:
            source = repos.sources.by_lookup_id(keys.lookup_id)
        if source is None:
            raise InvalidCodename("unknown codename")
        return self._sessions.open(source.id, keys.reply_identity)
