"""Journalist-facing names for sources: "adjective noun", from short, neutral word lists.

A pseudonym is a label for people, not an identifier: it is random, carries no information about
the source, and may repeat (ids stay the key). The lists avoid words that could read as a
judgement of the person behind them.
"""

from __future__ import annotations

import functools
import secrets
from importlib import resources


@functools.cache
def _words(name: str) -> tuple[str, ...]:
    text = (resources.files("sealdrop.data") / name).read_text(encoding="utf-8")
    return tuple(w for w in (line.strip() for line in text.splitlines()) if w)


def adjectives() -> tuple[str, ...]:
    return _words("pseudonym_adjectives.txt")


def nouns() -> tuple[str, ...]:
    return _words("pseudonym_nouns.txt")


def new_pseudonym() -> str:
    return f"{secrets.choice(adjectives())} {secrets.choice(nouns())}"
