"""Attacks on the outbound rate limit service itself (issue 12, finding 5; docs/security.md
"Outbound rate limit").

The service locks accounts as the directory's manager, so whoever can send it requests can
lock anyone: it must take requests from Postfix only (ABUSE-04), the backup MX's Postfix must
still be counted (ABUSE-05), and it must never lock an administrator by itself (ABUSE-06).
Victims are throw-away probe accounts (authprobe.py), removed afterwards; counters are
cleared by restarting the service; mail queued for outside addresses is deleted.
"""

from __future__ import annotations

import json
import shlex
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from authprobe import Probe, make_probe, remove_probe, root_ldif
from mailhelpers import client_packages, fetch_delivered, swaks

OUTSIDE = "ratelimit-test@example.net"  # never delivered: the lab has no route out
SOCKET_DEFAULT = "/var/spool/postfix/private/mailgov-ratelimit"
LOCAL_ATTACKER = "nobody"  # any local account but postfix (www-data, the page's user ...)


def config(mail1: Any) -> dict[str, Any]:
    return json.loads(mail1.file("/etc/mailgov/ratelimit.json").content_string)


def limit_of(mail1: Any) -> int:
    n = int(config(mail1)["messages"])
    if n > 20:
        pytest.skip(f"limit {n} is not test-sized: converge with "
                    "-e @tests/infra/ratelimit-test.yml")
    return n


def locked(host_run: Callable[..., Any], dn: str) -> bool:
    out = host_run("mail1", "ldapsearch -Q -LLL -Y EXTERNAL -H ldapi:/// -s base -b "
                   f"{shlex.quote(dn)} pwdAccountLockedTime")
    return "pwdAccountLockedTime:" in out.stdout


def restart_service(host_run: Callable[..., Any]) -> None:
    """Clear the counters (state in memory) on every host that runs the service."""
    for host in ("mail1", "mail2"):
        host_run(host, "systemctl try-restart mailgov-ratelimit")
    time.sleep(1)


def drop_outside_queue(host_run: Callable[..., Any]) -> None:
    for host in ("mail1", "mail2"):
        host_run(host, "postqueue -j | python3 -c \"import json,sys,subprocess\n"
                 "for l in sys.stdin:\n q=json.loads(l)\n"
                 f" if any(r['address']=='{OUTSIDE}' for r in q['recipients']):\n"
                 "  subprocess.run(['postsuper','-d',q['queue_id']])\"")


@pytest.fixture
def victim(host_run: Callable[..., Any], data: dict[str, Any]) -> Iterator[Probe]:
    org = data["organization"]
    probe = make_probe(host_run, org["base_dn"], org["domain"], "rl")
    restart_service(host_run)
    yield probe
    remove_probe(host_run, probe)
    restart_service(host_run)
    drop_outside_queue(host_run)


def forged_requests(user: str, count: int) -> str:
    """`count` policy requests as Postfix would send them for `user`, each a new message."""
    return "".join(
        f"request=smtpd_access_policy\nprotocol_state=RCPT\nsasl_username={user}\n"
        f"sender={user}\nrecipient={OUTSIDE}\ninstance=forged{uuid.uuid4().hex}\n"
        "client_address=10.0.0.66\n\n" for _ in range(count))


ATTACK = r"""
import json, socket, sys
payload, targets = sys.argv[1].encode(), json.loads(sys.argv[2])
out = {}
for name, addr in targets:
    fam = socket.AF_UNIX if isinstance(addr, str) else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect(addr if isinstance(addr, str) else tuple(addr))
        s.sendall(payload)
        got = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
            if got.count(b"\n\n") >= payload.count(b"\n\n"):
                break
        out[name] = "answered: " + got.decode("utf-8", "replace")
    except OSError as exc:
        out[name] = f"refused: {type(exc).__name__}: {exc}"
    finally:
        s.close()
print(json.dumps(out))
"""


@pytest.mark.control("ABUSE-04", "Only Postfix can ask the rate-limit service: a local "
                     "non-postfix user gets permission denied on its socket and no answer over "
                     "TCP; the client host gets a TLS alert (no client certificate); forged "
                     "requests lock nobody")
def test_local_user_cannot_lock_anyone(victim: Probe, mail1: Any, host_run, host_address,
                                       no_fail2ban_for_client) -> None:
    n = limit_of(mail1)
    cfg = config(mail1)
    port = int(cfg.get("listen_port", 10045))
    targets = [["unix socket", cfg.get("unix_socket", SOCKET_DEFAULT)],
               ["tcp loopback", ["127.0.0.1", port]],
               ["tcp host address", [host_address("mail1"), port]]]
    # The finding's attack, scaled to the lab's limit: more forged requests than the limit,
    # each a "new message" of the victim, from an unprivileged local account.
    out = host_run("mail1", f"runuser -u {LOCAL_ATTACKER} -- python3 -c {shlex.quote(ATTACK)} "
                   f"{shlex.quote(forged_requests(victim.mail, n + 1))} "
                   f"{shlex.quote(json.dumps(targets))}")
    assert out.rc == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert not locked(host_run, victim.dn), f"forged requests locked the victim: {got}"
    answered = {k: v for k, v in got.items() if "action=" in v}
    assert not answered, f"the service answered a non-Postfix process: {answered}"
    # The reason: the socket's permissions (Postfix's private directory, 0600 postfix).
    assert got["unix socket"].startswith("refused: PermissionError"), got["unix socket"]
    perms = host_run("mail1", f"stat -c '%U %a' {shlex.quote(targets[0][1])}").stdout.split()
    assert perms == ["postfix", "600"], perms


