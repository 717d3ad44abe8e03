"""Validation: the bad-data corpus, good fixtures, the rule catalogue, and meaning checks."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import fastjsonschema
import jsonschema
import pytest
import yaml
from schema_walk import subschemas

from mailgov.loader import LoadError, load
from mailgov.naming import NamingError, NamingPolicy, unit_locals
from mailgov.problems import PLAN_RULES, REPO_RULES, RULES, Problem
from mailgov.validate import SCHEMA_PATH, _item_checks, load_schema, validate

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
BAD = sorted((DATA / "bad").glob("*.yaml"))
GOOD = sorted((DATA / "good").glob("*.yaml"))
TODAY = date(2026, 11, 29)  # the corpus dates are relative to this day
EXPECT = re.compile(rb"#\s*expect:\s*(MG\d{3})\s+line\s+(\d+)")


def expectation(path: Path) -> tuple[str, int]:
    """The `# expect: RULE line N` header (a directory keeps it in EXPECT)."""
    head = (path / "EXPECT").read_bytes() if path.is_dir() else path.read_bytes()[:400]
    m = EXPECT.search(head)
    assert m, f"{path.name}: no '# expect: MGnnn line N' header"
    return m.group(1).decode(), int(m.group(2))


def test_corpus_is_big_enough() -> None:
    assert len(BAD) >= 40
    assert len(GOOD) >= 2


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_file_reports_expected_rule_at_line(path: Path) -> None:
    rule, line = expectation(path)
    result = validate(path, today=TODAY)
    assert not result.ok
    assert result.directory is None
    got = [(p.rule, p.line) for p in result.problems]
    assert (rule, line) in got, "\n".join(p.format() for p in result.problems)
    # Each corpus file is broken in ONE way: nothing else may be reported.
    assert {p.rule for p in result.problems} == {rule}, got


@pytest.mark.parametrize("path", GOOD, ids=[p.stem for p in GOOD])
def test_good_file_has_no_problems(path: Path) -> None:
    result = validate(path, today=TODAY)
    assert result.problems == []
    assert result.directory is not None
    assert result.summary()["mailboxes"] == len(result.directory.mailboxes) > 0


def test_every_rule_is_documented_and_has_a_corpus_file() -> None:
    doc = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| (MG\d{3}) \|", doc, re.MULTILINE))
    covered = {expectation(p)[0] for p in BAD}
    assert set(RULES) - documented == set(), "rules missing from docs/rules.md"
    # The plan's refusals (MG6xx) are documented there too; the planner's tests cover them.
    assert documented - set(RULES) - set(PLAN_RULES) == set(), "docs/rules.md: unknown rules"
    # The repository rules (MG5xx: the CODEOWNERS beside the data) have tests of their own.
    assert set(RULES) - covered - REPO_RULES == set(), "rules without a bad corpus file"
    assert set(RULES) >= REPO_RULES and not REPO_RULES & covered


def test_problem_rejects_unknown_rule() -> None:
    with pytest.raises(ValueError):
        Problem("MG999", "x")


# --------------------------------------------------------------------------- schema


def _properties(node: Any) -> list[tuple[str, Any]]:
    """Every (path, subschema) under a `properties` keyword, recursively."""
    return [(f"{where}.{name}", sub) for where, parent in subschemas(node)
            for name, sub in parent.get("properties", {}).items()]


def test_schema_is_2020_12_and_every_property_has_a_description() -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    props = _properties(schema)
    assert len(props) > 80
    missing = [p for p, sub in props if not str(sub.get("description", "")).strip()]
    assert missing == []


def test_schema_mentions_units_for_quotas() -> None:
    schema = load_schema()
    q = schema["$defs"]["mailbox"]["properties"]["quota_mb"]["description"]
    assert "MiB" in q


def _loadable(paths: list[Path]) -> list[dict[str, Any]]:
    out = []
    for p in paths:
        try:
            out.append(load(p).data)
        except (LoadError, OSError):
            continue
    return out


def _text_keys(data: Any) -> bool:
    if isinstance(data, dict):
        return all(isinstance(k, str) and _text_keys(v) for k, v in data.items())
    if isinstance(data, list):
        return all(_text_keys(v) for v in data)
    return True


def test_fast_and_full_schema_checks_agree_on_corpus() -> None:
    """fastjsonschema (each unit and mailbox first) and jsonschema (error reports) must agree
    on validity: a record the fast check passes is never checked by the full one. The checks
    validate uses (strict integers, patterns anchored at the true end)."""
    # A key that is not text never reaches the schema checks (MG109 comes first).
    docs = [d for d in _loadable(BAD + GOOD) if _text_keys(d)]
    assert len(docs) > 40
    seen = {True: 0, False: 0}
    for data in docs:
        for key, (fast, full) in _item_checks().items():
            for item in data.get(key) or []:
                full_ok = full.is_valid(item)
                try:
                    fast(item)
                    fast_ok = True
                except fastjsonschema.JsonSchemaException:
                    fast_ok = False
                assert fast_ok == full_ok, (key, item)
                seen[full_ok] += 1
    assert seen[False] >= 10 and seen[True] >= 100, seen  # both answers, many times


# --------------------------------------------------------------------------- behaviour


def _write(tmp_path: Path, text: str, name: str = "m.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


@pytest.fixture
def example_text() -> str:
    return (DATA / "good" / "example.yaml").read_text(encoding="utf-8")


def test_all_problems_are_collected_and_sorted_by_line(tmp_path: Path, example_text: str
                                                       ) -> None:
    text = (example_text
            .replace("    unit: vp\n", "    unit: nope\n")  # MG203
            .replace("forward_to: [tuan@mard.gov.vn]", "forward_to: [tuan@gmail.com]")  # MG403
            .replace("max_disable_share: 0.05", "max_disable_share: 1.5"))  # MG406
    result = validate(_write(tmp_path, text), today=TODAY)
    rules = [p.rule for p in result.problems]
    assert sorted(rules) == ["MG203", "MG403", "MG406"]
    lines = [p.line for p in result.problems]
    assert lines == sorted(lines)
    assert result.problems[0].rule == "MG406"  # policy comes first in the file


def test_shape_problems_are_all_reported(tmp_path: Path, example_text: str) -> None:
    text = (example_text.replace("    state: active\n", "    state: on\n")
            .replace("    quota_mb: 2048\n", "    quota_mb: lots\n")
            .replace("  - address: ttlan\n", "  - address: TTLan\n"))
    result = validate(_write(tmp_path, text), today=TODAY)
    assert sorted(p.rule for p in result.problems) == ["MG103", "MG103", "MG105"]
    # `on` is YAML 1.1 for true: the message says what was read.
    assert any("true" in p.message for p in result.problems)


def test_today_decides_future_dates(example_text: str) -> None:
    path = DATA / "good" / "example.yaml"
    assert validate(path, today=TODAY).ok
    # before the suspension date 2026-10-01: a scheduled suspension (issue 14), valid
    assert validate(path, today=date(2026, 7, 1)).ok
    early = validate(path, today=date(2019, 3, 3))  # the day before a creation: not schedulable
    assert {p.rule for p in early.problems} == {"MG304"}
    assert any("2019-03-04" in p.message for p in early.problems)


def test_dates_stay_strings(example_text: str) -> None:
    data = load(DATA / "good" / "example.yaml").data
    assert data["mailboxes"][0]["created"] == "2019-03-04"
    assert isinstance(yaml.safe_load("d: 2019-03-04")["d"], date)  # what we avoid


def test_case_insensitive_uniqueness_of_full_address_alias(tmp_path: Path,
                                                          example_text: str) -> None:
    text = example_text.replace("aliases: [tuan.na]", "aliases: [tuan.na, ttlan@MONRE.gov.vn]")
    text = text.replace("aliases: [tuan.na, ttlan@MONRE.gov.vn]",
                        "aliases: [tuan.na, ttlan@monre.gov.vn]")
    result = validate(_write(tmp_path, text), today=TODAY)
    assert [p.rule for p in result.problems] == ["MG201"]
    assert "ttlan" in result.problems[0].message


def test_exemption_allows_any_address(tmp_path: Path, example_text: str) -> None:
    text = example_text.replace("  - address: ttlan\n    id: 7\n    name: Trần Thị Lan\n",
                                "  - address: lan.tran\n    id: 7\n    name: Trần Thị Lan\n")
    bad = validate(_write(tmp_path, text), today=TODAY)
    assert {p.rule for p in bad.problems} == {"MG210", "MG216"}  # ttlan was a delegate
    text = text.replace("delegates: [natuan, ttlan]", "delegates: [natuan, lan.tran]")
    text = text.replace("    name: Trần Thị Lan\n", "    name: Trần Thị Lan\n"
                        "    naming_exemption: { reason: Đã dùng từ 2010, request: 5/QĐ-VPB }\n")
    assert validate(_write(tmp_path, text), today=TODAY).ok


def test_naming_policy_with_unit_token(tmp_path: Path, example_text: str) -> None:
    text = example_text.replace('templates: ["{initials}{given}"]',
                                'templates: ["{given}{initials}.{unit}"]')
    result = validate(_write(tmp_path, text), today=TODAY)
    # Every non-exempt address now breaks the policy; natuan is expected as tuanna.vpb.
    msgs = [p.message for p in result.problems if p.rule == "MG210"]
    assert any("tuanna.vpb" in m for m in msgs)
    assert len(msgs) == 7


def test_sub_unit_address_collides_with_alias(tmp_path: Path, example_text: str) -> None:
    text = example_text.replace("aliases: [tuan.na]", "aliases: [VP.tcmt]")
    # upper case is a shape problem already (local parts are lower case)
    assert [p.rule for p in validate(_write(tmp_path, text), today=TODAY).problems] == [
        "MG105"]


def test_result_summary_counts(example_text: str) -> None:
    s = validate(DATA / "good" / "example.yaml", today=TODAY).summary()
    assert s == {"units": 4, "mailboxes": 8, "by_kind": {"affiliate": 1, "personal": 7},
                 "by_state": {"active": 6, "cancelled": 1, "suspended": 1}}


def test_model_defaults(example_text: str) -> None:
    d = validate(DATA / "good" / "example.yaml", today=TODAY).directory
    assert d is not None
    by = {m.address: m for m in d.mailboxes}
    assert by["ttlan"].kind == "personal" and by["ttlan"].role == "staff"
    assert by["ttlan"].state == "active" and by["ttlan"].quota_mb == 2048
    assert by["hoimoitruong"].quota_mb == 1024  # affiliate default
    assert by["natuan2"].suspended is not None and by["natuan2"].suspended.date == "2026-10-01"
    assert [m.index for m in d.mailboxes] == list(range(len(d.mailboxes)))
    units = {u.id: u for u in d.units}
    assert units["tcmt"].mailbox.quota_mb == 10240 and units["vp"].parent == "tcmt"
    with pytest.raises(AttributeError):
        by["ttlan"].state = "cancelled"  # type: ignore[misc]


def test_schema_checks_never_touch_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from mailgov import validate as v

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("validation tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    v._item_checks.cache_clear()
    result = validate(DATA / "bad" / "mg104_unknown_state.yaml", today=TODAY)
    assert [p.rule for p in result.problems] == ["MG104"]
    assert validate(DATA / "good" / "example.yaml", today=TODAY).ok


def test_sub_units_share_an_abbreviation_under_different_parents(tmp_path: Path,
                                                                 example_text: str) -> None:
    # Many Tổng cục have a "Văn phòng": ids stay unique, abbr makes vp.<parent>@ for each.
    extra = ("  - id: tcqldd\n    name: Tổng cục Quản lý đất đai\n"
             "  - id: vp-tcqldd\n    abbr: vp\n    name: Văn phòng Tổng cục\n"
             "    parent: tcqldd\n")
    text = example_text.replace("  - id: tcmt\n", extra + "  - id: tcmt\n", 1)
    result = validate(_write(tmp_path, text), today=TODAY)
    assert result.problems == []
    assert result.directory is not None
    locals_ = unit_locals(result.directory.units,
                          NamingPolicy.from_dict(result.directory.policy.naming))
    assert locals_["vp-tcqldd"] == "vp.tcqldd"
    assert locals_["vp"] == "vp.tcmt"


def test_repeated_names_and_dates_are_judged_per_record(tmp_path: Path,
                                                         example_text: str) -> None:
    """The mailbox loop decides a common record from what it computed for an earlier one
    (candidates per name, a `created` date once checked): a later record with the same
    name or date is still judged on its own and reported at its own line."""
    extra = "".join(
        f"  - address: {addr}\n    id: {100 + k}\n    name: Trần Thị Lan\n    unit: vpb\n"
        f"    created: {created}\n"
        for k, (addr, created) in enumerate([
            ("ttlan2", "2020-01-02"), ("lan.tran", "2020-01-02"),  # fine, then MG210
            ("ttlan3", "2099-01-01"), ("ttlan4", "2099-01-01"),    # MG304 on both
            ("ttlan5", "2021-02-30"), ("ttlan6", "2021-02-30")]))  # MG306 on both
    text = example_text.rstrip("\n") + "\n" + extra
    problems = validate(_write(tmp_path, text), today=TODAY).problems
    got = [(p.rule, p.message.split(":")[0]) for p in problems]
    assert got == [("MG210", "address 'lan.tran' does not follow the naming policy for "
                    "'Trần Thị Lan'; expected ttlan (on a clash ttlan2, ttlan3 …), or record "
                    "naming_exemption {reason, request}"),
                   ("MG304", "mailbox 'ttlan3'"), ("MG304", "mailbox 'ttlan4'"),
                   ("MG306", "mailbox 'ttlan5'"), ("MG306", "mailbox 'ttlan6'")]
    assert len({p.line for p in problems}) == 5


# MG227 is judged on both dated lifecycle blocks; its message names the block. The schema
# gives `until` to a suspension only, so a cancellation's reaches the meaning checks only when
# they are run on a built Directory directly (validate stops at MG102 first).
MG227 = {
    ("suspended", "en"): "mailbox 'natuan2': the suspension ends (2026-09-01) before or when "
                         "it starts (2026-10-01)",
    ("suspended", "vi"): "hộp thư 'natuan2': việc tạm khóa kết thúc (2026-09-01) trước hoặc "
                         "đúng ngày bắt đầu (2026-10-01)",
    ("cancelled", "en"): "mailbox 'lthoa': the cancellation's `until` (2026-06-01) is on or "
                         "before its date (2026-06-30)",
    ("cancelled", "vi"): "hộp thư 'lthoa': ngày `until` (2026-06-01) của việc hủy trùng hoặc "
                         "trước ngày hủy (2026-06-30)",
}


@pytest.mark.parametrize(("key", "lang"), sorted(MG227))
def test_mg227_names_the_block_that_ends_before_it_starts(
        tmp_path: Path, example_text: str, key: str, lang: str) -> None:
    from mailgov import i18n
    from mailgov.model import build
    from mailgov.validate import _Checker

    if key == "suspended":
        path = DATA / "bad" / "mg227_suspension_ends_before_start.yaml"
        line = 80
    else:
        old = "    cancelled: { date: 2026-06-30, reason: retired, request: 77/QĐ-TCCB }\n"
        assert example_text.count(old) == 1
        path = _write(tmp_path, example_text.replace(
            old, old.replace("date: 2026-06-30,", "date: 2026-06-30, until: 2026-06-01,")))
        line = example_text[:example_text.index(old)].count("\n") + 1
        shape = validate(path, today=TODAY).problems
        assert [(p.rule, p.line) for p in shape] == [("MG102", line)]
        assert "unknown field 'until'" in shape[0].message
    i18n.use(lang)
    try:
        loaded = load(path)
        got = _Checker(build(loaded.data), loaded, TODAY).run()
        if key == "suspended":  # the command's own path gives the same
            assert validate(path, today=TODAY).problems == got
    finally:
        i18n.use("en")
    assert [(p.rule, p.line, p.path) for p in got] == \
        [("MG227", line, ("mailboxes", 2 if key == "cancelled" else 3, key, "until"))]
    assert got[0].message == MG227[key, lang]


@pytest.mark.parametrize(("template", "field", "first", "second", "expected"), [
    ("{initials}{given}.{unit}", "unit", "vpb", "tcmt", "tvbinh, tvbinh.tcmt"),
    ("{initials}{given}.{birth_year}", "birth", "1980-01", "1990-05", "tvbinh, tvbinh.1990"),
    ("{initials}{given}.{id_digits}", "id_digits", "'123'", "'456'", "tvbinh, tvbinh.456"),
], ids=["unit", "birth", "id_digits"])
def test_candidates_are_remembered_per_name_and_the_fields_the_templates_read(
        tmp_path: Path, template: str, field: str, first: str, second: str,
        expected: str) -> None:
    """validate computes a name's candidates once and reuses them for the next record with
    the same template inputs: a record with the same name but another unit, birth or
    id_digits gets its own (tvbinh.X is right for the first record, wrong for the second)."""
    text = (DATA / "good" / "minimal.yaml").read_text(encoding="utf-8").replace(
        'templates: ["{initials}{given}"]', f'templates: ["{{initials}}{{given}}", "{template}"]')
    right = {"unit": "vpb", "birth": "1980", "id_digits": "123"}[field]
    units = {"unit": (first, second)}.get(field, ("cntt", "cntt"))
    fields = {"unit": ("", ""), "birth": (f"    birth: {first}\n", f"    birth: {second}\n"),
              "id_digits": (f"    id_digits: {first}\n", f"    id_digits: {second}\n")}[field]
    text += "".join(
        f"  - address: {addr}\n    id: {7 + k}\n    name: Trần Văn Bình\n    unit: {unit}\n"
        f"{extra}"
        for k, (addr, unit, extra) in enumerate([
            ("tvbinh3", units[0], fields[0]),  # numbered: fine, and its candidates remembered
            (f"tvbinh.{right}", units[1], fields[1]),  # the first record's, not this one's
        ]))
    problems = validate(_write(tmp_path, text), today=TODAY).problems
    assert [(p.rule, p.path, p.message) for p in problems] == [
        ("MG210", ("mailboxes", 7, "address"),
         f"address 'tvbinh.{right}' does not follow the naming policy for 'Trần Văn Bình'; "
         f"expected {expected} (on a clash tvbinh2, tvbinh3 …), or record naming_exemption "
         "{reason, request}")]


def test_candidates_of_is_candidates_of_a_person() -> None:
    """The validator's way in (no Person made) gives what candidates(Person) gives, and the
    same error for a bad birth or id_digits."""
    from mailgov.naming import NamingPolicy, Person
    policy = NamingPolicy.from_dict({"personal": {"templates": [
        "{full}", "{initials}{given}", "{given}{middle_initials}{surname_initial}",
        "{given_initial}{middle}{surname}", "{surname}.{given}.{unit}",
        "{given}{initials}{birth_yy}{birth_month}", "{initials}{given}{id_digits|last:3}"]}})
    people = [Person("Nguyễn Anh Tuấn"), Person("Tô Nữ Thị Ngọc Hân", "vp.tcmt", "1990-05",
                                                "012345"),
              Person("Tuấn", "vpb"), Person("Lê  Văn  Long", None, "1980-12", None)]
    for p in people:
        got = policy.candidates_of(p.name, p.unit, p.birth, p.id_digits)
        assert got == policy.candidates(p) and got
    assert policy.candidates(people[1])[-1] == "tntnhan345"
    for bad in (Person("Lê Long", birth="1980-13"), Person("Lê Long", id_digits="12a")):
        with pytest.raises(NamingError) as one:
            policy.candidates(bad)
        with pytest.raises(NamingError) as other:
            policy.candidates_of(bad.name, bad.unit, bad.birth, bad.id_digits)
        assert str(one.value) == str(other.value) and "Lê Long" in str(one.value)


# -- gc_paused (issue 13, fourth round) -----------------------------------------------------

class _Node:
    ref: Any = None


def test_gc_paused_ends_without_scanning_what_was_made() -> None:
    """The objects made while paused are not scanned as young ones when it ends (a full
    scan of them all found no garbage: 63 ms after validate of 50,000 mailboxes)."""
    import gc

    from mailgov.validate import gc_paused

    starts: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            starts.append(info["generation"])

    gc.collect()
    gc.callbacks.append(seen)
    try:
        with gc_paused():
            made = [[i] for i in range(50_000)]  # 50,000 allocations > gen0's threshold
            assert not gc.isenabled()
        assert gc.isenabled()
        after = [[i] for i in range(10)]  # far below the threshold (700)
    finally:
        gc.callbacks.remove(seen)
    assert starts == []
    assert len(made) == 50_000 and len(after) == 10


def test_gc_paused_still_lets_the_collector_free_cycles_made_meanwhile() -> None:
    import gc
    import weakref

    from mailgov.validate import gc_paused

    with gc_paused():
        node = _Node()
        node.ref = node  # a cycle: only the collector frees it
        alive = weakref.ref(node)
        del node
    assert alive() is not None
    gc.collect()
    assert alive() is None


def test_gc_paused_leaves_objects_frozen_by_someone_else_frozen() -> None:
    import gc

    from mailgov.validate import gc_paused

    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        assert frozen > 0
        with gc_paused():
            pass
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


def test_gc_paused_inside_another_leaves_the_collector_paused() -> None:
    import gc

    from mailgov.validate import gc_paused

    with gc_paused():
        with gc_paused():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()
