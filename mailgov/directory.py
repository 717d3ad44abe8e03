"""The desired LDAP entries for a data file: data → {dn: objectClasses + attributes}.

Pure: no I/O, no LDAP connection. The minimal loader (``playbooks/load_directory.yml``) and
the reconcile planner both compare these entries with the live directory, so the layout lives
in ONE place. ``docs/directory.md`` is the human description of this mapping; change both
together.

Input is the data file as a plain mapping (what the loader / ``yaml.safe_load`` give), assumed
to have passed validation; what validation would have caught raises :class:`DirectoryError`
with a readable message instead of a KeyError deep inside.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mailgov.naming import NamingError, NamingPolicy

# Auxiliary classes from the postfix-book schema (docs/directory.md says why this schema).
MAIL_CLASSES = ("PostfixBookMailAccount", "PostfixBookMailForward")
# ppolicy's value for "locked by an administrator until unlocked by one".
ADMIN_LOCK = "000001010000Z"
STATES = ("active", "suspended", "cancelled")
KINDS = ("personal", "affiliate")
ROLES = ("staff", "head", "admin")
# Used when the data file has no policy.quotas (the schema's documented defaults, MiB).
DEFAULT_QUOTA_MB = {"personal": 2048, "unit": 10240, "affiliate": 1024}
MAIL_ROOT = "/var/vmail"  # + /<domain>/<local part>; Dovecot's static vmail user owns it

# Containers the mapping fills. The base entry, ou=services and ou=policies belong to the
# openldap role (service accounts and password policies are infrastructure, not data).
CONTAINERS = ("units", "people", "groups")


class DirectoryError(ValueError):
    """The data cannot be mapped to entries (it would not have passed validation)."""


@dataclass(frozen=True)
class Entry:
    """One desired entry. Attribute values are strings, in a stable order."""

    dn: str
    object_classes: tuple[str, ...]
    attributes: dict[str, tuple[str, ...]] = field(default_factory=dict)

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
        return f"{MAIL_ROOT}/{self.domain}/{local}"


def _text(record: Mapping[str, Any], key: str, where: str) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value.strip():
        raise DirectoryError(f"{where}: '{key}' must be non-empty text")
    return value.strip()


def _quota_kib(value: Any, where: str) -> str:
    # postfix-book's mailQuota is in kilobytes (also Dovecot's default unit for storage=).
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise DirectoryError(f"{where}: quota_mb must be a positive whole number")
    return str(value * 1024)


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    """Drop repeats, keep the first occurrence's position (LDAP values are a set)."""
    seen: dict[str, None] = {}
    for v in values:
        seen.setdefault(v, None)
    return tuple(seen)


def _layout(data: Mapping[str, Any]) -> Layout:
    org = data.get("organization")
    if not isinstance(org, Mapping):
        raise DirectoryError("organization: missing")
    return Layout(
        base_dn=_text(org, "base_dn", "organization"),
        domain=_text(org, "domain", "organization").lower(),
    )


def _quota_defaults(policy: Mapping[str, Any]) -> dict[str, int]:
    quotas = policy.get("quotas") or {}
    out = dict(DEFAULT_QUOTA_MB)
    for kind in out:
        entry = quotas.get(kind)
        if isinstance(entry, Mapping) and "default" in entry:
            out[kind] = entry["default"]
    return out


def unit_locals(units: list[Mapping[str, Any]], naming: NamingPolicy) -> dict[str, str]:
    """Unit id -> local part of its unit mailbox (sub-units use their parent's local part)."""
    by_id: dict[str, Mapping[str, Any]] = {}
    for i, unit in enumerate(units):
        uid = _text(unit, "id", f"units[{i}]")
        if uid in by_id:
            raise DirectoryError(f"units[{i}]: id {uid!r} appears twice")
        by_id[uid] = unit
    out: dict[str, str] = {}

    def resolve(uid: str, chain: tuple[str, ...]) -> str:
        if uid in out:
            return out[uid]
        if uid in chain:
            raise DirectoryError(f"unit {uid!r}: parent chain loops ({' -> '.join(chain)})")
        parent = by_id[uid].get("parent")
        if parent is not None and parent not in by_id:
            raise DirectoryError(f"unit {uid!r}: parent {parent!r} is not a unit")
        parent_local = resolve(parent, (*chain, uid)) if parent is not None else None
        try:
            out[uid] = naming.unit_local(uid, parent_local)
        except NamingError as exc:
            raise DirectoryError(f"unit {uid!r}: {exc}") from None
        return out[uid]

    for uid in by_id:
        resolve(uid, ())
    return out


