"""UploadQuota: how much one source may upload in 24 hours, in bounded memory."""

from __future__ import annotations

import pytest

from sealdrop.errors import UploadQuotaExceeded
from sealdrop.services.upload_quota import QUOTA_WINDOW_SECONDS, UploadQuota
from sealdrop.testing import FakeClock


def test_uploads_count_against_the_source_for_24_hours() -> None:
    """What a source stored is subtracted from its allowance until 24 hours after each upload;
    the wait reported is until the oldest upload leaves the window."""
    clock = FakeClock()
    quota = UploadQuota(clock, daily_bytes=1000)
    assert quota.remaining("a") == (1000, 0)
    quota.record("a", 600)
    clock.advance(3600)
    quota.record("a", 300)
    assert quota.remaining("a") == (100, QUOTA_WINDOW_SECONDS - 3600)
    clock.advance(QUOTA_WINDOW_SECONDS - 3600 + 1)
    assert quota.remaining("a")[0] == 700  # the first upload has left the window
    clock.advance(3600)
    assert quota.remaining("a") == (1000, 0)


def test_sources_are_counted_separately() -> None:
    """One source's uploads never reduce another's allowance."""
    quota = UploadQuota(FakeClock(), daily_bytes=1000)
    quota.record("a", 1000)
    assert quota.remaining("a")[0] == 0
    assert quota.remaining("b") == (1000, 0)


def test_an_allowance_never_goes_negative() -> None:
    """A source over its allowance (the limit lowered, say) has zero left, not less."""
    quota = UploadQuota(FakeClock(), daily_bytes=100)
    quota.record("a", 250)
    assert quota.remaining("a")[0] == 0


def test_memory_is_bounded() -> None:
    """At most max_tracked sources are remembered; the least recently active go first."""
    quota = UploadQuota(FakeClock(), daily_bytes=100, max_tracked=2)
    quota.record("a", 100)
    quota.record("b", 100)
    quota.record("c", 100)
    assert quota.remaining("a")[0] == 100  # forgotten
    assert quota.remaining("c")[0] == 0


def test_many_small_uploads_slide_out_of_the_window_one_by_one() -> None:
    """A source that sends a small message every minute for two days keeps exactly the last 24
    hours counted: the running total drops each upload as it leaves the window (the check does
    not rescan every upload of the day)."""
    clock = FakeClock()
    quota = UploadQuota(clock, daily_bytes=10**9)
    for _ in range(2 * 24 * 60):
        quota.record("a", 10)
        clock.advance(60)
    # The last upload was a minute ago; the one made exactly 24 hours ago has just left.
    in_window = QUOTA_WINDOW_SECONDS // 60 - 1
    assert quota.remaining("a")[0] == 10**9 - 10 * in_window
    assert 0 < quota.remaining("a")[1] <= 60


def test_uploads_in_progress_set_aside_their_bytes() -> None:
    """A reservation takes what is left, less what the source's other uploads in progress hold;
    with nothing left the next is refused, and a released reservation gives its bytes back."""
    quota = UploadQuota(FakeClock(), daily_bytes=1000)
    first = quota.reserve("a", 600)
    second = quota.reserve("a", 600)
    assert (first.granted, second.granted) == (600, 400)
    with pytest.raises(UploadQuotaExceeded) as refused:
        quota.reserve("a", 1)
    assert refused.value.retry_after == QUOTA_WINDOW_SECONDS
    assert quota.remaining("b") == (1000, 0)  # other sources are not touched
    second.release()
    assert quota.reserve("a", 600).granted == 400


def test_settling_counts_what_was_stored_and_returns_the_rest() -> None:
    """An upload that stored less than it set aside counts only what it stored, for 24 hours;
    settling or releasing twice changes nothing."""
    clock = FakeClock()
    quota = UploadQuota(clock, daily_bytes=1000)
    reservation = quota.reserve("a", 1000)
    reservation.settle(250)
    reservation.settle(250)
    reservation.release()
    assert quota.remaining("a") == (750, QUOTA_WINDOW_SECONDS)
    clock.advance(QUOTA_WINDOW_SECONDS)
    assert quota.remaining("a") == (1000, 0)
