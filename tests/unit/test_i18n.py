"""Vietnamese for the command line (issue 15 item 4): language choice, a few messages of
validate and of the planner's refusals, the error prefix, the plan's Markdown and the help in
both languages, and a catalog that covers every string (tools/i18n.py --check, as
`make i18n` leaves it)."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailgov import i18n
from mailgov.cli import main
from mailgov.model import build
from mailgov.plan import plan
from mailgov.report_plan import render_markdown

sys.path.insert(0, str(Path(__file__).parent))
from test_plan import _base, cancel, live_of, set_
from test_report_plan import TODAY

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "mailboxes.yaml"


@pytest.fixture(autouse=True)
def english_after() -> Iterator[None]:
    yield
    i18n.use("en")  # the process-wide default other tests expect


@pytest.mark.parametrize(("env", "argv", "lang"), [
    ({}, [], "en"),
    ({"LANG": "vi_VN.UTF-8"}, [], "vi"),
    ({"LANG": "vi"}, [], "vi"),
    ({"LANG": "en_US.UTF-8", "LC_MESSAGES": "vi_VN"}, [], "vi"),
    ({"LANG": "vi_VN.UTF-8", "LC_ALL": "C"}, [], "en"),  # LC_ALL wins (POSIX)
    ({"LANG": "vi_VN.UTF-8", "LC_ALL": "C.UTF-8"}, [], "en"),
    ({"LANG": "fr_FR.UTF-8"}, [], "en"),
    ({}, ["validate", "--lang", "vi"], "vi"),
    ({}, ["--lang=vi", "validate"], "vi"),
    ({"LANG": "vi_VN.UTF-8"}, ["validate", "--lang", "en"], "en"),
    ({}, ["validate", "--", "--lang", "vi"], "en"),
])
def test_language_choice(env: dict[str, str], argv: list[str], lang: str) -> None:
    assert i18n.cli_language(argv, env) == lang


def test_reports_keep_vietnamese_by_default() -> None:
    assert i18n.DEFAULT_LANGUAGE == "vi"
    assert i18n.translator().gettext("Inactive mailboxes") != "Inactive mailboxes"


def _bad_file(tmp_path: Path) -> Path:
    text = SAMPLE.read_text(encoding="utf-8")
    text = text.replace("  - address: natuan\n", "  - address: natuan\n    qouta: 5\n", 1)
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("lang", "expected"), [
    ("en", "MG102 mailboxes[2]: unknown field 'qouta'; did you mean 'quota_mb'? allowed here:"),
    ("vi", "MG102 mailboxes[2]: trường không xác định 'qouta'; có phải ý bạn là 'quota_mb'? "
           "các trường được phép ở đây:"),
])
def test_validate_message_in_both_languages(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            lang: str, expected: str) -> None:
    bad = _bad_file(tmp_path)
    code = main(["validate", str(bad), "--lang", lang])
    out, err = capsys.readouterr()
    assert code == 1  # the exit code does not change with the language
    assert f"{bad}:" in out and expected in out, out
    assert err.strip() == {"en": f"1 problem in {bad}", "vi": f"1 lỗi trong {bad}"}[lang]


def test_meaning_checks_in_vietnamese(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    text = SAMPLE.read_text(encoding="utf-8")
    # natuan's unit becomes one that does not exist: MG203, and its head MG215
    start = text.index("  - address: natuan\n")
    at = text.index("    unit: vpb\n", start)
    path = tmp_path / "unit.yaml"
    path.write_text(text[:at] + "    unit: khongco\n" + text[at + 14:], encoding="utf-8")
    main(["validate", str(path), "--lang", "vi"])
    out = capsys.readouterr().out
    assert "MG203 hộp thư 'natuan': mã đơn vị 'khongco' không tồn tại" in out, out
    main(["validate", str(path), "--lang", "en"])
    assert "MG203 mailbox 'natuan': unit 'khongco' is not a unit id" in capsys.readouterr().out


def test_valid_summary_in_vietnamese(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(SAMPLE), "--lang", "vi"]) == 0
    out = capsys.readouterr().out
    assert re.match(r".*: HỢP LỆ: \d+ đơn vị, \d+ hộp thư \(theo loại: .*cá nhân \d+; "
                    r"theo trạng thái: đang hoạt động \d+", out), out


def _plan() -> Any:
    want = _base()
    set_("ttlan", quota_mb=4096)(want)
    cancel("natuan2")(want)
    return plan(build(want), live_of(_base()), today=TODAY)


def test_plan_markdown_in_both_languages() -> None:
    p = _plan()
    i18n.use("en")
    en = render_markdown(p).splitlines()
    i18n.use("vi")
    vi = render_markdown(p).splitlines()
    assert en[0] == "### mailgov plan: 3 changes" and vi[0] == "### mailgov plan: 3 thay đổi"
    assert "| change | count |" in en and "| thay đổi | số lượng |" in vi
    assert "| cancel | 1 |" in en and "| hủy | 1 |" in vi
    assert "| **tổng số thay đổi** | **3** |" in vi
    cancel_line = next(x for x in vi if x.startswith("- `natuan2@"))
    assert "đã hủy: từ chối nhận thư, khóa đăng nhập" in cancel_line, cancel_line
    assert len(en) == len(vi)  # the same lines, only the words differ


def test_help_in_both_languages() -> None:
    def help_of(*argv: str, env: dict[str, str]) -> str:
        run = subprocess.run([sys.executable, "-m", "mailgov.cli", *argv, "--help"], cwd=ROOT,
                             env={"PATH": "/usr/bin:/bin", **env}, capture_output=True,
                             text=True, check=False)
        assert run.returncode == 0, run.stderr
        return run.stdout

    vi = help_of("plan", env={"LANG": "vi_VN.UTF-8"})
    assert vi.startswith("cách dùng: mailgov plan")
    assert "hiển thị trợ giúp này rồi thoát" in vi
    assert "Kiểm tra dữ liệu, đọc thư mục đang chạy" in vi
    en = help_of("plan", env={"LANG": "C.UTF-8"})
    assert en.startswith("usage: mailgov plan") and "Validate the data, read the live" in en
    top = help_of("--lang", "vi", env={})
    assert "kiểm tra tệp dữ liệu (cấu trúc và nội dung)" in top


def test_usage_error_in_vietnamese_keeps_exit_code() -> None:
    run = subprocess.run([sys.executable, "-m", "mailgov.cli", "--lang", "vi", "valdate"],
                         cwd=ROOT, capture_output=True, text=True, check=False)
    assert run.returncode == 2
    assert "mailgov: lỗi: tham số COMMAND: lựa chọn không hợp lệ: 'valdate'" in run.stderr


def test_every_help_text_is_in_the_catalog() -> None:
    """Each command's help has a Vietnamese entry (a new command without one fails here and
    in tools/i18n.py --check)."""
    cat = i18n.translator("vi")
    from tools.i18n import help_strings

    texts = help_strings()
    assert len(texts) > 150
    missing = [t for t in texts if cat.gettext(t) == t]
    assert missing == []


def test_catalog_complete_and_compiled() -> None:
    proc = subprocess.run([sys.executable, "tools/i18n.py", "--check"], capture_output=True,
                          text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr


def test_translations_keep_their_placeholders() -> None:
    from babel.messages.pofile import read_po

    with (i18n.LOCALE_DIR / "vi" / "LC_MESSAGES" / "mailgov.po").open("rb") as fh:
        cat = read_po(fh)
    ph = re.compile(r"\{[A-Za-z_][A-Za-z_0-9]*(?:![rsa])?(?::[^{}]*)?\}|%\([a-z_]+\)[sr]|%s")
    wrong = []
    for m in cat:
        if not m.id:
            continue
        src = m.id if isinstance(m.id, str) else m.id[0]
        dst = m.string if isinstance(m.string, str) else m.string[0]
        if sorted(ph.findall(src)) != sorted(ph.findall(dst)):
            wrong.append(src)
    assert wrong == []


def test_naming_policy_error_in_vietnamese(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["address", "!!! ???", "--lang", "vi"])
    err = capsys.readouterr().err
    assert code == 2
    assert "họ tên '!!! ???' không có chữ cái nào để tạo địa chỉ" in err, err


def test_planner_refusals_in_both_languages() -> None:
    """The planner's refusals (MG6xx) speak the chosen language; the rule id stays first."""
    have = _base()
    want = copy.deepcopy(have)
    boxes = {m["address"]: m for m in want["mailboxes"]}
    boxes["natuan"]["aliases"] = []
    boxes["natuan2"]["aliases"] = ["tuan.na"]  # an alias moving to another person: MG605
    i18n.use("en")
    en = [r for r in plan(build(want), live_of(have), today=TODAY).refusals
          if r.startswith("MG605")]
    i18n.use("vi")
    vi = [r for r in plan(build(want), live_of(have), today=TODAY).refusals
          if r.startswith("MG605")]
    assert len(en) == len(vi) == 1
    assert "an address would reach another mailbox than it does today" in en[0], en
    assert "địa chỉ sẽ chuyển thư đến một hộp thư khác với hiện nay" in vi[0], vi
    assert "(id:1 -> id:3)" in vi[0]  # the facts stay as they are


