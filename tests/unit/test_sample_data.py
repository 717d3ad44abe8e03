"""The committed sample data/mailboxes.yaml: valid, realistic, and showing every case.

These tests read the committed file (what admins edit), not the script that first made it:
an edit that drops a documented case, breaks the clash numbering or fails validation shows
up here.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest

from mailgov.loader import load
from mailgov.naming import NamingPolicy, Person
from mailgov.validate import validate

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "mailboxes.yaml"
TODAY = date(2026, 11, 29)  # the sample's "today": nothing in it is dated later


@pytest.fixture(scope="module")
def data() -> dict:
    return load(DATA).data


@pytest.fixture(scope="module")
def by_address(data: dict) -> dict[str, dict]:
    return {m["address"]: m for m in data["mailboxes"]}


def test_validates_with_zero_problems() -> None:
    result = validate(DATA, today=TODAY)
    assert [p.format() for p in result.problems] == []


def test_validates_today_too() -> None:
    # The dates are real and in the past, so validation must not depend on a frozen clock.
    assert validate(DATA).problems == []


def test_first_line_points_editors_at_the_schema() -> None:
    first = DATA.read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=../schema/mailboxes.schema.json"


def test_organization_and_it_unit(data: dict) -> None:
    org = data["organization"]
    assert org["domain"] == "monre.gov.vn"
    assert org["base_dn"] == "dc=monre,dc=gov,dc=vn"
    assert org["it_unit"] == "cntt"
    assert "cntt" in {u["id"] for u in data["units"]}


def test_real_unit_structure(data: dict) -> None:
    ids = {u["id"] for u in data["units"]}
    for uid in ("vpb", "ttb", "khtc", "khcn", "htqt", "pc", "tccb", "tcqldd", "tcmt",
                "tckttv", "tcdcks", "tcbhd", "qltnn", "bdkh", "dobd", "vtqg", "cntt"):
        assert uid in ids
    subs = [u for u in data["units"] if "parent" in u]
    assert {u["parent"] for u in subs} >= {"tcmt", "cntt"}
    for unit in data["units"]:
        assert unit["name"] and unit["name_en"]


def test_every_unit_with_staff_has_an_active_head_there(data: dict, by_address: dict) -> None:
    staffed = {m["unit"] for m in data["mailboxes"] if m.get("kind", "personal") == "personal"}
    with_delegates = 0
    for unit in data["units"]:
        if unit["id"] not in staffed:
            continue
        head = by_address[unit["head"]]
        assert head["unit"] == unit["id"]
        assert head.get("role") == "head" and head.get("state", "active") == "active"
        with_delegates += bool(unit.get("mailbox", {}).get("delegates"))
    assert with_delegates >= 5


def test_about_three_hundred_people_with_realistic_names(data: dict) -> None:
    people = [m for m in data["mailboxes"] if "naming_exemption" not in m]
    assert 250 <= len(people) <= 350
    syllables = Counter(len(m["name"].split()) for m in people)
    assert syllables[2] >= 2 and syllables[4] >= 5 and syllables[5] >= 1
    surnames = Counter(m["name"].split()[0] for m in people)
    assert surnames.most_common(1)[0][0] == "Nguyễn"
    assert len(surnames) >= 12
    assert all(m["name"] != m["name"].lower() for m in people)  # written as people write them


def test_name_clashes_are_numbered_in_creation_order(data: dict, by_address: dict) -> None:
    for base, name, n in (("natuan", "Nguyễn Anh Tuấn", 3), ("ttlan", "Trần Thị Lan", 2)):
        chain = [base] + [f"{base}{i}" for i in range(2, n + 1)]
        records = [by_address[a] for a in chain]
        assert {r["name"] for r in records} == {name}
        created = [r["created"] for r in records]
        assert created == sorted(created)
    assert by_address["nvhung"]["name"] != by_address["nvhung2"]["name"]


def test_personal_addresses_follow_the_policy(data: dict) -> None:
    naming = NamingPolicy.from_dict(data["policy"]["naming"])
    units = {u["id"]: u for u in data["units"]}

    def local(uid: str) -> str:
        parent = units[uid].get("parent")
        return naming.unit_local(uid, local(parent) if parent else None)

    for m in data["mailboxes"]:
        if "naming_exemption" not in m:
            person = Person(m["name"], unit=local(m["unit"]), birth=m.get("birth"),
                            id_digits=m.get("id_digits"))
            assert naming.conforms(person, m["address"]), m["address"]


def test_every_lifecycle_case_is_present(data: dict) -> None:
    mbs = data["mailboxes"]
    states = Counter(m.get("state", "active") for m in mbs)
    assert states["active"] > 0.8 * len(mbs)
    assert states["suspended"] >= 3 and states["cancelled"] >= 5
    reasons = {m["cancelled"]["reason"] for m in mbs if "cancelled" in m}
    assert reasons >= {"retired", "transferred", "left", "deceased", "duplicate", "other"}
    retention = data["policy"]["retention"]
    past = [
        m for m in mbs if "cancelled" in m
        and date.fromisoformat(m["cancelled"]["date"]) + timedelta(
            days=retention["heads_days" if m.get("role") == "head" else "staff_days"]) < TODAY
    ]
    assert past, "no cancellation old enough to be past retention"
    assert any(m.get("role") == "head" for m in mbs if "cancelled" in m)


def test_every_change_carries_a_request_and_no_date_is_later_than_today(data: dict) -> None:
    for m in data["mailboxes"]:
        assert m["request"]
        assert date.fromisoformat(m["created"]) <= TODAY
        for block in ("suspended", "cancelled", "naming_exemption"):
            if block in m:
                assert m[block]["request"]
        for block in ("suspended", "cancelled"):
            if block in m:
                assert date.fromisoformat(m["created"]) <= date.fromisoformat(
                    m[block]["date"]) <= TODAY
    for unit in data["units"]:
        assert unit["mailbox"]["request"]


def test_protected_admins_aliases_forwarding_affiliates(data: dict, by_address: dict) -> None:
    for local in data["policy"]["protected"]:
        m = by_address[local]
        assert m["unit"] == "cntt" and m["role"] == "admin" and "naming_exemption" in m
    admins = [m for m in data["mailboxes"] if m.get("role") == "admin"
              and "naming_exemption" not in m]
    assert len(admins) >= 2
    assert sum("aliases" in m for m in data["mailboxes"]) >= 2
    forwards = [a for m in data["mailboxes"] for a in m.get("forward_to", [])]
    assert len(forwards) >= 2 and all(a.endswith(".gov.vn") for a in forwards)
    affiliates = [m for m in data["mailboxes"] if m.get("kind") == "affiliate"]
    names = {m["name"] for m in affiliates}
    assert "Công đoàn Bộ Tài nguyên và Môi trường" in names
    assert "Hội Trắc địa - Bản đồ - Viễn thám Việt Nam" in names
    assert all(m["sponsor"] for m in affiliates)
