"""The desired LDAP entries for a data file: validated data → {dn: objectClasses + attributes}.

Pure: no I/O, no LDAP connection. The minimal loader (``playbooks/load_directory.yml``) and
the reconcile planner (``mailgov/plan.py``) both compare these entries with the live
directory, so the layout lives in ONE place. ``docs/directory.md`` is the human description of
this mapping; change both together.

Input is a validated :class:`mailgov.model.Directory` (``validate(path).directory``): the
defaults are the model's, unit addresses come from :func:`mailgov.naming.unit_locals`, and the
checks are validation's. Nothing here re-checks the data.
"""

from __future__ import annotations

import contextlib
import json
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

from mailgov.i18n import _
from mailgov.model import Directory, Mailbox, PreviousAddress, Unit, build
from mailgov.naming import NamingError, NamingPolicy, list_local, unit_locals

# Auxiliary classes from the postfix-book schema (docs/directory.md says why this schema).
MAIL_CLASSES = ("PostfixBookMailAccount", "PostfixBookMailForward")
PERSON_CLASSES = ("top", "inetOrgPerson", *MAIL_CLASSES)
# A cancelled person also carries when the cancel was applied (LIFECYCLE_CLASS, below).
CANCELLED_PERSON_CLASSES = (*PERSON_CLASSES, "mailgovLifecycle")
UNIT_CLASSES = ("top", "organizationalUnit", *MAIL_CLASSES)
LIST_CLASSES = ("top", "groupOfNames", "PostfixBookMailForward")
DELEGATES_CLASSES = ("top", "groupOfNames")
CONTAINER_CLASSES = ("top", "organizationalUnit")
# ppolicy's value for "locked by an administrator until unlocked by one".
ADMIN_LOCK = "000001010000Z"
# The password policy of `role: admin` mailboxes (policy.password.administrators), written by
# the openldap role; everyone else gets the overlay's default (policy.password.users).
ADMIN_POLICY_RDN = "cn=administrators,ou=policies"
MAIL_ROOT = "/var/vmail"  # Dovecot's static vmail user owns it
# A mailbox's store is named after its id, not its address: a rename or a new domain never
# moves it, and a namesake who later takes a freed address can never get it. Entries made
# before ids keep their <domain>/<local part> home (mailHomeDirectory is never changed).
STORE_BY_ID = f"{MAIL_ROOT}/by-id"
# When a cancel was applied and the end of its retention, recorded on the entry by the plan
# that cancels it (schema: roles/openldap, mailgov.schema). Archive and purge are due from
# these, never from dates in the data file (docs/reconcile.md, "Invariants").
LIFECYCLE_CLASS = "mailgovLifecycle"
DISABLED_AT = "mailgovDisabledTime"
RETAIN_UNTIL = "mailgovRetainUntil"
# Addresses a mailbox no longer has (a second rename, an alias removed): kept on its entry so
# that none of them is ever given to another mailbox (the planner's MG605).
FORMER = "mailgovFormerAddress"
IDENTITY = "mailUidNumber"  # postfix-book: the mailbox id (Dovecot uses its static vmail uid)

# Containers the mapping fills. The base entry, ou=services and ou=policies belong to the
# openldap role (service accounts and password policies are infrastructure, not data).
CONTAINERS = ("units", "people", "groups")


class DirectoryError(ValueError):
    """The data cannot be mapped to entries (it would not have passed validation)."""


