"""Audit on the real provider (issue 16.4): the accesslog overlay records every write; an apply
is tied to its data commit and request; a hand-made write shows up with its author in the next
plan and in `mailgov history`; only the reconciler's accounts may read the log."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import DATA_FILE, LAB_DIR, REPO, LabHost, Result, ldapi
from ldap3 import BASE, Connection

from mailgov.live import connect

pytestmark = pytest.mark.lab
MAILGOV = REPO / ".venv" / "bin" / "mailgov"
ROOT_DN = "gidNumber=0+uidNumber=0,cn=peercred,cn=external,cn=auth"
NEW_TITLE = "Phó Trưởng phòng (kiểm toán)"
REF = "MR!16"


@pytest.fixture(scope="module")
def provider(lab_hosts: dict[str, LabHost]) -> str:
    return f"ldap://{lab_hosts['mail1'].addr}"


def live_args(provider: str, account: str) -> list[str]:
    return ["--ldap-uri", provider, "--ca-file", str(LAB_DIR / "pki" / "ca.crt"),
            "--bind-dn", f"cn={account},ou=services,dc=monre,dc=gov,dc=vn",
            "--password-file", str(LAB_DIR / "secrets" / f"ldap-{account}")]


def mailgov(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(MAILGOV), *args], capture_output=True, text=True, timeout=600,
                          check=False)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=Đầu mối CNTT",
                           "-c", "user.email=cntt@monre.gov.vn", *args], capture_output=True,
                          text=True, check=True, timeout=60).stdout


@pytest.fixture
def repo(tmp_path: Path, provider: str) -> Iterator[Path]:
    """The lab's data in a git repository (an agency's); the lab is put back afterwards."""
    repo = tmp_path / "mailgov-data"
    (repo / "data").mkdir(parents=True)
    shutil.copy(DATA_FILE, repo / "data" / "mailboxes.yaml")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "the data as applied")
    yield repo / "data" / "mailboxes.yaml"
    back = mailgov("apply", str(DATA_FILE), *live_args(provider, "mailgov"), "--lock-wait",
                   "60", "--confirm")
    assert back.returncode == 0, f"putting the lab back failed: {back.stderr[-1500:]}"


def person(data: dict[str, Any]) -> dict[str, Any]:
    return next(m for m in data["mailboxes"] if m.get("title")
                and m.get("state", "active") == "active" and m.get("kind", "personal")
                == "personal" and m.get("role", "staff") == "staff")


def test_hand_made_write_shows_its_author_in_plan_and_history(
        repo: Path, provider: str, host_run: Callable[..., Result],
        data: dict[str, Any]) -> None:
    box = person(data)
    local, base_dn = box["address"], data["organization"]["base_dn"]
    address = f"{local}@{data['organization']['domain']}"
    dn = f"uid={local},ou=people,{base_dn}"
    # A reviewed change from git, applied by the reconciler with its request reference.
    text = repo.read_text(encoding="utf-8")
    at = text.index(f"- address: {local}\n")
    title = re.compile(r"^(\s+)title: .*$", re.MULTILINE).search(text, at)
    assert title
    repo.write_text(text[:title.start()] + f"{title.group(1)}title: {NEW_TITLE}"
                    + text[title.end():], encoding="utf-8")
    git(repo.parent.parent, "commit", "-qam", f"{local}: new title")
    commit = git(repo.parent.parent, "rev-parse", "HEAD").strip()
    applied = mailgov("apply", str(repo), *live_args(provider, "mailgov"), "--request-ref",
                      REF, "--lock-wait", "60", "--confirm")
    assert applied.returncode == 0, applied.stdout[-2000:] + applied.stderr[-2000:]

    # An administrator changes the quota by hand on the provider, outside git.
    quota = str(box.get("quota_mb", 2048) * 1024 + 1024)
    ldif = f"dn: {dn}\\nchangetype: modify\\nreplace: mailQuota\\nmailQuota: {quota}\\n"
    hand = ldapi(host_run, f"printf '{ldif}' | ldapmodify")
    assert hand.rc == 0, hand.stderr

    # The next plan (the read-only planner's) puts it back and names the author.
    plan = mailgov("plan", str(repo), *live_args(provider, "planner"))
    assert plan.returncode == 4, plan.stdout[-2000:] + plan.stderr[-2000:]
    assert "### Drift: written outside git (the provider's access log)" in plan.stdout
    line = next((x for x in plan.stdout.splitlines()
                 if x.startswith(f"- `{address}` (modify): ")), "")
    assert f"last written outside git by `{ROOT_DN}`" in line, plan.stdout[-2000:]
    assert f"mailQuota={quota}" in line and "the plan puts the data back" in line

    # History: the commit and the reconciler's write tied to it, and the hand-made write.
    hist = mailgov("history", local, "--data", str(repo), *live_args(provider, "planner"))
    assert hist.returncode == 0, hist.stderr
    out = hist.stdout
    assert f"{commit[:12]}  Đầu mối CNTT: title: " in out and f'→ "{NEW_TITLE}"' in out
    ours = [x for x in out.splitlines() if f"modify {dn}: title=" in x]
    assert ours and ours[-1].endswith(f"by reconciler (commit {commit[:12]}, request {REF})"), \
        out
    theirs = [x for x in out.splitlines() if f"modify {dn}: mailQuota={quota}" in x]
    assert theirs and theirs[-1].endswith(f"by OUTSIDE GIT: {ROOT_DN}"), out
    assert out.rindex(ours[-1]) < out.rindex(theirs[-1])  # in the order they were made
    # Nothing made by hand is called the reconciler's, and no password value is shown.
    assert "{ARGON2}" not in out and "{SSHA}" not in out


@pytest.mark.parametrize("account", ["postfix", "dovecot", "replicator"])
def test_only_the_reconcilers_accounts_read_the_log(provider: str, account: str) -> None:
    secret = (LAB_DIR / "secrets" / f"ldap-{account}").read_text().strip()
    conn: Connection = connect(provider, f"cn={account},ou=services,dc=monre,dc=gov,dc=vn",
                               secret, str(LAB_DIR / "pki" / "ca.crt"))
    try:
        conn.search("cn=accesslog", "(objectClass=*)", BASE, attributes=["*"])
        assert conn.entries == [] and conn.result["description"] == "noSuchObject", conn.result
        planner = (LAB_DIR / "secrets" / "ldap-planner").read_text().strip()
        conn.rebind("cn=planner,ou=services,dc=monre,dc=gov,dc=vn", planner)
        conn.search("cn=accesslog", "(objectClass=*)", BASE, attributes=["*"])
        assert len(conn.entries) == 1, conn.result
    finally:
        conn.unbind()
