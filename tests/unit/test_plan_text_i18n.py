"""The plan's own words go through the catalog (mailgov.i18n), so `--lang vi` reads them in
Vietnamese: the refusals MG607/MG608, the notes (guards, override), the scheduled lines and
the reasons mailgov writes (a domain switch, a merger, a rename, an archive, a purge).

How: a translator that marks every message it is asked for (``⟦msgid⟧``) replaces the active
catalog. A sentence built outside ``_()`` (an f-string) comes out unmarked, one translated
only in parts comes out in pieces, and the facts (counts, dates, addresses) must still be
filled in after the translation (named placeholders). This does not depend on the Vietnamese
catalog having the new strings yet (tools/i18n.py adds them; test_i18n checks it is
complete), and the extraction test below checks that the catalog will have them.
"""

from __future__ import annotations

import copy
import gettext
import json
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from mailgov import i18n
from mailgov.model import build
from mailgov.plan import plan
from mailgov.reconcile import PlanContext
from mailgov.report_plan import render_json, render_markdown
from mailgov.reviewed import checksum
from mailgov.validate import validate
from tests.unit.test_plan import TODAY, _base, _box, live_of

ROOT = Path(__file__).resolve().parents[2]
D = "@monre.gov.vn"


class _Marked(gettext.NullTranslations):
    def gettext(self, message: str) -> str:
        return f"⟦{message}⟧"

    def ngettext(self, msgid1: str, msgid2: str, n: int) -> str:
        return f"⟦{msgid1 if n == 1 else msgid2}⟧"


