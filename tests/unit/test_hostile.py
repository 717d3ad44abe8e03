"""Hostile input: every class an outside review found (tracebacks, exhaustion, no location,
accepted but wrong) gets a clear, located refusal. Several inputs per class.

Time and memory bounds (<= 5 s, <= 500 MB for any input up to 10 MB) are measured by
``benchmarks/bench_validate.py --hostile``, not by timed unit tests."""

from __future__ import annotations

import copy
import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import fastjsonschema
import pytest
from schema_walk import subschemas

from mailgov.cli import main
from mailgov.loader import MAX_DEPTH, MAX_REPORTED, LoadError, load
from mailgov.problems import Problem
from mailgov.validate import MAX_SHOWN, _item_checks, load_schema, strict_validator, validate

DATA = Path(__file__).resolve().parents[2] / "tests" / "data"
MINIMAL = (DATA / "good" / "minimal.yaml").read_text(encoding="utf-8")
TODAY = date(2026, 11, 29)


def _problems(tmp_path: Path, text: str) -> list[Problem]:
    p = tmp_path / "m.yaml"
    p.write_text(text, encoding="utf-8")
    result = validate(p, today=TODAY)  # never raises: that is half of what is tested
    assert not result.ok
    return result.problems


def _line_of(text: str, needle: str) -> int:
    return text[:text.index(needle)].count("\n") + 1


def _only(problems: list[Problem], rule: str) -> Problem:
    assert {p.rule for p in problems} == {rule}, [p.format() for p in problems]
    return problems[0]


def _with(old: str, new: str) -> str:
    assert old in MINIMAL
    return MINIMAL.replace(old, new, 1)


def test_minimal_is_valid(tmp_path: Path) -> None:
    p = tmp_path / "m.yaml"
    p.write_text(MINIMAL, encoding="utf-8")
    assert validate(p, today=TODAY).ok


# --------------------------------------------------------------- tracebacks: non-text keys

@pytest.mark.parametrize(("key", "shown"), [("1", "int 1"), ("~", "nothing (empty value)"),
                                            ("yes", "true (a yes/no value)"),
                                            ("null", "nothing (empty value)"),
                                            ("3.5", "float 3.5"), ("0x10", "int 16")])
def test_top_level_key_that_is_not_text(tmp_path: Path, key: str, shown: str) -> None:
    text = _with("units:\n", f"{key}: x\nunits:\n")
    p = _only(_problems(tmp_path, text), "MG109")
    assert (p.line, p.col) == (_line_of(text, f"{key}: x"), 1)
    assert f"the key {shown} is not text" in p.message


@pytest.mark.parametrize("entry", ["7: b", "on: b", "~: b"])
def test_nested_key_that_is_not_text(tmp_path: Path, entry: str) -> None:
    text = _with("    role: admin\n    aliases", f"    role: admin\n    {entry}\n    aliases")
    p = _only(_problems(tmp_path, text), "MG109")
    assert p.line == _line_of(text, entry) and p.path[:2] == ("mailboxes", 5)


# --------------------------------------------------------------- tracebacks: huge integers

@pytest.mark.parametrize(("template", "digits"), [
    ("    quota_mb: {n}\n", 5000), ("    quota_mb: -{n}\n", 5000), ("    x: [1, {n}]\n", 5000),
    ("    {n}: big key\n", 200), ("    quota_mb: {n}\n", 101)])
def test_integer_of_thousands_of_digits(tmp_path: Path, template: str, digits: int) -> None:
    n = "7" * digits
    line = template.format(n=n)
    text = _with("    role: admin\n", "    role: admin\n" + line)
    p = _only(_problems(tmp_path, text), "MG011")
    assert p.line == _line_of(text, line)
    assert "at most 100 digits" in p.message


def test_long_key_is_libyamls_located_error(tmp_path: Path) -> None:
    text = _with("    role: admin\n", "    role: admin\n    " + "7" * 5000 + ": x\n")
    p = _only(_problems(tmp_path, text), "MG006")
    assert p.line == _line_of(text, "7777")


