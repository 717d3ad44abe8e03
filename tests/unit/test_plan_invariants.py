"""The planner's invariants (docs/reconcile.md, "Invariants"), one test per way an ordinary
edit used to lose mail: each replays the edit found by the red-team of issue 10 and checks the
refusal's rule id and reason, or that the harmful change is simply not planned.

The live side is what a directory loaded from the original data holds (`live_of`), so every
case is "this pull request, against today's directory".
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from test_plan import BASE, TODAY, D, _base, _box, cancel, live_of, person, rename

from mailgov.archive import store_for
from mailgov.directory import IDENTITY, STORE_BY_ID
from mailgov.model import build
from mailgov.plan import Guards, Plan, normalise_dn, plan
from mailgov.problems import PLAN_RULES

Data = dict[str, Any]


def planned(have: Data, want: Data, live: dict[str, Any] | None = None, **kw: Any) -> Plan:
    return plan(build(want), live_of(have) if live is None else live, today=TODAY, **kw)


def rules(p: Plan) -> set[str]:
    return {r.split(" ", 1)[0].rsplit(": ", 1)[-1] for r in p.refusals}


def kinds(p: Plan, subject: str) -> list[str]:
    return [c.kind for c in p.changes if c.subject == subject]


def cancelled_base() -> Data:
    data = _base()
    cancel("natuan2")(data)  # cancelled 2026-11-01: inside its 180-day retention
    return data


# --- identity, not the address -------------------------------------------------------------


def test_a_freed_address_never_hands_the_old_mailbox_to_a_namesake() -> None:
    have = cancelled_base()
    want = copy.deepcopy(have)
    old = _box(want, "natuan2")
    want["mailboxes"].remove(old)  # the record deleted inside its retention ...
    want["mailboxes"].append({"address": "natuan2", "id": 500, "name": "Nguyễn Anh Tuấn",
                              "unit": "vpb"})  # ... and the address given to a namesake
    p = planned(have, want)
    assert {"MG603", "MG604"} <= rules(p)
    held = next(r for r in p.refusals if r.startswith("MG604"))
    assert "held in the directory by another mailbox (id 3" in held
    # Neither a restore of the old entry (its store, its password) nor a new entry there.
    assert kinds(p, f"natuan2{D}") == []


def test_deleting_a_record_inside_retention_is_refused_not_drift() -> None:
    have = cancelled_base()
    want = copy.deepcopy(have)
    want["mailboxes"].remove(_box(want, "natuan2"))
    located = plan(build(want), live_of(have), today=TODAY,
                   locate=lambda path: f"data.yaml:{len(path)}:1",
                   guards=Guards(remove_drift=True))
    refusal = next(r for r in located.refusals if "MG603" in r)
    assert refusal.startswith("data.yaml:1:1: MG603 natuan2@")
    assert "put the record back" in refusal
    assert [c.kind for c in located.changes if c.kind == "drift"] == []  # never deleted


def test_a_rename_keeps_the_store_and_the_id() -> None:
    have = _base()
    want = copy.deepcopy(have)
    rename("ttlan", "tranlan")(want)
    p = planned(have, want)
    assert p.ok
    changed = [c for c in p.changes if c.subject == f"tranlan{D}"]
    assert [c.kind for c in changed] == ["rename", "modify"]
    for c in changed:
        for part in (c.add, c.delete, c.replace):
            assert "mailHomeDirectory" not in part and IDENTITY not in part


def test_a_rename_found_by_id_even_without_renamed_from() -> None:
    have = _base()
    want = copy.deepcopy(have)
    _box(want, "ttlan")["address"] = "tranlan"  # no renamed_from: the id says who it is
    p = planned(have, want)
    assert [c.kind for c in p.changes if c.subject == f"tranlan{D}"] == ["rename", "modify"]
    assert not any(c.kind == "create" for c in p.changes)


def test_after_two_renames_a_namesake_at_the_first_address_gets_a_new_store() -> None:
    start = _base()
    first = copy.deepcopy(start)
    rename("ttlan", "tranlan")(first)
    second = copy.deepcopy(first)
    rename("tranlan", "lantt")(second)  # renamed_from holds one: ttlan is freed in the data
    second["mailboxes"].append({"address": "ttlan", "id": 600, "name": "Trần Thị Lan",
                                "unit": "tcmt"})
    live = live_of(first)  # the directory after the first rename was applied
    p = plan(build(second), live, today=TODAY)
    create = next(c for c in p.changes if c.kind == "create" and c.subject == f"ttlan{D}")
    assert create.add["mailHomeDirectory"] == (f"{STORE_BY_ID}/600",)
    homes = {v["mailHomeDirectory"][0] for v in live.values() if "mailHomeDirectory" in v}
    assert create.add["mailHomeDirectory"][0] not in homes
    # ttlan@ still reaches Trần Thị Lan (id 2) until the plan takes it away: refused.
    assert "MG605" in rules(p)


def test_swapping_two_namesakes_addresses_is_refused() -> None:
    have = _base()
    want = copy.deepcopy(have)
    a, b = _box(want, "natuan"), _box(want, "natuan2")
    a["address"], b["address"] = "natuan2", "natuan"
    a["aliases"] = []  # keep the data valid: tuan.na stays with the first one's record
    b["aliases"] = ["tuan.na"]
    p = planned(have, want)
    swaps = [r for r in p.refusals if r.startswith("MG604")]
    assert len(swaps) == 2 and all("rename one of them to a free address first" in r
                                   for r in swaps)
    assert not any(c.kind == "rename" for c in p.changes)


def test_an_alias_moving_to_another_person_is_refused() -> None:
    have = _base()
    want = copy.deepcopy(have)
    _box(want, "natuan")["aliases"] = []
    _box(want, "natuan2")["aliases"] = ["tuan.na"]
    p = planned(have, want)
    refusal = next(r for r in p.refusals if r.startswith("MG605"))
    assert f"tuan.na{D} (id:1 -> id:3)" in refusal


def test_an_existing_directory_without_ids_is_taken_over_without_moving_mail() -> None:
    """Entries made before ids: the first plan writes the id, and only the id."""
    data = _base()
    live = live_of(data)
    for key, attrs in live.items():
        if key.startswith("uid="):
            attrs.pop(IDENTITY)
            uid = attrs["uid"][0]
            attrs["mailHomeDirectory"] = (f"/var/vmail/monre.gov.vn/{uid}",)
    p = plan(build(data), live, today=TODAY)
    assert p.ok, p.refusals
    people = [c for c in p.changes if c.dn.startswith("uid=")]
    assert len(people) == len(data["mailboxes"])
    assert {c.kind for c in people} == {"modify"}
    for c in people:
        assert c.replace == {IDENTITY: c.after[IDENTITY]} and not c.add and not c.delete
    # ... and the next plan against the migrated directory is empty.
    for c in people:
        live[normalise_dn(c.dn)][IDENTITY] = c.replace[IDENTITY]
    assert plan(build(data), live, today=TODAY).changes == ()


# --- the rails come from outside the change ------------------------------------------------


def mass_cancel(data: Data, n: int = 11) -> None:  # above the floor (10)
    for i in range(n):
        cancel(f"nv{i}")(data)


def test_a_pull_request_cannot_loosen_the_share_that_judges_it() -> None:
    have = _base()
    want = copy.deepcopy(have)
    mass_cancel(want)
    want["policy"]["safety"]["max_disable_share"] = 1
    without_base = planned(have, want)
    assert "MG601" in rules(without_base)  # the file alone may only tighten (5 %)
    with_base = planned(have, want, base=build(have))
    assert {"MG601", "MG607"} <= rules(with_base)
    assert "max_disable_share 5% (floor 10, the base of the review)" in next(
        r for r in with_base.refusals if r.startswith("MG601"))


def test_a_shorter_protected_list_does_not_unprotect() -> None:
    have = _base()
    want = copy.deepcopy(have)
    want["policy"]["protected"] = []
    cancel("ptminh")(want)
    p = planned(have, want, base=build(have))
    assert "MG602" in rules(p)
    assert "postmaster" in next(r for r in p.refusals if r.startswith("MG602"))


def test_the_guards_changed_alone_pass() -> None:
    have = _base()
    want = copy.deepcopy(have)
    want["policy"]["safety"]["max_disable_share"] = 0.1
    p = planned(have, want, base=build(have))
    assert p.ok and p.changes == ()
    assert any("the guards change" in n for n in p.notes)


# --- units, lists and stores ----------------------------------------------------------------


def test_drift_removal_never_deletes_a_unit_mailbox_and_lists_count_in_the_rail() -> None:
    have = _base()
    want = copy.deepcopy(have)
    want["units"] = [u for u in want["units"] if u["id"] != "vpb"]
    for m in want["mailboxes"]:
        if m["unit"] == "vpb":
            m["unit"] = "cntt"
    p = planned(have, want, remove_drift=True)
    unit_dn = normalise_dn(f"ou=vpb,ou=units,{BASE}")
    assert unit_dn in {normalise_dn(c.dn) for c in p.drift}  # reported ...
    assert unit_dn not in {normalise_dn(c.dn) for c in p.changes}  # ... never deleted


def test_a_unit_id_renamed_with_its_abbr_kept_is_refused() -> None:
    have = _base()
    want = copy.deepcopy(have)
    unit = next(u for u in want["units"] if u["id"] == "tcmt")
    unit["id"], unit["abbr"] = "tcmt2", "tcmt"
    for u in want["units"]:
        if u.get("parent") == "tcmt":
            u["parent"] = "tcmt2"
    for m in want["mailboxes"]:
        if m["unit"] == "tcmt":
            m["unit"] = "tcmt2"
    p = planned(have, want)
    refusal = next(r for r in p.refusals if r.startswith("MG606"))
    assert f"address tcmt{D} would be held by 2 entries" in refusal


def test_addresses_held_twice_are_refused_in_address_order() -> None:
    """MG606 lists the addresses held twice sorted (the planner sorts only those now, not
    every address of the plan): vpb comes before tcmt in the file, tcmt@ first in the plan."""
    have = _base()
    assert [u["id"] for u in have["units"]][:2] == ["vpb", "tcmt"]
    want = copy.deepcopy(have)
    for old in ("vpb", "tcmt"):  # each renamed with its abbr kept: the address held twice
        unit = next(u for u in want["units"] if u["id"] == old)
        unit["id"], unit["abbr"] = f"{old}2", old
        for u in want["units"]:
            if u.get("parent") == old:
                u["parent"] = f"{old}2"
        for m in want["mailboxes"]:
            if m["unit"] == old:
                m["unit"] = f"{old}2"
            if m.get("sponsor") == old:
                m["sponsor"] = f"{old}2"
    p = planned(have, want)
    assert [r.split(" would")[0] for r in p.refusals if r.startswith("MG606")] == [
        f"MG606 address tcmt{D}", f"MG606 address vpb{D}"]


def test_every_plan_rule_is_documented() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "rules.md").read_text(encoding="utf-8")
    assert set(PLAN_RULES) <= set(re.findall(r"^\| (MG6\d\d) \|", doc, re.MULTILINE))


def test_cancelled_person_entry_is_not_recreated_after_its_purge() -> None:
    data = copy.deepcopy(_base())
    cancel("natuan2", "2025-01-01")(data)
    live = live_of(data)
    del live[person("natuan2")]
    d = build(data)
    natuan2 = next(m for m in d.mailboxes if m.address == "natuan2")
    p = plan(d, live, today=TODAY, archived={store_for(d, natuan2): "ab" * 32})
    assert kinds(p, f"natuan2{D}") == []


# --- the context a plan is made in (mailgov plan, mailgov apply, the modules) ---------------


def test_a_date_ahead_of_the_clock_is_refused_and_cancels_use_the_clock(tmp_path: Path) -> None:
    from datetime import timedelta

    import yaml

    from mailgov.reconcile import PlanContext
    from mailgov.validate import validate

    data = _base()
    for m in data["mailboxes"]:  # the fillers' names do not follow the naming policy
        m.setdefault("naming_exemption", {"reason": "Thử nghiệm", "request": "1/QĐ-VPB"})
    have = copy.deepcopy(data)
    cancel("natuan2")(data)
    path = tmp_path / "data.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    result = validate(path, today=TODAY)
    assert result.ok, [p.format() for p in result.problems]
    ahead = PlanContext.make(result, today=TODAY + timedelta(days=400), base_path=None,
                             clock=TODAY)
    p = ahead.plan(result.directory, live_of(have))
    refusal = next(r for r in p.refusals if r.startswith("MG608"))
    assert "400 day(s) ahead of the clock (2026-11-29); at most 0 allowed" in refusal
    # Within the allowance it passes, and the cancel is recorded with the clock's day.
    allowed = PlanContext.make(result, today=TODAY + timedelta(days=400), base_path=None,
                               max_ahead_days=400, clock=TODAY)
    p = allowed.plan(result.directory, live_of(have))
    assert "MG608" not in rules(p)
    c = next(c for c in p.changes if c.kind == "cancel")
    assert c.replace["mailgovDisabledTime"] == ("20261129000000Z",)
    assert any("+400 day(s) from the clock" in n for n in p.notes)


def test_a_base_that_does_not_validate_is_a_clear_error(tmp_path: Path) -> None:
    import pytest

    from mailgov.reconcile import ContextError, PlanContext

    bad = tmp_path / "base.yaml"
    bad.write_text("version: [\n", encoding="utf-8")
    with pytest.raises(ContextError, match=r"the base of the review .* does not validate"):
        PlanContext.make(None, today=None, base_path=str(bad))


def test_an_address_dropped_by_a_second_rename_is_never_given_to_another() -> None:
    """natuan -> natuan4 -> natuan5 (renamed_from holds one: natuan@ leaves the data), then
    natuan2 renamed to natuan: natuan@ reached id 1, so it is refused (MG605)."""
    first = _base()
    _box(first, "natuan")["aliases"] = []
    rename("natuan", "natuan4")(first)
    second = copy.deepcopy(first)
    rename("natuan4", "natuan5")(second)
    p = planned(first, second)
    assert p.ok, p.refusals
    m = next(c for c in p.changes if c.kind == "modify" and c.subject == f"natuan5{D}")
    assert m.add["mailgovFormerAddress"] == (f"natuan{D}",)
    live = live_of(first)
    for c in p.changes:  # apply the second rename to the directory, as slapd would
        if c.kind == "rename":
            live[normalise_dn(c.dn)] = live.pop(normalise_dn(c.old_dn or ""))
        if c.kind in ("rename", "modify") and c.subject == f"natuan5{D}":
            entry = live[normalise_dn(c.dn)]
            for name, values in c.add.items():
                entry[name] = tuple(entry.get(name, ())) + tuple(values)
            for name, values in c.delete.items():
                entry[name] = tuple(v for v in entry.get(name, ()) if v not in values)
            entry.update(c.replace)
            entry.update(c.after or {})
    third = copy.deepcopy(second)
    rename("natuan2", "natuan")(third)
    _box(third, "natuan")["renamed_from"] = "natuan2"
    refused = plan(build(third), live, today=TODAY)
    assert any(r.startswith("MG605") and f"natuan{D} (id:1 -> id:3)" in r
               for r in refused.refusals), refused.refusals
