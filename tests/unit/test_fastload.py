"""The fast loader (rapidyaml -> JSON) reads every file exactly as the precise one (PyYAML),
or hands it over: one test per YAML 1.1/1.2 difference, the fallback, a differential fuzz."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from mailgov import fastload
from mailgov.loader import Loaded, LoadError, StrictLoader, load

DATA = Path(__file__).resolve().parents[2] / "tests" / "data"
pytestmark = pytest.mark.skipif(not fastload.available(), reason="rapidyaml wheel missing")


def _load(tmp_path: Path, text: str) -> Loaded:
    p = tmp_path / "m.yaml"
    p.write_text(text, encoding="utf-8")
    return load(p)


def _same(a: Any, b: Any) -> bool:
    """Equal values of the same types, at every depth (1 == 1.0 == True in Python)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return (list(a) == list(b) and all(type(x) is type(y) for x, y in zip(a, b, strict=True))
                and all(_same(a[k], b[k]) for k in a))
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


def _fast_reads_as_pyyaml(text: str) -> bool:
    """Did the fast path read ``text``? If it did, its data must be PyYAML's (asserted)."""
    data = fastload.load(text.encode("utf-8"), text)
    if data is None:
        return False
    try:
        expected = yaml.load(text, Loader=StrictLoader)
    except yaml.YAMLError as exc:
        raise AssertionError(f"fast path read what PyYAML refuses ({exc}):\n{text}") from None
    assert _same(data, expected), text
    return True


def _reads_as_pyyaml(tmp_path: Path, text: str, *, fast: bool) -> Any:
    """Load ``text``; the data must be PyYAML's, and the path taken the expected one."""
    loaded = _load(tmp_path, text)
    assert _same(loaded.data, yaml.load(text, Loader=StrictLoader))
    assert loaded.precise is (not fast), "fast path" if not fast else "precise path"
    return loaded.data


@pytest.mark.parametrize("word", ["yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON",
                                  "off", "Off", "OFF", "True", "TRUE", "False", "FALSE"])
def test_yaml11_booleans_plain_are_booleans(tmp_path: Path, word: str) -> None:
    # YAML 1.2 (rapidyaml) reads these as text; the data file has always meant booleans.
    data = _reads_as_pyyaml(tmp_path, f"a: {word}\nb: [{word}]\n", fast=False)
    assert isinstance(data["a"], bool) and isinstance(data["b"][0], bool)


@pytest.mark.parametrize("word", ["yes", "on", "off", "True", "Null", "~", "0755", "0x1f"])
def test_quoted_look_alikes_stay_text_on_the_fast_path(tmp_path: Path, word: str) -> None:
    data = _reads_as_pyyaml(tmp_path, f"a: '{word}'\nb: [\"{word}\"]\nc: plain\n", fast=True)
    assert data["a"] == word and data["b"] == [word]


def test_true_false_null_agree_on_both_and_stay_fast(tmp_path: Path) -> None:
    data = _reads_as_pyyaml(tmp_path, "a: true\nb: false\nc: null\nd:\ne: [x, ]\n", fast=True)
    assert data == {"a": True, "b": False, "c": None, "d": None, "e": ["x"]}


@pytest.mark.parametrize("word", ["~", "Null", "NULL"])
def test_yaml11_null_forms(tmp_path: Path, word: str) -> None:
    assert _reads_as_pyyaml(tmp_path, f"a: {word}\n", fast=False) == {"a": None}


@pytest.mark.parametrize(("text", "value"), [("0755", 493), ("-017", -15), ("0x1f", 31),
                                             ("0b101", 5), ("1_000", 1000), ("1:30", 90),
                                             ("+12", 12)])
def test_yaml11_integers_octal_hex_binary_underscore_sexagesimal(tmp_path: Path, text: str,
                                                                 value: int) -> None:
    assert _reads_as_pyyaml(tmp_path, f"a: {text}\n", fast=False) == {"a": value}


def test_quoted_digits_with_a_leading_zero_stay_text_and_fast(tmp_path: Path) -> None:
    # id_digits: "0123" quoted is text; the same digits plain would be the octal 83.
    text = "a: '0123'\nb: \"0456\"\nn: 123\n"
    assert _reads_as_pyyaml(tmp_path, text, fast=True) == {"a": "0123", "b": "0456", "n": 123}
    assert _reads_as_pyyaml(tmp_path, text + "c: 0123\n", fast=False)["c"] == 83


@pytest.mark.parametrize(("text", "value"), [("1e3", "1e3"), ("1.0e3", "1.0e3"),
                                             ("1.5e99999", "1.5e99999"), ("1e-3", "1e-3")])
