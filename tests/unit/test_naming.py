"""Tests of the naming policy engine (mailgov/naming.py).

Expected addresses are written out by hand from the rules in docs/data-format.md and
REGULATION.md, never computed with the code under test.
"""

from __future__ import annotations

import unicodedata

import pytest

from mailgov.naming import (
    NameParts,
    NamingError,
    NamingPolicy,
    Person,
    split_name,
    transliterate,
    valid_local,
)


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def policy(*templates: str, **clash: object) -> NamingPolicy:
    personal: dict[str, object] = {"templates": list(templates)}
    if clash:
        personal["clash"] = clash
    return NamingPolicy.from_dict({"personal": personal})


MONRE = policy("{initials}{given}")  # natuan
NGHE_AN = policy("{given}{initials}")  # longnv
NINH_BINH = policy("{given}{initials}.{unit}")
BAC_NINH = policy("{given}{initials}{id_digits|last:3}", "{given}{initials}{id_digits|last:4}")
DONG_THAP = NamingPolicy.from_dict(
    {
        "personal": {
            "templates": [
                "{full}",
                "{full}{birth_year}",
                "{surname_initial}{middle}{given}",
                "{initials}{given}",
                "{initials}{given}{birth_month}{birth_year}",
            ]
        },
        "unit": {"template": "{abbr}", "sub_unit_template": "{parent}.{abbr}"},
    }
)

# --------------------------------------------------------------------------- transliterate

# Every Vietnamese vowel with no mark and each of the five tone marks
# (huyền, sắc, hỏi, ngã, nặng), written out by hand, with the letter it must become.
VOWEL_ROWS = [
    ("aàáảãạ", "a"),
    ("ăằắẳẵặ", "a"),
    ("âầấẩẫậ", "a"),
    ("eèéẻẽẹ", "e"),
    ("êềếểễệ", "e"),
    ("iìíỉĩị", "i"),
    ("oòóỏõọ", "o"),
    ("ôồốổỗộ", "o"),
    ("ơờớởỡợ", "o"),
    ("uùúủũụ", "u"),
    ("ưừứửữự", "u"),
    ("yỳýỷỹỵ", "y"),
]
UPPER_VOWEL_ROWS = [
    ("AÀÁẢÃẠ", "a"),
    ("ĂẰẮẲẴẶ", "a"),
    ("ÂẦẤẨẪẬ", "a"),
    ("EÈÉẺẼẸ", "e"),
    ("ÊỀẾỂỄỆ", "e"),
    ("IÌÍỈĨỊ", "i"),
    ("OÒÓỎÕỌ", "o"),
    ("ÔỒỐỔỖỘ", "o"),
    ("ƠỜỚỞỠỢ", "o"),
    ("UÙÚỦŨỤ", "u"),
    ("ƯỪỨỬỮỰ", "u"),
    ("YỲÝỶỸỴ", "y"),
]
VOWEL_CASES = [(ch, base) for row, base in VOWEL_ROWS + UPPER_VOWEL_ROWS for ch in row]


def test_vowel_table_is_complete() -> None:
    # 12 vowels x (no mark + 5 tones) x (lower, upper): guards the table itself.
    assert len(VOWEL_CASES) == 144
    assert len(set(VOWEL_CASES)) == 144


@pytest.mark.parametrize(("letter", "base"), VOWEL_CASES)
def test_transliterate_vowel_nfc(letter: str, base: str) -> None:
    assert transliterate(unicodedata.normalize("NFC", letter)) == base