@dataclass(slots=True)  # not frozen: 50,000 frozen inits cost a tenth of a second; read-only
class Entry:
    """One desired entry. Attribute values are strings, in a stable order. Treat as read-only.

    ``kind`` (container, unit, person, list, delegates), ``unit`` (the unit id it belongs to)
    and ``source`` (the model object it was made from) are for the planner and reports; they
    are not part of the LDAP entry and not in :meth:`to_dict`.
    """

    dn: str
    object_classes: tuple[str, ...]
    attributes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    kind: str = ""
    unit: str | None = None
    source: Mailbox | Unit | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form: {'dn', 'objectClass', 'attributes': {name: [values]}}."""
        return {
            "dn": self.dn,
            "objectClass": list(self.object_classes),
            "attributes": {k: list(v) for k, v in self.attributes.items()},
        }


@dataclass(frozen=True)
class Layout:
    """DNs and addresses derived from organization.{base_dn,domain}."""

    base_dn: str
    domain: str
    # Live alias domains (organization.alias_domains on the planning day): every address at
    # the primary domain also receives there (issue 14).
    alias_domains: tuple[str, ...] = ()

    def everywhere(self, addresses: Iterable[str]) -> tuple[str, ...]:
        """``addresses`` followed by their copies at each live alias domain (only those at
        the primary domain are copied), without repeats."""
        out = list(addresses)
        if self.alias_domains:
            suffix = "@" + self.domain
            local = [a[: -len(suffix)] for a in out if a.endswith(suffix)]
            out += [f"{x}@{dom}" for dom in self.alias_domains for x in local]
        return tuple(dict.fromkeys(out))

    @property
    def people(self) -> str:
        return f"ou=people,{self.base_dn}"

    def container(self, name: str) -> str:
        return f"ou={name},{self.base_dn}"

    def unit_dn(self, unit_id: str) -> str:
        return f"ou={unit_id},{self.container('units')}"

    def person_dn(self, local: str) -> str:
        return f"uid={local},{self.container('people')}"

    def group_dn(self, name: str) -> str:
        return f"cn={name},{self.container('groups')}"

    def address(self, local_or_full: str) -> str:
        """'tuan.na' -> 'tuan.na@monre.gov.vn'; a full address is kept (lower case)."""
        text = local_or_full.strip().lower()
        return text if "@" in text else f"{text}@{self.domain}"

    def home(self, local: str) -> str:
        """Home of a unit mailbox, and of mailboxes made before ids (by address)."""
        return f"{MAIL_ROOT}/{self.domain}/{local}"


def store_of(mailbox_id: int) -> str:
    """The mail store of mailbox ``mailbox_id`` (mailHomeDirectory of a new entry)."""
    return f"{STORE_BY_ID}/{mailbox_id}"


def layout_of(d: Directory, today: date | None = None) -> Layout:
    """The layout of ``d``; its alias domains are those live on ``today`` (None: all)."""
    org = d.organization
    return Layout(org.base_dn.strip(), org.domain.strip().lower(),
                  org.live_alias_domains(today))


@lru_cache(maxsize=1 << 16)  # titles and many names repeat across 50,000 mailboxes
def _nfc(text: str) -> str:
    """Names in NFC, single spaces: a file saved in NFD (macOS) gives the same entry."""
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return " ".join(text.split())


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    """Drop repeats, keep the first occurrence's position (LDAP values are a set)."""
    return tuple(dict.fromkeys(values))


def _as_directory(d: Directory | Mapping[str, Any]) -> Directory:
    # Older callers (lab tests) pass the parsed YAML: build the model from it. Validation
    # is still the caller's job; a file that would not validate gives a one-line error.
    if isinstance(d, Directory):
        return d
    try:
        return build(d)
    except (KeyError, TypeError, AttributeError) as exc:
        raise DirectoryError(_("the data is not valid (missing {error}); run `mailgov "
                               "validate`").format(
            error=exc)
                             ) from None


def desired_entries(d: Directory | Mapping[str, Any], today: date | None = None) -> list[Entry]:
    """All entries the data asks for, parents before children, groups last. ``today`` (the
    planning day) ends the alias period of dated previous addresses; None keeps them all.

    The order is an add order: containers, units, people, then groups (groups reference
    people and sub-unit groups, and the memberof overlay fills memberOf as groups are added).
    """
    d = _as_directory(d)
    layout = layout_of(d, today)
    try:
        naming = NamingPolicy.from_dict(d.policy.naming)
        locals_ = unit_locals(d.units, naming)
    except NamingError as exc:
        raise DirectoryError(str(exc)) from None
    entries = [Entry(layout.container(c), CONTAINER_CLASSES, {"ou": (c,)}, "container")
               for c in CONTAINERS]
    history = _history(d, naming, locals_, layout, today)
    entries += [_unit_entry(u, layout, locals_, history) for u in d.units]
    days = d.policy.previous_alias_days
    people = [_mailbox_entry(m, layout, days, today) for m in d.mailboxes]
    entries += people
    entries += _group_entries(d, people, layout, locals_, history)
    return entries


def _period_live(day: object, days: int | None, today: date | None) -> bool:
    """Whether a history period that began on ``day`` still runs on ``today``."""
    if day is None or days is None or today is None:
        return True
    start = day if isinstance(day, date) else date.fromisoformat(str(day))
    return today < start + timedelta(days=days)


