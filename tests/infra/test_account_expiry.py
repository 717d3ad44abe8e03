"""Account expiry (docs/security.md, "Inactivity lock and first-login deadline", PW-12..14):
an account idle longer than policy.inactivity_lock_days cannot log in (slapd's pwdMaxIdle), and
an initial password not changed within first_login_change_days is locked by the daily job
mailgov-account-expiry on the provider.

Every case uses throw-away mailboxes (authprobe.py). Their times are moved into the past as the
provider's root with the Relax Rules control: pwdChangedTime can be written that way, but
pwdLastSuccess cannot (slapd 2.5 declares it no-user-modification and not manageable, checked
below). So the idle probe is one that never logged in, for which slapd counts idleness from
pwdChangedTime (ppolicy.c, the pwdMaxIdle check): the same rule a migrated account without a
recorded login meets.
"""

from __future__ import annotations

import json
import re
import shlex
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from authprobe import Probe, imap_steps, ldap_client, rc_of, root_ldif

PROVIDER = "mail1"
DIRECTORY_HOSTS = ("mail1", "mail2")
SERVICE = "mailgov-account-expiry.service"
TIMER = "mailgov-account-expiry.timer"
SCRIPT = "/usr/local/sbin/mailgov-account-expiry"
CONFIG = "/etc/mailgov/account-expiry.json"
PERMANENT_LOCK = "000001010000Z"
PW12 = ("PW-12", "An account idle longer than inactivity_lock_days cannot log in")
PW13 = ("PW-13",
        "An initial password not changed within first_login_change_days is locked by the daily job")


def provider_now(host_run: Callable[..., Any]) -> datetime:
    """The provider's clock: slapd (pwdMaxIdle) and the daily job judge ages by it, not by the
    controller's, which may differ (lab/future runs the controller a year ahead)."""
    out = host_run(PROVIDER, "date -u +%s")
    assert out.rc == 0, out.stderr
    return datetime.fromtimestamp(int(out.stdout.strip()), UTC)


def stamp(days_ago: float, now: datetime) -> str:
    """An LDAP time `days_ago` days before `now` (the provider's clock)."""
    return (now - timedelta(days=days_ago)).strftime("%Y%m%d%H%M%SZ")


def set_attrs(host_run: Callable[..., Any], dn: str, attrs: dict[str, str]) -> None:
    """Replace attributes as the provider's root, with Relax Rules (operational attributes)."""
    ldif = f"dn: {dn}\nchangetype: modify\n" + "-\n".join(
        f"replace: {k}\n{k}: {v}\n" for k, v in attrs.items())
    cmd = f"ldapmodify -e relax -Q -Y EXTERNAL -H ldapi:/// <<'MAILGOV_LDIF'\n{ldif}\nMAILGOV_LDIF"
    out = host_run(PROVIDER, cmd)
    assert out.rc == 0, f"cannot set {sorted(attrs)} on {dn}: {out.stderr or out.stdout}"


def attrs_of(host_run: Callable[..., Any], dn: str, host: str = PROVIDER) -> dict[str, str]:
    out = host_run(host, "ldapsearch -Q -LLL -o ldif-wrap=no -Y EXTERNAL -H ldapi:/// -s base "
                         f"-b {shlex.quote(dn)} '*' '+'")
    assert out.rc == 0, out.stderr
    found: dict[str, str] = {}
    for line in out.stdout.splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            found[key.lower()] = value
    return found


def bind_rc(client_run: Callable[..., Any], address: str, probe: Probe) -> int:
    """ldapwhoami as the probe from the client (StartTLS): 0 bound, 49 refused."""
    return rc_of(ldap_client(client_run, "ldapwhoami", address,
                             ["-x", "-D", probe.dn, "-w", probe.password]))


