"""`sealdrop reader`'s local web interface against a real server: one-time token and cookie, Host
check, CSRF, strict headers, unlock, the conversation (escaped), export through mat2, reply (the
source reads it), an expired session, the command itself, and a plaintext scan of the data folder.

The app is driven in-process (httpx.ASGITransport) with the reader data folder that
`reader init` (run in this process, support_reader_cli) set up; the last test runs `sealdrop
reader` as a process.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import stat
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import piexif
import pytest
from support_api import Api, cli_account, new_age_recipient, new_source
from support_http import Source
from support_light_identity import light_identity_kdf
from support_reader_cli import (
    GPS_BYTES,
    IDENTITY_PASSPHRASE,
    ReaderSetup,
    files_under,
    jpeg_with_gps,
    pdf_with_author,
    reader_set_up,
)

from sealdrop.reader.client import ApiClient
from sealdrop.reader.keystore import create_identity
from sealdrop.reader.profile import Profile
from sealdrop.reader.ui import HEADERS, create_app
from sealdrop.testing import sealdrop_command
from support_chromium import CHROMIUM, CHROMIUM_ARGS
from support_pages import AsgiBrowser, hidden_field

pytestmark = pytest.mark.slow  # the module sets up a server and a reader through the CLI


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReaderSetup]:
    """A server, a journalist account, and `reader init` done against its journalist API."""
    yield from reader_set_up(tmp_path_factory.mktemp("reader-ui"))


PORT = 48213
BASE = f"http://127.0.0.1:{PORT}"


def check_headers(response: httpx.Response) -> None:
    for name, value in HEADERS.items():
        assert response.headers.get(name) == value, (response.url, name)


class Ui:
    """A browser on the UI: every answer's headers are checked."""

    def __init__(self, client: AsgiBrowser) -> None:
        self.client = client

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        response = self.client.get(path, **kwargs)
        check_headers(response)
        return response

    def post(self, path: str, data: dict[str, str], csrf: bool = True) -> httpx.Response:
        if csrf:
            data = {**data, "csrf": self.csrf()}
        response = self.client.post(path, data=data)
        check_headers(response)
        return response

    def csrf(self) -> str:
        return hidden_field(self.get("/").text, "csrf")


@pytest.fixture
def ui(reader: ReaderSetup) -> tuple[Ui, str]:
    token = uuid.uuid4().hex
    app = create_app(Profile(reader.data_dir), PORT, token)
    return Ui(AsgiBrowser(app, BASE)), token


def login(ui: Ui, token: str) -> None:
    entered = ui.get(f"/?token={token}")
    assert entered.status_code == 303
    assert entered.headers["location"] == "/"


def test_token_cookie_host_and_headers(ui: tuple[Ui, str]) -> None:
    """Without the token: 403; a wrong Host: 400; the token sets an HttpOnly SameSite=Strict
    cookie once, and is then spent."""
    browser, token = ui
    assert browser.get("/").status_code == 403
    assert browser.get("/?token=wrong").status_code == 403
    assert browser.get("/style.css").status_code == 403
    rebound = browser.get(f"/?token={token}", headers={"host": f"evil.example:{PORT}"})
    assert rebound.status_code == 400
    assert browser.get(f"/?token={token}", headers={"host": "127.0.0.1:1"}).status_code == 400

    entered = browser.get(f"/?token={token}")
    assert entered.status_code == 303
    cookie = entered.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    home = browser.get("/")
    assert home.status_code == 200
    assert "Sync now" in home.text
    # One script, the reader's own file (CSP script-src 'self'); nothing inline.
    assert re.findall(r"<script[^>]*>", home.text.lower()) == ['<script src="/app.js" defer>']
    assert re.search(r'(src|href)="https?:', home.text) is None  # no remote resources
    assert browser.get("/", headers={"host": f"localhost:{PORT}"}).status_code == 200

    other = AsgiBrowser(browser.client.app, BASE)
    assert other.get(f"/?token={token}").status_code == 403  # single use
    assert other.get("/").status_code == 403

    # A POST without the CSRF token is refused.
    assert browser.post("/sync", {}, csrf=False).status_code == 403
    assert browser.post("/sync", {"csrf": "0" * 64}, csrf=False).status_code == 403


