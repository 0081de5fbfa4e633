"""Properties of the streaming multipart reader against bodies made by independent encoders.

test_multipart_reader.py checks the reader against the test's own encoder. Here the bodies come
from the WHATWG algorithm as browsers and urllib3 implement it and from httpx (the client the
tests and many scripts use), with the boundary shapes of Chromium, Firefox and those libraries and
any other boundary RFC 2046 allows, passed through the Content-Type header as a request carries
it. Whatever the chunking, the reader must give back exactly the fields and bytes the encoder
wrote; a truncated body must never make a part look complete with partial data; and the body
limit must hold exactly.
"""

from __future__ import annotations

import itertools
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_multipart_reader import feeder, split
from urllib3 import encode_multipart_formdata

from sealdrop.errors import MalformedUpload, UploadTooLarge
from sealdrop.web.multipart import BodyLimit, MultipartReader, boundary_of

PROPERTY = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

Parsed = tuple[str, str | None, str, bytes]


@dataclass(frozen=True)
class Field:
    name: str
    filename: str | None  # None: a plain text field
    content_type: str  # of a file part (plain fields carry none)
    data: bytes  # a plain field's value is UTF-8 text


@dataclass(frozen=True)
class Encoded:
    content_type: str  # the request's Content-Type header
    body: bytes
    expected: list[Parsed]


# --- encoders ----------------------------------------------------------------------------------


def whatwg_name(value: str) -> str:
    """How browsers (and urllib3 2) escape a name or file name in a quoted header parameter."""
    return value.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def httpx_name(value: str) -> str:
    """How httpx escapes one: also backslashes, and control characters but ESC, as %XX."""
    out = value.replace("\\", "\\\\").replace('"', "%22")
    return "".join(f"%{ord(c):02X}" if ord(c) < 0x20 and c != "\x1b" else c for c in out)


def header_value(boundary: str) -> str:
    """The Content-Type of a form with this boundary; quoted when RFC 2046 allows characters
    in it that a bare header parameter may not hold (space, "(", ":", "?", ...)."""
    if all(c in string.ascii_letters + string.digits + "'+_-." for c in boundary):
        return f"multipart/form-data; boundary={boundary}"
    return f'multipart/form-data; boundary="{boundary}"'


def parsed(field: Field, filename: str | None) -> Parsed:
    content_type = field.content_type if field.filename is not None else "application/octet-stream"
    return (field.name, filename, content_type, field.data)


def encode_browser(fields: Sequence[Field], boundary: str) -> Encoded:
    """The WHATWG multipart/form-data algorithm, as Chromium and Firefox send a form."""
    out = b""
    for f in fields:
        disposition = f'form-data; name="{whatwg_name(f.name)}"'
        if f.filename is not None:
            disposition += f'; filename="{whatwg_name(f.filename)}"'
        out += b"--" + boundary.encode() + b"\r\nContent-Disposition: " + disposition.encode()
        if f.filename is not None:
            out += b"\r\nContent-Type: " + f.content_type.encode()
        out += b"\r\n\r\n" + f.data + b"\r\n"
    out += b"--" + boundary.encode() + b"--\r\n"
    expected = [parsed(f, None if f.filename is None else whatwg_name(f.filename)) for f in fields]
    return Encoded(header_value(boundary), out, expected)


def encode_urllib3(fields: Sequence[Field], boundary: str) -> Encoded:
    """urllib3's encode_multipart_formdata (WHATWG escaping, like browsers)."""
    items: list[tuple[str, object]] = []
    for f in fields:
        if f.filename is None:
            items.append((f.name, f.data.decode("utf-8")))
        else:
            items.append((f.name, (f.filename, f.data, f.content_type)))
    body, _ = encode_multipart_formdata(items, boundary=boundary)  # type: ignore[arg-type]
    expected = [parsed(f, None if f.filename is None else whatwg_name(f.filename)) for f in fields]
    return Encoded(header_value(boundary), body, expected)


def encode_httpx(fields: Sequence[Field], boundary: str) -> Encoded:
    """httpx's encoder, as a client posting ``data=`` and ``files=`` sends it: the plain fields
    first (grouped by name), then the files; an empty file name is left out altogether. httpx
    sends a form without files urlencoded, so a form here always has one."""
    if all(f.filename is None for f in fields):
        fields = [*fields, Field("files", "empty.bin", "application/octet-stream", b"")]
    data: dict[str, list[str]] = {}
    for f in fields:
        if f.filename is None:
            data.setdefault(f.name, []).append(f.data.decode("utf-8"))
    files = [
        (f.name, (f.filename, f.data, f.content_type)) for f in fields if f.filename is not None
    ]
    request = httpx.Request(
        "POST",
        "http://testserver/submit",
        data=data,
        files=files,
        headers={"content-type": header_value(boundary)},
    )
    by_name = {name: [f for f in fields if f.filename is None and f.name == name] for name in data}
    ordered = [f for group in by_name.values() for f in group]
    ordered += [f for f in fields if f.filename is not None]
    expected = []
    for f in ordered:
        if f.filename is None:
            expected.append(parsed(f, None))
        elif f.filename == "":
            expected.append((f.name, None, f.content_type, f.data))  # sent without a file name
        else:
            expected.append(parsed(f, httpx_name(f.filename)))
    return Encoded(request.headers["content-type"], request.read(), expected)