@pytest.mark.parametrize(("letter", "base"), VOWEL_CASES)
def test_transliterate_vowel_nfd(letter: str, base: str) -> None:
    decomposed = nfd(letter)
    if letter.lower() not in "aeiouy":
        assert len(decomposed) > 1  # really decomposed, else the case tests nothing new
    assert transliterate(decomposed) == base


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("đ", "d"),
        ("Đ", "d"),
        ("Ð", "d"),  # U+00D0 look-alike typed by some keyboards
        ("Đặng Đình Đức", "dangdinhduc"),
        ("Nguyễn", "nguyen"),
        ("NGUYỄN", "nguyen"),
        ("Trương-Mỹ  Lan", "truongmylan"),
        ("O'Neil 2nd", "oneil2nd"),
        ("Hội Môi trường Việt Nam", "hoimoitruongvietnam"),
        ("", ""),
        ("  \t", ""),
        ("李", ""),
    ],
)
def test_transliterate(text: str, expected: str) -> None:
    assert transliterate(text) == expected
    assert transliterate(nfd(text)) == expected


def test_transliterate_nfc_and_nfd_agree_on_a_mixed_string() -> None:
    text = "Bùi Thị Xuân " + nfd("Đoàn Thị Điểm")
    assert transliterate(text) == "buithixuandoanthidiem"


# --------------------------------------------------------------------------- split_name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Tuấn", NameParts("", (), "tuan")),
        ("Tô Hoài", NameParts("to", (), "hoai")),
        ("Nguyễn Văn Long", NameParts("nguyen", ("van",), "long")),
        ("Đỗ Thị Ánh Nguyệt", NameParts("do", ("thi", "anh"), "nguyet")),
        ("Tôn Nữ Thị Ngọc Hân", NameParts("ton", ("nu", "thi", "ngoc"), "han")),
        ("  Nguyễn   Văn\tLong  ", NameParts("nguyen", ("van",), "long")),
        ("Nguyễn\u00a0Văn Long", NameParts("nguyen", ("van",), "long")),  # no-break space
        ("Nguyễn - Văn Long", NameParts("nguyen", ("van",), "long")),  # stray dash dropped
        (nfd("Đặng Văn Đức"), NameParts("dang", ("van",), "duc")),
    ],
)
def test_split_name(name: str, expected: NameParts) -> None:
    assert split_name(name) == expected


@pytest.mark.parametrize("name", ["", "   ", "\t\n", "- -", "李小龍"])
def test_split_name_rejects_names_without_letters(name: str) -> None:
    with pytest.raises(NamingError):
        split_name(name)


# --------------------------------------------------------------------------- many names

