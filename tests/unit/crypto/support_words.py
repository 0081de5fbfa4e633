"""The EFF large word list as the crypto tests see it: read from the packaged file here, not
through ``codenames``, so that a mistake in the module's own parsing cannot hide from them."""

from __future__ import annotations

from importlib import resources

WORDS = tuple(
    line.split("\t")[1]
    for line in resources.files("sealdrop")
    .joinpath("data", "eff_large_wordlist.txt")
    .read_text("utf-8")
    .splitlines()
)
