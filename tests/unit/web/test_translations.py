"""The source interface's catalogs: one per language, complete, and up to date with the English.

The English strings are extracted afresh from the sources (the same way as ``pybabel extract``
with ``babel.cfg``), so changing a string in a template or in Python fails these tests until
``messages.pot`` and every catalog are updated and the new string is translated (see
docs/translations.md). Placeholders, plural forms and the per-language glossary are checked too,
and every page is rendered in every language to make sure no English is left on it.
"""

from __future__ import annotations

import datetime as dt
import gettext
import re
from collections.abc import Iterator
from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po
from babel.support import Translations
from starlette.requests import Request

from sealdrop.errors import FilesNotAccepted, MessageTooLong, TooManyRequests, UploadTooLarge
from sealdrop.web import errors
from sealdrop.web.i18n import COOKIE, DEFAULT, LANGUAGES, Catalogs
from sealdrop.web.templating import Templates

REPO = Path(__file__).resolve().parents[3]
TRANSLATIONS = REPO / "src" / "sealdrop" / "web" / "source" / "translations"
TEMPLATE = TRANSLATIONS / "messages.pot"
TRANSLATED = sorted(code for code in LANGUAGES if code != DEFAULT)

MessageId = str | tuple[str, ...]

# Python %-format conversions as Jinja's newstyle gettext applies them: named ones only. A bare
# "%" would break rendering, because every translated string is %-formatted, even without values.
PLACEHOLDER = re.compile(r"%\((\w+)\)([sd])|%%")
ANY_PERCENT = re.compile(r"%")

# One word for "codename" and one name for Tor Browser per language (a stem, matched as a
# substring, so that it may take the language's endings). A source must recognise both on every
# page; see docs/translations.md.
GLOSSARY: dict[str, dict[str, str]] = {
    "codename": {
        "ar": "رمزي",
        "es": "nombre en clave",
        "fa": "نام رمز",
        "ru": "кодов",
        "tr": "kod ad",
        "zh_Hans": "代号",
        "zh_Hant": "代號",
        "be": "кодав",
        "bo": "གསང་མིང",
        "km": "ឈ្មោះសម្ងាត់",
        "ko": "코드네임",
        "my": "လျှို့ဝှက်အမည်",
        "ug": "مەخپىي نام",
        "uk": "кодов",
        "vi": "mật danh",
        # The catalogs of lang-more's helper (issue 16), as they wrote them.
        "am": "ኮድ ስ",  # ስም, ስሙ, ስምዎ: the last syllable takes the ending
        "de": "codename",
        "fr": "nom de code",
        "hi": "कोडनेम",
        "id": "nama sandi",
        "ps": "کوډ نوم",
        "pt_BR": "codinome",
        "ur": "کوڈ نیم",
    },
    "Tor Browser": {
        "ar": "متصفح تور",
        "es": "Navegador Tor",
        "fa": "مرورگر تور",
        "ru": "Tor Browser",
        "tr": "Tor Browser",
        "zh_Hans": "Tor 浏览器",
        "zh_Hant": "Tor 瀏覽器",
        "be": "Tor Browser",
        "bo": "Tor Browser",
        "km": "Tor Browser",
        "ko": "Tor 브라우저",
        "my": "Tor Browser",
        "ug": "Tor Browser",
        "uk": "Tor Browser",
        "vi": "Tor Browser",
        "am": "ቶር ብራውዘር",
        "de": "Tor Browser",
        "fr": "Navigateur Tor",
        "hi": "टॉर ब्राउज़र",
        "id": "Tor Browser",
        "ps": "تور براوزر",
        "pt_BR": "Navegador Tor",
        "ur": "ٹور براؤزر",
    },
}


def message_id(message: Message) -> MessageId:
    return tuple(message.id) if isinstance(message.id, (list, tuple)) else message.id


# Babel types a message's id and string as "str, sequence of forms, or None" whatever the entry:
# these two narrow them to what a plural or a singular entry holds.
def plural(value: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    assert isinstance(value, (list, tuple)), value
    return tuple(value)


def singular(value: str | tuple[str, ...] | list[str] | None) -> str:
    assert isinstance(value, str), value
    return value


@cache
def fresh_ids() -> frozenset[MessageId]:
    """Every msgid in the sources now, extracted with babel.cfg's method map and options."""
    with (REPO / "babel.cfg").open() as config:
        # Babel leaves parse_mapping_cfg unannotated.
        method_map, options_map = parse_mapping_cfg(config, "babel.cfg")  # type: ignore[no-untyped-call]
    keywords = {**DEFAULT_KEYWORDS, "N_": None}
    ids: set[MessageId] = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
        REPO, method_map, options_map, keywords=keywords
    ):
        ids.add(tuple(message) if isinstance(message, (list, tuple)) else message)
    assert ids, "extraction found no messages: is babel.cfg still right?"
    return frozenset(ids)


