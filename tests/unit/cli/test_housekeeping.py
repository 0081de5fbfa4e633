"""`sealdrop housekeeping DIR [--dry-run]`: counts per rule of what retention deletes today,
a dry run that changes nothing, and a run that deletes exactly what the dry run listed."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sealdrop.cli.main import app
from sealdrop.config import CONFIG_FILE, load_settings
from sealdrop.ids import SourceId
from sealdrop.storage.blobs_fs import FilesystemBlobStore
from sealdrop.storage.database import SqlDatabase
from sealdrop.storage.interfaces import NewSubmission


def _run(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        app, [str(a) for a in args], env={"COLUMNS": "200", "NO_COLOR": "1"}
    )
    # The table's cells, in order, with the box drawing taken out.
    text = re.sub("[\u2500-\u257f]", " ", result.stdout)
    return result.exit_code, " ".join(text.split()), result.stderr


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    path = tmp_path / "instance"
    code, _, err = _run("init", path)
    assert code == 0, err
    return path


def _submissions(instance: Path, days_ago: list[int], *, hold: bool = False) -> SourceId:
    """A source with one submission per entry, that many days before today (UTC)."""
    settings = load_settings(instance)
    db = SqlDatabase(settings.database_url)
    blobs = FilesystemBlobStore(settings.blob_dir)
    today = dt.datetime.now(dt.UTC).date()
    try:
        with db.transaction() as repos:
            lookup = (b"held" if hold else b"free").ljust(32, b".")
            source = repos.sources.add(lookup, "age1x", today, "calm lynx", None)
            for ago in days_ago:
                with blobs.stage() as staged:
                    staged.write(b"ciphertext")
                    key, size = staged.commit()
                seq = repos.sources.reserve_sequence(source.id, 1)
                day = today - dt.timedelta(days=ago)
                repos.submissions.add(
                    source.id, seq, day, NewSubmission("message", key, size, None)
                )
            repos.triage.set_hold(source.id, hold)
        return source.id
    finally:
        db.close()


def _count(instance: Path) -> int:
    db = SqlDatabase(load_settings(instance).database_url)
    try:
        with db.transaction() as repos:
            return sum(1 for _ in repos.submissions.all())
    finally:
        db.close()


def test_the_dry_run_counts_per_rule_and_the_run_deletes_the_same(instance: Path) -> None:
    """With submissions_days = 30 (no jitter), --dry-run lists 2 submissions due and the held
    source as exempt and deletes nothing; the real run then deletes those 2 and says so."""
    config = instance / CONFIG_FILE
    text = config.read_text().replace("# submissions_days = 0", "submissions_days = 30")
    config.write_text(text.replace("# jitter_days = 7", "jitter_days = 0"))
    _submissions(instance, [40, 31, 29, 0])
    _submissions(instance, [400], hold=True)
    code, out, err = _run("housekeeping", instance, "--dry-run")
    assert code == 0, err
    assert "dry run: nothing is deleted" in out
    assert "retention.submissions_days 30 days 2 submissions" in out
    assert "retention.replies_days off 0 replies" in out
    assert "retention.idle_source_days off 0 sources" in out
    assert "Exempt: 1 source on hold; 0 items stored without a day. No jitter." in out
    assert _count(instance) == 5
    code, out, err = _run("housekeeping", instance)
    assert code == 0, err
    assert "retention.submissions_days 30 days 2 submissions" in out
    assert _count(instance) == 3


def test_without_rules_the_dry_run_says_nothing_is_on(instance: Path) -> None:
    """On a fresh instance (every rule off) the dry run says no rule is on."""
    code, out, _ = _run("housekeeping", instance, "--dry-run")
    assert code == 0
    assert "No retention rule is on ([retention] in sealdrop.toml)" in out
