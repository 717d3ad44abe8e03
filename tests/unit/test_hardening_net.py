"""roles/hardening's address filters (FW-09): the admin-network check and the controller's
address. Expected values from RFC 5737 / RFC 3849, not from the filter's own table."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

PLUGIN = Path(__file__).resolve().parents[2] / "roles/hardening/filter_plugins/hardening_net.py"
spec = importlib.util.spec_from_file_location("hardening_net", PLUGIN)
assert spec and spec.loader
net = importlib.util.module_from_spec(spec)
spec.loader.exec_module(net)


@pytest.mark.parametrize("placeholder", [
    "192.0.2.0/24", "192.0.2.7", "198.51.100.0/24", "198.51.100.128/25", "203.0.113.128/25",
    "203.0.113.11/32", "2001:db8::/32", "2001:db8:1::/48", "192.0.0.0/16"])  # the last covers one
def test_documentation_ranges_found(placeholder: str) -> None:
    assert net.hardening_documentation_networks(["10.20.0.0/16", placeholder]) == [placeholder]


@pytest.mark.parametrize("real", ["10.20.0.0/16", "172.16.5.0/24", "192.0.3.0/24",
                                  "198.51.101.0/24", "203.0.112.0/24", "2001:db9::/32"])
def test_real_networks_pass(real: str) -> None:
    assert net.hardening_documentation_networks([real]) == []


def test_controller_address_in_networks() -> None:
    f = net.hardening_in_networks
    assert f("10.210.0.1", ["10.210.0.0/24"])
    assert f("10.210.0.1", ["10.210.0.21/32", "10.210.0.1"])
    assert not f("10.210.0.1", ["10.210.0.21/32"])
    assert not f("", ["0.0.0.0/0"])  # an unknown address is never "inside"
    assert not f("10.210.0.1", ["2001:db8::/32"])  # another family never matches
    assert f("2001:db8::5", ["2001:db8::/64"])


def test_bad_network_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="not an address or network: 'lan'"):
        net.hardening_documentation_networks(["lan"])
