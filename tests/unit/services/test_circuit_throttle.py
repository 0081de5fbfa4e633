"""KeyedRateLimit: a token bucket per key (Tor circuit, source session), in bounded memory."""

from __future__ import annotations

import pytest

from sealdrop.errors import TooManyRequests
from sealdrop.services.throttle import KeyedRateLimit
from sealdrop.testing import FakeClock


def _spend(throttle: KeyedRateLimit, circuit: int, times: int) -> None:
    for _ in range(times):
        throttle.charge(circuit)


def test_a_circuit_gets_its_burst_then_is_refused_with_a_retry_after() -> None:
    """burst requests pass at once; the next is refused, told to wait for one token."""
    throttle = KeyedRateLimit(FakeClock(), per_minute=60, burst=5)
    _spend(throttle, 1, 5)
    with pytest.raises(TooManyRequests) as refused:
        throttle.charge(1)
    # 60 per minute: one token a second.
    assert refused.value.retry_after == 1


def test_the_retry_after_is_the_time_to_the_next_token() -> None:
    """At 6 per minute a drained bucket has its next token in 10 s, which Retry-After says."""
    clock = FakeClock()
    throttle = KeyedRateLimit(clock, per_minute=6, burst=1)
    throttle.charge(1)
    with pytest.raises(TooManyRequests) as refused:
        throttle.charge(1)
    assert refused.value.retry_after == 10
    clock.advance(4)
    with pytest.raises(TooManyRequests) as refused:
        throttle.charge(1)
    assert refused.value.retry_after == 6


def test_the_bucket_refills_at_the_per_minute_rate_up_to_the_burst() -> None:
    """Waiting earns per_minute/60 requests a second, but never more than burst."""
    clock = FakeClock()
    throttle = KeyedRateLimit(clock, per_minute=120, burst=4)
    _spend(throttle, 1, 4)
    clock.advance(1)  # two tokens
    _spend(throttle, 1, 2)
    with pytest.raises(TooManyRequests):
        throttle.charge(1)
    clock.advance(3600)  # far more than the burst's worth
    _spend(throttle, 1, 4)
    with pytest.raises(TooManyRequests):
        throttle.charge(1)


def test_refused_requests_cost_nothing_and_do_not_postpone_the_refill() -> None:
    """A circuit that keeps knocking while refused gets its token back on schedule."""
    clock = FakeClock()
    throttle = KeyedRateLimit(clock, per_minute=60, burst=1)
    throttle.charge(1)
    for _ in range(10):
        with pytest.raises(TooManyRequests):
            throttle.charge(1)
        clock.advance(0.05)
    # 1.05 s in all since the token was spent (a little over 1 s: float sums are inexact).
    clock.advance(0.55)
    throttle.charge(1)


def test_circuits_are_independent() -> None:
    """One circuit spending its whole budget leaves another circuit's untouched."""
    throttle = KeyedRateLimit(FakeClock(), per_minute=1, burst=3)
    _spend(throttle, 1, 3)
    with pytest.raises(TooManyRequests):
        throttle.charge(1)
    _spend(throttle, 2, 3)
    with pytest.raises(TooManyRequests):
        throttle.charge(2)


def test_the_table_is_bounded_and_forgets_the_least_recent_circuit() -> None:
    """Past max_tracked circuits the oldest is dropped (it starts again from a full burst);
    a circuit that keeps sending stays tracked, so it stays limited."""
    throttle = KeyedRateLimit(FakeClock(), per_minute=1, burst=1, max_tracked=3)
    throttle.charge(1)  # the flooder
    throttle.charge(2)
    for circuit in range(3, 1003):
        with pytest.raises(TooManyRequests):
            throttle.charge(1)  # still knocking: moved to the recent end each time
        throttle.charge(circuit)
        assert throttle.tracked() <= 3
    with pytest.raises(TooManyRequests):
        throttle.charge(1)
    throttle.charge(2)  # forgotten long ago: a full bucket again


def test_a_clock_stepping_back_does_not_drain_a_bucket() -> None:
    """A wall clock set backwards neither removes tokens nor raises an odd Retry-After."""
    clock = FakeClock()
    throttle = KeyedRateLimit(clock, per_minute=60, burst=2)
    throttle.charge(1)
    clock.advance(-3600)
    throttle.charge(1)
    with pytest.raises(TooManyRequests) as refused:
        throttle.charge(1)
    assert refused.value.retry_after == 1


@pytest.mark.parametrize(
    "arguments", [{"per_minute": 0, "burst": 1}, {"per_minute": 1, "burst": 0}]
)
def test_non_positive_limits_are_refused(arguments: dict[str, int]) -> None:
    """A zero rate or burst is a configuration mistake, not 'block everything'."""
    with pytest.raises(ValueError, match="positive"):
        KeyedRateLimit(FakeClock(), **arguments)
