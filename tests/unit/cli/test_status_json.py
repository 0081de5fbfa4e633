"""`sealdrop status --json` for an operator's monitor: a fixed set of keys (a key whose value is
not known is null, never missing), the schema revision, the storage folders' free space, where
notices stand and the metrics address; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sealdrop.cli.main import app
from sealdrop.config import load_settings
from sealdrop.crypto.keys import generate_identity, recipient_of
from sealdrop.services.container import build_services
from sealdrop.storage import migrations
from sealdrop.storage.database import SqlDatabase

# The documented keys (docs/operator.md, "Monitoring"): changing them breaks monitors.
TOP_KEYS = {
    "instance",
    "database",
    "recipients",
    "device_keys",
    "demo_key",
    "only_demo_key",
    "accounts",
    "accepting",
    "post_quantum",
    "keys_waiting",
    "without_hybrid_key",
    "tor",
    "source_onion",
    "api_onion",
    "onionbalance_front",
    "authorized_devices",
    "version",
    "schema_revision",
    "schema_current",
    "storage",
    "notifications",
    "metrics",
}
TOR_KEYS = {
    "state",
    "version",
    "bootstrap_percent",
    "bootstrap_summary",
    "pow_defense",
    "circuit_limits",
}
SPACE_KEYS = {"free_bytes", "total_bytes"}
NOTICE_KEYS = {"targets", "last_scheduled", "behind"}


def _status(instance: Path, **env: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["status", str(instance), "--json"], env=env)
    assert result.exit_code == 0, result.stderr
    info = json.loads(result.stdout)
    assert isinstance(info, dict)
    return info


def _init(path: Path) -> Path:
    result = CliRunner().invoke(app, ["init", str(path)])
    assert result.exit_code == 0, result.stderr
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "postgres":
        monkeypatch.setenv("SEALDROP_DATABASE_URL", request.getfixturevalue("fresh_postgres_url"))
    return str(request.param)


def test_status_json_has_the_documented_keys_and_no_others(tmp_path: Path, backend: str) -> None:
    """Every documented key is there, with no extra one, whatever tor's state (here disabled:
    its details are null); the schema is at this version's head; the blob store's filesystem
    is reported, and the database folder's only for SQLite (PostgreSQL's is elsewhere)."""
    instance = _init(tmp_path / "i")
    info = _status(instance, SEALDROP_TOR_ENABLED="no")
    assert set(info) == TOP_KEYS
    assert set(info["tor"]) == TOR_KEYS
    assert info["tor"]["state"] == "disabled"
    assert info["tor"]["bootstrap_percent"] is None
    assert set(info["storage"]) == {"blobs", "database"}
    assert set(info["storage"]["blobs"]) == SPACE_KEYS
    assert 0 < info["storage"]["blobs"]["free_bytes"] <= info["storage"]["blobs"]["total_bytes"]
    if backend == "sqlite":
        assert set(info["storage"]["database"]) == SPACE_KEYS
    else:
        assert info["storage"]["database"] is None
    assert set(info["notifications"]) == NOTICE_KEYS
    assert info["schema_revision"] == migrations.head_revision()
    assert info["schema_current"] is True
    assert info["metrics"] is None


def test_status_json_says_where_notices_stand_and_where_the_metrics_are(tmp_path: Path) -> None:
    """An account with a notice target is counted; once something arrives its last notice is
    behind; a claimed scheduled time is given in UTC; with [metrics] on, the scrape URL."""
    instance = _init(tmp_path / "i")
    settings = load_settings(instance)
    services = build_services(settings)
    database = SqlDatabase(settings.database_url)
    try:
        user = services.accounts.create("alice", "journalist", "test").user
        services.notifications.set(user.id, "email", "test", address="alice@example.org")
        info = _status(instance)["notifications"]
        assert info == {"targets": 1, "last_scheduled": None, "behind": 0}

        services.recipients.add(str(recipient_of(generate_identity())), "org", "test")
        source = services.sources.create()
        with services.submissions.intake(source.source_id) as submission:
            submission.add_message(io.BytesIO(b"hello"))
            submission.commit()
        with database.transaction() as repos:
            assert len(repos.notifications.claim_due(20_000)) == 1
    finally:
        services.close()
        database.close()
    info = _status(
        instance,
        SEALDROP_METRICS_ENABLED="true",
        SEALDROP_METRICS_PORT="9999",
        SEALDROP_NOTIFICATIONS_INTERVAL_SECONDS="86400",
    )
    when = dt.datetime.fromtimestamp(20_000 * 86_400, dt.UTC).isoformat()
    assert info["notifications"] == {"targets": 1, "last_scheduled": when, "behind": 1}
    assert info["metrics"] == "http://127.0.0.1:9999/metrics"


def test_status_says_who_needs_a_hybrid_key_before_a_switch(tmp_path: Path) -> None:
    """Classic instance with a hybrid organisation key waiting and an account with a classic key
    only: status counts the waiting key and names the account (the switch would cut it off)."""
    instance = _init(tmp_path / "i")
    services = build_services(load_settings(instance, env={}))
    try:
        services.recipients.add(str(recipient_of(generate_identity(post_quantum=True))))
        ann = services.accounts.create("ann", "journalist", actor="test")
        services.accounts.add_recipient(ann.user.id, str(recipient_of(generate_identity())), "l")
    finally:
        services.close()
    info = _status(instance, SEALDROP_TOR_ENABLED="no")
    assert info["post_quantum"] is False
    assert info["keys_waiting"] == 1
    assert info["without_hybrid_key"] == ["ann"]
    text = CliRunner().invoke(app, ["status", str(instance)], env={"SEALDROP_TOR_ENABLED": "no"})
    assert "a hybrid key is needed for: ann" in " ".join(text.stdout.split())


def test_status_names_the_onionbalance_front_when_set(tmp_path: Path) -> None:
    """A worker behind Onionbalance shows the front address sources are given (text and JSON);
    without a front the JSON value is null."""
    instance = _init(tmp_path / "instance")
    assert _status(instance)["onionbalance_front"] is None
    front = "speapn2j3z6sqxonugui2to65knbixh4elsqtqkbhnixewo2jgpan6qd.onion"
    env = {"SEALDROP_TOR_ONIONBALANCE_FRONT": front}
    assert _status(instance, **env)["onionbalance_front"] == f"http://{front}/"
    text = CliRunner().invoke(app, ["status", str(instance)], env={**env, "COLUMNS": "300"})
    assert text.exit_code == 0, text.stderr
    assert f"Onionbalance front: http://{front}/" in text.stdout
