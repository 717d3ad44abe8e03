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
        # The primary asks its own service; the others ask the primary's (mailflow.yml sets
        # postfix__mode, which role_vars cannot see).
        where = "127.0.0.1" if name in inventory_groups["mx_primary"] else "mail1\\.\\S+"
        assert re.fullmatch(rf"check_policy_service inet:{where}:{cfg['listen_port']}", classes)
        assert "check_sasl_access static:mailgov_ratelimit" in \
            host.run("postconf -h smtpd_recipient_restrictions").stdout


@pytest.mark.control("F2B-03", "fail2ban runs the sshd, postfix-sasl and dovecot jails from the "
                     "journal with the ban times of the role variables; admin networks ignored")
def test_fail2ban_jails(mail_hosts, role_vars) -> None:
    for name, host in mail_hosts.items():
        rv = role_vars("fail2ban", name)
        status = host.run("fail2ban-client status")
        assert status.rc == 0, status.stderr
        jails = re.search(r"Jail list:\s*(.*)", status.stdout).group(1)
        assert {j.strip() for j in jails.split(",")} == set(rv["fail2ban__jails"])
        for jail in rv["fail2ban__jails"]:
            bantime = host.run(f"fail2ban-client get {jail} bantime").stdout.strip()
            maxretry = host.run(f"fail2ban-client get {jail} maxretry").stdout.strip()
            assert int(bantime) == _seconds(rv["fail2ban__jails"][jail].get(
                "bantime", rv["fail2ban__bantime"]))
            assert int(maxretry) == int(rv["fail2ban__jails"][jail].get(
                "maxretry", rv["fail2ban__maxretry"]))
            ignored = host.run(f"fail2ban-client get {jail} ignoreip").stdout
            listed = {ip_network(n, strict=False) for n in re.findall(r"[|`]- (\S+)", ignored)}
            for net in rv["fail2ban__ignoreip"]:
                assert ip_network(net, strict=False) in listed, (jail, net, ignored)
        conf = host.file("/etc/fail2ban/jail.d/mailgov.local").content_string
        assert re.search(r"^backend = systemd$", conf, re.MULTILINE)


def _seconds(value: Any) -> int:
    text = str(value).strip()
    m = re.fullmatch(r"(\d+)\s*([smhdw]?)", text)
    assert m, f"cannot read duration {text!r}"
    unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]
    return int(m.group(1)) * unit
