"""`sealdrop reader` end to end, run as a subprocess against a real server: init (identity made and
registered), sync, show (decrypted in memory), export through mat2 (metadata gone, read back),
reply (the source reads it on the web), hostile file names, a wrong identity passphrase, and a
scan of the reader's data folder for plaintext.

One server and one reader data folder serve the module (logins are rate-limited and cost an
Argon2 verification); every test makes its own source.
"""

from __future__ import annotations

import html
import io
import os
import re
import stat
import struct
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import piexif
import pytest
from PIL import Image
from pypdf import PdfReader, PdfWriter
from support_api import Account, cli_account, new_source, start_instance
from support_http import Source, run_cli

from sealdrop.reader.export import safe_name
from sealdrop.reader.store import LocalSource, Store
from sealdrop.testing import ServerProcess, sealdrop_command

IDENTITY_PASSPHRASE = "correct horse battery staple reader"
# GPSLatitude 52° 31' 12.34" as piexif packs it (big-endian rationals, the "MM" byte order).
GPS_LATITUDE = ((52, 1), (31, 1), (1234, 100))
GPS_BYTES = struct.pack(">6L", 52, 1, 31, 1, 1234, 100)


@dataclass
class ReaderSetup:
    instance: Path
    server: ServerProcess
    journalist: Account
    data_dir: Path
    account_passphrase_file: Path
    identity_passphrase_file: Path
    root: Path

    def run(self, *args: Any, check: bool = True) -> subprocess.CompletedProcess[str]:
        """`sealdrop reader ARGS --data-dir …` in a child process, without a terminal."""
        env = {**os.environ, "COLUMNS": "250", "NO_COLOR": "1"}
        result = subprocess.run(
            sealdrop_command("reader", *args, "--data-dir", self.data_dir),
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if check:
            assert result.returncode == 0, result.stdout + result.stderr
        return result

    def unlocked(self, *args: Any, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(
            *args, "--identity-passphrase-file", self.identity_passphrase_file, check=check
        )

    def newest_source(self) -> LocalSource:
        with Store(self.data_dir / "reader.sqlite3") as store:
            return max(store.sources(), key=lambda s: s.version)


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReaderSetup]:
    """A server, a journalist account, and `reader init` done against its journalist API."""
    root = tmp_path_factory.mktemp("reader-cli")
    instance, server = start_instance(root)
    try:
        journalist = cli_account(instance, "reporter")
        secrets = root / "secrets"
        secrets.mkdir(mode=0o700)
        identity_file = secrets / "identity-passphrase"
        identity_file.write_text(IDENTITY_PASSPHRASE + "\n")
        account_file = secrets / "account-passphrase"
        account_file.write_text(journalist.passphrase + "\n")
        setup = ReaderSetup(
            instance, server, journalist, root / "reader-data", account_file, identity_file, root
        )
        setup.run(
            "init",
            "--server",
            server.api_url,
            "--username",
            journalist.username,
            "--device-name",
            "laptop",
            "--identity-passphrase-file",
            identity_file,
            "--passphrase-file",
            account_file,
            "--totp",
            journalist.fresh_code(),
        )
        yield setup
    finally:
        server.stop()


def jpeg_with_gps() -> bytes:
    exif = piexif.dump(
        {
            "0th": {piexif.ImageIFD.Make: b"SealdropTestCam"},
            "GPS": {
                piexif.GPSIFD.GPSLatitudeRef: b"N",
                piexif.GPSIFD.GPSLatitude: GPS_LATITUDE,
                piexif.GPSIFD.GPSLongitudeRef: b"E",
                piexif.GPSIFD.GPSLongitude: ((13, 1), (24, 1), (5678, 100)),
            },
        }
    )
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(out, "JPEG", exif=exif)
    data = out.getvalue()
    assert GPS_BYTES in data
    return data


def pdf_with_author(author: str) -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    writer.add_metadata({"/Author": author, "/Title": "Report"})
    out = io.BytesIO()
    writer.write(out)
    data = out.getvalue()
    assert author.encode() in data
    return data


def file_items(show_output: str) -> dict[str, tuple[str, int]]:
    """{decrypted file name: (item id, size)} from `reader show`'s output."""
    found = re.findall(
        r"── file #\d+ · [^\n]*?([0-9a-f]{32})[^\n]*\nfile: ([^\n]*) · ([\d,]+) bytes", show_output
    )
    return {name: (item_id, int(size.replace(",", ""))) for item_id, name, size in found}


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(p.relative_to(folder)): (stat.S_IMODE(p.stat().st_mode), p.read_bytes())
        for p in files_under(folder)
    }


