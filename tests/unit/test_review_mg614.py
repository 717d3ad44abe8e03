"""An outside review of MG614 (a record's address history only grows, against the base of the
review): workflows done with mailgov's own commands must pass it and keep every address
delivering; hand edits that stop an address the base delivered (or give it to someone else)
must not."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from test_plan_properties import DOMAIN
from test_review_handover import EXEMPT, Review, add, box, reserve, unit

from mailgov.cli import main
from mailgov.directory import desired_entries
from mailgov.plan import normalise_dn, plan, render_markdown
from mailgov.validate import validate

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "mailboxes.yaml"
D = "@monre.gov.vn"
DAY = date(2026, 12, 1)


@pytest.fixture
def w() -> Any:
    world = Review()
    yield world
    world.close()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "mailboxes.yaml"
    shutil.copy(SAMPLE, path)
    return path


def _cli(data: Path, *argv: str) -> None:
    assert main([*argv, "--data", str(data)]) == 0, argv


def _aliases(data: Path, ou: str) -> set[str]:
    d = validate(data, today=DAY).directory
    assert d is not None
    entry = next(e for e in desired_entries(d, DAY) if e.dn.startswith(f"ou={ou},"))
    return set(entry.attributes["mailAlias"])


def _plan_against_base(data: Path, *last: str) -> tuple[list[str], set[str]]:
    """Plan the last command's edit against the data before it (the base of the review);
    the refusals, and the addresses of unit vp afterwards."""
    base = validate(data, today=DAY).directory
    assert base is not None
    live = {normalise_dn(e.dn): {**e.attributes, "objectClass": e.object_classes}
            for e in desired_entries(base, DAY)}
    _cli(data, *last)
    d = validate(data, today=DAY).directory
    assert d is not None
    p = plan(d, live, today=DAY, base=base, allow_mass_change="2/QĐ-BNNMT")
    return list(p.refusals), _aliases(data, "vp")


# --- (1) the commands: a unit's old address is the one it really had -------------------------


def test_a_sub_unit_renamed_after_its_parent_merged_keeps_its_first_address(
        data: Path) -> None:
    """FIXED (directory.former_unit_locals): tcmt merged into cntt (vp.tcmt@ -> vp.cntt@), then
    `mailgov unit rename vp --abbr vpx`. Each `formerly` item was applied alone to the unit as
    it is now, so vp.tcmt@ became vpx.tcmt@ (an address vp never had) and vp.tcmt@ stopped
    delivering; MG614 refused the rename against the base and no command could pass it."""
    _cli(data, "unit", "merge", "tcmt", "cntt", "--request", "1/QĐ-BNNMT",
         "--date", "2026-11-01")
    refusals, vp = _plan_against_base(data, "unit", "rename", "vp", "--abbr", "vpx",
                                      "--request", "2/QĐ-BNNMT", "--date", "2026-12-01")
    assert refusals == []
    assert {f"vpx.cntt{D}", f"vp.cntt{D}", f"vp.tcmt{D}"} <= vp
    assert f"vpx.tcmt{D}" not in vp  # never vp's


def test_a_parent_renamed_after_its_sub_unit_keeps_the_sub_units_first_address(
        data: Path) -> None:
    """FIXED (the same): vp renamed to vpx (vp.tcmt@ -> vpx.tcmt@), then its parent tcmt to mt:
    vp.tcmt@, vp's address before both, was dropped (MG614 against the base)."""
    _cli(data, "unit", "rename", "vp", "--abbr", "vpx", "--request", "1/QĐ-BNNMT",
         "--date", "2026-11-01")
    refusals, vp = _plan_against_base(data, "unit", "rename", "tcmt", "--abbr", "mt",
                                      "--request", "2/QĐ-BNNMT", "--date", "2026-12-01")
    assert refusals == []
    assert {f"vpx.mt{D}", f"vpx.tcmt{D}", f"vp.tcmt{D}"} <= vp


