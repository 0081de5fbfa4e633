"""The reader's private files (config, token, identity) are written one way: a 0600 temp file,
fsynced, renamed into place, and the folder fsynced so that the new name survives a crash."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sealdrop.reader.profile import Profile, ReaderConfig


@pytest.fixture
def synced_folders(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The folders whose entries were fsynced (os.fsync on a directory descriptor)."""
    folders: list[Path] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            folders.append(Path(os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return folders


def test_saving_the_token_and_the_config_makes_the_new_names_durable(
    tmp_path: Path, synced_folders: list[Path]
) -> None:
    """profile.save_token and save_config fsync the data folder after the rename, as the
    identity file's writer does (a crash must not bring back an old token or lose the config)."""
    profile = Profile(tmp_path / "reader").ensure()
    profile.save_token("secret-token", 2**40)
    assert synced_folders == [profile.root]
    profile.save_config(ReaderConfig("http://127.0.0.1:8081", "alice"))
    assert synced_folders == [profile.root, profile.root]
    for path in (profile.token_path, profile.config_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not [p for p in profile.root.iterdir() if p.name.endswith(".tmp")]
