"""The reader's local web interface in Chromium, as `sealdrop reader ui` serves it: screenshots at
390 px and 1280 px in English and Persian (JavaScript off), axe-core against the inbox,
conversation, preview and login pages (JavaScript on for that run only), keyboard navigation,
and the background sync marking a new arrival without anyone pressing "Sync now".

The screenshots are kept under $SEALDROP_ARTIFACTS/reader-ui (default test-artifacts/reader-ui,
gitignored); the test prints where.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import uvicorn
from support_api import new_source
from support_reader_cli import ReaderSetup, jpeg_with_gps, reader_set_up
from support_reader_ui import enter, running_ui, unlock
from support_workspace import Network

from sealdrop.reader.profile import Profile
from sealdrop.reader.ui import create_app
from support_chromium import CHROMIUM, CHROMIUM_ARGS

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReaderSetup]:
    """A server, a journalist account, and `reader init` done against its journalist API."""
    yield from reader_set_up(tmp_path_factory.mktemp("reader-ui-browser"))


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """One Chromium for the module (each test opens a context of its own, closed at its end):
    a launch with its Playwright driver costs ~2 CPU-s."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


ARTIFACTS = (
    Path(
        os.environ.get("SEALDROP_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts")
    )
    / "reader-ui"
)
WIDTHS = {"phone": 390, "desktop": 1280}


def seed(reader: ReaderSetup) -> None:
    """A conversation worth looking at: a message, a photo, a text file and a reply."""
    source, _ = new_source(
        reader.server,
        "Hello, I work at the ministry.\nThe documents are attached; the photo shows the site.",
        files=[
            ("site-photo.jpg", jpeg_with_gps(), "image/jpeg"),
            ("notes.txt", b"Dates and names, one per line.\n", "text/plain"),
        ],
    )
    source.http.close()
    reader.run("sync")
    mine = reader.newest_source()
    reader.run("reply", mine.id, "--message", "Thank you. We read everything; can you say more?")
    reader.run("sync")


def triage(reader: ReaderSetup, source_id: str) -> None:
    """The source assigned to this reader's journalist, with two labels (one long)."""
    reader.run("assign", source_id, reader.journalist.username)
    reader.run("label", source_id, "--add", "follow up", "--add", "legal review needed")


