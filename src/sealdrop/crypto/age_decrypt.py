"""Our own age v1 decryptor: X25519 and post-quantum ``mlkem768x25519`` stanzas, STREAM payload.

Why ours: pyrage (rage) does not know the hybrid stanza, and no Python library does. The format is
small and fully specified (C2SP age); every primitive is pyca/cryptography's (X25519, the X-Wing
HPKE suite, HKDF, HMAC, ChaCha20-Poly1305). The rules below are the spec's, each checked by the
C2SP CCTV vectors (tests/unit/crypto/test_age_vectors.py):

- a stanza of our types with the wrong argument count, a non-canonical or wrong-length argument,
  a body that is not exactly 32 bytes, or (X25519) an all-zero shared secret is a MalformedHeader;
  a stanza that simply does not open is skipped (another identity or stanza may);
- the header MAC is checked under the unwrapped file key before any payload byte is released;
- the payload is 64 KiB ChaCha20-Poly1305 chunks with an 11-byte counter and a final-chunk flag;
  the last chunk is the one at the end of the stream, so truncation at a chunk boundary, a
  missing final chunk, data after it, or an empty final chunk after others all fail.

Streaming: one chunk of ciphertext and one of plaintext in memory at a time. Chunks are written as
they verify, so on DamagedPayload the caller must discard what was written (as with pyrage).
Scrypt (passphrase) stanzas are not opened here: passphrase files are pyrage's
(``crypto/passphrase.py``); the header parser still enforces that one is alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from sealdrop.crypto.age_header import Header, Stanza, b64decode_canonical, hkdf32, read_header
from sealdrop.crypto.hybrid_keys import HYBRID_ENC_LEN, HYBRID_INFO, HYBRID_SUITE, HybridIdentity
from sealdrop.crypto.keys import Identity, X25519Identity, identity_scalar
from sealdrop.errors import DamagedPayload, MalformedHeader, NoIdentityMatches

__all__ = ["decrypt_stream"]

CHUNK = 64 * 1024
TAG = 16
_NONCE = 16
_FILE_KEY = 16
_WRAPPED = _FILE_KEY + TAG  # every native stanza body: the sealed 16-byte file key
X25519_INFO = b"age-encryption.org/v1/X25519"


def _checked(stanza: Stanza, arg_len: int) -> bytes:
    """The stanza's one argument after the type, decoded; MalformedHeader if it breaks the rules."""
    if len(stanza.args) != 2:
        raise MalformedHeader(f"age {stanza.args[0]!r} stanza: wrong number of arguments")
    value = b64decode_canonical(stanza.args[1])
    if len(value) != arg_len:
        raise MalformedHeader(f"age {stanza.args[0]!r} stanza: wrong argument length")
    # Checked before any decryption, to avoid partitioning oracles (the spec's MUST).
    if len(stanza.body) != _WRAPPED:
        raise MalformedHeader(f"age {stanza.args[0]!r} stanza: body is not 32 bytes")
    return value


def _unwrap_x25519(stanza: Stanza, identity: X25519Identity) -> bytes | None:
    share = _checked(stanza, 32)
    secret_key = X25519PrivateKey.from_private_bytes(identity_scalar(identity))
    ours = secret_key.public_key().public_bytes_raw()
    try:
        shared = secret_key.exchange(X25519PublicKey.from_public_bytes(share))
    except ValueError:  # OpenSSL refuses an all-zero shared secret (a low-order share)
        raise MalformedHeader("age X25519 stanza: low-order share") from None
    wrap_key = hkdf32(shared, share + ours, X25519_INFO)
    try:
        return ChaCha20Poly1305(wrap_key).decrypt(bytes(12), stanza.body, None)
    except InvalidTag:
        return None


def _unwrap_hybrid(stanza: Stanza, identity: HybridIdentity) -> bytes | None:
    enc = _checked(stanza, HYBRID_ENC_LEN)
    if identity.refuses_share(enc[-32:]):
        raise MalformedHeader("age mlkem768x25519 stanza: low-order X25519 share")
    try:
        return HYBRID_SUITE.decrypt(enc + stanza.body, identity.hpke_key(), info=HYBRID_INFO)
    except InvalidTag:
        return None


def _file_key(header: Header, identities: Sequence[Identity]) -> bytes:
    for identity in identities:
        for stanza in header.stanzas:
            # Only the exact type names are ours ("x25519" or "MLKEM768X25519" are other types).
            if stanza.args[0] == b"X25519" and isinstance(identity, X25519Identity):
                file_key = _unwrap_x25519(stanza, identity)
            elif stanza.args[0] == b"mlkem768x25519" and isinstance(identity, HybridIdentity):
                file_key = _unwrap_hybrid(stanza, identity)
            else:
                continue
            if file_key is not None:
                return file_key
    raise NoIdentityMatches("no identity matches any recipient stanza of this age file")


class _Payload:
    """Reads the payload in pieces of at most one encrypted chunk."""

    def __init__(self, read: Callable[[int], bytes], start: bytes) -> None:
        self._read = read
        self._buffer = bytearray(start)
        self._eof = False

    def take(self, size: int) -> bytes:
        """Up to ``size`` bytes; fewer only at the end of the stream."""
        while len(self._buffer) < size and not self._eof:
            data = self._read(size - len(self._buffer))
            if data:
                self._buffer += data
            else:
                self._eof = True
        taken = bytes(self._buffer[:size])
        del self._buffer[:size]
        return taken


def _open_chunk(aead: ChaCha20Poly1305, index: int, chunk: bytes) -> tuple[bytes, bool]:
    """The plaintext of chunk ``index`` and whether it is the final one.

    A short chunk can only be the final one. A full one is tried as a middle chunk, then as the
    final one: a final chunk may be exactly 64 KiB (the same rule as age's own reader).
    """
    if len(chunk) < TAG:
        raise DamagedPayload("age payload truncated: no final chunk")
    if index >= 1 << 88:  # pragma: no cover - 2^88 chunks
        raise DamagedPayload("age payload too long")
    counter = index.to_bytes(11, "big")
    if len(chunk) == CHUNK + TAG:
        try:
            return aead.decrypt(counter + b"\x00", chunk, None), False
        except InvalidTag:
            pass
    try:
        return aead.decrypt(counter + b"\x01", chunk, None), True
    except InvalidTag:
        raise DamagedPayload("age payload chunk does not authenticate") from None


def decrypt_stream(
    read: Callable[[int], bytes], write: Callable[[bytes], object], identities: Sequence[Identity]
) -> None:
    """Decrypt the age file read by ``read`` into ``write``, with any of ``identities``.

    Raises MalformedHeader, NoIdentityMatches, HeaderMacMismatch or DamagedPayload (all
    DecryptionError). Exceptions from ``read``/``write`` propagate as themselves.
    """
    header = read_header(read)
    file_key = _file_key(header, identities)
    header.verify_mac(file_key)
    payload = _Payload(read, header.rest)
    nonce = payload.take(_NONCE)
    if len(nonce) != _NONCE:
        raise MalformedHeader("age file: payload nonce missing or short")
    aead = ChaCha20Poly1305(hkdf32(file_key, nonce, b"payload"))
    index = 0
    while True:
        plaintext, last = _open_chunk(aead, index, payload.take(CHUNK + TAG))
        if last and not plaintext and index > 0:
            raise DamagedPayload("age payload: empty final chunk after others")
        write(plaintext)
        if last:
            if payload.take(1):
                raise DamagedPayload("age payload: data after the final chunk")
            return
        index += 1
