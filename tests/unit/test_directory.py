"""mailgov.directory: the data file → desired LDAP entries (layout in docs/directory.md)."""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from mailgov.directory import ADMIN_LOCK, DirectoryError, Entry, desired_entries, entries_json, main
from mailgov.model import Directory, build
from mailgov.validate import validate
from tools.generate import POLICY

BASE = "dc=monre,dc=gov,dc=vn"
REPO = Path(__file__).resolve().parents[2]

DATA: dict[str, Any] = {
    "version": 1,
    "organization": {"name": "Bộ Tài nguyên và Môi trường", "domain": "monre.gov.vn",
                     "base_dn": BASE, "it_unit": "cntt"},
    "policy": {**copy.deepcopy(POLICY), "protected": ["natuan"]},
    "units": [
        {"id": "vpb", "name": "Văn phòng Bộ", "head": "natuan",
         "mailbox": {"quota_mb": 20480, "delegates": ["natuan", "ttlan"]}},
        {"id": "tcmt", "name": "Tổng cục Môi trường"},
        {"id": "vp", "name": "Văn phòng Tổng cục", "parent": "tcmt"},
        {"id": "cntt", "name": "Cục Công nghệ thông tin"},
    ],
    "mailboxes": [
        {"address": "natuan", "id": 1, "name": "Nguyễn Anh Tuấn", "unit": "vpb", "role": "head",
         "title": "Chánh Văn phòng", "aliases": ["tuan.na"], "renamed_from": "tuan.nguyen",
         "forward_to": ["tuan@mard.gov.vn"]},
        {"address": "ttlan", "id": 2, "name": "Trần Thị Lan", "unit": "vpb", "quota_mb": 4096},
        {"address": "natuan2", "id": 3, "name": "Nguyễn Anh Tuấn", "unit": "tcmt",
         "state": "suspended",
         "suspended": {"date": "2026-10-01", "reason": "Nghỉ phép", "request": "101/QĐ-TCMT"}},
        {"address": "lthoa", "id": 4, "name": "Lê Thị Hoa", "unit": "vp", "state": "cancelled",
         "cancelled": {"date": "2026-06-30", "reason": "retired", "request": "77/QĐ-TCCB"}},
        {"address": "hoimoitruong", "id": 5, "name": "Hội Môi trường Việt Nam", "kind": "affiliate",
         "sponsor": "vpb", "unit": "vpb",
         "naming_exemption": {"reason": "Tên tổ chức", "request": "9/QĐ-VPB"}},
    ],
}


def model(data: dict[str, Any] | None = None) -> Directory:
    return build(DATA if data is None else data)


def by_dn(data: dict[str, Any] | None = None) -> dict[str, Entry]:
    return {e.dn: e for e in desired_entries(model(data))}


def person(local: str) -> str:
    return f"uid={local},ou=people,{BASE}"


def unit(uid: str) -> str:
    return f"ou={uid},ou=units,{BASE}"


def group(name: str) -> str:
    return f"cn={name},ou=groups,{BASE}"


