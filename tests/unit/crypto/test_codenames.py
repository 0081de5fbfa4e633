"""sealdrop.crypto.codenames: generation, the word list, and forgiving normalisation."""

from __future__ import annotations

import math
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support_words import WORDS

from sealdrop.crypto import codenames
from sealdrop.errors import InvalidCodename

CANONICAL = "abacus t-shirt zoom drop-down yo-yo felt-tip kinfolk"


def _to_fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


# --- the word list -------------------------------------------------------------------------------


def test_word_list_has_7776_unique_words_from_abacus_to_zoom() -> None:
    """The shipped list is the EFF large list: 7,776 distinct words, abacus first, zoom last."""
    assert len(WORDS) == 7776
    assert len(set(WORDS)) == 7776
    assert WORDS[0] == "abacus"
    assert WORDS[-1] == "zoom"


def test_word_list_is_plain_lowercase_ascii() -> None:
    """Every word is lower-case ASCII letters (or a hyphen), so normalised input can match it."""
    assert all(word.isascii() and word == word.lower() and word.strip() == word for word in WORDS)
    assert all(c.isalpha() or c == "-" for word in WORDS for c in word)


def test_seven_words_carry_about_90_bits() -> None:
    """7 words × log2(7776) ≈ 90.47 bits (DESIGN.md rounds this to 90.3)."""
    assert codenames.WORDS_PER_CODENAME == 7
    assert codenames.entropy_bits() == pytest.approx(7 * math.log2(7776))
    assert codenames.entropy_bits() == pytest.approx(90.47, abs=0.01)
    assert codenames.entropy_bits(1) == pytest.approx(12.925, abs=0.001)


# --- generation ----------------------------------------------------------------------------------


def test_generated_codename_is_seven_listed_words_in_canonical_form() -> None:
    """generate() gives 7 list words joined by single spaces, already normalised."""
    codename = codenames.generate()
    parts = codename.split(" ")
    assert len(parts) == 7
    assert all(part in WORDS for part in parts)
    assert codenames.normalize(codename) == codename


def test_generated_codenames_do_not_repeat() -> None:
    """200 generated codenames are all distinct (90 bits: a repeat means a broken RNG)."""
    assert len({codenames.generate() for _ in range(200)}) == 200


def test_generation_uses_the_whole_list() -> None:
    """Over many draws, words come from all over the list, not a prefix of it."""
    drawn = {word for _ in range(500) for word in codenames.generate().split()}
    positions = sorted(WORDS.index(word) for word in drawn)
    assert positions[0] < 200
    assert positions[-1] > 7576


def test_generate_refuses_zero_words() -> None:
    """A codename of no words is a programming error."""
    with pytest.raises(ValueError, match="at least one word"):
        codenames.generate(0)


# --- normalisation: what is forgiven -------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        CANONICAL,
        CANONICAL.upper(),
        "Abacus T-Shirt ZOOM drop-DOWN Yo-Yo felt-tip KinFolk",
        f"   {CANONICAL}   ",
        CANONICAL.replace(" ", "    "),
        CANONICAL.replace(" ", "\t"),
        CANONICAL.replace(" ", "\r\n"),
        CANONICAL.replace(" ", "\u00a0"),  # no-break space
        CANONICAL.replace(" ", "\u3000"),  # ideographic space
        CANONICAL.replace(" ", "\u2003\u2009"),  # em space, thin space
        CANONICAL.replace(" ", "\u200b"),  # zero-width space (Cf)
        "\ufeff" + CANONICAL,  # byte-order mark from a copied file
        CANONICAL.replace(" ", "\x00"),  # NUL
        CANONICAL.replace(" ", "\x0b\x1f\x7f"),  # VT, unit separator, DEL
        CANONICAL.replace(" ", "\x85"),  # NEL (C1 control)
        _to_fullwidth(CANONICAL),  # ａｂａｃｕｓ (NFKC)
        _to_fullwidth(CANONICAL.upper()),
        CANONICAL.replace("k", "\u212a").upper(),  # KELVIN SIGN → k
    ],
)
def test_normalize_forgives_case_spacing_width_and_control_characters(typed: str) -> None:
    """Case, any Unicode whitespace, control/format characters and fullwidth forms all map to the
    one canonical codename."""
    assert codenames.normalize(typed) == CANONICAL


