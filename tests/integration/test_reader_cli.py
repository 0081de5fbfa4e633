"""`sealdrop reader` reading what sources sent, against a real server: init (identity made and
registered), sync, show (decrypted in memory), export through mat2 (metadata gone, read back),
reply (the source reads it on the web), hostile and lying file names, a wrong identity passphrase,
a later device that cannot open older items, a scan of the reader's data folder for plaintext, and
the decryption progress bar, drawn only on a terminal.

The commands run in this process (support_reader_cli); what only a process shows runs as one: a
wrong passphrase's exit status and stderr, an export into a pipe and onto a terminal. One server
and one reader data folder serve the module (logins are rate-limited and cost an Argon2
verification); every test makes its own source and looks only at it.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import piexif
import pytest
from PIL import Image
from pypdf import PdfReader
from support_api import new_source
from support_http import Source, cli_in_process
from support_light_identity import light_identity_kdf
from support_reader_cli import (
    CLI_ENV,
    GPS_BYTES,
    IDENTITY_PASSPHRASE,
    ReaderSetup,
    file_items,
    files_under,
    jpeg_with_gps,
    on_terminal,
    pdf_with_author,
    reader_set_up,
    snapshot,
    synced_source,
)

from sealdrop.reader.export import safe_name
from sealdrop.reader.keystore import create_identity

# The module sets up a server and a reader; exports run mat2.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReaderSetup]:
    """A server, a journalist account, and `reader init` done against its journalist API."""
    yield from reader_set_up(tmp_path_factory.mktemp("reader-cli"))


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
        # A process: its exit status, and the error on stderr, never on stdout.
        result = reader.process(*args, "--identity-passphrase-file", wrong, check=False)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "passphrase does not open the identity file" in result.stderr
        assert "Traceback" not in result.stderr
        assert "short message" not in result.stdout
    assert snapshot(reader.data_dir) == before
    assert files_under(target) == []


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
    piped = reader.process(
        "export",
        item_id,
        "--to",
        piped_to,
        "--no-strip",
        "--identity-passphrase-file",
        reader.identity_passphrase_file,
    )
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
    with light_identity_kdf():  # a key these never saw (support_light_identity)
        create_identity(later / "identity.age", IDENTITY_PASSPHRASE)
    showing = cli_in_process(
        "reader", "--data-dir", later, "show", mine.id,
        "--identity-passphrase-file", reader.identity_passphrase_file, env=CLI_ENV,
    )  # fmt: skip
    assert showing.returncode == 0, showing.stdout + showing.stderr
    shown = showing.stdout
    assert "[cannot decrypt: not encrypted to this device's key]" in shown, shown
    assert "[file: its name and size are not encrypted to this device's key]" in shown, shown
    assert "2 item(s) could not be decrypted here" in shown, shown
    assert "an organisation key, or another device" in shown, shown
    assert "\n\n\n" not in shown, shown  # no blank line where a reason should be
