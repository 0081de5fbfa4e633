"""Untrusted text made safe to show: file names and messages, in the terminal and in the UI.

Everything a source sends (a file's name, a message) and much of what a hostile server could send
is shown to the journalist. Escaping HTML (the UI's templates) and rich markup (the CLI's Text
objects) is not enough: invisible characters lie about what the text says. A right-to-left
override makes ``evil\\u202etxt.exe`` display as "evilexe.txt"; a zero-width space hides inside a
name; a terminal escape (ESC, CSI) can rewrite the screen; a newline in a name forges a line of
output. So every such character is shown as a visible ``<U+202E>``, the same way in the terminal,
the web interface and the export's messages, and ``export.safe_name`` drops the same characters
from the name a file gets on disk.
"""

from __future__ import annotations

import unicodedata

__all__ = [
    "CANNOT_DECRYPT",
    "FILE_CANNOT_DECRYPT",
    "REPLY_CANNOT_DECRYPT",
    "WHY_CANNOT_DECRYPT",
    "is_invisible",
    "not_synced",
    "shown_name",
    "shown_text",
]

# Cc: C0 controls (newline, carriage return, ESC…), DEL and the C1 controls (U+0080–U+009F, CSI
# among them). Cf: format characters: the bidirectional embeddings, overrides and isolates
# (U+202A–U+202E, U+2066–U+2069), the left-to-right and right-to-left marks (U+200E, U+200F), the
# zero-width space, joiners and no-break space (U+200B–U+200D, U+2060, U+FEFF), the soft hyphen…
# Zl, Zp: the line and paragraph separators (U+2028, U+2029), newlines in disguise.
_INVISIBLE = frozenset({"Cc", "Cf", "Zl", "Zp"})


def is_invisible(ch: str) -> bool:
    """Whether ``ch`` is a control, format or line-separator character (see above)."""
    return unicodedata.category(ch) in _INVISIBLE


def _visible(ch: str) -> str:
    return f"<U+{ord(ch):04X}>"


def shown_name(name: str) -> str:
    """A file name (or any one-line untrusted text) as it is shown: every invisible character,
    line breaks and tabs included, becomes a visible ``<U+XXXX>``."""
    return "".join(_visible(ch) if is_invisible(ch) else ch for ch in name)


# Kept as they are in a message (never in a name): line breaks and tabs, and the characters that
# writing needs. Persian writes the zero-width non-joiner (U+200C) inside ordinary words, emoji
# and several Indic scripts need the joiner (U+200D), and right-to-left text uses the
# left-to-right, right-to-left and Arabic letter marks (U+200E, U+200F, U+061C) to place numbers
# and Latin words. None of them reorders or hides anything beyond the one character; the
# embeddings, overrides and isolates that do (and every control) are still shown as codes.
_WRITING = frozenset("\n\t\u200c\u200d\u200e\u200f\u061c")


def shown_text(text: str) -> str:
    """A message or reply as it is shown: line endings normalised to ``\\n`` (a browser sends CRLF;
    a lone CR would move the terminal's cursor back over the line), tabs and the characters of
    ``_WRITING`` kept, every other invisible character a visible ``<U+XXXX>``. For display only:
    an export keeps the exact bytes."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(_visible(ch) if is_invisible(ch) and ch not in _WRITING else ch for ch in text)


# Why an item does not open here, and what to do: the same words in the terminal and the UI.
# Every newcomer meets this: a submission is encrypted to the keys registered when it arrives (the
# organisation's keys and every journalist device's), so one that came before this device's key
# was registered can never be opened with it.
CANNOT_DECRYPT = "cannot decrypt: not encrypted to this device's key"
REPLY_CANNOT_DECRYPT = "reply not encrypted to this device's key"
FILE_CANNOT_DECRYPT = "file: its name and size are not encrypted to this device's key"
WHY_CANNOT_DECRYPT = (
    "An item is encrypted to the keys registered when it arrived: the organisation's keys and "
    "every journalist device's. One that arrived before this device's key was registered can "
    "only be opened with a key it was encrypted to (an organisation key, or another device "
    "registered before it arrived); everything that arrives from now on opens here."
)


def not_synced(state: str) -> str:
    """The note for an item whose ciphertext is not here (``state``: missing or corrupted)."""
    return f"{state}: run `sealdrop reader sync`"
