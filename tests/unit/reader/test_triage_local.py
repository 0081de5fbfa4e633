"""The reader's side of triage that needs no server: the local copy's upgrade to assignees and
labels, the spam rule, and how `reader label --add/--remove` works out the new set."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

from sealdrop import wire
from sealdrop.reader.store import Store
from sealdrop.reader.triage import changed_labels, label_key

# The local database as readers before triage made it (sources without assignee and labels).
OLD_SCHEMA = """
CREATE TABLE state (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE sources (
    id TEXT PRIMARY KEY, pseudonym TEXT NOT NULL, reply_key TEXT NOT NULL,
    starred INTEGER NOT NULL, version INTEGER NOT NULL, created_day TEXT,
    unread INTEGER NOT NULL, submissions INTEGER NOT NULL,
    items_version INTEGER NOT NULL DEFAULT -1
);
INSERT INTO state VALUES ('updated_since', 7);
INSERT INTO sources VALUES ('aa', 'calm lynx', 'age1x', 0, 7, NULL, 0, 1, 7);
"""


def wire_source(**changes: object) -> wire.Source:
    fields: dict[str, object] = {
        "id": "a" * 32,
        "pseudonym": "calm lynx",
        "reply_key": "age1x",
        "starred": False,
        "version": 3,
        "created_day": dt.date(2026, 1, 2),
        "submissions": 1,
        "unread": 0,
    }
    return wire.Source.model_validate({**fields, **changes})


def test_an_old_local_copy_gains_triage_and_syncs_every_source_again(tmp_path: Path) -> None:
    """Opening a copy made before triage adds assignee and labels (none yet), and resets the
    watermark and items versions so that the next sync stores every source's triage."""
    path = tmp_path / "reader.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
    with Store(path) as store:
        source = store.source("aa")
        assert source is not None
        assert (source.assignee, source.labels, source.items_version) == (None, (), -1)
        assert store.watermark() == 0
        store.set_watermark(9)
    with Store(path) as store:  # upgraded once: a second open keeps the watermark
        assert store.watermark() == 9


def test_assignee_and_labels_are_kept_here_and_spam_is_recognised(tmp_path: Path) -> None:
    """save_source keeps what the server said; a source labelled spam (any case) is spam."""
    with Store(tmp_path / "reader.sqlite3") as store:
        store.save_source(wire_source(assignee="ann", labels=["follow up", "Spam"]), [])
        source = store.source("a" * 32)
        assert source is not None
        assert (source.assignee, source.labels, source.spam) == ("ann", ("follow up", "Spam"), True)
        store.save_source(wire_source(version=4), [])  # a server that sends neither
        source = store.source("a" * 32)
        assert source is not None
        assert (source.assignee, source.labels, source.spam) == (None, (), False)


def test_changed_labels_compare_as_the_server_does() -> None:
    """Removing ignores case and spacing; adding a label already there (in another case) keeps
    the existing spelling; an added label keeps its own spelling."""
    current = ["Follow up", "legal"]
    assert changed_labels(current, add=["LEGAL", "Urgent"], remove=["follow  UP"]) == [
        "legal",
        "Urgent",
    ]
    assert changed_labels([], add=["spam", "SPAM"], remove=[]) == ["spam"]
    assert label_key(" cafe\u0301 ") == label_key("CAFÉ")


def test_hold_is_kept_here_and_an_old_copy_gains_it(tmp_path: Path) -> None:
    """A copy made before holds gains the column (not on hold) at its first open; save_source
    keeps the server's hold, and a server that sends none reads as not on hold."""
    path = tmp_path / "reader.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
    with Store(path) as store:
        old = store.source("aa")
        assert old is not None
        assert old.hold is False
        store.save_source(wire_source(hold=True), [])
        assert store.source("a" * 32).hold is True  # type: ignore[union-attr]
        store.save_source(wire_source(version=4), [])
        assert store.source("a" * 32).hold is False  # type: ignore[union-attr]
