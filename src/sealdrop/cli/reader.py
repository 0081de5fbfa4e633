"""``sealdrop reader …``: the journalist's local app, on the command line.

Keys stay on this machine: the age identity is created here (``reader init``), submissions are
decrypted here, in memory only (``reader show``), files reach the disk only through ``reader
export`` (via mat2), and replies are encrypted here before they are uploaded (``reader reply``).
Stars, seen marks and deletions (``reader star``, ``seen``, ``delete``) go to the server and then
to the local copy, as in the local web interface. Secrets come from hidden prompts, or from files
and environment variables for scripting.
"""

from __future__ import annotations

import dataclasses
import sys
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from sealdrop.cli.common import err, fail
from sealdrop.crypto.keys import Identity
from sealdrop.errors import DecryptionError, SealdropError
from sealdrop.reader.client import ApiClient, TokenExpired, check_connection, open_client
from sealdrop.reader.content import DecryptProgress, decrypt_item, file_info, seal_reply
from sealdrop.reader.export import export as export_file
from sealdrop.reader.keystore import create_identity, load_identity, public_key
from sealdrop.reader.profile import DEFAULT_DATA_DIR, Profile, ReaderConfig
from sealdrop.reader.store import CacheState, CiphertextCache, LocalItem, LocalSource, Store
from sealdrop.reader.sync import delete_item, delete_source, mark_source_seen, star_source
from sealdrop.reader.sync import sync as run_sync
from sealdrop.reader.ui import serve

reader_app = typer.Typer(
    help="The journalist's reader: keys, decryption and replies on this machine. Without a "
    "command: the local web interface (`reader ui`).",
    invoke_without_command=True,
)

DataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        envvar="SEALDROP_READER_DIR",
        help="The reader's data folder (created with mode 0700).",
    ),
]
IdentityPassphraseFile = Annotated[
    Path | None,
    typer.Option(
        envvar="SEALDROP_READER_IDENTITY_PASSPHRASE_FILE",
        help="Read the identity passphrase from this file instead of prompting.",
    ),
]
PassphraseFile = Annotated[
    Path | None,
    typer.Option(
        envvar="SEALDROP_READER_PASSPHRASE_FILE",
        help="Read the account passphrase from this file instead of prompting.",
    ),
]
Totp = Annotated[
    str | None,
    typer.Option(envvar="SEALDROP_READER_TOTP", help="The TOTP code (prompted if not given)."),
]
SourceArg = Annotated[str, typer.Argument(help="A source: its id, or its pseudonym.")]
Proxy = Annotated[
    str | None,
    typer.Option(
        help="Reach the server through this Tor SOCKS port, e.g. socks5h://127.0.0.1:9050 "
        "(needed for an .onion server; remembered for later commands)."
    ),
]

out = Console(highlight=False)


# -- secrets -----------------------------------------------------------------------------------


def _read_secret(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc}") from None
    return text.rstrip("\r\n")


def _identity_passphrase(path: Path | None, *, new: bool = False) -> str:
    if path is not None:
        return _read_secret(path)
    prompt = "New identity passphrase" if new else "Identity passphrase"
    return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=new, err=True))


def _credentials(passphrase_file: Path | None, totp: str | None) -> tuple[str, str]:
    if passphrase_file is not None:
        passphrase = _read_secret(passphrase_file)
    else:
        passphrase = str(typer.prompt("Account passphrase", hide_input=True, err=True))
    code = totp if totp is not None else str(typer.prompt("TOTP code", err=True))
    return passphrase, code.strip()


def _open_identity(profile: Profile, passphrase_file: Path | None) -> Identity:
    return load_identity(profile.identity_path, _identity_passphrase(passphrase_file))


# -- plumbing ----------------------------------------------------------------------------------


def _profile(data_dir: Path) -> Profile:
    try:
        return Profile(data_dir).ensure()
    except SealdropError as exc:
        raise fail(exc) from None


