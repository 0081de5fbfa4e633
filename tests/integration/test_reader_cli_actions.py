"""`sealdrop reader`'s actions on sources, against a real server: reply (in the conversation at
once), star, seen and delete (checked on the server too, with the reader's own token), a delete
confirmed on a terminal or refused without one, and an expired session that `reader login` renews.

The commands run in this process (support_reader_cli); a delete refused without a terminal and
one confirmed on a terminal run as processes. One server and one reader data folder serve the
module; every test makes its own source and looks only at it, and the test that revokes a login
has a journalist and a reader of its own.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from support_http import setup_cli
from support_reader_cli import (
    ReaderSetup,
    another_reader,
    item_ids,
    listed,
    on_terminal,
    reader_set_up,
    snapshot,
    synced_source,
)

# The module sets up a server and a reader.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReaderSetup]:
    """A server, a journalist account, and `reader init` done against its journalist API."""
    yield from reader_set_up(tmp_path_factory.mktemp("reader-cli-actions"))


def test_expired_session_asks_for_reader_login(reader: ReaderSetup, tmp_path: Path) -> None:
    """With the token revoked on the server, sync says to run `reader login`; after it, sync
    works again."""
    reader = another_reader(reader, tmp_path)  # the module's reader stays logged in
    setup_cli("token", "revoke", reader.instance, reader.journalist.username)
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

    for target, run in (
        (mine.pseudonym, reader.run),
        (mine.id, reader.run),
        (item_id, reader.process),
    ):
        # The last as a process whose stdin is /dev/null: no terminal, as in a script.
        refused = run("delete", target, check=False)
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
