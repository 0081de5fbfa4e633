"""The languages offered to sources: 24, right to left where CLDR says so, and negotiated."""

from __future__ import annotations

import jinja2
import pytest
from babel import Locale
from markupsafe import escape

from sealdrop.web.i18n import DEFAULT, LANGUAGES, Catalogs, negotiate
from sealdrop.web.templating import Templates, language_links

ISSUE_16 = {"ug", "bo", "uk", "be", "vi", "my", "km", "ko", "fr", "de", "pt_BR", "hi", "ur", "id"}
ISSUE_16 |= {"ps", "am"}


def test_at_least_twenty_four_languages_including_issue_16s() -> None:
    """The eight first languages and the sixteen of issue 16 are all offered."""
    assert set(LANGUAGES) >= ISSUE_16
    assert len(LANGUAGES) >= 24


@pytest.mark.parametrize("code", sorted(LANGUAGES))
def test_direction_and_tag_follow_the_locale(code: str) -> None:
    """A language is right to left exactly when CLDR writes it so (ar, fa, ps, ug, ur), and its
    lang tag is the BCP 47 form of its Babel code."""
    language = LANGUAGES[code]
    locale = Locale.parse(code)
    assert language.rtl == (locale.character_order == "right-to-left")
    assert language.tag == code.replace("_", "-")


def test_right_to_left_languages() -> None:
    """Uyghur, Urdu and Pashto are right to left, as Arabic and Persian are."""
    assert {code for code, lang in LANGUAGES.items() if lang.rtl} == {"ar", "fa", "ps", "ug", "ur"}


def test_picker_order_is_english_then_by_code() -> None:
    """The language menu lists English first, then every language by its code."""
    codes = list(LANGUAGES)
    assert codes[0] == DEFAULT
    assert codes[1:] == sorted(codes[1:], key=str.lower)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("pt-BR", "pt_BR"),
        ("pt", "pt_BR"),
        ("pt-PT,pt;q=0.9", "pt_BR"),
        ("ko-KR", "ko"),
        ("ko-KR,ko;q=0.9,en-US;q=0.8", "ko"),
        ("uk-UA", "uk"),
        ("be-BY", "be"),
        ("ug-CN", "ug"),
        ("bo-CN", "bo"),
        ("km-KH", "km"),
        ("my-MM", "my"),
        ("vi-VN", "vi"),
        ("fr-CA", "fr"),
        ("de-AT", "de"),
        ("hi-IN", "hi"),
        ("ur-PK", "ur"),
        ("id-ID", "id"),
        ("ps-AF", "ps"),
        ("am-ET", "am"),
        ("en-US,uk;q=0.5", "en"),
        ("xx-YY,uk-UA;q=0.3", "uk"),
    ],
)
def test_accept_language_maps_regional_tags(header: str, expected: str) -> None:
    """Regional Accept-Language tags reach the language's catalog (pt and pt-BR the Brazilian)."""
    assert negotiate(header) == expected


def test_language_links_escape_the_address_and_mark_only_the_current_language() -> None:
    """The footer's links (built once per language, not in a Jinja loop): one item per language,
    in the picker's order, each on its own line, the page's address escaped as Jinja would, and
    only the page's own language marked aria-current."""
    here = '/a"b<c>&d'
    links = str(language_links(here, LANGUAGES["fa"]))
    items = links.split("\n")
    assert items.pop() == ""  # every item ends its line
    assert len(items) == len(LANGUAGES)
    for item, language in zip(items, LANGUAGES.values(), strict=True):
        direction = "rtl" if language.rtl else "ltr"
        current = ' aria-current="true"' if language.code == "fa" else ""
        assert item == (
            f'<li><a href="{escape(here)}?lang={language.code}" lang="{language.tag}" '
            f'dir="{direction}"{current}>{escape(language.name)}</a></li>'
        )
    assert '"b<c>' not in links
    assert links.count("aria-current") == 1


@pytest.mark.parametrize("code", ["en", "fa", "de"])
def test_translations_in_templates_are_jinjas_newstyle_gettext(code: str) -> None:
    """Templates answers `_()` itself (kept per language when the message has no variables); it
    gives what Jinja's own newstyle gettext gives, values escaped, in every case, twice over."""
    templates = Templates("sealdrop.web.source", "Org")
    catalog = Catalogs("sealdrop.web.source").get(code)
    referee = jinja2.Environment(autoescape=True, extensions=["jinja2.ext.i18n"])
    referee.install_gettext_callables(  # type: ignore[attr-defined]
        catalog.gettext, catalog.ngettext, newstyle=True
    )
    ours = templates._env  # the environment the pages render with
    cases = [
        '_("Log in")',
        '_("Up to %(size)s in total. They are encrypted as they arrive.", size=value)',
        '_("Reply received on %(day)s", day=value)',
        "_(title)",
    ]
    context = {"value": "<b>5 & 6</b>", "title": "Log in"}
    for case in cases:
        expected = referee.from_string("{{ " + case + " }}").render(**context)
        assert "<b>" not in expected
        for _ in range(2):  # the second time from what was kept
            token = templates._current.set(catalog)
            try:
                assert ours.from_string("{{ " + case + " }}").render(**context) == expected
            finally:
                templates._current.reset(token)
