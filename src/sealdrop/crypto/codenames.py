"""Codenames: the only credential a source has, so they are random, readable and forgiving.

A codename is 7 words drawn with ``secrets.choice`` from the EFF large word list (7,776 words,
about 90.5 bits). Sources retype it from paper or memory, so ``normalize`` accepts differences in
case, spacing, Unicode width and stray control characters, and maps them all to one canonical form
before the KDF sees it — otherwise a source who types "Abacus" instead of "abacus" would silently
derive a different key and lose their replies.
"""

from __future__ import annotations

import functools
import math
import secrets
import unicodedata
from dataclasses import dataclass
from importlib import resources
from typing import NewType

from sealdrop.errors import InvalidCodename

__all__ = [
    "MAX_INPUT_CHARS",
    "WORDS_PER_CODENAME",
    "Codename",
    "entropy_bits",
    "generate",
    "normalize",
]

Codename = NewType("Codename", str)

WORDS_PER_CODENAME = 7
# Input longer than this cannot be a codename (7 words of at most 9 letters plus spaces is ~70):
# refusing it first bounds the work an attacker can make normalisation do.
MAX_INPUT_CHARS = 1000
_WORD_LIST_SIZE = 7776  # 6**5: five dice per word


@dataclass(frozen=True)
class _WordList:
    ordered: tuple[str, ...]
    members: frozenset[str]


@functools.cache
def _words() -> _WordList:
    """The EFF large word list, read once from package data (immutable, so caching is safe)."""
    text = resources.files("sealdrop").joinpath("data", "eff_large_wordlist.txt").read_text("utf-8")
    ordered = tuple(line.split("\t")[1] for line in text.splitlines() if line)
    members = frozenset(ordered)
    # A damaged list would silently shrink the codename space below the promised entropy.
    if len(ordered) != _WORD_LIST_SIZE or len(members) != _WORD_LIST_SIZE:
        raise RuntimeError("the shipped codename word list is damaged")
    return _WordList(ordered, members)


def generate(words: int = WORDS_PER_CODENAME) -> Codename:
    """A fresh random codename of ``words`` words (only 7-word codenames pass ``normalize``)."""
    if words < 1:
        raise ValueError("a codename needs at least one word")
    ordered = _words().ordered
    return Codename(" ".join(secrets.choice(ordered) for _ in range(words)))


def normalize(text: str) -> Codename:
    """The canonical form of a typed codename; InvalidCodename if it is not one.

    The error message never contains the input: it is a secret, and error messages end up in logs.
    """
    if len(text) > MAX_INPUT_CHARS:
        raise InvalidCodename("codename too long")
    # NFKC folds fullwidth and other compatibility forms ("ａｂａｃｕｓ") to plain letters.
    folded = unicodedata.normalize("NFKC", text).casefold()
    spaced = "".join(" " if _is_separator(char) else char for char in folded)
    parts = spaced.split()
    if len(parts) != WORDS_PER_CODENAME:
        raise InvalidCodename(f"a codename is {WORDS_PER_CODENAME} words")
    members = _words().members
    if not all(part in members for part in parts):
        raise InvalidCodename("a codename is made of words from its word list")
    return Codename(" ".join(parts))


def entropy_bits(words: int = WORDS_PER_CODENAME) -> float:
    """Entropy of a codename of ``words`` words: words × log2(7776)."""
    return words * math.log2(len(_words().ordered))


def _is_separator(char: str) -> bool:
    # Whitespace of any script, control characters (tabs, newlines, NUL) and invisible format
    # characters (zero-width space, BOM) all separate words, as they would look to the source.
    return char.isspace() or unicodedata.category(char) in ("Cc", "Cf")
