"""load_settings: defaults, TOML and environment overrides, refusal of anything unknown or invalid,
the owner-only secrets file, the redacted Secret, and documentation of every setting."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

import hypothesis
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import make_url

from sealdrop import config
from sealdrop.config import (
    SECRETS_FILE,
    Secret,
    Settings,
    default_config_text,
    load_settings,
    setting_names,
    write_new_secrets,
)
from sealdrop.config.setting import Setting, https_url, positive_int
from sealdrop.errors import ConfigError
from sealdrop.storage.blobs import parse_s3_url

REPO_ROOT = Path(__file__).resolve().parents[2]
SALT_HEX = "5a" * 32


def make_instance(
    directory: Path, settings_toml: str = "", secrets_toml: str | None = None, mode: int = 0o600
) -> Path:
    """A bare instance folder: sealdrop.toml and secrets.toml, no database (not needed here)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / config.CONFIG_FILE).write_text(settings_toml, encoding="utf-8")
    secrets_path = directory / SECRETS_FILE
    if secrets_toml is None:
        secrets_toml = f'kdf_salt = "{SALT_HEX}"\n'
    secrets_path.write_text(secrets_toml, encoding="utf-8")
    secrets_path.chmod(mode)
    return directory


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    return make_instance(tmp_path / "inst")


def load(directory: Path, **env: str) -> Settings:
    """load_settings with exactly the given SEALDROP_* variables (never the test runner's)."""
    return load_settings(directory, env=env)


def default_values(instance_dir: Path) -> dict[str, object]:
    """The documented defaults of the settings this file knows about (a subset: settings added
    later are covered by the generic tests below, which derive their expectations)."""
    return {
        "instance_dir": instance_dir,
        # The default SQLite URL, parsed back: (backend, database file).
        "database_url": ("sqlite", str(instance_dir / "sealdrop.db")),
        "blob_dir": instance_dir / "store",
        "source_host": "127.0.0.1",
        "source_port": 8080,
        "max_upload_bytes": 2 * 1024**3,
        "max_message_chars": 100_000,
        "arrival_granularity": "day",
        "kdf_max_concurrent": 2,
        "session_idle_seconds": 60 * 60,
        "session_absolute_seconds": 240 * 60,
    }


def comparable(settings: Settings) -> dict[str, object]:
    """The settings as a dict, without the salt, the SQLite URL reduced to what it points at."""
    values = dataclasses.asdict(settings)
    values.pop("kdf_salt")
    values.pop("smtp_password")
    values.pop("s3_secret_access_key")
    if settings.database_url.startswith("sqlite"):
        url = make_url(settings.database_url)
        values["database_url"] = ("sqlite", url.database)
    return values


# --- defaults and overrides --------------------------------------------------------------------


def test_empty_config_gives_the_documented_defaults(instance: Path) -> None:
    """An empty sealdrop.toml yields every default, with minutes turned into seconds."""
    settings = load(instance)
    values = comparable(settings)
    expected = default_values(instance.resolve())
    assert {key: values[key] for key in expected} == expected
    assert settings.kdf_salt.reveal() == bytes.fromhex(SALT_HEX)


