"""`sealdrop reader` end to end, run as a subprocess against a real server: init (identity made and
registered), sync, show (decrypted in memory), export through mat2 (metadata gone, read back),
reply (the source reads it on the web), hostile file names, a wrong identity passphrase, a
scan of the reader's data folder for plaintext, star, seen and delete (checked on the server too,
with the reader's own token), a delete confirmed on a terminal or refused without one, and the
decryption progress bar, drawn only on a terminal.

One server and one reader data folder serve the module (logins are rate-limited and cost an
Argon2 verification); every test makes its own source.
"""

from __future__ import annotations

import html
import io
import json
import os
import pty
import re
import select
import shutil
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
import pytest
import typer
from PIL import Image
from pypdf import PdfReader, PdfWriter
from support_api import Account, Api, cli_account, new_source, start_instance
from support_http import Source, run_cli

from sealdrop.cli.reader import reader_app
from sealdrop.reader.export import safe_name
from sealdrop.reader.keystore import create_identity
from sealdrop.reader.profile import Profile
from sealdrop.reader.store import LocalSource, Store
from sealdrop.testing import ServerProcess, sealdrop_command

# Each command is a process of its own, and the module sets up a server and a reader.
pytestmark = pytest.mark.slow

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

    def run(self, *args: Any, check: bool = True) -> subprocess.CompletedProcess[str]:
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


def item_ids(show_output: str) -> dict[str, str]:
    """{message or reply text: item id} from `reader show`'s output (one-line texts)."""
    found = re.findall(
        r"── (?:message|reply) #\d+ · [^\n]*?([0-9a-f]{32})[^\n]*\n([^\n]*)", show_output
    )
    return {text: item_id for item_id, text in found}


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
    """`sealdrop reader ARGS` with stderr on a pseudo-terminal, and stdin too when ``typed`` is
    given (typed there at once): (exit code, stdout, everything the terminal received)."""
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


def test_a_reply_is_in_the_conversation_at_once(reader: ReaderSetup) -> None:
    """`reader reply` syncs after sending, as the local web interface does: the reply shows in
    `reader show`, and its ciphertext is cached, with no `reader sync` in between."""
    mine = synced_source(reader, "a question")
    before = reader.cached()
    sent = reader.run("reply", mine.id, "--message", "an answer at once").stdout
    assert "sent" in sent
    ids = item_ids(reader.unlocked("show", mine.id).stdout)
    assert "an answer at once" in ids
    assert ids["an answer at once"] in reader.cached() - before


def test_star_and_unstar_a_source(reader: ReaderSetup) -> None:
    """`reader star PSEUDONYM` sets the shared flag on the server and in `reader list`;
    `--off` (here by id) clears it on both."""
    mine = synced_source(reader, "a source to star")
    assert not listed(reader, mine.id)[2]

    starred = reader.run("star", mine.pseudonym)
    assert "Starred" in starred.stdout
    assert listed(reader, mine.id)[2]
    with reader.api() as api:
        assert api.source(mine.id)["starred"] is True

    reader.run("star", mine.id, "--off")
    assert not listed(reader, mine.id)[2]
    with reader.api() as api:
        assert api.source(mine.id)["starred"] is False


def test_seen_marks_every_submission_seen(reader: ReaderSetup) -> None:
    """`reader seen SOURCE` marks the source's submissions seen for this journalist: the unread
    count in `reader list` drops to 0, and the server agrees."""
    mine = synced_source(reader, "first unread", "second unread")
    unread, items, _ = listed(reader, mine.id)
    assert (unread, items) == (2, 2)

    result = reader.run("seen", mine.pseudonym)
    assert "2 submission(s)" in result.stdout, result.stdout
    assert listed(reader, mine.id)[:2] == (0, 2)
    with reader.api() as api:
        assert api.source(mine.id)["unread"] == 0
        assert all(item["seen"] for item in api.submissions(mine.id))


