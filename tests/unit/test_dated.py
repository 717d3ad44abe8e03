"""Dated changes (issue 14, item 4): a future date schedules a suspension, its end, a cancel
or a rename; the plan lists it under "scheduled" and the plan of its day applies it."""

from __future__ import annotations

import copy
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from mailgov.directory import desired_entries
from mailgov.model import build
from mailgov.plan import normalise_dn, plan
from mailgov.report_plan import render_markdown
from mailgov.validate import validate
from tests.unit.test_plan import TODAY, _base, _box, live_of

D = "@monre.gov.vn"
CANCEL = {"date": "2026-12-15", "reason": "retired", "request": "77/QĐ-TCCB"}


def _kinds(p: Any) -> list[tuple[str, str]]:
    return [(c.kind, c.subject) for c in p.changes]


def test_a_future_cancel_does_nothing_before_its_day_and_applies_on_it() -> None:
    have = _base()
    live = live_of(have)
    want = copy.deepcopy(have)
    _box(want, "ttlan").update(state="cancelled", cancelled=CANCEL)
    before = plan(build(want), live, today=date(2026, 12, 14))
    assert before.ok and before.changes == ()
    assert before.scheduled == (f"2026-12-15 cancel ttlan{D} (retired, 77/QĐ-TCCB)",)
    text = render_markdown(before)
    assert "**Scheduled** (1; applied from their day):" in text
    assert f"- 2026-12-15 cancel ttlan{D} (retired, 77/QĐ-TCCB)" in text
    on = plan(build(want), live, today=date(2026, 12, 15))
    assert ("cancel", f"ttlan{D}") in _kinds(on) and on.scheduled == ()
    c = next(c for c in on.changes if c.kind == "cancel")
    assert c.reason == "retired, 77/QĐ-TCCB, 2026-12-15"


def test_a_suspension_with_an_end_is_history_after_it() -> None:
    have = _base()
    susp = {"date": "2026-12-01", "until": "2026-12-10", "reason": "Nghỉ phép",
            "request": "9/QĐ-VPB"}
    want = copy.deepcopy(have)
    _box(want, "ttlan").update(state="active", suspended=susp)
    live = live_of(have)
    p = plan(build(want), live, today=date(2026, 11, 30))
    assert p.changes == () and [s[:10] for s in p.scheduled] == ["2026-12-01", "2026-12-10"]
    p = plan(build(want), live, today=date(2026, 12, 1))
    assert _kinds(p) == [("suspend", f"ttlan{D}")]
    suspended = copy.deepcopy(have)
    _box(suspended, "ttlan").update(state="suspended", suspended={
        k: v for k, v in susp.items() if k != "until"})
    p = plan(build(want), live_of(suspended), today=date(2026, 12, 10))
    assert _kinds(p) == [("restore", f"ttlan{D}")]
    # and the record keeps the suspension (validation accepts it as history)
    assert plan(build(want), live, today=date(2027, 1, 1)).changes == ()


def test_a_dated_rename_waits_for_its_day() -> None:
    have = _base()
    want = copy.deepcopy(have)
    _box(want, "ttlan").update(address="tranlan", renamed_from=[
        {"address": "ttlan", "date": "2026-12-15", "request": "31/QĐ-VPB"}])
    live = live_of(have)
    assert plan(build(want), live, today=date(2026, 12, 14)).changes == ()
    p = plan(build(want), live, today=date(2026, 12, 15))
    assert ("rename", f"tranlan{D}") in _kinds(p)


def _problems(data: dict[str, Any], tmp_path: Path) -> list[str]:
    path = tmp_path / "d.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return [p.rule for p in validate(path, today=TODAY).problems if p.rule != "MG210"]


def test_validation_accepts_schedulable_dates_and_refuses_the_others(tmp_path: Path) -> None:
    data = _base()
    _box(data, "natuan2").update(state="cancelled", cancelled=CANCEL)
    assert _problems(data, tmp_path) == []
    data = _base()
    _box(data, "natuan2")["created"] = "2026-12-15"  # a creation cannot be scheduled
    assert _problems(data, tmp_path) == ["MG304"]
    data = _base()
    _box(data, "natuan2").update(state="suspended", suspended={
        "date": "2026-11-01", "until": "2026-12-01", "reason": "x", "request": "9/QĐ-VPB"})
    assert _problems(data, tmp_path) == ["MG303"]  # ends: say state active
    data = _base()
    _box(data, "natuan2").update(suspended={"date": "2026-11-01", "reason": "x",
                                          "request": "9/QĐ-VPB"})
    assert _problems(data, tmp_path) == ["MG303"]  # active, no end: still refused