def test_error_prefix_in_both_languages(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["restore", "nvthanh", "--request", "1/QĐ", "--lang", "vi",
                 "--data", str(SAMPLE), "--dry-run"]) == 1
    assert capsys.readouterr().err.startswith("mailgov: lỗi: ")
    assert main(["restore", "nvthanh", "--request", "1/QĐ", "--lang", "en",
                 "--data", str(SAMPLE), "--dry-run"]) == 1
    assert capsys.readouterr().err.startswith("mailgov: error: ")


# --------------------------------------------------------------------------- no plain English

# Errors whose message (first argument) reaches the admin as "mailgov: error: …".
USER_ERRORS = frozenset({
    "CliError", "ManifestError", "AuditError", "CollectError", "CommentError",
    "CredentialError", "DirectoryError", "DnsError", "DumpError", "EditError", "EditCliError",
    "ImportError_", "IncludeError", "LayoutError", "LdifImportError", "LiveError", "LoadError",
    "LockError", "NamingError", "ContextError", "ReviewedPlanError", "SnapshotError",
    "UsageCliError", "ConnectionLost", "ArgumentTypeError",
})
# validate's problems: callee -> (position, keyword) of the message argument.
PROBLEM_MESSAGE = {"Problem": (1, "message"), "problem": (1, "message"),
                   "_problem": (2, "message"), "report": (2, "message")}