def test_long_hex_integer_is_refused_too(tmp_path: Path) -> None:
    text = _with("units:\n", f"x-big: 0x{'f' * 3000}\nunits:\n")
    assert _only(_problems(tmp_path, text), "MG011").line == _line_of(text, "x-big")


# --------------------------------------------------------------- tracebacks: recursion

@pytest.mark.parametrize("node", ["&a [*a]", "&m {k: *m}", "&d [1, [2, {x: *d}]]",
                                  "&b\n  - *b"])
def test_alias_inside_the_node_it_names(tmp_path: Path, node: str) -> None:
    text = _with("units:\n", f"x-loop: {node}\nunits:\n")
    p = _only(_problems(tmp_path, text), "MG010")
    assert "inside the node it names" in p.message
    assert p.line in (_line_of(text, "x-loop"), _line_of(text, "x-loop") + 1)


@pytest.mark.parametrize("depth", [MAX_DEPTH, 1000, 100_000])
def test_deep_flow_nesting_in_a_list(tmp_path: Path, depth: int) -> None:
    text = _with("    aliases: [postmaster]", "    aliases: [postmaster, "
                 + "[" * depth + "]" * depth + "]")
    p = _only(_problems(tmp_path, text), "MG010")
    assert p.line == _line_of(text, "[postmaster, [")
    assert f"deeper than {MAX_DEPTH} levels" in p.message


def test_deep_block_nesting(tmp_path: Path) -> None:
    nested = "".join(f"{'  ' * i}k{i}:\n" for i in range(70)) + "  " * 70 + "end: 1\n"
    text = _with("units:\n", "x-deep:\n" + "".join("  " + ln + "\n"
                 for ln in nested.splitlines()) + "units:\n")
    p = _only(_problems(tmp_path, text), "MG010")
    assert p.line > _line_of(text, "x-deep")


def test_deep_mapping_nesting_in_flow(tmp_path: Path) -> None:
    text = _with("units:\n", "x-deep: " + "{a: " * 3000 + "1" + "}" * 3000 + "\nunits:\n")
    assert _only(_problems(tmp_path, text), "MG010").line == _line_of(text, "x-deep")


# --------------------------------------------------------------- resource exhaustion

def _laughs(levels: int, name: str = "l") -> str:
    out = f"x-{name}0: &{name}0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    for i in range(1, levels):
        out += f"x-{name}{i}: &{name}{i} [" + ", ".join([f"*{name}{i - 1}"] * 10) + "]\n"
    return out


def test_alias_bomb_in_a_list(tmp_path: Path) -> None:
    text = _with("units:\n", _laughs(9) + "units:\n")
    p = _only(_problems(tmp_path, text), "MG011")
    assert "expand to more than 1,000,000 values" in p.message
    assert p.line == _line_of(text, "x-l5:")  # 11 + 10 * 111,111 crosses the limit there


def test_alias_bomb_in_a_text_field(tmp_path: Path) -> None:
    text = _with("units:\n", _laughs(9) + "units:\n").replace(
        "name: Lê Thị Hoa", "name: *l8")
    assert _only(_problems(tmp_path, text), "MG011").rule == "MG011"


def test_alias_bomb_in_aliases_of_a_mailbox(tmp_path: Path) -> None:
    text = _with("units:\n", _laughs(8, "b") + "units:\n").replace(
        "aliases: [postmaster]", "aliases: [postmaster, *b7, *b7]")
    assert _only(_problems(tmp_path, text), "MG011").rule == "MG011"


def test_a_few_shared_values_stay_fine(tmp_path: Path) -> None:
    # Anchors are allowed (x- keys hold them): small expansions are not a bomb.
    text = _with("units:\n", _laughs(3) + "units:\n")
    p = tmp_path / "m.yaml"
    p.write_text(text, encoding="utf-8")
    assert validate(p, today=TODAY).ok


@pytest.mark.parametrize("count", [1000, 1_000_000])
def test_list_with_a_million_repeated_items(tmp_path: Path, count: int) -> None:
    text = _with("aliases: [postmaster]", "aliases:\n" + "      - nvq\n" * count)
    p = _only(_problems(tmp_path, text), "MG107")
    assert p.message == "mailboxes[5].aliases: repeated item(s) \"nvq\""


