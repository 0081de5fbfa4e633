"""Abuse limits of the source interface, each with a clear page: a body cap on every request but
uploads, a request budget per session, and an upload quota per source over 24 hours."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import pytest
from test_source_app import Browser, new_instance, signed_in_browser

from sealdrop.ids import SourceId
from sealdrop.services.container import Services
from sealdrop.testing import FakeClock
from sealdrop.web.app import create_source_app
from sealdrop.web.source.routes import COOKIE
from support_pages import csrf_token

FORM_CAP = 2048
DAILY = 50_000


@dataclass
class Limited:
    services: Services
    clock: FakeClock
    source_id: SourceId

    def browser(self) -> Browser:
        return signed_in_browser(self.services, self.source_id)


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
        content=chunks(),
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
    token = csrf_token(browser.get("/conversation").text)
    return browser.post(
        "/submit",
        data={"csrf_token": token, "message": ""},
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


def test_uploads_running_at_once_share_the_quota(limited: Limited) -> None:
    """Two uploads of one source in flight at the same time share its allowance: while the
    first (of unknown length) holds the whole quota, a second is refused before any of its
    body is read, and once the first is stored the source has what it did not use. (Before,
    each upload saw the whole allowance, so parallel uploads passed it several times over.)"""
    first_browser, second_browser = limited.browser(), limited.browser()
    tokens = []
    for browser in (first_browser, second_browser):
        tokens.append(csrf_token(browser.get("/conversation").text))
    boundary = "quota-race"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{tokens[0]}'
        f"\r\n--{boundary}\r\nContent-Disposition: form-data; "
        'name="files"; filename="a.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    half_sent, go_on = anyio.Event(), anyio.Event()
    results: dict[str, httpx.Response] = {}

    async def body() -> AsyncIterator[bytes]:
        # No Content-Length (chunked), as a browser's upload of unknown size would be.
        yield head + b"\0" * 10_000
        half_sent.set()
        await go_on.wait()
        yield b"\0" * 10_000 + tail

    async def race() -> None:
        app = limited.browser().app
        transport = httpx.ASGITransport(app=app)

        async def first() -> None:
            async with httpx.AsyncClient(
                transport=transport, base_url="http://testserver", cookies=first_browser.cookies
            ) as client:
                results["first"] = await client.post(
                    "/submit",
                    content=body(),
                    headers={"content-type": f"multipart/form-data; boundary={boundary}"},
                )

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(first)
            await half_sent.wait()
            async with httpx.AsyncClient(
                transport=transport, base_url="http://testserver", cookies=second_browser.cookies
            ) as client:
                results["second"] = await client.post(
                    "/submit",
                    data={"csrf_token": tokens[1], "message": "hello"},
                    files=[("files", ("b.bin", b"\0" * 1_000, "application/octet-stream"))],
                )
            go_on.set()

    anyio.run(race)
    assert_error_page(results["second"], 429, "Daily limit reached")
    assert results["first"].status_code == 303, results["first"].text
    assert stored_count(limited) == 1
    left, _ = limited.services.upload_quota.remaining(limited.source_id)
    assert DAILY - 20_000 <= left < DAILY - 19_000  # what the first stored, no more
    limited.clock.advance(60)  # the session budget refills
    assert upload(second_browser, 1_000).status_code == 303
