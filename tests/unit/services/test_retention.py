"""Retention (services.retention) on every backend, with the clock moved: which items go on
which day, what goes with them, what is exempt, and that a dry run and a run agree."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from sealdrop.ids import BlobKey, SourceId
from sealdrop.services.retention import Retention, Rules, jitter, jitter_key
from sealdrop.services.upload_quota import UploadQuota
from sealdrop.storage.blobs_fs import FilesystemBlobStore
from sealdrop.storage.database import SqlDatabase
from sealdrop.storage.interfaces import NewSubmission
from sealdrop.testing import FakeClock

DAY = 86400
KEY = jitter_key(b"s" * 32)
START = dt.date(2027, 3, 1)


class Env:
    def __init__(self, database: SqlDatabase, tmp_path: Path, rules: Rules) -> None:
        self.db = database
        self.blobs = FilesystemBlobStore(tmp_path / "store")
        self.clock = FakeClock(dt.datetime(2027, 3, 1, 12, tzinfo=dt.UTC).timestamp())
        self.quota = UploadQuota(self.clock, 10**9)
        self.retention = Retention(database, self.blobs, self.clock, rules, KEY, self.quota)
        with database.transaction() as repos:
            self.user = repos.users.add("ann", "$argon2id$hash", "", "journalist").id

    def at(self, day: dt.date) -> None:
        self.clock.value = dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.UTC).timestamp()

    def blob(self) -> BlobKey:
        with self.blobs.stage() as staged:
            staged.write(b"age-encryption.org/v1 ciphertext")
            key, _ = staged.commit()
        return key

    def source(self, created: dt.date | None, name: str = "calm lynx") -> SourceId:
        with self.db.transaction() as repos:
            lookup = name.encode().ljust(32, b".")
            return repos.sources.add(lookup, "age1placeholder", created, name, None).id

    def submission(self, source: SourceId, day: dt.date | None) -> str:
        key = self.blob()
        with self.db.transaction() as repos:
            seq = repos.sources.reserve_sequence(source, 1)
            item = repos.submissions.add(source, seq, day, NewSubmission("message", key, 10, None))
            repos.seen.mark(self.user, [item.id])
        return item.id

    def reply(self, source: SourceId, day: dt.date | None) -> str:
        key = self.blob()
        with self.db.transaction() as repos:
            seq = repos.sources.reserve_sequence(source, 1)
            item = repos.replies.add(source, seq, day, key, 10)
            repos.seen.mark(self.user, [item.id])
        return item.id

    def submission_ids(self, source: SourceId) -> list[str]:
        with self.db.transaction() as repos:
            return [s.id for s in repos.submissions.for_source(source)]

    def reply_ids(self, source: SourceId) -> list[str]:
        with self.db.transaction() as repos:
            return [r.id for r in repos.replies.for_source(source)]

    def version(self, source: SourceId) -> int | None:
        with self.db.transaction() as repos:
            record = repos.sources.get(source)
        return None if record is None else record.version

    def seen(self, ids: list[str]) -> set[str]:
        with self.db.transaction() as repos:
            return repos.seen.seen_among(self.user, ids)


def delete_day(item_id: str, arrived: dt.date, days: int, window: int) -> dt.date:
    return arrived + dt.timedelta(days=days + jitter(KEY, item_id, window))


def test_a_submission_goes_on_its_jittered_day_with_its_blob_and_seen_marks(
    database: SqlDatabase, tmp_path: Path
) -> None:
    """A submission stays until its arrival day + submissions_days + its jitter offset, and that
    day goes with its blob and its seen marks; the source stays, at a higher version."""
    env = Env(database, tmp_path, Rules(submissions_days=30, jitter_days=5))
    source = env.source(START)
    item = env.submission(source, START)
    keep = env.submission(source, START + dt.timedelta(days=40))
    blob_count = len(list(env.blobs.keys()))
    due = delete_day(item, START, 30, 5)
    version = env.version(source)
    day = START
    while day < due:
        env.at(day)
        assert env.retention.run().submissions == 0, day
        day += dt.timedelta(days=1)
    assert env.submission_ids(source) == [item, keep]
    env.at(due)
    assert env.retention.run().submissions == 1
    assert env.submission_ids(source) == [keep]
    assert len(list(env.blobs.keys())) == blob_count - 1
    assert env.seen([item, keep]) == {keep}
    assert (env.version(source) or 0) > (version or 0)


def test_the_offsets_spread_over_the_window_and_depend_on_the_key() -> None:
    """Offsets are 0..jitter_days, every value is used, an item always gets the same one, and
    another instance's key gives other offsets; 0 days means no jitter."""
    ids = [f"{n:032x}" for n in range(400)]
    offsets = [jitter(KEY, i, 6) for i in ids]
    assert set(offsets) == set(range(7))
    assert offsets == [jitter(KEY, i, 6) for i in ids]
    other = jitter_key(b"t" * 32)
    assert offsets != [jitter(other, i, 6) for i in ids]
    assert {jitter(KEY, i, 0) for i in ids} == {0}


