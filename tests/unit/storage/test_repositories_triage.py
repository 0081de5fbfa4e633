"""Triage in the shared repository suite (SQLite and PostgreSQL): assignees and labels."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

from sealdrop.errors import StorageError
from sealdrop.ids import SourceId, UserId, new_id
from sealdrop.storage.database import SqlDatabase
from sealdrop.storage.interfaces import SourceRecord
from sealdrop.storage.interfaces_accounts import UserRecord

DAY = dt.date(2024, 5, 17)
HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"


def add_user(db: SqlDatabase, name: str) -> UserRecord:
    with db.transaction() as repos:
        return repos.users.add(name, HASH, "JBSWY3DPEHPK3PXP", "journalist")


def add_source(db: SqlDatabase) -> SourceRecord:
    with db.transaction() as repos:
        return repos.sources.add(new_id().encode(), "age1reply", DAY, "calm lynx", None)


def test_assign_reassign_and_unassign(database: SqlDatabase) -> None:
    """assign() stores one assignee per source, replaces it, and None removes it; assignees()
    answers only the asked sources that have one, and sees a change in the same transaction."""
    ann, bob = add_user(database, "ann"), add_user(database, "bob")
    one, two = add_source(database), add_source(database)
    with database.transaction() as repos:
        repos.triage.assign(one.id, ann.id)
        assert repos.triage.assignees([one.id, two.id]) == {one.id: ann.id}
    with database.transaction() as repos:
        repos.triage.assign(one.id, bob.id)
        repos.triage.assign(two.id, bob.id)
    with database.transaction() as repos:
        assert repos.triage.assignees([one.id, two.id]) == {one.id: bob.id, two.id: bob.id}
        repos.triage.assign(one.id, None)
        repos.triage.assign(one.id, None)
    with database.transaction() as repos:
        assert repos.triage.assignees([one.id, two.id]) == {two.id: bob.id}
        assert repos.triage.assignees([]) == {}


def test_assignee_must_be_an_existing_account_and_source(database: SqlDatabase) -> None:
    """The foreign keys refuse an assignee that is not an account, and an unknown source."""
    ann = add_user(database, "ann")
    src = add_source(database)
    with pytest.raises(StorageError), database.transaction() as repos:
        repos.triage.assign(src.id, UserId(new_id()))
    with pytest.raises(StorageError), database.transaction() as repos:
        repos.triage.assign(SourceId(new_id()), ann.id)


def test_deleting_an_account_or_a_source_removes_the_assignment(database: SqlDatabase) -> None:
    """Removing the account leaves its sources, assigned to nobody; removing a source removes
    its assignment."""
    ann = add_user(database, "ann")
    one, two = add_source(database), add_source(database)
    with database.transaction() as repos:
        repos.triage.assign(one.id, ann.id)
        repos.triage.assign(two.id, ann.id)
        assert repos.sources.delete(two.id)
    assert count_rows(database, "source_assignees") == 1
    with database.engine.begin() as conn:
        conn.execute(text("DELETE FROM users WHERE id = :id"), {"id": ann.id})
    with database.transaction() as repos:
        assert repos.sources.get(one.id) is not None
        assert repos.triage.assignees([one.id]) == {}


def test_labels_replace_the_set_and_come_back_sorted_per_source(database: SqlDatabase) -> None:
    """replace() makes the given labels the source's whole set; for_sources() answers every
    asked source, [] for one without labels, labels sorted ignoring case."""
    one, two = add_source(database), add_source(database)
    with database.transaction() as repos:
        repos.triage.replace_labels(one.id, ["spam", "Follow up", "b"])
        repos.triage.replace_labels(two.id, ["x"])
    with database.transaction() as repos:
        repos.triage.replace_labels(one.id, ["spam", "Follow up", "alpha"])
    lonely = add_source(database)
    with database.transaction() as repos:
        got = repos.triage.labels([one.id, two.id, lonely.id])
    assert got == {one.id: ["alpha", "Follow up", "spam"], two.id: ["x"], lonely.id: []}
    with database.transaction() as repos:
        repos.triage.replace_labels(one.id, [])
        assert repos.triage.labels([one.id]) == {one.id: []}


def test_labels_are_unique_per_source_ignoring_case(database: SqlDatabase) -> None:
    """The database itself refuses "Spam" next to "spam" on one source (the key is the
    case-folded label), while two sources may share a label."""
    one, two = add_source(database), add_source(database)
    with pytest.raises(StorageError), database.transaction() as repos:
        repos.triage.replace_labels(one.id, ["spam", "SPAM"])
    with database.transaction() as repos:
        repos.triage.replace_labels(one.id, ["Spam"])
        repos.triage.replace_labels(two.id, ["spam"])
        assert repos.triage.labels([one.id, two.id]) == {one.id: ["Spam"], two.id: ["spam"]}


def test_labels_go_with_their_source(database: SqlDatabase) -> None:
    """Deleting a source deletes its labels (ON DELETE CASCADE)."""
    src = add_source(database)
    with database.transaction() as repos:
        repos.triage.replace_labels(src.id, ["spam"])
    with database.transaction() as repos:
        assert repos.sources.delete(src.id)
    assert count_rows(database, "source_labels") == 0


def count_rows(db: SqlDatabase, table: str) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
