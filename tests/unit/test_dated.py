"""Dated changes (issue 14, item 4): a future date schedules a suspension, its end, a cancel
or a rename; the plan lists it under "scheduled" and the plan of its day applies it."""

from __future__ import annotations

import copy
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from mailgov.model import build
from mailgov.plan import plan
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
