"""The scheduled sender of notices to journalists: one background task of ``sealdrop serve``.

When: only at the schedule's times, the multiples of ``[notifications] interval_seconds`` since
1970-01-01 00:00 UTC (slot ``k`` is at ``k × interval``), never when a submission arrives, so a
notice dates activity no finer than the schedule. A server that starts between two times waits
for the next one (a notice at start-up would date a restart, which may follow a submission).

What: an account's notice says only that there is new activity (or, with ``send_when_empty``,
that there is none): see ``notice_text``. "New activity" is: the ``submission_activity``
counter, which every accepted submission advances in its own transaction, is past the value the
account's last delivered notice covered (its watermark). The counter is stored nowhere else, so
neither it nor a watermark can tie a notice to a submission; the database shows at most whether
something arrived since the last scheduled time, which the notice itself says.

At most one per account per interval: the account's target is claimed for the slot in the
database (``last_slot``) before anything is sent, so a restart within the interval, or a second
sender, sends nothing twice. A failed delivery is retried with backoff (doubling) until the
next scheduled time; if it still fails, the watermark stays where it was and the next scheduled
notice covers the activity. Intake never waits for any of this: the task runs beside the
listeners, its database work in a worker thread, and a submission only advances a counter.

Logs name an account by its random id, never by username or address: the server's log may be
read by more people (a hosting provider, a log collector) than the accounts table, and a
username, unlike the id, names a journalist and the fact that they get notices.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from sealdrop.errors import DeliveryFailed, NotDeliverable, SealdropError
from sealdrop.services.clock import Clock
from sealdrop.services.notice_delivery import Deliverer, Outgoing
from sealdrop.services.notice_text import notice
from sealdrop.storage.interfaces import Database
from sealdrop.storage.interfaces_accounts import NotificationTargetRecord

log = logging.getLogger("sealdrop.notifications")

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class SlotReport:
    slot: int
    delivered: int
    failed: int  # given up until the next scheduled time


class Notifier:
    def __init__(
        self,
        database: Database,
        delivery: Deliverer,
        clock: Clock,
        *,
        interval: int,
        send_when_empty: bool,
        organisation: str,
        sleep: Sleep = asyncio.sleep,
        leader: Callable[[], bool] | None = None,
    ) -> None:
        """``leader``: whether this process sends now (several workers: the one holding the
        housekeeping lock, storage/leadership.py); None: always."""
        self._db = database
        self._delivery = delivery
        self._clock = clock
        self._interval = interval
        self._when_empty = send_when_empty
        self._organisation = organisation
        self._sleep = sleep
        self._leader = leader
        # First retry after a tenth of the interval (a minute at most), then doubling.
        self._first_retry = max(0.5, min(60.0, interval / 10))
        # Delivery attempts since the server started, for the metrics (totals, no account).
        self.sent = 0
        self.failed = 0

    def slot_time(self, slot: int) -> float:
        return float(slot * self._interval)

    def next_slot(self) -> int:
        """The first scheduled time strictly after now."""
        return int(self._clock.now() // self._interval) + 1

    async def run(self) -> None:
        """Send at every scheduled time until cancelled."""
        done = -1
        while True:
            # A timer may fire a little early: never run the same scheduled time twice.
            slot = max(self.next_slot(), done + 1)
            await self._sleep(max(0.0, self.slot_time(slot) - self._clock.now()))
            try:
                # Asked at each scheduled time, so a worker that takes over from a dead one
                # sends from the next time on (the slot claim keeps it from sending twice).
                if self._leader is None or await asyncio.to_thread(self._leader):
                    await self.run_slot(slot)
            except SealdropError as exc:
                # A database outage must not end the sender; the next time tries again.
                log.warning("notices of a scheduled time failed: %s", type(exc).__name__)
            except Exception as exc:
                # Nor may a bug in a channel library end every later notice (the task would
                # die unseen until shutdown); logged as an error, by class name only.
                log.error("the notice sender failed: %s", type(exc).__name__)
            done = slot

    async def run_slot(self, slot: int) -> SlotReport:
        """Claim and send the notices of scheduled time ``slot``, retrying failures until the
        next one."""
        targets, activity = await asyncio.to_thread(self._claim, slot)
        pending = [t for t in targets if t.watermark < activity or self._when_empty]
        deadline = self.slot_time(slot + 1)
        delay = self._first_retry
        delivered = 0
        given_up = 0
        while pending:
            failed, undeliverable = await self._attempt(pending, slot, activity)
            delivered += len(pending) - len(failed) - undeliverable
            given_up += undeliverable
            pending = failed
            if not pending:
                break
            if self._clock.now() + delay >= deadline:
                for target in pending:
                    log.warning(
                        "notice to account %s not delivered; the next scheduled one will cover it",
                        target.user_id,
                    )
                break
            await self._sleep(delay)
            delay *= 2
        return SlotReport(slot, delivered, len(pending) + given_up)

    def _claim(self, slot: int) -> tuple[Sequence[NotificationTargetRecord], int]:
        with self._db.transaction() as repos:
            return repos.notifications.claim_due(slot), repos.notifications.activity()

    async def _attempt(
        self, targets: Sequence[NotificationTargetRecord], slot: int, activity: int
    ) -> tuple[list[NotificationTargetRecord], int]:
        """Send to each target once: (the targets to retry, how many cannot be sent at all as
        the server is configured)."""
        results = await asyncio.gather(
            *(self._send(target, slot, activity) for target in targets), return_exceptions=True
        )
        failed = []
        undeliverable = 0
        for target, result in zip(targets, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, SealdropError):
                    raise result
                # DeliveryFailed's text is fixed (no address); any other error: its class only.
                reason = (
                    str(result) if isinstance(result, DeliveryFailed) else type(result).__name__
                )
                log.warning("notice to account %s failed: %s", target.user_id, reason)
                if isinstance(result, NotDeliverable):
                    # Not retried until the next scheduled time: as configured it cannot go,
                    # and retrying would only repeat this warning a dozen times a slot.
                    undeliverable += 1
                else:
                    failed.append(target)
        self.sent += len(targets) - len(failed) - undeliverable
        self.failed += len(failed) + undeliverable
        return failed, undeliverable

    async def _send(self, target: NotificationTargetRecord, slot: int, activity: int) -> None:
        outgoing = Outgoing(
            channel=target.channel,
            address=target.address,
            notice=notice(target.language, self._organisation, target.watermark < activity),
            date=self.slot_time(slot),
        )
        await self._delivery.deliver(outgoing)
        await asyncio.to_thread(self._advance, target, activity)

    def _advance(self, target: NotificationTargetRecord, activity: int) -> None:
        with self._db.transaction() as repos:
            repos.notifications.advance_watermark(target.user_id, activity)
