"""Backups (roles/backup) and their restore, proven on the lab: controls BAK-01..BAK-11.

The drill (BAK-03) really destroys data on the lab instance under test: a message in a test
mailbox and that mailbox's directory entry are deleted after a backup, then
playbooks/restore.yml must bring both back. The storage host is treated as the attacker
(BAK-07..BAK-10): it alters and plants runs, and the restore must refuse them before anything
is decrypted or extracted. BAK-11 replaces a DKIM key and restores the old one. Run it on a
lab, never on production.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import shlex
import shutil
import subprocess
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import standards
import yaml

from lab import labenv

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
INVENTORY = Path(os.environ.get("MAILGOV_INVENTORY", REPO / "inventory" / "lab"))
LAB_DIR = labenv.lab_dir(REPO, labenv.lab_id())
# The admins' age identity (the private half of backup__age_recipients): in the lab, made by
# lab/production-inventory (or the lab inventory's lookup) in the lab's state dir.
IDENTITY = Path(os.environ.get("MAILGOV_BACKUP_IDENTITY", LAB_DIR / "backup-age-identity.txt"))

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


def run_files(storage: Any, run_dir: str) -> list[str]:
    return storage.run(f"ls -1 {run_dir}").stdout.split()


def verify_signature(bvars: dict[str, Any], host: str, manifest: bytes, sig: bytes) -> Any:
    """ssh-keygen -Y verify on the controller, against the signing keys the converge recorded."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "MANIFEST.sig").write_bytes(sig)
        return subprocess.run(
            ["ssh-keygen", "-Y", "verify", "-f",
             f"{bvars['backup__controller_dir']}/allowed_signers", "-I", host,
             "-n", "mailgov-backup", "-s", f"{tmp}/MANIFEST.sig"],
            input=manifest, capture_output=True, check=False, timeout=30)


@pytest.mark.control("BAK-02", "Directory and mail stores are backed up to separate storage")
def test_backup_on_separate_storage(retention_run: dict[str, Any], storage: Any,
                                    bvars: dict[str, Any], inventory_groups: dict[str, list[str]],
                                    mail1: Any) -> None:
    assert bvars["backup__storage_host"] not in inventory_groups["mailservers"]
    run_dir = f"{bvars['backup__storage_dir']}/mail1/{retention_run['stamp']}"
    files = run_files(storage, run_dir)
    assert {"ldap-data.ldif.age", "ldap-config.ldif.age", "dkim.tar.gz.age", "MANIFEST",
            "MANIFEST.sig"} <= set(files), files
    assert any(f.startswith("mail-") and f.endswith(".tar.gz.age") for f in files), files
    # The copy on the storage host is intact: the sums made on the server match there...
    sums = storage.run(f"cd {run_dir} && tail -n +4 MANIFEST | sha256sum --quiet -c")
    assert sums.rc == 0, sums.stdout + sums.stderr
    # ...and the manifest carries the server's signature (checked with the controller's key).
    manifest = storage.file(f"{run_dir}/MANIFEST").content
    sig = storage.file(f"{run_dir}/MANIFEST.sig").content
    ok = verify_signature(bvars, "mail1", manifest, sig)
    assert ok.returncode == 0, ok.stderr
    assert manifest.decode().splitlines()[:3] == [
        "mailgov-backup manifest 1", "host mail1", f"run {retention_run['stamp']}"]
    # Nothing is left behind on the server itself.
    assert mail1.run(f"ls -A {bvars['backup__staging_dir']}").stdout.strip() == ""


