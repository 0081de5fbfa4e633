"""The reader's outbox (reader/outbox.py): replies waiting for the server, claimed by one sync at
a time across processes, a stale claim taken over, and gone with their source."""

from __future__ import annotations

import time
from pathlib import Path

from sealdrop.reader.outbox import STALE_CLAIM, Outbox, ReplyState
from sealdrop.reader.store import Store

SOURCE = "a" * 32


def open_outbox(db: Path) -> tuple[Store, Outbox]:
    store = Store(db)
    store.db.execute(
        "INSERT OR IGNORE INTO sources (id, pseudonym, reply_key, starred, version, created_day,"
        " unread, submissions) VALUES (?, 'test source', 'age1x', 0, 1, NULL, 0, 0)",
        (SOURCE,),
    )
    return store, Outbox(store)


def test_one_sync_at_a_time_sends_a_reply_and_a_stale_claim_is_taken_over(tmp_path: Path) -> None:
    """Two connections to the same database (the web interface and a terminal's sync): only the
    first claims a queued reply; after STALE_CLAIM seconds the claim is taken over; a failed
    reply is not sent until it is queued again."""
    db = tmp_path / "reader.sqlite3"
    ui_store, ui = open_outbox(db)
    cli_store, cli = open_outbox(db)
    entry = ui.add(SOURCE, b"age-encryption.org/v1 ...")
    now = time.time()
    assert ui.claim(entry.id, now)
    assert not cli.claim(entry.id, now)
    assert not cli.claim(entry.id, now + STALE_CLAIM - 5)
    assert cli.claim(entry.id, now + STALE_CLAIM + 5)
    cli.set_state(entry.id, ReplyState.FAILED, "refused")
    assert not ui.claim(entry.id, now + 10 * STALE_CLAIM)
    assert [e.state for e in ui.to_send()] == []
    ui.set_state(entry.id, ReplyState.QUEUED)
    assert ui.claim(entry.id)
    ui_store.close()
    cli_store.close()


def test_replies_go_with_their_source(tmp_path: Path) -> None:
    """Deleting a source here deletes its waiting replies (they could never be sent)."""
    store, outbox = open_outbox(tmp_path / "reader.sqlite3")
    outbox.add(SOURCE, b"sealed")
    assert len(outbox.entries(SOURCE)) == 1
    store.delete_source(SOURCE)
    assert outbox.entries() == []
    store.close()
