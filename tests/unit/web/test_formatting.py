"""Numbers, sizes and days on the source pages in each language's own digits and calendar."""

from __future__ import annotations

import datetime as dt

import pytest
from babel import Locale
from starlette.requests import Request

from sealdrop.web import formatting
from sealdrop.web.i18n import LANGUAGES
from sealdrop.web.templating import Templates

DAY = dt.date(2026, 3, 14)  # 23 Esfand 1404 in the Solar Hijri calendar


def test_persian_numbers_and_sizes_use_persian_digits() -> None:
    """Persian (CLDR default numbering "arabext") writes 100,000 and 500 MiB in Persian digits."""
    assert formatting.number(100_000, "fa") == "۱۰۰٬۰۰۰"
    assert formatting.size(500 * 1024 * 1024, "fa") == "۵۰۰ MiB"


def test_persian_day_is_in_the_solar_hijri_calendar() -> None:
    """14 March 2026 is shown to a Persian reader as 23 Esfand 1404, in Persian digits."""
    assert formatting.day(DAY, "fa") == "۲۳ اسفند ۱۴۰۴"


def test_persian_new_year_starts_farvardin() -> None:
    """The Solar Hijri year turns at Nowruz: 21 March 2026 is 1 Farvardin 1405."""
    assert formatting.day(dt.date(2026, 3, 21), "fa") == "۱ فروردین ۱۴۰۵"


def test_burmese_day_uses_burmese_digits() -> None:
    """Babel writes a date's numbers in Latin digits; Burmese (CLDR default "mymr") gets its own."""
    shown = formatting.day(DAY, "my")
    assert "၂၀၂၆" in shown
    assert "၁၄" in shown
    assert not any(c.isascii() and c.isdigit() for c in shown)


def test_latin_digit_languages_keep_latin_digits() -> None:
    """Where CLDR's default is Latin digits (Hindi, Arabic, Ukrainian), they stay Latin."""
    assert formatting.number(1234, "uk") == "1\xa0234"
    assert formatting.day(DAY, "hi") == "14 मार्च 2026"
    assert formatting.number(12, "ar") == "12"


@pytest.mark.parametrize("code", sorted(LANGUAGES))
def test_every_language_writes_digits_of_its_default_numbering_system(code: str) -> None:
    """Each language's numbers and days use the digits of CLDR's default numbering system."""
    system = Locale.parse(code).default_numbering_system
    zero = formatting.number(0, code)
    expected_zero = {"latn": "0", "arabext": "۰", "mymr": "၀", "arab": "٠"}[system]
    assert zero == expected_zero
    for text in (formatting.number(1_234_567, code), formatting.day(DAY, code)):
        digits = {c for c in text if c.isdigit()}
        assert digits, text
        assert all(ord(c) - ord(expected_zero) in range(10) for c in digits), text


def test_conversation_page_counts_in_persian_digits() -> None:
    """The conversation page's item counts, days and limits go through the formatting module."""
    templates = Templates("sealdrop.web.source", "Example News")
    request = Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/",
            "query_string": b"",
            "headers": [(b"cookie", b"sealdrop_lang=fa")],
            "root_path": "",
        }
    )
    page = bytes(
        templates.render(
            request,
            "conversation.html",
            title="Your conversation",
            replies=[],
            received=[(DAY, 3)],
            accepting=True,
            notice=None,
            max_message_chars=100_000,
            max_upload=templates.format_param(request, "size", 500 * 1024 * 1024),
            files_enabled=True,
            logged_in=True,
        ).body
    ).decode()
    assert "۳" in page
    assert "۲۳ اسفند ۱۴۰۴" in page
    assert "۱۰۰٬۰۰۰" in page
    assert "۵۰۰ MiB" in page
