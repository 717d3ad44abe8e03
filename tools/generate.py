"""Synthetic mailbox directories in the format of ``data/mailboxes.yaml``.

    python -m tools.generate --count 50000 --seed 7 -o /tmp/big.yaml    (from the repo root)

Development tooling, not part of the installed ``mailgov`` package (it only imports it).
Used for benchmarks and tests: a directory of ``count`` mailboxes with units scaled to the
size (about one unit per 150 mailboxes, part of them sub-units), Vietnamese names drawn with a
realistic surname distribution, addresses assigned in creation order by the naming policy
itself (so clashes become natuan2, natuan3 exactly as in production), a small share of
suspended and cancelled mailboxes, some aliases and forwards. Same seed, same bytes.

YAML is written as text, not with ``yaml.dump``: dumping 50,000 mailboxes through PyYAML's
representer takes tens of seconds, and hand-written text can also carry the comments an
admin expects. ``dump()`` is shared with ``scripts/make_sample_data.py``; the tests check
that the text parses back (with the project's loader) to exactly the generated data.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import random
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mailgov.naming import NamingPolicy, Person, split_name
from tools.vietnamese_names import (
    LEADER_TITLES,
    STAFF_TITLE_POOLS,
    WeightedPool,
    random_name,
)

__all__ = ["ORGANIZATION", "POLICY", "dump", "generate", "main", "write"]

SCHEMA_LINE = "# yaml-language-server: $schema=../schema/mailboxes.schema.json"

ORGANIZATION: dict[str, Any] = {
    "name": "Bộ Tài nguyên và Môi trường",
    "name_en": "Ministry of Natural Resources and Environment",
    "domain": "monre.gov.vn",
    "base_dn": "dc=monre,dc=gov,dc=vn",
    "it_unit": "cntt",
}

# The policy as written in the data file, with its comments. POLICY (below) is what it
# parses to; a unit test keeps the two identical.
POLICY_YAML = """\
policy:
  naming:
    personal:
      # Ordered candidate templates: the first that gives a free address wins. When every
      # template is taken, `clash` numbers the FIRST template: natuan, natuan2, natuan3 …
      templates: ["{initials}{given}"]
      clash: { strategy: sequence, start: 2, separator: "" }
    unit:
      template: "{abbr}"                    # top-level units: vpb@
      sub_unit_template: "{abbr}.{parent}"  # sub-units: vp.tcmt@ (parent = parent's local part)
  quotas:                                   # MiB, per mailbox kind
    personal:  { default: 2048,  min: 500,  max: 10240 }
    unit:      { default: 10240, min: 2048, max: 51200 }
    affiliate: { default: 1024,  min: 500,  max: 2048 }
  message_size_mb: 25
  blocked_attachments: [exe, com, dll, bat, cmd, scr, pif, vbs, js, msi]
  password:
    users:          { min_length: 8,  required_classes: [upper, lower, digit, special],
                      history: 3, max_age_days: 180, lockout_failures: 12,
                      first_login_change_days: 5, forbid_personal_data: true }
    administrators: { min_length: 10, required_classes: [upper, lower, digit, special],
                      history: 5, max_age_days: 90, lockout_failures: 5,
                      first_login_change_days: 1, forbid_personal_data: true }
  inactivity_lock_days: 90
  retention:                                # after cancellation, before archive + purge
    staff_days: 180
    heads_days: 365                         # role: head (heads of department and above)
  outbound_rate_limit: { messages: 250, window_minutes: 10, action: lock }
  forwarding:
    allowed_domains: [gov.vn]               # a domain and all its sub-domains
  safety:
    max_disable_share: 0.05                 # plan refuses more without --allow-mass-change
  protected: [postmaster, abuse, quantri]   # local parts a plan never removes
  logs_retention_days: 180
  backups: { schedule: weekly }
