"""SessionService: split-knowledge source sessions on a real SQLite database (invariant 4)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from bech32 import bech32_decode, convertbits
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import inspect, text

from sealdrop.crypto.keys import Identity, generate_identity
from sealdrop.errors import SessionRequired
from sealdrop.ids import SourceId
from sealdrop.services.sessions import TOUCH_INTERVAL_SECONDS, SessionService
from sealdrop.storage.database import SqlDatabase, sqlite_url_for
from sealdrop.testing import FakeClock

IDLE = 600
ABSOLUTE = 3600


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "sessions.sqlite3"


@pytest.fixture
def database(db_path: Path) -> Iterator[SqlDatabase]:
    db = SqlDatabase(sqlite_url_for(db_path))
    db.upgrade()
    yield db
    db.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sessions(database: SqlDatabase, clock: FakeClock) -> SessionService:
    return SessionService(database, clock, IDLE, ABSOLUTE)


def add_source(database: SqlDatabase, lookup_id: bytes = b"lookup-1") -> SourceId:
    with database.transaction() as repos:
        return repos.sources.add(lookup_id, "age1placeholder", None, "test source", None).id


@pytest.fixture
def source_id(database: SqlDatabase) -> SourceId:
    return add_source(database)


def cookie_halves(cookie: str) -> tuple[bytes, bytes]:
    raw = base64.urlsafe_b64decode(cookie + "=" * (-len(cookie) % 4))
    assert len(raw) == 64
    return raw[:32], raw[32:]


def session_rows(database: SqlDatabase) -> list[tuple[bytes, bytes, int, int]]:
    with database.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id_hash, sealed_identity, created_at, last_seen_at FROM source_sessions")
        )
        return [tuple(row) for row in rows]


def secret_scalar(identity: Identity) -> bytes:
    """The 32 raw secret bytes inside an AGE-SECRET-KEY-1… string."""
    _, data = bech32_decode(str(identity).lower())
    assert data is not None
    scalar = convertbits(data, 5, 8, False)
    assert scalar is not None
    return bytes(scalar)


def database_bytes(db_path: Path) -> bytes:
    """Every byte SQLite keeps for this database: the file, its WAL and shared memory."""
    parts = [p.read_bytes() for p in db_path.parent.glob(db_path.name + "*") if p.is_file()]
    return b"".join(parts)


# --- round trip and what the server keeps --------------------------------------------------------


def test_open_then_resolve_gives_back_the_same_reply_identity(
    sessions: SessionService, source_id: SourceId
) -> None:
    """The cookie from open() resolves to the same source and the same reply identity."""
    identity = generate_identity()
    cookie = sessions.open(source_id, identity)
    session = sessions.resolve(cookie)
    assert session.source_id == source_id
    assert str(session.reply_identity) == str(identity)
    assert session.id_hash == hashlib.sha256(cookie_halves(cookie)[0]).digest()


def test_cookie_is_64_random_bytes_as_unpadded_urlsafe_base64(
    sessions: SessionService, source_id: SourceId
) -> None:
    """The cookie value is cookie-safe text and differs between two sessions of one source."""
    identity = generate_identity()
    first, second = sessions.open(source_id, identity), sessions.open(source_id, identity)
    for cookie in (first, second):
        assert len(cookie) == 86
        assert set(cookie) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        )
    assert first != second
    assert cookie_halves(first)[0] != cookie_halves(second)[0]
    assert cookie_halves(first)[1] != cookie_halves(second)[1]


def test_row_holds_only_the_hash_of_the_session_id(
    sessions: SessionService, database: SqlDatabase, source_id: SourceId
) -> None:
    """The stored row has SHA-256(id); neither the id nor the key appears in any column."""
    cookie = sessions.open(source_id, generate_identity())
    session_id, session_key = cookie_halves(cookie)
    [row] = session_rows(database)
    assert row[0] == hashlib.sha256(session_id).digest()
    stored = b"".join(v if isinstance(v, bytes) else str(v).encode() for v in row)
    assert session_id not in stored
    assert session_key not in stored
    assert cookie.encode() not in stored


def test_database_file_never_holds_the_reply_identity_or_cookie_halves(
    sessions: SessionService, source_id: SourceId, db_path: Path
) -> None:
    """The SQLite file (and its WAL) contains neither the reply secret key nor the cookie."""
    identity = generate_identity()
    cookie = sessions.open(source_id, identity)
    sessions.resolve(cookie)  # a touch writes the row again
    session_id, session_key = cookie_halves(cookie)
    on_disk = database_bytes(db_path)
    assert len(on_disk) > 0
    secret_text = str(identity)
    for needle in (
        secret_text.encode(),
        secret_text.lower().encode(),
        secret_scalar(identity),
        session_id,
        session_key,
        cookie.encode(),
    ):
        assert needle not in on_disk


def test_sealed_identity_cannot_be_moved_to_another_row(
    sessions: SessionService, database: SqlDatabase, source_id: SourceId
) -> None:
    """A sealed identity is bound to its row: swapping two rows' blobs opens neither session."""
    first = sessions.open(source_id, generate_identity())
    second = sessions.open(source_id, generate_identity())
    hash_a = hashlib.sha256(cookie_halves(first)[0]).digest()
    hash_b = hashlib.sha256(cookie_halves(second)[0]).digest()
    # Someone with write access to the DB swaps the sealed blobs: each is now under a row whose
    # id hash is not the additional data it was sealed with, so neither cookie may open it.
    with database.engine.begin() as conn:
        sealed: dict[bytes, bytes] = dict(
            conn.execute(text("SELECT id_hash, sealed_identity FROM source_sessions")).all()
        )
        conn.execute(
            text("UPDATE source_sessions SET sealed_identity = :s WHERE id_hash = :h"),
            [{"s": sealed[hash_b], "h": hash_a}, {"s": sealed[hash_a], "h": hash_b}],
        )
    for cookie in (first, second):
        with pytest.raises(SessionRequired):
            sessions.resolve(cookie)


