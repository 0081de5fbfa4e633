"""`sealdrop reader` under test: a real server, a journalist account and a reader data folder set
up by `reader init` (``reader_set_up``); the reader's commands run in this process
(``ReaderSetup.run``, typer's CliRunner: exit status, stdout and stderr apart, no terminal) or, for
what only a process shows (a pipe, a terminal, the entry point), as a process of their own
(``ReaderSetup.process``, ``on_terminal``); and what their output says. (Kept out of the test
modules so that the reader's commands can be tested in several modules, which pytest-xdist can run
in different workers.)"""

from __future__ import annotations

import io
import os
import pty
import re
import select
import stat
import struct
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import piexif
from PIL import Image
from pypdf import PdfWriter
from support_api import Account, Api, cli_account, new_source, start_instance
from support_http import cli_in_process
from support_light_identity import light_identity_kdf

from sealdrop.reader.profile import Profile
from sealdrop.reader.store import LocalSource, Store
from sealdrop.testing import ServerProcess, sealdrop_command

IDENTITY_PASSPHRASE = "correct horse battery staple reader"
# GPSLatitude 52° 31' 12.34" as piexif packs it (big-endian rationals, the "MM" byte order).
GPS_LATITUDE = ((52, 1), (31, 1), (1234, 100))
GPS_BYTES = struct.pack(">6L", 52, 1, 31, 1, 1234, 100)

# Wide, so that rich never wraps an id; no colour codes to parse around.
CLI_ENV = {"COLUMNS": "250", "NO_COLOR": "1"}


@dataclass
class ReaderSetup:
    instance: Path
    server: ServerProcess
    journalist: Account
    data_dir: Path
    account_passphrase_file: Path
    identity_passphrase_file: Path
    root: Path

    def run(
        self, *args: Any, check: bool = True, env: dict[str, str | None] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`sealdrop reader ARGS --data-dir …` run in this process, without a terminal."""
        result = cli_in_process(
            "reader", *args, "--data-dir", self.data_dir, env={**CLI_ENV, **(env or {})}
        )
        if check:
            assert result.returncode == 0, result.stdout + result.stderr
        return result

    def process(self, *args: Any, check: bool = True) -> subprocess.CompletedProcess[str]:
        """`sealdrop reader ARGS --data-dir …` in a child process, without a terminal."""
        result = subprocess.run(
            self.command(*args),
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, **CLI_ENV},
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if check:
            assert result.returncode == 0, result.stdout + result.stderr
        return result

    def command(self, *args: Any) -> list[str]:
        return sealdrop_command("reader", *args, "--data-dir", self.data_dir)

    def unlocked(self, *args: Any, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(
            *args, "--identity-passphrase-file", self.identity_passphrase_file, check=check
        )

    def newest_source(self) -> LocalSource:
        with Store(self.data_dir / "reader.sqlite3") as store:
            return max(store.sources(), key=lambda s: s.version)

    def local(self) -> Store:
        """The reader's local database, to check what a command left in it."""
        return Store(Profile(self.data_dir).db_path)

    def cached(self) -> set[str]:
        """The item ids whose ciphertext is in the reader's cache."""
        return {p.name for p in Profile(self.data_dir).cache_dir.iterdir()}

    @contextmanager
    def api(self) -> Iterator[Api]:
        """The journalist API with the reader's own token, to see what the server holds."""
        token = Profile(self.data_dir).load_token()
        assert token is not None
        api = Api(self.server, token)
        try:
            yield api
        finally:
            api.http.close()


def reader_init(instance: Path, server: ServerProcess, username: str, root: Path) -> ReaderSetup:
    """A new journalist account on ``server``'s instance, and `reader init` done with it into a
    data folder under ``root`` (its secrets in files there)."""
    journalist = cli_account(instance, username)
    secrets = root / "secrets"
    secrets.mkdir(mode=0o700)
    identity_file = secrets / "identity-passphrase"
    identity_file.write_text(IDENTITY_PASSPHRASE + "\n")
    account_file = secrets / "account-passphrase"
    account_file.write_text(journalist.passphrase + "\n")
    setup = ReaderSetup(
        instance, server, journalist, root / "reader-data", account_file, identity_file, root
    )
    with light_identity_kdf():  # a real identity, a light scrypt: support_light_identity
        setup.run(
            *init_arguments(server, journalist.username, identity_file, account_file),
            "--device-name",
            "laptop",
            "--totp",
            journalist.fresh_code(),
        )
    return setup


def init_arguments(
    server: ServerProcess, username: str, identity_file: Path, account_file: Path
) -> list[Any]:
    """`reader init` against ``server``'s API as ``username``, the passphrases from files (the
    TOTP code still to add)."""
    return [
        "init",
        "--server",
        server.api_url,
        "--username",
        username,
        "--identity-passphrase-file",
        identity_file,
        "--passphrase-file",
        account_file,
    ]


def reader_set_up(root: Path) -> Iterator[ReaderSetup]:
    """For a module fixture: a server, a journalist account, and `reader init` done against its
    journalist API; the server stops at the end."""
    instance, server = start_instance(root)
    try:
        yield reader_init(instance, server, "reporter", root)
    finally:
        server.stop()


def another_reader(reader: ReaderSetup, root: Path) -> ReaderSetup:
    """A second journalist with a reader of their own on ``reader``'s server: for a test that
    changes what the account can do (revokes its tokens, say), which other tests must not see."""
    return reader_init(reader.instance, reader.server, f"solo{uuid.uuid4().hex[:8]}", root)


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


def item_ids(show_output: str) -> dict[str, str]:
    """{message or reply text: item id} from `reader show`'s output (one-line texts)."""
    found = re.findall(
        r"── (?:message|reply) #\d+ · [^\n]*?([0-9a-f]{32})[^\n]*\n([^\n]*)", show_output
    )
    return {text: item_id for item_id, text in found}


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(p.relative_to(folder)): (stat.S_IMODE(p.stat().st_mode), p.read_bytes())
        for p in files_under(folder)
    }


