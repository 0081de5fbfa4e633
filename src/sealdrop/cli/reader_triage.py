"""``sealdrop reader list`` (alias ``sources``), ``assign``, ``label`` and ``hold``: the source
list and triage on the command line.

Assignments and labels are shared by the newsroom and kept on the server; these commands change
them there, then store the source here as the server has it (``reader/triage.py``). Labels and
usernames come from the server, so they are printed like any untrusted text (``name_text``).
Sources labelled spam are left out of the list unless ``--all``.

The functions are registered on ``reader_app`` by ``cli/reader.py``.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Column, Table
from rich.text import Text

from sealdrop.cli.reader_input import DataDir, SourceArg, profile_of
from sealdrop.cli.reader_output import name_text, out
from sealdrop.cli.reader_session import open_reader, reporting_errors
from sealdrop.reader.store import LocalSource

ShowAll = Annotated[
    bool, typer.Option("--all", help="Also list the sources labelled spam (hidden otherwise).")
]


def list_sources(
    ctx: typer.Context,
    data_dir: DataDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    show_all: ShowAll = False,
) -> None:
    """List the synced sources: pseudonym, id, unread, items, starred, assignee, labels.
    Sources labelled spam are hidden unless --all."""
    profile = profile_of(ctx, data_dir)
    with reporting_errors(profile), open_reader(profile) as reader:
        rows = reader.sources(include_spam=show_all)
    if as_json:
        for source, count in rows:
            fields = {"id": source.id, "pseudonym": source.pseudonym, "unread": source.unread}
            fields |= {"items": count, "starred": source.starred, "assignee": source.assignee}
            print(json.dumps({**fields, "labels": list(source.labels), "hold": source.hold}))
        return
    # An id is pasted into other commands: never wrapped or cut, whatever the terminal's width.
    whole_id = Column("id", no_wrap=True, min_width=32)
    table = Table("pseudonym", whole_id, "unread", "items", "starred", "assigned to", "labels")
    for source, count in rows:
        table.add_row(
            name_text(source.pseudonym),
            source.id,
            str(source.unread),
            str(count),
            "★" if source.starred else "",
            name_text(source.assignee or ""),
            _labels_text(source),
        )
    out.print(table)


def assign(
    ctx: typer.Context,
    source: SourceArg,
    username: Annotated[
        str | None, typer.Argument(help="The journalist's username (an enabled account).")
    ] = None,
    nobody: Annotated[bool, typer.Option("--nobody", help="Assign it to nobody.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Assign a source to a journalist (or to nobody with --nobody), for the whole newsroom."""
    if (username is None) == (not nobody):
        raise typer.BadParameter("give a USERNAME or --nobody (not both)")
    profile = profile_of(ctx, data_dir)
    with reporting_errors(profile), open_reader(profile, online=True) as reader:
        found = reader.find_source(source)
        reader.assign(found.id, None if nobody else username)
        now = reader.source(found.id)
    who = name_text(now.assignee) if now.assignee else Text("nobody")
    out.print(Text.assemble(name_text(now.pseudonym), " is assigned to ", who, "."))


def label(
    ctx: typer.Context,
    source: SourceArg,
    add: Annotated[
        list[str] | None, typer.Option("--add", help="A label to add (repeat for more).")
    ] = None,
    remove: Annotated[
        list[str] | None, typer.Option("--remove", help="A label to remove (repeat for more).")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Add or remove a source's labels, shared by the newsroom ("spam" hides it from lists)."""
    if not add and not remove:
        raise typer.BadParameter("give --add LABEL or --remove LABEL")
    profile = profile_of(ctx, data_dir)
    with reporting_errors(profile), open_reader(profile, online=True) as reader:
        found = reader.find_source(source)
        reader.change_labels(found.id, add=add or [], remove=remove or [])
        now = reader.source(found.id)
    labels = _labels_text(now) if now.labels else Text("no labels")
    out.print(Text.assemble(name_text(now.pseudonym), ": ", labels))


def hold(
    ctx: typer.Context,
    source: SourceArg,
    off: Annotated[bool, typer.Option("--off", help="Take it off hold.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Put a source on hold: the server's retention rules keep it and everything it holds
    (--off: take it off hold)."""
    profile = profile_of(ctx, data_dir)
    with reporting_errors(profile), open_reader(profile, online=True) as reader:
        found = reader.find_source(source)
        reader.hold(found.id, not off)
        now = reader.source(found.id)
    state = "is on hold: retention keeps it." if now.hold else "is not on hold."
    out.print(Text.assemble(name_text(now.pseudonym), " ", state))


def _labels_text(source: LocalSource) -> Text:
    return Text(", ").join(name_text(label) for label in source.labels)


def triage_line(source: LocalSource) -> Text | None:
    """ "assigned to NAME · labels: A, B" for a conversation's header; None without either."""
    parts = []
    if source.assignee:
        parts.append(Text.assemble("assigned to ", name_text(source.assignee)))
    if source.labels:
        parts.append(Text.assemble("labels: ", _labels_text(source)))
    if source.hold:
        parts.append(Text("on hold"))
    return Text(" · ").join(parts) if parts else None
