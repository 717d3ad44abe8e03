"""Plan text cites the request that caused each change (issue 14, item 6), not the record's
original request."""

from __future__ import annotations

import copy

from mailgov.model import build
from mailgov.plan import plan, render_markdown
from tests.unit.test_plan import TODAY, _base, _box, live_of

D = "@monre.gov.vn"


def _only(p, kind: str, subject: str):  # type: ignore[no-untyped-def]
    [c] = [c for c in p.changes if c.kind == kind and c.subject == subject]
    return c


def test_a_move_cites_the_edit_s_request_not_the_2016_decision() -> None:
    have = _base()
    want = copy.deepcopy(have)
    _box(want, "natuan2").update(unit="vp", change={"request": "88/QĐ-BNNMT"})
    p = plan(build(want), live_of(have), today=TODAY)
    move = _only(p, "move", f"natuan2{D}")
    assert move.reason == "88/QĐ-BNNMT"  # the record's own request is 5/QĐ-TCMT
    assert f"`natuan2{D}`: " in render_markdown(p) and "(88/QĐ-BNNMT)" in render_markdown(p)


def test_a_move_without_a_change_request_still_cites_the_record() -> None:
    have = _base()
    want = copy.deepcopy(have)
    _box(want, "natuan2")["unit"] = "vp"
    assert _only(plan(build(want), live_of(have), today=TODAY), "move",
                 f"natuan2{D}").reason == "5/QĐ-TCMT"


def test_a_rename_cites_its_own_request() -> None:
    have = _base()
    want = copy.deepcopy(have)
    _box(want, "natuan2").update(address="nguyenanhtuan", renamed_from=[
        {"address": "natuan2", "date": "2026-11-20", "request": "12/QĐ-TCMT"}])
    p = plan(build(want), live_of(have), today=TODAY)
    assert _only(p, "rename", f"nguyenanhtuan{D}").reason == "12/QĐ-TCMT"


def test_a_domain_switch_cites_the_alias_domain_s_request_on_every_entry() -> None:
    have = _base()
    want = copy.deepcopy(have)
    want["organization"]["domain"] = "mae.gov.vn"
    want["organization"]["alias_domains"] = [
        {"domain": "monre.gov.vn", "request": "35/2025/NĐ-CP"}]
    p = plan(build(want), live_of(have), today=TODAY, allow_mass_change="35/2025/NĐ-CP")
    reasons = {c.reason for c in p.changes}
    assert reasons == {"35/2025/NĐ-CP, domain monre.gov.vn -> mae.gov.vn"}, reasons
