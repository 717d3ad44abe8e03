"""The reviewed plan is the applied plan (issue 16 item 1): `mailgov plan --out` records it,
`mailgov apply PLAN.json` writes exactly it or nothing. The server is the in-memory stand-in of
test_reconcile.py (World); the comparison itself is mailgov.reviewed's."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from test_reconcile import DATA, World, settings

from mailgov import cli, reviewed
from mailgov import reconcile as rec
from mailgov.live import save_json


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    return World(monkeypatch)


def plan_file(tmp_path: Path, world: World, data: Path, *extra: str) -> Path:
    """`mailgov plan DATA --out plan.json` against the stand-in's live state."""
    live = tmp_path / "live.json"
    save_json(world.live[0], live, "dc=monre,dc=gov,dc=vn")
    out = tmp_path / "plan.json"
    code = cli.main(["plan", str(data), "--live-json", str(live), "--out", str(out), *extra])
    assert code == 4  # changes pending
    return out


def apply_reviewed(path: Path, *extra: str) -> int:
    return cli.main(["apply", str(path), "--ldap-uri", "ldap://mock", "--ca-file", "/dev/null",
                     *extra])


def test_plan_file_records_data_settings_and_checksum(tmp_path: Path, world: World) -> None:
    data = tmp_path / "mailboxes.yaml"
    shutil.copy(DATA, data)
    doc = json.loads(plan_file(tmp_path, world, data, "--remove-drift").read_text())
    assert doc["format"] == reviewed.FORMAT
    assert doc["data"]["path"] == str(data)
    assert doc["data"]["sha256"] == reviewed.file_sha256(data)
    assert doc["settings"]["remove_drift"] is True and doc["settings"]["today"] is None
    assert doc["changes_total"] == len(doc["plan"]["changes"]) > 0
    assert len(doc["checksum"]) == 64 and doc["live_sha256"]


