"""mailgov.report_plan (Markdown/JSON of a plan) and `mailgov plan` / `dump-live` end to end
against saved live states (no server)."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from mailgov.cli import EXIT_CHANGES, EXIT_OK, EXIT_PROBLEMS, EXIT_REFUSED, EXIT_USAGE, main
from mailgov.live import save_json
from mailgov.model import build
from mailgov.plan import Change, Plan, plan
from mailgov.report_plan import describe, render_json, render_markdown

sys.path.insert(0, str(Path(__file__).parent))
from test_plan import BASE, D, _base, cancel, live_of, set_, suspend

TODAY = date(2026, 11, 29)


def make(edits: list[Any], live_edits: list[Any] = (), **kw: Any) -> Plan:  # type: ignore[assignment]
    want = _base()
    for e in edits:
        e(want)
    live = live_of(_base())
    for e in live_edits:
        e(live)
    return plan(build(want), live, today=TODAY, **kw)


def test_no_changes() -> None:
    text = render_markdown(make([]))
    assert text.startswith("### mailgov plan: no changes")
    assert "|" not in text


def test_counts_table_comes_first_then_units() -> None:
    text = render_markdown(make([set_("ttlan", quota_mb=4096), cancel("natuan2")]),
                           unit_names={"vpb": "Văn phòng Bộ"})
    lines = text.splitlines()
    assert lines[0] == "### mailgov plan: 3 changes"
    table = lines.index("| change | count |")
    assert "| modify | 1 |" in lines and "| cancel | 1 |" in lines
    assert "| **total changes** | **3** |" in lines
    assert table < lines.index("#### vpb — Văn phòng Bộ")
    assert f"- `ttlan{D}`: mailQuota 2097152 → 4194304" in lines
    cancel_line = next(x for x in lines if x.startswith(f"- `natuan2{D}`"))
    assert "cancelled" in cancel_line and "(retired, 77/QĐ-TCCB, 2026-11-01)" in cancel_line


def test_refusals_on_top_in_bold() -> None:
    p = make([cancel("ptminh")])
    text = render_markdown(p)
    first = text.splitlines()[2]
    assert first.startswith("**Refused: MG602 protected account") and "postmaster" in first
    assert text.index("Refused") < text.index("| change | count |")


def test_long_lists_are_folded() -> None:
    p = make([set_(f"nv{i}", quota_mb=4096) for i in range(12)])
    text = render_markdown(p)
    assert "<details><summary>modify (12)</summary>" in text
    assert "</details>" in text
    assert "**modify" not in text


def test_short_lists_are_not_folded() -> None:
    text = render_markdown(make([set_(f"nv{i}", quota_mb=4096) for i in range(3)]))
    assert "<details>" not in text
    assert "**modify (3)**" in text


def test_output_is_capped() -> None:
    text = render_markdown(make([set_(f"nv{i}", quota_mb=4096) for i in range(30)]),
                           max_lines=10)
    assert "cut at 10 lines" in text


def test_drift_section() -> None:
    def ghost(live: dict[str, Any]) -> None:
        live[f"uid=ghost,ou=people,{BASE}"] = {"mail": (f"ghost{D}",)}

    text = render_markdown(make([], [ghost]))
    assert "Drift: 1 entry" in text and "reported only" in text
    assert f"`ghost{D}`: not in the data" in text
    assert "removed by this plan" in render_markdown(make([], [ghost], remove_drift=True))


@pytest.mark.parametrize(("change", "words"), [
    (Change("suspend", "uid=a", f"a{D}", "vpb",
            replace={"pwdAccountLockedTime": ("000001010000Z",)}), "login locked, mail still"),
    (Change("restore", "uid=a", f"a{D}", "vpb", delete={"pwdAccountLockedTime": ()},
            replace={"mailEnabled": ("TRUE",)}), "restored"),
    (Change("add_member", "cn=g", "g", "vpb", add={"member": ("uid=a,ou=people",) * 5}),
     "+5 member(s): a, a, a … +2"),
    (Change("modify", "uid=a", f"a{D}", "vpb", delete={"mailForwardingAddress": ()},
            before={"mailForwardingAddress": ("x@mard.gov.vn",)}),
     "mailForwardingAddress removed (x@mard.gov.vn)"),
    (Change("rename", "uid=b", f"b{D}", "vpb", old_dn="uid=a", before={"uid": ("a",)}),
     "renamed from a"),
    (Change("purge", "uid=a", f"a{D}", "vpb", store="/var/vmail/d/a"), "/var/vmail/d/a"),
])
def test_describe(change: Change, words: str) -> None:
    assert words in describe(change)


def test_json_is_the_plan() -> None:
    p = make([cancel("natuan2")])
    doc = json.loads(render_json(p))
    assert doc["ok"] is True
    assert doc["counts"] == {"cancel": 1, "remove_member": 1}
    assert doc["changes"][0]["replace"]["mailEnabled"] == ["FALSE"]
    assert doc["changes"][1]["delete"]["member"] == [f"uid=natuan2,ou=people,{BASE}"]


# --- the command ---------------------------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    data = _base()
    # a valid data file: the filler names must follow the naming policy, give them exemptions
    for m in data["mailboxes"]:
        if m["address"].startswith("nv"):
            m["naming_exemption"] = {"reason": "Thử nghiệm", "request": "1/QĐ-VPB"}
    data_file = tmp_path / "mailboxes.yaml"
    data_file.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False),
                         encoding="utf-8")
    live_file = tmp_path / "live.json"
    save_json(live_of(data), live_file, BASE)
    return data_file, live_file


def _edit(path: Path, edit: Any) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def cli(*args: str) -> int:
    return main(["plan", *args, "--today", TODAY.isoformat()])


def test_cli_no_changes(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    data, live = files
    assert cli(str(data), "--live-json", str(live)) == EXIT_OK
    assert "no changes" in capsys.readouterr().out


def test_cli_changes_pending(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
                             ) -> None:
    data, live = files
    _edit(data, suspend("natuan2"))
    assert cli(str(data), "--live-json", str(live)) == EXIT_CHANGES
    assert f"`natuan2{D}`: suspended" in capsys.readouterr().out
    assert cli(str(data), "--live-json", str(live), "--format", "json") == EXIT_CHANGES
    assert json.loads(capsys.readouterr().out)["counts"] == {"suspend": 1}


def test_cli_refused(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    data, live = files
    for i in range(11):  # above the floor (10) of MG601
        _edit(data, cancel(f"nv{i}"))
    assert cli(str(data), "--live-json", str(live)) == EXIT_REFUSED
    assert "**Refused: MG601 mass change" in capsys.readouterr().out
    assert cli(str(data), "--live-json", str(live), "--allow-mass-change") == EXIT_CHANGES
    assert "OVERRIDE of MG601 without a reason" in capsys.readouterr().out


def test_cli_override_names_its_reason_in_the_plan_text(
        files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    data, live = files
    for i in range(11):  # above the floor (10) of MG601
        _edit(data, cancel(f"nv{i}"))
    assert cli(str(data), "--live-json", str(live), "--allow-mass-change",
               "QĐ 12/QĐ-BNNMT: unit closed") == EXIT_CHANGES
    assert "_Note: OVERRIDE of the mass-change caps: QĐ 12/QĐ-BNNMT: unit closed_" in \
        capsys.readouterr().out


def test_cli_bad_data_never_reaches_the_planner(files: tuple[Path, Path],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    data, live = files
    _edit(data, set_("natuan2", unit="nosuch"))
    assert cli(str(data), "--live-json", str(live)) == EXIT_PROBLEMS
    captured = capsys.readouterr()
    assert "MG203" in captured.out
    assert "no plan was made" in captured.err
    assert "mailgov plan:" not in captured.out


@pytest.mark.parametrize(("args", "needle"), [
    ([], "--ldap-uri"),
    (["--live-json", "/nonexistent.json"], "cannot read"),
    (["--ldap-uri", "ldaps://127.0.0.1:1", "--password-file", "/nonexistent"], "password-file"),
    (["--ldap-uri", "ldaps://127.0.0.1:1", "--password-file", __file__, "--ca-file",
      "/nonexistent"], "CA file"),
])
def test_cli_usage_and_connection_errors(files: tuple[Path, Path], capsys: pytest.CaptureFixture[
        str], args: list[str], needle: str) -> None:
    data, _ = files
    assert cli(str(data), *args) == EXIT_USAGE
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_dump_live_needs_a_source(files: tuple[Path, Path], tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    data, _ = files
    assert main(["dump-live", str(data), "-o", str(tmp_path / "x.json")]) == EXIT_USAGE
    assert "--ldap-uri" in capsys.readouterr().err

