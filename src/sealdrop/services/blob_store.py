"""Which blob store an instance uses: the filesystem (default) or S3 (``storage.blobs``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sealdrop.config import Settings
from sealdrop.storage.blobs import parse_s3_url
from sealdrop.storage.blobs_fs import FilesystemBlobStore
from sealdrop.storage.partials import PartialStore
from sealdrop.storage.partials_fs import PartialUploads

if TYPE_CHECKING:
    from sealdrop.storage.blobs_s3 import S3BlobStore


def uses_object_store(settings: Settings) -> bool:
    return bool(settings.blobs)


def open_blob_store(settings: Settings) -> FilesystemBlobStore | S3BlobStore:
    """The instance's blob store. S3 is imported only when configured (boto3 is slow to load)."""
    if not uses_object_store(settings):
        return FilesystemBlobStore(settings.blob_dir)
    from sealdrop.storage.blobs_s3 import S3BlobStore, make_s3_client

    secret = settings.s3_secret_access_key
    client = make_s3_client(
        settings.s3_endpoint_url,
        settings.s3_region,
        settings.s3_access_key_id,
        secret.reveal().decode("utf-8") if secret is not None else "",
    )
    return S3BlobStore(
        client,
        parse_s3_url(settings.blobs),
        sweep_after_seconds=settings.s3_sweep_after_seconds,
    )


def open_partial_store(
    settings: Settings, blobs: FilesystemBlobStore | S3BlobStore
) -> PartialStore:
    """Where resumable uploads in progress are kept: next to the blobs. On S3, any worker that
    shares the store can continue an upload another worker began."""
    if isinstance(blobs, FilesystemBlobStore):
        return PartialUploads(settings.blob_dir, blobs)
    from sealdrop.storage.partials_s3 import S3PartialUploads

    return S3PartialUploads(blobs)
