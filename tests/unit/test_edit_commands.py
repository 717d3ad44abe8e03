"""Edit commands, import and export (issue 15): on copies of the sample data, each edit's
diff is exactly the change, an edit and its inverse give back the same bytes where no
history is needed, refused edits leave every file as it was and say why, and imports check
every row before writing anything."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from mailgov.cli import main
from mailgov.edit import unified_diff
from mailgov.layout import split
from mailgov.validate import validate

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "mailboxes.yaml"
TODAY = date.today().isoformat()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    """(removed, added) lines, from the same minimal diff the commands print."""
    lines = unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True), "x")
    removed = [x[1:].rstrip("\n") for x in lines[2:] if x.startswith("-")]
    added = [x[1:].rstrip("\n") for x in lines[2:] if x.startswith("+")]
    return removed, added


def edit(capsys: pytest.CaptureFixture[str], data: Path, *argv: str
         ) -> tuple[list[str], list[str]]:
    before = data.read_text(encoding="utf-8")
    code, _out, err = run(capsys, *argv, "--data", str(data))
    assert code == 0, err
    after = data.read_text(encoding="utf-8")
    assert validate(data).ok
    return changed_lines(before, after)


# --------------------------------------------------------------------------- each edit


def test_add_lands_after_its_units_last_record_with_the_next_address_and_id(
        data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first_day = date.today().isoformat()
    removed, added = edit(capsys, data, "add", "Nguyễn Anh Tuấn", "--unit", "ttb", "--title",
                          "Chuyên viên", "--request", "12/QĐ-TTB")
    # the default day is the clock's: a run across midnight may see either day
    today = added[6].removeprefix("    created: ")
    assert today in {first_day, date.today().isoformat()}
    # the unit's heading comment counts its records (a hand edit would leave it stale)
    assert removed == ["  # --- ttb@: Thanh tra Bộ (11 mailboxes)"]
    assert added[0] == "  # --- ttb@: Thanh tra Bộ (12 mailboxes)"
    added = added[1:]
    # natuan … natuan4 are taken in the sample: the policy's sequence gives natuan5; the
    # highest id is 297 (and no reserved id above it)
    assert added == ["  - address: natuan5", "    id: 298", "    name: Nguyễn Anh Tuấn",
                     "    unit: ttb", "    title: Chuyên viên", f"    created: {today}",
                     "    request: 12/QĐ-TTB"]
    text = data.read_text(encoding="utf-8")
    # in ttb's section: after its last record, before the next unit's heading comment
    assert text.index("address: natuan5") < text.index("# --- tccb@")
    assert text.index("address: natuan5") > text.index("address: ttquynh")


def test_cancel_suspend_move_set_rename_change_only_their_lines(
        data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert edit(capsys, data, "cancel", "nvthanh", "--reason", "left", "--request",
                "9/QĐ-TCCB", "--date", "2026-12-01") == (
        [], ["    state: cancelled",
             "    cancelled: { date: 2026-12-01, reason: left, request: 9/QĐ-TCCB }"])
    assert edit(capsys, data, "suspend", "ndhung", "--reason", "Nghỉ phép, dài hạn",
                "--request", "9/QĐ", "--date", "2026-12-01") == (
        [], ["    state: suspended",
             "    suspended: { date: 2026-12-01, reason: 'Nghỉ phép, dài hạn', request: 9/QĐ }"])
    assert edit(capsys, data, "move", "ptlinh", "ttb", "--request", "3/QĐ") == (
        ["  # --- vpb@: Văn phòng Bộ (20 mailboxes)", "    unit: vpb",
         "  # --- ttb@: Thanh tra Bộ (11 mailboxes)"],
        ["  # --- vpb@: Văn phòng Bộ (19 mailboxes)", "    unit: ttb",
         "    change: { request: 3/QĐ }", "  # --- ttb@: Thanh tra Bộ (12 mailboxes)"])
    assert edit(capsys, data, "set", "htmyen", "--quota", "4096", "--title",
                "Chuyên viên chính") == (
        ["    title: Lưu trữ viên"], ["    title: Chuyên viên chính", "    quota_mb: 4096"])
    assert edit(capsys, data, "set", "--unit", "vpb", "--delegates", "ntbthao,lthieu") == (
        ["      delegates: [ntbthao, pththo]"], ["      delegates: [ntbthao, lthieu]"])
    # a rename (history: the old address stays an alias, then reserved) also renames the
    # unit mailbox's delegate
    removed, added = edit(capsys, data, "rename", "ntbthao", "--name", "Nguyễn Thị Bảo Thư",
                          "--request", "4/QĐ", "--date", "2026-12-01")
    assert removed == ["      delegates: [ntbthao, lthieu]", "  - address: ntbthao",
                       "    name: Nguyễn Thị Bảo Thảo"]
    assert added == ["      delegates: [ntbthu, lthieu]", "  - address: ntbthu",
                     "    renamed_from:",
                     "      - { address: ntbthao, date: 2026-12-01, request: 4/QĐ }",
                     "    name: Nguyễn Thị Bảo Thư"]


def test_restore_ends_a_begun_suspension_with_until_as_history(
        data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert edit(capsys, data, "restore", "htttrang", "--date", "2026-12-01") == (
        ["    state: suspended",
         "    suspended: { date: 2026-06-01, reason: Nghỉ thai sản, request: 215/QĐ-VPB }"],
        ["    suspended: { date: 2026-06-01, reason: Nghỉ thai sản, request: 215/QĐ-VPB, "
         "until: 2026-12-01 }"])
    d = validate(data, today=date(2026, 12, 2)).directory
    assert d is not None
    assert next(m for m in d.mailboxes if m.address == "htttrang").state == "active"


@pytest.mark.parametrize(("forward", "inverse"), [
    (["suspend", "nvthanh", "--reason", "Nghỉ ốm", "--request", "1/QĐ", "--date", TODAY],
     ["restore", "nvthanh", "--date", TODAY]),
    (["cancel", "nvthanh", "--reason", "left", "--request", "1/QĐ"],
     ["restore", "nvthanh"]),
    (["cancel", "htttrang", "--reason", "left", "--request", "1/QĐ"],  # suspended first
     ["restore", "htttrang"]),
    (["move", "nvthanh", "ttb"], ["move", "nvthanh", "vpb"]),
    (["set", "nvthanh", "--quota", "4096"], ["set", "nvthanh", "--quota", "default"]),
    (["set", "nvthanh", "--title", "Chuyên viên"], ["set", "nvthanh", "--title", "Nhân viên"]),
    (["set", "nvthanh", "--role", "admin"], ["set", "nvthanh", "--role", "staff"]),
    (["set", "--unit", "vpb", "--delegates", "", "--quota", "20480"],
     ["set", "--unit", "vpb", "--delegates", "ntbthao,pththo", "--quota", "51200"]),
])
def test_an_edit_and_its_inverse_give_back_the_same_bytes(
        data: Path, capsys: pytest.CaptureFixture[str], forward: list[str],
        inverse: list[str]) -> None:
    before = data.read_bytes()
    assert run(capsys, *forward, "--data", str(data))[0] == 0
    assert data.read_bytes() != before
    assert run(capsys, *inverse, "--data", str(data))[0] == 0
    assert data.read_bytes() == before


def test_dry_run_prints_the_diff_and_writes_nothing(
        data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = data.read_bytes()
    code, out, err = run(capsys, "move", "nvthanh", "ttb", "--dry-run", "--data", str(data))
    assert code == 0 and data.read_bytes() == before
    assert f"--- a/{data}" in out and "-    unit: vpb\n+    unit: ttb\n" in out
    assert "dry run: nothing written" in err


@pytest.mark.parametrize(("argv", "expected"), [
    (["cancel", "nhhung", "--reason", "left", "--request", "1/QĐ"],
     ":56:5: MG214 unit 'vpb': head 'nhhung' is a cancelled personal mailbox"),
    (["set", "nvthanh", "--quota", "99999"],
     "MG401 mailbox 'nvthanh': quota_mb 99999 is outside 500..10240 MiB"),
    (["move", "nhhung", "ttb"], "MG215 unit 'vpb': head 'nhhung' belongs to unit 'ttb'"),
    (["set", "--unit", "vpb", "--delegates", "hvvcuong"],
     "MG217 unit 'vpb': delegate 'hvvcuong' is a cancelled personal mailbox"),
    (["rename", "nvthanh", "--to", "natuan"], "MG210 address 'natuan' does not follow"),
    (["add", "Nguyễn", "--unit", "vpb"], "'Nguyễn' has no given name"),
    (["add", "Lê Văn An", "--unit", "vbp"], "unknown unit 'vbp'; did you mean vp, vpb?"),
    (["suspend", "hvvcuong", "--reason", "x", "--request", "1"],
     "hvvcuong is cancelled: only an active mailbox can be suspended"),
    (["restore", "nvthanh"], "nvthanh is active: nothing to restore"),
    (["cancel", "nobody", "--reason", "left", "--request", "1"], "no mailbox 'nobody'"),
])
def test_a_refused_edit_leaves_the_file_byte_identical_and_says_why(
        data: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
        expected: str) -> None:
    before = data.read_bytes()
    code, _out, err = run(capsys, *argv, "--data", str(data))
    assert code == 1
    assert err.startswith("mailgov: error: ")
    assert expected in err
    assert data.read_bytes() == before
    assert not list(data.parent.glob(".mailgov-edit-*"))


def test_per_unit_files_the_record_is_edited_where_it_lives(
        data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    split(data)
    units = data.parent / "units"
    main_before = data.read_bytes()
    vpb_before = (units / "vpb.yaml").read_text(encoding="utf-8")
    ttb_before = (units / "ttb.yaml").read_text(encoding="utf-8")
    assert run(capsys, "add", "Lê Văn Tám", "--unit", "ttb", "--data", str(data))[0] == 0
    assert run(capsys, "move", "nvthanh", "ttb", "--data", str(data))[0] == 0
    assert data.read_bytes() == main_before  # the main file is not touched
    assert validate(data).ok
    removed, added = changed_lines(ttb_before, (units / "ttb.yaml").read_text("utf-8"))
    assert removed == ["  # --- ttb@: Thanh tra Bộ (11 mailboxes)"]
    assert added[0] == "  # --- ttb@: Thanh tra Bộ (13 mailboxes)"
    assert added[1] == "  - address: lvtam" and \
        added[6:8] == ["  - address: nvthanh", "    id: 8"] and "    unit: ttb" in added[6:]
    removed, added = changed_lines(vpb_before, (units / "vpb.yaml").read_text("utf-8"))
    assert added == ["  # --- vpb@: Văn phòng Bộ (19 mailboxes)"]
    assert len(removed) == 8 and "  - address: nvthanh" in removed
    assert "address: nvthanh" not in (units / "vpb.yaml").read_text("utf-8")
    # a refusal names the file and line where the problem is; nothing is written
    snapshot = {p: p.read_bytes() for p in [data, *units.iterdir()]}
    code, _out, err = run(capsys, "cancel", "ttquynh", "--reason", "left", "--request",
                          "1/QĐ", "--data", str(data))
    assert code == 1 and "MG214 unit 'ttb': head 'ttquynh'" in err
    assert {p: p.read_bytes() for p in snapshot} == snapshot


# --------------------------------------------------------------------------- import


def write_csv(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16"])
def test_import_numbers_clashes_inside_the_batch_in_row_order(
        data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], encoding: str) -> None:
    sep = "\t" if encoding == "utf-16" else ","  # Excel's "Unicode Text" is tab-separated
    sheet = write_csv(tmp_path / "new.csv", sep.join(["Họ và tên", "Đơn vị", "Chức vụ"])
                      + "\r\n" + "\r\n".join(sep.join(r) for r in [
                          ["Nguyễn Anh Tuấn", "ttb", "Chuyên viên"],
                          ["Nguyễn  Anh Tuấn", "tccb", ""],
                          ["Trần Văn Bình", "Văn phòng Bộ", "Văn thư"]]) + "\r\n", encoding)
    before = data.read_text(encoding="utf-8")
    code, out, err = run(capsys, "import", str(sheet), "--request", "7/QĐ", "--data",
                         str(data))
    assert code == 0, err
    assert out.splitlines()[1:] == [
        "natuan5@monre.gov.vn  Nguyễn Anh Tuấn  ttb   Chuyên viên",
        "natuan6@monre.gov.vn  Nguyễn Anh Tuấn  tccb",
        "tvbinh@monre.gov.vn   Trần Văn Bình    vpb   Văn thư"]
    removed, added = changed_lines(before, data.read_text(encoding="utf-8"))
    assert len(removed) == 3 and len(added) == 3 + 7 + 6 + 7  # 3 counts in headings
    d = validate(data).directory
    assert d is not None
    new = {m.address: m for m in d.mailboxes if m.request == "7/QĐ"}
    assert sorted(new) == ["natuan5", "natuan6", "tvbinh"]
    assert (new["natuan5"].id, new["natuan6"].id, new["tvbinh"].id) == (298, 299, 300)
    assert new["tvbinh"].unit == "vpb"  # the unit's name, as HR writes it


def test_import_dry_run_prints_the_table_and_writes_nothing(
        data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sheet = write_csv(tmp_path / "a.csv", "name,unit\nLê Văn Tám,ttb\n")
    before = data.read_bytes()
    code, out, _err = run(capsys, "import", str(sheet), "--dry-run", "--data", str(data))
    assert code == 0 and "lvtam@monre.gov.vn  Lê Văn Tám  ttb" in out
    assert data.read_bytes() == before


@pytest.mark.parametrize(("content", "encoding", "errors"), [
    ("name,unit\nLê Văn,vpb\n", "cp1258",  # what an old Vietnamese Windows saves
     ["{f}:2: byte 0xea is not UTF-8; save the sheet as \"CSV UTF-8\" (or Unicode Text)"]),
    ("name,chức vụ\nLê Văn Tám,x\n", "utf-8",
     ["{f}:1: unit: missing column (also accepted: đơn vị)"]),
    ("họ tên,đơn vị,phone\nLê Văn Tám,ttb,1\n", "utf-8",
     ["{f}:1: phone: unknown column (known: "]),
    ("name,unit\nLê Văn Tám,ttb\nLê Văn Tám,ttb\nNguyễn Thị Bảo Thảo,vpb\n", "utf-8",
     ["{f}:3: name: Lê Văn Tám in ttb twice (row 2); one mailbox per person",
      "{f}:4: name: Nguyễn Thị Bảo Thảo in vpb has a mailbox already (ntbthao); if "
      "this is a namesake, import with --namesakes"]),
    ("name,unit,role\nNguyễn,vpb,\nLê Văn Tám,vbp,\n,ttb,\nLê Văn Ba,ttb,boss\n"
     "Lê Văn Bốn,Văn phòng Tổng cục,\n", "utf-8",  # two units have that name (below)
     ["{f}:2: name: 'Nguyễn' has no given name",
      "{f}:3: unit: unknown unit 'vbp'; did you mean vp, vpb?",
      "{f}:4: name: the name is empty",
      "{f}:5: role: 'boss': one of staff, head, admin",
      "{f}:6: unit: 'Văn phòng Tổng cục' is the name of "]),
])
def test_import_bad_rows_are_all_reported_and_nothing_is_written(
        data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str,
        encoding: str, errors: list[str]) -> None:
    text = data.read_text(encoding="utf-8").replace(
        "    name: Văn phòng Tổng cục Môi trường\n", "    name: Văn phòng Tổng cục\n")
    data.write_text(text.replace("  - id: tcqldd\n", "  - id: vptc2\n    name: Văn phòng "
                                 "Tổng cục\n  - id: tcqldd\n", 1), encoding="utf-8")
    assert validate(data).ok
    sheet = write_csv(tmp_path / "bad.csv", content, encoding)
    before = data.read_bytes()
    code, out, err = run(capsys, "import", str(sheet), "--data", str(data))
    assert code == 1
    lines = out.splitlines()
    assert len(lines) == len(errors)
    for line, want in zip(lines, errors, strict=True):
        assert line.startswith(want.format(f=sheet)), line
    assert f"{sheet}: nothing imported ({len(errors)} problem" in err
    assert data.read_bytes() == before


def test_import_xlsx_and_export_round_trip(
        data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from openpyxl import Workbook, load_workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["Họ và tên", "Đơn vị", "Chức vụ", "id_digits"])
    ws.append(["Lê Văn Tám", "ttb", "Thanh tra viên", 123])
    ws.append([None, None, None, None])  # blank rows are skipped
    sheet = tmp_path / "new.xlsx"
    wb.save(sheet)
    assert run(capsys, "import", str(sheet), "--data", str(data))[0] == 0
    out = tmp_path / "people.xlsx"
    assert run(capsys, "export", "--format", "xlsx", "--out", str(out), "--data",
               str(data))[0] == 0
    book = load_workbook(out, read_only=True)
    rows = list(book["ttb"].iter_rows(values_only=True))
    assert rows[0] == ("unit", "unit_name", "name", "address", "title", "role", "kind",
                       "state")
    assert ("ttb", "Thanh tra Bộ", "Lê Văn Tám", "lvtam@monre.gov.vn", "Thanh tra viên",
            "staff", "personal", "active") in rows
    d = validate(data).directory
    assert d is not None
    assert len(book.sheetnames) == len({m.unit for m in d.mailboxes})
    assert sum(len(list(book[s].iter_rows())) - 1 for s in book.sheetnames) == \
        len(d.mailboxes)
    code, csv_out, _err = run(capsys, "export", "--unit", "ttb", "--data", str(data))
    assert code == 0 and csv_out.count("\r\n") == 1 + sum(m.unit == "ttb"
                                                           for m in d.mailboxes)


def test_import_of_a_file_that_is_not_a_workbook_is_one_clear_error(
        data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sheet = tmp_path / "x.xlsx"
    sheet.write_bytes(b"not a zip")
    code, out, _err = run(capsys, "import", str(sheet), "--data", str(data))
    assert code == 1 and out.startswith(f"{sheet}: not a readable XLSX workbook")


def test_the_scan_of_record_starts_agrees_with_the_locator(data: Path) -> None:
    from mailgov.edit import Edit

    for layout in ("single", "per-unit"):
        if layout == "per-unit":
            split(data)
        e = Edit.open(data)
        for i in range(len(e.directory.mailboxes)):
            assert e.where("mailboxes", i) == e.loaded.where(("mailboxes", i))


def test_a_unit_without_records_gets_its_first_after_the_unit_listed_before_it(
        data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = data.read_text(encoding="utf-8")
    text = text.replace("  - id: tcqldd\n", "  - id: tnx\n    name: Vụ Thử nghiệm\n"
                        "  - id: tcqldd\n", 1)
    data.write_text(text, encoding="utf-8")
    assert validate(data).ok
    removed, added = edit(capsys, data, "add", "Lê Văn Tám", "--unit", "tnx")
    assert removed == [] and added[:4] == ["  - address: lvtam", "    id: 298",
                                           "    name: Lê Văn Tám", "    unit: tnx"]
    after = data.read_text(encoding="utf-8")
    # after tdkt's records (the unit listed before tnx), before tcqldd's heading
    assert after.index("# --- tdkt@") < after.index("address: lvtam") < \
        after.index("# --- tcqldd@")
    # a unit mailbox block where there was none, in the file's order of keys
    assert edit(capsys, data, "set", "--unit", "tnx", "--delegates", "lvtam") == (
        [], ["    mailbox:", "      delegates: [lvtam]"])


def test_a_suspension_with_its_end_scheduled_stays_active_until_its_date(
        data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert edit(capsys, data, "suspend", "nvthanh", "--reason", "Biệt phái", "--request",
                "2/QĐ-VPB", "--date", "2099-01-01", "--until", "2099-03-01") == (
        [], ["    suspended: { date: 2099-01-01, reason: Biệt phái, request: 2/QĐ-VPB, "
             "until: 2099-03-01 }"])
    from mailgov.dated import effective_state

    d = validate(data).directory
    assert d is not None
    m = next(x for x in d.mailboxes if x.address == "nvthanh")
    assert [effective_state(m, date(2099, 1, 1 + k)) for k in (0,)] == ["suspended"]
    assert effective_state(m, date(2098, 12, 31)) == effective_state(m, date(2099, 3, 1)) \
        == "active"
    # restore before it begins: the scheduled suspension goes, nothing to record
    assert edit(capsys, data, "restore", "nvthanh", "--request", "3/QĐ-VPB") == (
        ["    suspended: { date: 2099-01-01, reason: Biệt phái, request: 2/QĐ-VPB, "
         "until: 2099-03-01 }"], ["    change: { request: 3/QĐ-VPB }"])


@pytest.mark.parametrize(("name", "unit"), [("Nguyễn Anh Tuấn", "ttb"), ("Trần Thị Lan", "vp"),
                                            ("Phạm Minh Hiếu", "tcmt")])
def test_add_gives_the_address_mailgov_address_proposes(
        data: Path, capsys: pytest.CaptureFixture[str], name: str, unit: str) -> None:
    code, out, _err = run(capsys, "address", name, "--unit", unit, "--data", str(data))
    assert code == 0
    proposed = out.split()[0].split("@")[0]
    _removed, added = edit(capsys, data, "add", name, "--unit", unit)
    assert f"  - address: {proposed}" in added


# --------------------------------------------------------------------------- languages
# The edit commands choose their language like every command (mailgov.i18n: --lang, else the
# locale); the exit code, the rule id and the file stay the same in both languages.


@pytest.mark.parametrize(("lang", "expected"), [
    ("vi", "mailgov: lỗi: tệp sau khi sửa sẽ không hợp lệ; chưa ghi gì:\n"
     "{data}:56:5: MG214 đơn vị 'vpb': người đứng đầu 'nhhung' là hộp thư cá nhân ở trạng "
     "thái đã hủy"),
    ("en", "mailgov: error: the edited file would not validate; nothing was written:\n"
     "{data}:56:5: MG214 unit 'vpb': head 'nhhung' is a cancelled personal mailbox"),
])
def test_an_edit_refused_by_a_rule_says_why_in_the_chosen_language(
        data: Path, capsys: pytest.CaptureFixture[str], lang: str, expected: str) -> None:
    before = data.read_bytes()
    code, _out, err = run(capsys, "cancel", "nhhung", "--reason", "left", "--request", "1/QĐ",
                          "--lang", lang, "--data", str(data))
    assert code == 1
    assert err.startswith(expected.format(data=data)), err
    assert data.read_bytes() == before


@pytest.mark.parametrize(("env", "argv", "expected"), [
    ({"LANG": "vi_VN.UTF-8"}, [], "mailgov: lỗi: nvthanh đang hoạt động: không có gì để "
     "khôi phục\n"),
    ({"LANG": "vi_VN.UTF-8"}, ["--lang", "en"], "mailgov: error: nvthanh is active: nothing to "
     "restore\n"),
    ({"LANG": "C.UTF-8"}, [], "mailgov: error: nvthanh is active: nothing to restore\n"),
])
def test_an_edit_follows_the_locale_unless_lang_is_given(
        data: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        env: dict[str, str], argv: list[str], expected: str) -> None:
    for name in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, _out, err = run(capsys, "restore", "nvthanh", *argv, "--data", str(data))
    assert (code, err) == (1, expected)


@pytest.mark.parametrize(("lang", "rows", "summary"), [
    ("vi", ["{f}:2: unit: không có đơn vị 'vbp'; có phải là vp, vpb?",
            "{f}:3: name: 'Nguyễn' không có tên: hãy ghi đủ họ và tên, họ trước "
            "(Nguyễn Văn Long)"],
     "mailgov: lỗi: {f}: không nhập gì (2 lỗi)\n"),
    ("en", ["{f}:2: unit: unknown unit 'vbp'; did you mean vp, vpb?",
            "{f}:3: name: 'Nguyễn' has no given name: write the full name, surname first "
            "(Nguyễn Văn Long)"],
     "mailgov: error: {f}: nothing imported (2 problems)\n"),
])
def test_import_row_errors_read_in_the_chosen_language(
        data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], lang: str,
        rows: list[str], summary: str) -> None:
    sheet = write_csv(tmp_path / "staff.csv", "name,unit\nLê Văn An,vbp\nNguyễn,vpb\n")
    before = data.read_bytes()
    code, out, err = run(capsys, "import", str(sheet), "--lang", lang, "--data", str(data))
    assert code == 1
    assert out.splitlines() == [r.format(f=sheet) for r in rows]
    assert err == summary.format(f=sheet)
    assert data.read_bytes() == before


# --------------------------------------------------------------------------- issue 14's edits
# `mailgov domain migrate` and `mailgov unit rename|merge` report like the edit commands: a dry
# run prints the unified diff of exactly what the real run then writes.


@pytest.mark.parametrize("argv", [
    ["domain", "migrate", "monre.gov.vn", "mae.gov.vn", "--keep-until", "2027-06-30",
     "--request", "35/2025/NĐ-CP"],
    ["unit", "rename", "vpb", "--abbr", "vpbo", "--request", "2/QĐ", "--date", "2026-12-01"],
    ["unit", "merge", "ttb", "vpb", "--request", "3/QĐ", "--date", "2026-12-01"],
])
def test_reorganising_edits_dry_run_print_the_diff_the_real_run_writes(
        data: Path, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    before = data.read_text(encoding="utf-8")
    code, out, err = run(capsys, *argv, "--dry-run", "--data", str(data))
    assert code == 0 and data.read_text(encoding="utf-8") == before
    assert err.endswith("(dry run: nothing written)\n")
    assert out.startswith(f"--- a/{data}\n+++ b/{data}\n@@ -")
    code, _out, err = run(capsys, *argv, "--data", str(data))
    assert code == 0 and err.endswith("; review with git diff, then plan\n")
    after = data.read_text(encoding="utf-8")
    assert after != before and validate(data).ok
    assert out == "".join(unified_diff(before.splitlines(keepends=True),
                                       after.splitlines(keepends=True), str(data)))


# --------------------------------------------------------------------------- layouts


def with_unit_tnx(data: Path) -> None:
    """A unit without records (listed after tdkt, before tcqldd)."""
    text = data.read_text(encoding="utf-8")
    data.write_text(text.replace("  - id: tcqldd\n", "  - id: tnx\n    name: Vụ Thử nghiệm\n"
                                 "  - id: tcqldd\n", 1), encoding="utf-8")


@pytest.mark.parametrize("argv", [
    ["move", "nvthanh", "tnx", "--request", "3/QĐ"],
    ["add", "Lê Văn Tám", "--unit", "tnx", "--request", "4/QĐ"],
])
def test_per_unit_files_the_first_record_of_a_unit_starts_its_own_file(
        data: Path, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    """Not in the file of the unit listed before it (whose approvers would review it): in
    units/tnx.yaml, included where split would have put it, as split would have written it."""
    with_unit_tnx(data)
    split(data)
    units = data.parent / "units"
    others = {p: p.read_bytes() for p in units.iterdir() if p.name != "vpb.yaml"}
    code, out, _err = run(capsys, *argv, "--dry-run", "--data", str(data))
    assert code == 0 and not (units / "tnx.yaml").exists()
    assert f"--- /dev/null\n+++ b/{units / 'tnx.yaml'}\n@@ -0,0 +1," in out
    assert run(capsys, *argv, "--data", str(data))[0] == 0
    assert validate(data).ok
    main_text = data.read_text(encoding="utf-8")
    assert "  - include: units/tdkt.yaml\n  - include: units/tnx.yaml\n" \
        "  - include: units/tcqldd.yaml\n" in main_text
    own = (units / "tnx.yaml").read_text(encoding="utf-8").splitlines()
    assert own[:3] == ["# Mailboxes of unit tnx: included from ../mailboxes.yaml (`mailgov "
                       "join` puts them back).", own[1], "mailboxes:"]
    assert own[3].startswith("  - address: ") and "    unit: tnx" in own
    assert {p: p.read_bytes() for p in others} == others  # tdkt's file untouched
    if argv[0] == "move":
        assert "address: nvthanh" not in (units / "vpb.yaml").read_text(encoding="utf-8")
    # a later record of the unit joins it there
    assert run(capsys, "add", "Lê Văn Năm", "--unit", "tnx", "--data", str(data))[0] == 0
    assert (units / "tnx.yaml").read_text(encoding="utf-8").count("    unit: tnx\n") == 2


def test_per_unit_files_a_stray_file_of_the_unit_is_a_clear_refusal(
        data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with_unit_tnx(data)
    split(data)
    stray = data.parent / "units" / "tnx.yaml"
    stray.write_text("# not included\n", encoding="utf-8")
    snapshot = {p: p.read_bytes() for p in [data, *stray.parent.iterdir()]}
    code, _out, err = run(capsys, "move", "nvthanh", "tnx", "--data", str(data))
    assert code == 1
    assert err == (f"mailgov: error: {stray} exists but does not hold unit tnx's records; "
                   f"include it from {data} or move it away\n")
    assert {p: p.read_bytes() for p in snapshot} == snapshot


@pytest.mark.parametrize("argv", [
    ["add", "Lê Văn Tám", "--unit", "ttb", "--title", "Chuyên viên", "--request", "1/QĐ"],
    ["suspend", "ndhung", "--reason", "Nghỉ phép", "--request", "2/QĐ"],
    ["set", "--unit", "vpb", "--delegates", "ntbthao,lthieu"],
    ["move", "nvthanh", "ttb", "--request", "3/QĐ"],
    ["domain", "migrate", "monre.gov.vn", "mae.gov.vn", "--request", "4/NĐ"],
])
def test_a_file_with_crlf_line_endings_keeps_them_on_the_lines_an_edit_writes(
        data: Path, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    lf = data.read_text(encoding="utf-8")
    data.write_bytes(lf.replace("\n", "\r\n").encode("utf-8"))
    before = data.read_bytes()
    assert run(capsys, *argv, "--data", str(data))[0] == 0
    after = data.read_bytes()
    assert after != before
    assert after.count(b"\n") == after.count(b"\r\n")  # not one bare LF
    assert validate(data).ok


def test_a_value_not_found_is_refused_with_its_reason(data: Path) -> None:
    """Edit.set_scalar names what it could not find (its position tuple once shadowed the
    catalog's `_`, so this refusal raised TypeError instead)."""
    from mailgov.edit import Edit, EditError

    e = Edit.open(data)
    with pytest.raises(EditError, match=r"cannot find 'domain: no-such\.example' to change"):
        e.set_scalar(("organization", "domain"), "domain", "no-such.example", "x.example")


# --------------------------------------------------------------------------- hostile sheets

# Free text the data accepts that a spreadsheet would run as a formula (CSV injection).
FORMULAS = ("=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(A1)",
            "=cmd|' /C calc'!A0")


def test_export_writes_formula_like_text_as_text_and_imports_it_back(
        data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import csv
    import io

    from openpyxl import load_workbook

    from mailgov.importer import read_rows

    d = validate(data).directory
    assert d is not None
    ttb = [m.address for m in d.mailboxes if m.unit == "ttb" and m.state == "active"]
    assert len(ttb) >= len(FORMULAS)
    for address, title in zip(ttb, FORMULAS, strict=False):
        assert run(capsys, "set", address, f"--title={title}", "--data", str(data))[0] == 0
    code, out, _err = run(capsys, "export", "--unit", "ttb", "--data", str(data))
    assert code == 0
    cells = [c for row in list(csv.reader(io.StringIO(out)))[1:] for c in row]
    assert not [c for c in cells if c.startswith(("=", "+", "-", "@"))], out
    assert {f"'{title}" for title in FORMULAS} <= set(cells)
    sheet = tmp_path / "ttb.csv"
    sheet.write_text(out, encoding="utf-8")
    # the mark is the export's: an import reads the text as it was
    titles = {r.values["title"] for r in read_rows(sheet)}
    assert set(FORMULAS) <= titles
    book = tmp_path / "ttb.xlsx"
    assert run(capsys, "export", "--format", "xlsx", "--out", str(book), "--unit", "ttb",
               "--data", str(data))[0] == 0
    ws = load_workbook(book)["ttb"]  # not data_only: a formula would show as one
    cells_x = {c.value: c.data_type for row in ws.iter_rows(min_row=2) for c in row}
    for title in FORMULAS:
        assert cells_x[title] == "s", title


def test_publish_csv_writes_formula_like_text_as_text() -> None:
    import csv
    import io

    from mailgov import publish

    rows = [publish.Entry(name, title, "ttb", "=unit", "a@monre.gov.vn", "person", "1")
            for name, title in zip(FORMULAS, reversed(FORMULAS), strict=True)]
    text = publish.to_csv(rows)
    for row in list(csv.reader(io.StringIO(text)))[1:]:
        assert all(not c.startswith(("=", "+", "-", "@")) for c in row), row
        assert row[0].startswith("'") and row[1].startswith("'") and row[3] == "'=unit"


def xlsx_with_sheet(path: Path, rewrite: Callable[[bytes], bytes]) -> Path:
    """A one-person workbook (name, unit) saved at ``path`` with its sheet's XML rewritten."""
    import io
    import zipfile

    from openpyxl import Workbook

    wb = Workbook()
    wb.active.append(["name", "unit"])
    wb.active.append(["Lê Văn Tám", "ttb"])
    buf = io.BytesIO()
    wb.save(buf)
    src = zipfile.ZipFile(buf)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for info in src.infolist():
            part = src.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                part = rewrite(part)
            z.writestr(info.filename, part)
    return path


@pytest.mark.parametrize("size_mib", [8, 64])
def test_import_of_a_zip_bomb_xlsx_is_refused_unread(
        data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], size_mib: int) -> None:
    """A few kB that unpack to one XML comment of many MiB: expat takes minutes over it
    (4 MiB: 1.2 s, 16 MiB: ~20 s, quadratic), so it is refused before any part is parsed."""
    sheet = xlsx_with_sheet(tmp_path / "bomb.xlsx", lambda part: part.replace(
        b"<sheetData>", b"<!--" + b"A" * (size_mib << 20) + b"--><sheetData>"))
    assert sheet.stat().st_size < 200_000
    before = data.read_bytes()
    code, out, _err = run(capsys, "import", str(sheet), "--data", str(data))
    assert code == 1 and out.startswith(f"{sheet}: xl/worksheets/sheet1.xml unpacks to "
                                        f"{size_mib} MiB"), out
    assert data.read_bytes() == before


@pytest.mark.parametrize("argv", [
    ["add", "Nguyễn Văn Long", "--unit", "ttb", "--title", "a\udcffb"],
    ["add", "Nguyễn Văn Long", "--unit", "ttb", "--request", "45/QĐ\udcc3"],
    ["add", "Nguy\udcc3n Văn Long", "--unit", "ttb"],
    ["suspend", "natuan", "--reason", "ngh\udcc9", "--request", "45/QĐ-TCCB"],
    ["rename", "natuan", "--name", "\udcffNguyễn Anh Tuấn"],
    ["unit", "merge", "pc", "ttb", "--request", "1/Q\udc90"],
])
def test_an_argument_that_is_not_utf8_is_a_usage_error_not_a_traceback(
        data: Path, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    """A byte that is not UTF-8 on the command line (a Latin-1 terminal, a script) comes in
    as a lone surrogate; the YAML writer raised UnicodeEncodeError on it."""
    before = data.read_bytes()
    code, _out, err = run(capsys, *argv, "--data", str(data))
    bad = next(a for a in argv if any(0xDC80 <= ord(c) <= 0xDCFF for c in a))
    shown = "".join(f"\\x{ord(c) - 0xDC00:02x}" if 0xDC80 <= ord(c) <= 0xDCFF else c
                    for c in bad)
    assert code == 2 and f"'{shown}': not UTF-8 text" in err, err
    assert data.read_bytes() == before


@pytest.mark.parametrize("value", [
    # an entity bomb: expat stops it ("limit on input amplification factor")
    b'<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">' + b"".join(
        b'<!ENTITY a%d "%s">' % (i, (b"&a%d;" % (i - 1) if i > 1 else b"&a;") * 10)
        for i in range(1, 10)) + b"]>",
    b"<worksheet><sheetData><row><c t=\"inlineStr\"><is><t>x</t></is></c>",  # cut short
])
def test_import_of_an_xlsx_whose_sheet_xml_is_hostile_is_one_clear_error(
        data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], value: bytes) -> None:
    sheet = xlsx_with_sheet(tmp_path / "bad.xlsx", lambda part: (
        value + part.split(b"?>", 1)[-1].replace(b"<sheetData>", b"<sheetData>&a9;", 1))
        if value.startswith(b"<!DOCTYPE") else value)
    before = data.read_bytes()
    code, out, _err = run(capsys, "import", str(sheet), "--data", str(data))
    assert code == 1 and out.startswith(f"{sheet}: not a readable XLSX workbook ("), out
    assert data.read_bytes() == before


def test_import_refuses_formulas_without_a_saved_result(
        data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # openpyxl, like any program writing a workbook, saves formulas without their result:
    # read by value, the title would have been empty, silently.
    import zipfile

    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["Họ và tên", "Đơn vị", "Chức vụ", None])  # a column without heading is not read
    ws.append(["Lê Văn Tám", "ttb", "=D2", "Thanh tra viên"])
    sheet = tmp_path / "new.xlsx"
    wb.save(sheet)
    before = data.read_bytes()
    code, out, _err = run(capsys, "import", str(sheet), "--data", str(data))
    assert code == 1 and out.startswith(
        f"{sheet}: cell(s) C2 hold a formula without a saved result")
    assert data.read_bytes() == before
    # the same formula with the result a spreadsheet application saves beside it is read
    saved = tmp_path / "saved.xlsx"
    with zipfile.ZipFile(sheet) as src, zipfile.ZipFile(saved, "w") as dst:
        for item in src.infolist():
            part = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                assert b"<f>D2</f>" in part
                part = part.replace(b"<f>D2</f><v />", "<f>D2</f><v>Thanh tra viên</v>".encode())
                part = part.replace(b'r="C2"', b'r="C2" t="str"')
            dst.writestr(item, part)
    code, _out, err = run(capsys, "import", str(saved), "--data", str(data))
    assert code == 0, err
    assert "    title: Thanh tra viên\n" in data.read_text(encoding="utf-8")
