"""Audit: which writes the reconciler made from which commit, and a record's life in git
(issue 16.4). The lab proof with a real access log is tests/lab/test_audit.py."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from mailgov import audit, layout
from mailgov.lock import ReconcileLock, audit_fields

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "mailboxes.yaml"
BASE = "dc=monre,dc=gov,dc=vn"
ME = f"cn=mailgov,ou=services,{BASE}"
ROOT_DN = "gidNumber=0+uidNumber=0,cn=peercred,cn=external,cn=auth"
LOCK = f"cn=reconcile-lock,ou=services,{BASE}"
DN = f"uid=natuan,ou=people,{BASE}"


def t(minute: int) -> datetime:
    return datetime(2026, 12, 7, 3, minute, tzinfo=UTC)


def lock_add(minute: int, value: str, who: str = ME) -> audit.Write:
    return audit.Write(t(minute), "add", LOCK, who, (f"description:+ {value}",))


def test_audit_fields_are_one_safe_suffix() -> None:
    assert audit_fields("abc123", "https://git/mr/12") == ";commit=abc123;ref=https://git/mr/12"
    assert audit_fields(None, None) == ""
    # A reference cannot forge another field of the lock value.
    assert audit_fields("c", "x;commit=evil\n") == ";commit=c;ref=x_commit_evil_"


def test_lock_value_carries_the_audit_fields() -> None:
    lock = ReconcileLock(SimpleNamespace(), BASE, owner="ci@runner pid 1",  # type: ignore[arg-type]
                         audit=audit_fields("abc123", "MR!12"))
    value = lock._new_value()
    assert value.endswith(";commit=abc123;ref=MR!12")
    assert audit._run_of(value) == audit.Run("abc123", "MR!12", "ci@runner pid 1")


def test_writes_are_tied_to_the_run_that_held_the_lock() -> None:
    locks = [lock_add(0, "owner=ci;token=1;commit=c1;ref=MR!1"),
             audit.Write(t(5), "delete", LOCK, ME),
             lock_add(10, "owner=ci;token=2;commit=c2;ref=MR!2"),
             audit.Write(t(12), "modify", LOCK, ME,
                         ("description:- owner=ci;token=2;commit=c2;ref=MR!2",
                          "description:+ owner=ci;token=2;expires=x;commit=c2;ref=MR!2"))]
    writes = [audit.Write(t(1), "add", DN, ME, ("mail:+ natuan@monre.gov.vn",)),
              audit.Write(t(7), "modify", DN, ME, ("mailQuota:= 1",)),  # no lock held
              audit.Write(t(8), "modify", DN, ROOT_DN, ("mailQuota:= 999",)),
              audit.Write(t(13), "modify", DN, ME, ("mailQuota:= 2048",))]
    audit.attribute(writes, locks, ME)
    assert [(w.in_git, w.run.commit if w.run else None) for w in writes] == [
        (True, "c1"), (False, None), (False, None), (True, "c2")]
    assert writes[0].author() == "reconciler (commit c1, request MR!1)"
    assert writes[1].author().startswith("OUTSIDE GIT: cn=mailgov")
    assert "no apply running" in writes[1].author()
    assert writes[2].author() == f"OUTSIDE GIT: {ROOT_DN}"


def test_another_account_holding_a_lock_does_not_make_it_the_reconciler() -> None:
    locks = [lock_add(0, "owner=x;commit=c1", who=ROOT_DN)]
    writes = [audit.Write(t(1), "modify", DN, ROOT_DN, ("title:= x",))]
    audit.attribute(writes, locks, ME)
    assert not writes[0].in_git


def test_changes_hide_passwords_and_skip_bookkeeping() -> None:
    w = audit.Write(t(1), "modify", DN, ROOT_DN,
                    ("userPassword:= {ARGON2}secret-hash", "mailQuota:= 999",
                     "modifiersName:= x", "modifyTimestamp:= 2026"))
    assert w.changes() == "userPassword=(hidden), mailQuota=999"
    assert "secret-hash" not in str(w.to_dict())
    login = audit.Write(t(2), "modify", DN, ROOT_DN,
                        ("pwdLastSuccess:= 20261207", "modifiersName:= x"))
    assert login.bookkeeping and not w.bookkeeping


def test_time_of_access_log_records() -> None:
    assert audit._time("20261207031501.000012Z") == datetime(2026, 12, 7, 3, 15, 1, 12,
                                                            tzinfo=UTC)
    assert audit._time("20261207031501Z") == datetime(2026, 12, 7, 3, 15, 1, tzinfo=UTC)


def test_drift_section_names_the_author() -> None:
    change = SimpleNamespace(dn=DN, old_dn=None, subject="natuan@monre.gov.vn",
                             kind="modify")
    plan = SimpleNamespace(changes=[change], drift=[])
    w = audit.Write(t(8), "modify", DN, ROOT_DN, ("mailQuota:= 999",))
    text = audit.drift_section(plan, {DN.lower(): w})
    assert f"last written outside git by `{ROOT_DN}` at 2026-12-07 03:08:00 UTC" in text
    assert "mailQuota=999" in text
    assert audit.drift_section(plan, {}) == ""


# --------------------------------------------------------------------------- git history


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=Lê Văn An",
                           "-c", "user.email=an@monre.gov.vn", *args], capture_output=True,
                          text=True, check=True, timeout=60).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    data = tmp_path / "data" / "mailboxes.yaml"
    data.write_bytes(SAMPLE.read_bytes())
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "the sample")
    return data


def edit(data: Path, old: str, new: str) -> None:
    text = data.read_text(encoding="utf-8")
    assert old in text
    data.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_git_history_follows_a_record_through_a_rename_and_a_split(repo: Path) -> None:
    edit(repo, "    title: Chuyên viên chính\n    created: 2016-10-03\n",
         "    title: Trưởng phòng\n    created: 2016-10-03\n")
    git(repo.parent.parent, "commit", "-qam", "natuan is promoted")
    layout.split(repo)  # the per-unit layout: the record now lives in data/units/vpb.yaml
    git(repo.parent.parent, "add", "-A")
    git(repo.parent.parent, "commit", "-qm", "split per unit")
    edit(repo.parent / "units" / "vpb.yaml", "  - address: natuan\n",
         "  - address: natuan.vpb\n    renamed_from: natuan\n")
    git(repo.parent.parent, "commit", "-qam", "rename")
    events = audit.git_history(repo, "natuan.vpb", 3)
    assert [e.subject for e in events] == ["the sample", "natuan is promoted", "rename"]
    assert events[0].what.startswith("created in the data (request 285/QĐ-CNTT)")
    assert events[1].what == 'title: "Chuyên viên chính" → "Trưởng phòng"'
    assert 'address: "natuan" → "natuan.vpb"' in events[2].what
    assert all(e.author == "Lê Văn An" for e in events)
    assert audit.history_dns(events, "natuan.vpb", f"ou=people,{BASE}") == {
        f"uid=natuan,ou=people,{BASE}", f"uid=natuan.vpb,ou=people,{BASE}"}


def test_git_history_outside_git_is_a_clear_error(tmp_path: Path) -> None:
    data = tmp_path / "mailboxes.yaml"
    data.write_bytes(SAMPLE.read_bytes())
    with pytest.raises(audit.AuditError, match="git rev-parse"):
        audit.git_history(data, "natuan", 3)


def test_history_command_from_git_alone(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mailgov.cli import main

    edit(repo, "    title: Chuyên viên chính\n    created: 2016-10-03\n",
         "    title: Trưởng phòng\n    created: 2016-10-03\n")
    git(repo.parent.parent, "commit", "-qam", "natuan is promoted")
    assert main(["history", "natuan@monre.gov.vn", "--data", str(repo)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "natuan@monre.gov.vn (id 3)"
    assert out[3].endswith('Lê Văn An: title: "Chuyên viên chính" → "Trưởng phòng"  '
                           "[natuan is promoted]")
    assert out[-1] == ("  access log not read: give --ldap-uri (with --password-file, "
                       "--ca-file)")
    # Bad input: a clear error, exit 2, no traceback.
    assert main(["history", "nobody", "--data", str(repo)]) == 2
    assert "nobody: no such mailbox" in capsys.readouterr().err
    assert main(["history", "natuan@example.org", "--data", str(repo)]) == 2
    assert "not at monre.gov.vn" in capsys.readouterr().err
