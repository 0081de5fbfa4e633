"""The record a resumable upload's state is kept as, on the filesystem and in S3 alike
(storage/partials.py): what one store writes, the other reads."""

from __future__ import annotations

import pytest

from sealdrop.storage.partials import PartialState


def test_a_state_reads_back_as_written_sealed_bytes_and_all() -> None:
    """expires, durable and the sealed bytes (which may hold newlines) survive the round trip."""
    state = PartialState(1_767_225_600, 123_456, b"\x00sealed\nstate\n\xff")
    assert PartialState.decode(state.encode()) == state


@pytest.mark.parametrize(
    "raw",
    [b"", b"1767225600\nsealed", b"x 12\nsealed", b"1 2 3\nsealed", b"1767225600 -\nsealed"],
)
def test_a_damaged_record_is_no_state_at_all(raw: bytes) -> None:
    """A first line that is not two integers gives None, never a half-read state."""
    assert PartialState.decode(raw) is None