def ids_of(catalog: Catalog) -> set[MessageId]:
    return {message_id(m) for m in catalog if m.id}


@cache
def catalog(code: str) -> Catalog:
    with (TRANSLATIONS / code / "LC_MESSAGES" / "messages.po").open("rb") as source:
        return read_po(source, locale=code)


def messages(code: str) -> Iterator[Message]:
    return (m for m in catalog(code) if m.id)


def placeholders(text: str) -> frozenset[tuple[str, str]]:
    return frozenset((name, kind) for name, kind in PLACEHOLDER.findall(text) if name)


def stray_percent(text: str) -> bool:
    """A "%" that is not part of a named placeholder or of "%%"."""
    return len(ANY_PERCENT.findall(PLACEHOLDER.sub("", text))) > 0


def single_number_forms(code: str) -> set[int]:
    """Plural forms that only one number ever selects (Arabic's zero, one and two, for example):
    there the words say the number, so the form may leave ``%(num)s`` out."""
    plural = gettext.c2py(catalog(code).plural_expr)
    users: dict[int, int] = {}
    for n in range(10_000):
        form = plural(n)
        users[form] = users.get(form, 0) + 1
    return {form for form, count in users.items() if count == 1}


def test_every_language_except_english_has_a_catalog() -> None:
    """Each language of i18n.LANGUAGES but English has translations/<code>/LC_MESSAGES/messages.po,
    and no catalog exists for a language the picker does not offer."""
    for code in TRANSLATED:
        assert (TRANSLATIONS / code / "LC_MESSAGES" / "messages.po").is_file(), code
    folders = {p.name for p in TRANSLATIONS.iterdir() if p.is_dir()}
    assert folders == set(TRANSLATED)


@pytest.mark.parametrize("code", TRANSLATED)
def test_catalog_header_matches_its_language(code: str) -> None:
    """The header names the catalog's own language and Babel's plural rule for it, so that the
    right plural form is chosen at run time."""
    po = catalog(code)
    assert str(po.locale) == code
    assert po.num_plurals == get_plural(code).num_plurals
    assert po.plural_expr == get_plural(code).plural_expr
    assert not po.fuzzy, "the header is marked fuzzy"


def plural_forms_header(code: str) -> str | None:
    """The Plural-Forms line as written in the catalog's header (continuation lines joined).

    Babel falls back to the locale's own rule when the header has none, so the parsed catalog
    cannot tell a missing line from a right one: the file itself is read here."""
    text = (TRANSLATIONS / code / "LC_MESSAGES" / "messages.po").read_text("utf-8")
    header = text.split("\n\n", 1)[0]
    joined = "".join(re.findall(r'^"(.*)"$', header, flags=re.MULTILINE))
    match = re.search(r"Plural-Forms: ([^\\]*)\\n", joined)
    return match.group(1).strip() if match else None


@pytest.mark.parametrize("code", TRANSLATED)
def test_plural_forms_header_is_babels(code: str) -> None:
    """The catalog's header has a Plural-Forms line, and it is exactly Babel's for the locale:
    a missing or different rule would pick the wrong plural form for a count."""
    rule = get_plural(code)
    expected = f"nplurals={rule.num_plurals}; plural={rule.plural_expr};"
    assert plural_forms_header(code) == expected


@pytest.mark.parametrize("code", TRANSLATED)
def test_catalog_has_exactly_the_strings_of_the_sources(code: str) -> None:
    """The catalog holds every msgid of a fresh extraction from the sources and nothing else, not
    even obsolete (#~) entries: a changed English string fails until the catalog is updated."""
    po = catalog(code)
    missing = fresh_ids() - ids_of(po)
    extra = ids_of(po) - fresh_ids()
    assert not missing, (
        f"not in the {code} catalog (run pybabel update): {sorted(map(str, missing))}"
    )
    assert not extra, f"no longer in the sources: {sorted(map(str, extra))}"
    assert not po.obsolete, f"obsolete entries left: {list(po.obsolete)}"


