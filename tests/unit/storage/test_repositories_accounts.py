"""Journalist accounts: users, their reader keys, API tokens, seen marks, the audit log and
instance settings; on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Callable

import pytest
from sqlalchemy import event, text

from sealdrop.errors import StorageError
from sealdrop.ids import BlobKey, RecipientId, SourceId, UserId, new_id
from sealdrop.storage.database import SqlDatabase
from sealdrop.storage.interfaces import NewSubmission, SourceRecord, SubmissionRecord
from sealdrop.storage.interfaces_accounts import AuditRecord, Role, TokenRecord, UserRecord

DAY = dt.date(2024, 5, 17)
HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"


def add_user(db: SqlDatabase, name: str = "ann", role: Role = "journalist") -> UserRecord:
    with db.transaction() as repos:
        return repos.users.add(name, HASH, "JBSWY3DPEHPK3PXP", role)


def get_user(db: SqlDatabase, user_id: UserId) -> UserRecord:
    with db.transaction() as repos:
        user = repos.users.get(user_id)
    assert user is not None
    return user


def add_source(db: SqlDatabase) -> SourceRecord:
    with db.transaction() as repos:
        return repos.sources.add(new_id().encode(), "age1reply", DAY, "calm lynx", None)


def add_submission(db: SqlDatabase, source_id: SourceId) -> SubmissionRecord:
    with db.transaction() as repos:
        seq = repos.sources.reserve_sequence(source_id, 1)
        new = NewSubmission("message", BlobKey(new_id()), 10, None, "00" * 32)
        return repos.submissions.add(source_id, seq, DAY, new)


def count_rows(db: SqlDatabase, table: str) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def in_thread(target: Callable[[], None]) -> tuple[threading.Thread, list[BaseException]]:
    """Start ``target`` in a thread; errors are collected in the returned list."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target()
        except BaseException as exc:  # checked by the caller
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


# --- users ---------------------------------------------------------------------------------------


def test_user_add_get_and_list(database: SqlDatabase) -> None:
    """A user round-trips as a frozen record with the defaults of a new account; list() is
    ordered by username."""
    zed = add_user(database, "zed", "admin")
    ann = add_user(database, "ann")
    assert ann == UserRecord(
        id=ann.id,
        username="ann",
        passphrase_hash=HASH,
        totp_secret="JBSWY3DPEHPK3PXP",
        totp_last_step=None,
        role="journalist",
        disabled=False,
        failed_logins=0,
        locked_until=None,
    )
    assert len(ann.id) == 32
    assert zed.role == "admin"
    with database.transaction() as repos:
        assert repos.users.get(ann.id) == ann
        assert repos.users.get(UserId(new_id())) is None
        assert repos.users.list() == [ann, zed]
    with pytest.raises(dataclasses.FrozenInstanceError):
        ann.disabled = True  # type: ignore[misc]


def test_usernames_are_stored_and_found_exactly_as_given_and_unique(
    database: SqlDatabase,
) -> None:
    """Storage applies no rule of its own (services.accounts normalises names, one rule in one
    place): 'ann.smith' is found under that spelling only, and cannot be added twice."""
    user = add_user(database, "ann.smith")
    assert user.username == "ann.smith"
    with database.transaction() as repos:
        assert repos.users.by_username("ann.smith") == user
        assert repos.users.by_username("ann") is None
    with pytest.raises(StorageError, match="username"), database.transaction() as repos:
        repos.users.add("ann.smith", HASH, "", "journalist")
    with database.transaction() as repos:
        assert repos.users.list() == [user]


def test_set_disabled_and_set_passphrase_hash(database: SqlDatabase) -> None:
    """Both change one user, and report whether the user exists."""
    ann, bob = add_user(database, "ann"), add_user(database, "bob")
    with database.transaction() as repos:
        assert repos.users.set_disabled(ann.id, True) is True
        assert repos.users.set_passphrase_hash(ann.id, "$argon2id$new") is True
        assert repos.users.set_disabled(UserId(new_id()), True) is False
        assert repos.users.set_passphrase_hash(UserId(new_id()), "x") is False
    assert get_user(database, ann.id) == dataclasses.replace(
        ann, disabled=True, passphrase_hash="$argon2id$new"
    )
    assert get_user(database, bob.id) == bob
    with database.transaction() as repos:
        repos.users.set_disabled(ann.id, False)
    assert get_user(database, ann.id).disabled is False


