"""One setting: how it is declared (``setting()`` on a field of a ``@declaration`` class), the
kinds of value it accepts, and how a value becomes the attribute the code reads.

A kind is a function ``(label, raw value) -> value`` that raises ConfigError with a readable
reason. The same function checks a TOML value and an environment string, so an override is
validated exactly like the file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar, dataclass_transform
from urllib.parse import urlsplit

from sealdrop.errors import ConfigError

Kind = Callable[[str, object], Any]
Finish = Callable[[Any, Path], Any]
_T = TypeVar("_T")
_METADATA_KEY = "sealdrop.setting"
_NAME = re.compile(r"[a-z][a-z0-9_]*\.[a-z][a-z_]*")  # sections may hold digits: [s3]


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


# --- kinds of value ----------------------------------------------------------------------------


def positive_int(label: str, value: object) -> int:
    if isinstance(value, str):  # from the environment
        try:
            value = int(value)
        except ValueError:
            raise ConfigError(f"{label} must be an integer") from None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{label} must be a positive integer")
    return value


def byte_size(label: str, value: object) -> int:
    """A positive number of bytes (the reference shows it in KiB, MiB or GiB too)."""
    return positive_int(label, value)


def port(label: str, value: object) -> int:
    number = positive_int(label, value)
    if number > 65535:
        raise ConfigError(f"{label} must be a TCP port (1-65535)")
    return number


def days_or_off(label: str, value: object) -> int:
    """A number of days, 0 meaning off (at most 100 years, so that date arithmetic cannot
    overflow)."""
    refused = ConfigError(f"{label} must be a number of days (0-36500; 0: off)")
    if isinstance(value, str):  # from the environment
        try:
            value = int(value)
        except ValueError:
            raise refused from None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 36500:
        raise refused
    return value


def text(label: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{label} must be a string")
    return value


def one_of(*choices: str) -> Kind:
    """A string that is exactly one of ``choices`` (case-sensitive)."""
    quoted = [f"'{choice}'" for choice in choices]
    spelled = ", ".join(quoted[:-1]) + f" or {quoted[-1]}"

    def parse(label: str, value: object) -> str:
        if text(label, value) not in choices:
            raise ConfigError(f"{label} must be {spelled}")
        return str(value)

    return parse


def boolean(label: str, value: object) -> bool:
    """true or false (TOML booleans; from the environment: true/false, yes/no, 1/0)."""
    if isinstance(value, str):
        spelled = value.strip().lower()
        if spelled in ("true", "yes", "1"):
            return True
        if spelled in ("false", "no", "0"):
            return False
    if isinstance(value, bool):
        return value
    raise ConfigError(f"{label} must be true or false")


def smtp_url(label: str, value: object) -> str:
    """Empty, or smtp://[user@]host[:port] (STARTTLS) or smtps://[user@]host[:port] (TLS)."""
    url = text(label, value)
    if not url:
        return url
    try:
        parsed = urlsplit(url)
        parsed.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigError(f"{label} must be smtp://[user@]host[:port] or smtps://…") from None
    if parsed.scheme not in ("smtp", "smtps") or not parsed.hostname:
        raise ConfigError(f"{label} must be smtp://[user@]host[:port] or smtps://…")
    if parsed.password is not None:
        # A password here would sit in a file that is not secret (and in `ps` via the env).
        raise ConfigError(f"{label} must not hold a password: put it in secrets.toml")
    if parsed.path not in ("", "/") or parsed.query or parsed.fragment:
        raise ConfigError(f"{label} must be smtp://[user@]host[:port] or smtps://…")
    return url


def https_url(label: str, value: object) -> str:
    """Empty, or an https:// address."""
    if text(label, value) and not str(value).startswith("https://"):
        raise ConfigError(f"{label} must start with https:// (or be empty)")
    return str(value)


# --- from a value to the attribute -------------------------------------------------------------


def as_is(value: Any, instance_dir: Path) -> Any:
    return value


def in_instance(value: str, instance_dir: Path) -> Path:
    """A path relative to the instance folder (an absolute one stays as it is)."""
    return instance_dir / value


def optional_in_instance(value: str, instance_dir: Path) -> Path | None:
    return instance_dir / value if value else None


def hours_to_seconds(value: int, instance_dir: Path) -> int:
    return value * 3600


def minutes_to_seconds(value: int, instance_dir: Path) -> int:
    return value * 60


# --- the declaration ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Setting:
    """A key of sealdrop.toml: its name, default, kind and meaning, and the attribute of
    Settings that holds its value."""

    name: str  # "section.key"
    default: bool | int | str
    kind: Kind
    help: str  # one line: the comment above the key in the sealdrop.toml that `init` writes
    doc: str  # the meaning in docs/configuration.md (markdown)
    finish: Finish = as_is  # from the checked value to the attribute's value
    attr: str = ""  # the attribute of Settings, filled in by declared()

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"a setting is named 'section.key', not {self.name!r}")
        self.kind(self.label, self.default)  # a default its own kind refuses is a typo

    @property
    def section(self) -> str:
        return self.name.partition(".")[0]

    @property
    def key(self) -> str:
        return self.name.partition(".")[2]

    @property
    def label(self) -> str:
        """How messages name it: ``[section] key``, as in the file."""
        return f"[{self.section}] {self.key}"

    @property
    def env_name(self) -> str:
        """The environment variable that overrides it: SEALDROP_<SECTION>_<KEY>."""
        return f"SEALDROP_{self.section}_{self.key}".upper()


def setting(
    name: str,
    default: bool | int | str,
    kind: Kind,
    *,
    help: str,
    doc: str,
    finish: Finish = as_is,
) -> Any:
    """A field of a ``@declaration`` class that is read from sealdrop.toml (see Setting)."""
    declared = Setting(name, default, kind, help, doc, finish)
    return field(metadata={_METADATA_KEY: declared})


@dataclass_transform(frozen_default=True, field_specifiers=(setting, field))
def declaration(cls: type[_T]) -> type[_T]:
    """A frozen dataclass whose ``setting()`` fields are the settings (and the type checker
    knows that they have no default: every value is given when it is built)."""
    return dataclass(frozen=True, slots=True)(cls)


def declared(cls: type[Any]) -> Mapping[str, Setting]:
    """The settings of a ``@declaration`` class by name, in the order of its fields."""
    found: dict[str, Setting] = {}
    for attribute in fields(cls):
        declared_setting = attribute.metadata.get(_METADATA_KEY)
        if declared_setting is not None:
            found[declared_setting.name] = replace(declared_setting, attr=attribute.name)
    return found
