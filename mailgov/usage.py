"""Usage snapshots and the yearly evaluation's figures per unit and for the ministry (pure).

A *snapshot* is what one collection (``mailgov collect``, ``playbooks/usage.yml``) saw on the
servers, up to and including one day. It is a JSON file, never in git, in the controller's
snapshot directory (default ``/var/lib/mailgov/usage/``, one file per day named
``usage-YYYY-MM-DD.json``; ``docs/usage.md`` has the retention). Format version 1::

    {"format": "mailgov-usage-snapshot", "version": 1,
     "organization": {"domain": "monre.gov.vn"},
     "date": "2026-12-07",                  # the last day the figures cover
     "collected_at": "2026-12-07T01:00:00Z",
     "days": 180,                           # per-day counts cover date-179 … date
     "hosts": {"mail1": {"ok": true}, "mail2": {"ok": false, "error": "unreachable: …"}},
     "published_units": ["vpb", …],         # units whose directory files the portal serves
     "mailboxes": {
       "natuan": {                          # local part (personal, affiliate or unit mailbox)
         "id": 1,                           # mailUidNumber (null for a unit mailbox)
         "last_login": "2026-12-01T08:00:00Z" | null,   # IMAP/POP3/webmail; never a delivery
         "login_days": ["2026-12-01", …],   # days with a login (Dovecot's log)
         "read_days": ["2026-12-01", …],    # days someone read it (owner or delegate)
         "sent": {"2026-12-01": 3}, "received": {"2026-12-01": 5},
         "storage_kib": 1234, "quota_kib": 2097152,     # null when the host was unreachable
         "initial_password": {"unchanged": true, "since": "2026-11-20"} | null,
         "locked": false, "lock_events": ["2026-11-30T10:00:00Z"]}}}

The figures (docs/usage.md, "Definitions"): staff with a mailbox (active personal mailboxes of
the unit) of the unit's ``headcount``; regular use in a window of W days (7, 30, 90, 180) =
logged in AND sent at least one message within the window; inactive = no login for
``policy.inactivity_lock_days``; quota buckets as Microsoft 365's mailbox usage report has them
(thresholds :data:`QUOTA_WARNING`, :data:`QUOTA_CANT_SEND`, :data:`QUOTA_CANT_SEND_RECEIVE`);
initial passwords unchanged past ``first_login_change_days``; unit mailbox read on every working
day (Monday to Friday) of the window; directory published; a ranking of the units.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from mailgov.i18n import _
from mailgov.model import Directory, Mailbox, Unit

FORMAT = "mailgov-usage-snapshot"
VERSION = 1
DEFAULT_DIR = "/var/lib/mailgov/usage"
# One year of daily snapshots and the previous year's last one: the yearly report compares
# with it (docs/usage.md, "Where snapshots live").
RETENTION_DAYS = 400
WINDOWS = (7, 30, 90, 180)
DEFAULT_WINDOW = 30
MAX_DAYS = 180  # per-day counts a snapshot carries (the longest window)

# Mailbox usage buckets: Microsoft 365's report "Mailbox usage" (Good, Warning issued, Send
# prohibited, Send/receive prohibited) with Exchange Online's default quotas as the reference:
# IssueWarningQuota 49 GB, ProhibitSendQuota 49.5 GB, ProhibitSendReceiveQuota 50 GB for a
# 50 GB mailbox (Microsoft Learn, "Exchange Online limits", mailbox storage limits), i.e. 98 %,
# 99 % and 100 % of the quota. Dovecot itself refuses only at 100 % (+10 % grace, quota_grace);
# the two lower buckets are warnings in the report, not limits the servers enforce.
QUOTA_WARNING = 0.98
QUOTA_CANT_SEND = 0.99
QUOTA_CANT_SEND_RECEIVE = 1.00
BUCKETS = ("good", "warning", "cant_send", "cant_send_receive", "unknown")

_FILE = re.compile(r"usage-([0-9]{4}-[0-9]{2}-[0-9]{2})\.json")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_STAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


class SnapshotError(Exception):
    """A snapshot that cannot be used: the message says which file and why."""


# --------------------------------------------------------------------------- the format


@dataclass(frozen=True, slots=True)
class Usage:
    """One mailbox's figures in a snapshot."""

    last_login: datetime | None = None
    login_days: frozenset[date] = frozenset()
    read_days: frozenset[date] = frozenset()
    sent: Mapping[date, int] = field(default_factory=dict)
    received: Mapping[date, int] = field(default_factory=dict)
    storage_kib: int | None = None
    quota_kib: int | None = None
    initial_unchanged: bool = False
    initial_since: date | None = None
    locked: bool = False
    lock_events: tuple[datetime, ...] = ()
    id: int | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    path: str
    domain: str
    day: date
    collected_at: str
    days: int
    hosts: Mapping[str, Mapping[str, Any]]
    published_units: frozenset[str]
    mailboxes: Mapping[str, Usage]

    @property
    def gaps(self) -> list[str]:
        """Hosts the collection could not read, with why (the report shows them)."""
        return [f"{h}: {v.get('error', 'not collected')}" for h, v in sorted(self.hosts.items())
                if not v.get("ok")]


