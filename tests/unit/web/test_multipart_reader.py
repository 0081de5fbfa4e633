"""The pull-style multipart reader, fed from in-memory chunk lists: the same parts whatever the
chunking, bounded reads, strict refusal of anything malformed, and file names exactly as sent."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sealdrop.errors import MalformedUpload, UploadTooLarge
from sealdrop.web.multipart import (
    MAX_HEADER_BYTES,
    BodyLimit,
    MultipartReader,
    boundary_of,
)
from sealdrop.web.multipart import _raw_filename as raw_filename

BOUNDARY = b"----SealdropTestBoundary7f3a9c2e51d04b68"
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True)
class Field:
    name: str
    filename: str | None  # None: a plain field; else the file name as the browser typed it
    content_type: str | None  # None: no Content-Type header
    data: bytes


Parsed = tuple[str, str | None, str, bytes]


def whatwg_escape(filename: str) -> str:
    """How Chromium and Firefox put a file name into a quoted header value."""
    return filename.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def encode_part(field: Field, boundary: bytes = BOUNDARY) -> bytes:
    disposition = f'form-data; name="{field.name}"'
    if field.filename is not None:
        disposition += f'; filename="{whatwg_escape(field.filename)}"'
    head = b"--" + boundary + b"\r\nContent-Disposition: " + disposition.encode() + b"\r\n"
    if field.content_type is not None:
        head += b"Content-Type: " + field.content_type.encode("latin-1") + b"\r\n"
    return head + b"\r\n" + field.data + b"\r\n"


def encode_body(fields: Sequence[Field], boundary: bytes = BOUNDARY) -> bytes:
    return b"".join(encode_part(f, boundary) for f in fields) + b"--" + boundary + b"--\r\n"


def expected(fields: Sequence[Field]) -> list[Parsed]:
    return [
        (
            f.name,
            None if f.filename is None else whatwg_escape(f.filename),
            (f.content_type or "application/octet-stream")[:255],
            f.data,
        )
        for f in fields
    ]


def feeder(chunks: Iterable[bytes]) -> Callable[[], bytes]:
    """A next_chunk callable: each chunk in turn, then b"" for ever (the end of the body)."""
    iterator = iter(list(chunks))
    return lambda: next(iterator, b"")


def split(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    points = sorted({min(max(c, 0), len(data)) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


def parse(
    chunks: Iterable[bytes],
    read_sizes: Sequence[int] = (1 << 16,),
    boundary: bytes = BOUNDARY,
) -> list[Parsed]:
    """Every part, each read to its end with the given read sizes in rotation."""
    reader = MultipartReader(feeder(chunks), boundary)
    sizes = itertools.cycle(read_sizes)
    out: list[Parsed] = []
    for part in reader.parts():
        data = bytearray()
        while True:
            n = next(sizes)
            chunk = part.read(n)
            assert len(chunk) <= n
            if not chunk:
                break
            data += chunk
        out.append((part.name, part.filename, part.content_type, bytes(data)))
    return out


def consume(next_chunk: Callable[[], bytes], boundary: bytes = BOUNDARY) -> None:
    for part in MultipartReader(next_chunk, boundary).parts():
        part.drain()


# --- strategies --------------------------------------------------------------------------------

names = st.text(
    alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyzABCXYZ0123456789_-. äöü文"),
    min_size=1,
    max_size=20,
).filter(lambda s: s.strip() == s)
filenames = st.text(st.characters(blacklist_categories=["Cs"]), max_size=40)
content_types = st.one_of(
    st.none(),
    st.from_regex(r"[a-z]{1,12}/[a-z0-9.+-]{1,20}", fullmatch=True),
    st.just("application/" + "x" * 300),  # longer than the 255 characters kept
)
# Content built from fragments of the boundary and line breaks stresses the parser's look-behind
# (a delimiter is only a delimiter when all of it, CRLF included, arrives).
tricky = st.lists(
    st.sampled_from(
        [b"\r", b"\n", b"\r\n", b"-", b"--", b"\r\n--", BOUNDARY[:10], BOUNDARY[:-1], b"x", b"\x00"]
    ),
    max_size=40,
).map(b"".join)
contents = st.one_of(st.binary(max_size=3000), tricky)
fields_st = st.lists(
    st.builds(Field, names, st.one_of(st.none(), filenames), content_types, contents), max_size=6
)


# --- chunking does not matter ------------------------------------------------------------------


@FUZZ
@given(fields=fields_st, data=st.data())
def test_parts_are_the_same_whatever_the_chunking(fields: list[Field], data: st.DataObject) -> None:
    """Split at random points and read with random sizes, a body gives back exactly its parts."""
    body = encode_body(fields)
    cuts = data.draw(st.lists(st.integers(0, len(body)), max_size=30), label="cuts")
    read_sizes = data.draw(st.lists(st.integers(1, 5000), min_size=1, max_size=5), label="reads")
    assert parse(split(body, cuts), read_sizes) == expected(fields)


@settings(max_examples=40, deadline=None)
@given(
    fields=st.lists(
        st.builds(
            Field,
            names,
            st.one_of(st.none(), filenames),
            content_types,
            st.one_of(st.binary(max_size=200), tricky),
        ),
        max_size=3,
    )
)
def test_one_byte_chunks_give_the_same_parts(fields: list[Field]) -> None:
    """A body arriving one byte at a time (a slow Tor circuit) parses like a single chunk."""
    body = encode_body(fields)
    one_byte = [body[i : i + 1] for i in range(len(body))]
    assert parse(one_byte, read_sizes=[1]) == parse([body]) == expected(fields)


def test_read_never_returns_more_than_asked() -> None:
    """Part.read(n) gives at most n bytes even when a whole part arrives in one chunk."""
    content = bytes(range(256)) * 100
    body = encode_body([Field("f", "a.bin", None, content)])
    [part] = list(itertools.islice(MultipartReader(feeder([body]), BOUNDARY).parts(), 1))
    data = bytearray()
    while chunk := part.read(7):
        assert 0 < len(chunk) <= 7
        data += chunk
    assert bytes(data) == content


def test_read_all_and_read_zero() -> None:
    """read() and read(-1) return the rest of the part; read(0) returns b"" and loses nothing."""
    body = encode_body([Field("a", None, None, b"0123456789"), Field("b", None, None, b"xyz")])
    parts = MultipartReader(feeder([body]), BOUNDARY).parts()
    first = next(parts)
    assert first.read(0) == b""
    assert first.read(3) == b"012"
    assert first.read() == b"3456789"
    assert first.read() == b""
    second = next(parts)
    assert second.read(-1) == b"xyz"
    assert list(parts) == []


def test_unread_parts_are_skipped() -> None:
    """Parts left unread, or read only in part, are skipped; the next part is still exact."""
    fields = [Field(f"p{i}", None, None, bytes([i]) * (10_000 * i + 1)) for i in range(5)]
    body = encode_body(fields)
    chunks = split(body, range(0, len(body), 999))
    seen: list[tuple[str, bytes]] = []
    for index, part in enumerate(MultipartReader(feeder(chunks), BOUNDARY).parts()):
        if index % 2:
            seen.append((part.name, part.read()))
        elif index == 2:
            part.read(5)  # a partial read, then moving on
    assert seen == [("p1", fields[1].data), ("p3", fields[3].data)]


def test_an_earlier_part_reads_empty_once_the_reader_moved_on() -> None:
    """A part kept after the iteration moved past it gives b"", never the next part's bytes."""
    body = encode_body([Field("a", None, None, b"first"), Field("b", None, None, b"second")])
    parts = MultipartReader(feeder([body]), BOUNDARY).parts()
    first = next(parts)
    second = next(parts)
    assert first.read() == b""
    assert second.read() == b"second"


