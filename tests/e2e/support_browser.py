"""Helpers for the browser tests: the Chromium launch, the interface's strings in each language
(read from the shipped catalogs, so the tests follow the translators), per-page checks and
screenshots. (Kept out of conftest.py so test modules can import them by a unique name.)"""

from __future__ import annotations

import datetime as dt
import gettext
import re
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from sealdrop.web import formatting

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page, Response, ViewportSize

PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"

# A page on an origin of its own (answered by Playwright, never by the network) whose inline
# script would rewrite its text. The app's own pages cannot prove JavaScript is off: their CSP
# forbids inline scripts anyway.
JS_PROBE_URL = "http://js-probe.invalid/"
JS_PROBE_HTML = (
    "<!doctype html><p id=probe>JavaScript off</p>"
    "<script>document.getElementById('probe').textContent = 'JavaScript on'</script>"
    "<noscript><p id=noscript>noscript shown</p></noscript>"
)

# Size units are written as the international symbols (a Persian page says "۴ KiB" or "4 KiB"
# with the number in the locale's format); tolerated so that the check below catches the rest.
UNLOCALISED_UNITS = {"bytes", "KiB", "MiB", "GiB", "TiB"}


def prove_javascript_is_off(page: Page) -> None:
    """Fail unless the page's browser context really runs no script."""
    page.route(
        JS_PROBE_URL,
        lambda route: route.fulfill(status=200, content_type="text/html", body=JS_PROBE_HTML),
    )
    page.goto(JS_PROBE_URL)
    assert page.locator("#probe").inner_text() == "JavaScript off", "JavaScript ran in the page"
    assert page.locator("#noscript").is_visible(), "<noscript> content not rendered"
    page.unroute(JS_PROBE_URL)


@dataclass(frozen=True)
class Language:
    code: str
    link_name: str  # the footer link that picks it, in the language itself
    dir: str

    @cached_property
    def catalog(self) -> Catalog | None:
        if self.code == "en":
            return None  # the msgids are the English text
        po = (
            resources.files("sealdrop.web.source")
            / "translations"
            / self.code
            / "LC_MESSAGES"
            / "messages.po"
        )
        if not po.is_file():
            pytest.fail(
                f"The {self.code} catalog is missing ({po}); the browser test reads the "
                "interface's texts from it.",
                pytrace=False,
            )
        with po.open("rb") as source:
            return read_po(source, locale=self.code)

    def _message(self, msgid: str) -> Any:
        assert self.catalog is not None
        message = self.catalog.get(msgid)
        strings = [] if message is None else _strings(message.string)
        if message is None or message.fuzzy or not all(strings):
            pytest.fail(
                f"The {self.code} catalog has no (non-fuzzy) translation of {msgid!r}",
                pytrace=False,
            )
        return message

    def _(self, msgid: str, **params: Any) -> str:
        """``msgid`` as the interface shows it in this language (like Jinja's newstyle gettext)."""
        text = msgid if self.catalog is None else str(self._message(msgid).string)
        return text % params if params else text

    def ngettext(self, singular: str, plural: str, n: int, **params: Any) -> str:
        if self.catalog is None:
            text = singular if n == 1 else plural
        else:
            forms = self._message(singular).string
            text = forms[gettext.c2py(self.catalog.plural_expr)(n)]
        return text % {"num": formatting.number(n, self.code), **params}

    def day(self, day: dt.date) -> str:
        return formatting.day(day, self.code)

    @cached_property
    def latin_words_in_catalog(self) -> set[str]:
        """Latin-script words the translators kept on purpose (e.g. a Tor Browser setting)."""
        if self.catalog is None:
            return set()
        words: set[str] = set()
        for message in self.catalog:
            for string in _strings(message.string):
                words.update(re.findall(r"[A-Za-z]+", re.sub(r"%\(\w+\)\w", "", string)))
        return words


def _strings(msgstr: str | tuple[str, ...] | list[str] | None) -> list[str]:
    assert msgstr is not None  # babel's type allows None; read_po never gives it
    return [msgstr] if isinstance(msgstr, str) else list(msgstr)


ENGLISH = Language("en", "English", "ltr")
PERSIAN = Language("fa", "فارسی", "rtl")


def choose_language(page: Page, language: Language) -> None:
    """Pick the language the way a source does: the footer's plain link."""
    if language.code == "en":
        return
    links = page.locator("footer nav")
    links.get_by_role("link", name=language.link_name, exact=True).click()
    assert page.locator("html").get_attribute("lang") == language.code


def submit(button: Locator) -> Response:
    """Click a form's button and return the response of the page it leads to."""
    with button.page.expect_navigation() as navigation:
        button.click()
    response = navigation.value
    assert response is not None
    return response


RESUME_JS = (resources.files("sealdrop.web.source") / "static" / "resume.js").read_text("utf-8")


