"""`mailgov import-ldif` and `mailgov dump` (issue 15 item 3), without servers.

The dump is proven against a real slapd in tests/lab/test_dump.py; here it runs on the live
state a directory loaded from the sample data holds (tests/unit/test_plan.py's live_of).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from test_plan import live_of

from mailgov.cli import main
from mailgov.dump import DumpError, dump, finish, header
from mailgov.loader import load
from mailgov.plan import normalise_dn, plan
from mailgov.validate import validate

HERE = Path(__file__).parent / "ldif"
REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "mailboxes.yaml"
TODAY = "2026-12-07"
REQ = "15/QĐ-CNTT"


def run_import(tmp_path: Path, ldif: str | Path, *extra: str) -> tuple[int, Path]:
    out = tmp_path / "imported.yaml"
    src = ldif if isinstance(ldif, Path) else HERE / ldif
    code = main(["import-ldif", str(src), "--request", REQ, "--today", TODAY, "-o", str(out),
                 *extra])
    return code, out


def records(path: Path) -> dict[str, dict[str, Any]]:
    return {m["address"]: m for m in load(path).data["mailboxes"]}


def test_openldap_export_becomes_a_valid_data_file(tmp_path: Path) -> None:
    code, out = run_import(tmp_path, "openldap.ldif")
    assert code == 0
    assert validate(out, today=date.fromisoformat(TODAY)).ok
    data = load(out).data  # dates stay text, as mailgov reads them
    assert [u["id"] for u in data["units"]] == ["vp", "ttcntt"]
    assert data["units"][0]["name"] == "Văn phòng Sở"  # the ou entry's description
    assert data["organization"]["domain"] == "stnmt.gov.vn"
    assert data["organization"]["name"] == "Sở Tài nguyên và Môi trường"
    boxes = records(out)
    assert boxes["nvlong"]["created"] == "2019-03-04"
    assert "naming_exemption" not in boxes["nvlong"]  # nvlong follows {initials}{given}
    tran = boxes["long.tran"]  # base64 cn, administrator lock, an alternate address
    assert tran["name"] == "Trần Thị Long"
    assert tran["state"] == "suspended" and tran["suspended"]["request"] == REQ
    assert tran["aliases"] == ["tranlong"]
    assert tran["naming_exemption"] == {
        "reason": "imported from openldap.ldif: uid=long.tran,ou=vp,ou=people,dc=stnmt,dc=gov,"
                  "dc=vn", "request": REQ}
    assert boxes["ptmai"]["forward_to"] == ["mai@sotttt.gov.vn"]


def test_zimbra_export_states_aliases_and_system_accounts(tmp_path: Path) -> None:
    code, out = run_import(tmp_path, "zimbra.ldif", "--it-unit", "cntt")
    assert code == 0
    boxes = records(out)
    # galsync (system resource), the alias entry and the distribution list are not people
    assert set(boxes) == {"admin", "lthuong", "dvnam", "hoangtu", "pvhai"}
    assert boxes["admin"]["role"] == "admin"
    assert boxes["lthuong"]["aliases"] == ["huong.le"]
    assert boxes["lthuong"]["forward_to"] == ["huong@vpubnd.gov.vn"]
    assert boxes["lthuong"]["quota_mb"] == 4096  # zimbraMailQuota is in bytes
    assert boxes["lthuong"]["unit"] == "van-phong"  # from ou: Văn phòng
    assert boxes["dvnam"]["state"] == "suspended"  # locked
    assert boxes["dvnam"]["suspended"]["reason"] == "Zimbra: locked"
    assert boxes["hoangtu"]["state"] == "cancelled"  # closed
    assert boxes["pvhai"].get("state", "active") == "active"  # lockout ends by itself
    assert boxes["admin"]["naming_exemption"]["reason"].startswith("imported from zimbra.ldif")


ORPHAN = """dn: uid=lvan,ou=people,dc=x,dc=gov,dc=vn
objectClass: inetOrgPerson
uid: lvan
cn: Lê Văn An
mail: lvan@x.gov.vn