@pytest.mark.control("BAK-06", "Backups go only to the host of group backup_storage; none: refused")
def test_backups_only_to_the_storage_group(
        bvars: dict[str, Any], inventory_groups: dict[str, list[str]], mail1: Any,
        client: Any, host_address: Callable[[str], str], tmp_path: Path) -> None:
    # The storage host is exactly the group's one host, and the servers push to its address.
    assert inventory_groups["backup_storage"] == [bvars["backup__storage_host"]]
    conf = mail1.check_output("grep -E '^STORAGE=' /etc/mailgov/backup.conf")
    want = f"STORAGE={bvars['backup__storage_user']}@{host_address(bvars['backup__storage_host'])}"
    assert conf.strip() == want
    # The same inventory with backup_storage missing (as production.example had it), then
    # empty, and the client still in `clients`: the run must stop with the reason before it
    # makes anything on the client (an account and a directory of names no run ever used, so a
    # leftover cannot pass for a fresh one).
    assert inventory_groups["clients"], "the refusal needs a non-empty clients group"
    conf_before = mail1.check_output("sha256sum /etc/mailgov/backup.conf")
    for variant in ("missing", "empty"):
        inv = tmp_path / variant
        shutil.copytree(INVENTORY, inv, symlinks=True)
        hosts = yaml.safe_load((inv / "hosts.yml").read_text())
        if variant == "missing":
            del hosts["all"]["children"]["backup_storage"]
        else:
            hosts["all"]["children"]["backup_storage"] = {"hosts": {}}
        (inv / "hosts.yml").write_text(yaml.safe_dump(hosts, sort_keys=False))
        tag = uuid.uuid4().hex[:8]
        user, sdir = f"mgbk-{tag}", f"/srv/mgbk-{tag}"
        res = subprocess.run(
            [str(VENV_BIN / "ansible-playbook"), "-i", str(inv), "playbooks/hardening.yml",
             "--tags", "backup", "-e", f"backup__storage_user={user}",
             "-e", f"backup__storage_dir={sdir}"],
            cwd=REPO, capture_output=True, text=True, check=False, timeout=600,
            env={**os.environ, "ANSIBLE_NOCOLOR": "1", "MAILGOV_LAB_DIR": str(LAB_DIR)})
        out = said(res)
        try:
            assert res.returncode != 0, (variant, out[-3000:])
            assert ("backup: refused: the inventory's group backup_storage names no storage "
                    "host" in out), (variant, out[-3000:])
            assert "-> client]" not in out, f"{variant}: a task ran on the client: {out[-3000:]}"
            assert client.run(f"getent passwd {user}").rc == 2, f"{variant}: account on client"
            assert not client.file(sdir).exists, f"{variant}: backup directory on the client"
            assert mail1.check_output("sha256sum /etc/mailgov/backup.conf") == conf_before
        finally:  # with the mechanism off (a fallback), leave the lab as it was
            client.run(f"userdel {user}; rm -rf {sdir}")


@pytest.mark.control("BAK-07", "Backups are encrypted at rest: no mail or LDIF readable in storage")
def test_backups_encrypted_at_rest(retention_run: dict[str, Any], storage: Any, mail2: Any,
                                   bvars: dict[str, Any]) -> None:
    # mail1 (provider, mail store) and mail2 (replica: its cn=config holds the replicator's and
    # ppolicyforward's passwords in clear).
    runs = {"mail1": retention_run["stamp"], "mail2": run_backup(mail2)}
    assert storage.exists("tar") and storage.exists("gzip") and storage.exists("grep")
    base = bvars["backup__base_dn"]
    plain: dict[str, str] = {}
    for host, stamp in runs.items():
        run_dir = f"{bvars['backup__storage_dir']}/{host}/{stamp}"
        sealed = [f for f in run_files(storage, run_dir) if f.endswith(".age")]
        assert {"ldap-data.ldif.age", "ldap-config.ldif.age"} <= set(sealed), (host, sealed)
        for name in sealed:
            path = f"{run_dir}/{name}"
            head = storage.file(path).content[:22]
            assert head == b"age-encryption.org/v1\n", (host, name, head)
            assert storage.run(f"tar -tzf {path}").rc != 0, f"{name} lists as a tar archive"
            assert storage.run(f"gzip -t {path}").rc != 0, f"{name} is a gzip stream"
        for needle in ("userPassword", f"dn: {base}", "olcSyncrepl", "credentials=",
                       "Subject:"):
            hit = storage.run(f"grep -rlF -e {shlex.quote(needle)} {run_dir}")
            assert hit.rc == 1 and hit.stdout.strip() == "", (
                f"{needle!r} readable on the storage host: {hit.stdout}")
        # Positive control: with the admins' identity the same files open and hold what the
        # grep looked for (so it could have found it).
        assert IDENTITY.is_file(), f"no backup identity at {IDENTITY}"
        for name in ("ldap-data.ldif.age", "ldap-config.ldif.age"):
            blob = storage.file(f"{run_dir}/{name}").content
            opened = subprocess.run(["age", "-d", "-i", str(IDENTITY)], input=blob,
                                    capture_output=True, check=False, timeout=60)
            assert opened.returncode == 0, opened.stderr.decode()
            plain[f"{host}/{name}"] = opened.stdout.decode()
    assert f"dn: {base}" in plain["mail1/ldap-data.ldif.age"]
    assert "userPassword:" in plain["mail1/ldap-data.ldif.age"]
    # docs/security.md says so: the replica's cn=config dump holds service passwords in clear.
    config = plain["mail2/ldap-config.ldif.age"]
    assert "olcSyncrepl" in config and "credentials=" in config
    storage.run(f"rm -rf {bvars['backup__storage_dir']}/mail2/{runs['mail2']}")


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


