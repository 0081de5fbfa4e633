"""The object graph of one running instance, built once at the edge (no module-level state)."""

from __future__ import annotations

from dataclasses import dataclass

from sealdrop.config import Settings
from sealdrop.errors import ConfigError
from sealdrop.services import age_child
from sealdrop.services.accounts import AccountService
from sealdrop.services.audit import AuditTrail
from sealdrop.services.auth import AuthService
from sealdrop.services.blob_store import open_blob_store, open_partial_store
from sealdrop.services.clock import Clock, SystemClock
from sealdrop.services.inbox import Inbox
from sealdrop.services.instance_settings import InstanceSettings
from sealdrop.services.kdf import KdfPool
from sealdrop.services.notice_delivery import Delivery, SmtpRelay
from sealdrop.services.notifications import NotificationService
from sealdrop.services.notifier import Notifier
from sealdrop.services.readiness import Readiness
from sealdrop.services.recipients import RecipientService
from sealdrop.services.replies import ReplyService
from sealdrop.services.resumable import ResumableUploads
from sealdrop.services.retention import Retention, Rules, jitter_key
from sealdrop.services.sessions import SessionService
from sealdrop.services.sources import SourceService
from sealdrop.services.submissions import SubmissionService
from sealdrop.services.throttle import KeyedRateLimit, LoginThrottle
from sealdrop.services.triage import Triage
from sealdrop.services.upload_quota import SharedUploadQuota, UploadQuota
from sealdrop.storage.database import SqlDatabase
from sealdrop.storage.leadership import Leadership
from sealdrop.storage.shared_limits import SharedAllowances, SharedLoginBudget, UploadLeases

# Journalist logins: few people, so a small budget; each attempt costs one Argon2 verification.
API_LOGINS_IN_FLIGHT = 4
API_LOGINS_PER_MINUTE = 30


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    sources: SourceService
    sessions: SessionService
    submissions: SubmissionService
    resumable: ResumableUploads
    replies: ReplyService
    recipients: RecipientService
    accounts: AccountService
    auth: AuthService
    inbox: Inbox
    triage: Triage
    audit: AuditTrail
    instance_settings: InstanceSettings
    circuits: KeyedRateLimit
    session_requests: KeyedRateLimit
    upload_quota: UploadQuota
    notifications: NotificationService
    notifier: Notifier  # `serve` runs it as a background task; nothing else does
    retention: Retention
    leadership: Leadership  # who runs housekeeping and notices among several workers
    readiness: Readiness  # `serve` starts its checks; GET /readyz answers from them
    _database: SqlDatabase
    _kdf: KdfPool

    @property
    def kdf(self) -> KdfPool:
        """The derivation pool (the metrics read how busy it is)."""
        return self._kdf

    def close(self) -> None:
        self.leadership.release()
        self._kdf.close()
        self._database.close()


