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
    and never repeats what the server sent."""
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