@contextmanager
def _errors(profile: Profile) -> Iterator[None]:
    """Report the reader's errors in one line each; an expired token says what to do."""
    try:
        yield
    except TokenExpired:
        profile.forget_token()
        err.print(
            "[bold red]error:[/] the session has expired (or was revoked): "
            "run `sealdrop reader login`"
        )
        raise typer.Exit(code=1) from None
    except SealdropError as exc:
        raise fail(exc) from None


@contextmanager
def _client(profile: Profile) -> Iterator[ApiClient]:
    client = open_client(profile)
    try:
        yield client
    finally:
        client.close()


@contextmanager
def _store(profile: Profile) -> Iterator[Store]:
    profile.load_config()  # fail early, with a hint, if init was never run
    store = Store(profile.db_path)
    try:
        yield store
    finally:
        store.close()


def _login(profile: Profile, config: ReaderConfig, passphrase: str, code: str) -> ApiClient:
    client = ApiClient(config.server, proxy=config.proxy)
    try:
        expires_at = client.login(config.username, passphrase, code)
    except BaseException:
        client.close()
        raise
    token = client.token
    assert token is not None
    profile.save_token(token, expires_at)
    return client


def _find_source(store: Store, wanted: str) -> LocalSource:
    found = store.source(wanted.lower()) if len(wanted) == 32 else None
    if found is not None:
        return found
    matches = [s for s in store.sources() if s.pseudonym == wanted or s.id.startswith(wanted)]
    if len(matches) != 1:
        what = "no source" if not matches else "several sources"
        raise typer.BadParameter(f"{what} match {wanted!r} (run `sealdrop reader list`)")
    return matches[0]


def _plain(text: str) -> Text:
    """Untrusted text for the terminal: no markup (a Text is never parsed), no control
    characters (no escape sequences), line breaks and tabs kept."""
    cleaned = "".join(
        ch if ch in "\n\t" or unicodedata.category(ch) not in {"Cc", "Cf"} else "\ufffd"
        for ch in text
    )
    return Text(cleaned)


def _size(size: int) -> str:
    return f"{size:,} bytes"


# Below this, decryption is over before a bar could be drawn; above it, it can take a while.
PROGRESS_FROM = 1024 * 1024


def _bars() -> Progress:
    """Transient byte-count progress bars on stderr (stdout stays clean for scripts)."""
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn())
    return Progress(*columns, TransferSpeedColumn(), console=err, transient=True)


@contextmanager
def _decrypting(item: LocalItem) -> Iterator[DecryptProgress | None]:
    """A progress callback for decrypting ``item`` that draws a bar, or None: only for an item
    over PROGRESS_FROM, and only when stderr is a terminal."""
    # isatty rather than rich's is_terminal, which FORCE_COLOR turns on: cursor movements have no
    # place in a log file, even a coloured one.
    if item.size <= PROGRESS_FROM or not err.file.isatty():
        yield None
        return
    with _bars() as bars:
        task = bars.add_task(f"decrypting {item.kind} {item.id[:8]}", total=item.size)

        def advance(done: int, total: int) -> None:
            bars.update(task, completed=done, total=total)

        yield advance


# -- commands ----------------------------------------------------------------------------------

OpenBrowser = Annotated[
    bool, typer.Option("--open", help="Also open the address in the default web browser.")
]


@reader_app.callback()
def reader_main(
    ctx: typer.Context,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    open_browser: OpenBrowser = False,
) -> None:
    """Without a command, start the local web interface (as `sealdrop reader ui`)."""
    if ctx.invoked_subcommand is None:
        ui(data_dir=data_dir, open_browser=open_browser)