def _day(value: object) -> date | None:
    if value is None:
        return None
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def former_unit_locals(d: Directory, naming: NamingPolicy, today: date | None = None
                       ) -> dict[str, list[str]]:
    """Unit id -> the local parts of its unit mailbox under each former abbreviation or
    parent whose period still runs on ``today`` (None: all), oldest first (issue 14: unit
    renames; a merger's sub-units keep their address under the dissolved parent); the days
    they stopped are :func:`former_unit_days`'."""
    days = d.policy.unit_alias_days
    return {uid: olds for uid, old in former_unit_days(d, naming).items()
            if (olds := [local for local, day in old.items()
                         if _period_live(day, days, today)])}


def former_unit_days(d: Directory, naming: NamingPolicy) -> dict[str, dict[str, date | None]]:
    """Unit id -> each former local part of its unit mailbox -> the day its period began (it
    stopped being the unit's; None: undated, for ever), oldest first.

    Every unit as it was just before each `formerly` item, all at once: the unit's own later
    items undone newest first, every other unit's items of that day or later (and, for a
    change recorded the same day, of a later day only), so a sub-unit renamed after its
    parent moved (or a parent renamed after its sub-unit was) keeps the address it really
    had then (vp.tcmt@), not one made of its old abbr and the other's new name. An address's
    period starts on the day it stopped being the unit's; an undated item counts as oldest."""
    if not any(u.formerly for u in d.units):
        return {}
    now = unit_locals(d.units, naming, on_error=lambda _u, _e: None)

    def undone(u: Unit, own_from: int | None, day: date, same_day_done: bool) -> Unit:
        """``u`` just before ``day``: its items undone newest first, from the ``own_from``-th
        on (the unit whose item it is), else those of ``day`` (unless ``same_day_done``) or
        later."""
        abbr, parent = u.abbreviation, u.parent
        for k in range(len(u.formerly) - 1, -1, -1):
            t = _day(u.formerly[k].date) or date.min
            if own_from is not None:
                if k < own_from:
                    break
            elif t < day or (same_day_done and t == day):
                break
            abbr, parent = u.formerly[k].abbr or abbr, u.formerly[k].parent or parent
        return u if (abbr, parent) == (u.abbreviation, u.parent) else \
            replace(u, abbreviation=abbr, parent=parent)

    items = sorted((_day(f.date) or date.min, k, u.id) for u in d.units
                   for k, f in enumerate(u.formerly))
    ended: dict[str, dict[str, date]] = {}  # uid -> old local -> the day it stopped
    seen: set[tuple[object, ...]] = set()
    for day, k, uid in items:
        for same_day_done in (False, True):
            units = [undone(x, k if x.id == uid else None, day, same_day_done)
                     for x in d.units]
            key = (day, *((x.abbreviation, x.parent) for x in units))
            if key in seen:
                continue  # the same units on the same day: the same addresses
            seen.add(key)
            for vid, local in unit_locals(units, naming, on_error=lambda _u, _e: None).items():
                if local != now.get(vid):
                    old = ended.setdefault(vid, {})
                    old[local] = max(old.get(local, day), day)
    return {uid: {local: None if day == date.min else day for local, day in old.items()}
            for uid, old in ended.items()}


def successor_of(d: Directory, unit_id: str) -> str:
    """The live unit a dissolved unit's addresses go to (following a chain; validation
    refuses cycles and unknown successors)."""
    by_id = {u.id: u for u in d.units}
    seen = {unit_id}
    cur = by_id[unit_id]
    while cur.dissolved is not None and cur.dissolved.successor in by_id \
            and cur.dissolved.successor not in seen:
        seen.add(cur.dissolved.successor)
        cur = by_id[cur.dissolved.successor]
    return cur.id


def _unit_entry(unit: Unit, layout: Layout, locals_: Mapping[str, str],
                history: _History | None = None) -> Entry:
    mail = layout.address(locals_[unit.id])
    old = [layout.address(x) for x in history.former.get(unit.id, ())] if history else []
    attrs: dict[str, tuple[str, ...]] = {
        "ou": (unit.id,),
        "description": (_nfc(unit.name),),
        "mail": (mail,),
        "mailAlias": layout.everywhere((mail, *old)),
        "mailEnabled": ("TRUE",),
        "mailQuota": (str(unit.mailbox.quota_mb * 1024),),  # postfix-book: KiB
        "mailHomeDirectory": (layout.home(locals_[unit.id]),),
    }
    if unit.parent is not None:
        attrs["seeAlso"] = (layout.unit_dn(unit.parent),)
    if unit.dissolved is not None and history is not None:
        # Its store stays; its address forwards to the successor's unit mailbox for the
        # period, then closes (answered as cancelled), never bounces as unknown.
        if unit.id in history.forwarding:
            attrs["mailForwardingAddress"] = (history.forwarding[unit.id],)
        else:
            attrs["mailEnabled"] = ("FALSE",)
    return Entry(layout.unit_dn(unit.id), UNIT_CLASSES, attrs, "unit", unit.id, unit)