def test_read_small_refuses_a_field_over_its_limit() -> None:
    """read_small returns a field of up to `limit` bytes and refuses one byte more."""
    body = encode_body([Field("t", None, None, b"a" * 256), Field("u", None, None, b"b" * 257)])
    parts = MultipartReader(feeder(split(body, range(0, len(body), 10))), BOUNDARY).parts()
    assert next(parts).read_small(256) == b"a" * 256
    with pytest.raises(MalformedUpload):
        next(parts).read_small(256)


def test_body_with_no_parts_yields_nothing() -> None:
    """Just the closing delimiter is a valid, empty form."""
    assert parse([b"--" + BOUNDARY + b"--\r\n"]) == []


def test_epilogue_after_the_closing_delimiter_is_ignored() -> None:
    """Bytes after the closing delimiter do not become a part."""
    fields = [Field("a", None, None, b"x")]
    assert parse([encode_body(fields) + b"epilogue\r\n--junk"]) == expected(fields)


# --- truncated and malformed bodies ------------------------------------------------------------


@FUZZ
@given(fields=fields_st, data=st.data())
def test_truncated_body_is_malformed(fields: list[Field], data: st.DataObject) -> None:
    """A body cut anywhere before its closing delimiter is refused, however it was chunked."""
    body = encode_body(fields)
    # The last two bytes are the CRLF after "--boundary--": without them the form is complete.
    length = data.draw(st.integers(0, len(body) - 3), label="length")
    cuts = data.draw(st.lists(st.integers(0, length), max_size=10), label="cuts")
    with pytest.raises(MalformedUpload):
        parse(split(body[:length], cuts))


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"hello world",
        b'--wrongboundary\r\nContent-Disposition: form-data; name="a"\r\n\r\nx\r\n',
        b"preamble\r\n--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="a"\r\n\r\nx',
        b"--" + BOUNDARY + b"\r\nno colon in this header\r\n\r\nx\r\n--" + BOUNDARY + b"--\r\n",
        b"--" + BOUNDARY + b"XX\r\n",
        b"\x00" * 1000,
    ],
)
def test_garbage_is_malformed(body: bytes) -> None:
    """Bodies that are not multipart with our boundary raise MalformedUpload."""
    with pytest.raises(MalformedUpload):
        parse([body])


