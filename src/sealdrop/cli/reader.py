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
from collections.abc import Callable
from contextlib import nullcontext
from functools import partial
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    TaskID,
)
from rich.text import Text

from sealdrop.cli import reader_triage
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
from sealdrop.cli.reader_output import (
    decrypting,
    message_text,
    name_text,
    out,
    print_item,
    progress_bars,
)
from sealdrop.cli.reader_session import log_in, open_reader, reporting_errors
from sealdrop.errors import SealdropError, WrongKeyKind
from sealdrop.reader.client import ApiClient
from sealdrop.reader.connection import check_connection
from sealdrop.reader.display import WHY_CANNOT_DECRYPT
from sealdrop.reader.keystore import create_identity, load_identity, public_key
from sealdrop.reader.profile import ReaderConfig
from sealdrop.reader.store import LocalItem
from sealdrop.reader.ui import serve

reader_app = typer.Typer(
    help="The journalist's reader: keys, decryption and replies on this machine. Without a "
    "command: the local web interface (`reader ui`).",
    invoke_without_command=True,
)


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
        ui(ctx, data_dir=None, open_browser=open_browser, lang=None, sync_every=30.0)


Lang = Annotated[
    str | None,
    typer.Option("--lang", help="The interface's language: en or fa (kept for the next runs)."),
]
SyncEvery = Annotated[
    float, typer.Option("--sync-every", min=5, help="Seconds between background syncs.")
]


@reader_app.command()
def ui(
    ctx: typer.Context,
    data_dir: DataDir = None,
    open_browser: OpenBrowser = False,
    lang: Lang = None,
    sync_every: SyncEvery = 30.0,
) -> None:
    """Serve the local web interface on 127.0.0.1 (a random port, a one-time link)."""
    profile = profile_of(ctx, data_dir)

    def announce(url: str) -> None:
        out.print(f"Open {url}", soft_wrap=True)
        out.print("(the link works once; stop the reader with Ctrl-C)")
        out.file.flush()

    with reporting_errors(profile):
        language = profile.language(lang)
        serve(
            profile,
            open_browser=open_browser,
            announce=announce,
            lang=language,
            sync_every=sync_every,
        )


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
    post_quantum: Annotated[
        bool | None,
        typer.Option(
            "--pq/--classic",
            help="The kind of key to make: hybrid post-quantum (age1pq1…) or X25519 (age1…). "
            "Default: the instance's kind. --pq on a classic instance registers a key that "
            "waits for the instance's switch to post-quantum keys.",
        ),
    ] = None,
) -> None:
    """Create this device's age identity, log in, and register its public key."""
    profile = profile_of(ctx, data_dir)
    with reporting_errors(profile):
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
        with log_in(profile, config, passphrase, code) as client:
            instance_pq = client.post_quantum()
            hybrid = instance_pq if post_quantum is None else post_quantum
            if resume:
                recipient = public_key(profile.identity_path)
            else:
                if instance_pq and not hybrid:
                    # Refused before a key is made: the server would refuse it anyway (a file
                    # never mixes classic and post-quantum keys).
                    raise WrongKeyKind(
                        "this instance is post-quantum and takes no classic (X25519) key: "
                        "leave out --classic"
                    )
                recipient = create_identity(profile.identity_path, identity_passphrase, hybrid)
            key_id = client.register_key(recipient, device_name)
            profile.save_config(config)
    if recipient.startswith("age1pq1") and not instance_pq:
        err.print(
            "This post-quantum key waits: the instance is still classic, so nothing is "
            "encrypted to it until the instance switches (crypto.post_quantum). Keep your other "
            "reader until then, and afterwards for what arrived before."
        )
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
    with reporting_errors(profile):
        config = profile.load_config()
        if proxy is not None:
            # A new proxy (say, Tor Browser's 9150 instead of 9050) is kept for later commands.
            check_connection(config.server, proxy)
            config = dataclasses.replace(config, proxy=proxy)
        passphrase, code = credentials(passphrase_file, totp)
        log_in(profile, config, passphrase, code).close()
        profile.save_config(config)
    err.print(Text(f"Logged in as {config.username}."))