"""

_CLASSES = ["upper", "lower", "digit", "special"]
POLICY: dict[str, Any] = {
    "naming": {
        "personal": {
            "templates": ["{initials}{given}"],
            "clash": {"strategy": "sequence", "start": 2, "separator": ""},
        },
        "unit": {"template": "{abbr}", "sub_unit_template": "{abbr}.{parent}"},
    },
    "quotas": {
        "personal": {"default": 2048, "min": 500, "max": 10240},
        "unit": {"default": 10240, "min": 2048, "max": 51200},
        "affiliate": {"default": 1024, "min": 500, "max": 2048},
    },
    "message_size_mb": 25,
    "blocked_attachments": ["exe", "com", "dll", "bat", "cmd", "scr", "pif", "vbs", "js", "msi"],
    "password": {
        "users": {
            "min_length": 8, "required_classes": list(_CLASSES), "history": 3,
            "max_age_days": 180, "lockout_failures": 12, "first_login_change_days": 5,
            "forbid_personal_data": True,
        },
        "administrators": {
            "min_length": 10, "required_classes": list(_CLASSES), "history": 5,
            "max_age_days": 90, "lockout_failures": 5, "first_login_change_days": 1,
            "forbid_personal_data": True,
        },
    },
    "inactivity_lock_days": 90,
    "retention": {"staff_days": 180, "heads_days": 365},
    "outbound_rate_limit": {"messages": 250, "window_minutes": 10, "action": "lock"},
    "forwarding": {"allowed_domains": ["gov.vn"]},
    "safety": {"max_disable_share": 0.05},
    "protected": ["postmaster", "abuse", "quantri"],
    "logs_retention_days": 180,
    "backups": {"schedule": "weekly"},
}  # fmt: skip

# =========================================================================== YAML text

# YAML 1.1 words PyYAML would read as booleans or null if written plain.
_RESERVED = frozenset(["y", "n", "yes", "no", "true", "false", "on", "off", "null", "~"])
# Plain (unquoted) scalars we allow: start with a letter, then letters/digits/space and a few
# punctuation marks that are never YAML indicators in these positions. No ':' or '#'; ',' and
# '=' only outside flow collections (a ',' ends a value inside `{ … }` / `[ … ]`).
_PLAIN = re.compile(r"[^\W\d_][\w .&()'/+-]*", re.UNICODE)
_PLAIN_BLOCK = re.compile(r"[^\W\d_][\w .,=&()'/+-]*", re.UNICODE)
# Dates, year-months and request references ("12/QĐ-VPB") read back as strings with the
# project's loader (it keeps dates as text), so they stay plain like in the docs.
_PLAIN_DIGIT = re.compile(r"\d{4}-\d{2}(?:-\d{2})?|\d+/[\w.-]+", re.UNICODE)

_scalar_cache: dict[tuple[str, bool], str] = {}


def _str(value: str, flow: bool) -> str:
    out = _scalar_cache.get((value, flow))
    if out is None:
        plain = _PLAIN if flow else _PLAIN_BLOCK
        if (
            (plain.fullmatch(value) or _PLAIN_DIGIT.fullmatch(value))
            and value.lower() not in _RESERVED
            and not value.endswith(" ")
            and "  " not in value
            and not value.startswith("-")
        ):
            out = value
        else:
            # A JSON string is a valid YAML double-quoted scalar.
            out = json.dumps(value, ensure_ascii=False)
        if len(_scalar_cache) < 200_000:
            _scalar_cache[(value, flow)] = out
    return out


def scalar(value: Any, flow: bool = True) -> str:
    """One scalar as YAML text that reads back to the same value (`flow`: inside [ ] / { })."""
    if isinstance(value, str):
        return _str(value, flow)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if value is None:
        return "null"
    raise TypeError(f"cannot write {type(value).__name__} as a YAML scalar")


def _flow(value: Any, top: bool = True) -> str:
    """A block value: a scalar, or a list / flat mapping in flow style: [a, b] / { k: v }."""
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k}: {_flow(v, False)}" for k, v in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_flow(v, False) for v in value) + "]"
    return scalar(value, flow=not top)


_UNIT_KEYS = ("id", "name", "name_en", "parent", "head")
_MAILBOX_KEYS = (
    "address", "id", "name", "unit", "kind", "sponsor", "role", "title", "state", "suspended",
    "cancelled", "created", "request", "quota_mb", "birth", "id_digits", "aliases",
    "forward_to", "naming_exemption",
)  # fmt: skip


def _ordered(item: Mapping[str, Any], order: Sequence[str]) -> list[str]:
    keys = [k for k in order if k in item]
    keys.extend(k for k in item if k not in order)
    return keys


def _comment_lines(text: str, indent: str) -> list[str]:
    return [f"{indent}# {line}".rstrip() for line in text.splitlines()]


def _emit_unit(unit: Mapping[str, Any], out: list[str]) -> None:
    first = True
    for key in _ordered(unit, _UNIT_KEYS):
        value = unit[key]
        lead = "  - " if first else "    "
        first = False
        if key == "mailbox" and isinstance(value, Mapping):
            out.append(f"{lead}mailbox:")
            for sub_key, sub in value.items():
                out.append(f"      {sub_key}: {_flow(sub)}")
        else:
            out.append(f"{lead}{key}: {_flow(value)}")


def _emit_mailbox(mailbox: Mapping[str, Any], out: list[str]) -> None:
    first = True
    for key in _ordered(mailbox, _MAILBOX_KEYS):
        lead = "  - " if first else "    "
        first = False
        out.append(f"{lead}{key}: {_flow(mailbox[key])}")


def dump(
    data: Mapping[str, Any],
    *,
    header: str | None = None,
    unit_comments: Mapping[int, str] | None = None,
    mailbox_comments: Mapping[int, str] | None = None,
) -> str:
    """The data file text for `data`, with optional comments.

    `header` is a comment block after the schema line; `unit_comments[i]` /
    `mailbox_comments[i]` are written as comment lines just before units[i] / mailboxes[i],
    to group a long list for the admin who reads it.
    """
    out: list[str] = [SCHEMA_LINE]
    if header:
        out.extend(_comment_lines(header, ""))
    out.append(f"version: {scalar(data.get('version', 1))}")
    out.append("organization:")
    for key, value in data["organization"].items():
        out.append(f"  {key}: {_flow(value)}")
    out.append("")
    if data["policy"] == POLICY:
        out.extend(POLICY_YAML.rstrip("\n").split("\n"))
    else:  # a caller-supplied policy: plain flow style, no comments
        out.append("policy:")
        for key, value in data["policy"].items():
            out.append(f"  {key}: {_flow(value)}")
    out.append("")
    out.append("units:")
    unit_comments = unit_comments or {}
    for i, unit in enumerate(data["units"]):
        if i in unit_comments:
            out.extend(_comment_lines(unit_comments[i], "  "))
        _emit_unit(unit, out)
    out.append("")
    out.append("mailboxes:")
    mailbox_comments = mailbox_comments or {}
    for i, mailbox in enumerate(data["mailboxes"]):
        if i in mailbox_comments:
            out.extend(_comment_lines(mailbox_comments[i], "  "))
        _emit_mailbox(mailbox, out)
    out.append("")
    return "\n".join(out)


# =========================================================================== unit catalogue

# Top-level units of MONRE (Nghị định 36/2017/NĐ-CP), with the abbreviations used in
# practice. (id, name, name_en, kind) — kind picks titles (LEADER_TITLES / staff pools).
REAL_UNITS: tuple[tuple[str, str, str, str], ...] = (
    ("cntt", "Cục Công nghệ thông tin và Dữ liệu tài nguyên môi trường",
     "Department of Information Technology and Environmental Data", "cuc"),
    ("vpb", "Văn phòng Bộ", "Ministry Office", "vanphong"),
    ("ttb", "Thanh tra Bộ", "Ministry Inspectorate", "thanhtra"),
    ("tccb", "Vụ Tổ chức cán bộ", "Department of Personnel and Organization", "vu"),
    ("khtc", "Vụ Kế hoạch - Tài chính", "Department of Planning and Finance", "vu"),
    ("khcn", "Vụ Khoa học và Công nghệ", "Department of Science and Technology", "vu"),
    ("htqt", "Vụ Hợp tác quốc tế", "Department of International Cooperation", "vu"),
    ("pc", "Vụ Pháp chế", "Department of Legal Affairs", "vu"),
    ("tcqldd", "Tổng cục Quản lý đất đai", "General Department of Land Administration",
     "tongcuc"),
    ("tcmt", "Tổng cục Môi trường", "Vietnam Environment Administration", "tongcuc"),
    ("tckttv", "Tổng cục Khí tượng Thủy văn", "Viet Nam Meteorological and Hydrological "
     "Administration", "tongcuc"),
    ("tcdcks", "Tổng cục Địa chất và Khoáng sản Việt Nam",
     "General Department of Geology and Minerals of Vietnam", "tongcuc"),
    ("tcbhd", "Tổng cục Biển và Hải đảo Việt Nam",
     "Vietnam Administration of Seas and Islands", "tongcuc"),
    ("qltnn", "Cục Quản lý tài nguyên nước", "Department of Water Resources Management", "cuc"),
    ("bdkh", "Cục Biến đổi khí hậu", "Department of Climate Change", "cuc"),
    ("dobd", "Cục Đo đạc, Bản đồ và Thông tin địa lý Việt Nam",
     "Department of Survey, Mapping and Geographic Information of Viet Nam", "cuc"),
    ("vtqg", "Cục Viễn thám quốc gia", "National Remote Sensing Department", "cuc"),
    ("isponre", "Viện Chiến lược, Chính sách tài nguyên và môi trường",
     "Institute of Strategy and Policy on Natural Resources and Environment", "vien"),
    ("imhen", "Viện Khoa học Khí tượng Thủy văn và Biến đổi khí hậu",
     "Viet Nam Institute of Meteorology, Hydrology and Climate Change", "vien"),
    ("hunre", "Trường Đại học Tài nguyên và Môi trường Hà Nội",
     "Hanoi University of Natural Resources and Environment", "truong"),
    ("hcmunre", "Trường Đại học Tài nguyên và Môi trường Thành phố Hồ Chí Minh",
     "Ho Chi Minh City University of Natural Resources and Environment", "truong"),
    ("baotnmt", "Báo Tài nguyên và Môi trường", "Natural Resources and Environment Newspaper",
     "bao"),
    ("tapchi", "Tạp chí Tài nguyên và Môi trường",
     "Natural Resources and Environment Magazine", "bao"),
    ("nawapi", "Trung tâm Quy hoạch và Điều tra tài nguyên nước quốc gia",
     "National Center for Water Resources Planning and Investigation", "trungtam"),
)  # fmt: skip

# Kinds of sub-units (phòng, văn phòng, trung tâm) used under any parent.
SUB_UNITS: tuple[tuple[str, str, str, str], ...] = (
    ("vp", "Văn phòng", "Office", "vanphong"),
    ("tchc", "Phòng Tổ chức - Hành chính", "Division of Organization and Administration",
     "phong"),
    ("kh", "Phòng Kế hoạch - Tài chính", "Division of Planning and Finance", "phong"),
    ("kt", "Phòng Kỹ thuật", "Technical Division", "phong"),
    ("nv", "Phòng Nghiệp vụ", "Operations Division", "phong"),
    ("dl", "Phòng Quản lý dữ liệu", "Data Management Division", "phong"),
    ("pcdt", "Phòng Pháp chế - Thanh tra", "Division of Legal Affairs and Inspection", "phong"),
    ("qt", "Phòng Hợp tác quốc tế", "International Cooperation Division", "phong"),
)  # fmt: skip

# Synthetic top-level units once the real list is used up: regional centres.
_CENTRE_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("qtmt", "Trung tâm Quan trắc môi trường", "Environmental Monitoring Centre"),
    ("kttv", "Đài Khí tượng Thủy văn", "Hydro-Meteorological Station"),
    ("qhtnn", "Liên đoàn Quy hoạch và Điều tra tài nguyên nước",
     "Water Resources Planning and Investigation Federation"),
    ("dcks", "Liên đoàn Địa chất", "Geological Federation"),
    ("ddbd", "Trung tâm Đo đạc bản đồ", "Survey and Mapping Centre"),
    ("ktdd", "Trung tâm Kỹ thuật tài nguyên đất", "Land Resources Engineering Centre"),
)  # fmt: skip
_REGIONS: tuple[tuple[str, str, str], ...] = (
    ("mb", "miền Bắc", "Northern Region"), ("mt", "miền Trung", "Central Region"),
    ("mn", "miền Nam", "Southern Region"), ("tn", "Tây Nguyên", "Central Highlands"),
    ("tb", "khu vực Tây Bắc", "North-West Region"), ("db", "khu vực Đông Bắc",
    "North-East Region"), ("vb", "khu vực Việt Bắc", "Viet Bac Region"),
    ("btb", "khu vực Bắc Trung Bộ", "North Central Region"),
    ("ntb", "khu vực Nam Trung Bộ", "South Central Region"),
    ("nb", "khu vực Nam Bộ", "Southern Region"),
    ("dbscl", "khu vực Đồng bằng sông Cửu Long", "Mekong Delta Region"),
)  # fmt: skip

# Associations and unions that may register (Quy chế, "Đối tượng được cấp hộp thư").
AFFILIATE_ORGS: tuple[tuple[str, str], ...] = (
    ("congdoan", "Công đoàn Bộ Tài nguyên và Môi trường"),
    ("doanthanhnien", "Đoàn Thanh niên Bộ Tài nguyên và Môi trường"),
    ("hoitdbdvt", "Hội Trắc địa - Bản đồ - Viễn thám Việt Nam"),
    ("hoikttv", "Hội Khí tượng Thủy văn Việt Nam"),
    ("hoidiachat", "Hội Địa chất Việt Nam"),
    ("hoiccb", "Hội Cựu chiến binh cơ quan Bộ"),
    ("hoidatdai", "Hội Khoa học Đất Việt Nam"),
    ("hoinuoc", "Hội Tài nguyên nước Việt Nam"),
)

# Staff pool per unit kind.
_STAFF_KIND = {
    "vu": "admin", "vanphong": "admin", "thanhtra": "thanhtra", "tongcuc": "technical",
    "cuc": "technical", "vien": "research", "truong": "school", "bao": "press",
    "trungtam": "technical", "phong": "technical",
}  # fmt: skip

SUSPEND_REASONS: tuple[tuple[str, float], ...] = (
    ("Nghỉ thai sản", 30), ("Đi học tập trung dài hạn ở nước ngoài", 15),
    ("Nghỉ ốm dài ngày", 10), ("Không đăng nhập quá 90 ngày", 25),
    ("Biệt phái có thời hạn", 8), ("Tạm đình chỉ công tác", 2),
    ("Nghi lộ mật khẩu, chờ xác minh", 10),
)  # fmt: skip
CANCEL_REASONS: tuple[tuple[str, float], ...] = (
    ("retired", 40), ("transferred", 30), ("left", 25), ("deceased", 2), ("duplicate", 1),
    ("other", 2),
)  # fmt: skip
# Other government domains staff forward to while seconded (policy: gov.vn and below).
GOV_DOMAINS = ("mard.gov.vn", "hanoi.gov.vn", "chinhphu.gov.vn", "most.gov.vn",
               "hochiminhcity.gov.vn", "danang.gov.vn", "mof.gov.vn")

ROLLOUT = dt.date(2016, 10, 3)  # accounts issued when Quyết định 2019/QĐ-BTNMT took effect
LAST_DAY = dt.date(2026, 11, 28)  # nothing dated after the day before "today" (2026-11-29)

_SUSPEND_POOL = WeightedPool(SUSPEND_REASONS)
_CANCEL_POOL = WeightedPool(CANCEL_REASONS)


def _code(unit: Mapping[str, Any]) -> str:
    """Issuer code in document numbers: the top-level unit's, 'vp.tcmt' -> 'TCMT'."""
    return unit["_local"].split(".")[-1].upper()


