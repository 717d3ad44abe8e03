"""Nothing is lost by an ordinary edit, proven on the lab with real clients (issue 10 item 7).

Each case edits a COPY of the data file the way a pull request would, runs the real
playbook, and checks what people would see over IMAP and in the directory; afterwards the lab
is reconciled back to the original data. The third of the worst three (a backdated cancel does
not purge) is in test_lifecycle_e2e.py, where the lifecycle runs.

    MAILGOV_LAB_ID=N .venv/bin/python -m pytest -m lab tests/lab/test_nothing_lost.py
"""

from __future__ import annotations

import imaplib
import shlex
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import DATA_FILE, LabIMAPS, Result, entry_home, ldapi, playbook, purged_addresses

from mailgov.loader import load

pytestmark = pytest.mark.lab


def write_copy(tmp: Path, data: dict[str, Any]) -> Path:
    copy = tmp / "mailboxes.yaml"
    copy.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return copy


def put_message(host_run: Callable[..., Result], address: str, subject: str) -> None:
    res = host_run("mail1", f"printf 'Subject: {subject}\\n\\nkept\\n' | doveadm save -u "
                            f"{shlex.quote(address)}")
    assert res.rc == 0, res.stderr


def uid_number(host_run: Callable[..., Result], dn: str) -> str:
    res = ldapi(host_run, f"ldapsearch -LLL -s base -b {shlex.quote(dn)} mailUidNumber")
    assert res.rc == 0, (res.rc, res.stderr)
    return next(line.split(": ", 1)[1] for line in res.stdout.splitlines()
                if line.startswith("mailUidNumber: "))


@pytest.fixture
def restore_original() -> Iterator[None]:
    yield
    rc, _, out = playbook("reconcile.yml", DATA_FILE, "-e", "mailgov_allow_mass_change=true")
    assert rc == 0, out[-3000:]


def test_a_freed_address_does_not_give_the_new_person_the_old_mail(
        tmp_path: Path, host_run: Callable[..., Result], imaps: Callable[[str], LabIMAPS],
        restore_original: None) -> None:
    data = load(DATA_FILE).data
    domain = data["organization"]["domain"]
    base = data["organization"]["base_dn"]
    gone = purged_addresses()
    old = next(m for m in data["mailboxes"] if m.get("state") == "cancelled"
               and f"{m['address']}@{domain}" not in gone)
    address = f"{old['address']}@{domain}"
    dn = f"uid={old['address']},ou=people,{base}"
    token = f"freed-{uuid.uuid4().hex[:10]}"
    put_message(host_run, address, token)  # the old holder's mail, kept for the retention
    old_id = uid_number(host_run, dn)
    home = entry_home(host_run, dn)

    # The pull request: the cancelled record deleted, a namesake added at the same address.
    data["mailboxes"].remove(old)
    new_id = max(m["id"] for m in data["mailboxes"]) + 1
    data["mailboxes"].append({"address": old["address"], "id": new_id, "name": old["name"],
                              "unit": old["unit"], "request": "99/QĐ-TCCB"})
    rc, _, out = playbook("reconcile.yml", write_copy(tmp_path, data))
    assert rc != 0, "the plan that hands over a held address was applied"
    assert "MG604" in out and "MG603" in out, out[-3000:]

    # The directory still gives the address to the old holder, locked; their mail is where
    # it was; a login with a password chosen for the new person is refused.
    assert uid_number(host_run, dn) == old_id
    assert entry_home(host_run, dn) == home
    res = host_run("mail1", f"doveadm search -u {shlex.quote(address)} mailbox INBOX header "
                            f"subject {token}")
    assert res.rc == 0 and res.stdout.strip(), res
    with imaps("mail1") as im, pytest.raises(imaplib.IMAP4.error) as err:
        im.login(address, "Moi#" + uuid.uuid4().hex[:10] + "Q7")
    assert "AUTHENTICATIONFAILED" in str(err.value), err.value