ENCODERS: dict[str, Callable[[Sequence[Field], str], Encoded]] = {
    "browser": encode_browser,
    "urllib3": encode_urllib3,
    "httpx": encode_httpx,
}


# --- reading -----------------------------------------------------------------------------------


def read_all(
    next_chunk: Callable[[], bytes], boundary: bytes, read_sizes: Sequence[int]
) -> list[Parsed]:
    """Every part read to its end, then the rest of the body (as POST /submit does)."""
    reader = MultipartReader(next_chunk, boundary)
    sizes = itertools.cycle(read_sizes)
    out: list[Parsed] = []
    for part in reader.parts():
        data = bytearray()
        while chunk := part.read(next(sizes)):
            data += chunk
        out.append((part.name, part.filename, part.content_type, bytes(data)))
    while next_chunk():
        pass
    return out


def read_into(reader: MultipartReader, size: int, complete: list[Parsed]) -> None:
    """Read every part to its end with reads of ``size``, appending each one that ended."""
    for part in reader.parts():
        got = bytearray()
        while chunk := part.read(size):
            got += chunk
        complete.append((part.name, part.filename, part.content_type, bytes(got)))


# --- strategies --------------------------------------------------------------------------------

boundaries = st.one_of(
    # Chromium: "----WebKitFormBoundary" and 16 letters or digits.
    st.text(string.ascii_letters + string.digits, min_size=16, max_size=16).map(
        lambda s: "----WebKitFormBoundary" + s
    ),
    # Firefox: "----geckoformboundary" and hex digits.
    st.text("0123456789abcdef", min_size=32, max_size=32).map(
        lambda s: "----geckoformboundary" + s
    ),
    # urllib3 and httpx: 32 hex digits.
    st.text("0123456789abcdef", min_size=32, max_size=32),
    # Anything RFC 2046 allows: 1 to 70 bchars, not ending in a space.
    st.text(string.ascii_letters + string.digits + "'()+_,-./:=? ", min_size=1, max_size=70).filter(
        lambda s: not s.endswith(" ")
    ),
)
names = st.text(
    alphabet=st.sampled_from(string.ascii_letters + string.digits + "_-.[] äöü文"),
    min_size=1,
    max_size=16,
).filter(lambda s: s.strip() == s)
filenames = st.text(st.characters(codec="utf-8"), max_size=30)
file_types = st.sampled_from(
    ["application/octet-stream", "text/plain", "image/jpeg", "application/pdf", "x/y+z"]
)


def delimiter_free(data: bytes, boundary: bytes) -> bool:
    """Whether ``data`` can be a part's content under ``boundary``: it must not contain CRLF
    "--" boundary followed by what makes a delimiter line (CR, LF, "-", white space) — including
    at its very end, where the real delimiter's CRLF follows. Browsers pick a random boundary
    so that this never happens; a body that breaks it is not the encoding of these fields."""
    pattern = b"\r\n--" + boundary
    extended = data + b"\r"
    at = data.find(pattern)
    while at >= 0:
        if extended[at + len(pattern) : at + len(pattern) + 1] in (b"\r", b"\n", b"-", b" ", b"\t"):
            return False
        at = data.find(pattern, at + 1)
    return True