dn: uid=ttb,ou=kt,ou=people,dc=x,dc=gov,dc=vn
objectClass: inetOrgPerson
uid: ttb
cn: Trần Thị Bình
mail: ttb@x.gov.vn
"""


def test_entry_outside_any_unit_is_refused_by_name(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "orphan.ldif"
    src.write_text(ORPHAN, encoding="utf-8")
    code, out = run_import(tmp_path, src)
    cap = capsys.readouterr()
    assert code == 1 and not out.exists()
    assert ("uid=lvan,ou=people,dc=x,dc=gov,dc=vn: outside any unit (no ou attribute, no ou= "
            "in its DN); give --unit-for-orphans UNIT") in cap.out
    assert "1 entry cannot be imported; nothing written" in cap.err
    code, out = run_import(tmp_path, src, "--unit-for-orphans", "kt")
    assert code == 0
    assert records(out)["lvan"]["unit"] == "kt"


FOREIGN = ORPHAN.replace("ou=people,dc=x", "ou=kt,ou=people,dc=x", 1) + """
dn: uid=nvc,ou=kt,ou=people,dc=x,dc=gov,dc=vn
objectClass: inetOrgPerson
uid: nvc
cn: Nguyễn Văn Cường
mail: nvc@y.gov.vn
mailAlternateAddress: cuong@z.com.vn
"""


def test_address_at_another_domain_is_refused_or_left_out(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "foreign.ldif"
    src.write_text(FOREIGN, encoding="utf-8")
    code, out = run_import(tmp_path, src, "--domain", "x.gov.vn")
    cap = capsys.readouterr()
    assert code == 1 and not out.exists()
    assert "uid=nvc,ou=kt,ou=people,dc=x,dc=gov,dc=vn: address nvc@y.gov.vn is not at " \
           "x.gov.vn" in cap.out
    code, out = run_import(tmp_path, src, "--domain", "x.gov.vn", "--skip-other-domains")
    cap = capsys.readouterr()
    assert code == 0
    assert set(records(out)) == {"lvan", "ttb"}
    assert "address nvc@y.gov.vn is not at x.gov.vn; left out (--skip-other-domains)" in cap.err


def test_not_ldif_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "bad.ldif"
    src.write_text("dn: uid=a,dc=x\nobjectClass: inetOrgPerson\nnot a line\n", encoding="utf-8")
    code, out = run_import(tmp_path, src)
    err = capsys.readouterr().err
    assert code == 1 and not out.exists()
    assert err.startswith(f"mailgov: error: {src}: not a usable LDIF file")
    assert "Traceback" not in err


# --------------------------------------------------------------------------- dump


@pytest.fixture
def sample() -> tuple[Any, dict[str, Any], dict[str, Any]]:
    today = date.fromisoformat(TODAY)
    result = validate(SAMPLE, today=today)
    raw = load(SAMPLE).data
    return result.directory, raw, live_of(raw)


def _dump(sample: Any, **kw: Any) -> Any:
    d, raw, live = sample
    today = date.fromisoformat(TODAY)
    data, _notes = dump(d, raw, live, today=today, **kw)
    done = finish(data, header("test", today), today)
    assert done.result.ok, [p.format() for p in done.result.problems][:5]
    return data, done.result.directory, live


def test_dump_of_an_unchanged_directory_is_the_data(sample: Any) -> None:
    data, d, live = _dump(sample)
    raw = sample[1]
    assert data["mailboxes"] == raw["mailboxes"] and data["units"] == raw["units"]
    assert [c for c in plan(d, live, today=date.fromisoformat(TODAY)).changes
            if c.kind != "archive"] == []


def test_dump_of_a_hand_changed_directory(sample: Any) -> None:
    d, raw, live = sample
    base = raw["organization"]["base_dn"]
    busy = {u.head for u in d.units} | {x for u in d.units for x in u.mailbox.delegates}
    plain = [m.address for m in d.mailboxes if m.state == "active" and m.role == "staff"
             and m.kind == "personal" and m.address not in busy]
    a, b, c = plain[-1], plain[-2], plain[-3]

    def dn(x: str) -> str:
        return normalise_dn(f"uid={x},ou=people,{base}")

    live[dn(a)]["title"] = ("Phó Trưởng phòng",)
    live[dn(a)]["mailQuota"] = (str(4096 * 1024),)
    live[dn(b)]["mailAlias"] += (f"{b}.tay@monre.gov.vn",)
    live[dn(c)]["pwdAccountLockedTime"] = ("000001010000Z",)
    today = date.fromisoformat(TODAY)
    assert len([x for x in plan(d, live, today=today).changes if x.kind != "archive"]) == 3
    with pytest.raises(DumpError, match=f"{c} is suspended in the directory, not in the data"):
        dump(d, {**raw, "mailboxes": [{k: v for k, v in m.items() if k != "request"}
                                      for m in raw["mailboxes"]]}, live, today=today)
    data, d2, _ = _dump(sample, request=REQ)
    boxes = {m["address"]: m for m in data["mailboxes"]}
    assert boxes[a]["title"] == "Phó Trưởng phòng" and boxes[a]["quota_mb"] == 4096
    assert f"{b}.tay" in boxes[b]["aliases"]
    assert boxes[c]["state"] == "suspended"
    assert [x for x in plan(d2, live, today=today).changes if x.kind != "archive"] == []


def test_emitter_reads_back_exactly(tmp_path: Path) -> None:
    from mailgov.dump import to_yaml

    tricky = ["yes", "No", "on", "~", "null", "0123", "1e3", "0x1f", ".5", "1_000", "a: b",
              "#x", "x #y", " lead", "trail ", "a  b", "- item", "[x]", "{x}", "*a", "&a", "!t",
              "%p", "@x", "`x`", "'q'", '"q"', "back\\slash", "Nguyễn Thị Hoa", "45/QĐ-TCCB",
              "2026-12-07", "2026-02-30", "", "tab\there", "câu: có dấu", "x,y", "true"]
    data = {"version": 1, "strings": tricky, "nested": [{"a": t, "b": [t, 1]} for t in tricky],
            "flags": {"yes": True, "no": False}, "empty": [], "emptymap": {}}
    path = tmp_path / "round.yaml"
    path.write_text(to_yaml(data, "header"), encoding="utf-8")
    assert load(path).data == data