def test_many_different_repeated_items_message_is_bounded(tmp_path: Path) -> None:
    items = "".join(f"      - a{i}\n      - a{i}\n" for i in range(5000))
    text = _with("aliases: [postmaster]", "aliases:\n" + items)
    p = _only(_problems(tmp_path, text), "MG107")
    assert "and 4,990 more" in p.message and len(p.message) < 500


def test_huge_text_is_cut_in_messages(tmp_path: Path) -> None:
    text = _with("unit: cntt\n    role: admin", "unit: cntt\n    role: admin\n    title: x\n"
                 "    kind: " + "Z" * 3_000_000)
    p = _only(_problems(tmp_path, text), "MG104")
    assert len(p.message) < 2 * MAX_SHOWN + 200 and "3,000,002 characters" in p.message


# --------------------------------------------------------------- no location

@pytest.mark.parametrize("char", ["\x00", "\x1b", "\x7f", "\x80", "\x9f", "\ufffe", "\uffff",
                                  "\ufdd0", "\U0010ffff", "\x0c",
                                  # invisible format characters, bidirectional controls
                                  "\u202e", "\u202a", "\u2066", "\u2069", "\u200e",
                                  "\u200f", "\u061c", "\u200b", "\u200d", "\u2060",
                                  "\u2064", "\ufeff"])
def test_control_and_non_characters_are_located(tmp_path: Path, char: str) -> None:
    text = _with("name: Lê Thị Hoa", f"name: Lê Thị{char} Hoa")
    p = _only(_problems(tmp_path, text), "MG009")
    line = _line_of(text, char)
    assert (p.line, p.col) == (line, len("    name: Lê Thị") + 1)  # characters, not bytes
    assert f"U+{ord(char):04X}" in p.message


def test_every_control_character_is_reported_up_to_a_limit(tmp_path: Path) -> None:
    text = _with("units:\n", "# a comment with \x00 in it\nunits:\n").replace(
        "name: Lê Thị Hoa", "name: Lê\x1bThị\x1b Hoa")
    got = [(p.line, p.col) for p in _problems(tmp_path, text)]
    assert got == [(_line_of(text, "# a comment with"), 18),
                   (_line_of(text, "Lê\x1b"), 13), (_line_of(text, "Lê\x1b"), 17)]
    many = _problems(tmp_path, MINIMAL + "# " + "\x00" * 1000 + "\n")
    assert len(many) == MAX_REPORTED


@pytest.mark.parametrize("escape", ["\\n", "\\r", "\\e", "\\x7f", "\\N", "\\L", "\\P",
                                    "\\t", "\\0", "\\x9b"])
@pytest.mark.parametrize("where", ["key", "nested key", "value"])
def test_an_escaped_control_character_never_breaks_an_output_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], escape: str, where: str) -> None:
    # A key holding a line break was printed as it is in the message's data path: the rest of
    # it became a line of its own, without a location, that looks like a line of the data.
    fake = f"dc=x,dc=y{escape}objectClass: top"
    text = {"key": _with("units:\n", f'"{fake}": 1\nunits:\n'),
            "nested key": _with("min: 500,", f'"{fake}": 500,'),
            "value": _with("name: Lê Thị Hoa", f'name: "{fake}"')}[where]
    p = tmp_path / "m.yaml"
    p.write_text(text, encoding="utf-8")
    assert main(["validate", "--today", TODAY.isoformat(), str(p)]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines and all(re.match(rf"{re.escape(str(p))}:[1-9][0-9]*:[1-9][0-9]*: MG[0-9]{{3}} ",
                                  line) for line in lines), out
    assert len(out.split("\n")) == len(lines) + 1  # no CR, NEL, U+2028 … inside a line either
    assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]", out), out
    assert "MG108" in out


