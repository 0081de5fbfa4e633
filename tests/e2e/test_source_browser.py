"""The source interface in a real browser: headless Debian Chromium with JavaScript off, driven
by Playwright, against a real server. The whole source flow in English and in Persian (right to
left), every page checked and screenshotted at phone and desktop widths, and the stored blobs
opened by the stock `age` with the journalist's key."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from support_browser import (
    ENGLISH,
    PERSIAN,
    Language,
    PageChecker,
    choose_language,
    direction,
    submit,
    tab_order,
)
from support_http import JournalistKey, add_reply, stored

from sealdrop.config import load_settings
from sealdrop.storage.database import SqlDatabase
from sealdrop.testing import ServerProcess

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, FilePayload, Page


class M:
    """The interface's texts (msgids) that the tests read or click, in one place."""

    SKIP = "Skip to content"
    LANDING_TITLE = "Send information securely"
    START = "Get a codename and start"
    CODENAME_TITLE = "Your codename"
    SAVED_IT = "I have written down my codename"
    CONFIRM_TITLE = "Check your codename"
    CODENAME_FIELD = "Codename (seven words)"
    CONTINUE = "Continue"
    CONFIRM_ERROR = "That is not the codename shown. Check the seven words."
    NO_REPLIES = "No replies yet. Come back later: it can take days for someone to reply."
    CONVERSATION_TITLE = "Your conversation"
    MESSAGE_FIELD = "Message"
    FILES_FIELD = "Documents (optional)"
    SEND = "Send securely"
    RECEIVED_TITLE = "Received"
    BACK_TO_CONVERSATION = "Back to your conversation"
    WHAT_YOU_SENT = "What you sent"
    LOG_OUT = "Log out"
    LOGGED_OUT_TITLE = "You are logged out"
    HAVE_CODENAME = "I already have a codename"
    LOGIN_TITLE = "Log in with your codename"
    LOG_IN = "Log in"
    LOGIN_ERROR = "That codename was not recognised. Check the seven words."
    DELETE_REPLY = "Delete this reply"
    NOT_LOGGED_IN_TITLE = "Not logged in"
    NOT_FOUND_TITLE = "Page not found"
    NOT_FOUND_TEXT = "There is no page at this address."
    BACK_TO_START = "Back to the start"
    TOO_LARGE_TITLE = "Too large"
    NOT_ACCEPTING_TITLE = "Not accepting submissions right now"
    ITEMS_RECEIVED_ON = "%(num)s item received on %(day)s"
    ITEMS_RECEIVED_ON_PLURAL = "%(num)s items received on %(day)s"
    NOT_ACCEPTING_TEXT = (
        "This site is not accepting submissions at the moment. Please try again later."
    )


# The footer's language links, each in its own language, in the footer's order.
LANGUAGE_LINKS = [
    "English",
    "አማርኛ",
    "العربية",
    "Беларуская",
    "བོད་སྐད་",
    "Deutsch",
    "Español",
    "فارسی",
    "Français",
    "हिन्दी",
    "Bahasa Indonesia",
    "ខ្មែរ",
    "한국어",
    "မြန်မာ",
    "پښتو",
    "Português (Brasil)",
    "Русский",
    "Türkçe",
    "ئۇيغۇرچە",
    "Українська",
    "اردو",
    "Tiếng Việt",
    "简体中文",
    "繁體中文",
]


def age_decrypt(identity: Path, blob: Path) -> bytes:
    return subprocess.run(
        ["age", "-d", "-i", str(identity), str(blob)], check=True, capture_output=True
    ).stdout


def other_codename(codename: str) -> str:
    """A well-formed codename that is not this one."""
    words = codename.split()
    return " ".join([*words[:-1], "zoom" if words[-1] != "zoom" else "abacus"])


def received_lines(language: Language, count: int) -> set[str]:
    """What "What you sent" says of ``count`` items that arrived today (or yesterday, should the
    test run across midnight UTC)."""
    today = dt.datetime.now(dt.UTC).date()
    return {
        language.ngettext(
            M.ITEMS_RECEIVED_ON,
            M.ITEMS_RECEIVED_ON_PLURAL,
            count,
            day=language.day(day),
        )
        for day in (today, today - dt.timedelta(days=1))
    }


