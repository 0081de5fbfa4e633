"""The reader's local web interface in Persian: the catalog holds exactly the strings of the
templates and ``ui_views`` (extracted afresh with babel-reader.cfg, as ``pybabel extract`` does),
each translated with the same placeholders, and the pages are right to left."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from sealdrop.errors import ReaderError
from sealdrop.reader.profile import Profile
from sealdrop.reader.ui_sync import SyncStatus
from sealdrop.reader.ui_views import Pages

REPO = Path(__file__).resolve().parents[3]
CATALOG = (
    REPO / "src" / "sealdrop" / "reader" / "translations" / "fa" / "LC_MESSAGES" / "messages.po"
)
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def fresh_ids() -> set[str]:
    with (REPO / "babel-reader.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config, "babel-reader.cfg")  # type: ignore[no-untyped-call]
    found = {
        message
        for _f, _l, message, _c, _x in extract_from_dir(
            REPO, method_map, options_map, keywords=DEFAULT_KEYWORDS
        )
    }
    assert found, "extraction found nothing: is babel-reader.cfg still right?"
    return {m for m in found if isinstance(m, str)}


def test_persian_catalog_has_exactly_the_interface_strings_all_translated() -> None:
    """Every string of the interface is in the fa catalog, translated, with the same named
    placeholders; nothing stale is left in it."""
    with CATALOG.open("rb") as source:
        catalog = read_po(source, locale="fa")
    ids = {m.id for m in catalog if m.id}
    fresh = fresh_ids()
    assert fresh - ids == set(), "run pybabel update (docs/translations.md)"
    assert ids - fresh == set(), "strings no longer in the interface"
    for message in catalog:
        if message.id:
            assert isinstance(message.string, str)
            assert message.string, message.id
            assert not message.fuzzy, message.id
            assert set(PLACEHOLDER.findall(str(message.id))) == set(
                PLACEHOLDER.findall(message.string)
            ), message.id


def test_persian_pages_are_right_to_left_and_translated() -> None:
    """A page rendered in fa says lang="fa" dir="rtl" and shows the Persian strings, including
    the status line's."""
    pages = Pages("fa")
    body = bytes(pages.error(404, "no such item").body).decode()
    assert '<html lang="fa" dir="rtl">' in body
    assert "مشکلی پیش آمد" in body  # Something went wrong
    _, text = pages.status_line(SyncStatus(online=False), None)
    assert text == "آفلاین: نمایش آنچه همگام شده · هرگز همگام نشده"
    english = bytes(Pages("en").error(404, "no such item").body).decode()
    assert '<html lang="en" dir="ltr">' in english
    assert "Something went wrong" in english


def test_the_chosen_language_is_kept_for_the_next_runs(tmp_path: Path) -> None:
    """`reader ui --lang fa` keeps fa in the data folder (0600) for the runs without --lang;
    an unknown language is refused; without a choice it is English."""
    profile = Profile(tmp_path / "data").ensure()
    assert profile.language(None) == "en"
    assert profile.language("fa") == "fa"
    assert profile.language(None) == "fa"
    assert stat.S_IMODE(profile.language_path.stat().st_mode) == 0o600
    with pytest.raises(ReaderError, match="unknown language"):
        profile.language("xx")
    assert profile.language(None) == "fa"
