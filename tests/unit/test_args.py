"""The argument types every command line shares (mailgov/args.py): a day is read only in
the data's own form, YYYY-MM-DD, by every command (date.fromisoformat alone also reads ISO
week and ordinal days and the form without dashes)."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

import pytest

from mailgov import args
from mailgov.cli import main

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "mailboxes.yaml"
NOT_DAYS = ["20260101", "2026-W01-1", "2026W011", "2026-001", "2026-02-30", "2026-1-1",
            "２０２６-01-01", "2026-01-01T00:00", " 2026-01-01", "", "yesterday"]


@pytest.mark.parametrize("text", NOT_DAYS)
def test_only_the_data_files_form_is_a_day(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        args.day(text)
    assert str(refused.value) == f"{text!r} is not a date YYYY-MM-DD"


def test_a_day_in_the_data_files_form_is_read() -> None:
    assert args.day("2026-02-28") == date(2026, 2, 28)


@pytest.mark.parametrize("argv", [
    ["validate", "--today", "{}"],
    ["suspend", "nvthanh", "--reason", "r", "--request", "1/QĐ", "--date", "{}"],
    ["report", "--today", "{}"],
    ["domain", "migrate", "monre.gov.vn", "mt.gov.vn", "--keep-until", "{}"],
], ids=["validate", "suspend", "report", "domain"])
def test_every_command_refuses_other_forms_before_doing_anything(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str]) -> None:
    data = tmp_path / "mailboxes.yaml"  # were the day read, the command would change a copy
    data.write_bytes(SAMPLE.read_bytes())
    with pytest.raises(SystemExit) as exit_:
        main([a.format("20260101") for a in argv] + ["--data", str(data)] * (argv[0] in (
            "suspend", "domain")))
    assert exit_.value.code == 2
    assert "'20260101' is not a date YYYY-MM-DD" in capsys.readouterr().err
    assert data.read_bytes() == SAMPLE.read_bytes()


@pytest.mark.parametrize("text", ["-1", "x", "1.5", "²", "1" * 10, ""])
def test_a_count_is_a_whole_number_of_at_most_nine_digits(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        args.count(text)
    assert str(refused.value) == f"{text!r} is not a whole number 0 or more"
    assert args.count("0") == 0 and args.count("999999999") == 999_999_999