@reader_app.command()
def ui(data_dir: DataDir = DEFAULT_DATA_DIR, open_browser: OpenBrowser = False) -> None:
    """Serve the local web interface on 127.0.0.1 (a random port, a one-time link)."""
    profile = _profile(data_dir)

    def announce(url: str) -> None:
        out.print(f"Open {url}", soft_wrap=True)
        out.print("(the link works once; stop the reader with Ctrl-C)")
        out.file.flush()

    with _errors(profile):
        serve(profile, open_browser=open_browser, announce=announce)


@reader_app.command()
def init(
    server: Annotated[str, typer.Option(help="The server's journalist API URL.")],
    username: Annotated[str, typer.Option(help="Your account's username.")],
    device_name: Annotated[
        str, typer.Option(help="A name for this device's key, shown to admins.")
    ] = "reader",
    data_dir: DataDir = DEFAULT_DATA_DIR,
    identity_passphrase_file: IdentityPassphraseFile = None,
    passphrase_file: PassphraseFile = None,
    totp: Totp = None,
    proxy: Proxy = None,
) -> None:
    """Create this device's age identity, log in, and register its public key."""
    profile = _profile(data_dir)
    with _errors(profile):
        if profile.config_path.exists():
            raise fail(SealdropError(f"a reader is already set up in {profile.root}"))
        check_connection(server, proxy)
        config = ReaderConfig(server=server, username=username, proxy=proxy)
        resume = profile.identity_path.exists()
        identity_passphrase = _identity_passphrase(identity_passphrase_file, new=not resume)
        if resume:
            # A previous init stopped after creating the identity: reuse it (if it opens).
            load_identity(profile.identity_path, identity_passphrase)
        passphrase, code = _credentials(passphrase_file, totp)
        with _login(profile, config, passphrase, code) as client:
            if resume:
                recipient = public_key(profile.identity_path)
            else:
                recipient = create_identity(profile.identity_path, identity_passphrase)
            key_id = client.register_key(recipient, device_name)
            profile.save_config(config)
    err.print(f"Identity created in {profile.identity_path} (public key {recipient}).")
    err.print(f"Registered as key {key_id} of {username}. Next: `sealdrop reader sync`.")


@reader_app.command()
def login(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    passphrase_file: PassphraseFile = None,
    totp: Totp = None,
    proxy: Proxy = None,
) -> None:
    """Log in again (the token lasts 8 hours)."""
    profile = _profile(data_dir)
    with _errors(profile):
        config = profile.load_config()
        if proxy is not None:
            # A new proxy (say, Tor Browser's 9150 instead of 9050) is kept for later commands.
            check_connection(config.server, proxy)
            config = dataclasses.replace(config, proxy=proxy)
        passphrase, code = _credentials(passphrase_file, totp)
        _login(profile, config, passphrase, code).close()
        profile.save_config(config)
    err.print(f"Logged in as {config.username}.")