# Deliberate plain text, (file, start of the literal): never shown as a sentence to translate.
ALLOWED = {
    # `python -m mailgov.directory`: a developer's debugging entry point, not the mailgov CLI.
    ("directory.py", "usage: python -m mailgov.directory"),
    # Standard library only: module_utils/mailgov_archive_format.py links to it, and the mail
    # host that runs it has no mailgov package (nor its catalog).
    ("archive_format.py", ""),
}


def _words(node: Any) -> bool:
    """A string literal or f-string with words in its own text (not only placeholders and
    punctuation such as f"{path}: {exc}")."""
    import ast

    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and any(c.isalpha() for c in node.value)
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.Constant) and any(c.isalpha() for c in v.value)
                   for v in node.values)
    if isinstance(node, ast.BinOp):
        return _words(node.left) or _words(node.right)
    if isinstance(node, ast.IfExp):
        return _words(node.body) or _words(node.orelse)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
            and node.func.attr in ("format", "join"):
        return _words(node.func.value)  # "…{x}…".format(x=…) without _() around it
    return False  # _("…"), ngettext(…), a variable: not plain English text


def untranslated_messages(folder: Path) -> list[str]:
    """FILE:LINE of every user-facing message in ``folder``/*.py given as plain text: the
    message of a USER_ERRORS exception or of a validate problem, and a line printed to
    stderr."""
    import ast

    found = []
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) \
                else ""
            arg = None
            if name in USER_ERRORS and node.args:
                arg = node.args[0]
            elif name in PROBLEM_MESSAGE:
                at, key = PROBLEM_MESSAGE[name]
                arg = node.args[at] if len(node.args) > at else next(
                    (k.value for k in node.keywords if k.arg == key), None)
            elif name == "print" and node.args and any(
                    k.arg == "file" and ast.unparse(k.value) == "sys.stderr"
                    for k in node.keywords):
                arg = node.args[0]
            if arg is None or not _words(arg):
                continue
            text = ast.unparse(arg).lstrip("f").strip("'\"")
            if any(path.name == file and text.startswith(start) for file, start in ALLOWED):
                continue
            found.append(f"{path.name}:{node.lineno}: {name}({ast.unparse(arg)[:80]})")
    return found


def test_user_facing_messages_go_through_gettext() -> None:
    """An error message, validate problem or stderr line written as a plain string or
    f-string stays English under --lang vi: wrap it, _("… {name} …").format(name=…)."""
    assert untranslated_messages(ROOT / "mailgov") == []


