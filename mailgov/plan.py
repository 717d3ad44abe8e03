"""The reconcile planner: desired data × live directory → ordered changes (issue 4).

Pure: no I/O and no ldap3 import. ``mailgov/live.py`` reads the live state, this module
decides, ``mailgov/apply.py`` writes exactly what the plan says. The layout of entries is
``mailgov/directory.py`` (docs/directory.md); how plan/apply work is docs/reconcile.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from mailgov.model import Directory

ChangeKind = Literal["create", "modify", "rename", "move", "suspend", "cancel", "restore",
                     "archive", "purge", "add_member", "remove_member", "drift"]
CHANGE_KINDS: tuple[str, ...] = ("create", "modify", "rename", "move", "suspend", "cancel",
                                 "restore", "archive", "purge", "add_member", "remove_member",
                                 "drift")
Attrs = Mapping[str, tuple[str, ...]]  # attribute name (as in docs/directory.md) -> values

_EMPTY: Attrs = {}


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


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...]  # in apply order (parents before children, deletes last)
    drift: tuple[Change, ...]  # live things the data does not explain (kind "drift")
    refusals: tuple[str, ...]  # safety rails tripped (mass change, protected account …)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in (*self.changes, *self.drift):
            out[c.kind] = out.get(c.kind, 0) + 1
        return out

    @property
    def ok(self) -> bool:
        return not self.refusals


LiveState = Mapping[str, Attrs]  # normalised DN -> attributes, as read by mailgov/live.py


def normalise_dn(dn: str) -> str:
    """Lower case, no spaces around ',' and '=' (placeholder; full version follows)."""
    return ",".join("=".join(p.strip() for p in rdn.split("=", 1))
                    for rdn in dn.split(",")).lower()


def plan(desired: Directory, live: LiveState, *, today: date,
         archived: Mapping[str, str] = _EMPTY,  # type: ignore[assignment]
         allow_mass_change: bool = False, remove_drift: bool = False) -> Plan:
    """Changes that make ``live`` match ``desired`` (placeholder; implementation follows)."""
    raise NotImplementedError