def _stamp(value: Any, where: str, name: str = "") -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _STAMP.fullmatch(value):
        raise SnapshotError(_("{where}{name}: {value!r} is not a UTC time "
                              "YYYY-MM-DDTHH:MM:SSZ").format(
            where=where, name=name, value=value))
    try:
        return datetime.fromisoformat(value[:-1])
    except ValueError:
        raise SnapshotError(_("{where}{name}: {value!r} is not a real time").format(
            where=where, name=name, value=value)) from None


@lru_cache(maxsize=4096)
def _known_day(value: str) -> date | None:
    """A snapshot repeats the same 180 days in every row: each is checked once."""
    if not _DAY.fullmatch(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _day(value: Any, where: str) -> date:
    d = _known_day(value) if isinstance(value, str) else None
    if d is None:
        if isinstance(value, str) and _DAY.fullmatch(value):
            raise SnapshotError(_("{where}: {value!r} is not a real date").format(
                where=where, value=value))
        raise SnapshotError(_("{where}: {value!r} is not a date YYYY-MM-DD").format(
            where=where, value=value))
    return d


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SnapshotError(_("{where}: {value!r} is not a count (a whole number ≥ 0)").format(
            where=where, value=value))
    return value


def _optional_count(value: Any, where: str, name: str = "") -> int | None:
    if value is None or (type(value) is int and value >= 0):
        return value
    return _count(value, where + name)


def _per_day(value: Any, where: str, name: str = "") -> dict[date, int]:
    if not isinstance(value, dict):
        raise SnapshotError(_("{where}{name}: expected {{\"YYYY-MM-DD\": count}}").format(
            where=where, name=name))
    out = {}
    for k, v in value.items():
        d = _known_day(k) if isinstance(k, str) else None
        if d is None or type(v) is not int or v < 0:  # the hot path; messages below
            d = _day(k, f"{where}{name}.{k}")
            v = _count(v, f"{where}{name}.{k}")
        out[d] = v
    return out


def _days(value: Any, where: str, name: str = "") -> frozenset[date]:
    if not isinstance(value, list | tuple):
        raise SnapshotError(_("{where}{name}: expected a list of dates").format(
            where=where, name=name))
    out = set()
    for i, v in enumerate(value):
        d = _known_day(v) if isinstance(v, str) else None
        out.add(d if d is not None else _day(v, f"{where}{name}[{i}]"))
    return frozenset(out)


_EMPTY: dict[str, int] = {}


_FIELDS = frozenset({"id", "last_login", "login_days", "read_days", "sent", "received",
                     "storage_kib", "quota_kib", "initial_password", "locked", "lock_events"})


def _usage(local: str, m: Any, where: str) -> Usage:
    if not isinstance(m, dict):
        raise SnapshotError(_("{where}: expected an object").format(where=where))
    unknown = sorted(m.keys() - _FIELDS)
    if unknown:
        raise SnapshotError(_("{where}: unknown field {unknown!r}").format(
            where=where, unknown=unknown[0]))
    ip = m.get("initial_password")
    if ip is not None and (not isinstance(ip, dict) or not isinstance(ip.get("unchanged"), bool)):
        raise SnapshotError(_("{where}.initial_password: expected {{\"unchanged\": true|false, "
                              "\"since\": \"YYYY-MM-DD\"|null}}").format(where=where))
    locked = m.get("locked", False)
    if not isinstance(locked, bool):
        raise SnapshotError(_("{where}.locked: expected true or false").format(where=where))
    events = m.get("lock_events", [])
    if not isinstance(events, list):
        raise SnapshotError(_("{where}.lock_events: expected a list of times").format(where=where))
    ident = m.get("id")
    return Usage(
        # Field names are joined to ``where`` only for a message (46,000 rows, 11 fields).
        last_login=_stamp(m.get("last_login"), where, ".last_login"),
        login_days=_days(m.get("login_days", ()), where, ".login_days"),
        read_days=_days(m.get("read_days", ()), where, ".read_days"),
        sent=_per_day(m.get("sent", _EMPTY), where, ".sent"),
        received=_per_day(m.get("received", _EMPTY), where, ".received"),
        storage_kib=_optional_count(m.get("storage_kib"), where, ".storage_kib"),
        quota_kib=_optional_count(m.get("quota_kib"), where, ".quota_kib"),
        initial_unchanged=bool(ip and ip["unchanged"]),
        initial_since=None if not ip or ip.get("since") is None
        else _day(ip["since"], f"{where}.initial_password.since"),
        locked=locked,
        lock_events=tuple(t for i, e in enumerate(events)
                          if (t := _stamp(e, where, f".lock_events[{i}]")) is not None),
        id=_optional_count(ident, where, ".id"),
    )


def parse(doc: Any, path: str = "<snapshot>") -> Snapshot:
    """Check a decoded snapshot document and build it; :class:`SnapshotError` names the field."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise SnapshotError(_("{path}: not a mailgov usage snapshot (no \"format\": "
                              "\"{format}\")").format(path=path, format=FORMAT))
    if doc.get("version") != VERSION:
        raise SnapshotError(_("{path}: snapshot format version {version!r}; this mailgov reads "
                              "version {supported}").format(
            path=path, version=doc.get('version'), supported=VERSION))
    org = doc.get("organization")
    if not isinstance(org, dict) or not isinstance(org.get("domain"), str):
        raise SnapshotError(_("{path}: organization.domain missing").format(path=path))
    day = _day(doc.get("date"), f"{path}: date")
    days = _count(doc.get("days", MAX_DAYS), f"{path}: days")
    hosts = doc.get("hosts", {})
    if not isinstance(hosts, dict) or not all(isinstance(v, dict) for v in hosts.values()):
        raise SnapshotError(_("{path}: hosts: expected {{host: {{\"ok\": …}}}}").format(path=path))
    pub = doc.get("published_units", [])
    if not isinstance(pub, list) or not all(isinstance(u, str) for u in pub):
        raise SnapshotError(_("{path}: published_units: expected a list of unit ids").format(
            path=path))
    boxes = doc.get("mailboxes")
    if not isinstance(boxes, dict):
        raise SnapshotError(_("{path}: mailboxes: expected an object keyed by local part").format(
            path=path))
    return Snapshot(
        path, org["domain"], day, str(doc.get("collected_at", "")), days, hosts,
        frozenset(pub),
        {local: _usage(local, m, f"{path}: mailboxes.{local}") for local, m in boxes.items()},
    )


def load(path: str | Path) -> Snapshot:
    """Read one snapshot file (missing, unreadable or corrupt: :class:`SnapshotError`)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SnapshotError(_("{path}: no such snapshot (mailgov collect writes them)").format(
            path=p)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SnapshotError(_("{path}: cannot read: {error}").format(path=p, error=exc)) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SnapshotError(_("{path}: corrupt snapshot: {error} at line {line} column "
                              "{column}").format(
            path=p, error=exc.msg, line=exc.lineno, column=exc.colno)) from None
    return parse(doc, str(p))


def check_against(snap: Snapshot, directory: Directory, today: date) -> None:
    """Refuse a snapshot of another organization or from the future."""
    if snap.domain != directory.organization.domain:
        raise SnapshotError(_("{path}: snapshot of {domain}, the data file is {data_domain}: "
                              "another organization's figures").format(
            path=snap.path, domain=snap.domain, data_domain=directory.organization.domain))
    if snap.day > today:
        raise SnapshotError(_("{path}: snapshot dated {day}, after today ({today}): a clock or "
                              "file name is wrong").format(
            path=snap.path, day=snap.day, today=today))


def file_name(day: date) -> str:
    return f"usage-{day.isoformat()}.json"


def snapshots_in(folder: str | Path) -> list[tuple[date, Path]]:
    """The snapshot files of a folder, oldest first (other files are ignored)."""
    out = []
    for p in Path(folder).iterdir():
        m = _FILE.fullmatch(p.name)
        if m:
            try:
                out.append((date.fromisoformat(m.group(1)), p))
            except ValueError:
                continue
    return sorted(out)


def expired(folder: str | Path, today: date, keep_days: int = RETENTION_DAYS) -> list[Path]:
    """Snapshot files older than the retention (``mailgov collect --prune`` removes them)."""
    return [p for d, p in snapshots_in(folder) if (today - d).days > keep_days]


def dump(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=1, sort_keys=True) + "\n"


# --------------------------------------------------------------------------- the figures


def working_days(first: date, last: date) -> list[date]:
    """Monday to Friday from first to last (public holidays are not modelled: docs/usage.md)."""
    n = (last - first).days + 1
    return [d for i in range(max(n, 0)) if (d := first + timedelta(days=i)).weekday() < 5]


def bucket(u: Usage | None) -> str:
    if u is None or u.storage_kib is None or not u.quota_kib:
        return "unknown"
    share = u.storage_kib / u.quota_kib
    if share >= QUOTA_CANT_SEND_RECEIVE:
        return "cant_send_receive"
    if share >= QUOTA_CANT_SEND:
        return "cant_send"
    if share >= QUOTA_WARNING:
        return "warning"
    return "good"


def _in(days: Iterable[date], first: date, last: date) -> bool:
    return any(first <= d <= last for d in days)


def logged_in(u: Usage | None, first: date, last: date) -> bool:
    if u is None:
        return False
    if u.last_login is not None and first <= u.last_login.date() <= last:
        return True
    return _in(u.login_days, first, last)


def sent_in(u: Usage | None, first: date, last: date) -> int:
    return 0 if u is None else sum(n for d, n in u.sent.items() if first <= d <= last)


def received_in(u: Usage | None, first: date, last: date) -> int:
    return 0 if u is None else sum(n for d, n in u.received.items() if first <= d <= last)


def last_activity(u: Usage | None) -> date | None:
    if u is None:
        return None
    days = [d for d in u.login_days]
    days += [d for d, n in u.sent.items() if n]
    if u.last_login is not None:
        days.append(u.last_login.date())
    return max(days) if days else None


@dataclass(frozen=True, slots=True)
class Person:
    """One mailbox's row (shown only in its unit's own report)."""

    address: str
    name: str
    title: str | None
    last_login: date | None
    sent: int
    received: int
    regular: bool
    inactive: bool
    bucket: str
    storage_mib: float | None
    quota_mib: int
    initial_overdue: bool
    locked: bool


@dataclass(slots=True)
class Figures:
    """The evaluation's figures for one unit (or the ministry, id "")."""

    id: str
    name: str
    name_en: str | None
    headcount: int | None
    mailboxes: int = 0  # staff with a mailbox: active personal mailboxes
    regular: dict[int, int] = field(default_factory=dict)  # window -> regular users
    logged_in: dict[int, int] = field(default_factory=dict)
    sent: dict[int, int] = field(default_factory=dict)
    received: dict[int, int] = field(default_factory=dict)
    inactive: int = 0
    buckets: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BUCKETS, 0))
    storage_mib: float = 0.0
    quota_mib: int = 0
    initial_overdue: int = 0
    locked: int = 0
    no_data: int = 0  # mailboxes the snapshot has no row for
    unit_mailbox_read_days: int | None = None
    working_days: int | None = None
    published: bool | None = None
    rank: int | None = None
    people: list[Person] = field(default_factory=list)

    # The ministry's "x" of "x of y": mailboxes of the units that have a headcount only, so
    # a unit without one does not inflate the share (units: None, all their mailboxes).
    counted: int | None = None

    @property
    def adoption(self) -> float | None:
        """Staff with a mailbox, share of the headcount (None without a headcount)."""
        if not self.headcount:
            return None
        return (self.mailboxes if self.counted is None else self.counted) / self.headcount

    def regular_share(self, window: int) -> float | None:
        """Regular users, share of the staff with a mailbox (None without mailboxes)."""
        return self.regular.get(window, 0) / self.mailboxes if self.mailboxes else None

    def score(self, window: int) -> float | None:
        """What the ranking orders by: regular users of the headcount (use and adoption in
        one figure), or of the mailboxes for a unit without a headcount."""
        if self.headcount:
            return self.regular.get(window, 0) / self.headcount
        return self.regular_share(window)

    @property
    def read_every_working_day(self) -> bool | None:
        if self.working_days is None or self.unit_mailbox_read_days is None:
            return None
        return self.unit_mailbox_read_days >= self.working_days


