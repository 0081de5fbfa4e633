"""Triage (services.triage) on every backend: assigning sources, labels, their rules, the
version bump that makes readers sync them, and the audit entries."""

from __future__ import annotations

import threading
import unicodedata

import pytest

from sealdrop.errors import InvalidAssignee, InvalidLabels, NotFound
from sealdrop.ids import SourceId, new_id
from sealdrop.reader.display import is_invisible
from sealdrop.services.accounts import UserView
from sealdrop.services.audit import AuditTrail
from sealdrop.services.auth import Principal
from sealdrop.services.triage import (
    MAX_LABELS,
    Triage,
    is_spam,
    normalise_label,
    normalise_labels,
)
from sealdrop.storage.database import SqlDatabase
from sealdrop.storage.interfaces import SourceRecord
from sealdrop.testing import FakeClock


def setup(database: SqlDatabase) -> tuple[Triage, Principal, SourceRecord]:
    with database.transaction() as repos:
        ann = repos.users.add("ann", "$argon2id$hash", "", "journalist")
        repos.users.add("bob", "$argon2id$hash", "", "admin")
        gone = repos.users.add("gone", "$argon2id$hash", "", "journalist")
        repos.users.set_disabled(gone.id, True)
        # Not pending (pending_since None): a source that has sent something.
        source = repos.sources.add(b"l" * 32, "age1placeholder", None, "calm lynx", None)
    triage = Triage(database, AuditTrail(database, FakeClock()))
    return triage, Principal(UserView.of(ann), b"token-hash"), source


def audit_actions(database: SqlDatabase) -> list[tuple[str, str, str | None]]:
    with database.transaction() as repos:
        entries = repos.audit.page(before_id=None, limit=50)
    return [(e.username, e.action, e.source_pseudonym) for e in reversed(entries)]


def test_assign_and_unassign_bump_the_version_and_are_audited(database: SqlDatabase) -> None:
    """Assigning to an enabled account (any role, name in any case) shows its username;
    assigning to nobody clears it; each change gives the source a higher version and writes
    source.assign / source.unassign with the actor and the pseudonym."""
    triage, ann, source = setup(database)
    assigned = triage.assign(ann, source.id, " BOB ")
    assert assigned.assignee == "bob"
    assert assigned.version > source.version
    cleared = triage.assign(ann, source.id, None)
    assert cleared.assignee is None
    assert cleared.version > assigned.version
    assert audit_actions(database) == [
        ("ann", "source.assign", "calm lynx"),
        ("ann", "source.unassign", "calm lynx"),
    ]


@pytest.mark.parametrize("name", ["gone", "nobody", "", "not a name!"])
def test_assigning_to_a_disabled_or_unknown_account_is_refused(
    database: SqlDatabase, name: str
) -> None:
    """A disabled account, an unknown name and a malformed one get the same InvalidAssignee,
    and nothing changes: no assignee, no version bump, no audit entry."""
    triage, ann, source = setup(database)
    with pytest.raises(InvalidAssignee):
        triage.assign(ann, source.id, name)
    with database.transaction() as repos:
        assert repos.triage.assignees([source.id]) == {}
        after = repos.sources.get(source.id)
    assert after is not None
    assert after.version == source.version
    assert audit_actions(database) == []


def test_triage_of_an_unknown_or_pending_source_is_not_found(database: SqlDatabase) -> None:
    """Made-up ids, malformed ids and sources that never sent anything answer NotFound."""
    triage, ann, _ = setup(database)
    with database.transaction() as repos:
        pending = repos.sources.add(b"p" * 32, "age1placeholder", None, "new owl", 100)
    for source_id in (SourceId(new_id()), "../x", pending.id):
        with pytest.raises(NotFound):
            triage.assign(ann, source_id, "ann")
        with pytest.raises(NotFound):
            triage.set_labels(ann, source_id, ["spam"])


