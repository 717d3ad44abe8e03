"""End to end on the lab (issue 4 item 7): a mailbox's life with real servers and clients.

On a COPY of the data file (``-e mailgov_data_file=``; data/mailboxes.yaml is never edited):
a new person is added and reconciled, lifecycle.yml hands over the initial password (age
file, decrypted here with a focal-point key made for the test), the login with it is refused
with the change message, the person changes it (Password Modify over StartTLS as themselves),
then sends over submission and the recipient reads it over IMAPS; an alias delivers; a
suspended mailbox receives but cannot log in; a cancelled one bounces; a delegate sees the
unit mailbox under shared/; a cancelled mailbox whose cancel is backdated in the copy is left
alone (the directory recorded when the cancel was applied); once the directory's retention is
over it is archived, purged on the next run, and restore_mailbox.yml brings its mail back.

    MAILGOV_LAB_ID=N .venv/bin/python -m pytest -m lab tests/lab/test_lifecycle_e2e.py

Afterwards the lab holds data/mailboxes.yaml again (reconcile of the original file; the new
person's entry and store are removed; the purged mailbox stays purged: its address is in the
archive manifest, see conftest.purged_addresses).
"""

from __future__ import annotations

import imaplib
import json
import re
import shlex
import ssl
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import ldap3  # a dependency of mailgov itself: never a reason to skip
import pytest
import yaml
from conftest import (
    DATA_FILE,
    STATE_DIR,
    LabHost,
    LabIMAPS,
    LabSMTP,
    Result,
    entry_home,
    ldapi,
    playbook,
    purged_addresses,
)

from mailgov import archive as ar
from mailgov.directory import desired_entries
from mailgov.loader import load
from mailgov.model import build
from mailgov.naming import NamingPolicy, Person
from mailgov.validate import validate

pytestmark = pytest.mark.lab

NEW_NAME = "Trần Văn Kiểm"
POLL = 90  # seconds a delivery may take


def age_keypair(tmp: Path) -> tuple[Path, str]:
    key = tmp / "focal-point.key"
    subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
    public = next(line.split(": ", 1)[1] for line in key.read_text().splitlines()
                  if line.startswith("# public key: "))
    return key, public


def wait_for(imaps: Callable[[str], LabIMAPS], user: str, password: str, token: str,
             mailbox: str = "INBOX") -> bool:
    deadline = time.monotonic() + POLL
    while time.monotonic() < deadline:
        with imaps("mail1") as im:
            im.login(user, password)
            typ, _ = im.select(f'"{mailbox}"', readonly=True)
            if typ == "OK":
                typ, hits = im.search(None, "SUBJECT", f'"{token}"')
                if typ == "OK" and hits[0].split():
                    return True
        time.sleep(2)
    return False


