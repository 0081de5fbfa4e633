"""Numbers, sizes and days as the source's language writes them: the one place pages format them.

Digits follow CLDR's default numbering system for each locale (Babel's ``numbering_system=
"default"``): Persian and Pashto get Extended Arabic-Indic digits (۱۲۳), Burmese its own (၁၂၃),
and the other languages Latin digits, because that is what CLDR records as their everyday use
(Arabic, Hindi, Khmer, Tibetan and Uyghur have native digits too, but CLDR's default is Latin).
Persian days are in the Solar Hijri calendar, the civil calendar of Iran and Afghanistan (with
jdatetime); every other language uses the Gregorian calendar in Babel's long format.
"""

from __future__ import annotations

import datetime as dt

import jdatetime  # type: ignore[import-untyped]  # no type information shipped
from babel import Locale
from babel.dates import format_date
from babel.numbers import format_decimal

# CLDR's own numbering system of the locale, not Babel's default of Latin digits for everyone.
_NUMBERING = "default"

# The zero of each numbering system a CLDR locale may have as its default (Unicode Nd).
_ZEROS = {
    "latn": "0",
    "arab": "\u0660",  # Arabic-Indic
    "arabext": "\u06f0",  # Extended Arabic-Indic (Persian, Pashto, Urdu)
    "beng": "\u09e6",
    "deva": "\u0966",
    "khmr": "\u17e0",
    "mymr": "\u1040",
    "tibt": "\u0f20",
}

# Languages whose pages show days in the Solar Hijri calendar.
_SOLAR_HIJRI = frozenset({"fa"})


def human_size_parts(n: int) -> tuple[float, str]:
    """A byte count as (number, binary unit), e.g. (2, "GiB"); at most 4 significant digits."""
    size = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024:
            return (round(size, 2) if unit != "bytes" else n), unit
        size /= 1024
    return round(size, 2), "TiB"


def number(value: float, code: str) -> str:
    """A count or limit with the language's digits and separators ("۱۰۰٬۰۰۰" in Persian)."""
    return _native_digits(format_decimal(value, locale=code, numbering_system=_NUMBERING), code)


def size(n_bytes: int, code: str) -> str:
    """A byte count with its binary unit, the number in the language's digits ("۵۰۰ MiB")."""
    value, unit = human_size_parts(n_bytes)
    return f"{number(value, code)} {unit}"


def day(value: dt.date, code: str) -> str:
    """A day in the language's long format and digits; Persian in the Solar Hijri calendar."""
    if code in _SOLAR_HIJRI:
        solar = jdatetime.date.fromgregorian(date=value)
        # Day, month name, year: how Persian writes a date ("۲۳ اسفند ۱۴۰۴"); the year has no
        # digit grouping.
        month = jdatetime.date.j_months_fa[solar.month - 1]
        return _native_digits(f"{solar.day} {month} {solar.year}", code)
    return _native_digits(format_date(value, format="long", locale=code), code)


def _native_digits(text: str, code: str) -> str:
    """``text`` with its Latin digits in the digits of the language's default numbering system.

    Babel picks the system's separators ("٬", "٫") but always writes Latin digits, so the digits
    are swapped here. Each system's ten digits are consecutive in Unicode from its zero.
    """
    system = Locale.parse(code).default_numbering_system
    zero = _ZEROS.get(system, "0")
    if zero == "0":
        return text
    native = "".join(chr(ord(zero) + d) for d in range(10))
    return text.translate(str.maketrans("0123456789", native))
