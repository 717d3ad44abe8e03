"""Units own their records: per-unit files (includes), split/join, CODEOWNERS (issue 16.3)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from mailgov import codeowners, fastload, layout
from mailgov.cli import main
from mailgov.loader import LoadError, load
from mailgov.validate import validate
from tools.generate import dump, generate

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "mailboxes.yaml"
TODAY = "2026-11-29"


@pytest.fixture(params=["fast", "precise"])
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "precise":
        monkeypatch.setattr(fastload, "_ryml", None)
    return str(request.param)


def _repo(tmp_path: Path, text: bytes | None = None) -> Path:
    (tmp_path / ".git").mkdir()
    (tmp_path / "data").mkdir()
    data = tmp_path / "data" / "mailboxes.yaml"
    data.write_bytes(SAMPLE.read_bytes() if text is None else text)
    return data


# --------------------------------------------------------------------------- split / join


def test_split_then_join_is_byte_identical_on_the_sample(tmp_path: Path, parser: str) -> None:
    data = _repo(tmp_path)
    before = load(data).data
    written = layout.split(data)
    assert len(written) == 1 + len({m["unit"] for m in before["mailboxes"]})
    assert data.read_bytes() != SAMPLE.read_bytes()
    assert "  - include: units/vpb.yaml\n" in data.read_text(encoding="utf-8")
    # The split layout reads as the very same data (both parsers), and validates.
    after = load(data)
    assert after.data == before and after.parts is not None
    assert validate(data).ok
    layout.join(data)
    assert data.read_bytes() == SAMPLE.read_bytes()
    assert not (data.parent / "units").exists()


def test_split_then_join_is_byte_identical_on_a_generated_file(tmp_path: Path) -> None:
    text = dump(generate(3000, seed=7)).encode("utf-8")
    data = _repo(tmp_path, text)
    layout.split(data)
    assert len(list((data.parent / "units").glob("*.yaml"))) > 10
    layout.join(data)
    assert data.read_bytes() == text


def test_split_refuses_a_unit_in_two_places_and_writes_nothing(tmp_path: Path) -> None:
    text = SAMPLE.read_text(encoding="utf-8")
    # Move the first vpb record to the end of the file: vpb is then in two runs.
    start = text.index("  - address: congdoan")
    end = text.index("  - address: doanthanhnien")
    moved = text[:start] + text[end:] + text[start:end]
    data = _repo(tmp_path, moved.encode("utf-8"))
    with pytest.raises(layout.LayoutError, match="records of unit 'vpb' are in more than one "
                       "place"):
        layout.split(data)
    assert data.read_bytes() == moved.encode("utf-8")
    assert not (data.parent / "units").exists()


def test_cli_split_join_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _repo(tmp_path)
    assert main(["split", str(data)]) == 0
    assert main(["split", str(data)]) == 2
    assert "already includes per-unit files" in capsys.readouterr().err
    assert main(["join", str(data)]) == 0
    assert main(["join", str(data)]) == 2
    assert "includes no per-unit files" in capsys.readouterr().err
    assert data.read_bytes() == SAMPLE.read_bytes()


# --------------------------------------------------------------------------- includes


def _split_repo(tmp_path: Path) -> Path:
    data = _repo(tmp_path)
    layout.split(data)
    return data


def test_problems_point_into_the_included_file(tmp_path: Path, parser: str) -> None:
    data = _split_repo(tmp_path)
    unit_file = data.parent / "units" / "ttb.yaml"
    lines = unit_file.read_text(encoding="utf-8").splitlines(keepends=True)
    n = max(i for i, x in enumerate(lines) if x.strip() == "unit: ttb")  # not the head
    lines[n] = lines[n].replace("unit: ttb", "unit: nosuchunit")
    unit_file.write_text("".join(lines), encoding="utf-8")
    result = validate(data, today=None)
    assert [(p.rule, p.file, p.line, p.col) for p in result.problems] == [
        ("MG203", str(unit_file), n + 1, 5)]


def test_malformed_included_file_is_located_there(tmp_path: Path, parser: str) -> None:
    data = _split_repo(tmp_path)
    unit_file = data.parent / "units" / "pc.yaml"
    n = len(unit_file.read_text(encoding="utf-8").splitlines()) + 1
    with unit_file.open("a", encoding="utf-8") as f:
        f.write("  - address: x: y\n")
    with pytest.raises(LoadError) as exc:
        load(data)
    assert [(p.rule, p.file, p.line) for p in exc.value.problems] == [
        ("MG006", str(unit_file), n)]


def _include_problem(tmp_path: Path, target: str) -> tuple[str, str, int]:
    data = _split_repo(tmp_path)
    text = data.read_text(encoding="utf-8")
    text = text.replace("  - include: units/ttb.yaml\n", f"  - include: {target}\n", 1)
    data.write_text(text, encoding="utf-8")
    line = text[: text.index(f"- include: {target}")].count("\n") + 1
    with pytest.raises(LoadError) as exc:
        load(data)
    (p,) = exc.value.problems
    assert p.file == str(data) and p.line == line, p.format()
    return p.rule, p.message, p.line


def test_include_of_a_missing_file(tmp_path: Path) -> None:
    rule, message, _ = _include_problem(tmp_path, "units/nope.yaml")
    assert rule == "MG012" and "'units/nope.yaml' does not exist" in message


@pytest.mark.parametrize("target", ["../outside.yaml", "/etc/passwd", "units/../../x.yaml"])
def test_include_out_of_the_data_directory(tmp_path: Path, target: str) -> None:
    (tmp_path / "outside.yaml").write_text("mailboxes: []\n", encoding="utf-8")
    rule, message, _ = _include_problem(tmp_path, target)
    assert rule == "MG013", message
    assert "absolute path" in message or "leaves the data directory" in message


def test_include_through_a_symbolic_link_out(tmp_path: Path) -> None:
    (tmp_path / "outside.yaml").write_text("mailboxes: []\n", encoding="utf-8")
    data = _split_repo(tmp_path)
    os.symlink(tmp_path / "outside.yaml", data.parent / "units" / "link.yaml")
    text = data.read_text(encoding="utf-8").replace(
        "  - include: units/ttb.yaml\n", "  - include: units/link.yaml\n", 1)
    data.write_text(text, encoding="utf-8")
    with pytest.raises(LoadError) as exc:
        load(data)
    assert [p.rule for p in exc.value.problems] == ["MG013"]
    assert "symbolic link" in exc.value.problems[0].message


def test_include_cycle_through_another_file(tmp_path: Path) -> None:
    data = _split_repo(tmp_path)
    unit_file = data.parent / "units" / "ttb.yaml"
    with unit_file.open("a", encoding="utf-8") as f:
        f.write("  - include: ../mailboxes.yaml\n")
    with pytest.raises(LoadError) as exc:
        load(data)
    (p,) = exc.value.problems
    assert p.rule == "MG014" and p.file == str(unit_file)
    assert "mailboxes.yaml -> ttb.yaml -> mailboxes.yaml" in p.message


def test_included_file_with_other_keys(tmp_path: Path) -> None:
    data = _split_repo(tmp_path)
    unit_file = data.parent / "units" / "ttb.yaml"
    unit_file.write_text(unit_file.read_text(encoding="utf-8") + "units: []\n",
                         encoding="utf-8")
    with pytest.raises(LoadError) as exc:
        load(data)
    (p,) = exc.value.problems
    assert p.rule == "MG015" and p.file == str(unit_file) and "has the key 'units'" in p.message


# --------------------------------------------------------------------------- CODEOWNERS


def _owned(tmp_path: Path, *, split: bool = True, it: bool = True) -> Path:
    data = _split_repo(tmp_path) if split else _repo(tmp_path)
    text = data.read_text(encoding="utf-8")
    if it:
        text = text.replace("  logs_retention_days: 180\n",
                            "  logs_retention_days: 180\n"
                            "  approvers: [monre/cntt-admins]\n", 1)
    text = text.replace("    name_en: Ministry Office\n",
                        "    name_en: Ministry Office\n    approvers: [ntbthao, pththo]\n", 1)
    text = text.replace("    name_en: Vietnam Environment Administration\n",
                        "    name_en: Vietnam Environment Administration\n"
                        "    approvers: [tcmt-it]\n", 1)
    data.write_text(text, encoding="utf-8")
    return data


def _validate(data: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()  # what earlier commands printed
    code = main(["validate", "--today", TODAY, str(data)])
    return code, capsys.readouterr().out


def test_codeowners_gives_each_unit_file_to_its_approvers(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _owned(tmp_path)
    assert "approvers: [tcmt-it]" in data.read_text(encoding="utf-8")
    assert main(["codeowners", str(data)]) == 0
    text = (tmp_path / "CODEOWNERS").read_text(encoding="utf-8")
    rules = [x for x in text.splitlines() if not x.startswith("#")]
    # The IT department first (everything), then the units: the last match wins.
    assert rules[0] == "* @monre/cntt-admins"
    assert "/data/units/vpb.yaml @ntbthao @pththo" in rules
    assert "/data/units/tcmt.yaml @tcmt-it" in rules
    # A sub-unit without approvers of its own (vp, under tcmt) falls to its parent's.
    assert "/data/units/vp.yaml @tcmt-it" in rules
    # A unit without approvers, and no parent with any, stays the IT department's.
    assert not any(r.startswith("/data/units/ttb.yaml") for r in rules)
    assert _validate(data, capsys)[0] == 0


def test_stale_codeowners_fails_validate(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    data = _owned(tmp_path)
    assert main(["codeowners", str(data)]) == 0
    # A unit changes its approvers without running `mailgov codeowners`.
    data.write_text(data.read_text(encoding="utf-8").replace(
        "approvers: [ntbthao, pththo]", "approvers: [ntbthao]"), encoding="utf-8")
    code, out = _validate(data, capsys)
    assert code == 1
    owners = tmp_path / "CODEOWNERS"
    line = owners.read_text(encoding="utf-8").splitlines().index(
        "/data/units/vpb.yaml @ntbthao @pththo") + 1
    assert out == (f"{codeowners.shown(owners)}:{line}:1: MG502 CODEOWNERS is stale: line "
                   f"{line} should be '/data/units/vpb.yaml @ntbthao'; run "
                   "`mailgov codeowners`\n")
    assert main(["codeowners", "--check", str(data)]) == 1
    assert main(["codeowners", str(data)]) == 0
    assert _validate(data, capsys)[0] == 0


def test_hand_edited_codeowners_is_stale(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    data = _owned(tmp_path)
    main(["codeowners", str(data)])
    owners = tmp_path / "CODEOWNERS"
    owners.write_text(owners.read_text(encoding="utf-8") + "/data/units/ttb.yaml @me\n",
                      encoding="utf-8")
    code, out = _validate(data, capsys)
    assert code == 1 and " MG502 CODEOWNERS is stale: line " in out
    assert "should be '(end of file)'" in out


def test_missing_codeowners_fails_validate(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    data = _owned(tmp_path)
    code, out = _validate(data, capsys)
    assert code == 1
    assert " MG501 the data names approvers but the repository has no CODEOWNERS" in out
    assert out.startswith(f"{data}:")


def test_codeowners_found_where_the_platforms_read_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _owned(tmp_path)
    out = tmp_path / ".gitlab" / "CODEOWNERS"
    assert main(["codeowners", "--out", str(out), str(data)]) == 0
    assert _validate(data, capsys)[0] == 0
    out.write_text("* @someone\n", encoding="utf-8")
    code, text = _validate(data, capsys)
    assert code == 1 and " MG502 " in text and ".gitlab/CODEOWNERS:1:1:" in text


def test_unit_approvers_need_a_unit_file(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    data = _owned(tmp_path, split=False)
    code, out = _validate(data, capsys)
    assert code == 1
    assert " MG503 unit 'vpb' names approvers but its records are not in a file of their " \
           "own" in out


def test_unit_approvers_need_the_it_department(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    data = _owned(tmp_path, it=False)
    main(["codeowners", str(data)])
    code, out = _validate(data, capsys)
    assert code == 1
    assert " MG504 units name approvers but policy.approvers (the IT department) is " \
           "missing" in out
    assert "* @" not in (tmp_path / "CODEOWNERS").read_text(encoding="utf-8")


def test_generated_codeowners_left_after_approvers_removed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _owned(tmp_path)
    main(["codeowners", str(data)])
    shutil.copy(SAMPLE, data.parent / "single.yaml")
    layout.join(data)  # back to one file, without approvers
    (data.parent / "single.yaml").replace(data)
    code, out = _validate(data, capsys)
    assert code == 1 and " MG502 CODEOWNERS was made by `mailgov codeowners` but the data " \
        "names no approvers" in out


def test_hand_written_codeowners_without_approvers_is_left_alone(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _repo(tmp_path)
    (tmp_path / "CODEOWNERS").write_text("* @someone\n", encoding="utf-8")
    assert _validate(data, capsys)[0] == 0


def test_bad_approver_name_is_a_shape_problem(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    data = _owned(tmp_path)
    data.write_text(data.read_text(encoding="utf-8").replace(
        "approvers: [tcmt-it]", "approvers: ['@tcmt it']"), encoding="utf-8")
    code, out = _validate(data, capsys)
    assert code == 1 and " MG105 " in out and "approvers" in out


def test_reviewed_plan_digest_covers_the_per_unit_files(tmp_path: Path) -> None:
    from mailgov.reviewed import file_sha256

    data = _repo(tmp_path)
    single = file_sha256(data)
    assert single == __import__("hashlib").sha256(SAMPLE.read_bytes()).hexdigest()
    layout.split(data)
    before = file_sha256(data)
    unit_file = data.parent / "units" / "ttb.yaml"
    unit_file.write_text(unit_file.read_text(encoding="utf-8").replace(
        "unit: ttb", "unit: ttb  # reviewed?", 1), encoding="utf-8")
    assert file_sha256(data) != before  # an edit in a unit's file changes the data digest


# --------------------------------------------------------------------------- edits keep it


def _owned_with_tnx(tmp_path: Path, approvers: str) -> Path:
    """The owned split repository with unit tnx, without records yet (listed after tdkt):
    ``approvers`` its own line (``approvers: [...]``) or ``parent: vpb`` (vpb's then)."""
    data = _owned(tmp_path)
    data.write_text(data.read_text(encoding="utf-8").replace(
        "  - id: tcqldd\n", f"  - id: tnx\n    name: Vụ Thử nghiệm\n    {approvers}\n"
        "  - id: tcqldd\n", 1), encoding="utf-8")
    return data


def _files(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _edit(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


ADD_TNX = ("add", "Lê Văn Tám", "--unit", "tnx", "--request", "4/QĐ", "--date", TODAY)


@pytest.mark.parametrize(("approvers", "owners"), [
    ("approvers: [tnx-lead]", "@tnx-lead"),
    ("parent: vpb", "@ntbthao @pththo"),  # a sub-unit: its department's approvers
])
@pytest.mark.parametrize("place", ["CODEOWNERS", ".github/CODEOWNERS", None])
def test_an_edit_that_starts_a_units_file_rewrites_codeowners(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], approvers: str, owners: str,
        place: str | None) -> None:
    """The pull request that adds units/tnx.yaml asks tnx's approvers, and the admin's next
    `mailgov validate` passes (no MG501/MG502): before this, it failed with MG502."""
    data = _owned_with_tnx(tmp_path, approvers)
    if place is not None:  # made by `mailgov codeowners` before; else none yet (MG501)
        assert main(["codeowners", "--out", str(tmp_path / place), str(data)]) == 0
    code, _out, err = _edit(capsys, *ADD_TNX, "--data", str(data))
    assert code == 0, err
    assert (data.parent / "units" / "tnx.yaml").is_file()
    code, out = _validate(data, capsys)
    assert (code, out.split(": OK: ")[0]) == (0, str(data)), out
    target = tmp_path / (place or "CODEOWNERS")
    assert f"/data/units/tnx.yaml {owners}" in target.read_text(encoding="utf-8").splitlines()
    assert err.splitlines()[-1] == (f"{codeowners.shown(target)}: rewritten as `mailgov "
                                    "codeowners` writes it; commit it with the data")
    assert [p.name for p in tmp_path.rglob("*CODEOWNERS*")] == ["CODEOWNERS"]  # no tmp left
    # exactly what `mailgov codeowners` writes for the edited data
    before = target.read_bytes()
    assert main(["codeowners", str(data)]) == 0 and target.read_bytes() == before


def test_an_import_that_starts_a_units_file_rewrites_codeowners(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _owned_with_tnx(tmp_path, "approvers: [tnx-lead]")
    assert main(["codeowners", str(data)]) == 0
    sheet = tmp_path / "new.csv"
    sheet.write_text("name,unit\nLê Văn Tám,tnx\n", encoding="utf-8")
    code, _out, err = _edit(capsys, "import", str(sheet), "--request", "5/QĐ", "--date",
                            TODAY, "--data", str(data))
    assert code == 0, err
    assert "/data/units/tnx.yaml @tnx-lead" in \
        (tmp_path / "CODEOWNERS").read_text(encoding="utf-8").splitlines()
    assert "CODEOWNERS: rewritten as `mailgov codeowners` writes it" in err
    assert _validate(data, capsys)[0] == 0


def test_a_unit_merge_gives_the_merged_units_file_to_its_successors_approvers(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """ttb (no approvers: the IT department's) merges into vpb: units/ttb.yaml now holds vpb's
    people, so vpb's approvers review it from this pull request on."""
    data = _owned(tmp_path)
    assert main(["codeowners", str(data)]) == 0
    assert "/data/units/ttb.yaml @" not in (tmp_path / "CODEOWNERS").read_text(encoding="utf-8")
    code, _out, err = _edit(capsys, "unit", "merge", "ttb", "vpb", "--request", "7/QĐ",
                            "--date", TODAY, "--data", str(data))
    assert code == 0, err
    assert "/data/units/ttb.yaml @ntbthao @pththo" in \
        (tmp_path / "CODEOWNERS").read_text(encoding="utf-8").splitlines()
    assert _validate(data, capsys)[0] == 0


def test_an_edit_dry_run_prints_the_codeowners_diff_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _owned_with_tnx(tmp_path, "approvers: [tnx-lead]")
    assert main(["codeowners", str(data)]) == 0
    owners = tmp_path / "CODEOWNERS"
    before = _files(tmp_path)
    code, out, err = _edit(capsys, *ADD_TNX, "--dry-run", "--data", str(data))
    assert code == 0, err
    assert _files(tmp_path) == before  # byte for byte, nothing added
    name = codeowners.shown(owners)
    # after the data's diff (the new unit file and its include line), CODEOWNERS's own
    head = out.index(f"--- a/{name}\n+++ b/{name}\n@@ ")
    assert out.index(f"+++ b/{data.parent / 'units' / 'tnx.yaml'}\n") < head
    hunk = out[head:].splitlines()
    assert "+/data/units/tnx.yaml @tnx-lead" in hunk
    assert [x for x in hunk[2:] if x[:1] in "+-"] == ["+/data/units/tnx.yaml @tnx-lead"]
    assert err.splitlines()[-1] == (f"{name}: would be rewritten as `mailgov codeowners` "
                                    "writes it")


def test_an_edit_dry_run_shows_codeowners_as_a_new_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _owned_with_tnx(tmp_path, "approvers: [tnx-lead]")
    before = _files(tmp_path)
    code, out, _err = _edit(capsys, *ADD_TNX, "--dry-run", "--data", str(data))
    assert code == 0 and _files(tmp_path) == before
    name = codeowners.shown(tmp_path / "CODEOWNERS")
    assert f"--- /dev/null\n+++ b/{name}\n@@ -0,0 +1," in out


def test_a_hand_written_codeowners_is_left_alone_and_the_admin_told(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _owned_with_tnx(tmp_path, "approvers: [tnx-lead]")
    owners = tmp_path / ".github" / "CODEOWNERS"
    owners.parent.mkdir()
    owners.write_text("* @monre/cntt-admins\n/data/units/vpb.yaml @ntbthao\n",
                      encoding="utf-8")
    mine = owners.read_bytes()
    notice = (f"{codeowners.shown(owners)} is not made by `mailgov codeowners`: update it "
              "by hand for this edit")
    # an edit that changes no one's file: nothing to say
    code, _out, err = _edit(capsys, "set", "nvthanh", "--quota", "4096", "--data", str(data))
    assert code == 0 and notice not in err
    code, out, err = _edit(capsys, *ADD_TNX, "--dry-run", "--data", str(data))
    assert code == 0 and err.splitlines()[-1] == notice
    assert f"b/{codeowners.shown(owners)}\n" not in out and "+/data/units/tnx.yaml @" not in out
    code, _out, err = _edit(capsys, *ADD_TNX, "--data", str(data))
    assert code == 0 and err.splitlines()[-1] == notice
    assert owners.read_bytes() == mine
    assert (data.parent / "units" / "tnx.yaml").is_file()
    assert [p for p in tmp_path.rglob("*CODEOWNERS*")] == [owners]


def test_an_edit_of_no_units_file_leaves_codeowners_as_it_is(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _owned(tmp_path)
    assert main(["codeowners", str(data)]) == 0
    owners = tmp_path / "CODEOWNERS"
    os.utime(owners, ns=(1_000_000_000, 1_000_000_000))
    before = owners.read_bytes()
    for argv in (["set", "nvthanh", "--quota", "4096"],
                 ["move", "nvthanh", "ttb", "--request", "3/QĐ"],  # to a unit with its file
                 ["unit", "rename", "ttb", "--abbr", "thanhtra", "--request", "6/QĐ", "--date",
                  TODAY]):
        code, out, err = _edit(capsys, *argv, "--data", str(data))
        assert code == 0, err
        assert "CODEOWNERS" not in out + err
    assert owners.read_bytes() == before and owners.stat().st_mtime_ns == 1_000_000_000
    assert _validate(data, capsys)[0] == 0


@pytest.mark.parametrize("owners", ["generated", "none", "hand-written"])
def test_a_refused_edit_writes_neither_data_nor_codeowners(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], owners: str) -> None:
    data = _owned_with_tnx(tmp_path, "approvers: [tnx-lead]")
    if owners == "generated":
        assert main(["codeowners", str(data)]) == 0
    elif owners == "hand-written":
        (tmp_path / "CODEOWNERS").write_text("* @monre/cntt-admins\n", encoding="utf-8")
    before = _files(tmp_path)
    # vpb's head would start tnx's file: refused by the data's own rules (MG215)
    code, _out, err = _edit(capsys, "move", "nhhung", "tnx", "--request", "3/QĐ", "--data",
                            str(data))
    assert code == 1
    assert err.startswith("mailgov: error: the edited file would not validate; nothing was "
                          "written:\n")
    assert "MG215 unit 'vpb': head 'nhhung' belongs to unit 'tnx'" in err
    assert "CODEOWNERS" not in err
    assert _files(tmp_path) == before


def test_codeowners_is_written_only_after_the_data(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A data file that cannot be written (a full disk) leaves CODEOWNERS as it was: it never
    names a unit file that is not there."""
    import errno

    from mailgov import edit

    data = _owned_with_tnx(tmp_path, "approvers: [tnx-lead]")
    assert main(["codeowners", str(data)]) == 0
    owners = (tmp_path / "CODEOWNERS").read_bytes()

    def full(path: Path, text: str) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(edit, "_replace", full)
    code, _out, err = _edit(capsys, *ADD_TNX, "--data", str(data))
    assert (code, err) == (2, f"mailgov: error: {data}: No space left on device\n")
    assert (tmp_path / "CODEOWNERS").read_bytes() == owners