def message(sender: str, to: str, token: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, token
    msg.set_content("lifecycle e2e\n")
    return msg


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, lab_hosts: dict[str, LabHost],
          host_run: Callable[..., Result], passwords: dict[str, str]) -> Iterator[dict[str, Any]]:
    """The data copy, reconciled, and lifecycle.yml run once on it."""
    if subprocess.run(["which", "age-keygen"], capture_output=True).returncode != 0:
        pytest.fail("age is not installed on the controller (apt-get install age)")
    tmp = tmp_path_factory.mktemp("lifecycle")
    key, public = age_keypair(tmp)
    data = load(DATA_FILE).data  # dates stay text, as validation reads them
    directory = build(data)
    domain = data["organization"]["domain"]
    today = date.today()

    # The new person, with the address the naming policy gives them.
    naming = NamingPolicy.from_dict(data["policy"]["naming"])
    taken = {m["address"] for m in data["mailboxes"]} | {
        a for m in data["mailboxes"] for a in m.get("aliases", [])}
    unit = data["units"][0]
    local = naming.propose(Person(NEW_NAME), taken)
    new_id = max(m["id"] for m in data["mailboxes"]) + 1
    data["mailboxes"].append({"address": local, "id": new_id, "name": NEW_NAME,
                              "unit": unit["id"], "created": today.isoformat(),
                              "request": "99/QĐ-TCCB"})
    unit["focal_point"] = {"name": "Đầu mối thử nghiệm", "age_recipient": public}

    # A cancelled staff mailbox whose retention has NOT ended, its cancel backdated in the
    # copy past the retention (an edit the red-team of issue 10 made): the directory recorded
    # when the cancel was applied, so this alone must archive and purge nothing.
    gone = purged_addresses()  # an earlier run's victim stays purged
    victim = next(m for m in directory.mailboxes if m.state == "cancelled" and m.role == "staff"
                  and not ar.is_due(m, directory.policy, today)
                  and directory.address(m.address) not in gone)
    vdata = next(m for m in data["mailboxes"] if m["address"] == victim.address)
    vdata["cancelled"]["date"] = max(
        date.fromisoformat(str(vdata.get("created") or "2000-01-01")) + timedelta(days=1),
        today - timedelta(days=directory.policy.retention_staff_days + 1)).isoformat()

    copy = tmp / "mailboxes.yaml"
    copy.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    result = validate(copy)
    assert result.ok, [p.format() for p in result.problems][:5]

    # Lab: every other unit's new passwords go to the test key too (the sample data has no
    # focal points); removed afterwards.
    recipients = STATE_DIR / "credentials" / "recipients.json"
    recipients.parent.mkdir(parents=True, exist_ok=True)
    had_recipients = recipients.exists()
    if not had_recipients:
        recipients.write_text(json.dumps({"*": [public]}))

    new_addr = f"{local}@{domain}"
    victim_addr = f"{victim.address}@{domain}"
    base = data["organization"]["base_dn"]
    w: dict[str, Any] = {"copy": copy, "key": key, "new": new_addr, "local": local,
                         "unit": unit["id"], "victim": victim_addr, "base": base,
                         "new_dn": f"uid={local},ou=people,{base}",
                         "victim_dn": f"uid={victim.address},ou=people,{base}",
                         "victim_store": entry_home(host_run, f"uid={victim.address},ou=people,"
                                                          f"{base}"),
                         "domain": domain, "data": data, "token": uuid.uuid4().hex[:10]}
    try:
        rc, _, out = playbook("reconcile.yml", copy, "-e", "mailgov_allow_mass_change=true")
        assert rc == 0, out[-3000:]
        # A message in the victim's store before it is archived (it cannot receive: cancelled).
        res = host_run("mail1", "printf 'Subject: keep-{t}\\n\\nkept\\n' | doveadm save -u {a}"
                       .format(t=w["token"], a=shlex.quote(victim_addr)))
        assert res.rc == 0, res.stderr
        rc, _changed, out = playbook("lifecycle.yml", copy)
        assert rc == 0, out[-3000:]
        w["first_run"] = out
        w["new_store"] = entry_home(host_run, w["new_dn"])
        yield w
    finally:
        if not had_recipients:
            recipients.unlink(missing_ok=True)
        ldapi(host_run, f"ldapdelete {shlex.quote(w['new_dn'])}")
        if w.get("new_store"):
            host_run("mail1", f"rm -rf {shlex.quote(w['new_store'])}")
        rc, _, out = playbook("reconcile.yml", DATA_FILE, "-e", "mailgov_allow_mass_change=true")
        assert rc == 0, out[-3000:]


def _artifact_password(w: dict[str, Any]) -> str:
    folder = STATE_DIR / "credentials"
    for path in sorted(folder.glob(f"{w['unit']}-*.age"), key=lambda p: p.stat().st_mtime,
                       reverse=True):
        assert w["new"].encode() not in path.read_bytes(), "artifact must not hold clear text"
        text = subprocess.run(["age", "-d", "-i", str(w["key"]), str(path)], check=True,
                              capture_output=True, text=True).stdout
        for line in text.splitlines():
            if line.startswith(w["new"] + "\t"):
                return line.split("\t", 1)[1]
    pytest.fail(f"no credential for {w['new']} in {folder}")


