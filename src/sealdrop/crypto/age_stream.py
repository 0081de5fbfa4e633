"""An age v1 file written across many requests: the header now, the payload chunk by chunk later.

Also the one writer of age headers for post-quantum hybrid recipients (``mlkem768x25519`` stanzas,
HPKE with pyca's X-Wing KEM), which no library writes: ``age_encrypt.py`` streams a whole file
through ``new_stream`` and ``encrypt_chunk``.

Why not ``envelope``: pyrage (like every age library) encrypts one stream in one call and keeps
its state (the file key, the chunk counter) inside that call. A resumable upload arrives over many
requests, possibly across a restart of the server, so the state must leave the process between
them, sealed under a key only the source's cookie holds (``services/resumable.py``). No library
exposes that state, so this module composes the format from pyca/cryptography's primitives,
exactly as C2SP age v1 specifies it (X25519 or mlkem768x25519 recipient stanzas, HKDF-SHA256,
HMAC-SHA256 header MAC, STREAM of 64 KiB ChaCha20-Poly1305 chunks). It writes nothing that age does
not read back: tests decrypt its X25519 output with the stock ``age`` binary and with pyrage, its
hybrid output with our decryptor and with typage (invariant 5; stock age reads hybrid from 1.3).

Pure: values in, bytes out. Each chunk is encrypted from the plaintext chunk in hand only.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass

from bech32 import bech32_decode, convertbits
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from sealdrop.crypto.age_header import INTRO, b64encode, hkdf32
from sealdrop.crypto.hybrid_keys import HYBRID_ENC_LEN, HYBRID_INFO, HYBRID_SUITE, HybridRecipient
from sealdrop.crypto.keys import Recipient, require_one_kind
from sealdrop.errors import InvalidKeyError

__all__ = ["CHUNK", "TAG", "StreamKeys", "ciphertext_size", "encrypt_chunk", "new_stream"]

CHUNK = 64 * 1024  # age STREAM plaintext chunk size
TAG = 16  # Poly1305 tag per chunk
_NONCE = 16  # payload nonce after the header
_FILE_KEY = 16
_X25519_INFO = b"age-encryption.org/v1/X25519"
_MAX_CHUNKS = 1 << 88  # an 11-byte counter


@dataclass(frozen=True, slots=True)
class StreamKeys:
    """What continuing the stream needs: the payload key. Secret: sealed whenever stored."""

    payload_key: bytes


def _recipient_bytes(recipient: Recipient) -> bytes:
    hrp, data = bech32_decode(str(recipient))
    raw = None if data is None else convertbits(data, 5, 8, False)
    if hrp != "age" or raw is None or len(raw) != 32:
        raise InvalidKeyError("not an age X25519 recipient")
    return bytes(raw)


def _stanza_lines(args: list[bytes], body: bytes) -> bytes:
    encoded = b64encode(body)
    # Body lines are 64 columns, the last one shorter (empty when the body fills whole lines).
    lines = [encoded[i : i + 64] for i in range(0, len(encoded), 64)]
    if not lines or len(lines[-1]) == 64:
        lines.append(b"")
    return b"-> " + b" ".join(args) + b"\n" + b"\n".join(lines) + b"\n"


def _stanza(file_key: bytes, recipient: Recipient) -> bytes:
    if isinstance(recipient, HybridRecipient):
        # HPKE SealBase: enc (1,120 bytes) ‖ the sealed file key (32 bytes).
        sealed = HYBRID_SUITE.encrypt(file_key, recipient.hpke_key(), info=HYBRID_INFO)
        enc, body = sealed[:HYBRID_ENC_LEN], sealed[HYBRID_ENC_LEN:]
        return _stanza_lines([b"mlkem768x25519", b64encode(enc)], body)
    their = _recipient_bytes(recipient)
    ephemeral = X25519PrivateKey.generate()
    share = ephemeral.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    secret = ephemeral.exchange(X25519PublicKey.from_public_bytes(their))
    if secret == bytes(32):  # the spec: a low-order point must be refused
        raise InvalidKeyError("age X25519 recipient is a low-order point")
    wrap_key = hkdf32(secret, share + their, _X25519_INFO)
    body = ChaCha20Poly1305(wrap_key).encrypt(bytes(12), file_key, None)
    return _stanza_lines([b"X25519", b64encode(share)], body)


def new_stream(recipients: list[Recipient]) -> tuple[bytes, StreamKeys]:
    """A fresh file key: the age header and payload nonce to write first, and the payload key.

    The file key itself is dropped here: only the payload key is needed to go on, and nothing
    that the server keeps can re-wrap the file to another recipient.
    """
    # No recipient (ValueError) or a mix of hybrid and X25519 ones (MixedRecipientKinds): refused.
    require_one_kind(recipients)
    file_key = os.urandom(_FILE_KEY)
    header = INTRO + b"".join(_stanza(file_key, r) for r in recipients) + b"---"
    mac = hmac.new(hkdf32(file_key, b"", b"header"), header, hashlib.sha256).digest()
    nonce = os.urandom(_NONCE)
    payload_key = hkdf32(file_key, nonce, b"payload")
    return header + b" " + b64encode(mac) + b"\n" + nonce, StreamKeys(payload_key)


def encrypt_chunk(keys: StreamKeys, index: int, plaintext: bytes, last: bool) -> bytes:
    """Chunk ``index`` of the payload. Every chunk but the last holds exactly ``CHUNK`` bytes; the
    last holds 1..CHUNK (0 only if the whole file is empty)."""
    if not 0 <= index < _MAX_CHUNKS:
        raise ValueError("chunk counter out of range")
    if len(plaintext) > CHUNK or (not last and len(plaintext) != CHUNK):
        raise ValueError("only the last chunk may be shorter than 64 KiB")
    if last and not plaintext and index != 0:
        raise ValueError("an empty last chunk is allowed only for an empty file")
    nonce = index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")
    return ChaCha20Poly1305(keys.payload_key).encrypt(nonce, plaintext, None)


def ciphertext_size(header_len: int, plaintext_len: int) -> int:
    """How long the file is once ``plaintext_len`` bytes are encrypted in whole chunks."""
    # An empty file still has one (empty, final) chunk.
    chunks = max(1, -(-plaintext_len // CHUNK))
    return header_len + chunks * TAG + plaintext_len