def said(res: subprocess.CompletedProcess[str]) -> str:
    """A run's output with whitespace runs folded to one space: Ansible wraps long messages."""
    return " ".join((res.stdout + res.stderr).split())


def restore(*extra: str, host: str = "mail1") -> subprocess.CompletedProcess[str]:
    """playbooks/restore.yml on one server, as the admins run it (their identity given)."""
    return subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "-i", str(INVENTORY), "playbooks/restore.yml",
         "-l", host, "-e", f"restore_identity={IDENTITY}", *extra],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=600,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1"})


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

    # The documented procedure: playbooks/restore.yml on the server, with the admins' identity.
    res = restore()
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]

    assert entry_exists(mail1, dn), "entry not restored on the provider"
    assert wait_for(lambda: entry_exists(mail2, dn)), "restored entry did not replicate"
    # The mailbox works again (its user resolves) and holds the message.
    assert message_count(mail1, address, subject) == 1
    mail1.run(f"doveadm expunge -u {shlex.quote(address)} mailbox INBOX "
              f"header Subject {shlex.quote(subject)}")


# --- the storage host as the attacker --------------------------------------------------------


def recipients(mail1: Any) -> list[str]:
    """The public age keys (public: the storage host may well know them)."""
    return mail1.check_output("cat /etc/mailgov/backup-recipients").split()


def seal(data: bytes, keys: list[str]) -> bytes:
    """Encrypt as anyone holding the public recipients can (on the controller)."""
    args = ["age", "-e"] + [a for k in keys for a in ("-r", k)]
    res = subprocess.run(args, input=data, capture_output=True, check=True, timeout=60)
    return res.stdout


def put(host: Any, path: str, data: bytes, owner: str = "") -> None:
    b64 = base64.b64encode(data).decode()
    res = host.run(f"echo {b64} | base64 -d > {shlex.quote(path)}"
                   + (f" && chown {owner}: {shlex.quote(path)}" if owner else ""))
    assert res.rc == 0, res.stderr


def sums(names: dict[str, bytes]) -> str:
    return "".join(f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in sorted(names.items()))


