"""Abuse limits as configured on the hosts (docs/security.md "Abuse limits"): values come from
the data's policy section and the roles' variables; the attacks that exercise them are in
test_attacks_abuse.py. Open relay refusal: tests/lab/test_mailflow.py (not repeated here).
"""

from __future__ import annotations

import json
import re
import shlex
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest
import standards
import yaml

TABLE = "regexp:/etc/postfix/mime_header_checks"
TEST_LIMITS = Path(__file__).resolve().parent / "ratelimit-test.yml"


def live_ratelimit_config(mail1: Any) -> dict[str, Any]:
    f = mail1.file("/etc/mailgov/ratelimit.json")
    assert f.exists, "mailgov-ratelimit is not configured on mail1"
    return json.loads(f.content_string)


@pytest.mark.control("ABUSE-01", "Every attachment type of policy.blocked_attachments is refused "
                     "by mime_header_checks (filename=, filename*=, name=); other types pass")
def test_blocked_attachment_table_covers_the_policy(mail_hosts, policy) -> None:
    blocked = policy["blocked_attachments"]
    assert blocked
    for host in mail_hosts.values():
        assert host.run("postconf -h mime_header_checks").stdout.strip() == TABLE
        for ext in blocked:
            for header in (f'Content-Disposition: attachment; filename="Báo cáo.{ext}"',
                           f"Content-Disposition: attachment; filename*=UTF-8''x.{ext.upper()}",
                           f'Content-Type: application/octet-stream; name="x.{ext}"'):
                q = host.run(f"postmap -q {shlex.quote(header)} {TABLE}")
                assert q.rc == 0 and q.stdout.startswith("REJECT 5.7.1"), (ext, header, q.stdout)
        for ok in ('Content-Disposition: attachment; filename="report.pdf"',
                   'Content-Disposition: attachment; filename="setup.exe.pdf"'):
            q = host.run(f"postmap -q {shlex.quote(ok)} {TABLE}")
            assert q.rc != 0, (ok, q.stdout)


@pytest.mark.control("ABUSE-03", "The outbound rate limit in force is policy.outbound_rate_limit "
                     "(or the lab's declared test size), asked by Postfix on both MX hosts")
def test_rate_limit_config_follows_the_data(mail1, mail_hosts, policy, role_vars,
                                            inventory_groups) -> None:
    cfg = live_ratelimit_config(mail1)
    want = policy["outbound_rate_limit"]
    test_size = yaml.safe_load(TEST_LIMITS.read_text(encoding="utf-8"))
    got = (cfg["messages"], cfg["window_minutes"])
    assert got in {(want["messages"], want["window_minutes"]),
                   (test_size["ratelimit__messages"], test_size["ratelimit__window_minutes"])}
    rv = role_vars("ratelimit", "mail1")
    assert cfg["local_domains"] == rv["ratelimit__local_domains"]
    assert cfg["notify_to"] == rv["ratelimit__notify_to"]
    assert mail1.service("mailgov-ratelimit").is_running
    assert mail1.service("mailgov-ratelimit").is_enabled
    for name, host in mail_hosts.items():
        classes = host.run("postconf -h mailgov_ratelimit").stdout.strip()
        # Every MX asks its own socket: the primary's service counts, a backup MX's relays
        # to it over TLS (ABUSE-04/05).
        assert classes == f"check_policy_service unix:private/{Path(cfg['unix_socket']).name}"
        assert host.service("mailgov-ratelimit").is_running, name
        mode = json.loads(host.file("/etc/mailgov/ratelimit.json").content_string)["mode"]
        assert mode == ("server" if name in inventory_groups["mx_primary"] else "relay"), name
        assert "check_sasl_access static:mailgov_ratelimit" in \
            host.run("postconf -h smtpd_recipient_restrictions").stdout


# Whose lockout a jail's ban must not come after: SSH is the administrators' door, SMTP AUTH
# and IMAP/POP3 the users' (policy.password.<who>.lockout_failures, the regulation's number).
JAIL_ACCOUNTS = {"sshd": "administrators", "postfix-sasl": "users", "dovecot": "users",
                 # The page changes administrators' passwords too: their (smaller) number.
                 "selfservice": "administrators"}


@pytest.mark.control("F2B-03", "fail2ban runs the sshd, postfix-sasl, dovecot and selfservice "
                     "jails from the journal, bans no later than the policy's lockout and no "
                     "shorter than fail2ban's defaults; only loopback and the admin networks "
                     "ignored")
def test_fail2ban_jails(mail_hosts, role_vars, policy) -> None:
    for name, host in mail_hosts.items():
        status = host.run("fail2ban-client status")
        assert status.rc == 0, status.stderr
        jails = {j.strip() for j in re.search(r"Jail list:\s*(.*)", status.stdout).group(1)
                 .split(",")}
        assert jails >= standards.F2B_JAILS, f"{name}: jails {jails}"
        problems = []
        # The networks never banned are deployment facts (the inventory's admin networks).
        declared = {ip_network(n, strict=False) for n in role_vars("fail2ban", name)[
            "fail2ban__ignoreip"]}
        for jail in sorted(standards.F2B_JAILS):
            got = {k: int(host.run(f"fail2ban-client get {jail} {k}").stdout.strip())
                   for k in ("bantime", "findtime", "maxretry")}
            lockout = int(policy["password"][JAIL_ACCOUNTS[jail]]["lockout_failures"])
            problems += standards.fail2ban_violations(jail, lockout_failures=lockout, **got)
            ignored = host.run(f"fail2ban-client get {jail} ignoreip").stdout
            listed = {ip_network(n, strict=False) for n in re.findall(r"[|`]- (\S+)", ignored)}
            assert declared <= listed, (jail, declared, ignored)
            # Nothing wider is exempt: every ignored network is loopback or a declared one.
            for net in listed:
                if not (net.is_loopback or any(net.version == d.version and net.subnet_of(d)
                                               for d in declared)):
                    problems.append(f"{jail}: {net} is never banned")
        assert not problems, f"{name}, weaker than the floor (standards.py): {problems}"
        conf = host.file("/etc/fail2ban/jail.d/mailgov.local").content_string
        assert re.search(r"^backend = systemd$", conf, re.MULTILINE)


def _seconds(value: Any) -> int:
    text = str(value).strip()
    m = re.fullmatch(r"(\d+)\s*([smhdw]?)", text)
    assert m, f"cannot read duration {text!r}"
    unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]
    return int(m.group(1)) * unit
