"""Answers of a server of an earlier release that this reader still reads.

Since the server's migration 0009 an item's digest names its algorithm (``"digest":
"blake3:…"``); a server not upgraded yet sends bare hex SHA-256 as ``"sha256"`` (or ``""`` for
items it never hashed). A journalist may update the reader before the operator updates the
server: this reader then reads ``sha256`` as the digest 0009 makes of it (``"sha256:HEX"``),
takes that server's ETag (the same bare hex) as naming it, and syncs as before. Only that
rename is done here; every value is still judged by the API's schema (``sealdrop.wire``), so a
malformed ``sha256`` is refused as a malformed digest would be.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["etag_names", "items_of_an_older_server"]


def items_of_an_older_server(content: bytes) -> bytes:
    """An item or a list of items (``{"items": [...]}``) with each ``sha256`` renamed
    ``digest``; the content unchanged when there is nothing to rename or it is not JSON."""
    if b'"sha256"' not in content:
        return content
    try:
        answer = json.loads(content)
    except (ValueError, RecursionError):  # not JSON, or nested past Python's limit (hostile)
        return content  # the schema refuses it, with its own message
    items = answer.get("items") if isinstance(answer, dict) else None
    for item in items if isinstance(items, list) else [answer]:
        _rename(item)
    return json.dumps(answer).encode()


def etag_names(etag: str, digest: str) -> bool:
    """Whether a download's ETag (its quotes removed) names the content of ``digest``: it is the
    digest itself, or, from a server before migration 0009, the bare hex of a SHA-256 digest."""
    return etag == digest or (digest.startswith("sha256:") and etag == digest[len("sha256:") :])


def _rename(item: Any) -> None:
    if isinstance(item, dict) and "digest" not in item and "sha256" in item:
        old = item.pop("sha256")
        item["digest"] = f"sha256:{old}" if isinstance(old, str) and old else old
