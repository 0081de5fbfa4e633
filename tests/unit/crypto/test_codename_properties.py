"""Properties of codename normalisation over generated input: one canonical form for every way a
source may retype a codename, a clean InvalidCodename for everything else (look-alike letters,
control characters, wrong word counts, megabytes of text), and the same keys for every variant.

Complements test_codenames.py (fixed examples, retyped codenames, idempotence on short text).
"""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from support_words import WORDS

from sealdrop.crypto import codenames
from sealdrop.crypto.derive import derive_source_keys
from sealdrop.errors import InvalidCodename

WORD_SET = frozenset(WORDS)
SALT = bytes(range(32))
# The only messages InvalidCodename carries: fixed text, never a piece of the input.
REFUSALS = {
    "codename too long",
    f"a codename is {codenames.WORDS_PER_CODENAME} words",
    "a codename is made of words from its word list",
}
FAST = settings(max_examples=300, deadline=None, derandomize=True, database=None)

# Characters a source's keyboard, clipboard or input method may put between words: every one of
# them separates words after normalisation.
SEPARATORS = " \t\n\r\x0b\x0c\x00\x01\x1b\x1f\x7f\x85\u00a0\u1680\u2000\u2007\u2028\u2029\u202f"
SEPARATORS += "\u205f\u3000\u200b\u200e\u200f\u2060\ufeff"

# Letters and characters that look like them. Each one either folds (NFKC + casefold) to the
# ASCII letter — fullwidth, mathematical and compatibility forms, which normalisation forgives —
# or to something that is not ASCII at all (Cyrillic, Greek, Armenian, IPA ...), which it refuses.
LOOKALIKES: dict[str, str] = {
    "a": "аɑαａ𝐚𝑎ª",
    "c": "сϲⅽｃ𝐜",
    "d": "ԁⅾｄ𝐝",
    "e": "еєҽｅ𝐞ℯ",
    "h": "һհｈ𝐡ℎ",
    "i": "іıιɩｉ𝐢ⅰ",
    "j": "јϳｊ𝐣",
    "k": "κкｋ𝐤",
    "l": "ӏℓⅼｌ𝐥",
    "m": "мⅿｍ𝐦",
    "n": "ոпｎ𝐧",
    "o": "оοօｏ𝐨º",
    "p": "рρｐ𝐩",
    "q": "ԛｑ𝐪",
    "r": "гｒ𝐫",
    "s": "ѕꜱｓ𝐬ſ",
    "t": "тｔ𝐭",
    "u": "υսｕ𝐮",
    "v": "νѵⅴｖ𝐯",
    "w": "ԝωｗ𝐰",
    "x": "хχⅹｘ𝐱",
    "y": "уүｙ𝐲",
    "z": "ᴢｚ𝐳",
}


def fold(char: str) -> str:
    return unicodedata.normalize("NFKC", char).casefold()


def test_every_lookalike_folds_to_its_letter_or_to_non_ascii() -> None:
    """The look-alike table is sound: each character normalises to its own letter or to a
    non-ASCII character, never to another ASCII letter (which could spell another list word)."""
    for letter, similar in LOOKALIKES.items():
        for char in similar:
            folded = fold(char)
            assert folded == letter or not folded.isascii(), (letter, char, folded)
            assert len(folded) == 1, (letter, char, folded)


codenames_st = st.lists(st.sampled_from(WORDS), min_size=7, max_size=7).map(" ".join)
separator_runs = st.text(alphabet=st.sampled_from(SEPARATORS), min_size=1, max_size=3)


@st.composite
def retyped(draw: st.DrawFn, canonical: str) -> str:
    """``canonical`` as a source might retype it: any case per letter, any separators between
    words and around them."""
    words = [
        "".join(c.upper() if draw(st.booleans()) else c for c in word)
        for word in canonical.split(" ")
    ]
    between = [draw(separator_runs) for _ in words[1:]]
    lead = draw(st.text(alphabet=st.sampled_from(SEPARATORS), max_size=3))
    trail = draw(st.text(alphabet=st.sampled_from(SEPARATORS), max_size=3))
    return lead + "".join(w + s for w, s in zip(words, [*between, ""], strict=True)) + trail


# Any code point, lone surrogates included (a str can hold one even though UTF-8 cannot), with a
# bias towards list words, separators and control characters so that near-misses are common.
any_char = st.characters(exclude_categories=())
fragments = st.one_of(
    st.sampled_from(WORDS),
    st.text(any_char, max_size=6),
    st.sampled_from(SEPARATORS),
    st.sampled_from(["\x00", "\ud800", "\udfff", "\u0301", "\u00ad", "\u200d", "-", "'"]),
)
arbitrary_text = st.one_of(
    st.text(any_char, max_size=300),
    st.lists(fragments, max_size=30).map("".join),
)


def assert_canonical(result: str) -> None:
    parts = result.split(" ")
    assert len(parts) == codenames.WORDS_PER_CODENAME
    assert all(part in WORD_SET for part in parts)
    assert " ".join(parts) == result