def test_read_export_reply_and_nothing_decrypted_on_disk(
    reader: ReaderSetup, ui: tuple[Ui, str], tmp_path: Path
) -> None:
    """Unlock, sync, read the escaped message and the file names, export stripped, reply (the
    source reads it), star and mark seen; the data folder holds no plaintext afterwards."""
    browser, token = ui
    login(browser, token)
    canary = f"ui-canary-{uuid.uuid4().hex}"
    author = f"UiAuthor{uuid.uuid4().hex[:12]}"
    message = f"Look: <b>x</b> & more. {canary}"
    files = [
        ("photo.jpg", jpeg_with_gps(), "image/jpeg"),
        ("<i>report</i>.pdf", pdf_with_author(author), "application/pdf"),
    ]
    source, codename = new_source(reader.server, message, files=files)
    source.http.close()

    locked = browser.get(f"/sources/{'0' * 32}")
    assert locked.status_code == 303
    assert locked.headers["location"] == "/unlock"
    assert browser.get("/unlock").status_code == 200
    wrong = browser.post("/unlock", {"passphrase": "not it"})
    assert wrong.status_code == 400
    assert "does not open the identity file" in wrong.text
    assert browser.post("/unlock", {"passphrase": IDENTITY_PASSPHRASE}).status_code == 303

    synced = browser.post("/sync", {})
    assert synced.status_code == 200, synced.text
    assert "CORRUPTED" not in synced.text
    mine = reader.newest_source()
    assert html.escape(mine.pseudonym) in synced.text
    assert f'href="/sources/{mine.id}"' in synced.text

    page = browser.get(f"/sources/{mine.id}")
    assert page.status_code == 200, page.text
    assert canary in page.text
    assert "Look: &lt;b&gt;x&lt;/b&gt; &amp; more." in page.text
    assert "<b>x</b>" not in page.text
    assert "photo.jpg" in page.text
    assert "&lt;i&gt;report&lt;/i&gt;.pdf" in page.text
    assert "<i>report" not in page.text
    ids = {
        html.unescape(name): item_id
        for item_id, name in re.findall(
            r'id="item-([0-9a-f]{32})"(?:(?!id="item-).)*?class="filename">([^<]*)<',
            page.text,
            re.S,
        )
    }
    assert set(ids) == {"photo.jpg", "<i>report</i>.pdf"}, page.text

    out_dir = tmp_path / "exported"
    out_dir.mkdir()
    photo = browser.post(f"/items/{ids['photo.jpg']}/export", {"dest": str(out_dir), "strip": "1"})
    assert photo.status_code == 200, photo.text
    assert "Metadata removed" in photo.text
    assert "GPS" in photo.text
    document = browser.post(
        f"/items/{ids['<i>report</i>.pdf']}/export", {"dest": str(out_dir), "strip": "1"}
    )
    assert document.status_code == 200, document.text
    assert author in document.text
    exported = files_under(out_dir)
    assert len(exported) == 2, exported
    jpeg = (out_dir / "photo.jpg").read_bytes()
    assert GPS_BYTES not in jpeg
    assert not piexif.load(jpeg)["GPS"]
    pdf = next(p for p in exported if p.suffix == ".pdf")
    assert author.encode() not in pdf.read_bytes()

    reply_text = f"Thanks, <received> it. ui-reply-{uuid.uuid4().hex[:8]}"
    sent = browser.post(f"/sources/{mine.id}/reply", {"text": reply_text})
    assert sent.status_code == 303, sent.text
    page = browser.get(f"/sources/{mine.id}")
    assert html.escape(reply_text) in page.text  # synced back, decrypted for this device too

    starred = browser.post(f"/sources/{mine.id}/star", {"starred": "1"})
    assert starred.status_code == 303
    assert reader.newest_source().starred
    assert mine.unread > 0
    assert browser.post(f"/sources/{mine.id}/seen", {}).status_code == 303
    assert reader.newest_source().unread == 0

    web = Source(reader.server.url)
    assert web.login(codename).status_code == 303
    conversation = web.http.get("/conversation")
    assert html.escape(reply_text) in conversation.text
    web.http.close()

    for path in files_under(reader.data_dir):
        data = path.read_bytes()
        for secret in (canary.encode(), author.encode(), GPS_BYTES, reply_text.encode()):
            assert secret not in data, f"plaintext in {path}"