def wait_replicated(host_run: Callable[..., Any], dn: str, attr: str, value: str | None,
                    host: str = "mail2", timeout: float = 30) -> None:
    """Until the replica shows attr == value (None: absent)."""
    deadline = time.monotonic() + timeout
    got: str | None = None
    while time.monotonic() < deadline:
        got = attrs_of(host_run, dn, host).get(attr.lower())
        if got == value:
            return
        time.sleep(1)
    raise AssertionError(f"{host} has {attr}={got!r} on {dn}, expected {value!r}")


# --- PW-12: inactivity lock (pwdMaxIdle) -----------------------------------------------------


@pytest.mark.control(*PW12)
def test_idle_account_cannot_log_in(
    client_run: Callable[..., Any],
    host_address: Callable[[str], str],
    host_run: Callable[..., Any],
    policy: dict[str, Any],
    org: dict[str, str],
    probes: Callable[[str], Probe],
    no_fail2ban_for_client: None,
) -> None:
    idle_days = int(policy["inactivity_lock_days"])
    max_age = int(policy["password"]["users"]["max_age_days"])
    # Idle one day too long, yet younger than the password's maximum age: only idleness can
    # explain a refusal.
    days = idle_days + 1
    assert days < max_age, "inactivity_lock_days >= max_age_days: the expiry would hide it"
    idle, fresh = probes("idle"), probes("fresh")
    # The policies carry the number (both of them; the replica by replication).
    for host in DIRECTORY_HOSTS:
        for cn in ("default", "administrators"):
            pol = attrs_of(host_run, f"cn={cn},ou=policies,{org['base_dn']}", host)
            assert pol.get("pwdmaxidle") == str(idle_days * 86400), (host, cn, pol)
    # The idle probe never logged in: slapd counts from pwdChangedTime, moved back here.
    assert "pwdlastsuccess" not in attrs_of(host_run, idle.dn)
    now = provider_now(host_run)
    set_attrs(host_run, idle.dn, {"pwdChangedTime": stamp(days, now)})
    wait_replicated(host_run, idle.dn, "pwdChangedTime", attrs_of(host_run, idle.dn)
                    ["pwdchangedtime"])
    # pwdLastSuccess itself cannot be moved back (why the test goes through pwdChangedTime).
    out = root_ldif(host_run, "ldapmodify -e relax",
                    f"dn: {fresh.dn}\nchangetype: modify\nreplace: pwdLastSuccess\n"
                    f"pwdLastSuccess: {stamp(days, now)}")
    assert out.rc != 0, "pwdLastSuccess became writable: test it directly"

    address = host_address(PROVIDER)
    res = imap_steps(client_run, address, [
        {"user": idle.mail, "password": idle.password},
        {"user": fresh.mail, "password": fresh.password},
    ])
    assert res[0]["login"].startswith("NO"), f"an account idle {days} days logged in: {res[0]}"
    assert res[1]["login"] == "OK", f"a fresh account was refused: {res[1]}"
    for host in DIRECTORY_HOSTS:
        assert bind_rc(client_run, host_address(host), idle) == 49, f"idle bind on {host}"
    assert bind_rc(client_run, address, fresh) == 0
    # Computed at bind time, nothing is written: no pwdAccountLockedTime on the idle probe.
    assert "pwdaccountlockedtime" not in attrs_of(host_run, idle.dn)


@pytest.mark.control(*PW12)
def test_recent_login_counts_not_password_age(
    client_run: Callable[..., Any],
    host_address: Callable[[str], str],
    host_run: Callable[..., Any],
    policy: dict[str, Any],
    probes: Callable[[str], Probe],
    no_fail2ban_for_client: None,
) -> None:
    """pwdLastSuccess wins over an old pwdChangedTime: someone who logs in is not idle."""
    days = int(policy["inactivity_lock_days"]) + 1
    active = probes("active")
    address = host_address(PROVIDER)
    assert bind_rc(client_run, address, active) == 0
    assert "pwdlastsuccess" in attrs_of(host_run, active.dn), "no pwdLastSuccess after a bind"
    now = provider_now(host_run)
    set_attrs(host_run, active.dn, {"pwdChangedTime": stamp(days, now)})
    res = imap_steps(client_run, address, [{"user": active.mail, "password": active.password}])
    assert res[0]["login"] == "OK", f"an active account with an old password was refused: {res}"