def test_use_totp_step_accepts_each_step_once_and_only_forwards(database: SqlDatabase) -> None:
    """A step is accepted once; the same step again (a replayed code) or an earlier one is
    refused; a later one is accepted. Unknown users are refused."""
    user = add_user(database)
    with database.transaction() as repos:
        assert repos.users.use_totp_step(user.id, 1000) is True
        assert repos.users.use_totp_step(user.id, 1000) is False
        assert repos.users.use_totp_step(user.id, 999) is False
        assert repos.users.get(user.id) == dataclasses.replace(user, totp_last_step=1000)
    with database.transaction() as repos:
        assert repos.users.use_totp_step(user.id, 1000) is False
        assert repos.users.use_totp_step(user.id, 1001) is True
        assert repos.users.use_totp_step(UserId(new_id()), 5000) is False
    assert get_user(database, user.id).totp_last_step == 1001


def test_set_totp_secret_forgets_the_last_step(database: SqlDatabase) -> None:
    """Re-enrolling sets the new secret and forgets the last step, so the new authenticator's
    first code is accepted even if its step is not later."""
    user = add_user(database)
    with database.transaction() as repos:
        repos.users.use_totp_step(user.id, 1000)
        assert repos.users.set_totp_secret(user.id, "NEWSECRET") is True
        assert repos.users.set_totp_secret(UserId(new_id()), "X") is False
    got = get_user(database, user.id)
    assert (got.totp_secret, got.totp_last_step) == ("NEWSECRET", None)
    with database.transaction() as repos:
        assert repos.users.use_totp_step(user.id, 1000) is True


def test_use_totp_step_waits_for_a_concurrent_use_and_then_refuses(database: SqlDatabase) -> None:
    """While one transaction has accepted a step but not committed, a second use of the same
    step waits, then is refused: the conditional UPDATE re-checks the committed row."""
    user = add_user(database)
    second: list[bool] = []

    def replay() -> None:
        with database.transaction() as repos:
            second.append(repos.users.use_totp_step(user.id, 77))

    with database.transaction() as repos:
        assert repos.users.use_totp_step(user.id, 77) is True
        thread, errors = in_thread(replay)
        thread.join(timeout=0.5)
        assert thread.is_alive(), "the replay should wait for the first transaction"
    thread.join(timeout=30)
    assert not errors, errors
    assert second == [False]


def test_use_totp_step_racing_threads_accept_each_step_exactly_once(database: SqlDatabase) -> None:
    """Two threads presenting the same code at the same moment, many times over: for every
    step exactly one of them is accepted."""
    user = add_user(database)
    rounds = 25
    results: dict[int, list[bool]] = {step: [] for step in range(rounds)}
    lock = threading.Lock()
    barrier = threading.Barrier(2)

    def login() -> None:
        for step in range(rounds):
            barrier.wait(timeout=30)
            with database.transaction() as repos:
                ok = repos.users.use_totp_step(user.id, step)
            with lock:
                results[step].append(ok)

    threads = [in_thread(login) for _ in range(2)]
    for thread, _ in threads:
        thread.join(timeout=120)
    assert not [e for _, errors in threads for e in errors]
    assert all(sorted(r) == [False, True] for r in results.values()), results


def test_record_failure_counts_and_clear_failures_resets(database: SqlDatabase) -> None:
    """record_failure() increments the count and sets (or clears) the back-off deadline;
    clear_failures() resets both; an unknown user is a StorageError."""
    user = add_user(database)
    with database.transaction() as repos:
        assert repos.users.record_failure(user.id, None) == 1
        assert repos.users.record_failure(user.id, 5_000) == 2
    got = get_user(database, user.id)
    assert (got.failed_logins, got.locked_until) == (2, 5_000)
    with database.transaction() as repos:
        repos.users.clear_failures(user.id)
        repos.users.clear_failures(UserId(new_id()))  # a no-op
        with pytest.raises(StorageError, match="no such user"):
            repos.users.record_failure(UserId(new_id()), None)
    assert get_user(database, user.id) == user


def test_concurrent_failures_are_all_counted(database: SqlDatabase) -> None:
    """Failed logins racing in parallel transactions each count (no lost update)."""
    user = add_user(database)
    workers, rounds = 4, 10

    def fail() -> None:
        for _ in range(rounds):
            with database.transaction() as repos:
                repos.users.record_failure(user.id, None)

    threads = [in_thread(fail) for _ in range(workers)]
    for thread, _ in threads:
        thread.join(timeout=120)
    assert not [e for _, errors in threads for e in errors]
    assert get_user(database, user.id).failed_logins == workers * rounds