@pytest.mark.parametrize("steps", [
    [("unit", "merge", "tcmt", "tckttv"), ("unit", "merge", "tckttv", "vpb")],
    [("unit", "rename", "tcmt", "--abbr", "mt"), ("unit", "rename", "tcmt", "--abbr", "tcmt")],
    [("unit", "rename", "tcmt", "--abbr", "mt"), ("unit", "rename", "tcmt", "--abbr", "mtx")],
    [("unit", "rename", "vp", "--abbr", "vpx"), ("unit", "rename", "vp", "--abbr", "vp")],
], ids=["merge-twice", "rename-back", "rename-twice", "sub-unit-renamed-back"])
def test_two_unit_commands_pass_against_the_base_and_keep_every_address(
        data: Path, steps: list[tuple[str, ...]]) -> None:
    """Held before and after the fix: each command planned against the data before it."""
    _cli(data, *steps[0], "--request", "1/QĐ-BNNMT", "--date", "2026-11-01")
    first = _aliases(data, "vp")
    refusals, vp = _plan_against_base(data, *steps[1], "--request", "2/QĐ-BNNMT",
                                      "--date", "2026-12-01")
    assert refusals == []
    assert f"vp.tcmt{D}" in vp and first <= vp


def _unit_addresses(data: Path) -> dict[str, set[str]]:
    """Every address a unit entry delivers (mail, mailAlias), by unit."""
    d = validate(data, today=DAY).directory
    assert d is not None
    return {e.dn.split(",")[0]: {*e.attributes["mail"], *e.attributes.get("mailAlias", ())}
            for e in desired_entries(d, DAY) if e.dn.startswith("ou=") and "mail" in
            e.attributes}


SUB_SUB_UNIT = """  - id: hc
    name: Phòng Hành chính
    name_en: Division of Administration
    parent: vp
    mailbox:
      request: 1/QĐ-TCMT
"""


@pytest.mark.parametrize(("steps", "same_day"), [
    ([("unit", "merge", "tcmt", "cntt"), ("unit", "rename", "vp", "--abbr", "vpx")], True),
    ([("unit", "rename", "vp", "--abbr", "vpx"), ("unit", "merge", "tcmt", "cntt")], False),
    ([("unit", "rename", "vp", "--abbr", "vpx"), ("unit", "merge", "tcmt", "cntt")], True),
    ([("unit", "rename", "vp", "--abbr", "vpx"), ("unit", "rename", "tcmt", "--abbr", "mt")],
     True),
    ([("unit", "merge", "tcmt", "cntt"), ("unit", "rename", "cntt", "--abbr", "it")], False),
    ([("unit", "rename", "hc", "--abbr", "hcx"), ("unit", "merge", "tcmt", "cntt")], False),
    ([("unit", "merge", "tcmt", "cntt"), ("unit", "rename", "hc", "--abbr", "hcx")], False),
    ([("unit", "merge", "hc", "cspc"), ("unit", "rename", "tcmt", "--abbr", "mt")], False),
    ([("unit", "merge", "hc", "cspc"), ("unit", "merge", "tcmt", "cntt")], False),
], ids=["merge-then-sub-rename-same-day", "sub-rename-then-merge",
        "sub-rename-then-merge-same-day", "sub-rename-then-parent-rename-same-day",
        "merge-then-successor-rename", "sub-sub-rename-then-merge",
        "merge-then-sub-sub-rename", "dissolved-sub-sub-then-rename",
        "dissolved-sub-sub-then-merge"])
def test_the_second_unit_command_keeps_every_unit_address_delivering(
        data: Path, steps: list[tuple[str, ...]], same_day: bool) -> None:
    """Two unit commands on one data file (a sub-sub-unit hc under vp): the second, planned
    against the data before it, passes, and every address a unit entry delivered before it
    still delivers to the same unit. Before the fix of former_unit_locals all but
    merge-then-successor-rename lost vp.tcmt@ or hc.vp.tcmt@ (MG614 refused the command); with
    only the day-by-day undoing, the three same-day orders still did."""
    text = data.read_text(encoding="utf-8")
    data.write_text(text.replace("\nmailboxes:\n", "\n" + SUB_SUB_UNIT + "\nmailboxes:\n", 1),
                    encoding="utf-8")
    _cli(data, *steps[0], "--request", "1/QĐ-BNNMT", "--date",
         "2026-12-01" if same_day else "2026-11-01")
    before = _unit_addresses(data)
    refusals, _vp = _plan_against_base(data, *steps[1], "--request", "2/QĐ-BNNMT",
                                       "--date", "2026-12-01")
    after = _unit_addresses(data)
    assert refusals == []
    assert {ou: old - after[ou] for ou, old in before.items() if old - after[ou]} == {}
    assert f"hc.vp.tcmt{D}" in after["ou=hc"]


