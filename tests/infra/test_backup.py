"""Backups (roles/backup) and their restore, proven on the lab: controls BAK-01..BAK-04.

The drill (BAK-03) really destroys data on the lab instance under test: a message in a test
mailbox and that mailbox's directory entry are deleted after a backup, then
playbooks/restore.yml must bring both back. Run it on a lab, never on production.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import standards

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
INVENTORY = Path(os.environ.get("MAILGOV_INVENTORY", REPO / "inventory" / "lab"))

STAMP_RE = r"^[0-9]{8}T[0-9]{6}Z$"
LDAPI = "-Q -LLL -Y EXTERNAL -H ldapi:/// -o ldif-wrap=no"


@pytest.fixture(scope="module")
def bvars(role_vars: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return role_vars("backup", "mail1")


@pytest.fixture(scope="module")
def storage(bvars: dict[str, Any], infra_host: Callable[[str], Any]) -> Any:
    """The storage host (testinfra), as the role chose it."""
    return infra_host(bvars["backup__storage_host"])


def runs_on_storage(storage: Any, bvars: dict[str, Any], host: str = "mail1") -> list[str]:
    out = storage.run(f"ls -1 {bvars['backup__storage_dir']}/{host} | grep -E '{STAMP_RE}' | sort")
    return out.stdout.split()


def run_backup(mail: Any) -> str:
    """Start the backup service now (as the timer would) and return the run's stamp."""
    res = mail.run("systemctl start mailgov-backup.service")
    assert res.rc == 0, mail.run("journalctl -u mailgov-backup.service -n 30 --no-pager").stdout
    return mail.check_output("cat /var/lib/mailgov-backup/last-run")


@pytest.fixture(scope="module")
def retention_run(mail1: Any, storage: Any, bvars: dict[str, Any]) -> dict[str, Any]:
    """KEEP old fake runs on the storage host, then one real backup: retention must prune."""
    keep = int(bvars["backup__retention_count"])
    base = f"{bvars['backup__storage_dir']}/mail1"
    user = bvars["backup__storage_user"]
    fakes = [f"2000{m:02d}01T000000Z" for m in range(1, keep + 1)]
    for fake in fakes:
        storage.run(f"install -d -o {user} -g {user} -m 0700 {base}/{fake}")
    before = runs_on_storage(storage, bvars)
    stamp = run_backup(mail1)
    return {"stamp": stamp, "fakes": fakes, "before": before, "keep": keep,
            "after": runs_on_storage(storage, bvars)}


def calendar_elapses(text: str) -> list[datetime]:
    """The run times `systemd-analyze calendar --iterations=N` prints (UTC on the hosts)."""
    stamps = re.findall(r"^\s*(?:Next elapse|Iter\. #\d+):\s*\w+ (\S+ \S+) UTC$", text, re.M)
    return [datetime.strptime(s, "%Y-%m-%d %H:%M:%S") for s in stamps]


@pytest.mark.control("BAK-01", "A backup timer runs at least as often as policy.backups.schedule")
def test_backup_timer(mail1: Any, policy: dict[str, Any]) -> None:
    # The regulation's word (data/mailboxes.yaml), judged by the timer's real next runs: not by
    # the role's own table of calendar expressions.
    schedule = policy["backups"]["schedule"]
    shown = mail1.run("systemctl show mailgov-backup.timer -p TimersCalendar --value").stdout
    calendars = re.findall(r"OnCalendar=(.*?) ;", shown)
    assert len(calendars) == 1, shown
    runs = mail1.run(f"TZ=UTC systemd-analyze calendar --iterations=6 "
                     f"{shlex.quote(calendars[0])}")
    assert runs.rc == 0, runs.stderr
    if schedule in standards.BACKUP_MAX_INTERVAL_DAYS:
        problems = standards.backup_schedule_violations(schedule, calendar_elapses(runs.stdout))
        assert not problems, (calendars[0], problems)
    else:
        # The policy names an OnCalendar expression itself: the timer's is that one.
        want = mail1.run(f"systemd-analyze calendar {shlex.quote(schedule)} | "
                         "sed -n 's/^ *Normalized form: //p'").stdout.strip()
        assert want and want == calendars[0], (calendars[0], want)
    assert mail1.run("systemctl is-enabled mailgov-backup.timer").stdout.strip() == "enabled"
    assert mail1.run("systemctl is-active mailgov-backup.timer").stdout.strip() == "active"
    nxt = mail1.run("systemctl show mailgov-backup.timer -p NextElapseUSecRealtime --value")
    assert nxt.stdout.strip() not in ("", "0", "n/a"), "timer has no next run"


@pytest.mark.control("BAK-02", "Directory and mail stores are backed up to separate storage")
def test_backup_on_separate_storage(retention_run: dict[str, Any], storage: Any,
                                    bvars: dict[str, Any], inventory_groups: dict[str, list[str]],
                                    mail1: Any) -> None:
    assert bvars["backup__storage_host"] not in inventory_groups["mailservers"]
    run_dir = f"{bvars['backup__storage_dir']}/mail1/{retention_run['stamp']}"
    files = storage.run(f"ls -1 {run_dir}").stdout.split()
    assert "ldap-data.ldif" in files and "ldap-config.ldif" in files, files
    assert any(f.startswith("mail-") and f.endswith(".tar.gz") for f in files), files
    # The copy on the storage host is intact (checksums made on the server).
    assert storage.run(f"cd {run_dir} && sha256sum --quiet -c SHA256SUMS").rc == 0
    data = storage.file(f"{run_dir}/ldap-data.ldif").content_string
    assert f"dn: {bvars['backup__base_dn']}" in data
    # Nothing is left behind on the server itself.
    assert mail1.run(f"ls -A {bvars['backup__staging_dir']}").stdout.strip() == ""


