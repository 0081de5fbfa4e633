"""The source interface in-process (httpx.ASGITransport, no server): security headers on every
status, self-contained pages without scripts, cookie attributes, where the codename may appear,
logout, relative redirects, and the login page's uniform refusal.

Each login or confirmation runs Argon2id (failed ones a decoy derivation; at a tiny cost here, see
conftest.py), so the module shares one instance and creates further sessions through
SessionService instead of logging in."""

from __future__ import annotations

import base64
import hashlib
import html
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from sealdrop.config import Settings, load_settings
from sealdrop.crypto.codenames import generate
from sealdrop.crypto.keys import generate_identity, recipient_of
from sealdrop.errors import NotAcceptingSubmissions
from sealdrop.ids import SourceId, new_id
from sealdrop.services.container import Services, build_services
from sealdrop.services.instance import init_instance
from sealdrop.storage.database import SqlDatabase
from sealdrop.testing import FakeClock
from sealdrop.web.app import create_source_app
from sealdrop.web.headers import SOURCE_HEADERS, SecurityHeaders
from sealdrop.web.source.routes import COOKIE
from support_pages import AsgiBrowser, csrf_token, field_pattern, form_token

UPLOAD_LIMIT = 100_000
PAGE_BUDGET = 16 * 1024
EMPTY_ICON = '<link rel="icon" href="data:,">'
STYLESHEET = (resources.files("sealdrop.web.source") / "static" / "style.css").read_bytes()
RESUME_JS = (resources.files("sealdrop.web.source") / "static" / "resume.js").read_bytes()
SCRIPT_HASH = "sha256-" + base64.b64encode(hashlib.sha256(RESUME_JS).digest()).decode()
LOGIN_ERROR_TEXT = "That codename was not recognised."
CSRF_FIELD = field_pattern("csrf_token")
FORM_FIELD = field_pattern("form_token")


class Browser(AsgiBrowser):
    """A source's browser over the ASGI app, with its forms' tokens."""

    def form_token(self, page: str = "/") -> str:
        """The pre-session form token, from a page that has the start or login form."""
        return form_token(self.get(page).text)

    def csrf_token(self, page: str = "/conversation") -> str:
        return csrf_token(self.get(page).text)


@dataclass
class Instance:
    path: Path
    settings: Settings
    services: Services
    source_id: SourceId
    codename: str
    start_response: httpx.Response
    start_cookie: str

    def browser(self, cookie: str | None = None, base_url: str = "http://testserver") -> Browser:
        browser = Browser(create_source_app(self.services), base_url)
        if cookie is not None:
            browser.cookies.set(COOKIE, cookie)
        return browser

    def new_cookie(self, *, confirmed: bool = True) -> str:
        """A fresh session for the source made at /start, without another Argon2id run."""
        return self.services.sessions.open(self.source_id, generate_identity(), confirmed=confirmed)

    def csrf_token(self, cookie: str) -> str:
        return self.services.sessions.resolve(cookie).csrf_token


def new_instance(directory: Path, clock: FakeClock | None = None, **env: str) -> Services:
    """An instance as `sealdrop init` makes it, with one organisation recipient; codenames are
    derived in threads of this process, at the cheap cost conftest.py sets."""
    path = init_instance(directory)
    settings = load_settings(path, env=env)
    database = SqlDatabase(settings.database_url)
    try:
        with database.transaction() as repos:
            repos.recipients.add(str(recipient_of(generate_identity())), "journalist")
    finally:
        database.close()
    return build_services(settings, clock, kdf_processes=False)


def signed_in_browser(services: Services, source_id: SourceId) -> Browser:
    """A browser holding a new confirmed session of ``source_id`` (as after a login)."""
    browser = Browser(create_source_app(services))
    cookie = services.sessions.open(source_id, generate_identity(), confirmed=True)
    browser.cookies.set(COOKIE, cookie)
    return browser


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    """One instance for the module and a source made through the index page and POST /start."""
    directory = tmp_path_factory.mktemp("app") / "instance"
    services = new_instance(directory, SEALDROP_LIMITS_MAX_UPLOAD_BYTES=str(UPLOAD_LIMIT))
    browser = Browser(create_source_app(services))
    response = browser.post("/start", data={"form_token": browser.form_token()})
    assert response.status_code == 200, response.text
    match = re.search(r'<p class="codename"[^>]*>([^<]+)</p>', response.text)
    assert match is not None
    cookie = browser.cookies[COOKIE]
    source_id = services.sessions.resolve(cookie).source_id
    yield Instance(
        directory,
        services.settings,
        services,
        source_id,
        html.unescape(match.group(1)),
        response,
        cookie,
    )
    services.close()


