"""Attacks from the client host against the abuse limits (docs/security.md "Abuse limits"):
a blocked attachment, a sender crossing the outbound rate limit, password guessing on IMAP and
on SMTP AUTH. Every test undoes what it caused (unlock, unban, queue) in its teardown.
The open relay attempt is tests/lab/test_mailflow.py::test_no_open_relay* (not repeated).
"""

from __future__ import annotations

import json
import shlex
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from mailhelpers import active_users, fetch_delivered, known_passwords, swaks, token

OUTSIDE = "ratelimit-test@example.net"  # never delivered: the lab has no route out


@pytest.fixture(scope="module")
def domain(data: dict[str, Any]) -> str:
    return data["organization"]["domain"]


@pytest.fixture(scope="module")
def users(host_run: Callable[..., Any], data: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    pw = known_passwords()
    return pw, active_users(host_run, pw, data["organization"]["base_dn"])


@pytest.mark.control("ABUSE-01", "A message with an .exe attachment is refused at submission "
                     "(5.7.1); the same message with a .pdf is accepted")
def test_exe_attachment_refused(users, client_run, domain) -> None:
    pw, active = users
    sender, rcpt = active[0], active[1]
    prep = client_run("printf 'MZ fake program' > /tmp/s2-tool.exe && "
                      "echo 'PDF-1.4 fake' > /tmp/s2-report.pdf")
    assert prep.rc == 0
    exe = swaks(client_run, f"mail1.{domain}", 587, sender, pw[sender], sender, rcpt, token(),
                ["--attach", "@/tmp/s2-tool.exe"])
    assert exe.rc != 0 and "5.7.1" in exe.stdout and "Attachment type" in exe.stdout, \
        exe.stdout[-800:]
    pdf = swaks(client_run, f"mail1.{domain}", 587, sender, pw[sender], sender, rcpt, token(),
                ["--attach", "@/tmp/s2-report.pdf"])
    assert pdf.rc == 0, pdf.stdout[-800:]


def _unlock(host_run: Callable[..., Any], base_dn: str, user: str) -> None:
    dn = host_run("mail1", f"ldapsearch -Q -LLL -Y EXTERNAL -H ldapi:/// -b {shlex.quote(base_dn)} "
                  f"'(mail={user})' dn | sed -n 's/^dn: //p'").stdout.strip()
    if dn:
        ldif = f"dn: {dn}\nchangetype: modify\ndelete: pwdAccountLockedTime\n"
        host_run("mail1", f"printf {shlex.quote(ldif)} | ldapmodify -Q -Y EXTERNAL -H ldapi:///")


@pytest.fixture
def rate_limited_user(users, host_run, data) -> Iterator[tuple[str, str]]:
    """The last known mailbox (the others send in other tests); unlocked and counters cleared
    afterwards, and the messages queued for outside removed."""
    pw, active = users
    user = active[-1]
    yield user, pw[user]
    _unlock(host_run, data["organization"]["base_dn"], user)
    host_run("mail1", "systemctl restart mailgov-ratelimit")
    host_run("mail1", "postqueue -j | python3 -c \"import json,sys,subprocess\n"
             "for l in sys.stdin:\n q=json.loads(l)\n"
             f" if any(r['address']=='{OUTSIDE}' for r in q['recipients']):\n"
             "  subprocess.run(['postsuper','-d',q['queue_id']])\"")


@pytest.mark.control("ABUSE-02", "Crossing policy.outbound_rate_limit (test size in the lab) is "
                     "refused, locks the account in LDAP and notifies postmaster")
def test_rate_limit_locks_and_notifies(rate_limited_user, client_run, host_run, mail1, data,
                                       domain, role_vars, no_fail2ban_for_client) -> None:
    # no_fail2ban_for_client: the locked account's login is refused on purpose.
    cfg = json.loads(mail1.file("/etc/mailgov/ratelimit.json").content_string)
    n = int(cfg["messages"])
    if n > 20:
        pytest.skip(f"limit {n} is not test-sized: converge this lab instance with "
                    "-e @tests/infra/ratelimit-test.yml (never blast hundreds of messages)")
    user, password = rate_limited_user
    host_run("mail1", "systemctl restart mailgov-ratelimit && sleep 1")
    run_id = uuid.uuid4().hex[:8]
    # n+1 submissions in one client command, so they fall well inside the window.
    loop = " ; ".join(
        shlex.join(["swaks", "--server", f"mail1.{domain}", "--port", "587", "--tls",
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
    lock = host_run("mail1", f"ldapsearch -Q -LLL -Y EXTERNAL -H ldapi:/// -b {shlex.quote(base)} "
                    f"'(mail={user})' pwdAccountLockedTime")
    assert "pwdAccountLockedTime:" in lock.stdout, lock.stdout
    # ... so it can no longer log in ...
    login = swaks(client_run, f"mail1.{domain}", 587, user, password, user, user, token(),
                  ["--quit-after", "AUTH"])
    assert login.rc != 0
    # ... and the administrators were told.
    notify_to = role_vars("ratelimit", "mail1")["ratelimit__notify_to"]
    for admin in notify_to:
        note = fetch_delivered(host_run, admin, f"outbound rate limit: {user} locked")
        assert note is not None, f"no notification in {admin}'s INBOX"
        assert "locked " in note and user in note


def _banned(host_run: Callable[..., Any], jail: str, ip: str) -> bool:
    out = host_run("mail1", f"fail2ban-client status {jail}")
    return ip in out.stdout.split("Banned IP list:")[-1]


@pytest.fixture
def client_ip(host_address: Callable[[str], str], host_run) -> Iterator[str]:
    ip = host_address("client")
    yield ip
    for jail in ("dovecot", "postfix-sasl", "sshd"):
        host_run("mail1", f"fail2ban-client set {jail} unbanip {ip}")


def _wait_banned(host_run, jail: str, ip: str, seconds: int = 60) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _banned(host_run, jail, ip):
            return True
        time.sleep(2)
    return False


@pytest.mark.control("F2B-01", "Password guessing on IMAPS from the client gets the client's "
                     "address banned by the dovecot jail after maxretry failures")
def test_imap_bruteforce_banned(client_ip, client_run, host_run, role_vars, domain) -> None:
    rv = role_vars("fail2ban", "mail1")
    tries = int(rv["fail2ban__jails"]["dovecot"].get("maxretry", rv["fail2ban__maxretry"])) + 1
    # Start clean, as F2B-02: earlier tests' refused logins may have banned the client.
    host_run("mail1", f"fail2ban-client set dovecot unbanip {client_ip}")
    assert not _banned(host_run, "dovecot", client_ip)
    nobody = f"nobody-{uuid.uuid4().hex[:6]}@{domain}"
    for _ in range(tries):
        client_run(["curl", "-s", "--max-time", "15", f"imaps://mail1.{domain}/INBOX",
                    "-u", f"{nobody}:wrong-password"])
    assert _wait_banned(host_run, "dovecot", client_ip)
    probe = client_run(["nc", "-z", "-w", "5", f"mail1.{domain}", "993"])
    assert probe.rc != 0  # the ban is in force: the client cannot even connect


@pytest.mark.control("F2B-02", "Password guessing on SMTP AUTH (submission) from the client "
                     "gets the client's address banned (postfix-sasl jail, or the dovecot jail "
                     "that sees the same failures in Dovecot's auth log)")
def test_smtp_auth_bruteforce_banned(client_ip, client_run, host_run, role_vars, domain) -> None:
    rv = role_vars("fail2ban", "mail1")
    jail = rv["fail2ban__jails"]["postfix-sasl"]
    tries = int(jail.get("maxretry", rv["fail2ban__maxretry"])) + 1
    jails = ("postfix-sasl", "dovecot")  # both list the submission ports
    for j in jails:  # start clean: earlier tests' failed logins may have banned the client
        host_run("mail1", f"fail2ban-client set {j} unbanip {client_ip}")
    assert not any(_banned(host_run, j, client_ip) for j in jails)
    nobody = f"nobody-{uuid.uuid4().hex[:6]}@{domain}"
    banned: list[str] = []
    for attempt in range(2 * tries):
        swaks(client_run, f"mail1.{domain}", 587, nobody, "wrong-password", nobody, nobody,
              token(), ["--quit-after", "AUTH", "--timeout", "15"], timeout=40)
        if attempt + 1 >= tries:
            banned = [j for j in jails if _banned(host_run, j, client_ip)]
            if banned:
                break
    deadline = time.monotonic() + 60
    while not banned and time.monotonic() < deadline:
        banned = [j for j in jails if _banned(host_run, j, client_ip)]
        time.sleep(2)
    assert banned, "client not banned by postfix-sasl nor dovecot"
    probe = client_run(["nc", "-z", "-w", "5", f"mail1.{domain}", "587"])
    assert probe.rc != 0
