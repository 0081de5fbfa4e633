"""Instance configuration: loaded once, at the edge, from the instance folder.

An instance is a folder made by ``sealdrop init``:

    sealdrop.toml     settings (settings.py declares every key; unknown keys are refused)
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
from pathlib import Path
from typing import Any

from sealdrop.config.setting import Secret, Setting, byte_size
from sealdrop.config.settings import SETTINGS, Settings
from sealdrop.errors import ConfigError

__all__ = [
    "CONFIG_FILE",
    "S3_SECRET_ENV",
    "SALT_BYTES",
    "SECRETS_FILE",
    "SETTINGS",
    "Secret",
    "Setting",
    "Settings",
    "default_config_text",
    "load_settings",
    "setting_names",
    "settings_table",
    "with_settings_table",
    "write_new_secrets",
]

CONFIG_FILE = "sealdrop.toml"
SECRETS_FILE = "secrets.toml"
SALT_BYTES = 32
SMTP_PASSWORD_ENV = "SEALDROP_NOTIFICATIONS_SMTP_PASSWORD"  # noqa: S105 - its name
S3_SECRET_ENV = "SEALDROP_S3_SECRET_ACCESS_KEY"  # noqa: S105 - its name


def _by_section() -> dict[str, dict[str, Setting]]:
    sections: dict[str, dict[str, Setting]] = {}
    for declared in SETTINGS.values():
        sections.setdefault(declared.section, {})[declared.key] = declared
    return sections


def _merge(raw: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """Each setting's value by name: its default, replaced by the TOML file's, replaced by the
    environment's; every value checked by the setting's kind."""
    sections = _by_section()
    values = {name: declared.default for name, declared in SETTINGS.items()}
    for section, table in raw.items():
        if section not in sections:
            raise ConfigError(f"unknown section [{section}] in {CONFIG_FILE}")
        if not isinstance(table, dict):
            raise ConfigError(f"[{section}] must be a table")
        for key, value in table.items():
            if key not in sections[section]:
                raise ConfigError(f"unknown setting [{section}] {key} in {CONFIG_FILE}")
            declared = sections[section][key]
            values[declared.name] = declared.kind(declared.label, value)
    for declared in SETTINGS.values():
        if declared.env_name in env:
            values[declared.name] = declared.kind(declared.label, env[declared.env_name])
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
    if (values["source.host"], values["source.port"]) == (values["api.host"], values["api.port"]):
        # Separate surfaces (invariant 8) need separate listeners.
        raise ConfigError("[source] and [api] must not listen on the same address and port")
    _check_retention(values)
    attributes = {
        declared.attr: declared.finish(values[name], instance_dir)
        for name, declared in SETTINGS.items()
    }
    environment = os.environ if env is None else env
    salt, smtp_password = _load_secrets(instance_dir, environment)
    return Settings(
        instance_dir=instance_dir,
        **attributes,
        kdf_salt=salt,
        smtp_password=smtp_password,
        s3_secret_access_key=_s3_secret(instance_dir, environment),
    )


RETENTION_RULES = (
    "retention.submissions_days",
    "retention.replies_days",
    "retention.idle_source_days",
)


def _check_retention(values: Mapping[str, Any]) -> None:
    """Retention dates items by their arrival day; without one it cannot run, and recording a
    finer or new time to make it run would break invariant 6, so the combination is refused."""
    rules = [name for name in RETENTION_RULES if values[name]]
    if rules and values["privacy.arrival_granularity"] == "none":
        raise ConfigError(
            f'{rules[0]} needs privacy.arrival_granularity = "day" (with "none" no item '
            "has a day to expire from); set the rule to 0 or record the day"
        )


def _load_secrets(instance_dir: Path, env: Mapping[str, str]) -> tuple[Secret, Secret | None]:
    """The KDF salt, and the SMTP relay's password (``smtp_password`` in secrets.toml, or the
    environment's SEALDROP_NOTIFICATIONS_SMTP_PASSWORD, which wins; None when neither has one).
    The password is a secret, not a setting: never in sealdrop.toml, whose mode is not checked."""
    raw = _read_secrets(instance_dir)
    salt = _salt(instance_dir / SECRETS_FILE, raw)
    password = env.get(SMTP_PASSWORD_ENV, raw.get("smtp_password"))
    if password is not None and not isinstance(password, str):
        raise ConfigError(f"{instance_dir / SECRETS_FILE}: smtp_password must be a string")
    return salt, Secret(password.encode("utf-8")) if password else None


def _s3_secret(instance_dir: Path, env: Mapping[str, str]) -> Secret | None:
    """The object store's secret key: ``s3_secret_access_key`` in secrets.toml, or the
    environment's SEALDROP_S3_SECRET_ACCESS_KEY, which wins; never in sealdrop.toml."""
    secret = env.get(S3_SECRET_ENV, _read_secrets(instance_dir).get("s3_secret_access_key"))
    if secret is not None and not isinstance(secret, str):
        raise ConfigError(f"{instance_dir / SECRETS_FILE}: s3_secret_access_key must be a string")
    return Secret(secret.encode("utf-8")) if secret else None