@pytest.mark.control("BAK-04", "Only the newest backup__retention_count runs are kept")
def test_backup_retention(retention_run: dict[str, Any]) -> None:
    after, keep = retention_run["after"], retention_run["keep"]
    assert len(retention_run["before"]) >= keep, "test setup made too few runs"
    assert len(after) == keep, after
    assert retention_run["stamp"] in after
    assert retention_run["fakes"][0] not in after, "the oldest run was not deleted"


@pytest.mark.control("BAK-05", "A server's backup key cannot open a shell on the storage host")
def test_backup_key_confined(mail1: Any, bvars: dict[str, Any]) -> None:
    conf = dict(line.split("=", 1) for line in
                mail1.check_output("grep -E '^[A-Z_]+=' /etc/mailgov/backup.conf").splitlines())
    ssh = (f"ssh -i {conf['SSH_KEY']} -o BatchMode=yes -o IdentitiesOnly=yes "
           f"-o UserKnownHostsFile={conf['KNOWN_HOSTS']} -o StrictHostKeyChecking=yes")
    res = mail1.run(f"{ssh} {conf['STORAGE']} 'id; cat /etc/passwd'")
    assert res.rc != 0 and "root:" not in res.stdout, res.stdout
    # Positive control: the same key and options do reach the storage host, for rsync into
    # this server's own directory (so the refusal above is the confinement, not a dead link).
    own = mail1.run(f"rsync --list-only -e {shlex.quote(ssh)} {conf['STORAGE']}:./")
    assert own.rc == 0 and own.stdout.strip(), (own.rc, own.stdout, own.stderr)
    # Another server's directory is out of reach (rrsync confines to this server's own).
    other = mail1.run(f"rsync --list-only -e {shlex.quote(ssh)} {conf['STORAGE']}:../mail2/")
    assert other.rc != 0 or "ldap-data.ldif" not in other.stdout


# --- the restore drill ---------------------------------------------------------------------


def pick_mailbox(mail1: Any, base_dn: str) -> tuple[str, str]:
    """A mailbox user in no group (its deletion touches no other entry): (dn, address)."""
    out = mail1.check_output(
        f"ldapsearch {LDAPI} -b {shlex.quote(base_dn)} "
        "'(&(uid=*)(mail=*)(!(memberOf=*)))' mail | head -n 40")
    dn = address = ""
    for line in out.splitlines():
        if line.startswith("dn: "):
            dn = line[4:]
        elif line.startswith("mail: ") and dn:
            address = line[6:]
            break
    if not (dn and address):
        pytest.fail("no mailbox user in the lab directory: converge site.yml first")
    return dn, address


def entry_exists(host: Any, dn: str) -> bool:
    res = host.run(f"ldapsearch {LDAPI} -s base -b {shlex.quote(dn)} 1.1")
    return res.rc == 0 and dn.lower() in res.stdout.lower()


def message_count(mail1: Any, address: str, subject: str) -> int:
    res = mail1.run(f"doveadm search -u {shlex.quote(address)} mailbox INBOX "
                    f"header Subject {shlex.quote(subject)}")
    assert res.rc == 0, res.stderr
    return len(res.stdout.splitlines())  # one line (mailbox GUID, UID) per message


def wait_for(check: Callable[[], bool], seconds: float = 60) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(2)
    return check()


@pytest.mark.control("BAK-03", "Deleted mail and a deleted directory entry come back from backup")
def test_restore_drill(mail1: Any, mail2: Any, bvars: dict[str, Any]) -> None:
    dn, address = pick_mailbox(mail1, bvars["backup__base_dn"])
    subject = f"mailgov restore drill {uuid.uuid4().hex[:12]}"
    message = (f"From: quantri@monre.gov.vn\nTo: {address}\nSubject: {subject}\n"
               f"Message-ID: <{uuid.uuid4().hex}@mailgov.test>\n\nA message to lose and restore.\n")
    saved = mail1.run(f"printf %s {shlex.quote(message)} | doveadm save -u {shlex.quote(address)}")
    assert saved.rc == 0, saved.stderr
    assert message_count(mail1, address, subject) == 1

    # Replication works before the drill: otherwise "deleted on mail2" would prove nothing.
    assert wait_for(lambda: entry_exists(mail2, dn)), "entry not on the replica before the drill"
    run_backup(mail1)

    # Disaster: the message is expunged and the user's entry deleted.
    assert mail1.run(f"doveadm expunge -u {shlex.quote(address)} mailbox INBOX "
                     f"header Subject {shlex.quote(subject)}").rc == 0
    assert message_count(mail1, address, subject) == 0
    assert mail1.run(f"ldapdelete -Q -Y EXTERNAL -H ldapi:/// {shlex.quote(dn)}").rc == 0
    assert not entry_exists(mail1, dn)
    assert wait_for(lambda: not entry_exists(mail2, dn)), "deletion did not replicate"

    # The documented procedure: playbooks/restore.yml on the server.
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1"}
    res = subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "-i", str(INVENTORY), "playbooks/restore.yml",
         "-l", "mail1"], cwd=REPO, capture_output=True, text=True, check=False, timeout=600,
        env=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]

    assert entry_exists(mail1, dn), "entry not restored on the provider"
    assert wait_for(lambda: entry_exists(mail2, dn)), "restored entry did not replicate"
    # The mailbox works again (its user resolves) and holds the message.
    assert message_count(mail1, address, subject) == 1
    mail1.run(f"doveadm expunge -u {shlex.quote(address)} mailbox INBOX "
              f"header Subject {shlex.quote(subject)}")
