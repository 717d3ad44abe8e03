"""lab/lab_data.py: the sample data shifted in time plans, a year (or three) later, exactly
what the original plans on its anchor day: the lab's cases do not age."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from lab.lab_data import ANCHOR, SOURCE, shift_text, write
from mailgov.archive import due_stores
from mailgov.plan import plan
from mailgov.validate import validate


def test_shift_moves_dates_only() -> None:
    text = ("created: 2026-06-14 # 2026-02-30 is no date\n"
            "request: 215/QĐ-2026-06\nid: 12026-06-140\n")
    out = shift_text(text, 20)
    assert out.startswith("created: 2026-07-04 # 2026-02-30 is no date\n")
    assert "215/QĐ-2026-06" in out and "12026-06-140" in out
    assert shift_text(text, 0) == text


def _outcome(path: Path, days: int) -> tuple[set[tuple[str, str]], set[str]]:
    result = validate(path, today=ANCHOR + timedelta(days=days))
    assert result.ok, [p.format() for p in result.problems][:3]
    d = result.directory
    today = ANCHOR + timedelta(days=days)
    planned = plan(d, {}, today=today, allow_mass_change=True)
    changes = {(c.kind, c.subject) for c in planned.changes}
    return changes, {s.address for s in due_stores(d, today)}


@pytest.mark.parametrize("days", [365, 3 * 365 + 17])
def test_a_shifted_copy_plans_later_what_the_original_plans_now(tmp_path: Path, days: int) -> None:
    original = _outcome(SOURCE, 0)
    shifted = _outcome(write(ANCHOR + timedelta(days=days), tmp_path), days)
    assert shifted == original
    # Without the shift the same day would see the cases aged: the test can fail.
    assert _outcome(SOURCE, days) != original
