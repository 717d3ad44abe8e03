"""`mailgov propose` (issue 17 item 4): a patch against the data file, never an apply.

Fixture: tests/data/usage (see tests/unit/test_usage.py). On 2026-12-07 pmhieu's initial
password (since 11-20, deadline 5 days) is overdue and nvquan (admin, last login 08-01) is
inactive beyond the 90 days; natuan, ptminh and ntlan logged in within them.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest

from mailgov import proposals, usage
from mailgov.cli import main
from mailgov.validate import validate

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "usage"
SNAP = DATA / "usage-2026-12-07.json"


def checked(path: Path) -> object:
    result = validate(str(path), today=date(2026, 12, 7))
    assert result.ok, result.problems
    return result


def test_findings() -> None:
    d = checked(DATA / "data.yaml").directory  # type: ignore[attr-defined]
    found = proposals.find(d, usage.load(SNAP))
    assert [(p.address, p.finding) for p in found] == [("pmhieu", "initial_password"),
                                                       ("nvquan", "inactive")]
    assert found[1].reason == "Không đăng nhập quá 90 ngày (mailgov propose)"


def test_no_figures_protected_and_young_mailboxes_are_not_proposed() -> None:
    d = checked(DATA / "data.yaml").directory  # type: ignore[attr-defined]
    doc = json.loads(SNAP.read_text())
    del doc["mailboxes"]["nvquan"]  # its host was not collected: no reason to suspend
    assert [p.address for p in proposals.find(d, usage.parse(doc))] == ["pmhieu"]
    doc = json.loads(SNAP.read_text())
    doc["mailboxes"]["natuan"]["last_login"] = None
    doc["mailboxes"]["natuan"]["login_days"] = []
    doc["date"] = "2019-04-01"  # natuan was created 2019-03-04: not 90 days old yet
    doc["mailboxes"]["pmhieu"]["initial_password"] = None
    assert "natuan" not in [p.address for p in proposals.find(d, usage.parse(doc))]
    doc["date"] = "2019-06-02"  # 90 days after the creation: proposed
    assert "natuan" in [p.address for p in proposals.find(d, usage.parse(doc))]


def test_patch_applies_and_leaves_the_request_to_the_admin(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    target = repo / "data" / "mailboxes.yaml"
    shutil.copy(DATA / "data.yaml", target)
    before = hashlib.sha256(target.read_bytes()).hexdigest()
    patch = tmp_path / "p.patch"
    code = main(["propose", str(target), "--snapshot", str(SNAP), "--today", "2026-12-07",
                 "--out", str(patch)])
    err = capsys.readouterr().err
    assert code == 0
    assert "1 inactive, 1 initial password overdue; 2 in the patch" in err
    assert hashlib.sha256(target.read_bytes()).hexdigest() == before  # never applied
    text = patch.read_text()
    assert text.count("+    state: suspended\n") == 2
    assert ("+    suspended: { date: 2026-12-07, reason: \"Chưa đổi mật khẩu ban đầu quá 5 "
            "ngày (mailgov propose)\", request: SỐ-VĂN-BẢN }") in text
    # Paths relative to the repository root as the admin runs it there: rewrite for this one.
    text = text.replace(f"a/{target}", "a/data/mailboxes.yaml").replace(
        f"b/{target}", "b/data/mailboxes.yaml")
    patch.write_text(text)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "apply", str(patch)], cwd=repo, check=True)
    result = validate(str(target), today=date(2026, 12, 7))
    # Not valid until the admin writes the decision number: both placeholders refused.
    assert [(p.rule, p.path) for p in result.problems] == [
        ("MG105", ("mailboxes", 2, "suspended", "request")),
        ("MG105", ("mailboxes", 7, "suspended", "request"))]
    target.write_text(target.read_text().replace("SỐ-VĂN-BẢN", "12/QĐ-TCCB"))
    d = checked(target).directory  # type: ignore[attr-defined]
    states = {m.address: m.state for m in d.mailboxes}
    assert states["pmhieu"] == states["nvquan"] == "suspended"
    assert d.mailboxes[2].suspended.reason.startswith("Chưa đổi mật khẩu ban đầu")


def test_a_head_is_proposed_with_a_warning(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(SNAP.read_text())
    doc["mailboxes"]["ptminh"].update(last_login=None, login_days=[])
    snap = tmp_path / "usage-2026-12-07.json"
    snap.write_text(json.dumps(doc))
    assert main(["propose", str(DATA / "data.yaml"), "--snapshot", str(snap), "--today",
                 "2026-12-07", "--out", str(tmp_path / "p.patch")]) == 0
    err = capsys.readouterr().err
    assert "mailgov: warning: ptminh: head of unit vpb: name another head" in err


def test_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "p.patch"
    for snap, today, message in ((tmp_path / "none.json", "2026-12-07", "no such snapshot"),
                                 (SNAP, "2026-12-01", "after today")):
        code = main(["propose", str(DATA / "data.yaml"), "--snapshot", str(snap), "--today",
                     today, "--out", str(out)])
        err = capsys.readouterr().err
        assert code == 2 and message in err and not out.exists()
