"""The [retention] settings: off by default, their bounds, and the refusal of a rule that no
stored day could serve (arrival granularity "none")."""

from __future__ import annotations

from pathlib import Path

import pytest

from sealdrop import config
from sealdrop.config import SECRETS_FILE, load_settings
from sealdrop.errors import ConfigError


def instance(directory: Path, toml: str = "") -> Path:
    directory.mkdir()
    (directory / config.CONFIG_FILE).write_text(toml, encoding="utf-8")
    (directory / SECRETS_FILE).write_text('kdf_salt = "' + "5a" * 32 + '"\n', encoding="utf-8")
    (directory / SECRETS_FILE).chmod(0o600)
    return directory


def test_retention_is_off_by_default_with_a_week_of_jitter(tmp_path: Path) -> None:
    """No rule deletes anything unless the operator sets one; the jitter window is 7 days."""
    settings = load_settings(instance(tmp_path / "i"), env={})
    assert settings.retention_submissions_days == 0
    assert settings.retention_replies_days == 0
    assert settings.retention_idle_source_days == 0
    assert settings.retention_jitter_days == 7


@pytest.mark.parametrize(
    "rule", ["submissions_days", "replies_days", "idle_source_days"], ids=lambda r: r
)
def test_a_rule_with_arrival_granularity_none_is_refused(tmp_path: Path, rule: str) -> None:
    """With granularity "none" no item has a day to expire from: the configuration is refused
    at load, naming the rule and the setting, rather than the server recording a time."""
    toml = f'[privacy]\narrival_granularity = "none"\n[retention]\n{rule} = 30\n'
    with pytest.raises(ConfigError, match=rf"retention\.{rule} needs privacy\.arrival_granularity"):
        load_settings(instance(tmp_path / "i", toml), env={})


def test_granularity_none_without_a_rule_is_accepted(tmp_path: Path) -> None:
    """Only a rule that is on needs a day: jitter alone, or rules at 0, are fine."""
    toml = '[privacy]\narrival_granularity = "none"\n[retention]\njitter_days = 3\n'
    assert load_settings(instance(tmp_path / "i", toml), env={}).retention_jitter_days == 3


@pytest.mark.parametrize("value", ["-1", "36501", "true", '"ten"', "1.5"])
def test_out_of_range_days_are_refused(tmp_path: Path, value: str) -> None:
    """Days are whole numbers from 0 (off) to 36,500."""
    with pytest.raises(ConfigError, match="number of days"):
        load_settings(
            instance(tmp_path / "i", f"[retention]\nsubmissions_days = {value}\n"), env={}
        )


def test_days_from_the_environment(tmp_path: Path) -> None:
    """SEALDROP_RETENTION_* variables set the rules like the file does."""
    env = {"SEALDROP_RETENTION_REPLIES_DAYS": "90"}
    assert load_settings(instance(tmp_path / "i"), env=env).retention_replies_days == 90