def test_bidirectional_controls_in_a_comment_are_refused_too(tmp_path: Path) -> None:
    # Trojan Source: a reviewer sees `# check later` while the line holds more than that.
    text = _with("units:\n", "# check later \u202e \u2066 }\u2069 \u2066\nunits:\n")
    got = [(p.rule, p.line, p.col) for p in _problems(tmp_path, text)]
    line = _line_of(text, "# check later")
    assert got == [("MG009", line, 15), ("MG009", line, 17), ("MG009", line, 20),
                   ("MG009", line, 22)]


def test_vietnamese_text_and_typographic_punctuation_stay_fine(tmp_path: Path) -> None:
    # The lead bytes of the new characters (0xE2 also leads dashes, quotes and the ellipsis)
    # only make the scan look closer: such text is not refused.
    p = tmp_path / "m.yaml"
    p.write_text(_with("units:\n", "# Hoà – “x” … ‘y’\nunits:\n").replace(
        "name: Văn phòng Bộ", "name: Văn phòng Bộ – “VPB” … ‘x’ ‰ € ·"), encoding="utf-8")
    assert validate(p, today=TODAY).ok


def test_control_character_in_a_binary_file(tmp_path: Path) -> None:
    p = tmp_path / "m.yaml"
    p.write_bytes(b"version: 1\n\x00\x01\x02\xff")  # invalid UTF-8 first: MG004
    with pytest.raises(LoadError) as info:
        load(p)
    assert info.value.problems[0].rule == "MG004"


# --------------------------------------------------------------- accepted but wrong

_TRUE_END_PATHS: list[tuple[str | int, ...]] = [
    ("units", 0, "id"), ("mailboxes", 0, "address"), ("mailboxes", 0, "aliases", 0),
    ("mailboxes", 0, "forward_to", 0), ("policy", "protected", 0),
    ("policy", "blocked_attachments", 0), ("organization", "domain"),
    ("organization", "base_dn"), ("mailboxes", 0, "created"), ("mailboxes", 0, "request"),
    ("units", 0, "head"), ("units", 0, "mailbox", "delegates", 0)]


def _set(data: Any, path: tuple[str | int, ...], value: Any) -> None:
    for part in path[:-1]:
        data = data[part]
    data[path[-1]] = value(data[path[-1]]) if callable(value) else value


@pytest.mark.parametrize("where", _TRUE_END_PATHS, ids=lambda p: ".".join(map(str, p)))
def test_schema_patterns_match_to_the_true_end(tmp_path: Path,
                                               where: tuple[str | int, ...]) -> None:
    p = tmp_path / "m.yaml"
    p.write_text(MINIMAL, encoding="utf-8")
    data = copy.deepcopy(load(p).data)
    # A unit or mailbox that its compiled fast check passes is never checked again.
    fast = _item_checks()[where[0]][0] if where[0] in _item_checks() else None
    if fast is not None:
        fast(data[where[0]][where[1]])
    _set(data, where, lambda v: v + "\n")  # Python's '$' matches before a final newline
    if fast is not None:
        with pytest.raises(fastjsonschema.JsonSchemaException):
            fast(data[where[0]][where[1]])
    errors = [e for e in strict_validator()(load_schema()).iter_errors(data)]
    assert [(tuple(e.absolute_path), e.validator) for e in errors] == [(where, "pattern")]


@pytest.mark.parametrize("field", ["id: vpb", "address: natuan", "aliases: [tuan.na",
                                   "blocked_attachments: [exe", "protected: [postmaster"])
def test_newline_escape_at_the_end_of_an_id_is_refused(tmp_path: Path, field: str) -> None:
    key, _, value = field.partition(": ")
    bracket = "[" if value.startswith("[") else ""
    text = _with(field, f'{key}: {bracket}"{value.lstrip("[")}\\n"')
    p = _only(_problems(tmp_path, text), "MG108")
    assert p.line == _line_of(text, "\\n\"") and "U+000A" in p.message


@pytest.mark.parametrize("dn", ['"dc=monre,dc=gov,dc=vn\\ndn: cn=admin,dc=monre"',
                                "'dc=monre\\,x,dc=vn'", "dc=monre+cn=x,dc=vn",
                                "'dc=monre,dc=vn '", "dc=monre;dc=vn", "dc=(monre),dc=vn",
                                "dc=mon*,dc=vn", "dc=monre,dc=vn,", "DC=monre,dc=vn",
                                "dc=,dc=vn", "'dc=monre,dc=vn\"'"])