@pytest.mark.parametrize(
    ("dn", "attr", "values"),
    [
        # personal mailbox: primary, aliases (local parts get the domain; repeats dropped)
        (person("natuan"), "mail", ("natuan@monre.gov.vn",)),
        # ... and the old address of a rename (renamed_from) keeps delivering
        (person("natuan"), "mailAlias", ("natuan@monre.gov.vn", "tuan.na@monre.gov.vn",
                                         "tuan.nguyen@monre.gov.vn")),
        (person("natuan"), "mailForwardingAddress", ("tuan@mard.gov.vn",)),
        (person("natuan"), "cn", ("Nguyễn Anh Tuấn",)),
        (person("natuan"), "sn", ("Nguyễn",)),
        (person("natuan"), "givenName", ("Tuấn",)),
        (person("natuan"), "businessCategory", ("head",)),
        (person("natuan"), "employeeType", ("personal",)),
        (person("natuan"), "title", ("Chánh Văn phòng",)),
        (person("natuan"), "ou", ("vpb",)),
        (person("natuan"), "mailHomeDirectory", ("/var/vmail/by-id/1",)),  # by id, not address
        (person("natuan"), "mailUidNumber", ("1",)),
        # quota: policy default for the kind, or the mailbox's own; MiB -> KiB
        (person("natuan"), "mailQuota", (str(2048 * 1024),)),
        (person("ttlan"), "mailQuota", (str(4096 * 1024),)),
        (person("hoimoitruong"), "mailQuota", (str(1024 * 1024),)),
        (person("hoimoitruong"), "employeeType", ("affiliate",)),
        (person("hoimoitruong"), "seeAlso", (unit("vpb"),)),
        # lifecycle
        (person("natuan"), "mailEnabled", ("TRUE",)),
        (person("natuan2"), "mailEnabled", ("TRUE",)),
        (person("natuan2"), "pwdAccountLockedTime", (ADMIN_LOCK,)),
        (person("lthoa"), "mailEnabled", ("FALSE",)),
        (person("lthoa"), "pwdAccountLockedTime", (ADMIN_LOCK,)),
        # unit mailboxes: top level and sub-unit addresses, quota, parent
        (unit("vpb"), "mail", ("vpb@monre.gov.vn",)),
        (unit("vpb"), "mailQuota", (str(20480 * 1024),)),
        (unit("tcmt"), "mailQuota", (str(10240 * 1024),)),
        (unit("vp"), "mail", ("vp.tcmt@monre.gov.vn",)),
        (unit("vp"), "seeAlso", (unit("tcmt"),)),
        (unit("vp"), "description", ("Văn phòng Tổng cục",)),
        # distribution lists: active + suspended members, nested sub-unit lists
        (group("vpb-all"), "member", (person("hoimoitruong"), person("natuan"), person("ttlan"))),
        (group("vpb-all"), "mail", ("vpb-all@monre.gov.vn",)),
        (group("tcmt-all"), "member", (person("natuan2"), group("vp.tcmt-all"))),
        # only a cancelled member: the list falls back to the unit mailbox
        (group("vp.tcmt-all"), "member", (unit("vp"),)),
        (group("vp.tcmt-all"), "mailAlias", ("vp.tcmt-all@monre.gov.vn",)),
        # delegates of a unit mailbox
        (group("vpb-delegates"), "member", (person("natuan"), person("ttlan"))),
    ],
)
def test_attribute(dn: str, attr: str, values: tuple[str, ...]) -> None:
    assert by_dn()[dn].attributes[attr] == values


@pytest.mark.parametrize(
    ("dn", "attr"),
    [
        (person("natuan"), "pwdAccountLockedTime"),  # active: no lock
        (person("ttlan"), "mailForwardingAddress"),  # no forward_to
        (person("ttlan"), "title"),
        (person("natuan"), "seeAlso"),  # only affiliates name a sponsor
        (person("natuan"), "userPassword"),  # never from the data
        (unit("vpb"), "seeAlso"),  # top-level unit
        (unit("vpb"), "userPassword"),  # nobody logs in as a unit
    ],
)
def test_attribute_absent(dn: str, attr: str) -> None:
    assert attr not in by_dn()[dn].attributes


def test_object_classes() -> None:
    entries = by_dn()
    mail = {"PostfixBookMailAccount", "PostfixBookMailForward"}
    assert mail | {"inetOrgPerson"} <= set(entries[person("natuan")].object_classes)
    assert mail | {"organizationalUnit"} <= set(entries[unit("vpb")].object_classes)
    assert "groupOfNames" in entries[group("vpb-all")].object_classes
    assert "PostfixBookMailForward" not in entries[group("vpb-delegates")].object_classes


def test_only_units_with_delegates_get_a_delegates_group() -> None:
    dns = set(by_dn())
    assert group("vpb-delegates") in dns
    assert group("tcmt-delegates") not in dns


def test_fixture_passes_validation(tmp_path: Path) -> None:
    data_file = tmp_path / "mailboxes.yaml"
    data_file.write_text(yaml.safe_dump(DATA, allow_unicode=True), encoding="utf-8")
    result = validate(data_file, today=date(2026, 11, 29))
    assert result.ok, [p.format() for p in result.problems]


def test_add_order_puts_parents_and_members_first() -> None:
    order = [e.dn for e in desired_entries(model())]
    assert order[:3] == [f"ou={c},{BASE}" for c in ("units", "people", "groups")]
    position = {dn: i for i, dn in enumerate(order)}
    for entry in desired_entries(model()):
        parent = entry.dn.split(",", 1)[1]
        if parent != BASE:
            assert position[parent] < position[entry.dn], entry.dn
        for member in entry.attributes.get("member", ()):
            assert position[member] < position[entry.dn], (entry.dn, member)


