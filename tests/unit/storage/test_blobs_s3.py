"""S3BlobStore on a real S3 server (SeaweedFS): multipart uploads, nothing but ciphertext in an
object, and sweeps that leave other workers' uploads alone."""

from __future__ import annotations

import hashlib
import os

import pytest

from sealdrop.storage.blobs import S3Location
from sealdrop.storage.blobs_s3 import S3BlobStore
from sealdrop.testing_s3 import SeaweedFS

pytestmark = pytest.mark.s3

MiB = 1024 * 1024


def uploads(store: S3BlobStore) -> list[str]:
    answer = store.client.list_multipart_uploads(Bucket=store.bucket, Prefix=store.location.prefix)
    return [upload["UploadId"] for upload in answer.get("Uploads", [])]


@pytest.fixture
def store(seaweedfs: SeaweedFS, s3_location: S3Location) -> S3BlobStore:
    # The smallest part S3 allows, so that a few MiB already span several parts.
    return S3BlobStore(seaweedfs.client(), s3_location, part_size=5 * MiB)


def test_a_large_blob_goes_up_in_parts_while_written(store: S3BlobStore) -> None:
    """A blob larger than a part is sent part by part as it is written (a multipart upload is in
    progress before commit, holding at most one part in memory), and reads back exactly."""
    data = os.urandom(12 * MiB + 17)
    with store.stage() as staged:
        for start in range(0, len(data), 64 * 1024):
            staged.write(data[start : start + 64 * 1024])
        assert len(uploads(store)) == 1  # two full parts already sent
        assert len(staged._buffer) < 5 * MiB
        key, size = staged.commit()
    assert size == len(data) == store.size(key)
    assert uploads(store) == []
    with store.open(key) as f:
        assert hashlib.sha256(f.read()).digest() == hashlib.sha256(data).digest()


def test_an_abandoned_upload_is_aborted_not_left_in_the_store(store: S3BlobStore) -> None:
    """A request that stops after some parts went up aborts its multipart upload: no upload in
    progress and no object remain."""
    seen = []

    def dropped_request() -> None:
        with store.stage() as staged:
            staged.write(os.urandom(6 * MiB))
            seen.extend(uploads(store))
            raise RuntimeError("the source's connection dropped")

    with pytest.raises(RuntimeError):
        dropped_request()
    assert len(seen) == 1
    assert uploads(store) == []
    assert list(store.keys()) == []


def test_an_object_carries_no_metadata_and_a_random_name(store: S3BlobStore) -> None:
    """The object's name is the prefix, blobs/ and the random key; it has no user metadata, no
    tags, and no content type or disposition of ours."""
    with store.stage() as staged:
        staged.write(b"age-encryption.org/v1\n...")
        key, _ = staged.commit()
    name = store.object_name(key)
    assert name == f"{store.location.prefix}blobs/{key}"
    head = store.client.head_object(Bucket=store.bucket, Key=name)
    assert head.get("Metadata", {}) == {}
    assert "ContentDisposition" not in head
    assert head.get("ContentType") in (None, "", "binary/octet-stream", "application/octet-stream")
    tags = store.client.get_object_tagging(Bucket=store.bucket, Key=name)
    assert tags["TagSet"] == []


def test_sweeps_spare_what_other_workers_may_still_be_writing(
    seaweedfs: SeaweedFS, s3_location: S3Location
) -> None:
    """With the default threshold, clean_staging aborts no upload in progress and settled_keys
    offers no fresh blob (another worker may be receiving it, or about to write its row); with a
    threshold of 0 both are taken."""
    client = seaweedfs.client()
    careful = S3BlobStore(client, s3_location)
    with careful.stage() as done:
        key, _ = done.commit()
    crashed = careful.stage()
    crashed.write(b"a worker died here")
    crashed.close()  # its part is sent: an upload in progress that nobody will finish
    assert careful.clean_staging() == 0
    assert list(careful.settled_keys()) == []
    assert len(uploads(careful)) == 1
    eager = S3BlobStore(client, s3_location, sweep_after_seconds=0)
    assert list(eager.settled_keys()) == [key]
    assert eager.clean_staging() == 1
    assert uploads(careful) == []
