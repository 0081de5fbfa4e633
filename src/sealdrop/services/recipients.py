"""Organisation recipients: the age public keys every submission is encrypted to.

Only public keys live here (invariant 2); the matching identities stay on journalists' machines or
offline.
"""

from __future__ import annotations

from collections.abc import Sequence

from sealdrop.crypto.keys import parse_recipient
from sealdrop.errors import StorageError
from sealdrop.ids import RecipientId
from sealdrop.storage.interfaces import Database, RecipientRecord

MAX_NAME_CHARS = 200


class RecipientService:
    def __init__(self, database: Database) -> None:
        self._db = database

    def add(self, public_key: str, name: str = "") -> RecipientRecord:
        """Register a recipient. Raises InvalidKeyError for anything but an age X25519 key."""
        recipient = parse_recipient(public_key)
        name = " ".join(name.split())[:MAX_NAME_CHARS]
        canonical = str(recipient)
        with self._db.transaction() as repos:
            if any(r.public_key == canonical for r in repos.recipients.list()):
                raise StorageError(f"recipient {canonical} is already registered")
            return repos.recipients.add(canonical, name)

    def list(self) -> Sequence[RecipientRecord]:
        with self._db.transaction() as repos:
            return repos.recipients.list()

    def remove(self, recipient_id: RecipientId) -> bool:
        with self._db.transaction() as repos:
            return repos.recipients.remove(recipient_id)