def test_a_rename_keeps_the_mail_visible_over_imap(
        tmp_path: Path, host_run: Callable[..., Result], imaps: Callable[[str], LabIMAPS],
        passwords: dict[str, str], restore_original: None) -> None:
    data = load(DATA_FILE).data
    domain = data["organization"]["domain"]
    base = data["organization"]["base_dn"]
    address = sorted(passwords)[0]
    record = next(m for m in data["mailboxes"] if f"{m['address']}@{domain}" == address)
    dn = f"uid={record['address']},ou=people,{base}"
    home = entry_home(host_run, dn)
    token = f"rename-{uuid.uuid4().hex[:10]}"
    put_message(host_run, address, token)

    new_local = f"{record['address']}.moi"
    record["renamed_from"] = record["address"]
    record["address"] = new_local
    record["naming_exemption"] = {"reason": "Thử nghiệm đổi tên", "request": "99/QĐ-TCCB"}
    rc, _, out = playbook("reconcile.yml", write_copy(tmp_path, data))
    assert rc == 0, out[-3000:]

    new_dn = f"uid={new_local},ou=people,{base}"
    assert entry_home(host_run, new_dn) == home  # the store did not move
    with imaps("mail1") as im:  # the same person, the same password, the new address
        assert im.login(f"{new_local}@{domain}", passwords[address])[0] == "OK"
        im.select("INBOX", readonly=True)
        typ, hits = im.search(None, "SUBJECT", f'"{token}"')
        assert typ == "OK" and hits[0].split(), f"{token} not visible after the rename"


def test_an_entry_made_before_ids_is_taken_over_without_moving_its_mail(
        host_run: Callable[..., Result], imaps: Callable[[str], LabIMAPS],
        passwords: dict[str, str], restore_original: None) -> None:
    """A directory from before ids: no mailUidNumber, the home named by address. The
    reconcile writes the id and nothing else; the mail stays where it is and is read over
    IMAP."""
    data = load(DATA_FILE).data
    domain = data["organization"]["domain"]
    base = data["organization"]["base_dn"]
    address = sorted(passwords)[-1]
    record = next(m for m in data["mailboxes"] if f"{m['address']}@{domain}" == address)
    dn = f"uid={record['address']},ou=people,{base}"
    token = f"legacy-{uuid.uuid4().hex[:10]}"
    put_message(host_run, address, token)
    store = entry_home(host_run, dn)
    legacy = f"/var/vmail/{domain}/{record['address']}"
    # Make the entry as an older mailgov left it: store by address, no id.
    res = host_run("mail1", f"doveadm kick {shlex.quote(address)} >/dev/null 2>&1; "
                            f"mv {shlex.quote(store)} {shlex.quote(legacy)}")
    assert res.rc == 0, res.stderr
    res = host_run("mail1", f"printf 'dn: {dn}\\nchangetype: modify\\nreplace: "
                   f"mailHomeDirectory\\nmailHomeDirectory: {legacy}\\n-\\ndelete: "
                   "mailUidNumber\\n' | ldapmodify -Q -Y EXTERNAL -H ldapi:///")
    assert res.rc == 0, res.stderr
    try:
        rc, _, out = playbook("reconcile.yml", DATA_FILE)
        assert rc == 0, out[-3000:]
        assert uid_number(host_run, dn) == str(record["id"])  # taken over by its address
        assert entry_home(host_run, dn) == legacy  # ... and its mail did not move
        with imaps("mail1") as im:
            assert im.login(address, passwords[address])[0] == "OK"
            im.select("INBOX", readonly=True)
            typ, hits = im.search(None, "SUBJECT", f'"{token}"')
            assert typ == "OK" and hits[0].split(), f"{token} not visible after the takeover"
    finally:  # back to the home the lab's other tests expect
        host_run("mail1", f"doveadm kick {shlex.quote(address)} >/dev/null 2>&1; "
                          f"mv {shlex.quote(legacy)} {shlex.quote(store)}")
        host_run("mail1", f"printf 'dn: {dn}\\nchangetype: modify\\nreplace: "
                          f"mailHomeDirectory\\nmailHomeDirectory: {store}\\n' | "
                          "ldapmodify -Q -Y EXTERNAL -H ldapi:///")