# (full name, MONRE "{initials}{given}", Nghệ An "{given}{initials}")
NAMES = [
    ("Nguyễn Anh Tuấn", "natuan", "tuanna"),
    ("Nguyễn Văn Long", "nvlong", "longnv"),
    ("Phạm Minh Hiếu", "pmhieu", "hieupm"),
    ("Lê Thị Hoa", "lthoa", "hoalt"),
    ("Trần Thị Lan", "ttlan", "lantt"),
    ("Phan Thanh Minh", "ptminh", "minhpt"),
    ("Đặng Văn Đức", "dvduc", "ducdv"),
    ("Đỗ Thị Ánh Nguyệt", "dtanguyet", "nguyetdta"),
    ("Vũ Đình Khoa", "vdkhoa", "khoavd"),
    ("Võ Thị Sáu", "vtsau", "sauvt"),
    ("Hoàng Quốc Việt", "hqviet", "viethq"),
    ("Huỳnh Tấn Phát", "htphat", "phatht"),
    ("Bùi Thị Xuân", "btxuan", "xuanbt"),
    ("Dương Văn Minh", "dvminh", "minhdv"),
    ("Ngô Bảo Châu", "nbchau", "chaunb"),
    ("Lý Công Uẩn", "lcuan", "uanlc"),
    ("Trịnh Công Sơn", "tcson", "sontc"),
    ("Hồ Xuân Hương", "hxhuong", "huonghx"),
    ("Lưu Quang Vũ", "lqvu", "vulq"),
    ("Mạc Đĩnh Chi", "mdchi", "chimd"),
    ("Tô Hoài", "thoai", "hoait"),
    ("Hà Anh Tuấn", "hatuan", "tuanha"),
    ("Quách Thị Mỹ Dung", "qtmdung", "dungqtm"),
    ("Châu Ngọc Ưng", "cnung", "ungcn"),
    ("Thái Thị Ơn", "tton", "ontt"),
    ("Kiều Oanh", "koanh", "oanhk"),
    ("Lạc Long Quân", "llquan", "quanll"),
    ("Âu Cơ", "aco", "coa"),
    ("Ông Ích Khiêm", "oikhiem", "khiemoi"),
    ("Ưng Hoàng Phúc", "uhphuc", "phucuh"),
    ("Ân Văn Ẩn", "avan", "anav"),
    ("Nguyễn Thị Ý Nhi", "ntynhi", "nhinty"),
    ("Nguyễn Hoàng Yến", "nhyen", "yennh"),
    ("Lê Ỷ Lan", "lylan", "lanly"),
    ("Đinh Bộ Lĩnh", "dblinh", "linhdb"),
    ("Đoàn Thị Điểm", "dtdiem", "diemdt"),
    ("Tôn Nữ Hồng Nhung", "tnhnhung", "nhungtnh"),
    ("Nguyễn Phúc Vĩnh Thụy", "npvthuy", "thuynpv"),
    ("Tôn Nữ Thị Ngọc Hân", "tntnhan", "hantntn"),
    ("Nguyễn Lê Minh Anh Thư", "nlmathu", "thunlma"),
    ("Phí Yến", "pyen", "yenp"),
    ("Khổng Tú Quỳnh", "ktquynh", "quynhkt"),
    ("Giáp Văn Cường", "gvcuong", "cuonggv"),
    ("Ninh Dương Lan Ngọc", "ndlngoc", "ngocndl"),
    ("Trương Mỹ Lan", "tmlan", "lantm"),
    ("Ôn Như Hầu", "onhau", "hauon"),
    ("Ung Văn Khiêm", "uvkhiem", "khiemuv"),
    ("Yên Thị Ước", "ytuoc", "uocyt"),
    ("Lương Thế Vinh", "ltvinh", "vinhlt"),
    ("Chu Văn An", "cvan", "ancv"),
    ("Tạ Quang Bửu", "tqbuu", "buutq"),
    ("Nghiêm Xuân Yêm", "nxyem", "yemnx"),
    ("Văn Cao", "vcao", "caov"),
    ("Đào Duy Từ", "ddtu", "tudd"),
    ("Tăng Bạt Hổ", "tbho", "hotb"),
    ("Kim Đồng", "kdong", "dongk"),
    ("Lò Văn Giàng", "lvgiang", "gianglv"),
    ("Mai Hắc Đế", "mhde", "demh"),
    ("Triệu Thị Trinh", "tttrinh", "trinhtt"),
    ("Nguyễn Đình Chiểu", "ndchieu", "chieund"),
    ("Vi Thị Ửng", "vtung", "ungvt"),
    ("Lục Vân Tiên", "lvtien", "tienlv"),
    ("Đàm Vĩnh Hưng", "dvhung", "hungdv"),
    ("ĐẶNG THÙY TRÂM", "dttram", "tramdt"),
    ("Tuấn", "tuan", "tuan"),
    ("Bảy", "bay", "bay"),
    ("  Nguyễn   Văn\tLong  ", "nvlong", "longnv"),
]


def test_names_table_has_sixty_distinct_names() -> None:
    assert len({n for n, _, _ in NAMES}) >= 60


@pytest.mark.parametrize(("name", "initials_given", "given_initials"), NAMES)
@pytest.mark.parametrize("form", ["NFC", "NFD"])
def test_initials_given_and_given_initials(
    name: str, initials_given: str, given_initials: str, form: str
) -> None:
    name = unicodedata.normalize(form, name)
    assert MONRE.candidates(Person(name)) == [initials_given]
    assert NGHE_AN.candidates(Person(name)) == [given_initials]
    assert MONRE.propose(Person(name), set()) == initials_given
    assert MONRE.conforms(Person(name), initials_given)
    assert not MONRE.conforms(Person(name), given_initials + "x")


