"""`mailgov report` (issue 17 item 3): HTML with charts, CSV, Markdown; bad input; a real browser.

The figures are those of tests/unit/test_usage.py's fixture, by hand. The browser test drives
Debian's Chromium headless (as tests/infra/test_password_page.py does) on the report file: it
renders, logs no console error, every bar shows and is as long as the snapshot's figure, and a
screenshot is kept in build/artifacts/.
"""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mailgov.cli import main

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "usage"
NOW = str(DATA / "usage-2026-12-07.json")
BEFORE = str(DATA / "usage-2026-11-30.json")
BASE = [str(DATA / "data.yaml"), "--snapshot", NOW, "--today", "2026-12-07"]
ARTIFACTS = ROOT / "build" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def report(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    code = main(["report", *BASE, *extra])
    out, err = capsys.readouterr()
    return code, out, err


def bars(html: str, chart: str) -> dict[str, str]:
    """label -> data-value of one chart's bars."""
    block = re.search(rf'<figure class="chart" id="{chart}">(.*?)</figure>', html, re.S)
    assert block, f"no chart {chart}"
    return dict(re.findall(r'data-label="([^"]*)" data-value="([^"]*)"', block.group(1)))


def test_html_charts_carry_the_snapshot_figures(capsys: pytest.CaptureFixture[str]) -> None:
    code, html, _ = report(capsys, "--previous", BEFORE)
    assert code == 0
    assert bars(html, "chart-adoption") == {"Văn phòng Bộ": "75", "Tổng cục Môi trường": "33.3"}
    assert bars(html, "chart-activity") == {"Văn phòng Bộ": "66.7", "Tổng cục Môi trường": "0",
                                            "Văn phòng Tổng cục": "0",
                                            "Cục Công nghệ thông tin": "0"}
    assert bars(html, "chart-storage") == {"Tốt": "2", "Cảnh báo": "1", "Không gửi được": "1",
                                           "Không gửi, không nhận được": "1",
                                           "Không có số liệu": "0"}
    # Trend: regular users (30 days) on 11-30 (ptminh, ntlan) and now (natuan, ptminh).
    assert bars(html, "chart-trend-before")["Văn phòng Bộ"] == "1"
    assert bars(html, "chart-trend-before")["Tổng cục Môi trường"] == "1"
    assert bars(html, "chart-trend-now")["Văn phòng Bộ"] == "2"
    assert bars(html, "chart-trend-now")["Tổng cục Môi trường"] == "0"
    assert '<tr data-unit="tcmt"><td class="n">2</td>' in html
    assert re.search(r'data-unit="vpb">.*?<td class="n">\+1</td>', html)
    # The previous snapshot missed mail2: the report says so.
    assert "Chưa thu thập được" not in html  # the current one is complete
    assert "<script" not in html and "http://" not in html.replace(
        'xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in html
    assert "default-src 'none'" in html


def test_per_person_rows_only_in_the_unit_report(capsys: pytest.CaptureFixture[str]) -> None:
    _, ministry, _ = report(capsys)
    assert "Nguyễn Anh Tuấn" not in ministry and "natuan" not in ministry
    assert 'id="people"' not in ministry
    _, unit, _ = report(capsys, "--unit", "vpb")
    assert "Nguyễn Anh Tuấn" in unit and ">natuan<" in unit and 'id="people"' in unit
    assert "Nguyễn Thị Lan" not in unit  # tcmt's
    _, concealed, _ = report(capsys, "--unit", "vpb", "--conceal-names")
    for secret in ("Nguyễn Anh Tuấn", "natuan", "Phạm Minh Hiếu", "pmhieu", "ptminh"):
        assert secret not in concealed, secret
    assert ">#1<" in concealed and ">#3<" in concealed
    _, csv_text, _ = report(capsys, "--unit", "vpb", "--conceal-names", "--format", "csv")
    assert "natuan" not in csv_text and "Nguyễn" not in csv_text


def test_english_and_vietnamese(capsys: pytest.CaptureFixture[str]) -> None:
    _, vi, _ = report(capsys)
    _, en, _ = report(capsys, "--lang", "en")
    assert "<title>Báo cáo đánh giá tình hình sử dụng thư điện tử công vụ</title>" in vi
    assert '<html lang="vi">' in vi and '<html lang="en">' in en
    assert "<title>Official e-mail usage: evaluation report</title>" in en
    assert "Ministry Office" in en  # name_en where the data has one


def test_csv_is_the_yearly_submission(capsys: pytest.CaptureFixture[str]) -> None:
    _, text, _ = report(capsys, "--format", "csv")
    rows = {r["unit"]: r for r in csv.DictReader(io.StringIO(text))}
    assert list(rows) == ["vpb", "tcmt", "vp", "cntt", "*"]
    assert (rows["vpb"]["mailboxes"], rows["vpb"]["headcount"], rows["vpb"]["adoption_pct"],
            rows["vpb"]["regular_30d"], rows["vpb"]["rank"]) == ("3", "4", "75.0", "2", "1")
    assert (rows["*"]["mailboxes"], rows["*"]["headcount"], rows["*"]["adoption_pct"]) == (
        "5", "7", "57.1")
    assert rows["vpb"]["unit_mailbox_read_days"] == "20" and rows["vpb"]["working_days"] == "21"
    assert text.endswith("\r\n")


def test_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    _, md, _ = report(capsys, "--format", "md", "--lang", "en", "--previous", BEFORE)
    assert md.startswith("# Official e-mail usage: evaluation report: ")
    assert "| 1 | Ministry Office | 3/4 | 75.0 | 2 | 66.7 | +1 | 1 | 1 |" in md
    assert "| 2 | Department" not in md
    assert "**Not collected:**" not in md


def test_gaps_are_reported(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["report", str(DATA / "data.yaml"), "--snapshot", BEFORE, "--today",
                 "2026-12-07", "--format", "md", "--lang", "en"])
    out, err = capsys.readouterr()
    assert code == 0
    assert "**Not collected:** mail2: unreachable: connection timed out" in out
    assert "mailgov: warning: not collected: mail2: unreachable" in err


def test_snapshot_dir_takes_the_newest_and_the_one_before(
        capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["report", str(DATA / "data.yaml"), "--snapshot-dir", str(DATA), "--today",
                 "2026-12-07", "--format", "md"])
    out, _ = capsys.readouterr()
    assert code == 0 and "2026-12-07" in out and "2026-11-30" in out
    # On 2026-12-01 the newest usable one is 11-30 (12-07 is in the future then).
    main(["report", str(DATA / "data.yaml"), "--snapshot-dir", str(DATA), "--today",
          "2026-12-01", "--format", "md"])
    out, _ = capsys.readouterr()
    assert "2026-11-30" in out and "2026-12-07" not in out


@pytest.mark.parametrize(("extra", "message"), [
    (["--unit", "vbp"], "--unit 'vbp' names no unit in "),
    (["--today", "2026-12-06"], "snapshot dated 2026-12-07, after today (2026-12-06)"),
    (["--previous", NOW], "is not older than the snapshot"),
    (["--out", "/nonexistent/r.html"], "folder /nonexistent does not exist"),
])
def test_bad_input_one_line_exit_2(capsys: pytest.CaptureFixture[str], extra: list[str],
                                   message: str) -> None:
    code, out, err = report(capsys, *extra)
    assert code == 2 and out == ""
    assert err.startswith("mailgov: error: ") and message in err and "Traceback" not in err


def test_other_organization_missing_corrupt(capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path) -> None:
    other = tmp_path / "usage-2026-12-07.json"
    other.write_text(Path(NOW).read_text().replace('"monre.gov.vn"', '"mard.gov.vn"'))
    out_file = tmp_path / "r.html"
    for snap, message in ((other, "another organization's figures"),
                          (tmp_path / "none.json", "no such snapshot"),
                          (DATA / "data.yaml", "corrupt snapshot")):
        code = main(["report", str(DATA / "data.yaml"), "--snapshot", str(snap), "--today",
                     "2026-12-07", "--out", str(out_file)])
        _, err = capsys.readouterr()
        assert code == 2 and message in err, err
        assert not out_file.exists()  # nothing written
    code = main(["report", str(DATA / "data.yaml"), "--snapshot-dir", str(tmp_path / "no"),
                 "--today", "2026-12-07"])
    assert code == 2 and "no such folder" in capsys.readouterr().err


def test_console_script_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "usage-2026-12-07.json"
    bad.write_text("{")
    proc = subprocess.run([sys.executable, "-m", "mailgov.cli", "report", *BASE[:1],
                           "--snapshot", str(bad), "--today", "2026-12-07"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "corrupt snapshot: Expecting property name" in proc.stderr


def test_catalog_complete_and_compiled() -> None:
    proc = subprocess.run([sys.executable, "tools/i18n.py", "--check"], capture_output=True,
                          text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr


# --------------------------------------------------------------------------- the browser


def chromium(profile: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for tool in (CHROMIUM, CHROMEDRIVER):
        assert Path(tool).is_file(), (
            f"{tool} missing: apt-get install chromium chromium-driver (lab/lab up does)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--no-first-run", "--disable-sync", "--no-proxy-server",
                "--disable-dev-shm-usage", f"--user-data-dir={profile}",
                "--window-size=1100,1600"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=opts, service=Service(CHROMEDRIVER))


# Per chart: label -> (figure, scale maximum) by hand from the fixture.
EXPECTED = {
    "chart-adoption": {"Văn phòng Bộ": (75.0, 100), "Tổng cục Môi trường": (33.3, 100)},
    "chart-activity": {"Văn phòng Bộ": (66.7, 100), "Tổng cục Môi trường": (0, 100)},
    "chart-storage": {"Tốt": (2, 5), "Cảnh báo": (1, 5), "Không gửi được": (1, 5)},
    "chart-trend-now": {"Văn phòng Bộ": (2, 2), "Tổng cục Môi trường": (0, 2)},
    "chart-trend-before": {"Văn phòng Bộ": (1, 2), "Tổng cục Môi trường": (1, 2)},
}


def test_report_in_chromium(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from selenium.webdriver.common.by import By

    page = tmp_path / "report.html"
    assert main(["report", *BASE, "--previous", BEFORE, "--out", str(page)]) == 0
    capsys.readouterr()
    drv = chromium(tmp_path / "profile")
    try:
        drv.get(page.as_uri())
        assert drv.title == "Báo cáo đánh giá tình hình sử dụng thư điện tử công vụ"
        for chart, expected in EXPECTED.items():
            fig = drv.find_element(By.ID, chart)
            seen = {}
            for g in fig.find_elements(By.CSS_SELECTOR, "g.bar"):
                rect = g.find_element(By.TAG_NAME, "rect")
                width = float(drv.execute_script("return arguments[0].getBBox().width", rect))
                printed = g.find_elements(By.CSS_SELECTOR, "text.val")[0].text
                seen[g.get_attribute("data-label")] = (width, printed)
            for label, (figure, top) in expected.items():
                width, printed = seen[label]
                # The bar is as long as the figure (360 px = the scale's top) and shows it.
                assert width == pytest.approx(360 * figure / top, abs=0.05), (chart, label)
                assert printed.rstrip(" %") in {f"{figure:g}", f"{figure:.1f}"}, (chart, printed)
        assert drv.find_element(By.ID, "sum-adoption").text == "57.1"
        assert drv.find_element(By.ID, "sum-regular-30").text == "2"
        errors = [e for e in drv.get_log("browser") if e.get("level") == "SEVERE"]
        assert not errors, errors
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "usage-report.png"
        drv.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
    finally:
        drv.quit()


def test_data_with_problems_lists_them_with_the_error_not_in_the_report(
        capsys: pytest.CaptureFixture[str]) -> None:
    """The audit's `mailgov report --today 2026-01-01`: the sample has records dated after
    that day (MG304). Each problem is shown as validate shows it, before the summary, on
    standard error: standard output is the report (often `> report.html`) and stays empty."""
    code = main(["report", str(ROOT / "data" / "mailboxes.yaml"), "--snapshot", NOW,
                 "--today", "2026-01-01", "--lang", "en"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    *problems, summary = err.splitlines()
    assert summary == f"mailgov: error: fix {ROOT / 'data' / 'mailboxes.yaml'} first " \
        f"({len(problems)} problems)"
    assert len(problems) >= 2
    assert all(re.match(r".*/data/mailboxes\.yaml:\d+:\d+: MG304 mailbox '[a-z0-9.]+': "
                        r"2026-\d\d-\d\d is in the future \(today is 2026-01-01\)", p)
               for p in problems), problems
