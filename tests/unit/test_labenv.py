from __future__ import annotations

from pathlib import Path

import pytest

from lab.labenv import lab_dir, lab_id


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