def _read_secrets(instance_dir: Path) -> dict[str, Any]:
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
    return raw


def _salt(path: Path, raw: Mapping[str, Any]) -> Secret:
    try:
        salt = bytes.fromhex(raw["kdf_salt"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"{path} has no valid kdf_salt") from None
    if len(salt) < 16:
        raise ConfigError(f"{path}: kdf_salt is too short")
    return Secret(salt)


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
    return list(SETTINGS)


# --- the two documents made from the declaration -----------------------------------------------


def default_config_text(
    host: str = "127.0.0.1", port: int = 8080, organisation_name: str | None = None
) -> str:
    """The commented sealdrop.toml written by ``sealdrop init``."""
    lines = ["# Sealdrop instance settings. Every key is optional; defaults shown.", ""]
    overrides: dict[str, Any] = {"source.host": host, "source.port": port}
    if organisation_name is not None:
        overrides["source.organisation_name"] = organisation_name
    for section, keys in _by_section().items():
        lines.append(f"[{section}]")
        for key, declared in keys.items():
            value = overrides.get(declared.name, declared.default)
            lines.append(f"# {declared.help}")
            shown = _toml_value(value)
            prefix = "" if declared.name in overrides else "# "
            lines.append(f"{prefix}{key} = {shown}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _toml_string(value) if isinstance(value, str) else str(value)


def _toml_string(value: str) -> str:
    # JSON string escapes are valid TOML basic-string escapes; JSON leaves DEL raw, TOML does not.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


TABLE_HEADER = "| Setting | Default | Environment variable | Meaning |"


def settings_table() -> str:
    """The markdown table of every setting in docs/configuration.md."""
    rows = [TABLE_HEADER, "|---|---|---|---|"]
    for declared in SETTINGS.values():
        default = declared.default
        shown = f"`{_toml_value(default)}`"
        if declared.kind is byte_size:
            shown += _in_binary_units(int(default))
        rows.append(f"| `{declared.name}` | {shown} | `{declared.env_name}` | {declared.doc} |")
    return "\n".join(rows) + "\n"


def _in_binary_units(size: int) -> str:
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor and size % factor == 0:
            return f" ({size // factor} {unit})"
    return ""


def with_settings_table(document: str) -> str:
    """``document`` (markdown) with the rows of its settings table, the one headed
    TABLE_HEADER, replaced by ``settings_table()``."""
    lines = document.splitlines(keepends=True)
    try:
        start = lines.index(TABLE_HEADER + "\n")
    except ValueError:
        raise ValueError(f"no line {TABLE_HEADER!r}") from None
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return "".join([*lines[:start], settings_table(), *lines[end:]])