def test_initial_password_is_delivered_encrypted_and_must_be_changed(
        world: dict[str, Any], imaps: Callable[[str], LabIMAPS], lab_hosts: dict[str, LabHost],
        lab_ca: Path) -> None:
    w = world
    assert w["new"] not in w["first_run"] or "initial password set" in w["first_run"]
    initial = _artifact_password(w)
    assert initial not in w["first_run"], "the password leaked into the playbook output"

    # Login with the initial password: refused, with the change message.
    with imaps("mail1") as im, pytest.raises(imaplib.IMAP4.error) as err:
        im.login(w["new"], initial)
    assert "change it first" in str(err.value), err.value
    # A wrong password gets the usual answer, not the hint.
    with imaps("mail1") as im, pytest.raises(imaplib.IMAP4.error) as err:
        im.login(w["new"], initial + "x")
    assert "change it first" not in str(err.value)

    # The person changes it: RFC 3062 Password Modify over StartTLS, bound as themselves
    # (what `ldappasswd -ZZ -D <dn> -W -S` does).
    # Nothing of NEW_NAME or the account in it: the server refuses that (PW-10); hex has neither.
    new_password = "Own#" + uuid.uuid4().hex[:10] + "Z9"
    tls = ldap3.Tls(ca_certs_file=str(lab_ca), validate=ssl.CERT_REQUIRED)
    server = ldap3.Server(lab_hosts["mail1"].addr, port=389, tls=tls)
    conn = ldap3.Connection(server, w["new_dn"], initial,
                            auto_bind=ldap3.AUTO_BIND_TLS_BEFORE_BIND)
    assert conn.extend.standard.modify_password(old_password=initial,
                                                new_password=new_password), conn.result
    conn.unbind()
    w["password"] = new_password

    with imaps("mail1") as im:
        assert im.login(w["new"], new_password)[0] == "OK"


def test_new_person_sends_over_submission_and_recipient_reads_it(
        world: dict[str, Any], passwords: dict[str, str], tls: ssl.SSLContext,
        lab_hosts: dict[str, LabHost], imaps: Callable[[str], LabIMAPS]) -> None:
    w = world
    assert "password" in w, "the first-login test did not change the password"
    to, to_pw = next(iter(sorted(passwords.items())))
    token = f"e2e-submit-{w['token']}"
    h = lab_hosts["mail1"]
    with LabSMTP(h.fqdn, h.addr, 587) as s:
        s.starttls(context=tls)
        s.login(w["new"], w["password"])
        s.send_message(message(w["new"], to, token))
    assert wait_for(imaps, to, to_pw, token), f"{to} did not receive {token}"


def test_alias_delivers(world: dict[str, Any], passwords: dict[str, str],
                        smtp: Callable[..., LabSMTP], imaps: Callable[[str], LabIMAPS]) -> None:
    entries = desired_entries(world["data"])
    by_mail = {e.attributes["mail"][0]: e for e in entries if "mail" in e.attributes}
    pick = next(((a, alias) for a in sorted(passwords) if a in by_mail
                 for alias in by_mail[a].attributes.get("mailAlias", ()) if alias != a), None)
    assert pick, "no test mailbox with an alias"
    address, alias = pick
    token = f"e2e-alias-{world['token']}"
    with smtp("mail1", 25) as s:
        s.send_message(message("outside@example.org", alias, token))
    assert wait_for(imaps, address, passwords[address], token)


