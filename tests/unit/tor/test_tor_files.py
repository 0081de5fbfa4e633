"""The managed tor's files: the torrc Sealdrop writes, path checks, and the client-authorization
key files of the journalist API onion."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from sealdrop.errors import Conflict, NotFound, TorError
from sealdrop.tor.client_auth import (
    PLACEHOLDER,
    add_device,
    ensure_placeholder,
    list_devices,
    revoke_device,
)
from sealdrop.tor.control import _service_options
from sealdrop.tor.layout import TorLayout, render_torrc

ADDRESS = "a" * 56 + ".onion"


@pytest.fixture
def layout(tmp_path: Path) -> TorLayout:
    return TorLayout(tmp_path / "tor")


def with_api_onion(layout: TorLayout) -> TorLayout:
    layout.prepare()
    (layout.api_onion_dir / "hostname").write_text(ADDRESS + "\n")
    return layout


def test_torrc_configures_both_onions_with_pow_circuit_ids_and_no_socks(layout: TorLayout) -> None:
    """The source onion has the PoW defense and exports circuit ids; the API onion does not;
    tor offers no SOCKS port and is owned by the serving process."""
    text = render_torrc(layout, 4242, None)
    lines = text.splitlines()
    assert "SocksPort 0" in lines
    assert "__OwningControllerProcess 4242" in lines
    assert f"ControlSocket {layout.control_socket}" in lines
    source_at = lines.index(f"HiddenServiceDir {layout.source_onion_dir}")
    api_at = lines.index(f"HiddenServiceDir {layout.api_onion_dir}")
    source_block, api_block = lines[source_at:api_at], lines[api_at:]
    assert "HiddenServicePoWDefensesEnabled 1" in source_block
    assert "HiddenServiceExportCircuitID haproxy" in source_block
    assert f"HiddenServicePort 80 unix:{layout.source_socket}" in source_block
    assert not any("PoW" in line or "ExportCircuitID" in line for line in api_block)
    assert f"HiddenServicePort 80 unix:{layout.api_socket}" in api_block
    assert "%include" not in text


def test_extra_torrc_is_included_before_the_onion_services(layout: TorLayout) -> None:
    """HiddenService lines attach to the HiddenServiceDir above them, so an included file placed
    before Sealdrop's services cannot change them."""
    lines = render_torrc(layout, 1, Path("/etc/sealdrop/bridges.conf")).splitlines()
    include_at = lines.index("%include /etc/sealdrop/bridges.conf")
    assert include_at < lines.index(f"HiddenServiceDir {layout.source_onion_dir}")


def test_prepare_makes_owner_only_folders(layout: TorLayout) -> None:
    """tor refuses onion-service folders that others can read; Sealdrop makes them 0700."""
    layout.prepare()
    for path in (layout.root, layout.data_dir, layout.source_onion_dir, layout.api_onion_dir):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700


@pytest.mark.parametrize("name", ["in stance", 'qu"ote', "per%cent", "hash#"])
def test_paths_torrc_cannot_carry_are_refused(tmp_path: Path, name: str) -> None:
    """An instance path with spaces or torrc syntax characters is refused with a clear error."""
    with pytest.raises(TorError, match="move the instance"):
        TorLayout(tmp_path / name / "tor").check_paths()


def test_over_long_socket_paths_are_refused(tmp_path: Path) -> None:
    """A unix socket path longer than the kernel allows is refused before tor starts."""
    with pytest.raises(TorError, match="too long"):
        TorLayout(tmp_path / ("x" * 120) / "tor").check_paths()


def test_hostname_is_read_only_when_it_is_a_v3_address(layout: TorLayout) -> None:
    """A missing or malformed hostname file means 'no address yet', never a bad address."""
    layout.prepare()
    assert layout.api_onion_address() is None
    (layout.api_onion_dir / "hostname").write_text("short.onion\n")
    assert layout.api_onion_address() is None
    (layout.api_onion_dir / "hostname").write_text(ADDRESS + "\n")
    assert layout.api_onion_address() == ADDRESS


