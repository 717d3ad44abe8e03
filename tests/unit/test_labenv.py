from __future__ import annotations

import re
from pathlib import Path

import pytest

from lab.labenv import MAX_LAB_ID, lab_dir, lab_id


@pytest.mark.parametrize(("env", "expected"), [
    ({}, 0), ({"MAILGOV_LAB_ID": ""}, 0), ({"MAILGOV_LAB_ID": "3"}, 3),
    ({"MAILGOV_LAB_ID": " 15 "}, 15), ({"MAILGOV_LAB_ID": "31"}, 31),
])
def test_lab_id(env: dict[str, str], expected: int) -> None:
    assert lab_id(env) == expected


@pytest.mark.parametrize("raw", ["32", "-1", "x", "1.5"])
def test_lab_id_refuses_bad_values(raw: str) -> None:
    with pytest.raises(ValueError, match="MAILGOV_LAB_ID"):
        lab_id({"MAILGOV_LAB_ID": raw})


def test_lab_dir() -> None:
    repo = Path("/r")
    assert lab_dir(repo, 0, {}) == Path("/r/.lab")
    assert lab_dir(repo, 7, {}) == Path("/r/.lab/lab7")
    assert lab_dir(repo, 7, {"MAILGOV_LAB_DIR": "/x"}) == Path("/x")


REPO = Path(__file__).resolve().parents[2]
# "MAILGOV_LAB_ID (0-31 …" / "(an integer 0–31" on the line that names the variable.
RANGE = re.compile(r"MAILGOV_LAB_ID\b.{0,40}?\b0\s*[-–]\s*(\d+)")


def test_every_text_gives_the_same_lab_id_range() -> None:
    # The range was raised from 15 to 31 while docs still said 0-15: one number, checked.
    texts = [*REPO.glob("docs/*.md"), REPO / "README.md", *REPO.glob("inventory/lab/**/*.yml"),
             *REPO.glob("tests/*/conftest.py"), REPO / "lab" / "labenv.py", REPO / "lab" / "lab"]
    found = {}
    for path in texts:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for m in RANGE.finditer(line):
                found[f"{path.relative_to(REPO)}:{n}"] = int(m.group(1))
    assert found, "no text states the range: the pattern is stale"
    wrong = {where: top for where, top in found.items() if top != MAX_LAB_ID}
    assert not wrong, f"MAILGOV_LAB_ID goes up to {MAX_LAB_ID} (lab/labenv.py): {wrong}"
