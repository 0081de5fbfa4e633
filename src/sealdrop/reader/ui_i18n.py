"""The languages of the reader's local web interface: English, and Persian (right to left).

Catalogs are ``.po`` files under ``reader/translations``, compiled in memory when the interface
starts (Babel, as for the source interface): no build step, no binary ``.mo`` files. A string
missing from a catalog is shown in English.
"""

from __future__ import annotations

import gettext
import io
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

__all__ = ["LANGUAGES", "translations"]

# Language code -> text direction.
LANGUAGES = {"en": "ltr", "fa": "rtl"}
_CATALOGS = Path(__file__).parent / "translations"


def translations(lang: str) -> gettext.NullTranslations:
    """The interface's strings in ``lang`` (English: as written)."""
    po = _CATALOGS / lang / "LC_MESSAGES" / "messages.po"
    if lang == "en" or not po.is_file():
        return gettext.NullTranslations()
    with po.open("rb") as stream:
        catalog = read_po(stream, locale=lang)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)
