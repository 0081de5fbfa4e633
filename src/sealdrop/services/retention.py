"""Retention: submissions, replies and idle sources deleted after the operator's number of days.

Rules (``[retention]``, each off at 0): a submission goes ``submissions_days`` after its arrival
day, a reply ``replies_days`` after its own, a source with everything it sent and every reply
``idle_source_days`` after its last activity that the server stores (``SourceActivity``: its
newest submission's day, or its creation day; logins are not recorded, invariant 6). A source on
hold is exempt, with all its items.

Fuzzy on purpose: an item is due on its due day plus an offset of 0 to ``jitter_days`` days drawn
from a keyed hash of its id (HMAC-SHA256 under a key derived from the instance's secret salt), so
that which items are still present on a seized disk does not date the seizure more finely than
the rules, and yet nothing new is stored per item, and a dry run and the real run on the same day
pick the same items. Only day-granular facts are read: "today" is the UTC date.

Deleting follows the blob store's durability rule, as journalists' deletes do: the rows (and
their seen marks; labels, assignee and hold by cascade) in one transaction per source, which
also bumps the version of a source that remains so that readers drop the items at their next
sync; the blobs after the commit. A crash between the two leaves only an orphan blob (ciphertext
no row names), never a row without its blob. No audit entry is written: an entry per deletion
would keep, for each source, the day it went, which is what retention is there to forget.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
from collections import defaultdict
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sealdrop.errors import StorageError
from sealdrop.ids import BlobKey, ReplyId, SourceId, SubmissionId
from sealdrop.services.clock import Clock, utc_day
from sealdrop.services.upload_quota import UploadQuota
from sealdrop.storage.blobs import BlobStore
from sealdrop.storage.interfaces import Database, DatedItem, Repositories

log = logging.getLogger("sealdrop.retention")

_JITTER_INFO = b"sealdrop retention jitter v1"


@dataclass(frozen=True, slots=True)
class Rules:
    submissions_days: int = 0
    replies_days: int = 0
    idle_source_days: int = 0
    jitter_days: int = 0

    @property
    def any(self) -> bool:
        return bool(self.submissions_days or self.replies_days or self.idle_source_days)


def jitter_key(secret_salt: bytes) -> bytes:
    """The key of the jitter draw, derived from the instance's secret (never stored)."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_JITTER_INFO)
    return hkdf.derive(secret_salt)