@dataclass(frozen=True)
class _History:
    """What unit history adds to the entries on the planning day."""

    former: Mapping[str, list[str]]  # unit id -> former locals still delivering
    forwarding: Mapping[str, str]  # dissolved unit id (period running) -> successor address
    closed: frozenset[str]  # dissolved units whose period is over: no list any more


def _history(d: Directory, naming: NamingPolicy, locals_: Mapping[str, str], layout: Layout,
             today: date | None) -> _History | None:
    if not any(u.formerly or u.dissolved for u in d.units):
        return None  # the common case: nothing to compute
    forwarding: dict[str, str] = {}
    closed: set[str] = set()
    for u in d.units:
        if u.dissolved is None:
            continue
        if _period_live(u.dissolved.date, d.policy.unit_alias_days, today):
            succ = successor_of(d, u.id)
            if succ in locals_:
                forwarding[u.id] = layout.address(locals_[succ])
        else:
            closed.add(u.id)
    return _History(former_unit_locals(d, naming, today), forwarding, frozenset(closed))


def previous_delivers(p: PreviousAddress, alias_days: int | None, today: date | None) -> bool:
    """Whether a previous address is still an alias: for ever without a date, without
    policy.history or without a planning day; else until its date + alias_days."""
    if p.date is None or alias_days is None or today is None:
        return True
    day = p.date if isinstance(p.date, date) else date.fromisoformat(str(p.date))
    return today < day + timedelta(days=alias_days)


def _mailbox_entry(m: Mailbox, layout: Layout, alias_days: int | None = None,
                   today: date | None = None) -> Entry:
    # The hot loop for 50k mailboxes: plain f-strings, no helper calls where avoidable.
    local = m.address.lower()
    name = _nfc(m.name)
    words = name.split()
    mail = f"{local}@{layout.domain}"
    aliases = [layout.address(a) for a in m.aliases] if m.aliases else []
    if m.previous:  # old addresses keep delivering after a rename, for the policy period
        aliases += [layout.address(p.address) for p in m.previous
                    if previous_delivers(p, alias_days, today)]
    attrs: dict[str, tuple[str, ...]] = {
        "uid": (local,),
        "cn": (name,),
        "sn": (words[0],),
        "givenName": (words[-1],),
        "displayName": (name,),
        "employeeType": (m.kind,),
        "businessCategory": (m.role,),
        "ou": (m.unit,),
        "mail": (mail,),
        # The primary address too: one attribute answers "which entry takes this address".
        "mailAlias": (layout.everywhere(_unique([mail, *aliases])) if layout.alias_domains
                      else _unique([mail, *aliases]) if aliases else (mail,)),
        "mailEnabled": ("FALSE" if m.state == "cancelled" else "TRUE",),
        "mailQuota": (str(m.quota_mb * 1024),),  # postfix-book: KiB
        "mailHomeDirectory": (f"{MAIL_ROOT}/{layout.domain}/{local}" if m.id is None
                              else f"{STORE_BY_ID}/{m.id}",),
    }
    if m.id is not None:
        attrs[IDENTITY] = (str(m.id),)
    if m.title:
        attrs["title"] = (_nfc(m.title),)
    if m.forward_to:
        attrs["mailForwardingAddress"] = _unique(layout.address(f) for f in m.forward_to)
    if m.kind == "affiliate" and m.sponsor:
        attrs["seeAlso"] = (layout.unit_dn(m.sponsor),)
    if m.state != "active":
        attrs["pwdAccountLockedTime"] = (ADMIN_LOCK,)
    if m.role == "admin":  # stricter password policy (docs/security.md, PW-07)
        attrs["pwdPolicySubentry"] = (f"{ADMIN_POLICY_RDN},{layout.base_dn}",)
    classes = PERSON_CLASSES if m.state != "cancelled" else CANCELLED_PERSON_CLASSES
    return Entry(f"uid={local},{layout.people}", classes, attrs, "person", m.unit, m)


