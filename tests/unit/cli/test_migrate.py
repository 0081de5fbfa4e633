"""`sealdrop migrate` (what it would run, then running it) and every command's refusal of a
database that a newer Sealdrop migrated, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import MetaData, text
from typer.testing import CliRunner

from sealdrop.cli.main import app
from sealdrop.config import load_settings
from sealdrop.crypto.keys import generate_identity, recipient_of
from sealdrop.services.instance import instance_lock
from sealdrop.storage import migrations
from sealdrop.storage.database import SqlDatabase
from sealdrop.testing import free_port, sealdrop_command

# A revision no Sealdrop has shipped: what a database migrated by a later release looks like.
FUTURE = "9999"
HEAD = migrations.head_revision()


def _run(*args: object, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        app, [str(a) for a in args], env={"COLUMNS": "200", "NO_COLOR": "1", **(env or {})}
    )
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The environment that points an instance at SQLite (its own file) or at PostgreSQL."""
    if request.param == "sqlite":
        return {}
    return {"SEALDROP_DATABASE_URL": request.getfixturevalue("fresh_postgres_url")}


def _instance(tmp_path: Path, env: dict[str, str], revision: str | None = None) -> Path:
    """A new instance whose database is at ``revision`` (downgraded to it, or marked as a
    later release's), the SQLite write-ahead log folded into the file."""
    path = tmp_path / "instance"
    code, _, err = _run("init", path, env=env)
    assert code == 0, err
    if revision is not None:
        database = _database(path, env)
        with database.engine.begin() as conn:
            if migrations.is_known(revision):
                command.downgrade(migrations.alembic_config(conn), revision)
            else:
                conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
        database.close()
    return path


def _database(path: Path, env: dict[str, str]) -> SqlDatabase:
    url = env.get("SEALDROP_DATABASE_URL") or load_settings(path).database_url
    return SqlDatabase(url)