@dataclass(slots=True)
class Evaluation:
    snapshot_day: date
    window: int
    ministry: Figures
    units: list[Figures]
    gaps: list[str]
    unknown_rows: int  # snapshot rows the data file has no mailbox for

    def unit(self, unit_id: str) -> Figures:
        for f in self.units:
            if f.id == unit_id:
                return f
        raise KeyError(unit_id)


def _window_first(last: date, window: int) -> date:
    return last - timedelta(days=window - 1)


def evaluate(directory: Directory, snap: Snapshot, unit_locals: Mapping[str, str],
             window: int = DEFAULT_WINDOW) -> Evaluation:
    """Every figure of the evaluation from the data file (who) and one snapshot (what)."""
    if window not in WINDOWS:
        raise ValueError(f"window {window}: one of {', '.join(map(str, WINDOWS))} days")
    last = snap.day
    policy = directory.policy
    deadline = timedelta(days=policy.password_users.first_login_change_days)
    admin_deadline = timedelta(days=policy.password_administrators.first_login_change_days)
    wfirst = _window_first(last, window)
    workdays = working_days(wfirst, last)
    ministry = Figures("", directory.organization.name, directory.organization.name_en,
                       None)
    by_unit: dict[str, Figures] = {}
    for u in directory.units:
        f = Figures(u.id, u.name, u.name_en, u.headcount)
        local = unit_locals.get(u.id)
        row = snap.mailboxes.get(local) if local else None
        f.working_days = len(workdays)
        f.unit_mailbox_read_days = 0 if row is None else sum(
            1 for d in workdays if d in row.read_days or d in row.login_days)
        f.published = u.id in snap.published_units
        by_unit[u.id] = f
    known = set(unit_locals.values())
    for m in directory.mailboxes:
        if m.state != "active" or m.kind != "personal":
            continue
        known.add(m.address)
        f = by_unit.get(m.unit)
        if f is None:  # not possible in validated data; keep the ministry's total right
            continue
        row = snap.mailboxes.get(m.address)
        r = _row(row, last)
        person = _person(m, row, r, last, policy.inactivity_lock_days,
                         admin_deadline if m.role == "admin" else deadline, window)
        for target in (f, ministry):
            _add(target, person, row, r)
        f.people.append(person)
    with_headcount = [f for f in by_unit.values() if f.headcount is not None]
    if with_headcount:
        ministry.headcount = sum(f.headcount or 0 for f in with_headcount)
        ministry.counted = sum(f.mailboxes for f in with_headcount)
    units = list(by_unit.values())
    _rank(units, window)
    known |= {m.address for m in directory.mailboxes}
    return Evaluation(last, window, ministry, units, snap.gaps,
                      sum(1 for k in snap.mailboxes if k not in known))


