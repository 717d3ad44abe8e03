"""Attacks from the client host against the abuse limits (docs/security.md "Abuse limits"):
a blocked attachment, a sender crossing the outbound rate limit, password guessing on IMAP and
on SMTP AUTH. Every test undoes what it caused (unlock, unban, queue) in its teardown.
Every attack runs against every host of the inventory's `mailservers` group (`mail_host`): the
rate-limit service runs once, on the primary MX, and Postfix on every mail host asks it, so
submissions through any host count (and lock) alike. The client's fail2ban standing is the
module's own (conftest.Fail2banBudget): exempt, except in the F2B- tests that prove the ban.
The open relay attempt is tests/lab/test_mailflow.py::test_no_open_relay* (not repeated).
"""

from __future__ import annotations

import json
import re
import shlex
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from authprobe import wait_replicated
from mailhelpers import (
    active_users,
    client_packages,
    fetch_delivered,
    known_passwords,
    swaks,
    token,
)

OUTSIDE = "ratelimit-test@example.net"  # never delivered: the lab has no route out
pytestmark = pytest.mark.usefixtures("fail2ban_budget")


@pytest.fixture(scope="module")
def ratelimit_host(inventory_groups: dict[str, list[str]]) -> str:
    """Where the rate-limit service runs (playbooks/security.yml: the primary MX)."""
    return inventory_groups["mx_primary"][0]


@pytest.fixture(scope="module")
def domain(data: dict[str, Any]) -> str:
    return data["organization"]["domain"]


