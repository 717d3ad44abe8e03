"""Gaps an outside audit of the edit commands and imports (issues 14 and 15) found: bad
sheets are clear FILE:ROW errors (no traceback, nothing written), ``--request`` text is
written so that YAML reads it back as that text, a dated restore is refused where the data
cannot schedule it, and a manifest path that does not exist is not an empty manifest."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

# the no-traceback runner of the edit-command tests (`data`: tests/unit/conftest.py)
from test_edit_commands import run

from mailgov.cli import main
from mailgov.validate import validate

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "mailboxes.yaml"
LATER = (date.today() + timedelta(days=30)).isoformat()


def refused_import(capsys: pytest.CaptureFixture[str], data: Path, sheet: Path
                   ) -> list[str]:
    """The problem lines of an import that must be refused with nothing written."""
    before = data.read_bytes()
    code, out, err = run(capsys, "import", str(sheet), "--data", str(data))
    assert code == 1, (out, err)
    assert f"{sheet}: nothing imported" in err
    assert data.read_bytes() == before
    return out.splitlines()


# --------------------------------------------------------------------------- import: reading


def test_import_of_a_csv_with_a_quote_never_closed_is_one_row_error(
        data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Excel never writes this; a hand-edited sheet does. ~190 KB after the quote: more
    # than the csv module's field limit (it raised _csv.Error out of the command).
    sheet = tmp_path / "unterm.csv"
    rows = "".join(f"Lê Văn Năm {i},ttb\n" for i in range(9000))
    sheet.write_text(f"name,unit\nLê Văn Tám,\"ttb\n{rows}", encoding="utf-8")
    assert sheet.stat().st_size > 131072
    assert refused_import(capsys, data, sheet) == [
        f"{sheet}:2: a quote (\") opened in this row is never closed (or a cell is longer "
        "than 131072 characters); close the quote, or save the sheet again from Excel"]


def test_import_of_a_small_csv_with_a_quote_never_closed_does_not_swallow_the_rest(
        data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sheet = tmp_path / "unterm.csv"
    sheet.write_text("name,unit\nLê Văn Tám,ttb\nLê Văn Chín,\"vpb\nLê Văn Năm,vpb\n",
                     encoding="utf-8")
    assert refused_import(capsys, data, sheet) == [
        f"{sheet}:3: a quote (\") opened in this row is never closed (or a cell is longer "
        "than 131072 characters); close the quote, or save the sheet again from Excel"]


def test_import_of_a_directory_says_it_is_a_directory(
        data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "sheets.csv"
    folder.mkdir()
    assert refused_import(capsys, data, folder) == [
        f"{folder}: is a directory, not a CSV or XLSX file"]


def test_import_refuses_a_row_with_cells_beyond_the_heading(
        data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sheet = tmp_path / "extra.csv"
    # trailing empty cells (what a spreadsheet often writes) are not extra cells
    sheet.write_text("name,unit,role\nLê Văn Tám,ttb,staff,,\nLê Văn Năm,vpb,staff,extra\n",
                     encoding="utf-8")
    assert refused_import(capsys, data, sheet) == [
        f"{sheet}:3: 'extra': a cell beyond the last column (the heading names 3); give "
        "it a heading or remove it"]


# --------------------------------------------------------------------------- import: birth


def test_import_birth_month_out_of_range_is_a_row_error(
        data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sheet = tmp_path / "birth.csv"
    sheet.write_text("name,unit,birth\nLê Văn Tám,ttb,1990-13\nLê Văn Năm,vpb,1990-00\n"
                     "Lê Văn Chín,vpb,1990-1a\n", encoding="utf-8")
    assert refused_import(capsys, data, sheet) == [
        f"{sheet}:2: birth: '1990-13': the month is 01 to 12 (YYYY-MM)",
        f"{sheet}:3: birth: '1990-00': the month is 01 to 12 (YYYY-MM)",
        f"{sheet}:4: birth: '1990-1a': YYYY-MM"]


def test_import_xlsx_birth_as_an_excel_date_is_its_month(
        data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["name", "unit", "birth"])
    ws.append(["Lê Văn Tám", "ttb", datetime(1990, 2, 1)])  # Excel's reading of "1990-02"
    ws.append(["Lê Văn Năm", "vpb", "1991-03"])  # a text cell stays as written
    sheet = tmp_path / "birth.xlsx"
    wb.save(sheet)
    code, _out, err = run(capsys, "import", str(sheet), "--data", str(data))
    assert code == 0, err
    d = validate(data).directory
    assert d is not None
    births = {m.name: m.birth for m in d.mailboxes if m.name in ("Lê Văn Tám", "Lê Văn Năm")}
    assert births == {"Lê Văn Tám": "1990-02", "Lê Văn Năm": "1991-03"}


# --------------------------------------------------------------------------- --request text


@pytest.mark.parametrize("request_ref", ["1", "a: b", "x, y #1"])
@pytest.mark.parametrize("argv", [
    ["domain", "migrate", "monre.gov.vn", "mae.gov.vn", "--keep-until", "2027-06-30"],
    ["unit", "rename", "vpb", "--abbr", "vpbo", "--date", "2026-12-01"],
    ["unit", "merge", "ttb", "vpb", "--date", "2026-12-01"],
])
def test_reorganising_edits_write_the_request_as_the_text_given(
        data: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
        request_ref: str) -> None:
    """The schema's form of a request needs no quotes, so these are refused; but by that
    form (MG105, quoting the text as YAML read it back), not as an int (MG103) or as broken
    YAML (MG006) because the text went into the file unquoted."""
    # one of ttb's people cites an earlier decision: a merge replaces it (set_scalar)
    text = data.read_text(encoding="utf-8")
    cited = "    created: 2016-10-03\n    request: 285/QĐ-CNTT\n  - address: tdthang\n"
    assert cited in text
    data.write_text(text.replace(cited, cited.replace(
        "CNTT\n", "CNTT\n    change: { request: 12/QĐ }\n", 1), 1), encoding="utf-8")
    before = data.read_bytes()
    code, _out, err = run(capsys, *argv, "--request", request_ref, "--data", str(data))
    assert code == 1
    problems = err.splitlines()[1:]
    assert problems and all(
        f"request: text {request_ref!r} has the wrong form; expected: Number of the "
        "approving document" in line and " MG105 " in line for line in problems), err
    # every place the request went: the alias domain, formerly, or dissolved + ttb's 11
    # people (the one with a change block among them)
    paths = [line.split(" MG105 ")[1].split(":")[0] for line in problems]
    if argv[0] == "domain":
        assert paths == ["organization.alias_domains[0].request"]
    elif argv[1] == "rename":
        assert paths == ["units[0].formerly[0].request"]
    else:
        assert paths[0] == "units[1].dissolved.request" and len(paths) == 12
        assert "mailboxes[20].change.request" in paths
    assert data.read_bytes() == before


# --------------------------------------------------------------------------- dated restore


def test_restore_of_a_cancelled_mailbox_on_a_later_day_is_refused(
        data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = data.read_bytes()
    code, _out, err = run(capsys, "restore", "hvvcuong", "--date", LATER, "--data", str(data))
    assert code == 1
    assert (f"hvvcuong is cancelled: a cancel cannot be undone on a later day ({LATER}); "
            "restore it on the day, without --date") in err
    assert data.read_bytes() == before
    # today it is undone; a suspended mailbox's restore can still be scheduled
    assert run(capsys, "restore", "hvvcuong", "--data", str(data))[0] == 0
    assert run(capsys, "restore", "htttrang", "--date", LATER, "--data", str(data))[0] == 0
    d = validate(data).directory
    assert d is not None
    m = next(m for m in d.mailboxes if m.address == "htttrang")
    assert m.state == "active" and m.suspended is not None and m.suspended.until == LATER


# --------------------------------------------------------------------------- add --date


def test_add_date_help_says_it_cannot_be_scheduled(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["add", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "a later day schedules it" not in out
    assert "the day it is created (default today; not a later day: MG304)" in out


# --------------------------------------------------------------------------- reserve-purged


def test_reserve_purged_refuses_a_manifest_that_does_not_exist(
        data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = data.read_bytes()
    missing = tmp_path / "typo.json"
    code, _out, err = run(capsys, "reserve-purged", "--archived", str(missing), "--data",
                          str(data))
    assert code == 2
    assert (f"archive manifest {missing}: no such file (an absent manifest is not an empty "
            "one: give the manifest the purge relied on)") in err
    assert data.read_bytes() == before
    assert not missing.exists()
    # an empty manifest that exists is still one: nothing in it, nothing to reserve
    missing.write_text(json.dumps({"version": 1, "archives": {}}), encoding="utf-8")
    code, _out, err = run(capsys, "reserve-purged", "--archived", str(missing), "--data",
                          str(data))
    assert code == 1 and "no purged mailbox in the data" in err
    assert data.read_bytes() == before