def test_delete_asks_for_confirmation(reader: ReaderSetup, ui: tuple[Ui, str]) -> None:
    """Deleting an item or a source shows a confirmation page first; confirmed, it is gone on the
    server and here, its cached ciphertext too."""
    browser, token = ui
    login(browser, token)
    assert browser.post("/unlock", {"passphrase": IDENTITY_PASSPHRASE}).status_code == 303
    source, _ = new_source(reader.server, "first message to delete")
    source.submit("second message, kept")
    source.http.close()
    assert browser.post("/sync", {}).status_code == 200
    mine = reader.newest_source()
    page = browser.get(f"/sources/{mine.id}").text
    first = re.search(r'id="item-([0-9a-f]{32})"', page)
    assert first
    confirm = browser.get(f"/items/{first.group(1)}/delete")
    assert confirm.status_code == 200
    assert "Yes, delete" in confirm.text
    cache = Profile(reader.data_dir).cache_dir
    assert (cache / first.group(1)).is_file()
    assert browser.post(f"/items/{first.group(1)}/delete", {}).status_code == 303
    page = browser.get(f"/sources/{mine.id}").text
    assert "first message to delete" not in page
    assert "second message, kept" in page
    assert not (cache / first.group(1)).exists()
    kept = re.search(r'id="item-([0-9a-f]{32})"', page)
    assert kept
    assert (cache / kept.group(1)).is_file()

    assert "Yes, delete" in browser.get(f"/sources/{mine.id}/delete").text
    assert browser.post(f"/sources/{mine.id}/delete", {}).status_code == 303
    assert html.escape(mine.pseudonym) not in browser.get("/").text
    assert not (cache / kept.group(1)).exists()
    assert browser.post("/sync", {}).status_code == 200
    assert browser.get(f"/sources/{mine.id}").status_code == 404


def test_expired_session_says_run_reader_login(reader: ReaderSetup, ui: tuple[Ui, str]) -> None:
    """Without a valid saved token a sync answers 401 with a page saying to run `sealdrop reader
    login`."""
    browser, token = ui
    login(browser, token)
    saved = reader.data_dir / "token.json"
    content = saved.read_bytes()
    saved.unlink()
    try:
        refused = browser.post("/sync", {})
        assert refused.status_code == 401
        assert "sealdrop reader login" in refused.text
    finally:
        saved.write_bytes(content)
        os.chmod(saved, 0o600)


def test_plain_reader_command_serves_the_ui(reader: ReaderSetup) -> None:
    """`sealdrop reader` prints a one-time link on 127.0.0.1; the link works once."""
    process = subprocess.Popen(
        sealdrop_command("reader", "--data-dir", reader.data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "COLUMNS": "250", "NO_COLOR": "1"},
    )
    try:
        assert process.stdout is not None
        assert process.stderr is not None
        line = process.stdout.readline()
        found = re.search(r"(http://127\.0\.0\.1:(\d+))/\?token=([\w-]+)", line)
        assert found, line + (process.stderr.read() if process.poll() is not None else "")
        base, token = found.group(1), found.group(3)
        with httpx.Client(base_url=base, timeout=30) as browser:
            entered = None
            for _ in range(100):  # the socket is bound before the link is printed
                try:
                    entered = browser.get(f"/?token={token}")
                    break
                except httpx.ConnectError:
                    time.sleep(0.1)
            assert entered is not None
            assert entered.status_code == 303
            check_headers(entered)
            home = browser.get("/")
            assert home.status_code == 200
            check_headers(home)
        with httpx.Client(base_url=base, timeout=30) as stranger:
            assert stranger.get(f"/?token={token}").status_code == 403
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def admin_ui(reader: ReaderSetup) -> Iterator[tuple[Ui, Api]]:
    """The UI logged in (through the client factory) as a fresh admin account, and the same
    admin on the API directly, to check what the server holds."""
    account = cli_account(reader.instance, f"uiadmin{uuid.uuid4().hex[:8]}", admin=True)
    api = Api(reader.server)
    bearer = api.login(account)

    def factory() -> ApiClient:
        client = ApiClient(reader.server.api_url)
        client.use_token(bearer)
        return client

    token = uuid.uuid4().hex
    app = create_app(Profile(reader.data_dir), PORT, token, client_factory=factory)
    browser = Ui(AsgiBrowser(app, BASE))
    login(browser, token)
    yield browser, api.as_(bearer)
    api.http.close()