def test_instance_dir_is_resolved_to_an_absolute_path(
    instance: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative instance path is made absolute, so later chdirs cannot move the data."""
    monkeypatch.chdir(instance.parent)
    settings = load(Path(instance.name))
    assert settings.instance_dir == instance.resolve()
    assert settings.instance_dir.is_absolute()
    assert settings.blob_dir.is_absolute()


def test_toml_overrides_every_section(tmp_path: Path) -> None:
    """Each value written in sealdrop.toml replaces its default."""
    directory = make_instance(
        tmp_path / "inst",
        """
[database]
url = "postgresql+psycopg://u@db.internal/sealdrop"
[storage]
blob_dir = "elsewhere"
[source]
host = "0.0.0.0"
port = 9090
[limits]
max_upload_bytes = 1000
max_message_chars = 10
[privacy]
arrival_granularity = "none"
[kdf]
max_concurrent = 4
[sessions]
idle_timeout_minutes = 5
absolute_timeout_minutes = 30
""",
    )
    settings = load(directory)
    assert settings.database_url == "postgresql+psycopg://u@db.internal/sealdrop"
    assert settings.blob_dir == directory.resolve() / "elsewhere"
    assert (settings.source_host, settings.source_port) == ("0.0.0.0", 9090)  # noqa: S104
    assert (settings.max_upload_bytes, settings.max_message_chars) == (1000, 10)
    assert settings.arrival_granularity == "none"
    assert settings.kdf_max_concurrent == 4
    assert (settings.session_idle_seconds, settings.session_absolute_seconds) == (300, 1800)


@pytest.mark.parametrize(
    ("variable", "value", "field", "expected"),
    [
        ("SEALDROP_DATABASE_URL", "sqlite:////tmp/x.db", "database_url", "sqlite:////tmp/x.db"),
        ("SEALDROP_SOURCE_HOST", "::1", "source_host", "::1"),
        ("SEALDROP_SOURCE_PORT", "9001", "source_port", 9001),
        ("SEALDROP_LIMITS_MAX_UPLOAD_BYTES", "4096", "max_upload_bytes", 4096),
        ("SEALDROP_LIMITS_MAX_MESSAGE_CHARS", "77", "max_message_chars", 77),
        ("SEALDROP_PRIVACY_ARRIVAL_GRANULARITY", "none", "arrival_granularity", "none"),
        ("SEALDROP_KDF_MAX_CONCURRENT", "3", "kdf_max_concurrent", 3),
        ("SEALDROP_SESSIONS_IDLE_TIMEOUT_MINUTES", "2", "session_idle_seconds", 120),
        ("SEALDROP_SESSIONS_ABSOLUTE_TIMEOUT_MINUTES", "9", "session_absolute_seconds", 540),
    ],
)
def test_environment_overrides_a_setting(
    instance: Path, variable: str, value: str, field: str, expected: object
) -> None:
    """SEALDROP_<SECTION>_<KEY> sets that setting, integers parsed from the string."""
    assert getattr(load(instance, **{variable: value}), field) == expected


def test_environment_override_for_blob_dir_is_relative_to_the_instance(instance: Path) -> None:
    """SEALDROP_STORAGE_BLOB_DIR is resolved against the instance folder like the TOML value."""
    settings = load(instance, SEALDROP_STORAGE_BLOB_DIR="blobs2")
    assert settings.blob_dir == instance.resolve() / "blobs2"


def test_environment_beats_the_toml_file(tmp_path: Path) -> None:
    """When both set a key, the environment wins (containers adjust an instance without edits)."""
    directory = make_instance(tmp_path / "inst", "[source]\nport = 9090\n")
    assert load(directory, SEALDROP_SOURCE_PORT="9191").source_port == 9191
    assert load(directory).source_port == 9090


def test_process_environment_is_read_when_no_env_is_given(
    instance: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without an explicit env mapping, load_settings reads os.environ."""
    monkeypatch.setenv("SEALDROP_SOURCE_PORT", "9333")
    assert load_settings(instance).source_port == 9333


def test_environment_names_are_upper_case_only(instance: Path) -> None:
    """A lower-case variable name is not an override (POSIX environments are case-sensitive)."""
    assert load(instance, sealdrop_source_port="9001").source_port == 8080


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "toml",
    [
        "[nosuchsection]\nkey = 1\n",
        "[source]\nnosuchkey = 1\n",
        "[source]\nPort = 9000\n",  # keys are case-sensitive: a typo is refused, not ignored
        "port = 9000\n",  # a key outside any section
    ],
)
def test_unknown_section_or_key_is_refused(tmp_path: Path, toml: str) -> None:
    """A misspelt setting is an error rather than silently ignored."""
    directory = make_instance(tmp_path / "inst", toml)
    with pytest.raises(ConfigError, match="unknown"):
        load(directory)