# --- (2) hand edits that still lost an address -----------------------------------------------


@pytest.mark.parametrize("ident", [14, None], ids=["id-rewritten", "id-written-in"])
def test_a_reserved_entry_keeps_the_id_it_names(w: Review, ident: int | None) -> None:
    """FIXED (MG614): the entry of the purged dtthu@ (id 14, or none) rewritten to name id 40,
    and a newcomer with id 40 given dtthu@: planned, and the newcomer received mail meant for
    the purged person (the address stayed in `reserved`, so MG614 saw nothing leave it)."""
    w.purge_cancelled()
    assert w.pr(lambda d: reserve(d, "dtthu", ident)).status == "applied"

    def rewrite(d: Any) -> None:
        d["reserved"][0]["id"] = 40
        add(d, "dtthu", 40)

    out = w.pr(rewrite, apply=False)
    assert out.status == "refused" and out.rules() == {"MG614"}, out
    assert f"the `reserved` entry of dtthu@{DOMAIN} no longer names id {ident or '-'}, as it " \
           "did in the base of the review" in out.text("MG614")
    if ident:  # the mailbox the entry names may still have it back (test_review_handover)
        back = w.pr(lambda d: (d.pop("reserved"), add(d, "dtthu", 14)), apply=False)
        assert back.status == "planned", back


def test_a_renamed_from_date_moved_back_past_its_period_is_refused(w: Review) -> None:
    """FIXED (MG614): with policy.history.alias_days, htmai@ (renamed to htmai9@ today)
    delivers for a year; a later hand edit that dates the rename 2020 keeps the address in
    `renamed_from` but ends its period: the plan deleted the alias and mail to it bounced."""
    renamed = [{"address": "htmai", "date": w.clock.isoformat(), "request": "5/QĐ-BNNMT"}]
    first = w.pr(lambda d: (d["policy"].setdefault("history", {}).update(alias_days=365),
                            box(d, "htmai").update(address="htmai9", renamed_from=renamed,
                                                   naming_exemption=EXEMPT)))
    assert first.status == "applied" and first.found == [], first
    old = [{"address": "htmai", "date": "2020-01-01", "request": "5/QĐ-BNNMT"}]
    out = w.pr(lambda d: box(d, "htmai9").update(renamed_from=old), apply=False)
    assert out.status == "refused" and out.rules() == {"MG614"}, out
    assert f"mailbox id 11 (htmai9@{DOMAIN}): htmai@{DOMAIN} delivers today in the base of " \
           "the review, but its `renamed_from` date is now so early that its period is " \
           "over" in out.text("MG614")
    # a date moved later (or kept) passes
    later = [{**renamed[0], "date": "2030-01-01"}]
    assert w.pr(lambda d: box(d, "htmai9").update(renamed_from=later),
                apply=False).status == "planned"


def test_an_alias_removed_by_hand_is_refused(w: Review) -> None:
    """FIXED (the lead's choice): an alias at the organisation's domain is an address the
    record had, as `mailgov reserve-purged` knows (ever_used). Removed by hand it was applied
    and mail to it bounced (the harness's own invariant: AddressLost 'mai.ht@… reaches nobody
    now'), and once the entry was purged nothing kept it from a newcomer. Now it leaves only
    retired in `reserved` in the same change."""
    assert w.pr(lambda d: box(d, "htmai").update(aliases=["mai.ht"])).status == "applied"
    out = w.pr(lambda d: box(d, "htmai").pop("aliases"), apply=False)
    assert out.status == "refused" and out.rules() == {"MG614"}, out
    assert f"mailbox id 11 (htmai@{DOMAIN}) no longer has the alias mai.ht@{DOMAIN}, which it " \
           "had in the base of the review" in out.text("MG614")
    retired = w.pr(lambda d: (box(d, "htmai").pop("aliases"), d.setdefault("reserved", []).append(
        {"address": "mai.ht", "reason": "5/QĐ-BNNMT"})), apply=False)
    assert retired.status == "planned", retired
    # moved into renamed_from or made the address, it stays the record's: not dropped
    kept = w.pr(lambda d: box(d, "htmai").update(aliases=[], address="mai.ht",
                                                 renamed_from="htmai", naming_exemption=EXEMPT),
                apply=False)
    assert kept.status == "planned", kept


