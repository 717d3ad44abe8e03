"""`mailgov publish` (issue 17 item 5): the public directory as HTML, CSV and vCard 4.0.

vCards are read back with vobject and checked against RFC 6350's rules a lenient parser lets
pass (CRLF, folding at 75 octets, VERSION right after BEGIN, escapes). The page is opened in
headless Chromium (tests/unit/test_usage_report.py's driver): the search filters rows without
diacritics, and the Content Security Policy lets the inline script run and nothing else.
Each unit's list (``<unit>-all@``) is published with its unit mailbox, at the address the
directory's group has.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
from datetime import date
from pathlib import Path

import pytest

from mailgov import publish
from mailgov.cli import main
from mailgov.directory import desired_entries
from mailgov.i18n import translator
from mailgov.validate import validate
from tests.unit.test_usage_report import ARTIFACTS, chromium

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "usage" / "data.yaml"
TODAY = date(2026, 12, 7)
# Private fields of the fixture that must never be published.
PRIVATE = ("tuan.na", "tuan@mard.gov.vn", "postmaster", "45/QĐ-TCCB", "2019-03-04",
           "natuan2", "lthoa", "10240", "Nghỉ phép")


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pub") / "danh-ba"
    assert main(["publish", str(DATA), "--out", str(folder)]) == 0
    return folder


def unfold(text: str) -> list[str]:
    return text.replace("\r\n ", "").split("\r\n")[:-1]


def strict_vcards(text: str) -> list[dict[str, str]]:
    """RFC 6350 checks vobject does not make: returns the cards' properties."""
    assert "\n" not in text.replace("\r\n", ""), "bare LF"
    for physical in text.split("\r\n"):
        assert len(physical.encode()) <= 75, physical
    cards: list[dict[str, str]] = []
    card: dict[str, str] | None = None
    for line in unfold(text):
        if line == "BEGIN:VCARD":
            card = {"_order": ""}
            cards.append(card)
            continue
        assert card is not None, line
        if line == "END:VCARD":
            for required in ("VERSION", "FN"):
                assert required in card, (required, card)
            card = None
            continue
        name, _, value = line.partition(":")
        key = name.split(";")[0]
        card["_order"] += key + " "
        card[key] = value
    for c in cards:
        assert c["_order"].startswith("VERSION "), c  # 6.7.9: right after BEGIN
        assert c["VERSION"] == "4.0"
    return cards


def test_vcards_parse_and_are_strict(out: Path) -> None:
    import vobject

    text = (out / "units" / "vpb.vcf").read_bytes().decode("utf-8")
    cards = strict_vcards(text)
    assert [c["EMAIL"] for c in cards] == [
        "vpb@monre.gov.vn", "vpb-all@monre.gov.vn", "natuan@monre.gov.vn", "pmhieu@monre.gov.vn",
        "ptminh@monre.gov.vn", "hoimoitruong@monre.gov.vn"]
    parsed = list(vobject.readComponents(text, validate=True))
    assert [p.fn.value for p in parsed] == [
        "Văn phòng Bộ", list_name("vi", "Văn phòng Bộ"), "Nguyễn Anh Tuấn", "Phạm Minh Hiếu",
        "Phạm Thị Minh", "Hội Môi trường Việt Nam"]
    tuan = parsed[2]
    assert (tuan.n.value.family, tuan.n.value.given, tuan.n.value.additional) == (
        "Nguyễn", "Tuấn", "Anh")
    assert tuan.org.value == ["Bộ Tài nguyên và Môi trường", "Văn phòng Bộ"]
    assert [c["KIND"] for c in cards] == ["org", "group", "individual", "individual",
                                          "individual", "org"]
    assert "MEMBER" not in cards[1] and "N" not in cards[1]  # members are not published
    # UIDs are stable: a second run gives the same.
    again = publish.entries(*_checked())
    assert [e.uid for e in again if e.unit_id == "vpb"] == [c["UID"] for c in cards]


def _checked(data: Path = DATA) -> tuple[object, dict[str, str]]:
    r = validate(str(data), today=TODAY)
    assert r.directory is not None, r
    return r.directory, r.unit_locals  # type: ignore[return-value]


def list_name(lang: str, unit: str) -> str:
    """The list's published name; Vietnamese once the catalog has it (the lead's make i18n)."""
    return translator(lang).gettext("All mailboxes of unit {unit}").format(unit=unit)