@pytest.mark.parametrize(
    "disposition",
    [
        None,  # no Content-Disposition header at all
        b"form-data",
        b'form-data; filename="a.txt"',
        b'attachment; name="files"',
        b'inline; name="files"',
    ],
)
def test_part_without_a_form_data_name_is_malformed(disposition: bytes | None) -> None:
    """Every part must be form-data with a name; anything else is refused."""
    head = b"--" + BOUNDARY + b"\r\n"
    if disposition is not None:
        head += b"Content-Disposition: " + disposition + b"\r\n"
    else:
        head += b"Content-Type: text/plain\r\n"
    body = head + b"\r\ndata\r\n--" + BOUNDARY + b"--\r\n"
    with pytest.raises(MalformedUpload, match="name"):
        parse([body])


def test_too_many_headers_in_a_part_is_malformed() -> None:
    """A part with more headers than MAX_HEADERS_PER_PART is refused."""
    extra = b"".join(b"X-Header-%d: v\r\n" % i for i in range(20))
    body = (
        b"--"
        + BOUNDARY
        + b'\r\nContent-Disposition: form-data; name="a"\r\n'
        + extra
        + b"\r\nx\r\n--"
        + BOUNDARY
        + b"--\r\n"
    )
    with pytest.raises(MalformedUpload):
        parse([body])


def test_header_over_the_limit_is_malformed() -> None:
    """A part header larger than MAX_HEADER_BYTES is refused rather than buffered."""
    fields = [Field("files", "n" * (MAX_HEADER_BYTES + 1), None, b"x")]
    with pytest.raises(MalformedUpload):
        parse(split(encode_body(fields), range(0, 200_000, 4096)))


@pytest.mark.parametrize("boundary", [b"", b"x" * 100_000, b"\x00", b"--"])
def test_odd_boundaries_never_raise_other_errors(boundary: bytes) -> None:
    """Whatever boundary the reader is given, it parses or raises MalformedUpload."""
    body = encode_body([Field("a", None, None, b"data")], boundary)
    with contextlib.suppress(MalformedUpload):
        consume(feeder([body]), boundary)


# --- fuzz --------------------------------------------------------------------------------------


@FUZZ
@given(body=st.binary(max_size=3000), cuts=st.lists(st.integers(0, 3000), max_size=8))
def test_arbitrary_bytes_raise_nothing_but_malformed_upload(body: bytes, cuts: list[int]) -> None:
    """Any byte string as a body either parses or raises MalformedUpload; nothing else."""
    with contextlib.suppress(MalformedUpload):
        parse(split(body, cuts))