@dataclass(frozen=True, slots=True)
class _Row:
    """One mailbox's figures per window (index i = WINDOWS[i]), computed in one pass."""

    latest_login: date | None
    logged_in: tuple[bool, ...]
    sent: tuple[int, ...]
    received: tuple[int, ...]


@lru_cache(maxsize=64)
def _window_index(last: date) -> dict[date, int]:
    """Day -> index of the shortest window holding it (its age decides), for one last day."""
    out = {}
    for age in range(max(WINDOWS)):
        out[last - timedelta(days=age)] = next(i for i, w in enumerate(WINDOWS) if age < w)
    return out


def _per_window(per_day: Mapping[date, int], last: date) -> tuple[int, ...]:
    index = _window_index(last)
    sums = [0] * len(WINDOWS)
    for d, n in per_day.items():
        i = index.get(d)
        if i is not None:
            sums[i] += n
    for i in range(1, len(sums)):  # a longer window holds the shorter ones
        sums[i] += sums[i - 1]
    return tuple(sums)


def _row(u: Usage | None, last: date) -> _Row:
    if u is None:
        zero = (0,) * len(WINDOWS)
        return _Row(None, (False,) * len(WINDOWS), zero, zero)
    logins = [d for d in u.login_days if d <= last]
    if u.last_login is not None and u.last_login.date() <= last:
        logins.append(u.last_login.date())
    latest = max(logins, default=None)
    age = None if latest is None else (last - latest).days
    return _Row(latest, tuple(age is not None and age < w for w in WINDOWS),
                _per_window(u.sent, last), _per_window(u.received, last))