def test_base_dn_is_safe_for_a_dn_a_filter_and_an_ldif_line(tmp_path: Path, dn: str) -> None:
    text = _with("base_dn: dc=monre,dc=gov,dc=vn", f"base_dn: {dn}")
    problems = _problems(tmp_path, text)
    assert {p.rule for p in problems} <= {"MG105", "MG108"} and problems
    assert all(p.path == ("organization", "base_dn") for p in problems)
    assert all(p.line == _line_of(text, "base_dn:") for p in problems)


@pytest.mark.parametrize("dn", ["dc=monre,dc=gov,dc=vn", "o=Bo TNMT,c=vn",
                                "dc=my-org,dc=gov,dc=vn", "ou=mail.gov,o=x_y"])
def test_base_dn_ordinary_forms_pass(tmp_path: Path, dn: str) -> None:
    p = tmp_path / "m.yaml"
    p.write_text(_with("base_dn: dc=monre,dc=gov,dc=vn", f"base_dn: {dn}"), encoding="utf-8")
    assert validate(p, today=TODAY).ok


@pytest.mark.parametrize(("old", "new", "shown"), [
    ("    role: admin\n", "    role: admin\n    quota_mb: 2048.0\n", "float 2048.0"),
    ("    role: admin\n", "    role: admin\n    quota_mb: 2048.5\n", "float 2048.5"),
    ("  - address: nvquan\n    id: 6", "  - address: nvquan\n    id: 6.0", "float 6.0"),
    ("default: 2048,", "default: 2048.0,", "float 2048.0"),
    ("message_size_mb: 25", "message_size_mb: 25.0", "float 25.0")])
def test_whole_numbers_are_integers_not_floats(tmp_path: Path, old: str, new: str,
                                               shown: str) -> None:
    text = _with(old, new)
    p = _only(_problems(tmp_path, text), "MG103")
    assert p.message.endswith(f"expected a whole number, got {shown}")
    assert p.line == _line_of(text, new.strip().splitlines()[-1])


def test_a_share_may_still_be_written_as_a_float(tmp_path: Path) -> None:
    p = tmp_path / "m.yaml"
    p.write_text(_with("max_disable_share: 0.05", "max_disable_share: 1.0"), encoding="utf-8")
    assert validate(p, today=TODAY).ok


@pytest.mark.parametrize(("escape", "code"), [("\\0", "U+0000"), ("\\x00", "U+0000"),
                                              ("\\u0000", "U+0000"), ("\\e", "U+001B"),
                                              ("\\x7f", "U+007F"), ("\\N", "U+0085"),
                                              ("\\uFFFE", "U+FFFE"), ("\\t", "U+0009"),
                                              ("\\n", "U+000A"), ("\\uFDD0", "U+FDD0"),
                                              ("\\U0001FFFE", "U+1FFFE"),
                                              ("\\U0010FFFF", "U+10FFFF"),
                                              # line breaks to YAML, JavaScript, viewers
                                              ("\\L", "U+2028 (LS)"),
                                              ("\\u2029", "U+2029 (PS)"),
                                              ("\\u202E", "U+202E (RIGHT-TO-LEFT OVERRIDE)"),
                                              ("\\u2067", "U+2067"), ("\\u200B", "U+200B"),
                                              ("\\u200c", "U+200C"), ("\\uFEFF", "U+FEFF")])
def test_escaped_control_characters_in_names_are_refused(tmp_path: Path, escape: str,
                                                         code: str) -> None:
    text = _with("name: Lê Thị Hoa", f'name: "Lê Thị{escape} Hoa"')
    p = _only(_problems(tmp_path, text), "MG108")
    assert (p.line, p.path) == (_line_of(text, "Thị" + escape), ("mailboxes", 2, "name"))
    assert code in p.message


def test_escaped_control_character_in_a_key_is_refused(tmp_path: Path) -> None:
    text = _with("units:\n", '"x-a\\0b": 1\nunits:\n')
    p = _only(_problems(tmp_path, text), "MG108")
    assert p.line == _line_of(text, '"x-a')


