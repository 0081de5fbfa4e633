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
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
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
from rich.table import Column, Table
from rich.text import Text

from sealdrop.cli.common import err, fail
from sealdrop.cli.reader_input import (
    DataDir,
    GroupDataDir,
    IdentityPassphraseFile,
    OpenBrowser,
    PassphraseFile,
    Proxy,
    SourceArg,
    Totp,
    ask_identity_passphrase,
    credentials,
    open_identity,
    profile_of,
)
from sealdrop.errors import NotHere, SealdropError, TokenExpired
from sealdrop.reader.client import ApiClient
from sealdrop.reader.connection import check_connection
from sealdrop.reader.content import DecryptProgress
from sealdrop.reader.display import WHY_CANNOT_DECRYPT, shown_name, shown_text
from sealdrop.reader.keystore import create_identity, load_identity, public_key
from sealdrop.reader.profile import Profile, ReaderConfig
from sealdrop.reader.reader import ItemView, Reader
from sealdrop.reader.store import LocalItem
from sealdrop.reader.ui import serve

reader_app = typer.Typer(
    help="The journalist's reader: keys, decryption and replies on this machine. Without a "
    "command: the local web interface (`reader ui`).",
    invoke_without_command=True,
)

# No markup and no emoji codes in anything printed to stdout: a source's message, a file name or
# a server's answer holding "[red]" or "[/]" (or ":warning:") must print as it is, not vanish
# into styling. Untrusted text also goes through display.shown_* (invisible characters).
out = Console(highlight=False, markup=False, emoji=False)


@contextmanager
def _errors(profile: Profile) -> Iterator[None]:
    """Report the reader's errors in one line each; an expired token says what to do."""
    try:
        yield
    except NotHere as exc:
        # As a mistyped argument (exit status 2): the source or item is not in the local copy.
        raise typer.BadParameter(str(exc)) from None
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
def _reader(profile: Profile, *, online: bool = False) -> Iterator[Reader]:
    """The reader of ``profile``; ``online``: log in to the server first (TokenExpired before
    anything is asked or changed)."""
    profile.load_config()  # fail early, with a hint, if init was never run
    with Reader.open(profile) as reader:
        if online:
            reader.client  # noqa: B018
        yield reader


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


def _name(text: str) -> Text:
    """One line of untrusted text (a file name, a pseudonym) for the terminal: a Text (never
    parsed as markup), every invisible character shown as <U+XXXX> (display.shown_name)."""
    return Text(shown_name(text))


def _text(text: str) -> Text:
    """A message or reply for the terminal: line endings normalised, tabs kept, other invisible
    characters shown (display.shown_text)."""
    return Text(shown_text(text))


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


@reader_app.callback()
def reader_main(
    ctx: typer.Context,
    data_dir: GroupDataDir = None,
    open_browser: OpenBrowser = False,
) -> None:
    """Without a command, start the local web interface (as `sealdrop reader ui`)."""
    ctx.obj = data_dir  # every command's default folder (see data_folder)
    if ctx.invoked_subcommand is None:
        ui(ctx, data_dir=None, open_browser=open_browser)


@reader_app.command()
def ui(ctx: typer.Context, data_dir: DataDir = None, open_browser: OpenBrowser = False) -> None:
    """Serve the local web interface on 127.0.0.1 (a random port, a one-time link)."""
    profile = profile_of(ctx, data_dir)

    def announce(url: str) -> None:
        out.print(f"Open {url}", soft_wrap=True)
        out.print("(the link works once; stop the reader with Ctrl-C)")
        out.file.flush()

    with _errors(profile):
        serve(profile, open_browser=open_browser, announce=announce)


@reader_app.command()
def init(
    ctx: typer.Context,
    server: Annotated[str, typer.Option(help="The server's journalist API URL.")],
    username: Annotated[str, typer.Option(help="Your account's username.")],
    device_name: Annotated[
        str, typer.Option(help="A name for this device's key, shown to admins.")
    ] = "reader",
    data_dir: DataDir = None,
    identity_passphrase_file: IdentityPassphraseFile = None,
    passphrase_file: PassphraseFile = None,
    totp: Totp = None,
    proxy: Proxy = None,
) -> None:
    """Create this device's age identity, log in, and register its public key."""
    profile = profile_of(ctx, data_dir)
    with _errors(profile):
        if profile.config_path.exists():
            raise fail(SealdropError(f"a reader is already set up in {profile.root}"))
        check_connection(server, proxy)
        with ApiClient(server, proxy=proxy) as probe:
            probe.check_api()  # before any passphrase is typed or sent
        config = ReaderConfig(server=server, username=username, proxy=proxy)
        resume = profile.identity_path.exists()
        identity_passphrase = ask_identity_passphrase(identity_passphrase_file, new=not resume)
        if resume:
            # A previous init stopped after creating the identity: reuse it (if it opens).
            load_identity(profile.identity_path, identity_passphrase)
        passphrase, code = credentials(passphrase_file, totp)
        with _login(profile, config, passphrase, code) as client:
            if resume:
                recipient = public_key(profile.identity_path)
            else:
                recipient = create_identity(profile.identity_path, identity_passphrase)
            key_id = client.register_key(recipient, device_name)
            profile.save_config(config)
    # Text: a folder or username holding "[…]" is not markup on the shared (markup) stderr console.
    err.print(Text(f"Identity created in {profile.identity_path} (public key {recipient})."))
    err.print(Text(f"Registered as key {key_id} of {username}. Next: `sealdrop reader sync`."))