def test_the_dry_run_lists_what_the_run_then_deletes(database: SqlDatabase, tmp_path: Path) -> None:
    """On one day, the plan's counts per rule are what the run deletes, and the plan alone
    deletes nothing."""
    env = Env(database, tmp_path, Rules(submissions_days=10, replies_days=10, jitter_days=4))
    source = env.source(START)
    day = START + dt.timedelta(days=12)  # within the window: some due, some not

    def due(items: list[str]) -> int:
        return sum(delete_day(i, START, 10, 4) <= day for i in items)

    subs = [env.submission(source, START) for _ in range(12)]
    reps = [env.reply(source, START) for _ in range(12)]
    # The offsets come from the items' random ids: twelve are all due (or none) once in a few
    # hundred runs, so more are added until each kind has some due and some not.
    while not (0 < due(subs) < len(subs) and 0 < due(reps) < len(reps)):
        assert len(subs) < 100
        subs.append(env.submission(source, START))
        reps.append(env.reply(source, START))
    env.at(day)
    plan = env.retention.plan()
    expected_subs, expected_reps = due(subs), due(reps)
    assert (plan.submission_count, plan.reply_count) == (expected_subs, expected_reps)
    assert len(env.submission_ids(source)) == len(subs)  # the plan changed nothing
    outcome = env.retention.run()
    assert (outcome.submissions, outcome.replies) == (expected_subs, expected_reps)
    assert len(env.submission_ids(source)) == len(subs) - expected_subs
    assert len(env.reply_ids(source)) == len(reps) - expected_reps


def test_an_idle_source_goes_with_everything_it_had(database: SqlDatabase, tmp_path: Path) -> None:
    """A source whose newest submission is idle_source_days (+ jitter) old is deleted with its
    submissions, replies, blobs, seen marks, labels, assignee and upload quota; a source that
    sent something later stays."""
    env = Env(database, tmp_path, Rules(idle_source_days=60, jitter_days=3))
    old = env.source(START, "old owl")
    items = [env.submission(old, START), env.submission(old, START + dt.timedelta(days=5))]
    items.append(env.reply(old, START + dt.timedelta(days=20)))  # a journalist's: not its own
    recent = env.source(START, "new newt")
    env.submission(recent, START + dt.timedelta(days=30))
    with database.transaction() as repos:
        repos.triage.assign(old, env.user)
        repos.triage.replace_labels(old, ["follow up"])
    env.quota.record(old, 5)
    last = START + dt.timedelta(days=5)
    due = delete_day(old, last, 60, 3)
    env.at(due - dt.timedelta(days=1))
    assert env.retention.plan().sources == []
    env.at(due)
    plan = env.retention.plan()
    assert plan.sources == [old]
    assert env.retention.run().sources == 1
    assert env.version(old) is None
    assert env.version(recent) is not None
    assert env.seen(items) == set()
    assert len(list(env.blobs.keys())) == 1  # the recent source's submission
    with database.transaction() as repos:
        assert repos.triage.assignees([old]) == {}
        assert repos.triage.labels([old]) == {old: []}
    assert env.quota.remaining(old)[0] == 10**9