# --------------------------------------------------------------------------- every token

LONG = Person("Nguyễn Văn Long", unit="vpb", birth="1990-02", id_digits="0123")


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        # The table in docs/data-format.md, row by row.
        ("{given}", "long"),
        ("{surname}", "nguyen"),
        ("{middle}", "van"),
        ("{full}", "nguyenvanlong"),
        ("{initials}", "nv"),
        ("{surname_initial}", "n"),
        ("{middle_initials}", "v"),
        ("{given_initial}", "l"),
        ("{unit}", "vpb"),
        ("{birth_year}", "1990"),
        ("{birth_yy}", "90"),
        ("{birth_month}", "02"),
        ("{id_digits}", "0123"),
        # Filters.
        ("{id_digits|last:3}", "123"),
        ("{given|first:1}", "l"),
        ("{full|first:6}", "nguyen"),
        ("{full|last:4}", "long"),
        ("{full|first:6|last:3}", "yen"),
        ("{id_digits|last:9}", "0123"),  # shorter value: all of it
        # Literals between placeholders.
        ("{given}.{surname}", "long.nguyen"),
        ("{given}_{initials}", "long_nv"),
        ("{surname}-{given}", "nguyen-long"),
        ("x{given}9", "xlong9"),
        ("{given}{initials}{birth_yy}", "longnv90"),
        ("{given_initial}{middle_initials}{surname}", "lvnguyen"),
    ],
)
def test_each_token_and_filter(template: str, expected: str) -> None:
    assert policy(template).candidates(LONG) == [expected]


def test_tokens_of_a_name_with_several_middle_names() -> None:
    p = Person("Tôn Nữ Thị Ngọc Hân")
    assert policy("{middle}").candidates(p) == ["nuthingoc"]
    assert policy("{middle_initials}").candidates(p) == ["ntn"]
    assert policy("{initials}").candidates(p) == ["tntn"]
    assert policy("{full}").candidates(p) == ["tonnuthingochan"]


# --------------------------------------------------------------------------- regulation variants


def test_monre_clash_sequence_natuan_natuan2_natuan3() -> None:
    tuan = Person("Nguyễn Anh Tuấn")
    taken: set[str] = set()
    issued = []
    for _ in range(4):
        local = MONRE.propose(tuan, taken)
        taken.add(local)
        issued.append(local)
    assert issued == ["natuan", "natuan2", "natuan3", "natuan4"]


def test_nghe_an_clash_longnv2() -> None:
    assert NGHE_AN.propose(Person("Nguyễn Văn Long"), {"longnv"}) == "longnv2"


def test_propose_takes_first_free_number_not_count() -> None:
    # natuan2 freed (its record purged elsewhere) -> reused before natuan5.
    assert MONRE.propose(Person("Nguyễn Anh Tuấn"), {"natuan", "natuan3", "natuan4"}) == "natuan2"


@pytest.mark.parametrize(
    ("clash", "taken", "expected"),
    [
        ({"start": 1}, {"natuan"}, "natuan1"),
        ({"start": 9}, {"natuan"}, "natuan9"),
        ({"separator": "."}, {"natuan"}, "natuan.2"),
        ({"separator": "-", "start": 1}, {"natuan", "natuan-1"}, "natuan-2"),
        ({"separator": "_"}, {"natuan"}, "natuan_2"),
        ({"strategy": "sequence"}, {"natuan"}, "natuan2"),
        ({"separator": None}, {"natuan"}, "natuan2"),
    ],
)
def test_clash_options(clash: dict[str, object], taken: set[str], expected: str) -> None:
    p = policy("{initials}{given}", **clash)
    assert p.propose(Person("Nguyễn Anh Tuấn"), taken) == expected
    assert p.conforms(Person("Nguyễn Anh Tuấn"), expected)


