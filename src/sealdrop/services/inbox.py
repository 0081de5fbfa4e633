"""What journalists do through the API: browse sources, fetch ciphertext, reply, star, delete.

Every journalist sees every source (as in SecureDrop); what differs per journalist is only what
they have marked as seen. Nothing here decrypts: the server hands out age files, and the reader
on the journalist's machine opens them (invariant 2). Each change is written to the audit trail
in the transaction that makes it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

from sealdrop.errors import NotFound
from sealdrop.ids import ReplyId, SourceId, SubmissionId, is_id
from sealdrop.services.audit import AuditTrail
from sealdrop.services.auth import Principal
from sealdrop.services.replies import ReplyService
from sealdrop.storage.blobs import BlobStore
from sealdrop.storage.interfaces import (
    Database,
    ReplyRecord,
    Repositories,
    SourceRecord,
    SubmissionRecord,
)

MAX_PAGE = 200


@dataclass(frozen=True, slots=True)
class SourceView:
    id: SourceId
    pseudonym: str
    reply_key: str  # age1…: encrypt replies to this (and to the journalists' own keys)
    starred: bool
    version: int
    created_day: dt.date | None
    submissions: int
    unread: int
    assignee: str | None = None  # triage: the assigned account's username
    labels: tuple[str, ...] = ()  # triage labels, sorted ignoring case
    hold: bool = False  # on hold: exempt from the retention rules


@dataclass(frozen=True, slots=True)
class ItemView:
    id: str
    source_id: SourceId
    seq: int
    kind: str  # "message" | "file" | "reply"
    arrival_day: dt.date | None
    size: int
    digest: str
    seen: bool
    metadata: bytes | None = None  # age file with the file's name/type/size (files only)
    author: str | None = None  # replies: the journalist who sent it


@dataclass(frozen=True, slots=True)
class Download:
    stream: BinaryIO
    size: int
    digest: str


class Inbox:
    def __init__(
        self, database: Database, blobs: BlobStore, replies: ReplyService, audit: AuditTrail
    ) -> None:
        self._db = database
        self._blobs = blobs
        self._replies = replies
        self._audit = audit

    # -- sources -------------------------------------------------------------------------------

    def sources(
        self, principal: Principal, after_version: int, limit: int, starred: bool | None
    ) -> tuple[list[SourceView], int | None]:
        """A page of sources changed after ``after_version``; the next cursor, or None at end."""
        limit = max(1, min(limit, MAX_PAGE))
        with self._db.transaction() as repos:
            records = list(
                repos.sources.page(after_version=after_version, limit=limit + 1, starred=starred)
            )
            more = len(records) > limit
            records = records[:limit]
            views = source_views(repos, principal, records)
        return views, (records[-1].version if more else None)

    def source(self, principal: Principal, source_id: str) -> SourceView:
        with self._db.transaction() as repos:
            record = listed_source(repos, source_id)
            return source_views(repos, principal, [record])[0]

    def set_starred(self, principal: Principal, source_id: str, starred: bool) -> SourceView:
        with self._db.transaction() as repos:
            record = listed_source(repos, source_id)
            repos.sources.set_starred(record.id, starred)
            repos.sources.bump_version(record.id)
            self._audit.record(
                repos,
                principal.user.username,
                "source.star" if starred else "source.unstar",
                record.pseudonym,
            )
            updated = listed_source(repos, source_id)
            return source_views(repos, principal, [updated])[0]

    def delete_source(self, principal: Principal, source_id: str) -> None:
        """Delete a source with everything it sent and every reply; blobs go after the rows."""
        with self._db.transaction() as repos:
            record = listed_source(repos, source_id)
            keys = [s.blob_key for s in repos.submissions.for_source(record.id)]
            keys += [r.blob_key for r in repos.replies.for_source(record.id)]
            repos.sources.delete(record.id)
            self._audit.record(repos, principal.user.username, "source.delete", record.pseudonym)
        for key in keys:
            self._blobs.delete(key)

    # -- submissions ---------------------------------------------------------------------------

    def submissions(self, principal: Principal, source_id: str) -> list[ItemView]:
        with self._db.transaction() as repos:
            record = listed_source(repos, source_id)
            items = list(repos.submissions.for_source(record.id))
            seen = repos.seen.seen_among(principal.user.id, [i.id for i in items])
        return [_submission_view(i, i.id in seen) for i in items]

    def submission(self, principal: Principal, submission_id: str) -> ItemView:
        with self._db.transaction() as repos:
            item = self._submission(repos, submission_id)
            seen = repos.seen.seen_among(principal.user.id, [item.id])
        return _submission_view(item, item.id in seen)

    def open_submission(self, principal: Principal, submission_id: str) -> Download:
        with self._db.transaction() as repos:
            item = self._submission(repos, submission_id)
        return Download(self._blobs.open(item.blob_key), item.size, item.digest)

    def delete_submission(self, principal: Principal, submission_id: str) -> None:
        with self._db.transaction() as repos:
            item = self._submission(repos, submission_id)
            repos.submissions.delete(item.id)
            self._record_change(repos, principal, item.source_id, "submission.delete")
        self._blobs.delete(item.blob_key)

    # -- replies -------------------------------------------------------------------------------

    def replies(self, principal: Principal, source_id: str) -> list[ItemView]:
        with self._db.transaction() as repos:
            record = listed_source(repos, source_id)
            items = list(repos.replies.for_source(record.id))
            seen = repos.seen.seen_among(principal.user.id, [i.id for i in items])
            authors = self._authors(repos, items)
        return [_reply_view(i, i.id in seen, authors) for i in items]

    def add_reply(self, principal: Principal, source_id: str, ciphertext: bytes) -> ItemView:
        """Store a reply: once its blob is durable, one transaction checks the source, writes
        the row, the author's seen mark and the audit entry, so that a reply never exists
        without its entry (nor an entry without its reply). If it fails, the blob is deleted."""
        if not is_id(source_id):
            raise NotFound("no such source")  # before writing a blob for a made-up id
        with self._replies.staged(ciphertext) as blob, self._db.transaction() as repos:
            record = listed_source(repos, source_id)
            reply = self._replies.add(repos, record.id, blob, principal.user.id)
            # A journalist has seen their own reply.
            repos.seen.mark(principal.user.id, [reply.id])
            self._audit.record(repos, principal.user.username, "reply.create", record.pseudonym)
        return _reply_view(reply, True, {principal.user.id: principal.user.username})

    def open_reply(self, principal: Principal, reply_id: str) -> Download:
        with self._db.transaction() as repos:
            reply = self._reply(repos, reply_id)
        return Download(self._blobs.open(reply.blob_key), reply.size, reply.digest)

    def delete_reply(self, principal: Principal, reply_id: str) -> None:
        with self._db.transaction() as repos:
            reply = self._reply(repos, reply_id)
            repos.replies.delete(reply.id)
            self._record_change(repos, principal, reply.source_id, "reply.delete")
        self._blobs.delete(reply.blob_key)

    def mark_seen(self, principal: Principal, item_ids: Sequence[str]) -> int:
        """Mark submissions and replies as seen by this journalist; unknown ids are ignored
        (the answer says how many were known), so the call reveals nothing about other ids."""
        with self._db.transaction() as repos:
            ids = [i for i in item_ids if is_id(i)]
            known = repos.submissions.existing(ids) | repos.replies.existing(ids)
            repos.seen.mark(principal.user.id, sorted(known))
        return len(known)

    # -- helpers -------------------------------------------------------------------------------

    def _record_change(
        self, repos: Repositories, principal: Principal, source_id: SourceId, action: str
    ) -> None:
        """A source's conversation changed: readers see a new version; the trail names it."""
        source = repos.sources.get(source_id)
        repos.sources.bump_version(source_id)
        pseudonym = source.pseudonym if source else None
        self._audit.record(repos, principal.user.username, action, pseudonym)

    @staticmethod
    def _submission(repos: Repositories, submission_id: str) -> SubmissionRecord:
        item = repos.submissions.get(SubmissionId(submission_id)) if is_id(submission_id) else None
        if item is None:
            raise NotFound("no such submission")
        return item

    @staticmethod
    def _reply(repos: Repositories, reply_id: str) -> ReplyRecord:
        reply = repos.replies.get(ReplyId(reply_id)) if is_id(reply_id) else None
        if reply is None:
            raise NotFound("no such reply")
        return reply

    @staticmethod
    def _authors(repos: Repositories, replies: Sequence[ReplyRecord]) -> dict[str, str]:
        names: dict[str, str] = {}
        for author in {r.author_id for r in replies if r.author_id}:
            user = repos.users.get(author)
            if user is not None:
                names[author] = user.username
        return names


