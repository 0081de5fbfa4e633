"""A real submission to an instance whose organisation key is post-quantum hybrid, read back by
another implementation: `sealdrop keygen --pq` makes the key, `sealdrop serve` stores a message
and a file (the file through the encrypting child process), typage and our reader open both."""

from __future__ import annotations

import html
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sealdrop.crypto import age_header, envelope, keys
from sealdrop.testing import ServerProcess, sealdrop_command
from support_pages import csrf_token, form_token


def _cli(*args: str | Path) -> str:
    done = subprocess.run(
        sealdrop_command(*args), capture_output=True, text=True, timeout=120, check=True
    )
    return str(done.stdout) + str(done.stderr)


@pytest.fixture
def hybrid_server(tmp_path: Path) -> Iterator[tuple[ServerProcess, Path, Path]]:
    """A running server whose one recipient is a hybrid key made by `sealdrop keygen --pq`."""
    instance = tmp_path / "instance"
    _cli("init", instance)
    # A post-quantum instance (crypto.post_quantum): a classic one lets hybrid keys wait, unused.
    toml = instance / "sealdrop.toml"
    toml.write_text(toml.read_text().replace("# post_quantum = false", "post_quantum = true"))
    key_file = tmp_path / "org-pq.key"
    printed = _cli("keygen", "--pq", "-o", key_file)
    recipient = printed.removeprefix("Public key: ").strip()
    assert recipient.startswith("age1pq1")
    _cli("recipients", "add", instance, recipient, "--name", "offline pq")
    (tmp_path / "tmp").mkdir()
    server = ServerProcess(instance, env={"TMPDIR": str(tmp_path / "tmp")}).start()
    try:
        yield server, instance, key_file
    finally:
        server.stop()


def _submit(url: str, message: str, name: str, content: bytes) -> None:
    with httpx.Client(base_url=url, timeout=120) as http:
        started = http.post("/start", data={"form_token": form_token(http.get("/").text)})
        found = re.search(r'<p class="codename"[^>]*>([^<]+)</p>', started.text)
        assert found, started.text
        token = csrf_token(http.get("/confirm").text)
        confirmed = http.post(
            "/confirm", data={"csrf_token": token, "codename": html.unescape(found.group(1))}
        )
        assert confirmed.status_code == 303
        sent = http.post(
            "/submit",
            data={"csrf_token": csrf_token(http.get("/conversation").text), "message": message},
            files=[("files", (name, content, "application/octet-stream"))],
        )
        assert sent.status_code == 303, sent.text


def test_a_submission_to_a_hybrid_key_opens_in_typage_and_our_reader(
    hybrid_server: tuple[ServerProcess, Path, Path], typage_dir: Path
) -> None:
    """Message and file blobs hold only mlkem768x25519 stanzas and open, to the exact bytes, with
    the keygen'd identity file in typage and in our reader."""
    server, instance, key_file = hybrid_server
    content = os.urandom(3 * 1024 * 1024 + 5)  # large enough to go through the child process
    _submit(server.url, "quantum-safe hello", "doc.bin", content)
    store = instance / "store"
    blobs = [
        p
        for p in store.rglob("*")
        if p.is_file() and not {"staging", "partial"} & set(p.relative_to(store).parts)
    ]
    assert len(blobs) == 2
    identity = keys.parse_identity(key_file.read_text().splitlines()[2])
    opened = set()
    for blob in blobs:
        data = blob.read_bytes()
        with blob.open("rb") as handle:
            header = age_header.read_header(handle.read)
        assert {s.args[0] for s in header.stanzas} == {b"mlkem768x25519"}
        ours = envelope.decrypt_bytes(data, [identity])
        theirs = subprocess.run(
            ["node", str(typage_dir / "typage.mjs"), "decrypt", str(key_file)],
            input=data,
            capture_output=True,
            check=True,
            timeout=120,
        ).stdout
        assert ours == theirs
        opened.add(ours)
    assert opened == {b"quantum-safe hello", content}