# --- reader keys ---------------------------------------------------------------------------------


def test_user_recipients_add_list_remove(database: SqlDatabase) -> None:
    """Keys are listed per user by name; remove() reports whether a key was removed."""
    ann, bob = add_user(database, "ann"), add_user(database, "bob")
    with database.transaction() as repos:
        laptop = repos.user_recipients.add(ann.id, "age1laptop", "laptop")
        desk = repos.user_recipients.add(ann.id, "age1desk", "desk")
        bobs = repos.user_recipients.add(bob.id, "age1bob", "bob's")
    assert (laptop.user_id, laptop.public_key, laptop.name) == (ann.id, "age1laptop", "laptop")
    with database.transaction() as repos:
        assert repos.user_recipients.for_user(ann.id) == [desk, laptop]
        assert repos.user_recipients.for_user(bob.id) == [bobs]
        assert repos.user_recipients.remove(desk.id) is True
        assert repos.user_recipients.remove(desk.id) is False
        assert repos.user_recipients.remove(RecipientId(new_id())) is False
    with database.transaction() as repos:
        assert repos.user_recipients.for_user(ann.id) == [laptop]


def test_user_recipient_key_is_unique_across_users_and_user_must_exist(
    database: SqlDatabase,
) -> None:
    """The same public key cannot be registered twice, by the same or another user; a key for
    an unknown user is refused."""
    ann, bob = add_user(database, "ann"), add_user(database, "bob")
    with database.transaction() as repos:
        repos.user_recipients.add(ann.id, "age1same", "laptop")
    for owner in (ann.id, bob.id):
        with pytest.raises(StorageError), database.transaction() as repos:
            repos.user_recipients.add(owner, "age1same", "again")
    with pytest.raises(StorageError), database.transaction() as repos:
        repos.user_recipients.add(UserId(new_id()), "age1nobody", "x")


def test_active_public_keys_leave_out_disabled_users(database: SqlDatabase) -> None:
    """Every key of every enabled user, sorted; a disabled user's keys drop out at once and come
    back when the user is enabled again."""
    ann, bob = add_user(database, "ann"), add_user(database, "bob")
    with database.transaction() as repos:
        assert repos.user_recipients.active_public_keys() == []
        repos.user_recipients.add(ann.id, "age1b", "laptop")
        repos.user_recipients.add(ann.id, "age1a", "desk")
        repos.user_recipients.add(bob.id, "age1c", "bob")
        repos.recipients.add("age1org", "organisation")  # a separate list
        assert repos.user_recipients.active_public_keys() == ["age1a", "age1b", "age1c"]
        repos.users.set_disabled(ann.id, True)
        assert repos.user_recipients.active_public_keys() == ["age1c"]
    with database.transaction() as repos:
        assert repos.user_recipients.active_public_keys() == ["age1c"]
        repos.users.set_disabled(ann.id, False)
        assert repos.user_recipients.active_public_keys() == ["age1a", "age1b", "age1c"]


# --- tokens --------------------------------------------------------------------------------------


def test_tokens_add_get_delete(database: SqlDatabase) -> None:
    """A token round-trips by its hash; delete() reports whether it was there; a token for an
    unknown user or a duplicate hash is refused."""
    user = add_user(database)
    token = TokenRecord(b"\x01" * 32, user.id, 100, 200)
    with database.transaction() as repos:
        repos.tokens.add(token)
    with database.transaction() as repos:
        assert repos.tokens.get(token.token_hash) == token
        assert repos.tokens.get(b"\x02" * 32) is None
    with pytest.raises(StorageError), database.transaction() as repos:
        repos.tokens.add(TokenRecord(b"\x01" * 32, user.id, 1, 2))
    with pytest.raises(StorageError), database.transaction() as repos:
        repos.tokens.add(TokenRecord(b"\x03" * 32, UserId(new_id()), 1, 2))
    with database.transaction() as repos:
        assert repos.tokens.delete(token.token_hash) is True
        assert repos.tokens.delete(token.token_hash) is False
        assert repos.tokens.get(token.token_hash) is None


