"""Limits that several workers share through PostgreSQL: the login budgets per minute and the
sources' daily upload allowance (tables of migration 0008; docs/design.md, "Limits with several
workers").

Each operation is one short transaction whose row lock (``FOR UPDATE``, or the upsert's) makes
concurrent workers take their turns, so the totals hold however many workers ask at once. Times
are the database server's clock: workers on several hosts need not agree on theirs.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, text

from sealdrop.storage.sqlerrors import translated_errors


@dataclass(frozen=True, slots=True)
class Taken:
    """The answer of a budget: ``ok``, or else the seconds until a token is there."""

    ok: bool
    retry_after: float = 0.0


class SharedLoginBudget:
    """A token bucket of ``per_minute`` logins, full at first, in the row ``name``."""

    def __init__(self, engine: Engine, name: str, per_minute: int) -> None:
        self._engine = engine
        self._name = name
        self._capacity = float(per_minute)
        self._rate = per_minute / 60.0

    def take(self) -> Taken:
        with translated_errors(), self._engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO login_budgets (name, tokens, counted_at) VALUES "
                    "(:name, :capacity, extract(epoch from clock_timestamp())::float8) "
                    "ON CONFLICT (name) DO NOTHING"
                ),
                {"name": self._name, "capacity": self._capacity},
            )
            tokens, counted_at, now = connection.execute(
                text(
                    "SELECT tokens, counted_at, extract(epoch from clock_timestamp())::float8 "
                    "FROM login_budgets WHERE name = :name FOR UPDATE"
                ),
                {"name": self._name},
            ).one()
            # max(): a database clock stepped backwards must not drain the budget. min(): a
            # budget lowered in the settings applies at once.
            tokens = min(self._capacity, tokens + max(0.0, now - counted_at) * self._rate)
            ok = tokens >= 1.0
            if ok:
                tokens -= 1.0
            connection.execute(
                text(
                    "UPDATE login_budgets SET tokens = :tokens, counted_at = :now "
                    "WHERE name = :name"
                ),
                {"tokens": tokens, "now": now, "name": self._name},
            )
        return Taken(True) if ok else Taken(False, (1.0 - tokens) / self._rate)


class SharedAllowances:
    """Bytes per source and UTC day (``upload_allowances``)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def used(self, source: str, day: int) -> int:
        with translated_errors(), self._engine.connect() as connection:
            value = connection.execute(
                text("SELECT used FROM upload_allowances WHERE source_id = :s AND day = :d"),
                {"s": source, "d": day},
            ).scalar_one_or_none()
        return int(value or 0)

    def take(self, source: str, day: int, wanted: int, limit: int) -> int:
        """Add up to ``wanted`` bytes to the source's count of ``day`` without passing
        ``limit``; returns how many were added (0: nothing left)."""
        with translated_errors(), self._engine.begin() as connection:
            # The source's earlier days are over: their rows go now (housekeeping also
            # deletes every finished day's rows).
            connection.execute(
                text("DELETE FROM upload_allowances WHERE source_id = :s AND day < :d"),
                {"s": source, "d": day},
            )
            used = connection.execute(
                text(
                    "INSERT INTO upload_allowances (source_id, day, used) VALUES (:s, :d, 0) "
                    "ON CONFLICT (source_id, day) DO UPDATE SET used = upload_allowances.used "
                    "RETURNING used"
                ),
                {"s": source, "d": day},
            ).scalar_one()
            granted = max(0, min(wanted, limit - int(used)))
            if granted:
                connection.execute(
                    text(
                        "UPDATE upload_allowances SET used = used + :n "
                        "WHERE source_id = :s AND day = :d"
                    ),
                    {"n": granted, "s": source, "d": day},
                )
        return granted

    def give_back(self, source: str, day: int, amount: int) -> None:
        """Return ``amount`` bytes set aside on ``day`` that the upload did not use."""
        if amount <= 0:
            return
        with translated_errors(), self._engine.begin() as connection:
            connection.execute(
                text(
                    "UPDATE upload_allowances SET used = GREATEST(0, used - :n) "
                    "WHERE source_id = :s AND day = :d"
                ),
                {"n": amount, "s": source, "d": day},
            )

    def forget(self, source: str) -> None:
        with translated_errors(), self._engine.begin() as connection:
            connection.execute(
                text("DELETE FROM upload_allowances WHERE source_id = :s"), {"s": source}
            )

    def purge_before(self, day: int) -> int:
        """Delete the rows of days before ``day``; how many."""
        with translated_errors(), self._engine.begin() as connection:
            return int(
                connection.execute(
                    text("DELETE FROM upload_allowances WHERE day < :d"), {"d": day}
                ).rowcount
            )