def assert_same_origin(requests_made: list[str], server: ServerProcess) -> None:
    """Invariant 7 as the browser sees it: nothing was loaded from another origin."""
    foreign = [url for url in requests_made if not url.startswith(server.url + "/")]
    assert foreign == []
    # One request per page: the stylesheet is inlined, nothing else is fetched.
    assert not any("/static/" in url for url in requests_made)


def remove_all_recipients(instance: Path) -> None:
    """The operator removes the last recipient: the instance stops accepting submissions."""
    database = SqlDatabase(load_settings(instance).database_url)
    try:
        with database.transaction() as repos:
            for recipient in repos.recipients.list():
                repos.recipients.remove(recipient.id)
    finally:
        database.close()


def run_source_flow(
    page: Page,
    server: ServerProcess,
    instance_dir: Path,
    journalist_key: JournalistKey,
    language: Language,
    *,
    message: str,
    file_name: str,
    reply: str,
) -> None:
    """landing → codename → confirm (a wrong one first) → conversation → send a message and a
    file → received → log out → log in (a wrong codename first, then the right one typed
    carelessly) → read a reply → delete it → log out; then `age -d` opens what was stored."""
    _ = language._
    check = PageChecker(language)
    file_content = os.urandom(300_000) + bytes(range(256)) + "ünïcödé\r\n".encode()

    page.goto(server.url + "/")
    choose_language(page, language)
    check(page, "landing", h1=_(M.LANDING_TITLE))
    # The inlined stylesheet applies: Chromium accepted it under the CSP's hash (the body's
    # max-width is 42rem of the 17px root font). Playwright reads it over the DevTools protocol;
    # the page itself runs no JavaScript.
    assert page.evaluate("getComputedStyle(document.body).maxWidth") == "714px"

    submit(page.get_by_role("button", name=_(M.START), exact=True))
    check(page, "codename", h1=_(M.CODENAME_TITLE))
    codename_box = page.locator("p.codename")
    codename = codename_box.inner_text().strip()
    assert len(codename.split()) == 7
    # English words read left to right even on a right-to-left page.
    assert direction(codename_box) == "ltr"
    assert page.locator("footer nav").count() == 0  # no link away from the only view of it

    page.get_by_role("link", name=_(M.SAVED_IT), exact=True).click()
    assert page.url == server.url + "/confirm"
    check(page, "confirm", h1=_(M.CONFIRM_TITLE))

    page.get_by_label(_(M.CODENAME_FIELD)).fill(other_codename(codename))
    response = submit(page.get_by_role("button", name=_(M.CONTINUE), exact=True))
    assert response.status == 400
    assert page.get_by_role("alert").inner_text() == _(M.CONFIRM_ERROR)
    check(page, "confirm-error", h1=_(M.CONFIRM_TITLE))

    page.get_by_label(_(M.CODENAME_FIELD)).fill(codename)
    submit(page.get_by_role("button", name=_(M.CONTINUE), exact=True))
    assert page.url == server.url + "/conversation"
    assert codename not in page.content()  # shown once, never again
    assert _(M.NO_REPLIES) in (page.locator("main").inner_text())
    check(page, "conversation-empty", h1=_(M.CONVERSATION_TITLE))

    textarea = page.get_by_label(_(M.MESSAGE_FIELD), exact=True)
    textarea.fill(message)
    assert direction(textarea) == language.dir  # dir="auto" follows what is typed
    pdf: FilePayload = {"name": file_name, "mimeType": "application/pdf", "buffer": file_content}
    page.get_by_label(_(M.FILES_FIELD)).set_input_files(files=[pdf])
    response = submit(page.get_by_role("button", name=_(M.SEND), exact=True))
    assert response.status == 200
    assert page.url == server.url + "/submitted"
    check(page, "submitted", h1=_(M.RECEIVED_TITLE))

    page.get_by_role("link", name=_(M.BACK_TO_CONVERSATION), exact=True).click()
    sent = page.locator("section[aria-labelledby=sent-heading]")
    assert sent.get_by_role("heading").inner_text() == _(M.WHAT_YOU_SENT)
    assert sent.locator("li").inner_text() in received_lines(language, 2)

    submit(page.get_by_role("button", name=_(M.LOG_OUT), exact=True))
    assert page.locator("h1").inner_text() == _(M.LOGGED_OUT_TITLE)
    assert not [c for c in page.context.cookies() if c["name"] == "sealdrop_session"]

    # Back in: the brand link leads to the start page, which links to the login form.
    page.locator("header a.brand").click()
    page.get_by_role("link", name=_(M.HAVE_CODENAME), exact=True).click()
    assert page.url == server.url + "/login"
    check(page, "login", h1=_(M.LOGIN_TITLE))

    page.get_by_label(_(M.CODENAME_FIELD)).fill(other_codename(codename))
    response = submit(page.get_by_role("button", name=_(M.LOG_IN), exact=True))
    assert response.status == 400
    assert page.get_by_role("alert").inner_text() == _(M.LOGIN_ERROR)
    check(page, "login-error", h1=_(M.LOGIN_TITLE))

    # Case and extra spaces do not matter.
    careless = "  " + codename.upper().replace(" ", "   ") + " "
    page.get_by_label(_(M.CODENAME_FIELD)).fill(careless)
    submit(page.get_by_role("button", name=_(M.LOG_IN), exact=True))
    assert page.url == server.url + "/conversation"
    assert sent.locator("li").inner_text() in received_lines(language, 2)

    # A journalist replies (encrypted on their machine, stored through the future API).
    message_item, file_item = stored(instance_dir)
    add_reply(instance_dir, message_item["source"], reply, journalist_key.recipient)
    page.reload()
    shown = page.locator("ol.replies .reply")
    assert shown.count() == 1
    assert shown.inner_text() == reply  # markup in a reply is text, not HTML
    assert page.locator("main b").count() == 0
    assert direction(shown) == language.dir  # dir="auto" follows the reply's script
    check(page, "conversation-reply", h1=_(M.CONVERSATION_TITLE))
    # Keyboard users meet the controls in reading order: skip link, header, the reply's button,
    # the form, then the language links.
    page.reload()
    assert tab_order(page) == [
        f"a.skip:{_(M.SKIP)}",
        "a.brand:Sealdrop",
        f"button.link:{_(M.LOG_OUT)}",
        f"button.secondary:{_(M.DELETE_REPLY)}",
        "#message",
        "#files",
        f"button:{_(M.SEND)}",
        *(f"a:{name}" for name in LANGUAGE_LINKS),
    ]

    submit(page.get_by_role("button", name=_(M.DELETE_REPLY), exact=True))
    assert page.url == server.url + "/conversation"
    assert page.locator("ol.replies").count() == 0
    assert reply.splitlines()[-1] not in page.locator("main").inner_text()

    submit(page.get_by_role("button", name=_(M.LOG_OUT), exact=True))
    check(page, "logged-out", h1=_(M.LOGGED_OUT_TITLE))

    # Back to the conversation without a session: "Not logged in".
    refused = page.goto(server.url + "/conversation")
    assert refused is not None
    assert refused.status == 403
    check(page, "error-403-not-logged-in", h1=_(M.NOT_LOGGED_IN_TITLE))

    # What the server stored opens with the stock age and the journalist's key only. A browser
    # sends a textarea's line breaks as CRLF (HTML's form submission rules).
    assert [message_item["kind"], file_item["kind"]] == ["message", "file"]
    identity = journalist_key.identity_file
    expected_message = message.replace("\r\n", "\n").replace("\n", "\r\n")
    assert age_decrypt(identity, Path(message_item["path"])).decode() == expected_message
    opened = age_decrypt(identity, Path(file_item["path"]))
    assert hashlib.sha256(opened).hexdigest() == hashlib.sha256(file_content).hexdigest()
    assert len(opened) == len(file_content)
    assert codename not in server.log()
    assert careless.strip().lower() not in server.log().lower()