# --- expiry ------------------------------------------------------------------------------------


def test_session_lives_exactly_until_the_idle_timeout(
    sessions: SessionService, clock: FakeClock, source_id: SourceId
) -> None:
    """At exactly `idle` seconds of silence the session still opens; one second more and not."""
    cookie = sessions.open(source_id, generate_identity())
    clock.advance(IDLE)
    sessions.resolve(cookie)
    clock.advance(IDLE + 1)
    with pytest.raises(SessionRequired) as raised:
        sessions.resolve(cookie)
    assert raised.value.expired is True


def test_each_request_extends_the_idle_window(
    sessions: SessionService, clock: FakeClock, source_id: SourceId
) -> None:
    """Activity every idle-1 seconds keeps a session open past several idle periods."""
    cookie = sessions.open(source_id, generate_identity())
    for _ in range(4):
        clock.advance(IDLE - 1)
        sessions.resolve(cookie)


def test_last_seen_is_written_at_most_once_a_minute_and_the_idle_window_holds(
    sessions: SessionService, clock: FakeClock, source_id: SourceId, database: SqlDatabase
) -> None:
    """Requests within a minute of the last recorded one write nothing (a page that only reads
    takes no write lock); the idle timeout then counts from the recorded time, so a session is
    never kept longer than `idle` seconds after the last write, and never more than a minute
    shorter than `idle` after its last request."""

    def last_seen() -> int:
        (row,) = session_rows(database)
        return row[3]

    cookie = sessions.open(source_id, generate_identity())
    opened = last_seen()
    clock.advance(TOUCH_INTERVAL_SECONDS - 1)
    sessions.resolve(cookie)
    assert last_seen() == opened
    clock.advance(1)
    sessions.resolve(cookie)
    touched = last_seen()
    assert touched == opened + TOUCH_INTERVAL_SECONDS
    clock.advance(30)
    sessions.resolve(cookie)  # not written: within a minute of the last write
    assert last_seen() == touched
    clock.advance(IDLE - 30)
    sessions.resolve(cookie)  # exactly `idle` after the write: still open
    assert last_seen() == touched + IDLE


