"""The `mailgov` command: exit codes, output formats, no tracebacks for user errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mailgov.cli import main
from mailgov.loader import load

ROOT = Path(__file__).resolve().parents[2]
GOOD = ROOT / "tests" / "data" / "good" / "example.yaml"
BAD = ROOT / "tests" / "data" / "bad"
TODAY = ["--today", "2026-11-29"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_validate_ok_prints_summary(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", str(GOOD), *TODAY)
    assert code == 0
    assert out.count("\n") == 1
    assert "4 units, 8 mailboxes" in out
    assert "affiliate 1, personal 7" in out and "active 6, cancelled 1, suspended 1" in out


def test_validate_ok_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", str(GOOD), "--format", "json", *TODAY)
    assert code == 0
    doc = json.loads(out)
    assert doc["ok"] is True and doc["summary"]["by_state"]["suspended"] == 1


@pytest.mark.parametrize(("name", "rule", "line"), [
    ("mg203_unknown_unit.yaml", "MG203", 90),
    ("mg007_duplicate_key_in_mailbox.yaml", "MG007", 66),
    ("mg101_mailbox_without_name.yaml", "MG101", 62),
    ("mg004_latin1_byte.yaml", "MG004", 66),
])
def test_validate_bad_exits_1_with_problem_lines(capsys: pytest.CaptureFixture[str], name: str,
                                                 rule: str, line: int) -> None:
    path = BAD / name
    code, out, err = run(capsys, "validate", str(path), *TODAY)
    assert code == 1
    assert out.startswith(f"{path}:{line}:")
    assert f": {rule} " in out
    assert "1 problem in" in err


def test_validate_bad_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", str(BAD / "mg403_forward_outside_gov.yaml"),
                       "--format", "json", *TODAY)
    assert code == 1
    doc = json.loads(out)
    assert doc["ok"] is False
    [p] = doc["problems"]
    assert p["rule"] == "MG403" and p["path"] == ["mailboxes", 0, "forward_to", 0]
    assert "gmail.com" in p["message"]


def test_validate_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "validate", str(tmp_path / "none.yaml"))
    assert code == 1 and "MG001" in out


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in ([], ["frobnicate"], ["validate", "--format", "xml"], ["validate", "--today",
                                                                          "yesterday"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
    capsys.readouterr()


def test_address_proposes_free_address(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "address", "Nguyễn Anh Tuấn", "--data", str(GOOD))
    assert code == 0
    assert out == "natuan3@monre.gov.vn\n"  # natuan and natuan2 are taken


def test_address_avoids_aliases_and_unit_mailboxes(capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    text = GOOD.read_text(encoding="utf-8").replace("aliases: [tuan.na]",
                                                    "aliases: [tuan.na, lvlong]")
    data = tmp_path / "m.yaml"
    data.write_text(text, encoding="utf-8")
    code, out, _ = run(capsys, "address", "Lê Văn Long", "--data", str(data))
    assert (code, out) == (0, "lvlong2@monre.gov.vn\n")


def test_address_json_and_unit_token(capsys: pytest.CaptureFixture[str], tmp_path: Path
                                     ) -> None:
    data = load(GOOD).data
    data["policy"]["naming"]["personal"]["templates"] = ["{given}{initials}.{unit}"]
    # the existing addresses now break the policy; exempt them to keep the file valid
    for m in data["mailboxes"]:
        m.setdefault("naming_exemption", {"reason": "cũ", "request": "1/QĐ-VPB"})
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    assert main(["validate", str(path), *TODAY]) == 0
    capsys.readouterr()
    code, out, _ = run(capsys, "address", "Trần Văn Bình", "--unit", "vp", "--data", str(path),
                       "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["address"] == "binhtv.vp.tcmt@monre.gov.vn"
    assert doc["candidates"] == ["binhtv.vp.tcmt"]


def test_address_unknown_unit_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "address", "Lê Văn Long", "--unit", "vbp", "--data", str(GOOD))
    assert code == 2 and out == ""
    assert "unknown unit 'vbp'" in err and "vpb" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("extra", [["--birth", "1990"], ["--birth", "1990-13"],
                                   ["--id-digits", "0123456789012"], ["--id-digits", "abc"]])
def test_address_bad_options_exit_2(capsys: pytest.CaptureFixture[str], extra: list[str]
                                    ) -> None:
    code, _, err = run(capsys, "address", "Lê Văn Long", "--data", str(GOOD), *extra)
    assert code == 2 and "mailgov: error:" in err


def test_address_name_without_letters_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "address", "--- ---", "--data", str(GOOD))
    assert code == 2 and "cannot propose" in err


def test_address_refuses_invalid_data(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "address", "Lê Văn Long", "--data",
                         str(BAD / "mg201_duplicate_address.yaml"))
    assert code == 1 and "MG201" in out and "fix the data file" in err


def test_console_script_no_traceback(tmp_path: Path) -> None:
    """Through a real process: bad input gives a message and exit 1, never a traceback."""
    proc = subprocess.run(
        [sys.executable, "-m", "mailgov.cli", "validate", str(BAD / "mg005_tab_indent.yaml")],
        capture_output=True, text=True, check=False, cwd=ROOT)
    assert proc.returncode == 1
    assert "MG005" in proc.stdout and "Traceback" not in proc.stderr


def test_top_level_help_names_only_commands_that_exist(
        capsys: pytest.CaptureFixture[str]) -> None:
    # The description once promised commands "to come"; it must describe what is there.
    with pytest.raises(SystemExit):
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "come next" not in out
    for command in ("validate", "address", "plan", "dns", "export-vars"):
        assert command in out


def test_apply_needs_a_server(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["apply", str(GOOD)]) == 2
    assert "--ldap-uri" in capsys.readouterr().err


def test_apply_unreachable_is_one_line_and_changes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    secret = tmp_path / "pw"
    secret.write_text("x\n")
    ca = tmp_path / "ca.crt"
    ca.write_text("")
    rc = main(["apply", str(GOOD), "--ldap-uri", "ldap://127.0.0.1:1", "--password-file",
               str(secret), "--ca-file", str(ca), "--timeout", "2", "--confirm",
               "--format", "json"])
    out = capsys.readouterr()
    assert rc == 2 and "Traceback" not in out.err
    report = json.loads(out.out)
    assert report["status"] == "unreachable" and "nothing was changed" in report["message"]


def test_apply_bad_data_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = ROOT / "tests" / "data" / "bad" / "mg101_mailbox_without_name.yaml"
    secret = tmp_path / "pw"
    secret.write_text("x\n")
    assert main(["apply", str(bad), "--ldap-uri", "ldap://127.0.0.1:1", "--password-file",
                 str(secret), "--ca-file", str(secret)]) == 1
    assert "MG101" in capsys.readouterr().out