def test_the_guard_sees_plain_messages(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(
        'import sys\n'
        'raise CliError(f"cannot read {path}")\n'
        'raise CliError("the name is empty")\n'
        'raise LiveError("{x} is gone".format(x=1))\n'
        'p = Problem("MG502", f"line {n} is stale", ())\n'
        'print(f"mailgov: {n} parts", file=sys.stderr)\n'
        'raise CliError(_("the name is empty"))\n'  # translated: fine
        'raise CliError(f"{path}: {exc}")\n'  # no words of its own: fine
        'print(f"{n} parts")\n', encoding="utf-8")  # standard output (data): not checked
    assert [x.split(":")[1] for x in untranslated_messages(tmp_path)] == \
        ["2", "3", "4", "5", "6"]


def test_codeowners_problem_in_both_languages(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from test_codeowners import _owned

    data = _owned(tmp_path)
    assert main(["codeowners", str(data)]) == 0
    owners = tmp_path / "CODEOWNERS"
    owners.write_text(owners.read_text(encoding="utf-8") + "/x @y\n", encoding="utf-8")
    line = len(owners.read_text(encoding="utf-8").splitlines())
    capsys.readouterr()
    for lang, want in (
            ("en", f"MG502 CODEOWNERS is stale: line {line} should be '(end of file)'; run "
                   "`mailgov codeowners`"),
            ("vi", f"MG502 CODEOWNERS đã cũ: dòng {line} phải là '(hết tệp)'; hãy chạy "
                   "`mailgov codeowners`")):
        assert main(["validate", "--today", "2026-11-29", str(data), "--lang", lang]) == 1
        out = capsys.readouterr().out
        assert f"CODEOWNERS:{line}:1: {want}\n" in out, out


@pytest.mark.parametrize(("lang", "expected"), [
    ("en", "mailgov: error: the name is empty\n"),
    ("vi", "mailgov: lỗi: họ tên để trống\n"),
])
def test_cli_error_in_both_languages(capsys: pytest.CaptureFixture[str], lang: str,
                                     expected: str) -> None:
    assert main(["address", "", "--lang", lang]) == 2
    assert capsys.readouterr().err == expected


def test_export_in_vietnamese_imports_again(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    before = tmp_path / "before.yaml"
    shutil.copy(SAMPLE, before)
    data = tmp_path / "mailboxes.yaml"
    shutil.copy(SAMPLE, data)
    sheet = tmp_path / "new.csv"
    sheet.write_text("name,unit,title\nLê Văn Tám,ttb,Thanh tra viên\n", encoding="utf-8")
    assert main(["import", str(sheet), "--data", str(data)]) == 0
    capsys.readouterr()
    assert main(["export", "--unit", "ttb", "--data", str(data), "--lang", "vi"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0] == "đơn vị,tên đơn vị,họ và tên,địa chỉ,chức danh,vai trò,loại,trạng thái"
    new = next(r for r in rows if "Lê Văn Tám" in r)
    assert new.endswith(",cán bộ,cá nhân,đang hoạt động"), new
    assert main(["export", "--unit", "ttb", "--data", str(data), "--lang", "en"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == \
        "unit,unit_name,name,address,title,role,kind,state"
    # The Vietnamese sheet of the new person imports into the data as it was before.
    again = tmp_path / "again.csv"
    again.write_text(rows[0] + "\n" + new + "\n", encoding="utf-8")
    assert main(["import", str(again), "--data", str(before)]) == 0
    assert "lvtam@monre.gov.vn" in capsys.readouterr().out
    assert before.read_text(encoding="utf-8") == data.read_text(encoding="utf-8")
    # The data file's own words import too; a word of neither is refused with both named.
    # A spreadsheet's case and spaces do not matter (" Staff ", "CÁ NHÂN").
    for role, kind, code in (("staff", "personal", 0), (" Staff ", "CÁ NHÂN", 0),
                             ("trưởng phòng", "cá nhân", 1)):
        mixed = tmp_path / f"mixed-{code}-{role.strip()}.csv"
        mixed.write_text(rows[0] + "\n" + new.replace("cán bộ,cá nhân", f"{role},{kind}")
                         + "\n", encoding="utf-8")
        fresh = tmp_path / f"fresh-{code}-{role.strip()}.yaml"
        shutil.copy(SAMPLE, fresh)
        assert main(["import", str(mixed), "--data", str(fresh)]) == code
        if code == 0:
            assert fresh.read_text(encoding="utf-8") == data.read_text(encoding="utf-8")
    assert f"{mixed}:2: role: 'trưởng phòng': one of staff, head, admin" in \
        capsys.readouterr().out
    shouted = tmp_path / "shouted.csv"  # the state too: " ĐANG HOẠT ĐỘNG " is active
    shouted.write_text(rows[0] + "\n" + new.replace("đang hoạt động", " ĐANG HOẠT ĐỘNG ")
                       + "\n", encoding="utf-8")
    fresh = tmp_path / "fresh-shouted.yaml"
    shutil.copy(SAMPLE, fresh)
    assert main(["import", str(shouted), "--data", str(fresh)]) == 0
    assert fresh.read_text(encoding="utf-8") == data.read_text(encoding="utf-8")
    capsys.readouterr()
    # A state other than active is not imported, in either language.
    closed = tmp_path / "closed.csv"
    closed.write_text(rows[0] + "\n" + new.replace("đang hoạt động", "đã hủy") + "\n",
                      encoding="utf-8")
    assert main(["import", str(closed), "--data", str(before), "--lang", "vi"]) == 1
    assert f"{closed}:2: state: 'đã hủy': chỉ nhập những người đang hoạt động" in \
        capsys.readouterr().out
