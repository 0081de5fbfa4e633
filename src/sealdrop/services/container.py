"""The object graph of one running instance, built once at the edge (no module-level state)."""

from __future__ import annotations

from dataclasses import dataclass

from sealdrop.config import Settings
from sealdrop.services.clock import Clock, SystemClock
from sealdrop.services.kdf import KdfPool
from sealdrop.services.recipients import RecipientService
from sealdrop.services.replies import ReplyService
from sealdrop.services.sessions import SessionService
from sealdrop.services.sources import SourceService
from sealdrop.services.submissions import SubmissionService
from sealdrop.services.throttle import LoginThrottle
from sealdrop.storage.blobs_fs import FilesystemBlobStore
from sealdrop.storage.database import SqlDatabase


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    sources: SourceService
    sessions: SessionService
    submissions: SubmissionService
    replies: ReplyService
    recipients: RecipientService
    _database: SqlDatabase
    _kdf: KdfPool

    def close(self) -> None:
        self._kdf.close()
        self._database.close()


def build_services(settings: Settings, clock: Clock | None = None) -> Services:
    clock = clock or SystemClock()
    database = SqlDatabase(settings.database_url)
    blobs = FilesystemBlobStore(settings.blob_dir)
    kdf = KdfPool(settings.kdf_salt.reveal(), settings.kdf_max_concurrent)
    sessions = SessionService(
        database, clock, settings.session_idle_seconds, settings.session_absolute_seconds
    )
    throttle = LoginThrottle(
        clock,
        max_in_flight=settings.login_max_in_flight,
        per_minute=settings.logins_per_minute,
        failures_per_visitor=settings.login_failures_per_visitor,
    )
    granularity = settings.arrival_granularity
    return Services(
        settings=settings,
        sources=SourceService(
            database, kdf, sessions, throttle, clock, granularity, settings.pending_purge_seconds
        ),
        sessions=sessions,
        submissions=SubmissionService(
            database, blobs, clock, granularity, settings.max_message_chars
        ),
        replies=ReplyService(database, blobs, clock, granularity, settings.max_reply_bytes),
        recipients=RecipientService(database),
        _database=database,
        _kdf=kdf,
    )
