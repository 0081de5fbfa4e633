"""Triage: assigning a source to a journalist, labels ("spam", "follow up") on sources, and
holds (a held source is exempt from retention, see services/retention.py).

Shared by the whole newsroom, like stars: any journalist or admin may assign any source to any
enabled account (or to nobody) and set its labels. Each change bumps the source's version, so
that every reader syncs it, and is written to the audit trail in the same transaction (who,
what, which source by pseudonym, which day: never whom it was assigned to nor which labels, as
the trail keeps no more about sources than it needs).

Labels are text that every journalist's reader shows, so the rule is strict: NFC, surrounding
spaces dropped and runs of spaces made one, 1-32 characters, none of them invisible (the
control, format and line-separator characters that ``reader.display`` shows as codes: they
could make one label look like another, or rewrite a terminal). The label "spam" (any case)
hides a source from the readers' default view.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from sealdrop.errors import InvalidAssignee, InvalidLabels
from sealdrop.services.accounts import username_or_none
from sealdrop.services.audit import AuditTrail
from sealdrop.services.auth import Principal
from sealdrop.services.inbox import SourceView, listed_source, source_views
from sealdrop.storage.interfaces import Database

MAX_LABELS = 20
MAX_LABEL_CHARS = 32
SPAM = "spam"
# The same categories as reader.display's invisible characters (a test keeps them equal).
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def normalise_label(text: str) -> str:
    """The stored form of one label; InvalidLabels if it cannot be one."""
    composed = unicodedata.normalize("NFC", text)
    # Before the spaces are tidied: a newline or a tab is refused, not turned into a space.
    if any(unicodedata.category(ch) in INVISIBLE_CATEGORIES for ch in composed):
        raise InvalidLabels("labels cannot hold control or invisible characters")
    label = " ".join(composed.split())
    if not 1 <= len(label) <= MAX_LABEL_CHARS:
        raise InvalidLabels(f"labels are 1-{MAX_LABEL_CHARS} characters")
    return label


def normalise_labels(texts: Sequence[str]) -> list[str]:
    """A source's whole set of labels, each normalised, sorted ignoring case."""
    if len(texts) > MAX_LABELS:
        raise InvalidLabels(f"a source has at most {MAX_LABELS} labels")
    labels = [normalise_label(t) for t in texts]
    if len({x.casefold() for x in labels}) != len(labels):
        raise InvalidLabels("a label is repeated (labels ignore case)")
    return sorted(labels, key=lambda x: (x.casefold(), x))


def is_spam(labels: Sequence[str]) -> bool:
    return any(x.casefold() == SPAM for x in labels)


class Triage:
    def __init__(self, database: Database, audit: AuditTrail) -> None:
        self._db = database
        self._audit = audit

    def assign(self, principal: Principal, source_id: str, username: str | None) -> SourceView:
        """Assign the source to the enabled account ``username``, or to nobody (None)."""
        with self._db.transaction() as repos:
            record = listed_source(repos, source_id)
            assignee = None
            if username is not None:
                name = username_or_none(username)
                user = repos.users.by_username(name) if name is not None else None
                # Unknown and disabled get one answer: neither can take the work.
                if user is None or user.disabled:
                    raise InvalidAssignee("no enabled account has this username")
                assignee = user.id
            # The version first: it locks the source's row, so that two changes of one source
            # take turns (on PostgreSQL, the second's DELETE would miss the first's uncommitted
            # row and its INSERT then collide with it).
            repos.sources.bump_version(record.id)
            repos.triage.assign(record.id, assignee)
            action = "source.assign" if assignee is not None else "source.unassign"
            self._audit.record(repos, principal.user.username, action, record.pseudonym)
            return source_views(repos, principal, [listed_source(repos, source_id)])[0]

    def set_labels(self, principal: Principal, source_id: str, labels: Sequence[str]) -> SourceView:
        """Replace the source's labels with ``labels``."""
        cleaned = normalise_labels(labels)
        with self._db.transaction() as repos:
            record = listed_source(repos, source_id)
            repos.sources.bump_version(record.id)  # first: takes turns, as in assign()
            repos.triage.replace_labels(record.id, cleaned)
            self._audit.record(repos, principal.user.username, "source.labels", record.pseudonym)
            return source_views(repos, principal, [listed_source(repos, source_id)])[0]

    def set_hold(self, principal: Principal, source_id: str, hold: bool) -> SourceView:
        """Put the source on hold (exempt from every retention rule), or take it off."""
        with self._db.transaction() as repos:
            record = listed_source(repos, source_id)
            repos.sources.bump_version(record.id)  # first: takes turns, as in assign()
            repos.triage.set_hold(record.id, hold)
            action = "source.hold" if hold else "source.release"
            self._audit.record(repos, principal.user.username, action, record.pseudonym)
            return source_views(repos, principal, [listed_source(repos, source_id)])[0]

    def journalists(self, principal: Principal) -> list[str]:
        """The usernames a source can be assigned to: every enabled account, sorted."""
        with self._db.transaction(read_only=True) as repos:
            return sorted(u.username for u in repos.users.list() if not u.disabled)