def _submission_view(item: SubmissionRecord, seen: bool) -> ItemView:
    return ItemView(
        item.id,
        item.source_id,
        item.seq,
        item.kind,
        item.arrival_day,
        item.size,
        item.digest,
        seen,
        item.metadata_ciphertext,
    )


def _reply_view(item: ReplyRecord, seen: bool, authors: dict[str, str]) -> ItemView:
    author = authors.get(item.author_id) if item.author_id else None
    return ItemView(
        item.id,
        item.source_id,
        item.seq,
        "reply",
        item.arrival_day,
        item.size,
        item.digest,
        seen,
        None,
        author,
    )


def listed_source(repos: Repositories, source_id: str) -> SourceRecord:
    """The source a journalist may see under this id; NotFound otherwise."""
    record = repos.sources.get(SourceId(source_id)) if is_id(source_id) else None
    # Sources that never sent anything are not journalists' business (and soon purged).
    if record is None or record.pending_since is not None:
        raise NotFound("no such source")
    return record


def source_views(
    repos: Repositories, principal: Principal, records: Sequence[SourceRecord]
) -> list[SourceView]:
    """The sources as this journalist sees them, with counts, assignee, labels and hold."""
    ids = [r.id for r in records]
    # A fixed number of queries for the whole page, however many sources it holds (plus one per
    # distinct assignee: a handful of accounts).
    unread = repos.seen.unread_counts(principal.user.id, ids)
    counts = repos.submissions.count_by_source(ids)
    assigned = repos.triage.assignees(ids)
    labels = repos.triage.labels(ids)
    held = repos.triage.held(ids)
    names: dict[str, str] = {}
    for user_id in set(assigned.values()):
        user = repos.users.get(user_id)
        if user is not None:
            names[user_id] = user.username
    return [
        SourceView(
            r.id,
            r.pseudonym,
            r.reply_recipient,
            r.starred,
            r.version,
            r.created_day,
            counts.get(r.id, 0),
            unread.get(r.id, 0),
            names.get(assigned[r.id]) if r.id in assigned else None,
            tuple(labels.get(r.id, ())),
            r.id in held,
        )
        for r in records
    ]