# --- PW-13: first-login deadline (the daily job) ---------------------------------------------


def run_job(mail1: Any, *args: str) -> Any:
    return mail1.run(" ".join([SCRIPT, *args]))


@pytest.mark.control(*PW13)
def test_first_login_deadline(
    client_run: Callable[..., Any],
    host_address: Callable[[str], str],
    host_run: Callable[..., Any],
    mail1: Any,
    policy: dict[str, Any],
    org: dict[str, str],
    probes: Callable[[str], Probe],
    no_fail2ban_for_client: None,
) -> None:
    user_days = int(policy["password"]["users"]["first_login_change_days"])
    admin_days = int(policy["password"]["administrators"]["first_login_change_days"])
    idle_days = int(policy["inactivity_lock_days"])
    admin_policy = f"cn=administrators,ou=policies,{org['base_dn']}"
    # Between the two deadlines when they differ: locks an administrator, not a user.
    between = admin_days + 0.5 if admin_days < user_days else None
    late = user_days + 1
    assert late < idle_days, "first_login_change_days >= inactivity_lock_days: idle hides it"

    stale, recent, changed = probes("stale"), probes("recent"), probes("changed")
    now = provider_now(host_run)
    set_attrs(host_run, stale.dn, {"pwdReset": "TRUE", "pwdChangedTime": stamp(late, now)})
    set_attrs(host_run, recent.dn, {"pwdReset": "TRUE",
                                    "pwdChangedTime": stamp(between or user_days - 0.5, now)})
    # Changed by its owner (no pwdReset) long ago: not this job's business.
    set_attrs(host_run, changed.dn, {"pwdChangedTime": stamp(late, now)})
    admin = None
    if between is not None:
        admin = probes("adm")
        set_attrs(host_run, admin.dn, {"pwdReset": "TRUE", "pwdPolicySubentry": admin_policy,
                                       "pwdChangedTime": stamp(between, now)})
    must_lock = [stale] + ([admin] if admin else [])
    must_not = [recent, changed]

    address = host_address(PROVIDER)
    # Before the job every one of them can bind (a pwdReset session may change its password).
    for p in must_lock + must_not:
        assert bind_rc(client_run, address, p) == 0, f"{p.uid} refused before the job"

    # --dry-run names exactly the due ones and writes nothing.
    dry = run_job(mail1, "--dry-run")
    assert dry.rc == 0, dry.stderr
    for p in must_lock:
        assert f"would lock {p.mail}:" in dry.stdout, dry.stdout
    for p in must_not:
        assert p.mail not in dry.stdout, dry.stdout
    assert all("pwdaccountlockedtime" not in attrs_of(host_run, p.dn) for p in must_lock)

    since = int(mail1.check_output("date +%s")) - 1  # the host's clock, as its journal's
    start = mail1.run(f"systemctl start {SERVICE}")
    journal = mail1.run(f"journalctl -u {SERVICE} --since @{since} -o cat --no-pager").stdout
    assert start.rc == 0, journal
    for p in must_lock:
        assert attrs_of(host_run, p.dn).get("pwdaccountlockedtime") == PERMANENT_LOCK, p.uid
        line = next((ln for ln in journal.splitlines() if ln.startswith(f"locked {p.mail}:")), "")
        assert line, f"no journal line for {p.mail}:\n{journal}"
        # The address and the days, nothing secret.
        assert re.search(r": initial password set \d+\.\d days ago, never changed "
                         r"\(limit \d+ days\)$", line), line
        assert bind_rc(client_run, address, p) == 49, f"{p.uid} still binds after the lock"
        res = imap_steps(client_run, address, [{"user": p.mail, "password": p.password}])
        assert res[0]["login"].startswith("NO"), res
    for p in must_not:
        assert "pwdaccountlockedtime" not in attrs_of(host_run, p.dn), f"{p.uid} was locked"
        assert bind_rc(client_run, address, p) == 0, f"{p.uid} refused after the job"
    everyone = must_lock + must_not
    assert not any(p.password in journal for p in everyone), "a password reached the journal"
    # The lock replicates.
    wait_replicated(host_run, stale.dn, "pwdAccountLockedTime", PERMANENT_LOCK)

    # Safe to run again at any time: nothing more is locked, nothing is logged twice.
    since = int(mail1.check_output("date +%s")) - 1
    again = mail1.run(f"systemctl start {SERVICE}")
    journal = mail1.run(f"journalctl -u {SERVICE} --since @{since} -o cat --no-pager").stdout
    assert again.rc == 0, journal
    assert not [ln for ln in journal.splitlines() if ln.startswith("locked ") and
                any(p.mail in ln for p in everyone)], journal