@reader_app.command()
def sync(ctx: typer.Context, data_dir: DataDir = None) -> None:
    """Fetch new sources, items and their ciphertext (verified, resumable)."""
    profile = profile_of(ctx, data_dir)
    with (
        reporting_errors(profile),
        open_reader(profile, online=True) as reader,
        progress_bars() as bars,
    ):
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


@reader_app.command()
def show(
    ctx: typer.Context,
    source: SourceArg,
    data_dir: DataDir = None,
    identity_passphrase_file: IdentityPassphraseFile = None,
) -> None:
    """Show a source's conversation, decrypted in memory (nothing decrypted is written)."""
    profile = profile_of(ctx, data_dir)
    with reporting_errors(profile), open_reader(profile) as reader:
        found = reader.find_source(source)
        identity = open_identity(profile, identity_passphrase_file)
        out.print(Text.assemble("Source ", name_text(found.pseudonym), f" ({found.id})"))
        if (triaged := reader_triage.triage_line(found)) is not None:
            out.print(triaged)
        opened = []
        for item in reader.items(found.id):
            # A file's content is not decrypted to show it (only its name and size): no bar.
            bar = decrypting(item) if item.kind != "file" else nullcontext()
            with bar as progress:
                view = reader.view(item, identity, progress)
            print_item(view)
            opened.append(not view.not_for_this_device)
    if not all(opened):
        out.print()
        failed = opened.count(False)
        out.print(f"{failed} item(s) could not be decrypted here. {WHY_CANNOT_DECRYPT}")


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
    with reporting_errors(profile), open_reader(profile) as reader:
        local = reader.store.item(item.lower())
        if local is None or local.kind != "file":
            raise typer.BadParameter(f"no file item {item!r} (see `sealdrop reader show`)")
        identity = open_identity(profile, identity_passphrase_file)
        with decrypting(local) as progress:
            done = reader.export(
                local.id,
                identity,
                reader.export_folder(to),
                strip_metadata=not no_strip,
                keep_original=keep_original,
                progress=progress,
            )
    result = done.result
    out.print(Text.assemble("Exported ", name_text(done.name), f" to {result.path}"))
    if result.warning:
        out.print(message_text(f"warning: {result.warning}"))
    elif result.cleaned:
        out.print("Metadata removed:" if result.removed else "No metadata found.")
        for entry in result.removed:
            out.print(name_text(f"  {entry}"))
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
    with reporting_errors(profile), open_reader(profile, online=True) as reader:
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
    with reporting_errors(profile), open_reader(profile, online=True) as reader:
        found = reader.find_source(source)
        reader.star(found.id, not off)
    out.print(
        Text.assemble(f"{'Unstarred' if off else 'Starred'} ", name_text(found.pseudonym), ".")
    )


@reader_app.command()
def seen(ctx: typer.Context, source: SourceArg, data_dir: DataDir = None) -> None:
    """Mark a source's synced (downloaded) submissions as seen by you, for your unread count."""
    profile = profile_of(ctx, data_dir)
    with reporting_errors(profile), open_reader(profile, online=True) as reader:
        found = reader.find_source(source)
        marked = reader.seen(found.id)
        now = reader.store.source(found.id)
    out.print(
        Text.assemble(f"{marked} submission(s) of ", name_text(found.pseudonym), " marked seen.")
    )
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
    with reporting_errors(profile), open_reader(profile, online=True) as reader:
        item = reader.store.item(target.lower()) if len(target) == 32 else None
        if item is not None:
            what = Text(f"{item.kind} #{item.seq} ({item.id})")
            remove = partial(reader.delete_item, item)
        else:
            found = reader.find_source(target)
            count = len(reader.items(found.id))
            what = Text.assemble(
                "source ", name_text(found.pseudonym), f" ({found.id}) with {count} item(s)"
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


# Triage and the source list, in their own module (cli/reader_triage.py).
reader_app.command("list")(reader_triage.list_sources)
reader_app.command("sources", help="The same as `list`.")(reader_triage.list_sources)
reader_app.command()(reader_triage.assign)
reader_app.command()(reader_triage.label)
reader_app.command()(reader_triage.hold)
