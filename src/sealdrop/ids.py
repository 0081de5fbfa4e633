"""Typed identifiers shared by every layer.

Ids are random, not sequential: an id seen in one place says nothing about how many others exist.
"""

from __future__ import annotations

import secrets
from typing import NewType

SourceId = NewType("SourceId", str)
SubmissionId = NewType("SubmissionId", str)
RecipientId = NewType("RecipientId", str)
ReplyId = NewType("ReplyId", str)
UserId = NewType("UserId", str)
BlobKey = NewType("BlobKey", str)


def new_id() -> str:
    """A fresh random id: 128 bits as 32 lowercase hex characters."""
    return secrets.token_hex(16)


def is_id(text: str) -> bool:
    """Whether ``text`` has the shape of an id (32 lowercase hex). Checked before any query, so
    that arbitrary client text (NUL bytes, megabytes) never reaches the database."""
    return len(text) == 32 and all(c in "0123456789abcdef" for c in text)
