"""sealdrop.reader.display: untrusted names and messages made safe to show (terminal and UI), and
the export's file names free of the same invisible characters."""

from __future__ import annotations

import pytest

from sealdrop.reader.display import shown_name, shown_text
from sealdrop.reader.export import safe_name

# Every kind of character that lies about what a name says or rewrites the screen.
INVISIBLE = [
    *(chr(c) for c in range(0x202A, 0x202F)),  # bidi embeddings and overrides
    *(chr(c) for c in range(0x2066, 0x206A)),  # bidi isolates
    "\u200e",  # left-to-right mark
    "\u200f",  # right-to-left mark
    "\u200b",  # zero-width space
    "\u200c",  # zero-width non-joiner
    "\u200d",  # zero-width joiner
    "\u2060",  # word joiner
    "\ufeff",  # zero-width no-break space (BOM)
    "\u00ad",  # soft hyphen
    "\x00",
    "\x07",
    "\x1b",  # ESC: terminal escape sequences
    "\x7f",
    "\x85",  # C1 next line
    "\x9b",  # C1 CSI
    "\n",
    "\r",
    "\t",
    "\u2028",  # line separator
    "\u2029",  # paragraph separator
    "\u061c",  # Arabic letter mark
]


@pytest.mark.parametrize("ch", INVISIBLE, ids=lambda ch: f"U+{ord(ch):04X}")
def test_an_invisible_character_in_a_name_is_shown_as_its_code(ch: str) -> None:
    """`evil<ch>txt.exe` is shown with the character as a visible <U+XXXX>, never as itself."""
    shown = shown_name(f"evil{ch}txt.exe")
    assert shown == f"evil<U+{ord(ch):04X}>txt.exe"
    assert ch not in shown


@pytest.mark.parametrize("ch", INVISIBLE, ids=lambda ch: f"U+{ord(ch):04X}")
def test_the_exported_name_drops_every_character_the_display_escapes(ch: str) -> None:
    """The file an export writes never carries a character that the reader would not show."""
    assert safe_name(f"evil{ch}txt.exe") == "eviltxt.exe"


def test_visible_text_is_shown_unchanged() -> None:
    """Letters of any script, markup-like brackets and HTML are left to the caller's escaping."""
    name = "Résumé [red]x[/] <b>شهادة</b> 報告.pdf"
    assert shown_name(name) == name


def test_a_message_keeps_its_lines_with_every_line_ending_normalised() -> None:
    """CRLF (what browsers send) and a lone CR become LF; tabs stay; other controls are shown."""
    assert shown_text("one\r\ntwo\rthree\n\tfour\x1b[2J") == "one\ntwo\nthree\n\tfour<U+001B>[2J"


# What writing needs (see display._WRITING): kept in messages, still escaped in names.
WRITING = ["\u200c", "\u200d", "\u200e", "\u200f", "\u061c"]


@pytest.mark.parametrize("ch", [c for c in INVISIBLE if c not in "\n\r\t" and c not in WRITING])
def test_a_message_shows_every_other_invisible_character(ch: str) -> None:
    """In a message, line breaks, tabs and the joiners and marks of writing are kept; every
    other invisible character (the bidi overrides, isolates and embeddings among them) is shown
    as its code."""
    assert shown_text(f"a{ch}b") == f"a<U+{ord(ch):04X}>b"


def test_a_persian_message_keeps_its_joiners_and_marks() -> None:
    """Persian writes U+200C inside words (می‌خواهم); a message in it reads as written, while the
    same character in a file name is shown as its code."""
    message = "می\u200cخواهم \u200f۲۰۲۶\u200e 👩\u200d💻 \u061c"
    assert shown_text(message) == message
    assert shown_name("می\u200cخواهم.pdf") == "می<U+200C>خواهم.pdf"