def test_reviewed_plan_applies_when_nothing_moved(tmp_path: Path, world: World,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "mailboxes.yaml"
    shutil.copy(DATA, data)
    path = plan_file(tmp_path, world, data)
    capsys.readouterr()
    assert apply_reviewed(path, "--confirm") == 0
    (sent,) = world.applied
    doc = json.loads(path.read_text())
    assert len(sent.changes) == doc["changes_total"]


def test_changed_directory_since_review_is_refused_and_nothing_written(
        tmp_path: Path, world: World, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "mailboxes.yaml"
    shutil.copy(DATA, data)
    path = plan_file(tmp_path, world, data)
    # After the review someone wrote one of the planned entries: the plan now is shorter.
    first = rec.reconcile(settings(data=str(data)))
    done = first.writes[0]
    world.live = [{done.dn.lower(): dict(done.after or {}) | {"objectClass": done.object_classes}}]
    capsys.readouterr()
    code = apply_reviewed(path, "--confirm")
    err = capsys.readouterr().err
    assert code == 7
    assert "is not the reviewed plan" in err and "nothing was changed" in err
    assert not world.applied and not world.lock_held()


def test_change_between_first_read_and_lock_is_refused(tmp_path: Path, world: World) -> None:
    data = tmp_path / "mailboxes.yaml"
    shutil.copy(DATA, data)
    path = plan_file(tmp_path, world, data)
    first = rec.reconcile(settings(data=str(data)))
    done = first.writes[0]
    # The first read still matches the review; the read under the lock does not.
    entry = dict(done.after or {}) | {"objectClass": done.object_classes}
    world.live = [{}, {done.dn.lower(): entry}]
    world.reads.clear()
    out = rec.reconcile(settings(data=str(data), reviewed=reviewed.load(path)), confirm=True)
    assert out.status == rec.STALE and out.message.startswith("under the lock")
    assert world.reads == [False, True] and not world.applied and not world.lock_held()


def test_edited_data_file_since_review_is_refused(tmp_path: Path, world: World,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "mailboxes.yaml"
    shutil.copy(DATA, data)
    path = plan_file(tmp_path, world, data)
    data.write_text(data.read_text() + "\n# an edit after the review\n")
    capsys.readouterr()
    assert apply_reviewed(path, "--confirm") == 7
    err = capsys.readouterr().err
    assert f"the data file {data} is not the one reviewed in {path}" in err
    assert world.reads == [] and not world.applied  # stopped before connecting


@pytest.mark.parametrize("flag", [["--allow-mass-change"], ["--remove-drift"],
                                  ["--today", "2026-01-01"]])
def test_flags_that_would_plan_differently_are_refused(tmp_path: Path, world: World,
                                                       capsys: pytest.CaptureFixture[str],
                                                       flag: list[str]) -> None:
    data = tmp_path / "mailboxes.yaml"
    shutil.copy(DATA, data)
    path = plan_file(tmp_path, world, data)
    capsys.readouterr()
    assert apply_reviewed(path, "--confirm", *flag) == 2
    assert "a reviewed plan carries its own settings" in capsys.readouterr().err
    assert not world.applied


def test_not_a_plan_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "plan.json"
    bad.write_text('{"format": "something-else"}')
    with pytest.raises(reviewed.ReviewedPlanError, match="is not a plan file of mailgov-plan/1"):
        reviewed.load(bad)
    bad.write_text('{"format": "mailgov-plan/1"}')
    with pytest.raises(reviewed.ReviewedPlanError, match="missing or bad field"):
        reviewed.load(bad)


def _markdown(n_units: int, per_unit: int) -> str:
    lines = ["### mailgov plan: many changes", "", "| change | count |", "|---|---:|"]
    for u in range(n_units):
        lines += ["", f"#### unit{u}", "", "<details><summary>create (x)</summary>", ""]
        lines += [f"- create `person{u}-{i}@monre.gov.vn` " + "x" * 80 for i in range(per_unit)]
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("shape", [(40, 30), (2, 1500), (1, 4000)])
def test_long_plan_comment_is_split_into_parts_that_stand_alone(shape: tuple[int, int]) -> None:
    text = _markdown(*shape)
    parts = reviewed.split_markdown(text, limit=65536)
    assert len(parts) > 1
    for i, part in enumerate(parts, 1):
        assert len(part) <= 65536
        assert part.count("<details>") == part.count("</details>"), f"part {i} unbalanced"
        assert f"of {len(parts)}" in part
    assert parts[0].startswith("### mailgov plan: many changes")  # the summary comes first
    assert all(p.startswith("### mailgov plan: many changes (part") for p in parts[1:])
    # Nothing lost: every change line is in exactly one part.
    items = [ln for ln in text.splitlines() if ln.startswith("- create")]
    joined = "\n".join(parts)
    assert all(joined.count(ln + "\n") == 1 for ln in items)


def test_short_plan_is_one_part() -> None:
    text = _markdown(1, 3)
    assert reviewed.split_markdown(text) == [text]


def test_comment_parts_written(tmp_path: Path, world: World, capsys: Any) -> None:
    live = tmp_path / "live.json"
    save_json({}, live, "dc=monre,dc=gov,dc=vn")  # an empty directory
    code = cli.main(["plan", str(DATA), "--live-json", str(live), "--comment-parts",
                     str(tmp_path / "parts")])
    assert code == 4
    files = sorted((tmp_path / "parts").glob("plan-*.md"))
    assert [f.name for f in files] == ["plan-1.md"]
    assert files[0].read_text().startswith("### mailgov plan")


@pytest.mark.parametrize("text", ['{"format": "mailgov-plan/1", "checksum": ', "{ not json",
                                  "", "]]"])
def test_apply_of_a_broken_plan_file_says_it_is_not_a_plan_not_malformed_yaml(
        tmp_path: Path, world: World, capsys: Any, text: str) -> None:
    """A cut or broken PLAN.json is not a data file: no MG006 'malformed YAML'."""
    bad = tmp_path / "broken.json"
    bad.write_text(text, encoding="utf-8")
    assert apply_reviewed(bad, "--confirm") == 2  # a usage error, as any unusable plan file
    out, err = capsys.readouterr()
    assert err.startswith(f"mailgov: error: {bad} is not a plan file (not JSON: "), err
    assert "MG006" not in out + err and "YAML" not in out + err
    assert not world.applied


def test_data_files_stay_data_files(tmp_path: Path) -> None:
    """Only a *.json that is not JSON is taken for a broken plan: a data file's own faults
    (bad bytes, bad YAML) and a data file written as JSON are the data loader's to report."""
    latin1 = tmp_path / "mailboxes.yaml"
    latin1.write_bytes(b"version: 1\nname: Nguy\xe1n\n")
    bad_yaml = tmp_path / "data.yaml"
    bad_yaml.write_text("{ not: [yaml\n", encoding="utf-8")
    as_json = tmp_path / "data.json"
    as_json.write_text('{"version": 1}', encoding="utf-8")
    assert not any(reviewed.is_plan_file(p) for p in (latin1, bad_yaml, as_json))
    broken = tmp_path / "plan.json"
    broken.write_bytes(b"\xff\xfe{")
    assert reviewed.is_plan_file(broken)