@pytest.mark.parametrize(
    "toml",
    [
        "[source]\nport = 0\n",
        "[source]\nport = -1\n",
        "[source]\nport = true\n",
        "[source]\nport = 80.5\n",
        '[source]\nport = "eighty"\n',
        "[source]\nport = [8080]\n",
        "[source]\nhost = 5\n",
        "[source]\nhost = false\n",
        "[database]\nurl = {}\n",
        "[limits]\nmax_upload_bytes = 0\n",
        "[limits]\nmax_message_chars = -10\n",
        '[privacy]\narrival_granularity = "hour"\n',
        '[privacy]\narrival_granularity = "Day"\n',
        "[privacy]\narrival_granularity = 1\n",
        "[kdf]\nmax_concurrent = 0\n",
        "[sessions]\nidle_timeout_minutes = 0\n",
        "[sessions]\nabsolute_timeout_minutes = 1.0\n",
        'database = "not a table"\n',
    ],
)
def test_bad_type_or_value_in_toml_is_refused(tmp_path: Path, toml: str) -> None:
    """Wrong types, non-positive integers, booleans as integers and unknown enum values fail."""
    directory = make_instance(tmp_path / "inst", toml)
    with pytest.raises(ConfigError):
        load(directory)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SEALDROP_SOURCE_PORT", "abc"),
        ("SEALDROP_SOURCE_PORT", ""),
        ("SEALDROP_SOURCE_PORT", "0"),
        ("SEALDROP_SOURCE_PORT", "-8080"),
        ("SEALDROP_SOURCE_PORT", "80.0"),
        ("SEALDROP_KDF_MAX_CONCURRENT", "two"),
        ("SEALDROP_PRIVACY_ARRIVAL_GRANULARITY", "hour"),
        ("SEALDROP_PRIVACY_ARRIVAL_GRANULARITY", "day "),
    ],
)
def test_bad_value_in_environment_is_refused(instance: Path, variable: str, value: str) -> None:
    """An environment override is validated exactly like a TOML value."""
    with pytest.raises(ConfigError):
        load(instance, **{variable: value})


@pytest.mark.parametrize("port", ["65536", "70000"])
def test_port_beyond_65535_is_refused(instance: Path, port: str) -> None:
    """A TCP port above 65535 is a configuration error, not a crash when the server binds."""
    with pytest.raises(ConfigError):
        load(instance, SEALDROP_SOURCE_PORT=port)


@pytest.mark.parametrize("content", [b"[source\nport = 1\n", b"\xff\xfe not utf-8"])
def test_unparseable_settings_file_is_refused(tmp_path: Path, content: bytes) -> None:
    """Invalid TOML or non-UTF-8 bytes in sealdrop.toml give ConfigError, not a traceback."""
    directory = make_instance(tmp_path / "inst")
    (directory / config.CONFIG_FILE).write_bytes(content)
    with pytest.raises(ConfigError, match=r"sealdrop\.toml"):
        load(directory)


def test_missing_instance_points_to_sealdrop_init(tmp_path: Path) -> None:
    """A folder without sealdrop.toml is refused with the command that creates one."""
    (tmp_path / "empty").mkdir()
    for directory in (tmp_path / "empty", tmp_path / "does-not-exist"):
        with pytest.raises(ConfigError, match="`sealdrop init"):
            load(directory)


# --- secrets.toml ------------------------------------------------------------------------------


def test_missing_secrets_file_is_refused(instance: Path) -> None:
    """Without secrets.toml no source could log in, so loading fails loudly."""
    (instance / SECRETS_FILE).unlink()
    with pytest.raises(ConfigError, match=r"secrets\.toml is missing"):
        load(instance)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o666, 0o601])
def test_secrets_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    """Any group or other permission bit on secrets.toml is refused (offline KDF attacks)."""
    directory = make_instance(tmp_path / "inst", mode=mode)
    with pytest.raises(ConfigError, match="chmod 600"):
        load(directory)


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_owner_only_secrets_file_is_accepted(tmp_path: Path, mode: int) -> None:
    """0600 and read-only 0400 are both owner-only."""
    directory = make_instance(tmp_path / "inst", mode=mode)
    assert load(directory).kdf_salt.reveal() == bytes.fromhex(SALT_HEX)