def test_tokens_delete_for_user_and_purge_expired(database: SqlDatabase) -> None:
    """delete_for_user() removes one user's tokens and counts them; purge_expired(now) removes
    tokens whose expires_at <= now, of every user, and counts them."""
    ann, bob = add_user(database, "ann"), add_user(database, "bob")
    tokens = {
        "ann1": TokenRecord(b"ann1", ann.id, 0, 500),
        "ann2": TokenRecord(b"ann2", ann.id, 0, 900),
        "bob1": TokenRecord(b"bob1", bob.id, 0, 499),
        "bob2": TokenRecord(b"bob2", bob.id, 0, 500),
        "bob3": TokenRecord(b"bob3", bob.id, 0, 501),
    }
    with database.transaction() as repos:
        for record in tokens.values():
            repos.tokens.add(record)
    with database.transaction() as repos:
        assert repos.tokens.purge_expired(500) == 3  # ann1, bob1, bob2
        assert repos.tokens.get(b"bob3") == tokens["bob3"]
        assert repos.tokens.delete_for_user(ann.id) == 1  # ann2
        assert repos.tokens.delete_for_user(ann.id) == 0
    with database.transaction() as repos:
        assert repos.tokens.get(b"ann2") is None
        assert repos.tokens.get(b"bob3") == tokens["bob3"]


# --- seen marks ----------------------------------------------------------------------------------


def test_seen_mark_is_idempotent(database: SqlDatabase) -> None:
    """Marking again, marking duplicates in one call, or an empty list is never an error, and
    each (user, item) is stored once; marks are per user."""
    ann, bob = add_user(database, "ann"), add_user(database, "bob")
    items = [new_id() for _ in range(3)]
    with database.transaction() as repos:
        repos.seen.mark(ann.id, items[:2])
        repos.seen.mark(ann.id, [items[0], items[0], items[2]])
        repos.seen.mark(ann.id, [])
    with database.transaction() as repos:
        repos.seen.mark(ann.id, items)
        assert repos.seen.seen_among(ann.id, [*items, new_id()]) == set(items)
        assert repos.seen.seen_among(bob.id, items) == set()
        assert repos.seen.seen_among(ann.id, []) == set()
    assert count_rows(database, "seen") == 3


def test_seen_mark_of_an_unknown_user_is_refused(database: SqlDatabase) -> None:
    """The user must exist (foreign key)."""
    with pytest.raises(StorageError), database.transaction() as repos:
        repos.seen.mark(UserId(new_id()), [new_id()])


def test_seen_concurrent_marks_of_the_same_item_do_not_collide(database: SqlDatabase) -> None:
    """A second transaction marking what an uncommitted one just marked waits, then does
    nothing: no duplicate-key error on either backend."""
    user = add_user(database)
    item = new_id()

    def mark_again() -> None:
        with database.transaction() as repos:
            repos.seen.mark(user.id, [item])

    with database.transaction() as repos:
        repos.seen.mark(user.id, [item])
        thread, errors = in_thread(mark_again)
        thread.join(timeout=0.5)
        assert thread.is_alive(), "the second mark should wait for the first transaction"
    thread.join(timeout=30)
    assert not errors, errors
    assert count_rows(database, "seen") == 1


def test_seen_handles_more_items_than_one_statement_takes(database: SqlDatabase) -> None:
    """Thousands of items are marked and looked up (in bounded statements)."""
    user = add_user(database)
    items = [new_id() for _ in range(2_500)]
    with database.transaction() as repos:
        repos.seen.mark(user.id, items)
        repos.seen.mark(user.id, items[::2])
        assert repos.seen.seen_among(user.id, items) == set(items)
    assert count_rows(database, "seen") == len(items)


def test_unread_counts_per_source_in_one_query(database: SqlDatabase) -> None:
    """Per requested source: submissions the user has not marked seen (replies do not count);
    0 for a source read in full, without submissions, or unknown; one SELECT for all."""
    ann, bob = add_user(database, "ann"), add_user(database, "bob")
    a, b, empty = add_source(database), add_source(database), add_source(database)
    a_subs = [add_submission(database, a.id) for _ in range(3)]
    b_subs = [add_submission(database, b.id) for _ in range(2)]
    with database.transaction() as repos:
        seq = repos.sources.reserve_sequence(a.id, 1)
        reply = repos.replies.add(a.id, seq, DAY, BlobKey(new_id()), 1)
        repos.seen.mark(ann.id, [a_subs[0].id, reply.id, *(s.id for s in b_subs)])
    unknown = SourceId(new_id())
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    with database.transaction() as repos:
        repos.users.get(ann.id)  # the transaction has begun before we listen
        event.listen(database.engine, "before_cursor_execute", record)
        try:
            counts = repos.seen.unread_counts(ann.id, [a.id, b.id, empty.id, unknown])
        finally:
            event.remove(database.engine, "before_cursor_execute", record)
        assert counts == {a.id: 2, b.id: 0, empty.id: 0, unknown: 0}
        assert repos.seen.unread_counts(bob.id, [a.id, b.id]) == {a.id: 3, b.id: 2}
        assert repos.seen.unread_counts(ann.id, []) == {}
    assert len(statements) == 1, statements


