"""Decrypting cached items in memory and sealing replies, on the journalist's machine.

Nothing here writes to disk: plaintext lives only in memory (and reaches a file only through
``export``).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import BinaryIO

from sealdrop.crypto.envelope import decrypt, decrypt_bytes, encrypt_bytes
from sealdrop.crypto.keys import Identity, Recipient, parse_recipient
from sealdrop.errors import (
    DecryptionError,
    NotCached,
    ReaderError,
    ServerUnreachable,
    TokenExpired,
)
from sealdrop.reader.cache import CiphertextCache
from sealdrop.reader.store import CacheState, LocalItem

__all__ = ["DecryptProgress", "FileInfo", "decrypt_item", "file_info", "seal_reply"]

# A message or reply is text; a file is decrypted whole into memory for export.
_UNNAMED = "submission"

DecryptProgress = Callable[[int, int], None]
"""Called as decryption goes: bytes of ciphertext read so far, bytes of ciphertext in all."""


@dataclass(frozen=True)
class FileInfo:
    """What a file's metadata age file says: the name the source's browser sent, type, size."""

    name: str
    content_type: str
    size: int


def decrypt_item(
    cache: CiphertextCache,
    item: LocalItem,
    identity: Identity,
    progress: DecryptProgress | None = None,
) -> bytes:
    """The plaintext of a cached item, in memory. DecryptionError if this identity cannot open
    it or the ciphertext was altered; NotCached if there is no verified copy.

    The ciphertext is streamed from the cache file rather than read whole, so ``progress`` (if
    given) follows the real work, after every block read. The plaintext still goes to memory
    only: a partial result of a failed decryption is dropped with the buffer.
    """
    if item.cache is not CacheState.CACHED or not cache.has(item.id):
        state = "corrupted on the server" if item.cache is CacheState.CORRUPTED else "not synced"
        raise NotCached(f"item {item.id} is {state}: run `sealdrop reader sync`")
    plaintext = io.BytesIO()
    with cache.path(item.id).open("rb") as stream:
        source = stream if progress is None else _Counted(stream, progress)
        decrypt(source, plaintext, [identity])
    return plaintext.getvalue()


class _Counted:
    """A file read for decryption that reports how much of it has been read."""

    def __init__(self, stream: BinaryIO, progress: DecryptProgress) -> None:
        self._stream = stream
        self._progress = progress
        # The size of the open file itself: the item's listed size is what the server claimed.
        self._total = os.fstat(stream.fileno()).st_size
        self._done = 0

    def read(self, size: int, /) -> bytes:
        chunk = self._stream.read(size)
        if chunk:
            self._done += len(chunk)
            self._progress(self._done, self._total)
        return chunk


def file_info(item: LocalItem, identity: Identity) -> FileInfo:
    """The decrypted metadata of a file item (its name is untrusted: escape it when shown)."""
    if item.metadata is None:
        return FileInfo(_UNNAMED, "application/octet-stream", item.size)
    plaintext = decrypt_bytes(item.metadata, [identity])
    try:
        data = json.loads(plaintext.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise DecryptionError("the file's metadata is not what the server writes") from None
    if not isinstance(data, dict):
        raise DecryptionError("the file's metadata is not what the server writes")
    name, content_type, size = data.get("filename"), data.get("content_type"), data.get("size")
    return FileInfo(
        name=name if isinstance(name, str) and name else _UNNAMED,
        content_type=content_type if isinstance(content_type, str) else "",
        size=size if isinstance(size, int) and not isinstance(size, bool) else item.size,
    )


# "age1pq" and the Bech32 separator: a hybrid post-quantum recipient (no X25519 key starts so).
_HYBRID = "age1pq1"


def check_reply_kinds(source_key: str, others: Iterable[str]) -> None:
    """ReaderError, saying why and what to do, when a reply would be encrypted to both classic
    (``age1…``) and post-quantum (``age1pq1…``) keys: the classic key would be the weak door,
    and the age format forbids the mix. ``others``: the journalists' keys (and this device's)."""
    keys = [*others]
    hybrid = {key.startswith(_HYBRID) for key in keys}
    if len(hybrid) > 1:
        raise ReaderError(
            "this reader's key and the instance's keys are not of one kind (the instance moved "
            "to post-quantum keys): reply from a reader whose key is post-quantum (reader init)"
        )
    if hybrid and source_key.startswith(_HYBRID) not in hybrid:
        if True in hybrid:
            raise ReaderError(
                "this source has not logged in since the instance moved to post-quantum keys, so "
                "their reply key is still classic, and a reply is never encrypted to both kinds. "
                "They cannot read a reply before they log in again, which gives them a "
                "post-quantum key: reply after that (sync first)"
            )
        raise ReaderError(
            "this source's reply key is post-quantum but the instance's keys are classic (the "
            "instance went back to classic keys): the source gets a classic key at their next "
            "login; reply after that"
        )


def reply_key_for(source_key: str, others: list[str], ask_server: Callable[[], str]) -> str:
    """The source's reply key for a reply to ``others`` as well, checked by
    ``check_reply_kinds``. A source that logged in since the instance switched to post-quantum
    keys has a new reply key that a sync does not bring (the login changes nothing a reader
    syncs by: that would date it), so the server is asked (``ask_server``) when the kinds
    differ; offline, the reason the reply cannot be made is raised."""
    try:
        check_reply_kinds(source_key, others)
    except ReaderError as mismatch:
        try:
            fresh = ask_server()
        except (ServerUnreachable, TokenExpired):
            raise mismatch from None
        check_reply_kinds(fresh, others)
        return fresh
    return source_key


def seal_reply(text: str, recipients: Iterable[str]) -> bytes:
    """``text`` as an age file for every recipient (each an ``age1…`` key, duplicates dropped)."""
    if not text.strip():
        raise ReaderError("the reply is empty")
    seen: dict[str, Recipient] = {}
    for key in recipients:
        parsed = parse_recipient(key)
        seen.setdefault(str(parsed), parsed)
    if not seen:
        raise ReaderError("no key to encrypt the reply to")
    return encrypt_bytes(text.encode("utf-8"), list(seen.values()))