def test_admin_users(admin_ui: tuple[Ui, Api]) -> None:
    """The admin page lists users; a new user's passphrase and otpauth URI are shown once;
    disabling reaches the server."""
    browser, api = admin_ui
    home = browser.get("/")
    assert 'href="/admin"' in home.text
    page = browser.get("/admin")
    assert page.status_code == 200, page.text
    assert "reporter" in page.text

    name = f"uinew{uuid.uuid4().hex[:8]}"
    created = browser.post("/admin/users", {"username": name, "role": "journalist"})
    assert created.status_code == 200, created.text
    passphrase = re.search(r'class="text passphrase">([^<]+)<', created.text)
    assert passphrase, created.text
    assert len(passphrase.group(1).split()) == 7, created.text
    assert "otpauth://totp/" in created.text
    again = browser.get("/admin")
    assert passphrase.group(1) not in again.text
    assert "otpauth://" not in again.text

    users = {u["username"]: u for u in api.get("/users").json()["users"]}
    new_id = users[name]["id"]
    assert not users[name]["disabled"]
    assert browser.post(f"/admin/users/{new_id}/disable", {}).status_code == 303
    users = {u["username"]: u for u in api.get("/users").json()["users"]}
    assert users[name]["disabled"]
    assert browser.post(f"/admin/users/{new_id}/enable", {}).status_code == 303
    users = {u["username"]: u for u in api.get("/users").json()["users"]}
    assert not users[name]["disabled"]

    reset = browser.post(f"/admin/users/{new_id}/reset-2fa", {})
    assert reset.status_code == 200, reset.text
    assert "otpauth://totp/" in reset.text

    bad = browser.post("/admin/users", {"username": "<b>bad name</b>", "role": "journalist"})
    assert bad.status_code == 400
    assert "<b>bad" not in bad.text
    assert 'class="error"' in bad.text

    # Without the CSRF token: refused.
    assert browser.post("/admin/users", {"username": "x"}, csrf=False).status_code == 403
    assert browser.post(f"/admin/users/{new_id}/disable", {}, csrf=False).status_code == 403


def test_admin_recipients_and_settings(admin_ui: tuple[Ui, Api]) -> None:
    """An admin adds (name shown escaped) and removes an organisation recipient, a malformed key
    is an error on the page, and settings changed in the form reach the server (CSRF checked)."""
    browser, api = admin_ui
    key = new_age_recipient()
    added = browser.post("/admin/recipients", {"public_key": key, "name": "<Desk> safe"})
    assert added.status_code == 303, added.text
    listed = [r for r in api.get("/recipients").json()["recipients"] if r["public_key"] == key]
    assert len(listed) == 1
    page = browser.get("/admin").text
    assert key in page
    assert "&lt;Desk&gt; safe" in page
    removed = browser.post(f"/admin/recipients/{listed[0]['id']}/remove", {})
    assert removed.status_code == 303
    assert key not in [r["public_key"] for r in api.get("/recipients").json()["recipients"]]
    wrong = browser.post("/admin/recipients", {"public_key": "not-an-age-key", "name": ""})
    assert wrong.status_code == 400
    assert 'class="error"' in wrong.text

    before = api.get("/settings").json()
    form = {
        "max_upload_bytes": str(before["max_upload_bytes"] + 1024),
        "max_message_chars": str(before["max_message_chars"]),
        **({"files_enabled": "1"} if before["files_enabled"] else {}),
        "accepting_submissions": "1",
    }
    changed = browser.post("/admin/settings", form)
    assert changed.status_code == 303, changed.text
    after = api.get("/settings").json()
    assert after["max_upload_bytes"] == before["max_upload_bytes"] + 1024
    assert after["accepting_submissions"] is True
    assert after["files_enabled"] == before["files_enabled"]
    assert after["max_message_chars"] == before["max_message_chars"]
    assert str(after["max_upload_bytes"]) in browser.get("/admin").text
    assert browser.post("/admin/settings", form, csrf=False).status_code == 403


def test_admin_pages_refused_to_a_journalist(ui: tuple[Ui, str]) -> None:
    """A journalist sees no Admin link, and the admin pages and actions answer 403."""
    browser, token = ui
    login(browser, token)
    assert 'href="/admin"' not in browser.get("/").text
    assert browser.get("/admin").status_code == 403
    assert browser.post("/admin/users", {"username": "sneaky"}).status_code == 403
    assert browser.post("/admin/settings", {"max_upload_bytes": "2048"}).status_code == 403