def test_set_labels_replaces_the_set_normalised_and_sorted(database: SqlDatabase) -> None:
    """Labels come back normalised and sorted ignoring case; a second call replaces the set;
    each call bumps the version and writes source.labels."""
    triage, ann, source = setup(database)
    first = triage.set_labels(ann, source.id, ["  follow   up ", "Spam"])
    assert first.labels == ("follow up", "Spam")
    second = triage.set_labels(ann, source.id, ["legal"])
    assert second.labels == ("legal",)
    assert second.version > first.version > source.version
    assert audit_actions(database) == [("ann", "source.labels", "calm lynx")] * 2


@pytest.mark.parametrize(
    "labels",
    [
        [""],
        ["   "],
        ["x" * 33],
        ["evil\u202etxt"],
        ["new\nline"],
        ["tab\t"],
        ["zero\u200bwidth"],
        ["spam", "SPAM"],
        [f"l{n}" for n in range(MAX_LABELS + 1)],
    ],
)
def test_labels_breaking_the_rules_are_refused(database: SqlDatabase, labels: list[str]) -> None:
    """Empty, over 32 characters, an invisible character, a repeat ignoring case, more than 20:
    InvalidLabels, and the source keeps its labels and version."""
    triage, ann, source = setup(database)
    kept = triage.set_labels(ann, source.id, ["kept"])
    with pytest.raises(InvalidLabels):
        triage.set_labels(ann, source.id, labels)
    with database.transaction() as repos:
        assert repos.triage.labels([source.id]) == {source.id: ["kept"]}
        after = repos.sources.get(source.id)
    assert after is not None
    assert after.version == kept.version


def test_label_length_counts_characters_after_nfc() -> None:
    """32 composed characters are allowed even when sent decomposed (64 code points)."""
    decomposed = "e\u0301" * 32
    assert normalise_label(decomposed) == "\u00e9" * 32
    assert normalise_labels(["b", "A"]) == ["A", "b"]


def test_labels_refuse_exactly_what_the_reader_shows_as_codes() -> None:
    """The label rule and reader.display agree on every invisible character (one rule)."""
    for code in range(0x3000):
        ch = chr(code)
        if unicodedata.category(ch) in ("Cs", "Zs"):  # surrogates; spaces are tidied
            continue
        label = f"a{ch}b"
        if is_invisible(ch):
            with pytest.raises(InvalidLabels):
                normalise_label(label)
        else:
            assert normalise_label(label) == unicodedata.normalize("NFC", label)


def test_spam_is_recognised_in_any_case() -> None:
    """The spam label hides a source whatever its case."""
    assert is_spam(["follow up", "SPAM"])
    assert not is_spam(["spammy"])


def test_journalists_lists_enabled_accounts_only(database: SqlDatabase) -> None:
    """Every enabled account, admins too, sorted; disabled ones are left out."""
    triage, ann, _ = setup(database)
    assert triage.journalists(ann) == ["ann", "bob"]


def test_concurrent_triage_of_one_source_never_fails(database: SqlDatabase) -> None:
    """Journalists labelling and assigning the same source at the same moment: every call
    succeeds (none trips over another's uncommitted rows: each change holds the source's row
    from its start), and the source ends with one whole set of labels."""
    triage, ann, source = setup(database)
    sets = [["a", "b"], ["b", "c"], ["spam"], []]
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def work(n: int) -> None:
        try:
            start.wait()
            for round_ in range(15):
                triage.set_labels(ann, source.id, sets[(n + round_) % len(sets)])
                triage.assign(ann, source.id, None if (n + round_) % 2 else "bob")
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with database.transaction() as repos:
        assert repos.triage.labels([source.id])[source.id] in sets


def test_hold_and_release_show_bump_the_version_and_are_audited(database: SqlDatabase) -> None:
    """Putting a source on hold shows hold=True, taking it off False; each change gives the
    source a higher version (readers sync it) and writes source.hold / source.release."""
    triage, ann, source = setup(database)
    held = triage.set_hold(ann, source.id, True)
    assert held.hold is True
    assert held.version > source.version
    released = triage.set_hold(ann, source.id, False)
    assert released.hold is False
    assert released.version > held.version
    assert audit_actions(database) == [
        ("ann", "source.hold", "calm lynx"),
        ("ann", "source.release", "calm lynx"),
    ]
    with pytest.raises(NotFound):
        triage.set_hold(ann, new_id(), True)