def _snapshot(path: Path, env: dict[str, str]) -> tuple[object, ...]:
    """Every table's rows, and on SQLite the database file's bytes (a read leaves them)."""
    database = _database(path, env)
    try:
        with database.engine.connect() as conn:
            meta = MetaData()
            meta.reflect(conn)
            rows = {
                name: sorted(map(repr, conn.execute(table.select()).all()))
                for name, table in sorted(meta.tables.items())
            }
    finally:
        database.close()
    files = sorted(
        (p.name, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in path.glob("*.db*")
        if p.stat().st_size
    )
    return rows, files


def _revision(path: Path, env: dict[str, str]) -> str | None:
    database = _database(path, env)
    try:
        with database.engine.connect() as conn:
            return migrations.current_revision(conn)
    finally:
        database.close()


def test_migrate_dry_run_shows_the_plan_and_changes_nothing(
    tmp_path: Path, database_env: dict[str, str]
) -> None:
    """`migrate --dry-run` names the database's migration, this code's newest and each one that
    would run, and leaves the database as it was (same rows, same file bytes)."""
    path = _instance(tmp_path, database_env, "0003")
    before = _snapshot(path, database_env)
    code, out, err = _run("migrate", path, "--dry-run", env=database_env)
    assert code == 0, err
    assert "Database at migration: 0003" in out
    assert f"This version's newest: {HEAD}" in out
    assert "  0004  Source sessions that name no source" in out
    assert f"  {HEAD}  " in out
    assert "Dry run: nothing was changed." in out
    assert _snapshot(path, database_env) == before
    assert _revision(path, database_env) == "0003"


def test_migrate_runs_the_pending_migrations_then_has_nothing_to_do(
    tmp_path: Path, database_env: dict[str, str]
) -> None:
    """`migrate` runs every pending migration (the database ends at this code's newest); run
    again, it says it is up to date."""
    path = _instance(tmp_path, database_env, "0003")
    code, out, err = _run("migrate", path, env=database_env)
    assert code == 0, err
    assert "Migrations to run (" in out
    assert f"Done: the database is at migration {HEAD}." in out
    assert _revision(path, database_env) == HEAD
    code, out, err = _run("migrate", path, env=database_env)
    assert code == 0, err
    assert "Up to date: no migration to run." in out


def test_a_failing_migration_changes_nothing(tmp_path: Path, database_env: dict[str, str]) -> None:
    """When a migration fails part-way (here 0006, its table already there), `migrate` says so
    in one `error:` line and the database is exactly as before: the migrations that ran before
    it in the same run (0004, 0005) are rolled back too."""
    path = _instance(tmp_path, database_env, "0003")
    database = _database(path, database_env)
    with database.engine.begin() as conn:
        conn.execute(text("CREATE TABLE notification_targets (id INTEGER)"))
    database.close()
    before = _snapshot(path, database_env)
    code, out, err = _run("migrate", path, env=database_env)
    assert code == 1
    assert "  0006  " in out
    line = _error_line(err)
    assert "the migrations did not complete" in line
    assert "migration 0006 failed" in line
    assert "still at migration 0003" in line
    assert _snapshot(path, database_env) == before
    assert _revision(path, database_env) == "0003"


def test_migrate_refuses_while_a_server_holds_the_instance(tmp_path: Path) -> None:
    """`migrate` does not change the tables beneath a running server (it takes the server's
    instance lock); the database stays where it was."""
    path = _instance(tmp_path, {}, "0003")
    with instance_lock(path.resolve()):
        code, _, err = _run("migrate", path)
    assert code == 1
    assert "another Sealdrop server is already running" in err
    assert _revision(path, {}) == "0003"


COMMANDS = [
    ("migrate", "{dir}"),
    ("migrate", "{dir}", "--dry-run"),
    ("status", "{dir}"),
    ("status", "{dir}", "--json"),
    ("user", "list", "{dir}"),
    ("user", "add", "{dir}", "newcomer"),
    ("recipients", "add", "{dir}", "{key}"),
    ("recipients", "list", "{dir}"),
    ("submissions", "list", "{dir}"),
]


def _error_line(err: str) -> str:
    """The one line the refusal prints; nothing else (no traceback)."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    return lines[0]


def _assert_names_both_revisions(line: str) -> None:
    assert f"migration {FUTURE}" in line
    assert f"its newest is {HEAD}" in line
    assert "upgrade Sealdrop" in line


def test_every_command_refuses_a_database_newer_than_the_code(
    tmp_path: Path, database_env: dict[str, str]
) -> None:
    """A database at a migration this code does not know (a later release's): each command
    that opens it fails with one `error:` line naming both migrations and saying to upgrade
    Sealdrop, and writes nothing to it."""
    path = _instance(tmp_path, database_env, FUTURE)
    before = _snapshot(path, database_env)
    key = str(recipient_of(generate_identity()))
    for args in COMMANDS:
        argv = [a.format(dir=path, key=key) for a in args]
        code, _, err = _run(*argv, env=database_env)
        assert code == 1, (argv, err)
        _assert_names_both_revisions(_error_line(err))
    assert _snapshot(path, database_env) == before


def test_serve_refuses_a_database_newer_than_the_code(
    tmp_path: Path, database_env: dict[str, str]
) -> None:
    """`sealdrop serve` (a real process) does not start on a later release's database: exit 1,
    one `error:` line naming both migrations, nothing written to the database."""
    path = _instance(tmp_path, database_env, FUTURE)
    before = _snapshot(path, database_env)
    port = free_port()
    result = subprocess.run(
        sealdrop_command("serve", path, "--port", str(port), "--api-port", str(port + 1)),
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **os.environ,
            **database_env,
            "SEALDROP_TOR_ENABLED": "no",
            "NO_COLOR": "1",
        },
        check=False,
    )
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    _assert_names_both_revisions(errors[0])
    assert "Source interface:" not in result.stdout
    assert _snapshot(path, database_env) == before
