"""Triage from the reader: assigning a source to a journalist, and its labels.

Like stars, these are shared by the newsroom and live on the server: a change goes to the server
first, then the source is stored here as the server has it (``sync.refresh_source``). The server
checks every rule (an enabled account, 1-32 characters, no invisible character, at most 20
labels); the reader only works out the new set of labels from the server's current one.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from pathlib import Path

from sealdrop.reader.client import ApiClient
from sealdrop.reader.store import Store
from sealdrop.reader.sync import refresh_source


def label_key(label: str) -> str:
    """What makes two labels the same on the server: NFC, spaces tidied, case ignored."""
    return " ".join(unicodedata.normalize("NFC", label).split()).casefold()


def changed_labels(current: Iterable[str], add: Iterable[str], remove: Iterable[str]) -> list[str]:
    """``current`` without the labels in ``remove`` and with those of ``add`` not there yet
    (compared as the server compares them); an added label keeps the spelling it was given."""
    gone = {label_key(label) for label in remove}
    labels = [label for label in current if label_key(label) not in gone]
    have = {label_key(label) for label in labels}
    for label in add:
        if label_key(label) not in have:
            labels.append(label)
            have.add(label_key(label))
    return labels


def assign_source(
    client: ApiClient, store: Store, cache_dir: Path, source_id: str, username: str | None
) -> None:
    """Assign the source to ``username`` (an enabled account), or to nobody (None)."""
    client.assign(source_id, username)
    refresh_source(client, store, cache_dir, source_id)


def hold_source(
    client: ApiClient, store: Store, cache_dir: Path, source_id: str, hold: bool
) -> None:
    """Put the source on hold (exempt from the server's retention rules), or take it off."""
    client.set_hold(source_id, hold)
    refresh_source(client, store, cache_dir, source_id)


def set_source_labels(
    client: ApiClient, store: Store, cache_dir: Path, source_id: str, labels: list[str]
) -> None:
    """Replace the source's labels with ``labels``."""
    client.set_labels(source_id, labels)
    refresh_source(client, store, cache_dir, source_id)


def change_source_labels(
    client: ApiClient,
    store: Store,
    cache_dir: Path,
    source_id: str,
    add: Iterable[str] = (),
    remove: Iterable[str] = (),
) -> None:
    """Add and remove labels, starting from the server's current set (not this copy's, which
    may be older: a colleague's label added since the last sync must not be dropped)."""
    current = client.source(source_id).labels
    set_source_labels(client, store, cache_dir, source_id, changed_labels(current, add, remove))
