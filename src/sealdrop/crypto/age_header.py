"""The age v1 header, read strictly as C2SP age specifies it (the decrypting side).

    header   = "age-encryption.org/v1" LF 1*stanza "--- " 43base64char LF
    stanza   = "-> " argument *(SP argument) LF *full-line final-line
    argument = 1*VCHAR;  full-line = 64base64char LF;  final-line = *63base64char LF

Base64 is unpadded and must be canonical (RFC 4648 §3.5): a decoder that accepted two spellings
of one value would make the header malleable, and the MAC is over the spelling. Every deviation
is a MalformedHeader, including CRLF line ends and padding. An scrypt stanza must be alone (the
spec: a passphrase file promises the passphrase authenticated it).

The header is read from the stream a line at a time, bounded (``MAX_HEADER``), so a hostile file
cannot make the reader buffer without end. Pure: values and the stream it is given.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sealdrop.errors import HeaderMacMismatch, MalformedHeader

__all__ = [
    "INTRO",
    "MAX_HEADER",
    "Header",
    "Stanza",
    "b64decode_canonical",
    "b64encode",
    "hkdf32",
    "read_header",
]

INTRO = b"age-encryption.org/v1\n"
# Far above any real header (an X25519 stanza is ~110 bytes, a hybrid one ~1,600), far below
# anything that would matter for memory.
MAX_HEADER = 1024 * 1024
_COLUMNS = 64
_MAC_LEN = 32
_B64_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def b64encode(data: bytes) -> bytes:
    """Unpadded standard base64, as age writes it."""
    return base64.b64encode(data).rstrip(b"=")


def b64decode_canonical(text: bytes) -> bytes:
    """Decode unpadded standard base64; MalformedHeader unless it is the canonical spelling."""
    if not set(text) <= _B64_ALPHABET or len(text) % 4 == 1:
        raise MalformedHeader("age header: invalid base64")
    try:
        data = base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
    except binascii.Error:
        raise MalformedHeader("age header: invalid base64") from None
    # Non-canonical spellings set unused low bits in the last character; re-encoding shows it.
    if b64encode(data) != text:
        raise MalformedHeader("age header: non-canonical base64")
    return data


def hkdf32(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    """HKDF-SHA-256 with a 32-byte output, as every age key derivation uses."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


@dataclass(frozen=True, slots=True)
class Stanza:
    """One recipient stanza: its arguments (the first is the type) and its decoded body."""

    args: tuple[bytes, ...]
    body: bytes


@dataclass(frozen=True, slots=True)
class Header:
    """A parsed header: the stanzas, the bytes the MAC covers, the MAC, and what followed it."""

    stanzas: tuple[Stanza, ...]
    mac_input: bytes  # from the version line through "---"
    mac: bytes
    rest: bytes  # bytes already read past the header: the start of the payload

    def verify_mac(self, file_key: bytes) -> None:
        """HeaderMacMismatch unless the MAC verifies under ``file_key``."""
        key = hkdf32(file_key, b"", b"header")
        expected = hmac.new(key, self.mac_input, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, self.mac):
            raise HeaderMacMismatch("age header MAC does not verify")


class _LineReader:
    """Reads LF-terminated lines from a stream, never holding more than MAX_HEADER bytes."""

    def __init__(self, read: Callable[[int], bytes]) -> None:
        self._read = read
        self._buffer = bytearray()
        self._consumed = 0
        self._eof = False

    def line(self) -> bytes:
        """The next line, LF included; MalformedHeader at the end of the stream or the bound."""
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                line = bytes(self._buffer[: end + 1])
                del self._buffer[: end + 1]
                self._consumed += len(line)
                if self._consumed > MAX_HEADER:
                    raise MalformedHeader("age header too long")
                return line
            if self._eof or self._consumed + len(self._buffer) > MAX_HEADER:
                raise MalformedHeader("age header truncated or too long")
            chunk = self._read(16 * 1024)
            if not chunk:
                self._eof = True
            self._buffer += chunk

    def rest(self) -> bytes:
        return bytes(self._buffer)


def _arguments(line: bytes) -> tuple[bytes, ...]:
    args = tuple(line[3:-1].split(b" "))
    # At least one argument; each 1*VCHAR (so no empty argument from doubled or trailing spaces).
    if not args or any(not arg or not all(33 <= c <= 126 for c in arg) for arg in args):
        raise MalformedHeader("age header: malformed stanza arguments")
    return args


def _body(reader: _LineReader, lines: list[bytes]) -> bytes:
    encoded = bytearray()
    while True:
        line = reader.line()
        lines.append(line)
        content = line[:-1]
        if len(content) > _COLUMNS:
            raise MalformedHeader("age header: stanza body line longer than 64 columns")
        encoded += content
        if len(content) < _COLUMNS:  # the final, short line (possibly empty) ends the stanza
            return b64decode_canonical(bytes(encoded))


def read_header(read: Callable[[int], bytes]) -> Header:
    """Parse the header at the start of the stream whose ``read(n)`` is ``read``.

    Raises MalformedHeader for anything the grammar above does not allow.
    """
    reader = _LineReader(read)
    lines = [reader.line()]
    if lines[0] != INTRO:
        raise MalformedHeader("not an age v1 file")
    stanzas: list[Stanza] = []
    while True:
        line = reader.line()
        if line.startswith(b"-> "):
            lines.append(line)
            args = _arguments(line)
            stanzas.append(Stanza(args, _body(reader, lines)))
        elif line.startswith(b"---"):
            break
        else:
            raise MalformedHeader("age header: unexpected line")
    # "--- " + 43 base64 characters + LF, nothing else (no extra or trailing space).
    if not stanzas or len(line) != 4 + 43 + 1 or line[3:4] != b" ":
        raise MalformedHeader("age header: malformed MAC line")
    mac = b64decode_canonical(line[4:-1])
    if len(mac) != _MAC_LEN:  # pragma: no cover - 43 canonical characters are always 32 bytes
        raise MalformedHeader("age header: malformed MAC")
    if any(s.args[0] == b"scrypt" for s in stanzas) and len(stanzas) != 1:
        raise MalformedHeader("age header: an scrypt stanza must be the only one")
    return Header(tuple(stanzas), b"".join(lines) + b"---", mac, reader.rest())