@pytest.fixture(scope="module")
def users(host_run: Callable[..., Any], data: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    pw = known_passwords()
    return pw, active_users(host_run, pw, data["organization"]["base_dn"])


@pytest.mark.control("ABUSE-01", "A message with an .exe attachment is refused at submission "
                     "(5.7.1); the same message with a .pdf is accepted")
def test_exe_attachment_refused(users, client_run, host_fqdn, mail_host) -> None:
    pw, active = users
    server = host_fqdn(mail_host)
    sender, rcpt = active[0], active[1]
    prep = client_run("printf 'MZ fake program' > /tmp/s2-tool.exe && "
                      "echo 'PDF-1.4 fake' > /tmp/s2-report.pdf")
    assert prep.rc == 0
    exe = swaks(client_run, server, 587, sender, pw[sender], sender, rcpt, token(),
                ["--attach", "@/tmp/s2-tool.exe"])
    assert exe.rc != 0 and "5.7.1" in exe.stdout and "Attachment type" in exe.stdout, \
        exe.stdout[-800:]
    pdf = swaks(client_run, server, 587, sender, pw[sender], sender, rcpt, token(),
                ["--attach", "@/tmp/s2-report.pdf"])
    assert pdf.rc == 0, pdf.stdout[-800:]


def _dn_of(host_run: Callable[..., Any], base_dn: str, user: str, host: str) -> str:
    return host_run(host, f"ldapsearch -Q -LLL -Y EXTERNAL -H ldapi:/// -b {shlex.quote(base_dn)} "
                    f"'(mail={user})' dn | sed -n 's/^dn: //p'").stdout.strip()


def _unlock(host_run: Callable[..., Any], base_dn: str, user: str, provider: str) -> None:
    dn = _dn_of(host_run, base_dn, user, provider)
    if dn:
        ldif = f"dn: {dn}\nchangetype: modify\ndelete: pwdAccountLockedTime\n"
        host_run(provider, f"printf {shlex.quote(ldif)} | ldapmodify -Q -Y EXTERNAL -H ldapi:///")


@pytest.fixture
def rate_limited_user(users, host_run, data, provider, ratelimit_host, mail_host
                      ) -> Iterator[tuple[str, str]]:
    """The last known mailbox (the others send in other tests), usable on the host under
    attack; unlocked and counters cleared afterwards, and the messages queued for outside
    removed."""
    pw, active = users
    user = active[-1]
    base = data["organization"]["base_dn"]
    # A previous host's run unlocked it on the provider: the replica must know before it logs in.
    wait_replicated(host_run, mail_host, _dn_of(host_run, base, user, provider), provider)
    yield user, pw[user]
    _unlock(host_run, base, user, provider)
    host_run(ratelimit_host, "systemctl restart mailgov-ratelimit")
    for host in sorted({mail_host, ratelimit_host}):  # queued where submitted, or relayed
        host_run(host, "postqueue -j | python3 -c \"import json,sys,subprocess\n"
                 "for l in sys.stdin:\n q=json.loads(l)\n"
                 f" if any(r['address']=='{OUTSIDE}' for r in q['recipients']):\n"
                 "  subprocess.run(['postsuper','-d',q['queue_id']])\"")


@pytest.mark.control("ABUSE-02", "Crossing policy.outbound_rate_limit (test size in the lab) is "
                     "refused, locks the account in LDAP and notifies postmaster")
def test_rate_limit_locks_and_notifies(rate_limited_user, client_run, host_run, infra_host, data,
                                       role_vars, no_fail2ban_for_client, mail_host, host_fqdn,
                                       provider, ratelimit_host) -> None:
    # no_fail2ban_for_client: the locked account's login is refused on purpose.
    cfg = json.loads(infra_host(ratelimit_host).file("/etc/mailgov/ratelimit.json")
                     .content_string)
    n = int(cfg["messages"])
    if n > 20:
        pytest.skip(f"limit {n} is not test-sized: converge this lab instance with "
                    "-e @tests/infra/ratelimit-test.yml (never blast hundreds of messages)")
    user, password = rate_limited_user
    host_run(ratelimit_host, "systemctl restart mailgov-ratelimit && sleep 1")
    server = host_fqdn(mail_host)
    notify_to = role_vars("ratelimit", ratelimit_host)["ratelimit__notify_to"]
    notices_before = {a: _notices(host_run, ratelimit_host, a, f"outbound rate limit: {user} "
                                  "locked") for a in notify_to}
    run_id = uuid.uuid4().hex[:8]
    # n+1 submissions in one client command, so they fall well inside the window.
    loop = " ; ".join(
        shlex.join(["swaks", "--server", server, "--port", "587", "--tls",
                    "--auth", "PLAIN", "--auth-user", user, "--auth-password", password,
                    "--from", user, "--to", OUTSIDE, "--header",
                    f"Subject: rate {run_id} {i}", "--timeout", "30"])
        + f" >/tmp/s2-rate-{i}.log 2>&1; echo rc{i}=$?" for i in range(n + 1))
    start = time.monotonic()
    out = client_run(loop, timeout=60 * int(cfg["window_minutes"]) + 120)
    elapsed = time.monotonic() - start
    codes = [line.split("=")[1] for line in out.stdout.split() if line.startswith("rc")]
    assert elapsed < 60 * int(cfg["window_minutes"]), "too slow to stay inside the window"
    assert codes[:n] == ["0"] * n, out.stdout
    assert codes[n] != "0"
    last = client_run(f"cat /tmp/s2-rate-{n}.log").stdout
    assert "5.7.1" in last and "rate limit" in last, last[-600:]
    # The account is locked in the directory (provider) ...
    base = data["organization"]["base_dn"]
    lock = host_run(provider, f"ldapsearch -Q -LLL -Y EXTERNAL -H ldapi:/// -b "
                    f"{shlex.quote(base)} '(mail={user})' pwdAccountLockedTime")
    assert "pwdAccountLockedTime:" in lock.stdout, lock.stdout
    # ... so it can no longer log in (on the host attacked, once its replica has the lock) ...
    wait_replicated(host_run, mail_host, _dn_of(host_run, base, user, provider), provider)
    login = swaks(client_run, server, 587, user, password, user, user, token(),
                  ["--quit-after", "AUTH"])
    # RFC 4954: 535 5.7.8, the credentials refused (not a connection or TLS failure).
    assert login.rc != 0 and re.search(r"<~?\*+ 535 5\.7\.8 ", login.stdout), \
        login.stdout[-600:]
    # ... and the administrators were told.
    notify_to = role_vars("ratelimit", ratelimit_host)["ratelimit__notify_to"]
    subject = f"outbound rate limit: {user} locked"
    for admin in notify_to:
        # A new one: the same notice from an earlier host's (or run's) lock must not count.
        deadline = time.monotonic() + 90
        while _notices(host_run, ratelimit_host, admin, subject) <= notices_before[admin]:
            assert time.monotonic() < deadline, f"no new notification in {admin}'s INBOX"
            time.sleep(2)
        note = fetch_delivered(host_run, admin, subject)
        assert note is not None, f"no notification in {admin}'s INBOX"
        assert "locked " in note and user in note


def _notices(host_run: Callable[..., Any], store: str, admin: str, subject: str) -> int:
    """How many messages with `subject` the admin's mailbox (on the primary MX) holds."""
    out = host_run(store, f"home=$(doveadm user -f home {shlex.quote(admin)}) && "
                   f"grep -l -F {shlex.quote(subject)} \"$home\"/Maildir/new/* "
                   "\"$home\"/Maildir/cur/* 2>/dev/null | wc -l")
    return int(out.stdout.strip() or 0)


def _banned(host_run: Callable[..., Any], host: str, jail: str, ip: str) -> bool:
    out = host_run(host, f"fail2ban-client status {jail}")
    return ip in out.stdout.split("Banned IP list:")[-1]


def _wait_banned(host_run, host: str, jails: tuple[str, ...], ip: str,
                 seconds: int = 60) -> list[str]:
    """The jails (of `jails`) that ban `ip` on `host`, waiting up to `seconds` for one."""
    deadline = time.monotonic() + seconds
    while True:
        banned = [j for j in jails if _banned(host_run, host, j, ip)]
        if banned or time.monotonic() > deadline:
            return banned
        time.sleep(2)


@pytest.mark.control("F2B-01", "Password guessing on IMAPS from the client gets the client's "
                     "address banned by the dovecot jail after maxretry failures")
def test_imap_bruteforce_banned(fail2ban_armed, client_run, host_run, role_vars, host_address,
                                host_fqdn, domain, mail_host, infra_host) -> None:
    # fail2ban_armed: the client starts unbanned and not exempt (and is unbanned afterwards).
    client_ip = host_address("client")
    rv = role_vars("fail2ban", mail_host)
    tries = int(rv["fail2ban__jails"]["dovecot"].get("maxretry", rv["fail2ban__maxretry"])) + 1
    assert not _banned(host_run, mail_host, "dovecot", client_ip)
    nobody = f"nobody-{uuid.uuid4().hex[:6]}@{domain}"
    server = host_fqdn(mail_host)
    _reachable_before(client_run, server, 993)
    # The tries in one client command (one connection each, as a guesser makes them).
    attempt = shlex.join(["curl", "-s", "--max-time", "15", f"imaps://{server}/INBOX",
                          "-u", f"{nobody}:wrong-password"])
    client_run(f"for i in $(seq {tries}); do {attempt}; done")
    assert _wait_banned(host_run, mail_host, ("dovecot",), client_ip) == ["dovecot"]
    _banned_out(client_run, infra_host(mail_host), server, 993)


@pytest.mark.control("F2B-02", "Password guessing on SMTP AUTH (submission) from the client "
                     "gets the client's address banned (postfix-sasl jail, or the dovecot jail "
                     "that sees the same failures in Dovecot's auth log)")
def test_smtp_auth_bruteforce_banned(fail2ban_armed, client_run, host_run, role_vars,
                                     host_address, host_fqdn, domain, mail_host,
                                     infra_host) -> None:
    client_ip = host_address("client")
    rv = role_vars("fail2ban", mail_host)
    jail = rv["fail2ban__jails"]["postfix-sasl"]
    tries = int(jail.get("maxretry", rv["fail2ban__maxretry"])) + 1
    jails = ("postfix-sasl", "dovecot")  # both list the submission ports
    assert not any(_banned(host_run, mail_host, j, client_ip) for j in jails)
    nobody = f"nobody-{uuid.uuid4().hex[:6]}@{domain}"
    server = host_fqdn(mail_host)
    client_packages(client_run, "libnet-ssleay-perl")
    _reachable_before(client_run, server, 587)
    attempt = shlex.join(["swaks", "--server", server, "--port", "587", "--tls", "--auth",
                          "PLAIN", "--auth-user", nobody, "--auth-password", "wrong-password",
                          "--from", nobody, "--to", nobody, "--quit-after", "AUTH",
                          "--timeout", "15"])
    banned: list[str] = []
    for _ in range(2):  # up to 2 x tries, a batch at a time, as before
        client_run(f"for i in $(seq {tries}); do {attempt} >/dev/null 2>&1; done",
                   timeout=40 * tries)
        banned = _wait_banned(host_run, mail_host, jails, client_ip, seconds=30)
        if banned:
            break
    assert banned, f"client not banned by postfix-sasl nor dovecot on {mail_host}"
    _banned_out(client_run, infra_host(mail_host), server, 587)


def _reachable_before(client_run: Callable[..., Any], server: str, port: int) -> None:
    """The positive control: before the guessing the client reaches the port."""
    res = client_run(["nc", "-z", "-w", "5", server, str(port)])
    assert res.rc == 0, f"{server}:{port} unreachable before any guess: {res.stderr}"


def _banned_out(client_run: Callable[..., Any], host: Any, server: str, port: int) -> None:
    """The ban is in force: the client cannot even connect, while the service still listens."""
    res = client_run(["nc", "-z", "-w", "5", server, str(port)])
    assert res.rc != 0, f"{server}:{port} still reachable from the banned client"
    assert host.run(f"ss -Hltn 'sport = :{port}' | grep -q .").rc == 0, \
        f"nothing listens on {server}:{port}: the refusal would not be the ban"
