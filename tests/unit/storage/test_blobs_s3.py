"""S3BlobStore on a real S3 server (SeaweedFS): multipart uploads, nothing but ciphertext in an
object, and sweeps that leave other workers' uploads alone."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from typing import Any, cast

import boto3
import pytest
from botocore.config import Config
from mypy_boto3_s3.client import S3Client

from sealdrop.errors import StorageError
from sealdrop.ids import BlobKey, new_id
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
    progress before commit), and reads back exactly."""
    data = os.urandom(12 * MiB + 17)
    with store.stage() as staged:
        for start in range(0, len(data), 64 * 1024):
            staged.write(data[start : start + 64 * 1024])
        assert len(uploads(store)) == 1  # two full parts already sent
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


def test_store_failures_are_storage_errors_that_name_no_secret(
    seaweedfs: SeaweedFS, s3_location: S3Location
) -> None:
    """An unreachable store and a missing bucket come out as StorageError (which the web layer
    answers with its "temporarily unavailable" page), never a botocore exception, and the
    message names the error, not the key's secret; nothing is left staged."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    unreachable = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{closed_port}",
        region_name="us-east-1",
        aws_access_key_id="id",
        aws_secret_access_key="hunter2-secret",
        config=Config(retries={"max_attempts": 1}, connect_timeout=2),
    )
    for client, location in (
        (unreachable, s3_location),
        (seaweedfs.client(), S3Location("no-such-bucket-here", "")),
    ):
        store = S3BlobStore(client, location, part_size=5 * MiB)
        with pytest.raises(StorageError) as caught, store.stage() as staged:
            staged.write(os.urandom(6 * MiB))  # a full part: the upload begins here
        assert "hunter2" not in str(caught.value)
        assert type(caught.value.__cause__).__module__.startswith("botocore")
        with pytest.raises(StorageError):
            store.open(BlobKey(new_id()))


class SlowStore:
    """The real SeaweedFS client, but each ``upload_part`` waits at a gate until the test opens
    it: a store that is slow to take a part. Records the order of part and abort calls."""

    def __init__(self, client: S3Client) -> None:
        self._client = client
        self.gate = threading.Event()
        self.part_entered = threading.Semaphore(0)
        self.calls: list[str] = []
        self.bodies: list[object] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def upload_part(self, **request: Any) -> Any:
        self.bodies.append(request["Body"])
        self.part_entered.release()
        assert self.gate.wait(30)
        try:
            return self._client.upload_part(**request)
        finally:
            self.calls.append(f"part {request['PartNumber']} ended")

    def abort_multipart_upload(self, **request: Any) -> Any:
        self.calls.append("abort")
        return self._client.abort_multipart_upload(**request)


def slow_store(seaweedfs: SeaweedFS, location: S3Location) -> tuple[S3BlobStore, SlowStore]:
    slow = SlowStore(seaweedfs.client())
    return S3BlobStore(cast(S3Client, slow), location, part_size=5 * MiB), slow


def test_the_next_part_fills_while_a_part_is_sent_and_at_most_two_are_held(
    seaweedfs: SeaweedFS, s3_location: S3Location
) -> None:
    """While part 1 is still going up, the writer fills part 2 (encryption does not stall on the
    store); the write that completes part 2 waits until part 1 is stored (at most two parts in
    memory); the blob then commits and reads back exactly."""
    store, slow = slow_store(seaweedfs, s3_location)
    data = os.urandom(10 * MiB + 3)
    filled_second, past_second = threading.Event(), threading.Event()
    with store.stage() as staged:

        def writer() -> None:
            staged.write(data[: 5 * MiB])  # part 1, full: handed to the sender
            staged.write(data[5 * MiB : 10 * MiB - 1])  # part 2, all but its last byte
            filled_second.set()
            staged.write(data[10 * MiB - 1 :])  # completes part 2: waits for part 1
            past_second.set()

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            assert slow.part_entered.acquire(timeout=10)  # part 1 is being sent, held
            assert filled_second.wait(10), "the writer waited for part 1 before filling part 2"
            assert not past_second.wait(0.5), "a third part's worth was buffered"
        finally:
            slow.gate.set()
            thread.join(30)
        assert past_second.is_set()
        key, size = staged.commit()
    assert size == len(data)
    with store.open(key) as f:
        assert f.read() == data
    assert uploads(store) == []


def test_a_part_that_fails_in_the_background_fails_a_later_write_and_aborts(
    seaweedfs: SeaweedFS, s3_location: S3Location
) -> None:
    """A part the store refuses while the writer goes on (here: its upload was aborted by
    another hand) surfaces as StorageError at one of the next writes, without waiting for
    commit; the upload is aborted and nothing is stored."""
    store, slow = slow_store(seaweedfs, s3_location)
    staged = store.stage()
    staged.write(os.urandom(5 * MiB))  # part 1 handed to the sender, held at the gate
    assert slow.part_entered.acquire(timeout=10)
    (upload_id,) = uploads(store)
    name = store.object_name(staged._key)
    seaweedfs.client().abort_multipart_upload(Bucket=store.bucket, Key=name, UploadId=upload_id)
    slow.gate.set()

    def write_on() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            staged.write(b"x" * 1024)  # far from a full part: only the failure can stop it
            time.sleep(0.01)

    with pytest.raises(StorageError):
        write_on()
    with pytest.raises(StorageError):
        staged.commit()
    assert uploads(store) == []
    assert list(store.keys()) == []


def test_a_last_part_that_fails_fails_commit_and_nothing_is_visible(
    seaweedfs: SeaweedFS, s3_location: S3Location
) -> None:
    """commit waits for the part still going up; if the store refuses it, commit raises
    StorageError (so no row is written), the upload is aborted, and no object appears."""
    store, slow = slow_store(seaweedfs, s3_location)
    with store.stage() as staged:
        staged.write(os.urandom(5 * MiB))
        assert slow.part_entered.acquire(timeout=10)
        (upload_id,) = uploads(store)
        seaweedfs.client().abort_multipart_upload(
            Bucket=store.bucket, Key=store.object_name(staged._key), UploadId=upload_id
        )
        slow.gate.set()
        with pytest.raises(StorageError):
            staged.commit()
    assert uploads(store) == []
    assert list(store.keys()) == []


def test_an_abandoned_upload_is_aborted_only_once_its_part_in_flight_ended(
    seaweedfs: SeaweedFS, s3_location: S3Location
) -> None:
    """A request dropped while a part is going up aborts its upload after that part ended (a
    part reaching the store after the abort could be kept by it, unreferenced); nothing is left
    in the store."""
    store, slow = slow_store(seaweedfs, s3_location)
    staged = store.stage()
    staged.write(os.urandom(5 * MiB))
    assert slow.part_entered.acquire(timeout=10)
    dropped = threading.Thread(target=staged.discard)
    dropped.start()
    time.sleep(0.3)
    assert slow.calls == []  # the abort waits for the part
    slow.gate.set()
    dropped.join(30)
    assert slow.calls == ["part 1 ended", "abort"]
    assert uploads(store) == []
    assert list(store.keys()) == []


def test_parts_are_sent_from_two_buffers_filled_in_place(
    seaweedfs: SeaweedFS, s3_location: S3Location
) -> None:
    """Each part goes to the client as the buffer it was filled in (a bytearray, which botocore
    sends whole, not a copy as bytes), and full parts alternate between the same two buffers."""
    store, slow = slow_store(seaweedfs, s3_location)
    slow.gate.set()
    data = os.urandom(20 * MiB + 5)
    with store.stage() as staged:
        for start in range(0, len(data), 256 * 1024):
            staged.write(data[start : start + 256 * 1024])
        key, _ = staged.commit()
    full = slow.bodies[:4]
    assert all(type(body) is bytearray for body in slow.bodies)
    assert len({id(body) for body in full}) == 2
    assert full[0] is full[2]
    assert full[1] is full[3]
    with store.open(key) as f:
        assert f.read() == data
