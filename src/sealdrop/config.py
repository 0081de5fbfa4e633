"""Instance configuration: loaded once, at the edge, from the instance folder.

An instance is a folder made by ``sealdrop init``:

    sealdrop.toml     settings (this module documents every key; unknown keys are refused)
    secrets.toml      the per-instance KDF salt, mode 0600, never logged
    sealdrop.db       the SQLite database (unless ``[database] url`` points elsewhere)
    store/            the filesystem blob store (ciphertext only)

Every setting can be overridden from the environment as ``SEALDROP_<SECTION>_<KEY>`` (upper case),
which is how tests and container deployments adjust an instance without editing it.
"""

from __future__ import annotations

import json
import os
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.engine import URL

from sealdrop.errors import ConfigError

CONFIG_FILE = "sealdrop.toml"
SECRETS_FILE = "secrets.toml"
SALT_BYTES = 32


class Secret:
    """A secret whose repr and str never show it, so it cannot leak into logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        self._value = value

    def reveal(self) -> bytes:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__


# Each section: key -> (default, description). The descriptions are the reference documentation
# (docs/configuration.md is checked against these names by a test).
SETTINGS: dict[str, dict[str, tuple[Any, str]]] = {
    "database": {
        "url": (
            "",
            "SQLAlchemy URL. Empty: SQLite file sealdrop.db in the instance. "
            "PostgreSQL: postgresql+psycopg://user:password@host/db",
        ),
    },
    "storage": {
        "blob_dir": (
            "store",
            "Folder of the filesystem blob store (ciphertext only), relative to the instance.",
        ),
    },
    "source": {
        "organisation_name": (
            "Sealdrop",
            "The organisation's name, shown on every page of the source interface.",
        ),
        "host": ("127.0.0.1", "Address the source interface listens on."),
        "port": (8080, "TCP port of the source interface."),
        "public_url": (
            "",
            "The https:// address sources use when a TLS reverse proxy serves this listener to "
            "the clearnet (VPN users). When set, responses on it carry HSTS, and Onion-Location "
            "once the source onion address is known.",
        ),
    },
    "api": {
        "host": ("127.0.0.1", "Address the journalist API listens on."),
        "port": (8081, "TCP port of the journalist API (never the source interface's port)."),
    },
    "tor": {
        "enabled": (
            "auto",
            "'auto': run the onion services with Sealdrop's own tor when tor is installed; "
            "'yes': refuse to start without tor; 'no': never start tor (127.0.0.1 only).",
        ),
        "binary": ("tor", "The tor program to run (a name on PATH or an absolute path)."),
        "extra_torrc": (
            "",
            "A file of extra torrc lines for the managed tor (e.g. bridges, or a private test "
            "network); relative to the instance. Empty: none.",
        ),
    },
    "circuits": {
        "requests_per_minute": (
            120,
            "Requests one Tor circuit may make to the source onion per minute (steady rate); "
            "beyond it that circuit alone gets 429 pages. One Tor Browser tab set = one circuit.",
        ),
        "burst": (60, "Requests one Tor circuit may make in a burst before the rate applies."),
    },
    "connections": {
        "head_timeout_seconds": (
            30,
            "Seconds a client has to send a request's complete headers, counted from connecting "
            "or from the end of the previous response; slower connections are closed.",
        ),
        "body_timeout_seconds": (
            60,
            "While a request body arrives, every this many seconds must bring body_min_bytes "
            "bytes, or the connection is closed (a stalled or trickling upload).",
        ),
        "body_min_bytes": (1024, "Bytes of body each body_timeout_seconds must bring."),
        "max_per_listener": (
            512,
            "Open connections one listener accepts; a request on any further connection gets a "
            "short 503 page.",
        ),
    },
    "limits": {
        "max_upload_bytes": (
            2 * 1024**3,
            "Largest request body a source may send (all files of one submission), in bytes.",
        ),
        "max_message_chars": (100_000, "Longest message a source may send, in characters."),
        "max_form_bytes": (
            64 * 1024,
            "Largest body of any request other than an upload (forms, pages), in bytes.",
        ),
        "source_daily_upload_bytes": (
            10 * 1024**3,
            "Most one source may upload in 24 hours, all submissions together, in bytes.",
        ),
    },
    "privacy": {
        "arrival_granularity": (
            "day",
            "How precisely arrival is recorded: 'day' (the UTC date) or 'none' (not at all).",
        ),
    },
    "kdf": {
        "max_concurrent": (
            2,
            "Codename derivations (Argon2id, 64 MiB each) running at once; memory = this x 64 MiB.",
        ),
    },
    "logins": {
        "max_in_flight": (
            8,
            "Codename logins waiting for or running the KDF at once; more are refused (429).",
        ),
        "per_minute": (60, "Codename logins accepted per minute, for all visitors together."),
        "failures_per_visitor": (
            10,
            "Wrong codenames one browser may try in 10 minutes before it must wait.",
        ),
    },
    "sources": {
        "pending_purge_hours": (
            24,
            "Sources that never sent anything are deleted this many hours after they began.",
        ),
    },
    "replies": {
        "max_bytes": (1024 * 1024, "Largest reply ciphertext accepted, in bytes."),
    },
    "sessions": {
        "requests_per_minute": (
            60,
            "Requests one source session may make per minute (steady rate); beyond it, 429.",
        ),
        "request_burst": (
            30,
            "Requests one source session may make at once before the rate applies.",
        ),
        "idle_timeout_minutes": (60, "A source session ends after this long without a request."),
        "absolute_timeout_minutes": (240, "A source session ends this long after it began."),
    },
}


@dataclass(frozen=True, slots=True)
class Settings:
    instance_dir: Path
    database_url: str
    blob_dir: Path
    organisation_name: str
    source_host: str
    source_port: int
    public_url: str
    api_host: str
    api_port: int
    max_upload_bytes: int
    max_message_chars: int
    max_form_bytes: int
    source_daily_upload_bytes: int
    session_requests_per_minute: int
    session_request_burst: int
    arrival_granularity: Literal["day", "none"]
    kdf_max_concurrent: int
    login_max_in_flight: int
    logins_per_minute: int
    login_failures_per_visitor: int
    pending_purge_seconds: int
    max_reply_bytes: int
    session_idle_seconds: int
    session_absolute_seconds: int
    tor_enabled: Literal["auto", "yes", "no"]
    tor_binary: str
    tor_extra_torrc: Path | None
    circuit_requests_per_minute: int
    circuit_burst: int
    head_timeout_seconds: int
    body_timeout_seconds: int
    body_min_bytes: int
    max_connections: int
    kdf_salt: Secret = field(repr=False)


def _validate(section: str, key: str, value: Any) -> Any:
    default = SETTINGS[section][key][0]
    name = f"[{section}] {key}"
    if isinstance(default, int):
        if isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                raise ConfigError(f"{name} must be an integer") from None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive integer")
        if key == "port" and value > 65535:
            raise ConfigError(f"{name} must be a TCP port (1-65535)")
        return value
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a string")
    if section == "privacy" and value not in ("day", "none"):
        raise ConfigError(f"{name} must be 'day' or 'none'")
    if (section, key) == ("tor", "enabled") and value not in ("auto", "yes", "no"):
        raise ConfigError(f"{name} must be 'auto', 'yes' or 'no'")
    if (section, key) == ("source", "public_url") and value and not value.startswith("https://"):
        raise ConfigError(f"{name} must start with https:// (or be empty)")
    return value


def _merge(raw: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    values = {s: {k: d for k, (d, _) in keys.items()} for s, keys in SETTINGS.items()}
    for section, table in raw.items():
        if section not in SETTINGS:
            raise ConfigError(f"unknown section [{section}] in {CONFIG_FILE}")
        if not isinstance(table, dict):
            raise ConfigError(f"[{section}] must be a table")
        for key, value in table.items():
            if key not in SETTINGS[section]:
                raise ConfigError(f"unknown setting [{section}] {key} in {CONFIG_FILE}")
            values[section][key] = _validate(section, key, value)
    for section, keys in SETTINGS.items():
        for key in keys:
            env_name = f"SEALDROP_{section}_{key}".upper()
            if env_name in env:
                values[section][key] = _validate(section, key, env[env_name])
    return values


def load_settings(instance_dir: Path, env: Mapping[str, str] | None = None) -> Settings:
    """Load an instance's settings and secrets. Raises ConfigError with a readable reason."""
    instance_dir = instance_dir.resolve()
    config_path = instance_dir / CONFIG_FILE
    if not config_path.is_file():
        raise ConfigError(
            f"{instance_dir} is not a Sealdrop instance (no {CONFIG_FILE}); "
            "create one with `sealdrop init DIR`"
        )
    try:
        raw = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{config_path}: {exc}") from None
    values = _merge(raw, os.environ if env is None else env)
    if (values["source"]["host"], values["source"]["port"]) == (
        values["api"]["host"],
        values["api"]["port"],
    ):
        # Separate surfaces (invariant 8) need separate listeners.
        raise ConfigError("[source] and [api] must not listen on the same address and port")
    url = values["database"]["url"] or _sqlite_url(instance_dir / "sealdrop.db")
    return Settings(
        instance_dir=instance_dir,
        database_url=url,
        blob_dir=instance_dir / values["storage"]["blob_dir"],
        organisation_name=" ".join(values["source"]["organisation_name"].split())[:100],
        source_host=values["source"]["host"],
        source_port=values["source"]["port"],
        public_url=values["source"]["public_url"].rstrip("/"),
        api_host=values["api"]["host"],
        api_port=values["api"]["port"],
        max_upload_bytes=values["limits"]["max_upload_bytes"],
        max_message_chars=values["limits"]["max_message_chars"],
        max_form_bytes=values["limits"]["max_form_bytes"],
        source_daily_upload_bytes=values["limits"]["source_daily_upload_bytes"],
        session_requests_per_minute=values["sessions"]["requests_per_minute"],
        session_request_burst=values["sessions"]["request_burst"],
        arrival_granularity=values["privacy"]["arrival_granularity"],
        kdf_max_concurrent=values["kdf"]["max_concurrent"],
        login_max_in_flight=values["logins"]["max_in_flight"],
        logins_per_minute=values["logins"]["per_minute"],
        login_failures_per_visitor=values["logins"]["failures_per_visitor"],
        pending_purge_seconds=values["sources"]["pending_purge_hours"] * 3600,
        max_reply_bytes=values["replies"]["max_bytes"],
        session_idle_seconds=values["sessions"]["idle_timeout_minutes"] * 60,
        session_absolute_seconds=values["sessions"]["absolute_timeout_minutes"] * 60,
        tor_enabled=values["tor"]["enabled"],
        tor_binary=values["tor"]["binary"],
        tor_extra_torrc=(
            instance_dir / values["tor"]["extra_torrc"] if values["tor"]["extra_torrc"] else None
        ),
        circuit_requests_per_minute=values["circuits"]["requests_per_minute"],
        circuit_burst=values["circuits"]["burst"],
        head_timeout_seconds=values["connections"]["head_timeout_seconds"],
        body_timeout_seconds=values["connections"]["body_timeout_seconds"],
        body_min_bytes=values["connections"]["body_min_bytes"],
        max_connections=values["connections"]["max_per_listener"],
        kdf_salt=_load_salt(instance_dir),
    )


