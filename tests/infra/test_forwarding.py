"""Forwarding only to allowed government domains (docs/security.md, FWD-*).

The data is the only source of forwards: `mailgov validate` refuses a forward_to outside
policy.forwarding.allowed_domains (rule MG403, tests/unit), users cannot write
mailForwardingAddress on their own entry (LDAP-05), and nothing on the servers lets a user set a
redirect of their own (no Sieve, no ManageSieve). These controls check the live servers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

PROVIDER = "mail1"
MAIL_HOSTS = ("mail1", "mail2")
MANAGESIEVE_PORT = 4190


def allowed(address: str, own_domain: str, allowed_domains: list[str]) -> bool:
    domain = address.rpartition("@")[2].lower()
    return domain == own_domain or any(
        domain == a or domain.endswith("." + a) for a in allowed_domains
    )


@pytest.mark.control("FWD-01", "Every forward in the live directory goes to an allowed domain")
def test_live_forwards_are_allowed(host_run: Callable[..., Any], data: dict[str, Any]) -> None:
    org = data["organization"]
    out = host_run(
        PROVIDER,
        "ldapsearch -Q -LLL -o ldif-wrap=no -Y EXTERNAL -H ldapi:/// "
        f"-b {org['base_dn']} '(mailForwardingAddress=*)' mailForwardingAddress",
    )
    assert out.rc == 0, out.stderr
    forwards = [
        line.split(":", 1)[1].strip()
        for line in out.stdout.splitlines()
        if line.lower().startswith("mailforwardingaddress:")
    ]
    # The data has forwards, so an empty answer would mean the search read nothing.
    assert any(m.get("forward_to") for m in data["mailboxes"]), "no forward in the data"
    assert forwards, "no mailForwardingAddress found in the directory"
    allowed_domains = [d.lower() for d in data["policy"]["forwarding"]["allowed_domains"]]
    bad = [f for f in forwards if not allowed(f, org["domain"].lower(), allowed_domains)]
    assert not bad, f"forwards outside {allowed_domains}: {bad}"


@pytest.mark.control("FWD-02", "Users cannot set up their own redirects (no Sieve, no ManageSieve)")
@pytest.mark.parametrize("host", MAIL_HOSTS)
def test_no_user_redirects(
    infra_host: Callable[[str], Any],
    client_run: Callable[..., Any],
    host_address: Callable[[str], str],
    host: str,
) -> None:
    h = infra_host(host)
    conf = h.run("doveconf -n")
    assert conf.rc == 0, conf.stderr
    assert "sieve" not in conf.stdout.lower(), "a Sieve plugin or service is configured"
    assert not h.package("dovecot-sieve").is_installed
    assert not h.package("dovecot-managesieved").is_installed
    out = client_run(f"nc -z -w 5 {host_address(host)} {MANAGESIEVE_PORT}; echo rc=$?")
    assert out.stdout.strip().endswith("rc=1"), f"ManageSieve answers on {host}: {out.stdout}"