def jitter(key: bytes, item_id: str, window: int) -> int:
    """Days (0..window) an item waits after its due day: the same for an item on every run."""
    if window <= 0:
        return 0
    digest = hmac.new(key, item_id.encode("ascii"), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") % (window + 1)


@dataclass
class Plan:
    """What the rules delete on one day. Items of a source the idle rule deletes are counted
    with that source, not again under their own rule."""

    day: dt.date
    submissions: dict[SourceId, list[DatedItem]] = field(default_factory=dict)
    replies: dict[SourceId, list[DatedItem]] = field(default_factory=dict)
    sources: list[SourceId] = field(default_factory=list)
    held: int = 0  # sources on hold
    undated: int = 0  # submissions and replies without a day: no rule can date them

    @property
    def submission_count(self) -> int:
        return sum(len(v) for v in self.submissions.values())

    @property
    def reply_count(self) -> int:
        return sum(len(v) for v in self.replies.values())


@dataclass(frozen=True, slots=True)
class Outcome:
    submissions: int
    replies: int
    sources: int


class Retention:
    def __init__(
        self,
        database: Database,
        blobs: BlobStore,
        clock: Clock,
        rules: Rules,
        key: bytes,
        quota: UploadQuota | None = None,
    ) -> None:
        self._db = database
        self._blobs = blobs
        self._clock = clock
        self._rules = rules
        self._key = key
        self._quota = quota

    @property
    def rules(self) -> Rules:
        return self._rules

    def today(self) -> dt.date:
        return utc_day(self._clock)

    def plan(self) -> Plan:
        """What the rules would delete today (the dry run)."""
        with self._db.transaction(read_only=True) as repos:
            return self._plan(repos, self.today())

    def run(self, plan: Plan | None = None) -> Outcome:
        """Delete what the rules say is due today (or what ``plan``, made today, lists: each
        item is checked again while deleting)."""
        plan = plan or self.plan()
        subs = replies = sources = 0
        for source_id in plan.sources:
            if self._delete_source(source_id, plan.day):
                sources += 1
        for source_id in plan.submissions.keys() | plan.replies.keys():
            s, r = self._delete_items(
                source_id, plan.submissions.get(source_id, []), plan.replies.get(source_id, [])
            )
            subs += s
            replies += r
        if subs or replies or sources:
            log.info(
                "retention deleted %d submissions, %d replies, %d sources", subs, replies, sources
            )
        return Outcome(subs, replies, sources)

    # -- planning ------------------------------------------------------------------------------

    def _due(self, item_id: str, day: dt.date, days: int, today: dt.date) -> bool:
        return (
            day + dt.timedelta(days=days + jitter(self._key, item_id, self._rules.jitter_days))
            <= today
        )

    def _plan(self, repos: Repositories, today: dt.date) -> Plan:
        rules = self._rules
        held = repos.triage.all_held()
        plan = Plan(today, held=len(held))
        if not rules.any:
            return plan
        plan.undated = repos.retention.undated_items()
        gone: set[SourceId] = set()
        if rules.idle_source_days:
            for source in repos.retention.activity():
                last = source.last_day
                if source.id in held or last is None:
                    continue
                if self._due(source.id, last, rules.idle_source_days, today):
                    plan.sources.append(source.id)
            gone = set(plan.sources)
        for days, find, into in (
            (rules.submissions_days, repos.retention.submissions_on_or_before, plan.submissions),
            (rules.replies_days, repos.retention.replies_on_or_before, plan.replies),
        ):
            if not days:
                continue
            by_source: dict[SourceId, list[DatedItem]] = defaultdict(list)
            for item in find(today - dt.timedelta(days=days)):
                if item.source_id in held or item.source_id in gone:
                    continue
                if self._due(item.id, item.arrival_day, days, today):
                    by_source[item.source_id].append(item)
            into.update(by_source)
        return plan

    # -- deleting ------------------------------------------------------------------------------

    def _delete_source(self, source_id: SourceId, today: dt.date) -> bool:
        with self._db.transaction() as repos:
            if not self._lock(repos, source_id):
                return False
            # Checked again under the source's lock: a hold set, or a submission accepted,
            # since the plan was made keeps the source.
            if repos.triage.held([source_id]):
                return False
            found = repos.retention.activity([source_id])
            last = found[0].last_day if found else None
            if last is None or not self._due(source_id, last, self._rules.idle_source_days, today):
                return False
            keys = [s.blob_key for s in repos.submissions.for_source(source_id)]
            keys += [r.blob_key for r in repos.replies.for_source(source_id)]
            repos.sources.delete(source_id)
        self._delete_blobs(keys)
        if self._quota is not None:
            self._quota.forget(source_id)
        return True

    def _delete_items(
        self, source_id: SourceId, submissions: list[DatedItem], replies: list[DatedItem]
    ) -> tuple[int, int]:
        keys: list[BlobKey] = []
        subs = reps = 0
        with self._db.transaction() as repos:
            if not self._lock(repos, source_id) or repos.triage.held([source_id]):
                return 0, 0
            for item in submissions:
                if repos.submissions.delete(SubmissionId(item.id)):
                    keys.append(item.blob_key)
                    subs += 1
            for item in replies:
                if repos.replies.delete(ReplyId(item.id)):
                    keys.append(item.blob_key)
                    reps += 1
        self._delete_blobs(keys)
        return subs, reps

    @staticmethod
    def _lock(repos: Repositories, source_id: SourceId) -> bool:
        """Lock the source's row for the transaction and give it a new version (so that readers
        sync the change); False if the source is gone."""
        try:
            repos.sources.bump_version(source_id)
        except StorageError:
            return False
        return True

    def _delete_blobs(self, keys: list[BlobKey]) -> None:
        for key in keys:
            self._blobs.delete(key)
