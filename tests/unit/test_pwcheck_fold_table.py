"""The fold table the server's password check module is built with (packaging/slapd-pwcheck)
must fold exactly like mailgov.naming.transliterate, one code point at a time."""

from __future__ import annotations

import importlib.util
import random
import re
from pathlib import Path
from types import ModuleType

import pytest

from mailgov.naming import transliterate

GEN = Path(__file__).resolve().parents[2] / "packaging" / "slapd-pwcheck" / "gen_fold_table.py"


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_fold_table", GEN)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def table(gen: ModuleType) -> dict[int, str]:
    return dict(gen.fold_entries())


def fold_like_c(text: str, table: dict[int, str]) -> str:
    """What mailgov_pwcheck.c's fold() does with the table."""
    out = []
    for ch in text:
        cp = ord(ch)
        if cp < 0x80:
            low = ch.lower()
            if low.isascii() and (low.isalpha() or low.isdigit()):
                out.append(low)
        else:
            out.append(table.get(cp, ""))
    return "".join(out)


@pytest.mark.parametrize(
    "text",
    ["Nguyễn Thị Hường", "ĐẶNG VĂN ĐỨC", "Nguyê\u0303n", "Tuấn@2024!", "ﬁle Ⓐ ½ ²", "İstanbul", ""],
)
def test_table_folds_like_transliterate(text: str, table: dict[int, str]) -> None:
    assert fold_like_c(text, table) == transliterate(text)


def test_random_strings_fold_alike(table: dict[int, str]) -> None:
    rng = random.Random(5)
    alphabet = [chr(c) for c in range(0x20, 0x250)] + [chr(c) for c in range(0x1E00, 0x1F00)]
    alphabet += [chr(c) for c in range(0x300, 0x370)] + ["đ", "Đ", "\uff21", "\U0001d400"]
    for _ in range(2000):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20)))
        assert fold_like_c(s, table) == transliterate(s), repr(s)


def test_every_vietnamese_letter_is_in_the_table(table: dict[int, str]) -> None:
    vowels = "àáảãạăằắẳẵặâầấẩẫậèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵđ"
    for ch in vowels + vowels.upper():
        assert table.get(ord(ch)) == transliterate(ch) != "", ch


def test_rendered_header_is_sorted_c(gen: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "fold_table.h"
    assert gen.main(["gen", str(out)]) == 0
    text = out.read_text(encoding="ascii")
    cps = [int(m, 16) for m in re.findall(r"\{0x([0-9A-F]+), \"[a-z0-9]+\"\}", text)]
    assert cps == sorted(cps) and len(cps) == len(set(cps))  # the C side binary-searches it
    size = int(re.search(r"#define FOLD_TABLE_SIZE (\d+)", text).group(1))  # type: ignore[union-attr]
    assert size == len(cps) > 1000


def test_usage_without_argument(gen: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    assert gen.main(["gen"]) == 2
    assert "fold_table.h" in capsys.readouterr().err


# Expected folds written out by hand from the Vietnamese alphabet (every vowel with each of
# the five tone marks, in precomposed form, folds to its bare Latin letter; đ folds to d),
# not computed by the code under test.
INDEPENDENT_PAIRS = [
    ("àáảãạăằắẳẵặâầấẩẫậ", "a" * 17),
    ("ÀÁẢÃẠĂẰẮẲẴẶÂẦẤẨẪẬ", "a" * 17),
    ("èéẻẽẹêềếểễệ", "e" * 11),
    ("ìíỉĩị", "i" * 5),
    ("òóỏõọôồốổỗộơờớởỡợ", "o" * 17),
    ("ùúủũụưừứửữự", "u" * 11),
    ("ỳýỷỹỵ", "y" * 5),
    ("đĐ", "dd"),
    ("Nguyễn Thị Hường", "nguyenthihuong"),
    ("ĐẶNG VĂN ĐỨC", "dangvanduc"),
    ("Phạm Quốc Việt 1975!", "phamquocviet1975"),
    ("Trương Mỹ Lệ", "truongmyle"),
]


@pytest.mark.parametrize(("text", "expected"), INDEPENDENT_PAIRS)
def test_fold_matches_hand_written_pairs(text: str, expected: str,
                                         table: dict[int, str]) -> None:
    assert fold_like_c(text, table) == expected
    assert transliterate(text) == expected