def _with_unit_alias_days(data: Path) -> None:
    text = data.read_text(encoding="utf-8")
    data.write_text(text.replace("  safety:", "  history: { unit_alias_days: 365 }\n  safety:", 1),
                    encoding="utf-8")


def _plan_edit_against_base(data: Path, old: str, new: str) -> list[str]:
    """A hand edit (``old`` -> ``new`` in the file) planned against the file before it."""
    base = validate(data, today=DAY).directory
    assert base is not None
    live = {normalise_dn(e.dn): {**e.attributes, "objectClass": e.object_classes}
            for e in desired_entries(base, DAY)}
    text = data.read_text(encoding="utf-8")
    assert text.count(old) == 1
    data.write_text(text.replace(old, new), encoding="utf-8")
    d = validate(data, today=DAY).directory
    assert d is not None, validate(data, today=DAY).problems
    return list(plan(d, live, today=DAY, base=base).refusals)


def test_a_formerly_date_moved_back_past_its_period_is_refused(data: Path) -> None:
    """FIXED (MG614): with policy.history.unit_alias_days, tcmt@ (tcmt renamed to mt today)
    delivers for a year; a hand edit that dates the rename 2020 keeps `formerly` but ends the
    period of tcmt@, tcmt-all@ and the sub-units' vp.tcmt@ …: all of them stopped."""
    _with_unit_alias_days(data)
    _cli(data, "unit", "rename", "tcmt", "--abbr", "mt", "--request", "1/QĐ-BNNMT",
         "--date", "2026-12-01")
    assert f"tcmt{D}" in _aliases(data, "tcmt")
    refusals = _plan_edit_against_base(data, "{ abbr: tcmt, date: 2026-12-01,",
                                       "{ abbr: tcmt, date: 2020-01-01,")
    assert f"tcmt{D}" not in _aliases(data, "tcmt")  # what the edit does
    assert len(refusals) == 5, refusals  # tcmt and its four sub-units
    assert any(r.startswith(f"MG614 unit tcmt: tcmt{D} delivers today in the base of the "
                            "review, but a `formerly` date is now so early that its period "
                            "is over") for r in refusals), refusals


def test_a_dissolved_date_moved_back_past_its_period_is_refused(data: Path) -> None:
    """FIXED (MG614): ttb merged into vpb today forwards ttb@ to vpb@ for the period; a hand
    edit that dates the merger 2020 closes ttb@ at once (answered as cancelled)."""
    _with_unit_alias_days(data)
    _cli(data, "unit", "merge", "ttb", "vpb", "--request", "1/QĐ-BNNMT", "--date",
         "2026-12-01")
    refusals = _plan_edit_against_base(data, "dissolved: { date: 2026-12-01,",
                                       "dissolved: { date: 2020-01-01,")
    assert any(r.startswith(f"MG614 unit ttb: ttb{D} forwards to its successor today in the "
                            "base of the review, but its `dissolved` date is now so early")
               for r in refusals), refusals


def test_an_address_is_retired_for_its_own_mailbox_not_another_id(w: Review) -> None:
    """FIXED (MG614): htmai@ of id 11 changed by hand without `renamed_from`, "retired" in
    `reserved` with id 40: applied (AddressLost 'htmai@… reaches nobody now'), and
    `reserved` then lets id 40 have it (MG221), stopped only by the directory's memory of
    the old holder (MG605) while its entry lives. Retired without an id it passes; with its
    own id it is invalid (MG220), though the MG614 message used to advise just that."""
    def retire(ident: int | None) -> Any:
        def edit(d: Any) -> None:
            box(d, "htmai").update(address="htmai7", naming_exemption=EXEMPT)
            d.setdefault("reserved", []).append(
                {"address": "htmai", **({"id": ident} if ident else {}), "reason": "5/QĐ-BNNMT"})
        return edit

    out = w.pr(retire(40), apply=False)
    assert out.status == "refused" and out.rules() == {"MG614"}, out
    assert f"mailbox id 11 (htmai7@{DOMAIN}) no longer has htmai@{DOMAIN}" in out.text("MG614")
    assert "or retire it on purpose in `reserved`, without an id (with one, MG220" in \
        out.text("MG614")
    assert w.pr(retire(None), apply=False).status == "planned"
    own = w.pr(retire(11), apply=False)
    assert own.status == "invalid" and own.rules() == {"MG220"}, own