def tar_gz(members: dict[str, tuple[bytes, int]]) -> bytes:
    """A tar.gz of {path: (data, mode)} (regular files), made on the controller."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, (data, mode) in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture()
def fresh_run(mail1: Any, storage: Any, bvars: dict[str, Any]) -> Any:
    """A new backup run of mail1, removed from the storage host after the test."""
    stamp = run_backup(mail1)
    run_dir = f"{bvars['backup__storage_dir']}/mail1/{stamp}"
    yield stamp, run_dir
    storage.run(f"rm -rf {run_dir}")


PLANTED_OU = "ou=mailgov-planted"


@pytest.mark.control("BAK-08", "A run altered on the storage host is refused before it is restored")
def test_altered_run_is_refused(fresh_run: tuple[str, str], storage: Any, mail1: Any,
                                bvars: dict[str, Any]) -> None:
    stamp, run_dir = fresh_run
    base = bvars["backup__base_dn"]
    planted = f"{PLANTED_OU}-{uuid.uuid4().hex[:8]},{base}"
    # 1. The storage host swaps the directory dump for its own (encrypted to the public key)
    #    and rewrites the manifest's sums to match: the signature no longer verifies.
    ldif = f"dn: {planted}\nobjectClass: organizationalUnit\nou: {planted.split(',')[0][3:]}\n\n"
    forged = seal(ldif.encode(), recipients(mail1))
    put(storage, f"{run_dir}/ldap-data.ldif.age", forged)
    assert storage.run(f"cd {run_dir} && head -n 3 MANIFEST > M && "
                       "sha256sum *.age >> M && mv M MANIFEST").rc == 0
    res = restore("-e", f"restore_run={stamp}")
    out = said(res)
    assert res.returncode != 0, out[-3000:]
    assert (f"mailgov-restore: refused: run {stamp}: signature verification failed: the "
            "MANIFEST is not signed by the backup key of mail1") in out, out[-3000:]
    assert not entry_exists(mail1, planted), "the forged directory entry was restored"
    # 2. Only an archive altered (one byte), the signed manifest left as it is: its sum fails.
    storage.run(f"rm -rf {run_dir}")
    stamp2 = run_backup(mail1)
    run_dir2 = f"{bvars['backup__storage_dir']}/mail1/{stamp2}"
    try:
        flip = ("import sys; p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); "
                "b[200] ^= 1; open(p, 'wb').write(b)")
        assert storage.run(f"python3 -c {shlex.quote(flip)} {run_dir2}/ldap-data.ldif.age").rc == 0
        res = restore("-e", f"restore_run={stamp2}")
        out = said(res)
        assert res.returncode != 0, out[-3000:]
        assert "ldap-data.ldif.age does not match its sum in the signed MANIFEST" in out, out
        assert f"mailgov-restore: refused: run {stamp2}: the signed MANIFEST does not match" in out
    finally:
        storage.run(f"rm -rf {run_dir2}")


@pytest.mark.control("BAK-09", "A run planted by the storage host (not signed by it) is refused")
def test_planted_run_is_refused(storage: Any, mail1: Any, bvars: dict[str, Any],
                                tmp_path: Path) -> None:
    # A complete, validly encrypted run that would put a file into the mail store, with a
    # manifest naming mail1 and the run: unsigned, then signed with a key of the storage
    # host's own. Neither may be restored.
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() + 86400))
    marker = f"var/vmail/mailgov-planted-{uuid.uuid4().hex[:8]}"
    blob = seal(tar_gz({marker: (b"planted by the storage host\n", 0o600)}), recipients(mail1))
    files = {"mail-var_vmail.tar.gz.age": blob}
    manifest = (f"mailgov-backup manifest 1\nhost mail1\nrun {stamp}\n" + sums(files)).encode()
    user = bvars["backup__storage_user"]
    run_dir = f"{bvars['backup__storage_dir']}/mail1/{stamp}"
    storage.run(f"install -d -o {user} -g {user} -m 0700 {run_dir}")
    try:
        put(storage, f"{run_dir}/mail-var_vmail.tar.gz.age", blob, user)
        put(storage, f"{run_dir}/MANIFEST", manifest, user)
        res = restore("-e", f"restore_run={stamp}")
        out = said(res)
        assert res.returncode != 0, out[-3000:]
        assert f"mailgov-restore: refused: run {stamp} has no signed MANIFEST" in out, out[-3000:]
        # Signed, but by a key the attacker made (ssh-keygen on the controller, as mail1).
        key = tmp_path / "attacker"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "mail1", "-f",
                        str(key)], check=True, capture_output=True)
        (tmp_path / "MANIFEST").write_bytes(manifest)
        subprocess.run(["ssh-keygen", "-q", "-Y", "sign", "-f", str(key), "-n", "mailgov-backup",
                        str(tmp_path / "MANIFEST")], check=True, capture_output=True)
        put(storage, f"{run_dir}/MANIFEST.sig", (tmp_path / "MANIFEST.sig").read_bytes(), user)
        res = restore("-e", f"restore_run={stamp}")
        out = said(res)
        assert res.returncode != 0, out[-3000:]
        assert (f"mailgov-restore: refused: run {stamp}: signature verification failed: the "
                "MANIFEST is not signed by the backup key of mail1") in out, out[-3000:]
        assert not mail1.file(f"/{marker}").exists, "the planted file was restored"
    finally:
        storage.run(f"rm -rf {run_dir}")


@pytest.mark.control("BAK-10", "A restore extracts only the paths it expects, even when signed")
def test_restore_extracts_only_expected_paths(storage: Any, mail1: Any,
                                              bvars: dict[str, Any]) -> None:
    # Defence in depth behind the signature: a run signed with mail1's own key (as a compromised
    # source might) whose mail archive carries a cron file and a setuid binary. The restore's
    # filter refuses the archive; neither file appears.
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() + 2 * 86400))
    tag = uuid.uuid4().hex[:8]
    cron, suid = f"etc/cron.d/mailgov-planted-{tag}", f"var/vmail/mailgov-suid-{tag}"
    script = f"""set -e
