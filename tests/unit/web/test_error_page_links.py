"""Error pages never carry the request's path: their language links lead to the start page.

An error page's path is whatever the client sent (any length, any characters), unlike a normal
page's, which is one of our own routes. Before, every one of the eight language links repeated
it, so a 100 KB URL got a page of several hundred KB, and crafted paths came back (escaped) in
the markup.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import anyio
import pytest
from starlette.types import Message
from test_source_app import Browser, new_instance

from sealdrop.web.app import create_source_app
from sealdrop.web.i18n import LANGUAGES

LANGUAGE_LINK = re.compile(r'<a href="([^"]*)\?lang=(\w+)"')
PAGE_BUDGET = 16 * 1024  # the size every page of the site stays under (tests/unit/web)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    services = new_instance(tmp_path_factory.mktemp("links") / "instance")
    yield create_source_app(services)
    services.close()


async def get_raw(app: Any, path: str) -> tuple[int, bytes]:
    """GET ``path`` straight through the ASGI interface (httpx refuses URLs over 64 KiB; a
    server's limit on the request head is not what this checks)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    [start] = [m for m in sent if m["type"] == "http.response.start"]
    return start["status"], b"".join(m.get("body", b"") for m in sent[1:])


def language_links(body: str) -> list[str]:
    links = LANGUAGE_LINK.findall(body)
    assert sorted(code for _, code in links) == sorted(LANGUAGES)
    return [target for target, _ in links]


def test_a_100_kb_url_gets_a_small_404_without_the_path(app: Any) -> None:
    """A 100 KB path gets the usual small 404 page: a few KB, no part of the path in it, and
    language links to the start page."""
    marker = "Zq9"
    status, body = anyio.run(get_raw, app, "/" + marker * 34_000)
    assert status == 404
    assert len(body) < PAGE_BUDGET
    text = body.decode("utf-8")
    assert marker not in text
    assert language_links(text) == ["/"] * len(LANGUAGES)


CRAFTED = [
    '/"><script>PROBE(1)</script>',
    "/'onmouseover='PROBE(1)'x",
    "/<b>PROBE</b>",
    "/%22%3E%3Cb%3EPROBE",
    "/a%00b%0d%0aSet-Cookie:PROBE",
    "/..%2f..%2fPROBE",
]


@pytest.mark.parametrize("path", CRAFTED)
def test_a_crafted_path_never_reaches_a_404_page(app: Any, path: str) -> None:
    """Paths with quotes, markup, encoded markup, NUL or CRLF get the 404 page with no trace of
    what was sent, in any form, escaped or not."""
    response = Browser(app).get(path)
    assert response.status_code == 404
    assert language_links(response.text) == ["/"] * len(LANGUAGES)
    sent = path.lstrip("/")
    for form in {sent, quote(sent), quote(sent, safe=""), "PROBE", "onmouseover", "script"}:
        if form:
            assert form not in response.text, form


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/submit", 405),  # a POST-only route
        ("GET", "/conversation", 403),  # no session: a refusal page on one of our own routes
        ("GET", "/replies/%3Cb%3EPROBE/delete", 405),
    ],
)
def test_every_error_page_links_languages_to_the_start(
    app: Any, method: str, path: str, status: int
) -> None:
    """Not only 404s: any error page, even on one of our routes, leads its language links to
    the start page."""
    response = Browser(app).request(method, path)
    assert response.status_code == status
    assert language_links(response.text) == ["/"] * len(LANGUAGES)
    assert "PROBE" not in response.text


def test_normal_pages_keep_their_own_path_in_language_links(app: Any) -> None:
    """A page served on one of our GET routes still links back to itself, so choosing a
    language keeps the source where they were."""
    for path in ("/", "/login"):
        response = Browser(app).get(path)
        assert response.status_code == 200
        assert language_links(response.text) == [path] * len(LANGUAGES)


def test_choosing_a_language_comes_back_only_to_our_own_pages(app: Any) -> None:
    """`?lang=` on one of our pages comes back to it; on any other path (made up, crafted, or
    100 KB long) it comes back to the start page, so the redirect never repeats what was sent."""
    browser = Browser(app)
    back = browser.get("/login?lang=fa", follow_redirects=False)
    assert back.status_code == 303
    assert back.headers["location"] == "/login"
    for path in [*CRAFTED, "/" + "Zq9" * 5_000, "//evil.example/x", "/replies/1/delete"]:
        moved = browser.get(path + "?lang=fa", follow_redirects=False)
        assert moved.status_code == 303, path
        assert moved.headers["location"] == "/", path