def desired_entries(data: Mapping[str, Any]) -> list[Entry]:
    """All entries the data file asks for, parents before children, groups last.

    The order is an add order: containers, units, people, then groups (groups reference
    people and sub-unit groups, and the memberof overlay fills memberOf as groups are added).
    """
    layout = _layout(data)
    policy = data.get("policy") or {}
    try:
        naming = NamingPolicy.from_dict(policy.get("naming") or {})
    except NamingError as exc:
        raise DirectoryError(str(exc)) from None
    quotas = _quota_defaults(policy)
    units = list(data.get("units") or [])
    mailboxes = list(data.get("mailboxes") or [])
    locals_ = unit_locals(units, naming)

    entries = [
        Entry(layout.container(c), ("top", "organizationalUnit"), {"ou": (c,)})
        for c in CONTAINERS
    ]
    entries += [_unit_entry(u, layout, locals_, quotas) for u in units]

    people: list[tuple[Entry, str, str]] = []  # (entry, unit id, state)
    seen: set[str] = set(locals_.values())
    for i, box in enumerate(mailboxes):
        entry, unit_id, state = _mailbox_entry(box, f"mailboxes[{i}]", layout, locals_, quotas)
        local = entry.attributes["uid"][0]
        if local in seen:
            raise DirectoryError(f"mailboxes[{i}]: address {local!r} is already taken")
        seen.add(local)
        people.append((entry, unit_id, state))
    entries += [p[0] for p in people]
    entries += _group_entries(units, people, layout, locals_)
    return entries


def _unit_entry(
    unit: Mapping[str, Any], layout: Layout, locals_: dict[str, str], quotas: dict[str, int]
) -> Entry:
    uid = unit["id"]
    where = f"unit {uid!r}"
    box = unit.get("mailbox") or {}
    mail = layout.address(locals_[uid])
    attrs: dict[str, tuple[str, ...]] = {
        "ou": (uid,),
        "description": (_text(unit, "name", where),),
        "mail": (mail,),
        "mailAlias": (mail,),
        "mailEnabled": ("TRUE",),
        "mailQuota": (_quota_kib(box.get("quota_mb", quotas["unit"]), where),),
        "mailHomeDirectory": (layout.home(locals_[uid]),),
    }
    if unit.get("parent") is not None:
        attrs["seeAlso"] = (layout.unit_dn(unit["parent"]),)
    return Entry(layout.unit_dn(uid), ("top", "organizationalUnit", *MAIL_CLASSES), attrs)


def _mailbox_entry(
    box: Mapping[str, Any],
    where: str,
    layout: Layout,
    locals_: dict[str, str],
    quotas: dict[str, int],
) -> tuple[Entry, str, str]:
    local = _text(box, "address", where).lower()
    name = " ".join(_text(box, "name", where).split())
    unit_id = _text(box, "unit", where)
    if unit_id not in locals_:
        raise DirectoryError(f"{where}: unit {unit_id!r} is not a unit")
    kind = box.get("kind", "personal")
    role = box.get("role", "staff")
    state = box.get("state", "active")
    for key, value, allowed in (("kind", kind, KINDS), ("role", role, ROLES),
                                ("state", state, STATES)):
        if value not in allowed:
            raise DirectoryError(f"{where}: {key} {value!r} is not one of {', '.join(allowed)}")
    mail = layout.address(local)
    words = name.split()
    aliases = [layout.address(a) for a in box.get("aliases") or []]
    attrs: dict[str, tuple[str, ...]] = {
        "uid": (local,),
        "cn": (name,),
        "sn": (words[0],),
        "givenName": (words[-1],),
        "displayName": (name,),
        "employeeType": (kind,),
        "businessCategory": (role,),
        "ou": (unit_id,),
        "mail": (mail,),
        # The primary address too: one attribute answers "which entry takes this address".
        "mailAlias": _unique([mail, *aliases]),
        "mailEnabled": ("FALSE" if state == "cancelled" else "TRUE",),
        "mailQuota": (_quota_kib(box.get("quota_mb", quotas[kind]), where),),
        "mailHomeDirectory": (layout.home(local),),
    }
    if box.get("title"):
        attrs["title"] = (str(box["title"]).strip(),)
    forwards = [layout.address(f) for f in box.get("forward_to") or []]
    if forwards:
        attrs["mailForwardingAddress"] = _unique(forwards)
    if kind == "affiliate" and box.get("sponsor"):
        sponsor = box["sponsor"]
        if sponsor not in locals_:
            raise DirectoryError(f"{where}: sponsor {sponsor!r} is not a unit")
        attrs["seeAlso"] = (layout.unit_dn(sponsor),)
    if state != "active":
        attrs["pwdAccountLockedTime"] = (ADMIN_LOCK,)
    entry = Entry(layout.person_dn(local), ("top", "inetOrgPerson", *MAIL_CLASSES), attrs)
    return entry, unit_id, state


