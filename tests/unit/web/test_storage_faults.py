"""A full disk injected at the blob store (no mount needed, so this always runs): the source gets
the translated 503 page, nothing is half-stored, other pages keep working, and the next
submission is stored once there is space again. The same fault on a real, mounted filesystem is
in tests/integration/test_faults.py."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from test_source_app import new_instance

from sealdrop.ids import BlobKey, new_id
from sealdrop.services import blob_store
from sealdrop.services.container import Services
from sealdrop.storage import blobs_fs
from sealdrop.web.app import create_source_app
from sealdrop.web.source.routes import COOKIE


@dataclass
class Disk:
    """Bytes the blob store may still write; None: unlimited."""

    free: int | None = None


class BudgetedStagedBlob(blobs_fs.FilesystemStagedBlob):
    """A staged blob whose writes fail as a full disk fails them: ENOSPC from the kernel,
    turned into StorageFull by the store's own error mapping."""

    def __init__(self, disk: Disk, *args: Any) -> None:
        super().__init__(*args)
        self._disk = disk

    def write(self, data: bytes) -> int:
        if self._disk.free is not None:
            if len(data) > self._disk.free:
                raise blobs_fs._storage_error(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
            self._disk.free -= len(data)
        return super().write(data)

    def direct_write(self) -> None:  # type: ignore[override]
        # The budget counts the bytes of ``write``: a file's ciphertext must come through it,
        # not be written by the age child itself (the child meeting a real full disk is
        # tests/integration/test_faults.py's, and test_age_child.py's).
        return None


def store_on(disk: Disk) -> type[blobs_fs.FilesystemBlobStore]:
    class SmallDiskBlobStore(blobs_fs.FilesystemBlobStore):
        def stage(self) -> blobs_fs.FilesystemStagedBlob:
            key = BlobKey(new_id())
            return BudgetedStagedBlob(disk, key, self._staging / key, self._path(key))

    return SmallDiskBlobStore


@dataclass
class Instance:
    services: Services
    disk: Disk
    cookie: str
    csrf_token: str
    store: Path

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=create_source_app(self.services))
            async with httpx.AsyncClient(
                transport=transport, base_url="http://testserver", cookies={COOKIE: self.cookie}
            ) as client:
                return await client.request(method, url, **kwargs)

        return anyio.run(go)

    def submit(self, message: str, file: bytes, **headers: str) -> httpx.Response:
        return self.request(
            "POST",
            "/submit",
            data={"csrf_token": self.csrf_token, "message": message},
            files=[("files", ("report.pdf", file, "application/pdf"))],
            headers=headers,
        )

    def staged(self) -> list[Path]:
        return list((self.store / "staging").iterdir())


@pytest.fixture
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Instance]:
    """An instance with one recipient whose blob store sits on a Disk we control, and a
    confirmed source session (made through the services: no KDF run needed for the test)."""
    disk = Disk()
    monkeypatch.setattr(blob_store, "FilesystemBlobStore", store_on(disk))
    services = new_instance(tmp_path / "instance")
    settings = services.settings
    new = services.sources.create()
    session = services.sessions.resolve(new.session_cookie)
    services.sessions.confirm(session)
    yield Instance(services, disk, new.session_cookie, session.csrf_token, settings.blob_dir)
    services.close()


def test_a_full_disk_mid_upload_gives_the_503_page_and_stores_nothing(instance: Instance) -> None:
    """The disk fills while a file is being encrypted: 503 "Temporarily unavailable" with
    "Nothing was stored", and no row, no blob and no staging file remain."""
    instance.disk.free = 100_000
    response = instance.submit("a message that fits", os.urandom(300_000))
    assert response.status_code == 503
    assert "Temporarily unavailable" in response.text
    assert "Nothing was stored." in response.text
    assert response.headers["cache-control"] == "no-store"
    assert instance.services.submissions.listing() == []
    assert [p for p in (instance.store / "blobs").rglob("*") if p.is_file()] == []
    assert instance.staged() == []


def test_the_full_disk_page_is_translated(instance: Instance) -> None:
    """The page is in the source's language (here Spanish), like every other error page."""
    instance.disk.free = 0
    response = instance.submit("hola", b"x", **{"accept-language": "es"})
    assert response.status_code == 503
    assert "No disponible temporalmente" in response.text
    assert "No se guardó nada." in response.text


def test_pages_load_while_the_disk_is_full_and_intake_resumes_once_freed(
    instance: Instance,
) -> None:
    """A full disk stops only what writes to it: pages still load; with space again, the next
    submission is stored whole, in the same process (nothing to restart or clear)."""
    instance.disk.free = 0
    assert instance.submit("first try", b"content").status_code == 503
    for page in ("/", "/conversation", "/login"):
        assert instance.request("GET", page).status_code == 200, page
    instance.disk.free = None
    response = instance.submit("second try", b"content")
    assert response.status_code == 303
    assert [item.kind for item in instance.services.submissions.listing()] == ["message", "file"]
    assert instance.staged() == []