def build_services(
    settings: Settings, clock: Clock | None = None, *, kdf_processes: bool = True
) -> Services:
    """Compose the services. ``kdf_processes=False`` runs codename derivations in threads of this
    process instead of processes of their own (services/kdf.py): for a caller that must not
    start processes, or a test that changes the derivation's cost in this process only."""
    clock = clock or SystemClock()
    database = SqlDatabase(settings.database_url)
    blobs = open_blob_store(settings)
    kdf = KdfPool(settings.kdf_salt.reveal(), settings.kdf_max_concurrent, processes=kdf_processes)
    audit = AuditTrail(database, clock)
    runtime = InstanceSettings(database, settings, audit)
    sessions = SessionService(
        database, clock, settings.session_idle_seconds, settings.session_absolute_seconds
    )
    # PostgreSQL: several workers may serve the instance; the limits that must hold for all of
    # them live in the database (docs/design.md, "Limits with several workers").
    shared = database.engine.dialect.name == "postgresql"
    source_logins = LoginThrottle(
        clock,
        max_in_flight=settings.login_max_in_flight,
        per_minute=settings.logins_per_minute,
        failures_per_visitor=settings.login_failures_per_visitor,
        shared=(
            SharedLoginBudget(database.engine, "source", settings.logins_per_minute)
            if shared
            else None
        ),
    )
    api_logins = LoginThrottle(
        clock,
        max_in_flight=API_LOGINS_IN_FLIGHT,
        per_minute=API_LOGINS_PER_MINUTE,
        failures_per_visitor=settings.login_failures_per_visitor,
        shared=SharedLoginBudget(database.engine, "api", API_LOGINS_PER_MINUTE) if shared else None,
    )
    granularity = settings.arrival_granularity
    replies = ReplyService(database, blobs, clock, granularity, settings.max_reply_bytes)
    # One quota for the instance: the submission service sets bytes aside against it.
    upload_quota = (
        SharedUploadQuota(
            clock, settings.source_daily_upload_bytes, SharedAllowances(database.engine)
        )
        if shared
        else UploadQuota(clock, settings.source_daily_upload_bytes)
    )
    leadership = Leadership(database.engine)
    return Services(
        settings=settings,
        sources=SourceService(
            database,
            kdf,
            sessions,
            source_logins,
            clock,
            granularity,
            settings.pending_purge_seconds,
            settings.post_quantum,
        ),
        sessions=sessions,
        submissions=SubmissionService(
            database, blobs, clock, granularity, runtime, age_child.age_binary(), upload_quota
        ),
        resumable=ResumableUploads(
            database,
            open_partial_store(settings, blobs),
            clock,
            granularity,
            runtime,
            upload_quota,
            leases=UploadLeases(database.engine) if shared else None,
        ),
        replies=replies,
        recipients=RecipientService(database, audit, settings.post_quantum),
        accounts=AccountService(
            database,
            audit,
            issuer=f"Sealdrop ({settings.organisation_name})",
            post_quantum=settings.post_quantum,
        ),
        auth=AuthService(database, clock, api_logins, audit),
        inbox=Inbox(database, blobs, replies, audit),
        triage=Triage(database, audit),
        audit=audit,
        instance_settings=runtime,
        circuits=KeyedRateLimit(
            clock, per_minute=settings.circuit_requests_per_minute, burst=settings.circuit_burst
        ),
        session_requests=KeyedRateLimit(
            clock,
            per_minute=settings.session_requests_per_minute,
            burst=settings.session_request_burst,
        ),
        upload_quota=upload_quota,
        notifications=NotificationService(
            database, audit, settings.notify_language, allow_urls=settings.notify_allow_urls
        ),
        notifier=Notifier(
            database,
            Delivery(_smtp_relay(settings), allow_urls=settings.notify_allow_urls),
            clock,
            interval=settings.notify_interval_seconds,
            send_when_empty=settings.notify_when_empty,
            organisation=settings.organisation_name,
            leader=leadership.held,
        ),
        retention=Retention(
            database,
            blobs,
            clock,
            retention_rules(settings),
            jitter_key(settings.kdf_salt.reveal()),
            upload_quota,
        ),
        leadership=leadership,
        readiness=Readiness(database.ping, blobs.probe),
        _database=database,
        _kdf=kdf,
    )


def retention_rules(settings: Settings) -> Rules:
    return Rules(
        submissions_days=settings.retention_submissions_days,
        replies_days=settings.retention_replies_days,
        idle_source_days=settings.retention_idle_source_days,
        jitter_days=settings.retention_jitter_days,
    )


def _smtp_relay(settings: Settings) -> SmtpRelay | None:
    if not settings.smtp_url:
        return None
    if "@" not in settings.notify_from:
        raise ConfigError("[notifications] from must be an e-mail address when smtp_url is set")
    return SmtpRelay(
        settings.smtp_url, settings.notify_from, settings.smtp_password, settings.smtp_ca_file
    )
