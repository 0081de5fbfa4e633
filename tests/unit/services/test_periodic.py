"""The background rounds' thread (services/periodic.py), with a real thread and clock."""

from __future__ import annotations

import threading
import time

from sealdrop.services.periodic import Periodic


def test_rounds_start_at_once_or_an_interval_later_and_a_stop_ends_the_wait() -> None:
    """``at_once``: the first round as the thread starts; otherwise none before the interval.
    A stop during a long wait returns at once, and no round follows it."""
    for at_once in (True, False):
        calls: list[float] = []
        called = threading.Event()

        def each(calls: list[float] = calls, called: threading.Event = called) -> None:
            calls.append(time.monotonic())
            called.set()

        rounds = Periodic(each, 3600, "test-rounds", at_once=at_once)
        rounds.start()
        # At once: the round comes (well within 5 s); else none comes in the first 0.3 s.
        assert called.wait(5 if at_once else 0.3) is at_once
        started = time.monotonic()
        rounds.stop()
        assert time.monotonic() - started < 2
        assert len(calls) == (1 if at_once else 0)


def test_rounds_repeat_every_interval() -> None:
    """With a short interval, rounds keep coming until the stop."""
    calls: list[float] = []
    rounds = Periodic(lambda: calls.append(time.monotonic()), 0.02, "test-rounds", at_once=False)
    rounds.start()
    deadline = time.monotonic() + 10
    while len(calls) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    rounds.stop()
    count = len(calls)
    time.sleep(0.1)
    assert len(calls) == count >= 3
