"""The kit's own catalogs (gettext domain ``kit``): one for every language of the source
interface and of issue 16, complete, never fuzzy, placeholders kept, plural forms as Babel says,
and the template up to date with the English in ``sealdrop/kit/text.py``."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po
from support_kit import ISSUE_LANGUAGES

from sealdrop.errors import ConfigError
from sealdrop.kit.catalogs import kit_translations
from sealdrop.web.i18n import LANGUAGES

REPO = Path(__file__).resolve().parents[3]
KIT = REPO / "src" / "sealdrop" / "kit"
TRANSLATIONS = KIT / "translations"
PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%|%")
TRANSLATED = sorted((set(LANGUAGES) | set(ISSUE_LANGUAGES)) - {"en"})

# The source interface's words for "codename" and "Tor Browser" (its GLOSSARY in
# tests/unit/web/test_translations.py and docs/translations.md): a source who reads the kit and
# then the drop must meet the same words. Stems, matched case-insensitively as substrings.
CODENAME = {
    "ar": "رمزي", "es": "nombre en clave", "fa": "نام رمز", "ru": "кодов", "tr": "kod ad",
    "zh_Hans": "代号", "zh_Hant": "代號", "be": "кодав", "bo": "གསང་མིང", "km": "ឈ្មោះសម្ងាត់",
    "ko": "코드네임", "my": "လျှို့ဝှက်အမည်", "ug": "مەخپىي نام", "uk": "кодов", "vi": "mật danh",
    "am": "ኮድ ስ", "de": "codename", "fr": "nom de code", "hi": "कोडनेम", "id": "nama sandi",
    "ps": "کوډ نوم", "pt_BR": "codinome", "ur": "کوڈ نیم",
}  # fmt: skip
TOR_BROWSER = {
    "ar": "متصفح تور", "es": "Navegador Tor", "fa": "مرورگر تور", "zh_Hans": "Tor 浏览器",
    "zh_Hant": "Tor 瀏覽器", "ko": "Tor 브라우저", "am": "ቶር ብራውዘር", "fr": "Navigateur Tor",
    "hi": "टॉर ब्राउज़र", "ps": "تور براوزر", "pt_BR": "Navegador Tor", "ur": "ٹور براؤزر",
}  # fmt: skip


@cache
def _catalog(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as source:
        return read_po(source, locale=locale)


def _template() -> Catalog:
    return _catalog(TRANSLATIONS / "kit.pot")


def test_every_language_of_the_source_interface_has_a_kit_catalog() -> None:
    """A language in LANGUAGES (read at test time, so also after the new languages merge) with
    no kit catalog fails here rather than at `sealdrop kit` on an operator's machine."""
    missing = [
        code
        for code in LANGUAGES
        if code != "en" and not (TRANSLATIONS / code / "LC_MESSAGES" / "kit.po").is_file()
    ]
    assert missing == []


def test_the_kit_speaks_the_24_languages_of_the_issue() -> None:
    """Issue 16's 24 languages each have a kit catalog, and no catalog is for anything else."""
    shipped = {p.name for p in TRANSLATIONS.iterdir() if p.is_dir()}
    assert shipped == set(ISSUE_LANGUAGES) - {"en"}


def test_a_language_without_a_kit_catalog_is_an_error() -> None:
    """The kit refuses to make an English page labelled as another language."""
    with pytest.raises(ConfigError, match="no catalog"):
        kit_translations("xx")


def test_template_matches_the_english_in_text_py() -> None:
    """kit.pot holds exactly the strings marked N_() in text.py (re-extract after a change:
    docs/reach-kit.md)."""
    extracted = {
        message
        for _, message, _, _ in extract_from_file("python", KIT / "text.py", keywords={"N_": None})
    }
    assert extracted == {m.id for m in _template() if m.id}


@pytest.mark.parametrize("code", TRANSLATED)
def test_catalog_is_complete_with_placeholders_and_plural_forms(code: str) -> None:
    """Every English string is translated (no empty or fuzzy entry, no stale one), every
    placeholder kept, no bare %, and the Plural-Forms header is Babel's for the locale."""
    catalog = _catalog(TRANSLATIONS / code / "LC_MESSAGES" / "kit.po", code)
    assert not catalog.fuzzy
    assert catalog.plural_forms == get_plural(code).plural_forms
    wanted = {m.id: m for m in _template() if m.id}
    have = {m.id: m for m in catalog if m.id}
    assert set(have) == set(wanted)
    assert not catalog.obsolete
    for msgid, message in have.items():
        # The kit has no plural entries: every id and string is one text.
        assert isinstance(msgid, str), msgid
        assert isinstance(message.string, str), msgid
        assert message.string.strip(), msgid
        assert not message.fuzzy, msgid
        placeholders = sorted(PLACEHOLDER.findall(message.string))
        assert placeholders == sorted(PLACEHOLDER.findall(msgid)), (code, msgid)
    # The catalog really loads as the kit loads it.
    assert kit_translations(code).gettext("The address") != "The address"


@pytest.mark.parametrize("code", TRANSLATED)
def test_catalog_uses_the_source_interfaces_words(code: str) -> None:
    """The kit calls the codename and Tor Browser what the drop's own pages call them."""
    catalog = _catalog(TRANSLATIONS / code / "LC_MESSAGES" / "kit.po", code)
    browser = TOR_BROWSER.get(code, "Tor Browser").lower()
    for message in catalog:
        if not isinstance(message.id, str) or not isinstance(message.string, str):
            continue
        if "Tor Browser" in message.id:
            assert browser in message.string.lower(), (code, message.id)
        if "codename" in message.id:
            assert CODENAME[code].lower() in message.string.lower(), (code, message.id)
