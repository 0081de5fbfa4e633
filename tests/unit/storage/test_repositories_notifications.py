"""Where notices go and the activity they report (repositories_notifications.py), on SQLite and
on a real PostgreSQL: one claim per account per scheduled time, enabled accounts only, and a
watermark that only moves forward."""

from __future__ import annotations

import pytest

from sealdrop.ids import UserId
from sealdrop.storage.database import SqlDatabase

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"


def add_user(db: SqlDatabase, name: str) -> UserId:
    with db.transaction() as repos:
        return repos.users.add(name, HASH, "", "journalist").id


def test_a_new_target_starts_at_the_current_activity_and_a_change_keeps_it(
    database: SqlDatabase,
) -> None:
    """Activity from before an account asked for notices is not reported to it; changing the
    address or language keeps the watermark (a pending notice is not lost)."""
    ann = add_user(database, "ann")
    with database.transaction() as repos:
        assert repos.notifications.activity() == 0
        repos.notifications.note_activity()
        repos.notifications.note_activity()
        repos.notifications.set(ann, "email", "ann@example.org", "en")
    with database.transaction() as repos:
        assert repos.notifications.get(ann).watermark == 2  # type: ignore[union-attr]
        repos.notifications.note_activity()
        repos.notifications.set(ann, "apprise", "ntfys://ntfy.example.org/t", "fa")
        target = repos.notifications.get(ann)
    assert target is not None
    assert (target.channel, target.language, target.watermark) == ("apprise", "fa", 2)


def test_each_target_is_claimed_once_per_scheduled_time_and_only_if_enabled(
    database: SqlDatabase,
) -> None:
    """claim_due returns every enabled account's target once for a slot (a second claim of the
    same or an earlier slot gets nothing), leaves disabled accounts out, and claims again at
    the next slot."""
    ann, bob = add_user(database, "ann"), add_user(database, "bob")
    with database.transaction() as repos:
        repos.notifications.set(ann, "email", "ann@example.org", "en")
        repos.notifications.set(bob, "email", "bob@example.org", "en")
        repos.users.set_disabled(bob, True)
    with database.transaction() as repos:
        assert [t.user_id for t in repos.notifications.claim_due(10)] == [ann]
    with database.transaction() as repos:
        assert repos.notifications.claim_due(10) == []
        assert repos.notifications.claim_due(9) == []
        assert repos.notifications.get(ann).last_slot == 10  # type: ignore[union-attr]
    with database.transaction() as repos:
        assert [t.user_id for t in repos.notifications.claim_due(11)] == [ann]


def test_the_watermark_only_moves_forward_and_a_removed_target_is_gone(
    database: SqlDatabase,
) -> None:
    """advance_watermark never moves it back; removing the target leaves no row (the migration
    test checks that deleting the account deletes it too)."""
    ann = add_user(database, "ann")
    with database.transaction() as repos:
        repos.notifications.set(ann, "email", "ann@example.org", "en")
        repos.notifications.advance_watermark(ann, 5)
        repos.notifications.advance_watermark(ann, 3)
        assert repos.notifications.get(ann).watermark == 5  # type: ignore[union-attr]
        assert repos.notifications.remove(ann)
        assert not repos.notifications.remove(ann)


@pytest.mark.parametrize("count", [1, 3])
def test_note_activity_counts_up_from_the_migrated_zero(database: SqlDatabase, count: int) -> None:
    """Each note_activity advances the counter by one and returns the new value."""
    with database.transaction() as repos:
        values = [repos.notifications.note_activity() for _ in range(count)]
    assert values == list(range(1, count + 1))
    with database.transaction() as repos:
        assert repos.notifications.activity() == count