def test_delete_items_and_then_the_source_with_yes(reader: ReaderSetup) -> None:
    """`reader delete ITEM --yes` deletes a submission and a reply, on the server and here (cached
    ciphertext included), the other items stay; `reader delete PSEUDONYM --yes` then deletes
    the whole source on both sides."""
    mine = synced_source(reader, "delete me", "keep me")
    reader.run("reply", mine.id, "--message", "a reply to delete")
    reader.run("sync")
    ids = item_ids(reader.unlocked("show", mine.id).stdout)
    assert set(ids) == {"delete me", "keep me", "a reply to delete"}
    assert set(ids.values()) <= reader.cached()

    for text in ("delete me", "a reply to delete"):
        deleted = reader.run("delete", ids[text], "--yes")
        assert "Deleted" in deleted.stdout, deleted.stdout
    kept = ids["keep me"]
    with reader.local() as store:
        assert {item.id for item in store.items(mine.id)} == {kept}
    assert ids["delete me"] not in reader.cached()
    assert ids["a reply to delete"] not in reader.cached()
    assert set(item_ids(reader.unlocked("show", mine.id).stdout)) == {"keep me"}
    with reader.api() as api:
        assert [item["id"] for item in api.submissions(mine.id)] == [kept]
        assert api.replies(mine.id) == []

    reader.run("delete", mine.pseudonym, "--yes")
    with reader.local() as store:
        assert store.source(mine.id) is None
        assert store.items(mine.id) == []
    assert kept not in reader.cached()
    assert mine.id not in reader.run("list").stdout
    with reader.api() as api:
        assert api.get(f"/sources/{mine.id}").status_code == 404


def test_delete_without_yes_and_without_a_terminal_refuses(reader: ReaderSetup) -> None:
    """Without --yes and with stdin not a terminal, delete (of a source or of an item) fails with
    a clear error and deletes nothing, here or on the server."""
    mine = synced_source(reader, "must survive")
    (item_id,) = item_ids(reader.unlocked("show", mine.id).stdout).values()
    before = snapshot(reader.data_dir)

    for target in (mine.pseudonym, mine.id, item_id):
        refused = reader.run("delete", target, check=False)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "pass --yes" in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
    assert snapshot(reader.data_dir) == before
    assert item_id in reader.cached()
    with reader.api() as api:
        assert [item["id"] for item in api.submissions(mine.id)] == [item_id]


def test_delete_asks_on_a_terminal(reader: ReaderSetup) -> None:
    """On a terminal, delete asks first: "n" keeps the item (exit 1), "y" deletes it."""
    mine = synced_source(reader, "asked about")
    (item_id,) = item_ids(reader.unlocked("show", mine.id).stdout).values()

    code, _, shown = on_terminal(reader, "delete", item_id, typed="n\n")
    assert code == 1, shown
    assert "Delete message #1" in shown
    assert "nothing deleted" in shown
    with reader.api() as api:
        assert len(api.submissions(mine.id)) == 1

    code, stdout, shown = on_terminal(reader, "delete", item_id, typed="y\n")
    assert code == 0, shown
    assert "Deleted message #1" in stdout
    with reader.api() as api:
        assert api.submissions(mine.id) == []
    assert item_id not in reader.cached()