def listed(reader: ReaderSetup, source_id: str) -> tuple[int, int, bool]:
    """(unread, items, starred) of a source in `reader list`'s table."""
    line = next(row for row in reader.run("list").stdout.splitlines() if source_id in row)
    cells = [cell.strip() for cell in line.split("│")[1:-1]]  # outside the table's borders
    at = cells.index(source_id)
    return int(cells[at + 1]), int(cells[at + 2]), cells[at + 3] == "★"


def synced_source(reader: ReaderSetup, *messages: str) -> LocalSource:
    """A new source that sent ``messages`` (one submission each), synced to the reader."""
    source, _ = new_source(reader.server, messages[0])
    for message in messages[1:]:
        assert source.submit(message).status_code == 303
    source.http.close()
    reader.run("sync")
    return reader.newest_source()


def on_terminal(reader: ReaderSetup, *args: Any, typed: str | None = None) -> tuple[int, str, str]:
    """`sealdrop reader ARGS` as a process with stderr on a pseudo-terminal, and stdin too when
    ``typed`` is given (typed there at once): (exit code, stdout, everything the terminal
    received)."""
    master, slave = pty.openpty()
    with tempfile.TemporaryFile() as stdout:
        try:
            child = subprocess.Popen(
                reader.command(*args),
                stdin=subprocess.DEVNULL if typed is None else slave,
                stdout=stdout,
                stderr=slave,
                env={**os.environ, **CLI_ENV},
            )
        finally:
            os.close(slave)
        try:
            if typed is not None:
                os.write(master, typed.encode())
            transcript = b""
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                ready, _, _ = select.select([master], [], [], 0.5)
                if not ready:
                    continue
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child is gone and the terminal closed
                    break
                if not chunk:
                    break
                transcript += chunk
            code = child.wait(timeout=60)
        finally:
            os.close(master)
        stdout.seek(0)
        return code, stdout.read().decode(), transcript.decode(errors="replace")
