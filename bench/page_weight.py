"""Benchmark 2: the weight of every source page, as a browser receives it.

Each page is fetched over a plain socket with the headers a browser sends (``Connection: close``,
so the response ends with the connection): its size is every byte received, status line, headers
and body. Then its HTML is parsed for everything a browser would load with it (stylesheets,
images, icons, scripts, frames, fonts and images named in CSS, recursively), each is fetched the
same way, and the page's weight is the sum and its requests the count. A favicon request that a
browser makes by itself when a page names no icon is reported apart (``implicit_favicon``).

Pages reached through a POST and a 303 (the conversation after confirming, the submitted page)
are measured as the GET that the redirect leads to; the 303 itself is reported beside them.
"""

from __future__ import annotations

import re
import socket
import urllib.parse
import uuid
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pyrage
from benchlib import (
    BROWSER_HEADERS,
    Instance,
    admin_token,
    codename_of,
    hidden_field,
    make_instance,
)


@dataclass
class Wire:
    """One response as received: every byte, the status, headers and body."""

    raw: bytes
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    def cookies(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, value in self.headers:
            if key.lower() == "set-cookie":
                pair = value.split(";", 1)[0]
                name, _, val = pair.partition("=")
                out[name.strip()] = val.strip()
        return out

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass
class Browser:
    """Just enough of a browser: a cookie jar and raw HTTP/1.1 over a new socket per request."""

    host: str
    port: int
    cookies: dict[str, str] = field(default_factory=dict)

    def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        content_type: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> Wire:
        headers = {"Host": f"{self.host}:{self.port}", **BROWSER_HEADERS}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if method == "POST":
            headers["Origin"] = "null"  # what a browser sends under Referrer-Policy no-referrer
            headers["Sec-Fetch-Site"] = "same-origin"
            headers["Content-Type"] = content_type or "application/x-www-form-urlencoded"
            headers["Content-Length"] = str(len(body))
        headers.update(extra or {})
        headers["Connection"] = "close"
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()
        )
        with socket.create_connection((self.host, self.port), timeout=60) as sock:
            sock.sendall(head.encode("latin-1") + b"\r\n" + body)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        wire = parse(b"".join(chunks))
        for name, value in wire.cookies().items():
            if value:
                self.cookies[name] = value
            else:
                self.cookies.pop(name, None)
        return wire

    def get(self, path: str) -> Wire:
        return self.request("GET", path)

    def post_form(self, path: str, fields: dict[str, str]) -> Wire:
        body = urllib.parse.urlencode(fields).encode()
        return self.request("POST", path, body)

    def post_multipart(self, path: str, fields: list[tuple[str, str]]) -> Wire:
        boundary = "----geckoformboundary" + uuid.uuid4().hex
        out = b""
        for name, value in fields:
            out += (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
            ).encode()
        # An empty file input is still sent, as a part with an empty file name.
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename=""\r\n'
            "Content-Type: application/octet-stream\r\n\r\n\r\n"
        ).encode()
        out += f"--{boundary}--\r\n".encode()
        return self.request("POST", path, out, f"multipart/form-data; boundary={boundary}")


def parse(raw: bytes) -> Wire:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            headers.append((name.strip(), value.strip()))
    if any(k.lower() == "transfer-encoding" and "chunked" in v.lower() for k, v in headers):
        body = _dechunk(body)
    return Wire(raw, status, headers, body)


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return out