@pytest.mark.parametrize("aliases", [
    ["nvq", "Bad Alias!", "nvq", "Bad Alias!", 7, 7, True, "x\n", "nvq"],
    # texts only: the distinct texts are found at C speed, the bad ones reported in order
    ["nvq", "Bad Alias!", "nvq", "x\n", "Bad Alias!", "nvq", "ok.x", "x\n"],
], ids=["mixed", "texts"])
def test_repeated_items_are_checked_once_and_every_bad_one_is_still_reported(
        aliases: list[Any]) -> None:
    # _items() descends once per distinct text or number; the errors must be exactly those of
    # jsonschema's own `items` (each bad item reported at its own index, valid repeats none).
    import jsonschema
    import yaml

    from mailgov.validate import _items, base_items

    data = yaml.safe_load(MINIMAL)
    box = next(b for b in data["mailboxes"] if "aliases" in b)
    box["aliases"] = aliases
    plain = jsonschema.validators.extend(strict_validator(), validators={"items": base_items()})

    def errors(cls: Any) -> list[tuple[Any, ...]]:
        return sorted((tuple(e.absolute_path), e.validator, e.message)
                      for e in cls(load_schema()).iter_errors(data))

    got = errors(strict_validator())
    assert strict_validator().VALIDATORS["items"] is _items
    assert got == errors(plain)
    bad = [p for p, kind, _ in got if kind == "pattern"]
    assert len([p for p in bad if p[-1] in (1, 3)]) == 2  # both copies of the bad one


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize(("where", "key"), [
    ("top", "{i}"),           # non-text keys (integers) at the top level
    ("top", "x-k{i}"),        # text keys, all different
    ("nested", "k{i}"),       # a mapping under an x- key, with a repeated key at its end
])
def test_a_mapping_of_more_than_max_keys_is_refused_located(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast: bool, where: str,
        key: str) -> None:
    from mailgov import fastload
    from mailgov.fastload import MAX_KEYS

    if not fast:
        monkeypatch.setattr(fastload, "_ryml", None)
    keys = "".join(f"{'  ' if where == 'nested' else ''}{key.format(i=i)}: 1\n"
                   for i in range(MAX_KEYS + 5))
    if where == "nested":
        keys = "x-d:\n" + keys + "  k0: 2\n"
    text = _with("units:\n", keys + "units:\n")
    p = _only(_problems(tmp_path, text), "MG011")
    assert p.message == ("a mapping of more than 10,000 keys; the biggest mapping of the data "
                         "file needs a few dozen")
    # At the top, the file's own keys before `units:` count too: the key past the limit is
    # the (MAX_KEYS + 1)th of its mapping.
    before = 0 if where == "nested" else sum(
        1 for line in MINIMAL[:MINIMAL.index("units:\n")].splitlines() if line[:1].isalpha())
    first = _line_of(text, keys.splitlines()[1 if where == "nested" else 0])
    assert (p.line, p.col) == (first + MAX_KEYS - before, 3 if where == "nested" else 1)


@pytest.mark.parametrize("fast", [True, False])
def test_a_mapping_of_max_keys_is_still_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             fast: bool) -> None:
    from mailgov import fastload
    from mailgov.fastload import MAX_KEYS

    if not fast:
        monkeypatch.setattr(fastload, "_ryml", None)
    keys = "".join(f"x-k{i}: 1\n" for i in range(MAX_KEYS - 5))  # + the file's own keys
    p = tmp_path / "m.yaml"
    p.write_text(_with("units:\n", keys + "units:\n"), encoding="utf-8")
    assert validate(p, today=TODAY).ok


# ------------------------------------------- exhaustion: a problem in every one of many records

def _records(count: int, record: str) -> str:
    """The minimal file with ``count`` more mailboxes, each from ``record`` ({i}: 0, 1 …)."""
    return MINIMAL + "".join(record.format(i=i, id=100 + i) for i in range(count))