@pytest.mark.control("ABUSE-04", "Only Postfix can ask the rate-limit service: a local "
                     "non-postfix user gets permission denied on its socket and no answer over "
                     "TCP; the client host gets a TLS alert (no client certificate); forged "
                     "requests lock nobody")
def test_client_host_gets_tls_alert(victim: Probe, mail1: Any, client_run, host_address,
                                    host_run) -> None:
    n = limit_of(mail1)
    port = int(config(mail1).get("listen_port", 10045))
    addr = host_address("mail1")
    request = forged_requests(victim.mail, n + 1)
    # No certificate: the TLS handshake is refused with an alert, nothing is read.
    tls = client_run(f"printf %s {shlex.quote(request)} | timeout 20 openssl s_client -quiet "
                     f"-connect {addr}:{port} -CAfile /etc/ssl/mailgov/ca.crt 2>&1")
    assert "action=" not in tls.stdout, tls.stdout[-600:]
    assert "alert certificate required" in tls.stdout, tls.stdout[-600:]
    # Plain text is no way around it either.
    plain = client_run(f"printf %s {shlex.quote(request)} | timeout 20 nc -w 5 {addr} {port}")
    assert "action=" not in plain.stdout, plain.stdout[-600:]
    assert not locked(host_run, victim.dn)


def submit(client_run: Callable[..., Any], server: str, probe: Probe, count: int,
           tag: str) -> list[str]:
    """`count` submissions to OUTSIDE as `probe` through `server`; their swaks logs."""
    client_packages(client_run, "libnet-ssleay-perl")  # swaks --tls
    loop = " ; ".join(
        shlex.join(["swaks", "--server", server, "--port", "587", "--tls", "--auth", "PLAIN",
                    "--auth-user", probe.mail, "--auth-password", probe.password,
                    "--from", probe.mail, "--to", OUTSIDE, "--header",
                    f"Subject: rl {tag} {i}", "--timeout", "30"])
        + f" >/tmp/rl-{tag}-{i}.log 2>&1; echo ==rc=$?; cat /tmp/rl-{tag}-{i}.log"
        for i in range(count))
    out = client_run(loop, timeout=180)
    return out.stdout.split("==rc=")[1:]


@pytest.mark.control("ABUSE-05", "The backup MX's submissions are counted by the one service: "
                     "messages through mail2 and mail1 add up, and the one over the limit is "
                     "refused on mail2")
def test_backup_mx_submissions_are_counted(victim: Probe, mail1: Any, client_run, host_run,
                                           data: dict[str, Any], no_fail2ban_for_client) -> None:
    n = limit_of(mail1)
    domain = data["organization"]["domain"]
    assert n >= 2, "the test needs a limit of at least 2"
    start = time.monotonic()
    first = submit(client_run, f"mail1.{domain}", victim, 1, "m1")
    through_mail2 = submit(client_run, f"mail2.{domain}", victim, n, "m2")
    assert time.monotonic() - start < 60 * int(config(mail1)["window_minutes"]), "too slow"
    assert first[0].startswith("0"), first[0][-600:]
    # 1 through mail1 + (n-1) through mail2 = n: accepted; the next one through mail2 is
    # refused. A count of mail2's own would have reached n-1 only.
    assert all(r.startswith("0") for r in through_mail2[:n - 1]), through_mail2
    last = through_mail2[n - 1]
    assert not last.startswith("0"), f"message {n + 1} through mail2 accepted: {last[-600:]}"
    assert "5.7.1" in last and "rate limit" in last, last[-600:]
    assert locked(host_run, victim.dn)


@pytest.fixture
def admin_victim(victim: Probe, host_run: Callable[..., Any], data: dict[str, Any]) -> Probe:
    """The probe, made an administrator as the directory marks them (the administrators'
    password policy, mailgov/directory.py)."""
    base = data["organization"]["base_dn"]
    out = root_ldif(host_run, "ldapmodify", f"dn: {victim.dn}\nchangetype: modify\n"
                    f"replace: pwdPolicySubentry\npwdPolicySubentry: "
                    f"cn=administrators,ou=policies,{base}")
    assert out.rc == 0, out.stderr
    return victim


@pytest.mark.control("ABUSE-06", "The rate-limit service never locks an administrator: "
                     "over the limit their outside mail is refused, the account stays usable "
                     "and postmaster is told")
def test_admin_not_locked(admin_victim: Probe, mail1: Any, client_run, host_run, role_vars,
                          data: dict[str, Any], no_fail2ban_for_client) -> None:
    n = limit_of(mail1)
    domain = data["organization"]["domain"]
    logs = submit(client_run, f"mail1.{domain}", admin_victim, n + 1, "adm")
    assert all(r.startswith("0") for r in logs[:n]), logs
    assert not logs[n].startswith("0") and "5.7.1" in logs[n], logs[n][-600:]
    assert not locked(host_run, admin_victim.dn), "the service locked an administrator"
    login = swaks(client_run, f"mail1.{domain}", 587, admin_victim.mail, admin_victim.password,
                  admin_victim.mail, admin_victim.mail, "rl-admin-login",
                  ["--quit-after", "AUTH"])
    assert login.rc == 0, login.stdout[-600:]
    for admin in role_vars("ratelimit", "mail1")["ratelimit__notify_to"]:
        note = fetch_delivered(host_run, admin, f"outbound rate limit: {admin_victim.mail}")
        assert note is not None, f"no notification in {admin}'s INBOX"
        assert "NOT locked" in note, note[-800:]