@reader_app.command()
def login(
    ctx: typer.Context,
    data_dir: DataDir = None,
    passphrase_file: PassphraseFile = None,
    totp: Totp = None,
    proxy: Proxy = None,
) -> None:
    """Log in again (the token lasts 8 hours)."""
    profile = profile_of(ctx, data_dir)
    with _errors(profile):
        config = profile.load_config()
        if proxy is not None:
            # A new proxy (say, Tor Browser's 9150 instead of 9050) is kept for later commands.
            check_connection(config.server, proxy)
            config = dataclasses.replace(config, proxy=proxy)
        passphrase, code = credentials(passphrase_file, totp)
        _login(profile, config, passphrase, code).close()
        profile.save_config(config)
    err.print(Text(f"Logged in as {config.username}."))


@reader_app.command()
def sync(ctx: typer.Context, data_dir: DataDir = None) -> None:
    """Fetch new sources, items and their ciphertext (verified, resumable)."""
    profile = profile_of(ctx, data_dir)
    with _errors(profile), _reader(profile, online=True) as reader, _bars() as bars:
        tasks: dict[str, TaskID] = {}

        def advance(item: LocalItem, done: int, total: int) -> None:
            if item.id not in tasks:
                tasks[item.id] = bars.add_task(f"{item.kind} {item.id[:8]}", total=total)
            bars.update(tasks[item.id], completed=done)

        report = reader.sync(advance)
    out.print(
        f"{report.sources} source(s) updated, {len(report.downloaded)} item(s) downloaded, "
        f"{len(report.removed)} removed."
    )
    for item_id in report.corrupted:
        out.print(f"CORRUPTED (altered on the server, not kept): {item_id}")
    for item_id in report.failed:
        out.print(f"not downloaded (refused by the server; retried next sync): {item_id}")