@FUZZ
@given(fields=fields_st, data=st.data())
def test_damaged_valid_bodies_raise_nothing_but_malformed_upload(
    fields: list[Field], data: st.DataObject
) -> None:
    """A real body with bytes overwritten, inserted or deleted parses or is MalformedUpload."""
    body = bytearray(encode_body(fields))
    for _ in range(data.draw(st.integers(1, 5), label="edits")):
        at = data.draw(st.integers(0, len(body)), label="at")
        edit = data.draw(st.sampled_from(["set", "insert", "delete"]), label="edit")
        byte = data.draw(st.sampled_from([0, 10, 13, 34, 45, 58, 59, 255, 65]), label="byte")
        if edit == "insert":
            body.insert(at, byte)
        elif at < len(body):
            if edit == "set":
                body[at] = byte
            else:
                del body[at]
    cuts = data.draw(st.lists(st.integers(0, len(body)), max_size=8), label="cuts")
    with contextlib.suppress(MalformedUpload):
        parse(split(bytes(body), cuts), read_sizes=[data.draw(st.integers(1, 9000))])


@FUZZ
@given(body=st.binary(max_size=3000), limit=st.integers(1, 3000))
def test_arbitrary_bytes_under_a_limit_raise_only_input_errors(body: bytes, limit: int) -> None:
    """With a BodyLimit in front, the only errors are MalformedUpload and UploadTooLarge."""
    with contextlib.suppress(MalformedUpload, UploadTooLarge):
        consume(BodyLimit(feeder(split(body, range(0, len(body), 97))), limit))


# What an HTTP header can carry: Starlette decodes header bytes as latin-1.
header_text = st.text(st.characters(max_codepoint=0xFF), max_size=300)


@FUZZ
@given(content_type=st.one_of(header_text, st.from_regex(r"multipart/form-data;.{0,250}")))
def test_boundary_of_any_header_value_is_a_boundary_or_malformed(content_type: str) -> None:
    """For any header value boundary_of returns a non-empty boundary of at most 200 bytes or
    raises MalformedUpload."""
    try:
        boundary = boundary_of(content_type.encode("latin-1", "replace").decode("latin-1"))
    except MalformedUpload:
        return
    assert 0 < len(boundary) <= 200


@pytest.mark.parametrize("content_type", ["Ā", "multipart/form-data; boundary=Ā"])
def test_boundary_of_non_latin1_text_is_malformed(content_type: str) -> None:
    """A Content-Type with characters beyond latin-1 is MalformedUpload, like any bad value."""
    with pytest.raises(MalformedUpload):
        boundary_of(content_type)


# --- BodyLimit ---------------------------------------------------------------------------------


def test_body_limit_passes_exactly_the_limit() -> None:
    """Chunks adding up to exactly the limit pass through untouched, then the end."""
    chunks = [b"a" * 40, b"b" * 60, b"", b"c" * 0]
    limit = BodyLimit(feeder([b"a" * 40, b"b" * 60]), 100)
    assert [limit() for _ in range(4)] == [*chunks[:2], b"", b""]
    assert limit.received == 100


@pytest.mark.parametrize("chunk_sizes", [[101], [100, 1], [1] * 101, [50, 49, 2]])
def test_body_limit_refuses_the_chunk_that_crosses_it(chunk_sizes: list[int]) -> None:
    """UploadTooLarge comes with the chunk that passes the limit, not before, carrying it."""
    limit = BodyLimit(feeder(b"x" * n for n in chunk_sizes), 100)
    for n in chunk_sizes[:-1]:
        assert limit() == b"x" * n
    with pytest.raises(UploadTooLarge) as raised:
        limit()
    assert raised.value.limit == 100


def test_body_limit_error_passes_through_the_reader_unchanged() -> None:
    """Over the limit, the reader raises UploadTooLarge (a 413), not MalformedUpload (a 400)."""
    body = encode_body([Field("files", "a.bin", None, b"x" * 5000)])
    assert parse([body]) != []
    consume(BodyLimit(feeder([body]), len(body)))
    with pytest.raises(UploadTooLarge):
        consume(BodyLimit(feeder([body]), len(body) - 1))
    with pytest.raises(UploadTooLarge):
        consume(BodyLimit(feeder(split(body, range(0, len(body), 100))), 1000))