# --- deleting a user -----------------------------------------------------------------------------


def test_deleting_a_user_cascades_to_keys_tokens_and_seen_marks(database: SqlDatabase) -> None:
    """A DELETE of a user row removes its reader keys, tokens and seen marks in the database
    (SQLite included), and nobody else's."""
    ann, bob = add_user(database, "ann"), add_user(database, "bob")
    item = new_id()
    with database.transaction() as repos:
        for user in (ann, bob):
            repos.user_recipients.add(user.id, f"age1{user.username}", "laptop")
            repos.tokens.add(TokenRecord(user.username.encode(), user.id, 0, 10))
            repos.seen.mark(user.id, [item])
    with database.engine.begin() as conn:
        conn.execute(text("DELETE FROM users WHERE id = :id"), {"id": ann.id})
    with database.transaction() as repos:
        assert repos.users.get(ann.id) is None
        assert repos.user_recipients.for_user(ann.id) == []
        assert repos.tokens.get(b"ann") is None
        assert repos.seen.seen_among(ann.id, [item]) == set()
        assert len(repos.user_recipients.for_user(bob.id)) == 1
        assert repos.tokens.get(b"bob") is not None
        assert repos.seen.seen_among(bob.id, [item]) == {item}
    for table in ("user_recipients", "api_tokens", "seen"):
        assert count_rows(database, table) == 1, table


# --- audit log and settings ----------------------------------------------------------------------


def test_audit_page_is_newest_first_with_a_before_id_cursor(database: SqlDatabase) -> None:
    """Entries come back newest first; the last id of a page is the before_id of the next;
    the pages together hold every entry once."""
    with database.transaction() as repos:
        assert repos.audit.page(before_id=None, limit=10) == []
        for n in range(7):
            pseudonym = None if n % 2 else f"source {n}"
            repos.audit.add(DAY + dt.timedelta(days=n), f"user{n}", f"action{n}", pseudonym)
    with database.transaction() as repos:
        first = repos.audit.page(before_id=None, limit=3)
        assert [e.action for e in first] == ["action6", "action5", "action4"]
        assert first[0] == AuditRecord(
            first[0].id, DAY + dt.timedelta(days=6), "user6", "action6", "source 6"
        )
        assert first[1].source_pseudonym is None
        pages = [first]
        while pages[-1]:
            pages.append(repos.audit.page(before_id=pages[-1][-1].id, limit=3))
        with pytest.raises(ValueError, match="limit"):
            repos.audit.page(before_id=None, limit=0)
    entries = [e for page in pages for e in page]
    assert [len(p) for p in pages] == [3, 3, 1, 0]
    assert [e.action for e in entries] == [f"action{n}" for n in range(6, -1, -1)]
    assert [e.id for e in entries] == sorted({e.id for e in entries}, reverse=True)


@pytest.mark.parametrize("bound", [2**31, 2**62])
def test_audit_page_before_an_id_beyond_the_column_type_lists_everything(
    database: SqlDatabase, bound: int
) -> None:
    """A before_id larger than the 32-bit id column can hold (the API allows up to 2**62) means
    "from the newest": no database error (PostgreSQL refused it as out of range)."""
    with database.transaction() as repos:
        repos.audit.add(DAY, "user", "action", None)
    with database.transaction() as repos:
        assert [e.action for e in repos.audit.page(before_id=bound, limit=5)] == ["action"]


def test_settings_set_inserts_then_overwrites(database: SqlDatabase) -> None:
    """set() adds a key or replaces its value (an upsert, within one transaction too); all()
    returns every key."""
    with database.transaction() as repos:
        assert repos.settings.all() == {}
        repos.settings.set("instance_name", "Tribune")
        repos.settings.set("max_upload_mb", "100")
        repos.settings.set("instance_name", "Daily Tribune")
        assert repos.settings.all() == {"instance_name": "Daily Tribune", "max_upload_mb": "100"}
    with database.transaction() as repos:
        repos.settings.set("max_upload_mb", "")
    with database.transaction() as repos:
        assert repos.settings.all() == {"instance_name": "Daily Tribune", "max_upload_mb": ""}