def test_absolute_timeout_ends_even_an_active_session(
    sessions: SessionService, clock: FakeClock, source_id: SourceId
) -> None:
    """However active, a session ends `absolute` seconds after it began."""
    cookie = sessions.open(source_id, generate_identity())
    elapsed = 0
    while elapsed + IDLE // 2 <= ABSOLUTE:
        clock.advance(IDLE // 2)
        elapsed += IDLE // 2
        sessions.resolve(cookie)
    assert elapsed == ABSOLUTE
    clock.advance(1)
    with pytest.raises(SessionRequired) as raised:
        sessions.resolve(cookie)
    assert raised.value.expired is True


@pytest.mark.parametrize("timeout", ["idle", "absolute"])
def test_expired_session_row_is_deleted(
    sessions: SessionService,
    database: SqlDatabase,
    clock: FakeClock,
    source_id: SourceId,
    timeout: str,
) -> None:
    """Presenting an expired cookie removes the server half (and its timestamps) at once."""
    cookie = sessions.open(source_id, generate_identity())
    if timeout == "idle":
        clock.advance(IDLE + 1)
    else:
        for _ in range(ABSOLUTE // (IDLE // 2)):  # active until exactly the absolute limit
            clock.advance(IDLE // 2)
            sessions.resolve(cookie)
        clock.advance(1)
    with pytest.raises(SessionRequired) as raised:
        sessions.resolve(cookie)
    assert raised.value.expired is True
    assert session_rows(database) == []


def test_expired_session_stays_refused(
    sessions: SessionService, clock: FakeClock, source_id: SourceId
) -> None:
    """An expired cookie never comes back to life, even if asked again later."""
    cookie = sessions.open(source_id, generate_identity())
    clock.advance(IDLE + 1)
    for _ in range(2):
        with pytest.raises(SessionRequired):
            sessions.resolve(cookie)


def test_purge_expired_removes_exactly_the_expired_sessions(
    sessions: SessionService, database: SqlDatabase, clock: FakeClock, source_id: SourceId
) -> None:
    """purge_expired deletes idle and too-old rows, returns how many, and spares live ones."""
    idle_one = sessions.open(source_id, generate_identity())
    old_one = sessions.open(source_id, generate_identity())
    # old_one stays active until it passes the absolute limit.
    for _ in range(ABSOLUTE // (IDLE // 2)):
        clock.advance(IDLE // 2)
        sessions.resolve(old_one)
    clock.advance(IDLE // 2)
    fresh = sessions.open(source_id, generate_identity())
    assert len(session_rows(database)) == 3
    assert sessions.purge_expired() == 2
    assert len(session_rows(database)) == 1
    sessions.resolve(fresh)
    for cookie in (idle_one, old_one):
        with pytest.raises(SessionRequired):
            sessions.resolve(cookie)
    assert sessions.purge_expired() == 0


# --- forged, broken and closed cookies ---------------------------------------------------------


def test_right_id_with_wrong_key_is_refused_and_harmless(
    sessions: SessionService, database: SqlDatabase, clock: FakeClock, source_id: SourceId
) -> None:
    """A cookie with the real id but another key opens nothing and does not touch the row."""
    cookie = sessions.open(source_id, generate_identity())
    session_id, session_key = cookie_halves(cookie)
    [before] = session_rows(database)
    clock.advance(10)
    for wrong_key in (bytes(32), bytes([session_key[0] ^ 1]) + session_key[1:]):
        forged = base64.urlsafe_b64encode(session_id + wrong_key).rstrip(b"=").decode()
        with pytest.raises(SessionRequired) as raised:
            sessions.resolve(forged)
        assert raised.value.expired is False
    assert session_rows(database) == [before]
    sessions.resolve(cookie)  # the real session is unharmed


def test_right_key_with_unknown_id_is_refused(
    sessions: SessionService, source_id: SourceId
) -> None:
    """A cookie whose id was never issued is refused even with a real session key."""
    _, session_key = cookie_halves(sessions.open(source_id, generate_identity()))
    forged = base64.urlsafe_b64encode(bytes(32) + session_key).rstrip(b"=").decode()
    with pytest.raises(SessionRequired):
        sessions.resolve(forged)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "A",
        "AAAA",
        "A" * 85,
        "A" * 87,
        "A" * 200,
        "%%%%",
        "====",
        "é" * 86,
        "\x00" * 86,
        "\ud800",
        "ключ" * 22,
        base64.urlsafe_b64encode(bytes(63)).decode(),
        base64.urlsafe_b64encode(bytes(65)).decode(),
        base64.urlsafe_b64encode(bytes(64)).decode(),
    ],
)
def test_malformed_cookie_raises_only_session_required(
    sessions: SessionService, source_id: SourceId, value: str | None
) -> None:
    """Absent, short, long, non-base64 or non-ASCII cookies give SessionRequired, nothing else."""
    sessions.open(source_id, generate_identity())
    with pytest.raises(SessionRequired) as raised:
        sessions.resolve(value)
    assert raised.value.expired is False


@settings(max_examples=200, deadline=None)
@given(
    value=st.one_of(
        st.text(max_size=200),
        st.binary(min_size=64, max_size=64).map(
            lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
        ),
    )
)
def test_arbitrary_cookie_text_raises_only_session_required(value: str) -> None:
    """Whatever a client puts in the cookie, resolve() answers SessionRequired, never a crash."""
    # A fresh service per example would be slow; an empty database suffices: no row can match.
    sessions = _shared_empty_sessions()
    with pytest.raises(SessionRequired):
        sessions.resolve(value)


_EMPTY: list[SessionService] = []


def _shared_empty_sessions() -> SessionService:
    # Hypothesis forbids function-scoped fixtures in @given tests; an in-memory database built
    # once serves every example (it never gains a row: these tests only resolve).
    if not _EMPTY:
        db = SqlDatabase("sqlite+pysqlite:///:memory:")
        db.upgrade()
        _EMPTY.append(SessionService(db, FakeClock(), IDLE, ABSOLUTE))
    return _EMPTY[0]


def test_close_makes_the_cookie_useless(
    sessions: SessionService, database: SqlDatabase, source_id: SourceId
) -> None:
    """After logout the row is gone and the same cookie opens nothing (not even 'expired')."""
    cookie = sessions.open(source_id, generate_identity())
    other = sessions.open(source_id, generate_identity())
    sessions.close(cookie)
    assert len(session_rows(database)) == 1
    with pytest.raises(SessionRequired) as raised:
        sessions.resolve(cookie)
    assert raised.value.expired is False
    sessions.resolve(other)  # only the closed session ended


@pytest.mark.parametrize("value", [None, "", "garbage", "é", "A" * 86])
def test_close_with_a_missing_or_broken_cookie_does_nothing(
    sessions: SessionService, database: SqlDatabase, source_id: SourceId, value: str | None
) -> None:
    """Logging out without a valid cookie neither fails nor ends anyone else's session."""
    cookie = sessions.open(source_id, generate_identity())
    sessions.close(value)
    assert len(session_rows(database)) == 1
    sessions.resolve(cookie)


def test_deleting_the_source_ends_its_sessions(
    sessions: SessionService, database: SqlDatabase, source_id: SourceId
) -> None:
    """A session of a deleted source no longer opens, and its row is deleted when its cookie
    comes back (no foreign key can cascade: rows do not name their source)."""
    cookie = sessions.open(source_id, generate_identity())
    other = sessions.open(add_source(database, b"lookup-2"), generate_identity())
    with database.engine.begin() as conn:
        conn.execute(text("DELETE FROM sources WHERE id = :id"), {"id": source_id})
    with pytest.raises(SessionRequired) as refused:
        sessions.resolve(cookie)
    assert refused.value.expired is False
    assert len(session_rows(database)) == 1
    sessions.resolve(other)


# --- unlinkable rows, one login at a time --------------------------------------------------------


def test_no_session_column_names_or_orders_by_its_source(database: SqlDatabase) -> None:
    """source_sessions has no column that could hold a source id (only the id hash, the sealed
    value, two times and the confirmed flag), no foreign key, and no implicit SQLite rowid that
    would keep rows in the order they were inserted."""
    inspector = inspect(database.engine)
    columns = {c["name"] for c in inspector.get_columns("source_sessions")}
    assert columns == {"id_hash", "sealed_identity", "created_at", "last_seen_at", "confirmed"}
    assert inspector.get_foreign_keys("source_sessions") == []
    assert inspector.get_indexes("source_sessions") == []
    with database.engine.connect() as conn:
        ddl = conn.execute(
            text("SELECT sql FROM sqlite_master WHERE name = 'source_sessions'")
        ).scalar_one()
    assert "WITHOUT ROWID" in ddl


def test_the_database_cannot_tell_whose_session_a_row_is(
    sessions: SessionService, database: SqlDatabase, source_id: SourceId
) -> None:
    """Two sources' sessions: neither row holds either source's id or any of its columns, and
    the sealed values have one length, so nothing but a cookie pairs a row with its source."""
    other = add_source(database, b"lookup-2")
    sessions.open(source_id, generate_identity())
    sessions.open(other, generate_identity())
    rows = session_rows(database)
    with database.transaction() as repos:
        sources = [repos.sources.get(i) for i in (source_id, other)]
    for source in sources:
        assert source is not None
        for row in rows:
            stored = b"".join(v if isinstance(v, bytes) else str(v).encode() for v in row)
            for value in (source.id.encode(), source.lookup_id, source.session_epoch):
                assert value not in stored
    assert len({len(row[1]) for row in rows}) == 1


def test_a_login_ends_the_sources_other_sessions_only(
    sessions: SessionService, database: SqlDatabase, source_id: SourceId
) -> None:
    """A session opened by a login (end_others) makes every earlier session of that source stop
    opening (and deletes their rows when they come back); another source's session stays."""
    first = sessions.open(source_id, generate_identity())
    start = sessions.open(source_id, generate_identity(), confirmed=False)
    other = sessions.open(add_source(database, b"lookup-2"), generate_identity())
    latest = sessions.open(source_id, generate_identity(), end_others=True)
    for cookie in (first, start):
        with pytest.raises(SessionRequired) as refused:
            sessions.resolve(cookie)
        assert refused.value.expired is False
    assert len(session_rows(database)) == 2
    assert sessions.resolve(latest).source_id == source_id
    sessions.resolve(other)


def test_a_login_replaces_the_epoch_with_random_bytes_not_a_count(
    sessions: SessionService, database: SqlDatabase, source_id: SourceId
) -> None:
    """Each login writes new random bytes (16), never a number that would count the logins."""
    epochs = []
    for _ in range(3):
        sessions.open(source_id, generate_identity(), end_others=True)
        with database.transaction() as repos:
            source = repos.sources.get(source_id)
        assert source is not None
        epochs.append(source.session_epoch)
    assert len(set(epochs)) == 3
    assert all(len(e) == 16 for e in epochs)


def test_opening_a_session_for_a_missing_source_fails(sessions: SessionService) -> None:
    """No row is written for a source that does not exist (deleted meanwhile)."""
    with pytest.raises(SessionRequired):
        sessions.open(SourceId("0" * 32), generate_identity())
    with pytest.raises(SessionRequired):
        sessions.open(SourceId("0" * 32), generate_identity(), end_others=True)


def test_opening_times_are_kept_to_the_minute(
    sessions: SessionService, database: SqlDatabase, clock: FakeClock, source_id: SourceId
) -> None:
    """A session opened 59 s into a minute records that minute's start, not its second (which
    would equal a new source's pending_since and pair the two rows)."""
    clock.advance(59)
    sessions.open(source_id, generate_identity())
    [row] = session_rows(database)
    assert row[2] == row[3] == int(clock.now()) - 59
    assert row[2] % 60 == 0


# --- CSRF tokens -------------------------------------------------------------------------------


def test_csrf_token_is_stable_within_a_session(
    sessions: SessionService, clock: FakeClock, source_id: SourceId
) -> None:
    """Every resolve of one session gives the same token (a form stays valid while open)."""
    cookie = sessions.open(source_id, generate_identity())
    first = sessions.resolve(cookie).csrf_token
    clock.advance(30)
    assert sessions.resolve(cookie).csrf_token == first
    assert len(first) == 64
    int(first, 16)


def test_csrf_token_differs_between_sessions_and_reveals_no_cookie_half(
    sessions: SessionService, source_id: SourceId
) -> None:
    """Two sessions of the same source have different tokens; no token contains the cookie."""
    identity = generate_identity()
    cookies = [sessions.open(source_id, identity) for _ in range(2)]
    tokens = [sessions.resolve(c).csrf_token for c in cookies]
    assert tokens[0] != tokens[1]
    for cookie, token in zip(cookies, tokens, strict=True):
        session_id, session_key = cookie_halves(cookie)
        assert session_id.hex() not in token
        assert session_key.hex() not in token
        assert token not in cookie


def test_csrf_valid_accepts_only_the_sessions_own_token(
    sessions: SessionService, source_id: SourceId
) -> None:
    """csrf_valid is true for the exact token and false for None, empty, another session's
    token, a case-changed or truncated token, and non-ASCII text."""
    identity = generate_identity()
    session = sessions.resolve(sessions.open(source_id, identity))
    other = sessions.resolve(sessions.open(source_id, identity))
    token = session.csrf_token
    assert SessionService.csrf_valid(session, token)
    for wrong in (
        None,
        "",
        other.csrf_token,
        token.upper(),
        token[:-1],
        token + "0",
        " " + token,
        "é" * 64,
        "\ud800",
    ):
        assert not SessionService.csrf_valid(session, wrong), repr(wrong)