# --- file names --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "filename",
    [
        "report.pdf",
        "C:\\Users\\me\\Documents\\report.pdf",  # python-multipart alone would cut to the basename
        "..\\..\\windows\\system32",
        "../../etc/passwd",
        "trailing-backslash\\",
        "nul\x00inside",
        "tab\tand\x01control\x7f",
        "é😀 文件 ملف.docx",
        "x" * 10_000,
        "😀" * 10_000,  # 40,000 bytes of UTF-8 in one header
        "semi;colon; filename=other.txt",
        'quote"d',  # sent as quote%22d
        "%22already-escaped%22",
        "  spaces around  ",
        "",
    ],
)
def test_file_names_are_kept_exactly_as_sent(filename: str) -> None:
    """The file name is the quoted value byte for byte (WHATWG encoding: only ", CR, LF are
    escaped by the browser), decoded as UTF-8, never unescaped or cut to a basename."""
    fields = [Field("files", filename, "application/pdf", b"%PDF-1.7")]
    assert parse(split(encode_body(fields), range(0, 50_000, 1000))) == expected(fields)


def test_invalid_utf8_in_a_file_name_becomes_replacement_characters() -> None:
    """Undecodable bytes in a name become U+FFFD instead of failing the upload."""
    body = (
        b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="files"; '
        b'filename="a\xff\xfeb.txt"\r\n\r\nx\r\n--' + BOUNDARY + b"--\r\n"
    )
    assert parse([body]) == [("files", "a\ufffd\ufffdb.txt", "application/octet-stream", b"x")]


@pytest.mark.parametrize(
    ("disposition", "filename"),
    [
        (b'form-data; name="f"', None),
        (b'form-data; name="f"; filename=""', b""),
        (b'form-data; name="f"; filename="a;b"', b"a;b"),
        (b'form-data; name="f"; filename=bare.txt', b"bare.txt"),
        (b'form-data; name="f"; filename=bare.txt; x=y', b"bare.txt"),
        (b'form-data; name="f"; FileName = "spaced.txt"', b"spaced.txt"),
        (b'form-data; name="f"; filename="C:\\dir\\x"', b"C:\\dir\\x"),
        (b"form-data; name=\"f\"; filename*=UTF-8''x.txt", None),
    ],
)
def test_raw_filename_extracts_the_parameter_value(
    disposition: bytes, filename: bytes | None
) -> None:
    """_raw_filename takes quoted values literally and bare values up to the next ';'."""
    assert raw_filename(disposition) == filename


def test_content_type_defaults_and_is_capped() -> None:
    """A part without Content-Type is application/octet-stream; a long one keeps 255 chars."""
    fields = [
        Field("a", "x", None, b""),
        Field("b", "y", "text/plain", b""),
        Field("c", "z", "t/" + "x" * 400, b""),
    ]
    parsed = parse([encode_body(fields)])
    assert [p[2] for p in parsed] == ["application/octet-stream", "text/plain", ("t/" + "x" * 253)]


# --- boundary_of -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "boundary"),
    [
        ("multipart/form-data; boundary=abc", b"abc"),
        ("multipart/form-data;boundary=abc", b"abc"),
        ('multipart/form-data; boundary="quoted boundary"', b"quoted boundary"),
        ("multipart/form-data; charset=utf-8; boundary=zz", b"zz"),
        ("Multipart/Form-Data; boundary=abc", b"abc"),
        ("multipart/form-data; boundary=" + "b" * 200, b"b" * 200),
    ],
)
def test_boundary_of_accepts_multipart_form_data(content_type: str, boundary: bytes) -> None:
    """The boundary parameter of a multipart/form-data type is returned as bytes."""
    assert boundary_of(content_type) == boundary


@pytest.mark.parametrize(
    "content_type",
    [
        "",
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/json; boundary=abc",
        "multipart/mixed; boundary=abc",
        "multipart/form-data",
        "multipart/form-data; boundary=",
        'multipart/form-data; boundary=""',
        "multipart/form-data; boundary=" + "b" * 201,
        "multipart/form-data; boundary=" + "b" * 100_000,
    ],
)
def test_boundary_of_rejects_everything_else(content_type: str) -> None:
    """Other types, a missing or empty boundary and one over 200 bytes are MalformedUpload."""
    with pytest.raises(MalformedUpload):
        boundary_of(content_type)
