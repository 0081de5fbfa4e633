"""Scheduled notices to journalists (services/notifier.py, notice_delivery.py), against a real
SMTP server on loopback (aiosmtpd: STARTTLS, AUTH) and a real HTTP receiver for an Apprise
``json://`` URL, with the clock seam moving time."""

from __future__ import annotations

import asyncio
import email.utils
import io
import logging
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest

from sealdrop.config import Secret, load_settings
from sealdrop.crypto.keys import generate_identity, recipient_of
from sealdrop.errors import DeliveryFailed
from sealdrop.ids import UserId
from sealdrop.services.container import Services, build_services
from sealdrop.services.instance import init_instance
from sealdrop.services.notice_delivery import Delivery, Outgoing, SmtpRelay
from sealdrop.services.notice_text import notice
from sealdrop.services.notifier import Notifier
from sealdrop.storage.database import SqlDatabase
from sealdrop.testing import FakeClock, free_port
from support_notices import SMTP_PASSWORD, JsonReceiver, SmtpServer

DAY = 86_400
# Mid-morning of a day: the next scheduled time (00:00 UTC) is hours away.
START = 1_800_000_000.0 + 10 * 3600
ORGANISATION = "Example Gazette"
MESSAGE = "the canary message text 7c1f"


class Env:
    """An instance with its services (a FakeClock), a source, journalists, and a notifier whose
    sleeping moves the clock (and may run something meanwhile, e.g. a submission)."""

    def __init__(self, root: Path, relay_url: str, ca_file: Path, *, when_empty: bool) -> None:
        self.root = init_instance(root / "instance", organisation_name=ORGANISATION)
        self.smtp_url, self.ca_file = relay_url, ca_file
        self.settings = load_settings(
            self.root,
            env={
                "SEALDROP_NOTIFICATIONS_SMTP_URL": relay_url,
                "SEALDROP_NOTIFICATIONS_SMTP_PASSWORD": SMTP_PASSWORD,
                "SEALDROP_NOTIFICATIONS_CA_FILE": str(ca_file),
                "SEALDROP_NOTIFICATIONS_FROM": "drop@example.org",
                "SEALDROP_NOTIFICATIONS_ALLOW_URLS": "true",
            },
        )
        self.clock = FakeClock(START)
        self.services: Services = build_services(self.settings, self.clock)
        self.db = SqlDatabase(self.settings.database_url)
        with self.db.transaction() as repos:
            repos.recipients.add(str(recipient_of(generate_identity())), "org")
        self.source = self.services.sources.create()
        with self.db.transaction() as repos:
            record = repos.sources.get(self.source.source_id)
        assert record is not None
        self.pseudonym = record.pseudonym
        self.slept: list[float] = []
        self.during_sleep: list[object] = []
        self.when_empty = when_empty
        self.notifier = self.make_notifier(relay_url, allow_urls=True)

    def make_notifier(self, relay_url: str, *, allow_urls: bool) -> Notifier:
        """A notifier of this instance whose relay is ``relay_url`` and whose sleeping moves the
        clock."""
        relay = SmtpRelay(relay_url, "drop@example.org", self.settings.smtp_password, self.ca_file)
        return Notifier(
            self.db,
            Delivery(relay, allow_urls=allow_urls),
            self.clock,
            interval=DAY,
            send_when_empty=self.when_empty,
            organisation=ORGANISATION,
            sleep=self.sleep,
        )

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.clock.advance(seconds)
        while self.during_sleep:
            action = self.during_sleep.pop(0)
            assert callable(action)
            action()

    def journalist(self, name: str) -> UserId:
        return self.services.accounts.create(name, "journalist", actor="test").user.id

    def submit(self, text: str = MESSAGE) -> None:
        with self.services.submissions.intake(self.source.source_id) as submission:
            submission.add_message(io.BytesIO(text.encode()))
            submission.commit()

    def run_slot(self, slot: int) -> tuple[int, int]:
        report = asyncio.run(self.notifier.run_slot(slot))
        return report.delivered, report.failed

    def close(self) -> None:
        self.services.close()
        self.db.close()


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    with SmtpServer(tmp_path) as server:
        yield server


@pytest.fixture
def receiver() -> Iterator[JsonReceiver]:
    with JsonReceiver() as server:
        yield server


def payload_text(message: Message) -> str:
    """The decoded body of a single-part message."""
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def make_env(tmp_path: Path, smtp: SmtpServer, when_empty: bool = False) -> Env:
    return Env(tmp_path, smtp.url, smtp.cert, when_empty=when_empty)


@pytest.fixture
def env(tmp_path: Path, smtp: SmtpServer) -> Iterator[Env]:
    e = make_env(tmp_path, smtp)
    yield e
    e.close()