def test_every_address_is_unique_across_entries() -> None:
    seen: dict[str, str] = {}
    for entry in desired_entries(model()):
        for address in entry.attributes.get("mailAlias", ()):
            assert address not in seen, (address, entry.dn, seen.get(address))
            seen[address] = entry.dn


def test_sub_unit_template_comes_from_the_policy() -> None:
    data = copy.deepcopy(DATA)
    data["policy"]["naming"]["unit"]["sub_unit_template"] = "{parent}.{abbr}"
    assert by_dn(data)[unit("vp")].attributes["mail"] == ("tcmt.vp@monre.gov.vn",)
    assert group("tcmt.vp-all") in by_dn(data)


def test_names_are_nfc() -> None:
    """A file saved in NFD (decomposed diacritics) gives the same entries as NFC."""
    import unicodedata

    data = copy.deepcopy(DATA)
    data["mailboxes"][1]["name"] = unicodedata.normalize("NFD", "Trần Thị  Lan")
    assert by_dn(data)[person("ttlan")].attributes["cn"] == ("Trần Thị Lan",)
    assert by_dn(data)[person("ttlan")] == by_dn()[person("ttlan")]


def test_entries_carry_unit_and_kind_for_the_planner() -> None:
    entries = by_dn()
    assert (entries[person("lthoa")].kind, entries[person("lthoa")].unit) == ("person", "vp")
    assert (entries[group("vp.tcmt-all")].kind, entries[group("vp.tcmt-all")].unit) == (
        "list", "vp")
    assert entries[group("vpb-delegates")].kind == "delegates"
    assert "kind" not in entries[person("lthoa")].to_dict()


def test_output_is_deterministic_and_json() -> None:
    assert entries_json(model()) == entries_json(model(copy.deepcopy(DATA)))
    assert entries_json(DATA) == entries_json(model())  # a parsed YAML mapping works too
    parsed = json.loads(entries_json(model()))
    assert parsed[3]["dn"] == unit("vpb")
    assert parsed[3]["attributes"]["description"] == ["Văn phòng Bộ"]


def test_invalid_mapping_is_a_message() -> None:
    data = copy.deepcopy(DATA)
    del data["policy"]
    with pytest.raises(DirectoryError, match="mailgov validate"):
        desired_entries(data)


def test_cli_prints_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data_file = tmp_path / "mailboxes.yaml"
    data_file.write_text(yaml.safe_dump(DATA, allow_unicode=True), encoding="utf-8")
    assert main([str(data_file)]) == 0
    assert json.loads(capsys.readouterr().out)[0]["dn"] == f"ou=units,{BASE}"


@pytest.mark.parametrize(
    ("content", "needle"),
    [(None, "MG001"), ("organization: {}\n", "MG101")],
)
def test_cli_errors_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, needle: str
) -> None:
    data_file = tmp_path / "mailboxes.yaml"
    if content is not None:
        data_file.write_text(content, encoding="utf-8")
    assert main([str(data_file)]) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert "Traceback" not in err


def test_the_repository_data_file_maps() -> None:
    data_file = REPO / "data" / "mailboxes.yaml"
    if not data_file.exists():
        pytest.skip("no data/mailboxes.yaml in this checkout")
    result = validate(data_file)
    assert result.directory is not None, [p.format() for p in result.problems]
    entries = desired_entries(result.directory)
    people = [e for e in entries if e.dn.startswith("uid=")]
    assert people
    assert all(e.attributes["mail"][0].endswith("@monre.gov.vn") for e in people)


def test_admins_get_the_administrators_password_policy() -> None:
    """role: admin -> pwdPolicySubentry names cn=administrators (PW-07); others get none
    (the overlay's default policy, policy.password.users)."""
    data = copy.deepcopy(DATA)
    data["mailboxes"][1]["role"] = "admin"  # ttlan
    entries = by_dn(data)
    admin = entries[person("ttlan")]
    assert admin.attributes["pwdPolicySubentry"] == (f"cn=administrators,ou=policies,{BASE}",)
    others = [e for dn, e in entries.items() if e.kind == "person" and dn != person("ttlan")]
    assert others and all("pwdPolicySubentry" not in e.attributes for e in others)