@pytest.fixture
def marked(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(i18n, "_active", _Marked())
    yield


def test_mg607_and_the_notes_are_one_message_each(marked: None) -> None:
    have = _base()
    want = copy.deepcopy(have)
    want["policy"]["safety"]["max_disable_share"] = 0.01
    _box(want, "ttlan")["quota_mb"] = 4096
    p = plan(build(want), live_of(have), today=TODAY, base=build(have),
             allow_mass_change="12/QĐ-BNNMT")
    assert p.refusals == (
        "MG607 ⟦the data changes policy.safety or policy.protected, and the plan holds 1 "
        "other change(s); change the guards alone in one reviewed change, the rest after it⟧",)
    assert p.notes == (
        "⟦OVERRIDE of the mass-change caps: 12/QĐ-BNNMT⟧",
        "⟦guards from ⟦the base of the review⟧: max_disable_share 1%, max_address_change_share "
        "30%, max_modify_share 30% (floor 10), protected 2⟧")
    alone = plan(build(want), live_of(want), today=TODAY, base=build(have),
                 allow_mass_change=True)
    assert alone.ok and alone.notes == (
        "⟦OVERRIDE of MG601 without a reason (the caps MG609/MG610 still apply: name a reason "
        "to pass them)⟧",
        "⟦guards from ⟦the base of the review⟧: max_disable_share 1%, max_address_change_share "
        "30%, max_modify_share 30% (floor 10), protected 2⟧",
        "⟦the guards change (policy.safety / policy.protected); alone, as they must⟧")


def test_mg608_and_the_date_notes(marked: None) -> None:
    result = validate(ROOT / "data" / "mailboxes.yaml", today=TODAY)
    assert result.directory is not None
    live = live_of(_base())
    ahead = PlanContext(date(2026, 12, 10), TODAY, max_ahead_days=2, base_path="main.yaml")
    refusals = ahead.plan(result.directory, live).refusals
    mg608 = [r for r in refusals if r.startswith("MG608")]
    assert mg608 == [
        f"MG608 ⟦the plan is dated 2026-12-10, {(date(2026, 12, 10) - TODAY).days} day(s) "
        f"ahead of the clock ({TODAY}); at most 2 allowed (mailgov_today_max_ahead_days in "
        "the inventory): a date ahead would bring archives and purges forward⟧"]
    back = PlanContext(date(2026, 1, 1), TODAY, base_path="main.yaml")
    notes = back.plan(result.directory, live).notes
    days = (date(2026, 1, 1) - TODAY).days
    assert f"⟦dated 2026-01-01, {days:+d} day(s) from the clock ({TODAY})⟧" in notes
    assert "⟦base of the review: main.yaml⟧" in notes


def test_scheduled_lines_are_messages(marked: None) -> None:
    have = _base()
    want = copy.deepcopy(have)
    _box(want, "ttlan").update(state="suspended", suspended={
        "date": "2027-01-10", "until": "2027-02-01", "reason": "Nghỉ phép",
        "request": "9/QĐ-VPB"})
    _box(want, "natuan2").update(unit="vp", moved_from={
        "unit": "tcmt", "date": "2027-01-05", "request": "8/QĐ-VPB"})
    p = plan(build(want), live_of(have), today=TODAY)
    assert p.scheduled == (
        "2027-01-05 ⟦move {a} from unit {o} to {n} ({r})⟧".format(
            a=f"natuan2{D}", o="tcmt", n="vp", r="8/QĐ-VPB"),
        f"2027-01-10 ⟦suspend ttlan{D} (Nghỉ phép, 9/QĐ-VPB)⟧",
        f"2027-02-01 ⟦end the suspension of ttlan{D} (9/QĐ-VPB)⟧")
    md = render_markdown(p)
    assert f"- 2027-01-10 ⟦suspend ttlan{D} (Nghỉ phép, 9/QĐ-VPB)⟧" in md.splitlines()


def _domain_switch() -> tuple[dict[str, Any], dict[str, Any]]:
    have = _base()
    want = copy.deepcopy(have)
    want["organization"]["domain"] = "mae.gov.vn"
    want["organization"]["alias_domains"] = [
        {"domain": "monre.gov.vn", "request": "35/2025/NĐ-CP"}]
    return have, want


def test_a_domain_switch_reason_is_translated_in_the_text_not_in_the_json(
        monkeypatch: pytest.MonkeyPatch) -> None:
    have, want = _domain_switch()
    english = plan(build(want), live_of(have), today=TODAY, allow_mass_change="35/2025")
    monkeypatch.setattr(i18n, "_active", _Marked())
    p = plan(build(want), live_of(have), today=TODAY, allow_mass_change="35/2025")
    # the JSON and the reviewed plan's checksum do not change with the language ...
    assert {c.reason for c in p.changes} == {"35/2025/NĐ-CP, domain monre.gov.vn -> mae.gov.vn"}
    assert checksum(p.changes) == checksum(english.changes)
    assert "⟦" not in json.dumps([c.to_dict() for c in p.changes], ensure_ascii=False)
    assert "35/2025/NĐ-CP, domain monre.gov.vn -> mae.gov.vn" in render_json(p)
    # ... the Markdown says it in the reader's language
    assert f"- `ttlan{D.replace('monre', 'mae')}`: " in render_markdown(p)
    assert "(⟦35/2025/NĐ-CP, domain monre.gov.vn -> mae.gov.vn⟧)" in render_markdown(p)


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    path = tmp_path / "mailboxes.yaml"
    shutil.copy(ROOT / "data" / "mailboxes.yaml", path)
    return path


def test_merger_and_rename_reasons_are_messages(sample: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.unit.test_unit_history import DAY, _edit, _live

    live = _live(sample)
    assert _edit("unit", "merge", "ttb", "vpb", "--request", "5/QĐ-BNNMT", "--date",
                 "2026-12-01", "--data", str(sample)) == 0
    assert _edit("unit", "rename", "tcmt", "--abbr", "mt", "--request", "6/QĐ-BNNMT",
                 "--date", "2026-12-01", "--data", str(sample)) == 0
    d = validate(sample, today=DAY).directory
    assert d is not None
    monkeypatch.setattr(i18n, "_active", _Marked())  # after the edits: main() sets "en"
    md = render_markdown(plan(d, live, today=DAY, allow_mass_change="5/QĐ-BNNMT"))
    assert "(⟦5/QĐ-BNNMT, merged into vpb⟧)" in md
    assert "(⟦6/QĐ-BNNMT, unit renamed tcmt -> mt⟧)" in md


def test_the_new_messages_are_extracted_for_the_catalog() -> None:
    """`make i18n` (tools/i18n.py) will put each of them in the .po for the translator."""
    from tools.i18n import extract

    ids = {m.id for m in extract() if m.id}
    for msgid in (
            "the data changes policy.safety or policy.protected, and the plan holds {count} "
            "other change(s); change the guards alone in one reviewed change, the rest after it",
            "the plan is dated {today}, {ahead} day(s) ahead of the clock ({clock}); at most "
            "{most} allowed (mailgov_today_max_ahead_days in the inventory): a date ahead "
            "would bring archives and purges forward",
            "guards from {source}: max_disable_share {disable}, max_address_change_share "
            "{address}, max_modify_share {modify} (floor {floor}), protected {protected}",
            "OVERRIDE of the mass-change caps: {reason}",
            "suspend {address} ({reason}, {request})",
            "primary domain {old} -> {new} ({keep}) ({request})",
            "{request}, domain {old} -> {new}", "{request}, merged into {unit}",
            "{request}, unit renamed {old} -> {new}",
            "cancelled, retained until {day} (recorded in the directory when the cancel was "
            "applied); purge follows the archive",
            "retention recorded in the directory over and archived (sha256 {sha256}): delete "
            "the entry and the store",
            "the base of the review", "defaults"):
        assert msgid in ids, msgid
