"""`mailgov dump` and `mailgov import-ldif` against the lab's provider (issue 15 item 3): the
dump of the live directory is a valid data file, and `mailgov plan` against it plans no
change, also after the directory was changed by hand (the dump shows the hand change; the data
it was loaded from does not). And the provider's own `slapcat` export, imported as a plain
OpenLDAP directory, gives a data file whose plan changes nothing either.

    MAILGOV_LAB_ID=N .venv/bin/python -m pytest -m lab tests/lab/test_dump.py

The hand changes are undone at the end, whatever the outcome (the same writes, reversed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import DATA_FILE, LAB_DIR, REPO, LabHost, Result
from ldap3 import MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE

from mailgov.loader import load

pytestmark = pytest.mark.lab

REQUEST = "15/QĐ-CNTT"


def mailgov(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LANG", "LC_ALL", "LC_MESSAGES")}
    return subprocess.run([sys.executable, "-m", "mailgov.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def ldap_args(lab_hosts: dict[str, LabHost], lab_ca: Path) -> list[str]:
    secret = LAB_DIR / "secrets" / "ldap-mailgov"
    if not secret.is_file():
        pytest.fail(f"no {secret}: converge the lab first")
    return ["--ldap-uri", f"ldap://{lab_hosts['mail1'].addr}", "--password-file", str(secret),
            "--ca-file", str(lab_ca)]


def ldap_changes(plan_json: str) -> list[str]:
    """The plan's changes that write the directory (an archive is the mail host's)."""
    doc = json.loads(plan_json)
    return sorted(f"{c['kind']} {c['dn']}" for c in doc["changes"] if c["kind"] != "archive")


def dump(ldap_args: list[str], out: Path) -> dict[str, Any]:
    run = mailgov("dump", "--data", str(DATA_FILE), *ldap_args, "--request", REQUEST,
                  "-o", str(out))
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    check = mailgov("validate", str(out))
    assert check.returncode == 0, check.stdout[-2000:]
    return load(out).data  # dates stay text, as in load(DATA_FILE)


def plan(path: Path, ldap_args: list[str]) -> tuple[int, list[str]]:
    run = mailgov("plan", str(path), *ldap_args, "--format", "json", "--no-audit")
    assert run.returncode in (0, 4), run.stdout[-2000:] + run.stderr[-2000:]
    return run.returncode, ldap_changes(run.stdout)


def test_dump_of_the_lab_plans_nothing(ldap_args: list[str], tmp_path: Path) -> None:
    # The lab holds its data file (site.yml reconciled it); an entry an earlier suite left
    # changed is not counted against the dump below.
    _, before = plan(DATA_FILE, ldap_args)
    touched = {line.split(" ", 1)[1].split(",", 1)[0].split("=", 1)[1] for line in before}
    data = dump(ldap_args, tmp_path / "dump.yaml")
    original = load(DATA_FILE).data
    # An unchanged directory dumps to the records it was loaded from.
    same = [m for m in original["mailboxes"] if m["address"] not in touched]
    assert [m for m in data["mailboxes"] if m["address"] not in touched] == same
    assert len(same) > 100
    if not before:
        assert data["units"] == original["units"]
    _, changes = plan(tmp_path / "dump.yaml", ldap_args)
    assert changes == []


@pytest.fixture
def hand_changed(ldap_args: list[str]) -> Iterator[dict[str, Any]]:
    """Three hand changes with the reconciler's account: a title, an alias, a suspension."""
    from mailgov.live import connect

    raw = load(DATA_FILE).data
    org = raw["organization"]
    busy = {u.get("head") for u in raw["units"]} | {
        x for u in raw["units"] for x in (u.get("mailbox") or {}).get("delegates", [])}
    protected = set(raw["policy"].get("protected", []))
    # The last plain staff records: the lab's test passwords go to the first ones of the file.
    plain = [m for m in raw["mailboxes"] if m.get("state", "active") == "active"
             and m.get("kind", "personal") == "personal" and m.get("role", "staff") == "staff"
             and m["address"] not in busy | protected and "suspended" not in m]
    a, b, c = plain[-1], plain[-2], plain[-3]
    people = f"ou=people,{org['base_dn']}"
    secret = Path(ldap_args[ldap_args.index("--password-file") + 1]).read_text().strip()
    conn = connect(ldap_args[1], f"cn=mailgov,ou=services,{org['base_dn']}", secret,
                   ldap_args[-1], 10)
    alias = f"{b['address']}.tay@{org['domain']}"
    title = "Phó Trưởng phòng (sửa tay)"
    undo: list[tuple[str, dict[str, Any]]] = []
    try:
        for dn, change, back in (
            (f"uid={a['address']},{people}", {"title": [(MODIFY_REPLACE, [title])]},
             {"title": [(MODIFY_REPLACE, [a["title"]] if a.get("title") else [])]}),
            (f"uid={b['address']},{people}", {"mailAlias": [(MODIFY_ADD, [alias])]},
             {"mailAlias": [(MODIFY_DELETE, [alias])]}),
            (f"uid={c['address']},{people}",
             {"pwdAccountLockedTime": [(MODIFY_REPLACE, ["000001010000Z"])]},
             {"pwdAccountLockedTime": [(MODIFY_REPLACE, [])]}),
        ):
            assert conn.modify(dn, change), (dn, conn.result)
            undo.append((dn, back))
        yield {"title": (a["address"], title), "alias": (b["address"], alias),
               "suspended": c["address"]}
    finally:
        for dn, back in reversed(undo):
            assert conn.modify(dn, back), (dn, conn.result)
        conn.unbind()


