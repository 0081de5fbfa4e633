"""HSTS and Onion-Location: on the TCP listener when it is published at an https:// address,
never on the onion listener, and Onion-Location never built from what the client sent as Host."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import httpx
import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sealdrop.config import load_settings
from sealdrop.services.container import Services, build_services
from sealdrop.services.instance import init_instance
from sealdrop.testing import FakeClock
from sealdrop.web.app import create_source_app
from sealdrop.web.headers import ClearnetHeaders
from sealdrop.web.onion import CIRCUIT_SCOPE_KEY, Circuit, onion_listener

ONION = "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuvwx.onion"
HSTS = "max-age=63072000"


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """An instance whose source listener is published at https://drop.example.org."""
    path = init_instance(tmp_path_factory.mktemp("clearnet") / "instance")
    settings = load_settings(path, env={"SEALDROP_SOURCE_PUBLIC_URL": "https://drop.example.org"})
    services = build_services(settings, FakeClock(), kdf_processes=False)  # see conftest.py
    yield services
    services.close()


def fetch(app: ASGIApp, url: str, **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.get(url, **kwargs)

    return anyio.run(go)


def as_onion(app: ASGIApp) -> ASGIApp:
    """The app as the onion socket serves it, with the scope ProxyProtocol would give."""
    listener = onion_listener(app)

    async def tagged(scope: Scope, receive: Receive, send: Send) -> None:
        await listener({**scope, CIRCUIT_SCOPE_KEY: Circuit(7)}, receive, send)

    return tagged


def test_published_tcp_responses_carry_hsts_and_onion_location(published: Services) -> None:
    """With public_url and a known onion: HSTS for two years (no preload), and Onion-Location
    pointing at the same path and query on the onion, on every status."""
    app = create_source_app(published, onion_address=lambda: ONION)
    page = fetch(app, "/login")
    assert page.status_code == 200
    assert page.headers.get_list("strict-transport-security") == [HSTS]
    assert page.headers.get_list("onion-location") == [f"http://{ONION}/login"]
    missing = fetch(app, "/no%20such/page?a=1&b=%C3%A9")
    assert missing.status_code == 404
    assert missing.headers["strict-transport-security"] == HSTS
    assert missing.headers["onion-location"] == f"http://{ONION}/no%20such/page?a=1&b=%C3%A9"


def test_onion_location_ignores_the_host_header(published: Services) -> None:
    """The onion address comes from tor, never from the client's Host header."""
    app = create_source_app(published, onion_address=lambda: ONION)
    response = fetch(app, "/", headers={"host": "evil.example"})
    assert response.headers["onion-location"] == f"http://{ONION}/"


def test_onion_location_appears_once_tor_has_made_the_address(published: Services) -> None:
    """Before the address exists there is HSTS alone; the callable is asked on each request,
    so Onion-Location appears as soon as tor has created the onion."""
    address: list[str | None] = [None]
    app = create_source_app(published, onion_address=lambda: address[0])
    before = fetch(app, "/")
    assert before.headers["strict-transport-security"] == HSTS
    assert "onion-location" not in before.headers
    address[0] = ONION
    assert fetch(app, "/").headers["onion-location"] == f"http://{ONION}/"


@pytest.mark.parametrize(
    "address",
    ["evil.example", "a" * 56 + ".onion\r\nSet-Cookie: x=1", "A" * 56 + ".onion", "x.onion", ""],
)
def test_a_malformed_onion_address_is_not_sent(published: Services, address: str) -> None:
    """Only a v3 onion address (56 base32 letters + .onion) makes an Onion-Location."""
    response = fetch(create_source_app(published, onion_address=lambda: address), "/")
    assert "onion-location" not in response.headers
    assert not [c for c in response.headers.get_list("set-cookie") if c.startswith("x=")]
    assert response.headers["strict-transport-security"] == HSTS


def test_unpublished_tcp_responses_carry_neither(published: Services) -> None:
    """Without public_url (plain 127.0.0.1 access) neither header is sent: HSTS means nothing
    over HTTP, and browsers honour Onion-Location only over HTTPS."""
    settings = dataclasses.replace(published.settings, public_url="")
    app = create_source_app(
        dataclasses.replace(published, settings=settings), onion_address=lambda: ONION
    )
    response = fetch(app, "/")
    assert response.status_code == 200
    assert "strict-transport-security" not in response.headers
    assert "onion-location" not in response.headers


def test_onion_responses_carry_neither(published: Services) -> None:
    """Requests that came over the onion get no HSTS and no Onion-Location, even with
    public_url set and the onion known."""
    app = as_onion(create_source_app(published, onion_address=lambda: ONION))
    response = fetch(app, "/")
    assert response.status_code == 200
    assert "strict-transport-security" not in response.headers
    assert "onion-location" not in response.headers


async def _ok(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def _headers_for(scope: Scope, address: Callable[[], str | None] = lambda: ONION) -> list[Any]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request"}

    async def send(message: Message) -> None:
        sent.append(message)

    middleware = ClearnetHeaders(_ok, lambda scope: False, address)
    anyio.run(middleware, {"type": "http", **scope}, receive, send)
    return list(sent[0]["headers"])


@pytest.mark.parametrize(
    ("raw_path", "query", "expected"),
    [
        (b"/a/b", b"", b"/a/b"),
        (b"/a", b"x=1&y=%20", b"/a?x=1&y=%20"),
        # Absolute-form and asterisk targets are not paths on our site: the front page.
        (b"http://evil.example/x", b"q=1", b"/"),
        (b"*", b"", b"/"),
        # Bytes no header may carry (a server that let them through) are never copied.
        (b"/a\r\nSet-Cookie: x=1", b"", b"/"),
        (b"/a", b"q=\x00", b"/"),
        (b"/caf\xc3\xa9", b"", b"/"),
    ],
)
def test_onion_location_copies_only_a_clean_origin_form_target(
    raw_path: bytes, query: bytes, expected: bytes
) -> None:
    """The raw path and query are copied only if they are an origin-form target of visible
    ASCII; anything else points at the onion's front page."""
    headers = _headers_for({"raw_path": raw_path, "query_string": query, "path": "/"})
    assert (b"onion-location", b"http://" + ONION.encode() + expected) in headers


def test_the_clearnet_headers_replace_any_the_app_set() -> None:
    """If the app set HSTS or Onion-Location itself, ours replace them: each appears once."""

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"strict-transport-security", b"max-age=1"), (b"onion-location", b"x")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request"}

    async def send(message: Message) -> None:
        sent.append(message)

    middleware = ClearnetHeaders(inner, lambda scope: False, lambda: ONION)
    scope = {"type": "http", "raw_path": b"/", "query_string": b"", "path": "/"}
    anyio.run(middleware, scope, receive, send)
    assert sorted(sent[0]["headers"]) == [
        (b"onion-location", f"http://{ONION}/".encode()),
        (b"strict-transport-security", HSTS.encode()),
    ]


def test_cookies_are_secure_behind_the_tls_proxy_but_not_on_the_onion(published: Services) -> None:
    """Behind the TLS reverse proxy the app sees http://, but the browser is on https://: its
    cookies are marked Secure so that a downgraded request never carries them. The onion is
    http:// by design, so there they are not (the browser would not send them back)."""
    app = create_source_app(published, onion_address=lambda: ONION)
    clearnet = fetch(app, "/login").headers.get_list("set-cookie")
    assert clearnet
    assert all("Secure" in cookie for cookie in clearnet)
    onion = fetch(as_onion(app), "/login").headers.get_list("set-cookie")
    assert onion
    assert not any("Secure" in cookie for cookie in onion)
