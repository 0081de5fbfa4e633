"""LoginThrottle: limits that need no IP address."""

from __future__ import annotations

import pytest

from sealdrop.errors import TooManyRequests
from sealdrop.services.throttle import FAILURE_WINDOW_SECONDS, LoginThrottle
from sealdrop.testing import FakeClock


def _throttle(clock: FakeClock, **kw: int) -> LoginThrottle:
    args = {"max_in_flight": 2, "per_minute": 60, "failures_per_visitor": 3} | kw
    return LoginThrottle(
        clock, args["max_in_flight"], args["per_minute"], args["failures_per_visitor"]
    )


def test_in_flight_cap_refuses_at_once_instead_of_queueing() -> None:
    """With the cap reached, one more attempt is refused immediately; a slot frees on exit."""
    throttle = _throttle(FakeClock(), max_in_flight=2)
    with (
        throttle.attempt(None),
        throttle.attempt(None),
        pytest.raises(TooManyRequests),
        throttle.attempt(None),
    ):
        pass
    with throttle.attempt(None):
        pass


def test_global_budget_refills_with_time() -> None:
    """per_minute attempts pass; the next waits until the bucket refills."""
    clock = FakeClock()
    throttle = _throttle(clock, per_minute=3)
    for _ in range(3):
        with throttle.attempt(None):
            pass
    with pytest.raises(TooManyRequests) as refused, throttle.attempt(None):
        pass
    assert 1 <= refused.value.retry_after <= 21
    clock.advance(20)
    with throttle.attempt(None):
        pass


def test_failures_per_visitor_block_only_that_visitor_for_a_window() -> None:
    """A visitor with too many failures is refused; others are not; the window expires."""
    clock = FakeClock()
    throttle = _throttle(clock, failures_per_visitor=2)
    for _ in range(2):
        throttle.record_failure(b"visitor-a")
    with pytest.raises(TooManyRequests), throttle.attempt(b"visitor-a"):
        pass
    with throttle.attempt(b"visitor-b"):
        pass
    clock.advance(FAILURE_WINDOW_SECONDS + 1)
    with throttle.attempt(b"visitor-a"):
        pass


def test_success_clears_a_visitors_failures() -> None:
    """A successful login forgets the visitor's earlier mistakes."""
    throttle = _throttle(FakeClock(), failures_per_visitor=2)
    throttle.record_failure(b"v")
    throttle.record_success(b"v")
    throttle.record_failure(b"v")
    with throttle.attempt(b"v"):
        pass
