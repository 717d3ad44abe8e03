"""model.build: the records it makes are the model's own frozen dataclasses (issue 13, fourth
round: build makes each Mailbox as a mutable twin of the same slot layout and then gives it
its real class; these tests say that leaves nothing of the twin behind)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from mailgov.loader import load
from mailgov.model import Mailbox, build

ROOT = Path(__file__).resolve().parents[2]
FILES = [ROOT / "data" / "mailboxes.yaml",
         *sorted((ROOT / "tests" / "data" / "good").glob("*.yaml"))]


def _data(path: Path) -> dict[str, Any]:
    data = load(path).data
    if path == FILES[0]:  # no file has a dated move, a change or a rename: give them the
        # last record (build reads what the schema allows; validity is not its concern)
        data["mailboxes"][-1]["renamed_from"] = ["old", {"address": "older",
                                                          "date": "2020-01-01"}]
        data["mailboxes"][-1]["moved_from"] = {"unit": "vpb", "date": "2027-01-01",
                                               "request": "1/QĐ-X"}
        data["mailboxes"][-1]["change"] = {"request": "2/QĐ-X"}
    return data


def _records() -> list[Mailbox]:
    return [m for path in FILES for m in build(_data(path)).mailboxes]


def test_the_files_have_records_with_every_optional_part() -> None:
    """The comparison below means something only if the records use the optional fields."""
    boxes = _records()
    for name in ("suspended", "cancelled", "naming_exemption", "moved_from", "birth",
                 "change_request", "sponsor", "title"):
        assert any(getattr(m, name) is not None for m in boxes), name
    assert any(m.previous for m in boxes) and any(m.aliases for m in boxes)
    assert any(m.forward_to for m in boxes)
    assert any(m.explicit_quota for m in boxes) and any(not m.explicit_quota for m in boxes)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_built_mailboxes_are_the_dataclass_own(path: Path) -> None:
    boxes = build(_data(path)).mailboxes
    assert boxes
    for m in boxes:
        assert type(m) is Mailbox
        # The dataclass's own constructor, given the same values, makes an equal record
        # (same class, same fields: Mailbox.__eq__ compares classes first).
        again = Mailbox(**{f.name: getattr(m, f.name) for f in dataclasses.fields(Mailbox)})
        assert m == again and hash(m) == hash(again)
        assert dataclasses.replace(m) == m
        with pytest.raises(dataclasses.FrozenInstanceError):
            m.address = "other"  # type: ignore[misc]
        with pytest.raises(dataclasses.FrozenInstanceError):
            del m.name  # type: ignore[misc]
        assert not hasattr(m, "__dict__")  # slots only: nothing can be added either
