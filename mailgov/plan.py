"""The reconcile planner: desired data × live directory → ordered changes (issue 4).

Pure: no I/O and no ldap3 import. ``mailgov/live.py`` reads the live state, this module
decides, ``mailgov/apply.py`` writes exactly what the plan says. The entry layout is
``mailgov/directory.py`` (docs/directory.md); how plan and apply work, the safety rails and
drift are in docs/reconcile.md.

Rules in one place:

* Entries are matched by normalised DN (:func:`normalise_dn`). Values are compared after
  normalisation: addresses, ids and flags ignore case, DNs are normalised, names are NFC,
  and every attribute is compared as a set (LDAP values are unordered).
* Only the attributes the mapping produces are managed (``MANAGED``). userPassword, pwd*
  (except the administrator lock and ``pwdPolicySubentry``, which the mapping sets for
  administrators), memberOf and operational attributes are never read for comparison and
  never written. ``title`` is left alone when the data has none.
* Multi-valued attributes (member, mailAlias …) change by adding/deleting the differing
  values only: a 5,000-member list is never replaced.
* Lifecycle (docs/directory.md): cancelled = mailEnabled FALSE + lock; suspended = TRUE +
  lock; active = TRUE, no administrator lock (a lockout time written by ppolicy after failed
  binds is ppolicy's business and is left alone).
* Entries under the managed containers that the data does not explain are drift: always
  reported, deleted only with ``remove_drift``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from functools import cache
from typing import Literal

from mailgov.archive import retention_days, retention_end
from mailgov.dated import as_of, served_on
from mailgov.directory import (
    ADMIN_LOCK,
    CONTAINERS,
    DISABLED_AT,
    FORMER,
    IDENTITY,
    LIFECYCLE_CLASS,
    RETAIN_UNTIL,
    Entry,
    _period_live,
    desired_entries,
    former_unit_days,
    former_unit_locals,
    layout_of,
    previous_delivers,
)
from mailgov.i18n import N_, _
from mailgov.model import Directory, Mailbox, Policy, Unit, own_aliases
from mailgov.naming import NamingPolicy, list_local, unit_locals

ChangeKind = Literal["create", "modify", "rename", "move", "suspend", "cancel", "restore",
                     "archive", "purge", "add_member", "remove_member", "drift"]
CHANGE_KINDS: tuple[str, ...] = ("create", "modify", "rename", "move", "suspend", "cancel",
                                 "restore", "archive", "purge", "add_member", "remove_member",
                                 "drift")
Attrs = Mapping[str, tuple[str, ...]]  # attribute name (as in docs/directory.md) -> values


class Reason(str):
    """A change's reason in mailgov's own words (a domain switch, a merger, an archive).

    The string itself is English: it is the ``reason`` of the plan's JSON and counts in the
    reviewed plan's checksum (mailgov.reviewed), which must not depend on the language of
    whoever makes the plan. The Markdown shows :func:`shown`: the same message through the
    catalog (mailgov.i18n), in the reader's language."""

    msgid: str
    params: Mapping[str, object]

    def __new__(cls, msgid: str, **params: object) -> Reason:
        self = super().__new__(cls, msgid.format(**params))
        self.msgid = msgid
        self.params = params
        return self