def test_lists_are_the_directorys_groups(out: Path) -> None:
    """Every unit's list is published at the address of the directory's group (the same
    naming function), in the CSV, the vCards and the page, right after its unit mailbox."""
    directory = _checked()[0]
    groups = {e.unit: e.attributes["mail"][0] for e in desired_entries(directory, today=TODAY)
              if e.kind == "list"}
    assert groups == {"vpb": "vpb-all@monre.gov.vn", "tcmt": "tcmt-all@monre.gov.vn",
                      "vp": "vp.tcmt-all@monre.gov.vn", "cntt": "cntt-all@monre.gov.vn"}
    rows = list(csv.DictReader(io.StringIO((out / "danh-ba.csv").read_text(encoding="utf-8"))))
    lists = {r["unit"]: r for r in rows if r["kind"] == "list"}
    assert {u: r["address"] for u, r in lists.items()} == groups
    for i, r in enumerate(rows):
        if r["kind"] == "list":
            assert rows[i - 1]["kind"] == "unit" and rows[i - 1]["unit"] == r["unit"]
            assert r["name"] == list_name("vi", r["unit_name"]) and r["title"] == ""
    for unit, address in groups.items():
        vcf = (out / "units" / f"{unit}.vcf").read_bytes().decode("utf-8")
        assert f"EMAIL;TYPE=work:{address}\r\n" in vcf.replace("\r\n ", "")
    html = (out / "index.html").read_text(encoding="utf-8")
    for address in groups.values():
        assert f'<a href="mailto:{address}">{address}</a>' in html
    assert html.count('<tr class="list"') == 4


def test_list_names_in_english(tmp_path: Path) -> None:
    assert main(["publish", str(DATA), "--out", str(tmp_path), "--lang", "en"]) == 0
    rows = list(csv.DictReader(io.StringIO((tmp_path / "danh-ba.csv").read_text("utf-8"))))
    assert [(r["name"], r["address"]) for r in rows if r["kind"] == "list"] == [
        ("All mailboxes of unit Văn phòng Bộ", "vpb-all@monre.gov.vn"),
        ("All mailboxes of unit Tổng cục Môi trường", "tcmt-all@monre.gov.vn"),
        ("All mailboxes of unit Văn phòng Tổng cục", "vp.tcmt-all@monre.gov.vn"),
        ("All mailboxes of unit Cục Công nghệ thông tin", "cntt-all@monre.gov.vn")]
    assert "FN:All mailboxes of unit Cục Công nghệ thông tin\r\n" in (
        tmp_path / "units" / "cntt.vcf").read_bytes().decode("utf-8")
    assert ">All mailboxes of unit Văn phòng Bộ</td>" in (
        tmp_path / "index.html").read_text(encoding="utf-8")


def test_dissolved_and_renamed_units_lists(tmp_path: Path) -> None:
    """A dissolved unit is not published, nor its list (its address forwards to the
    successor's, then is closed); a renamed unit's former list (an alias for the period) is
    never published. Files of a unit published by an earlier run go when it is dissolved."""
    text = DATA.read_text(encoding="utf-8").replace(
        "  - id: cntt\n",
        "  - id: cu\n    name: Cục cũ\n    abbr: cucu\n"
        "    dissolved: {date: 2026-11-02, successor: cntt, request: 9/QĐ-BTNMT}\n"
        "  - id: cntt\n    formerly:\n"
        "      - {abbr: ttcntt, date: 2026-11-02, request: 9/QĐ-BTNMT}\n", 1)
    data = tmp_path / "data.yaml"
    data.write_text(text, encoding="utf-8")
    directory, locals_ = _checked(data)
    rows = publish.entries(directory, locals_)  # type: ignore[arg-type]
    by_unit = {(e.unit_id, e.kind): e.address for e in rows}
    assert not [e for e in rows if e.unit_id == "cu" or "cucu" in e.address]
    for unit in ("vpb", "tcmt", "vp", "cntt"):
        assert ((unit, "unit") in by_unit) and ((unit, "list") in by_unit), unit
    assert not [e for e in rows if "ttcntt" in e.address]
    # an earlier run, before the dissolution, published cu's files; this run removes them
    site = tmp_path / "site"
    before = tmp_path / "before.yaml"
    before.write_text(text.replace(
        "    dissolved: {date: 2026-11-02, successor: cntt, request: 9/QĐ-BTNMT}\n", ""),
        encoding="utf-8")
    publish.write(*_checked(before), site)  # type: ignore[arg-type]
    assert (site / "units" / "cu.vcf").is_file() and (site / "units" / "cu.csv").is_file()
    assert "cucu-all@monre.gov.vn" in (site / "danh-ba.csv").read_text(encoding="utf-8")
    publish.write(directory, locals_, site)  # type: ignore[arg-type]
    assert not (site / "units" / "cu.vcf").exists() and not (site / "units" / "cu.csv").exists()
    assert (site / "units" / "cntt.vcf").is_file()
    page = (site / "index.html").read_text(encoding="utf-8")
    assert "cucu" not in page and "Cục cũ" not in page