@reader_app.command()
def sync(data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Fetch new sources, items and their ciphertext (verified, resumable)."""
    profile = _profile(data_dir)
    with (
        _errors(profile),
        _client(profile) as client,
        _store(profile) as store,
        _bars() as bars,
    ):
        tasks: dict[str, TaskID] = {}

        def advance(item: LocalItem, done: int, total: int) -> None:
            if item.id not in tasks:
                tasks[item.id] = bars.add_task(f"{item.kind} {item.id[:8]}", total=total)
            bars.update(tasks[item.id], completed=done)

        report = run_sync(client, store, profile.cache_dir, advance)
    out.print(
        f"{report.sources} source(s) updated, {len(report.downloaded)} item(s) downloaded, "
        f"{len(report.removed)} removed."
    )
    for item_id in report.corrupted:
        out.print(f"CORRUPTED (altered on the server, not kept): {item_id}")
    for item_id in report.failed:
        out.print(f"not downloaded (refused by the server; retried next sync): {item_id}")


@reader_app.command("list")
def list_sources(data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """List the synced sources: pseudonym, id, unread, items, starred."""
    profile = _profile(data_dir)
    with _errors(profile), _store(profile) as store:
        table = Table("pseudonym", "id", "unread", "items", "starred")
        for source in store.sources():
            table.add_row(
                _plain(source.pseudonym),
                source.id,
                str(source.unread),
                str(len(store.items(source.id))),
                "★" if source.starred else "",
            )
    out.print(table)


@reader_app.command()
def show(
    source: SourceArg,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    identity_passphrase_file: IdentityPassphraseFile = None,
) -> None:
    """Show a source's conversation, decrypted in memory (nothing decrypted is written)."""
    profile = _profile(data_dir)
    with _errors(profile), _store(profile) as store:
        found = _find_source(store, source)
        identity = _open_identity(profile, identity_passphrase_file)
        cache = CiphertextCache(profile.cache_dir)
        out.print(Text.assemble("Source ", _plain(found.pseudonym), f" ({found.id})"))
        for item in store.items(found.id):
            _show_item(cache, item, identity)


def _show_item(cache: CiphertextCache, item: LocalItem, identity: Identity) -> None:
    day = item.arrival_day or "-"
    heading = f"\n── {item.kind} #{item.seq} · {day} · {item.id}"
    if item.author:
        heading += f" · by {item.author}"
    out.print(_plain(heading))
    if item.kind == "file":
        try:
            info = file_info(item, identity)
        except DecryptionError:
            out.print("[file: metadata not encrypted to this device]")
            return
        state = "" if item.cache is CacheState.CACHED else f" ({item.cache.value})"
        out.print(Text.assemble("file: ", _plain(info.name), f" · {_size(info.size)}{state}"))
        return
    if item.cache is not CacheState.CACHED:
        out.print(f"[{item.cache.value}: run `sealdrop reader sync`]")
        return
    try:
        with _decrypting(item) as progress:
            plaintext = decrypt_item(cache, item, identity, progress)
        text = plaintext.decode("utf-8", errors="replace")
    except DecryptionError:
        what = "reply not encrypted to this device" if item.kind == "reply" else "cannot decrypt"
        out.print(f"[{what}]")
        return
    out.print(_plain(text))


@reader_app.command("export")
def export_item(
    item: Annotated[str, typer.Argument(help="The id of a file item (see `reader show`).")],
    to: Annotated[Path, typer.Option("--to", help="The folder to export into.")],
    keep_original: Annotated[
        bool, typer.Option(help="Also keep the unstripped file (NAME.original.EXT).")
    ] = False,
    no_strip: Annotated[
        bool, typer.Option("--no-strip", help="Export without removing metadata (mat2).")
    ] = False,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    identity_passphrase_file: IdentityPassphraseFile = None,
) -> None:
    """Decrypt a file into a folder, with its metadata removed by mat2 (unless --no-strip)."""
    profile = _profile(data_dir)
    with _errors(profile), _store(profile) as store:
        local = store.item(item.lower())
        if local is None or local.kind != "file":
            raise typer.BadParameter(f"no file item {item!r} (see `sealdrop reader show`)")
        identity = _open_identity(profile, identity_passphrase_file)
        info = file_info(local, identity)
        with _decrypting(local) as progress:
            plaintext = decrypt_item(CiphertextCache(profile.cache_dir), local, identity, progress)
        result = export_file(
            plaintext, info.name, to, strip_metadata=not no_strip, keep_original=keep_original
        )
    out.print(Text.assemble("Exported ", _plain(info.name), f" to {result.path}"))
    if result.warning:
        out.print(_plain(f"warning: {result.warning}"))
    elif result.cleaned:
        out.print("Metadata removed:" if result.removed else "No metadata found.")
        for entry in result.removed:
            out.print(_plain(f"  {entry}"))
    else:
        out.print("Metadata NOT removed (--no-strip).")
    if result.original is not None:
        out.print(f"Original kept (with its metadata) at {result.original}")


@reader_app.command()
def reply(
    source: SourceArg,
    message: Annotated[str | None, typer.Option(help="The reply's text.")] = None,
    file: Annotated[Path | None, typer.Option(help="Read the reply's text from a file.")] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Encrypt a reply here (to the source and every journalist's key) and upload it."""
    if (message is None) == (file is None):
        raise typer.BadParameter("give exactly one of --message and --file")
    text = message if message is not None else _read_text(file)
    profile = _profile(data_dir)
    with _errors(profile), _store(profile) as store, _client(profile) as client:
        found = _find_source(store, source)
        ciphertext = seal_reply(text, [found.reply_key, *client.reply_keys()])
        uploaded = client.upload_reply(found.id, ciphertext)
    out.print(f"Reply {uploaded.id} sent to {found.id}.")


@reader_app.command()
def star(
    source: SourceArg,
    off: Annotated[bool, typer.Option("--off", help="Remove the star instead.")] = False,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Star a source (or unstar it with --off): one flag, seen by every journalist."""
    profile = _profile(data_dir)
    with _errors(profile), _store(profile) as store, _client(profile) as client:
        found = _find_source(store, source)
        star_source(client, store, profile.cache_dir, found.id, not off)
    out.print(Text.assemble(f"{'Unstarred' if off else 'Starred'} ", _plain(found.pseudonym), "."))


@reader_app.command()
def seen(source: SourceArg, data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Mark a source's synced (downloaded) submissions as seen by you, for your unread count."""
    profile = _profile(data_dir)
    with _errors(profile), _store(profile) as store, _client(profile) as client:
        found = _find_source(store, source)
        marked = mark_source_seen(client, store, profile.cache_dir, found.id)
        now = store.source(found.id)
    out.print(
        Text.assemble(f"{marked} submission(s) of ", _plain(found.pseudonym), " marked seen.")
    )
    if now is not None and now.unread:
        # New since the last sync: not shown yet, so not marked.
        out.print(f"{now.unread} unread submission(s) not synced yet: run `sealdrop reader sync`.")


@reader_app.command()
def delete(
    target: Annotated[
        str,
        typer.Argument(
            metavar="SOURCE_OR_ITEM",
            help="A source (id or pseudonym: all its items go) or one item's id.",
        ),
    ],
    yes: Annotated[
        bool, typer.Option("--yes", help="Do not ask for confirmation (needed without a terminal).")
    ] = False,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Delete a source or one submission or reply, on the server (for everyone) and here."""
    profile = _profile(data_dir)
    remove: Callable[[ApiClient, Store, Path], object]
    with _errors(profile), _store(profile) as store, _client(profile) as client:
        item = store.item(target.lower()) if len(target) == 32 else None
        if item is not None:
            what = Text(f"{item.kind} #{item.seq} ({item.id})")
            remove = partial(delete_item, item=item)
        else:
            found = _find_source(store, target)
            count = len(store.items(found.id))
            what = Text.assemble(
                "source ", _plain(found.pseudonym), f" ({found.id}) with {count} item(s)"
            )
            remove = partial(delete_source, source_id=found.id)
        _confirm_delete(what, yes)
        remove(client, store, profile.cache_dir)
    out.print(Text.assemble("Deleted ", what, "."))


def _confirm_delete(what: Text, yes: bool) -> None:
    """Ask before deleting, unless --yes; without a terminal to ask on, refuse."""
    if yes:
        return
    if not sys.stdin.isatty():
        # A script that forgot --yes must not delete for good on a guess.
        raise fail(
            SealdropError(
                f"not deleting {what.plain}: stdin is not a terminal to confirm on; "
                "pass --yes to delete without asking"
            )
        )
    question = Text.assemble("Delete ", what, " on the server and here, for good?")
    # err: stdout stays for results; the prompt goes where the progress bars and errors go.
    if not typer.confirm(question.plain, err=True):
        raise fail(SealdropError("nothing deleted"))


def _read_text(path: Path | None) -> str:
    assert path is not None
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc}") from None
