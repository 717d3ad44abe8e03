"""The strict loader: every way a file can be unreadable, with the right rule and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mailgov.loader import LoadError, Locator, StrictLoader, load


def _file(tmp_path: Path, data: bytes | str) -> Path:
    p = tmp_path / "m.yaml"
    p.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return p


def _fails(path: Path) -> tuple[str, int, int]:
    with pytest.raises(LoadError) as info:
        load(path)
    p = info.value.problems[0]
    assert p.file == str(path)
    return p.rule, p.line, p.col


def test_missing_file(tmp_path: Path) -> None:
    assert _fails(tmp_path / "nope.yaml")[0] == "MG001"


def test_directory(tmp_path: Path) -> None:
    assert _fails(tmp_path)[0] == "MG001"


@pytest.mark.parametrize("data", [b"", b"\n\n  \n", b"# only a comment\n"])
def test_empty(tmp_path: Path, data: bytes) -> None:
    assert _fails(_file(tmp_path, data)) == ("MG002", 1, 1)


@pytest.mark.parametrize("bom", [b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"])
def test_bom(tmp_path: Path, bom: bytes) -> None:
    assert _fails(_file(tmp_path, bom + b"version: 1\n")) == ("MG003", 1, 1)


def test_invalid_utf8_reports_line_and_column(tmp_path: Path) -> None:
    data = "version: 1\nname: Lê\n".encode() + b"other: L\xea Th\xf2\n"
    assert _fails(_file(tmp_path, data)) == ("MG004", 3, 9)


def test_tabs_in_indentation_reported_per_line(tmp_path: Path) -> None:
    p = _file(tmp_path, "a:\n\tb: 1\nc: x\td\nd:\n  \te: 2\n")
    with pytest.raises(LoadError) as info:
        load(p)
    assert [(x.rule, x.line, x.col) for x in info.value.problems] == [
        ("MG005", 2, 1), ("MG005", 5, 3)]


def test_tab_inside_a_value_is_fine(tmp_path: Path) -> None:
    assert load(_file(tmp_path, "a: 'x\ty'\n")).data == {"a": "x\ty"}


def test_malformed_yaml_uses_libyaml_mark(tmp_path: Path) -> None:
    rule, line, _col = _fails(_file(tmp_path, "a: 1\nb: [1, 2\nc: 3\n"))
    assert rule == "MG006" and line == 3


def test_unknown_tag_is_malformed(tmp_path: Path) -> None:
    assert _fails(_file(tmp_path, "a: !!python/object:os.system x\n"))[0] == "MG006"


_UNFIT_TAGS = ["!!float 1]", "!!float ''", '!!float "."', "!!int x", "!!int ''", '!!int "-"',
               '!!int "0x"', '!!int "0b"', '!!int "1:"', "!!bool maybe", "!!bool ''",
               "!!timestamp x", "!!timestamp 2020-13-45", "!!float " + "x" * 5000]
_TAG_PLACES = ["a: {}\n", "a: [1, {}]\n", "a:\n  b: {}\n", "{}: 1\n"]


@pytest.mark.parametrize(("where", "value"), [
    (where, value) for where in _TAG_PLACES for value in _UNFIT_TAGS
    # not a "]" inside a flow list (it would close it), nor a 5,000-character key
    if not ("[" in where and "]" in value) and not (where.startswith("{") and len(value) > 1000)])
def test_explicit_tag_on_a_value_it_does_not_fit_is_located(tmp_path: Path, value: str,
                                                            where: str) -> None:
    # PyYAML's constructors fail with a bare ValueError, KeyError, IndexError or
    # AttributeError: a traceback, or MG011 at 0:0. Now MG006 at the value, its text cut.
    text = where.format(value)
    p = _file(tmp_path, text)
    with pytest.raises(LoadError) as info:
        load(p)
    got = info.value.problems[0]
    assert (got.rule, got.line, got.col) == ("MG006", text[:text.index("!!")].count("\n") + 1,
                                             text.index("!!") - text.rfind("\n", 0,
                                                                           text.index("!!")))
    assert "cannot be read as !!" in got.message and len(got.message) < 200


@pytest.mark.parametrize("value", ["!!int " + "9" * 5000, "!!int '" + "9" * 200 + "'",
                                   '!!int "-' + "1" * 101 + '"'])
def test_explicit_int_tag_has_the_digit_limit_too(tmp_path: Path, value: str) -> None:
    # Only plain integers were counted: a tagged one of 5,000 digits failed Python's int()
    # (MG011 at 0:0), one of 200 was read and printed whole in MG106.
    assert _fails(_file(tmp_path, f"a:\n  b: {value}\n")) == ("MG011", 2, 6)


def test_duplicate_key_top_level(tmp_path: Path) -> None:
    assert _fails(_file(tmp_path, "a: 1\nb: 2\na: 3\n")) == ("MG007", 3, 1)


def test_duplicate_key_deep_in_list(tmp_path: Path) -> None:
    text = "m:\n  - x: 1\n    y:\n      k: 1\n      k: 2\n"
    assert _fails(_file(tmp_path, text)) == ("MG007", 5, 7)


def test_duplicate_key_in_flow_mapping(tmp_path: Path) -> None:
    assert _fails(_file(tmp_path, "a: {p: 1, q: 2, p: 3}\n")) == ("MG007", 1, 17)


def test_duplicate_message_names_first_line(tmp_path: Path) -> None:
    with pytest.raises(LoadError) as info:
        load(_file(tmp_path, "a: 1\nb: 2\na: 3\n"))
    assert "'a'" in info.value.problems[0].message
    assert "line 1" in info.value.problems[0].message


def test_merge_keys_override_without_duplicate_error(tmp_path: Path) -> None:
    text = "d: &d {x: 1, y: 2}\ne: {<<: *d, y: 3}\n"
    assert load(_file(tmp_path, text)).data["e"] == {"x": 1, "y": 3}


def test_duplicate_explicit_key_next_to_merge(tmp_path: Path) -> None:
    text = "d: &d {x: 1}\ne:\n  <<: *d\n  y: 3\n  y: 4\n"
    assert _fails(_file(tmp_path, text)) == ("MG007", 5, 3)


@pytest.mark.parametrize(("text", "kind"), [("- a\n- b\n", "list"), ("just text\n", "text"),
                                            ("42\n", "int")])
def test_top_level_not_a_mapping(tmp_path: Path, text: str, kind: str) -> None:
    with pytest.raises(LoadError) as info:
        load(_file(tmp_path, "# header\n" + text))
    p = info.value.problems[0]
    assert (p.rule, p.line) == ("MG008", 2)
    assert kind in p.message


def test_dates_are_strings_other_scalars_resolve(tmp_path: Path) -> None:
    data = load(_file(tmp_path, "d: 2019-03-04\nn: 12\nf: 0.05\nb: true\nz: null\nq: '7'\n")).data
    assert data == {"d": "2019-03-04", "n": 12, "f": 0.05, "b": True, "z": None, "q": "7"}


def test_strict_loader_matches_safe_loader_on_valid_yaml() -> None:
    text = ("a: [1, 2.5, yes, ~, 'x', \"y\", 0o17, 0x1f]\n"
            "b: {c: &k [q, r], d: *k}\nlong: |\n  text\n  more\n")
    ours = yaml.load(text, Loader=StrictLoader)  # StrictLoader is a safe loader
    assert ours == yaml.safe_load(text)


def test_locator_maps_paths_to_lines() -> None:
    src = (b"version: 1\nmailboxes:\n  - address: a\n    aliases: [x, y]\n"
           b"  - address: b\n    aliases:\n      - p\n      - q\n")
    loc = Locator(src)
    assert loc.locate(("version",)) == (1, 1)
    assert loc.locate(("mailboxes", 1)) == (5, 5)
    assert loc.locate(("mailboxes", 0, "aliases", 1)) == (4, 18)
    assert loc.locate(("mailboxes", 1, "aliases", 1)) == (8, 9)
    # missing key -> deepest existing node (where the key has to be added)
    assert loc.locate(("mailboxes", 1, "name")) == (5, 5)
    assert loc.locate(("mailboxes", 7)) == (2, 1)


def test_locator_is_lazy(tmp_path: Path) -> None:
    loaded = load(_file(tmp_path, "a: 1\n"))
    assert loaded._locator is None  # the happy path never composes the node tree
    assert loaded.problem("MG101", "m", ("a",)).line == 1
    assert loaded._locator is not None


def test_columns_count_characters_not_bytes(tmp_path: Path) -> None:
    line = "a: {n: Lê Thị Hồng, k: 1, k: 2}\n"
    assert _fails(_file(tmp_path, line)) == ("MG007", 1, line.index("k: 2") + 1)


def test_control_character_pre_scan_is_the_lead_byte_regex() -> None:
    """The loader looks for control characters only where the bytes hold a lead byte of
    one; it asks bytes.translate instead of the regex: the same answer for every byte, alone
    or among others, and a file with a control character is still refused (MG009)."""
    import random

    from mailgov import loader

    lead = loader._CONTROL_LEAD
    rng = random.Random(5)
    samples = [bytes((b,)) for b in range(256)] + [
        b"name: Nguy\xe1\xbb\x85n\n" + bytes((rng.randrange(256),)) * rng.randint(0, 1)
        for _ in range(2_000)]
    hits = 0
    for raw in samples:
        found = lead.search(raw) is not None
        hits += found
        assert bool(raw.translate(None, loader._NOT_LEAD)) == found, raw
    assert 30 < hits < len(samples) - 30
    assert loader._control_characters(b"a: \x1b\n", "a: \x1b\n", "f")[0].rule == "MG009"


def test_a_typographic_dash_does_not_send_the_text_to_the_character_scan(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # "–" and "“" start with the byte 0xE2, as U+202E does: the lead-byte test lets such a
    # file through, and the character class scan of the text took 0.85 s of a 50,000-mailbox
    # file. The UTF-8 search of the bytes decides first; the text is scanned only on a hit.
    from mailgov import loader

    scans: list[str] = []

    class Counting:
        def search(self, text: str) -> Any:
            scans.append(text)
            return real.search(text)

        def finditer(self, text: str) -> Any:
            return real.finditer(text)

    real = loader._CONTROL
    monkeypatch.setattr(loader, "_CONTROL", Counting())
    assert load(_file(tmp_path, "a: Phòng Kế hoạch – Tài chính “KHTC”\n")).data
    assert scans == []
    with pytest.raises(LoadError) as info:
        load(_file(tmp_path, "a: x\u202ey\n"))
    assert info.value.problems[0].rule == "MG009" and len(scans) == 1
