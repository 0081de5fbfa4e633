"""SQLAlchemy 2 tables.

Metadata minimisation (invariant 6): no row carries a creation or update timestamp beyond what is
listed here. Sources, submissions and replies keep at most a day (``None`` when arrival granularity
is "none"); order comes from per-source sequence numbers, which submissions and replies share.
About sources, epoch seconds appear in two places only, both short-lived: sessions, because
they must expire (they are deleted on logout or expiry, and no session row names its source),
and ``sources.pending_since``, which
records when a source was created only until its first submission (then it is set to NULL), so
that sources that never sent anything can be purged; a source that did send something keeps no
creation time finer than its day. ``sources.version`` is a change counter, not a time: it tells
which source changed last, across sources, but not when.

Journalist accounts carry times about journalists, never about sources, each because a security
check needs it: API tokens expire (``api_tokens``, deleted on logout, revocation or expiry), a
TOTP code must be usable once (``users.totp_last_step``, the last accepted 30-second step, i.e.
roughly the last login), and failed logins back off (``users.locked_until``). The audit log keeps
a day only.

The migration in ``migrations/versions`` creates exactly these tables; a test compares the two.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Deterministic constraint names, so that later migrations can address them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID = String(32)  # ids.new_id(): 32 lowercase hex characters


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Source(Base):
    __tablename__ = "sources"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    # Derived from the codename; the codename itself is never stored (invariant 3).
    lookup_id: Mapped[bytes] = mapped_column(LargeBinary, unique=True, index=True)
    reply_recipient: Mapped[str] = mapped_column(Text)
    created_day: Mapped[dt.date | None] = mapped_column(Date)
    # Shared by submissions and replies: the order of the whole conversation.
    last_seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Journalist-facing name ("adjective noun"); not secret, not unique. The server default only
    # serves rows that existed before the column did.
    pseudonym: Mapped[str] = mapped_column(String(100), server_default="")
    # Epoch seconds of creation, NULL from the first submission on (see the module docstring).
    pending_since: Mapped[int | None] = mapped_column(BigInteger)
    starred: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # From the "source_version" counter (see Counter); 0 until the first bump. Unique once bumped,
    # so that a reader can page "changes since N" with the last version seen as its cursor.
    version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Random bytes, replaced at every codename login. A session carries, sealed, the value that
    # was current when it opened, and is refused once it differs: a login ends the source's
    # other sessions without any session row naming its source. Random, not a counter: a
    # counter would count logins. NULL for sources older than the column, until their next
    # login.
    session_epoch: Mapped[bytes | None] = mapped_column(LargeBinary)

    __table_args__ = (
        # Partial: every source that was never bumped shares version 0.
        Index(
            "ix_sources_version",
            "version",
            unique=True,
            sqlite_where=text("version > 0"),
            postgresql_where=text("version > 0"),
        ),
    )


class Submission(Base):
    __tablename__ = "submissions"
    __table_args__ = (UniqueConstraint("source_id", "seq", name="uq_submissions_source_id_seq"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    source_id: Mapped[str] = mapped_column(ID, ForeignKey("sources.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    arrival_day: Mapped[dt.date | None] = mapped_column(Date)
    blob_key: Mapped[str] = mapped_column(ID, unique=True)
    size: Mapped[int] = mapped_column(BigInteger)
    # An age file; file names and types live only inside it (invariant 5).
    metadata_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The ciphertext blob's content digest, "ALGORITHM:HEX" (sealdrop.digests; 71 characters
    # today, room for a longer algorithm name); '' for rows older than the column (migration 0009).
    digest: Mapped[str] = mapped_column(String(80), default="", server_default="")


class Reply(Base):
    __tablename__ = "replies"
    # seq comes from sources.last_seq like a submission's, so (source_id, seq) is unique across
    # both tables by construction; each table can only enforce it for its own rows.
    __table_args__ = (UniqueConstraint("source_id", "seq", name="uq_replies_source_id_seq"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    source_id: Mapped[str] = mapped_column(
        ID, ForeignKey("sources.id", ondelete="CASCADE"), index=True
    )
    seq: Mapped[int] = mapped_column(Integer)
    arrival_day: Mapped[dt.date | None] = mapped_column(Date)
    # The reply itself is an age file in the blob store, encrypted on the journalist's machine
    # to the source's reply recipient (invariant 2).
    blob_key: Mapped[str] = mapped_column(ID, unique=True)
    size: Mapped[int] = mapped_column(BigInteger)
    digest: Mapped[str] = mapped_column(String(80), default="", server_default="")
    # The journalist who uploaded it; kept as NULL when that account is deleted.
    author_id: Mapped[str | None] = mapped_column(ID, ForeignKey("users.id", ondelete="SET NULL"))


class SourceAssignee(Base):
    """Triage: the account a source is assigned to; no row for a source assigned to nobody.

    A table of its own rather than a column of ``sources``: adding a foreign-key column to
    ``sources`` on SQLite means either rebuilding the table (whose DROP cascades to every
    submission and reply, see migration 0002) or an inline REFERENCES that SQLAlchemy and
    Alembic cannot read back. Deleting the account deletes the row (the source is then assigned
    to nobody: the ON DELETE SET NULL of a column, in table form); a disabled account keeps its
    assignments, so that colleagues see whose they were and re-enabling restores them.
    """

    __tablename__ = "source_assignees"

    source_id: Mapped[str] = mapped_column(
        ID, ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(ID, ForeignKey("users.id", ondelete="CASCADE"), index=True)


class SourceLabel(Base):
    """A triage label on a source ("spam", "follow up"), shared by every journalist.

    ``folded`` is the label case-folded: the primary key makes labels unique per source whatever
    their case, on every backend. ``label`` keeps the spelling it was given.
    """

    __tablename__ = "source_labels"

    source_id: Mapped[str] = mapped_column(
        ID, ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True
    )
    # Labels are at most 32 characters; case folding can lengthen one (ß -> ss), hence the room.
    folded: Mapped[str] = mapped_column(String(128), primary_key=True)
    label: Mapped[str] = mapped_column(String(128))


class SourceHold(Base):
    """Retention: a source a journalist has put on hold; no row for a source not on hold.

    A held source and its items are exempt from every retention rule. A table of its own, not a
    column of ``sources``, for the reason ``SourceAssignee`` gives. No time, no account: the
    audit trail says who set it, on which day.
    """

    __tablename__ = "source_holds"

    source_id: Mapped[str] = mapped_column(
        ID, ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True
    )


class Recipient(Base):
    __tablename__ = "recipients"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    public_key: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(String(200))


class SourceSession(Base):
    """A source's session, which names no source: the source id is inside the sealed value,
    whose key only the cookie holds, so that the database alone cannot tell whose session a row
    is, nor build a timeline of a source's visits from the rows' times (invariant 6)."""

    __tablename__ = "source_sessions"
    # SQLite: no implicit rowid, so rows are kept in the order of their random id_hash, not in
    # the order they were inserted (which would pair a "start" session with the source row
    # inserted just before it).
    __table_args__ = ({"sqlite_with_rowid": False},)

    # Only a hash of the cookie's session id: the DB alone cannot resume a session (invariant 4).
    id_hash: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    # The source id, its session epoch and the reply identity, sealed under a key that lives
    # only in the cookie.
    sealed_identity: Mapped[bytes] = mapped_column(LargeBinary)
    # Epoch seconds, the minute when opened (see services/sessions.py), for the expiry checks.
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_seen_at: Mapped[int] = mapped_column(BigInteger)
    # False from "start" until the source has typed its codename back. Sessions that existed
    # before the column were opened by a codename login, hence the server default.
    confirmed: Mapped[bool] = mapped_column(Boolean, server_default=true())


class Counter(Base):
    """Named instance-wide counters, each one row, advanced by ``UPDATE … RETURNING``.

    The row lock (PostgreSQL) or the write lock (SQLite) is held until commit, so concurrent
    transactions take values one after the other and commit in the order of their values: a
    reader who has seen value N never later finds a newly committed N-1. A database sequence would
    not give that (nextval is not transactional), hence a table.
    """

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    # Stored lower-case, so that the unique constraint is case-insensitive on every backend.
    username: Mapped[str] = mapped_column(String(64), unique=True)
    passphrase_hash: Mapped[str] = mapped_column(Text)  # Argon2id PHC string
    totp_secret: Mapped[str] = mapped_column(String(64), default="", server_default="")
    # The last accepted TOTP time step: a code is accepted once (replay protection).
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    role: Mapped[str] = mapped_column(String(16))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[int | None] = mapped_column(BigInteger)  # epoch seconds


class UserRecipient(Base):
    """The age public keys of a journalist's reader devices (the private keys never leave them)."""

    __tablename__ = "user_recipients"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_id: Mapped[str] = mapped_column(ID, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    public_key: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(String(200))


class ApiToken(Base):
    __tablename__ = "api_tokens"

    # Only a hash of the bearer token: the DB alone authenticates nobody (invariant 8).
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    user_id: Mapped[str] = mapped_column(ID, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)


class Seen(Base):
    """Which submissions and replies a journalist has seen.

    ``item_id`` is a submission's or a reply's id, so it cannot carry a foreign key to either
    table. The repositories' delete methods remove the rows of what they delete; a row that
    escapes (a purge, a race with a concurrent mark) is harmless: ids are random, never reused.
    """

    __tablename__ = "seen"

    user_id: Mapped[str] = mapped_column(
        ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    # Indexed on its own for the delete methods, which remove marks by item for every user.
    item_id: Mapped[str] = mapped_column(ID, primary_key=True, index=True)


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    day: Mapped[dt.date] = mapped_column(Date)
    # A snapshot of the name, not a foreign key: the log outlives renames and removals.
    username: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    source_pseudonym: Mapped[str | None] = mapped_column(String(100))


class NotificationTarget(Base):
    """Where an account's notices go (one row per account that wants them; none: no notices).

    ``watermark`` is a value of the ``submission_activity`` counter, which nothing else stores
    (no submission or source row carries it), so it cannot tie a notice to a submission;
    ``last_slot`` is the number of the last scheduled time at which a notice was claimed (a time
    of the schedule, never of an arrival). See services/notifier.py.
    """

    __tablename__ = "notification_targets"

    user_id: Mapped[str] = mapped_column(
        ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    channel: Mapped[str] = mapped_column(String(16))  # "email" or "apprise"
    # An e-mail address or an Apprise URL (which may hold a token): never logged or echoed.
    address: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(16))
    watermark: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    last_slot: Mapped[int | None] = mapped_column(BigInteger)


class InstanceSetting(Base):
    __tablename__ = "instance_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class LoginBudget(Base):
    """A login budget shared by the workers of a PostgreSQL instance (services/throttle.py): a
    token bucket, counted in seconds of the database server's clock. UNLOGGED there (0008)."""

    __tablename__ = "login_budgets"

    name: Mapped[str] = mapped_column(String(16), primary_key=True)  # "source" or "api"
    tokens: Mapped[float] = mapped_column(Float)
    counted_at: Mapped[float] = mapped_column(Float)


class UploadAllowance(Base):
    """Bytes a source's uploads stored or set aside on one UTC day (``day``: days since
    1970-01-01), shared by the workers of a PostgreSQL instance (services/upload_quota.py).
    Deleted once the day is over, and with the source. UNLOGGED on PostgreSQL (0008)."""

    __tablename__ = "upload_allowances"

    source_id: Mapped[str] = mapped_column(
        ID, ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[int] = mapped_column(Integer, primary_key=True)
    used: Mapped[int] = mapped_column(BigInteger)


class UploadLease(Base):
    """The request writing a resumable upload now, among several workers (``holder``: a random
    token of that request; ``until``: seconds of the database's clock). Deleted when the
    request ends. UNLOGGED on PostgreSQL (0008)."""

    __tablename__ = "upload_leases"

    upload_id: Mapped[str] = mapped_column(ID, primary_key=True)
    holder: Mapped[str] = mapped_column(ID)
    until: Mapped[float] = mapped_column(Float)