def test_escaping_and_folding_round_trip() -> None:
    import vobject

    e = publish.Entry("Trần Thị Ngọc Bích, Phó Trưởng phòng; Ban \\ Kế hoạch " * 3,
                      "Chuyên viên cao cấp, kiêm nhiệm", "x", "Phòng A; B", "a@b.vn", "person",
                      "urn:uuid:00000000-0000-0000-0000-000000000000")
    text = publish.vcard(e, "Bộ, Ngành")
    strict_vcards(text)
    card = vobject.readOne(text)
    assert card.fn.value == e.name and card.title.value == e.title
    assert card.org.value == ["Bộ, Ngành", "Phòng A; B"]


def test_only_public_fields_and_active_mailboxes(out: Path) -> None:
    everything = "".join(p.read_text(encoding="utf-8") for p in sorted(out.rglob("*"))
                         if p.is_file())
    for secret in PRIVATE:
        assert secret not in everything, secret
    rows = list(csv.DictReader(io.StringIO((out / "danh-ba.csv").read_text(encoding="utf-8"))))
    assert tuple(rows[0]) == publish.CSV_FIELDS
    assert [r["address"] for r in rows if r["unit"] == "tcmt"] == [
        "tcmt@monre.gov.vn", "tcmt-all@monre.gov.vn", "ntlan@monre.gov.vn"]
    assert {r["address"] for r in rows} >= {"vp.tcmt@monre.gov.vn", "nvquan@monre.gov.vn"}
    assert len(rows) == 4 + 4 + 6  # four unit mailboxes, their lists, six active mailboxes


def test_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "file"
    f.write_text("")
    assert main(["publish", str(DATA), "--out", str(f)]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main(["publish", str(DATA), "--out", str(tmp_path / "a" / "b")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()


def test_page_searches_in_chromium(out: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    html = (out / "index.html").read_text(encoding="utf-8")
    assert "http://" not in html and "https://" not in html
    assert re.search(r"script-src 'sha256-[A-Za-z0-9+/]+=*'", html)
    drv = chromium(tmp_path / "profile")
    try:
        drv.get((out / "index.html").as_uri())
        assert drv.title == "Danh bạ thư điện tử: Bộ Tài nguyên và Môi trường"
        q = drv.find_element(By.ID, "q")
        assert q.is_displayed()  # the script ran (the CSP hash let it)

        def shown() -> list[str]:
            return [r.find_elements(By.TAG_NAME, "td")[3].text
                    for r in drv.find_elements(By.CSS_SELECTOR, "#dir tbody tr")
                    if r.is_displayed()]

        assert len(shown()) == 14
        q.send_keys("nguyen anh")  # no diacritics typed: finds Nguyễn Anh Tuấn
        assert shown() == ["natuan@monre.gov.vn"]
        assert drv.find_element(By.ID, "count").text == "1"
        q.clear()
        q.send_keys("TỔNG CỤC")
        assert shown() == ["tcmt@monre.gov.vn", "tcmt-all@monre.gov.vn", "ntlan@monre.gov.vn",
                           "vp.tcmt@monre.gov.vn", "vp.tcmt-all@monre.gov.vn"]
        q.clear()
        q.send_keys("vpb-all")  # a list is found by its address
        assert shown() == ["vpb-all@monre.gov.vn"]
        errors = [e for e in drv.get_log("browser") if e.get("level") == "SEVERE"]
        assert not errors, errors
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        drv.save_screenshot(str(ARTIFACTS / "published-directory.png"))
    finally:
        drv.quit()


def test_csp_blocks_a_script_it_does_not_know(out: Path, tmp_path: Path) -> None:
    """Negative control: the same page with one changed byte in the script does not run it,
    and the browser says why (the policy, not a syntax error)."""
    from selenium.webdriver.common.by import By

    page = tmp_path / "index.html"
    shutil.copy(out / "index.html", page)
    page.write_text(page.read_text(encoding="utf-8").replace('"use strict";', '"use strict"; '),
                    encoding="utf-8")
    drv = chromium(tmp_path / "profile")
    try:
        drv.get(page.as_uri())
        assert not drv.find_element(By.ID, "q").is_displayed()
        logs = " ".join(e.get("message", "") for e in drv.get_log("browser"))
        assert "Content Security Policy" in logs, logs
    finally:
        drv.quit()
