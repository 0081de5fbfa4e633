"""Stream a whole file as an age v1 file to post-quantum hybrid (or X25519) recipients.

pyrage cannot write ``mlkem768x25519`` stanzas, so files to hybrid recipients are written by our
own composition: the header of ``age_stream.new_stream`` (the same code the resumable uploads use),
then the payload chunk by chunk with ``age_stream.encrypt_chunk``. Only the header differs from an
X25519 file; the payload is the same STREAM construction.

Streaming: at most two 64 KiB plaintext chunks in memory (the one being sealed and the next, read
ahead to know which chunk is the last). Pure: the streams it is given, nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sealdrop.crypto.age_stream import CHUNK, encrypt_chunk, new_stream
from sealdrop.crypto.keys import Recipient

__all__ = ["encrypt_stream"]


class _Chunks:
    """Reads exactly ``CHUNK`` bytes at a time (fewer only at the end), whatever ``read`` gives."""

    def __init__(self, read: Callable[[int], bytes]) -> None:
        self._read = read
        self._buffer = bytearray()
        self._eof = False

    def next(self) -> bytes:
        while len(self._buffer) < CHUNK and not self._eof:
            data = self._read(CHUNK - len(self._buffer))
            if data:
                self._buffer += data  # a reader may hand back more than asked: kept for later
            else:
                self._eof = True
        chunk = bytes(self._buffer[:CHUNK])
        del self._buffer[:CHUNK]
        return chunk


def encrypt_stream(
    read: Callable[[int], bytes], write: Callable[[bytes], object], recipients: Sequence[Recipient]
) -> None:
    """Encrypt everything ``read`` gives into ``write``, as an age file for ``recipients``.

    Raises ValueError for no recipient and MixedRecipientKinds for a mix, before reading a byte.
    Exceptions from ``read``/``write`` propagate as themselves; the output is then incomplete.
    """
    header, keys = new_stream(list(recipients))
    write(header)
    chunks = _Chunks(read)
    current = chunks.next()
    index = 0
    while True:
        # Only a full chunk can have a successor; an empty file is one empty final chunk.
        following = chunks.next() if len(current) == CHUNK else b""
        last = not following
        write(encrypt_chunk(keys, index, current, last))
        if last:
            return
        current, index = following, index + 1
