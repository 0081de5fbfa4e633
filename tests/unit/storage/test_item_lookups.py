"""Batch lookups the API uses per page: counts per source and which ids exist (both backends)."""

from __future__ import annotations

from sealdrop.ids import BlobKey, SourceId, new_id
from sealdrop.storage.database import SqlDatabase
from sealdrop.storage.interfaces import NewSubmission


def _source(db: SqlDatabase) -> SourceId:
    with db.transaction() as repos:
        return repos.sources.add(new_id().encode(), "age1x", None, "calm otter", None).id


def _submission(db: SqlDatabase, source_id: SourceId) -> str:
    with db.transaction() as repos:
        seq = repos.sources.reserve_sequence(source_id, 1)
        new = NewSubmission("message", BlobKey(new_id()), 1, None, "")
        return repos.submissions.add(source_id, seq, None, new).id


def test_count_by_source_counts_each_and_zero_for_none(database: SqlDatabase) -> None:
    """Counts per source in one call, with 0 for a source without submissions."""
    a, b, c = _source(database), _source(database), _source(database)
    for _ in range(3):
        _submission(database, a)
    _submission(database, b)
    with database.transaction() as repos:
        assert repos.submissions.count_by_source([a, b, c]) == {a: 3, b: 1, c: 0}
        assert repos.submissions.count_by_source([]) == {}


def test_existing_tells_submissions_from_replies_and_unknown_ids(database: SqlDatabase) -> None:
    """existing() returns only ids of its own kind, whatever else is asked (over 1,000 ids too)."""
    source = _source(database)
    submission = _submission(database, source)
    with database.transaction() as repos:
        seq = repos.sources.reserve_sequence(source, 1)
        reply = repos.replies.add(source, seq, None, BlobKey(new_id()), 1).id
    asked = [submission, reply, "0" * 32, *(new_id() for _ in range(1500))]
    with database.transaction() as repos:
        assert repos.submissions.existing(asked) == {submission}
        assert repos.replies.existing(asked) == {reply}