. /etc/mailgov/backup.conf
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
mkdir -p "$d/src/etc/cron.d" "$d/src/var/vmail" "$d/{stamp}"
echo '* * * * * root touch /tmp/mailgov-pwned-{tag}' > "$d/src/{cron}"
cp /bin/true "$d/src/{suid}" && chmod 4755 "$d/src/{suid}"
tar -C "$d/src" -czf - {cron} {suid} \\
  | age -e -R "$RECIPIENTS" -o "$d/{stamp}/mail-var_vmail.tar.gz.age"
{{ printf 'mailgov-backup manifest 1\nhost %s\nrun %s\n' "$HOST" {stamp}
   cd "$d/{stamp}" && sha256sum -- *.age; }} > "$d/{stamp}/MANIFEST"
ssh-keygen -q -Y sign -f "$SIGNING_KEY" -n mailgov-backup "$d/{stamp}/MANIFEST"
ssh="ssh -i $SSH_KEY -o BatchMode=yes -o IdentitiesOnly=yes -o UserKnownHostsFile=$KNOWN_HOSTS"
rsync -a -e "$ssh" "$d/{stamp}" "$STORAGE:"
"""
    made = mail1.run(f"bash -c {shlex.quote(script)}")
    assert made.rc == 0, made.stderr
    run_dir = f"{bvars['backup__storage_dir']}/mail1/{stamp}"
    try:
        res = restore("-e", f"restore_run={stamp}")
        out = said(res)
        assert res.returncode != 0, out[-3000:]
        assert "signature and sums verified" in out, "the run must pass the signature check"
        assert (f"mailgov-restore-tar: refused: member '{cron}' is outside var/vmail/"
                in out), out[-3000:]
        assert not mail1.file(f"/{cron}").exists, "the cron file was extracted"
        assert not mail1.file(f"/{suid}").exists, "the setuid file was extracted"
    finally:
        storage.run(f"rm -rf {run_dir}")
        mail1.run(f"rm -f /{cron} /{suid}")


def dkim_fingerprints(host: Any, key_dir: str) -> dict[str, str]:
    """{key file: sha256 of its public key (DER)} for the private keys in key_dir."""
    out = host.check_output(  # <domain>/<selector>.private: a key per domain
        f"cd {key_dir} && for k in */*.private; do printf '%s ' \"$k\"; "
        "openssl pkey -in $k -pubout -outform DER | sha256sum | cut -d' ' -f1; done")
    return dict(line.split() for line in out.splitlines())


@pytest.mark.control("BAK-11", "DKIM keys are backed up; a restore brings back the same key")
def test_dkim_keys_restored(fresh_run: tuple[str, str], mail1: Any, bvars: dict[str, Any],
                            role_vars: Callable[..., dict[str, Any]]) -> None:
    stamp, _ = fresh_run
    key_dir = bvars["backup__dkim_dir"]
    before = dkim_fingerprints(mail1, key_dir)
    assert before, f"no DKIM key in {key_dir}"
    # The published key (the controller's copy, what `mailgov dns` puts in DNS) is this one.
    fetch_dir = Path(role_vars("mailauth")["mailauth__dkim_fetch_dir"])
    for name, fp in before.items():
        pub = (fetch_dir / name.replace(".private", ".pub")).read_text()
        der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub.encode(),
                             capture_output=True, check=True).stdout
        assert hashlib.sha256(der).hexdigest() == fp, name
    # A rebuilt host: a new key under the same name (what the converge would generate).
    name = sorted(before)[0]
    path = f"{key_dir}/{name}"
    keep = f"/root/mailgov-test-{name.replace('/', '_')}"  # put back whatever happens
    assert mail1.run(f"cp -p {path} {keep}").rc == 0
    assert mail1.run(f"openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out {path} "
                     f"&& chown opendkim:opendkim {path} && chmod 0600 {path}").rc == 0
    assert dkim_fingerprints(mail1, key_dir)[name] != before[name]
    try:
        res = restore("-e", f"restore_run={stamp}", "-e", "restore_mail=no",
                      "-e", "restore_directory=none")
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
        assert "dkim: keys restored (added=0 replaced=1" in said(res), res.stdout[-2000:]
        assert dkim_fingerprints(mail1, key_dir) == before
        f = mail1.file(path)
        assert (f.user, f.group, f.mode) == ("opendkim", "opendkim", 0o600)
        assert mail1.service("opendkim").is_running
    finally:
        mail1.run(f"cmp -s {keep} {path} || {{ cp -p {keep} {path}; "
                  "systemctl try-restart opendkim.service; }; "
                  f"rm -f {keep} {key_dir}/*/*.before-restore-*")