def submit_form(token: str, message: str = "hello") -> dict[str, Any]:
    """Arguments for a browser-like multipart POST /submit (the token first, as the page has it)."""
    return {
        "data": {"csrf_token": token, "message": message},
        "files": [("files", ("note.txt", b"file content", "text/plain"))],
    }


@pytest.mark.parametrize(
    "path", ["/api", "/api/v1/submissions", "/admin", "/journalist", "/docs", "/openapi.json"]
)
def test_no_journalist_or_admin_route_on_the_source_listener(instance: Instance, path: str) -> None:
    """The source app answers 404 for journalist and admin paths (invariant 8)."""
    browser = instance.browser(instance.new_cookie())
    assert browser.get(path).status_code == 404
    assert browser.post(path).status_code == 404


# --- security headers --------------------------------------------------------------------------

EXPECTED_HEADERS = {
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
}


def assert_security_headers(response: httpx.Response) -> None:
    directives = {
        d.strip().split(" ", 1)[0]: d.strip().split(" ", 1)[1:]
        for d in response.headers["content-security-policy"].split(";")
    }
    assert directives["default-src"] == ["'none'"]
    assert directives["form-action"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    # The one script allowed is the conversation page's inlined resumable-upload script, by
    # hash; it may connect to this origin only.
    assert directives["script-src"] == [f"'{SCRIPT_HASH}'"]
    assert directives["connect-src"] == ["'self'"]
    assert "unsafe" not in response.headers["content-security-policy"]
    for name, value in EXPECTED_HEADERS.items():
        assert response.headers.get_list(name) == [value], name
    for raw_name, _ in SOURCE_HEADERS:
        assert len(response.headers.get_list(raw_name.decode())) == 1, raw_name
    for name in ("server", "date", "x-powered-by"):
        assert name not in response.headers


Scenario = Callable[[Instance, pytest.MonkeyPatch], httpx.Response]


def _boom(*args: object) -> object:
    raise RuntimeError("INTERNAL-DETAIL /etc/secret-path select * from sources")


def logout_page(i: Instance, m: pytest.MonkeyPatch) -> httpx.Response:
    cookie = i.new_cookie()
    return i.browser(cookie).post("/logout", data={"csrf_token": i.csrf_token(cookie)})


def submitted_redirect(i: Instance, m: pytest.MonkeyPatch) -> httpx.Response:
    cookie = i.new_cookie()
    return i.browser(cookie).post("/submit", **submit_form(i.csrf_token(cookie)))


def reply_not_found(i: Instance, m: pytest.MonkeyPatch) -> httpx.Response:
    cookie = i.new_cookie()
    url = f"/replies/{new_id()}/delete"
    return i.browser(cookie).post(url, data={"csrf_token": i.csrf_token(cookie)})


def upload_too_large(i: Instance, m: pytest.MonkeyPatch) -> httpx.Response:
    cookie = i.new_cookie()
    form = submit_form(i.csrf_token(cookie), "x" * (UPLOAD_LIMIT + 1))
    return i.browser(cookie).post("/submit", **form)


def server_error(i: Instance, m: pytest.MonkeyPatch) -> httpx.Response:
    m.setattr(i.services.sessions, "resolve", _boom)
    return i.browser("A" * 86).get("/conversation")


def not_accepting(i: Instance, m: pytest.MonkeyPatch) -> httpx.Response:
    cookie = i.new_cookie()
    token = i.csrf_token(cookie)

    def refuse(*args: object) -> object:
        raise NotAcceptingSubmissions("switched off")

    m.setattr(i.services.submissions, "intake", refuse)
    return i.browser(cookie).post("/submit", **submit_form(token))


SCENARIOS: dict[str, tuple[int, Scenario]] = {
    "index": (200, lambda i, m: i.browser().get("/")),
    "index-logged-in": (200, lambda i, m: i.browser(i.new_cookie()).get("/")),
    "index-rtl": (200, lambda i, m: i.browser().get("/", headers={"accept-language": "fa"})),
    "login-form": (200, lambda i, m: i.browser().get("/login")),
    "confirm-form": (200, lambda i, m: i.browser(i.new_cookie(confirmed=False)).get("/confirm")),
    "conversation": (200, lambda i, m: i.browser(i.new_cookie()).get("/conversation")),
    "submitted": (200, lambda i, m: i.browser(i.new_cookie()).get("/submitted")),
    "logged-out": (200, logout_page),
    "to-confirm": (
        303,
        lambda i, m: i.browser(i.new_cookie(confirmed=False)).get("/conversation"),
    ),
    "to-submitted": (303, submitted_redirect),
    "start-without-token": (400, lambda i, m: i.browser().post("/start")),
    "login-without-token": (400, lambda i, m: i.browser().post("/login", data={"codename": "x"})),
    "no-session": (403, lambda i, m: i.browser().get("/conversation")),
    "forged-session": (403, lambda i, m: i.browser("A" * 86).get("/submitted")),
    "cross-site-post": (
        403,
        lambda i, m: i.browser().post("/login", headers={"sec-fetch-site": "cross-site"}),
    ),
    "not-found": (404, lambda i, m: i.browser().get("/no/such/page")),
    "static-not-found": (404, lambda i, m: i.browser().get("/static/missing.css")),
    "reply-not-found": (404, reply_not_found),
    "wrong-method": (405, lambda i, m: i.browser().request("DELETE", "/")),
    "get-start": (405, lambda i, m: i.browser().get("/start")),
    "form-too-large": (
        413,
        lambda i, m: i.browser().post("/login", content=b"codename=" + b"a" * 70_000),
    ),
    "upload-too-large": (413, upload_too_large),
    "server-error": (500, server_error),
    "not-accepting": (503, not_accepting),
}
# Pages: every scenario but the (bodiless) redirects.
HTML_SCENARIOS = [name for name, (status, _) in SCENARIOS.items() if status != 303]


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_response_carries_the_security_headers(
    instance: Instance, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """CSP, no-referrer, no-store and nosniff are on every status (200 … 503), once each, and
    no Server, Date or X-Powered-By header is sent."""
    status, scenario = SCENARIOS[name]
    response = scenario(instance, monkeypatch)
    assert response.status_code == status, response.text
    assert_security_headers(response)


def test_too_many_login_attempts_page_carries_the_security_headers(tmp_path: Path) -> None:
    """The 429 of the login throttle has the same headers, and a Retry-After."""
    services = new_instance(tmp_path / "i", SEALDROP_LOGINS_FAILURES_PER_VISITOR="1")
    try:
        browser = Browser(create_source_app(services))
        token = browser.form_token("/login")
        first = browser.post("/login", data={"form_token": token, "codename": "wrong"})
        assert first.status_code == 400
        second = browser.post("/login", data={"form_token": token, "codename": "wrong"})
        assert second.status_code == 429
        assert int(second.headers["retry-after"]) > 0
        assert_security_headers(second)
    finally:
        services.close()


def test_server_error_page_is_ours_and_reveals_nothing(
    instance: Instance, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An unexpected exception gives our 500 page; neither the page nor the log carries its text
    or a traceback, only the exception's class name is logged."""
    caplog.set_level(logging.DEBUG)
    response = server_error(instance, monkeypatch)
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/html")
    assert "Something went wrong" in response.text
    assert "<title>" in response.text
    for leak in ("INTERNAL-DETAIL", "secret-path", "select *", "RuntimeError", "Traceback"):
        assert leak not in response.text
    for leak in ("INTERNAL-DETAIL", "secret-path", "select *", "Traceback"):
        assert leak not in caplog.text
    assert all(r.exc_info is None for r in caplog.records)
    assert any("RuntimeError" in r.getMessage() for r in caplog.records)


def test_security_headers_replace_what_the_inner_app_set() -> None:
    """SecurityHeaders drops Server, Date and X-Powered-By and overrides weaker copies of its own
    headers, whatever the wrapped app sends."""

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        start: Message = {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"server", b"uvicorn/0.30"),
                (b"Date", b"Tue, 01 Jan 2030 00:00:00 GMT"),
                (b"X-Powered-By", b"python"),
                (b"cache-control", b"public, max-age=3600"),
                (b"content-security-policy", b"default-src *"),
                (b"content-type", b"text/plain"),
            ],
        }
        await send(start)
        await send({"type": "http.response.body", "body": b"ok"})

    response = Browser(SecurityHeaders(inner, SOURCE_HEADERS)).get("/")
    assert response.text == "ok"
    assert response.headers["content-type"] == "text/plain"
    assert_security_headers(response)


# --- pages -------------------------------------------------------------------------------------


class PageAudit(HTMLParser):
    """Collects what in a page could run code or load from somewhere else."""

    URL_ATTRIBUTES = frozenset(
        {"src", "href", "action", "formaction", "srcset", "poster", "data", "background", "ping"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.urls: list[tuple[str, str, str]] = []
        self.problems: list[str] = []
        self.styles: list[str] = []
        self.scripts: list[str] = []
        self._in_style = False
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles[-1] += data
        if self._in_script:
            self.scripts[-1] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False
        if tag == "script":
            self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "style":
            # Allowed only as the packaged stylesheet (checked by the tests, and by the CSP hash).
            self.styles.append("")
            self._in_style = True
        if tag == "script" and not attrs:
            # Allowed only as the packaged resumable-upload script, inline (checked by the tests
            # against the file, and by the CSP hash); a script with a src or type is a problem.
            self.scripts.append("")
            self._in_script = True
        elif tag in ("script", "iframe", "object", "embed", "base", "frame", "applet"):
            self.problems.append(f"<{tag}>")
        if tag == "meta" and any(k == "http-equiv" and v == "refresh" for k, v in attrs):
            self.problems.append("meta refresh")
        for key, value in attrs:
            if key.startswith("on"):
                self.problems.append(f"event handler {key}")
            if key == "style":
                self.problems.append("inline style attribute (blocked by the CSP)")
            if key in self.URL_ATTRIBUTES:
                self.urls.append((tag, key, value or ""))


def audit(response: httpx.Response) -> PageAudit:
    parser = PageAudit()
    parser.feed(response.text)
    parser.close()
    return parser


@pytest.mark.parametrize("name", HTML_SCENARIOS)
def test_pages_have_no_script_and_load_only_from_this_site(
    instance: Instance, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """No script, frame or handler; the only style is the packaged stylesheet, inlined (one
    request per page); every link and form is a same-site path (or an in-page #fragment), and
    nothing is loaded from anywhere."""
    response = SCENARIOS[name][1](instance, monkeypatch)
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    page = audit(response)
    assert page.problems == []
    assert "html" in page.tags
    # The one data: URL is the empty icon, which spares the browser a /favicon.ico request.
    assert response.text.count(EMPTY_ICON) == 1
    text = response.text.replace(EMPTY_ICON, "")
    assert not re.search(r"(?i)https?:|//[a-z0-9]|javascript:|data:", text)
    for tag, attribute, url in page.urls:
        if (tag, attribute, url) == ("link", "href", "data:,"):
            continue
        assert url.startswith(("/", "#")), (tag, attribute, url)
        assert not url.startswith("//"), (tag, attribute, url)
        assert tag != "link", (tag, attribute, url)
        assert attribute != "src", (tag, attribute, url)
    assert page.styles == [STYLESHEET.decode("utf-8")]
    # Only the conversation page (its upload form) carries the one packaged script.
    assert page.scripts == ([RESUME_JS.decode("utf-8")] if name == "conversation" else [])


def test_stylesheet_loads_nothing_else() -> None:
    """The stylesheet imports nothing and refers to no URL (fonts, images) elsewhere."""
    css = STYLESHEET.decode("utf-8")
    assert "@import" not in css
    for url in re.findall(r"url\(\s*['\"]?([^'\")]*)", css):
        assert url.startswith("/static/"), url
    assert not re.search(r"(?i)https?:|//[a-z0-9]", css)


def test_the_csp_allows_exactly_the_inlined_stylesheet(instance: Instance) -> None:
    """The CSP's only style source is the SHA-256 of the packaged stylesheet, which every page
    inlines byte for byte; there is no separate stylesheet URL (and so no file time to leak)."""
    response = instance.browser().get("/")
    digest = base64.b64encode(hashlib.sha256(STYLESHEET).digest()).decode()
    policy = response.headers["content-security-policy"]
    assert f"style-src 'sha256-{digest}';" in policy
    assert "'unsafe-inline'" not in policy
    assert f"<style>{STYLESHEET.decode('utf-8')}</style>" in response.text
    assert instance.browser().get("/static/style.css").status_code == 404


@pytest.mark.parametrize("name", HTML_SCENARIOS)
def test_each_page_with_its_stylesheet_fits_in_16_kb(
    instance: Instance, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """A page, stylesheet included, stays under 16 KB: quick to load over a slow Tor circuit."""
    response = SCENARIOS[name][1](instance, monkeypatch)
    assert len(response.content) <= PAGE_BUDGET


def test_codename_page_fits_in_16_kb_and_has_no_script(instance: Instance) -> None:
    """The page that shows the codename meets the same rules as every other page."""
    response = instance.start_response
    assert len(response.content) <= PAGE_BUDGET
    assert audit(response).problems == []
    assert audit(response).scripts == []
    assert_security_headers(response)


def test_error_pages_do_not_reflect_the_request(instance: Instance) -> None:
    """A path or form value sent by the client never comes back in the page at all: not in its
    text, not as markup, not even escaped in a link (error pages link languages to the start)."""
    browser = instance.browser()
    probe = "<b>REFLECTED-PROBE</b>"
    token = browser.form_token("/login")
    for response in (
        browser.get("/" + probe),
        browser.get("/static/" + probe),
        browser.post("/login", data={"codename": probe}),
        browser.post("/login", data={"form_token": token, "codename": probe}),
    ):
        assert response.status_code in (400, 404)
        assert "REFLECTED-PROBE" not in response.text
        assert "<b>" not in response.text


# --- cookies -----------------------------------------------------------------------------------


def cookie_attributes(set_cookie: str) -> tuple[str, str, dict[str, str]]:
    pair, *attributes = [part.strip() for part in set_cookie.split(";")]
    name, _, value = pair.partition("=")
    parsed = {}
    for attribute in attributes:
        key, _, val = attribute.partition("=")
        parsed[key.lower()] = val
    return name, value, parsed


def session_set_cookie(response: httpx.Response) -> str:
    [header] = [h for h in response.headers.get_list("set-cookie") if h.startswith(COOKIE + "=")]
    return header


def test_session_cookie_is_httponly_strict_host_wide_and_session_only(instance: Instance) -> None:
    """The cookie set at /start is HttpOnly, SameSite=Strict, Path=/, host-only, not persistent,
    and not Secure over plain http (an onion address)."""
    name, value, attributes = cookie_attributes(session_set_cookie(instance.start_response))
    assert (name, value) == (COOKIE, instance.start_cookie)
    assert "httponly" in attributes
    assert attributes["samesite"].lower() == "strict"
    assert attributes["path"] == "/"
    assert "secure" not in attributes
    assert "domain" not in attributes
    assert "max-age" not in attributes
    assert "expires" not in attributes


def test_form_cookie_is_httponly_strict_and_session_only(instance: Instance) -> None:
    """The pre-session form cookie set by the index page has the same protections."""
    response = instance.browser().get("/")
    [header] = [h for h in response.headers.get_list("set-cookie") if COOKIE not in h]
    _, value, attributes = cookie_attributes(header)
    assert value
    assert value not in response.text  # the page carries an HMAC of it, never the cookie itself
    assert "httponly" in attributes
    assert attributes["samesite"].lower() == "strict"
    assert attributes["path"] == "/"
    assert not {"secure", "domain", "max-age", "expires"} & attributes.keys()


def test_session_cookie_is_secure_over_https(instance: Instance) -> None:
    """Behind HTTPS (a clearnet mirror) the session cookie also carries Secure."""
    browser = instance.browser(base_url="https://testserver")
    response = browser.post("/start", data={"form_token": browser.form_token()})
    assert response.status_code == 200
    _, _, attributes = cookie_attributes(session_set_cookie(response))
    assert "secure" in attributes
    assert "httponly" in attributes
    assert attributes["samesite"].lower() == "strict"


# --- the codename ------------------------------------------------------------------------------


def everything_but_the_body(response: httpx.Response) -> str:
    return "\n".join([str(response.url), *(f"{k}: {v}" for k, v in response.headers.multi_items())])


def codename_forms(codename: str) -> list[str]:
    return [codename, codename.replace(" ", "+"), codename.replace(" ", "%20"), codename.upper()]


def test_codename_appears_only_in_the_start_page_body(
    instance: Instance, caplog: pytest.LogCaptureFixture
) -> None:
    """Through start, confirm, submit, logout and login, the codename is in /start's body and
    nowhere else: no cookie, header, URL, later page or log record carries it."""
    caplog.set_level(logging.DEBUG)
    codename = instance.codename
    assert len(codename.split()) == 7
    assert codename in instance.start_response.text
    responses = [instance.start_response]
    browser = instance.browser(instance.start_cookie)
    responses.append(browser.get("/"))
    confirm_token = browser.csrf_token("/confirm")
    responses.append(
        browser.post("/confirm", data={"csrf_token": confirm_token, "codename": codename})
    )
    responses.append(conversation := browser.get("/conversation"))
    token = CSRF_FIELD.search(conversation.text)
    assert token is not None
    responses.append(browser.post("/submit", **submit_form(token.group(1))))
    responses.append(browser.get("/submitted"))
    responses.append(browser.post("/logout", data={"csrf_token": token.group(1)}))
    form_token = browser.form_token("/login")
    responses.append(browser.post("/login", data={"form_token": form_token, "codename": codename}))
    responses.append(browser.get("/conversation"))
    assert [r.status_code for r in responses] == [200, 200, 303, 200, 303, 200, 200, 303, 200]
    for index, response in enumerate(responses):
        outside = everything_but_the_body(response)
        for form in codename_forms(codename):
            assert form not in outside
            if index > 0:
                assert form not in response.text
    for form in codename_forms(codename):
        assert form not in caplog.text


# --- logout ------------------------------------------------------------------------------------


def test_logout_deletes_the_server_half(instance: Instance) -> None:
    """After logout the old cookie, replayed, is refused with 403; the browser is told to drop
    it."""
    cookie = instance.new_cookie()
    browser = instance.browser(cookie)
    assert browser.get("/conversation").status_code == 200
    response = browser.post("/logout", data={"csrf_token": instance.csrf_token(cookie)})
    assert response.status_code == 200
    name, value, attributes = cookie_attributes(session_set_cookie(response))
    assert name == COOKIE
    assert value in ("", '""')
    assert attributes.get("max-age") == "0"
    replay = instance.browser(cookie)
    assert replay.get("/conversation").status_code == 403
    assert replay.post("/submit", **submit_form("0" * 64)).status_code == 403


def test_logout_response_does_not_reveal_the_server_clock(instance: Instance) -> None:
    """The cookie-deleting Set-Cookie uses Max-Age=0 and at most a fixed past date, never the
    server's current time (a clock-skew fingerprint can tie an onion service to another host)."""
    cookie = instance.new_cookie()
    response = instance.browser(cookie).post(
        "/logout", data={"csrf_token": instance.csrf_token(cookie)}
    )
    assert response.status_code == 200
    _, _, attributes = cookie_attributes(session_set_cookie(response))
    assert attributes["max-age"] == "0"
    assert attributes.get("expires", "Thu, 01 Jan 1970 00:00:00 GMT").endswith("1970 00:00:00 GMT")


@pytest.mark.parametrize("token", [None, "", "0" * 64])
def test_logout_without_the_token_is_refused(instance: Instance, token: str | None) -> None:
    """A forged form cannot log a source out: a missing or wrong token keeps the session."""
    cookie = instance.new_cookie()
    browser = instance.browser(cookie)
    data = {} if token is None else {"csrf_token": token}
    response = browser.post("/logout", data=data)
    assert response.status_code == 400
    assert "set-cookie" not in response.headers
    assert instance.browser(cookie).get("/conversation").status_code == 200


# --- redirects ---------------------------------------------------------------------------------

HOSTILE_HEADERS = {
    "host": "evil.example",
    "x-forwarded-host": "evil.example",
    "x-forwarded-proto": "https",
    "forwarded": "host=evil.example;proto=https",
}


def test_redirects_are_relative_and_ignore_the_host_header(instance: Instance) -> None:
    """Location is a bare same-site path for submit and the confirmation redirects, whatever Host
    and forwarding headers say."""
    cookie = instance.new_cookie()
    submitted = instance.browser(cookie).post(
        "/submit", headers=HOSTILE_HEADERS, **submit_form(instance.csrf_token(cookie))
    )
    to_confirm = instance.browser(instance.new_cookie(confirmed=False)).get(
        "/conversation", headers=HOSTILE_HEADERS
    )
    to_conversation = instance.browser(instance.new_cookie()).get(
        "/confirm", headers=HOSTILE_HEADERS
    )
    for response, target in (
        (submitted, "/submitted"),
        (to_confirm, "/confirm"),
        (to_conversation, "/conversation"),
    ):
        assert response.status_code == 303, response.text
        assert response.headers["location"] == target


# --- login -------------------------------------------------------------------------------------


def test_login_with_the_real_codename_opens_a_new_session(instance: Instance) -> None:
    """The codename, however it is typed (case, spacing), redirects to the relative path
    /conversation (even with a hostile Host header) with a new cookie for the same source."""
    typed = "  " + instance.codename.upper().replace(" ", "   ") + "\n"
    browser = instance.browser()
    token = browser.form_token("/login")
    response = browser.post(
        "/login", headers=HOSTILE_HEADERS, data={"form_token": token, "codename": typed}
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/conversation"
    cookie = browser.cookies[COOKIE]
    assert cookie != instance.start_cookie
    assert instance.services.sessions.resolve(cookie).source_id == instance.source_id
    assert browser.get("/conversation").status_code == 200


def failed_login_page(browser: Browser, token: str, value: dict[str, str] | bytes) -> Any:
    if isinstance(value, bytes):
        return browser.post(
            "/login",
            content=b"form_token=" + token.encode() + b"&" + value,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    return browser.post("/login", data={"form_token": token, **value})


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="unknown"),
        pytest.param({}, id="missing-field"),
        pytest.param({"codename": "not even close !!! 😀 \x00"}, id="garbled"),
        pytest.param({"codename": "abacus " * 1500}, id="10kb"),
        pytest.param(b"codename=%FF%FE%00", id="bad-percent-utf8"),
    ],
)
def test_every_failed_login_gets_the_same_400_page(
    instance: Instance, value: dict[str, str] | bytes | None
) -> None:
    """Unknown, missing, garbled, huge or undecodable codenames all get the same login page with
    status 400 and no session cookie: the answer says nothing about which codenames exist."""
    browser = instance.browser()
    token = browser.form_token("/login")
    if value is None:
        value = {"codename": str(generate())}  # well formed, but nobody's
    response = failed_login_page(browser, token, value)
    assert response.status_code == 400
    assert all(not h.startswith(COOKIE + "=") for h in response.headers.get_list("set-cookie"))
    assert LOGIN_ERROR_TEXT in response.text
    # The page differs from another visitor's only by that visitor's own form token.
    assert FORM_FIELD.sub("", response.text) == FORM_FIELD.sub("", reference_failed_login(instance))


_REFERENCE: dict[int, str] = {}


def reference_failed_login(instance: Instance) -> str:
    """The login page for one wrong codename, computed once (each failure runs a decoy KDF)."""
    if id(instance) not in _REFERENCE:
        browser = instance.browser()
        page = failed_login_page(browser, browser.form_token("/login"), {"codename": "x"})
        _REFERENCE[id(instance)] = page.text
    return _REFERENCE[id(instance)]


def test_expired_session_gets_the_session_expired_page(tmp_path: Path) -> None:
    """A cookie past its idle timeout gets 403 'Session expired' with a link to log in."""
    clock = FakeClock()
    services = new_instance(tmp_path / "i", clock)
    try:
        database = SqlDatabase(services.settings.database_url)
        with database.transaction() as repos:
            source_id = repos.sources.add(
                new_id().encode(), "age1placeholder", None, "test source", None
            ).id
        database.close()
        cookie = services.sessions.open(source_id, generate_identity())
        browser = Browser(create_source_app(services))
        browser.cookies.set(COOKIE, cookie)
        assert browser.get("/submitted").status_code == 200
        clock.advance(services.settings.session_idle_seconds + 1)
        response = browser.get("/submitted")
        assert response.status_code == 403
        assert "Session expired" in response.text
        assert 'href="/login"' in response.text
        assert_security_headers(response)
    finally:
        services.close()


def test_non_ascii_digit_content_length_is_not_a_server_error(instance: Instance) -> None:
    """A Content-Length made of non-ASCII 'digits' is a client error, never a 500."""
    cookie = instance.new_cookie()
    response = instance.browser(cookie).post(
        "/submit",
        content=b"--x--\r\n",
        headers={"content-type": "multipart/form-data; boundary=x", "content-length": b"\xb2"},
    )
    assert 400 <= response.status_code < 500