def test_placeholder_key_keeps_the_api_onion_closed_and_is_not_listed(layout: TorLayout) -> None:
    """With no device added, authorized_clients/ still holds one key (whose private half was
    discarded), so the API onion is never public; it is not shown as a device."""
    ensure_placeholder(layout)
    files = list(layout.authorized_clients_dir.glob("*.auth"))
    assert [f.name for f in files] == [f"{PLACEHOLDER}.auth"]
    assert files[0].read_text().startswith("descriptor:x25519:")
    assert list_devices(layout) == []
    before = files[0].read_text()
    ensure_placeholder(layout)
    assert files[0].read_text() == before


def test_add_device_prints_a_private_key_matching_the_stored_public_key(layout: TorLayout) -> None:
    """The printed line is `<address>:descriptor:x25519:<private>`; the server keeps only the
    public half, 0600, and the two halves belong together."""
    line = add_device(with_api_onion(layout), "alice-laptop")
    address, kind, algorithm, private_b32 = line.split(":")
    assert (address, kind, algorithm) == ("a" * 56, "descriptor", "x25519")
    stored = layout.authorized_clients_dir / "alice-laptop.auth"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    public_b32 = stored.read_text().strip().removeprefix("descriptor:x25519:")
    private_raw = base64.b32decode(private_b32 + "====")
    expected = X25519PrivateKey.from_private_bytes(private_raw).public_key()
    assert base64.b32decode(public_b32 + "====") == expected.public_bytes(
        Encoding.Raw, PublicFormat.Raw
    )
    assert private_b32 not in stored.read_text()
    assert list_devices(layout) == ["alice-laptop"]


def test_add_device_needs_the_api_onion_to_exist(layout: TorLayout) -> None:
    """Before tor has created the API onion there is no address to print: a clear error."""
    with pytest.raises(TorError, match="run `sealdrop serve` once"):
        add_device(layout, "alice")


@pytest.mark.parametrize("name", ["", "a b", "../x", "x" * 41, PLACEHOLDER, "ünï"])
def test_bad_device_names_are_refused(layout: TorLayout, name: str) -> None:
    """Device names become file names: only a short, plain set of characters is accepted."""
    with pytest.raises(TorError, match="device name"):
        add_device(with_api_onion(layout), name)


def test_duplicate_and_unknown_devices(layout: TorLayout) -> None:
    """Adding a name twice is a conflict (the first key stays); revoking an unknown name says so;
    revoking removes the key file."""
    add_device(with_api_onion(layout), "bob")
    first = (layout.authorized_clients_dir / "bob.auth").read_text()
    with pytest.raises(Conflict):
        add_device(layout, "bob")
    assert (layout.authorized_clients_dir / "bob.auth").read_text() == first
    with pytest.raises(NotFound):
        revoke_device(layout, "carol")
    revoke_device(layout, "bob")
    assert list_devices(layout) == []
    assert (layout.authorized_clients_dir / f"{PLACEHOLDER}.auth").exists()


def test_service_options_are_attributed_to_their_own_service() -> None:
    """GETCONF HiddenServiceOptions lists every service in order; an option belongs to the
    HiddenServiceDir above it (the PoW flag of the source onion is not the API onion's)."""
    reply = [
        "HiddenServiceDir=/i/tor/source-onion",
        "HiddenServicePort=80 unix:/i/tor/source.sock",
        "HiddenServicePoWDefensesEnabled=1",
        "HiddenServiceExportCircuitID=haproxy",
        "HiddenServiceDir=/i/tor/api-onion",
        "HiddenServicePort=80 unix:/i/tor/api.sock",
    ]
    options = _service_options(reply)
    assert options["/i/tor/source-onion"]["HiddenServicePoWDefensesEnabled"] == "1"
    assert "HiddenServicePoWDefensesEnabled" not in options["/i/tor/api-onion"]
