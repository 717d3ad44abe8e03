"""Locking administrators out, the attack of issue 12 finding 11: the password page had only
a per-address rate limit, and an administrator's lockout lasted until another one unlocked
it, so anyone could lock every administrator out in a minute.

- F2B-04: wrong passwords on the page feed fail2ban's `selfservice` jail: the client that
  keeps failing is banned and its next connection to the page is refused.
- PW-16: an administrator's lockout ends by itself after
  policy.password.administrators.lockout_duration_minutes (the lab declares a short test
  size in inventory/lab/group_vars/all/ppolicy.yml, so the test waits a minute, not 30).
"""

from __future__ import annotations

import json
import re
import shlex
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from authprobe import CA_ON_CLIENT, Probe, ldap_client, rc_of, root_ldif
from test_password_page import BROWSER

PROVIDER = "mail1"
JAIL = "selfservice"
TEST_BED = Path(__file__).resolve().parents[2] / "inventory/lab/group_vars/all/ppolicy.yml"
# model.LOCKOUT_DURATION_DEFAULT_MINUTES["administrators"] (PCI DSS v4.0 8.3.4), written
# here again: the control must not take its expectation from the code it checks.
ADMIN_LOCKOUT_DEFAULT_MINUTES = 30


def banned(host_run: Callable[..., Any], ip: str) -> bool:
    out = host_run(PROVIDER, f"fail2ban-client status {JAIL}")
    return out.rc == 0 and ip in out.stdout.split("Banned IP list:")[-1]


def connect_result(client_run: Callable[..., Any], addr: str, port: int) -> str:
    program = (f"import socket\ns=socket.socket()\ns.settimeout(5)\n"
               f"try:\n s.connect(({addr!r},{port})); print('open')\n"
               "except ConnectionRefusedError: print('refused')\n"
               "except OSError as e: print('error', e)")
    return client_run(f"python3 -c {shlex.quote(program)}").stdout.strip()


@pytest.fixture
def client_ip(host_address: Callable[[str], str], host_run: Callable[..., Any]) -> Iterator[str]:
    ip = host_address("client")
    host_run(PROVIDER, f"fail2ban-client set {JAIL} unbanip {ip} >/dev/null 2>&1")
    yield ip
    host_run(PROVIDER, f"fail2ban-client set {JAIL} unbanip {ip} >/dev/null 2>&1")


@pytest.mark.control("F2B-04", "Wrong passwords on the password page from the client get its "
                     "address banned by the selfservice jail (maxretry, as IMAP's); its next "
                     "connection to the page is refused")
def test_page_guessing_banned(client_ip: str, client_run, host_run, host_address, role_vars,
                              data: dict[str, Any]) -> None:
    status = host_run(PROVIDER, f"fail2ban-client status {JAIL}")
    assert status.rc == 0, f"no {JAIL} jail on {PROVIDER}: {status.stdout}{status.stderr}"
    assert not banned(host_run, client_ip)
    rv = role_vars("fail2ban", PROVIDER)
    jail = rv["fail2ban__jails"][JAIL]
    tries = int(jail.get("maxretry", rv["fail2ban__maxretry"]))
    # The same numbers as IMAP's jail (the data gives no other).
    imap = rv["fail2ban__jails"]["dovecot"]
    for key in ("maxretry", "bantime", "findtime"):
        assert jail.get(key, rv[f"fail2ban__{key}"]) == imap.get(key, rv[f"fail2ban__{key}"])
    page = role_vars("selfservice", PROVIDER)["selfservice__hostname"]
    addr = host_address(PROVIDER)
    assert connect_result(client_run, addr, 443) == "open"
    nobody = f"nobody-{uuid.uuid4().hex[:6]}@{data['organization']['domain']}"
    form = {"csrf": "@page", "address": nobody, "current": "Wrong-Pass-42!",
            "new": "Nn9!" + uuid.uuid4().hex, "repeat": ""}
    form["repeat"] = form["new"]
    steps = [{"path": "/"}] + [{"path": "/", "form": form}] * tries
    out = client_run(shlex.join(["python3", "-c", BROWSER, page, addr, CA_ON_CLIENT])
                     + f" <<'MAILGOV_JSON'\n{json.dumps(steps)}\nMAILGOV_JSON", timeout=300)
    assert out.rc == 0, out.stderr[-800:]
    statuses = [r["status"] for r in json.loads(out.stdout.strip().splitlines()[-1])]
    assert statuses == [200] + [400] * tries, statuses  # each one a wrong password
    deadline = time.monotonic() + 60
    while not banned(host_run, client_ip) and time.monotonic() < deadline:
        time.sleep(2)
    assert banned(host_run, client_ip), host_run(PROVIDER, f"fail2ban-client status {JAIL}")
    # The ban is the reason the page is now unreachable: refused (fail2ban's reject), while
    # nothing else about the host changed.
    assert connect_result(client_run, addr, 443) == "refused"