@pytest.mark.parametrize("lang", ["en", "fa"])
def test_screenshots_at_phone_and_desktop_widths(
    reader: ReaderSetup, chromium: Browser, lang: str
) -> None:
    """With JavaScript off, the inbox and a conversation (with their assignee and labels), the
    conversation with a label refused in place, an image preview and the login form render at
    390 px and 1280 px without horizontal scrolling; the screenshots are kept to be looked at.
    In Persian the pages are right to left and translated."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    seed(reader)
    mine = reader.newest_source()
    triage(reader, mine.id)
    folder = ARTIFACTS / lang
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nreader UI screenshots: {folder}")
    with running_ui(reader.data_dir, lang) as (link, base):
        context = chromium.new_context(java_script_enabled=False)
        page = context.new_page()
        enter(page, link, playwright_api.Error)
        unlock(page, base)
        page.click("form[action='/sync'] button")
        photo = page.goto(f"{base}/sources/{mine.id}")
        assert photo is not None
        assert photo.status == 200
        item = page.locator("li.item", has_text="site-photo.jpg").get_attribute("id")
        assert item is not None
        views = {
            "inbox": f"{base}/",
            "conversation": f"{base}/sources/{mine.id}",
            "conversation-label-refused": f"{base}/sources/{mine.id}",
            "preview": f"{base}/items/{item.removeprefix('item-')}/preview",
            "login": f"{base}/login",
        }
        for name in views:  # no stale screenshot of an earlier run passes for this run's
            for width_name in WIDTHS:
                (folder / f"{name}-{width_name}.png").unlink(missing_ok=True)
        for width_name, width in WIDTHS.items():
            page.set_viewport_size({"width": width, "height": 900})
            for name, address in views.items():
                page.goto(address)
                if name == "conversation-label-refused":  # the server's 422, in the page
                    page.fill("#label-add", "a label far longer than the server takes")
                    page.click("form.label-add button[type=submit]")
                    page.locator("#labels-problem").wait_for(timeout=30_000)
                assert page.locator("html").get_attribute("dir") == (
                    "rtl" if lang == "fa" else "ltr"
                )
                scroll = page.evaluate("document.documentElement.scrollWidth")
                assert scroll <= width, (name, width_name, scroll)
                page.screenshot(path=folder / f"{name}-{width_name}.png", full_page=True)
        if lang == "fa":
            page.goto(f"{base}/")
            assert page.locator("h1").inner_text() == "منبع‌ها"
            assert "واگذارشده به من" in page.locator("form.filters").inner_text()
        page.goto(f"{base}/")
        row = page.locator(f"#source-{mine.id} .triage")
        assert reader.journalist.username in row.inner_text()
        assert row.locator(".chip").count() == 2
        context.close()
    for name in views:  # the folder is kept between runs: check this run's files by name
        for width_name in WIDTHS:
            assert (folder / f"{name}-{width_name}.png").stat().st_size > 0


SERIOUS = {"serious", "critical"}


def test_accessibility_keyboard_and_background_sync(reader: ReaderSetup, chromium: Browser) -> None:
    """With JavaScript on (this run only): axe-core finds no serious or critical violation on
    the inbox, conversation, preview and login pages; j/k move between sources and "/" goes to
    the search; a submission that arrives while the page is open is synced by the background
    task, announced in the status bar and marked new in the inbox."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    axe_module = pytest.importorskip("axe_playwright_python.sync_playwright")
    seed(reader)
    mine = reader.newest_source()
    triage(reader, mine.id)
    with running_ui(reader.data_dir, "en") as (link, base):
        context = chromium.new_context(java_script_enabled=True)
        page = context.new_page()
        enter(page, link, playwright_api.Error)
        unlock(page, base)
        page.goto(f"{base}/sources/{mine.id}")
        item = page.locator("li.item", has_text="site-photo.jpg").get_attribute("id")
        assert item is not None
        axe = axe_module.Axe()
        for address in (
            "/",
            f"/sources/{mine.id}",
            f"/items/{item.removeprefix('item-')}/preview",
            "/login",
            "/unlock",
        ):
            page.goto(base + address)
            response = axe.run(page).response
            assert response["testEngine"]["name"] == "axe-core"  # it did run, in the page
            found = response["violations"]
            bad = [(v["id"], v["impact"], len(v["nodes"])) for v in found if v["impact"] in SERIOUS]
            assert bad == [], (address, bad)
        # The triage filters ticked, and a label refused in place (the error tied to its field).
        page.goto(f"{base}/?mine=1&spam=1")
        found = axe.run(page).response["violations"]
        assert [v["id"] for v in found if v["impact"] in SERIOUS] == [], "filtered inbox"
        page.goto(f"{base}/sources/{mine.id}")
        page.fill("#label-add", "x" * 33)
        page.click("form.label-add button[type=submit]")
        page.locator("#labels-problem").wait_for(timeout=30_000)
        found = axe.run(page).response["violations"]
        assert [v["id"] for v in found if v["impact"] in SERIOUS] == [], "label refused"

        page.goto(f"{base}/")
        # At least two entries, or j cannot move (the failure would then be about the inbox).
        assert page.locator("[data-nav]").count() >= 2
        page.keyboard.press("j")
        first = page.evaluate("document.activeElement.getAttribute('href')")
        assert first is not None
        assert first.startswith("/sources/")
        page.keyboard.press("j")
        # The focus moves on the key's event, which a loaded machine may deliver late: wait for it
        # (a j that never moves fails here after the timeout).
        page.wait_for_function(
            "first => document.activeElement.getAttribute('href') !== first",
            arg=first,
            timeout=10_000,
        )
        second = page.evaluate("document.activeElement.getAttribute('href')")
        assert second != first
        page.keyboard.press("k")
        assert page.evaluate("document.activeElement.getAttribute('href')") == first
        page.keyboard.press("/")
        assert page.evaluate("document.activeElement.id") == "q"

        before = reader.newest_source().id
        arriving, _ = new_source(reader.server, "arrives while the page is open")
        arriving.http.close()
        page.locator("#fresh").wait_for(state="visible", timeout=30_000)  # the script's poll
        newest = reader.newest_source()
        assert newest.id != before
        page.goto(f"{base}/")
        row = page.locator(f"#source-{newest.id}")
        assert row.locator(".badge.new").count() == 1
        assert "Online" in page.locator("#sync-state").inner_text()
        context.close()


@contextmanager
def served(reader: ReaderSetup, network: Network, lang: str) -> Iterator[tuple[str, str]]:
    """The interface in this process (uvicorn in a thread), its client switched by ``network``:
    (one-time link, base)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    token = uuid.uuid4().hex
    app = create_app(Profile(reader.data_dir), port, token, network, lang=lang)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/?token={token}", f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        for client in network.clients:
            client.close()


@pytest.mark.parametrize("lang", ["en", "fa"])
def test_offline_and_queued_reply_screenshots(
    reader: ReaderSetup, chromium: Browser, lang: str
) -> None:
    """With the server unreachable (JavaScript off): the status bar says offline, a reply sent is
    shown queued in the time line, and the conversation still reads; screenshots at both widths
    are kept."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    seed(reader)
    mine = reader.newest_source()
    folder = ARTIFACTS / lang
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nreader UI screenshots: {folder}")
    network = Network(reader)
    with served(reader, network, lang) as (link, base):
        context = chromium.new_context(java_script_enabled=False)
        page = context.new_page()
        enter(page, link, playwright_api.Error)
        unlock(page, base)
        network.up = False
        page.goto(f"{base}/sources/{mine.id}")
        page.fill("#reply-text", "We are here. Can you send the second page too?")
        page.click("form[action$='/reply'] button[type=submit]")
        # The answer's page may still be loading when the click returns: wait for it.
        page.locator(".reply-state.state-queued").wait_for(timeout=30_000)
        assert page.locator("#sync-state.offline").count() == 1
        for width_name, width in WIDTHS.items():
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(f"{base}/sources/{mine.id}#reply")
            page.screenshot(path=folder / f"conversation-offline-{width_name}.png", full_page=True)
        page.goto(f"{base}/items/{'0' * 32}/delete")
        page.screenshot(path=folder / "error-page.png", full_page=True)
        network.up = True
        page.goto(f"{base}/")
        page.click("form[action='/sync'] button")
        page.goto(f"{base}/sources/{mine.id}")
        assert page.locator(".reply-state").count() == 0  # sent
        context.close()