def test_a_source_on_hold_keeps_everything_until_released(
    database: SqlDatabase, tmp_path: Path
) -> None:
    """A held source is exempt from every rule (its items too) and is counted as held; once
    released, the next run deletes what is due."""
    env = Env(database, tmp_path, Rules(submissions_days=1, replies_days=1, idle_source_days=1))
    source = env.source(START)
    env.submission(source, START)
    env.reply(source, START)
    with database.transaction() as repos:
        repos.triage.set_hold(source, True)
    env.at(START + dt.timedelta(days=400))
    plan = env.retention.plan()
    assert (plan.submission_count, plan.reply_count, plan.sources, plan.held) == (0, 0, [], 1)
    assert env.retention.run().sources == 0
    assert len(env.submission_ids(source)) == 1
    with database.transaction() as repos:
        repos.triage.set_hold(source, False)
    assert env.retention.run().sources == 1
    assert env.version(source) is None


def test_a_hold_set_after_the_plan_still_protects(database: SqlDatabase, tmp_path: Path) -> None:
    """The hold is checked again under the source's lock when deleting, so a journalist who puts
    a source on hold while a run is under way keeps it."""
    env = Env(database, tmp_path, Rules(submissions_days=1, idle_source_days=1))
    source = env.source(START)
    env.submission(source, START)
    env.at(START + dt.timedelta(days=30))
    plan = env.retention.plan()
    assert plan.sources == [source]
    with database.transaction() as repos:
        repos.triage.set_hold(source, True)
    assert not env.retention._delete_source(source, plan.day)
    assert env.version(source) is not None


def test_items_without_a_day_are_never_deleted_and_are_counted(
    database: SqlDatabase, tmp_path: Path
) -> None:
    """Items stored while arrival granularity was "none" have no day: no rule deletes them, nor
    a source whose newest submission has none, and the plan counts them as undated."""
    env = Env(database, tmp_path, Rules(submissions_days=1, replies_days=1, idle_source_days=1))
    source = env.source(None)
    env.submission(source, START)
    undated = env.submission(source, None)  # newer than the dated one: the source is undated
    env.reply(source, None)
    env.at(START + dt.timedelta(days=500))
    plan = env.retention.plan()
    assert plan.undated == 2
    assert plan.sources == []
    assert plan.submission_count == 1
    env.retention.run()
    assert env.submission_ids(source) == [undated]
    assert len(env.reply_ids(source)) == 1


def test_rules_off_delete_nothing(database: SqlDatabase, tmp_path: Path) -> None:
    """With every rule at 0 (the default) nothing is ever deleted, however old."""
    env = Env(database, tmp_path, Rules(jitter_days=7))
    source = env.source(START)
    env.submission(source, START)
    env.at(START + dt.timedelta(days=10_000))
    assert env.retention.run().submissions == 0
    assert len(env.submission_ids(source)) == 1


@pytest.mark.parametrize("window", [0, 3])
def test_items_of_a_deleted_source_are_not_counted_twice(
    database: SqlDatabase, tmp_path: Path, window: int
) -> None:
    """When the idle rule takes a source, its items are counted with it, not again under the
    submissions rule."""
    env = Env(database, tmp_path, Rules(submissions_days=1, idle_source_days=1, jitter_days=window))
    source = env.source(START)
    env.submission(source, START)
    env.at(START + dt.timedelta(days=30))
    plan = env.retention.plan()
    assert (plan.sources, plan.submission_count) == ([source], 0)


def test_a_submission_after_the_plan_keeps_the_source(
    database: SqlDatabase, tmp_path: Path
) -> None:
    """The source's activity is read again under its lock when deleting: a submission accepted
    between the plan (or the dry run) and the run makes the source no longer idle."""
    env = Env(database, tmp_path, Rules(idle_source_days=30))
    source = env.source(START)
    env.submission(source, START)
    later = START + dt.timedelta(days=45)
    env.at(later)
    plan = env.retention.plan()
    assert plan.sources == [source]
    env.submission(source, later)
    assert env.retention.run(plan).sources == 0
    assert len(env.submission_ids(source)) == 2
