"""Encrypt and decrypt age files (C2SP age v1) — the whole crypto API most callers need.

Every stored ciphertext is a plain age file, so the stock ``age`` binary with a journalist's
identity can always open it (invariant 5; files to post-quantum hybrid recipients need age ≥ 1.3).
Encryption streams: no more than a chunk or two of plaintext is ever in memory, whatever the size
of the upload (invariant 1).

Two engines, chosen by the kind of key. X25519 only: pyrage (rage), a well-kept library, as
before. Any post-quantum hybrid key (``age1pq1…`` / ``AGE-SECRET-KEY-PQ-1…``), which pyrage does not
know: our own composition of pyca primitives (``age_encrypt.py``, ``age_decrypt.py``), checked
against the C2SP CCTV vectors and typage. A file is never encrypted to both kinds
(MixedRecipientKinds): the classic key would be the weak door of a "post-quantum" file.

Nothing here starts a process or a thread (crypto is pure): encrypting a large file with the
stock ``age`` program in a child process is ``services/age_child.py``.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Protocol

import pyrage

from sealdrop.crypto import age_decrypt, age_encrypt
from sealdrop.crypto.age_header import INTRO, MAX_HEADER
from sealdrop.crypto.keys import Identity, Recipient, is_post_quantum, require_one_kind
from sealdrop.errors import CryptoError, DecryptionError

__all__ = [
    "AGE_INTRO",
    "Readable",
    "Writable",
    "decrypt",
    "decrypt_bytes",
    "encrypt",
    "encrypt_bytes",
    "looks_like_age",
]

# The first line of every binary age v1 file.
AGE_INTRO = INTRO


class Readable(Protocol):
    """A source stream: ``read(n)`` returns up to n bytes, and b"" at the end."""

    def read(self, size: int, /) -> bytes: ...


class Writable(Protocol):
    """A sink stream: ``write(data)`` accepts the bytes (returning a count or None)."""

    def write(self, data: bytes, /) -> object: ...


class _GuardedStreams:
    """Hands the caller's streams to pyrage and keeps the first exception either of them raises.

    pyrage converts an exception raised inside ``read``/``write`` into its own error carrying only
    the message (``EncryptError('ClientDisconnected: …')``; on decrypt sometimes a bare OSError),
    even for KeyboardInterrupt. The caller's own exception — ClientDisconnected, UploadTooLarge, a
    full disk — must reach the caller as itself, not as a crypto failure, so we record it here and
    re-raise that very object once pyrage returns.
    """

    def __init__(self, src: Readable, dst: Writable) -> None:
        self._src = src
        self._dst = dst
        self._surplus = memoryview(b"")
        self.error: BaseException | None = None

    def read(self, size: int) -> bytes:
        if self.error is not None:
            raise self.error
        if self._surplus:
            chunk, self._surplus = bytes(self._surplus[:size]), self._surplus[size:]
            return chunk
        try:
            data = self._src.read(size)
            # pyrage rejects memoryviews; a bytearray is copied too, as the reader may reuse it.
            chunk = data if isinstance(data, bytes) else bytes(data)
        except BaseException as exc:  # even KeyboardInterrupt: pyrage would disguise it too
            self.error = exc
            raise
        if len(chunk) > size:
            # A reader that hands back its own, larger chunks would make pyrage fail with "failed
            # to write whole buffer"; keep the rest for the next calls instead.
            chunk, self._surplus = chunk[:size], memoryview(chunk)[size:]
        return chunk

    def write(self, data: bytes) -> int:
        if self.error is not None:
            raise self.error
        try:
            written = self._dst.write(data)
        except BaseException as exc:  # even KeyboardInterrupt: pyrage would disguise it too
            self.error = exc
            raise
        # pyrage wants a byte count; file-likes that return None have written everything.
        return written if isinstance(written, int) else len(data)

    def run(
        self, operation: Callable[..., object], keys: list[Recipient] | list[Identity]
    ) -> BaseException | None:
        """Run a pyrage stream operation; re-raise the caller's stream error, return pyrage's."""
        failure: BaseException | None = None
        try:
            # One object serves as both reader and writer: pyrage only calls .read / .write.
            operation(self, self, keys)
        except BaseException as exc:
            failure = exc
        # Raised outside the except block, so the caller's exception keeps its own __cause__ and
        # __context__ instead of being chained onto pyrage's copy. Checked on success too: should
        # pyrage ever swallow a stream error, the output could not be trusted to be complete.
        if self.error is not None:
            raise self.error
        return failure


def encrypt(src: Readable, dst: Writable, recipients: Sequence[Recipient]) -> None:
    """Stream ``src`` to ``dst`` as an age file that any of ``recipients`` can decrypt.

    Memory use is constant in the size of ``src``. An exception raised by ``src.read`` or
    ``dst.write`` propagates unchanged (the same object). ``dst`` is neither flushed nor closed:
    on any exception it holds an incomplete file, which the caller must discard.
    """
    targets = _require_recipients(recipients)
    if is_post_quantum(targets[0]):
        age_encrypt.encrypt_stream(src.read, dst.write, targets)
        return
    failure = _GuardedStreams(src, dst).run(pyrage.encrypt_io, targets)
    if isinstance(failure, pyrage.EncryptError | OSError):
        raise CryptoError(f"age encryption failed: {failure}") from None
    if failure is not None:
        raise failure


def decrypt(src: Readable, dst: Writable, identities: Sequence[Identity]) -> None:
    """Stream the age file ``src`` to ``dst`` as plaintext, using any of ``identities``.

    Raises DecryptionError if no identity opens the file or the ciphertext is altered or truncated.
    age authenticates each 64 KiB chunk as it goes, so ``dst`` may already have received the
    chunks before the damaged one: on DecryptionError the caller must discard everything written.
    An exception raised by ``src.read`` or ``dst.write`` propagates unchanged.
    """
    keys = _require_identities(identities)
    if any(is_post_quantum(key) for key in keys):
        # Ours reads both stanza kinds, so a keystore with old X25519 and new hybrid identities
        # opens files of either kind in one call.
        age_decrypt.decrypt_stream(src.read, dst.write, keys)
        return
    failure = _GuardedStreams(src, dst).run(pyrage.decrypt_io, keys)
    # pyrage reports a damaged chunk as a bare OSError("decryption error").
    if isinstance(failure, pyrage.DecryptError | OSError):
        raise DecryptionError(f"age decryption failed: {failure}") from None
    if failure is not None:
        raise failure


def encrypt_bytes(data: bytes, recipients: Sequence[Recipient]) -> bytes:
    """``data`` as an age file that any of ``recipients`` can decrypt."""
    targets = _require_recipients(recipients)
    if is_post_quantum(targets[0]):
        sink = io.BytesIO()
        age_encrypt.encrypt_stream(io.BytesIO(data).read, sink.write, targets)
        return sink.getvalue()
    try:
        ciphertext: bytes = pyrage.encrypt(data, targets)
    except pyrage.EncryptError as exc:
        raise CryptoError(f"age encryption failed: {exc}") from None
    return ciphertext


def decrypt_bytes(data: bytes, identities: Sequence[Identity]) -> bytes:
    """The plaintext of the age file ``data``; DecryptionError if it does not open or verify."""
    keys = _require_identities(identities)
    if any(is_post_quantum(key) for key in keys):
        sink = io.BytesIO()
        age_decrypt.decrypt_stream(io.BytesIO(data).read, sink.write, keys)
        return sink.getvalue()
    try:
        plaintext: bytes = pyrage.decrypt(data, keys)
    except (pyrage.DecryptError, OSError) as exc:
        raise DecryptionError(f"age decryption failed: {exc}") from None
    return plaintext


def looks_like_age(header: bytes) -> bool:
    """Whether ``header`` (the first bytes of a file) starts like a binary age v1 file.

    A cheap sanity check, not a validation: only decryption proves a file is intact.
    """
    return header.startswith(AGE_INTRO)


# C2SP age v1 header grammar, enough to tell a well-formed file from anything else without a key:
#   intro line; one or more stanzas "-> type args…" each followed by base64 body lines (every line
#   but the last is 64 columns, the last shorter); the MAC line "--- " + 43 base64 characters;
#   then the payload: a 16-byte nonce and at least one 16-byte-tagged chunk.
# The same bound as our reader's (age_header.MAX_HEADER): a hybrid stanza is 1,557 bytes, so
# 64 KiB, the bound before hybrid keys, would have held only 41 recipients.
_MAX_HEADER = MAX_HEADER
_B64 = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
_MIN_PAYLOAD = 16 + 16


def check_age_structure(data: bytes) -> str | None:
    """Why ``data`` is not a well-formed binary age v1 file, or None if it is.

    A structural check of the header (as the format specifies it) and of the payload's minimum
    size; it cannot prove the file decrypts, which only the recipient's key can.
    """
    if not data.startswith(AGE_INTRO):
        return "not an age v1 file"
    end = data.find(b"\n--- ", 0, _MAX_HEADER)
    if end < 0:
        return "no age header MAC line"
    mac_end = data.find(b"\n", end + 1)
    if mac_end < 0:
        return "truncated age header"
    mac = data[end + 5 : mac_end]
    if len(mac) != 43 or not set(mac) <= _B64:
        return "malformed age header MAC"
    lines = data[len(AGE_INTRO) : end].split(b"\n")
    stanzas = 0
    expect_body = False
    for line in lines:
        if line.startswith(b"-> "):
            if expect_body:
                return "age stanza without a final short body line"
            args = line[3:].split(b" ")
            if not args or any(not arg or not all(33 <= c <= 126 for c in arg) for arg in args):
                return "malformed age stanza"
            stanzas += 1
            expect_body = True
        elif expect_body:
            if len(line) > 64 or not set(line) <= _B64:
                return "malformed age stanza body"
            expect_body = len(line) == 64
        else:
            return "unexpected line in age header"
    if stanzas == 0 or expect_body:
        return "age header without complete recipient stanzas"
    if len(data) - (mac_end + 1) < _MIN_PAYLOAD:
        return "age payload too short"
    return None


def _require_recipients(recipients: Sequence[Recipient]) -> list[Recipient]:
    # Checked before any byte is read: encrypting to nobody would make data nobody can ever open,
    # and a mix of hybrid and X25519 recipients would leave the classic key as the weak door.
    targets = list(recipients)
    require_one_kind(targets)
    return targets


def _require_identities(identities: Sequence[Identity]) -> list[Identity]:
    keys = list(identities)
    if not keys:
        raise ValueError("decryption needs at least one identity")
    return keys
