"""Purging fills `reserved` (issue 14, item 3): `mailgov reserve-purged` removes the records of
purged mailboxes and keeps every address they used in `reserved`, so that no one else gets
one again: validate refuses it (MG221, at the line of the new record) and `mailgov address`
never proposes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mailgov.cli import main
from mailgov.validate import validate

ROOT = Path(__file__).resolve().parents[2]
GOOD = ROOT / "tests" / "data" / "good" / "example.yaml"
D = "@monre.gov.vn"
# lthoa (id 3): cancelled 2026-06-30, staff retention 180 days: due from 2026-12-27
DUE = "2026-12-28"
HISTORY = ("    state: cancelled\n    cancelled: { date: 2026-06-30, reason: retired, "
           "request: 77/QĐ-TCCB }\n")


def _manifest(tmp_path: Path, *addresses: str) -> Path:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"version": 1, "archives": {
        a: {"archive": f"{a}-20261228.tar.gz", "sha256": "a" * 64, "size": 10,
            # archives are matched by the store: lthoa's (id 3), or the address's own
            "store": "/var/vmail/by-id/3" if a == f"lthoa{D}" else f"/var/vmail/x/{a}"}
        for a in addresses}}), encoding="utf-8")
    return path


def _data(tmp_path: Path, extra: str = "") -> Path:
    text = GOOD.read_text(encoding="utf-8")
    # lthoa was renamed once and had an alias: all three are hers
    text = text.replace("  - address: lthoa\n    id: 3\n",
                        "  - address: lthoa\n    id: 3\n    renamed_from: [lethihoa]\n"
                        "    aliases: [hoa.lt, hoa.le@monre.gov.vn]\n    # her last post\n")
    assert "renamed_from: [lethihoa]" in text and HISTORY in text
    path = tmp_path / "mailboxes.yaml"
    path.write_text(text + extra, encoding="utf-8")
    return path


def test_the_purged_record_leaves_and_every_address_it_used_is_reserved(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _data(tmp_path)
    before = data.read_text(encoding="utf-8")
    manifest = _manifest(tmp_path, f"lthoa{D}")
    assert main(["reserve-purged", "--archived", str(manifest), "--today", DUE,
                 "--data", str(data)]) == 0
    err = capsys.readouterr().err
    assert "lthoa (id 3) removed; reserved: lthoa, lethihoa, hoa.lt, hoa.le" in err
    after = data.read_text(encoding="utf-8")
    loaded = yaml.safe_load(after)
    assert all(m["address"] != "lthoa" for m in loaded["mailboxes"])
    reason = "purged 2026-12-28 (cancelled 2026-06-30, 77/QĐ-TCCB)"
    assert loaded["reserved"] == [{"address": a, "id": 3, "reason": reason}
                                  for a in ("lthoa", "lethihoa", "hoa.lt", "hoa.le")]
    # a text edit: the record's lines went, the reserved list came at the end, the rest
    # (comments included) is byte for byte the same
    removed = before[before.index("  - address: lthoa\n"):before.index("  - address: hoimoitruong")]
    assert "# her last post" in removed
    assert after.startswith(before.replace(removed, ""))
    assert validate(data, today=__import__("datetime").date(2026, 12, 28)).ok


def test_an_address_of_the_purged_mailbox_given_to_someone_new_is_mg221_at_its_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _data(tmp_path)
    assert main(["reserve-purged", "--archived", str(_manifest(tmp_path, f"lthoa{D}")),
                 "--today", DUE, "--data", str(data)]) == 0
    text = data.read_text(encoding="utf-8")
    new = ("  - address: lethihoa\n    id: 99\n    name: Lê Thị Hoa\n    unit: vp\n"
           "    naming_exemption: { reason: test, request: 1/QĐ }\n")
    i = text.index("\nreserved:")
    data.write_text(text[:i + 1] + new + text[i + 1:], encoding="utf-8")
    line = (text[:i + 1] + new).count("\n") - new.count("\n") + 1
    capsys.readouterr()
    assert main(["validate", "--today", DUE, str(data)]) == 1
    out = capsys.readouterr().out
    assert f"{data}:{line}:" in out and "MG221 'lethihoa'" in out
    assert "is reserved (line" in out and "purged 2026-12-28" in out
    assert "an address once used is never given to anyone else" in out


def test_mailgov_address_never_proposes_a_purged_address(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _data(tmp_path)
    capsys.readouterr()
    assert main(["address", "Lê Thị Hoa", "--data", str(data)]) == 0
    assert capsys.readouterr().out == f"lthoa2{D}\n"  # the record holds lthoa
    assert main(["reserve-purged", "--archived", str(_manifest(tmp_path, f"lthoa{D}")),
                 "--today", DUE, "--data", str(data)]) == 0
    capsys.readouterr()
    assert main(["address", "Lê Thị Hoa", "--data", str(data)]) == 0
    assert capsys.readouterr().out == f"lthoa2{D}\n"  # the record left; lthoa did not free


def test_the_mailbox_itself_may_have_its_address_back(tmp_path: Path) -> None:
    data = _data(tmp_path)
    assert main(["reserve-purged", "--archived", str(_manifest(tmp_path, f"lthoa{D}")),
                 "--today", DUE, "--data", str(data)]) == 0
    text = data.read_text(encoding="utf-8")
    back = "  - address: lthoa\n    id: 3\n    name: Lê Thị Hoa\n    unit: vp\n"
    i = text.index("\nreserved:")
    data.write_text(text[:i + 1] + back + text[i + 1:], encoding="utf-8")
    from datetime import date
    assert validate(data, today=date(2026, 12, 28)).ok


@pytest.mark.parametrize(("today", "archived", "why"), [
    ("2026-12-26", f"lthoa{D}", "past its retention on 2026-12-26"),  # retention not over
    (DUE, f"ttlan{D}", "in the archive manifest"),  # not archived
])
def test_nothing_purged_is_a_clear_error_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], today: str, archived: str,
        why: str) -> None:
    data = _data(tmp_path)
    before = data.read_bytes()
    code = main(["reserve-purged", "--archived", str(_manifest(tmp_path, archived)),
                 "--today", today, "--data", str(data)])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("mailgov: error: no purged mailbox in the data") and why in err
    assert "Traceback" not in err
    assert data.read_bytes() == before


def test_a_bad_manifest_is_a_clear_error(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    data = _data(tmp_path)
    before = data.read_bytes()
    bad = tmp_path / "manifest.json"
    bad.write_text("{not json", encoding="utf-8")
    assert main(["reserve-purged", "--archived", str(bad), "--today", DUE,
                 "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert "archive manifest" in err and "not JSON" in err and "Traceback" not in err
    assert data.read_bytes() == before


def test_an_existing_reserved_list_is_extended_and_repeats_are_not_added(
        tmp_path: Path) -> None:
    data = _data(tmp_path, "reserved:\n  # kept from the 2019 purge\n"
                 "  - address: hoa.lt\n    reason: purged 2019-01-01\n")
    assert main(["reserve-purged", "--archived", str(_manifest(tmp_path, f"lthoa{D}")),
                 "--today", DUE, "--data", str(data)]) == 0
    text = data.read_text(encoding="utf-8")
    assert "  # kept from the 2019 purge\n  - address: hoa.lt\n    reason: purged 2019-01-01\n" \
        "  - { address: lthoa, id: 3," in text
    got = [r["address"] for r in yaml.safe_load(text)["reserved"]]
    assert got == ["hoa.lt", "lthoa", "lethihoa", "hoa.le"]


def test_a_dry_run_prints_the_diff_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _data(tmp_path)
    before = data.read_bytes()
    assert main(["reserve-purged", "--archived", str(_manifest(tmp_path, f"lthoa{D}")),
                 "--today", DUE, "--data", str(data), "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"--- a/{data}\n+++ b/{data}\n"), out
    assert "\n-  - address: lthoa\n" in out and '\n+  - { address: lethihoa, id: 3, ' in out
    assert "(dry run: nothing written)" in err
    assert data.read_bytes() == before


@pytest.mark.parametrize("name", ["x" * 100_000, "Nguyễn " * 15_000, "y" * 300])
def test_a_manifest_name_too_long_for_the_file_system_is_a_clear_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    """Path.exists raises ENAMETOOLONG on Python 3.11 (it was a traceback)."""
    data = _data(tmp_path)
    before = data.read_bytes()
    assert main(["reserve-purged", "--archived", name, "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"mailgov: error: archive manifest {name}: File name too long"), \
        err[-200:]
    assert data.read_bytes() == before