_BROKEN_RECORD = {
    # shape: the per-record jsonschema report (about 1 ms each) is the cost
    "MG102": "  - {{address: x{i}, id: {id}, name: X, unit: vpb, titel: T}}\n",
    "MG103": "  - {{address: x{i}, id: {id}, name: X, unit: vpb, quota_mb: big}}\n",
    # meaning: each message names another record's line (a position lookup each)
    "MG220": "  - {{address: x{i}, id: 1, name: X, unit: vpb, naming_exemption: "
             "{{reason: r, request: 1/QĐ}}}}\n",
    "MG201": "  - {{address: natuan, id: {id}, name: X, unit: vpb, naming_exemption: "
             "{{reason: r, request: 1/QĐ}}}}\n",
    "MG203": "  - {{address: x{i}, id: {id}, name: X, unit: nowhere, naming_exemption: "
             "{{reason: r, request: 1/QĐ}}}}\n",
    "MG210": "  - {{address: zz{i}, id: {id}, name: Lê Văn Bình, unit: vpb}}\n",
}


@pytest.mark.parametrize("rule", sorted(_BROKEN_RECORD))
def test_a_problem_in_every_record_shows_the_first_ones_and_counts_the_rest(
        tmp_path: Path, rule: str) -> None:
    p = tmp_path / "m.yaml"
    p.write_text(_records(40, _BROKEN_RECORD[rule]), encoding="utf-8")
    every = validate(p, today=TODAY, max_problems=0)
    assert {x.rule for x in every.problems} == {rule} and every.not_shown == 0
    assert len(every.problems) == 40
    some = validate(p, today=TODAY, max_problems=7)
    assert len(some.problems) == 7 and some.not_shown == 33
    # the ones shown are whole: the same problems, lines named in messages looked up
    assert {x.format() for x in some.problems} <= {x.format() for x in every.problems}
    assert not any("(line 0)" in x.message for x in some.problems)