@FAST
@given(text=arbitrary_text)
def test_any_text_normalises_to_seven_list_words_or_is_refused_cleanly(text: str) -> None:
    """For any text (surrogates, NUL, combining marks included) normalize returns seven list
    words joined by single spaces, which normalise to themselves, or raises InvalidCodename with
    one of its fixed messages and no chained exception; nothing else."""
    result: str | None
    try:
        result = codenames.normalize(text)
    except InvalidCodename:
        result = None
    if result is None:
        # Asked again outside the except block, where nothing is chained onto the refusal.
        with pytest.raises(InvalidCodename) as refused:
            codenames.normalize(text)
        assert str(refused.value) in REFUSALS
        assert refused.value.__cause__ is None
        assert refused.value.__context__ is None
        return
    assert_canonical(result)
    assert codenames.normalize(result) == result


@FAST
@given(canonical=codenames_st, data=st.data())
def test_retyped_codenames_normalise_to_the_canonical_form(
    canonical: str, data: st.DataObject
) -> None:
    """Every case and separator variant of a codename normalises to the codename itself, and the
    result is a fixed point."""
    typed = data.draw(retyped(canonical), label="typed")
    assert codenames.normalize(typed) == canonical
    assert codenames.normalize(codenames.normalize(typed)) == canonical


not_a_list_word = st.text(
    alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyz-'0123456789éß"), min_size=1, max_size=12
).filter(lambda token: token not in WORD_SET)


@st.composite
def wrong_token_lists(draw: st.DrawFn) -> list[str]:
    """Word lists that are not seven list words: a wrong count of list words, or seven (or any
    other number of) tokens of which at least one is not on the list."""
    if draw(st.booleans()):
        count = draw(st.integers(0, 14).filter(lambda n: n != codenames.WORDS_PER_CODENAME))
        return draw(st.lists(st.sampled_from(WORDS), min_size=count, max_size=count))
    tokens = draw(st.lists(st.sampled_from(WORDS), min_size=0, max_size=10))
    position = draw(st.integers(0, len(tokens)))
    tokens.insert(position, draw(not_a_list_word))
    return tokens


@FAST
@given(tokens=wrong_token_lists(), data=st.data())
def test_anything_but_seven_list_words_is_refused(tokens: list[str], data: st.DataObject) -> None:
    """Too few or too many words, or any token that is not on the list, however they are cased
    and separated, raise InvalidCodename."""
    between = [data.draw(separator_runs) for _ in tokens[1:]]
    typed = "".join(t + s for t, s in zip(tokens, [*between, ""], strict=False))
    if data.draw(st.booleans(), label="upper"):
        typed = typed.upper()
    with pytest.raises(InvalidCodename):
        codenames.normalize(typed)


@FAST
@given(canonical=codenames_st, data=st.data())
def test_a_lookalike_letter_is_forgiven_only_when_it_folds_to_that_letter(
    canonical: str, data: st.DataObject
) -> None:
    """Replacing one letter by a look-alike gives the same codename when the look-alike is a
    compatibility form of the letter (fullwidth, mathematical), and InvalidCodename when it is a
    letter of another script: a homoglyph never silently becomes some codename."""
    positions = [i for i, c in enumerate(canonical) if c in LOOKALIKES]
    assume(positions)
    at = data.draw(st.sampled_from(positions), label="at")
    char = data.draw(st.sampled_from(LOOKALIKES[canonical[at]]), label="char")
    typed = canonical[:at] + char + canonical[at + 1 :]
    if fold(char) == canonical[at]:
        assert codenames.normalize(typed) == canonical
    else:
        with pytest.raises(InvalidCodename):
            codenames.normalize(typed)


@FAST
@given(canonical=codenames_st, data=st.data())
def test_a_control_or_combining_character_inside_a_word_is_refused(
    canonical: str, data: st.DataObject
) -> None:
    """A combining accent, an invisible joiner, a soft hyphen or a control character typed inside
    a word is refused: the accent makes a word that is not on the list, and the others separate
    words, so the codename has eight."""
    inside = [i for i in range(1, len(canonical)) if canonical[i - 1] != " " != canonical[i]]
    at = data.draw(st.sampled_from(inside), label="at")
    char = data.draw(st.sampled_from("\u0301\u0308\u0327\u00ad\u200c\u200d\u2060\x00\x07\x1b"))
    with pytest.raises(InvalidCodename):
        codenames.normalize(canonical[:at] + char + canonical[at:])


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(
    padding=st.integers(codenames.MAX_INPUT_CHARS + 1, 200_000),
    filler=st.sampled_from([" ", "\x00", "a", "\ufdfa", "\u0301", "abacus "]),
)
def test_input_over_the_length_limit_is_refused_whatever_it_holds(
    padding: int, filler: str
) -> None:
    """Anything longer than MAX_INPUT_CHARS is refused as too long — even a valid codename padded
    with spaces or NULs — before any Unicode work on it."""
    typed = " ".join(["abacus"] * 7) + filler * padding
    with pytest.raises(InvalidCodename, match="too long"):
        codenames.normalize(typed)


@settings(
    max_examples=5,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(canonical=codenames_st, data=st.data())
def test_retyped_codenames_derive_the_same_keys(canonical: str, data: st.DataObject) -> None:
    """Two retyped variants of one codename, once normalised, derive the very same lookup id and
    reply identity as the codename itself (Argon2id at full cost, so few examples)."""
    first = data.draw(retyped(canonical), label="first")
    second = data.draw(retyped(canonical), label="second")
    reference = derive_source_keys(codenames.Codename(canonical), SALT)
    for typed in (first, second):
        keys = derive_source_keys(codenames.normalize(typed), SALT)
        assert keys.lookup_id == reference.lookup_id
        assert str(keys.reply_identity) == str(reference.reply_identity)