@dataclass
class PageChecker:
    """What every page of the source interface must satisfy, plus its screenshots."""

    language: Language
    organisation: str = "Sealdrop"  # the default source.organisation_name

    def __call__(self, page: Page, name: str, *, h1: str | None = None) -> None:
        html = page.content()
        # The one script allowed is the packaged resumable-upload script, inline, on the
        # conversation page's send form; with JavaScript off (as here) it does not run.
        scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
        assert html.lower().count("<script") == len(scripts), f"{name}: a script with attributes"
        assert all(text == RESUME_JS for text in scripts), f"{name}: an unknown script"
        assert not scripts or name.startswith("conversation"), f"{name}: the page carries a script"
        root = page.locator("html")
        assert root.get_attribute("lang") == self.language.code, name
        assert root.get_attribute("dir") == self.language.dir, name
        assert direction(page.locator("main")) == self.language.dir, name
        headings = page.locator("h1")
        assert headings.count() == 1, f"{name}: {headings.count()} h1 elements"
        if h1 is not None:
            assert headings.inner_text() == h1, name
        self._accessibility(page, name)
        self._glyphs(page, name)
        if self.language.catalog is not None:
            self._untranslated(page, name)
        self._screenshots(page, name)

    def _accessibility(self, page: Page, name: str) -> None:
        unlabelled = page.locator("input:not([type=hidden]), textarea, select").evaluate_all(
            "els => els.filter(e => e.labels.length === 0).map(e => e.outerHTML)"
        )
        assert unlabelled == [], f"{name}: form controls without a label: {unlabelled}"
        nameless = page.locator("a, button").evaluate_all(
            "els => els.filter(e => !e.textContent.trim() && !e.getAttribute('aria-label'))"
            ".map(e => e.outerHTML)"
        )
        assert nameless == [], f"{name}: links or buttons without a name: {nameless}"
        positive = page.locator("[tabindex]").evaluate_all(
            "els => els.filter(e => e.tabIndex > 0).map(e => e.outerHTML)"
        )
        assert positive == [], f"{name}: a positive tabindex breaks the focus order: {positive}"
        # The first Tab reaches the skip link, which then shows on screen.
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "() => [document.activeElement.className, document.activeElement.getAttribute('href')]"
        )
        assert focused == ["skip", "#main"], f"{name}: first Tab focused {focused}"
        box = page.locator("a.skip").bounding_box()
        width = page.viewport_size["width"] if page.viewport_size else 0
        assert box is not None
        assert box["x"] >= 0, f"{name}: the focused skip link is off screen"
        assert box["x"] + box["width"] <= width, f"{name}: the focused skip link is off screen"
        page.keyboard.press("Shift+Tab")  # focus off the page again: no focus ring in screenshots

    def _glyphs(self, page: Page, name: str) -> None:
        """No tofu: the platform fonts Chromium used for the heading (and for the CJK language
        links) really hold that script."""
        if self.language.code == "fa":
            families = platform_fonts(page, "h1")
            assert any(re.search(r"Arabic|Naskh|Vazirmatn", f) for f in families), (
                f"{name}: the Persian heading was drawn with {families}"
            )
        if page.locator("footer a[lang=zh-Hans]").count():
            families = platform_fonts(page, "footer a[lang=zh-Hans]")
            assert any("CJK" in f for f in families), f"{name}: 简体中文 drawn with {families}"

    def _untranslated(self, page: Page, name: str) -> None:
        """Text in the page's own language has no Latin word the catalog does not have: an
        English string on a Persian page is an untranslated one."""
        text = page.evaluate(
            """lang => {
              const out = [document.title];
              const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
              while (walker.nextNode()) {
                const el = walker.currentNode.parentElement;
                // The codename and the language links are in a language of their own.
                if (el.closest('[lang]').getAttribute('lang') !== lang) continue;
                if (el.closest('.brand')) continue;  // the organisation's name, set by the operator
                if (el.closest('.reply')) continue;  // a journalist's words
                if (el.closest('script, style')) continue;  // code, not words on the page
                out.push(walker.currentNode.textContent);
              }
              return out.join(' ');
            }""",
            self.language.code,
        )
        text = text.replace(self.organisation, "")
        allowed = self.language.latin_words_in_catalog | UNLOCALISED_UNITS
        stray = sorted(set(re.findall(r"[A-Za-z]+", text)) - allowed)
        assert stray == [], f"{name}: untranslated words on a {self.language.code} page: {stray}"

    def _screenshots(self, page: Page, name: str) -> None:
        folder = SCREENSHOTS / self.language.code
        folder.mkdir(parents=True, exist_ok=True)
        for label, size in (("phone", PHONE), ("desktop", DESKTOP)):
            page.set_viewport_size(size)
            overflow = page.evaluate(
                "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{name}: {overflow}px of horizontal scrolling at {label} width"
            path = folder / f"{name}-{label}.png"
            page.screenshot(path=path, full_page=True)
        page.set_viewport_size(PHONE)


def tab_order(page: Page, limit: int = 50) -> list[str]:
    """What successive presses of Tab focus, from the top of a freshly loaded page until the
    focus leaves the page or wraps around: ``tag.class:text`` or ``#id``."""
    order: list[str] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            """() => {
              const e = document.activeElement;
              if (!e || e === document.body) return null;
              if (e.id) return '#' + e.id;
              const cls = e.classList.length ? '.' + e.classList[0] : '';
              return e.tagName.toLowerCase() + cls + ':' + e.textContent.trim();
            }"""
        )
        if focused is None or (order and focused == order[0]):
            break
        order.append(focused)
    return order


def direction(locator: Locator) -> str:
    """The computed CSS direction. Playwright evaluates through the DevTools protocol, which
    works with the page's own scripts off."""
    return str(locator.evaluate("e => getComputedStyle(e).direction"))


def platform_fonts(page: Page, selector: str) -> list[str]:
    """The font families Chromium drew an element's text with (DevTools CSS domain)."""
    cdp = page.context.new_cdp_session(page)
    try:
        root = cdp.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        cdp.send("CSS.enable")
        fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
        return [f["familyName"] for f in fonts if f["glyphCount"] > 0]
    finally:
        cdp.detach()