def test_clash_strategy_none() -> None:
    p = policy("{initials}{given}", "{given}{initials}", strategy="none")
    tuan = Person("Nguyễn Anh Tuấn")
    assert p.propose(tuan, {"natuan"}) == "tuanna"
    with pytest.raises(NamingError, match="clash"):
        p.propose(tuan, {"natuan", "tuanna"})
    assert not p.conforms(tuan, "natuan2")
    assert p.conforms(tuan, "tuanna")


def test_ninh_binh_unit_suffix() -> None:
    assert NINH_BINH.candidates(LONG) == ["longnv.vpb"]
    assert NINH_BINH.propose(LONG, {"longnv.vpb"}) == "longnv.vpb2"
    assert NINH_BINH.conforms(LONG, "longnv.vpb")
    assert not NINH_BINH.conforms(LONG, "longnv")
    # A sub-unit's local part is itself dotted.
    assert NINH_BINH.candidates(Person("Nguyễn Văn Long", unit="vp.tcmt")) == ["longnv.vp.tcmt"]


def test_ninh_binh_without_unit_has_no_candidate() -> None:
    no_unit = Person("Nguyễn Văn Long")
    assert NINH_BINH.candidates(no_unit) == []
    assert not NINH_BINH.conforms(no_unit, "longnv")
    with pytest.raises(NamingError, match="unit"):
        NINH_BINH.propose(no_unit, set())


def test_bac_ninh_id_digits_last3_then_last4() -> None:
    assert BAC_NINH.candidates(LONG) == ["longnv123", "longnv0123"]
    assert BAC_NINH.propose(LONG, set()) == "longnv123"
    assert BAC_NINH.propose(LONG, {"longnv123"}) == "longnv0123"
    # Both taken: numbering continues from the FIRST template.
    assert BAC_NINH.propose(LONG, {"longnv123", "longnv0123"}) == "longnv1232"
    assert BAC_NINH.conforms(LONG, "longnv0123")
    assert not BAC_NINH.conforms(LONG, "longnv01232")


def test_bac_ninh_short_id_digits_gives_one_candidate() -> None:
    # last:3 and last:4 of "123" are the same address: listed once.
    p = Person("Nguyễn Văn Long", id_digits="123")
    assert BAC_NINH.candidates(p) == ["longnv123"]


def test_dong_thap_ordered_fallbacks() -> None:
    hieu = Person("Lê Minh Hiếu", birth="1990-02")
    expected = ["leminhhieu", "leminhhieu1990", "lminhhieu", "lmhieu", "lmhieu021990"]
    assert DONG_THAP.candidates(hieu) == expected
    taken: set[str] = set()
    for local in expected:
        assert DONG_THAP.propose(hieu, taken) == local
        taken.add(local)
    assert DONG_THAP.propose(hieu, taken) == "leminhhieu2"


def test_dong_thap_without_birth_skips_birth_templates() -> None:
    hieu = Person("Lê Minh Hiếu")
    assert DONG_THAP.candidates(hieu) == ["leminhhieu", "lminhhieu", "lmhieu"]
    assert not DONG_THAP.conforms(hieu, "lmhieu021990")
    assert DONG_THAP.tokens_used() >= {"birth_year", "birth_month"}
    assert DONG_THAP.missing_data(hieu) == ["birth"]


def test_template_giving_an_invalid_address_is_skipped() -> None:
    # No middle name: "{given}.{middle}" would end with '.', so the next template is used.
    p = policy("{given}.{middle}", "{given}{initials}")
    assert p.candidates(Person("Tô Hoài")) == ["hoait"]
    assert p.candidates(Person("Nguyễn Văn Long")) == ["long.van", "longnv"]


def test_one_syllable_name_with_initials_template() -> None:
    # No surname: {initials} is empty, the address is the given name alone.
    assert policy("{initials}").candidates(Person("Tuấn")) == []
    assert MONRE.candidates(Person("Tuấn")) == ["tuan"]