def test_exponent_without_dot_or_sign_is_text_in_yaml11(tmp_path: Path, text: str,
                                                         value: str) -> None:
    assert _reads_as_pyyaml(tmp_path, f"a: {text}\n", fast=True) == {"a": value}


@pytest.mark.parametrize(("text", "value"), [("1.0e+3", 1000.0), ("0.05", 0.05), ("1.", 1.0),
                                             (".5", 0.5), ("-1.", -1.0), ("1.0E-3", 0.001)])
def test_floats_both_read_alike_fast(tmp_path: Path, text: str, value: float) -> None:
    assert _reads_as_pyyaml(tmp_path, f"a: {text}\n", fast=True) == {"a": value}


@pytest.mark.parametrize("text", ["-.5", "-.5e+3", ".inf", "-.Inf", ".nan", "nan", "inf",
                                  "-inf", ".NaN"])
def test_floats_rapidyaml_rewrites_go_to_pyyaml(tmp_path: Path, text: str) -> None:
    # rapidyaml writes -.5 as -0.5 and nan/inf/.NaN as .nan/.inf: the source decides.
    _reads_as_pyyaml(tmp_path, f"a: {text}\n", fast=False)


def test_dates_and_timestamps_stay_text_on_both_paths(tmp_path: Path) -> None:
    text = "d: 2019-03-04\nt: 2001-12-14t21:59:43.10-05:00\n"
    assert _reads_as_pyyaml(tmp_path, text, fast=True) == {
        "d": "2019-03-04", "t": "2001-12-14t21:59:43.10-05:00"}
    anchored = _reads_as_pyyaml(tmp_path, "x: &d 2019-03-04\ny: *d\n", fast=True)
    assert anchored == {"x": "2019-03-04", "y": "2019-03-04"}


@pytest.mark.parametrize("text", ["a: 1\nb: 2\na: 3\n", "m:\n  - {p: 1, q: 2, p: 3}\n"])
def test_duplicate_keys_are_refused_with_pyyaml_message(tmp_path: Path, text: str) -> None:
    with pytest.raises(LoadError) as info:
        _load(tmp_path, text)
    assert info.value.problems[0].rule == "MG007"
    assert "appears twice" in info.value.problems[0].message


def test_tabs_inside_values_go_to_pyyaml(tmp_path: Path) -> None:
    assert _reads_as_pyyaml(tmp_path, "a: 'x\ty'\n", fast=False) == {"a": "x\ty"}


def test_tab_indentation_still_mg005(tmp_path: Path) -> None:
    with pytest.raises(LoadError) as info:
        _load(tmp_path, "a:\n\tb: 1\n")
    assert info.value.problems[0].rule == "MG005"


@pytest.mark.parametrize("text", [
    "x: &a [1, 2]\ny: *a\n",                                 # a flow list, as docs suggest
    "x-fw: &fw\n  - a@b.gov.vn\n  - c@d.gov.vn\ny: *fw\n",    # a block list
    "x: &m\n  k: v\n  n: 2\ny: [*m]\n",                        # a block mapping
    "l:\n  - &r {a: 1}\n  - *r\n  - &s\n    b: 2\n  - *s\n",    # sequence items
    "x: &a 'q'\ny: {k: *a}\nz: &b plain text # c\nw: *b # c\n",  # scalars, comments after
    "x: &d 2019-03-04\ny: *d\n",                              # a date stays text
    "x:\n  - &a v\n  - *a\n",
])
def test_anchors_and_aliases_where_values_start_are_read_fast(tmp_path: Path,
                                                              text: str) -> None:
    _reads_as_pyyaml(tmp_path, text, fast=True)


@pytest.mark.parametrize("text", [
    "d: &d {x: 1, y: 2}\ne: {<<: *d, y: 3}\n",  # a merge key
    "x: &s text\ny: [*s, *s]\n",               # after ',': a flow mapping's key there
    "x: &a v\ny: {*a: 1}\n",                   # an alias as a key
    "l:\n  - &k key: v\n  - *k\n",              # an anchor on a key
    "&a x: 1\ny: *a\n",                         # at a line start: a key's anchor
    "x: &a\ny: *a\n",                          # an anchor on an empty value
    "x: &a yes\ny: *a\n",                      # a YAML 1.1 boolean behind an anchor
    "x: &a !!str 1\ny: *a\n",                  # a tag behind an anchor
    "x: &a |\n  text\ny: *a\n",                # a block scalar
    "x: &a [1, &b [2]]\ny: *b\n",              # an anchor after ','
    "x: &a-1_b v\ny: *a-1_b\n",                 # libyaml's name characters: read fast …
], ids=["merge", "after comma", "alias key", "key anchor", "line start", "empty", "yes",
        "tag", "block scalar", "nested after comma", "name characters"])
