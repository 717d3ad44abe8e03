"""Lockout counted across both directory servers (docs/security.md, PW-11).

mail2 is a syncrepl replica; its ppolicy forwards the state a bind writes (pwdFailureTime,
pwdAccountLockedTime) through the chain overlay to the provider as the `ppolicyforward`
service account, and the provider's entry comes back by replication. So wrong passwords on
mail1 and on mail2 add up to one count of N (the data's lockout_failures), not N per server.

The attacks are plain simple binds (`ldapwhoami -x -ZZ`) FROM the client host against each
server's port 389, on a throw-away mailbox (authprobe.py). fail2ban watches the mail services,
not slapd, so no ban gets in the way. Also proved: the forwarding account may write those
attributes of people and nothing else, and the chain is no write path for anyone else.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from authprobe import Probe, ldap_client, rc_of

from lab import labenv

PROVIDER = "mail1"
REPLICA = "mail2"
FORWARDER = "ppolicyforward"
REPLICATION_WAIT_S = 20.0
REPO = Path(__file__).resolve().parents[2]
PW_11 = ("PW-11", "Failed binds on the replica count towards the lockout on the provider")


@pytest.fixture
def probe(probes: Callable[..., Probe]) -> Probe:
    return probes("rlk")


@pytest.fixture
def other(probes: Callable[..., Probe]) -> Probe:
    return probes("rlo")


def forwarder_password() -> str:
    """The lab's generated password of the forwarding account (controller side, git-ignored)."""
    path = labenv.lab_dir(REPO, labenv.lab_id()) / "secrets" / f"ldap-{FORWARDER}"
    # A missing secret means the role never made the account: a failure, not a skip.
    assert path.is_file(), f"no {path}: the openldap role has not created {FORWARDER}"
    return path.read_text(encoding="utf-8").split()[0]


def state(host_run: Callable[..., Any], host: str, dn: str) -> dict[str, list[str]]:
    """The probe's password-policy state on one server, read as its root (ldapi)."""
    out = host_run(
        host,
        "ldapsearch -Q -LLL -o ldif-wrap=no -Y EXTERNAL -H ldapi:/// -s base "
        f"-b {shlex.quote(dn)} pwdFailureTime pwdAccountLockedTime pwdPolicySubentry",
    )
    assert out.rc == 0, f"{host}: {out.stderr}"
    attrs: dict[str, list[str]] = {}
    for line in out.stdout.splitlines():
        key, sep, value = line.partition(": ")
        if sep and key != "dn":
            attrs.setdefault(key, []).append(value)
    return attrs


def failures(st: dict[str, list[str]]) -> int:
    return len(st.get("pwdFailureTime", []))


def has_failures(host_run: Callable[..., Any], host: str, dn: str, count: int) -> bool:
    return failures(state(host_run, host, dn)) == count


def locked(st: dict[str, list[str]]) -> bool:
    return bool(st.get("pwdAccountLockedTime"))


