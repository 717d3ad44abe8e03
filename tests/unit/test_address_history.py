"""Address history (issue 14, item 3): any number of previous addresses per mailbox, kept as
aliases for the policy period and reserved for ever; the reserved list; `mailgov address`."""

from __future__ import annotations

import copy
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from mailgov.cli import main
from mailgov.directory import FORMER, desired_entries
from mailgov.model import PreviousAddress, build
from mailgov.plan import normalise_dn, plan
from tests.unit.test_plan import TODAY, _base, _box, live_of, person

D = "@monre.gov.vn"
ROOT = Path(__file__).resolve().parents[2]
GOOD = ROOT / "tests" / "data" / "good" / "example.yaml"


def _aliases(data: dict[str, Any], local: str, today: date | None = TODAY) -> set[str]:
    d = build(data)
    e = next(e for e in desired_entries(d, today) if e.dn.startswith(f"uid={local},"))
    return set(e.attributes["mailAlias"])


def test_the_old_scalar_form_still_means_one_previous_address() -> None:
    data = _base()
    _box(data, "ttlan").update(address="tranlan", renamed_from="ttlan")
    m = next(m for m in build(data).mailboxes if m.address == "tranlan")
    assert m.previous == (PreviousAddress("ttlan"),) and m.renamed_from == "ttlan"
    assert _aliases(data, "tranlan") == {f"tranlan{D}", f"ttlan{D}"}


def test_renamed_twice_receives_at_all_three_addresses() -> None:
    data = _base()
    _box(data, "ttlan").update(address="tranthilan", renamed_from=[
        "ttlan", {"address": "tranlan", "date": "2026-05-01", "request": "31/QĐ-VPB"}])
    assert _aliases(data, "tranthilan") == {f"tranthilan{D}", f"ttlan{D}", f"tranlan{D}"}


def test_a_dated_previous_address_stops_delivering_after_the_policy_period() -> None:
    data = _base()
    data["policy"]["history"] = {"alias_days": 365}
    _box(data, "ttlan").update(address="tranthilan", renamed_from=[
        "ttlan", {"address": "tranlan", "date": "2025-11-01"}])
    # undated (before issue 14): for ever; dated: until 2026-11-01
    assert _aliases(data, "tranthilan", date(2026, 10, 31)) == {
        f"tranthilan{D}", f"ttlan{D}", f"tranlan{D}"}
    assert _aliases(data, "tranthilan", date(2026, 11, 1)) == {f"tranthilan{D}", f"ttlan{D}"}


def test_a_second_rename_keeps_the_first_old_address_and_the_period_end_keeps_it_reserved(
) -> None:
    have = _base()
    _box(have, "ttlan").update(address="tranlan", renamed_from="ttlan")
    live = live_of(have)
    want = copy.deepcopy(have)
    want["policy"]["history"] = {"alias_days": 30}
    _box(want, "tranlan").update(address="tranthilan", renamed_from=[
        "ttlan", {"address": "tranlan", "date": "2026-11-01", "request": "31/QĐ-VPB"}])
    p = plan(build(want), live, today=TODAY)
    assert p.ok, p.refusals
    mod = next(c for c in p.changes if c.kind == "modify" and c.subject == f"tranthilan{D}")
    # nothing is lost: both old addresses still deliver (the period runs to 2026-12-01)
    assert "mailAlias" not in mod.delete
    # after the period the alias goes, and the address stays on the entry as reserved
    later = plan(build(want), live, today=date(2026, 12, 1))
    mod = next(c for c in later.changes if c.kind == "modify" and c.subject == f"tranthilan{D}")
    assert mod.delete["mailAlias"] == (f"tranlan{D}",)
    assert f"tranlan{D}" in mod.add[FORMER]


def test_an_entry_made_before_ids_is_found_by_any_previous_address() -> None:
    have = _base()
    live = live_of(have)
    key = person("ttlan")
    live[key].pop("mailUidNumber")
    want = copy.deepcopy(have)
    _box(want, "ttlan").update(address="tranthilan", renamed_from=["ttlan", "tranlan"])
    p = plan(build(want), live, today=TODAY)
    r = next(c for c in p.changes if c.kind == "rename")
    assert normalise_dn(r.old_dn or "") == key


@pytest.mark.parametrize("taken", ["previous", "reserved"])
def test_address_never_proposes_a_previous_or_reserved_address(
        taken: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = GOOD.read_text(encoding="utf-8")
    if taken == "previous":
        text = text.replace("aliases: [tuan.na]", "aliases: [tuan.na]\n    renamed_from: "
                            "[lvlong, { address: long.le, date: 2025-01-02 }]")
    else:
        text += "reserved:\n  - { address: lvlong, reason: purged 2025-03-01 }\n"
    data = tmp_path / "m.yaml"
    data.write_text(text, encoding="utf-8")
    assert main(["validate", "--today", "2026-11-29", str(data)]) == 0
    capsys.readouterr()
    assert main(["address", "Lê Văn Long", "--data", str(data)]) == 0
    assert capsys.readouterr().out == f"lvlong2{D}\n"