class _Subresources(HTMLParser):
    """Every URL in a page that a browser loads with it, without any script running."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.has_icon = False
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        rel = a.get("rel", "").lower().split()
        if tag == "link" and {"stylesheet", "icon", "preload", "apple-touch-icon"} & set(rel):
            self.has_icon = self.has_icon or "icon" in rel
            self.urls.append(a.get("href", ""))
        elif tag in ("img", "script", "iframe", "frame", "embed", "source", "audio", "video"):
            self.urls.append(a.get("src", ""))
            for candidate in a.get("srcset", "").split(","):
                self.urls.append(candidate.strip().split(" ")[0])
            self.urls.append(a.get("poster", ""))
        elif tag == "input" and a.get("type", "").lower() == "image":
            self.urls.append(a.get("src", ""))
        elif tag == "object":
            self.urls.append(a.get("data", ""))
        elif tag == "style":
            self._in_style = True
        if "style" in a:
            self.urls.extend(css_urls(a["style"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.urls.extend(css_urls(data))


_CSS_URL = re.compile(r"""url\(\s*['"]?([^'")]+)['"]?\s*\)|@import\s+['"]([^'"]+)['"]""")


def css_urls(css: str) -> list[str]:
    return [a or b for a, b in _CSS_URL.findall(css)]


def _loadable(url: str) -> bool:
    return bool(url) and not url.startswith(("data:", "#", "about:", "javascript:"))


def weigh(browser: Browser, path: str, page: Wire) -> dict[str, Any]:
    """A page and everything it makes a browser load: bytes on the wire and requests."""
    parser = _Subresources()
    if "html" in (page.header("content-type") or ""):
        parser.feed(page.text)
    pending = [urllib.parse.urljoin(path, u) for u in parser.urls if _loadable(u)]
    seen: set[str] = set()
    subresources: list[dict[str, Any]] = []
    while pending:
        url = pending.pop(0)
        if url in seen:
            continue
        seen.add(url)
        parts = urllib.parse.urlsplit(url)
        if parts.netloc and parts.netloc != f"{browser.host}:{browser.port}":
            subresources.append({"url": url, "bytes": None, "external": True})
            continue
        wire = browser.get(parts.path + (f"?{parts.query}" if parts.query else ""))
        subresources.append({"url": url, "status": wire.status, "bytes": len(wire.raw)})
        if "css" in (wire.header("content-type") or ""):
            pending += [urllib.parse.urljoin(url, u) for u in css_urls(wire.text) if _loadable(u)]
    header_bytes = len(page.raw) - len(page.body)
    total = len(page.raw) + sum(s["bytes"] or 0 for s in subresources)
    result: dict[str, Any] = {
        "path": path,
        "status": page.status,
        "page_bytes": len(page.raw),
        "header_bytes": header_bytes,
        "body_bytes": len(page.body),
        "subresources": subresources,
        "bytes": total,
        "requests": 1 + len(subresources),
    }
    if not parser.has_icon and "html" in (page.header("content-type") or ""):
        favicon = browser.get("/favicon.ico")
        result["implicit_favicon"] = {"status": favicon.status, "bytes": len(favicon.raw)}
    return result


def measure(instance: Instance) -> dict[str, Any]:
    """Walk a source through every page (and the error pages) and weigh each."""
    server = instance.server(name="pages").start()
    pages: dict[str, dict[str, Any]] = {}
    redirects: dict[str, dict[str, Any]] = {}
    try:
        b = Browser("127.0.0.1", server.port)

        def page(name: str, path: str, wire: Wire, expect: int = 200) -> None:
            if wire.status != expect:
                raise RuntimeError(f"{name}: {path} answered {wire.status}, expected {expect}")
            pages[name] = weigh(b, path, wire)

        landing = b.get("/")
        page("landing", "/", landing)
        codename_page = b.post_form(
            "/start", {"form_token": hidden_field(landing.text, "form_token")}
        )
        page("codename", "/start", codename_page)
        codename = codename_of(codename_page.text)
        confirm = b.get("/confirm")
        page("confirm", "/confirm", confirm)
        csrf = hidden_field(confirm.text, "csrf_token")
        wrong = b.post_form("/confirm", {"csrf_token": csrf, "codename": "wrong " * 7})
        page("confirm, wrong codename (400)", "/confirm", wrong, 400)
        done = b.post_form("/confirm", {"csrf_token": csrf, "codename": codename})
        redirects["POST /confirm"] = {"status": done.status, "bytes": len(done.raw)}
        if done.status != 303:
            raise RuntimeError(f"confirm answered {done.status}")
        page("conversation, empty", "/conversation", b.get("/conversation"))
        csrf = hidden_field(b.get("/conversation").text, "csrf_token")
        sent = b.post_multipart("/submit", [("csrf_token", csrf), ("message", "Hello " * 40)])
        redirects["POST /submit"] = {"status": sent.status, "bytes": len(sent.raw)}
        if sent.status != 303:
            raise RuntimeError(f"submit answered {sent.status}")
        page("submitted", "/submitted", b.get("/submitted"))
        add_reply(instance, server.api_url, "A reply from the newsroom. " * 8)
        page("conversation, with items", "/conversation", b.get("/conversation"))
        huge = b.request(
            "POST",
            "/submit",
            b"",
            "multipart/form-data; boundary=x",
            {"Content-Length": str(64 * 1024**3)},
        )
        page("too large (413)", "/submit", huge, 413)
        csrf = hidden_field(b.get("/conversation").text, "csrf_token")
        page("logged out", "/logout", b.post_form("/logout", {"csrf_token": csrf}))
        page("not logged in (403)", "/conversation", b.get("/conversation"), 403)
        login = b.get("/login")
        page("login", "/login", login)
        wrong_login = {"form_token": hidden_field(login.text, "form_token"), "codename": "x"}
        failed = b.post_form("/login", wrong_login)
        page("login, wrong codename (400)", "/login", failed, 400)
        for _ in range(50):  # logins.failures_per_visitor (10) wrong codenames, then 429
            again = b.post_form("/login", wrong_login)
            if again.status != 400:
                break
        page("too many attempts (429)", "/login", again, 429)
        b.cookies.clear()
        page("form expired (400)", "/start", b.post_form("/start", {"form_token": "0" * 64}), 400)
        page("not found (404)", "/no-such-page", b.get("/no-such-page"), 404)
        page("method not allowed (405)", "/submit", b.get("/submit"), 405)
    finally:
        server.stop()
    return {"pages": pages, "redirects": redirects}


def add_reply(instance: Instance, api_url: str, text: str) -> None:
    """A journalist reply to the only source, sent as the reader sends one: an age file to the
    source's reply key and the organisation key, uploaded through the journalist API."""
    headers = {"Authorization": f"Bearer {admin_token(instance.path, api_url)}"}
    with httpx.Client(base_url=f"{api_url}/api/v1", headers=headers, timeout=60) as api:
        listed = api.get("/sources", params={"updated_since": 0, "limit": 1})
        source = listed.raise_for_status().json()["sources"][0]
        recipients = [
            pyrage.x25519.Recipient.from_str(source["reply_key"]),
            instance.identity.to_public(),
        ]
        api.post(
            f"/sources/{source['id']}/replies",
            content=pyrage.encrypt(text.encode(), recipients),
            headers={"Content-Type": "application/octet-stream"},
        ).raise_for_status()


def run(workdir: Path, log_dir: Path) -> dict[str, Any]:
    instance = make_instance(workdir / "pages", log_dir)
    result = measure(instance)
    for name, p in result["pages"].items():
        favicon = p.get("implicit_favicon")
        extra = (
            f" (+ implicit /favicon.ico: {favicon['status']}, {favicon['bytes']} B)"
            if favicon
            else ""
        )
        print(
            f"  {name:<32} {p['bytes']:>6} B in {p['requests']} request(s) "
            f"(headers {p['header_bytes']} B, body {p['body_bytes']} B)" + extra,
            flush=True,
        )
    return result
