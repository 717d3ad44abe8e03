"""The column-at-a-time schema check (mailgov/batchschema.py) says "valid" only where
jsonschema (validate.strict_validator(), the checker behind every reported shape problem)
says valid.

The check is only trusted one way: a "yes" skips the record-by-record checks. So every test
here is of the form "batch says yes => jsonschema says yes", on the corpus, on each trap
where Python and JSON Schema differ, and on thousands of seeded random mutations; plus the
check must say "yes" to the valid files (or it would be a slower no-op)."""

from __future__ import annotations

import contextlib
import copy
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mailgov import batchschema
from mailgov.batchschema import BatchCheck
from mailgov.loader import LoadError, load
from mailgov.validate import _batch_check, load_schema, strict_validator, validate

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
CORPUS = sorted((DATA / "bad").glob("*.yaml")) + sorted((DATA / "good").glob("*.yaml"))


def _docs() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for p in CORPUS:
        try:
            data = load(p).data
        except (LoadError, OSError):
            continue
        if all(isinstance(k, str) for k in data):
            out.append((p.name, data))
    return out


DOCS = _docs()
FULL = strict_validator()(load_schema())


def test_batch_never_says_valid_where_jsonschema_does_not_on_the_corpus() -> None:
    batch = BatchCheck(load_schema())
    assert len(DOCS) > 40
    said_yes = 0
    for name, data in DOCS:
        full_ok = FULL.is_valid(data)
        if batch(data):
            said_yes += 1
            assert full_ok, name
        elif name.startswith(("mg2", "mg3", "mg4")) or "good" in name:
            # shape-valid files (meaning problems only): the batch check must decide them
            assert not full_ok, f"{name}: shape-valid, but the batch check did not show it"
    assert said_yes >= 40


def test_batch_decides_the_valid_files() -> None:
    for p in sorted((DATA / "good").glob("*.yaml")):
        assert _batch_check()(load(p).data), p.name


def _example() -> dict[str, Any]:
    data = load(DATA / "good" / "example.yaml").data
    assert FULL.is_valid(data)
    return data


# (where, value): each a place where Python's view and JSON Schema's differ, or a limit.
TRAPS: list[tuple[tuple[str | int, ...], Any]] = [
    (("version",), True),                       # True == 1 in Python; not an integer in JSON
    (("version",), 1.0),                        # 1.0 "is" 1; the data file wants integers
    (("mailboxes", 0, "quota_mb"), 2048.0),
    (("mailboxes", 0, "id"), False),
    (("mailboxes", 0, "address"), "natuan\n"),  # Python's '$' matches before a final newline
    (("mailboxes", 0, "unit"), "tcmt\n"),
    (("organization", "base_dn"), "dc=a,dc=b\n"),
    (("mailboxes", 0, "aliases"), ["a", "a"]),  # uniqueItems
    (("mailboxes", 0, "aliases"), [["a"], ["a"]]),
    (("mailboxes", 0, "aliases"), "a"),
    (("mailboxes", 0, "renamed_from"), []),     # oneOf: the array branch needs one item
    (("mailboxes", 0, "renamed_from"), 5),      # oneOf: no branch takes a number
    (("mailboxes", 0, "renamed_from"), [{"address": "x", "date": "2020-1-1"}]),
    (("mailboxes", 0, "renamed_from"), [{"address": "x", "extra": 1}]),
    (("mailboxes", 0, "state"), "Active"),      # enum
    (("mailboxes", 0, "state"), 1),
    (("mailboxes", 0, "name"), ""),              # minLength
    (("policy", "message_size_mb"), 1025),       # maximum
    (("policy", "message_size_mb"), 0),          # minimum
    (("policy", "safety", "max_disable_share"), True),
    (("policy", "naming", "personal", "templates"), []),  # minItems
    (("policy", "password", "users", "required_classes"), ["upper", "upper"]),
    (("units", 0, "focal_point"), {"name": "x"}),  # required
    (("mailboxes", 0, "nmae"), "x"),             # additionalProperties
    (("x-anything",), {"deep": [1, 2, {"x": None}]}),  # patternProperties: anything goes
    (("y-anything",), 1),
    (("mailboxes", 0), "not a mapping"),
    (("mailboxes",), {"not": "a list"}),
    (("mailboxes", 0, "id"), None),
]


