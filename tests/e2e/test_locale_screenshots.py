"""Every language's landing and conversation pages drawn by Chromium at 390 px with the system's
Noto fonts, kept as screenshots to look at, and checked for the two faults a look finds: glyphs
no font holds (tofu) and a page that does not run right to left where it should.

The pages are rendered in-process by the server's own ``Templates`` (the same templates,
catalogs, stylesheet and formatting as a served page) and handed to one Chromium with
``set_content``: one page load per screenshot, no server to start, so all 24 languages stay
cheap. The served pages themselves are covered by test_source_browser.py.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest
from starlette.requests import Request
from support_browser import PHONE, direction, platform_fonts

from sealdrop.web.i18n import COOKIE, LANGUAGES
from sealdrop.web.templating import Templates

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import Browser, Page

REPO = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("SEALDROP_ARTIFACTS", REPO / "test-artifacts")) / "screenshots"
FOLDER = SHOTS / "locales"

# The font a script must be drawn with (a substring of the platform font's family): a heading
# drawn with anything else lost its glyphs to a fallback that lacks them, i.e. tofu.
SCRIPT_FONTS = {
    "am": "Ethiopic",
    "ar": "Arabic",
    "bo": "Tibetan",
    "fa": "Arabic",
    "hi": "Devanagari",
    "km": "Khmer",
    "ko": "CJK",
    "my": "Myanmar",
    "ps": "Arabic",
    "ug": "Arabic",
    "ur": "Arabic",
    "zh_Hans": "CJK",
    "zh_Hant": "CJK",
}
DAY = dt.date(2026, 3, 14)


def _request(code: str) -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/",
            "query_string": b"",
            "headers": [(b"cookie", f"{COOKIE}={code}".encode("latin-1"))],
            "root_path": "",
        }
    )


def _pages(templates: Templates, code: str) -> dict[str, str]:
    request = _request(code)
    reply = SimpleNamespace(id="r1", day=DAY, text="Thank you. We will read it carefully.")
    conversation: dict[str, Any] = {
        "title": "Your conversation",
        "replies": [reply],
        "received": [(DAY, 3), (DAY - dt.timedelta(days=2), 1)],
        "accepting": True,
        "notice": None,
        "max_message_chars": 100_000,
        "max_upload": templates.format_param(request, "size", 500 * 1024 * 1024),
        "files_enabled": True,
        "logged_in": True,
    }
    pages = {
        "landing": ("index.html", {"title": "Send information securely", "form_token": "t"}),
        "conversation": ("conversation.html", conversation),
    }
    return {
        name: bytes(templates.render(request, template, **context).body).decode()
        for name, (template, context) in pages.items()
    }


@pytest.fixture(scope="module")
def page(browser: Browser) -> Iterator[Page]:
    """One phone-sized page, JavaScript off, reused for every language."""
    context = browser.new_context(java_script_enabled=False, viewport=PHONE)
    yield context.new_page()
    context.close()


@pytest.mark.slow
@pytest.mark.parametrize("code", sorted(LANGUAGES))
def test_landing_and_conversation_pages_render_in_each_language(page: Page, code: str) -> None:
    """Each language's landing and conversation pages at 390 px: the heading is drawn with a font
    of its script (no tofu), right-to-left languages run right to left, nothing scrolls
    sideways; the screenshots are kept under screenshots/locales/."""
    language = LANGUAGES[code]
    templates = Templates("sealdrop.web.source", "Example News")
    FOLDER.mkdir(parents=True, exist_ok=True)
    for name, html in _pages(templates, code).items():
        page.set_content(html)
        expected = "rtl" if language.rtl else "ltr"
        assert direction(page.locator("main")) == expected, (code, name)
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{code} {name}: {overflow}px of horizontal scrolling"
        if code in SCRIPT_FONTS:
            families = platform_fonts(page, "h1")
            assert any(SCRIPT_FONTS[code] in family for family in families), (code, families)
            body = platform_fonts(page, "main")
            assert any(SCRIPT_FONTS[code] in family for family in body), (code, body)
        else:
            families = platform_fonts(page, "h1")
            assert families, code
            assert all(re.search(r"Noto|DejaVu", family) for family in families), families
        page.screenshot(path=FOLDER / f"{code}-{name}-390.png", full_page=True)
