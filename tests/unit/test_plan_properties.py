"""Property test of the reconcile planner: random edits of the data against a simulated live
directory, checking after each step that nobody's mail goes astray (issue 4, item 6).

Every step is one pull request or one scheduled run: an edit of the data file (or the clock
moving on, or an admin's ``--today``), validated the way the CLI does (``mailgov.validate`` on
a file), planned against the simulated directory (``tests/unit/plansim.py``) and applied when
the plan has no refusals. A refused plan is not merged: the data goes back to the review's
base. After every applied plan:

* **addresses**: an address reaches the identity it reached the first time it reached anyone,
  and only one (a rename keeps the old address as an alias of the SAME identity; nothing
  ever moves an address to someone else); it stops reaching anyone only when its holder is
  purged or cancelled; a record's address is served by that record's own entry;
* **stores**: a home directory is never shared by two identities, never changed on an entry
  nor moved away from it (the mail host's rename step included), and deleted only by a purge
  of its own mailbox, archived since the cancel, once the retention in force at the cancel
  (counted from the day the simulation applied it) is over;
* **rails**: the holder of an address in the START data's ``policy.protected`` is never
  disabled or removed; no plan that disables more than the START data's
  ``max_disable_share`` of the mailboxes is applied (except the reviewed
  ``--allow-mass-change`` run, :meth:`World.override`);
* the plan applies cleanly (slapd refuses none of its operations).

The rules and the checks use only ``plan()``, the fields of its changes,
``mailgov.directory``'s mapping, ``mailgov.model.build`` and ``mailgov.validate``: they are
meant to outlive the planner's internals. Mailboxes carry an ``id`` (new ones max + 1, never
reused); it is written to the data only once ``mailgov.model.Mailbox`` has an ``id`` field,
and kept beside the records until then.

The regression cases at the end replay shrunk failures found by the machine; they fail for
as long as the planner has the bug they are named after.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule
from plansim import SimDirectory, norm_dn

import mailgov.archive
import mailgov.plan
from mailgov.model import Directory, build
from mailgov.naming import NamingPolicy, Person, unit_locals
from mailgov.plan import Change, Plan
from mailgov.reconcile import PlanContext
from mailgov.validate import taken_locals, validate
from tools.generate import POLICY

Data = dict[str, Any]
Box = dict[str, Any]

BASE = "dc=monre,dc=gov,dc=vn"
DOMAIN = "monre.gov.vn"
START = date(2026, 11, 29)
PROTECTED = ("postmaster", "abuse")
REQUEST = "77/QĐ-TCCB"

# --------------------------------------------------------------------------- the start data

UNITS: list[dict[str, Any]] = [
    {"id": "vpb", "name": "Văn phòng Bộ"},
    {"id": "tcmt", "name": "Tổng cục Môi trường"},
    {"id": "vp", "name": "Văn phòng Tổng cục", "parent": "tcmt"},
    {"id": "cntt", "name": "Cục Công nghệ thông tin"},
    {"id": "ttdl", "name": "Trung tâm Dữ liệu", "parent": "cntt"},
]

# (name, unit, extra fields); addresses come from the naming policy in this order, so the
# three Nguyễn Anh Tuấn are natuan, natuan2, natuan3. Lifecycle dates are days before START.
PEOPLE: list[tuple[str, str, dict[str, Any]]] = [
    ("Nguyễn Anh Tuấn", "vpb", {"role": "head"}),
    ("Nguyễn Anh Tuấn", "tcmt", {}),
    ("Nguyễn Anh Tuấn", "vp", {}),
    ("Trần Thị Lan", "vpb", {"title": "Chuyên viên"}),
    ("Phạm Thị Minh", "cntt", {"role": "admin", "aliases": list(PROTECTED)}),
    ("Vũ Đức Thắng", "tcmt", {"role": "head"}),
    ("Lê Văn Hùng", "cntt", {}),
    ("Nguyễn Văn An", "tcmt", {}),
    ("Nguyễn Văn An", "vp", {}),
    ("Nguyễn Văn An", "ttdl", {}),
    ("Hoàng Thị Mai", "vpb", {}),
    ("Đặng Thu Hà", "vp", {}),
    ("Bùi Quang Huy", "ttdl", {}),
    ("Đỗ Thị Thu", "vp", {"cancelled": 30}),
    ("Hồ Văn Nam", "tcmt", {"cancelled": 100}),
    ("Phạm Quốc Bảo", "cntt", {"role": "head", "cancelled": 200}),
    ("Ngô Thị Hằng", "vpb", {"suspended": 10}),
    ("Trương Minh Khoa", "cntt", {}),
    ("Lý Thị Hoa", "tcmt", {}),
    ("Lý Thị Hoa", "vp", {}),
    ("Phan Văn Long", "ttdl", {}),
    ("Đinh Công Sơn", "vpb", {}),
    ("Mai Thị Ngọc", "tcmt", {}),
    ("Tạ Quang Vinh", "vp", {}),
    ("Cao Thị Yến", "cntt", {}),
    ("Lương Văn Tài", "ttdl", {}),
    ("Nguyễn Thị Lan", "vpb", {}),
    ("Trần Văn Bình", "tcmt", {"forward_to": ["binh@mard.gov.vn"]}),
]
# Names new mailboxes and renames draw from: namesakes of the start data first, then new ones.
NAMES = ("Nguyễn Anh Tuấn", "Nguyễn Văn An", "Lý Thị Hoa", "Đỗ Thị Thu", "Trần Thị Lan",
         "Phạm Quốc Bảo", "Nguyễn Anh Tú", "Trần Quốc Toàn", "Lê Thị Thanh", "Võ Minh Tâm")
NEW_ABBRS = ("vpbo", "tcmt2", "vanphong", "it", "dulieu")
NAMING = NamingPolicy.from_dict(POLICY["naming"])


def _day(days_ago: int, today: date = START) -> str:
    return (today - timedelta(days=days_ago)).isoformat()


def _cancelled(day: str) -> dict[str, str]:
    return {"date": day, "reason": "retired", "request": REQUEST}


def _suspended(day: str) -> dict[str, str]:
    return {"date": day, "reason": "Nghỉ phép", "request": "9/QĐ-VPB"}


def start_data() -> Data:
    """4-6 units with parents, ~30 mailboxes with namesakes, heads, a delegate, an admin
    holding the protected aliases, a suspended mailbox and cancelled ones inside retention
    (one a head past the staff retention but inside the heads' one)."""
    units = copy.deepcopy(UNITS)
    data: Data = {
        "version": 1,
        "organization": {"name": "Bộ Tài nguyên và Môi trường", "domain": DOMAIN,
                         "base_dn": BASE, "it_unit": "cntt"},
        "policy": {**copy.deepcopy(POLICY), "protected": list(PROTECTED)},
        "units": units,
        "mailboxes": [],
    }
    # floor 1: ~30 mailboxes, so the 5 % share (1.4) is the rail MG601 applies, not the floor
    data["policy"]["safety"] = {**data["policy"]["safety"], "floor": 1}
    taken = set(unit_locals(build(data).units, NAMING).values()) | set(PROTECTED)
    for i, (name, unit, extra) in enumerate(PEOPLE, start=1):
        address = NAMING.propose(Person(name), taken)
        taken.add(address)
        box: Box = {"id": i, "address": address, "name": name, "unit": unit}
        for key, value in extra.items():
            if key == "cancelled":
                box.update(state="cancelled", cancelled=_cancelled(_day(value)))
            elif key == "suspended":
                box.update(state="suspended", suspended=_suspended(_day(value)))
            else:
                box[key] = value
        data["mailboxes"].append(box)
    units[0].update(head="natuan", mailbox={"delegates": ["ttlan"]})
    units[1]["head"] = "vdthang"
    return data


# --------------------------------------------------------------------------- plumbing

def export(data: Data) -> Data:
    """The data file as an admin writes it."""
    return copy.deepcopy(data)


class Violation(AssertionError):
    """An invariant of the planner is broken (subclasses name which one)."""


class AddressMoved(Violation):
    """An address reaches someone else than it did (or two holders at once)."""


class AddressLost(Violation):
    """An address stopped reaching its holder without a cancel or purge.

    A lost address bounces (it never reaches someone else: AddressMoved holds every address
    to its first holder for ever). The edit commands record the old address (``formerly``,
    ``renamed_from``); a hand edit that does not is refused against the base of the review
    (MG614, plan._addresses_dropped), so no applied step may lose one."""


class WrongPerson(Violation):
    """A record's address is served by the entry of another person."""


class StoreShared(Violation):
    """Two identities share a mail store."""


class StoreMoved(Violation):
    """A home directory changed, or the store left the entry's home."""


class EarlyPurge(Violation):
    """A store deleted before its retention, without its archive, or someone else's."""


class ProtectedChanged(Violation):
    """A protected account (start data) was disabled, removed or handed on."""


class CapExceeded(Violation):
    """A plan disabling more than the start data's max_disable_share was applied."""


class ApplyFailed(Violation):
    """slapd would refuse an operation of an applied plan."""


Found = list[tuple[type[Violation], str]]


class World:
    """The data file, the simulated directory and the clock, one reviewed step at a time.

    Each public method is one step and is logged as the call that replays it; a broken
    invariant raises a :class:`Violation` naming the steps so far. The outcome of a step is
    ``applied`` (plan applied, data merged), ``refused`` (a rail refused the plan: nothing
    applied, data back to the base), ``invalid`` (validation refused the edit) or ``skipped``
    (the edit had nothing to act on).
    """

    def __init__(self) -> None:
        self.log: list[str] = []
        self.outcomes: list[str] = []
        self.clock = START
        self.sim = SimDirectory()
        self.first_holder: dict[str, str] = {}
        self.refusals: tuple[str, ...] = ()  # of the last refused plan
        self._tmp = Path(tempfile.mkdtemp(prefix="mailgov-prop-"))
        self.data = start_data()
        self.next_id = max(b["id"] for b in self.data["mailboxes"]) + 1
        directory = self._validate(self.data)
        assert directory is not None, "the start data must validate"
        self.start = directory
        self.base = directory
        self.share = directory.policy.max_disable_share
        self.floor = directory.policy.cap_floor
        p = self._plan(directory, today=self.clock)
        assert p.ok, p.refusals
        retention = self._retention(directory, self.data)
        events = self.sim.apply(p, today=self.clock, hints=self._hints(self.data),
                                retention=retention)
        assert not [e for e in events if e.kind == "error"], events
        # The cancelled mailboxes of the start data were cancelled on their recorded day.
        for box in self.data["mailboxes"]:
            if box.get("state") == "cancelled":
                days = retention[str(box["id"])]
                self.sim.disabled_at[str(box["id"])] = (
                    date.fromisoformat(box["cancelled"]["date"]), days)
        holders = self.sim.holders()
        for address, who in holders.items():
            assert len(who) == 1, (address, who)
            self.first_holder[address] = next(iter(who))
        self.protected = {f"{p}@{DOMAIN}": next(iter(holders[f"{p}@{DOMAIN}"]))
                          for p in directory.policy.protected}

    def close(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)

    # -- reading the data ---------------------------------------------------------------

    def box(self, address: str, data: Data | None = None) -> Box | None:
        return next((b for b in (data or self.data)["mailboxes"] if b["address"] == address),
                    None)

    def addresses(self, *, states: tuple[str, ...] = ("active", "suspended", "cancelled"),
                  role: str | None = None) -> list[str]:
        return [b["address"] for b in self.data["mailboxes"]
                if b.get("state", "active") in states
                and (role is None or b.get("role", "staff") == role)]

    def plain_staff(self) -> list[str]:
        """Active or suspended mailboxes that are no head, delegate or protected holder."""
        busy = {u.get("head") for u in self.data["units"]}
        for u in self.data["units"]:
            busy.update((u.get("mailbox") or {}).get("delegates", ()))
        return [b["address"] for b in self.data["mailboxes"]
                if b.get("state", "active") != "cancelled" and b["address"] not in busy
                and not set(b.get("aliases", ())) & set(PROTECTED)]

    def namesakes(self) -> list[tuple[str, str]]:
        out = []
        boxes = self.data["mailboxes"]
        for i, a in enumerate(boxes):
            out.extend((a["address"], b["address"]) for b in boxes[i + 1:]
                       if a["name"] == b["name"])
        return out

    def unit_ids(self) -> list[str]:
        return [u["id"] for u in self.data["units"]]

    def unit_addresses(self) -> list[str]:
        return sorted(unit_locals(build(export(self.data)).units, NAMING).values())

    def admin(self) -> str | None:
        """The holder of the protected aliases in the data (None once it is gone)."""
        return next((b["address"] for b in self.data["mailboxes"]
                     if set(b.get("aliases", ())) & set(PROTECTED)), None)

    # -- one step -----------------------------------------------------------------------

    def _call(self, name: str, *args: object, **kwargs: object) -> None:
        parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
        self.log.append(f"w.{name}({', '.join(parts)})")

    def _validate(self, data: Data) -> Directory | None:
        path = self._tmp / "mailboxes.yaml"  # JSON is YAML
        path.write_text(json.dumps(export(data), ensure_ascii=False, indent=1),
                        encoding="utf-8")
        result = validate(path, today=self.clock)
        return result.directory if result.ok else None

    def _plan(self, directory: Directory, *, today: date,
              allow_mass_change: bool | str = False) -> Plan:
        # As the commands plan (mailgov.reconcile.PlanContext): the guards are the review
        # base's (the data before this step), the clock is the sim's, a date ahead is MG608.
        context = PlanContext(today=today, clock=self.clock, base=self.base)
        return context.plan(directory, self.sim.live, archived=self.sim.archived_map(),
                            allow_mass_change=allow_mass_change)

    @staticmethod
    def _hints(data: Data) -> dict[str, str]:
        return {b["address"].lower(): str(b["id"]) for b in data["mailboxes"]}

    @staticmethod
    def _retention(directory: Directory, data: Data) -> dict[str, int]:
        """Record id -> days of retention this data gives it (heads keep longer)."""
        p = directory.policy
        ids = [str(b["id"]) for b in data["mailboxes"]]
        return {i: (p.retention_heads_days if m.role == "head" else p.retention_staff_days)
                for i, m in zip(ids, directory.mailboxes, strict=True)}

    def _edit(self, edit: Callable[[Data], bool | None]) -> str:
        new = copy.deepcopy(self.data)
        if edit(new) is False:
            return self._done("skipped")
        directory = self._validate(new)
        if directory is None:
            return self._done("invalid")
        outcome = self._reconcile(directory, new, self.clock)
        if outcome == "applied":
            self.data, self.base = new, directory
        return self._done(outcome)

    def _done(self, outcome: str) -> str:
        self.outcomes.append(outcome)
        return outcome

    def _reconcile(self, directory: Directory, data: Data, today: date, *,
                   allow_mass_change: bool | str = False) -> str:
        before = self.sim.holders()
        people = len(self.sim.people())
        p = self._plan(directory, today=today, allow_mass_change=allow_mass_change)
        if not p.ok:
            self.refusals = p.refusals
            return "refused"
        events = self.sim.apply(p, today=self.clock, hints=self._hints(data),
                                retention=self._retention(directory, data))
        self._raise(self._check(data, before, people, events, [], allow_mass_change))
        return "applied"

    def _raise(self, found: Found) -> None:
        if found:
            kind = found[0][0]
            lines = "\n".join(f"  {k.__name__}: {m}" for k, m in found)
            steps = "\n".join(f"  {s}" for s in self.log)
            raise kind(f"\n{lines}\nsteps (tests/unit/test_plan_properties.py World):\n{steps}")

    # -- the invariants ------------------------------------------------------------------

    def _check(self, data: Data, before: dict[str, frozenset[str]], people: int,
               events: list[Any], moved: list[str], override: bool | str) -> Found:
        sim = self.sim
        found: Found = []
        after = sim.holders()
        for e in events:
            if e.kind == "error":
                found.append((ApplyFailed, e.detail))
        # addresses: the first holder forever, one at a time
        for address, who in sorted(after.items()):
            if len(who) > 1:
                found.append((AddressMoved, f"{address} reaches {sorted(who)} at once"))
            for w in sorted(who):
                first = self.first_holder.setdefault(address, w)
                if first != w:
                    found.append((AddressMoved, f"{address} reached {first}, now reaches {w}"))
        ended = {e.identity for e in events if e.kind in ("purged", "disabled")}
        ended |= {e.identity for e in events if e.kind == "deleted" and e.via == "purge"}
        for address, who in sorted(before.items()):
            if address not in after and not who <= ended:
                found.append((AddressLost, f"{address} (of {sorted(who)}) reaches nobody now"))
        for b in data["mailboxes"]:  # a record's own address reaches that record's entry
            for who_id in sorted(after.get(f"{b['address'].lower()}@{DOMAIN}", ())):
                if who_id != str(b["id"]):
                    found.append((WrongPerson, f"record {b['id']} ({b['address']}) is served "
                                  f"by the entry of {who_id}"))
        # stores
        for e in events:
            if e.kind == "shared":
                found.append((StoreShared, f"{e.subject}: the new entry of {e.identity} gets "
                              f"the existing store {e.store} of {e.other}"))
        for m in moved:
            found.append((StoreMoved, f"the mail host moved a store on rename: {m}"))
        homes: dict[str, set[str]] = {}
        for dn, attrs in sim.live.items():
            home = attrs.get("mailHomeDirectory")
            who_dn = sim.identity(dn)
            if not home or who_dn is None:
                continue
            homes.setdefault(home[0], set()).add(who_dn)
            if sim.home_of.get(who_dn) != home[0]:
                found.append((StoreMoved, f"{dn}: home changed from "
                              f"{sim.home_of.get(who_dn)} to {home[0]}"))
            owner = sim.stores.get(home[0])
            if owner is None:
                found.append((StoreMoved, f"{dn}: no store at its home {home[0]}"))
            elif owner != who_dn:
                found.append((StoreShared, f"{dn}: its home {home[0]} holds the store of "
                              f"{owner}"))
        for home, whos in sorted(homes.items()):
            if len(whos) > 1:
                found.append((StoreShared, f"{home} is the home of {sorted(whos)}"))
        for e in events:
            if e.kind != "purged" or e.other is None:
                continue
            why = self._purge_problem(e)
            if why:
                found.append((EarlyPurge, f"purge of {e.subject} deleted {e.store}: {why}"))
        # rails
        for address, holder in sorted(self.protected.items()):
            dn = sim.entry_of(holder)
            if after.get(address) != frozenset({holder}):
                found.append((ProtectedChanged, f"{address} reaches "
                              f"{sorted(after.get(address, ()))}, not {holder}"))
            if dn is None:
                found.append((ProtectedChanged, f"{holder} ({address}) was removed"))
            elif sim.state_of(dn) != "active":
                found.append((ProtectedChanged, f"{holder} ({address}) is {sim.state_of(dn)}"))
        if not override:
            hit = {e.identity for e in events
                   if (e.kind == "disabled" and e.via != "create") or e.kind == "locked"
                   or (e.kind == "deleted" and e.detail == "person")}
            if people and len(hit) > max(self.floor, self.share * people):
                found.append((CapExceeded, f"{len(hit)} of {people} mailboxes disabled or "
                              f"removed in one plan (start max_disable_share {self.share})"))
        return found

    def _purge_problem(self, e: Any) -> str:
        if e.other != e.identity:
            return f"the store of {e.other}, not of the purged {e.identity}"
        archive = self.sim.archives.get(e.subject.strip().lower())
        if archive is None or archive.store != e.store or archive.owner != e.other:
            return f"no archive of this store by {e.other} (manifest: {archive})"
        since = self.sim.disabled_at.get(e.other)
        if since is None:
            return f"{e.other} is not cancelled"
        day, days = since
        if days is None or self.clock < day + timedelta(days=days):
            return (f"cancelled on {day} with {days} days of retention, today is "
                    f"{self.clock}")
        if archive.day < day:
            return f"archived on {archive.day}, before the cancel on {day}"
        return ""

    # -- the steps: edits of the data ----------------------------------------------------

    def add_mailbox(self, name: str, unit: str) -> str:
        """A new mailbox at the first free address for the name (a freed one, or a namesake
        number), with a new id."""
        self._call("add_mailbox", name, unit)
        new_id = self.next_id

        def edit(data: Data) -> None:
            taken = taken_locals(build(export(data)), NAMING)
            address = NAMING.propose(Person(name), taken)
            data["mailboxes"].append({"id": new_id, "address": address, "name": name,
                                      "unit": unit})

        outcome = self._edit(edit)
        if outcome == "applied":
            self.next_id += 1
        return outcome

    def cancel(self, address: str, years_back: int = 0) -> str:
        """Cancel, dated today or backdated by whole years."""
        self._call("cancel", address, years_back=years_back)

        def edit(data: Data) -> bool:
            box = self.box(address, data)
            if box is None or box.get("state") == "cancelled":
                return False
            box.update(state="cancelled",
                       cancelled=_cancelled(_day(365 * years_back, self.clock)))
            return True

        return self._edit(edit)

    def suspend(self, address: str) -> str:
        self._call("suspend", address)

        def edit(data: Data) -> bool:
            box = self.box(address, data)
            if box is None or box.get("state", "active") != "active":
                return False
            box.update(state="suspended", suspended=_suspended(self.clock.isoformat()))
            return True

        return self._edit(edit)

    def restore(self, address: str) -> str:
        self._call("restore", address)

        def edit(data: Data) -> bool:
            box = self.box(address, data)
            if box is None or box.get("state", "active") == "active":
                return False
            box.pop("state")
            box.pop("suspended", None)
            box.pop("cancelled", None)
            return True

        return self._edit(edit)

    def rename(self, address: str, new_name: str) -> str:
        """A change of name and so of address; the old address is kept (renamed_from). A
        second rename of the same mailbox replaces renamed_from with the previous address."""
        self._call("rename", address, new_name)

        def edit(data: Data) -> bool:
            box = self.box(address, data)
            if box is None:
                return False
            new = NAMING.propose(Person(new_name), taken_locals(build(export(data)), NAMING))
            box.update(address=new, name=new_name, renamed_from=address)
            for u in data["units"]:
                if u.get("head") == address:
                    u["head"] = new
                mb = u.get("mailbox") or {}
                if "delegates" in mb:
                    mb["delegates"] = [new if x == address else x for x in mb["delegates"]]
            return True

        return self._edit(edit)

    def delete_record(self, address: str) -> str:
        """The record is removed from the file (records should stay: the address is free)."""
        self._call("delete_record", address)

        def edit(data: Data) -> bool:
            box = self.box(address, data)
            if box is None:
                return False
            data["mailboxes"].remove(box)
            return True

        return self._edit(edit)

    def head_to_staff(self, address: str) -> str:
        """A cancelled head's role corrected to staff (shorter retention)."""
        self._call("head_to_staff", address)

        def edit(data: Data) -> bool:
            box = self.box(address, data)
            if box is None or box.get("role") != "head" or box.get("state") != "cancelled":
                return False
            box["role"] = "staff"
            return True

        return self._edit(edit)

    def lower_retention(self, staff_days: int, heads_days: int) -> str:
        self._call("lower_retention", staff_days, heads_days)

        def edit(data: Data) -> bool:
            r = data["policy"]["retention"]
            if staff_days >= r["staff_days"] and heads_days >= r["heads_days"]:
                return False
            r.update(staff_days=min(staff_days, r["staff_days"]),
                     heads_days=min(heads_days, r["heads_days"]))
            return True

        return self._edit(edit)

    def loosen_rails(self, victims: list[str], *, share: bool = False,
                     protected: bool = False, remove_drift: bool = False,
                     delete: bool = False) -> str:
        """One edit that loosens rails (max_disable_share 1, policy.protected emptied,
        remove_drift true) and cancels, or deletes the records of, ``victims``."""
        self._call("loosen_rails", victims, share=share, protected=protected,
                   remove_drift=remove_drift, delete=delete)

        def edit(data: Data) -> bool:
            safety = data["policy"]["safety"]
            if share:
                safety["max_disable_share"] = 1
            if protected:
                data["policy"]["protected"] = []
            if remove_drift:
                safety["remove_drift"] = True
            for address in victims:
                box = self.box(address, data)
                if box is None:
                    return False
                if delete:
                    data["mailboxes"].remove(box)
                else:
                    box.update(state="cancelled", cancelled=_cancelled(self.clock.isoformat()))
            return True

        return self._edit(edit)

    def drift_removal_on(self) -> str:
        """policy.safety.remove_drift turned on in a change of its own (MG607 refuses it with
        other changes): the edits after it run with drift removal."""
        self._call("drift_removal_on")

        def edit(data: Data) -> bool:
            safety = data["policy"]["safety"]
            if safety.get("remove_drift"):
                return False
            safety["remove_drift"] = True
            return True

        return self._edit(edit)

    def delete_unit(self, unit: str, fix: bool = True, remove_drift: bool = False) -> str:
        """The unit goes; with ``fix`` its mailboxes move to its parent (or the IT unit), its
        sub-units to its parent, so the file still validates; with ``remove_drift`` the same
        edit turns drift removal on to clean up after it."""
        self._call("delete_unit", unit, fix=fix, remove_drift=remove_drift)

        def edit(data: Data) -> bool:
            u = next((x for x in data["units"] if x["id"] == unit), None)
            if u is None:
                return False
            data["units"].remove(u)
            if remove_drift:
                data["policy"]["safety"]["remove_drift"] = True
            if fix:
                to = u.get("parent") or data["organization"]["it_unit"]
                for b in data["mailboxes"]:
                    if b["unit"] == unit:
                        b["unit"] = to
                    if b.get("sponsor") == unit:
                        b["sponsor"] = to
                for x in data["units"]:
                    if x.get("parent") == unit:
                        if u.get("parent"):
                            x["parent"] = u["parent"]
                        else:
                            x.pop("parent")
            return True

        return self._edit(edit)

    def rename_unit(self, unit: str, abbr: str) -> str:
        """A unit's abbreviation (and so its address and list address) changes."""
        self._call("rename_unit", unit, abbr)

        def edit(data: Data) -> bool:
            u = next((x for x in data["units"] if x["id"] == unit), None)
            if u is None or u.get("abbr") == abbr:
                return False
            u["abbr"] = abbr
            return True

        return self._edit(edit)

    def add_alias(self, address: str, alias: str) -> str:
        """An alias that is another address already: a list's (``<unit>-all``) or a
        person's."""
        self._call("add_alias", address, alias)

        def edit(data: Data) -> bool:
            box = self.box(address, data)
            if box is None or alias in box.get("aliases", ()):
                return False
            box["aliases"] = [*box.get("aliases", ()), alias]
            return True

        return self._edit(edit)

    def swap(self, a: str, b: str) -> str:
        """Two namesakes' addresses swapped in the file (a copy-paste slip)."""
        self._call("swap", a, b)

        def edit(data: Data) -> bool:
            x, y = self.box(a, data), self.box(b, data)
            if x is None or y is None or x is y:
                return False
            x["address"], y["address"] = b, a
            return True

        return self._edit(edit)

    def quota_cut(self, quota_mb: int) -> str:
        self._call("quota_cut", quota_mb)

        def edit(data: Data) -> None:
            for b in data["mailboxes"]:
                if b.get("kind", "personal") == "personal":
                    b["quota_mb"] = quota_mb

        return self._edit(edit)

    # -- the steps: runs without an edit --------------------------------------------------

    def advance(self, days: int) -> str:
        """Time passes; the scheduled reconcile runs."""
        self._call("advance", days)
        self.clock += timedelta(days=days)
        return self._done(self._reconcile(self.base, self.data, self.clock))

    def far_today(self, years: int) -> str:
        """An admin plans and applies with ``--today`` years ahead (the clock stays)."""
        self._call("far_today", years)
        return self._done(self._reconcile(self.base, self.data,
                                          self.clock + timedelta(days=365 * years)))

    def mail_host(self) -> str:
        """lifecycle.yml's store step on the mail host: the stores of renamed mailboxes
        (``mailgov.archive.renamed_stores``) are renamed on disk."""
        self._call("mail_host")
        moved = []
        for item in getattr(mailgov.archive, "renamed_stores", lambda _d: [])(self.base):
            if self.sim.move_store(item["old_store"], item["store"]):
                moved.append(f"{item['old_store']} -> {item['store']}")
        people = len(self.sim.people())
        self._raise(self._check(self.data, self.sim.holders(), people, [], moved, True))
        return self._done("applied" if moved else "skipped")

    def override(self) -> str:
        """The reviewed ``--allow-mass-change`` run of the merged data (e.g. due purges)."""
        self._call("override")
        return self._done(self._reconcile(self.base, self.data, self.clock,
                                          allow_mass_change="reviewed in the harness"))


# --------------------------------------------------------------------------- the machine

INDEX = st.integers(min_value=0, max_value=63)


def _pick(items: list[Any], i: int) -> Any:
    return items[i % len(items)] if items else None


class PlannerMachine(RuleBasedStateMachine):
    """Random sequences of the World's steps; each rule picks its targets from the state."""

    def __init__(self) -> None:
        super().__init__()
        self.w = World()

    def teardown(self) -> None:
        self.w.close()

    @rule(name=st.sampled_from(NAMES), unit=INDEX)
    def add_mailbox(self, name: str, unit: int) -> None:
        self.w.add_mailbox(name, _pick(self.w.unit_ids(), unit))

    @rule(who=INDEX, years_back=st.sampled_from([0, 0, 1, 3]))
    def cancel(self, who: int, years_back: int) -> None:
        target = _pick(self.w.addresses(states=("active", "suspended")), who)
        if target is not None:
            self.w.cancel(target, years_back)

    @rule(who=INDEX)
    def suspend(self, who: int) -> None:
        target = _pick(self.w.addresses(states=("active",)), who)
        if target is not None:
            self.w.suspend(target)

    @rule(who=INDEX)
    def restore(self, who: int) -> None:
        target = _pick(self.w.addresses(states=("suspended", "cancelled")), who)
        if target is not None:
            self.w.restore(target)

    @rule(who=INDEX, name=st.sampled_from(NAMES))
    def rename(self, who: int, name: str) -> None:
        renamed = [b["address"] for b in self.w.data["mailboxes"] if b.get("renamed_from")]
        # half the time a mailbox renamed already (the second rename)
        target = _pick(renamed if renamed and who % 2 else self.w.addresses(), who // 2)
        if target is not None:
            self.w.rename(target, name)

    @rule(who=INDEX)
    def delete_record(self, who: int) -> None:
        target = _pick(self.w.addresses(), who)
        if target is not None:
            self.w.delete_record(target)

    @rule(who=INDEX)
    def head_to_staff(self, who: int) -> None:
        target = _pick(self.w.addresses(states=("cancelled",), role="head"), who)
        if target is not None:
            self.w.head_to_staff(target)

    @rule(staff=st.sampled_from([1, 30, 90]), heads=st.sampled_from([1, 60, 180]))
    def lower_retention(self, staff: int, heads: int) -> None:
        self.w.lower_retention(staff, heads)

    @rule(pick=st.lists(INDEX, min_size=1, max_size=4), share=st.booleans(),
          protected=st.booleans(), remove_drift=st.booleans(), delete=st.booleans())
    def loosen_rails(self, pick: list[int], share: bool, protected: bool,
                     remove_drift: bool, delete: bool) -> None:
        remove_drift = remove_drift or delete  # deleted records are removed only as drift
        if not (share or protected or remove_drift):
            return
        pool = self.w.plain_staff()
        # a looser cap or drift removal comes with enough victims that the base's cap must
        # refuse the edit; a shorter policy.protected with the protected holder's cancel
        need = int(self.w.share * len(self.w.sim.people())) + 1 if share or remove_drift else 0
        victims: list[str] = []
        for i in [*pick, *range(len(pool))]:
            v = _pick(pool, i)
            if v is not None and v not in victims and len(victims) < need:
                victims.append(v)
        admin = self.w.admin()
        if protected and admin is not None:
            victims.append(admin)
        self.w.loosen_rails(victims, share=share, protected=protected,
                            remove_drift=remove_drift, delete=delete)

    @rule()
    def drift_removal_on(self) -> None:
        self.w.drift_removal_on()

    @rule(unit=INDEX, fix=st.booleans(), remove_drift=st.booleans())
    def delete_unit(self, unit: int, fix: bool, remove_drift: bool) -> None:
        self.w.delete_unit(_pick(self.w.unit_ids(), unit), fix, remove_drift)

    @rule(unit=INDEX, abbr=st.sampled_from(NEW_ABBRS))
    def rename_unit(self, unit: int, abbr: str) -> None:
        self.w.rename_unit(_pick(self.w.unit_ids(), unit), abbr)

    @rule(who=INDEX, other=INDEX, of_list=st.booleans())
    def add_alias(self, who: int, other: int, of_list: bool) -> None:
        address = _pick(self.w.addresses(), who)
        pool = ([f"{u}-all" for u in self.w.unit_addresses()] if of_list
                else [a for a in self.w.addresses() if a != address])
        alias = _pick(pool, other)
        if address is not None and alias is not None:
            self.w.add_alias(address, alias)

    @rule(pair=INDEX)
    def swap(self, pair: int) -> None:
        chosen = _pick(self.w.namesakes(), pair)
        if chosen is not None:
            self.w.swap(*chosen)

    @rule(quota=st.sampled_from([500, 1024]))
    def quota_cut(self, quota: int) -> None:
        self.w.quota_cut(quota)

    @rule(days=st.sampled_from([1, 30, 120, 200, 400]))
    def advance(self, days: int) -> None:
        self.w.advance(days)

    @rule(years=st.sampled_from([2, 10]))
    def far_today(self, years: int) -> None:
        self.w.far_today(years)

    @rule()
    def override(self) -> None:
        self.w.override()

    @rule()
    def mail_host(self) -> None:
        self.w.mail_host()


# Seeded (derandomize: the same sequences on every run and machine, no example database).
# 150 sequences of up to 30 steps take ~17 s when nothing fails (2 cores); a failure is
# shrunk alone (report_multiple_bugs=False keeps a red run near 15 s: the regression cases
# below hold the other known failures).
PlannerMachine.TestCase.settings = settings(
    derandomize=True, database=None, max_examples=150, stateful_step_count=30,
    deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=False,
    report_multiple_bugs=False,
)
TestPlannerProperties = PlannerMachine.TestCase


# --------------------------------------------------------------------------- regressions
# Shrunk failures of the machine above, replayed step by step (no Hypothesis needed).


def refused_as_lost(w: World, *addresses: str) -> None:
    """The last step was refused by MG614 for exactly these addresses (the address history
    of a record only grows: plan._addresses_dropped)."""
    assert w.outcomes[-1] == "refused", w.outcomes
    lost = [r for r in w.refusals if " MG614 " in f" {r}"]
    assert lost and len(lost) == len(w.refusals), w.refusals
    for address in addresses:
        assert any(f"{address}@{DOMAIN}" in r and "would bounce" in r for r in lost), lost


@pytest.fixture
def w() -> Iterator[World]:
    world = World()
    yield world
    world.close()


def test_the_start_world_is_consistent(w: World) -> None:
    """The harness itself: the start data planned and applied leaves nothing to do."""
    p = w._plan(w.base, today=w.clock)
    assert p.ok and [c.kind for c in p.changes] == [], [(c.kind, c.subject) for c in p.changes]
    assert len(w.sim.people()) == len(PEOPLE)
    assert set(w.protected) == {f"postmaster@{DOMAIN}", f"abuse@{DOMAIN}"}
    assert set(w.protected.values()) == {w.first_holder[f"ptminh@{DOMAIN}"]} == {"5"}
    assert w.advance(1) == "applied"
    # plain edits pass every check
    assert w.suspend("lvhung") == "applied"
    assert w.restore("lvhung") == "applied"
    assert w.cancel("lvhung") == "applied"
    assert w.add_mailbox("Võ Minh Tâm", "vp") == "applied"
    # every personal mailbox's quota at once: more than max_modify_share (MG610, issue 14)
    assert w.quota_cut(1024) == "refused"


@dataclasses.dataclass(frozen=True)
class _Changes:
    changes: tuple[Any, ...]


def test_the_simulation_applies_like_slapd() -> None:
    """refint on modify DN and delete, derived memberOf, refused writes write nothing."""
    sim = SimDirectory()
    person, new = f"uid=a,ou=people,{BASE}", f"uid=b,ou=people,{BASE}"
    group = f"cn=x-all,ou=groups,{BASE}"

    def run(*changes: Change) -> list[str]:
        return [e.kind for e in sim.apply(_Changes(changes), today=START, hints={"a": "7"})]

    assert run(
        Change(kind="create", dn=person, subject="a@x", unit=None,
               object_classes=("top", "inetOrgPerson", "PostfixBookMailAccount"),
               add={"uid": ("a",), "mail": ("a@x",), "mailAlias": ("a@x",),
                    "mailHomeDirectory": ("/h/a",)}),
        Change(kind="create", dn=group, subject="x-all@x", unit=None,
               object_classes=("top", "groupOfNames"),
               add={"cn": ("x-all",), "mail": ("x-all@x",), "member": (person,)}),
    ) == ["created"]
    assert sim.identity(person) == "7" and sim.stores == {"/h/a": "7"}
    assert sim.member_of(person) == (norm_dn(group),)
    assert run(Change(kind="rename", dn=new, subject="b@x", unit=None, old_dn=person)) == []
    assert sim.identity(new) == "7" and sim.live[norm_dn(new)]["uid"] == ("b",)
    assert sim.live[norm_dn(group)]["member"] == (new,)  # refint
    # A value there already (case-insensitively) fails the whole modify.
    assert run(Change(kind="modify", dn=new, subject="b@x", unit=None,
                      add={"mailAlias": ("c@x", "A@X")})) == ["error"]
    assert sim.live[norm_dn(new)]["mailAlias"] == ("a@x",)
    assert sim.holders() == {"a@x": frozenset({"7"}), "x-all@x": frozenset({"list#1"})}
    # mailUidNumber is the identity once the planner writes it
    assert run(Change(kind="modify", dn=new, subject="b@x", unit=None,
                      add={"mailUidNumber": ("42",)})) == []
    assert sim.identity(new) == "42"


# Each case below is a shrunk failure of PlannerMachine, named after what it breaks. They
# fail while the planner has the bug (the message lists every broken invariant of the step).


def test_shorter_protected_list_in_the_same_edit_lets_the_admin_be_cancelled(w: World) -> None:
    """Rails read from the edited file: policy.protected emptied by the very edit that
    cancels the holder of postmaster@ and abuse@."""
    w.loosen_rails(["ptminh"], share=False, protected=True, remove_drift=False, delete=False)


def test_raised_max_disable_share_in_the_same_edit_lets_a_mass_cancel_through(
        w: World) -> None:
    """Rails read from the edited file: max_disable_share 1 in the edit that cancels 2 of 28
    (the start data's 5 % allows 1)."""
    w.loosen_rails(["natuan2", "natuan3"], share=True, protected=False, remove_drift=False,
                   delete=False)


def test_rename_moves_the_store_away_from_the_entry(w: World) -> None:
    """The entry keeps its home (/var/vmail/…/natuan), the mail host's store step renames
    the store to /var/vmail/…/natuan4: Dovecot finds an empty home."""
    w.rename("natuan", "Nguyễn Anh Tuấn")
    w.mail_host()


def test_lowered_retention_purges_mailboxes_cancelled_under_the_old_one(w: World) -> None:
    w.lower_retention(1, 1)
    w.override()


def test_cancelled_head_changed_to_staff_is_purged_before_the_heads_retention(
        w: World) -> None:
    w.head_to_staff("pqbao")
    w.override()


def test_backdated_cancel_is_purged_the_day_after(w: World) -> None:
    """cancelled.date a year back: cancel and archive in one plan, purge in the next, no
    retention at all."""
    w.cancel("natuan2", years_back=1)
    w.override()


def test_plans_with_a_far_today_archive_and_purge_early(w: World) -> None:
    """--today two years ahead, twice: archive, then purge a head inside its retention
    (the restores keep the purges under the mass-change rail)."""
    w.restore("dtthu")
    w.far_today(2)
    w.restore("hvnam")
    w.far_today(2)


def test_alias_equal_to_a_list_address_captures_the_list(w: World) -> None:
    """cntt-all@ is not claimed by validation; Postfix's mailbox map answers before the
    list map, so the list's mail goes to natuan."""
    w.add_alias("natuan", "cntt-all")


def test_unit_abbreviation_change_drops_the_unit_address(w: World) -> None:
    """FIXED (MG614): was AddressLost, vpb@ reaching nobody; `mailgov unit rename` records
    the old abbreviation in `formerly`."""
    assert w.rename_unit("vpb", "vpbo") == "refused"
    refused_as_lost(w, "vpb")


def test_deleting_a_unit_with_drift_removal_deletes_its_mailbox_and_list(w: World) -> None:
    """In one edit with turning drift removal on, the guards' change refuses it (MG607)."""
    assert w.delete_unit("vpb", fix=True, remove_drift=True) == "refused"
    assert {r.split()[0] for r in w.refusals} == {"MG607", "MG614"}


def test_a_unit_deleted_after_drift_removal_was_turned_on_keeps_its_addresses(
        w: World) -> None:
    """FIXED (MG614): found by the machine (AddressLost 'vpb-all@… (of ['list#13'])
    reaches nobody now'): with drift removal on, a unit record deleted by hand deleted its
    unit mailbox and list. A unit leaves the data only with its addresses in `reserved`."""
    assert w.drift_removal_on() == "applied"
    assert w.delete_unit("vpb", fix=True, remove_drift=False) == "refused"
    refused_as_lost(w, "vpb", "vpb-all")
    assert "use `mailgov unit merge`" not in w.refusals[0]
    assert "merge it into the unit that takes over with `mailgov unit merge`" in w.refusals[0]


def test_deleting_a_parent_unit_readdresses_its_sub_unit(w: World) -> None:
    """FIXED (MG614): vp.tcmt@ became vp@ when tcmt went, and the old address reached
    nobody; `mailgov unit merge` records the move in the sub-unit's `formerly`."""
    assert w.delete_unit("tcmt", fix=True, remove_drift=False) == "refused"
    refused_as_lost(w, "vp.tcmt")


def test_swapped_namesake_addresses_hand_each_the_others_mailbox(w: World) -> None:
    w.swap("natuan2", "natuan3")


def test_freed_address_readded_gives_the_new_person_the_old_mailbox(w: World) -> None:
    """natuan2's record deleted, a namesake added: the naming policy proposes natuan2 again
    and the planner hands the new person the old entry (and store)."""
    w.delete_record("natuan2")
    w.add_mailbox("Nguyễn Anh Tuấn", "vpb")


def test_freed_address_of_a_cancelled_mailbox_readded_restores_the_old_mailbox(
        w: World) -> None:
    """The record of the cancelled pqbao deleted, a namesake added at pqbao: the plan
    restores the old cancelled entry, store and all, for the new person."""
    w.delete_record("pqbao")
    w.add_mailbox("Phạm Quốc Bảo", "vpb")


def test_rename_onto_a_freed_address_takes_over_the_old_entry(w: World) -> None:
    """natuan renamed to pqbao (free in the data, its record deleted): the planner modifies
    the old pqbao entry instead of renaming, and natuan@ then reaches both entries."""
    w.delete_record("pqbao")
    w.rename("natuan", "Phạm Quốc Bảo")


def test_swap_after_a_rename_moves_the_old_address_to_someone_else(w: World) -> None:
    """natuan2 renamed to nvan4 (natuan2@ kept as its alias), then nvan4 and nvan swapped:
    renamed_from travels with the record, so natuan2@ now reaches nvan's entry."""
    w.rename("natuan2", "Nguyễn Văn An")
    w.swap("nvan4", "nvan")


def test_second_rename_drops_the_first_address(w: World) -> None:
    """FIXED (MG614): natuan -> natuan4 keeps natuan@ (renamed_from); natuan4 -> natuan5
    replaced renamed_from by hand, so natuan@ reached nobody. `mailgov rename` appends."""
    assert w.rename("natuan", "Nguyễn Anh Tuấn") == "applied"
    assert w.rename("natuan4", "Nguyễn Anh Tuấn") == "refused"
    refused_as_lost(w, "natuan")


def test_purged_address_readded_reaches_a_new_person(w: World) -> None:
    """pqbao archived and purged after its retention, its record deleted, a namesake added:
    pqbao@ reaches someone else (the first add_mailbox is what the shrinker left in)."""
    w.advance(200)
    w.override()
    w.add_mailbox("Nguyễn Anh Tuấn", "vpb")
    w.delete_record("pqbao")
    w.add_mailbox("Phạm Quốc Bảo", "vpb")
