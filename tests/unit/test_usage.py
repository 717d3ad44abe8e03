"""Usage snapshots and the evaluation's figures (mailgov/usage.py), against figures by hand.

The fixture (tests/data/usage/): data.yaml (units vpb headcount 4, tcmt headcount 3, vp and
cntt without) and two snapshots. Snapshot of 2026-12-07 (a Monday), window 30 days =
2026-11-08 … 2026-12-07, inactivity lock 90 days, first-login change 5 days (admins 1):

    natuan  vpb   login 12-04, sent 3 on 12-03   regular 7/30/90/180   50 % of quota: good
    ptminh  vpb   login 11-10, sent 1 on 11-10   regular 30/90/180     98.5 %: warning
    pmhieu  vpb   never logged in, initial password since 11-20: overdue, inactive; 0 %: good
    ntlan   tcmt  login 12-06, sent nothing      never regular         99.5 %: can't send
    nvquan  cntt  login 08-01, sent 2 on 08-01   regular 180 only; inactive; 100 %; locked
    vpb (unit mailbox) read on the 20 working days 11-09 … 12-04, not on Monday 12-07 (21)
    ghost   a row the data has no mailbox for
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from mailgov import usage
from mailgov.validate import validate

DATA = Path(__file__).resolve().parents[1] / "data" / "usage"


@pytest.fixture(scope="module")
def checked() -> object:
    result = validate(str(DATA / "data.yaml"), today=date(2026, 12, 7))
    assert result.ok, result.problems
    return result


def evaluation(checked: object, window: int = 30, name: str = "usage-2026-12-07.json"
               ) -> usage.Evaluation:
    snap = usage.load(DATA / name)
    return usage.evaluate(checked.directory, snap, checked.unit_locals,  # type: ignore[attr-defined]
                          window)


def test_headcount_reaches_the_model(checked: object) -> None:
    d = checked.directory  # type: ignore[attr-defined]
    assert {u.id: u.headcount for u in d.units} == {"vpb": 4, "tcmt": 3, "vp": None,
                                                   "cntt": None}


def test_unit_figures_by_hand(checked: object) -> None:
    ev = evaluation(checked)
    vpb = ev.unit("vpb")
    assert (vpb.mailboxes, vpb.headcount) == (3, 4)
    assert vpb.adoption == pytest.approx(0.75)
    assert vpb.regular == {7: 1, 30: 2, 90: 2, 180: 2}
    assert vpb.logged_in == {7: 1, 30: 2, 90: 2, 180: 2}
    assert vpb.sent == {7: 3, 30: 4, 90: 4, 180: 4}
    assert vpb.received == {7: 5 + 1, 30: 5 + 2 + 1, 90: 8, 180: 8}
    assert vpb.inactive == 1 and vpb.initial_overdue == 1
    assert vpb.buckets == {"good": 2, "warning": 1, "cant_send": 0, "cant_send_receive": 0,
                           "unknown": 0}
    assert (vpb.unit_mailbox_read_days, vpb.working_days) == (20, 21)
    assert vpb.read_every_working_day is False
    assert vpb.published is True
    tcmt = ev.unit("tcmt")  # natuan2 is suspended: not counted
    assert (tcmt.mailboxes, tcmt.regular[30], tcmt.inactive) == (1, 0, 0)
    assert tcmt.buckets["cant_send"] == 1 and tcmt.published is False
    cntt = ev.unit("cntt")
    assert cntt.adoption is None and cntt.regular == {7: 0, 30: 0, 90: 0, 180: 1}
    assert (cntt.inactive, cntt.locked, cntt.buckets["cant_send_receive"]) == (1, 1, 1)
    assert ev.unit("vp").mailboxes == 0


def test_ministry_and_ranking(checked: object) -> None:
    ev = evaluation(checked)
    m = ev.ministry
    assert (m.mailboxes, m.headcount, m.counted) == (5, 7, 4)  # cntt has no headcount
    assert m.adoption == pytest.approx(4 / 7)
    assert m.regular[30] == 2 and m.regular_share(30) == pytest.approx(2 / 5)
    assert ev.unknown_rows == 1  # ghost
    # vpb 2 of 4 staff regular; tcmt 0 of 3 (adoption 1/3) before cntt 0 (no headcount).
    assert {f.id: f.rank for f in ev.units} == {"vpb": 1, "tcmt": 2, "cntt": 3, "vp": None}
    assert [f.id for f in ev.units if f.rank] == ["vpb", "tcmt", "cntt"]


def test_window_changes_the_figures(checked: object) -> None:
    ev = evaluation(checked, window=7)
    assert ev.unit("vpb").regular_share(7) == pytest.approx(1 / 3)
    assert ev.unit("vpb").working_days == 5  # 12-01 … 12-07: Tue-Fri and Monday
    with pytest.raises(ValueError, match="one of 7, 30, 90, 180"):
        evaluation(checked, window=14)


def test_people_rows(checked: object) -> None:
    people = {p.address: p for p in evaluation(checked).unit("vpb").people}
    assert set(people) == {"natuan", "ptminh", "pmhieu"}
    assert people["pmhieu"].initial_overdue and people["pmhieu"].inactive
    assert people["natuan"].last_login == date(2026, 12, 4)
    assert people["ptminh"].bucket == "warning" and people["ptminh"].storage_mib == 2017.3


def test_buckets_at_the_thresholds() -> None:
    q = 1000 * 1024
    def b(used: float) -> str:
        return usage.bucket(usage.Usage(storage_kib=int(q * used), quota_kib=q))
    assert [b(x) for x in (0.0, 0.979, 0.98, 0.989, 0.99, 0.999, 1.0, 1.1)] == [
        "good", "good", "warning", "warning", "cant_send", "cant_send", "cant_send_receive",
        "cant_send_receive"]
    assert usage.bucket(None) == "unknown" == usage.bucket(usage.Usage(quota_kib=q))


def test_initial_password_deadline_is_strict(checked: object, tmp_path: Path) -> None:
    # pmhieu's initial password is from 11-20; the deadline is 5 days: overdue from 11-26.
    doc = json.loads((DATA / "usage-2026-12-07.json").read_text())
    for day, overdue in (("2026-11-25", False), ("2026-11-26", True)):
        doc["date"] = day
        snap = usage.parse(doc)
        ev = usage.evaluate(checked.directory, snap, checked.unit_locals)  # type: ignore[attr-defined]
        assert ev.unit("vpb").initial_overdue == int(overdue), day


# --------------------------------------------------------------------------- bad input


def write(tmp_path: Path, doc: object) -> Path:
    p = tmp_path / "usage-2026-12-07.json"
    p.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return p


def good() -> dict[str, object]:
    return json.loads((DATA / "usage-2026-12-07.json").read_text())


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.update(format="x"), "not a mailgov usage snapshot"),
    (lambda d: d.update(version=2), "snapshot format version 2; this mailgov reads version 1"),
    (lambda d: d.update(date="2026-02-30"), "'2026-02-30' is not a real date"),
    (lambda d: d["mailboxes"]["natuan"].update(sent={"2026-12-03": -1}),
     "mailboxes.natuan.sent.2026-12-03: -1 is not a count"),
    (lambda d: d["mailboxes"]["natuan"].update(last_login="yesterday"),
     "mailboxes.natuan.last_login: 'yesterday' is not a UTC time"),
    (lambda d: d["mailboxes"]["natuan"].update(logins=3), "unknown field 'logins'"),
    (lambda d: d.pop("mailboxes"), "mailboxes: expected an object"),
])
def test_corrupt_snapshot_named(tmp_path: Path, change: object, message: str) -> None:
    doc = good()
    change(doc)  # type: ignore[operator]
    with pytest.raises(usage.SnapshotError, match=r"usage-2026-12-07\.json: ") as exc:
        usage.load(write(tmp_path, doc))
    assert message in str(exc.value)


def test_missing_and_unparsable(tmp_path: Path) -> None:
    with pytest.raises(usage.SnapshotError, match="no such snapshot"):
        usage.load(tmp_path / "usage-2026-01-01.json")
    with pytest.raises(usage.SnapshotError, match=r"corrupt snapshot: .* line 1 column 12"):
        usage.load(write(tmp_path, '{"format": }'))


def test_other_organization_and_future(checked: object) -> None:
    doc = good()
    doc["organization"] = {"domain": "mard.gov.vn"}
    with pytest.raises(usage.SnapshotError, match=r"snapshot of mard\.gov\.vn, the data file is "
                       r"monre\.gov\.vn: another organization"):
        usage.check_against(usage.parse(doc), checked.directory, date(2026, 12, 7))  # type: ignore[attr-defined]
    with pytest.raises(usage.SnapshotError, match="dated 2026-12-07, after today"):
        usage.check_against(usage.parse(good()), checked.directory, date(2026, 12, 6))  # type: ignore[attr-defined]
    usage.check_against(usage.parse(good()), checked.directory, date(2026, 12, 7))  # type: ignore[attr-defined]


def test_retention(tmp_path: Path) -> None:
    for day in ("2025-10-01", "2025-11-03", "2026-12-07"):
        (tmp_path / f"usage-{day}.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("")
    found = [d.isoformat() for d, _ in usage.snapshots_in(tmp_path)]
    assert found == ["2025-10-01", "2025-11-03", "2026-12-07"]
    old = usage.expired(tmp_path, date(2026, 12, 7))
    assert [p.name for p in old] == ["usage-2025-10-01.json"]  # 432 days > 400; 399 kept
