"""Who wrote what in the directory, and from which data commit (docs/reconcile.md, "Audit").

The provider's accesslog overlay (roles/openldap) records every successful write to the
data database under ``cn=accesslog``: the operation (reqType), the entry (reqDN), who
(reqAuthzID), when (reqStart) and the changed values (reqMod). The reconciler adds nothing to
the entries it writes; instead, while it applies it holds its lock entry, whose value names
the data commit and the request (mailgov/lock.py), and the access log records that value when
the lock is taken and at each refresh. So a write is the reconciler's, from commit C for
request R, when it was made by the reconciler's account while that account held a lock whose
latest value says C and R. Every other write (an administrator's ldapmodify, another tool)
was made outside git and is shown with its author: in `mailgov plan` next to the change that
puts it back, and in `mailgov history`.

Bind bookkeeping (pwdLastSuccess, pwdFailureTime …, written by slapd on logins) is not a change
of the record and is left out; password values are never shown.
"""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

from ldap3 import SUBTREE, Connection
from ldap3.utils.conv import escape_filter_chars

from mailgov.i18n import _
from mailgov.lock import LOCK_RDN

SUFFIX = "cn=accesslog"
#: Attributes slapd writes by itself on binds and writes; not a change of the record.
BOOKKEEPING = frozenset(a.lower() for a in (
    "pwdLastSuccess", "pwdFailureTime", "authTimestamp", "pwdGraceUseTime",
    "modifiersName", "modifyTimestamp", "entryCSN", "creatorsName", "createTimestamp",
    "entryUUID", "structuralObjectClass", "subschemaSubentry", "hasSubordinates",
    "entryDN", "contextCSN"))
#: Values never shown (hashes, password history).
SECRET = frozenset(a.lower() for a in ("userPassword", "pwdHistory"))
_ATTRS = ["reqStart", "reqType", "reqDN", "reqAuthzID", "reqMod", "reqNewRDN", "reqResult"]


class AuditError(Exception):
    """The access log cannot be read (one line)."""


@dataclass(frozen=True)
class Run:
    """One apply of the reconciler, as its lock value recorded it."""

    commit: str | None
    ref: str | None
    owner: str | None

    def describe(self) -> str:
        out = _("commit {commit}").format(
            commit=self.commit[:12] if self.commit else _("(not in git)"))
        if self.ref:
            out += _(", request {ref}").format(ref=self.ref)
        return out


@dataclass
class Write:
    when: datetime
    op: str  # add, modify, delete, modrdn
    dn: str
    who: str  # the authorization DN, without "dn:"
    mods: tuple[str, ...] = ()  # reqMod values: "attr:+ value", "attr:= value" …
    new_rdn: str | None = None
    run: Run | None = None  # set by attribute(): the reconciler's run it belongs to
    by_reconciler: bool = False

    @property
    def attributes(self) -> list[str]:
        seen: list[str] = []
        for m in self.mods:
            name = m.split(":", 1)[0]
            if name not in seen:
                seen.append(name)
        return seen

    @property
    def bookkeeping(self) -> bool:
        """Only slapd's own bind/write stamps changed (a login, not an edit)."""
        return self.op == "modify" and bool(self.mods) and all(
            a.lower() in BOOKKEEPING for a in self.attributes)

    def changes(self, limit: int = 6) -> str:
        """What changed, one line; values of secret attributes hidden."""
        if self.op == "delete":
            return _("entry deleted")
        if self.op == "modrdn":
            return _("renamed to {rdn}").format(rdn=self.new_rdn)
        shown = []
        for m in self.mods:
            name, _sep, rest = m.partition(":")
            if name.lower() in BOOKKEEPING:
                continue
            sign, _sep, value = rest.partition(" ")
            if name.lower() in SECRET:
                value = "(hidden)"
            verb = {"+": "+", "-": "-", "=": "=", "#": "inc"}.get(sign.strip(), sign)
            shown.append(f"{name}{verb}{value}" if value else f"{name}{verb}")
        more = f" … (+{len(shown) - limit})" if len(shown) > limit else ""
        return ", ".join(shown[:limit]) + more

    def author(self) -> str:
        if self.by_reconciler and self.run is not None:
            return _("reconciler ({holder})").format(holder=self.run.describe())
        if self.by_reconciler:
            return _("OUTSIDE GIT: {who} (the reconciler's account, no apply running)").format(
                who=self.who)
        return _("OUTSIDE GIT: {who}").format(who=self.who or _("(anonymous or internal)"))

    def to_dict(self) -> dict[str, Any]:
        return {"when": self.when.isoformat(), "op": self.op, "dn": self.dn, "who": self.who,
                "changes": self.changes(limit=1000), "outside_git": not self.in_git,
                "commit": self.run.commit if self.run else None,
                "ref": self.run.ref if self.run else None}

    @property
    def in_git(self) -> bool:
        return self.by_reconciler and self.run is not None


