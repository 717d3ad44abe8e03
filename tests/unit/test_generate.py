"""The synthetic directory generator: determinism, size, uniqueness, format fidelity."""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

import pytest
import yaml

from mailgov.loader import StrictLoader, load
from mailgov.naming import NamingPolicy, Person
from mailgov.validate import validate
from tools import generate as gen

# The generator dates nothing after this day; validation uses it as "today" so the tests do
# not depend on the wall clock.
TODAY = date(2026, 11, 29)


@pytest.fixture(scope="module")
def data_2000() -> dict:
    return gen.generate(2000, seed=11)


@pytest.fixture(scope="module")
def file_2000(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gen") / "g2000.yaml"
    gen.write(2000, 11, path)
    return path


def _all_locals(data: dict) -> list[str]:
    naming = NamingPolicy.from_dict(data["policy"]["naming"])
    units = {u["id"]: u for u in data["units"]}

    def unit_local(u: dict) -> str:
        parent = u.get("parent")
        return naming.unit_local(u["id"], unit_local(units[parent]) if parent else None)

    out = [unit_local(u) for u in data["units"]]
    for m in data["mailboxes"]:
        out.append(m["address"])
        out.extend(a.split("@")[0] for a in m.get("aliases", []))
    return [x.lower() for x in out]


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.yaml", tmp_path / "b.yaml", tmp_path / "c.yaml"
    gen.write(700, 5, a)
    gen.write(700, 5, b)
    gen.write(700, 6, c)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


@pytest.mark.parametrize("count", [1, 2, 3, 7, 151, 1234, 20000])
def test_exact_count_and_no_duplicate_addresses(count: int) -> None:
    data = gen.generate(count, seed=count)
    assert len(data["mailboxes"]) == count
    locals_ = _all_locals(data)
    dupes = [x for x, n in Counter(locals_).items() if n > 1]
    assert dupes == []


def test_units_scale_with_count_and_include_sub_units() -> None:
    small, big = gen.generate(300, 1), gen.generate(6000, 1)
    assert len(big["units"]) > len(small["units"])
    assert abs(len(big["units"]) - 6000 / 150) <= 2
    assert any("parent" in u for u in big["units"])
    assert "cntt" in {u["id"] for u in small["units"]}  # organization.it_unit must exist


def test_text_parses_back_to_the_data(file_2000: Path) -> None:
    data = gen.generate(2000, seed=11)
    assert load(file_2000).data == data


def test_policy_text_is_the_policy() -> None:
    parsed = yaml.load(gen.POLICY_YAML, Loader=StrictLoader)
    assert parsed == {"policy": gen.POLICY}


@pytest.mark.parametrize(
    "value",
    ["yes", "No", "null", "~", "Tên, có dấu phẩy", "a: b", "# not a comment", " lead",
     "trail ", "0123", "2019-03-04", "12/QĐ-VPB", "- dash", "x  y", 'quote "q"', "{x}",
     "Hội Trắc địa - Bản đồ - Viễn thám Việt Nam", "dc=monre,dc=gov,dc=vn", "1.5", "ĐỖ"],
)
def test_scalars_round_trip_in_block_and_flow_context(value: str) -> None:
    text = f"a: {gen.scalar(value, flow=False)}\nb: [{gen.scalar(value)}]\n"
    text += f"c: {{ k: {gen.scalar(value)} }}\n"
    assert yaml.load(text, Loader=StrictLoader) == {"a": value, "b": [value], "c": {"k": value}}


def test_addresses_follow_the_naming_policy_with_clashes(data_2000: dict) -> None:
    naming = NamingPolicy.from_dict(data_2000["policy"]["naming"])
    unit_by_id = {u["id"]: u for u in data_2000["units"]}
    numbered = 0
    for m in data_2000["mailboxes"]:
        if "naming_exemption" in m:
            continue
        unit = unit_by_id[m["unit"]]
        parent = unit.get("parent")
        person = Person(m["name"], unit=naming.unit_local(unit["id"], parent))
        assert naming.conforms(person, m["address"]), m
        numbered += m["address"][-1].isdigit()
    # 2,000 Vietnamese names always clash somewhere (Nguyễn is ~38 % of surnames).
    assert numbered >= 10


def test_mostly_active_some_suspended_cancelled_aliases(data_2000: dict) -> None:
    mbs = data_2000["mailboxes"]
    states = Counter(m.get("state", "active") for m in mbs)
    assert states["active"] > 0.85 * len(mbs)
    assert states["suspended"] > 0 and states["cancelled"] > 0
    assert any("aliases" in m for m in mbs)
    for m in mbs:
        state = m.get("state", "active")
        assert ("suspended" in m) == (state == "suspended")
        assert ("cancelled" in m) == (state == "cancelled")
        for key in ("created",):
            assert date.fromisoformat(m[key]) <= TODAY


def test_names_are_vietnamese_with_two_to_five_syllables(data_2000: dict) -> None:
    people = [m for m in data_2000["mailboxes"] if "naming_exemption" not in m]
    lengths = Counter(len(m["name"].split()) for m in people)
    assert set(lengths) <= {2, 3, 4, 5}
    assert lengths[3] > lengths[4] > 0 and lengths[2] > 0
    surnames = Counter(m["name"].split()[0] for m in people)
    assert surnames.most_common(1)[0][0] == "Nguyễn"


def test_generated_file_validates_with_zero_problems(file_2000: Path) -> None:
    result = validate(file_2000, today=TODAY)
    assert [p.format() for p in result.problems] == []


def test_cli_writes_file_and_rejects_bad_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli.yaml"
    assert gen.main(["--count", "40", "--seed", "3", "-o", str(out)]) == 0
    assert len(load(out).data["mailboxes"]) == 40
    with pytest.raises(SystemExit) as exc:
        gen.main(["--count", "0"])
    assert exc.value.code == 2
    assert "at least 1" in capsys.readouterr().err
    assert gen.main(["--count", "5", "-o", str(tmp_path / "missing" / "x.yaml")]) == 1
    assert "cannot write" in capsys.readouterr().err