def wait_for(check: Callable[[], bool], what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < REPLICATION_WAIT_S:
        if check():
            return time.monotonic() - start
        time.sleep(0.3)
    pytest.fail(f"{what}: not within {REPLICATION_WAIT_S:.0f}s")


def bind(client_run: Callable[..., Any], address: str, dn: str, password: str) -> int:
    """A simple bind with StartTLS from the client host: 0 accepted, 49 refused."""
    out = ldap_client(client_run, "ldapwhoami", address, ["-x", "-D", dn, "-w", password])
    return rc_of(out)


def modify(
    client_run: Callable[..., Any], address: str, who: list[str], ldif: str,
    relax: bool = False,
) -> int:
    """ldapmodify from the client host as `who` (-x [-D dn -w pw]); the server's result code."""
    args = [*who, *(["-e", "!relax"] if relax else [])]
    return rc_of(ldap_client(client_run, "ldapmodify", address, args, stdin=ldif))


@pytest.mark.control(*PW_11)
def test_failures_on_both_servers_add_up_to_one_lockout(
    client_run: Callable[..., Any],
    host_address: Callable[[str], str],
    host_run: Callable[..., Any],
    policy: dict[str, Any],
    probe: Probe,
) -> None:
    # The probe is an ordinary mailbox: the default policy (users) is its policy.
    assert "pwdPolicySubentry" not in state(host_run, PROVIDER, probe.dn)
    n = int(policy["password"]["users"]["lockout_failures"])
    assert n >= 2, f"lockout_failures {n}: too small to spread failures over two servers"
    servers = {h: host_address(h) for h in (PROVIDER, REPLICA)}
    wrong = "Wrong-" + probe.password
    # The account works on both servers (so the refusals below are the lockout's).
    wait_for(lambda: "pwdFailureTime" not in state(host_run, REPLICA, probe.dn)
             and bind(client_run, servers[REPLICA], probe.dn, probe.password) == 0,
             "probe usable on the replica")
    assert bind(client_run, servers[PROVIDER], probe.dn, probe.password) == 0

    # N-1 failures, every other one on the replica (starting there). Each one must show up on
    # the provider (the replica's are forwarded) and come back to the replica, whose copy is
    # what the next failure there is counted against.
    for i in range(n - 1):
        host = REPLICA if i % 2 == 0 else PROVIDER
        assert bind(client_run, servers[host], probe.dn, wrong) == 49
        wait_for(partial(has_failures, host_run, PROVIDER, probe.dn, i + 1),
                 f"failure {i + 1} (on {host}) recorded on the provider")
        wait_for(partial(has_failures, host_run, REPLICA, probe.dn, i + 1),
                 f"failure {i + 1} replicated to the replica")
    on_replica = n // 2  # of the n-1: indexes 0, 2, 4 ...
    print(f"N={n}: {on_replica} failures on {REPLICA}, {n - 1 - on_replica} on {PROVIDER}")
    for host in servers:
        assert not locked(state(host_run, host, probe.dn)), f"locked after {n - 1} on {host}"

    # The N-th failure, on the replica: the provider locks the account ...
    assert bind(client_run, servers[REPLICA], probe.dn, wrong) == 49
    took = wait_for(lambda: locked(state(host_run, PROVIDER, probe.dn)),
                    f"lock on the provider after the {n}-th failure on the replica")
    wait_for(lambda: locked(state(host_run, REPLICA, probe.dn)), "lock replicated back")
    print(f"lock visible on {PROVIDER} {took:.2f}s after the failure on {REPLICA}")
    # ... and now the right password fails on both servers.
    for host, address in servers.items():
        assert bind(client_run, address, probe.dn, probe.password) == 49, (
            f"locked account accepted on {host}")


@pytest.mark.control(*PW_11)
def test_forwarding_account_writes_lock_state_only(
    client_run: Callable[..., Any],
    host_address: Callable[[str], str],
    host_run: Callable[..., Any],
    org: dict[str, str],
    probe: Probe,
) -> None:
    provider = host_address(PROVIDER)
    fwd_dn = f"cn={FORWARDER},ou=services,{org['base_dn']}"
    fwd = ["-x", "-D", fwd_dn, "-w", forwarder_password()]
    dn = probe.dn
    # What it may do (positive control, the bind works): add a failure (Relax: the attribute
    # is no-user-modification) and set the lock time of a person.
    assert modify(client_run, provider, fwd, f"dn: {dn}\nchangetype: modify\n"
                  "add: pwdFailureTime\npwdFailureTime: 20260101000000.000001Z\n",
                  relax=True) == 0
    assert modify(client_run, provider, fwd, f"dn: {dn}\nchangetype: modify\n"
                  "replace: pwdAccountLockedTime\npwdAccountLockedTime: 20260101000000Z\n") == 0
    assert locked(state(host_run, PROVIDER, dn))
    # Nothing else: a person's mail, password, quota, policy; another subtree's lock state.
    for attr, value in (("mail", f"hijack@{org['domain']}"), ("userPassword", "Hijack-3d!pass"),
                        ("mailQuota", "1"),
                        ("pwdPolicySubentry", f"cn=services,ou=policies,{org['base_dn']}")):
        rc = modify(client_run, provider, fwd,
                    f"dn: {dn}\nchangetype: modify\nreplace: {attr}\n{attr}: {value}\n")
        assert rc == 50, f"{FORWARDER} changed {attr} of a person (rc {rc})"
    service = f"cn=mailgov,ou=services,{org['base_dn']}"
    rc = modify(client_run, provider, fwd, f"dn: {service}\nchangetype: modify\n"
                "replace: pwdAccountLockedTime\npwdAccountLockedTime: 20260101000000Z\n")
    assert rc == 50, f"{FORWARDER} locked a service account (rc {rc})"
    # And it reads nothing (the attributes it writes included).
    out = ldap_client(client_run, "ldapsearch", provider,
                      [*fwd, "-LLL", "-s", "base", "-b", dn, "(objectClass=*)", "*", "+"])
    assert rc_of(out) in (0, 32) and "dn:" not in out.stdout, out.stdout


@pytest.mark.control(*PW_11)
def test_chain_is_no_write_path_for_others(
    client_run: Callable[..., Any],
    host_address: Callable[[str], str],
    host_run: Callable[..., Any],
    probe: Probe,
    other: Probe,
) -> None:
    replica, provider = host_address(REPLICA), host_address(PROVIDER)
    # A real failure on the provider gives the probe some state to erase.
    assert bind(client_run, provider, probe.dn, "Wrong-" + probe.password) == 49
    wait_for(lambda: failures(state(host_run, REPLICA, probe.dn)) == 1, "failure replicated")
    unlock = f"dn: {probe.dn}\nchangetype: modify\ndelete: pwdFailureTime\n"
    lock = (f"dn: {probe.dn}\nchangetype: modify\n"
            "replace: pwdAccountLockedTime\npwdAccountLockedTime: 20260101000000Z\n")
    wait_for(lambda: bind(client_run, replica, other.dn, other.password) == 0, "other usable")
    user = ["-x", "-D", other.dn, "-w", other.password]
    for ldif in (unlock, lock):
        # Another user: the replica refers the write to the provider (10), as without the
        # chain; the chain may not carry it with the forwarding account.
        rc = modify(client_run, replica, user, ldif, relax=True)
        assert rc == 10, f"a user's write on {REPLICA}: rc {rc}, expected a referral (10)"
        # Anonymous: refused before any referral.
        rc = modify(client_run, replica, ["-x"], ldif, relax=True)
        assert rc != 0, f"an anonymous write on {REPLICA} succeeded"
    time.sleep(1)  # a forwarded write would have reached the provider by now
    st = state(host_run, PROVIDER, probe.dn)
    assert failures(st) == 1 and not locked(st), f"state changed through the replica: {st}"