@pytest.mark.parametrize(
    ("person", "match"),
    [
        (Person("Nguyễn Văn Long", birth="1990-2"), "YYYY-MM"),
        (Person("Nguyễn Văn Long", birth="1990-13"), "YYYY-MM"),
        (Person("Nguyễn Văn Long", birth="02/1990"), "YYYY-MM"),
        (Person("Nguyễn Văn Long", id_digits="12a3"), "digits"),
        (Person(""), "letters"),
    ],
)
def test_bad_person_data_raises(person: Person, match: str) -> None:
    p = policy("{given}{birth_yy}", "{given}{id_digits}")
    with pytest.raises(NamingError, match=match):
        p.candidates(person)


def test_tokens_used() -> None:
    assert MONRE.tokens_used() == {"initials", "given"}
    assert BAC_NINH.tokens_used() == {"given", "initials", "id_digits"}
    assert NINH_BINH.tokens_used() == {"given", "initials", "unit"}


# --------------------------------------------------------------------------- conforms


@pytest.mark.parametrize(
    ("pol", "person", "local", "ok"),
    [
        (MONRE, Person("Nguyễn Anh Tuấn"), "natuan", True),
        (MONRE, Person("Nguyễn Anh Tuấn"), "natuan2", True),
        (MONRE, Person("Nguyễn Anh Tuấn"), "natuan9", True),
        (MONRE, Person("Nguyễn Anh Tuấn"), "natuan10", True),
        (MONRE, Person("Nguyễn Anh Tuấn"), "natuan1", False),  # below start
        (MONRE, Person("Nguyễn Anh Tuấn"), "natuan0", False),
        (MONRE, Person("Nguyễn Anh Tuấn"), "natuan02", False),  # leading zero
        (MONRE, Person("Nguyễn Anh Tuấn"), "natuan.2", False),  # wrong separator
        (MONRE, Person("Nguyễn Anh Tuấn"), "natuan2a", False),
        (MONRE, Person("Nguyễn Anh Tuấn"), "natuanx", False),
        (MONRE, Person("Nguyễn Anh Tuấn"), "natua", False),
        (MONRE, Person("Nguyễn Anh Tuấn"), "NATUAN", False),
        (MONRE, Person("Nguyễn Anh Tuấn"), "tuanna", False),
        (MONRE, Person("Nguyễn Anh Tuấn"), "natuan²", False),  # a digit, but not ASCII
        (MONRE, Person("Nguyễn Văn Tuấn"), "natuan", False),
        (NGHE_AN, Person("Nguyễn Văn Long"), "longnv", True),
        (NGHE_AN, Person("Nguyễn Văn Long"), "longnv3", True),
        (NGHE_AN, Person("Nguyễn Văn Long"), "nvlong", False),
        (DONG_THAP, Person("Lê Minh Hiếu", birth="1990-02"), "lmhieu021990", True),
        (DONG_THAP, Person("Lê Minh Hiếu", birth="1990-02"), "lminhhieu", True),
        (DONG_THAP, Person("Lê Minh Hiếu", birth="1990-02"), "leminhhieu2", True),
        (DONG_THAP, Person("Lê Minh Hiếu", birth="1990-02"), "lmhieu2", False),  # not first
        (DONG_THAP, Person("Lê Minh Hiếu", birth="1991-02"), "lmhieu021990", False),
        # Any number >= start is a clash number, even one that looks like a year.
        (DONG_THAP, Person("Lê Minh Hiếu", birth="1990-02"), "leminhhieu90", True),
        (DONG_THAP, Person("Lê Minh Hiếu", birth="1990-02"), "lminhhieu2", False),
        (DONG_THAP, Person("Lê Minh Hiếu", birth="1990-02"), "lmhieu1990", False),
    ],
)
def test_conforms(pol: NamingPolicy, person: Person, local: str, ok: bool) -> None:
    assert pol.conforms(person, local) is ok


def test_conforms_with_separator_and_start() -> None:
    p = policy("{initials}{given}", separator=".", start=1)
    tuan = Person("Nguyễn Anh Tuấn")
    assert p.conforms(tuan, "natuan.1")
    assert not p.conforms(tuan, "natuan1")
    assert not p.conforms(tuan, "natuan.0")
    assert not p.conforms(tuan, "natuan.")