def test_export_of_a_large_file_shows_progress_only_on_a_terminal(
    reader: ReaderSetup, tmp_path: Path
) -> None:
    """Exporting a file over 1 MiB draws a decryption progress bar on stderr when stderr is a
    terminal, and writes nothing of the kind into a pipe; both exports are the file."""
    content = os.urandom(3 * 1024 * 1024 // 2)
    source, _ = new_source(
        reader.server, "a large file", files=[("large.bin", content, "application/octet-stream")]
    )
    source.http.close()
    reader.run("sync")
    mine = reader.newest_source()
    ((item_id, size),) = file_items(reader.unlocked("show", mine.id).stdout).values()
    assert size == len(content)

    piped_to = tmp_path / "piped"
    piped_to.mkdir()
    piped = reader.unlocked("export", item_id, "--to", piped_to, "--no-strip")
    assert "decrypting" not in piped.stderr, piped.stderr
    assert (piped_to / "large.bin").read_bytes() == content

    shown_to = tmp_path / "terminal"
    shown_to.mkdir()
    code, stdout, shown = on_terminal(
        reader,
        "export",
        item_id,
        "--to",
        shown_to,
        "--no-strip",
        "--identity-passphrase-file",
        reader.identity_passphrase_file,
    )
    assert code == 0, stdout + shown
    assert f"decrypting file {item_id[:8]}" in shown, shown
    assert (shown_to / "large.bin").read_bytes() == content


# Names that lie about themselves: each invisible character must be shown as <U+XXXX>.
LYING_NAMES = {
    "evil\u202etxt.exe": "evil<U+202E>txt.exe",
    "report\u2066\u200f.pdf\u2069.sh": "report<U+2066><U+200F>.pdf<U+2069>.sh",
    "in\u200bvisible\u2028line.txt": "in<U+200B>visible<U+2028>line.txt",
}


def test_show_and_export_neutralise_invisible_characters_in_file_names(
    reader: ReaderSetup, tmp_path: Path
) -> None:
    """A file name with a right-to-left override, isolates, marks, a zero-width space or a line
    separator is shown by `show` and `export` with each of them as a visible <U+XXXX>, and is
    exported under a name without them."""
    files = [(name, b"x\n", "text/plain") for name in LYING_NAMES]
    source, _ = new_source(reader.server, "names that lie", files=files)
    source.http.close()
    reader.run("sync")
    shown = reader.unlocked("show", reader.newest_source().id).stdout
    items = file_items(shown)
    assert set(items) == set(LYING_NAMES.values()), shown
    for name, visible in LYING_NAMES.items():
        for invisible in set(name) - set(visible):
            assert invisible not in shown, (name, shown)
    target = tmp_path / "export"
    target.mkdir()
    for name, visible in LYING_NAMES.items():
        exported = reader.unlocked("export", items[visible][0], "--to", target).stdout
        assert exported.startswith(f"Exported {visible} to {target}/{safe_name(name)}"), exported
    assert sorted(p.name for p in files_under(target)) == sorted(map(safe_name, LYING_NAMES))
    assert sorted(map(safe_name, LYING_NAMES)) == [
        "eviltxt.exe",
        "invisibleline.txt",
        "report.pdf.sh",
    ]


def test_show_prints_markup_and_multi_line_messages_as_sent(reader: ReaderSetup) -> None:
    """A message sent with CRLF line endings (as browsers send them) and rich markup in it is
    printed with plain line breaks, no U+FFFD, and every bracket as typed."""
    message = "first line\r\nsecond [red]line[/]\r\n[bold]third[/bold] [/]\rfourth"
    mine = synced_source(reader, message)
    shown = reader.unlocked("show", mine.id).stdout
    assert "first line\nsecond [red]line[/]\n[bold]third[/bold] [/]\nfourth\n" in shown, shown
    assert "\ufffd" not in shown
    assert "\r" not in shown


def test_show_says_why_items_do_not_open_on_a_later_device(
    reader: ReaderSetup, tmp_path: Path
) -> None:
    """On a device whose key was registered after a message and a file arrived, `show` prints a
    reason for each (not a blank line) and says which keys can open them."""
    source, _ = new_source(reader.server, "sent before", files=[("a.txt", b"a\n", "text/plain")])
    source.http.close()
    reader.run("sync")
    mine = reader.newest_source()
    later = tmp_path / "later-device"
    shutil.copytree(reader.data_dir, later)
    (later / "identity.age").unlink()
    create_identity(later / "identity.age", IDENTITY_PASSPHRASE)  # a key these never saw
    shown = subprocess.run(
        sealdrop_command(
            "reader", "--data-dir", later, "show", mine.id,
            "--identity-passphrase-file", reader.identity_passphrase_file,
        ),
        capture_output=True, text=True, timeout=120, env={**os.environ, **CLI_ENV},
        stdin=subprocess.DEVNULL, check=True,
    ).stdout  # fmt: skip
    assert "[cannot decrypt: not encrypted to this device's key]" in shown, shown
    assert "[file: its name and size are not encrypted to this device's key]" in shown, shown
    assert "2 item(s) could not be decrypted here" in shown, shown
    assert "an organisation key, or another device" in shown, shown
    assert "\n\n\n" not in shown, shown  # no blank line where a reason should be


def test_list_json_and_whole_ids_in_a_narrow_terminal(reader: ReaderSetup) -> None:
    """`reader list --json` prints one JSON object per source; the table never cuts an id, even
    at 80 columns."""
    mine = synced_source(reader, "listed")
    lines = reader.run("list", "--json").stdout.splitlines()
    found = [json.loads(line) for line in lines]
    (entry,) = [e for e in found if e["id"] == mine.id]
    assert entry == {
        "id": mine.id,
        "pseudonym": mine.pseudonym,
        "unread": 1,
        "items": 1,
        "starred": False,
        "assignee": None,
        "labels": [],
    }
    narrow = subprocess.run(
        reader.command("list"), capture_output=True, text=True, timeout=120, check=True,
        env={**os.environ, **CLI_ENV, "COLUMNS": "80"}, stdin=subprocess.DEVNULL,
    ).stdout  # fmt: skip
    for source in found:
        assert source["id"] in narrow, narrow


def test_init_against_the_source_listener_says_which_url_to_give(
    reader: ReaderSetup, tmp_path: Path
) -> None:
    """`reader init --server` with the source listener's URL says it is not a Sealdrop journalist
    API and which URL is expected, before any passphrase is asked for or sent; nothing is set
    up."""
    data = tmp_path / "wrong-server"
    result = subprocess.run(
        sealdrop_command(
            "reader", "init", "--server", reader.server.url, "--username", "reporter",
            "--data-dir", data,
            "--identity-passphrase-file", reader.identity_passphrase_file,
            "--passphrase-file", reader.account_passphrase_file, "--totp", "000000",
        ),
        capture_output=True, text=True, timeout=120, env={**os.environ, **CLI_ENV},
        stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    error = " ".join(result.stderr.split())
    assert "is not a Sealdrop journalist API" in error, error
    assert "http://127.0.0.1:8081" in error, error
    assert "onion" in error, error
    assert "Traceback" not in error
    assert not (data / "config.json").exists()
    assert not (data / "identity.age").exists()


def test_export_without_to_goes_to_the_private_exports_folder(reader: ReaderSetup) -> None:
    """`reader export ITEM` without --to writes into exports/ of the data folder, made 0700."""
    source, _ = new_source(reader.server, "x", files=[("plain.txt", b"plain\n", "text/plain")])
    source.http.close()
    reader.run("sync")
    ((item_id, _),) = file_items(reader.unlocked("show", reader.newest_source().id).stdout).values()
    exported = reader.unlocked("export", item_id, "--no-strip").stdout
    folder = reader.data_dir / "exports"
    assert f"to {folder}/plain" in exported, exported
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert any(p.read_bytes() == b"plain\n" for p in files_under(folder))


@pytest.fixture(scope="module")
def file_source(reader: ReaderSetup) -> tuple[LocalSource, str]:
    """A synced source that sent a message and a file, and the file item's id."""
    source, _ = new_source(
        reader.server, "for every command", files=[("f.txt", b"f\n", "text/plain")]
    )
    source.http.close()
    reader.run("sync")
    mine = reader.newest_source()
    ((item_id, _),) = file_items(reader.unlocked("show", mine.id).stdout).values()
    return mine, item_id


def group_option_case(
    reader: ReaderSetup, mine: LocalSource, item_id: str, tmp: Path, command: str
) -> tuple[list[str | Path], int, str]:
    """(arguments, exit code, text its output must hold) for ``command``: it does its work in the
    data folder, or fails in a way that shows it found that folder."""
    unlock: list[str | Path] = ["--identity-passphrase-file", reader.identity_passphrase_file]
    # Only for login: every fresh code moves the account's used TOTP step on.
    code = reader.journalist.fresh_code() if command == "login" else ""
    (tmp / "to").mkdir()
    cases: dict[str, tuple[list[str | Path], int, str]] = {
        "init": (["--server", reader.server.api_url, "--username", "x"], 1, "already set up in"),
        "login": (
            ["--passphrase-file", reader.account_passphrase_file, "--totp", code],
            0,
            "Logged",
        ),
        "sync": ([], 0, "source(s) updated"),
        "list": ([], 0, mine.id),
        "sources": ([], 0, mine.id),
        "assign": ([mine.id, "--nobody"], 0, "assigned to nobody"),
        "label": ([mine.id, "--add", "checked"], 0, "checked"),
        "show": ([mine.id, *unlock], 0, "for every command"),
        "export": ([item_id, "--to", tmp / "to", "--no-strip", *unlock], 0, "Exported f.txt"),
        "reply": ([mine.id, "--message", "a reply"], 0, "sent to"),
        "star": ([mine.id], 0, "Starred"),
        "seen": ([mine.id], 0, "marked seen"),
        "delete": ([mine.id], 1, "pass --yes"),
    }
    return cases[command]


READER_COMMANDS = sorted(typer.main.get_command(reader_app).commands)  # type: ignore[attr-defined]
CASE_NAMES = ["init", "login", "sync", "list", "show", "export", "reply", "star", "seen", "delete"]
CASE_NAMES += ["sources", "assign", "label"]


def test_the_data_dir_test_covers_every_reader_command() -> None:
    """Every `sealdrop reader` command is in the --data-dir test below (ui is run apart)."""
    assert sorted(["ui", *CASE_NAMES]) == READER_COMMANDS


def test_two_different_data_dirs_are_refused(reader: ReaderSetup, tmp_path: Path) -> None:
    """--data-dir before and after the command naming two folders is an error, not a guess."""
    other = tmp_path / "other"
    result = subprocess.run(
        sealdrop_command("reader", "--data-dir", other, "list", "--data-dir", reader.data_dir),
        capture_output=True, text=True, timeout=120, env={**os.environ, **CLI_ENV},
        stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert "given twice" in result.stderr
    assert not other.exists()


@pytest.mark.parametrize("command", READER_COMMANDS)
def test_data_dir_before_the_command_is_the_folder_every_command_uses(
    reader: ReaderSetup, file_source: tuple[LocalSource, str], tmp_path: Path, command: str
) -> None:
    """`sealdrop reader --data-dir DIR COMMAND` uses DIR for every command: with HOME an empty
    folder, each works on DIR (or refuses for a reason found in DIR) and writes nothing in HOME."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "SEALDROP_READER_DIR"}
    env.update(CLI_ENV, HOME=str(home))
    group = sealdrop_command("reader", "--data-dir", reader.data_dir, command)
    if command == "ui":
        process = subprocess.Popen(
            group, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
            text=True, env=env,
        )  # fmt: skip
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert process.stderr is not None
            assert "?token=" in line, line + (process.stderr.read() if process.poll() else "")
        finally:
            process.terminate()
            process.wait(timeout=30)
    else:
        mine, item_id = file_source
        args, code, expected = group_option_case(reader, mine, item_id, tmp_path, command)
        result = subprocess.run(
            [*group, *map(str, args)], capture_output=True, text=True, timeout=120, env=env,
            stdin=subprocess.DEVNULL, check=False,
        )  # fmt: skip
        assert result.returncode == code, result.stdout + result.stderr
        assert expected in result.stdout + result.stderr, result.stdout + result.stderr
        assert str(reader.data_dir) in result.stderr or command != "init"
    assert sorted(home.rglob("*")) == []
