"""Apply a reconcile plan to the directory: exactly the plan's changes, in its order.

``mailgov/plan.py`` decides (pure), this module writes (ldap3, one connection). Each
:class:`~mailgov.plan.Change` becomes one LDAP operation, or two for a rename (modify DN, then
the attribute changes that go with it):

- ``create``: add (object classes + every attribute in ``change.add``);
- ``purge`` and a ``drift`` change without an ``after``: delete the entry;
- ``rename``: modify DN ``old_dn`` → ``dn`` (the old RDN value is dropped), then modify;
- everything else: one modify with the change's add / delete / replace, exactly as given
  (an empty tuple in ``delete`` deletes the whole attribute); a change with nothing to
  write (``archive``: the mail host's work, not the directory's) is a no-op here.

Errors are collected per change with its DN and the apply goes on: an entry that cannot be
written must not stop the others. A lost connection (slapd killed, network gone) stops the
apply: every later change would fail the same way. Either way nothing is half-done in a way
the planner cannot see, so re-running (read live → plan → apply) converges: the next plan
holds only what is left.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ldap3 import MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE, Connection
from ldap3.core.exceptions import LDAPCommunicationError, LDAPException
from ldap3.utils.dn import parse_dn

from mailgov.i18n import _
from mailgov.plan import Attrs, Change, Plan

# Called after each change: (change, error message or None when it was written).
OnChange = Callable[[Change, "str | None"], None]

# Kinds whose Change removes the entry instead of modifying it.
_DELETE_KINDS = frozenset({"purge"})


@dataclass(frozen=True)
class ApplyError:
    """One change the server refused (or that could not be sent)."""

    kind: str
    dn: str
    subject: str
    message: str

    def format(self) -> str:
        return f"{self.kind} {self.dn}: {self.message}"


@dataclass
class ApplyResult:
    """What an apply did. ``ok`` when every change of the plan was written."""

    applied: int = 0  # changes written (including no-ops such as archive)
    errors: list[ApplyError] = field(default_factory=list)
    not_attempted: int = 0  # changes left after the connection was lost
    aborted: str | None = None  # why the apply stopped early (connection lost)
    counts: dict[str, int] = field(default_factory=dict)  # written, per change kind
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.errors and not self.not_attempted and self.aborted is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "failed": len(self.errors),
            "not_attempted": self.not_attempted,
            "aborted": self.aborted,
            "counts": dict(sorted(self.counts.items())),
            "errors": [
                {"kind": e.kind, "dn": e.dn, "subject": e.subject, "message": e.message}
                for e in self.errors
            ],
            "seconds": round(self.seconds, 3),
        }


class ConnectionLost(Exception):
    """The connection broke during an apply (re-run after the server is back)."""


def _values(values: Iterable[str]) -> list[str]:
    return list(values)


def modifications(change: Change) -> dict[str, list[tuple[str, list[str]]]]:
    """The change as an ldap3 ``modify`` dict, in delete → add → replace order per attribute.

    Delete before add: a single-valued attribute that changes value through delete + add
    (rather than replace) must lose the old value first.
    """
    mods: dict[str, list[tuple[str, list[str]]]] = {}
    for attr, values in change.delete.items():
        mods.setdefault(attr, []).append((MODIFY_DELETE, _values(values)))
    for attr, values in change.add.items():
        if values:  # adding no value is not an operation
            mods.setdefault(attr, []).append((MODIFY_ADD, _values(values)))
    for attr, values in change.replace.items():
        mods.setdefault(attr, []).append((MODIFY_REPLACE, _values(values)))
    return mods


def _rdn(dn: str) -> tuple[str, str, str]:
    """'uid=a,ou=people,…' → ('uid', 'a', 'uid=a'); raises ValueError for a bad DN."""
    attr, value, _sep = parse_dn(dn)[0]
    return attr, value, f"{attr}={value}"


def _parent(dn: str) -> str:
    parts = parse_dn(dn)
    return ",".join(f"{a}={v}" for a, v, _ in parts[1:])


def _without_rdn_values(attrs: Attrs, rdn_attr: str,
                        handled: set[str]) -> dict[str, tuple[str, ...]]:
    """Drop the RDN values the modify-DN already wrote or removed (they would fail twice)."""
    out: dict[str, tuple[str, ...]] = {}
    for attr, values in attrs.items():
        if attr.lower() == rdn_attr.lower():
            values = tuple(v for v in values if v.lower() not in handled)
            if not values:
                continue
        out[attr] = values
    return out


def _ldap_error(conn: Connection) -> str:
    res = conn.result or {}
    desc = res.get("description") or "error"
    msg = (res.get("message") or "").strip()
    return f"{desc}: {msg}" if msg else str(desc)


def _apply_one(conn: Connection, change: Change) -> str | None:
    """Write one change; return None when done, else the server's reason."""
    if change.kind == "create":
        attrs = {k: _values(v) for k, v in change.add.items() if v}
        ok = conn.add(change.dn, list(change.object_classes), attrs)
        return None if ok else _ldap_error(conn)
    if change.kind in _DELETE_KINDS or (change.kind == "drift" and change.after is None
                                        and not (change.add or change.delete
                                                 or change.replace)):
        ok = conn.delete(change.dn)
        return None if ok else _ldap_error(conn)
    if change.kind == "rename" and change.old_dn:
        try:
            new_attr, new_value, new_rdn = _rdn(change.dn)
            old_attr, old_value, _ = _rdn(change.old_dn)
        except Exception as exc:  # ldap3 raises its own parse errors
            return f"not a DN: {exc}"
        new_parent = _parent(change.dn)
        moved = new_parent.lower() != _parent(change.old_dn).lower()
        ok = conn.modify_dn(change.old_dn, new_rdn, delete_old_dn=True,
                            new_superior=new_parent if moved else None)
        if not ok:
            return "rename: " + _ldap_error(conn)
        # modrdn added the new RDN value and removed the old one (same attribute: uid).
        handled = {new_value.lower(), old_value.lower()} if new_attr.lower() == old_attr.lower() \
            else {new_value.lower()}
        rest = Change(
            kind=change.kind, dn=change.dn, subject=change.subject, unit=change.unit,
            add=_without_rdn_values(change.add, new_attr, handled),
            delete=_without_rdn_values(change.delete, new_attr, handled),
            replace=change.replace,
        )
        mods = modifications(rest)
        if not mods:
            return None
        ok = conn.modify(change.dn, mods)
        return None if ok else "after rename: " + _ldap_error(conn)
    mods = modifications(change)
    if not mods:
        return None  # nothing for the directory to do (archive: the mail host's job)
    ok = conn.modify(change.dn, mods)
    return None if ok else _ldap_error(conn)


