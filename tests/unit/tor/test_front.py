"""The Onionbalance front: its key, the configuration `sealdrop balance` writes for Onionbalance,
and what a worker's managed tor needs to serve behind it."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)
from stem.descriptor.hidden_service import HiddenServiceDescriptorV3
from typer.testing import CliRunner

from sealdrop.cli.main import app
from sealdrop.config import load_settings
from sealdrop.errors import ConfigError
from sealdrop.tor.front import (
    ensure_front_key,
    front_address,
    parse_onion_address,
    render_onionbalance_config,
    write_ob_config,
    write_onionbalance_config,
)
from sealdrop.tor.layout import TorLayout, render_torrc


def onion() -> str:
    """A fresh, valid v3 onion address."""
    public = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return str(HiddenServiceDescriptorV3.address_from_identity_key(public, suffix=True))


@pytest.fixture
def layout(tmp_path: Path) -> TorLayout:
    return TorLayout(tmp_path / "tor")


def test_front_key_is_made_once_owner_only_and_gives_the_front_address(layout: TorLayout) -> None:
    """The key is an ed25519 PEM key, 0600 in a 0700 folder; a second call keeps it (a new key
    would be a new address); the address is the key's, as Onionbalance derives it."""
    assert front_address(layout) is None
    address = ensure_front_key(layout)
    key_path = layout.front_onion_dir / "key.pem"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(layout.front_onion_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(layout.root.stat().st_mode) == 0o700
    key = load_pem_private_key(key_path.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert address == HiddenServiceDescriptorV3.address_from_identity_key(public, suffix=True)
    before = key_path.read_bytes()
    assert ensure_front_key(layout) == address == front_address(layout)
    assert key_path.read_bytes() == before
    assert (layout.front_onion_dir / "hostname").read_text() == address + "\n"


def test_onionbalance_config_names_the_key_and_every_worker(layout: TorLayout) -> None:
    """The YAML Onionbalance reads: one service, the key file next to the configuration, and
    the workers' addresses without .onion (as Onionbalance expects them)."""
    workers = [onion(), onion()]
    path = write_onionbalance_config(layout, [workers[0], workers[1].removesuffix(".onion")])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.parent == layout.front_onion_dir
    data = yaml.safe_load(path.read_text())
    assert data == {
        "services": [
            {
                "key": "key.pem",
                "instances": [{"address": w.removesuffix(".onion")} for w in workers],
            }
        ]
    }
    # Written again with other workers, the same key stays.
    front = front_address(layout)
    write_onionbalance_config(layout, [workers[1]])
    assert front_address(layout) == front
    assert len(yaml.safe_load(path.read_text())["services"][0]["instances"]) == 1


@pytest.mark.parametrize(
    ("workers", "message"),
    [
        ([], "at least one worker"),
        (["FRONT"], "cannot also be a worker"),
        (["W", "W"], "named twice"),
        (["a" * 56 + ".onion"], "not a v3 onion address"),
        (["expyuzz4wqqyqhjn.onion"], "not a v3 onion address"),  # a v2 address
    ],
)
def test_onionbalance_config_refuses_bad_worker_lists(workers: list[str], message: str) -> None:
    """No workers, the front as a worker, a repeated worker, an address whose checksum is wrong
    (a typo) or a v2 address: refused before anything is written."""
    front, worker = onion(), onion()
    named = [front if w == "FRONT" else worker if w == "W" else w for w in workers]
    with pytest.raises(ConfigError, match=message):
        render_onionbalance_config(front, named)


def test_parse_onion_address_accepts_the_usual_spellings() -> None:
    """Upper case, no .onion, or an http:// URL with a slash: the same address."""
    address = onion()
    bare = address.removesuffix(".onion")
    for spelled in (address, bare.upper(), f"http://{address}/", f" {bare} "):
        assert parse_onion_address(spelled) == address


def test_torrc_makes_the_source_onion_an_onionbalance_instance_only_with_a_front(
    layout: TorLayout,
) -> None:
    """With a front, the source onion (not the API onion) has HiddenServiceOnionbalanceInstance;
    without one, no onion has it."""
    lines = render_torrc(layout, 1, None, onion()).splitlines()
    source_at = lines.index(f"HiddenServiceDir {layout.source_onion_dir}")
    api_at = lines.index(f"HiddenServiceDir {layout.api_onion_dir}")
    assert "HiddenServiceOnionbalanceInstance 1" in lines[source_at:api_at]
    assert "HiddenServiceOnionbalanceInstance 1" not in lines[api_at:]
    # PoW and circuit ids stay on behind a front.
    assert "HiddenServicePoWDefensesEnabled 1" in lines[source_at:api_at]
    assert "HiddenServiceExportCircuitID haproxy" in lines[source_at:api_at]
    assert "OnionbalanceInstance" not in render_torrc(layout, 1, None)


def test_ob_config_names_the_front_and_goes_away_without_one(layout: TorLayout) -> None:
    """tor reads MasterOnionAddress from ob_config in the source onion folder; a worker taken
    out of the front loses the file."""
    layout.prepare()
    front = onion()
    write_ob_config(layout, front)
    assert (layout.source_onion_dir / "ob_config").read_text() == f"MasterOnionAddress {front}\n"
    write_ob_config(layout, None)
    assert not (layout.source_onion_dir / "ob_config").exists()


def test_onionbalance_front_setting_checks_the_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """[tor] onionbalance_front is normalised to xyz.onion; a mistyped address is refused when
    the settings load, not when tor fails to start."""
    instance = tmp_path / "instance"
    assert CliRunner().invoke(app, ["init", str(instance)]).exit_code == 0
    assert load_settings(instance).tor_onionbalance_front is None
    address = onion()
    monkeypatch.setenv("SEALDROP_TOR_ONIONBALANCE_FRONT", address.removesuffix(".onion").upper())
    assert load_settings(instance).tor_onionbalance_front == address
    typo = address[:10] + ("b" if address[10] != "b" else "c") + address[11:]
    monkeypatch.setenv("SEALDROP_TOR_ONIONBALANCE_FRONT", typo)
    with pytest.raises(ConfigError, match="onionbalance_front"):
        load_settings(instance)


def test_balance_command_prints_the_front_and_writes_the_configuration(tmp_path: Path) -> None:
    """`sealdrop balance DIR --worker A --worker B` prints the front address alone on stdout,
    asks for [tor] onionbalance_front while it is not set, and writes Onionbalance's file."""
    instance = tmp_path / "instance"
    runner = CliRunner()
    assert runner.invoke(app, ["init", str(instance)]).exit_code == 0
    workers = [onion(), onion()]
    args = ["balance", str(instance), "--worker", workers[0], "--worker", workers[1]]
    result = runner.invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.stderr
    front = result.stdout.strip()
    assert front == front_address(TorLayout.of_instance(instance))
    assert f'onionbalance_front = "{front}"' in result.stderr
    config = instance / "tor" / "front-onion" / "onionbalance.yaml"
    assert yaml.safe_load(config.read_text())["services"][0]["instances"] == [
        {"address": w.removesuffix(".onion")} for w in workers
    ]
    # Once the setting names this front, the reminder goes; the front stays the same.
    toml = instance / "sealdrop.toml"
    toml.write_text(
        toml.read_text().replace('# onionbalance_front = ""', f'onionbalance_front = "{front}"')
    )
    again = runner.invoke(app, ["balance", str(instance)], env={"COLUMNS": "300"})
    assert again.exit_code == 0, again.stderr
    assert again.stdout.strip() == front
    assert "onionbalance_front" not in again.stderr
    bad = runner.invoke(app, ["balance", str(instance), "--worker", "nonsense.onion"])
    assert bad.exit_code == 1
    assert "not a v3 onion address" in bad.stderr