# -- dated moves and domain switches (issue 14, item 4) -----------------------------------

MOVE = {"unit": "vpb", "date": "2026-12-15", "request": "40/QĐ-TCCB"}
NEW = "@mae.gov.vn"
SWITCH = {"domain": "monre.gov.vn", "primary_until": "2026-12-15", "until": "2027-12-15",
          "request": "35/2025/NĐ-CP"}


def test_a_dated_move_waits_for_its_day_and_cites_its_own_request() -> None:
    have = _base()
    want = copy.deepcopy(have)
    _box(want, "ttlan").update(unit="tcmt", moved_from=MOVE)
    live = live_of(have)
    before = plan(build(want), live, today=date(2026, 12, 14))
    assert before.ok and before.changes == ()
    line = f"2026-12-15 move ttlan{D} from unit vpb to tcmt (40/QĐ-TCCB)"
    assert before.scheduled == (line,)
    assert f"- {line}" in render_markdown(before)
    on = plan(build(want), live, today=date(2026, 12, 15))
    move = next(c for c in on.changes if c.subject == f"ttlan{D}")
    assert move.kind == "move" and move.reason == "40/QĐ-TCCB" and on.scheduled == ()
    # after the day the move is history: nothing more to do once applied
    assert plan(build(want), live_of(want), today=date(2027, 1, 1)).changes == ()


def test_a_dated_domain_switch_changes_nothing_before_its_day() -> None:
    have = _base()
    want = copy.deepcopy(have)
    want["organization"].update(domain="mae.gov.vn", alias_domains=[SWITCH])
    live = live_of(have)
    before = plan(build(want), live, today=date(2026, 12, 14))
    assert before.ok and before.changes == () and before.drift == ()
    assert before.scheduled == (
        "2026-12-15 primary domain monre.gov.vn -> mae.gov.vn (monre.gov.vn receives until "
        "2027-12-15) (35/2025/NĐ-CP)",
        "2027-12-15 alias domain monre.gov.vn stops receiving (35/2025/NĐ-CP)")
    on = plan(build(want), live, today=date(2026, 12, 15), allow_mass_change="35/2025/NĐ-CP")
    assert on.ok and on.scheduled == (
        "2027-12-15 alias domain monre.gov.vn stops receiving (35/2025/NĐ-CP)",)
    c = next(c for c in on.changes if c.subject == f"ttlan{NEW}")
    assert c.kind == "modify" and c.after is not None
    assert c.after["mail"] == (f"ttlan{NEW}",) and f"ttlan{D}" in c.after["mailAlias"]
    assert c.reason == "35/2025/NĐ-CP, domain monre.gov.vn -> mae.gov.vn"
    # without the override the day's plan trips the address cap, as an undated switch does
    assert any(r.startswith("MG609") for r in
               plan(build(want), live, today=date(2026, 12, 15)).refusals)


def test_domain_migrate_effective_writes_a_dated_switch(
        tmp_path: Path, capsys: Any) -> None:
    from mailgov.cli import main

    good = Path(__file__).resolve().parents[2] / "tests" / "data" / "good" / "example.yaml"
    path = tmp_path / "d.yaml"
    path.write_bytes(good.read_bytes())
    was = validate(path, today=TODAY).directory
    assert was is not None
    assert main(["domain", "migrate", "monre.gov.vn", "mae.gov.vn", "--effective",
                 "2026-12-15", "--keep-until", "2027-12-15", "--request", "35/2025/NĐ-CP",
                 "--data", str(path)]) == 0
    assert "from 2026-12-15" in capsys.readouterr().err
    org = yaml.safe_load(path.read_text(encoding="utf-8"))["organization"]
    assert org["domain"] == "mae.gov.vn"
    assert [{k: str(v) for k, v in a.items()} for a in org["alias_domains"]] == [SWITCH]
    d = validate(path, today=TODAY).directory
    assert d is not None
    live = {normalise_dn(e.dn): {**e.attributes, "objectClass": e.object_classes}
            for e in desired_entries(was, TODAY)}
    p = plan(d, live, today=date(2026, 12, 14))
    # (the cancelled mailbox's entry here lacks its recorded cancel time: not the switch's)
    assert [c for c in p.changes if c.subject != f"lthoa{D}"] == []
    assert p.scheduled[0].startswith("2026-12-15 primary domain")
    assert len(plan(d, live, today=date(2026, 12, 15), allow_mass_change="x").changes) > 5
    # a keep-until not after the switch: nothing written, MG229 says why
    path.write_bytes(good.read_bytes())
    assert main(["domain", "migrate", "monre.gov.vn", "mae.gov.vn", "--effective",
                 "2026-12-15", "--keep-until", "2026-12-15", "--data", str(path)]) == 1
    err = capsys.readouterr().err
    assert "MG229" in err and "`until` must be after `primary_until`" in err
    assert path.read_bytes() == good.read_bytes()