def test_normalize_accepts_exactly_1000_characters() -> None:
    """Padding up to the 1,000-character limit is still a valid codename."""
    padded = CANONICAL.ljust(1000)
    assert len(padded) == 1000
    assert codenames.normalize(padded) == CANONICAL


# --- normalisation: what is refused --------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "   \t\n",
        " ".join(CANONICAL.split()[:6]),  # 6 words
        CANONICAL + " abacus",  # 8 words
        CANONICAL.replace("zoom", "zoomer"),  # unknown word
        CANONICAL.replace("zoom", "zo om"),  # split word (and 8 words)
        CANONICAL.replace("t-shirt", "tshirt"),  # hyphen is part of the word
        CANONICAL.replace("t-shirt", "t shirt"),
        CANONICAL.replace(" ", ","),  # punctuation is not a separator
        CANONICAL.replace(" ", "-"),
        CANONICAL.replace("abacus", "abacu\u0301s"),  # combining accent
        CANONICAL.replace("abacus", "аbacus"),  # Cyrillic а, looks identical
        CANONICAL.ljust(1001),  # one character over the limit
    ],
)
def test_normalize_refuses_anything_but_seven_listed_words(typed: str) -> None:
    """Wrong word count, unknown or look-alike words and over-long input raise InvalidCodename."""
    with pytest.raises(InvalidCodename):
        codenames.normalize(typed)


@pytest.mark.parametrize(
    "typed",
    [
        CANONICAL.replace("zoom", "zoomer"),
        " ".join(CANONICAL.split()[:6]),
        CANONICAL + " abacus",
        CANONICAL * 200,
    ],
)
def test_invalid_codename_message_never_contains_the_input(typed: str) -> None:
    """Neither the message nor any chained exception repeats any word of the refused input."""
    with pytest.raises(InvalidCodename) as caught:
        codenames.normalize(typed)
    shown = f"{caught.value!s} {caught.value!r}"
    for word in set(typed.split()):
        assert word not in shown
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None


def test_ten_kilobyte_input_is_refused_before_any_work() -> None:
    """A 10 KB input is refused by its length at once (the check precedes NFKC), quietly."""
    huge = "\ufdfa" * 10_000  # NFKC would expand each of these to 18 characters
    started = time.perf_counter()
    with pytest.raises(InvalidCodename, match="too long") as caught:
        codenames.normalize(huge)
    assert time.perf_counter() - started < 0.05
    assert "\ufdfa" not in str(caught.value)


# --- properties ----------------------------------------------------------------------------------

_SEPARATORS = st.text(
    alphabet=st.sampled_from(" \t\n\r\x0b\x0c\x00\x1f\x7f\x85\u00a0\u2003\u3000\u200b\ufeff"),
    min_size=1,
    max_size=4,
)


@st.composite
def _mangled_codenames(draw: st.DrawFn) -> tuple[str, str]:
    """A canonical codename and a retyped version with random case and whitespace."""
    words = draw(st.lists(st.sampled_from(WORDS), min_size=7, max_size=7))
    mangled_words = [
        "".join(c.upper() if draw(st.booleans()) else c for c in word) for word in words
    ]
    if draw(st.booleans()):
        mangled_words = [_to_fullwidth(word) for word in mangled_words]
    separators = [draw(_SEPARATORS) for _ in range(6)]
    body = "".join(w + s for w, s in zip(mangled_words, [*separators, ""], strict=True))
    lead = draw(st.text(alphabet=" \t\n\u3000", max_size=3))
    trail = draw(st.text(alphabet=" \t\n\u3000", max_size=3))
    return " ".join(words), lead + body + trail


@settings(max_examples=300, deadline=None)
@given(case=_mangled_codenames())
def test_normalize_recovers_and_is_idempotent_on_retyped_codenames(case: tuple[str, str]) -> None:
    """Randomly re-cased, re-spaced codenames normalise to the original, and normalising twice
    changes nothing."""
    canonical, typed = case
    once = codenames.normalize(typed)
    assert once == canonical
    assert codenames.normalize(once) == once


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200))
def test_normalize_on_arbitrary_text_is_idempotent_or_refuses(text: str) -> None:
    """For any text: either InvalidCodename, or a result that normalises to itself."""
    try:
        once = codenames.normalize(text)
    except InvalidCodename:
        return
    assert codenames.normalize(once) == once