@pytest.fixture
def admin_probe(probes: Callable[..., Probe], host_run: Callable[..., Any],
                data: dict[str, Any]) -> Probe:
    probe = probes("admlock")
    base = data["organization"]["base_dn"]
    out = root_ldif(host_run, "ldapmodify", f"dn: {probe.dn}\nchangetype: modify\n"
                    "replace: pwdPolicySubentry\n"
                    f"pwdPolicySubentry: cn=administrators,ou=policies,{base}")
    assert out.rc == 0, out.stderr
    return probe


def expected_admin_lockout_s(policy: dict[str, Any]) -> int:
    """The data's minutes, unless the lab's test bed declares a shorter test size."""
    if TEST_BED.is_file():
        bed = yaml.safe_load(TEST_BED.read_text()) or {}
        if "openldap__ppolicy_administrators_lockout_duration_s" in bed:
            return int(bed["openldap__ppolicy_administrators_lockout_duration_s"])
    admins = policy["password"]["administrators"]
    return int(admins.get("lockout_duration_minutes", ADMIN_LOCKOUT_DEFAULT_MINUTES)) * 60


def bind_rc(client_run: Callable[..., Any], address: str, dn: str, password: str) -> int:
    return rc_of(ldap_client(client_run, "ldapwhoami", address, ["-x", "-D", dn, "-w", password]))


@pytest.mark.control("PW-16", "An administrator's lockout ends by itself after "
                     "policy.password.administrators.lockout_duration_minutes (lab: its test "
                     "size): locked after N wrong passwords, the right one refused, then "
                     "accepted once the duration is over")
def test_admin_lockout_expires(admin_probe: Probe, client_run, host_run, host_address,
                               policy: dict[str, Any], no_fail2ban_for_client) -> None:
    want = expected_admin_lockout_s(policy)
    assert want > 0, "an administrator's lockout must end by itself"
    base = admin_probe.dn.split(",ou=people,", 1)[1]
    for host in ("mail1", "mail2"):
        got = host_run(host, "ldapsearch -Q -LLL -Y EXTERNAL -H ldapi:/// -s base -b "
                       f"cn=administrators,ou=policies,{base} pwdLockoutDuration").stdout
        assert f"pwdLockoutDuration: {want}" in got, (host, got)
    if want > 300:
        pytest.fail(f"lockout of {want}s is not test-sized: declare one in {TEST_BED}")
    addr = host_address(PROVIDER)
    failures = int(policy["password"]["administrators"]["lockout_failures"])
    for _ in range(failures):
        assert bind_rc(client_run, addr, admin_probe.dn, "Wrong-Pass-42!x") == 49
    locked_at = time.monotonic()
    assert bind_rc(client_run, addr, admin_probe.dn, admin_probe.password) == 49, \
        "not locked after lockout_failures wrong passwords: the test would prove nothing"
    state = host_run(PROVIDER, "ldapsearch -Q -LLL -Y EXTERNAL -H ldapi:/// -s base -b "
                     f"{shlex.quote(admin_probe.dn)} pwdAccountLockedTime").stdout
    assert re.search(r"pwdAccountLockedTime: \d{14}Z", state), state
    # Open once the duration is over, without anyone unlocking (no bind meanwhile: a refused
    # bind would be one more failure).
    time.sleep(max(0.0, want + 5 - (time.monotonic() - locked_at)))
    assert bind_rc(client_run, addr, admin_probe.dn, admin_probe.password) == 0, \
        f"still locked {want + 5}s after the lockout (pwdLockoutDuration {want})"
