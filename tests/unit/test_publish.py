"""`mailgov publish` (issue 17 item 5): the public directory as HTML, CSV and vCard 4.0.

vCards are read back with vobject and checked against RFC 6350's rules a lenient parser lets
pass (CRLF, folding at 75 octets, VERSION right after BEGIN, escapes). The page is opened in
headless Chromium (tests/unit/test_usage_report.py's driver): the search filters rows without
diacritics, and the Content Security Policy lets the inline script run and nothing else.
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
from mailgov.validate import validate
from tests.unit.test_usage_report import ARTIFACTS, chromium

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "usage" / "data.yaml"
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
        "vpb@monre.gov.vn", "natuan@monre.gov.vn", "pmhieu@monre.gov.vn",
        "ptminh@monre.gov.vn", "hoimoitruong@monre.gov.vn"]
    parsed = list(vobject.readComponents(text, validate=True))
    assert [p.fn.value for p in parsed] == ["Văn phòng Bộ", "Nguyễn Anh Tuấn", "Phạm Minh Hiếu",
                                            "Phạm Thị Minh", "Hội Môi trường Việt Nam"]
    tuan = parsed[1]
    assert (tuan.n.value.family, tuan.n.value.given, tuan.n.value.additional) == (
        "Nguyễn", "Tuấn", "Anh")
    assert tuan.org.value == ["Bộ Tài nguyên và Môi trường", "Văn phòng Bộ"]
    assert [c["KIND"] for c in cards] == ["org", "individual", "individual", "individual",
                                          "org"]
    # UIDs are stable: a second run gives the same.
    again = publish.entries(*_checked())
    assert [e.uid for e in again if e.unit_id == "vpb"] == [c["UID"] for c in cards]


def _checked() -> tuple[object, dict[str, str]]:
    r = validate(str(DATA), today=date(2026, 12, 7))
    return r.directory, r.unit_locals  # type: ignore[return-value]


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
    assert [r["address"] for r in rows if r["unit"] == "tcmt"] == ["tcmt@monre.gov.vn",
                                                                   "ntlan@monre.gov.vn"]
    assert {r["address"] for r in rows} >= {"vp.tcmt@monre.gov.vn", "nvquan@monre.gov.vn"}
    assert len(rows) == 4 + 6  # four unit mailboxes, six active mailboxes


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

        assert len(shown()) == 10
        q.send_keys("nguyen anh")  # no diacritics typed: finds Nguyễn Anh Tuấn
        assert shown() == ["natuan@monre.gov.vn"]
        assert drv.find_element(By.ID, "count").text == "1"
        q.clear()
        q.send_keys("TỔNG CỤC")
        assert shown() == ["tcmt@monre.gov.vn", "ntlan@monre.gov.vn", "vp.tcmt@monre.gov.vn"]
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