def _group_entries(
    d: Directory, people: list[Entry], layout: Layout, locals_: Mapping[str, str],
    history: _History | None = None,
) -> list[Entry]:
    members: dict[str, list[str]] = {u.id: [] for u in d.units}
    for entry in people:
        box = entry.source
        assert isinstance(box, Mailbox)
        if box.state != "cancelled":  # suspended mailboxes still receive
            members[box.unit].append(entry.dn)
    children: dict[str, list[str]] = {u.id: [] for u in d.units}
    parent_of = {u.id: u.parent for u in d.units}
    for u in d.units:
        if u.parent is not None:
            children[u.parent].append(u.id)
    # Deepest units first, so a parent's list is added after the lists it contains.
    depth = {uid: _depth(uid, parent_of) for uid in locals_}
    out: list[Entry] = []
    for uid in sorted(locals_, key=lambda x: (-depth[x], x)):
        if history is not None and uid in history.closed:
            continue  # a dissolved unit's list after its period: left as drift
        name = list_local(locals_[uid])
        member = sorted(members[uid]) + sorted(
            layout.group_dn(list_local(locals_[c])) for c in children[uid]
        )
        if history is not None and uid in history.forwarding:
            # a dissolved unit's list reaches everyone of the successor's
            member = [layout.group_dn(list_local(locals_[successor_of(d, uid)]))]
        mail = layout.address(name)
        attrs = {
            "cn": (name,),
            "description": (f"Mọi hộp thư của đơn vị {uid}",),
            "mail": (mail,),
            "mailAlias": layout.everywhere((mail,)),
            # groupOfNames needs a member: an empty unit's list reaches its mailbox.
            "member": tuple(member) or (layout.unit_dn(uid),),
        }
        out.append(Entry(layout.group_dn(name), LIST_CLASSES, attrs, "list", uid))
        for old in (history.former.get(uid, ()) if history is not None else ()):
            # a renamed unit's old list: holds the new one for the period (not drift)
            oname = list_local(old)
            omail = layout.address(oname)
            out.append(Entry(layout.group_dn(oname), LIST_CLASSES, {
                "cn": (oname,),
                "description": (f"Tên cũ của {name} (đơn vị {uid} đổi tên)",),
                "mail": (omail,),
                "mailAlias": layout.everywhere((omail,)),
                "member": (layout.group_dn(name),),
            }, "list", uid))
    for unit in d.units:
        if not unit.mailbox.delegates:
            continue
        name = f"{locals_[unit.id]}-delegates"
        attrs = {
            "cn": (name,),
            "description": (f"Người được giao vận hành hộp thư {locals_[unit.id]}",),
            "member": tuple(sorted({layout.person_dn(x.lower()) for x in unit.mailbox.delegates})),
        }
        out.append(Entry(layout.group_dn(name), DELEGATES_CLASSES, attrs, "delegates", unit.id))
    return out


def _depth(uid: str, parent_of: Mapping[str, str | None]) -> int:
    depth, cur = 0, parent_of.get(uid)
    while cur is not None and depth <= len(parent_of):  # validation refused loops
        depth, cur = depth + 1, parent_of.get(cur)
    return depth


def entries_json(d: Directory | Mapping[str, Any]) -> str:
    """The desired entries as JSON (what the loader ships to the provider)."""
    return json.dumps([e.to_dict() for e in desired_entries(d)], ensure_ascii=False)


def main(argv: list[str] | None = None) -> int:
    """`python -m mailgov.directory DATA.yaml` prints the desired entries as JSON.

    The file is validated first; problems are printed (PATH:LINE:COL: RULE message) on
    stderr with exit status 2, never a traceback.
    """
    import sys

    from mailgov.validate import validate

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m mailgov.directory DATA.yaml", file=sys.stderr)
        return 2
    result = validate(args[0])
    if not result.ok or result.directory is None:
        for problem in result.problems:
            print(problem.format(), file=sys.stderr)
        return 2
    try:
        text = entries_json(result.directory)
    except DirectoryError as exc:
        print(f"{args[0]}: {exc}", file=sys.stderr)
        return 2
    with contextlib.suppress(BrokenPipeError):  # `python -m mailgov.directory x | head`
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