def texts_of(smtp: SmtpServer, receiver: JsonReceiver) -> list[str]:
    mails = [m.raw.decode("utf-8", "replace") for m in smtp.messages]
    return mails + [str(body) for body in receiver.bodies]


def test_submissions_lead_to_one_notice_per_enabled_account_at_the_next_scheduled_time(
    env: Env, smtp: SmtpServer, receiver: JsonReceiver
) -> None:
    """Three submissions, then the next scheduled time: one e-mail (over STARTTLS, after AUTH)
    and one json:// notice, one per enabled account; a disabled account and one without a
    target get none; nothing before the scheduled time, nothing twice for it, nothing at the
    following one (no new activity)."""
    alice, bob, carol = env.journalist("alice"), env.journalist("bob"), env.journalist("carol")
    env.journalist("dave")  # never asked for notices
    env.services.notifications.set(alice, "email", "test", address="alice@example.org")
    env.services.notifications.set(bob, "apprise", "test", address=receiver.url)
    env.services.notifications.set(carol, "email", "test", address="carol@example.org")
    env.services.accounts.set_disabled(carol, True, "test")
    for n in range(3):
        env.submit(f"{MESSAGE} {n}")

    slot = env.notifier.next_slot()
    assert slot * DAY > env.clock.now()  # the next time is still to come
    assert smtp.messages == []
    assert receiver.bodies == []
    assert env.run_slot(slot) == (2, 0)

    [mail] = smtp.messages
    assert mail.recipients == ["alice@example.org"]
    assert mail.tls
    assert smtp.logins == [("sealdrop", True)]
    expected = notice("en", ORGANISATION, activity=True)
    assert mail.message["Subject"] == expected.subject
    assert payload_text(mail.message).strip() == expected.body
    [body] = receiver.bodies
    assert (body["title"], body["message"]) == (expected.subject, expected.body)

    assert env.run_slot(slot) == (0, 0)  # claimed: a restart within the interval sends nothing
    assert env.run_slot(slot + 1) == (0, 0)  # nothing new since
    assert len(smtp.messages) == 1
    assert len(receiver.bodies) == 1


def test_a_notice_carries_no_pseudonym_codename_message_or_arrival_time(
    env: Env, smtp: SmtpServer, receiver: JsonReceiver
) -> None:
    """What goes out names no source (pseudonym, codename), quotes nothing it sent, and is dated
    at the scheduled time (the Date header), not at the submission's; the Message-ID is random,
    not made from the sending time."""
    alice, bob = env.journalist("alice"), env.journalist("bob")
    env.services.notifications.set(alice, "email", "test", address="alice@example.org")
    env.services.notifications.set(bob, "apprise", "test", address=receiver.url)
    env.submit()
    slot = env.notifier.next_slot()
    env.clock.advance(slot * DAY - env.clock.now() + 5)  # sent a little after the time
    env.run_slot(slot)

    [mail] = smtp.messages
    assert email.utils.parsedate_to_datetime(mail.message["Date"]).timestamp() == slot * DAY
    assert str(int(env.clock.now())) not in mail.message["Message-ID"]
    for text in texts_of(smtp, receiver):
        for secret in (env.pseudonym, env.source.codename, MESSAGE, "canary"):
            assert secret not in text


def test_a_failed_delivery_is_retried_with_backoff_and_intake_goes_on(
    tmp_path: Path, smtp: SmtpServer
) -> None:
    """The receiver fails twice: the notice is retried after growing waits and delivered once;
    a submission made while the sender waits to retry is stored as usual."""
    with JsonReceiver(failures=2) as flaky:
        env = make_env(tmp_path, smtp)
        try:
            bob = env.journalist("bob")
            env.services.notifications.set(bob, "apprise", "test", address=flaky.url)
            env.submit()
            env.during_sleep.append(lambda: env.submit("while the sender waits"))
            assert env.run_slot(env.notifier.next_slot()) == (1, 0)
            assert flaky.attempts == 3
            assert len(flaky.bodies) == 1
            assert len(env.slept) == 2
            assert env.slept[1] == 2 * env.slept[0]
            with env.db.transaction() as repos:
                assert len(repos.submissions.for_source(env.source.source_id)) == 2
        finally:
            env.close()