def test_other_anchor_forms_go_to_pyyaml(tmp_path: Path, text: str) -> None:
    _reads_as_pyyaml(tmp_path, text, fast=text.startswith("x: &a-1_b"))


@pytest.mark.parametrize(("text", "problem"), [
    ("a: *nope\n", "found undefined alias"),
    ("a: *x\nb: &x 1\n", "found undefined alias"),
    ("a: &x 1\nb: &x 2\n", "found duplicate anchor"),
    ("x: &a.b v\ny: *a.b\n", "did not find expected"),
])
def test_anchor_mistakes_keep_pyyamls_located_error(tmp_path: Path, text: str,
                                                    problem: str) -> None:
    with pytest.raises(LoadError) as info:
        _load(tmp_path, text)
    found = info.value.problems[0]
    assert found.rule == "MG006" and problem in found.message and found.line > 0


def test_expansion_counted_from_the_text_from_above(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # The fast path expands aliases only when a count from the text shows the expansion
    # bounded; else the precise path counts exactly, and refuses (MG011) or reads it.
    from mailgov import loader

    monkeypatch.setattr(fastload, "MAX_ALIAS_VALUES", 60)
    monkeypatch.setattr(loader, "MAX_ALIAS_VALUES", 60)
    ten = "x-a: &a [" + ", ".join(["v"] * 10) + "]\n"
    # the list and its 10 values: 11 for the precise path, counted 20 from above (2 per
    # ',', 1 per '[', plus one): 3 aliases are 60 <= 60
    _reads_as_pyyaml(tmp_path, ten + "b: [*a]\nc: [*a]\nd: [*a]\n", fast=True)
    # 4 aliases: 80 counted, 44 exactly: the precise path reads it
    _reads_as_pyyaml(tmp_path, ten + "".join(f"b{i}: [*a]\n" for i in range(4)), fast=False)
    # 6 aliases are 66 > 60: the precise path refuses it, located
    with pytest.raises(LoadError) as info:
        _load(tmp_path, ten + "".join(f"b{i}: [*a]\n" for i in range(6)))
    assert info.value.problems[0].rule == "MG011"
    # nested: an anchor holding aliases counts what they add
    # (*b counts b's 2 '-' and 3 line breaks + 1 and the 40 its aliases add: 46; 86 in all)
    monkeypatch.setattr(fastload, "MAX_ALIAS_VALUES", 90)
    nested = ten + "x-b: &b\n  - *a\n  - *a\nc: [*b]\n"
    assert not fastload._not_fast(nested, [])
    assert fastload._not_fast(nested + "d: [*a]\n", [])  # 106 counted
    # a loop: an alias inside the node it names
    with pytest.raises(LoadError) as info:
        _load(tmp_path, "x: &a\n  - 1\n  - *a\n")
    assert info.value.problems[0].rule == "MG010"


def test_containers_are_counted_as_the_precise_path_counts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The precise path counts every container, key and implicit null: [[[[v]]]] is 5
    # values. It was counted 1 from the text (no ',', ':' or line break), so 10 aliases
    # (50 values) passed a limit of 40 on the fast path, and a deep anchor times many
    # aliases expanded there to up to 64 times the limit.
    from mailgov import loader

    monkeypatch.setattr(fastload, "MAX_ALIAS_VALUES", 40)
    monkeypatch.setattr(loader, "MAX_ALIAS_VALUES", 40)
    text = "x-a: &a [[[[v]]]]\n" + "".join(f"b{i}: *a\n" for i in range(10))
    assert fastload._not_fast(text, [])
    with pytest.raises(LoadError) as info:
        _load(tmp_path, text)
    assert info.value.problems[0].rule == "MG011"


def _random_flow(rng: random.Random, depth: int) -> str:
    r = rng.random()
    if depth > 4 or r < 0.4:
        return rng.choice(["v", "'q'", "a-b", "1", "x y"])
    if r < 0.7:
        items = [_random_flow(rng, depth + 1) for _ in range(rng.randint(0, 4))]
        if items and rng.random() < 0.2:  # one-pair mappings
            items = [f"k{i}: {x}" for i, x in enumerate(items)]
        return "[" + ", ".join(items) + "]"
    keys = [f"k{i}" for i in range(rng.randint(0, 4))]  # some with an implicit null
    return "{" + ", ".join(k if rng.random() < 0.3 else f"{k}: {_random_flow(rng, depth + 1)}"
                           for k in keys) + "}"


def _random_block(rng: random.Random, depth: int, indent: int) -> str | None:
    r = rng.random()
    if depth > 3 or r < 0.3:
        return None
    sp = " " * indent
    lines = []
    for i in range(rng.randint(1, 3)):
        sub = _random_block(rng, depth + 1, indent + 2)
        if r < 0.65:  # a block sequence: flow items, nested blocks, compact ones
            if sub is None:
                lines.append(f"{sp}- {_random_flow(rng, depth + 1)}")
            elif rng.random() < 0.5:
                lines.append(f"{sp}- " + sub.lstrip(" "))
            else:
                lines.append(f"{sp}-\n{sub}")
        elif rng.random() < 0.15:  # a block mapping, some values empty
            lines.append(f"{sp}k{i}:")
        else:
            value = f" {_random_flow(rng, depth + 1)}" if sub is None else f"\n{sub}"
            lines.append(f"{sp}k{i}:{value}")
    return "\n".join(lines)


def test_count_from_above_is_never_below_the_precise_count(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Random nodes in block and flow forms: the text's count is at least the precise
    path's (loader._limits, whose message says how much one alias adds)."""
    from mailgov import loader

    rng = random.Random(11)
    checked = 0
    for _ in range(1000):
        block = _random_block(rng, 0, 2)
        text = (f"x: &a {_random_flow(rng, 0)}\n" if block is None or rng.random() < 0.4
                else f"x: &a\n{block}\n") + "y: *a\n"
        try:
            yaml.safe_load(text)
        except yaml.YAMLError:
            continue
        monkeypatch.setattr(loader, "MAX_ALIAS_VALUES", 0)
        message = loader._limits(text.encode(), "m.yaml")[0].message
        exact = int(message.split(" adds ")[1].split(")")[0].replace(",", ""))
        monkeypatch.setattr(fastload, "MAX_ALIAS_VALUES", 10**9)
        if fastload._not_fast(text, []):
            continue  # not a form the fast path reads
        monkeypatch.setattr(fastload, "MAX_ALIAS_VALUES", exact - 1)
        assert fastload._not_fast(text, []), f"{exact} values counted less:\n{text}"
        checked += 1
    assert checked > 300


@pytest.mark.parametrize("text", [
    "x:\n  - &a\n    - 1\n    - *a\n",          # a block list as a sequence item
    "- &a\n  - 1\n  - *a\n",                  # … at the top level
    "x:\n  - &a\n    k: *a\n",                # a block mapping as a sequence item
    "x:\n  - k: &a\n    - 1\n    - *a\n",      # a list at its key's indentation
])
def test_loop_through_an_anchored_sequence_item_is_mg010(tmp_path: Path, text: str) -> None:
    # The node anchored after '- ' ends at the first line indented no deeper than that
    # line's own spaces, not its '- ': counted shorter, the alias inside it was missed, and
    # rapidyaml's resolve() crashed the process on the loop (SIGSEGV).
    assert fastload._not_fast(text, [])
    with pytest.raises(LoadError) as info:
        _load(tmp_path, text)
    assert info.value.problems[0].rule == "MG010"


@pytest.mark.parametrize("text", [
    "l:\n  - x: &a\n      - [1,\n  [*a]]\n",        # a flow list going on below the node
    "l:\n  - x: &a\n      - 'q\n  w'\n      - *a\n",  # a quoted scalar going on below
])
def test_a_quoted_or_flow_node_going_on_below_an_anchored_block_is_not_read_fast(
        tmp_path: Path, text: str) -> None:
    # The anchored node is counted to its last line indented deeper than its own: a quoted
    # scalar or flow collection begun in it and going on below would hide an alias from the
    # loop check (rapidyaml refuses these two today; its resolve() would not survive the
    # loop: the text decides, not the parser's refusal).
    assert fastload._not_fast(text, [])
    with pytest.raises(LoadError) as info:
        _load(tmp_path, text)
    assert info.value.problems[0].rule == "MG010"


def test_bomb_of_anchored_sequence_items_is_counted(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # The anchored item is a list of 10 values (11 exactly, 22 counted from above); its
    # node was counted 2 (one line), so 7 aliases (77 values) passed a limit of 70 on the
    # fast path: the precise path refuses them (MG011).
    from mailgov import loader

    monkeypatch.setattr(fastload, "MAX_ALIAS_VALUES", 70)
    monkeypatch.setattr(loader, "MAX_ALIAS_VALUES", 70)
    ten = "x-a:\n  - &a\n" + "".join(f"    - v{i}\n" for i in range(10))
    assert fastload._not_fast(ten + "".join(f"b{i}: [*a]\n" for i in range(7)), [])
    with pytest.raises(LoadError) as info:
        _load(tmp_path, ten + "".join(f"b{i}: [*a]\n" for i in range(7)))
    assert info.value.problems[0].rule == "MG011"
    _reads_as_pyyaml(tmp_path, ten + "".join(f"b{i}: [*a]\n" for i in range(3)), fast=True)


def test_differential_fuzz_of_anchor_forms() -> None:
    """Random documents of anchors and aliases in every place a value can stand: the fast
    path returns PyYAML's data, or nothing."""
    rng = random.Random(7)
    values = ["v", "'q'", "1", "yes", "[1, 2]", "{k: v}", "", "x y", "0755", "~", "2019-03-04"]
    read = 0
    for _ in range(3000):
        names: list[str] = []
        lines = []
        for i in range(rng.randint(1, 6)):
            form = rng.random()
            if names and form < 0.35:
                ref = "*" + rng.choice([*names, "zz"])
            else:
                name = rng.choice(["a", "b", "c", "a-1", "a.b"])
                names.append(name)
                ref = f"&{name} {rng.choice(values)}"
            place = rng.choice(["k{i}: {r}", "k{i}:\n  - {r}", "k{i}: [{r}]", "k{i}: {{j: {r}}}",
                                "k{i}: [x, {r}]", "k{i}: {r} # c", "k{i}:\n  {r}: 1",
                                "k{i}: {r}\n  - w", "k{i}: {r}\n  j: 2"])
            lines.append(place.format(i=i, r=ref))
        text = "\n".join(lines) + "\n"
        read += _fast_reads_as_pyyaml(text)
    assert read > 200


@pytest.mark.parametrize("text", ["a: !!str 12\n", "a: !!int '12'\n", "a: ! x\n",
                                  "a: !custom x\n"])
def test_tags_are_never_read_by_the_fast_path(tmp_path: Path, text: str) -> None:
    # rapidyaml would emit !!str 12 as the number 12; PyYAML's safe constructor decides.
    try:
        loaded = _load(tmp_path, text)
    except LoadError as exc:
        assert exc.problems[0].rule == "MG006"  # an unknown tag
        return
    assert loaded.precise
    assert _same(loaded.data, yaml.load(text, Loader=StrictLoader))


@pytest.mark.parametrize("text", ["a: !!python/object/apply:os.system ['true']\n",
                                  "a: !!python/name:os.system\n", "a: !!binary aGVsbG8=\n"])
def test_tags_never_build_python_objects(tmp_path: Path, text: str) -> None:
    try:
        loaded = _load(tmp_path, text)
    except LoadError as exc:
        assert exc.problems[0].rule == "MG006"
        return
    assert isinstance(loaded.data["a"], bytes)  # !!binary: the safe constructor's bytes


@pytest.mark.parametrize("text", ["a: }\n", "a: ]\n", "a: @x\n", "a: `x\n", "a: 1\n---\nb: 2\n",
                                  "a: {b:, c: 1}\n", "a: [x, :y]\n", "a: {x: 1, y\n  z: 2}\n"])
def test_what_rapidyaml_accepts_and_libyaml_refuses_is_mg006(tmp_path: Path, text: str) -> None:
    with pytest.raises(LoadError) as info:
        _load(tmp_path, text)
    assert info.value.problems[0].rule == "MG006"


@pytest.mark.parametrize("text", ["a: [x, ?y]\n", "a: :1\n", "a: [x, {b: 1}\n  , c]\n",
                                  "a: 1\n...\n", "a: -.5\n"])
def test_odd_but_valid_forms_go_to_pyyaml(tmp_path: Path, text: str) -> None:
    _reads_as_pyyaml(tmp_path, text, fast=False)


def test_rapidyaml_stays_quiet_on_stderr(tmp_path: Path, capfd: pytest.CaptureFixture[str]
                                         ) -> None:
    with pytest.raises(LoadError):
        _load(tmp_path, "a: [1, 2\nb: 3\n")
    assert capfd.readouterr().err == ""


def test_corpus_reads_alike_on_both_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every loadable corpus file: the same data with and without the rapidyaml wheel."""
    paths = [p for p in sorted(DATA.glob("*/*.yaml")) if p.is_file()]
    fast_count = 0
    for p in paths:
        try:
            fast = load(p)
        except LoadError as exc:
            monkeypatch.setattr(fastload, "_ryml", None)
            with pytest.raises(LoadError) as info:
                load(p)
            monkeypatch.undo()
            assert info.value.problems == exc.problems
            continue
        fast_count += not fast.precise
        monkeypatch.setattr(fastload, "_ryml", None)
        slow = load(p)
        monkeypatch.undo()
        assert slow.precise and _same(fast.data, slow.data), p.name
    assert fast_count > 40  # the corpus really exercises the fast path


_TOKENS = [":", " ", "\n", "- ", "'", '"', "[", "]", "{", "}", ",", "#", "?", "yes", "on",
           "0755", "0x1f", "1_0", "~", "Null", "1e3", "1.0e+3", "+1", ".inf", "True", "\n  ",
           "@", "`", "|", ">", "&a", "*a", "!!str", "<<", "%", "---", "''", "'0123'", "0123",
           "1:30", "=", "null", "1.", ".5", "-.5", "nan", "é", "\\", "\t", "\r"]


def test_differential_fuzz_fast_equals_pyyaml_or_hands_over() -> None:
    """Random edits of corpus files: the fast path returns PyYAML's data or nothing."""
    seeds = [p.read_bytes().decode("utf-8", "replace") for p in sorted(DATA.glob("*/*.yaml"))
             if p.is_file()]
    rng = random.Random(13)
    checked = 0
    for _ in range(1500):
        s = rng.choice(seeds)
        lines = s.split("\n")
        i = rng.randrange(len(lines))
        s = "\n".join(lines[max(0, i - 10):i + 10])
        for _ in range(rng.randint(1, 3)):
            p = rng.randrange(len(s) + 1)
            if rng.random() < 0.6:
                s = s[:p] + rng.choice(_TOKENS) + s[p:]
            else:
                s = s[:p] + s[p + rng.randint(1, 4):]
        checked += _fast_reads_as_pyyaml(s)
    assert checked > 100


@pytest.mark.parametrize(("text", "deep_ok"), [
    ("a: " + "[" * 64 + "]" * 64 + "\n", True), ("a: " + "[" * 65 + "]" * 65 + "\n", False),
    ("a: " + "{b: " * 63 + "1" + "}" * 63 + "\n", True),
    ("a: " + "{b: " * 64 + "1" + "}" * 64 + "\n", False)])
def test_depth_limit_is_the_same_on_both_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               text: str, deep_ok: bool) -> None:
    """rapidyaml emits at most 64 levels; the precise path refuses past the same depth
    (MG010), so a file never passes on one path and fails on the other."""
    for forced in (False, True):
        if forced:
            monkeypatch.setattr(fastload, "_ryml", None)
        if deep_ok:
            assert _load(tmp_path, text).precise is forced
        else:
            with pytest.raises(LoadError) as info:
                _load(tmp_path, text)
            assert info.value.problems[0].rule == "MG010"


def test_integer_limit_is_the_same_on_both_paths(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    ok, long = "a: -" + "9" * 100 + "\n", "a: -" + "9" * 101 + "\n"
    for forced in (False, True):
        if forced:
            monkeypatch.setattr(fastload, "_ryml", None)
        assert _load(tmp_path, ok).precise is forced
        with pytest.raises(LoadError) as info:
            _load(tmp_path, long)
        assert info.value.problems[0].rule == "MG011"


def _paths(data: Any, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every path into ``data``, and one missing key or index below each container."""
    out = [path]
    if isinstance(data, dict):
        out.append((*path, "no-such-key"))
        for k, v in data.items():
            out += _paths(v, (*path, k))
    elif isinstance(data, list):
        out.append((*path, len(data) + 3))
        for i, v in enumerate(data):
            out += _paths(v, (*path, i))
    return out


def test_rapidyaml_locator_answers_as_pyyamls(tmp_path: Path) -> None:
    """Every path of every loadable corpus file and of a generated directory: the same
    (line, column) from rapidyaml's tree as from PyYAML's, or no answer (then PyYAML's)."""
    from mailgov.loader import Locator as PyYAMLLocator
    from tools.generate import write

    write(300, 5, tmp_path / "gen.yaml")
    files = [p for p in sorted(DATA.glob("*/*.yaml")) if p.is_file()] + [tmp_path / "gen.yaml"]
    answered = 0
    for p in files:
        try:
            loaded = load(p)
        except LoadError:
            continue
        if loaded.precise:
            continue
        fast, slow = fastload.Locator(loaded.source), PyYAMLLocator(loaded.source)
        for path in _paths(loaded.data):
            got = fast.locate(path)
            if got is not None:
                answered += 1
                assert got == slow.locate(path), (p.name, path)
    assert answered > 10_000


@pytest.mark.parametrize("tail", ["  - ", "  -", "  - \n", "  -\n\n", "  - # no item\n",
                                  "  - ~\n", "  - []\n", "  - x\n  - \n"])
@pytest.mark.parametrize("where", ["mailboxes", "units", "aliases"])
def test_an_empty_item_at_the_end_is_located_on_both_paths(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str, tail: str) -> None:
    # rapidyaml's tree has no text (None, not an empty view) for an empty last item: its
    # locator raised TypeError, a traceback instead of "must be a mapping" at the item.
    from mailgov.validate import validate

    text = (DATA / "good" / "minimal.yaml").read_text(encoding="utf-8")
    if where == "units":
        text = text.replace("mailboxes:\n", tail.rstrip("\n") + "\nmailboxes:\n", 1)
    elif where == "aliases":
        text = text.rstrip("\n") + "\n    aliases:\n  " + tail.replace("\n", "\n  ")
    else:
        text = text.rstrip("\n") + "\n" + tail
    p = tmp_path / "m.yaml"
    p.write_text(text, encoding="utf-8")
    got = []
    for fast in (True, False):
        if not fast:
            monkeypatch.setattr(fastload, "_ryml", None)
        problems = validate(p).problems
        assert problems and all(q.line > 0 and q.col > 0 for q in problems), problems
        got.append([q.format() for q in problems])
    assert got[0] == got[1]


def test_locating_every_item_of_a_long_list_is_linear() -> None:
    # rapidyaml's child(node, i) walks i siblings inside C: 200,000 broken records, each
    # located, took minutes. The Locator walks each list once (first_child, next_sibling)
    # and never asks child(node, i). Counted, not timed (timings in a test are noise).
    from mailgov.loader import Locator as PyYAMLLocator

    class Counting:
        def __init__(self, tree: Any) -> None:
            self.tree, self.calls = tree, {"child": 0, "next_sibling": 0}

        def __getattr__(self, name: str) -> Any:
            real = getattr(self.tree, name)
            if name not in self.calls:
                return real

            def counted(*args: Any) -> Any:
                self.calls[name] += 1
                return real(*args)
            return counted

    n = 5_000
    raw = ("mailboxes:\n" + "".join(f"  - {{id: {i}}}\n" for i in range(n))).encode()
    loc = fastload.Locator(raw)
    counting = Counting(loc._tree)
    loc._tree = counting
    where = [loc.locate(("mailboxes", i, "id")) for i in range(n)]
    assert counting.calls["child"] == 0, counting.calls
    assert counting.calls["next_sibling"] <= n + 10, counting.calls  # one walk, not n
    slow = PyYAMLLocator(raw)
    assert [where[i] for i in (0, n // 2, n - 1)] == [
        slow.locate(("mailboxes", i, "id")) for i in (0, n // 2, n - 1)]


def test_the_next_free_id_hint_is_computed_once(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # Every record without an id gets the hint; it scanned all records each time.
    from mailgov import validate as validate_module

    calls = []
    real = validate_module.next_free_id
    monkeypatch.setattr(validate_module, "next_free_id",
                        lambda data: calls.append(1) or real(data))
    text = (DATA / "good" / "minimal.yaml").read_text(encoding="utf-8").rstrip("\n") + "\n"
    text += "".join(f"  - {{kind: personal, address: x{i}}}\n" for i in range(50))
    p = tmp_path / "m.yaml"
    p.write_text(text, encoding="utf-8")
    problems = validate_module.validate(p).problems
    assert sum("the next free id is 7" in q.message for q in problems) == 50
    assert len(calls) == 1


def test_many_quoted_look_alikes_stay_fast_and_one_plain_is_caught(tmp_path: Path) -> None:
    """Hundreds of quoted id_digits like '0123' (a real 200,000-mailbox file has them) are
    checked in one pass; a single plain 0777 among them still sends the file to PyYAML."""
    items = "".join(f"  - '0{i:03d}'\n" for i in range(800))
    assert _reads_as_pyyaml(tmp_path, "a:\n" + items, fast=True)["a"][7] == "0007"
    data = _reads_as_pyyaml(tmp_path, "a:\n" + items + "b: 0777\n", fast=False)
    assert data["b"] == 511


def test_json_longer_than_twice_the_yaml_is_emitted_again_at_its_size(tmp_path: Path) -> None:
    """rapidyaml writes its JSON into a buffer of twice the file's size; a block list of
    one-letter items grows more than that (each `- a` line becomes `    "a",`): the second
    emit at the size rapidyaml asks for gives PyYAML's data, on the fast path."""
    text = "x-l:\n" + "- a\n" * 20_000 + "k: v\n"
    assert len(fastload._emit_json(text.encode())) > 2 * len(text) + 4096
    data = _reads_as_pyyaml(tmp_path, text, fast=True)
    assert data["x-l"] == ["a"] * 20_000


def test_flow_nesting_is_bounded_without_a_scan_of_its_own(tmp_path: Path) -> None:
    """The depth is counted while each flow collection is stepped over: 65 levels anywhere
    in a file (not only at its start) send it to the precise path, which refuses it."""
    deep = "[" * 65 + "]" * 65
    for text in (f"a: 1\nb: {deep}\n", f"a:\n  - x\n  - {deep}\n", f"a: {{b: [{deep}]}}\n"):
        assert fastload._not_fast(text), text
        with pytest.raises(LoadError) as info:
            _load(tmp_path, text)
        assert info.value.problems[0].rule == "MG010"


def test_json_scan_finds_exactly_the_special_forms() -> None:
    """The JSON scan uses possessive forms of PyYAML's resolver patterns and a lookahead;
    on random look-alike texts (keys and values) it finds what the plain patterns find."""
    import re

    plain = re.compile(f'"((?:{fastload._SPECIAL}))"(\\s*:)?'.encode())
    rng = random.Random(13)
    alphabet = "0123456789_-+.:eExXbBoO~<=yesnotruflaNYT \"/Đ"
    words = ["yes", "No", "~", "", "0755", "0x1F", "0b101", "1_000", "1:30", "1:30.5", "-.5",
             ".inf", "-.Inf", ".NaN", "1.0e+3", "1e3", "<<", "=", "2016-10-03", "285/QĐ-VP",
             "null", "NULL", "+12", "-0", "0.", "._1", "190:20:30.15",
             *fastload._BOOL.split("|"), *fastload._NULL.split("|"), "Nul", "nulll", "Onn"]
    pieces = ["1", "0", "7", "9", "_", ":3", ":59", ":7", ".", ".5", "e+3", "e3", "0x", "0b",
              "-", "+", "f", "inf", "a"]
    texts = words + ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
                     for _ in range(10_000)] + [
        "".join(rng.choice(pieces) for _ in range(rng.randint(1, 6))) for _ in range(10_000)]
    js = "".join(f'"{t}": "{t}",\n' for t in texts if '"' not in t).encode()
    found = [m.groups() for m in fastload._JSON_SPECIAL.finditer(js)]
    assert found == [m.groups() for m in plain.finditer(js)]
    assert len(found) > 100


def test_colon_pre_scan_never_hides_a_colon_form() -> None:
    """_not_fast asks the three colon patterns only where one literal-led scan finds a colon
    they could match at: on random texts of the characters they look at, the answer is
    theirs, and the scan finds a colon wherever one of them matches."""
    rng = random.Random(7)
    alphabet = "\n ,[{?-:]}ab"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 10)))
             for _ in range(30_000)]
    texts += ["a:\n  b: c, d\n", "k: [a, b]\n", "x :y\n", "- :\n", "a: b :c\n", "a:  :\n"]
    hits = 0
    for text in texts:
        theirs = any(c.search(text) for c in fastload._COLON)
        hits += theirs
        assert fastload._odd_colon(text) == theirs, repr(text)
        assert not theirs or fastload._COLON_ANY.search(text), repr(text)
    assert 1_000 < hits < len(texts) - 1_000  # both answers are common in the sample


MINIMAL = (DATA / "good" / "minimal.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize(("old", "new"), [
    # a problem inside an anchored list, reached through an alias
    ("units:\n", "x-fw: &fw [tuan@gmail.com]\nunits:\n"),
    # a whole record anchored, then repeated through an alias (the address twice)
    ("  - address: ptminh\n", "  - &r {address: ptminh2, id: 90, name: Phạm Thị Minh, "
     "unit: vpb, naming_exemption: {reason: r, request: 1/QĐ}}\n  - *r\n"
     "  - address: ptminh\n"),
    # the wrong type behind an alias, and a block record anchored
    ("units:\n", "x-s: &s text\nunits:\n"),
], ids=["in anchored list", "aliased record", "aliased scalar"])
def test_problems_through_anchors_are_located_as_the_precise_path_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, old: str, new: str) -> None:
    from mailgov.validate import validate

    text = MINIMAL.replace(old, new, 1)
    if "x-fw" in text:
        text = text.replace("forward_to: [tuan@mard.gov.vn]", "forward_to: *fw")
    if "x-s" in text:
        text = text.replace("forward_to: [tuan@mard.gov.vn]", "forward_to: *s")
    p = tmp_path / "m.yaml"
    p.write_text(text, encoding="utf-8")
    assert not load(p).precise
    fast = [x.format() for x in validate(p).problems]
    monkeypatch.setattr(fastload, "_ryml", None)
    assert load(p).precise
    assert fast == [x.format() for x in validate(p).problems] != []
