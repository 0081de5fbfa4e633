"""Helpers for every test directory (tests/ is on the path through its conftest.py): the hidden
anti-forgery fields of a page, and a browser that drives an ASGI app in-process.

The scrapers were copied into each test directory before; one pattern here means a change of the
forms' markup is one change of the tests."""

from __future__ import annotations

import re
from typing import Any

import anyio
import httpx


def field_pattern(name: str) -> re.Pattern[str]:
    """The form field ``name`` with a hexadecimal value (the value is group 1)."""
    return re.compile(r'name="' + re.escape(name) + r'" value="([0-9a-f]+)"')


def hidden_field(page: str, name: str) -> str:
    """The hexadecimal value of the form field ``name`` on ``page`` (asserts there is one)."""
    match = field_pattern(name).search(page)
    assert match is not None, f"no {name} field on the page:\n{page}"
    return match.group(1)


def form_token(page: str) -> str:
    """The pre-session anti-forgery token of the source's start or login form."""
    return hidden_field(page, "form_token")


def csrf_token(page: str) -> str:
    """The session's anti-forgery token of the source's forms."""
    return hidden_field(page, "csrf_token")


class AsgiBrowser:
    """A cookie-keeping HTTP client over an ASGI app in this process (httpx.ASGITransport; never
    follows redirects). Each request runs in its own event loop (anyio.run), so tests stay
    synchronous: pytest-asyncio is not installed. An exception the app does not handle is raised
    here, as it would fail the request."""

    def __init__(self, app: Any, base_url: str = "http://testserver") -> None:
        self.app = app
        self.base_url = base_url
        self.cookies = httpx.Cookies()

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(
                transport=transport, base_url=self.base_url, cookies=self.cookies
            ) as client:
                response = await client.request(method, url, **kwargs)
                await response.aread()
                self.cookies = httpx.Cookies(client.cookies)
                return response

        return anyio.run(go)

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)