def test_an_undelivered_notice_is_covered_by_the_next_scheduled_one(
    tmp_path: Path, smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    """With the relay unreachable, retries stop before the next scheduled time and the failure
    is logged with the account's id only (no address, no URL token); the activity is reported
    at the next time once the relay is back."""
    down = f"smtp://sealdrop@127.0.0.1:{free_port()}"
    env = Env(tmp_path, down, smtp.cert, when_empty=False)
    try:
        alice = env.journalist("alice")
        env.services.notifications.set(alice, "email", "test", address="alice@example.org")
        env.submit()
        slot = env.notifier.next_slot()
        with caplog.at_level(logging.WARNING, logger="sealdrop.notifications"):
            assert env.run_slot(slot) == (0, 1)
        assert env.clock.now() < (slot + 1) * DAY
        assert len(env.slept) >= 3  # retried, with backoff
        logged = " ".join(r.getMessage() for r in caplog.records)
        assert alice in logged
        assert "alice@example.org" not in logged
        assert "alice" not in logged.replace(alice, "")

        env.ca_file = smtp.cert
        env.notifier = env.make_notifier(smtp.url, allow_urls=True)
        assert env.run_slot(slot + 1) == (1, 0)
        [mail] = smtp.messages
        assert payload_text(mail.message).strip() == (
            notice("en", ORGANISATION, activity=True).body
        )
    finally:
        env.close()


def test_with_send_when_empty_every_enabled_account_gets_a_no_activity_notice(
    tmp_path: Path, smtp: SmtpServer, receiver: JsonReceiver
) -> None:
    """send_when_empty: at a time with nothing new, each enabled account gets the "no new
    activity" text (same subject as an activity notice); an account turned off gets none."""
    env = make_env(tmp_path, smtp, when_empty=True)
    try:
        alice, bob, erin = env.journalist("alice"), env.journalist("bob"), env.journalist("erin")
        env.services.notifications.set(alice, "email", "test", address="alice@example.org")
        env.services.notifications.set(bob, "apprise", "test", address=receiver.url, language="es")
        env.services.notifications.set(erin, "email", "test", address="erin@example.org")
        env.services.notifications.set(erin, "off", "test")
        assert env.run_slot(env.notifier.next_slot()) == (2, 0)
        [mail] = smtp.messages
        empty = notice("en", ORGANISATION, activity=False)
        assert mail.message["Subject"] == notice("en", ORGANISATION, activity=True).subject
        assert payload_text(mail.message).strip() == empty.body
        assert receiver.bodies[0]["message"] == notice("es", ORGANISATION, activity=False).body
    finally:
        env.close()


def test_the_sender_waits_for_the_scheduled_time_not_the_arrival(
    env: Env, smtp: SmtpServer
) -> None:
    """run(): after a submission mid-day the sender sleeps exactly until the next multiple of
    the interval, and only then sends."""
    alice = env.journalist("alice")
    env.services.notifications.set(alice, "email", "test", address="alice@example.org")
    env.submit()
    submitted_at = env.clock.now()

    class Stop(Exception):
        pass

    async def sleep_then_stop(seconds: float) -> None:
        await env.sleep(seconds)
        if len(env.slept) > 1:
            raise Stop

    env.notifier._sleep = sleep_then_stop  # the seam, later
    with pytest.raises(Stop):
        asyncio.run(env.notifier.run())
    assert env.slept[0] == pytest.approx((submitted_at // DAY + 1) * DAY - submitted_at)
    [mail] = smtp.messages
    assert email.utils.parsedate_to_datetime(mail.message["Date"]).timestamp() == (
        (submitted_at // DAY + 1) * DAY
    )


def test_a_relay_without_starttls_gets_no_password_and_no_notice(tmp_path: Path) -> None:
    """smtp:// to a relay that offers no STARTTLS: delivery fails before AUTH, so the password
    never crosses in the clear, and no message is sent; the error names neither."""
    with SmtpServer(tmp_path, tls=False) as plain:
        delivery = Delivery(
            SmtpRelay(plain.url, "drop@example.org", Secret(SMTP_PASSWORD.encode()), plain.cert),
            allow_urls=True,
        )
        outgoing = Outgoing("email", "alice@example.org", notice("en", "X", True), START)
        with pytest.raises(DeliveryFailed) as caught:
            asyncio.run(delivery.deliver(outgoing))
        assert plain.logins == []
        assert plain.messages == []
        assert "alice@example.org" not in str(caught.value)
        assert SMTP_PASSWORD not in str(caught.value)


class _Flaky:
    """A Deliverer whose first delivery fails with a bug (not a DeliveryFailed)."""

    def __init__(self) -> None:
        self.delivered: list[Outgoing] = []
        self.calls = 0

    async def deliver(self, outgoing: Outgoing) -> None:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("a bug in a channel library")
        self.delivered.append(outgoing)


def run_for(env: Env, notifier: Notifier, sleeps: int, early: float = 0.0) -> None:
    """notifier.run() until it has slept ``sleeps`` times, each waking ``early`` seconds before
    the time it asked for."""

    class Stop(Exception):
        pass

    async def sleep(seconds: float) -> None:
        env.slept.append(seconds)
        env.clock.advance(max(0.0, seconds - early))
        if len(env.slept) > sleeps:
            raise Stop

    notifier._sleep = sleep  # the seam, set after construction
    with pytest.raises(Stop):
        asyncio.run(notifier.run())


def test_a_timer_that_fires_early_does_not_run_a_scheduled_time_twice(env: Env) -> None:
    """run(): woken a millisecond before the scheduled time, the sender sends for it and then
    sleeps until the following one, not a millisecond."""
    run_for(env, env.notifier, sleeps=2, early=0.001)
    assert env.slept[1] == pytest.approx(DAY, abs=0.01)


def test_a_bug_in_a_delivery_does_not_end_the_sender(env: Env) -> None:
    """An unexpected exception from a channel at one scheduled time is logged and the sender
    goes on: the next time delivers the notice."""
    alice = env.journalist("alice")
    env.services.notifications.set(alice, "email", "test", address="alice@example.org")
    env.submit()
    flaky = _Flaky()
    notifier = Notifier(
        env.db,
        flaky,
        env.clock,
        interval=DAY,
        send_when_empty=False,
        organisation=ORGANISATION,
    )
    run_for(env, notifier, sleeps=2)
    assert flaky.calls == 2
    assert [o.address for o in flaky.delivered] == ["alice@example.org"]


def test_a_url_stored_before_urls_were_turned_off_gets_no_connection(
    receiver: JsonReceiver,
) -> None:
    """With `allow_urls` off, the sender refuses an Apprise target (one stored while URLs were
    allowed) before any connection: a JSON receiver on loopback gets nothing."""
    delivery = Delivery(None, allow_urls=False)
    outgoing = Outgoing("apprise", receiver.url, notice("en", "X", True), START)
    with pytest.raises(DeliveryFailed, match="allow_urls"):
        asyncio.run(delivery.deliver(outgoing))
    assert receiver.attempts == 0
    assert receiver.bodies == []


def test_the_sender_counts_deliveries_and_failed_attempts_for_the_metrics(
    tmp_path: Path, smtp: SmtpServer
) -> None:
    """Two failed attempts and then a delivery count as 2 failed and 1 sent: totals only, which
    the metrics publish (services/monitoring.py)."""
    with JsonReceiver(failures=2) as flaky:
        env = make_env(tmp_path, smtp)
        try:
            bob = env.journalist("bob")
            env.services.notifications.set(bob, "apprise", "test", address=flaky.url)
            env.submit()
            assert (env.notifier.sent, env.notifier.failed) == (0, 0)
            assert env.run_slot(env.notifier.next_slot()) == (1, 0)
            assert (env.notifier.sent, env.notifier.failed) == (1, 2)
        finally:
            env.close()


def test_a_notice_that_cannot_go_as_configured_is_tried_once_per_scheduled_time(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    """With URLs turned off, an account's stored Apprise target cannot be served: the sender
    logs it once and does not retry (no backoff sleeps, one warning) until the next scheduled
    time, and still delivers the other accounts' notices."""
    alice, bob = env.journalist("alice"), env.journalist("bob")
    env.services.notifications.set(alice, "email", "test", address="alice@example.org")
    env.services.notifications.set(bob, "apprise", "test", address="json://127.0.0.1:9/x")
    env.notifier = env.make_notifier(env.smtp_url, allow_urls=False)
    env.submit()
    with caplog.at_level(logging.WARNING, logger="sealdrop.notifications"):
        assert env.run_slot(env.notifier.next_slot()) == (1, 1)
    assert env.slept == []
    warnings = [r.getMessage() for r in caplog.records if bob in r.getMessage()]
    assert len(warnings) == 1
    assert "allow_urls" in warnings[0]
    assert (env.notifier.sent, env.notifier.failed) == (1, 1)


class _Recording:
    """A Deliverer that keeps what it was given."""

    def __init__(self) -> None:
        self.delivered: list[Outgoing] = []

    async def deliver(self, outgoing: Outgoing) -> None:
        self.delivered.append(outgoing)


def test_a_worker_without_the_housekeeping_lock_sends_nothing_until_it_gets_it(env: Env) -> None:
    """Several workers: a sender whose ``leader`` says no sends nothing at a scheduled time;
    once it holds the lock (its holder died), the next scheduled time covers the activity."""
    alice = env.journalist("alice")
    env.services.notifications.set(alice, "email", "test", address="alice@example.org")
    env.submit()
    holds = [False]
    recording = _Recording()
    notifier = Notifier(
        env.db,
        recording,
        env.clock,
        interval=DAY,
        send_when_empty=False,
        organisation=ORGANISATION,
        leader=lambda: holds[0],
    )
    run_for(env, notifier, sleeps=2)
    assert recording.delivered == []
    holds[0] = True
    env.slept.clear()
    run_for(env, notifier, sleeps=1)
    assert [o.address for o in recording.delivered] == ["alice@example.org"]
