"""A simulated directory and mail host for property tests of the reconcile planner.

Not a test module: ``tests/unit/test_plan_properties.py`` drives it. :class:`SimDirectory`
holds what slapd would hold after each apply, in the form ``mailgov.live`` reads it
(normalised DN -> {attribute: tuple of values}), and carries out a plan's changes the way
``mailgov.apply`` sends them and slapd executes them:

* ``create``: add (object classes + ``change.add``); an existing DN is refused;
* ``modify``/``move``/``suspend``/``cancel``/``restore``: one modify, per attribute delete,
  then add, then replace (``delete`` with ``()`` drops the whole attribute); deleting a value
  that is not there or adding one that is, is refused, and a refused modify writes nothing;
* ``rename``: modify DN ``old_dn`` -> ``dn`` (the RDN attribute takes the new value), the
  refint overlay rewriting every ``member`` that pointed at the old DN, then the rest;
* ``add_member``/``remove_member``: modify of ``member``;
* ``purge`` and a removed ``drift``: delete the entry (refint drops it from every list);
  a purge also deletes the mail store at ``change.store``;
* ``archive``: nothing in LDAP; the mail host records ``{address: sha}`` in its manifest,
  with the store archived and whose it was.

memberOf is derived (:meth:`SimDirectory.member_of`), never stored, as the overlay does.

Beside the entries the simulation keeps what the directory alone cannot say:

* **identities**: a person entry is its ``mailUidNumber`` when it has one, else an identity
  given when the entry was created (the caller's hint, e.g. the record's id, or ``sim#n``)
  that follows modify-DN. Unit entries and lists get ``unit#n`` / ``list#n``. Two entries
  never share an identity unless the planner wrote the same ``mailUidNumber`` twice.
* **mail stores**: home path -> owner identity, made when an entry with
  ``mailHomeDirectory`` is created (a path that exists already stays its owner's: the new
  entry shares it), deleted by a purge, moved only by :meth:`SimDirectory.move_store`
  (the mail host's rename step).
* **lifecycle**: the day the simulation disabled an entry (``mailEnabled`` became FALSE)
  and the retention in force then, cleared when it is enabled again.

Everything the checks need comes back as :class:`Event` s from :meth:`SimDirectory.apply`.
The simulation knows nothing of ``mailgov.plan`` beyond the fields of its ``Change``.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

Attrs = dict[str, tuple[str, ...]]
State = dict[str, Attrs]

ADMIN_LOCK = "000001010000Z"  # ppolicy: locked by an administrator
# Attributes whose equality is exact (caseExact / integer / time syntaxes); DN-valued ones
# compare as normalised DNs; every other attribute we write is caseIgnore.
_EXACT = frozenset({"mailHomeDirectory", "mailQuota", "userPassword", "mailUidNumber",
                    "pwdAccountLockedTime", "mailgovDisabledTime", "mailgovRetainUntil"})
_DN_VALUED = frozenset({"member", "seeAlso", "pwdPolicySubentry"})
_DN_SPACES = re.compile(r"\s*([,=+])\s*")


class ChangeLike(Protocol):
    """The fields of ``mailgov.plan.Change`` the simulation reads."""

    @property
    def kind(self) -> str: ...
    @property
    def dn(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def old_dn(self) -> str | None: ...
    @property
    def object_classes(self) -> tuple[str, ...]: ...
    @property
    def add(self) -> Mapping[str, tuple[str, ...]]: ...
    @property
    def delete(self) -> Mapping[str, tuple[str, ...]]: ...
    @property
    def replace(self) -> Mapping[str, tuple[str, ...]]: ...
    @property
    def after(self) -> Mapping[str, tuple[str, ...]] | None: ...
    @property
    def store(self) -> str | None: ...


class PlanLike(Protocol):
    @property
    def changes(self) -> tuple[Any, ...]: ...


def norm_dn(dn: str) -> str:
    """One spelling per DN (lower case, NFC, no spaces around separators), as slapd compares."""
    text = unicodedata.normalize("NFC", dn.strip())
    return _DN_SPACES.sub(r"\1", text).lower()


def _key(attr: str, value: str) -> str:
    if attr in _DN_VALUED:
        return norm_dn(value)
    if attr in _EXACT:
        return value
    return " ".join(unicodedata.normalize("NFC", value).split()).lower()


def _has(values: Iterable[str], attr: str, value: str) -> bool:
    k = _key(attr, value)
    return any(_key(attr, v) == k for v in values)


def _first(attrs: Mapping[str, tuple[str, ...]], name: str) -> str | None:
    v = attrs.get(name, ())
    return v[0] if v else None


def _classes(attrs: Mapping[str, tuple[str, ...]]) -> frozenset[str]:
    return frozenset(c.lower() for c in attrs.get("objectClass", ()))


class LdapError(Exception):
    """What slapd would answer instead of writing (the change is not applied)."""


@dataclass(frozen=True)
class Archive:
    """One record of the mail host's archive manifest."""

    sha256: str
    store: str
    owner: str | None  # identity the store belonged to when it was archived
    day: date