@pytest.mark.parametrize("code", TRANSLATED)
def test_every_string_and_plural_form_is_translated_and_not_fuzzy(code: str) -> None:
    """No msgstr is empty, no entry is fuzzy, and a plural entry has exactly as many filled forms
    as the language has."""
    nplurals = catalog(code).num_plurals
    for message in messages(code):
        assert not message.fuzzy, f"fuzzy: {message.id!r}"
        if message.pluralizable:
            forms = plural(message.string)
            assert len(forms) == nplurals, message.id
            assert all(form.strip() for form in forms), f"empty plural form: {message.id!r}"
        else:
            assert isinstance(message.string, str), message.id
            assert message.string.strip(), f"untranslated: {message.id!r}"


@pytest.mark.parametrize("code", TRANSLATED)
def test_placeholders_are_kept(code: str) -> None:
    """Each msgstr has the same named placeholders (name and conversion) as its msgid, and no
    other "%". A plural form may leave out %(num)s only where a single number selects that form."""
    may_omit_num = single_number_forms(code)
    for message in messages(code):
        if message.pluralizable:
            expected = placeholders(plural(message.id)[1])
            for index, form in enumerate(plural(message.string)):
                found = placeholders(form)
                allowed = (
                    {expected, expected - {("num", "s")}} if index in may_omit_num else {expected}
                )
                assert found in allowed, f"form {index} of {message.id[0]!r}: {found} != {expected}"
                assert not stray_percent(form), f"stray % in form {index} of {message.id[0]!r}"
        else:
            string = singular(message.string)
            assert placeholders(string) == placeholders(singular(message.id)), message.id
            assert not stray_percent(string), f"stray % in {message.id!r}"


@pytest.mark.parametrize("code", TRANSLATED)
def test_translations_hold_no_markup(code: str) -> None:
    """No msgstr contains "<", ">" or "&": Jinja's i18n extension marks translations as safe
    HTML, so markup in a catalog would reach the page unescaped."""
    for message in messages(code):
        forms = plural(message.string) if message.pluralizable else (singular(message.string),)
        for form in forms:
            assert not set(form) & {"<", ">", "&"}, f"markup in {message.id!r}: {form!r}"


@pytest.mark.parametrize("code", TRANSLATED)
@pytest.mark.parametrize("term", sorted(GLOSSARY))
def test_glossary_terms_are_used_consistently(code: str, term: str) -> None:
    """Wherever the English says "codename" or "Tor Browser", the translation uses that
    language's one agreed term for it."""
    wanted = GLOSSARY[term][code]
    for message in messages(code):
        english = " ".join(plural(message.id)) if message.pluralizable else singular(message.id)
        if term.lower() not in english.lower():
            continue
        forms = plural(message.string) if message.pluralizable else (singular(message.string),)
        for form in forms:
            assert wanted.lower() in form.lower(), f"{term!r} is not {wanted!r} in {form!r}"


def test_template_catalog_is_up_to_date() -> None:
    """messages.pot has exactly the msgids of a fresh extraction: re-extract after changing an
    English string (see docs/translations.md)."""
    with TEMPLATE.open("rb") as source:
        template = read_po(source)
    assert ids_of(template) == fresh_ids()


def test_catalogs_load_every_language_and_translate() -> None:
    """i18n.Catalogs compiles every shipped catalog, and each language translates a page title and
    a plural message into something other than the English."""
    catalogs = Catalogs("sealdrop.web.source")
    for code in TRANSLATED:
        translations = catalogs.get(code)
        assert isinstance(translations, Translations), code
        title = "Send information securely"
        assert translations.gettext(title) not in ("", title), code
        singular, plural = "%(num)s item received", "%(num)s items received"
        for n in (1, 2, 5, 11, 100):
            assert translations.ngettext(singular, plural, n) not in (singular, plural), (code, n)
    assert catalogs.get(DEFAULT).gettext("Send information securely") == (
        "Send information securely"
    )


# -- every page, rendered in every language --------------------------------------------------


_SCRIPT_TEXTS = ("data-progress", "data-retrying", "data-failed")