def test_a_unit_address_is_retired_for_nobody(w: Review) -> None:
    """FIXED (MG614): vpb renamed by hand without `formerly`, vpb@ and vpb-all@ "retired" in
    `reserved` with id 40: applied, and validation then lets id 40 have vpb@ (MG221 passes
    the id it names); only the live unit entry's memory of it (MG605) stood between the
    newcomer and the Ministry Office's mail. A unit address is retired with no id."""
    def retire(ident: int | None) -> Any:
        def edit(d: Any) -> None:
            unit(d, "vpb").update(abbr="vpbo")
            d.setdefault("reserved", []).extend(
                {"address": a, **({"id": ident} if ident else {}), "reason": "5/QĐ-BNNMT"}
                for a in ("vpb", "vpb-all"))
        return edit

    out = w.pr(retire(40), apply=False)
    assert out.status == "refused" and out.rules() == {"MG614"}, out
    assert f"unit vpb no longer has the address vpb@{DOMAIN}" in out.text("MG614")
    assert w.pr(retire(None), apply=False).status == "planned"


# --- (4) the periods themselves: policy.history shortened, an alias domain ended early ------


def _history(d: Any, **days: int | None) -> None:
    d["policy"].setdefault("history", {}).update(days)


def test_alias_days_shortened_past_a_live_period_is_refused(w: Review) -> None:
    """FIXED (MG614): with alias_days 365, htmai@ (renamed 100 days ago) delivers; a later
    edit of the policy to 30 days keeps every record as it was but ends htmai@'s period at
    once: the plan deleted the alias and mail to it bounced. dtha@'s period (renamed 400
    days ago) was over already: it is cut by nothing and not named."""
    def renamed(address: str, days: int) -> list[dict[str, str]]:
        return [{"address": address, "date": (w.clock - timedelta(days=days)).isoformat(),
                 "request": "5/QĐ-BNNMT"}]

    first = w.pr(lambda d: (
        _history(d, alias_days=365),
        box(d, "htmai").update(address="htmai9", renamed_from=renamed("htmai", 100),
                               naming_exemption=EXEMPT),
        box(d, "dtha").update(address="dtha9", renamed_from=renamed("dtha", 400),
                              naming_exemption=EXEMPT)))
    assert first.status == "applied", first
    out = w.pr(lambda d: _history(d, alias_days=30), apply=False)
    assert out.status == "refused" and out.rules() == {"MG614"}, out
    text = out.text("MG614")
    assert "policy.history.alias_days is now 30 days (in the base of the review: 365 days): " \
           f"htmai@{DOMAIN} deliver(s) today as a previous address" in text, text
    assert "make it at least 101 days, which cuts none of them" in text
    assert f"dtha@{DOMAIN}" not in text
    # shortened so far that no live period is cut (dtha@'s was over already): passes
    assert w.pr(lambda d: _history(d, alias_days=101), apply=False).status == "planned"
    assert w.pr(lambda d: _history(d, alias_days=100), apply=False).status == "refused"