@reader_app.command("list")
def list_sources(
    ctx: typer.Context,
    data_dir: DataDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List the synced sources: pseudonym, id, unread, items, starred."""
    profile = profile_of(ctx, data_dir)
    with _errors(profile), _reader(profile) as reader:
        rows = reader.sources()
    if as_json:
        for source, count in rows:
            fields = {"id": source.id, "pseudonym": source.pseudonym, "unread": source.unread}
            print(json.dumps({**fields, "items": count, "starred": source.starred}))
        return
    # An id is pasted into other commands: never wrapped or cut, whatever the terminal's width.
    whole_id = Column("id", no_wrap=True, min_width=32)
    table = Table("pseudonym", whole_id, "unread", "items", "starred")
    for source, count in rows:
        table.add_row(
            _name(source.pseudonym),
            source.id,
            str(source.unread),
            str(count),
            "★" if source.starred else "",
        )
    out.print(table)


@reader_app.command()
def show(
    ctx: typer.Context,
    source: SourceArg,
    data_dir: DataDir = None,
    identity_passphrase_file: IdentityPassphraseFile = None,
) -> None:
    """Show a source's conversation, decrypted in memory (nothing decrypted is written)."""
    profile = profile_of(ctx, data_dir)
    with _errors(profile), _reader(profile) as reader:
        found = reader.find_source(source)
        identity = open_identity(profile, identity_passphrase_file)
        out.print(Text.assemble("Source ", _name(found.pseudonym), f" ({found.id})"))
        opened = []
        for item in reader.items(found.id):
            # A file's content is not decrypted to show it (only its name and size): no bar.
            bar = _decrypting(item) if item.kind != "file" else nullcontext()
            with bar as progress:
                view = reader.view(item, identity, progress)
            _print_item(view)
            opened.append(not view.not_for_this_device)
    if not all(opened):
        out.print()
        failed = opened.count(False)
        out.print(f"{failed} item(s) could not be decrypted here. {WHY_CANNOT_DECRYPT}")


def _print_item(view: ItemView) -> None:
    """One item of a conversation, as ``Reader.view`` shows it (its text is made visible
    already: a Text, never parsed as markup)."""
    item = view.item
    heading = f"── {item.kind} #{item.seq} · {item.arrival_day or '-'} · {item.id}"
    out.print()
    out.print(Text.assemble(heading, *((" · by ", _name(item.author)) if item.author else ())))
    if view.name is not None and view.size is not None:
        out.print(Text.assemble("file: ", Text(view.name), f" · {_size(view.size)}"))
    if view.text is not None:
        out.print(Text(view.text))
    if view.problem is not None:
        out.print(Text(f"[{view.problem}]"))


@reader_app.command("export")
def export_item(
    ctx: typer.Context,
    item: Annotated[str, typer.Argument(help="The id of a file item (see `reader show`).")],
    to: Annotated[
        Path | None,
        typer.Option(
            "--to",
            help="The folder to export into (default: exports/ in the data folder, made 0700).",
            show_default=False,
        ),
    ] = None,
    keep_original: Annotated[
        bool, typer.Option(help="Also keep the unstripped file (NAME.original.EXT).")
    ] = False,
    no_strip: Annotated[
        bool, typer.Option("--no-strip", help="Export without removing metadata (mat2).")
    ] = False,
    data_dir: DataDir = None,
    identity_passphrase_file: IdentityPassphraseFile = None,
) -> None:
    """Decrypt a file into a folder, with its metadata removed by mat2 (unless --no-strip)."""
    profile = profile_of(ctx, data_dir)
    with _errors(profile), _reader(profile) as reader:
        local = reader.store.item(item.lower())
        if local is None or local.kind != "file":
            raise typer.BadParameter(f"no file item {item!r} (see `sealdrop reader show`)")
        identity = open_identity(profile, identity_passphrase_file)
        with _decrypting(local) as progress:
            done = reader.export(
                local.id,
                identity,
                reader.export_folder(to),
                strip_metadata=not no_strip,
                keep_original=keep_original,
                progress=progress,
            )
    result = done.result
    out.print(Text.assemble("Exported ", _name(done.name), f" to {result.path}"))
    if result.warning:
        out.print(_text(f"warning: {result.warning}"))
    elif result.cleaned:
        out.print("Metadata removed:" if result.removed else "No metadata found.")
        for entry in result.removed:
            out.print(_name(f"  {entry}"))
    else:
        out.print("Metadata NOT removed (--no-strip).")
    if result.original is not None:
        out.print(f"Original kept (with its metadata) at {result.original}")


@reader_app.command()
def reply(
    ctx: typer.Context,
    source: SourceArg,
    message: Annotated[str | None, typer.Option(help="The reply's text.")] = None,
    file: Annotated[Path | None, typer.Option(help="Read the reply's text from a file.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Encrypt a reply here (to the source and every journalist's key), upload it, and sync."""
    if (message is None) == (file is None):
        raise typer.BadParameter("give exactly one of --message and --file")
    text = message if message is not None else _read_text(file)
    profile = profile_of(ctx, data_dir)
    with _errors(profile), _reader(profile, online=True) as reader:
        found = reader.find_source(source)
        uploaded, _ = reader.send_reply(found.id, text)
    # Synced after sending, as the local web interface does: the reply is in `reader show` now.
    out.print(f"Reply {uploaded.id} sent to {found.id}.")


@reader_app.command()
def star(
    ctx: typer.Context,
    source: SourceArg,
    off: Annotated[bool, typer.Option("--off", help="Remove the star instead.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Star a source (or unstar it with --off): one flag, seen by every journalist."""
    profile = profile_of(ctx, data_dir)
    with _errors(profile), _reader(profile, online=True) as reader:
        found = reader.find_source(source)
        reader.star(found.id, not off)
    out.print(Text.assemble(f"{'Unstarred' if off else 'Starred'} ", _name(found.pseudonym), "."))


@reader_app.command()
def seen(ctx: typer.Context, source: SourceArg, data_dir: DataDir = None) -> None:
    """Mark a source's synced (downloaded) submissions as seen by you, for your unread count."""
    profile = profile_of(ctx, data_dir)
    with _errors(profile), _reader(profile, online=True) as reader:
        found = reader.find_source(source)
        marked = reader.seen(found.id)
        now = reader.store.source(found.id)
    out.print(Text.assemble(f"{marked} submission(s) of ", _name(found.pseudonym), " marked seen."))
    if now is not None and now.unread:
        # New since the last sync: not shown yet, so not marked.
        out.print(f"{now.unread} unread submission(s) not synced yet: run `sealdrop reader sync`.")


@reader_app.command()
def delete(
    ctx: typer.Context,
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
    data_dir: DataDir = None,
) -> None:
    """Delete a source or one submission or reply, on the server (for everyone) and here."""
    profile = profile_of(ctx, data_dir)
    remove: Callable[[], object]
    with _errors(profile), _reader(profile, online=True) as reader:
        item = reader.store.item(target.lower()) if len(target) == 32 else None
        if item is not None:
            what = Text(f"{item.kind} #{item.seq} ({item.id})")
            remove = partial(reader.delete_item, item)
        else:
            found = reader.find_source(target)
            count = len(reader.items(found.id))
            what = Text.assemble(
                "source ", _name(found.pseudonym), f" ({found.id}) with {count} item(s)"
            )
            remove = partial(reader.delete_source, found.id)
        _confirm_delete(what, yes)
        remove()
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
