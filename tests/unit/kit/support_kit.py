"""What the reach kit's tests share: the languages the issue asks for, a strict HTML reader."""

from __future__ import annotations

from html.parser import HTMLParser

from sealdrop.web.i18n import LANGUAGES, Language

# Issue 16 asks for these 24 (the 8 of before and 16 more); the kit must speak each of them even
# while LANGUAGES is still growing towards them.
ISSUE_LANGUAGES = (
    *("en", "ar", "es", "fa", "ru", "tr", "zh_Hans", "zh_Hant"),
    *("ug", "bo", "uk", "be", "vi", "my", "km", "ko"),
    *("fr", "de", "pt_BR", "hi", "ur", "id", "ps", "am"),
)
RIGHT_TO_LEFT = {"ar", "fa", "ug", "ur", "ps"}
ONION = "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuvwx.onion"
ONION_URL = f"http://{ONION}/"

VOID = {"meta", "br", "hr", "img", "input", "link", "source", "wbr", "area", "col", "base"}
# SVG elements segno writes self-closed.
SELF_CLOSED = {"path", "rect"}


def all_languages() -> list[Language]:
    """LANGUAGES, plus the issue's languages not in it yet (tag and direction from the issue)."""
    extra = [
        Language(code, code.replace("_", "-"), code, rtl=code in RIGHT_TO_LEFT)
        for code in ISSUE_LANGUAGES
        if code not in LANGUAGES
    ]
    return [*LANGUAGES.values(), *extra]


class StrictPage(HTMLParser):
    """Reads a page and fails on what a browser would silently repair: an element closed that
    was not open, or one left open at the end. Keeps every tag, attribute and text."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.texts: list[tuple[str, str]] = []  # (innermost element, text)
        self.style = ""
        self.feed(html)
        self.close()
        assert not self.open, f"left open: {self.open}"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        assert self.open, f"</{tag}> closes nothing"
        assert self.open[-1] == tag, f"</{tag}> closes <{self.open[-1]}>"
        self.open.pop()

    def handle_data(self, data: str) -> None:
        where = self.open[-1] if self.open else ""
        if where == "style":
            self.style += data
        self.texts.append((where, data))

    def text(self) -> str:
        return "".join(data for where, data in self.texts if where not in ("style", "title"))