def _found(data: dict[str, Any], tmp_path: Path) -> list[tuple[str, int, str]]:
    path = tmp_path / "d.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return [(p.rule, p.line, p.message) for p in validate(path, today=TODAY).problems
            if p.rule != "MG210"]


def test_validation_of_dated_moves(tmp_path: Path) -> None:
    data = _base()
    _box(data, "natuan2").update(unit="vp", moved_from=MOVE)  # to come: accepted
    assert _found(data, tmp_path) == []
    data = _base()  # a past move from a unit gone since: history, accepted
    _box(data, "natuan2").update(moved_from={"unit": "old", "date": "2020-01-01"})
    assert _found(data, tmp_path) == []
    data = _base()
    _box(data, "natuan2").update(moved_from={"unit": "nowhere", "date": "2026-12-15"})
    [(rule, line, msg)] = _found(data, tmp_path)
    assert rule == "MG228" and line > 0 and "'nowhere', which is not a unit id" in msg
    data = _base()
    _box(data, "natuan2").update(moved_from={"unit": "tcmt", "date": "2026-12-15"})
    [(rule, _, msg)] = _found(data, tmp_path)
    assert rule == "MG228" and "names its own unit 'tcmt'" in msg
    data = _base()
    _box(data, "natuan2").update(moved_from={"unit": "vpb", "date": "2026-02-30"})
    assert [r for r, _, _ in _found(data, tmp_path)] == ["MG306"]


def test_validation_of_dated_domain_switches(tmp_path: Path) -> None:
    data = _base()
    data["organization"].update(domain="mae.gov.vn", alias_domains=[SWITCH])
    assert _found(data, tmp_path) == []
    data["organization"]["alias_domains"] = [SWITCH, {"domain": "monre.vn",
                                                      "primary_until": "2027-01-01"}]
    [(rule, _, msg)] = _found(data, tmp_path)
    assert rule == "MG229" and "a second domain switch is scheduled" in msg
    data["organization"]["alias_domains"] = [SWITCH | {"until": "2026-12-01"}]
    [(rule, _, msg)] = _found(data, tmp_path)
    assert rule == "MG229" and "before or when the switch to mae.gov.vn" in msg


def test_the_roles_get_the_domains_of_the_day(tmp_path: Path) -> None:
    """Before a dated switch Postfix and Dovecot keep the old primary (the directory does too);
    from its day the new one, with the old as an alias domain."""
    from mailgov.role_vars import load_facts

    good = Path(__file__).resolve().parents[2] / "tests" / "data" / "good" / "example.yaml"
    path = tmp_path / "d.yaml"
    path.write_text(good.read_text(encoding="utf-8").replace(
        "  domain: monre.gov.vn\n", "  domain: mae.gov.vn\n  alias_domains:\n"
        "    - { domain: monre.gov.vn, primary_until: 2026-12-15, until: 2027-12-15 }\n", 1),
        encoding="utf-8")
    org = load_facts(path, today=date(2026, 12, 14))["organization"]
    assert (org["domain"], org["alias_domains"]) == ("monre.gov.vn", [])
    org = load_facts(path, today=date(2026, 12, 15))["organization"]
    assert (org["domain"], org["alias_domains"]) == ("mae.gov.vn", ["monre.gov.vn"])


def test_a_unit_rename_cannot_be_scheduled(tmp_path: Path) -> None:
    data = _base()
    data["units"][1].update(abbr="mt", formerly=[{"abbr": "tcmt", "date": "2026-12-15"}])
    found = _found(data, tmp_path)
    assert [(r, m) for r, _, m in found] == [
        ("MG304", "unit 'tcmt': renamed from 'tcmt' on 2026-12-15, in the future (today is "
         "2026-11-29); a unit rename cannot be scheduled: record it on its day")]
    assert found[0][1] > 0
    data["units"][1]["formerly"][0]["date"] = "2026-11-01"
    assert _found(data, tmp_path) == []
