"""Uploads that resume (tus 1.0 at /uploads) against a real server: an existing client (tuspy)
uploads half, a new client resumes from the server's offset and finishes; a server killed
mid-upload resumes from its last durable chunk; another session gets 404; a cross-site request
is refused; the finished file is the same item as a form upload and `age -d` gives its exact
bytes; no plaintext (content or file name) is left on disk or in the server's TMPDIR."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support_http import JournalistKey, Source, start_server, stored
from test_submission_flow import age_decrypt, metadata_of, scan_for
from tusclient import client as tus

from sealdrop.testing import ServerProcess

MiB = 1024 * 1024
CHUNK = 64 * 1024


def _tus_client(source: Source, base_url: str) -> tus.TusClient:
    cookies = "; ".join(f"{k}={v}" for k, v in source.http.cookies.items())
    return tus.TusClient(
        f"{base_url}/uploads",
        headers={"Cookie": cookies, "X-CSRF-Token": source.csrf_token()},
    )


def _canary_file(size: int) -> tuple[bytes, str]:
    canary = f"canary-{uuid.uuid4().hex}"
    content = bytearray(os.urandom(size))
    content[5000 : 5000 + len(canary)] = canary.encode()
    content[-100 : -100 + len(canary)] = canary.encode()
    return bytes(content), canary


def test_tuspy_uploads_half_and_a_new_client_resumes_to_exact_bytes(
    server: ServerProcess,
    source: Source,
    instance_dir: Path,
    journalist_key: JournalistKey,
    server_tmp: Path,
) -> None:
    """tuspy uploads half; a second tuspy client asks the server's offset and finishes; the item
    decrypts with stock age to the exact bytes, its metadata to the name; no plaintext anywhere."""
    began = time.time() - 2  # slack for coarse file times
    source.start()
    content, canary = _canary_file(6 * MiB + 12345)
    filename = f"leak-{canary}.pdf"
    first = _tus_client(source, server.url).uploader(
        file_stream=io.BytesIO(content),
        chunk_size=3 * MiB,
        metadata={"filename": filename, "filetype": "application/pdf"},
    )
    first.upload(stop_at=3 * MiB)
    assert stored(instance_dir) == []
    url = first.url
    assert url is not None

    second = _tus_client(source, server.url).uploader(
        file_stream=io.BytesIO(content), url=url, chunk_size=16 * MiB
    )
    assert second.offset == 3 * MiB  # from the server's HEAD
    second.upload()

    (item,) = stored(instance_dir)
    assert item["kind"] == "file"
    plaintext = age_decrypt(journalist_key.identity_file, Path(item["path"]))
    assert hashlib.sha256(plaintext).digest() == hashlib.sha256(content).digest()
    (meta,) = metadata_of(instance_dir, journalist_key.identity_file).values()
    assert meta == {"filename": filename, "content_type": "application/pdf", "size": len(content)}
    assert httpx.head(url, cookies=dict(source.http.cookies)).status_code == 404  # finished

    roots = [instance_dir, server_tmp, Path("/tmp"), Path("/var/tmp"), Path("/dev/shm")]
    needles = [canary.encode(), canary.encode("utf-16-le")]
    assert scan_for(needles, [r for r in roots if r.exists()], began) == []
    assert canary not in server.log()


def _create(source: Source, base: str, length: int, **headers: str) -> httpx.Response:
    return source.http.post(
        f"{base}/uploads",
        headers={
            "Tus-Resumable": "1.0.0",
            "Upload-Length": str(length),
            "X-CSRF-Token": source.csrf_token(),
            **headers,
        },
    )


def test_another_session_gets_404_and_cross_site_or_tokenless_requests_are_refused(
    shared_server: ServerProcess, shared_source: Source
) -> None:
    """Another session's HEAD, PATCH and DELETE on an upload URL are 404; a cross-site PATCH is
    403; a PATCH without the page's token is refused; the owner still sees offset 0."""
    server, source = shared_server, shared_source
    source.start()
    created = _create(source, "", 2 * CHUNK)
    assert created.status_code == 201, created.text
    url = created.headers["location"]
    other = Source(server.url)
    other.start()
    token = other.csrf_token()
    common = {"Tus-Resumable": "1.0.0", "X-CSRF-Token": token}
    assert other.http.head(url, headers=common).status_code == 404
    patch_headers = {
        **common,
        "Upload-Offset": "0",
        "Content-Type": "application/offset+octet-stream",
    }
    assert other.http.patch(url, headers=patch_headers, content=b"x" * CHUNK).status_code == 404
    assert other.http.delete(url, headers=common).status_code == 404
    own = {**patch_headers, "X-CSRF-Token": source.csrf_token()}
    cross = {**own, "Sec-Fetch-Site": "cross-site"}
    assert source.http.patch(url, headers=cross, content=b"x" * CHUNK).status_code == 403
    tokenless = {k: v for k, v in own.items() if k != "X-CSRF-Token"}
    assert source.http.patch(url, headers=tokenless, content=b"x" * CHUNK).status_code == 400
    head = source.http.head(url, headers={"Tus-Resumable": "1.0.0"})
    assert head.status_code == 200
    assert head.headers["upload-offset"] == "0"
    assert head.headers["tus-resumable"] == "1.0.0"