def _group_entries(
    units: list[Mapping[str, Any]],
    people: list[tuple[Entry, str, str]],
    layout: Layout,
    locals_: dict[str, str],
) -> list[Entry]:
    members: dict[str, list[str]] = {u["id"]: [] for u in units}
    for entry, unit_id, state in people:
        if state != "cancelled":  # suspended mailboxes still receive
            members[unit_id].append(entry.dn)
    children: dict[str, list[str]] = {u["id"]: [] for u in units}
    for u in units:
        if u.get("parent") is not None:
            children[u["parent"]].append(u["id"])
    # Deepest units first, so a parent's list is added after the lists it contains.
    depth = {uid: _depth(uid, units) for uid in locals_}
    out: list[Entry] = []
    for uid in sorted(locals_, key=lambda x: (-depth[x], x)):
        name = f"{locals_[uid]}-all"
        member = sorted(members[uid]) + sorted(
            layout.group_dn(f"{locals_[c]}-all") for c in children[uid]
        )
        mail = layout.address(name)
        out.append(
            Entry(
                layout.group_dn(name),
                ("top", "groupOfNames", "PostfixBookMailForward"),
                {
                    "cn": (name,),
                    "description": (f"Mọi hộp thư của đơn vị {uid}",),
                    "mail": (mail,),
                    "mailAlias": (mail,),
                    # groupOfNames needs a member: an empty unit's list reaches its mailbox.
                    "member": tuple(member) or (layout.unit_dn(uid),),
                },
            )
        )
    dn_of = {p[0].attributes["uid"][0]: p[0].dn for p in people}
    for unit in units:
        delegates = (unit.get("mailbox") or {}).get("delegates") or []
        if not delegates:
            continue
        missing = [d for d in delegates if d not in dn_of]
        if missing:
            raise DirectoryError(
                f"unit {unit['id']!r}: delegate(s) {', '.join(missing)} have no mailbox"
            )
        name = f"{locals_[unit['id']]}-delegates"
        out.append(
            Entry(
                layout.group_dn(name),
                ("top", "groupOfNames"),
                {
                    "cn": (name,),
                    "description": (f"Người được giao vận hành hộp thư {locals_[unit['id']]}",),
                    "member": tuple(sorted(dn_of[d] for d in _unique(delegates))),
                },
            )
        )
    return out


def _depth(uid: str, units: list[Mapping[str, Any]]) -> int:
    parent_of = {u["id"]: u.get("parent") for u in units}
    depth, cur = 0, parent_of.get(uid)
    while cur is not None and depth <= len(units):  # unit_locals() already refused loops
        depth, cur = depth + 1, parent_of.get(cur)
    return depth


def entries_json(data: Mapping[str, Any]) -> str:
    """The desired entries as JSON (what the loader ships to the provider)."""
    return json.dumps([e.to_dict() for e in desired_entries(data)], ensure_ascii=False)


def main(argv: list[str] | None = None) -> int:
    """`python -m mailgov.directory DATA.yaml` prints the desired entries as JSON.

    The only I/O in this module: reading the file and printing. Errors are one line on
    stderr and exit status 2 (never a traceback).
    """
    import sys

    from mailgov.loader import LoadError, load

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m mailgov.directory DATA.yaml", file=sys.stderr)
        return 2
    try:
        text = entries_json(load(args[0]).data)
    except LoadError as exc:
        for problem in exc.problems:
            print(problem.format(), file=sys.stderr)
        return 2
    except DirectoryError as exc:
        print(f"{args[0]}: {exc}", file=sys.stderr)
        return 2
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