def test_source_flow_in_english(
    page: Page,
    server: ServerProcess,
    instance_dir: Path,
    journalist_key: JournalistKey,
    requests_made: list[str],
) -> None:
    """The whole source flow in Chromium with JavaScript off: start, confirm, send a message and
    a file, log out and in, read and delete an escaped reply; age opens the stored blobs."""
    run_source_flow(
        page,
        server,
        instance_dir,
        journalist_key,
        ENGLISH,
        message="Meet me by the river — ünïcödé ✓\nSecond line, <i>not markup</i>.",
        file_name="report 2026 (draft).pdf",
        reply="Thank you. <b>x</b> Can you tell us more?\nSecond line.",
    )
    assert_same_origin(requests_made, server)


def test_source_flow_in_persian_is_right_to_left(
    page: Page,
    server: ServerProcess,
    instance_dir: Path,
    journalist_key: JournalistKey,
    requests_made: list[str],
) -> None:
    """The same flow after picking فارسی in the footer: every page is lang="fa" dir="rtl",
    laid out right to left, with the catalog's Persian texts on its buttons and labels."""
    run_source_flow(
        page,
        server,
        instance_dir,
        journalist_key,
        PERSIAN,
        message="سلام. این یک پیام آزمایشی است — ۱۲۳\nخط دوم، <i>بدون نشانه‌گذاری</i>.",
        file_name="گزارش محرمانه.pdf",
        reply="ممنون. <b>x</b> لطفاً بیشتر بگویید.\nخط دوم.",
    )
    assert_same_origin(requests_made, server)