def test_dump_shows_a_hand_change_and_plans_nothing(ldap_args: list[str], tmp_path: Path,
                                                    hand_changed: dict[str, Any]) -> None:
    # The data the directory was loaded from no longer matches: the plan would undo the
    # hand changes (what makes the next assertions mean something).
    _, undoing = plan(DATA_FILE, ldap_args)
    hand = {hand_changed["title"][0], hand_changed["alias"][0], hand_changed["suspended"]}
    assert hand <= {line.split(" ", 1)[1].split(",", 1)[0].split("=", 1)[1]
                    for line in undoing}, undoing
    data = dump(ldap_args, tmp_path / "dump.yaml")
    boxes = {m["address"]: m for m in data["mailboxes"]}
    who, title = hand_changed["title"]
    assert boxes[who]["title"] == title
    who, alias = hand_changed["alias"]
    assert alias.split("@")[0] in boxes[who]["aliases"]
    who = hand_changed["suspended"]
    assert boxes[who]["state"] == "suspended"
    assert boxes[who]["suspended"]["request"] == REQUEST
    _, changes = plan(tmp_path / "dump.yaml", ldap_args)
    assert changes == []


def test_import_of_the_providers_slapcat_plans_nothing(
        ldap_args: list[str], tmp_path: Path, host_run: Callable[..., Result]) -> None:
    org = load(DATA_FILE).data["organization"]
    export = host_run("mail1", f"slapcat -b {org['base_dn']}")
    assert export.rc == 0, export.stderr[-1000:]
    ldif = tmp_path / "provider.ldif"
    ldif.write_text(export.stdout, encoding="utf-8")
    out = tmp_path / "imported.yaml"
    run = mailgov("import-ldif", str(ldif), "--request", REQUEST, "--it-unit",
                  org["it_unit"], "--org-name", org["name"], "-o", str(out))
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    imported = load(out).data
    assert imported["organization"]["domain"] == org["domain"]
    assert imported["organization"]["base_dn"] == org["base_dn"]
    assert len(imported["mailboxes"]) > 100
    # what a plain LDIF cannot say (the delegates' groups) is drift, reported and left alone
    _, changes = plan(out, ldap_args)
    assert changes == []