@dataclass(frozen=True)
class Event:
    """Something an apply did that a check may care about.

    kinds: ``created`` (identity, store = home), ``shared`` (identity = the new entry,
    other = the store's owner, store), ``deleted`` (identity, via = change kind),
    ``purged`` (identity, store, other = the store's owner before, subject), ``disabled``
    (identity; via ``create`` when the entry was created disabled) / ``enabled`` (mailEnabled
    FALSE / TRUE), ``locked`` (the administrator lock written on an existing entry),
    ``archived`` (subject, store), ``archive_left`` (subject, store: the address has an
    archive of another store), ``error`` (subject, detail). ``deleted`` has detail
    ``person`` for a person entry.
    """

    kind: str
    identity: str | None = None
    store: str | None = None
    other: str | None = None
    subject: str = ""
    via: str = ""
    detail: str = ""


@dataclass
class SimDirectory:
    """The live directory (slapd with refint and memberof) and the mail host's stores."""

    live: State = field(default_factory=dict)
    ident: dict[str, str] = field(default_factory=dict)  # normalised DN -> identity
    stores: dict[str, str] = field(default_factory=dict)  # home path -> owner identity
    home_of: dict[str, str] = field(default_factory=dict)  # identity -> home at creation
    archives: dict[str, Archive] = field(default_factory=dict)  # address -> archive
    disabled_at: dict[str, tuple[date, int | None]] = field(default_factory=dict)
    _serial: int = 0

    # -- reading ------------------------------------------------------------------------

    def identity(self, dn: str) -> str | None:
        key = norm_dn(dn)
        attrs = self.live.get(key)
        if attrs is None:
            return None
        return _first(attrs, "mailUidNumber") or self.ident.get(key)

    def is_person(self, dn: str) -> bool:
        attrs = self.live.get(norm_dn(dn))
        return attrs is not None and "inetorgperson" in _classes(attrs)

    def people(self) -> list[str]:
        return [dn for dn in self.live if self.is_person(dn)]

    def entry_of(self, identity: str) -> str | None:
        """The DN of the entry with this identity (the first, if a plan duplicated it)."""
        for dn in self.live:
            if self.identity(dn) == identity:
                return dn
        return None

    def member_of(self, dn: str) -> tuple[str, ...]:
        """What the memberof overlay would show for ``dn``."""
        key = norm_dn(dn)
        return tuple(g for g, attrs in self.live.items()
                     if "groupofnames" in _classes(attrs)
                     and any(norm_dn(m) == key for m in attrs.get("member", ())))

    def holders(self) -> dict[str, frozenset[str]]:
        """Address -> identities it reaches, the way Postfix's maps are searched.

        A mailbox (person or unit, ``PostfixBookMailAccount``) whose ``mailAlias`` holds the
        address wins, enabled or not (a cancelled one refuses the mail; nothing else gets
        it); only when none does, a list (``groupOfNames`` with ``mailAlias``/``mail``).
        More than one identity for an address means Postfix would deliver to all of them.
        """
        boxes: dict[str, set[str]] = {}
        lists: dict[str, set[str]] = {}
        for dn, attrs in self.live.items():
            classes = _classes(attrs)
            who = self.identity(dn)
            if who is None:
                continue
            if "postfixbookmailaccount" in classes:
                target = boxes
                addrs: Iterable[str] = attrs.get("mailAlias", ())
            elif "groupofnames" in classes and attrs.get("mail"):
                target = lists
                addrs = (*attrs.get("mailAlias", ()), *attrs.get("mail", ()))
            else:
                continue
            for a in addrs:
                target.setdefault(a.strip().lower(), set()).add(who)
        out = {a: frozenset(s) for a, s in lists.items()}
        out.update((a, frozenset(s)) for a, s in boxes.items())
        return out

    def state_of(self, dn: str) -> str:
        """active, suspended or cancelled, read the way Postfix and Dovecot read it."""
        attrs = self.live[norm_dn(dn)]
        enabled = (_first(attrs, "mailEnabled") or "TRUE").upper()
        if enabled == "FALSE":
            return "cancelled"
        return "suspended" if attrs.get("pwdAccountLockedTime") else "active"

    def archived_map(self) -> dict[str, str]:
        """The planner's ``archived`` argument: store -> sha256."""
        return {x.store: x.sha256 for x in self.archives.values()}

    # -- writing ------------------------------------------------------------------------

    def _new_identity(self, prefix: str) -> str:
        self._serial += 1
        return f"{prefix}#{self._serial}"

    def apply(self, plan: PlanLike, *, today: date,
              hints: Mapping[str, str] | None = None,
              retention: Mapping[str, int] | None = None) -> list[Event]:
        """Carry out ``plan.changes`` in order; a refused change is reported and skipped.

        ``hints``: local part -> identity for person entries created without
        ``mailUidNumber``; ``retention``: identity -> days of retention in force, recorded
        with the day an entry is disabled.
        """
        events: list[Event] = []
        for change in plan.changes:
            try:
                self._apply_one(change, today, hints or {}, retention or {}, events)
            except LdapError as exc:
                events.append(Event("error", subject=change.subject,
                                    detail=f"{change.kind} {change.dn}: {exc}"))
        return events

    def _apply_one(self, c: ChangeLike, today: date, hints: Mapping[str, str],
                   retention: Mapping[str, int], events: list[Event]) -> None:
        kind = c.kind
        if kind == "create":
            self._add(c, today, hints, retention, events)
        elif kind == "archive":
            store = c.store or ""
            owner = self.stores.get(store)
            key = c.subject.strip().lower()
            if key in self.archives and self.archives[key].store != store:
                # as library/mailgov_mail_store.py: the manifest holds one record per address,
                # and one of another store is never replaced (nor counted as this one's)
                events.append(Event("archive_left", owner, store, subject=c.subject))
                return
            digest = hashlib.sha256(f"{store}|{owner}|{today}".encode()).hexdigest()
            self.archives[key] = Archive(digest, store, owner, today)
            events.append(Event("archived", owner, store, subject=c.subject))
        elif kind == "purge":
            who = self.identity(c.dn)
            store = c.store
            owner = self.stores.get(store) if store else None
            self._delete(c.dn, kind, events)
            if store is not None:
                self.stores.pop(store, None)
                events.append(Event("purged", who, store, owner, subject=c.subject))
        elif kind == "drift" and c.after is None and not (c.add or c.delete or c.replace):
            self._delete(c.dn, kind, events)
        elif kind == "rename" and c.old_dn:
            self._modrdn(c.old_dn, c.dn)
            rdn_attr = c.dn.split("=", 1)[0].strip()
            handled = {_key(rdn_attr, c.dn.split(",", 1)[0].split("=", 1)[1]),
                       _key(rdn_attr, c.old_dn.split(",", 1)[0].split("=", 1)[1])}

            def rest(attrs: Mapping[str, tuple[str, ...]]) -> Attrs:
                out: Attrs = {}
                for a, vs in attrs.items():
                    if a.lower() == rdn_attr.lower():
                        vs = tuple(v for v in vs if _key(a, v) not in handled)
                        if not vs:
                            continue
                    out[a] = tuple(vs)
                return out

            self._modify(c.dn, rest(c.add), rest(c.delete), dict(c.replace), today,
                         retention, events)
        else:
            self._modify(c.dn, dict(c.add), dict(c.delete), dict(c.replace), today,
                         retention, events)

    def _add(self, c: ChangeLike, today: date, hints: Mapping[str, str],
             retention: Mapping[str, int], events: list[Event]) -> None:
        key = norm_dn(c.dn)
        if key in self.live:
            raise LdapError("entryAlreadyExists")
        attrs: Attrs = {a: tuple(v) for a, v in c.add.items() if v}
        classes = tuple(dict.fromkeys((*c.object_classes, *attrs.pop("objectClass", ()))))
        attrs["objectClass"] = classes
        lower = {x.lower() for x in classes}
        if "groupofnames" in lower and not attrs.get("member"):
            raise LdapError("objectClassViolation: groupOfNames needs a member")
        self.live[key] = attrs
        if "inetorgperson" in lower:
            uid = (_first(attrs, "uid") or key.split(",", 1)[0].split("=", 1)[1]).lower()
            who = (_first(attrs, "mailUidNumber") or hints.get(uid)
                   or self._new_identity("sim"))
        elif "groupofnames" in lower:
            who = self._new_identity("list")
        else:
            who = self._new_identity("unit" if ",ou=units," in key else "entry")
        self.ident[key] = who
        home = _first(attrs, "mailHomeDirectory")
        if home is not None:
            # An identity keeps its first home while that store exists; one whose store was
            # purged starts afresh (a purged mailbox restored gets a new, empty store).
            if self.home_of.get(who) not in self.stores:
                self.home_of[who] = home
            owner = self.stores.get(home)
            if owner is None:
                self.stores[home] = who
            elif owner != who:
                events.append(Event("shared", who, home, owner, subject=c.subject))
            events.append(Event("created", who, home, subject=c.subject))
        self._lifecycle(who, {}, attrs, today, retention, events)

    def _delete(self, dn: str, via: str, events: list[Event]) -> None:
        key = norm_dn(dn)
        if key not in self.live:
            raise LdapError("noSuchObject")
        who = self.identity(key)
        person = self.is_person(key)
        del self.live[key]
        self.ident.pop(key, None)
        # refint: the deleted DN leaves every list (a list it would empty keeps it: slapd's
        # internal modify fails on groupOfNames' MUST member and the value stays).
        for attrs in self.live.values():
            members = attrs.get("member")
            if members and any(norm_dn(m) == key for m in members):
                kept = tuple(m for m in members if norm_dn(m) != key)
                if kept:
                    attrs["member"] = kept
        events.append(Event("deleted", who, via=via, detail="person" if person else ""))

    def _modrdn(self, old_dn: str, new_dn: str) -> None:
        old, new = norm_dn(old_dn), norm_dn(new_dn)
        if old not in self.live:
            raise LdapError("noSuchObject")
        if new in self.live and new != old:
            raise LdapError("entryAlreadyExists")
        attrs = dict(self.live.pop(old))
        rdn = new_dn.split(",", 1)[0]
        attr, _, value = rdn.partition("=")
        attr, value = attr.strip(), value.strip()
        old_attr, _, old_value = old_dn.split(",", 1)[0].partition("=")
        name = next((a for a in attrs if a.lower() == attr.lower()), attr)
        values = attrs.get(name, ())
        if old_attr.strip().lower() == attr.lower():  # deleteoldrdn
            values = tuple(v for v in values if _key(name, v) != _key(name, old_value.strip()))
        if not _has(values, name, value):
            values = (*values, value)
        attrs[name] = values
        self.live[new] = attrs
        if old in self.ident:
            self.ident[new] = self.ident.pop(old)
        # refint: members that named the old DN now name the new one
        for gattrs in self.live.values():
            members = gattrs.get("member")
            if members and any(norm_dn(m) == old for m in members):
                gattrs["member"] = tuple(new_dn if norm_dn(m) == old else m for m in members)

    def _modify(self, dn: str, add: Mapping[str, tuple[str, ...]],
                delete: Mapping[str, tuple[str, ...]],
                replace: Mapping[str, tuple[str, ...]], today: date,
                retention: Mapping[str, int], events: list[Event]) -> None:
        key = norm_dn(dn)
        if not (add or delete or replace):
            return  # nothing for the directory (an empty change)
        if key not in self.live:
            raise LdapError("noSuchObject")
        before = self.live[key]
        attrs = dict(before)
        for a, vs in delete.items():
            have = attrs.get(a)
            if not have:
                raise LdapError(f"noSuchAttribute: {a}")
            if not vs:
                del attrs[a]
                continue
            for v in vs:
                if not _has(have, a, v):
                    raise LdapError(f"noSuchAttribute: {a}: {v}")
            kept = tuple(h for h in have if not _has(vs, a, h))
            if kept:
                attrs[a] = kept
            else:
                del attrs[a]
        for a, vs in add.items():
            if not vs:
                continue
            have = attrs.get(a, ())
            for v in vs:
                if _has(have, a, v):
                    raise LdapError(f"attributeOrValueExists: {a}: {v}")
                have = (*have, v)
            attrs[a] = have
        for a, vs in replace.items():
            if vs:
                attrs[a] = tuple(vs)
            else:
                attrs.pop(a, None)
        if "groupofnames" in _classes(attrs) and not attrs.get("member"):
            raise LdapError("objectClassViolation: groupOfNames needs a member")
        if "postfixbookmailaccount" in _classes(attrs) and not attrs.get("mail"):
            raise LdapError("objectClassViolation: PostfixBookMailAccount needs mail")
        self.live[key] = attrs
        who = self.identity(key)
        if who is not None:
            self._lifecycle(who, before, attrs, today, retention, events)

    def _lifecycle(self, who: str, before: Mapping[str, tuple[str, ...]],
                   after: Mapping[str, tuple[str, ...]], today: date,
                   retention: Mapping[str, int], events: list[Event]) -> None:
        was = (_first(before, "mailEnabled") or "TRUE").upper() if before else None
        now = (_first(after, "mailEnabled") or "TRUE").upper()
        if now == "FALSE" and was != "FALSE":
            self.disabled_at[who] = (today, retention.get(who))
            events.append(Event("disabled", who, via="modify" if before else "create"))
        elif now == "TRUE" and was == "FALSE":
            self.disabled_at.pop(who, None)
            events.append(Event("enabled", who))
        if (before and ADMIN_LOCK in after.get("pwdAccountLockedTime", ())
                and ADMIN_LOCK not in before.get("pwdAccountLockedTime", ())):
            events.append(Event("locked", who))

    # -- the mail host ------------------------------------------------------------------

    def move_store(self, old: str, new: str) -> bool:
        """The mail host renames a store directory (when the old one exists, the new not)."""
        if old in self.stores and new not in self.stores:
            self.stores[new] = self.stores.pop(old)
            return True
        return False