def test_unit_alias_days_shortened_past_a_live_period_is_refused(data: Path) -> None:
    """FIXED (MG614): with unit_alias_days 365, tcmt (renamed mt 91 days ago) keeps tcmt@ and
    ttb (merged into vpb then) forwards ttb@ to vpb@; the policy shortened to 30 days ended
    both at once (tcmt@ bounced, ttb@ was answered as cancelled). 92 days cuts neither."""
    _with_unit_alias_days(data)
    _cli(data, "unit", "rename", "tcmt", "--abbr", "mt", "--request", "1/QĐ-BNNMT",
         "--date", "2026-09-01")
    _cli(data, "unit", "merge", "ttb", "vpb", "--request", "2/QĐ-BNNMT", "--date",
         "2026-09-01")
    base_text = data.read_text(encoding="utf-8")
    refusals = _plan_edit_against_base(data, "unit_alias_days: 365", "unit_alias_days: 30")
    assert f"tcmt{D}" not in _aliases(data, "tcmt")  # what the edit does
    [cut] = refusals
    assert cut.startswith("MG614 policy.history.unit_alias_days is now 30 days (in the base "
                          f"of the review: 365 days): tcmt{D}, "), cut
    assert f"ttb{D}" in cut and "make it at least 92 days, which cuts none of them" in cut
    data.write_text(base_text, encoding="utf-8")
    assert _plan_edit_against_base(data, "unit_alias_days: 365", "unit_alias_days: 92") == []


def _absorb(until: str | None) -> Any:
    def edit(d: Any) -> None:
        d["organization"]["alias_domains"] = [
            {"domain": "monre.vn", **({"until": until} if until else {}),
             "request": "35/2025/NĐ-CP"}]
    return edit


@pytest.mark.parametrize("edit", ["until-today", "until-moved-back", "removed"])
def test_an_alias_domain_ended_early_is_refused(w: Review, edit: str) -> None:
    """FIXED (MG614): monre.vn, an alias domain receiving today (for ever, or until next
    summer), given an `until` of today (an earlier day is MG223), or removed from the data,
    stopped every address there at once. An `until` after today passes: it ends on that
    day, as planned."""
    assert w.pr(_absorb(None if edit != "until-moved-back" else "2027-06-01"),
                override="merger").status == "applied"
    change = {"until-today": _absorb(w.clock.isoformat()),
              "until-moved-back": _absorb(w.clock.isoformat()),
              "removed": lambda d: d["organization"].pop("alias_domains")}[edit]
    out = w.pr(change, apply=False, override="merger")
    assert out.status == "refused" and out.rules() == {"MG614"}, out
    text = out.text("MG614")
    assert "monre.vn receives mail today in the base of the review, but " in text, text
    assert "mail to its 37 address(es) (abuse@monre.vn, " in text, text
    assert ", htmai@monre.vn, " in text and " and 27 more) would bounce" in text, text
    assert ("no longer one of the organisation's domains" if edit == "removed" else
            "its `until` is now 20") in text
    later = w.pr(_absorb((w.clock + timedelta(days=1)).isoformat()), apply=False,
                 override="merger")
    assert later.status == "planned", later


def test_an_alias_domain_removed_after_its_period_passes(w: Review) -> None:
    assert w.pr(_absorb((w.clock + timedelta(days=1)).isoformat()),
                override="merger").status == "applied"
    assert w.wait(1).status == "applied"
    out = w.pr(lambda d: d["organization"].pop("alias_domains"), apply=False)
    assert out.status == "planned", out


def test_a_successor_changed_is_shown_old_and_new_with_the_merger(data: Path) -> None:
    """A dissolved unit's successor changed by hand redirects its mail, losing none: not
    refused, and the plan names both targets with the merger's request."""
    _with_unit_alias_days(data)
    _cli(data, "unit", "merge", "ttb", "vpb", "--request", "1/QĐ-BNNMT", "--date",
         "2026-12-01")
    base = validate(data, today=DAY).directory
    assert base is not None
    live = {normalise_dn(e.dn): {**e.attributes, "objectClass": e.object_classes}
            for e in desired_entries(base, DAY)}
    text = data.read_text(encoding="utf-8")
    data.write_text(text.replace("successor: vpb,", "successor: tccb,", 1), encoding="utf-8")
    d = validate(data, today=DAY).directory
    assert d is not None
    p = plan(d, live, today=DAY, base=base)
    assert p.refusals == ()
    shown = render_markdown(p)
    assert f"- `ttb{D}`: mailForwardingAddress +tccb{D}; mailForwardingAddress −vpb{D} " \
           "(1/QĐ-BNNMT, merged into tccb)" in shown, shown
    assert f"- `ttb-all{D}`: +1 member(s): tccb-all (1/QĐ-BNNMT, merged into tccb)" in shown
    assert f"- `ttb-all{D}`: −1 member(s): vpb-all (1/QĐ-BNNMT, merged into tccb)" in shown