def shown(reason: str) -> str:
    """``reason`` in the active language (a :class:`Reason`), else as written (the data's)."""
    if not isinstance(reason, Reason):
        return reason
    return _(reason.msgid).format(**{k: shown(v) if isinstance(v, str) else v
                                     for k, v in reason.params.items()})


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    dn: str  # the entry's DN after the change (rename: the new DN)
    subject: str  # what a human calls it: full address, or unit id
    unit: str | None  # unit id, to group the report
    old_dn: str | None = None  # rename only: the DN before
    object_classes: tuple[str, ...] = ()  # create only
    add: Attrs = field(default_factory=dict)  # values to add (create: every attribute)
    delete: Attrs = field(default_factory=dict)  # values to delete; () = the whole attribute
    replace: Attrs = field(default_factory=dict)  # attributes set to exactly these values
    before: Attrs | None = None  # for diff output (None = entry absent)
    after: Attrs | None = None
    reason: str = ""  # request reference / lifecycle reason, shown to reviewers
    store: str | None = None  # archive/purge: the mailbox's home directory on the mail host

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly form (tuples become lists; empty optional fields are dropped)."""
        out: dict[str, object] = {"kind": self.kind, "dn": self.dn, "subject": self.subject,
                                  "unit": self.unit}
        if self.old_dn is not None:
            out["old_dn"] = self.old_dn
        if self.object_classes:
            out["object_classes"] = list(self.object_classes)
        for name in ("add", "delete", "replace"):
            value: Attrs = getattr(self, name)
            if value:
                out[name] = {k: list(v) for k, v in value.items()}
        for name in ("before", "after"):
            value2: Attrs | None = getattr(self, name)
            out[name] = None if value2 is None else {k: list(v) for k, v in value2.items()}
        if self.reason:
            out["reason"] = self.reason
        if self.store is not None:
            out["store"] = self.store
        return out


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...]  # in apply order (parents before children, deletes last)
    drift: tuple[Change, ...]  # live things the data does not explain (kind "drift")
    refusals: tuple[str, ...]  # safety rails tripped ("MG6xx …", PLAN_RULES)
    notes: tuple[str, ...] = ()  # what a reviewer should know (guards used, today's date)
    # Dated changes still to come ("YYYY-MM-DD what (why)"): not in this plan, applied by the
    # plan of their day (mailgov.dated).
    scheduled: tuple[str, ...] = ()

    def counts(self) -> dict[str, int]:
        """Change kind -> number, in CHANGE_KINDS order; drift counted once (reported)."""
        seen: dict[str, int] = {}
        for c in self.changes:
            if c.kind != "drift":
                seen[c.kind] = seen.get(c.kind, 0) + 1
        if self.drift:
            seen["drift"] = len(self.drift)
        return {k: seen[k] for k in CHANGE_KINDS if k in seen}

    @property
    def ok(self) -> bool:
        return not self.refusals

    def to_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "refusals": list(self.refusals), "counts": self.counts(),
                "notes": list(self.notes), "scheduled": list(self.scheduled),
                "changes": [c.to_dict() for c in self.changes],
                "drift": [c.to_dict() for c in self.drift]}


# --------------------------------------------------------------------------- guards


DEFAULT_MAX_DISABLE_SHARE = 0.05  # what a file without a base may never loosen
# Caps on the other kinds of change, in the spirit of octoDNS (MAX_SAFE_UPDATE_PCENT and
# MAX_SAFE_DELETE_PCENT 30 %, not checked below 10 existing records) and peribolos
# (--maximum-removal-delta 0.25): a cap fires when more than max(floor, share x total)
# entries change that way (MG601's max_disable_share too). The floor keeps a small directory
# workable.
DEFAULT_MAX_ADDRESS_CHANGE_SHARE = 0.30
DEFAULT_MAX_MODIFY_SHARE = 0.30
DEFAULT_CAP_FLOOR = 10
# Where the guards were read (Guards.source), translated where shown.
_SOURCES = (N_("defaults"), N_("the base of the review"))


def _source(source: str) -> str:
    return _(source) if source else source  # gettext("") is the catalog's header


@dataclass(frozen=True)
class Guards:
    """The safety limits a plan is judged by. They come from outside the change under review
    (the base of the review: main's data file, or the inventory), so a pull request cannot
    loosen the rails that judge it (docs/reconcile.md, "Invariants")."""

    max_disable_share: float = DEFAULT_MAX_DISABLE_SHARE
    protected: frozenset[str] = frozenset()  # local parts
    remove_drift: bool = False
    source: str = "defaults"  # where they were read, for the plan's notes
    max_address_change_share: float = DEFAULT_MAX_ADDRESS_CHANGE_SHARE
    max_modify_share: float = DEFAULT_MAX_MODIFY_SHARE
    cap_floor: int = DEFAULT_CAP_FLOOR

    @classmethod
    def of(cls, policy: Policy, source: str) -> Guards:
        return cls(policy.max_disable_share, frozenset(p.lower() for p in policy.protected),
                   policy.remove_drift, source, policy.max_address_change_share,
                   policy.max_modify_share, policy.cap_floor)

    def tightened(self, policy: Policy) -> Guards:
        """These guards, made stricter (never looser) by the file being planned."""
        return Guards(min(self.max_disable_share, policy.max_disable_share),
                      self.protected | {p.lower() for p in policy.protected},
                      self.remove_drift and policy.remove_drift, self.source,
                      min(self.max_address_change_share, policy.max_address_change_share),
                      min(self.max_modify_share, policy.max_modify_share),
                      min(self.cap_floor, policy.cap_floor))

    def _key(self) -> tuple[object, ...]:
        return (self.max_disable_share, self.protected, self.remove_drift,
                self.max_address_change_share, self.max_modify_share, self.cap_floor)

    def same_as(self, other: Guards) -> bool:
        return self._key() == other._key()


LiveState = Mapping[str, Attrs]  # normalised DN -> attributes, as read by mailgov/live.py

# --------------------------------------------------------------------------- attributes

# What the mapping (mailgov/directory.py) can produce, per entry kind. Nothing else is
# compared or written. pwdAccountLockedTime is handled as lifecycle, not here.
_PERSON = ("uid", "cn", "sn", "givenName", "displayName", "employeeType", "businessCategory",
           "title", "ou", "mail", "mailAlias", "mailForwardingAddress", "mailEnabled",
           "mailQuota", "mailHomeDirectory", "seeAlso", "pwdPolicySubentry", IDENTITY)
_UNIT = ("ou", "description", "seeAlso", "mail", "mailAlias", "mailEnabled", "mailQuota",
         "mailHomeDirectory", "mailForwardingAddress")
_LIST = ("cn", "description", "mail", "mailAlias", "member")
_DELEGATES = ("cn", "description", "member")
_CONTAINER = ("ou",)
ATTRS_BY_KIND: dict[str, tuple[str, ...]] = {"person": _PERSON, "unit": _UNIT, "list": _LIST,
                                             "delegates": _DELEGATES, "container": _CONTAINER}
LOCK = "pwdAccountLockedTime"
#: Attributes live.py reads (besides objectClass and pwdReset).
MANAGED: frozenset[str] = frozenset((*_PERSON, *_UNIT, *_LIST, LOCK, DISABLED_AT, RETAIN_UNTIL,
                                     FORMER))
READ_ATTRS: tuple[str, ...] = (*sorted(MANAGED), "objectClass", "pwdReset")
_CANON = {**{a.lower(): a for a in READ_ATTRS}, **{a: a for a in READ_ATTRS}}
_EXACT = frozenset(READ_ATTRS)


def _vals(attrs: Attrs, name: str) -> tuple[str, ...]:
    v = attrs.get(name, ())
    return v if v.__class__ is tuple else tuple(v)

_DN_VALUED = frozenset({"member", "seeAlso", "pwdPolicySubentry"})
_CASELESS = frozenset({"uid", "ou", "mail", "mailAlias", "mailForwardingAddress", "mailEnabled",
                       "employeeType", "businessCategory", "objectClass", LOCK})
_MULTI = frozenset({"mailAlias", "mailForwardingAddress", "member"})  # add/delete values
_LEAVE_IF_ABSENT = frozenset({"title"})  # data without a title leaves the live one alone
# Set when the entry is created, never changed afterwards: a rename or a unit's new address
# must not point Dovecot at a new, empty home (the mail would seem lost). Archive and purge
# use the live value.
_CREATE_ONLY = frozenset({"mailHomeDirectory"})


@cache
def _deletable(attrs: tuple[str, ...]) -> frozenset[str]:
    """Of the managed ``attrs``, those a live entry may have to lose."""
    return frozenset(attrs) - _LEAVE_IF_ABSENT - _CREATE_ONLY
_DISABLING = frozenset({"suspend", "cancel", "purge"})
_PAST = {"suspend": N_("suspended"), "cancel": N_("cancelled"), "purge": N_("purged"),
         "drift": N_("removed")}


def _key(attr: str, value: str) -> str:
    """The comparison form of one value of ``attr``."""
    if attr in _DN_VALUED:
        return normalise_dn(value)
    if attr in _CASELESS:
        return value.strip().lower()
    return " ".join(unicodedata.normalize("NFC", value).split())


# --------------------------------------------------------------------------- DNs

_DN_SPACES = re.compile(r"\s*([,=+])\s*")


def normalise_dn(dn: str) -> str:
    """One spelling per DN: lower case, NFC, no spaces around ',', '=', '+'.

    'UID=NaTuan, ou=People,dc=monre,dc=gov,dc=vn' -> 'uid=natuan,ou=people,dc=monre,…'.
    Our DNs never need escapes; an escaped character (``\\,``) is kept as written.
    """
    text = dn.strip()
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    if " " not in text:  # the common case (and 50,000 times per plan): nothing to strip
        return text.lower()
    if "\\" in text:
        # Do not touch spaces next to escaped separators ('a\\, b' keeps its space).
        parts = re.split(r"(\\.)", text)
        return "".join(p if p.startswith("\\") else _DN_SPACES.sub(r"\1", p)
                       for p in parts).lower()
    return _DN_SPACES.sub(r"\1", text).lower()


# --------------------------------------------------------------------------- helpers


def _index_live(live: LiveState) -> dict[str, Attrs]:
    """Live state with normalised DNs and canonical attribute names.

    Values may still be lists (a saved JSON state): every comparison below goes through
    :func:`_vals`, which makes a tuple only when needed (no copy of 50,000 entries).
    """
    canon = _CANON
    exact = _EXACT
    out: dict[str, Attrs] = {}
    for dn, attrs in live.items():
        if attrs.keys() <= exact:  # live.py's own output: names are canonical already
            entry = attrs
        else:
            entry = {(canon.get(name) or canon.get(name.lower(), name)): values
                     for name, values in attrs.items()}
        out[normalise_dn(dn)] = entry
    return out


def _diff(attrs: tuple[str, ...], want: Attrs, have: Attrs
          ) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]],
                     dict[str, tuple[str, ...]]]:
    """(add, delete, replace) turning ``have`` into ``want`` for the managed ``attrs``."""
    # Fast path (a no-op plan of 50,000 entries is all fast paths): every wanted value is
    # there exactly, and the live entry has no managed attribute the data does not produce.
    get = have.get
    for attr, w in want.items():
        if get(attr) != w:
            break
    else:
        if not (have.keys() - want.keys()) & _deletable(attrs):
            return {}, {}, {}
    add: dict[str, tuple[str, ...]] = {}
    delete: dict[str, tuple[str, ...]] = {}
    replace: dict[str, tuple[str, ...]] = {}
    for attr in attrs:
        w = want.get(attr, ())
        h = have.get(attr, ())
        if h.__class__ is not tuple:
            h = tuple(h)
        if w == h:  # the common case: no normalisation needed
            continue
        if not w:
            if h and attr not in _LEAVE_IF_ABSENT:
                delete[attr] = ()
            continue
        if h and attr in _CREATE_ONLY:
            continue
        kw = {_key(attr, v) for v in w}
        kh = {_key(attr, v) for v in h}
        if kw == kh:
            continue
        # Names keep their case in the comparison: "Trần thị Lan" -> "Trần Thị Lan" is a
        # real change, written with replace (LDAP itself would call the two equal).
        if attr in _MULTI and h:
            plus = tuple(v for v in w if _key(attr, v) not in kh)
            minus = tuple(v for v in h if _key(attr, v) not in kw)
            if plus:
                add[attr] = plus
            if minus:
                delete[attr] = minus
        else:
            replace[attr] = w
    return add, delete, replace


def _subset(attrs: Attrs, names: Iterable[str]) -> dict[str, tuple[str, ...]]:
    return {n: _vals(attrs, n) for n in names if n in attrs}


def _live_state(have: Attrs) -> str:
    enabled = _vals(have, "mailEnabled") or ("TRUE",)
    if enabled and enabled[0].upper() == "FALSE":
        return "cancelled"
    if ADMIN_LOCK in _vals(have, LOCK):
        return "suspended"
    return "active"


def _as_date(value: object) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _domain_reason(d: Directory, have: Attrs) -> str | None:
    """When the live primary address is at another domain than the data's: the domain
    switch caused the change; cite it (the alias domain's request, else the switch)."""
    mail = _vals(have, "mail")
    if not mail or "@" not in mail[0]:
        return None
    old = mail[0].rsplit("@", 1)[1].lower()
    new = d.organization.domain.lower()
    if old == new:
        return None
    alias = next((a for a in d.organization.alias_domains if a.domain.lower() == old), None)
    if alias is not None and alias.request:
        return Reason(N_("{request}, domain {old} -> {new}"), request=alias.request, old=old,
                      new=new)
    return Reason(N_("domain {old} -> {new}"), old=old, new=new)


def _change_reason(m: Mailbox, kind: str) -> str:
    """The request that caused this change (issue 14 item 6): the record's ``change``
    request, a rename's or a dated move's own request, else the record's request."""
    if kind == "move" and m.moved_from is not None and m.moved_from.request:
        return m.moved_from.request
    if m.change_request:
        return m.change_request
    if kind == "rename" and m.previous and m.previous[-1].request:
        return m.previous[-1].request
    return m.request or ""


def _lifecycle_reason(m: Mailbox) -> str:
    block = m.cancelled if m.state == "cancelled" else m.suspended
    if block is None:
        return m.request or ""
    return f"{block.reason}, {block.request}, {_as_date(block.date).isoformat()}"


# --------------------------------------------------------------------------- the planner


Locate = Callable[[tuple[str | int, ...]], str]  # data path -> "FILE:LINE:COL"


def _gtime(day: date) -> str:
    """LDAP GeneralizedTime at the start of ``day`` (UTC)."""
    return f"{day:%Y%m%d}000000Z"


def _gdate(value: str) -> date | None:
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except (ValueError, IndexError):
        return None


class _Planner:
    def __init__(self, d: Directory, live: LiveState, today: date,
                 archived: Mapping[str, str], locate: Locate | None, recorded: date) -> None:
        self.d = d
        self.units_by_id = {u.id: u for u in d.units}
        self.layout = layout_of(d)
        self.live: dict[str, Attrs] = _index_live(live)
        self.today = today
        self.recorded = recorded  # the day a cancel applied now is recorded (the clock)
        self.archived = dict(archived)  # store -> sha256 (mailgov.archive.archived_map)
        self.locate = locate
        self.explained: set[str] = set()  # normalised live DNs the data accounts for
        # Renamed entries: old normalised DN -> new DN. The provider's refint overlay rewrites
        # `member` values on a modify DN, so the lists need no member change for a rename.
        self.renamed: dict[str, str] = {}
        self._former_locals: dict[str, list[str]] | None = None  # unit id -> former locals
        # Identity: live key -> who the data says it is ("id:N" for a mailbox record, "dn:…"
        # for units, lists and entries made before ids). Addresses are judged by it.
        self.matched: dict[str, str] = {}
        self.by_id: dict[str, str] = {}  # mailbox id -> live key of the entry that has it
        people = "," + normalise_dn(self.layout.container("people"))
        for key, attrs in self.live.items():
            if key.endswith(people):
                ident = _vals(attrs, IDENTITY)
                if ident:
                    self.by_id.setdefault(ident[0], key)
        self.refusals: list[str] = []
        self.desired_holders: dict[str, str] = {}  # address -> identity after the plan
        self.homes: dict[str, str] = {}  # store path -> identity, of entries created here
        # phases, in apply order (see docs/reconcile.md)
        self.containers: list[Change] = []
        self.units: list[Change] = []
        self.renames: list[Change] = []
        self.people: list[Change] = []
        self.groups: list[Change] = []
        self.removals: list[Change] = []
        self.archives: list[Change] = []
        self.purges: list[Change] = []

    def refuse(self, rule: str, message: str, path: tuple[str | int, ...] = ()) -> None:
        where = f"{self.locate(path)}: " if self.locate is not None and path else ""
        self.refusals.append(f"{where}{rule} {message}")

    def run(self) -> list[Change]:
        for e in desired_entries(self.d, self.today):
            key = normalise_dn(e.dn)
            if e.kind == "person":
                self.person(e, key)
            else:
                self.explained.add(key)
                self.matched[key] = "dn:" + key
                self._hold(e, "dn:" + key)
                if e.kind in ("list", "delegates"):
                    self.group(e, key)
                else:
                    self.plain(e, key, self.containers if e.kind == "container"
                               else self.units)
        return [*self.containers, *self.units, *self.renames, *self.people, *self.groups,
                *self.removals, *self.archives, *self.purges]

    def _hold(self, e: Entry, identity: str) -> None:
        for name in ("mail", "mailAlias"):
            for v in e.attributes.get(name, ()):
                self.desired_holders.setdefault(v.lower(), identity)

    def _subject(self, e: Entry) -> str:
        mail = e.attributes.get("mail")
        if mail:
            return mail[0]
        return e.unit if e.kind == "unit" and e.unit else e.attributes.get(
            "cn", e.attributes.get("ou", (e.dn,)))[0]

    def _create(self, e: Entry, reason: str) -> Change:
        return Change("create", e.dn, self._subject(e), e.unit, object_classes=e.object_classes,
                      add=dict(e.attributes), before=None, after=dict(e.attributes),
                      reason=reason)

    def _classes(self, e: Entry, have: Attrs) -> tuple[str, ...]:
        classes = _vals(have, "objectClass")
        if classes == e.object_classes:
            return ()
        live = {c.lower() for c in classes}
        if not live:  # a live state saved without objectClass: nothing to compare
            return ()
        return tuple(c for c in e.object_classes if c.lower() not in live)

    def _update(self, kind: ChangeKind, e: Entry, have: Attrs, reason: str,
                extra: tuple[dict[str, tuple[str, ...]], ...] = ()) -> Change | None:
        add, delete, replace = _diff(ATTRS_BY_KIND[e.kind], e.attributes, have)
        for a, dl, r in extra:
            add.update(a)
            delete.update(dl)
            replace.update(r)
        missing = self._classes(e, have)
        if missing:
            add["objectClass"] = tuple(dict.fromkeys((*add.get("objectClass", ()), *missing)))
        if not (add or delete or replace):
            return None
        names = [*add, *delete, *replace]
        return Change(kind, e.dn, self._subject(e), e.unit, add=add, delete=delete,
                      replace=replace, before=_subset(have, names),
                      after=_subset(e.attributes, names), reason=reason)

    # -- units and containers ---------------------------------------------------------

    def plain(self, e: Entry, key: str, phase: list[Change]) -> None:
        have = self.live.get(key)
        if have is None:
            request = e.source.mailbox.request if isinstance(e.source, Unit) else None
            phase.append(self._create(e, request or ""))
            return
        want_parent = e.attributes.get("seeAlso", ())
        moved = e.kind == "unit" and {_key("seeAlso", v) for v in want_parent} != {
            _key("seeAlso", v) for v in _vals(have, "seeAlso")}
        extra = ((_former(e, have), {}, {}),) if e.kind == "unit" else ()
        reason = self._unit_reason(e.unit, have) if e.kind == "unit" else ""
        change = self._update("move" if moved else "modify", e, have, reason, extra)
        if change is not None:
            phase.append(change)

    # -- mailboxes ----------------------------------------------------------------------

    def _unit_reason(self, unit_id: str | None, have: Attrs | None) -> str:
        """Why a unit's entry or list changes: its merger or rename (their request), else a
        domain switch (issue 14 item 6)."""
        u = self.units_by_id.get(unit_id or "")
        if u is not None and u.dissolved is not None:
            return Reason(N_("{request}, merged into {unit}"), request=u.dissolved.request,
                          unit=u.dissolved.successor)
        seen: set[str] = set()
        while u is not None and u.id not in seen:  # a parent's rename renames its sub-units
            seen.add(u.id)
            last = u.formerly[-1] if u.formerly else None
            if last is not None and last.request and last.abbr is None:
                return Reason(N_("{request}, unit {unit} moved from {old} to {new}"),
                              request=last.request, unit=u.id, old=last.parent,
                              new=u.parent or "-")
            if last is not None and last.request:
                return Reason(N_("{request}, unit renamed {old} -> {new}"),
                              request=last.request, old=last.abbr, new=u.abbr)
            u = self.units_by_id.get(u.parent or "")
        return (_domain_reason(self.d, have) if have is not None else None) or ""

    def _describe(self, attrs: Attrs) -> str:
        name = _vals(attrs, "cn")
        ident = _vals(attrs, IDENTITY)
        state = {"active": N_("active"), "suspended": N_("suspended"),
                 "cancelled": N_("cancelled")}[_live_state(attrs)]
        return (_("id {id}").format(id=ident[0]) if ident else _("no id")) + \
            (f", {name[0]}" if name else "") + f", {_(state)}"

    def _match(self, e: Entry, key: str, m: Mailbox
               ) -> tuple[str | None, Attrs | None, bool]:
        """The live entry this record is (key, attributes), None for a new one; and whether
        the record was refused (neither created nor matched).

        By id first: an entry carrying the record's id is this mailbox wherever it is (a DN
        elsewhere is a rename). An entry made before ids is taken over once by its address
        (or ``renamed_from``). An entry with another id is another person: refused, never
        matched (MG604).
        """
        ident = None if m.id is None else str(m.id)
        here = self.live.get(key)
        path = ("mailboxes", m.index, "address")
        if ident is not None and ident in self.by_id:
            held = self.by_id[ident]
            if held == key:
                return key, here, False
            if here is not None:  # renaming onto an entry that is someone else
                self.explained.add(key)
                self.refuse("MG604", _("mailbox id {id} ({name}) would be renamed to "
                                       "{address}, which the directory gives to another "
                                       "entry ({holder}); rename one of them to a free "
                                       "address first, in its own reviewed change").format(
                                       id=ident, name=m.name, address=e.attributes["mail"][0],
                                       holder=self._describe(here)), path)
                return None, None, True
            return held, self.live[held], False
        if here is not None:
            live_id = _vals(here, IDENTITY)
            if live_id and live_id[0] != ident:
                self.refuse("MG604", _("{address} is held in the directory by another "
                                       "mailbox ({holder}); record id {id} cannot take it: "
                                       "its old holder keeps it (retention, then the "
                                       "archive), choose another address").format(
                                       address=e.attributes["mail"][0],
                                       holder=self._describe(here), id=ident), path)
                return None, None, True
            return key, here, False  # made before ids: taken over by its address
        for prev in reversed(m.previous):  # the latest rename first
            old_key = normalise_dn(self.layout.person_dn(prev.address.lower()))
            old = self.live.get(old_key)
            if old is not None and not _vals(old, IDENTITY):
                return old_key, old, False
        return None, None, False

    def person(self, e: Entry, key: str) -> None:
        m = e.source
        assert isinstance(m, Mailbox)
        identity = f"id:{m.id}" if m.id is not None else None
        live_key, have, refused = self._match(e, key, m)
        if refused:
            return
        identity = identity or "dn:" + (live_key or key)
        self._hold(e, identity)
        if live_key is None or have is None:
            self.explained.add(key)
            # Past retention (by the data) or archived, and absent: purged. Never recreate.
            home = e.attributes["mailHomeDirectory"][0]
            gone = m.state == "cancelled" and (self._data_due(m) or self._archive_sum(home))
            if not gone:
                self.homes[home] = identity
                create = self._create(e, _lifecycle_reason(m))
                if m.state == "cancelled":  # created cancelled: its retention starts now
                    times = self._cancel_times(m)
                    create = Change("create", create.dn, create.subject, create.unit,
                                    object_classes=create.object_classes,
                                    add={**create.add, **times}, before=None,
                                    after={**create.add, **times}, reason=create.reason)
                self.people.append(create)
            return
        self.explained.add(live_key)
        self.matched[live_key] = identity
        if live_key != key:
            self.explained.add(key)
            self.renamed[live_key] = e.dn
            old_dn = self.layout.person_dn(_vals(have, "uid")[0]) if _vals(have, "uid") \
                else live_key
            # The store stays where it is: mailHomeDirectory is set at creation only.
            self.renames.append(Change(
                "rename", e.dn, e.attributes["mail"][0], m.unit, old_dn=old_dn,
                before={"uid": _vals(have, "uid")}, after={"uid": e.attributes["uid"]},
                reason=_change_reason(m, "rename")))
            # After the modrdn the entry has the new uid; the rest is compared as usual.
            have = {**have, "uid": e.attributes["uid"]}
        if _unchanged(e, have, m):
            return  # the bulk of any plan
        due = m.state == "cancelled" and self._live_due(m, have)
        home = _vals(have, "mailHomeDirectory") or e.attributes["mailHomeDirectory"]
        if due and self._archive_sum(home[0]) is not None:
            self.purges.append(self._purge(e, have, m))
            return
        self._person_update(e, have, m)
        if due:
            until = _vals(have, RETAIN_UNTIL)
            self.archives.append(Change(
                "archive", e.dn, e.attributes["mail"][0], m.unit,
                reason=Reason(N_("cancelled, retained until {day} (recorded in the directory "
                                 "when the cancel was applied); purge follows the archive"),
                              day=_gdate(until[0])),
                store=home[0]))

    def _person_update(self, e: Entry, have: Attrs, m: Mailbox) -> None:
        live_state = _live_state(have)
        lock = _vals(have, LOCK)
        add: dict[str, tuple[str, ...]] = {}
        delete: dict[str, tuple[str, ...]] = {}
        replace: dict[str, tuple[str, ...]] = {}
        if m.state == "active":
            if ADMIN_LOCK in lock:
                delete[LOCK] = ()
        elif lock != (ADMIN_LOCK,):
            replace[LOCK] = (ADMIN_LOCK,)
        if m.state == "cancelled":
            # Retention counts from the day the directory was disabled, with the retention
            # in force that day: written once, never moved earlier by an edit of the data.
            if live_state != "cancelled" or not _vals(have, RETAIN_UNTIL):
                replace.update(self._cancel_times(m))
        else:
            for name in (DISABLED_AT, RETAIN_UNTIL):
                if _vals(have, name):
                    delete[name] = ()
        add.update(_former(e, have))
        kind: ChangeKind
        if m.state != live_state:
            if m.state == "cancelled":
                kind = "cancel"
            elif m.state == "suspended" and live_state == "active":
                kind = "suspend"
            else:
                kind = "restore"
            reason = _lifecycle_reason(m)
        elif {_key("ou", v) for v in _vals(have, "ou")} != {m.unit.lower()}:
            kind, reason = "move", _change_reason(m, "move")
        else:
            kind = "modify"
            reason = (None if m.change_request else _domain_reason(self.d, have)) or \
                _change_reason(m, "modify")
        change = self._update(kind, e, have, reason, ((add, delete, replace),))
        if change is not None and kind == "restore" and live_state == "cancelled":
            self._restored_as_itself(change, e, have, m)
        if change is not None:
            if LOCK in delete or LOCK in replace:
                change = _with_lock(change, lock, e.attributes.get(LOCK))
            self.people.append(change)

    def _restored_as_itself(self, change: Change, e: Entry, have: Attrs, m: Mailbox) -> None:
        """A cancelled mailbox's retained mail belongs to the person it was cancelled for: a
        restore that also changes the name or the address in the same plan may be a record
        reused for someone else, who would get that mail and the entry (MG612)."""
        changed = {*change.add, *change.delete, *change.replace}
        if not changed & {"cn", "mail"}:
            return
        self.refuse("MG612", _(
            "mailbox id {id}: {address} would be restored from cancelled and get another "
            "name or address in the same change ({before} -> {after}); its retained mail "
            "belongs to {before}: restore it as it was, and change the name or address in a "
            "second reviewed change").format(
                id=m.id, address=_vals(have, "mail")[0] if _vals(have, "mail") else e.dn,
                before=_vals(have, "cn")[0] if _vals(have, "cn") else "?",
                after=e.attributes["cn"][0]), ("mailboxes", m.index))

    def _cancel_times(self, m: Mailbox) -> dict[str, tuple[str, ...]]:
        """What a cancel applied now records: the day, and the end of the retention in
        force (``heads_days`` for a head)."""
        days = retention_days(m, self.d.policy)
        return {DISABLED_AT: (_gtime(self.recorded),),
                RETAIN_UNTIL: (_gtime(self.recorded + timedelta(days=days)),)}

    def _data_due(self, m: Mailbox) -> bool:
        end = retention_end(m, self.d.policy)
        return end is not None and self.today >= end

    def _live_due(self, m: Mailbox, have: Attrs) -> bool:
        """Archive/purge due: disabled in the directory, and the retention recorded there
        when the cancel was applied is over (a longer one in the data counts too)."""
        if _live_state(have) != "cancelled":
            return False
        until = _vals(have, RETAIN_UNTIL)
        end = _gdate(until[0]) if until else None
        if end is None or self.today < end:
            return False
        return self._data_due(m)

    def _archive_sum(self, home: str) -> str | None:
        """The sha256 of the verified archive of the store ``home``: by the store, never by
        the address, which may have been another mailbox's (whose archive it would be)."""
        return self.archived.get(home)

    def _purge(self, e: Entry, have: Attrs, m: Mailbox) -> Change:
        home = _vals(have, "mailHomeDirectory") or e.attributes["mailHomeDirectory"]
        return Change("purge", e.dn, e.attributes["mail"][0], m.unit, before=dict(have),
                      after=None, reason=Reason(N_("retention recorded in the directory over "
                                                   "and archived (sha256 {sha256}): delete the "
                                                   "entry and the store"),
                                                sha256=self._archive_sum(home[0])),
                      store=home[0])

    # -- groups -------------------------------------------------------------------------

    def _former_delegates(self, e: Entry) -> str | None:
        """The live key of a renamed unit's delegates group under an earlier abbreviation
        (its own or a parent's rename): renamed, never created anew beside it as drift."""
        if e.unit is None or not any(u.formerly for u in self.units_by_id.values()):
            return None
        if self._former_locals is None:
            self._former_locals = former_unit_locals(
                self.d, NamingPolicy.from_dict(self.d.policy.naming), None)
        for local in reversed(self._former_locals.get(e.unit, [])):  # the latest name first
            old = normalise_dn(self.layout.group_dn(f"{local}-delegates"))
            if old in self.live and old not in self.explained:
                return old
        return None

    def group(self, e: Entry, key: str) -> None:
        have = self.live.get(key)
        if have is None and e.kind == "delegates":
            old = self._former_delegates(e)
            if old is not None:
                have = self.live[old]
                self.explained.add(old)
                self.matched[old] = "dn:" + key
                old_cn = _vals(have, "cn")
                self.renames.append(Change(
                    "rename", e.dn, e.attributes["cn"][0], e.unit, old_dn=old,
                    before={"cn": old_cn}, after={"cn": e.attributes["cn"]},
                    reason=self._unit_reason(e.unit, None)))
                # after the modify DN the group has the new cn; the rest is compared as usual
                have = {**have, "cn": e.attributes["cn"]}
        if have is None:
            self.groups.append(self._create(e, ""))
            return
        others = tuple(a for a in ATTRS_BY_KIND[e.kind] if a != "member")
        add, delete, replace = _diff(others, e.attributes, have)
        missing = self._classes(e, have)
        if missing:
            add["objectClass"] = missing
        if add or delete or replace:
            names = [*add, *delete, *replace]
            self.groups.append(Change("modify", e.dn, self._subject(e), e.unit, add=add,
                                      delete=delete, replace=replace,
                                      before=_subset(have, names),
                                      after=_subset(e.attributes, names),
                                      reason=self._unit_reason(e.unit, have)))
        want = e.attributes["member"]
        live_members = _vals(have, "member")
        if self.renamed:
            live_members = tuple(self.renamed.get(normalise_dn(v), v) for v in live_members)
        if want == live_members:
            return
        kw = {normalise_dn(v): v for v in want}
        kh = {normalise_dn(v): v for v in live_members}
        plus = tuple(v for k, v in kw.items() if k not in kh)
        minus = tuple(v for k, v in kh.items() if k not in kw)
        # Adds first (a groupOfNames must never become empty), removals after the people
        # changes and before purges (a purged entry is no longer a member anywhere).
        why = self._unit_reason(e.unit, None)
        if plus:
            self.groups.append(Change("add_member", e.dn, self._subject(e), e.unit,
                                      add={"member": plus}, before=None,
                                      after={"member": plus}, reason=why))
        if minus:
            self.removals.append(Change("remove_member", e.dn, self._subject(e), e.unit,
                                        delete={"member": minus}, before={"member": minus},
                                        after=None, reason=why))


def _unchanged(e: Entry, have: Attrs, m: Mailbox) -> bool:
    """Is the live entry of a (not cancelled) person exactly what the data asks for: every
    value a tuple equal to the wanted one, objectClass included, nothing more? Then the
    lifecycle matches too (mailEnabled and the lock are among the wanted values; a cancel's
    dates are not, hence not for cancelled ones), no address is lost (no former addresses)
    and the full comparison (_person_update) would find nothing. Anything else takes it."""
    want = e.attributes
    # One dict comparison in C (the per-attribute generator was a tenth of a no-op plan);
    # a `want` naming objectClass itself (never made) would only take the full comparison.
    return (m.state != "cancelled" and len(have) == len(want) + 1
            and have == {**want, "objectClass": e.object_classes})


def _former(e: Entry, have: Attrs) -> dict[str, tuple[str, ...]]:
    """Values to add so that every address the entry loses stays on it as a former address
    (a person's second rename, an alias removed, a unit's new abbreviation): reserved for
    ever, never given to another mailbox (MG605)."""
    want = e.attributes
    if all(_vals(have, name) == want.get(name, ()) for name in ("mail", "mailAlias")):
        return {}  # the common case (a no-op plan of 50,000 entries): nothing lost
    keep = {v.lower() for name in ("mail", "mailAlias") for v in want.get(name, ())}
    known = {v.lower() for v in _vals(have, FORMER)}
    lost = tuple(dict.fromkeys(v.lower() for name in ("mail", "mailAlias")
                               for v in _vals(have, name)
                               if v.lower() not in keep and v.lower() not in known))
    if not lost:
        return {}
    out: dict[str, tuple[str, ...]] = {FORMER: lost}
    if LIFECYCLE_CLASS.lower() not in {c.lower() for c in _vals(have, "objectClass")}:
        out["objectClass"] = (LIFECYCLE_CLASS,)
    return out


def _with_lock(change: Change, lock: tuple[str, ...], want: tuple[str, ...] | None) -> Change:
    """Show the lock in before/after too (the reviewer sees 'locked' appear or go)."""
    before = dict(change.before or {})
    after = dict(change.after or {})
    before[LOCK] = lock
    after[LOCK] = want or ()
    return Change(change.kind, change.dn, change.subject, change.unit, add=change.add,
                  delete=change.delete, replace=change.replace, before=before, after=after,
                  reason=change.reason)


def _drift(planner: _Planner) -> list[Change]:
    """Live entries under the managed containers that the data does not explain."""
    suffixes = tuple("," + normalise_dn(planner.layout.container(c)) for c in CONTAINERS)
    out = []
    for key, have in planner.live.items():
        if key in planner.explained or not key.endswith(suffixes):
            continue
        mail = _vals(have, "mail")
        ou = _vals(have, "ou")
        unit = ou[0] if ou and key.startswith("uid=") else None
        ident = _vals(have, IDENTITY) if key.startswith("uid=") else ()
        if ident:
            # A record mailgov made an entry for is gone from the data: it may leave only
            # after its purge (the entry is then gone too). Never drift, never deleted.
            planner.refuse("MG603", _("{address}: the record of mailbox id {id} is no "
                                      "longer in the data, but the directory still holds its "
                                      "entry ({holder}); put the record back (to close the "
                                      "mailbox, set state: cancelled: its mail is kept for "
                                      "the retention, then archived and purged)").format(
                                      address=mail[0] if mail else key, id=ident[0],
                                      holder=planner._describe(have)), ("mailboxes",))
        out.append(Change("drift", key, mail[0] if mail else key.split(",", 1)[0], unit,
                          before=dict(have), after=None))
    # Deletion order: groups first (they reference people), deepest DNs first.
    order = {"cn": 0, "uid": 1}
    out.sort(key=lambda c: (order.get(c.dn.split("=", 1)[0], 2), -c.dn.count(","), c.dn))
    return out


def _removable(c: Change) -> bool:
    """Drift that removing may delete: never an entry that holds mail (a person, a unit
    mailbox) — those leave only through cancel, retention, archive and purge."""
    return not _vals(c.before or {}, "mailHomeDirectory")


def _protected_addresses(protected: Iterable[str], domain: str) -> frozenset[str]:
    return frozenset(f"{p.lower()}@{domain.lower()}" for p in protected)


def _addresses(c: Change, live: Mapping[str, Attrs]) -> set[str]:
    """Every address of the entry a change touches (live and planned)."""
    out: set[str] = set()
    for attrs in (c.before, c.after, live.get(normalise_dn(c.dn))):
        if attrs:
            for name in ("mail", "mailAlias"):
                out.update(v.lower() for v in _vals(attrs, name))
    out.add(c.subject.lower())
    return out


def _purged_records_left(planner: _Planner, base: Directory | None) -> None:
    """A purged mailbox leaves the data only with every address it used in ``reserved``
    (``mailgov reserve-purged``). After the purge the directory holds nothing of it, so a
    record deleted by hand would free its address for the next newcomer, who would receive
    mail meant for the person gone: only the base of the review still knows it (MG611)."""
    if base is None:
        return
    d = planner.d
    kept = {m.id for m in d.mailboxes if m.id is not None}
    gone = [m for m in base.mailboxes
            if m.state == "cancelled" and m.id is not None and m.id not in kept]
    if not gone:
        return
    reserved = {r.address.casefold() for r in d.reserved}
    for m in gone:
        if str(m.id) in planner.by_id:
            continue  # its entry is still there: MG603 says so
        missing = [a for a in base.ever_used(m) if a.casefold() not in reserved]
        if missing:
            planner.refuse("MG611", _(
                "mailbox id {id} ({address}) was purged and its record leaves the data, but "
                "{missing} is not in `reserved`: a newcomer could be given it and receive mail "
                "meant for {name}; run `mailgov reserve-purged`, or add those addresses to "
                "`reserved` with id {id}").format(
                    id=m.id, address=d.address(m.address), missing=", ".join(missing),
                    name=m.name), ("mailboxes",))


def _unit_history(d: Directory) -> dict[str, set[str]]:
    """Unit id -> every local part its unit mailbox was or is given: now, and under each
    former abbreviation or parent (the list addresses follow from these)."""
    naming = NamingPolicy.from_dict(d.policy.naming)
    out = {uid: {local} for uid, local in
           unit_locals(d.units, naming, on_error=lambda _u, _e: None).items()}
    for uid, olds in former_unit_locals(d, naming, None).items():
        out.setdefault(uid, set()).update(olds)
    return out


def _addresses_dropped(planner: _Planner, d: Directory, base: Directory | None) -> None:
    """A record's address history only grows. A hand edit that changes a mailbox's address
    without `renamed_from`, rewrites its `renamed_from`, or changes a unit's abbreviation or
    parent without `formerly`, drops an address from the record that held it: mail to it
    bounces from then on, and only the base of the review still knows it was theirs (MG614).
    `reserved` retires an address on purpose, for good: an entry may not leave it either.
    A unit that leaves the data leaves its addresses and lists in `reserved`. ``d`` is the
    data as written (a rename dated later is in its history already, as in the base's)."""
    if base is None:
        return
    reserved = {r.address.casefold() for r in d.reserved}
    # address -> the ids its entries name: an address a mailbox gives up is retired for it
    # (or for nobody), never for another id, which `reserved` would let have it
    reserved_ids: dict[str, set[int | None]] = {}
    for r in d.reserved:
        reserved_ids.setdefault(r.address.casefold(), set()).add(r.id)
    now = {m.id: m for m in d.mailboxes if m.id is not None}
    days = d.policy.previous_alias_days  # the file's, for both: the records are compared
    # ... nor the period itself shortened: (address, the day its period began) of the base's
    # records, live under the base's period and over under the file's
    base_days = base.policy.previous_alias_days
    shortened: list[tuple[str, object]] = []
    # An alias at one of the organisation's domains is an address of the record too; the
    # domains of both sides, so that a domain ending does not read as aliases dropped.
    ours = base.domains() | d.domains()
    for b in base.mailboxes:
        m = now.get(b.id) if b.id is not None else None
        if m is None:
            continue  # a record that left the data: MG603 / MG611
        kept = {x.casefold() for x in (m.address, *(p.address for p in m.previous))}
        retired = {x for x, ids in reserved_ids.items() if ids & {None, m.id}}
        lost = [x for x in (b.address, *(p.address for p in b.previous))
                if x.casefold() not in kept and x.casefold() not in retired]
        # ... and an old address that delivers today keeps delivering: a renamed_from date
        # moved back past the policy period stops it as surely as dropping it
        delivers = {p.address.casefold() for p in m.previous
                    if previous_delivers(p, days, planner.today)} | {m.address.casefold()}
        cut = [p.address for p in b.previous
               if previous_delivers(p, days, planner.today)
               and p.address.casefold() in kept and p.address.casefold() not in delivers
               and p.address.casefold() not in reserved]
        if base_days != days:
            shortened += [(p.address, p.date) for p in b.previous
                          if previous_delivers(p, base_days, planner.today)
                          and not previous_delivers(p, days, planner.today)
                          and p.address.casefold() in kept
                          and p.address.casefold() not in delivers
                          and p.address.casefold() not in reserved]
        had = {x.casefold() for x in own_aliases(m, ours)} | kept
        dropped = [x for x in own_aliases(b, ours)
                   if x.casefold() not in had and x.casefold() not in retired]
        for message, addresses in (
                (_("mailbox id {id} ({address}): {lost} delivers today in the base of the "
                   "review, but its `renamed_from` date is now so early that its period is "
                   "over: mail to it would bounce; keep the date of the rename"), cut),
                (_("mailbox id {id} ({address}) no longer has the alias {lost}, which it had "
                   "in the base of the review: mail to it would bounce, and only `reserved` "
                   "keeps it from someone else once the entry is gone; retire it on purpose "
                   "in `reserved` (without an id) in the same change"), dropped),
                (_("mailbox id {id} ({address}) no longer has {lost}, which it had in the base "
                   "of the review: mail to it would bounce; keep it in `renamed_from` "
                   "(`mailgov rename` does), or retire it on purpose in `reserved`, without an "
                   "id (with one, MG220: a live mailbox's id is its own)"), lost)):
            if addresses:
                planner.refuse("MG614", message.format(
                    id=m.id, address=d.address(m.address),
                    lost=", ".join(d.address(x) for x in dict.fromkeys(addresses))),
                    ("mailboxes", m.index))
    if shortened:
        _refuse_period_cut(planner, d, "alias_days", days, base_days, shortened, _(
            "policy.history.alias_days is now {new} (in the base of the review: {old}): "
            "{addresses} deliver(s) today as a previous address (`renamed_from`), but under "
            "the new period theirs is over: mail to them would bounce; keep the period until "
            "theirs have ended, or make it at least {least} days, which cuts none of them"))
    # an entry stays with the id it had (a newcomer given that id, or an id written in,
    # would receive mail meant for the one it retired)
    for r in base.reserved:
        if r.id in reserved_ids.get(r.address.casefold(), ()):
            continue
        holder = now.get(r.id) if r.id is not None else None
        if holder is not None and r.address.casefold() in {
                x.casefold() for x in d.ever_used(holder)}:
            continue  # its own address given back to the mailbox that held it
        if r.address.casefold() in reserved_ids:
            planner.refuse("MG614", _(
                "the `reserved` entry of {address} no longer names id {id}, as it did in the "
                "base of the review: whoever has the id it names now could be given the address "
                "and receive mail meant for its holder; keep the entry as it was").format(
                    address=d.address(r.address), id=r.id if r.id is not None else "-"),
                ("reserved",))
            continue
        planner.refuse("MG614", _(
            "{address} leaves `reserved`: it was retired so that nobody else is given it "
            "(and receives mail meant for its holder); keep the entry").format(
                address=d.address(r.address)), ("reserved",))
    if not base.units:
        return
    # a unit's address is retired for nobody: an entry with an id lets that mailbox have it
    for_nobody = {x for x, ids in reserved_ids.items() if None in ids}
    before, after = _unit_history(base), _unit_history(d)
    kept_units = {u.id for u in d.units}
    for b_unit in base.units:
        if b_unit.id in kept_units:
            continue
        # Drift removal would delete its entry and list; without it they stay as drift.
        # Either way only `reserved` keeps its addresses from a newcomer once it is gone.
        olds = sorted(before.get(b_unit.id, ()))
        missing = [x for local in olds for x in (local, list_local(local))
                   if x.casefold() not in for_nobody]
        if not missing:
            continue
        hint = (_("add them to `reserved`") if b_unit.dissolved is not None else
                _("merge it into the unit that takes over with `mailgov unit merge` (its "
                  "address and list then deliver there), or add them to `reserved`"))
        planner.refuse("MG614", _(
            "unit {unit} leaves the data, and {missing} is not in `reserved`: mail to it "
            "would bounce, and a newcomer could be given it; {hint}").format(
                unit=b_unit.id, missing=", ".join(d.address(x) for x in missing), hint=hint),
            ("units",))
    for u in d.units:
        lost = sorted(x for x in before.get(u.id, set()) - after.get(u.id, set())
                      if x.casefold() not in for_nobody)
        if lost:
            planner.refuse("MG614", _(
                "unit {unit} no longer has the address {lost}, which it had in the base of "
                "the review: mail to it (and to its list) would bounce; record the old "
                "abbreviation or parent in `formerly` (`mailgov unit rename` and `mailgov unit "
                "merge` do), or retire the address on purpose in `reserved`").format(
                    unit=u.id, lost=", ".join(d.address(x) for x in lost)),
                ("units", u.index))
    _unit_periods_cut(planner, d, base, for_nobody, after)


def _unit_periods_cut(planner: _Planner, d: Directory, base: Directory,
                      reserved: set[str], history: dict[str, set[str]]) -> None:
    """An old unit address that delivers today keeps delivering: a `formerly` or `dissolved`
    date moved back past policy.history.unit_alias_days ends it as surely as dropping it
    (MG614). The file's period for both: the records are compared, not the policy."""
    days = d.policy.unit_alias_days
    if days is None:
        return  # every period runs for ever
    today = planner.today
    naming = NamingPolicy.from_dict(d.policy.naming)
    as_file = replace(base, policy=replace(base.policy, unit_alias_days=days))
    before = former_unit_locals(as_file, NamingPolicy.from_dict(base.policy.naming), today)
    after = former_unit_locals(d, naming, today)
    now = unit_locals(d.units, naming, on_error=lambda _u, _e: None)
    for u in d.units:
        cut = [x for x in before.get(u.id, ())
               if x in history.get(u.id, ()) and x not in after.get(u.id, ())
               and x != now.get(u.id) and x.casefold() not in reserved]
        if cut:
            planner.refuse("MG614", _(
                "unit {unit}: {cut} delivers today in the base of the review, but a `formerly` "
                "date is now so early that its period is over: mail to it (and to its list) "
                "would bounce; keep the date of the change").format(
                    unit=u.id, cut=", ".join(d.address(x) for x in cut)), ("units", u.index))
    base_days = base.policy.unit_alias_days
    # ... nor the period itself shortened: (address, the day its period began) of the base's
    # records, live under the base's period and over under the file's
    shortened: list[tuple[str, object]] = []
    if base_days != days:
        began = former_unit_days(base, NamingPolicy.from_dict(base.policy.naming))
        for u in d.units:
            shortened += [(x, day) for x, day in began.get(u.id, {}).items()
                          if _period_live(day, base_days, today)
                          and not _period_live(day, days, today)
                          and x in history.get(u.id, ()) and x not in after.get(u.id, ())
                          and x != now.get(u.id) and x.casefold() not in reserved]
    was = {u.id: u for u in base.units}
    for u in d.units:
        b = was.get(u.id)
        if b is None or b.dissolved is None or u.dissolved is None:
            continue
        if not _period_live(u.dissolved.date, days, today) and \
                _period_live(b.dissolved.date, base_days, today) and \
                not _period_live(b.dissolved.date, days, today):
            shortened.append((now.get(u.id, u.abbr), b.dissolved.date))
        elif _period_live(b.dissolved.date, days, today) and \
                not _period_live(u.dissolved.date, days, today):
            planner.refuse("MG614", _(
                "unit {unit}: {address} forwards to its successor today in the base of the "
                "review, but its `dissolved` date is now so early that the period is over: "
                "mail to it would be refused from then on; keep the date of the merger").format(
                    unit=u.id, address=d.address(now.get(u.id, u.abbr))), ("units", u.index))
    if shortened:
        _refuse_period_cut(planner, d, "unit_alias_days", days, base_days, shortened, _(
            "policy.history.unit_alias_days is now {new} (in the base of the review: {old}): "
            "{addresses} deliver(s) today as the former address of a renamed or moved unit "
            "(`formerly`) or forward(s) to a dissolved unit's successor (`dissolved`), but "
            "under the new period theirs is over: mail to them (and to their lists) would "
            "bounce or be refused; keep the period until theirs have ended, or make it at "
            "least {least} days, which cuts none of them"))


def _refuse_period_cut(planner: _Planner, d: Directory, setting: str, days: int | None,
                       base_days: int | None, shortened: list[tuple[str, object]],
                       message: str) -> None:
    """MG614 for policy.history.SETTING shortened from ``base_days`` to ``days``: the
    (address, the day its period began) it cuts today, named in ``message``."""
    planner.refuse("MG614", message.format(
        new=_period_text(days), old=_period_text(base_days),
        addresses=_capped([d.address(x) for x, _day in shortened]),
        least=_least_days(planner.today, (when for _x, when in shortened))),
        ("policy", "history", setting))


#: How many addresses a refusal names before "and N more".
_SHOWN_ADDRESSES = 10


def _capped(addresses: list[str]) -> str:
    """The first addresses (without repeats), then how many more."""
    unique = list(dict.fromkeys(addresses))
    shown = ", ".join(unique[:_SHOWN_ADDRESSES])
    more = len(unique) - _SHOWN_ADDRESSES
    return shown + (_(" and {n:,} more").format(n=more) if more > 0 else "")


def _period_text(days: int | None) -> str:
    return _("{n} days").format(n=days) if days is not None else _("not set (for ever)")


def _least_days(today: date, began: Iterable[object]) -> int:
    """The shortest period under which every one of the periods that began on ``began``
    still runs on ``today``."""
    return max((today - _as_date(day)).days + 1 for day in began)


def _alias_domains_ended(planner: _Planner, written: Directory, base: Directory | None
                         ) -> None:
    """A domain that receives mail today in the base of the review keeps receiving today: an
    alias domain given an `until` of today or earlier (or removed, or the old primary
    dropped) stops every address there at once (MG614). An `until` after today passes: the
    plan shows the day among its scheduled changes."""
    if base is None:
        return
    today = planner.today
    ended = served_on(base.organization, today) - served_on(written.organization, today)
    if not ended:
        return
    org = written.organization
    listed = {a.domain.lower(): a for a in org.alias_domains}
    old, _scheduled = as_of(base, today)
    addresses: dict[str, list[str]] = {dom: [] for dom in ended}
    for e in desired_entries(old, today):
        if e.attributes.get("mailEnabled") == ("FALSE",):
            continue  # answered as cancelled either way
        for name in ("mail", "mailAlias"):
            for v in e.attributes.get(name, ()):
                dom = v.rpartition("@")[2].lower()
                if dom in addresses:
                    addresses[dom].append(v.lower())
    for dom in sorted(ended):
        alias = listed.get(dom)
        if alias is not None and alias.until is not None:
            why = _("its `until` is now {until}").format(until=alias.until)
        elif dom in written.domains():
            why = _("it no longer receives mail today in the data")
        else:
            why = _("it is no longer one of the organisation's domains (organization.domain, "
                    "organization.alias_domains)")
        found = sorted(set(addresses[dom]))
        planner.refuse("MG614", _(
            "{domain} receives mail today in the base of the review, but {why}: mail to its "
            "{count:,} address(es) ({addresses}) would bounce from then on; keep it receiving, "
            "and end it with an `until` after today (the plan shows that day among its "
            "scheduled changes)").format(domain=dom, why=why, count=len(found),
                                         addresses=_capped(found)),
            ("organization", "alias_domains", alias.index) if alias is not None
            else ("organization",))


def _forwards_into_absorbed_domains(planner: _Planner, base: Directory | None) -> None:
    """A domain that becomes an alias domain in this change (absorbed, not the base's own
    primary) is delivered here from then on: a forward to an address there, meant for a
    person elsewhere, would stay here and reach whoever holds that local part (MG613)."""
    if base is None:
        return
    d = planner.d
    absorbed = {a.domain.lower() for a in d.organization.alias_domains} - base.domains()
    if not absorbed:
        return
    for m in d.mailboxes:
        for j, target in enumerate(m.forward_to):
            dom = target.rpartition("@")[2].lower()
            if dom in absorbed:
                planner.refuse("MG613", _(
                    "mailbox {address} forwards to {target}, and {domain} becomes an alias "
                    "domain in this change: those copies would stay here and reach the holder "
                    "of {local} instead of the person at {domain}; settle the forward first "
                    "(remove it, or give the address it should reach) in its own reviewed "
                    "change").format(address=d.address(m.address), target=target, domain=dom,
                                     local=target.rpartition("@")[0]),
                    ("mailboxes", m.index, "forward_to", j))


def _holders(planner: _Planner, deleted: set[str]) -> None:
    """MG605/MG606: no address moves to another mailbox, none is held twice, no store is
    shared, after the plan."""
    live = planner.live
    # address (store) -> its one holder after the plan; a second holder goes to ``twice``
    # (sets for the few held twice, not for every one of 100,000 addresses)
    after = dict(planner.desired_holders)
    homes = dict(planner.homes)
    twice: dict[str, set[str]] = {}
    shared: dict[str, set[str]] = {}
    moved: list[str] = []
    org = planner.d.organization
    primary = org.domain.lower()
    served = planner.d.domains()
    for key, attrs in live.items():
        who = planner.matched.get(key)
        kept = who is None and key not in deleted
        if who is None:
            ident = _vals(attrs, IDENTITY)
            who = f"id:{ident[0]}" if ident and key.startswith("uid=") else "dn:" + key
        for name in ("mail", "mailAlias", FORMER):
            for v in _vals(attrs, name):
                addr = v.lower()
                if kept:  # an entry the plan leaves as it is keeps its addresses
                    first = after.setdefault(addr, who)
                    if first != who:
                        twice.setdefault(addr, {first}).add(who)
                else:
                    now = planner.desired_holders.get(addr)
                    if now is not None and now != who:
                        moved.append(f"{addr} ({who} -> {now})")
        # A former address at a domain no longer served (an old primary after its alias
        # period) keeps its local part for its holder at the primary domain: migrations keep
        # local parts, so whoever got it there would get mail meant for the former holder.
        for v in _vals(attrs, FORMER):
            local, _at, dom = v.lower().rpartition("@")
            if dom and dom not in served:
                now = planner.desired_holders.get(f"{local}@{primary}")
                if now is not None and now != who:
                    moved.append(f"{local}@{primary} ({who} -> {now}; {who} held {v})")
        home = _vals(attrs, "mailHomeDirectory")
        if home and key not in deleted:
            first = homes.setdefault(home[0], who)
            if first != who:
                shared.setdefault(home[0], {first}).add(who)
    for what in sorted(set(moved)):  # an address in both mail and mailAlias: one line
        planner.refuse("MG605", _("address {what}: an address would reach another mailbox "
                                  "than it does today; free it in one reviewed change (remove "
                                  "it, apply), then give it in another").format(what=what))
    # Only the ones held twice, sorted (the order of sorting them all, as before: each key is
    # there once); sorting all 100,000 addresses of a 50,000-mailbox no-op plan took 70 ms.
    for addr, who in sorted(twice.items()):
        planner.refuse("MG606", _("address {address} would be held by {count} entries "
                                  "({holders}); a unit or mailbox renamed while its old "
                                  "entry stays keeps the address: remove the old one "
                                  "first").format(address=addr, count=len(who),
                                                  holders=", ".join(sorted(who))))
    for home, who in sorted(shared.items()):
        planner.refuse("MG606", _("mail store {home} would belong to {holders}; two "
                                  "mailboxes never share a store").format(
                                  home=home, holders=", ".join(sorted(who))))


def _refusals(planner: _Planner, guards: Guards, changes: list[Change],
              allow_mass_change: bool | str) -> list[str]:
    d = planner.d
    live = planner.live
    out: list[str] = []
    protected = _protected_addresses(guards.protected, d.organization.domain)
    for c in changes:
        if c.kind not in _DISABLING and c.kind != "drift":
            continue
        hit = sorted(_addresses(c, live) & protected)
        if hit:
            what = _PAST.get(c.kind, "removed")
            out.append("MG602 " + _("protected account {subject} ({addresses}) would be "
                                    "{what}; protected accounts ({source}) are never disabled "
                                    "or removed by a plan").format(
                                    subject=c.subject, addresses=", ".join(hit), what=_(what),
                                    source=_source(guards.source)))
    people_suffix = "," + normalise_dn(layout_of(d).container("people"))
    total = sum(1 for k in live if k.endswith(people_suffix))
    # Everything that stops an address from delivering or takes a store away counts: people
    # suspended, cancelled, archived or purged, and lists or units removed as drift.
    disabling = sum(1 for c in changes if c.kind in _DISABLING or c.kind == "archive"
                    or (c.kind == "drift" and (c.dn.endswith(people_suffix)
                                               or _vals(c.before or {}, "mail"))))
    share = guards.max_disable_share
    # The floor as for MG609/MG610: a few suspensions in a small directory are no mass change.
    if total and disabling > max(guards.cap_floor, share * total) and not allow_mass_change:
        out.append("MG601 " + _("mass change: the plan suspends, cancels, archives or "
                                "removes {count} of {total} mailboxes ({ratio}), more than "
                                "max_disable_share {share} (floor {floor}, {source}); check "
                                "the data, or pass --allow-mass-change REASON").format(
                                count=disabling, total=total, ratio=f"{disabling / total:.1%}",
                                share=f"{share:.0%}", floor=guards.cap_floor,
                                source=_source(guards.source)))
    if _reason(allow_mass_change):
        return out  # an override that names its reason passes every cap (noted in the plan)
    addressed, total_addressed, modified, total_entries = change_counts(changes, live)
    for rule, what, count, of, cap in (
            ("MG609", _("mass change: the plan changes the addresses (mail, aliases) of "
                        "{count} of {of} entries ({ratio}), more than {name} {cap} (floor "
                        "{floor}, {source}); check the data, or pass --allow-mass-change "
                        "REASON naming the decision (shown in the plan)"),
             addressed, total_addressed, guards.max_address_change_share),
            ("MG610", _("mass change: the plan modifies {count} of {of} entries ({ratio}), "
                        "more than {name} {cap} (floor {floor}, {source}); check the data, or "
                        "pass --allow-mass-change REASON naming the decision (shown in the "
                        "plan)"),
             modified, total_entries, guards.max_modify_share)):
        limit = max(guards.cap_floor, cap * of)
        if count > limit:
            name = "max_address_change_share" if rule == "MG609" else "max_modify_share"
            out.append(f"{rule} " + what.format(
                count=count, of=of, ratio=f"{count / max(of, 1):.1%}", name=name,
                cap=f"{cap:.0%}", floor=guards.cap_floor, source=_source(guards.source)))
    return out


_MODIFYING = frozenset({"modify", "move", "rename", "restore", "add_member", "remove_member"})
_ADDRESS_ATTRS = ("mail", "mailAlias")
_BOOKKEEPING = frozenset({IDENTITY, FORMER, "objectClass"})


def change_counts(changes: Iterable[Change], live: Mapping[str, Attrs]
                  ) -> tuple[int, int, int, int]:
    """(entries whose addresses change, live entries with an address, entries modified,
    live entries with an address or members): what MG609 and MG610 count. Creates are not
    counted (nothing existing changes); disables are MG601's."""
    addressed: set[str] = set()
    modified: set[str] = set()
    for c in changes:
        if c.kind not in _MODIFYING:
            continue
        key = normalise_dn(c.dn)
        touched = {a for part in (c.add, c.delete, c.replace) for a in part}
        if c.kind in ("modify", "move") and touched <= _BOOKKEEPING:
            continue  # mailgov's own records (an id taken over, a former address kept)
        modified.add(key)
        # a renamed delegates group (cn=, no address) is not an address change
        if (c.kind == "rename" and key.startswith("uid=")) or any(
                a in part for part in (c.add, c.delete, c.replace) for a in _ADDRESS_ATTRS):
            addressed.add(key)
    with_mail = sum(1 for a in live.values() if a.get("mail"))
    with_members = sum(1 for a in live.values() if a.get("mail") or a.get("member"))
    return len(addressed), with_mail, len(modified), with_members


def _reason(allow: bool | str) -> str:
    """The reason an override names ('' for none: a bare True passes MG601 only)."""
    return allow.strip() if isinstance(allow, str) else ""


def plan(desired: Directory, live: LiveState, *, today: date,
         archived: Mapping[str, str] | None = None,
         allow_mass_change: bool | str = False, remove_drift: bool = False,
         guards: Guards | None = None, base: Directory | None = None,
         locate: Locate | None = None, recorded: date | None = None) -> Plan:
    """Changes that make ``live`` match ``desired``, in apply order, with safety rails.

    ``desired`` must be validated data (``validate(path).directory``). ``archived`` maps a
    store (home directory) to the sha256 of its verified archive; a cancelled mailbox past the
    retention recorded in the directory is purged only when its entry's own store is there.

    ``allow_mass_change`` is the override of the caps: a string is its reason (shown in the
    plan's notes) and passes MG601, MG609 and MG610; a bare True passes MG601 only.

    The guards (max_disable_share, the caps, protected, remove_drift) are ``guards`` (the
    inventory's), else ``base``'s policy (the data file at the base of the review), else the
    defaults; the file being planned can only tighten them. When ``base`` is given and its
    guards differ from the file's, the plan may hold no other change (MG607). ``locate`` turns a
    data path into FILE:LINE:COL for the refusals about records. ``recorded`` is the day a
    cancel made now is recorded as (the clock; default ``today``): a ``today`` in the past or
    future moves what is due, never the retention a cancel starts.
    """
    written = desired  # the records' history as written, for MG614 (base is as written)
    desired, scheduled = as_of(desired, today)  # dated changes: as the data is on `today`
    planner = _Planner(desired, live, today, archived or {}, locate, recorded or today)
    changes = planner.run()
    drift = _drift(planner)
    if guards is None:
        guards = Guards.of(base.policy, "the base of the review") if base is not None \
            else Guards()
    effective = guards.tightened(desired.policy)
    if remove_drift or effective.remove_drift:  # the flag, or both base and file say so
        changes += [c for c in drift if _removable(c)]
    deleted = {normalise_dn(c.dn) for c in changes if c.kind in ("drift", "purge")}
    _holders(planner, deleted)
    _purged_records_left(planner, base)
    _forwards_into_absorbed_domains(planner, base)
    _addresses_dropped(planner, written, base)
    _alias_domains_ended(planner, written, base)
    refusals = planner.refusals + _refusals(planner, effective, changes, allow_mass_change)
    notes = [_("guards from {source}: max_disable_share {disable}, max_address_change_share "
               "{address}, max_modify_share {modify} (floor {floor}), protected "
               "{protected}").format(
               source=_source(effective.source), disable=f"{effective.max_disable_share:.0%}",
               address=f"{effective.max_address_change_share:.0%}",
               modify=f"{effective.max_modify_share:.0%}", floor=effective.cap_floor,
               protected=len(effective.protected))]
    if allow_mass_change:
        reason = _reason(allow_mass_change)
        notes.insert(0, _("OVERRIDE of the mass-change caps: {reason}").format(reason=reason)
                     if reason else _("OVERRIDE of MG601 without a reason (the caps "
                                      "MG609/MG610 still apply: name a reason to pass them)"))
    if base is not None and not Guards.of(base.policy, "").same_as(
            Guards.of(desired.policy, "")):
        if changes:
            refusals.append("MG607 " + _(
                "the data changes policy.safety or policy.protected, and the plan holds "
                "{count} other change(s); change the guards alone in one reviewed change, the "
                "rest after it").format(count=len(changes)))
        else:
            notes.append(_("the guards change (policy.safety / policy.protected); alone, as "
                           "they must"))
    return Plan(tuple(changes), tuple(drift), tuple(refusals), tuple(notes), scheduled)


def render_markdown(the_plan: Plan, **kwargs: object) -> str:
    """The plan as Markdown (see :func:`mailgov.report_plan.render_markdown`)."""
    from mailgov.report_plan import render_markdown as render  # text only, no I/O

    return render(the_plan, **kwargs)  # type: ignore[arg-type]