def _person(m: Mailbox, row: Usage | None, r: _Row, last: date, inactive_days: int,
            deadline: timedelta, window: int) -> Person:
    i = WINDOWS.index(window)
    overdue = bool(row and row.initial_unchanged and row.initial_since is not None
                   and last > row.initial_since + deadline)
    inactive = r.latest_login is None or (last - r.latest_login).days >= inactive_days
    return Person(
        m.address, m.name, m.title, r.latest_login, r.sent[i], r.received[i],
        r.logged_in[i] and r.sent[i] > 0, inactive, bucket(row),
        None if row is None or row.storage_kib is None else round(row.storage_kib / 1024, 1),
        m.quota_mb, overdue, bool(row and row.locked),
    )


def _add(f: Figures, p: Person, row: Usage | None, r: _Row) -> None:
    f.mailboxes += 1
    for i, w in enumerate(WINDOWS):
        f.sent[w] = f.sent.get(w, 0) + r.sent[i]
        f.received[w] = f.received.get(w, 0) + r.received[i]
        f.logged_in[w] = f.logged_in.get(w, 0) + r.logged_in[i]
        f.regular[w] = f.regular.get(w, 0) + (r.logged_in[i] and r.sent[i] > 0)
    f.inactive += p.inactive
    f.buckets[p.bucket] += 1
    f.storage_mib += p.storage_mib or 0.0
    f.quota_mib += p.quota_mib
    f.initial_overdue += p.initial_overdue
    f.locked += p.locked
    f.no_data += row is None


def _rank(units: Sequence[Figures], window: int) -> None:
    """Rank by :meth:`Figures.score`, then adoption; equal figures share a rank (1, 2, 2, 4).

    Units with neither a headcount nor staff mailboxes are not ranked (rank None).
    """
    ranked = [f for f in units if f.score(window) is not None]
    ranked.sort(key=lambda f: (-(f.score(window) or 0.0), -(f.adoption or 0.0), f.id))
    previous: tuple[float, float] | None = None
    for i, f in enumerate(ranked, 1):
        key = (round(f.score(window) or 0.0, 9), round(f.adoption or 0.0, 9))
        f.rank = ranked[i - 2].rank if previous == key and i > 1 else i
        previous = key


def percent(share: float | None) -> str:
    """A share as the report prints it: one decimal, "–" when it cannot be computed."""
    if share is None or math.isnan(share):
        return "–"
    return f"{share * 100:.1f}"


def unit_of(directory: Directory, unit_id: str) -> Unit | None:
    return next((u for u in directory.units if u.id == unit_id), None)
