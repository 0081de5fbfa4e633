"""The kit's own gettext domain (``kit``): one catalog per language of the source interface.

Kept apart from the source interface's ``messages`` catalogs: the kit is published on the
organisation's website, its text changes with Tor Project facts, and it has its own reviewers.
Compiled in memory, as the source interface's catalogs are: no build step, no ``.mo`` files.
"""

from __future__ import annotations

import gettext
import io
from importlib import resources

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from sealdrop.errors import ConfigError

DOMAIN = "kit"


def kit_translations(code: str) -> gettext.NullTranslations:
    """The kit's catalog for one language (English is the source text itself).

    A language without a kit catalog is an error, not English in disguise: a page labelled
    Uyghur that speaks English would fail the reader it is for.
    """
    if code == "en":
        return gettext.NullTranslations()
    po = resources.files("sealdrop.kit") / "translations" / code / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not po.is_file():
        raise ConfigError(f"the reach kit has no catalog for the language {code!r}")
    with po.open("rb") as source:
        catalog = read_po(source, locale=code)
    compiled = io.BytesIO()
    # Fuzzy entries are guesses: never shown (the tests refuse them anyway).
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)