@pytest.mark.control(*PW13)
def test_first_login_job_fails_loudly_without_slapd(mail1: Any) -> None:
    """slapd unreachable (a socket that does not exist): non-zero exit and a clear message."""
    conf = json.loads(mail1.run(f"cat {CONFIG}").stdout)
    conf["ldap_uri"] = "ldapi://%2Frun%2Fmailgov-no-such-slapd"
    tmp = "/run/mailgov-account-expiry-test.json"
    mail1.run(f"umask 077; printf %s {shlex.quote(json.dumps(conf))} > {tmp}")
    try:
        out = run_job(mail1, "--config", tmp)
    finally:
        mail1.run(f"rm -f {tmp}")
    assert out.rc == 1, (out.rc, out.stdout, out.stderr)
    assert "cannot read the directory" in out.stderr and "slapd" in out.stderr, out.stderr


# --- PW-14: the schedule ---------------------------------------------------------------------


@pytest.mark.control("PW-14", "The first-login deadline job is enabled and scheduled daily")
def test_timer_enabled_and_scheduled(
    mail1: Any,
    mail2: Any,
    policy: dict[str, Any],
    org: dict[str, str],
    role_vars: Callable[..., dict[str, Any]],
) -> None:
    schedule = role_vars("openldap", "mail1")["openldap__account_expiry_schedule"]
    timer = mail1.service(TIMER)
    assert timer.is_enabled and timer.is_running
    props = mail1.run(f"systemctl show {TIMER} -p TimersCalendar -p NextElapseUSecRealtime "
                      "-p Persistent").stdout
    # systemd shows the calendar normalized ("daily" is "*-*-* 00:00:00"): compare that.
    norm = mail1.run(f"systemd-analyze calendar {shlex.quote(schedule)}").stdout
    want = next(ln.split(":", 1)[1].strip() for ln in norm.splitlines()
                if "Normalized form" in ln)
    assert f"OnCalendar={want} ;" in props, (want, props)
    assert "Persistent=yes" in props, props
    next_run = mail1.run(f"systemctl show {TIMER} -p NextElapseUSecRealtime --value").stdout
    assert next_run.strip() not in ("", "n/a", "0"), f"timer has no next run: {props}"
    # The numbers come from the data, in a file only root reads.
    cfg = mail1.file(CONFIG)
    assert cfg.mode == 0o640 and cfg.user == "root"
    conf = json.loads(cfg.content_string)
    pw = policy["password"]
    assert conf["default_days"] == int(pw["users"]["first_login_change_days"])
    assert conf["policy_days"] == {
        f"cn=administrators,ou=policies,{org['base_dn']}":
            int(pw["administrators"]["first_login_change_days"])}
    # The provider only: the replica gets the locks by replication.
    assert not mail2.file(f"/etc/systemd/system/{TIMER}").exists
