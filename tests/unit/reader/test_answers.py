"""The reader validates every answer of the server with the API's own models (sealdrop.wire):
what the reader would turn into a file name, or count with, has its exact form, and a refusal
names the field, never the server's data."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from sealdrop.errors import ProtocolViolation
from sealdrop.reader.client import ApiClient

SOURCE = "5" * 32


def item(**changes: Any) -> dict[str, Any]:
    return {
        "id": "1" * 32,
        "source_id": SOURCE,
        "seq": 1,
        "kind": "message",
        "arrival_day": "2024-05-01",
        "size": 100,
        "digest": "blake3:" + "a" * 64,
        "seen": False,
        "metadata": None,
        "author": None,
        **changes,
    }


def client_answering(body: object) -> ApiClient:
    def answer(request: httpx.Request) -> httpx.Response:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.Response(200, content=raw)

    client = ApiClient("http://api.test", transport=httpx.MockTransport(answer))
    client.use_token("t")
    return client


def test_a_well_formed_item_list_is_read_with_its_metadata_decoded() -> None:
    """Items come back as the API's Item model; a file's metadata is its decoded age file."""
    answer = {"items": [item(kind="file", metadata="YWdl")]}
    (got,) = client_answering(answer).submissions(SOURCE)
    assert got.kind == "file"
    assert got.metadata_bytes() == b"age"
    assert str(got.arrival_day) == "2024-05-01"


def older_item(sha256: object) -> dict[str, Any]:
    """An item as a server before migration 0009 lists it: ``sha256``, no ``digest``."""
    old = item(sha256=sha256)
    del old["digest"]
    return old


def test_an_item_from_a_server_before_named_digests_is_read_as_its_sha256_digest() -> None:
    """A server not yet upgraded sends bare hex ``sha256``: the reader reads it as
    "sha256:HEX" (what the server's migration 0009 makes of it), and "" as no digest."""
    answer = {"items": [older_item("b" * 64), {**older_item(""), "id": "2" * 32}]}
    hashed, unhashed = client_answering(answer).submissions(SOURCE)
    assert (hashed.digest, unhashed.digest) == ("sha256:" + "b" * 64, "")
    both = {**item(), "sha256": "c" * 64}  # an upgraded server's own field wins
    (got,) = client_answering({"items": [both]}).submissions(SOURCE)
    assert got.digest == "blake3:" + "a" * 64


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"id": "../../.bashrc-secret-path-0000000"}, "items.0.id"),
        ({"digest": "../evil-secret"}, "items.0.digest"),
        ({"digest": "md5:" + "a" * 32}, "items.0.digest"),
        ({"digest": "a" * 64}, "items.0.digest"),
        ({"size": -1}, "items.0.size"),
        ({"seq": "7"}, "items.0.seq"),
        ({"seen": 1}, "items.0.seen"),
        ({"kind": "script-secret"}, "items.0.kind"),
        ({"metadata": "not base64 secret!"}, "items.0.metadata"),
    ],
)
def test_a_malformed_item_is_refused_naming_the_field_not_the_data(
    changes: dict[str, Any], field: str
) -> None:
    """A hostile or broken server's item is a ProtocolViolation that says which field is wrong
    and never repeats what the server sent; an older server's ``sha256`` is held to the same
    form."""
    with pytest.raises(ProtocolViolation) as refused:
        client_answering({"items": [item(**changes)]}).submissions(SOURCE)
    message = str(refused.value)
    assert field in message
    assert "secret" not in message
    assert "bashrc" not in message


def test_an_answer_that_is_not_json_is_a_protocol_violation() -> None:
    """Non-JSON (say, an HTML page) is refused as such."""
    with pytest.raises(ProtocolViolation, match="SourcePage") as refused:
        client_answering(b"<html>secret</html>").source_page(0)
    assert "secret" not in str(refused.value)


@pytest.mark.parametrize("sha256", ["../evil-secret", "a" * 63, 7, None], ids=str)
def test_an_older_servers_malformed_sha256_is_refused_as_a_digest(sha256: object) -> None:
    """An older server's ``sha256`` that is not 64 hex digits (or "") is refused as the digest
    it stands for, without repeating it."""
    with pytest.raises(ProtocolViolation) as refused:
        client_answering({"items": [older_item(sha256)]}).submissions(SOURCE)
    assert "items.0.digest" in str(refused.value)
    assert "secret" not in str(refused.value)


def test_a_hostile_answer_nested_too_deep_is_refused_like_any_malformed_one() -> None:
    """An answer that names "sha256" (so the older-server reading looks at it) inside JSON
    nested past Python's recursion limit is a ProtocolViolation, not a crash of the reader."""
    hostile = b"[" * 100_000 + b'"sha256"' + b"]" * 100_000
    with pytest.raises(ProtocolViolation):
        client_answering(hostile).submissions(SOURCE)