# --------------------------------------------------------------------------- unit addresses


@pytest.mark.parametrize(
    ("unit", "abbr", "parent", "expected"),
    [
        ({}, "vpb", None, "vpb"),
        ({}, "vp", "tcmt", "vp.tcmt"),
        ({"sub_unit_template": "{parent}.{abbr}"}, "vp", "tcmt", "tcmt.vp"),
        ({"sub_unit_template": "{abbr}-{parent}"}, "vp", "tcmt", "vp-tcmt"),
        ({"template": "{abbr}", "sub_unit_template": "{abbr}.{parent}"}, "vp", "tcmt", "vp.tcmt"),
        ({"template": "dv.{abbr}"}, "vpb", None, "dv.vpb"),
        ({}, "VPB", None, "vpb"),
        ({}, "p1", "vp.tcmt", "p1.vp.tcmt"),  # third level: parent is itself dotted
    ],
)
def test_unit_local(unit: dict[str, str], abbr: str, parent: str | None, expected: str) -> None:
    p = NamingPolicy.from_dict({"unit": unit})
    assert p.unit_local(abbr, parent) == expected


def test_dong_thap_sub_unit() -> None:
    assert DONG_THAP.unit_local("vp", "tcmt") == "tcmt.vp"
    assert DONG_THAP.unit_local("tcmt", None) == "tcmt"


@pytest.mark.parametrize(("abbr", "parent"), [("", None), ("v p", None), ("vp", ""), ("-vp", None)])
def test_unit_local_rejects_bad_input(abbr: str, parent: str | None) -> None:
    with pytest.raises(NamingError):
        NamingPolicy.from_dict({}).unit_local(abbr, parent)


# --------------------------------------------------------------------------- bad templates


@pytest.mark.parametrize(
    ("template", "column", "match"),
    [
        ("{givn}", 2, "givn"),
        ("{given", 1, "not closed"),
        ("{given{initials}", 1, "not closed"),
        ("given}", 6, "without a matching"),
        ("{initials}}", 11, "without a matching"),
        ("{}", 1, "empty placeholder"),
        ("{given|mid:2}", 8, "unknown filter 'mid'"),
        ("{given|}", 8, "unknown filter"),
        ("{given|last}", 8, "whole number"),
        ("{given|last:0}", 8, "whole number"),
        ("{given|last:x}", 8, "whole number"),
        ("{given|first:1|wat:2}", 16, "unknown filter 'wat'"),
        ("A{given}", 1, "lower case"),
        ("{given} {initials}", 8, "not allowed"),
        ("{given}@{initials}", 8, "not allowed"),
        ("{given}đ", 8, "not allowed"),
        ("{Given}", 2, "Given"),
        ("{abbr}{given}", 2, "cannot be used here"),
        ("{parent}", 2, "cannot be used here"),
        (".{given}", 1, "start"),
        ("-{given}", 1, "start"),
        ("{given}.", 8, "end"),
        ("{given}-", 8, "end"),
        ("{given}..{initials}", 8, "'..'"),
        ("abc", 1, "placeholder"),
    ],
)
def test_bad_template(template: str, column: int, match: str) -> None:
    with pytest.raises(NamingError, match=match) as info:
        policy("{initials}{given}", template)
    err = info.value
    assert err.template == template
    assert err.position is not None and err.position + 1 == column
    assert err.where == "policy.naming.personal.templates[1]"
    assert template in str(err) and f"column {column}" in str(err)