class _Text(HTMLParser):
    """The text of a page, and the values of attributes a reader meets (alt, aria-label)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            # data-progress, -retrying, -failed: what the upload script shows (from the page).
            if name in ("aria-label", "alt", "title", "placeholder", *_SCRIPT_TEXTS) and value:
                self.parts.append(value.strip())
        if tag in ("style", "script"):  # code, not text a reader meets
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.parts.append(" ".join(data.split()))


ORGANISATION = "Example News"
CODENAME = "alpha bravo charlie delta echo foxtrot golf"
REPLY = "Thanks, we will be in touch."


def _request(code: str) -> Request:
    cookie = f"{COOKIE}={code}".encode("latin-1")
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/",
            "query_string": b"",
            "headers": [(b"cookie", cookie)],
            "root_path": "",
        }
    )


def _pages() -> list[tuple[str, dict[str, Any]]]:
    day = dt.date(2026, 3, 14)
    reply = SimpleNamespace(id="r1", day=day, text=REPLY)
    conversation = {
        "title": "Your conversation",
        "replies": [reply, SimpleNamespace(id="r2", day=None, text=None)],
        "received": [(day, 1), (day, 3), (None, 2)],
        "accepting": True,
        "notice": None,
        "max_message_chars": 100_000,
        "max_upload": "500 MiB",
        "files_enabled": True,
    }
    pages: list[tuple[str, dict[str, Any]]] = [
        ("index.html", {"title": "Send information securely", "form_token": "t"}),
        ("codename.html", {"title": "Your codename", "codename": CODENAME}),
        ("confirm.html", {"title": "Check your codename", "logged_in": True}),
        ("login.html", {"title": "Log in", "form_token": "t"}),
        ("logged_out.html", {"title": "You are logged out"}),
        ("submitted.html", {"title": "Received", "logged_in": True}),
        ("conversation.html", {**conversation, "logged_in": True}),
        ("conversation.html", {**conversation, "replies": [], "received": [], "accepting": False}),
    ]
    error_pages = [*errors.HTTP_PAGES.values(), errors.SERVER_ERROR]
    for error in (
        TooManyRequests(120),
        UploadTooLarge(1024 * 1024),
        MessageTooLong(100_000),
        FilesNotAccepted("x"),
    ):
        error_pages.append(errors.page_for(error))
    for page in error_pages:
        context = {"message_msgid": page.message, "params": page.params, "link": page.link}
        pages.append(("error.html", {"title": page.title, **context}))
    return pages


@pytest.fixture(scope="module")
def templates() -> Templates:
    return Templates("sealdrop.web.source", ORGANISATION)


@pytest.mark.parametrize("code", TRANSLATED)
def test_every_page_renders_without_english_left(templates: Templates, code: str) -> None:
    """Every template renders in each language with the page's lang and dir set, and none of the
    English text of the same page is left (names, the codename and the picker aside)."""
    language = LANGUAGES[code]
    keep = {ORGANISATION, CODENAME, REPLY, *(lang.name for lang in LANGUAGES.values())}
    for name, context in _pages():
        english = _Text()
        # Starlette types a response's body as bytes or memoryview.
        english.feed(bytes(templates.render(_request(DEFAULT), name, **context).body).decode())
        page = bytes(templates.render(_request(code), name, **context).body).decode()
        assert f'<html lang="{language.tag}" dir="{"rtl" if language.rtl else "ltr"}">' in page
        translated = _Text()
        translated.feed(page)
        left = [
            text
            for text in english.parts
            if text in translated.parts and text not in keep and re.search(r"[A-Za-z]{3}", text)
        ]
        assert not left, f"English left on {name} in {code}: {left}"


def review_states() -> dict[str, str]:
    """The review-state table of docs/translations.md: locale -> state."""
    text = (REPO / "docs" / "translations.md").read_text("utf-8")
    section = text.split("\n## Review state\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|") for line in section.splitlines() if line.startswith("| ")]
    return {cells[1].strip(): cells[4].strip() for cells in rows[2:]}  # after the header rows


def test_review_state_table_covers_every_language() -> None:
    """docs/translations.md gives a review state for every translated language and no other, each
    "not reviewed" or "reviewed YYYY-MM-DD": a language is never shown as reviewed by default."""
    states = review_states()
    assert set(states) == set(TRANSLATED)
    for code, state in states.items():
        assert state == "not reviewed" or re.fullmatch(r"reviewed \d{4}-\d{2}-\d{2}", state), code


def test_pages_claim_no_review() -> None:
    """No string of the source interface says a translation was reviewed or checked by a native
    speaker: every text on the pages is one of these msgids or its translation, and the review
    state lives only in docs/translations.md."""
    claim = re.compile(r"\b(review|native speaker|proofread|checked by)", re.IGNORECASE)
    for message_id in fresh_ids():
        text = " ".join(message_id) if isinstance(message_id, tuple) else message_id
        assert not claim.search(text), text
