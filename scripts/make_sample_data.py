#!/usr/bin/env python3
"""Produce the sample ``data/mailboxes.yaml``: MONRE's real unit structure, fictional staff.

    .venv/bin/python scripts/make_sample_data.py [-o data/mailboxes.yaml]

Deterministic (fixed seed): running it again gives the same bytes. It exists so the sample
can be rebuilt when the format changes; once committed, the YAML is what admins edit, and
this script is NOT re-run over their edits.

What the sample shows, on purpose (each case carries a comment in the YAML):
- the units of the ministry around 2017–2022 (Nghị định 36/2017/NĐ-CP), with sub-units of
  Tổng cục Môi trường, Tổng cục Khí tượng Thủy văn and Cục Công nghệ thông tin;
- ~300 fictional people with a realistic surname mix, 2- to 5-syllable names, and address
  clashes resolved by the policy in creation order (natuan, natuan2, natuan3; ttlan, ttlan2;
  Nguyễn Văn Hùng / Ngô Văn Hùng -> nvhung, nvhung2);
- every lifecycle state, including a cancellation long past its retention period;
- aliases (pre-2016 addresses, a corrected name), forwarding inside gov.vn, affiliates
  (union, youth union, associations, an individual collaborator), protected service accounts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import textwrap
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mailgov.naming import NamingPolicy, Person
from tools.generate import (
    CANCEL_REASONS,
    ORGANIZATION,
    POLICY,
    SUSPEND_REASONS,
    dump,
)
from tools.vietnamese_names import (
    LEADER_TITLES,
    STAFF_TITLE_POOLS,
    WeightedPool,
    random_name,
)

SEED = 2016
ROLLOUT = dt.date(2016, 10, 3)  # accounts issued when Quyết định 2019/QĐ-BTNMT took effect
ROLLOUT_REQUEST = "285/QĐ-CNTT"
LAST_DAY = dt.date(2026, 11, 28)

# (group comment, [(id, name, name_en, parent, kind, staff count, issuer code)])
UNIT_GROUPS: list[tuple[str, list[tuple[str, str, str, str | None, str, int, str]]]] = [
    ("Văn phòng, Thanh tra và các Vụ (advisory units of the Minister)", [
        ("vpb", "Văn phòng Bộ", "Ministry Office", None, "vanphong", 18, "VPB"),
        ("ttb", "Thanh tra Bộ", "Ministry Inspectorate", None, "thanhtra", 11, "TTB"),
        ("tccb", "Vụ Tổ chức cán bộ", "Department of Personnel and Organization", None, "vu",
         11, "TCCB"),
        ("khtc", "Vụ Kế hoạch - Tài chính", "Department of Planning and Finance", None, "vu",
         12, "KHTC"),
        ("khcn", "Vụ Khoa học và Công nghệ", "Department of Science and Technology", None,
         "vu", 8, "KHCN"),
        ("htqt", "Vụ Hợp tác quốc tế", "Department of International Cooperation", None, "vu",
         8, "HTQT"),
        ("pc", "Vụ Pháp chế", "Department of Legal Affairs", None, "vu", 7, "PC"),
        ("tdkt", "Vụ Thi đua, Khen thưởng và Truyền thông",
         "Department of Emulation, Commendation and Communication", None, "vu", 5, "TĐKT"),
    ]),
    ("Tổng cục (general departments)", [
        ("tcqldd", "Tổng cục Quản lý đất đai", "General Department of Land Administration",
         None, "tongcuc", 14, "TCQLĐĐ"),
        ("tcmt", "Tổng cục Môi trường", "Vietnam Environment Administration", None, "tongcuc",
         4, "TCMT"),
        ("tckttv", "Tổng cục Khí tượng Thủy văn",
         "Viet Nam Meteorological and Hydrological Administration", None, "tongcuc", 6,
         "TCKTTV"),
        ("tcdcks", "Tổng cục Địa chất và Khoáng sản Việt Nam",
         "General Department of Geology and Minerals of Vietnam", None, "tongcuc", 12, "ĐCKS"),
        ("tcbhd", "Tổng cục Biển và Hải đảo Việt Nam",
         "Vietnam Administration of Seas and Islands", None, "tongcuc", 11, "TCBHĐVN"),
    ]),
    ("Cục (departments); cntt runs the e-mail system (organization.it_unit)", [
        ("cntt", "Cục Công nghệ thông tin và Dữ liệu tài nguyên môi trường",
         "Department of Information Technology and Environmental Data", None, "cuc", 10,
         "CNTT"),
        ("qltnn", "Cục Quản lý tài nguyên nước", "Department of Water Resources Management",
         None, "cuc", 10, "TNN"),
        ("bdkh", "Cục Biến đổi khí hậu", "Department of Climate Change", None, "cuc", 8,
         "BĐKH"),
        ("dobd", "Cục Đo đạc, Bản đồ và Thông tin địa lý Việt Nam",
         "Department of Survey, Mapping and Geographic Information of Viet Nam", None, "cuc",
         11, "ĐĐBĐ"),
        ("vtqg", "Cục Viễn thám quốc gia", "National Remote Sensing Department", None, "cuc",
         7, "VTQG"),
    ]),
    ("Đơn vị sự nghiệp (institutes, universities, press, centres)", [
        ("isponre", "Viện Chiến lược, Chính sách tài nguyên và môi trường",
         "Institute of Strategy and Policy on Natural Resources and Environment", None,
         "vien", 8, "VCLCS"),
        ("imhen", "Viện Khoa học Khí tượng Thủy văn và Biến đổi khí hậu",
         "Viet Nam Institute of Meteorology, Hydrology and Climate Change", None, "vien", 10,
         "VKTTVBĐKH"),
        ("hunre", "Trường Đại học Tài nguyên và Môi trường Hà Nội",
         "Hanoi University of Natural Resources and Environment", None, "truong", 12,
         "ĐHTNMT"),
        ("hcmunre", "Trường Đại học Tài nguyên và Môi trường Thành phố Hồ Chí Minh",
         "Ho Chi Minh City University of Natural Resources and Environment", None, "truong",
         10, "ĐHTNMT"),
        ("baotnmt", "Báo Tài nguyên và Môi trường",
         "Natural Resources and Environment Newspaper", None, "bao", 10, "BTNMT"),
        ("tapchi", "Tạp chí Tài nguyên và Môi trường",
         "Natural Resources and Environment Magazine", None, "bao", 5, "TCTNMT"),
        ("nawapi", "Trung tâm Quy hoạch và Điều tra tài nguyên nước quốc gia",
         "National Center for Water Resources Planning and Investigation", None, "trungtam",
         6, "TTQHĐTTNN"),
    ]),
    ("Sub-units (address <id>.<parent>, e.g. vp.tcmt@)", [
        ("vp", "Văn phòng Tổng cục Môi trường", "Office of the Environment Administration",
         "tcmt", "vanphong", 10, "TCMT"),
        ("cspc", "Vụ Chính sách và Pháp chế", "Department of Policy and Legislation", "tcmt",
         "vu", 6, "TCMT"),
        ("ksonm", "Cục Kiểm soát ô nhiễm môi trường", "Pollution Control Department", "tcmt",
         "cuc", 10, "KSONMT"),
        ("btdd", "Cục Bảo tồn thiên nhiên và Đa dạng sinh học",
         "Nature and Biodiversity Conservation Agency", "tcmt", "cuc", 6, "BTĐDSH"),
        ("nchmf", "Trung tâm Dự báo khí tượng thủy văn quốc gia",
         "National Centre for Hydro-Meteorological Forecasting", "tckttv", "trungtam", 11,
         "DBQG"),
        ("qlcntt", "Phòng Quản lý công nghệ thông tin", "Division of IT Management", "cntt",
         "phong", 5, "CNTT"),
        ("ttud", "Trung tâm Ứng dụng công nghệ thông tin", "Centre for IT Applications",
         "cntt", "trungtam", 8, "CNTT"),
    ]),
]  # fmt: skip

_STAFF_KIND = {
    "vu": "admin", "vanphong": "admin", "thanhtra": "thanhtra", "tongcuc": "technical",
    "cuc": "technical", "vien": "research", "truong": "school", "bao": "press",
    "trungtam": "technical", "phong": "technical",
}  # fmt: skip

UNIT_MAILBOX: dict[str, dict[str, Any]] = {
    # Extra unit-mailbox settings (quota above default) for busy units.
    "vpb": {"quota_mb": 51200},
    "cntt": {"quota_mb": 20480},
    "tccb": {"quota_mb": 20480},
    "ttb": {"quota_mb": 20480},
    "tcmt": {"quota_mb": 30720},
}

# Curated people: each demonstrates one case. `note` becomes a comment above the record;
# `expect` is the address the policy must give (checked, so the notes never lie);
# `lead` makes them the unit head ("head") or a deputy ("deputy").
SPECIAL: list[dict[str, Any]] = [
    # --- name clashes, resolved in creation order --------------------------------------
    {"name": "Nguyễn Anh Tuấn", "unit": "vpb", "created": "2016-10-03", "expect": "natuan",
     "title": "Chuyên viên chính", "aliases": ["tuan.na"],
     "note": "first Nguyễn Anh Tuấn; tuan.na is his pre-2016 address, kept as an alias"},
    {"name": "Nguyễn Anh Tuấn", "unit": "ksonm", "created": "2018-05-14", "expect": "natuan2",
     "title": "Kỹ sư", "note": "clash: second Nguyễn Anh Tuấn -> natuan2"},
    {"name": "Nguyễn Anh Tuấn", "unit": "cntt", "created": "2023-03-06", "expect": "natuan3",
     "role": "admin", "title": "Kỹ sư chính",
     "note": "clash: third Nguyễn Anh Tuấn -> natuan3 (mail administrator)"},
    {"name": "Nguyễn Anh Tuấn", "unit": "cntt", "created": "2023-03-08", "expect": "natuan4",
     "state": "cancelled", "title": "Kỹ sư chính",
     "cancelled": {"date": "2023-03-09", "reason": "duplicate", "request": "112/CNTT-HTTT"},
     "note": "created twice by mistake for natuan3; cancelled as a duplicate, address "
             "stays reserved"},
    {"name": "Trần Thị Lan", "unit": "khtc", "created": "2016-10-03", "expect": "ttlan",
     "title": "Kế toán viên", "note": "first Trần Thị Lan"},
    {"name": "Trần Thị Lan", "unit": "hunre", "created": "2020-09-01", "expect": "ttlan2",
     "title": "Giảng viên", "note": "clash: second Trần Thị Lan -> ttlan2"},
    {"name": "Nguyễn Văn Hùng", "unit": "tcqldd", "created": "2016-10-03", "expect": "nvhung",
     "title": "Chuyên viên chính", "note": "Nguyễn Văn Hùng and Ngô Văn Hùng share the "
     "initials: nvhung, nvhung2"},
    {"name": "Ngô Văn Hùng", "unit": "tcdcks", "created": "2019-07-15", "expect": "nvhung2",
     "title": "Kỹ sư", "forward_to": ["nvhung@mard.gov.vn"],
     "note": "seconded to the Ministry of Agriculture; forwards there (gov.vn is allowed)"},
    # --- short and long names -------------------------------------------------------------
    {"name": "Lê Na", "unit": "baotnmt", "created": "2021-06-01", "expect": "lna",
     "title": "Phóng viên", "note": "two-syllable name: initials l + given na"},
    {"name": "Mai Phương", "unit": "tapchi", "created": "2022-02-14", "expect": "mphuong",
     "title": "Biên tập viên"},
    {"name": "Tôn Nữ Thị Ngọc Hà", "unit": "hcmunre", "created": "2017-09-05",
     "expect": "tntnha", "title": "Giảng viên chính",
     "note": "five syllables: surname Tôn, middle Nữ Thị Ngọc -> tntnha"},
    {"name": "Nguyễn Phước Bảo Long", "unit": "cntt", "created": "2019-04-01",
     "expect": "npblong", "role": "admin", "title": "Kỹ sư",
     "note": "four syllables -> npblong (mail administrator)"},
    {"name": "Nguyễn Lê Hoàng Anh Thư", "unit": "htqt", "created": "2024-08-19",
     "expect": "nlhathu", "title": "Chuyên viên"},
    {"name": "Âu Dương Minh Khôi", "unit": "imhen", "created": "2018-03-12",
     "expect": "admkhoi", "title": "Nghiên cứu viên chính"},
    # --- IT unit administrators (role admin: stricter password rules) ---------------------
    {"name": "Phạm Minh Hiếu", "unit": "cntt", "created": "2016-10-03", "expect": "pmhieu",
     "role": "admin", "title": "Kỹ sư chính", "birth": "1990-02", "id_digits": "0123",
     "quota_mb": 10240, "note": "birth / id_digits are optional; only for templates using them"},
    {"name": "Đặng Quốc Huy", "unit": "ttud", "created": "2018-11-20", "expect": "dqhuy",
     "role": "admin", "title": "Kỹ sư"},
    # --- corrected name: the old address stays as an alias --------------------------------
    {"name": "Nguyễn Thị Thanh Tâm", "unit": "tccb", "created": "2017-02-20",
     "expect": "ntttam", "title": "Chuyên viên", "aliases": ["ntttan"],
     "request": "318/QĐ-TCCB",
     "note": "name corrected (was registered as Nguyễn Thị Thanh Tân): new address, old "
             "one kept as an alias"},
    {"name": "Lương Văn Đức", "unit": "dobd", "created": "2016-10-03", "expect": "lvduc",
     "title": "Kỹ sư chính", "aliases": ["duc.lv@monre.gov.vn"],
     "note": "an alias may also be written as a full address at our domain"},
    # --- suspended --------------------------------------------------------------------------
    {"name": "Hoàng Thị Thu Trang", "unit": "vpb", "created": "2018-08-01",
     "expect": "htttrang", "state": "suspended", "title": "Chuyên viên",
     "suspended": {"date": "2026-06-01", "reason": "Nghỉ thai sản", "request": "215/QĐ-VPB"}},
    {"name": "Vũ Đức Thắng", "unit": "imhen", "created": "2019-01-07", "expect": "vdthang",
     "state": "suspended", "title": "Nghiên cứu viên",
     "suspended": {"date": "2025-09-15", "reason": "Đi học tập trung dài hạn ở nước ngoài",
                   "request": "1530/QĐ-BTNMT"},
     "forward_to": ["thangvd@most.gov.vn"],
     "note": "suspended: cannot log in, mail still delivered (and forwarded within gov.vn)"},
    {"name": "Phan Thanh Bình", "unit": "tcbhd", "created": "2016-10-03", "expect": "ptbinh",
     "state": "suspended", "title": "Chuyên viên",
     "suspended": {"date": "2026-09-02", "reason": "Không đăng nhập quá 90 ngày",
                   "request": "402/CNTT-HTTT"},
     "note": "locked by the inactivity rule (policy.inactivity_lock_days)"},
    {"name": "Đỗ Thị Hồng Nhung", "unit": "ttb", "created": "2020-03-02",
     "expect": "dthnhung", "state": "suspended", "title": "Thanh tra viên",
     "suspended": {"date": "2026-11-20", "reason": "Nghi lộ mật khẩu, chờ xác minh",
                   "request": "455/CNTT-HTTT"}},
    {"name": "Bùi Quang Vinh", "unit": "nchmf", "created": "2017-05-22", "expect": "bqvinh",
     "state": "suspended", "title": "Kỹ sư",
     "suspended": {"date": "2026-02-10", "reason": "Nghỉ ốm dài ngày",
                   "request": "38/QĐ-DBQG"}},
    # --- cancelled --------------------------------------------------------------------------
    {"name": "Lê Văn Khải", "unit": "pc", "created": "2016-10-03", "expect": "lvkhai",
     "state": "cancelled", "title": "Chuyên viên cao cấp",
     "cancelled": {"date": "2019-05-31", "reason": "retired", "request": "612/QĐ-BTNMT"},
     "note": "retired in 2019: long past the 180-day retention, data archived and purged; "
             "the record stays so the address is never reused"},
    {"name": "Trịnh Công Sơn", "unit": "tccb", "created": "2016-10-03", "expect": "tcson",
     "state": "cancelled", "role": "head", "title": "Vụ trưởng",
     "cancelled": {"date": "2021-12-31", "reason": "retired", "request": "3180/QĐ-BTNMT"},
     "note": "former head (role head: 365-day retention), retired 2021, past retention"},
    {"name": "Hồ Ngọc Lan", "unit": "khcn", "created": "2016-10-03", "expect": "hnlan",
     "state": "cancelled", "role": "head", "title": "Vụ trưởng",
     "cancelled": {"date": "2026-04-30", "reason": "retired", "request": "1045/QĐ-BTNMT"},
     "note": "former head retired 2026-04-30: inside the 365-day retention for heads"},
    {"name": "Dương Minh Quân", "unit": "qltnn", "created": "2017-08-14", "expect": "dmquan",
     "state": "cancelled", "title": "Kỹ sư",
     "cancelled": {"date": "2026-07-31", "reason": "transferred", "request": "802/QĐ-TCCB"},
     "note": "transferred to another ministry: locked at once, kept 180 days"},
    {"name": "Lý Thị Kim Oanh", "unit": "baotnmt", "created": "2019-10-01",
     "expect": "ltkoanh", "state": "cancelled", "title": "Phóng viên",
     "cancelled": {"date": "2025-12-15", "reason": "left", "request": "97/QĐ-BTNMT"}},
    {"name": "Đinh Văn Toàn", "unit": "tcdcks", "created": "2016-10-03", "expect": "dvtoan",
     "state": "cancelled", "title": "Kỹ sư chính",
     "cancelled": {"date": "2024-03-18", "reason": "deceased", "request": "201/QĐ-ĐCKS"}},
    {"name": "Tạ Quang Hưng", "unit": "hunre", "created": "2018-09-03", "expect": "tqhung",
     "state": "cancelled", "title": "Giảng viên",
     "cancelled": {"date": "2026-10-15", "reason": "other", "request": "1750/QĐ-ĐHTNMT"},
     "note": "reason other: contract ended (hợp đồng lao động hết hạn)"},
    {"name": "Cao Thị Hải Yến", "unit": "vp", "created": "2016-10-03", "expect": "cthyen",
     "state": "cancelled", "title": "Chuyên viên",
     "cancelled": {"date": "2026-08-31", "reason": "transferred", "request": "615/QĐ-TCMT"}},
    # --- affiliate: an individual collaborator follows the personal naming rule ------------
    {"name": "Vương Đình Khải", "unit": "tapchi", "kind": "affiliate", "sponsor": "tapchi",
     "created": "2023-05-08", "expect": "vdkhai", "title": "Cộng tác viên",
     "request": "41/QĐ-TCTNMT",
     "note": "affiliate: an individual collaborator, vouched for by the magazine"},
]  # fmt: skip

# Accounts with a naming exemption: protected service accounts and associations.
EXEMPT: list[dict[str, Any]] = [
    {"address": "postmaster", "name": "Postmaster", "unit": "cntt", "role": "admin",
     "title": "Tài khoản hệ thống", "created": "2016-10-03", "request": ROLLOUT_REQUEST,
     "naming_exemption": {"reason": "Tài khoản dịch vụ theo RFC 2142",
                          "request": ROLLOUT_REQUEST},
     "note": "protected service accounts (policy.protected): never removed by a plan"},
    {"address": "abuse", "name": "Tiếp nhận báo cáo lạm dụng", "unit": "cntt",
     "role": "admin", "title": "Tài khoản hệ thống", "created": "2016-10-03",
     "request": ROLLOUT_REQUEST,
     "naming_exemption": {"reason": "Tài khoản dịch vụ theo RFC 2142",
                          "request": ROLLOUT_REQUEST}},
    {"address": "quantri", "name": "Quản trị hệ thống thư điện tử", "unit": "cntt",
     "role": "admin", "title": "Tài khoản hệ thống", "created": "2016-10-03",
     "request": ROLLOUT_REQUEST, "quota_mb": 10240,
     "naming_exemption": {"reason": "Tài khoản quản trị hệ thống",
                          "request": ROLLOUT_REQUEST}},
    {"address": "congdoan", "name": "Công đoàn Bộ Tài nguyên và Môi trường", "unit": "vpb",
     "kind": "affiliate", "sponsor": "vpb", "created": "2017-01-09", "request": "12/QĐ-VPB",
     "naming_exemption": {"reason": "Tên tổ chức, không theo quy tắc cá nhân",
                          "request": "12/QĐ-VPB"},
     "note": "affiliates: the union and associations, sponsored by a unit"},
    {"address": "doanthanhnien", "name": "Đoàn Thanh niên Bộ Tài nguyên và Môi trường",
     "unit": "vpb", "kind": "affiliate", "sponsor": "vpb", "created": "2017-03-20",
     "request": "58/QĐ-VPB", "quota_mb": 2048,
     "naming_exemption": {"reason": "Tên tổ chức, không theo quy tắc cá nhân",
                          "request": "58/QĐ-VPB"}},
    {"address": "hoitdbdvt", "name": "Hội Trắc địa - Bản đồ - Viễn thám Việt Nam",
     "unit": "dobd", "kind": "affiliate", "sponsor": "dobd", "created": "2018-04-02",
     "request": "77/QĐ-ĐĐBĐ",
     "naming_exemption": {"reason": "Tên tổ chức, không theo quy tắc cá nhân",
                          "request": "77/QĐ-ĐĐBĐ"}},
    {"address": "hoikttv", "name": "Hội Khí tượng Thủy văn Việt Nam", "unit": "tckttv",
     "kind": "affiliate", "sponsor": "tckttv", "created": "2019-06-17",
     "request": "350/QĐ-TCKTTV",
     "naming_exemption": {"reason": "Tên tổ chức, không theo quy tắc cá nhân",
                          "request": "350/QĐ-TCKTTV"}},
]  # fmt: skip

def _date_between(rng: random.Random, start: dt.date, end: dt.date) -> dt.date:
    return start + dt.timedelta(days=rng.randint(0, (end - start).days))


_SUSPEND = WeightedPool(SUSPEND_REASONS)
_CANCEL = WeightedPool(CANCEL_REASONS[:3])  # retired / transferred / left for the crowd


def _maybe_lifecycle(rng: random.Random, p: dict[str, Any], code: str) -> None:
    """A few of the uncurated staff are suspended (~2.5 %) or cancelled (~3.5 %)."""
    r = rng.random()
    if r < 0.025:
        date = _date_between(rng, max(p["_created"], dt.date(2025, 1, 1)), LAST_DAY)
        p["state"] = "suspended"
        p["suspended"] = {"date": date.isoformat(), "reason": _SUSPEND.pick(rng),
                          "request": f"{rng.randint(20, 999)}/QĐ-{code}"}
    elif r < 0.06:
        date = _date_between(rng, p["_created"] + dt.timedelta(days=30), LAST_DAY)
        p["state"] = "cancelled"
        p["cancelled"] = {"date": date.isoformat(), "reason": _CANCEL.pick(rng),
                          "request": f"{rng.randint(20, 1999)}/QĐ-TCCB"}


def build() -> tuple[dict[str, Any], dict[int, str], dict[int, str]]:
    """The data plus the unit and mailbox comments for :func:`tools.generate.dump`."""
    rng = random.Random(SEED)
    naming = NamingPolicy.from_dict(POLICY["naming"])

    units: list[dict[str, Any]] = []
    unit_comments: dict[int, str] = {}
    meta: dict[str, dict[str, Any]] = {}  # id -> kind, local, issuer, staff count
    for comment, members in UNIT_GROUPS:
        unit_comments[len(units)] = comment
        for uid, name, name_en, parent, kind, n_staff, code in members:
            local = naming.unit_local(uid, meta[parent]["local"] if parent else None)
            meta[uid] = {"kind": kind, "local": local, "code": code, "staff": n_staff}
            unit = {"id": uid, "name": name, "name_en": name_en}
            if parent:
                unit["parent"] = parent
            units.append(unit)

    taken: set[str] = {m["local"] for m in meta.values()}
    taken.update(e["address"] for e in EXEMPT)
    for s in SPECIAL:  # reserved before anyone is named, like real aliases are
        taken.update(a.split("@")[0] for a in s.get("aliases", []))
    special_bases = {naming.candidates(Person(s["name"]))[0] for s in SPECIAL}

    # Random people: counts per unit from UNIT_GROUPS, minus the curated people there.
    people: list[dict[str, Any]] = []
    for i, s in enumerate(SPECIAL):
        people.append({**s, "_i": i, "_created": dt.date.fromisoformat(s["created"])})
    curated_in = {uid: sum(1 for s in SPECIAL if s["unit"] == uid) for uid in meta}
    for uid, m in meta.items():
        for _ in range(max(1, m["staff"] - curated_in[uid])):
            name = random_name(rng)
            while naming.candidates(Person(name))[0] in special_bases:
                name = random_name(rng)  # keep the curated clash numbering exact
            created = ROLLOUT if rng.random() < 0.45 else _date_between(
                rng, ROLLOUT, dt.date(2026, 10, 30))
            people.append({"name": name, "unit": uid, "created": created.isoformat(),
                           "_i": len(people), "_created": created})

    # Addresses in creation order, exactly as the naming policy assigns them.
    people.sort(key=lambda p: (p["_created"], p["_i"]))
    for p in people:
        local = naming.propose(Person(p["name"], unit=meta[p["unit"]]["local"]), taken)
        if "expect" in p and local != p["expect"]:
            raise SystemExit(f"{p['name']}: policy gives {local}, sample expects {p['expect']}")
        taken.add(local)
        p["address"] = local
        if "request" not in p:
            if p["_created"] == ROLLOUT:
                p["request"] = ROLLOUT_REQUEST
            else:
                p["request"] = f"{rng.randint(20, 1999)}/QĐ-{meta[p['unit']]['code']}"
        if "expect" not in p and p["_created"] < dt.date(2026, 5, 1):
            _maybe_lifecycle(rng, p, meta[p["unit"]]["code"])

    # Heads, deputies, titles and unit mailboxes.
    by_unit: dict[str, list[dict[str, Any]]] = {uid: [] for uid in meta}
    for p in people:
        by_unit[p["unit"]].append(p)
    for unit in units:
        uid = unit["id"]
        kind = meta[uid]["kind"]
        head_title, deputy_title = LEADER_TITLES[kind]
        staff = by_unit[uid]
        active = [p for p in staff if p.get("state", "active") == "active"
                  and p.get("kind", "personal") == "personal"]
        # The earliest active non-curated person leads (curated people keep their titles).
        # Deputies are role head too: "heads of department and above" (retention rule).
        eligible = [p for p in active if "expect" not in p]
        n_deputies = 2 if len(staff) >= 9 else 1 if len(staff) >= 6 else 0
        leaders = eligible[: 1 + n_deputies]
        for i, p in enumerate(leaders):
            p["role"], p["title"] = "head", head_title if i == 0 else deputy_title
        if leaders:
            unit["head"] = leaders[0]["address"]
        pool = STAFF_TITLE_POOLS[_STAFF_KIND[kind]]
        for p in staff:
            p.setdefault("title", pool.pick(rng))
        box: dict[str, Any] = dict(UNIT_MAILBOX.get(uid, {}))
        helpers = [p for p in active if all(p is not x for x in leaders)]
        if helpers and rng.random() < 0.8:
            picks = rng.sample(helpers, min(len(helpers), rng.choice([1, 1, 2, 2, 3])))
            box["delegates"] = sorted(p["address"] for p in picks)
        box["request"] = f"{rng.randint(10, 999)}/QĐ-{meta[uid]['code']}"
        unit["mailbox"] = box

    # Output: grouped by unit (in unit order), exempt accounts first, then by creation.
    records = [
        {**e, "_i": i - len(EXEMPT), "_created": dt.date.fromisoformat(e["created"]), "_grp": 0}
        for i, e in enumerate(EXEMPT)
    ]
    records += [{**p, "_grp": 1} for p in people]
    # Sub-units' mailboxes follow their parent's, so a Tổng cục reads as one block.
    order = {u["id"]: (i, 0) for i, u in enumerate(units) if "parent" not in u}
    order.update({u["id"]: (order[u["parent"]][0], i + 1) for i, u in enumerate(units)
                  if "parent" in u})
    records.sort(key=lambda r: (order[r["unit"]], r["_grp"], r["_created"], r["_i"]))

    mailboxes: list[dict[str, Any]] = []
    mailbox_comments: dict[int, str] = {}
    names = {u["id"]: u["name"] for u in units}
    current = None
    for r in records:
        lines = []
        if r["unit"] != current:
            current = r["unit"]
            n = sum(1 for x in records if x["unit"] == current)
            lines.append(f"--- {meta[current]['local']}@: {names[current]} ({n} mailboxes)")
        if "note" in r:
            lines.extend(textwrap.wrap(r["note"], width=90))
        if lines:
            mailbox_comments[len(mailboxes)] = "\n".join(lines)
        mailboxes.append(_record(r))

    data = {
        "version": 1,
        "organization": dict(ORGANIZATION),
        "policy": POLICY,
        "units": units,
        "mailboxes": mailboxes,
    }
    return data, unit_comments, mailbox_comments


_FIELDS = (
    "address", "name", "unit", "kind", "sponsor", "role", "title", "state", "suspended",
    "cancelled", "created", "request", "quota_mb", "birth", "id_digits", "aliases",
    "forward_to", "naming_exemption",
)  # fmt: skip


def _record(r: dict[str, Any]) -> dict[str, Any]:
    """The data-file fields of a record, in display order; defaults left out."""
    out = {k: r[k] for k in _FIELDS if k in r}
    for key, default in (("kind", "personal"), ("role", "staff"), ("state", "active")):
        if out.get(key) == default:
            del out[key]
    return out


HEADER = """\
Mailboxes of the Ministry of Natural Resources and Environment (monre.gov.vn).
Regulation: Quyết định 2019/QĐ-BTNMT (2016). Units as organised 2017–2022; every person
is fictional. Every change is a pull request; `mailgov validate` must pass.
Format: docs/data-format.md. Made once by scripts/make_sample_data.py; edit this file."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", default="data/mailboxes.yaml")
    args = parser.parse_args(argv)
    data, unit_comments, mailbox_comments = build()
    text = dump(data, header=HEADER, unit_comments=unit_comments,
                mailbox_comments=mailbox_comments)
    Path(args.output).write_text(text, encoding="utf-8")
    print(f"{args.output}: {len(data['units'])} units, {len(data['mailboxes'])} mailboxes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
