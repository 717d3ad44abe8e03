"""Caps on every kind of change (issue 14, item 5): MG609 (addresses), MG610 (modifications),
their floor, the override that names a reason, and where the guards are read from."""

from __future__ import annotations

import copy
from typing import Any

from mailgov.model import build
from mailgov.plan import Guards, change_counts, plan
from tests.unit.test_plan import TODAY, _base, live_of, suspend

Data = dict[str, Any]


def _rules(p: Any) -> set[str]:
    return {r.split(" ", 1)[0] for r in p.refusals}


def _planned(have: Data, want: Data, **kw: Any) -> Any:
    return plan(build(want), live_of(have), today=TODAY, **kw)


def _new_aliases(data: Data, n: int) -> None:
    for i in range(n):
        data["mailboxes"][4 + i].setdefault("aliases", []).append(f"bidanh{i}")


def _new_titles(data: Data, n: int) -> None:
    for i in range(n):
        data["mailboxes"][4 + i]["title"] = "Chuyên viên chính"


def test_a_new_domain_trips_the_address_cap_with_the_counts_and_the_guard_source() -> None:
    have = _base()
    want = copy.deepcopy(have)
    want["organization"]["domain"] = "mae.gov.vn"
    p = _planned(have, want)
    assert "MG609" in _rules(p)
    msg = next(r for r in p.refusals if r.startswith("MG609"))
    # 44 mailboxes + 4 unit mailboxes + 4 lists hold an address; every one changes
    assert "changes the addresses (mail, aliases) of" in msg
    assert "max_address_change_share 30% (floor 10, defaults)" in msg
    assert "--allow-mass-change REASON" in msg


def test_the_floor_lets_a_small_change_through() -> None:
    have = _base()
    want = copy.deepcopy(have)
    _new_aliases(want, 10)  # 10 of 52 addresses > 30 %? no; 10 = floor: allowed
    p = _planned(have, want)
    assert p.ok, p.refusals
    addressed, total, _, _ = change_counts(p.changes, live_of(have))
    assert addressed == 10 and total == 52


def test_above_the_share_and_the_floor_is_refused_below_is_not() -> None:
    have = _base()
    guards = Guards(max_address_change_share=0.1, cap_floor=2)
    want = copy.deepcopy(have)
    _new_aliases(want, 6)  # 6 > max(2, 5.2)
    assert "MG609" in _rules(_planned(have, want, guards=guards))
    want = copy.deepcopy(have)
    _new_aliases(want, 5)  # 5 <= 5.2
    assert _planned(have, want, guards=guards).ok


def test_modify_cap_counts_modified_entries_not_creates() -> None:
    have = _base()
    want = copy.deepcopy(have)
    _new_titles(want, 17)  # 17 > max(10, 0.3 x 53)
    p = _planned(have, want)
    assert _rules(p) == {"MG610"}, p.refusals
    assert "modifies 17 of 53 entries" in p.refusals[0]
    # 30 new mailboxes: nothing existing changes (the -all lists gain members: 1 modified)
    want = copy.deepcopy(have)
    for i in range(30):
        want["mailboxes"].append({"address": f"moi{i}", "id": 900 + i, "name": "Lê Văn Bình",
                                  "unit": "vp"})
    assert _planned(have, want).ok


def test_an_override_without_reason_passes_mg601_only_and_says_so() -> None:
    have = _base()
    want = copy.deepcopy(have)
    want["organization"]["domain"] = "mae.gov.vn"
    p = _planned(have, want, allow_mass_change=True)
    assert "MG609" in _rules(p)
    assert p.notes[0].startswith("OVERRIDE of MG601 without a reason")


def test_an_override_naming_a_reason_passes_and_the_reason_is_in_the_plan_text() -> None:
    from mailgov.report_plan import render_markdown

    have = _base()
    want = copy.deepcopy(have)
    want["organization"]["domain"] = "mae.gov.vn"
    reason = "NĐ 35/2025/NĐ-CP: merger into the Ministry of Agriculture and Environment"
    p = _planned(have, want, allow_mass_change=reason)
    assert p.ok, p.refusals
    assert p.notes[0] == f"OVERRIDE of the mass-change caps: {reason}"
    assert f"OVERRIDE of the mass-change caps: {reason}" in render_markdown(p)
    # a blank reason is no reason
    assert "MG609" in _rules(_planned(have, want, allow_mass_change="  "))


def test_a_pull_request_cannot_raise_the_caps_that_judge_it() -> None:
    have = _base()
    want = copy.deepcopy(have)
    _new_titles(want, 20)
    want["policy"]["safety"].update(max_modify_share=1, floor=100)
    assert "MG610" in _rules(_planned(have, want))  # the file alone can only tighten
    p = _planned(have, want, base=build(have))
    assert {"MG610", "MG607"} <= _rules(p)
    msg = next(r for r in p.refusals if r.startswith("MG610"))
    assert "floor 10, the base of the review)" in msg
    # tightening in the file works without a base
    want = copy.deepcopy(have)
    _new_titles(want, 5)
    want["policy"]["safety"].update(floor=2, max_modify_share=0.05)
    assert "MG610" in _rules(_planned(have, want))


def test_the_notes_name_every_cap() -> None:
    have = _base()
    p = _planned(have, copy.deepcopy(have))
    assert ("max_address_change_share 30%, max_modify_share 30% (floor 10)") in p.notes[0]


def test_mg601_has_the_floor_a_few_suspensions_in_a_small_directory_pass() -> None:
    """3 of 44 (6.8 %) is above max_disable_share 5 % but not above the floor (10): no mass
    change, as MG609/MG610 (the audit's case: 3 suspensions refused)."""
    have = _base()
    want = copy.deepcopy(have)
    for i in range(3):
        suspend(f"nv{i}")(want)
    p = _planned(have, want)
    assert p.ok, p.refusals
    assert [c.kind for c in p.changes].count("suspend") == 3


def test_a_real_mass_disable_is_still_refused_by_mg601_with_its_counts_and_floor() -> None:
    have = _base()
    want = copy.deepcopy(have)
    for i in range(11):  # 11 > max(10, 5 % x 44)
        suspend(f"nv{i}")(want)
    p = _planned(have, want)
    assert _rules(p) == {"MG601"}, p.refusals
    assert p.refusals[0] == (
        "MG601 mass change: the plan suspends, cancels, archives or removes 11 of 44 "
        "mailboxes (25.0%), more than max_disable_share 5% (floor 10, defaults); check the "
        "data, or pass --allow-mass-change REASON")
    # the floor is the guards' (policy.safety.floor): a smaller one refuses 3 of 44 again
    want = copy.deepcopy(have)
    for i in range(3):
        suspend(f"nv{i}")(want)
    assert _rules(_planned(have, want, guards=Guards(cap_floor=2))) == {"MG601"}