def _sqlite_url(path: Path) -> str:
    # Built by SQLAlchemy so that '?', '#' or '%' in the instance path are escaped, not parsed.
    return URL.create("sqlite+pysqlite", database=str(path)).render_as_string(hide_password=False)


def _load_salt(instance_dir: Path) -> Secret:
    path = instance_dir / SECRETS_FILE
    try:
        mode = path.stat().st_mode & 0o777
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path} is missing; the instance cannot derive source keys") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    # A salt readable by other local users would let them run the codename KDF offline.
    if mode & 0o077:
        raise ConfigError(f"{path} must be readable by its owner only (chmod 600 {path})")
    try:
        salt = bytes.fromhex(raw["kdf_salt"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"{path} has no valid kdf_salt") from None
    if len(salt) < 16:
        raise ConfigError(f"{path}: kdf_salt is too short")
    return Secret(salt)


def default_config_text(
    host: str = "127.0.0.1", port: int = 8080, organisation_name: str | None = None
) -> str:
    """The commented sealdrop.toml written by ``sealdrop init``."""
    lines = ["# Sealdrop instance settings. Every key is optional; defaults shown.", ""]
    overrides: dict[tuple[str, str], Any] = {("source", "host"): host, ("source", "port"): port}
    if organisation_name is not None:
        overrides[("source", "organisation_name")] = organisation_name
    for section, keys in SETTINGS.items():
        lines.append(f"[{section}]")
        for key, (default, description) in keys.items():
            value = overrides.get((section, key), default)
            lines.append(f"# {description}")
            shown = _toml_string(value) if isinstance(value, str) else str(value)
            prefix = "" if (section, key) in overrides else "# "
            lines.append(f"{prefix}{key} = {shown}")
        lines.append("")
    return "\n".join(lines)


def _toml_string(value: str) -> str:
    # JSON string escapes are valid TOML basic-string escapes; JSON leaves DEL raw, TOML does not.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def write_new_secrets(instance_dir: Path) -> None:
    """Create secrets.toml with a fresh random KDF salt, owner-only from the first byte."""
    path = instance_dir / SECRETS_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("# Keep this file secret and back it up: without it no source can log in.\n")
        out.write(f'kdf_salt = "{secrets.token_hex(SALT_BYTES)}"\n')
        out.flush()
        os.fsync(out.fileno())


def setting_names() -> list[str]:
    """Every setting as 'section.key' (used by the documentation check)."""
    return [f"{s}.{k}" for s, keys in SETTINGS.items() for k in keys]