def test_suspended_receives_but_cannot_log_in(world: dict[str, Any],
                                              host_run: Callable[..., Result],
                                              smtp: Callable[..., LabSMTP],
                                              imaps: Callable[[str], LabIMAPS]) -> None:
    w = world
    m = next(m for m in w["data"]["mailboxes"] if m.get("state") == "suspended")
    address = f"{m['address']}@{w['domain']}"
    dn = f"uid={m['address']},ou=people,{w['base']}"
    pw = "Susp#" + uuid.uuid4().hex[:10] + "Q7"
    # Give it a known password (an administrator reset removes the ppolicy lock: put it back).
    res = ldapi(host_run, f"ldappasswd -s {shlex.quote(pw)} {shlex.quote(dn)}")
    assert res.rc == 0, res.stderr
    res = host_run("mail1", f"printf 'dn: {dn}\\nchangetype: modify\\nreplace: "
                   "pwdAccountLockedTime\\npwdAccountLockedTime: 000001010000Z\\n' | "
                   "ldapmodify -Q -Y EXTERNAL -H ldapi:///")
    assert res.rc == 0, res.stderr
    # Refused as a failed authentication (ppolicy's lock), not as an initial password: the
    # reset above cleared nothing else, and pwdReset would answer CONTACTADMIN instead.
    with imaps("mail1") as im, pytest.raises(imaplib.IMAP4.error) as err:
        im.login(address, pw)
    assert "AUTHENTICATIONFAILED" in str(err.value), err.value
    token = f"e2e-suspended-{w['token']}"
    with smtp("mail1", 25) as s:
        s.send_message(message("outside@example.org", address, token))
    deadline = time.monotonic() + POLL
    while time.monotonic() < deadline:
        res = host_run("mail1", f"doveadm search -u {shlex.quote(address)} mailbox INBOX "
                                f"header subject {token}")
        if res.rc == 0 and res.stdout.strip():
            return
        time.sleep(2)
    pytest.fail(f"suspended {address} did not receive {token}")


def test_cancelled_bounces(world: dict[str, Any], smtp: Callable[..., LabSMTP]) -> None:
    w = world
    gone = purged_addresses()
    m = next(m for m in w["data"]["mailboxes"] if m.get("state") == "cancelled"
             and f"{m['address']}@{w['domain']}" not in {w["victim"], *gone})
    with smtp("mail1", 25) as s:
        s.ehlo()
        s.mail("outside@example.org")
        code, text = s.rcpt(f"{m['address']}@{w['domain']}")
    assert code == 550 and b"5.1.1" in text and b"cancelled" in text, (code, text)


def test_delegate_sees_unit_mailbox(world: dict[str, Any], passwords: dict[str, str],
                                    smtp: Callable[..., LabSMTP],
                                    imaps: Callable[[str], LabIMAPS]) -> None:
    entries = desired_entries(world["data"])
    groups = [e for e in entries if re.match(r"cn=[^,]+-delegates,", e.dn)]
    mail_of = {e.dn.lower(): e.attributes["mail"][0] for e in entries if "mail" in e.attributes}
    pick = next(((g, mail_of[m.lower()]) for g in groups for m in g.attributes["member"]
                 if mail_of.get(m.lower()) in passwords), None)
    assert pick, "no delegate with a known password"
    group, delegate = pick
    unit_addr = f"{group.dn.split(',')[0][3:-len('-delegates')]}@{world['domain']}"
    token = f"e2e-unit-{world['token']}"
    with smtp("mail1", 25) as s:
        s.send_message(message("outside@example.org", unit_addr, token))
    with imaps("mail1") as im:
        im.login(delegate, passwords[delegate])
        typ, listing = im.list('""', '"shared/*"')
        assert typ == "OK"
        names = b"\n".join(x for x in listing if x)
        assert f"shared/{unit_addr}".encode() in names, listing
    assert wait_for(imaps, delegate, passwords[delegate], token,
                    mailbox=f"shared/{unit_addr}/INBOX")
    # Someone who is not a delegate does not see it.
    other = next(a for a in sorted(passwords) if a != delegate and
                 not any(mail_of.get(m.lower()) == a for m in group.attributes["member"]))
    with imaps("mail1") as im:
        im.login(other, passwords[other])
        typ, _ = im.select(f'"shared/{unit_addr}/INBOX"', readonly=True)
        assert typ != "OK"


