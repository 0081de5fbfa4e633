"""Abuse limits of the source interface, each with a clear page: a body cap on every request but
uploads, a request budget per session, and an upload quota per source over 24 hours."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from test_source_app import COOKIE, Browser, new_instance

from sealdrop.crypto.keys import generate_identity
from sealdrop.services.container import Services
from sealdrop.testing import FakeClock
from sealdrop.web.app import create_source_app

FORM_CAP = 2048
DAILY = 50_000


@dataclass
class Limited:
    services: Services
    clock: FakeClock
    source_id: str

    def browser(self) -> Browser:
        browser = Browser(create_source_app(self.services))
        cookie = self.services.sessions.open(self.source_id, generate_identity(), confirmed=True)
        browser.cookies.set(COOKIE, cookie)
        return browser


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[Limited]:
    clock = FakeClock()
    services = new_instance(
        tmp_path / "instance",
        clock,
        SEALDROP_LIMITS_MAX_FORM_BYTES=str(FORM_CAP),
        SEALDROP_LIMITS_SOURCE_DAILY_UPLOAD_BYTES=str(DAILY),
        SEALDROP_SESSIONS_REQUESTS_PER_MINUTE="6",
        SEALDROP_SESSIONS_REQUEST_BURST="5",
    )
    browser = Browser(create_source_app(services))
    started = browser.post("/start", data={"form_token": browser.form_token()})
    assert started.status_code == 200
    source_id = services.sessions.resolve(browser.cookies[COOKIE]).source_id
    yield Limited(services, clock, source_id)
    services.close()


def assert_error_page(response: httpx.Response, status: int, title: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert f"<h1>{title}</h1>" in response.text
    assert "content-security-policy" in response.headers


def test_a_declared_oversize_form_body_is_refused_before_it_is_read(limited: Limited) -> None:
    """A login form larger than limits.max_form_bytes: 413 "Too large" at once, on any route
    but the upload (GET included)."""
    browser = Browser(create_source_app(limited.services))
    token = browser.form_token("/login")
    big = {"form_token": token, "codename": "x" * (FORM_CAP + 10)}
    assert_error_page(browser.post("/login", data=big), 413, "Too large")
    assert_error_page(browser.request("GET", "/", content=b"x" * (FORM_CAP + 1)), 413, "Too large")


def test_a_chunked_oversize_body_is_cut_off_while_streaming(limited: Limited) -> None:
    """Without Content-Length, the body is counted as it arrives and refused past the cap."""
    browser = Browser(create_source_app(limited.services))
    token = browser.form_token("/login")

    async def chunks() -> object:
        yield f"form_token={token}&codename=".encode()
        for _ in range(10):
            yield b"a" * 512

    response = browser.post(
        "/login",
        content=chunks(),  # type: ignore[arg-type]
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert_error_page(response, 413, "Too large")


def test_a_session_over_its_request_budget_gets_429_and_recovers(limited: Limited) -> None:
    """Five requests at once are fine, the sixth is refused with Retry-After; another session
    is unaffected; after a while the session is served again."""
    browser, other = limited.browser(), limited.browser()
    for _ in range(5):
        assert browser.get("/conversation").status_code == 200
    refused = browser.get("/conversation")
    assert_error_page(refused, 429, "Too many attempts")
    assert int(refused.headers["retry-after"]) >= 1
    assert other.get("/conversation").status_code == 200
    limited.clock.advance(11)
    assert browser.get("/conversation").status_code == 200


def upload(browser: Browser, size: int) -> httpx.Response:
    page = browser.get("/conversation")
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    assert match
    return browser.post(
        "/submit",
        data={"csrf_token": match.group(1), "message": ""},
        files=[("files", ("data.bin", b"\0" * size, "application/octet-stream"))],
    )


def stored_count(limited: Limited) -> int:
    return len(limited.services.submissions.listing())


def test_a_source_over_its_daily_quota_gets_a_clear_page_and_nothing_is_stored(
    limited: Limited,
) -> None:
    """Uploads count against the source for 24 hours: one that would pass the quota is
    refused with "Daily limit reached" (429, Retry-After) and stores nothing; a day later the
    source may send again."""
    browser = limited.browser()
    assert upload(browser, 30_000).status_code == 303
    assert stored_count(limited) == 1
    limited.clock.advance(60)  # the session budget refills; only the quota is in play
    refused = upload(browser, 30_000)
    assert_error_page(refused, 429, "Daily limit reached")
    assert int(refused.headers["retry-after"]) > 23 * 3600
    assert stored_count(limited) == 1
    limited.clock.advance(24 * 3600)
    fresh = limited.browser()  # the first session has expired meanwhile
    assert upload(fresh, 30_000).status_code == 303
    assert stored_count(limited) == 2


def test_the_quota_is_per_source(limited: Limited) -> None:
    """Another source's uploads do not use this source's allowance."""
    assert upload(limited.browser(), 45_000).status_code == 303
    other_browser = Browser(create_source_app(limited.services))
    started = other_browser.post("/start", data={"form_token": other_browser.form_token()})
    assert started.status_code == 200
    other = limited.services.sessions.resolve(other_browser.cookies[COOKIE]).source_id
    second = Limited(limited.services, limited.clock, other).browser()
    assert upload(second, 45_000).status_code == 303
