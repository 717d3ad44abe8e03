"""Unit history (issue 14, item 2): renamed, merged and dissolved units keep their old unit
address and list as a way to the successor for the policy period; the edit commands."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from mailgov.cli import main
from mailgov.directory import desired_entries
from mailgov.plan import normalise_dn, plan
from mailgov.report_plan import render_markdown
from mailgov.validate import validate

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "mailboxes.yaml"
D = "@monre.gov.vn"
DAY = date(2026, 12, 1)


def _live(path: Path, today: date = DAY) -> dict[str, Any]:
    d = validate(path, today=today).directory
    assert d is not None
    return {normalise_dn(e.dn): {**e.attributes, "objectClass": e.object_classes}
            for e in desired_entries(d, today)}


def _edit(*argv: str) -> int:
    return main([*argv])


def _entries(path: Path, today: date = DAY) -> dict[str, dict[str, tuple[str, ...]]]:
    d = validate(path, today=today).directory
    assert d is not None, validate(path, today=today).problems
    return {e.dn.split(",")[0]: e.attributes for e in desired_entries(d, today)}


def test_merge_moves_people_and_forwards_the_old_unit_address_and_list(
        data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    live = _live(data)
    before = data.read_text(encoding="utf-8")
    assert _edit("unit", "merge", "ttb", "vpb", "--request", "5/QĐ-BNNMT", "--date",
                 "2026-12-01", "--data", str(data)) == 0
    after = data.read_text(encoding="utf-8")
    assert "    dissolved: { date: 2026-12-01, successor: vpb, request: 5/QĐ-BNNMT }" in after
    assert after.count("change: { request: 5/QĐ-BNNMT }") == before.count("unit: ttb\n") - 0
    e = _entries(data)
    assert e["ou=ttb"]["mailForwardingAddress"] == (f"vpb{D}",)  # the old unit address
    assert e["ou=ttb"]["mailEnabled"] == ("TRUE",)
    assert e["cn=ttb-all"]["member"] == ("cn=vpb-all,ou=groups,dc=monre,dc=gov,dc=vn",)
    d = validate(data, today=DAY).directory
    p = plan(d, live, today=DAY, allow_mass_change="5/QĐ-BNNMT")  # type: ignore[arg-type]
    assert p.ok, p.refusals
    assert p.drift == ()  # moves and modifications, never drift
    moves = [c for c in p.changes if c.kind == "move"]
    assert moves and {c.reason for c in moves} == {"5/QĐ-BNNMT"}
    assert {c.kind for c in p.changes} <= {"move", "modify", "add_member", "remove_member"}
    # after the policy period the old unit mailbox is closed (answered as cancelled) and its
    # list is left (drift: reported, never deleted with mail)
    text = data.read_text(encoding="utf-8").replace(
        "  safety:", "  history: { unit_alias_days: 30 }\n  safety:", 1)
    data.write_text(text, encoding="utf-8")
    late = _entries(data, date(2026, 12, 31))
    assert late["ou=ttb"]["mailEnabled"] == ("FALSE",)
    assert "mailForwardingAddress" not in late["ou=ttb"] and "cn=ttb-all" not in late


def test_merge_keeps_the_old_addresses_of_the_moved_sub_units(data: Path) -> None:
    """tcmt's sub-units move to cntt with it: vp.tcmt@ becomes vp.cntt@, and the old address
    and list keep delivering (formerly: {parent: tcmt}). Without that record the merger
    silently dropped eight addresses (four sub-units, their lists); the plan against the
    base now refuses a merge written by hand that forgets it (MG614)."""
    live = _live(data)
    base = validate(data, today=DAY).directory
    assert _edit("unit", "merge", "tcmt", "cntt", "--request", "5/QĐ-BNNMT", "--date",
                 "2026-12-01", "--data", str(data)) == 0
    text = data.read_text(encoding="utf-8")
    assert text.count("      - { parent: tcmt, date: 2026-12-01, request: 5/QĐ-BNNMT }") == 4
    e = _entries(data)
    assert e["ou=vp"]["mail"] == (f"vp.cntt{D}",)
    assert f"vp.tcmt{D}" in e["ou=vp"]["mailAlias"]
    assert e["cn=vp.tcmt-all"]["member"] == ("cn=vp.cntt-all,ou=groups,dc=monre,dc=gov,dc=vn",)
    d = validate(data, today=DAY).directory
    assert d is not None and base is not None
    p = plan(d, live, today=DAY, base=base,  # type: ignore[arg-type]
             allow_mass_change="5/QĐ-BNNMT")
    assert p.ok, p.refusals
    moved = next(c for c in p.changes if c.subject == f"vp.cntt{D}")
    assert moved.reason == "5/QĐ-BNNMT, unit vp moved from tcmt to cntt"
    assert not any(f"vp.tcmt{D}" in c.delete.get("mailAlias", ()) for c in p.changes)
    # the same merger without the sub-units' record: refused, each old address named
    data.write_text("".join(line for line in text.splitlines(keepends=True)
                            if "parent: tcmt, date" not in line and line.strip() != "formerly:"),
                    encoding="utf-8")
    forgot = validate(data, today=DAY).directory
    assert forgot is not None
    p = plan(forgot, live, today=DAY, base=base,  # type: ignore[arg-type]
             allow_mass_change="5/QĐ-BNNMT")
    lost = sorted(r for r in p.refusals if r.startswith("MG614 "))
    assert len(lost) == len(p.refusals) == 4, p.refusals
    assert f"MG614 unit vp no longer has the address vp.tcmt{D}, which it had in the base " \
           "of the review: mail to it (and to its list) would bounce" in lost[-1]


def test_a_formerly_item_names_what_the_old_address_was_made_of(data: Path) -> None:
    line = next(i for i, t in enumerate(data.read_text(encoding="utf-8").splitlines(), 1)
                if t == "    parent: tcmt")
    assert _bad(data, "    parent: tcmt\n", "    parent: tcmt\n    formerly:\n"
                "      - { date: 2026-11-01 }\n") == [("MG101", line + 2)]
    assert _bad(data, "      - { date: 2026-11-01 }", "      - { parent: tcmx }") == [
        ("MG204", line + 2)]
    problems = validate(data, today=DAY).problems
    assert "unit 'vp': former parent 'tcmx' is not a unit id" in problems[0].message


def test_rename_keeps_the_old_unit_address_and_list_and_the_sub_units(
        data: Path) -> None:
    live = _live(data)
    assert _edit("unit", "rename", "tcmt", "--abbr", "mt", "--request", "6/QĐ-BNNMT",
                 "--date", "2026-12-01", "--data", str(data)) == 0
    e = _entries(data)
    assert e["ou=tcmt"]["mail"] == (f"mt{D}",)
    assert f"tcmt{D}" in e["ou=tcmt"]["mailAlias"]
    assert f"vp.tcmt{D}" in e["ou=vp"]["mailAlias"]  # a sub-unit's address follows
    assert e["cn=tcmt-all"]["member"] == ("cn=mt-all,ou=groups,dc=monre,dc=gov,dc=vn",)
    d = validate(data, today=DAY).directory
    p = plan(d, live, today=DAY)  # type: ignore[arg-type]
    assert p.ok, p.refusals
    unit = next(c for c in p.changes if c.subject == f"mt{D}")
    assert unit.reason == "6/QĐ-BNNMT, unit renamed tcmt -> mt"
    assert not any(c.delete.get("mailAlias") for c in p.changes)
    # nothing is left as drift: the delegates groups are renamed, like the unit mailbox
    assert p.drift == (), p.drift


def test_rename_moves_the_delegates_group_instead_of_drift(data: Path) -> None:
    """A renamed unit's delegates group (its own and its sub-units') is a modify DN of the
    live group, members kept; neither a new group nor drift (issue 14 item 2)."""
    live = _live(data)
    groups = "ou=groups,dc=monre,dc=gov,dc=vn"
    # tcmt has no delegates of its own; its sub-units' groups are named after it
    assert f"cn=ksonm.tcmt-delegates,{groups}" in live
    assert _edit("unit", "rename", "tcmt", "--abbr", "mt", "--request", "6/QĐ-BNNMT",
                 "--date", "2026-12-01", "--data", str(data)) == 0
    d = validate(data, today=DAY).directory
    p = plan(d, live, today=DAY)  # type: ignore[arg-type]
    assert p.ok, p.refusals
    renames = {c.old_dn: c for c in p.changes if c.kind == "rename"}
    assert len([o for o in renames if o and "-delegates" in o]) == 2, renames  # ksonm, btdd
    c = renames[f"cn=ksonm.tcmt-delegates,{groups}"]
    assert c.dn == f"cn=ksonm.mt-delegates,{groups}"
    assert c.reason == "6/QĐ-BNNMT, unit renamed tcmt -> mt"
    assert c.before == {"cn": ("ksonm.tcmt-delegates",)}
    assert c.after == {"cn": ("ksonm.mt-delegates",)}
    created = [x.dn for x in p.changes if x.kind == "create"]
    assert not [dn for dn in created if "-delegates" in dn], created
    # members stay as they were; only the description names the new abbreviation
    rest = [x for x in p.changes if x.dn == c.dn and x.kind != "rename"]
    assert [(x.kind, sorted(x.replace), x.add, x.delete) for x in rest] == [
        ("modify", ["description"], {}, {})], rest
    assert p.drift == ()
    # the plan text says what happened, and applying it leaves nothing to do
    assert "renamed from ksonm.tcmt-delegates" in render_markdown(p)
    after = {normalise_dn(k): v for k, v in live.items()}
    for r in renames.values():
        if "-delegates" in r.dn:
            after[normalise_dn(r.dn)] = {**after.pop(normalise_dn(r.old_dn or "")),
                                         "cn": r.after["cn"] if r.after else ()}
    again = plan(d, after, today=DAY)  # type: ignore[arg-type]
    assert not [x for x in again.changes if "-delegates" in x.dn
                and x.kind in ("create", "rename", "add_member", "remove_member")]
    assert again.drift == ()


def _bad(path: Path, old: str, new: str) -> list[tuple[str, int]]:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return [(p.rule, p.line) for p in validate(path, today=DAY).problems]


def test_merge_into_unknown_or_dissolved_units_and_cycles(data: Path) -> None:
    assert _edit("unit", "merge", "ttb", "vpb", "--request", "5/QĐ-BNNMT", "--date",
                 "2026-12-01", "--data", str(data)) == 0
    line = next(i for i, t in enumerate(data.read_text(encoding="utf-8").splitlines(), 1)
                if "dissolved:" in t)
    assert _bad(data, "successor: vpb", "successor: xyz") == [("MG224", line)]
    assert _bad(data, "successor: xyz", "successor: ttb") == [("MG224", line)]  # itself
    # a merge into a dissolved unit: vpb dissolved into ttb, which is dissolved into vpb
    text = data.read_text(encoding="utf-8").replace("successor: ttb", "successor: vpb", 1)
    data.write_text(text, encoding="utf-8")
    assert _edit("unit", "merge", "vpb", "ttb", "--request", "7/QĐ-BNNMT",
                 "--data", str(data)) == 1  # refused by the command: ttb is dissolved
    # written by hand, the cycle is MG225 (and vpb's people are still there: MG226)
    text = data.read_text(encoding="utf-8").replace(
        "  - id: vpb\n", "  - id: vpb\n    dissolved: { date: 2026-12-01, successor: ttb, "
        "request: 7/QĐ-BNNMT }\n", 1)
    data.write_text(text, encoding="utf-8")
    rules = {r for r, _ in (
        (p.rule, p.line) for p in validate(data, today=DAY).problems)}
    assert "MG225" in rules and "MG226" in rules


def test_people_left_in_a_dissolved_unit(data: Path) -> None:
    text = data.read_text(encoding="utf-8").replace(
        "  - id: ttb\n", "  - id: ttb\n    dissolved: { date: 2026-12-01, successor: vpb, "
        "request: 5/QĐ-BNNMT }\n", 1)
    data.write_text(text, encoding="utf-8")
    problems = validate(data, today=DAY).problems
    assert {p.rule for p in problems} >= {"MG226"}
    assert all("dissolved" in p.message for p in problems if p.rule == "MG226")


@pytest.mark.parametrize("argv", [
    ["unit", "merge", "ttb", "ttb", "--request", "5/QĐ-BNNMT"],
    ["unit", "merge", "nope", "vpb", "--request", "5/QĐ-BNNMT"],
    ["unit", "merge", "cntt", "vpb", "--request", "5/QĐ-BNNMT"],  # the IT unit
    ["unit", "rename", "vpb", "--abbr", "vpb"],
    ["unit", "rename", "vpb", "--abbr", "tcmt"],  # another unit's address: MG201
])
def test_bad_edits_change_nothing(argv: list[str], data: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    original = data.read_bytes()
    assert main([*argv, "--data", str(data)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mailgov: error: ") and "Traceback" not in err
    assert data.read_bytes() == original
