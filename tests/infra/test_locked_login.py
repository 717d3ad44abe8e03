"""A locked account's login is logged as locked, never as an unknown user, and the client
learns nothing from it (PW-17, issue 19 item 6a; roles/dovecot's deny passdb).

A throw-away mailbox (authprobe.py) is locked on the provider as slapd's ppolicy, the rate
limit and the account-expiry job lock one (pwdAccountLockedTime); the client then logs in
over IMAP with the right password. fail2ban would count these failures: the module has its
own budget (conftest.Fail2banBudget).
"""

from __future__ import annotations

import re
import secrets
import shlex
import time
from collections.abc import Callable
from typing import Any

import pytest
from authprobe import Probe, imap_steps, root_ldif

pytestmark = pytest.mark.usefixtures("fail2ban_budget")

PROVIDER = "mail1"
PERMANENT_LOCK = "000001010000Z"  # ppolicy: locked until an administrator unlocks


def dovecot_log(host_run: Callable[..., Any], since: str, user: str) -> list[str]:
    """Dovecot's auth lines about `user` since the host's own time `since` (epoch seconds)."""
    out = host_run(PROVIDER, f"journalctl --since @{since} --no-pager -o cat "
                             f"-t dovecot | grep -F {shlex.quote(user)} || true")
    return [line for line in out.stdout.splitlines() if line.strip()]


def wait_log(host_run: Callable[..., Any], since: str, user: str, pattern: str,
             seconds: float = 30) -> list[str]:
    deadline = time.monotonic() + seconds
    while True:
        lines = dovecot_log(host_run, since, user)
        if any(re.search(pattern, line) for line in lines):
            return lines
        assert time.monotonic() < deadline, (
            f"no Dovecot log line matching {pattern!r} for {user} in {seconds:.0f}s:\n"
            + "\n".join(lines[-10:]))
        time.sleep(0.5)


@pytest.mark.control("PW-17", "A locked account's login is logged as locked; the client gets "
                     "the generic failure")
def test_locked_login_logged_as_locked(
    probes: Callable[..., Probe], host_run: Callable[..., Any],
    client_run: Callable[..., Any], host_address: Callable[[str], str],
    org: dict[str, str],
) -> None:
    ip = host_address(PROVIDER)
    probe = probes("lock")
    wrong = probes("wrong")
    ghost = f"s1probe-ghost-{secrets.token_hex(3)}@{org['domain']}"
    # The positive control first: unlocked, the right password works.
    assert imap_steps(client_run, ip, [{"user": probe.mail, "password": probe.password}]
                      )[0]["login"] == "OK"
    since = host_run(PROVIDER, "date +%s").stdout.strip()
    out = root_ldif(host_run, "ldapmodify",
                    f"dn: {probe.dn}\nchangetype: modify\nadd: pwdAccountLockedTime\n"
                    f"pwdAccountLockedTime: {PERMANENT_LOCK}\n")
    assert out.rc == 0, out.stderr
    locked, wrong_pw, unknown = imap_steps(client_run, ip, [
        {"user": probe.mail, "password": probe.password},
        {"user": wrong.mail, "password": wrong.password + "x"},
        {"user": ghost, "password": probe.password},
    ])
    # The client: the same generic refusal for a locked account, a wrong password and an
    # address that does not exist (no account enumeration).
    assert locked["login"].startswith("NO") and "[AUTHENTICATIONFAILED]" in locked["login"], \
        locked
    assert locked["login"] == wrong_pw["login"] == unknown["login"], (locked, wrong_pw, unknown)
    # The server: the deny passdb of locked accounts found it (Dovecot 2.3 logs that line
    # without the user) and the login names the account as disabled; never "unknown user".
    lines = wait_log(host_run, since, probe.mail, r"\(user disabled\): user=<"
                     + re.escape(probe.mail) + ">")
    assert not any("unknown user" in line for line in lines), "\n".join(lines)
    found = host_run(PROVIDER, f"journalctl --since @{since} --no-pager -o cat -t dovecot "
                               "| grep -c 'auth: User found from deny passdb' || true")
    assert int(found.stdout.strip() or 0) >= 1, "the locked passdb did not find the account"
    # The other two keep their own reasons (the deny passdb matches locked accounts only).
    wlines = wait_log(host_run, since, wrong.mail, r"Password mismatch")
    assert not any("user disabled" in line for line in wlines), wlines
    glines = wait_log(host_run, since, ghost, r"unknown user")
    assert not any("user disabled" in line for line in glines), glines
    # An unlocked account's login logs nothing from the locked passdb (not verbose there).
    assert not any(line.startswith("auth: locked(") for line in wlines + glines), wlines + glines


@pytest.mark.control("PW-17", "A locked account's login is logged as locked; the client gets "
                     "the generic failure")
def test_locked_passdb_reads_no_password(infra_host: Callable[[str], Any]) -> None:
    """The deny passdb searches as Dovecot's service account: it fetches no password and is
    the first passdb, so a locked account never reaches the bind."""
    h = infra_host(PROVIDER)
    conf = h.file("/etc/dovecot/dovecot-ldap-locked.conf.ext").content_string
    attrs = re.search(r"^\s*pass_attrs\s*=(.*)$", conf, re.M)
    assert attrs and "userpassword" not in attrs.group(1).lower(), conf
    assert re.search(r"^\s*pass_filter\s*=.*\(pwdAccountLockedTime=\*\)", conf, re.M), conf
    passdbs = re.findall(r"^passdb\s*\{(.*?)^\}", h.check_output("doveconf -n"), re.M | re.S)
    assert passdbs and "deny = yes" in passdbs[0] and "dovecot-ldap-locked" in passdbs[0], \
        passdbs