def test_init_sets_up_a_private_data_folder(reader: ReaderSetup) -> None:
    """init leaves a 0700 data folder: an encrypted identity, a 0600 config and a 0600 token."""
    data = reader.data_dir
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for name in ("identity.age", "config.json", "token.json"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name
    assert (data / "identity.age").read_bytes().startswith(b"age-encryption.org/v1\n")
    assert reader.journalist.passphrase not in (data / "config.json").read_text()


def test_end_to_end_sync_show_export_reply(reader: ReaderSetup, tmp_path: Path) -> None:
    """A source sends a message, a JPEG with GPS and a PDF with an author; the reader shows them,
    exports them stripped, replies, and the source reads the reply; only ciphertext is cached."""
    canary = f"message-canary-{uuid.uuid4().hex}"
    author = f"AuthorCanary{uuid.uuid4().hex[:12]}"
    jpeg, pdf = jpeg_with_gps(), pdf_with_author(author)
    files = [("holiday.jpg", jpeg, "image/jpeg"), ("leak.pdf", pdf, "application/pdf")]
    source, codename = new_source(reader.server, f"Hello newsroom. {canary}", files=files)

    synced = reader.run("sync")
    assert "CORRUPTED" not in synced.stdout
    assert re.search(r"[1-9]\d* item\(s\) downloaded", synced.stdout), synced.stdout
    listed = reader.run("list").stdout
    mine = reader.newest_source()
    assert mine.id in listed

    shown = reader.unlocked("show", mine.id).stdout
    assert canary in shown
    items = file_items(shown)
    assert set(items) == {"holiday.jpg", "leak.pdf"}, shown
    assert items["holiday.jpg"][1] == len(jpeg)
    assert items["leak.pdf"][1] == len(pdf)

    out_dir = tmp_path / "exported"
    out_dir.mkdir()
    photo = reader.unlocked("export", items["holiday.jpg"][0], "--to", out_dir).stdout
    assert "Metadata removed" in photo, photo
    assert "GPS" in photo, photo
    document = reader.unlocked("export", items["leak.pdf"][0], "--to", out_dir).stdout
    assert author in document, document  # shown as removed
    assert sorted(p.name for p in files_under(out_dir)) == ["holiday.jpg", "leak.pdf"]
    exported_jpeg = (out_dir / "holiday.jpg").read_bytes()
    assert GPS_BYTES not in exported_jpeg
    exif = piexif.load(exported_jpeg)
    assert not exif["GPS"], exif
    assert not exif["0th"], exif
    with Image.open(out_dir / "holiday.jpg") as image:
        assert image.size == (32, 32)
    metadata = PdfReader(out_dir / "leak.pdf").metadata
    assert metadata is None or metadata.author in (None, ""), metadata
    assert author.encode() not in (out_dir / "leak.pdf").read_bytes()

    reply_text = f"Thank you, we received both files. reply-{uuid.uuid4().hex[:8]}"
    sent = reader.run("reply", mine.id, "--message", reply_text).stdout
    assert "sent" in sent
    # The reply is encrypted to this device too: after a sync the reader shows it.
    reader.run("sync")
    assert reply_text in reader.unlocked("show", mine.id).stdout

    web = Source(reader.server.url)
    assert web.login(codename).status_code == 303
    page = web.http.get("/conversation")
    assert page.status_code == 200
    assert html.escape(reply_text) in page.text
    web.http.close()
    source.http.close()

    for path in files_under(reader.data_dir):
        data = path.read_bytes()
        for secret in (canary.encode(), author.encode(), GPS_BYTES, reply_text.encode()):
            assert secret not in data, f"plaintext in {path}"


def test_hostile_file_names_export_under_safe_names(reader: ReaderSetup, tmp_path: Path) -> None:
    """Files named ../../.bashrc, with HTML or with rich markup are shown literally and exported
    under safe names inside the chosen folder."""
    names = ["../../.bashrc", "<img src=x onerror=alert(1)>.txt", "[bold red]x[/bold red].txt"]
    files = [(name, f"content {i}\n".encode(), "text/plain") for i, name in enumerate(names)]
    source, _ = new_source(reader.server, "files with odd names", files=files)
    source.http.close()
    reader.run("sync")
    mine = reader.newest_source()
    shown = reader.unlocked("show", mine.id).stdout
    items = file_items(shown)
    assert set(items) == set(names), shown

    target = tmp_path / "deep" / "export"
    target.mkdir(parents=True)
    for name in names:
        result = reader.unlocked("export", items[name][0], "--to", target)
        assert result.stdout.startswith(f"Exported {name} to {target}/"), result.stdout
    exported = files_under(tmp_path)
    assert all(p.parent == target for p in exported), exported
    assert sorted(p.name for p in exported) == sorted(safe_name(n) for n in names)
    assert not (tmp_path / ".bashrc").exists()
    assert not any(p.name.startswith(".") for p in exported)


def test_wrong_identity_passphrase_is_a_clear_error_and_changes_nothing(
    reader: ReaderSetup, tmp_path: Path
) -> None:
    """show and export with a wrong identity passphrase fail with a clear message, and neither
    the data folder nor the export folder changes."""
    source, _ = new_source(
        reader.server, "short message", files=[("a.txt", b"abc\n", "text/plain")]
    )
    source.http.close()
    reader.run("sync")
    mine = reader.newest_source()
    (item_id, _size), *_ = file_items(reader.unlocked("show", mine.id).stdout).values()

    wrong = tmp_path / "wrong-passphrase"
    wrong.write_text("not the identity passphrase\n")
    target = tmp_path / "export"
    target.mkdir()
    before = snapshot(reader.data_dir)
    for args in (("show", mine.id), ("export", item_id, "--to", target)):
        result = reader.run(*args, "--identity-passphrase-file", wrong, check=False)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "passphrase does not open the identity file" in result.stderr
        assert "Traceback" not in result.stderr
        assert "short message" not in result.stdout
    assert snapshot(reader.data_dir) == before
    assert files_under(target) == []


def test_expired_session_asks_for_reader_login(reader: ReaderSetup) -> None:
    """With the token revoked on the server, sync says to run `reader login`; after it, sync
    works again."""
    run_cli("token", "revoke", reader.instance, reader.journalist.username)
    refused = reader.run("sync", check=False)
    assert refused.returncode == 1
    assert "run `sealdrop reader login`" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    assert not (reader.data_dir / "token.json").exists()
    reader.run(
        "login",
        "--passphrase-file",
        reader.account_passphrase_file,
        "--totp",
        reader.journalist.fresh_code(),
    )
    assert stat.S_IMODE((reader.data_dir / "token.json").stat().st_mode) == 0o600
    reader.run("sync")
