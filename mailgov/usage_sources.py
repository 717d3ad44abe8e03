"""What one mail host knows about its users' activity, read on the host (issue 17 item 1).

Standard library only, no other mailgov import: the same file is the mail host's module_utils
(``module_utils/mailgov_usage_sources.py`` is a link to it), used by
``library/mailgov_usage_facts.py``; the controller merges the hosts' results into a snapshot
(mailgov/collect.py). Sources, each read once per run:

* Dovecot's ``last_login`` dict (IMAP and POP3 logins only: LMTP deliveries never load the
  plugin, roles/dovecot), key ``last-login/<address>``, value UNIX time;
* the mail log (Dovecot and Postfix through syslog): ``imap-login: Login: user=<a>`` and
  ``pop3-login`` (login days; webmail logs in over IMAP), submission's
  ``sasl_username=<a>`` (one per message sent, as Postfix accepted it), LMTP's
  ``to=<a>, relay=…dovecot-lmtp…, status=sent`` (one per message delivered to a mailbox),
  Dovecot's ``mail_log`` ``flag_change`` in a ``shared/<unit>/`` box (a delegate read the
  unit mailbox, roles/dovecot ``dovecot__usage_reads``), the rate-limit service's
  ``rate limit: <a> exceeded`` (a lock);
* the directory over ldapi as root: ``pwdLastSuccess`` (every successful bind: IMAP, POP3,
  submission; deliveries do not bind), ``pwdReset`` with ``pwdChangedTime`` (the initial
  password is unchanged since), ``pwdAccountLockedTime``;
* ``doveadm -f tab quota get -A`` (storage used and limit, KiB) where the stores are.

Nothing here writes anything but the result file; reading the log is one sequential pass.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

RESULT_VERSION = 1

# 2026-12-07T01:02:03.123456+00:00 host prog: …   (rsyslog on Debian 12, RFC 3339)
_ISO = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.\d+)?(Z|[+-]\d{2}:?\d{2})?\s")
# Dec  7 01:02:03 host prog: …   (traditional syslog; the year is not in the line)
_TRAD = re.compile(r"^([A-Z][a-z]{2}) +(\d{1,2}) (\d{2}:\d{2}:\d{2})\s")
_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}

_LOGIN = re.compile(r" (?:imap|pop3)-login: Login: user=<([^>]+)>")
_SUBMIT = re.compile(r" postfix/(?:submission|smtps|submissions)/smtpd\[\d+\]: [0-9A-Za-z]+: "
                     r"client=.*\bsasl_username=([^,\s]+)")
_DELIVER = re.compile(r" postfix/lmtp\[\d+\]: [0-9A-Za-z]+: to=<([^>]+)>,.*relay=[^,]*lmtp"
                      r"[^,]*,.* status=sent ")
# Dovecot 2.3: "imap(<user>)<pid><session>: flag_change: box=shared/<owner>/INBOX, uid=…"
_READ = re.compile(r" imap\(([^)]+)\)\S*: flag_change: box=shared/([^/,]+)/")
_LOCK = re.compile(r"rate limit: (\S+) exceeded \d+ messages .*: locked")


def _offset(tz: str | None) -> timedelta:
    if not tz or tz == "Z":
        return timedelta(0)
    sign = -1 if tz[0] == "-" else 1
    digits = tz[1:].replace(":", "")
    return sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))


def line_time(line: str, year: int) -> datetime | None:
    """The UTC time a log line starts with (traditional lines: local time taken as UTC, the
    year given: the hosts run in UTC, roles/hardening)."""
    m = _ISO.match(line)
    if m:
        try:
            t = datetime.fromisoformat(f"{m.group(1)}T{m.group(2)}")
        except ValueError:
            return None
        return t - _offset(m.group(3))
    m = _TRAD.match(line)
    if m and m.group(1) in _MONTHS:
        try:
            return datetime.fromisoformat(
                f"{year:04d}-{_MONTHS[m.group(1)]:02d}-{int(m.group(2)):02d}T{m.group(3)}")
        except ValueError:
            return None
    return None


def _local(address: str, domain: str) -> str | None:
    address = address.strip().lower()
    if "@" not in address:
        return None  # a login without the domain is not one of ours (service accounts)
    local, dom = address.rsplit("@", 1)
    return local if dom == domain else None


class Activity:
    """Per local part: login days, read days, sent and received per day, lock events."""

    def __init__(self) -> None:
        self.users: dict[str, dict[str, Any]] = {}

    def user(self, local: str) -> dict[str, Any]:
        u = self.users.get(local)
        if u is None:
            u = self.users[local] = {"login_days": set(), "read_days": set(), "sent": {},
                                     "received": {}, "lock_events": set(), "last_login": 0}
        return u

    def as_json(self) -> dict[str, Any]:
        return {k: {"login_days": sorted(v["login_days"]), "read_days": sorted(v["read_days"]),
                    "sent": v["sent"], "received": v["received"],
                    "lock_events": sorted(v["lock_events"]), "last_login": v["last_login"]}
                for k, v in sorted(self.users.items())}


def read_log(lines: Iterable[str], domain: str, first: date, last: date,
             activity: Activity) -> int:
    """Count the log lines of days first … last into ``activity``; returns lines used."""
    year = last.year
    used = 0
    for line in lines:
        if ("-login: Login:" not in line and "sasl_username=" not in line
                and "status=sent" not in line and "flag_change" not in line
                and "rate limit:" not in line):
            continue  # most lines: one substring test each
        t = line_time(line, year)
        if t is None:
            continue
        if t.date() > last and t.month == 12 and last.month == 1 and not _ISO.match(line):
            t = t.replace(year=year - 1)  # a traditional line of last December
        day = t.date()
        if not first <= day <= last:
            continue
        key = day.isoformat()
        m = _LOGIN.search(line)
        if m:
            local = _local(m.group(1), domain)
            if local:
                u = activity.user(local)
                u["login_days"].add(key)
                u["last_login"] = max(u["last_login"], int(t.replace(tzinfo=UTC).timestamp()))
                used += 1
            continue
        m = _SUBMIT.search(line)
        if m:
            local = _local(m.group(1), domain)
            if local:
                sent = activity.user(local)["sent"]
                sent[key] = sent.get(key, 0) + 1
                used += 1
            continue
        m = _DELIVER.search(line)
        if m:
            local = _local(m.group(1), domain)
            if local:
                got = activity.user(local)["received"]
                got[key] = got.get(key, 0) + 1
                used += 1
            continue
        m = _READ.search(line)
        if m:
            owner = _local(m.group(2), domain)
            if owner:  # the unit mailbox (shared/<address>/…) was read that day
                activity.user(owner)["read_days"].add(key)
                used += 1
            continue
        m = _LOCK.search(line)
        if m:
            local = _local(m.group(1), domain)
            if local:
                activity.user(local)["lock_events"].add(t.strftime("%Y-%m-%dT%H:%M:%SZ"))
                used += 1
    return used


def open_log(path: str) -> Iterator[str]:
    opener: Any = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        yield from f


def parse_last_login_dict(text: str, domain: str) -> dict[str, int]:
    """Dovecot's file dict: key and value on alternating lines (``shared/`` prefix kept by
    the proxy). Key ``last-login/<address>``, value UNIX time."""
    out: dict[str, int] = {}
    lines = text.splitlines()
    for key, value in zip(lines[::2], lines[1::2], strict=False):
        key = key.removeprefix("shared/")
        if not key.startswith("last-login/"):
            continue
        local = _local(key[len("last-login/"):], domain)
        if local and value.strip().isdigit():
            out[local] = max(out.get(local, 0), int(value))
    return out


def parse_quota(text: str, domain: str) -> dict[str, tuple[int, int | None]]:
    """``doveadm -f tab quota get -A``: Username, Quota name, Type, Value, Limit, % (KiB for
    STORAGE; Limit "-" when unlimited)."""
    out: dict[str, tuple[int, int | None]] = {}
    rows = text.splitlines()
    if not rows:
        return out
    head = [h.strip().lower() for h in rows[0].split("\t")]
    try:
        iu, it, iv, il = (head.index("username"), head.index("type"), head.index("value"),
                          head.index("limit"))
    except ValueError:
        raise ValueError(f"doveadm quota get: unexpected header {rows[0]!r}") from None
    for row in rows[1:]:
        cells = row.split("\t")
        if len(cells) < len(head) or cells[it].strip() != "STORAGE":
            continue
        local = _local(cells[iu], domain)
        if not local or not cells[iv].strip().isdigit():
            continue
        lim = cells[il].strip()
        out[local] = (int(cells[iv]), int(lim) if lim.isdigit() else None)
    return out


def _gt(value: bytes | str | None) -> datetime | None:
    """LDAP GeneralizedTime (YYYYmmddHHMMSS[.fff]Z) as UTC."""
    if value is None:
        return None
    text = value.decode() if isinstance(value, bytes) else value
    m = re.match(r"^(\d{14})(?:\.\d+)?Z$", text)
    if not m:
        return None
    try:
        return datetime.strptime(m.group(1), "%Y%m%d%H%M%S")
    except ValueError:
        return None


PERMANENT_LOCK = "000001010000Z"


def read_directory(conn: Any, base_dn: str, domain: str) -> dict[str, dict[str, Any]]:
    """People's bind and password state from the local slapd (one paged-free search: the
    operational attributes of every inetOrgPerson with a mail address)."""
    import ldap  # python3-ldap, present where module_utils/mailgov_ldapi works

    attrs = ["mail", "pwdLastSuccess", "pwdReset", "pwdChangedTime", "pwdAccountLockedTime"]
    res = conn.search_ext_s(base_dn, ldap.SCOPE_SUBTREE, "(&(objectClass=inetOrgPerson)(mail=*))",
                            attrs)
    out: dict[str, dict[str, Any]] = {}
    for _dn, entry in res:
        if not isinstance(entry, dict) or not entry.get("mail"):
            continue
        local = _local(entry["mail"][0].decode(), domain)
        if not local:
            continue
        last = _gt((entry.get("pwdLastSuccess") or [None])[0])
        changed = _gt((entry.get("pwdChangedTime") or [None])[0])
        locked_raw = (entry.get("pwdAccountLockedTime") or [None])[0]
        locked_at = None if locked_raw in (None, PERMANENT_LOCK.encode()) else _gt(locked_raw)
        out[local] = {
            "pwd_last_success": (None if last is None
                                 else int(last.replace(tzinfo=UTC).timestamp())),
            "initial_unchanged": (entry.get("pwdReset") or [b""])[0] == b"TRUE",
            "password_since": None if changed is None else changed.date().isoformat(),
            "locked": locked_raw is not None,
            "locked_at": None if locked_at is None else locked_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    return out


def collect_host(params: dict[str, Any]) -> dict[str, Any]:
    """Everything this host knows for days ``first`` … ``last``; errors per source (a source
    that fails is reported, the others are still read)."""
    domain = params["domain"]
    first = date.fromisoformat(params["first"])
    last = date.fromisoformat(params["last"])
    result: dict[str, Any] = {"version": RESULT_VERSION, "first": params["first"],
                              "last": params["last"], "errors": [], "sources": []}
    activity = Activity()
    for path in params.get("log_files") or []:
        for p in sorted(_expand(path)):
            try:
                read_log(open_log(p), domain, first, last, activity)
                result["sources"].append(p)
            except OSError as exc:
                result["errors"].append(f"{p}: {exc.strerror or exc}")
    result["activity"] = activity.as_json()
    dict_path = params.get("last_login_dict")
    result["last_login"] = {}
    if dict_path:
        try:
            with open(dict_path, encoding="utf-8") as f:
                result["last_login"] = parse_last_login_dict(f.read(), domain)
            result["sources"].append(dict_path)
        except FileNotFoundError:
            result["sources"].append(f"{dict_path} (absent: nobody logged in yet)")
        except OSError as exc:
            result["errors"].append(f"{dict_path}: {exc.strerror or exc}")
    result["quota"] = {}
    if params.get("quota"):
        try:
            proc = subprocess.run([params.get("doveadm", "doveadm"), "-f", "tab", "quota", "get",
                                   "-A"], capture_output=True, text=True, timeout=3600,
                                  check=False)
            if proc.returncode != 0:
                raise OSError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip()
                              else f"exit {proc.returncode}")
            result["quota"] = {k: list(v) for k, v in parse_quota(proc.stdout, domain).items()}
            result["sources"].append("doveadm quota get -A")
        except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
            result["errors"].append(f"doveadm quota get -A: {exc}")
    result["published_units"] = []
    pub = params.get("published_dir")
    if pub:
        try:
            with open(os.path.join(pub, "published.json"), encoding="utf-8") as f:
                units = json.load(f).get("units", [])
            result["published_units"] = sorted(
                u for u in units if isinstance(u, str)
                and os.path.isfile(os.path.join(pub, "units", f"{u}.vcf")))
        except FileNotFoundError:
            pass  # nothing published on this host
        except (OSError, ValueError, AttributeError) as exc:
            result["errors"].append(f"{pub}/published.json: {exc}")
    result["directory"] = {}
    if params.get("base_dn"):
        try:
            conn = params["connect"]()
            try:
                result["directory"] = read_directory(conn, params["base_dn"], domain)
            finally:
                conn.unbind_s()
            result["sources"].append("ldapi")
        except Exception as exc:  # the module's LdapiError or python-ldap's: one line
            result["errors"].append(f"directory: {exc}")
    return result


def _expand(pattern: str) -> list[str]:
    import glob

    return [p for p in glob.glob(pattern) if os.path.isfile(p)]


def write_result(result: dict[str, Any], dest: str) -> None:
    """Write the result for the controller to fetch: root only (addresses, activity)."""
    tmp = f"{dest}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(result, f, separators=(",", ":"), sort_keys=True)
    os.replace(tmp, dest)