def error_page(response: httpx.Response, status: int, back: str | None) -> str:
    """Check that ``response`` is an error page of the interface (its layout, the message, a link
    back or none) and return its text."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html"), response.headers
    check_headers(response)
    text = response.text
    assert "<header>" in text, text  # the interface's layout, not a bare page
    assert 'class="error"' in text, text
    if back is None:
        assert 'class="back"' not in text, text
    else:
        assert f'href="{back}" class="back"' in text, text
    return text


def test_every_error_is_a_page_of_the_interface_with_a_way_back(
    reader: ReaderSetup, ui: tuple[Ui, str], tmp_path: Path
) -> None:
    """A missing source or item, an unknown page, a missing CSRF token, an export into a folder
    that does not exist, no session and a wrong Host all answer an HTML page of the interface
    with the reason (and, inside a session, a link back)."""
    browser, token = ui
    error_page(browser.get("/"), 403, back=None)
    error_page(browser.get("/", headers={"host": "evil.example"}), 400, back=None)
    login(browser, token)
    assert browser.post("/unlock", {"passphrase": IDENTITY_PASSPHRASE}).status_code == 303
    source, _ = new_source(reader.server, "errors", files=[("e.txt", b"e\n", "text/plain")])
    source.http.close()
    assert browser.post("/sync", {}).status_code == 200
    mine = reader.newest_source()
    page = browser.get(f"/sources/{mine.id}").text
    found = re.search(r'id="item-([0-9a-f]{32})"(?:(?!id="item-).)*?class="filename"', page, re.S)
    assert found, page

    assert "no such source" in error_page(browser.get(f"/sources/{'0' * 32}"), 404, back="/")
    assert "no such item" in error_page(browser.get(f"/items/{'0' * 32}/delete"), 404, back="/")
    error_page(browser.get("/nowhere"), 404, back="/")
    error_page(browser.post(f"/sources/{mine.id}/seen", {}, csrf=False), 403, f"/sources/{mine.id}")
    missing = tmp_path / "not-there"
    refused = browser.post(f"/items/{found.group(1)}/export", {"dest": str(missing)})
    assert "does not exist" in error_page(refused, 400, back=f"/sources/{mine.id}")
    assert not missing.exists()


def test_export_needs_no_folder_and_names_are_shown_neutralised(
    reader: ReaderSetup, ui: tuple[Ui, str]
) -> None:
    """A file named with a right-to-left override is shown as evil<U+202E>txt.exe on the
    conversation and export pages; exporting without typing a folder writes it, under a safe
    name, into the data folder's exports/ (made 0700); a CRLF message shows without CRs."""
    browser, token = ui
    login(browser, token)
    assert browser.post("/unlock", {"passphrase": IDENTITY_PASSPHRASE}).status_code == 303
    files = [("evil\u202etxt.exe", b"not really\n", "text/plain")]
    source, _ = new_source(reader.server, "one\r\ntwo\rthree", files=files)
    source.http.close()
    assert browser.post("/sync", {}).status_code == 200
    mine = reader.newest_source()
    page = browser.get(f"/sources/{mine.id}").text
    assert "\u202e" not in page
    assert "\r" not in page
    assert "one\ntwo\nthree" in page
    found = re.search(
        r'id="item-([0-9a-f]{32})"(?:(?!id="item-).)*?class="filename">evil&lt;U\+202E&gt;txt\.exe<',
        page,
        re.S,
    )
    assert found, page
    exports = reader.data_dir / "exports"
    assert f'value="{exports}"' in page  # the folder is shown, filled in

    done = browser.post(f"/items/{found.group(1)}/export", {"strip": "1"})
    assert done.status_code == 200, done.text
    assert "evil&lt;U+202E&gt;txt.exe" in done.text
    assert "\u202e" not in done.text
    assert stat.S_IMODE(exports.stat().st_mode) == 0o700
    exported = files_under(exports)
    assert [p.name for p in exported] == ["eviltxt.exe"]
    assert exported[0].read_bytes() == b"not really\n"
    assert f"{exports}/eviltxt.exe" in done.text


