"""The source interface's log of refused requests (web/refusals.py): the first refusal of a kind
is logged at once, the rest of its minute as one count, and no line carries a refusal's own time
after the first."""

from __future__ import annotations

import asyncio
import logging

import pytest

from sealdrop.web.refusals import RefusalLog


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "test.refusals"]


def test_the_first_of_a_kind_is_logged_at_once_and_the_rest_of_its_window_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Outside an event loop (no timer): 1 line for the first, none for the next 1,499, one
    count when the next refusal of the kind comes after the window, which opens a new window."""
    caplog.set_level(logging.INFO, "test.refusals")
    clock = Clock()
    refusals = RefusalLog(logging.getLogger("test.refusals"), window=60, clock=clock)
    for _ in range(1500):
        refusals.refused("TooManyRequests")
        clock.now += 0.03  # 45 s in all
    refusals.refused("CsrfTokenInvalid")
    assert lines(caplog) == [
        "request refused: TooManyRequests",
        "request refused: CsrfTokenInvalid",
    ]
    clock.now += 16.0  # past the 60 s window
    refusals.refused("TooManyRequests")
    assert lines(caplog)[2:] == [
        "request refused: TooManyRequests, 1,499 more within 60 s",
        "request refused: TooManyRequests",
    ]
    refusals.flush()  # the CsrfTokenInvalid window had no more: nothing to say
    assert lines(caplog)[4:] == []
    refusals.refused("TooManyRequests")  # after a flush: a new window, logged at once
    assert lines(caplog)[4:] == ["request refused: TooManyRequests"]


def test_in_an_event_loop_the_window_closes_on_its_timer(caplog: pytest.LogCaptureFixture) -> None:
    """In the server's loop the count comes when the window ends, without another refusal, and
    each kind has its own window."""
    caplog.set_level(logging.INFO, "test.refusals")

    async def flood() -> None:
        refusals = RefusalLog(logging.getLogger("test.refusals"), window=0.2)
        for _ in range(3):
            refusals.refused("UploadTooLarge")
        refusals.refused("SessionRequired")
        await asyncio.sleep(0.1)
        assert len(lines(caplog)) == 2
        await asyncio.sleep(0.3)

    asyncio.run(flood())
    assert lines(caplog) == [
        "request refused: UploadTooLarge",
        "request refused: SessionRequired",
        "request refused: UploadTooLarge, 2 more within 0.2 s",
    ]


def test_flush_says_what_was_counted(caplog: pytest.LogCaptureFixture) -> None:
    """When the server stops, what its open windows counted is logged."""
    caplog.set_level(logging.INFO, "test.refusals")
    refusals = RefusalLog(logging.getLogger("test.refusals"), clock=Clock())
    for _ in range(3):
        refusals.refused("FormTokenExpired")
    refusals.flush()
    assert lines(caplog) == [
        "request refused: FormTokenExpired",
        "request refused: FormTokenExpired, 2 more within 60 s",
    ]