def _time(value: str) -> datetime:
    text = value.rstrip("Z")
    main, _sep, frac = text.partition(".")
    t = datetime.strptime(main, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    return t.replace(microsecond=int((frac + "000000")[:6])) if frac else t


def _first(attrs: Mapping[str, Any], name: str) -> str | None:
    v = attrs.get(name)
    if isinstance(v, list):
        return str(v[0]) if v else None
    return None if v is None else str(v)


def _search(conn: Connection, flt: str) -> list[Write]:
    out: list[Write] = []
    entries = conn.extend.standard.paged_search(
        SUFFIX, flt, SUBTREE, attributes=_ATTRS, paged_size=500, generator=True)
    try:
        for e in entries:
            if e.get("type") != "searchResEntry":
                continue
            a = e["raw_attributes"]
            dec = {k: [x.decode("utf-8", "replace") for x in v] for k, v in a.items()}
            start, op, dn = _first(dec, "reqStart"), _first(dec, "reqType"), _first(dec, "reqDN")
            if not start or not op or dn is None:
                continue
            who = _first(dec, "reqAuthzID") or ""
            out.append(Write(_time(start), op, dn, who[3:] if who.startswith("dn:") else who,
                             tuple(dec.get("reqMod", [])), _first(dec, "reqNewRDN")))
    except Exception as exc:  # ldap3 raises its own types from inside the generator
        raise AuditError(_("cannot read the access log ({suffix}): {error}").format(
            suffix=SUFFIX, error=exc)) from None
    result = conn.result or {}
    if result.get("description") not in (None, "success"):
        raise AuditError(f"cannot read the access log ({SUFFIX}): "
                         f"{result.get('description')} {result.get('message') or ''}".strip())
    out.sort(key=lambda w: w.when)
    return out


def writes_to(conn: Connection, dns: Iterable[str]) -> list[Write]:
    """Every logged write to these entries, oldest first (50 DNs per search)."""
    wanted = sorted(set(dns))
    out: list[Write] = []
    for i in range(0, len(wanted), 50):
        ors = "".join(f"(reqDN={escape_filter_chars(dn)})" for dn in wanted[i:i + 50])
        out.extend(_search(conn, f"(&(objectClass=auditWriteObject)(|{ors}))"))
    out.sort(key=lambda w: w.when)
    return out


def lock_writes(conn: Connection, base_dn: str) -> list[Write]:
    return _search(conn, "(&(objectClass=auditWriteObject)(reqDN="
                   f"{escape_filter_chars(f'{LOCK_RDN},ou=services,{base_dn}')}))")


def _run_of(lock_value: str) -> Run:
    fields = dict(p.split("=", 1) for p in lock_value.split(";") if "=" in p)
    return Run(fields.get("commit"), fields.get("ref"), fields.get("owner"))


def attribute(writes: Sequence[Write], locks: Sequence[Write], reconciler_dn: str) -> None:
    """Mark each write: the reconciler's (and the run it belongs to) or not."""
    me = reconciler_dn.lower()
    # The lock's history per holder: (time, run or None when released).
    timeline: list[tuple[datetime, str, Run | None]] = []
    for lw in locks:
        if lw.op == "delete":
            timeline.append((lw.when, lw.who.lower(), None))
            continue
        values = [m.split(" ", 1)[1] for m in lw.mods
                  if m.lower().startswith(("description:+ ", "description:= "))]
        if values:
            timeline.append((lw.when, lw.who.lower(), _run_of(values[-1])))
    for w in writes:
        w.by_reconciler = w.who.lower() == me
        if not w.by_reconciler:
            continue
        current = None
        for when, who, run in timeline:
            if when > w.when:
                break
            if who == me:
                current = run
        w.run = current


def last_outside(conn: Connection, dns: Iterable[str], base_dn: str,
                 reconciler_dn: str) -> dict[str, Write]:
    """For each DN, its latest logged write if that one was made outside git."""
    writes = [w for w in writes_to(conn, dns) if not w.bookkeeping]
    attribute(writes, lock_writes(conn, base_dn), reconciler_dn)
    latest: dict[str, Write] = {}
    for w in writes:
        latest[w.dn.lower()] = w
    return {dn: w for dn, w in latest.items() if not w.in_git}


def drift_section(plan: Any, outside: Mapping[str, Write]) -> str:
    """Markdown listing the plan's changes that undo a write made outside git."""
    rows = []
    for c in [*plan.changes, *plan.drift]:
        for dn in (c.dn, c.old_dn):
            w = outside.get((dn or "").lower())
            if w is not None:
                rows.append(_("- `{subject}` ({kind}): last written outside git by `{who}` at "
                              "{when:%Y-%m-%d %H:%M:%S} UTC ({op}: {changes}); the plan puts "
                              "the data back").format(
                    subject=c.subject, kind=c.kind, who=w.who or _("(anonymous or internal)"),
                    when=w.when, op=w.op, changes=w.changes()))
                break
    if not rows:
        return ""
    return ("\n### Drift: written outside git (the provider's access log)\n\n"
            + "\n".join(rows) + "\n")


# --------------------------------------------------------------------------- history (git)


@dataclass
class Event:
    when: str
    commit: str
    author: str
    subject: str
    what: str
    record: dict[str, Any] | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"when": self.when, "commit": self.commit, "author": self.author,
                "subject": self.subject, "what": self.what}


