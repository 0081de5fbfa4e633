"""What ``sealdrop reader`` prints: untrusted text made visible and never parsed as markup, an
item of a conversation, sizes, and progress bars on stderr."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.text import Text

from sealdrop.cli.common import err
from sealdrop.reader.content import DecryptProgress
from sealdrop.reader.display import shown_name, shown_text
from sealdrop.reader.reader import ItemView
from sealdrop.reader.store import LocalItem

# No markup and no emoji codes in anything printed to stdout: a source's message, a file name or
# a server's answer holding "[red]" or "[/]" (or ":warning:") must print as it is, not vanish
# into styling. Untrusted text also goes through display.shown_* (invisible characters).
out = Console(highlight=False, markup=False, emoji=False)


def name_text(text: str) -> Text:
    """One line of untrusted text (a file name, a pseudonym) for the terminal: a Text (never
    parsed as markup), every invisible character shown as <U+XXXX> (display.shown_name)."""
    return Text(shown_name(text))


def message_text(text: str) -> Text:
    """A message or reply for the terminal: line endings normalised, tabs kept, other invisible
    characters shown (display.shown_text)."""
    return Text(shown_text(text))


def size_text(size: int) -> str:
    return f"{size:,} bytes"


# Below this, decryption is over before a bar could be drawn; above it, it can take a while.
PROGRESS_FROM = 1024 * 1024


def progress_bars() -> Progress:
    """Transient byte-count progress bars on stderr (stdout stays clean for scripts)."""
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn())
    return Progress(*columns, TransferSpeedColumn(), console=err, transient=True)


@contextmanager
def decrypting(item: LocalItem) -> Iterator[DecryptProgress | None]:
    """A progress callback for decrypting ``item`` that draws a bar, or None: only for an item
    over PROGRESS_FROM, and only when stderr is a terminal."""
    # isatty rather than rich's is_terminal, which FORCE_COLOR turns on: cursor movements have no
    # place in a log file, even a coloured one.
    if item.size <= PROGRESS_FROM or not err.file.isatty():
        yield None
        return
    with progress_bars() as bars:
        task = bars.add_task(f"decrypting {item.kind} {item.id[:8]}", total=item.size)

        def advance(done: int, total: int) -> None:
            bars.update(task, completed=done, total=total)

        yield advance


def print_item(view: ItemView) -> None:
    """One item of a conversation, as ``Reader.view`` shows it (its text is made visible
    already: a Text, never parsed as markup)."""
    item = view.item
    heading = f"── {item.kind} #{item.seq} · {item.arrival_day or '-'} · {item.id}"
    out.print()
    out.print(Text.assemble(heading, *((" · by ", name_text(item.author)) if item.author else ())))
    if view.name is not None and view.size is not None:
        out.print(Text.assemble("file: ", Text(view.name), f" · {size_text(view.size)}"))
    if view.text is not None:
        out.print(Text(view.text))
    if view.problem is not None:
        out.print(Text(f"[{view.problem}]"))