@pytest.mark.parametrize(
    "secrets_toml",
    [
        "",
        'other = "00"\n',
        'kdf_salt = "not hex at all"\n',
        'kdf_salt = "abc"\n',  # odd number of hex digits
        "kdf_salt = 1234\n",
        'kdf_salt = ["5a5a"]\n',
        f'kdf_salt = "{"5a" * 15}"\n',  # 15 bytes: shorter than the 16-byte minimum
        'kdf_salt = "\n',  # invalid TOML
    ],
)
def test_bad_salt_is_refused_without_echoing_it(tmp_path: Path, secrets_toml: str) -> None:
    """A missing, malformed or short salt gives ConfigError whose text never repeats the file."""
    directory = make_instance(tmp_path / "inst", secrets_toml=secrets_toml)
    with pytest.raises(ConfigError, match=r"secrets\.toml") as raised:
        load(directory)
    assert "5a5a" not in str(raised.value)
    assert "not hex at all" not in str(raised.value)


def test_sixteen_byte_salt_is_the_minimum_accepted(tmp_path: Path) -> None:
    """Exactly 16 bytes of salt load."""
    directory = make_instance(tmp_path / "inst", secrets_toml=f'kdf_salt = "{"ab" * 16}"\n')
    assert load(directory).kdf_salt.reveal() == b"\xab" * 16


def test_write_new_secrets_creates_an_owner_only_fresh_salt(tmp_path: Path) -> None:
    """write_new_secrets makes a 0600 file with 32 random bytes, different every time."""
    first = make_instance(tmp_path / "a")
    second = make_instance(tmp_path / "b")
    for directory in (first, second):
        (directory / SECRETS_FILE).unlink()
        write_new_secrets(directory)
        assert (directory / SECRETS_FILE).stat().st_mode & 0o777 == 0o600
    salts = {load(d).kdf_salt.reveal() for d in (first, second)}
    assert len(salts) == 2
    assert all(len(salt) == config.SALT_BYTES for salt in salts)


def test_write_new_secrets_never_replaces_an_existing_salt(instance: Path) -> None:
    """A second write refuses (O_EXCL) rather than lock every source out with a new salt."""
    before = (instance / SECRETS_FILE).read_bytes()
    with pytest.raises(FileExistsError):
        write_new_secrets(instance)
    assert (instance / SECRETS_FILE).read_bytes() == before


# --- Secret ------------------------------------------------------------------------------------


def test_secret_repr_str_and_format_never_show_the_value() -> None:
    """Every way a Secret can be turned into text hides it; reveal() gives the bytes back."""
    value = b"\x5a" * 32
    secret = Secret(value)
    renderings = [repr(secret), str(secret), f"{secret}", f"{secret!r}"]
    renderings += ["%s" % (secret,), "%r" % (secret,)]  # noqa: UP031 - the old style is checked too
    for text in renderings:
        assert "5a" not in text.lower()
        assert "Z" not in text  # b"\x5a" is "Z"
        assert repr(value) not in text
    assert secret.reveal() == value


def test_settings_repr_does_not_show_the_salt(instance: Path) -> None:
    """repr(Settings) (what a traceback or debug log shows) carries no salt, in any encoding."""
    settings = load(instance)
    text = repr(settings) + str(settings)
    assert SALT_HEX not in text.lower()
    assert repr(bytes.fromhex(SALT_HEX)) not in text
    assert "kdf_salt" not in text


def test_settings_are_frozen(instance: Path) -> None:
    """Settings cannot be changed after loading (they are read once, at the edge)."""
    settings = load(instance)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.source_port = 1  # type: ignore[misc]


# --- the generated sealdrop.toml ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "port"),
    [("127.0.0.1", 8080), ("0.0.0.0", 9999), ("::1", 1), ("localhost", 65535)],  # noqa: S104
)
def test_default_config_text_round_trips(tmp_path: Path, host: str, port: int) -> None:
    """The file `sealdrop init` writes loads back as the defaults plus the chosen host and port."""
    directory = make_instance(tmp_path / "inst", default_config_text(host, port))
    settings = load(directory)
    defaults = comparable(load(make_instance(tmp_path / "empty")))
    expected = defaults | {
        "instance_dir": directory.resolve(),
        "database_url": ("sqlite", str(directory.resolve() / "sealdrop.db")),
        "blob_dir": directory.resolve() / "store",
        "source_host": host,
        "source_port": port,
    }
    assert comparable(settings) == expected


