"""Organisation recipients: the age public keys every submission is encrypted to.

Only public keys live here (invariant 2); the matching identities stay on journalists' machines or
offline.
"""

from __future__ import annotations

from collections.abc import Sequence

from sealdrop.crypto.keys import parse_recipient
from sealdrop.errors import Conflict, NotFound
from sealdrop.ids import RecipientId, is_id
from sealdrop.services.accounts import printable_label
from sealdrop.services.audit import AuditTrail
from sealdrop.storage.interfaces import Database, RecipientRecord, Repositories

MAX_NAME_CHARS = 200


def encryption_keys(repos: Repositories) -> list[str]:
    """Who a new submission is encrypted to, read in the caller's transaction: every
    organisation recipient and every reader device key of every enabled account, each once
    (invariant 2: public keys only). Empty: nobody, and intake is refused.

    The one definition: the intake encrypts to these, ``accepting`` and the conversation page
    ask whether there are any, the API's ``GET /keys`` hands them to readers for replies, and
    ``sealdrop status`` shows them; a second copy of the rule could let the page offer a form
    the intake then refuses, or a reply leave out a journalist who receives submissions.
    """
    keys = [r.public_key for r in repos.recipients.list()]
    keys += repos.user_recipients.active_public_keys()
    return list(dict.fromkeys(keys))


class RecipientService:
    def __init__(self, database: Database, audit: AuditTrail) -> None:
        self._db = database
        self._audit = audit

    def add(
        self, public_key: str, name: str = "", actor: str = "operator (cli)"
    ) -> RecipientRecord:
        """Register a recipient. Raises InvalidKeyError for anything but an age X25519 key."""
        recipient = parse_recipient(public_key)
        name = printable_label(name, MAX_NAME_CHARS)
        canonical = str(recipient)
        with self._db.transaction() as repos:
            if any(r.public_key == canonical for r in repos.recipients.list()):
                raise Conflict("this key is already an organisation recipient")
            if canonical in repos.user_recipients.active_public_keys():
                raise Conflict("this key is already a journalist's device key")
            record = repos.recipients.add(canonical, name)
            self._audit.record(repos, actor, "recipient.add", None)
            return record

    def list(self) -> Sequence[RecipientRecord]:
        with self._db.transaction() as repos:
            return repos.recipients.list()

    def remove(self, recipient_id: RecipientId) -> bool:
        with self._db.transaction() as repos:
            return repos.recipients.remove(recipient_id)

    def remove_checked(self, recipient_id: str, actor: str) -> None:
        """Remove an organisation recipient; NotFound if there is none with that id."""
        with self._db.transaction() as repos:
            if not is_id(recipient_id) or not repos.recipients.remove(RecipientId(recipient_id)):
                raise NotFound("no such recipient")
            self._audit.record(repos, actor, "recipient.remove", None)