def _set(data: Any, path: tuple[str | int, ...], value: Any) -> None:
    for part in path[:-1]:
        data = data[part]
    data[path[-1]] = value


@pytest.mark.parametrize(("where", "value"), TRAPS, ids=lambda x: repr(x)[:40])
def test_batch_agrees_on_each_trap(where: tuple[str | int, ...], value: Any) -> None:
    data = copy.deepcopy(_example())
    _set(data, where, value)
    full_ok = FULL.is_valid(data)
    assert full_ok == (where == ("x-anything",))  # each trap is invalid but that one
    assert BatchCheck(load_schema())(data) == full_ok  # decided, and rightly


def test_a_key_that_is_not_text_is_not_decided() -> None:
    data = copy.deepcopy(_example())
    data["mailboxes"][0][1] = "x"
    assert BatchCheck(load_schema())(data) is False


# --------------------------------------------------------------------------- random mutations

_VALUES: list[Any] = [
    "", "x", "a..b", "natuan", "natuan\n", "Đ", "2020-01-01", "2020-1-1", "12/QĐ-VP",
    "tcmt", "age1" + "q" * 58, "gov.vn", "a" * 70, 0, 1, -1, 2048, 2048.0, 1.5, True, False,
    None, [], ["x"], ["x", "x"], [1], [{"address": "x"}], {}, {"address": "x"},
    {"date": "2020-01-01", "reason": "left", "request": "1/QĐ-VP"},
]


def _paths(data: Any, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    out = [path] if path else []
    if isinstance(data, dict):
        for k, v in data.items():
            out += _paths(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += _paths(v, (*path, i))
    return out


def _mutate(data: dict[str, Any], rng: random.Random) -> None:
    paths = _paths(data)
    for _ in range(rng.randint(1, 3)):
        where = rng.choice(paths)
        parent: Any = data
        for part in where[:-1]:
            parent = parent[part]
        last = where[-1]
        roll = rng.random()
        if isinstance(parent, dict) and roll < 0.15:
            parent.pop(last, None)                       # a missing field
        elif isinstance(parent, dict) and roll < 0.25:
            parent[rng.choice(["nmae", "x-note", "Name", "quota"])] = rng.choice(_VALUES)
        elif isinstance(parent, list) and roll < 0.35 and parent:
            parent.append(copy.deepcopy(rng.choice(parent)))  # a repeated item
        else:
            with contextlib.suppress(IndexError, KeyError, TypeError):
                parent[last] = copy.deepcopy(rng.choice(_VALUES))
        paths = _paths(data)


def _disagreements(check: Callable[[Any], bool], runs: int, seed: int,
                   first: bool = False) -> tuple[int, int]:
    """(how often the check said valid where jsonschema did not, how often it said valid);
    ``first``: stop at the first wrong answer."""
    rng = random.Random(seed)
    base = _example()
    wrong = yes = 0
    for _ in range(runs):
        data = copy.deepcopy(base)
        _mutate(data, rng)
        if check(data):
            yes += 1
            if not FULL.is_valid(data):
                wrong += 1
                if first:
                    break
    return wrong, yes


def test_batch_never_says_valid_where_jsonschema_does_not_on_random_mutations() -> None:
    wrong, yes = _disagreements(BatchCheck(load_schema()), runs=800, seed=13)
    assert wrong == 0
    assert yes > 20  # some mutations keep the file valid (x- fields, equal values): decided


def test_the_mutation_harness_catches_a_check_that_skips_patterns(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The harness above can fail: with the string checks switched off it finds cases."""
    monkeypatch.setattr(batchschema.BatchCheck, "_strings", staticmethod(lambda s, v: True))
    wrong, _ = _disagreements(BatchCheck(load_schema()), runs=800, seed=13, first=True)
    assert wrong > 0


def test_validate_output_does_not_depend_on_the_batch_check(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With the batch check answering "not shown" always, validate says the same."""
    from mailgov import validate as v
    before = {p.name: [x.format() for x in validate(p).problems] for p in CORPUS}
    monkeypatch.setattr(v, "_batch_check", lambda: (lambda data: False))
    after = {p.name: [x.format() for x in validate(p).problems] for p in CORPUS}
    assert before == after