@pytest.mark.parametrize(
    ("naming", "match"),
    [
        ({"personal": {"templates": []}}, "at least one"),
        ({"personal": {"templates": "{initials}{given}"}}, "list"),
        ({"personal": {"templates": [""]}}, "empty"),
        ({"personal": {"templates": [3]}}, "text"),
        ({"personal": {"template": ["{given}"]}}, "unknown key"),
        ({"persona": {}}, "unknown key"),
        ({"personal": []}, "mapping"),
        ({"personal": {"clash": {"strategy": "random"}}}, "strategy"),
        ({"personal": {"clash": {"start": 0}}}, "start"),
        ({"personal": {"clash": {"start": "2"}}}, "start"),
        ({"personal": {"clash": {"start": True}}}, "start"),
        ({"personal": {"clash": {"separator": "x"}}}, "separator"),
        ({"personal": {"clash": {"separator": ".."}}}, "separator"),
        ({"personal": {"clash": {"step": 2}}}, "unknown key"),
        ({"unit": {"template": "{parent}.{abbr}"}}, "cannot be used here"),
        ({"unit": {"template": "{given}"}}, "cannot be used here"),
        ({"unit": {"template": "dv"}}, "placeholder"),
        ({"unit": {"sub_unit_template": "{parent}.vp"}}, "abbr"),
        ({"unit": {"sub_unit_template": "{abbr}.{parent"}}, "not closed"),
        ({"unit": {"subunit_template": "{abbr}"}}, "unknown key"),
        ("not a mapping", "mapping"),
    ],
)
def test_bad_policy(naming: object, match: str) -> None:
    with pytest.raises(NamingError, match=match):
        NamingPolicy.from_dict(naming)  # type: ignore[arg-type]


def test_naming_error_is_a_value_error_with_location() -> None:
    with pytest.raises(ValueError, match=r"policy\.naming\.unit\.template"):
        NamingPolicy.from_dict({"unit": {"template": "{abbr"}})


def test_defaults_are_monre_rules() -> None:
    p = NamingPolicy.from_dict({})
    assert p.templates == ("{initials}{given}",)
    assert p.propose(Person("Nguyễn Anh Tuấn"), {"natuan"}) == "natuan2"
    assert p.unit_local("vp", "tcmt") == "vp.tcmt"


# --------------------------------------------------------------------------- results are valid


@pytest.mark.parametrize(
    ("local", "ok"),
    [
        ("natuan", True),
        ("long.nv", True),
        ("a_b-c", True),
        ("x", True),
        ("", False),
        (".natuan", False),
        ("natuan.", False),
        ("-natuan", False),
        ("natuan-", False),
        ("na..tuan", False),
        ("Natuan", False),
        ("na tuan", False),
        ("a" * 64, True),
        ("a" * 65, False),
    ],
)
def test_valid_local(local: str, ok: bool) -> None:
    assert valid_local(local) is ok


def test_every_generated_address_is_valid() -> None:
    policies = [MONRE, NGHE_AN, NINH_BINH, BAC_NINH, DONG_THAP]
    for name, _, _ in NAMES:
        person = Person(name, unit="vp.tcmt", birth="1985-11", id_digits="98765")
        for p in policies:
            locals_ = [*p.candidates(person), p.propose(person, set(p.candidates(person)))]
            assert locals_, (name, p.templates)
            for local in locals_:
                assert valid_local(local), (name, local)
                assert p.conforms(person, local), (name, local)


@pytest.mark.parametrize(("templates", "reads"), [
    (["{initials}{given}"], (False, False, False)),
    (["{given}.{unit}"], (True, False, False)),
    (["{given}{birth_yy}", "{given}{id_digits}"], (False, True, True)),
    (["{given}{birth_month}.{unit}"], (True, True, False))])
def test_inputs_are_what_the_templates_read(templates: list[str],
                                            reads: tuple[bool, bool, bool]) -> None:
    """validate builds the candidates' cache key inline from reads(); it must be inputs()."""
    policy = NamingPolicy.from_dict({"personal": {"templates": templates}})
    assert policy.reads() == reads
    person = Person("Nguyễn Văn An", "vp", "1990-02", "0123")
    key = policy.inputs(person)
    assert key == ("Nguyễn Văn An", "vp" if reads[0] else None, "1990-02" if reads[1] else None,
                   "0123" if reads[2] else None)
    assert policy.inputs_of(person.name, person.unit, person.birth, person.id_digits) == key