def test_the_full_report_is_written_only_for_the_problems_shown(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A file broken in 200,000 records spent a minute in jsonschema's full report (1 ms per
    # record) and the position of each problem. Counted, not timed: the full validator and
    # the position lookups run for the problems shown only.
    import mailgov.validate as v
    from mailgov import loader

    fast, full = _item_checks()["mailboxes"]
    reports, lookups = [0], [0]

    class Counting:
        def iter_errors(self, item: Any) -> Any:
            reports[0] += 1
            return full.iter_errors(item)

    def where(self: Any, path: Any) -> Any:
        lookups[0] += 1
        return real_where(self, path)

    real_where = loader.Loaded.where
    monkeypatch.setattr(v, "_item_checks", lambda: {**_item_checks(),
                                                    "mailboxes": (fast, Counting())})
    monkeypatch.setattr(loader.Loaded, "where", where)
    p = tmp_path / "m.yaml"
    p.write_text(_records(500, _BROKEN_RECORD["MG102"]), encoding="utf-8")
    result = validate(p, today=TODAY, max_problems=10)
    assert (len(result.problems), result.not_shown) == (10, 490)
    assert (reports[0], lookups[0]) == (10, 10)
    reports[0] = lookups[0] = 0
    p.write_text(_records(500, _BROKEN_RECORD["MG220"]), encoding="utf-8")
    result = validate(p, today=TODAY, max_problems=10)
    assert (len(result.problems), result.not_shown) == (10, 490)
    assert lookups[0] == 10  # the messages' "(line N)" uses the locator, not where()


def test_the_command_says_how_many_more_and_how_to_see_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "m.yaml"
    p.write_text(_records(1500, _BROKEN_RECORD["MG102"]), encoding="utf-8")
    assert main(["validate", str(p), "--today", "2026-11-29"]) == 1
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 1000
    assert err.splitlines() == [
        f"1000 problems in {p}",
        "and at least 500 more not shown: fix those above and run again "
        "(`mailgov validate --max-problems 0` shows every one)"]
    assert main(["validate", str(p), "--today", "2026-11-29", "--max-problems", "0"]) == 1
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 1500 and err.splitlines() == [f"1500 problems in {p}"]
    assert main(["validate", str(p), "--today", "2026-11-29", "--format", "json",
                 "--max-problems", "3"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert (len(report["problems"]), report["not_shown"]) == (3, 1497)


@pytest.mark.parametrize("value", ["-1", "x", "1.5", "²", "9" * 5000])
def test_max_problems_must_be_a_whole_number(capsys: pytest.CaptureFixture[str],
                                             value: str) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["validate", "--max-problems", value])
    assert exit_.value.code == 2
    assert "is not a whole number 0 or more" in capsys.readouterr().err


# ---------------------------------------- exhaustion: a text field of megabytes, in every message

def test_every_free_text_of_the_schema_has_a_length_limit() -> None:
    # A 10 MB name was accepted and then printed whole in MG210's message; a request of
    # megabytes matched its pattern. Every text without a closed form (enum, const, a
    # bounded pattern) now has maxLength; the unbounded patterns get one too.
    def bounded(node: dict[str, Any]) -> bool:
        # a negative lookahead (?!.*\.\.) repeats nothing; (?=.{1,253}$) bounds it
        pattern = re.sub(r"\(\?!\.\*[^)]*\)", "", node.get("pattern", ".*"))
        return bool(node.keys() & {"enum", "const", "maxLength"} or re.search(
            r"^\^\(\?=\.\{1,\d+\}\$\)", pattern) or not re.search(r"[+*]|\{\d+,\}", pattern))

    def text(node: dict[str, Any]) -> bool:
        types = node.get("type")
        return types == "string" or (isinstance(types, list) and "string" in types)

    texts = [(where, node) for where, node in subschemas(load_schema()) if text(node)]
    assert len(texts) > 20
    assert [where for where, node in texts if not bounded(node)] == []


@pytest.mark.parametrize(("old", "new", "value", "limit", "fits"), [
    ("name: Bộ Tài nguyên và Môi trường", "name: {}", "{v}", 256, True),
    ("name: Văn phòng Bộ", "name: {}", "{v}", 256, True),
    ("name: Lê Thị Hoa", "name: {}", "{v}", 256, False),  # fits, but breaks the naming policy
    ("    role: head\n", "    role: head\n    title: {}\n", "{v}", 256, True),
    ("reason: Nghỉ phép dài hạn", "reason: {}", "{v}", 1000, True),
    ("request: 12/QĐ-VPB", "request: {}", "12/QĐ-{v}", 100, True),
    ("base_dn: dc=monre,dc=gov,dc=vn", "base_dn: {}", "dc={v}", 255, True),
    ('templates: ["{initials}{given}"]', 'templates: ["{}"]', "{{given}}{v}", 100, False),
    ('template: "{abbr}"', 'template: "{}"', "{{abbr}}{v}", 100, False),
    ("aliases: [tuan.na]", "aliases: [{}]", "tuan@{v}.vn", 254, False),
    ("forward_to: [tuan@mard.gov.vn]", "forward_to: [{}]", "tuan@{v}.gov.vn", 254, False),
], ids=["organization", "unit", "mailbox", "title", "reason", "request", "base_dn",
        "personal template", "unit template", "alias", "forward"])
def test_a_text_longer_than_its_limit_is_refused_without_printing_it(
        tmp_path: Path, old: str, new: str, value: str, limit: int, fits: bool) -> None:
    fixed = len(value.format(v=""))

    def text(n: int) -> str:
        # domain labels stay valid (at most 63 characters each) at any length
        filler = "V" * (n - fixed) if "@" not in value else ".".join(
            ["v" * 60] * ((n - fixed) // 61) + ["v" * ((n - fixed) % 61 or 1)])
        return _with(old, new.format(value.format(v=filler)))

    if fits:  # at its limit the field is fine
        p = tmp_path / "fits.yaml"
        p.write_text(text(limit), encoding="utf-8")
        assert validate(p, today=TODAY).ok, validate(p, today=TODAY).problems
    for n in (limit + 1, 3_000_000):
        long = text(n)
        problem = _only(_problems(tmp_path, long), "MG107")
        assert problem.message.endswith(f"too long; at most {limit} characters")
        assert problem.line == _line_of(long, "V" * 50 if "@" not in value else "v" * 50)