def test_a_backdated_cancel_archives_and_purges_nothing(world: dict[str, Any],
                                                       host_run: Callable[..., Result]) -> None:
    """The copy says the victim was cancelled past its retention; the directory says when the
    cancel was applied (today, at converge): the first lifecycle run left it alone."""
    w = world
    manifest = ar.load_manifest(STATE_DIR / "archives" / "manifest.json")
    assert w["victim"] not in manifest["archives"], "archived on the strength of the file"
    assert host_run("mail1", f"test -d {shlex.quote(w['victim_store'])}").rc == 0
    res = ldapi(host_run, f"ldapsearch -LLL -s base -b {shlex.quote(w['victim_dn'])} "
                          "mailgovRetainUntil mailEnabled")
    assert res.rc == 0 and "mailEnabled: FALSE" in res.stdout, res.stdout
    until = next(line.split(": ", 1)[1] for line in res.stdout.splitlines()
                 if line.startswith("mailgovRetainUntil: "))
    assert until[:8] > date.today().strftime("%Y%m%d"), until


def test_purge_leaves_an_archive_that_restores(world: dict[str, Any],
                                               host_run: Callable[..., Result]) -> None:
    w = world
    # Time passes, in the directory: the retention recorded at the cancel is over.
    yesterday = (date.today() - timedelta(days=1)).strftime("%Y%m%d000000Z")
    res = host_run("mail1", f"printf 'dn: {w['victim_dn']}\\nchangetype: modify\\nreplace: "
                   f"mailgovRetainUntil\\nmailgovRetainUntil: {yesterday}\\n' | "
                   "ldapmodify -Q -Y EXTERNAL -H ldapi:///")
    assert res.rc == 0, res.stderr
    rc, _, out = playbook("lifecycle.yml", w["copy"])
    assert rc == 0, out[-3000:]
    manifest_path = STATE_DIR / "archives" / "manifest.json"
    manifest = ar.load_manifest(manifest_path)
    entry = manifest["archives"].get(w["victim"])
    assert entry, f"{w['victim']} not archived: {manifest}"
    assert entry["store"] == w["victim_store"]  # the live home, not a path from the data
    res = host_run("mail1", f"sha256sum /var/backups/mailgov/archives/{entry['archive']}")
    assert res.stdout.split()[0] == entry["sha256"]
    # That run only archived: store and entry are still there.
    assert host_run("mail1", f"test -d {w['victim_store']}").rc == 0

    rc, _, out = playbook("lifecycle.yml", w["copy"])
    assert rc == 0, out[-3000:]
    assert host_run("mail1", f"test -e {w['victim_store']}").rc != 0, "store not purged"
    res = ldapi(host_run, f"ldapsearch -LLL -s base -b {shlex.quote(w['victim_dn'])} 1.1")
    assert res.rc == 32, f"entry not purged: {res.rc} {res.stdout}"  # 32 = noSuchObject

    # Nothing left to do: a further run changes nothing.
    rc, changed, out = playbook("lifecycle.yml", w["copy"])
    assert rc == 0 and changed == 0, out[-3000:]

    rc, _, out = playbook("restore_mailbox.yml", w["copy"], "-e",
                          f"mailgov_restore_address={w['victim']}")
    assert rc == 0, out[-3000:]
    res = host_run("mail1", f"grep -rl 'keep-{w['token']}' {w['victim_store']}/Maildir && "
                            f"stat -c %u {w['victim_store']}/Maildir")
    assert res.rc == 0, res.stderr
    assert res.stdout.split()[-1] == "5000"  # owned by vmail, as archived