def contents(boundary: str) -> st.SearchStrategy[bytes]:
    """Binary data, empty data, and data built of line breaks, dashes and pieces of the body's
    own boundary — even the whole boundary, followed by a character that keeps it from being a
    delimiter — so that the parser's look-behind is exercised at every chunk cut."""
    b = boundary.encode()
    pieces = [b"\r", b"\n", b"\r\n", b"-", b"--", b"\r\n--", b"\x00", b"x", b[:1], b[: len(b) // 2]]
    pieces += [b[:-1], b"\r\n--" + b[:-1], b"\r\n--" + b + b"x", b"--" + b + b"\r\n", b"\r\n\r\n"]
    return st.one_of(
        st.binary(max_size=2000),
        st.just(b""),
        st.lists(st.sampled_from(pieces), max_size=30).map(b"".join),
    ).filter(lambda data: delimiter_free(data, b))


def texts(boundary: str) -> st.SearchStrategy[bytes]:
    """A plain field's value: any text (NUL and line breaks included) as UTF-8."""
    return (
        st.one_of(
            st.text(st.characters(codec="utf-8"), max_size=200),
            contents(boundary).map(lambda b: b.decode("latin-1")),
        )
        .map(lambda s: s.encode("utf-8"))
        .filter(lambda data: delimiter_free(data, boundary.encode()))
    )


@st.composite
def forms(draw: st.DrawFn) -> tuple[str, list[Field]]:
    boundary = draw(boundaries, label="boundary")
    field = st.one_of(
        st.builds(Field, names, st.none(), st.just(""), texts(boundary)),
        st.builds(Field, names, filenames, file_types, contents(boundary)),
    )
    return boundary, draw(st.lists(field, max_size=6), label="fields")


# --- properties --------------------------------------------------------------------------------


@pytest.mark.parametrize("encoder", list(ENCODERS))
@PROPERTY
@given(form=forms(), data=st.data())
def test_reader_gives_back_exactly_what_the_encoder_wrote(
    encoder: str, form: tuple[str, list[Field]], data: st.DataObject
) -> None:
    """The boundary comes out of the Content-Type header as sent, and the body, cut into chunks
    at arbitrary points and read with arbitrary sizes, gives back every field's name, file name
    (as escaped on the wire), type and bytes, in order — nothing more, nothing less."""
    boundary, fields = form
    encoded = ENCODERS[encoder](fields, boundary)
    assert boundary_of(encoded.content_type) == boundary.encode()
    cuts = data.draw(st.lists(st.integers(0, len(encoded.body)), max_size=20), label="cuts")
    sizes = data.draw(st.lists(st.integers(1, 3000), min_size=1, max_size=4), label="sizes")
    chunks = split(encoded.body, cuts)
    assert read_all(feeder(chunks), boundary.encode(), sizes) == encoded.expected


@PROPERTY
@given(form=forms(), data=st.data())
def test_a_truncated_body_never_yields_a_partial_part_as_complete(
    form: tuple[str, list[Field]], data: st.DataObject
) -> None:
    """Cut anywhere before its closing delimiter, a body raises MalformedUpload; every part that
    reached its end before that (read returned b"") is an exact, whole field of the original,
    in order — a cut part is never presented as finished with a prefix of its data."""
    boundary, fields = form
    encoded = encode_browser(fields, boundary)
    # The body ends "--boundary--\r\n"; without the final CRLF the form is already complete.
    length = data.draw(st.integers(0, len(encoded.body) - 3), label="length")
    cuts = data.draw(st.lists(st.integers(0, length), max_size=10), label="cuts")
    size = data.draw(st.integers(1, 3000), label="size")
    reader = MultipartReader(feeder(split(encoded.body[:length], cuts)), boundary.encode())
    complete: list[Parsed] = []
    with pytest.raises(MalformedUpload):
        read_into(reader, size, complete)
    assert complete == encoded.expected[: len(complete)]


@PROPERTY
@given(form=forms(), limit=st.integers(1, 12_000), data=st.data())
def test_the_body_limit_holds_exactly(
    form: tuple[str, list[Field]], limit: int, data: st.DataObject
) -> None:
    """Read as POST /submit reads it (parts, then the rest of the body), a body of at most
    ``limit`` bytes parses completely and a longer one raises UploadTooLarge — never
    MalformedUpload, never a result."""
    boundary, fields = form
    encoded = encode_browser(fields, boundary)
    cuts = data.draw(st.lists(st.integers(0, len(encoded.body)), max_size=10), label="cuts")
    read = BodyLimit(feeder(split(encoded.body, cuts)), limit)
    if len(encoded.body) <= limit:
        assert read_all(read, boundary.encode(), [4096]) == encoded.expected
        assert read.received == len(encoded.body)
    else:
        with pytest.raises(UploadTooLarge):
            read_all(read, boundary.encode(), [4096])
        assert read.received > limit


@PROPERTY
@given(value=st.binary(max_size=600), limit=st.integers(0, 512), cuts=st.lists(st.integers(0, 700)))
def test_read_small_returns_a_field_within_its_limit_and_refuses_a_longer_one(
    value: bytes, limit: int, cuts: list[int]
) -> None:
    """Part.read_small(limit) gives a field of up to ``limit`` bytes whole and refuses a longer
    one with MalformedUpload, whatever the chunking (a token field is never truncated silently)."""
    encoded = encode_browser([Field("csrf_token", None, "", value)], "b0undary")
    part = next(MultipartReader(feeder(split(encoded.body, cuts)), b"b0undary").parts())
    if len(value) <= limit:
        assert part.read_small(limit) == value
    else:
        with pytest.raises(MalformedUpload):
            part.read_small(limit)
