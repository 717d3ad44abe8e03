"""Pools of Vietnamese names and job titles, shared by the generator and the sample data.

Weights approximate published surname statistics (Nguyễn ≈ 38 %, Trần ≈ 11 %, Lê ≈ 9.5 %,
Phạm ≈ 7 % …), so synthetic directories have the clash rate a real ministry sees: the naming
policy's sequence numbers (natuan2, natuan3) get exercised at realistic frequency.
All names keep full diacritics (NFC), because the data file stores names as people write them.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from itertools import accumulate

# (surname, weight in ‰). Hoàng/Huỳnh and Vũ/Võ are the northern/southern forms of one name.
SURNAMES: tuple[tuple[str, float], ...] = (
    ("Nguyễn", 380), ("Trần", 110), ("Lê", 95), ("Phạm", 70), ("Hoàng", 35), ("Huỳnh", 16),
    ("Phan", 45), ("Vũ", 25), ("Võ", 14), ("Đặng", 21), ("Bùi", 20), ("Đỗ", 14), ("Hồ", 13),
    ("Ngô", 13), ("Dương", 10), ("Lý", 5), ("Đào", 6), ("Đoàn", 6), ("Vương", 3),
    ("Trịnh", 5), ("Trương", 5), ("Lâm", 4), ("Phùng", 3), ("Mai", 4), ("Tô", 3), ("Hà", 4),
    ("Tạ", 3), ("Cao", 4), ("Chu", 3), ("Lương", 4), ("Đinh", 5), ("Kiều", 2), ("Lưu", 3),
    ("Quách", 2), ("Thái", 2), ("Khúc", 1), ("Triệu", 2), ("Tăng", 1), ("Lại", 2), ("Nghiêm", 1),
)  # fmt: skip

MALE_MIDDLE: tuple[tuple[str, float], ...] = (
    ("Văn", 30), ("Đức", 10), ("Minh", 10), ("Quang", 7), ("Hữu", 7), ("Công", 5),
    ("Thanh", 5), ("Xuân", 4), ("Mạnh", 3), ("Tiến", 3), ("Đình", 5), ("Ngọc", 3),
    ("Anh", 3), ("Trung", 2), ("Việt", 2), ("Hoàng", 2), ("Quốc", 4), ("Thế", 3),
    ("Trọng", 3), ("Duy", 3), ("Tuấn", 2), ("Hải", 2), ("Bá", 2), ("Kim", 1),
)  # fmt: skip

FEMALE_MIDDLE: tuple[tuple[str, float], ...] = (
    ("Thị", 45), ("Thu", 6), ("Thanh", 6), ("Ngọc", 6), ("Minh", 4), ("Phương", 3),
    ("Hồng", 4), ("Thùy", 3), ("Kim", 3), ("Bích", 2), ("Mai", 2), ("Diệu", 1),
    ("Hải", 2), ("Lan", 1), ("Quỳnh", 2), ("Thúy", 2), ("Khánh", 2), ("Hoài", 1),
)  # fmt: skip

MALE_GIVEN: tuple[tuple[str, float], ...] = (
    ("Tuấn", 8), ("Hùng", 8), ("Dũng", 7), ("Long", 6), ("Nam", 6), ("Minh", 6), ("Hải", 6),
    ("Sơn", 6), ("Thắng", 5), ("Cường", 5), ("Quân", 4), ("Hiếu", 4), ("Hoàng", 4),
    ("Trung", 5), ("Việt", 3), ("Đức", 4), ("Bình", 4), ("Thành", 5), ("Hưng", 4),
    ("Phong", 3), ("Khánh", 3), ("Tùng", 4), ("Tâm", 3), ("Huy", 4), ("Anh", 5), ("Đạt", 3),
    ("Kiên", 2), ("Lâm", 2), ("Phúc", 2), ("Toàn", 3), ("Hiển", 1), ("Vinh", 3), ("Quang", 4),
    ("Thịnh", 2), ("Tiến", 3), ("Tài", 2), ("Nghĩa", 2), ("Hòa", 2), ("Lực", 1), ("Chiến", 2),
    ("Công", 1), ("Duy", 2), ("Định", 1), ("Giang", 1), ("Hậu", 1), ("Khoa", 2), ("Lợi", 1),
    ("Mạnh", 2), ("Ninh", 1), ("Phát", 1), ("Sang", 1), ("Thái", 1), ("Thuận", 1), ("Trí", 2),
    ("Tú", 2), ("Vũ", 2), ("Bảo", 1), ("Cảnh", 1), ("Hà", 1), ("Quyết", 1), ("Thông", 1),
)  # fmt: skip

FEMALE_GIVEN: tuple[tuple[str, float], ...] = (
    ("Lan", 6), ("Hoa", 5), ("Hương", 8), ("Hà", 6), ("Linh", 7), ("Trang", 7), ("Thảo", 6),
    ("Hằng", 5), ("Nga", 4), ("Mai", 5), ("Thủy", 5), ("Huyền", 5), ("Loan", 3), ("Yến", 3),
    ("Ngọc", 3), ("Phương", 5), ("Dung", 4), ("Hạnh", 4), ("Nhung", 3), ("Vân", 3),
    ("Oanh", 2), ("Liên", 2), ("Giang", 3), ("Châu", 2), ("Anh", 5), ("Hiền", 3), ("Quyên", 2),
    ("Thơ", 1), ("Nhàn", 1), ("Tuyết", 2), ("Hồng", 3), ("Duyên", 2), ("Trâm", 2), ("Ly", 2),
    ("Na", 1), ("Hải", 1), ("Thúy", 3), ("Hòa", 2), ("Minh", 2), ("Nhi", 2), ("Tâm", 2),
    ("Thanh", 2), ("Uyên", 2), ("Vy", 1), ("Xuân", 1), ("Yên", 1), ("Diệp", 1), ("Quỳnh", 3),
)  # fmt: skip

# Four-syllable names: first and second middle names come from different pools, because
# the order is not free ("Nguyễn Thị Thu Hương", "Trần Quốc Bảo Long", never "Thu Thị").
MALE_MIDDLE_FIRST: tuple[tuple[str, float], ...] = (
    ("Văn", 20), ("Hữu", 6), ("Đức", 8), ("Quang", 6), ("Hoàng", 6), ("Ngọc", 5),
    ("Minh", 8), ("Phước", 2), ("Gia", 3), ("Trần", 2), ("Nguyễn", 3), ("Lê", 2),
)  # fmt: skip
MALE_MIDDLE_SECOND: tuple[tuple[str, float], ...] = (
    ("Minh", 10), ("Quốc", 6), ("Hoàng", 6), ("Anh", 6), ("Tuấn", 5), ("Bảo", 5), ("Hải", 4),
    ("Trung", 4), ("Thanh", 5), ("Duy", 4), ("Đức", 4), ("Việt", 3), ("Thành", 3),
)  # fmt: skip
FEMALE_MIDDLE_FIRST: tuple[tuple[str, float], ...] = (
    ("Thị", 60), ("Ngọc", 6), ("Hoàng", 4), ("Phương", 3), ("Nguyễn", 4), ("Trần", 3),
    ("Lê", 3), ("Minh", 3),
)  # fmt: skip
FEMALE_MIDDLE_SECOND: tuple[tuple[str, float], ...] = (
    ("Thu", 10), ("Ngọc", 8), ("Thanh", 8), ("Kim", 5), ("Hồng", 6), ("Minh", 5),
    ("Phương", 4), ("Thùy", 4), ("Mai", 3), ("Bích", 3), ("Hải", 3), ("Quỳnh", 3),
    ("Diệu", 2), ("Khánh", 3), ("Lan", 2), ("Thúy", 3), ("Bảo", 2), ("Tuyết", 1),
)  # fmt: skip

# Titles (chức danh / ngạch) by kind of unit. The first entry of LEADER_TITLES[kind] is the
# head; the second the deputy.
LEADER_TITLES: dict[str, tuple[str, str]] = {
    "vu": ("Vụ trưởng", "Phó Vụ trưởng"),
    "vanphong": ("Chánh Văn phòng", "Phó Chánh Văn phòng"),
    "thanhtra": ("Chánh Thanh tra", "Phó Chánh Thanh tra"),
    "tongcuc": ("Tổng cục trưởng", "Phó Tổng cục trưởng"),
    "cuc": ("Cục trưởng", "Phó Cục trưởng"),
    "vien": ("Viện trưởng", "Phó Viện trưởng"),
    "truong": ("Hiệu trưởng", "Phó Hiệu trưởng"),
    "bao": ("Tổng Biên tập", "Phó Tổng Biên tập"),
    "trungtam": ("Giám đốc", "Phó Giám đốc"),
    "phong": ("Trưởng phòng", "Phó Trưởng phòng"),
}

STAFF_TITLES: dict[str, tuple[tuple[str, float], ...]] = {
    "admin": (
        ("Chuyên viên", 40), ("Chuyên viên chính", 25), ("Chuyên viên cao cấp", 4),
        ("Cán sự", 6), ("Kế toán viên", 8), ("Văn thư", 5), ("Nhân viên", 6),
        ("Lưu trữ viên", 2),
    ),
    "thanhtra": (("Thanh tra viên", 50), ("Thanh tra viên chính", 30), ("Chuyên viên", 20)),
    "technical": (
        ("Chuyên viên", 30), ("Chuyên viên chính", 20), ("Kỹ sư", 25), ("Kỹ sư chính", 10),
        ("Kỹ thuật viên", 8), ("Kế toán viên", 4), ("Nhân viên", 3),
    ),
    "research": (
        ("Nghiên cứu viên", 45), ("Nghiên cứu viên chính", 25), ("Nghiên cứu viên cao cấp", 5),
        ("Kỹ sư", 15), ("Kế toán viên", 5), ("Chuyên viên", 5),
    ),
    "school": (
        ("Giảng viên", 50), ("Giảng viên chính", 25), ("Giảng viên cao cấp", 5),
        ("Chuyên viên", 15), ("Kế toán viên", 5),
    ),
    "press": (
        ("Phóng viên", 45), ("Biên tập viên", 30), ("Biên tập viên chính", 10),
        ("Kỹ thuật viên", 5), ("Kế toán viên", 5), ("Chuyên viên", 5),
    ),
}  # fmt: skip

MALE_SHARE = 0.52  # civil service of the sector is roughly balanced


class WeightedPool:
    """A weighted pool drawn with one `random.Random`: fast (precomputed cumulative weights)."""

    def __init__(self, items: tuple[tuple[str, float], ...]) -> None:
        self.values = [v for v, _ in items]
        self.cum = list(accumulate(w for _, w in items))
        self.total = self.cum[-1]

    def pick(self, rng: random.Random) -> str:
        # What rng.choices(cum_weights=...) does, without its per-call set-up.
        return self.values[bisect_right(self.cum, rng.random() * self.total)]


SURNAME_POOL = WeightedPool(SURNAMES)
_MIDDLE = {True: WeightedPool(MALE_MIDDLE), False: WeightedPool(FEMALE_MIDDLE)}
_GIVEN = {True: WeightedPool(MALE_GIVEN), False: WeightedPool(FEMALE_GIVEN)}
_MIDDLE_FIRST = {True: WeightedPool(MALE_MIDDLE_FIRST), False: WeightedPool(FEMALE_MIDDLE_FIRST)}
_MIDDLE_SECOND = {
    True: WeightedPool(MALE_MIDDLE_SECOND),
    False: WeightedPool(FEMALE_MIDDLE_SECOND),
}
STAFF_TITLE_POOLS = {k: WeightedPool(v) for k, v in STAFF_TITLES.items()}


def random_name(rng: random.Random) -> str:
    """A full name, surname first: mostly 3 syllables, some 2 and some 4.

    Shares follow what Vietnamese civil-service rosters show: ~80 % three syllables,
    ~15 % four (double middle name, e.g. "Nguyễn Thị Thu Hương"), ~5 % two ("Lê Na").
    """
    male = rng.random() < MALE_SHARE
    surname = SURNAME_POOL.pick(rng)
    given = _GIVEN[male].pick(rng)
    r = rng.random()
    if r < 0.05:
        return f"{surname} {given}"
    if r < 0.20:
        first, second = _MIDDLE_FIRST[male].pick(rng), _MIDDLE_SECOND[male].pick(rng)
        if len({first, second, given}) == 3:
            return f"{surname} {first} {second} {given}"
    middle = _MIDDLE[male].pick(rng)
    if middle == given:  # "Nguyễn Minh Minh" is rare; draw once more, keep whatever comes
        middle = _MIDDLE[male].pick(rng)
    return f"{surname} {middle} {given}"