def _request(rng: random.Random, issuer: str) -> str:
    return f"{rng.randint(1, 2999)}/QĐ-{issuer}"


def _date_between(rng: random.Random, start: dt.date, end: dt.date) -> dt.date:
    return start + dt.timedelta(days=rng.randint(0, max(0, (end - start).days)))


def _make_units(rng: random.Random, n_units: int) -> list[dict[str, Any]]:
    """Unit records (with a private `_kind`/`_local`), top-level first, then sub-units."""
    n_top = max(1, math.ceil(n_units * 0.55))
    n_sub = n_units - n_top
    top: list[dict[str, Any]] = []
    used: set[str] = set()
    for uid, name, name_en, kind in REAL_UNITS[:n_top]:
        top.append({"id": uid, "name": name, "name_en": name_en, "_kind": kind})
        used.add(uid)
    k = 0
    while len(top) < n_top:  # regional centres: field × region, then numbered rounds
        f_abbr, f_name, f_en = _CENTRE_FIELDS[k % len(_CENTRE_FIELDS)]
        r_abbr, r_name, r_en = _REGIONS[(k // len(_CENTRE_FIELDS)) % len(_REGIONS)]
        rnd = k // (len(_CENTRE_FIELDS) * len(_REGIONS))
        uid = f"{f_abbr}{r_abbr}" + (str(rnd + 1) if rnd else "")
        name = f"{f_name} {r_name}" + (f" số {rnd + 1}" if rnd else "")
        name_en = f"{f_en}, {r_en}" + (f" No. {rnd + 1}" if rnd else "")
        k += 1
        if uid in used:
            continue
        used.add(uid)
        top.append({"id": uid, "name": name, "name_en": name_en, "_kind": "trungtam"})
    for unit in top:
        unit["_local"] = unit["id"]
    subs: list[dict[str, Any]] = []
    # Big units (Tổng cục, Cục, centres) get sub-units first, round-robin. The kind of
    # sub-unit cycles over the whole list, skipping kinds the parent already has, so ids
    # repeat (and need a number: kt2) only once every kind is in use.
    big = {"tongcuc", "cuc", "trungtam", "vien", "truong"}
    parents = [u for u in top if u["_kind"] in big] + [u for u in top if u["_kind"] not in big]
    has: dict[str, set[str]] = {}
    cursor = 0
    for i in range(n_sub):
        parent = parents[i % len(parents)]
        mine = has.setdefault(parent["id"], set())
        if len(mine) == len(SUB_UNITS):
            mine.clear()  # a parent with more sub-units than kinds: start over (kt, kt2)
        while SUB_UNITS[cursor % len(SUB_UNITS)][0] in mine:
            cursor += 1
        abbr, name, name_en, kind = SUB_UNITS[cursor % len(SUB_UNITS)]
        cursor += 1
        mine.add(abbr)
        uid, n = abbr, 2
        while uid in used:
            uid, n = f"{abbr}{n}", n + 1
        used.add(uid)
        subs.append({
            "id": uid, "name": name, "name_en": name_en, "parent": parent["id"],
            "_kind": kind, "_local": f"{uid}.{parent['_local']}",
        })
    return top + subs


def generate(count: int, seed: int = 0) -> dict[str, Any]:
    """A complete data-file structure with exactly `count` mailboxes (personal + affiliate)."""
    if count < 1:
        raise ValueError("count must be at least 1")
    rng = random.Random(seed)
    policy = NamingPolicy.from_dict(POLICY["naming"])
    units = _make_units(rng, max(2, round(count / 150)))
    by_id = {u["id"]: u for u in units}
    taken: set[str] = {u["_local"] for u in units}
    top_units = [u for u in units if "parent" not in u]

    # Service accounts and affiliates are listed first within their unit (`_grp` 0).
    mailboxes: list[dict[str, Any]] = []
    # Protected service accounts of the IT unit (policy.protected must all exist).
    protected = [("postmaster", "Postmaster"), ("abuse", "Tiếp nhận báo cáo lạm dụng"),
                 ("quantri", "Quản trị hệ thống thư điện tử")]
    for local, name in protected[: min(3, count)]:
        mailboxes.append({
            "address": local, "name": name, "unit": "cntt", "role": "admin",
            "title": "Tài khoản hệ thống", "created": ROLLOUT.isoformat(),
            "request": "285/QĐ-CNTT",
            "naming_exemption": {"reason": "Tài khoản dịch vụ theo RFC 2142",
                                 "request": "285/QĐ-CNTT"},
            "_grp": 0, "_created": ROLLOUT, "_i": len(mailboxes),
        })
        taken.add(local)
    if count < len(protected):  # too few mailboxes: the rest become aliases of postmaster
        mailboxes[0]["aliases"] = [local for local, _ in protected[count:]]
        taken.update(mailboxes[0]["aliases"])

    n_aff = min(count - len(mailboxes), count // 500)
    for i in range(n_aff):
        base, name = AFFILIATE_ORGS[i % len(AFFILIATE_ORGS)]
        rnd = i // len(AFFILIATE_ORGS)
        local = base + (str(rnd + 1) if rnd else "")
        if rnd:
            name = f"{name} (chi hội {rnd + 1})"
        sponsor = top_units[rng.randrange(len(top_units))]
        created = _date_between(rng, ROLLOUT, LAST_DAY)
        taken.add(local)
        mailboxes.append({
            "address": local, "name": name, "unit": sponsor["id"], "kind": "affiliate",
            "sponsor": sponsor["id"], "created": created.isoformat(),
            "request": _request(rng, _code(sponsor)),
            "naming_exemption": {"reason": "Tên tổ chức, không theo quy tắc cá nhân",
                                 "request": _request(rng, _code(sponsor))},
            "_grp": 0, "_created": created, "_i": len(mailboxes),
        })

    # People: draw everything first, then assign addresses in creation order, like reality.
    n_people = count - len(mailboxes)
    weights = [rng.lognormvariate(0, 0.6) for _ in units]
    unit_cum = list(_accumulate(weights))
    people: list[dict[str, Any]] = []
    for i in range(n_people):
        unit = rng.choices(units, cum_weights=unit_cum)[0]
        created = ROLLOUT if rng.random() < 0.35 else _date_between(rng, ROLLOUT, LAST_DAY)
        people.append({"_grp": 1, "_i": i, "_created": created, "name": random_name(rng),
                       "unit": unit["id"]})
    people.sort(key=lambda p: (p["_created"], p["_i"]))

    for p in people:
        unit = by_id[p["unit"]]
        person = Person(p["name"], unit=unit["_local"])
        if rng.random() < 0.01:  # a few records carry birth / id digits
            p["birth"] = f"{rng.randint(1962, 2002)}-{rng.randint(1, 12):02d}"
            p["id_digits"] = f"{rng.randrange(10000):04d}"
        local = policy.propose(person, taken)
        taken.add(local)
        p["address"] = local
        created: dt.date = p["_created"]
        p["created"] = created.isoformat()
        p["request"] = _request(rng, _code(unit)) if created != ROLLOUT else "285/QĐ-CNTT"
        r = rng.random()
        if r < 0.03 and created < LAST_DAY:
            date = _date_between(rng, max(created, dt.date(2024, 1, 1)), LAST_DAY)
            p["state"] = "suspended"
            p["suspended"] = {"date": date.isoformat(), "reason": _SUSPEND_POOL.pick(rng),
                              "request": _request(rng, _code(unit))}
        elif r < 0.08 and created < LAST_DAY:
            date = _date_between(rng, created + dt.timedelta(days=1), LAST_DAY)
            p["state"] = "cancelled"
            p["cancelled"] = {"date": date.isoformat(), "reason": _CANCEL_POOL.pick(rng),
                              "request": _request(rng, "TCCB")}
        if rng.random() < 0.02:  # old pre-2016 style address kept as an alias: tuan.na
            parts = split_name(person.name)
            initials = parts.surname[:1] + "".join(m[0] for m in parts.middle)
            alias = f"{parts.given}.{initials}"
            if initials and alias not in taken:
                taken.add(alias)
                p["aliases"] = [alias]
        if p.get("state") is None and rng.random() < 0.003:
            p["forward_to"] = [f"{local}@{rng.choice(GOV_DOMAINS)}"]

    # Heads, deputies and titles, per unit in creation order.
    by_unit: dict[str, list[dict[str, Any]]] = {u["id"]: [] for u in units}
    for p in people:
        by_unit[p["unit"]].append(p)
    for unit in units:
        staff = by_unit[unit["id"]]
        active = [p for p in staff if p.get("state") is None]
        head_title, deputy_title = LEADER_TITLES[unit["_kind"]]
        pool = STAFF_TITLE_POOLS[_STAFF_KIND[unit["_kind"]]]
        leaders: list[dict[str, Any]] = []
        if active:
            leaders.append(active[0])
            active[0]["role"], active[0]["title"] = "head", head_title
            unit["head"] = active[0]["address"]
            for deputy in active[1 : 1 + len(active) // 8]:
                deputy["role"], deputy["title"] = "head", deputy_title
                leaders.append(deputy)
        for p in staff:
            p.setdefault("title", pool.pick(rng))
        mailbox: dict[str, Any] = {}
        if rng.random() < 0.1:
            mailbox["quota_mb"] = rng.choice([20480, 30720, 51200])
        leader_ids = {id(p) for p in leaders}
        candidates = [p for p in active if id(p) not in leader_ids]
        if candidates:
            picks = rng.sample(candidates, min(len(candidates), rng.randint(1, 2)))
            mailbox["delegates"] = [p["address"] for p in picks]
        mailbox["request"] = _request(rng, _code(unit))
        unit["mailbox"] = mailbox

    order = {u["id"]: i for i, u in enumerate(units)}
    records = mailboxes + people
    records.sort(key=lambda p: (order[p["unit"]], p["_grp"], p["_created"], p["_i"]))
    for number, record in enumerate(records, 1):  # ids in file order, as an admin numbers
        record["id"] = number

    return {
        "version": 1,
        "organization": dict(ORGANIZATION),
        "policy": json.loads(json.dumps(POLICY)),  # a private deep copy
        "units": [_clean(u) for u in units],
        "mailboxes": [_clean(m) for m in records],
    }


def _accumulate(values: Sequence[float]) -> list[float]:
    total, out = 0.0, []
    for v in values:
        total += v
        out.append(total)
    return out


def _clean(record: Mapping[str, Any]) -> dict[str, Any]:
    """Drop private `_` keys and order fields the way the data file shows them."""
    keys = _MAILBOX_KEYS if "address" in record else (*_UNIT_KEYS, "mailbox")
    return {k: record[k] for k in _ordered(record, keys) if not k.startswith("_")}


def write(count: int, seed: int, path: str | Path) -> dict[str, Any]:
    """Generate and write the file; returns the data (for callers that want both)."""
    data = generate(count, seed)
    units = data["units"]
    first_sub = next((i for i, u in enumerate(units) if "parent" in u), None)
    unit_comments = {0: "Top-level units"}
    if first_sub is not None:
        unit_comments[first_sub] = "Sub-units (address: <abbr>.<parent>)"
    naming = NamingPolicy.from_dict(data["policy"]["naming"])
    by_id = {u["id"]: u for u in units}
    mailbox_comments: dict[int, str] = {}
    previous = None
    for i, m in enumerate(data["mailboxes"]):
        if m["unit"] != previous:
            previous = m["unit"]
            unit = by_id[previous]
            local = naming.unit_local(unit["id"], unit.get("parent"))  # parents are top-level
            mailbox_comments[i] = f"{local}@: {unit['name']}"
    text = dump(
        data,
        header=f"Synthetic directory: {count} mailboxes, seed {seed} "
        "(python -m tools.generate). Fictional people.",
        unit_comments=unit_comments,
        mailbox_comments=mailbox_comments,
    )
    Path(path).write_text(text, encoding="utf-8")
    return data


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.generate",
        description="Write a synthetic mailbox directory in the data-file format.",
    )
    parser.add_argument("--count", type=int, required=True, help="number of mailboxes")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("-o", "--output", default="-", help="output file (default: stdout)")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")
    try:
        if args.output == "-":
            data = generate(args.count, args.seed)
            sys.stdout.write(dump(data))
        else:
            write(args.count, args.seed, args.output)
    except OSError as exc:
        print(f"error: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