def _git(repo: Path, *args: str, binary: bool = False) -> Any:
    out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True,
                         timeout=120, check=False)
    if out.returncode != 0:
        raise AuditError(_("git {args}: {stderr}").format(
            args=' '.join(args[:2]), stderr=out.stderr.decode('utf-8', 'replace').strip()[:300]))
    return out.stdout if binary else out.stdout.decode("utf-8", "replace")


def _matches(box: Any, address: str, ident: int | None) -> bool:
    if not isinstance(box, dict):
        return False
    if ident is not None:
        return box.get("id") == ident
    return address in (box.get("address"), *box.get("aliases", ()), box.get("renamed_from"))


def _diff(old: dict[str, Any], new: dict[str, Any]) -> str:
    parts = []
    for key in [*new, *(k for k in old if k not in new)]:
        if old.get(key) != new.get(key):
            parts.append(f"{key}: {json.dumps(old.get(key), ensure_ascii=False)} → "
                         f"{json.dumps(new.get(key), ensure_ascii=False)}")
    return "; ".join(parts)


def git_history(data_path: str | Path, address: str, ident: int | None,
                max_commits: int = 500) -> list[Event]:
    """The record's life in git: one event per commit that created, changed or removed it
    (found by id, else by address), oldest first. Each commit's data directory is read as it
    was then (includes too), with the loader's own checks."""
    from mailgov.loader import LoadError, load

    data = Path(os.path.abspath(data_path))
    top = Path(_git(data.parent, "rev-parse", "--show-toplevel").strip())
    rel_dir = os.path.relpath(data.parent, top)
    rel_main = os.path.relpath(data, top)
    log = _git(top, "log", f"-{max_commits}", "--format=%H%x09%aI%x09%an%x09%s", "--",
               rel_dir).splitlines()
    events: list[Event] = []
    previous: dict[str, Any] | None = None
    for line in reversed(log):
        sha, when, author, subject = [*line.split("\t", 3), "", "", ""][:4]
        tree = _git(top, "archive", "--format=tar", sha, rel_dir, binary=True)
        with tempfile.TemporaryDirectory() as tmp:
            with tarfile.open(fileobj=BytesIO(tree)) as tar:
                tar.extractall(tmp, filter="data")
            try:
                boxes = load(Path(tmp) / rel_main).data.get("mailboxes") or []
            except (LoadError, FileNotFoundError):
                continue  # a commit whose data did not load: validate refused it in review
        record = next((b for b in boxes if _matches(b, address, ident)), None)
        if record == previous:
            continue
        if previous is None and record is not None:
            what = _("created in the data") + (_(" (request {request})").format(
                request=record.get('request'))
                                            if record.get("request") else "")
        elif record is None:
            what = _("removed from the data")
        else:
            what = _diff(previous or {}, record)
            if record.get("request") and record.get("request") != (previous or {}).get(
                    "request"):
                what += _(" (request {request})").format(request=record['request'])
        events.append(Event(when, sha, author, subject, what, record))
        previous = record
    return events


def history_dns(events: Sequence[Event], address: str, people_dn: str) -> set[str]:
    """The DNs the record's entry has had: uid=<address>,ou=people,BASE for each address."""
    names = {address}
    for e in events:
        if e.record:
            names.add(str(e.record.get("address")))
    return {f"uid={n},{people_dn}" for n in names if n and n != "None"}
