"""Organisation recipients (the age public keys every submission is encrypted to), and the one
list of who a submission is encrypted to.

Only public keys live here (invariant 2); the matching identities stay on journalists' machines or
offline.

Which kind of key the instance encrypts to is decided in ``key_kinds`` (one rule, used by
``encryption_keys`` below and by every place a key is registered).
"""

from __future__ import annotations

from collections.abc import Sequence

from sealdrop.crypto.keys import parse_recipient
from sealdrop.errors import ConfigError, Conflict, NotFound
from sealdrop.ids import RecipientId, is_id
from sealdrop.services.accounts import printable_label
from sealdrop.services.audit import AuditTrail
from sealdrop.services.key_kinds import check_new_key, switch_blockers, waits_for_switch
from sealdrop.storage.interfaces import Database, RecipientRecord, Repositories

MAX_NAME_CHARS = 200


def encryption_keys(repos: Repositories, *, post_quantum: bool) -> list[str]:
    """Who a new submission is encrypted to, read in the caller's transaction: every
    organisation recipient and every reader device key of every enabled account, each once
    (invariant 2: public keys only). Empty: nobody, and intake is refused.

    The one definition: the intake encrypts to these, ``accepting`` and the conversation page
    ask whether there are any, the API's ``GET /keys`` hands them to readers for replies, and
    ``sealdrop status`` shows them; a second copy of the rule could let the page offer a form
    the intake then refuses, or a reply leave out a journalist who receives submissions.

    Only keys of the instance's kind (``post_quantum``): a file never mixes classic and hybrid
    recipients, and a key of the other kind (registered before a switch, or left from before
    it) is not encrypted to.
    """
    keys = [r.public_key for r in repos.recipients.list()]
    keys += repos.user_recipients.active_public_keys()
    return [k for k in dict.fromkeys(keys) if not waits_for_switch(k, post_quantum)]


class RecipientService:
    def __init__(self, database: Database, audit: AuditTrail, post_quantum: bool) -> None:
        self._db = database
        self._audit = audit
        self.post_quantum = post_quantum

    def add(
        self, public_key: str, name: str = "", actor: str = "operator (cli)"
    ) -> RecipientRecord:
        """Register a recipient. Raises InvalidKeyError for anything but an age key, and
        WrongKeyKind for a classic key on a post-quantum instance."""
        recipient = parse_recipient(public_key)
        name = printable_label(name, MAX_NAME_CHARS)
        canonical = str(recipient)
        check_new_key(canonical, self.post_quantum)
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

    def switch_blockers(self) -> Sequence[str]:
        """``switch_blockers`` for this instance, in a transaction of its own."""
        with self._db.transaction(read_only=True) as repos:
            return switch_blockers(repos, self.post_quantum)

    def readiness(self) -> tuple[int, Sequence[str]]:
        """For `sealdrop status`: how many registered keys (organisation, enabled accounts'
        devices) are not encrypted to because they are of the other kind, and who has keys but
        no hybrid one (those a switch to post-quantum keys would leave without submissions)."""
        with self._db.transaction(read_only=True) as repos:
            keys = [r.public_key for r in repos.recipients.list()]
            keys += repos.user_recipients.active_public_keys()
            waiting = sum(1 for k in keys if waits_for_switch(k, self.post_quantum))
            return waiting, switch_blockers(repos, post_quantum=True)

    def check_switch(self) -> None:
        """ConfigError naming ``crypto.post_quantum`` and who has no hybrid key, if anyone: run
        by ``serve`` at start, so that a switch never silently cuts a journalist (or the offline
        organisation key) off new submissions."""
        blockers = self.switch_blockers()
        if blockers:
            raise ConfigError(
                "[crypto] post_quantum = true, but these have keys and none of them hybrid "
                f"(age1pq1…), so they would receive no new submission: {', '.join(blockers)}. "
                "Register their hybrid keys first (`sealdrop recipients add DIR age1pq1…`, "
                "`sealdrop reader init --pq`), or remove their old keys or disable the account; "
                "see operator.md, 'Switching to post-quantum keys'"
            )

    def remove(self, recipient_id: RecipientId) -> bool:
        with self._db.transaction() as repos:
            return repos.recipients.remove(recipient_id)

    def remove_checked(self, recipient_id: str, actor: str) -> None:
        """Remove an organisation recipient; NotFound if there is none with that id."""
        with self._db.transaction() as repos:
            if not is_id(recipient_id) or not repos.recipients.remove(RecipientId(recipient_id)):
                raise NotFound("no such recipient")
            self._audit.record(repos, actor, "recipient.remove", None)