def test_a_patch_ending_mid_chunk_counts_only_whole_chunks(shared_source: Source) -> None:
    """1.5 chunks sent: the offset reported is one whole chunk; the tail is dropped, not kept."""
    source = shared_source
    source.start()
    url = _create(source, "", 4 * CHUNK).headers["location"]
    response = source.http.patch(
        url,
        headers={
            "Tus-Resumable": "1.0.0",
            "X-CSRF-Token": source.csrf_token(),
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
        content=b"y" * (CHUNK + CHUNK // 2),
    )
    assert response.status_code == 204, response.text
    assert response.headers["upload-offset"] == str(CHUNK)


@pytest.mark.slow
def test_a_server_killed_mid_upload_resumes_from_its_last_durable_chunk(
    instance_dir: Path, journalist_key: JournalistKey, server_tmp: Path
) -> None:
    """SIGKILL while a PATCH streams: after a restart HEAD reports a chunk boundary at or past
    what was last reported durable, and the upload finishes from there to the exact bytes."""
    from support_http import setup_cli

    setup_cli("recipients", "add", instance_dir, journalist_key.recipient, "--name", "j")
    server = start_server(instance_dir, server_tmp)
    try:
        source = Source(server.url)
        source.start()
        content, _ = _canary_file(40 * MiB + 777)
        url = _create(source, "", len(content)).headers["location"]
        token = source.csrf_token()
        headers = {
            "Tus-Resumable": "1.0.0",
            "X-CSRF-Token": token,
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        }
        release = threading.Event()

        def body() -> Iterator[bytes]:
            yield content[: 20 * MiB]
            release.wait(30)  # hold the request open: the server is killed meanwhile
            yield content[20 * MiB :]

        def send() -> None:
            # The server dies under it: the error is expected.
            with contextlib.suppress(httpx.HTTPError):
                httpx.patch(
                    server.url + url,
                    headers=headers,
                    cookies=dict(source.http.cookies),
                    content=body(),
                    timeout=60,
                )

        sender = threading.Thread(target=send)
        sender.start()
        seen = 0
        deadline = time.monotonic() + 30
        while seen < 8 * MiB and time.monotonic() < deadline:
            head = source.http.head(url, headers={"Tus-Resumable": "1.0.0"})
            seen = int(head.headers["upload-offset"])
            time.sleep(0.05)
        assert seen >= 8 * MiB  # a checkpoint was reported durable while the PATCH streamed
        server.kill()
        release.set()
        sender.join()
        server = start_server(instance_dir, server_tmp)
        base = server.url
        cookies = dict(source.http.cookies)
        head = httpx.head(base + url, headers={"Tus-Resumable": "1.0.0"}, cookies=cookies)
        resumed = int(head.headers["upload-offset"])
        assert resumed >= seen
        assert resumed % CHUNK == 0
        source.http.close()
        source = Source(base)
        source.http.cookies.update(cookies)
        uploader = _tus_client(source, base).uploader(
            file_stream=io.BytesIO(content), url=base + url, chunk_size=64 * MiB
        )
        assert uploader.offset == resumed
        uploader.upload()
        (item,) = stored(instance_dir)
        plaintext = age_decrypt(journalist_key.identity_file, Path(item["path"]))
        assert plaintext == content
    finally:
        server.stop()