# A small upload limit, so that a 16 KiB file is already too large.
@pytest.mark.parametrize(
    "server_settings", [{"limits_max_upload_bytes": "4096"}], indirect=True, ids=["4KiB-limit"]
)
@pytest.mark.parametrize("language", [ENGLISH, PERSIAN], ids=["en", "fa"])
def test_error_pages(
    page: Page,
    new_context: Callable[[], BrowserContext],
    server: ServerProcess,
    instance_dir: Path,
    language: Language,
    requests_made: list[str],
) -> None:
    """The error pages a source can meet, in the source's language, each with a way back:
    404, too large (413), not accepting submissions (503, then the conversation says so)."""
    _ = language._
    check = PageChecker(language)
    page.goto(server.url + "/")
    choose_language(page, language)

    response = page.goto(server.url + "/no-such-page")
    assert response is not None
    assert response.status == 404
    check(page, "error-404", h1=_(M.NOT_FOUND_TITLE))
    assert page.get_by_role("alert").inner_text() == _(M.NOT_FOUND_TEXT)
    page.get_by_role("link", name=_(M.BACK_TO_START), exact=True).click()
    assert page.url == server.url + "/"

    submit(page.get_by_role("button", name=_(M.START), exact=True))
    codename = page.locator("p.codename").inner_text().strip()
    page.get_by_role("link", name=_(M.SAVED_IT), exact=True).click()
    page.get_by_label(_(M.CODENAME_FIELD)).fill(codename)
    submit(page.get_by_role("button", name=_(M.CONTINUE), exact=True))
    assert page.url == server.url + "/conversation"

    big: FilePayload = {
        "name": "big.bin",
        "mimeType": "application/octet-stream",
        "buffer": b"x" * 16384,
    }
    page.get_by_label(_(M.FILES_FIELD)).set_input_files(files=[big])
    response = submit(page.get_by_role("button", name=_(M.SEND), exact=True))
    assert response.status == 413
    check(page, "error-413-too-large", h1=_(M.TOO_LARGE_TITLE))
    assert stored(instance_dir) == []
    page.get_by_role("link", name=_(M.BACK_TO_CONVERSATION), exact=True).click()
    assert page.url == server.url + "/conversation"

    # The page still shows the form when the operator removes the last recipient.
    remove_all_recipients(instance_dir)
    page.get_by_label(_(M.MESSAGE_FIELD), exact=True).fill("hello")
    response = submit(page.get_by_role("button", name=_(M.SEND), exact=True))
    assert response.status == 503
    check(page, "error-503-not-accepting", h1=_(M.NOT_ACCEPTING_TITLE))
    assert stored(instance_dir) == []

    page.goto(server.url + "/conversation")
    assert page.locator("form[action='/submit']").count() == 0
    assert _(M.NOT_ACCEPTING_TEXT) in page.locator("main").inner_text()
    check(page, "conversation-not-accepting", h1=_(M.CONVERSATION_TITLE))

    # A browser with no session at all.
    stranger = new_context().new_page()
    stranger.goto(server.url + "/")
    choose_language(stranger, language)
    response = stranger.goto(server.url + "/conversation")
    assert response is not None
    assert response.status == 403
    assert stranger.locator("h1").inner_text() == _(M.NOT_LOGGED_IN_TITLE)
    assert_same_origin(requests_made, server)
