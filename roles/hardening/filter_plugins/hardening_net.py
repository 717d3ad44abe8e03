"""Address checks for the firewall's admin networks (roles/hardening), standard library only.

Filters, so the role's assert and its firewall template decide with the same code:
- ``hardening_in_networks(address, networks)``: the address lies in one of the networks;
- ``hardening_documentation_networks(networks)``: those that overlap the ranges reserved for
  documentation (RFC 5737, RFC 3849): an example inventory left unchanged.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

# RFC 5737 (IPv4 TEST-NET-1/2/3) and RFC 3849 (IPv6): never a real admin network.
DOCUMENTATION_RANGES = tuple(ipaddress.ip_network(n) for n in (
    "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32"))


def _network(value: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(str(value).strip(), strict=False)
    except ValueError as exc:
        raise ValueError(f"not an address or network: {value!r}") from exc


def hardening_in_networks(address: Any, networks: Iterable[Any]) -> bool:
    """True when ``address`` is inside one of ``networks`` (an empty address: False)."""
    if not str(address or "").strip():
        return False
    addr = ipaddress.ip_address(str(address).strip())
    return any(addr in _network(n) for n in networks if addr.version == _network(n).version)


def hardening_documentation_networks(networks: Iterable[Any]) -> list[str]:
    """The networks that overlap a documentation range (the example's placeholders)."""
    found = []
    for raw in networks:
        net = _network(raw)
        if any(net.version == doc.version and net.overlaps(doc) for doc in DOCUMENTATION_RANGES):
            found.append(str(raw))
    return found


class FilterModule:
    """Ansible's filter plugin entry point."""

    def filters(self) -> dict[str, Any]:
        return {
            "hardening_in_networks": hardening_in_networks,
            "hardening_documentation_networks": hardening_documentation_networks,
        }