def test_a_later_device_is_told_why_items_do_not_open(reader: ReaderSetup, tmp_path: Path) -> None:
    """On a device whose key was registered after the items arrived, the conversation page says
    for each item that it is not encrypted to this device's key, and which keys can open it."""
    source, _ = new_source(reader.server, "before", files=[("b.txt", b"b\n", "text/plain")])
    source.http.close()
    assert reader.run("sync").returncode == 0
    mine = reader.newest_source()
    later = tmp_path / "later-device"
    shutil.copytree(reader.data_dir, later)
    (later / "identity.age").unlink()
    with light_identity_kdf():  # a key these never saw (support_light_identity)
        create_identity(later / "identity.age", IDENTITY_PASSPHRASE)
    token = uuid.uuid4().hex
    app = create_app(Profile(later), PORT, token)
    browser = Ui(AsgiBrowser(app, BASE))
    login(browser, token)
    assert browser.post("/unlock", {"passphrase": IDENTITY_PASSPHRASE}).status_code == 303
    page = browser.get(f"/sources/{mine.id}").text
    assert "[cannot decrypt: not encrypted to this device&#39;s key]" in page, page
    assert "[file: its name and size are not encrypted to this device&#39;s key]" in page, page
    assert "an organisation key, or another device" in page, page


SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
ELSEWHERE = "http://elsewhere.invalid/"  # another site, answered by Playwright


def test_the_link_works_again_in_the_same_browser_and_never_in_another(
    reader: ReaderSetup,
) -> None:
    """In Chromium (JavaScript off): once the one-time link is used, the interface opens again in
    new tabs of that browser, typed or followed from another site (where a SameSite=Strict cookie
    is withheld); another browser gets the error page, with the link or without. Screenshots of an
    error page and of an export are kept."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    source, _ = new_source(
        reader.server, "shot", files=[("photo.jpg", jpeg_with_gps(), "image/jpeg")]
    )
    source.http.close()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        sealdrop_command("reader", "--data-dir", reader.data_dir),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        env={**os.environ, "COLUMNS": "250", "NO_COLOR": "1"},
    )  # fmt: skip
    try:
        assert process.stdout is not None
        found = re.search(r"(http://127\.0\.0\.1:\d+)/\?token=[\w-]+", process.stdout.readline())
        assert found
        link, base = found.group(0), found.group(1)
        with playwright_api.sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            session = chromium.new_context(
                java_script_enabled=False, viewport={"width": 1000, "height": 700}
            )
            first = session.new_page()
            for _ in range(100):  # the socket is bound before the link is printed
                try:
                    first.goto(link)
                    break
                except playwright_api.Error:
                    time.sleep(0.1)
            assert first.url == f"{base}/"
            assert first.locator("h1").inner_text() == "Sources"

            for address in (f"{base}/", link):
                tab = session.new_page()
                tab.goto(address)
                assert tab.locator("h1").inner_text() == "Sources", address
                tab.close()
            via = session.new_page()
            via.route(ELSEWHERE, lambda route: route.fulfill(
                status=200, content_type="text/html", body=f'<a id="go" href="{link}">reader</a>'
            ))  # fmt: skip
            via.goto(ELSEWHERE)
            via.click("#go")
            via.wait_for_selector("h1")  # after the bounce
            assert via.locator("h1").inner_text() == "Sources"

            # The screenshots: a missing item's error page, and an export.
            first.goto(f"{base}/items/{'0' * 32}/delete")
            assert first.locator("p.error").inner_text() == "no such item"
            first.screenshot(path=SCREENSHOTS / "reader-error-page.png", full_page=True)
            first.click("a.back")
            assert first.url == f"{base}/"
            first.goto(f"{base}/unlock")
            first.fill("input[name=passphrase]", IDENTITY_PASSPHRASE)
            first.click("form[action='/unlock'] button[type=submit]")
            first.click("text=Sync now")
            first.click(f'a[href="/sources/{reader.newest_source().id}"]')
            first.click("details.export summary")  # the export options are folded
            first.click("form[action$='/export'] button[type=submit]")
            assert first.locator("h1").inner_text() == "Exported"
            first.screenshot(path=SCREENSHOTS / "reader-export-result.png", full_page=True)

            stranger = chromium.new_context(java_script_enabled=False).new_page()
            for address in (link, f"{base}/"):
                refused = stranger.goto(address)
                assert refused is not None
                assert refused.status == 403
                assert "no session of this reader" in stranger.locator("p.error").inner_text()
            stranger.route(ELSEWHERE, lambda route: route.fulfill(
                status=200, content_type="text/html", body=f'<a id="go" href="{link}">reader</a>'
            ))  # fmt: skip
            stranger.goto(ELSEWHERE)
            stranger.click("#go")
            stranger.wait_for_selector("p.error")
            assert "no session of this reader" in stranger.locator("p.error").inner_text()
            chromium.close()
    finally:
        process.terminate()
        process.wait(timeout=30)