def apply(conn: Connection, plan: Plan, *, on_change: OnChange | None = None) -> ApplyResult:
    """Execute ``plan.changes`` in order over ``conn`` (bound, with write access).

    Never raises for a refused change (see ``ApplyResult.errors``); a lost connection ends the
    apply with ``aborted`` set and the remaining changes counted in ``not_attempted``.
    A plan with refusals is not applied at all (the caller should not have asked).
    """
    result = ApplyResult()
    if plan.refusals:
        result.aborted = "the plan was refused: " + "; ".join(plan.refusals)
        result.not_attempted = len(plan.changes)
        return result
    start = time.perf_counter()
    changes = plan.changes
    for i, change in enumerate(changes):
        try:
            error = _apply_one(conn, change)
        except LDAPCommunicationError as exc:
            result.aborted = _("connection lost at {dn}: {error}").format(dn=change.dn, error=exc)
            result.not_attempted = len(changes) - i
            break
        except LDAPException as exc:  # e.g. a value ldap3 refuses to encode
            error = f"{type(exc).__name__}: {exc}"
        if error is None:
            result.applied += 1
            result.counts[change.kind] = result.counts.get(change.kind, 0) + 1
        else:
            result.errors.append(ApplyError(change.kind, change.dn, change.subject, error))
        if on_change is not None:
            on_change(change, error)
    result.seconds = time.perf_counter() - start
    return result


def set_passwords(conn: Connection, passwords: Mapping[str, str],
                  relock: Iterable[str] = (), clear_reset: bool = False) -> list[ApplyError]:
    """Set each DN's password (RFC 3062 Password Modify over ``conn``, which must be TLS).

    ppolicy removes ``pwdAccountLockedTime`` when an administrator resets a password, so the
    DNs in ``relock`` (suspended and cancelled mailboxes) get the administrator lock again.
    With ``clear_reset`` (lab test passwords, meant to be used as set) the ``pwdReset`` mark
    that ppolicy's pwdMustChange puts on a password set by someone else is removed: Dovecot
    refuses logins while it is there (docs/reconcile.md, "Lifecycle").
    Returns the errors (empty when all were set).
    """
    from mailgov.directory import ADMIN_LOCK

    errors: list[ApplyError] = []
    lock_again = {dn.lower() for dn in relock}
    for dn, password in passwords.items():
        try:
            ok = conn.extend.standard.modify_password(user=dn, new_password=password)
            if ok and clear_reset:
                conn.modify(dn, {"pwdReset": [(MODIFY_DELETE, [])]})  # absent already: fine
            if ok and dn.lower() in lock_again:
                ok = conn.modify(dn, {"pwdAccountLockedTime": [(MODIFY_REPLACE, [ADMIN_LOCK])]})
        except LDAPCommunicationError as exc:
            raise ConnectionLost(_("connection lost at {dn}: {error}").format(
                dn=dn, error=exc)) from None
        if not ok and "not being changed from existing value" in _ldap_error(conn):
            ok = True  # ppolicy: it has this password already (set by another apply)
        if not ok:
            errors.append(ApplyError("password", dn, dn, _ldap_error(conn)))
    return errors