def test_uncommenting_every_default_changes_nothing(tmp_path: Path) -> None:
    """Each commented `# key = value` line in the generated file shows the true default."""
    text = default_config_text()
    uncommented = re.sub(r"(?m)^# (\w+ = .*)$", r"\1", text)
    assert uncommented != text
    directory = make_instance(tmp_path / "inst", uncommented)
    empty = make_instance(tmp_path / "empty", "")
    relocated = comparable(load(empty)) | {
        "instance_dir": directory.resolve(),
        "database_url": ("sqlite", str(directory.resolve() / "sealdrop.db")),
        "blob_dir": directory.resolve() / "store",
    }
    assert comparable(load(directory)) == relocated


def test_default_config_text_mentions_every_setting() -> None:
    """Every key of every section appears in the generated file, under its section header."""
    text = default_config_text()
    for name in setting_names():
        section, key = name.split(".")
        assert f"[{section}]" in text
        assert re.search(rf"(?m)^(# )?{key} = ", text), name


@hypothesis.settings(max_examples=100, deadline=None)
@given(host=st.text(st.characters(blacklist_categories=["Cs"])))
def test_default_config_text_round_trips_any_host_string(host: str) -> None:
    """Quotes, backslashes, control characters and non-ASCII in the host are escaped as TOML."""
    parsed = tomllib.loads(default_config_text(host, 8080))
    assert parsed["source"]["host"] == host


def test_default_config_text_escapes_delete_character() -> None:
    """U+007F in the host is written escaped, so the file still parses."""
    assert tomllib.loads(default_config_text("a\x7fb"))["source"]["host"] == "a\x7fb"


@pytest.mark.parametrize("folder", ["what?now", "100%41", "hash#tag", "sp ace"])
def test_default_database_url_names_the_file_in_the_instance(tmp_path: Path, folder: str) -> None:
    """The default SQLite URL parses back to <instance>/sealdrop.db whatever the folder name
    (characters such as ? # % are escaped, not read as URL syntax)."""
    directory = make_instance(tmp_path / folder)
    url = make_url(load(directory).database_url)
    assert url.get_backend_name() == "sqlite"
    assert url.database == str(directory.resolve() / "sealdrop.db")
    assert dict(url.query) == {}


# --- documentation -----------------------------------------------------------------------------


def test_setting_names_cover_every_section_and_key() -> None:
    """setting_names() lists each setting once as 'section.key'."""
    names = setting_names()
    assert len(names) == len(set(names))
    assert names == list(config.SETTINGS)
    assert "limits.max_upload_bytes" in names


def test_every_setting_is_documented() -> None:
    """docs/configuration.md names every setting literally as `section.key`."""
    doc = REPO_ROOT / "docs" / "configuration.md"
    assert doc.is_file(), f"{doc} is missing: every setting must be documented"
    text = doc.read_text(encoding="utf-8")
    missing = [name for name in setting_names() if name not in text]
    assert missing == [], f"undocumented settings: {missing}"


# A value other than the default for settings whose kind takes neither "7" nor "x".
NON_DEFAULT = {
    "notifications.send_when_empty": "true",
    "notifications.allow_urls": "true",
    "notifications.language": "fa",
    "notifications.smtp_url": "smtp://relay.example.org",
    "metrics.enabled": "true",
    "retention.jitter_days": "3",  # its default is the generic 7
    "storage.blobs": "s3://bucket/prefix",
    "s3.endpoint_url": "https://s3.example.org",
}


