"""The S3 client ``make_s3_client`` builds: where a part's body is hashed for its signature."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from typing import Any, cast

import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from mypy_boto3_s3.client import S3Client

from sealdrop.storage.blobs import S3Location
from sealdrop.storage.blobs_s3 import S3BlobStore
from sealdrop.storage.s3_objects import make_s3_client
from sealdrop.testing_s3 import SeaweedFS

MiB = 1024 * 1024
UNSIGNED = "UNSIGNED-PAYLOAD"


class _Raw:
    def stream(self, *args: Any, **kwargs: Any) -> Any:
        return iter([b""])


def signed_body_hash(client: S3Client, answer: bool) -> list[str]:
    """Record the X-Amz-Content-SHA256 of each UploadPart the client sends; with ``answer``,
    answer it here instead of sending it (for endpoints this machine cannot reach)."""
    seen: list[str] = []

    def before_send(request: Any, **kwargs: Any) -> AWSResponse | None:
        value = request.headers["X-Amz-Content-SHA256"]
        seen.append(value.decode() if isinstance(value, bytes) else value)
        if answer:
            headers = HTTPHeaders()
            headers["ETag"] = '"e"'
            return AWSResponse(request.url, 200, headers, _Raw())
        return None

    # botocore lets a before-send handler answer the request by returning a response (its
    # documented way to stub a call); the stubs type every handler as returning None.
    handler = cast(Callable[..., None], before_send)
    client.meta.events.register("before-send.s3.UploadPart", handler)
    return seen


@pytest.mark.parametrize(
    ("endpoint", "signed"),
    [
        ("https://s3.example.org", False),  # TLS guards the body
        (None, False),  # AWS's own endpoints: https
        ("http://127.0.0.1:8333", False),  # loopback: no wire
        ("http://[::1]:8333", False),
        ("http://localhost:8333", False),
        ("http://192.0.2.7:8333", True),  # plain HTTP over a network: the hash is the guard
        ("http://objects.internal:8333", True),
    ],
)
def test_a_parts_body_is_hashed_for_its_signature_only_where_nothing_else_guards_it(
    endpoint: str | None, signed: bool
) -> None:
    """UploadPart's signature covers the body's SHA-256 over plain HTTP to another host, and says
    UNSIGNED-PAYLOAD over HTTPS and over loopback, where that hash would only cost CPU."""
    client = make_s3_client(endpoint, "us-east-1", "id", "secret")
    seen = signed_body_hash(client, answer=True)
    body = b"age-encryption.org/v1\n" * 100
    client.upload_part(Bucket="b", Key="k", UploadId="u", PartNumber=1, Body=body)
    assert seen == [hashlib.sha256(body).hexdigest() if signed else UNSIGNED]


@pytest.mark.s3
def test_the_test_store_takes_unsigned_parts(seaweedfs: SeaweedFS, s3_location: S3Location) -> None:
    """On the loopback SeaweedFS a blob's parts go up unsigned, and the blob reads back
    exactly (the store accepts UNSIGNED-PAYLOAD parts)."""
    client = seaweedfs.client()
    seen = signed_body_hash(client, answer=False)
    store = S3BlobStore(client, s3_location, part_size=5 * MiB)
    data = os.urandom(6 * MiB)
    with store.stage() as staged:
        staged.write(data)
        key, _ = staged.commit()
    assert seen == [UNSIGNED, UNSIGNED]
    with store.open(key) as f:
        assert f.read() == data
