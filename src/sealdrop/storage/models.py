"""SQLAlchemy 2 tables.

Metadata minimisation (invariant 6): no row carries a creation or update timestamp beyond what is
listed here. Sources, submissions and replies keep at most a day (``None`` when arrival granularity
is "none"); order comes from per-source sequence numbers, which submissions and replies share.
Epoch seconds appear in two places only, both short-lived: sessions, because they must expire
(and they are deleted on logout or expiry), and ``sources.pending_since``, which records when a
source was created only until its first submission (then it is set to NULL), so that sources that
never sent anything can be purged; a source that did send something keeps no creation time
finer than its day.

The migration in ``migrations/versions`` creates exactly these tables; a test compares the two.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
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


class Recipient(Base):
    __tablename__ = "recipients"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    public_key: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(String(200))


class SourceSession(Base):
    __tablename__ = "source_sessions"

    # Only a hash of the cookie's session id: the DB alone cannot resume a session (invariant 4).
    id_hash: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    source_id: Mapped[str] = mapped_column(
        ID, ForeignKey("sources.id", ondelete="CASCADE"), index=True
    )
    # Sealed under a key that lives only in the cookie.
    sealed_identity: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_seen_at: Mapped[int] = mapped_column(BigInteger)
    # False from "start" until the source has typed its codename back. Sessions that existed
    # before the column were opened by a codename login, hence the server default.
    confirmed: Mapped[bool] = mapped_column(Boolean, server_default=true())