def test_every_environment_variable_name_is_derivable(instance: Path) -> None:
    """Each setting has exactly one SEALDROP_<SECTION>_<KEY> name, and it takes effect."""
    for name in setting_names():
        section, key = name.split(".")
        variable = f"SEALDROP_{section}_{key}".upper()
        default = config.SETTINGS[name].default
        if name == "privacy.arrival_granularity":
            value = "none"
        elif name == "tor.enabled":
            value = "no"
        elif name == "source.public_url":
            value = "https://drop.example.org"
        elif name in NON_DEFAULT:
            value = NON_DEFAULT[name]
        else:
            value = "7" if isinstance(default, int) else "x"
        settings = load(instance, **{variable: value})
        assert comparable(settings) != comparable(load(instance)), variable


def test_the_documents_settings_table_is_generated_from_the_declaration() -> None:
    """docs/configuration.md's table of settings is exactly the one rendered from the declaration
    (name, default, environment variable and meaning of each), so the two cannot drift."""
    doc = (REPO_ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert config.settings_table() in doc
    assert config.with_settings_table(doc) == doc, (
        "docs/configuration.md differs from the declaration: "
        "python -m sealdrop.config docs/configuration.md"
    )


def test_a_drifted_settings_table_is_rewritten(tmp_path: Path) -> None:
    """A stale row (a changed default, a setting missing) is replaced by the declared table, by
    `python -m sealdrop.config FILE`, and the text around the table is kept."""
    from sealdrop.config.__main__ import main

    doc = (REPO_ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    stale = doc.replace("| `8080` |", "| `8000` |").replace(
        config.settings_table().splitlines()[-1] + "\n", ""
    )
    assert stale != doc
    assert config.with_settings_table(stale) == doc
    copy = tmp_path / "configuration.md"
    copy.write_text(stale, encoding="utf-8")
    assert main([str(copy)]) == 0
    assert copy.read_text(encoding="utf-8") == doc


def test_the_settings_table_shows_each_default_as_written() -> None:
    """Text defaults are quoted, integers plain, byte sizes also in binary units."""
    rows = {line.split(" | ")[0]: line for line in config.settings_table().splitlines()}
    assert '| `"store"` |' in rows["| `storage.blob_dir`"]
    assert "| `8080` |" in rows["| `source.port`"]
    assert "| `2147483648` (2 GiB) |" in rows["| `limits.max_upload_bytes`"]
    assert "| `SEALDROP_LIMITS_MAX_UPLOAD_BYTES` |" in rows["| `limits.max_upload_bytes`"]


def test_every_settings_attribute_comes_from_one_setting() -> None:
    """Each attribute of Settings but the instance folder and the secrets is declared by exactly one
    setting, and each setting names one attribute."""
    attributes = [f.name for f in dataclasses.fields(Settings)]
    declared = [setting.attr for setting in config.SETTINGS.values()]
    secrets = {"instance_dir", "kdf_salt", "smtp_password", "s3_secret_access_key"}
    assert sorted(declared) == sorted(set(attributes) - secrets)
    assert len(set(declared)) == len(declared)


@pytest.mark.parametrize(
    ("name", "default"), [("limits.bad", 0), ("source.bad", "ftp://x"), ("Limits.x", 1)]
)
def test_a_setting_declared_with_an_invalid_default_or_name_is_refused(
    name: str, default: int | str
) -> None:
    """A default its own kind refuses, or a name that is not lower-case `section.key`, fails when
    the module is imported rather than when an operator loads an instance."""
    kind = https_url if isinstance(default, str) else positive_int
    with pytest.raises((ConfigError, ValueError)):
        Setting(name, default, kind, help="h", doc="d")


@pytest.mark.parametrize(
    "url",
    [
        "http://relay.example.org",
        "smtp://",
        "smtp://user:hunter2@relay.example.org",
        "smtp://relay.example.org:99999",
        "smtp://relay.example.org/path",
    ],
)
def test_a_smtp_url_that_is_not_smtp_or_holds_a_password_is_refused(
    instance: Path, url: str
) -> None:
    """[notifications] smtp_url takes smtp:// or smtps:// with a host and no password (which
    belongs in secrets.toml), and the error never repeats a password."""
    with pytest.raises(ConfigError) as caught:
        load(instance, SEALDROP_NOTIFICATIONS_SMTP_URL=url)
    assert "hunter2" not in str(caught.value)


def test_the_smtp_password_comes_from_secrets_toml_or_the_environment(instance: Path) -> None:
    """smtp_password is read from secrets.toml, the environment's
    SEALDROP_NOTIFICATIONS_SMTP_PASSWORD wins over it, it is None without either, and it never
    shows in the settings' repr."""
    assert load(instance).smtp_password is None
    secrets_file = instance / "secrets.toml"
    secrets_file.write_text(
        secrets_file.read_text(encoding="utf-8") + 'smtp_password = "from-the-file"\n',
        encoding="utf-8",
    )
    from_file = load(instance)
    assert from_file.smtp_password is not None
    assert from_file.smtp_password.reveal() == b"from-the-file"
    assert "from-the-file" not in repr(from_file)
    from_env = load(instance, SEALDROP_NOTIFICATIONS_SMTP_PASSWORD="from-the-env")
    assert from_env.smtp_password is not None
    assert from_env.smtp_password.reveal() == b"from-the-env"


def test_the_s3_secret_comes_from_secrets_toml_or_the_environment(instance: Path) -> None:
    """s3_secret_access_key is read from secrets.toml, SEALDROP_S3_SECRET_ACCESS_KEY wins over
    it, it is None without either, and it never shows in the settings' repr."""
    assert load(instance).s3_secret_access_key is None
    secrets_file = instance / "secrets.toml"
    secrets_file.write_text(
        secrets_file.read_text(encoding="utf-8") + 's3_secret_access_key = "from-the-file"\n',
        encoding="utf-8",
    )
    from_file = load(instance)
    assert from_file.s3_secret_access_key is not None
    assert from_file.s3_secret_access_key.reveal() == b"from-the-file"
    assert "from-the-file" not in repr(from_file)
    from_env = load(instance, SEALDROP_S3_SECRET_ACCESS_KEY="from-the-env")
    assert from_env.s3_secret_access_key is not None
    assert from_env.s3_secret_access_key.reveal() == b"from-the-env"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://drop-bucket", ("drop-bucket", "")),
        ("s3://drop-bucket/", ("drop-bucket", "")),
        ("s3://drop-bucket/a/b.c/", ("drop-bucket", "a/b.c/")),
        ("/srv/store", None),
        ("s3://", None),
        ("s3://Bad_Bucket/x", None),
        ("s3://bucket/../x", None),
        ("s3://bucket/a//b", None),
        ("s3://bucket/a b", None),
    ],
)
def test_storage_blobs_is_empty_or_an_s3_url_with_a_plain_prefix(
    instance: Path, url: str, expected: tuple[str, str] | None
) -> None:
    """storage.blobs takes s3://BUCKET[/PREFIX] with a DNS-style bucket and plain path segments
    (never "..", an empty segment or a space), and refuses anything else at load time."""
    if expected is None:
        with pytest.raises(ConfigError):
            load(instance, SEALDROP_STORAGE_BLOBS=url)
        return
    settings = load(instance, SEALDROP_STORAGE_BLOBS=url)
    location = parse_s3_url(settings.blobs)
    assert (location.bucket, location.prefix) == expected


@pytest.mark.parametrize(("raw", "expected"), [("true", True), ("no", False), ("1", True)])
def test_send_when_empty_is_a_boolean_from_the_environment(
    instance: Path, raw: str, expected: bool
) -> None:
    """A boolean setting takes true/false, yes/no, 1/0 from the environment, and refuses others."""
    assert load(instance, SEALDROP_NOTIFICATIONS_SEND_WHEN_EMPTY=raw).notify_when_empty is expected
    with pytest.raises(ConfigError):
        load(instance, SEALDROP_NOTIFICATIONS_SEND_WHEN_EMPTY="maybe")


def test_a_boolean_default_is_written_as_toml() -> None:
    """The sealdrop.toml that init writes and the settings table show a boolean as TOML's
    false, so that uncommenting the line gives a valid file."""
    assert "# send_when_empty = false" in config.default_config_text()
    rows = {line.split(" | ")[0]: line for line in config.settings_table().splitlines()}
    assert "| `false` |" in rows["| `notifications.send_when_empty`"]
