"""Edits of people's records (issue 15): add, cancel, suspend, restore, move, rename, set.

Each is a text edit of the data file made with mailgov/edit.py (the machinery of
``mailgov domain migrate`` and ``unit merge``): the lines of the one record (and, for a
rename, the unit lines naming it) change; comments, order, quoting and every other line stay,
so the pull request's diff is the change. The record is edited in the file that holds it (a
per-unit file ``units/<id>.yaml`` too). Before anything is written the edited files are
loaded and validated as ``mailgov validate`` would (one load of the file to edit, one check
of the result); a refused edit writes nothing and says why (rule id and text).

Lifecycle conventions (docs/data-format.md, "Lifecycle"; mailgov/dated.py): an active record
has no ``state:`` line; a suspension is ``state: suspended`` + ``suspended: {date, reason,
request}``, a cancel ``state: cancelled`` + ``cancelled: {date, reason, request}``. A
restore ends a suspension that has begun with ``until: DATE`` (kept as history, the planner
ends it on that day) and removes one that has not begun (nothing to record); a cancel is
undone by removing its block (git keeps the history).
"""

from __future__ import annotations

import difflib
import os
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from mailgov.edit import (
    KEY,
    Edit,
    EditError,
    Item,
    add_key,
    flow,
    item,
    remove_key,
    replace_value,
    scalar,
)
from mailgov.i18n import _
from mailgov.layout import INCLUDE_LINE, UNIT_FILE_HEADER, UNITS_DIR
from mailgov.model import Directory, Mailbox, next_free_id
from mailgov.naming import NamingError, NamingPolicy, Person, unit_locals
from mailgov.validate import taken_locals

#: The order the data file writes a mailbox's keys in (docs/data-format.md): a key an edit
#: adds goes after the last of these before it.
ORDER = ("address", "id", "renamed_from", "name", "unit", "kind", "sponsor", "role", "title",
         "state", "suspended", "cancelled", "created", "request", "change", "quota_mb",
         "aliases", "forward_to", "naming_exemption", "birth", "id_digits")
UNIT_ORDER = ("id", "abbr", "name", "name_en", "parent", "head", "headcount", "approvers",
              "mailbox", "focal_point", "formerly", "dissolved")


@dataclass
class Done:
    """An edit made (or, dry run, checked): what to tell the admin, and the diff."""

    edit: Edit
    summary: str

    @property
    def diff(self) -> str:
        return self.edit.diff()


# --------------------------------------------------------------------------- lookups


def find(d: Directory, address: str) -> Mailbox:
    """The mailbox with this address (local part or full address at the domain)."""
    local, _at, dom = address.strip().partition("@")
    if dom and dom.lower() != d.organization.domain.lower():
        raise EditError(_("{address}: not at {domain}").format(
            address=address, domain=d.organization.domain))
    key = local.casefold()
    for m in d.mailboxes:
        if m.address.casefold() == key:
            return m
    near = difflib.get_close_matches(local, [m.address for m in d.mailboxes], n=3)
    hint = _("; did you mean {names}?").format(names=", ".join(near)) if near else ""
    raise EditError(_("no mailbox {address!r}").format(address=address) + hint)


def check_unit(d: Directory, unit: str) -> None:
    ids = {u.id: u for u in d.units}
    u = ids.get(unit)
    if u is None:
        near = difflib.get_close_matches(unit, list(ids), n=3)
        hint = _("; did you mean {names}?").format(names=", ".join(near)) if near else ""
        raise EditError(_("unknown unit {unit!r}").format(unit=unit) + hint)
    if u.dissolved is not None:
        raise EditError(_("unit {unit!r} is dissolved (into {successor!r})").format(
            unit=unit, successor=u.dissolved.successor))


def _today(on: date | None) -> str:
    return (on or date.today()).isoformat()


def _record(e: Edit, m: Mailbox) -> Item:
    return item(e, ("mailboxes", m.index))


def _cite(e: Edit, it: Item, request: str | None) -> None:
    """``change: {request}``: the plan cites the decision for this edit."""
    if not request:
        return
    value = flow(request=request)
    if "change" in it.keys:
        replace_value(e, it, "change", value)
    else:
        add_key(e, it, "change", [f"change: {value}"], ORDER)


def _set_state(e: Edit, it: Item, state: str) -> None:
    """``state: S``; active (the default) is written by leaving the line out."""
    if state == "active":
        if "state" in it.keys:
            remove_key(e, it, "state")
    elif "state" in it.keys:
        replace_value(e, it, "state", state)
    else:
        add_key(e, it, "state", [f"state: {state}"], ORDER)


def _put(e: Edit, it: Item, key: str, value: str) -> None:
    if key in it.keys:
        replace_value(e, it, key, value)
    else:
        add_key(e, it, key, [f"{key}: {value}"], ORDER)


# --------------------------------------------------------------------------- add


class Naming:
    """Addresses for new people: the naming policy and every local part already taken,
    computed once for a command (a batch of 1,000 rows as much as one)."""

    def __init__(self, d: Directory) -> None:
        self.policy = NamingPolicy.from_dict(d.policy.naming)
        self.unit_locals = unit_locals(d.units, self.policy)
        self.taken = taken_locals(d, self.policy, self.unit_locals)

    def propose(self, name: str, unit: str, birth: str | None = None,
                id_digits: str | None = None) -> str:
        """The address for ``name``; it is taken from then on (later rows clash with it)."""
        check_name(name)
        local = self.policy.propose(
            Person(name, self.unit_locals.get(unit), birth, id_digits), self.taken)
        self.taken.add(local.casefold())
        return local


def check_name(name: str) -> None:
    words = name.split()
    if not words:
        raise NamingError(_("the name is empty"))
    if len(words) < 2:
        raise NamingError(_("{name!r} has no given name: write the full name, surname "
                            "first (Nguyễn Văn Long)").format(name=name))


@dataclass
class NewPerson:
    name: str
    unit: str
    title: str | None = None
    role: str | None = None
    kind: str | None = None
    request: str | None = None
    birth: str | None = None
    id_digits: str | None = None
    address: str = ""  # filled in by the naming policy
    id: int = 0


def _record_lines(p: NewPerson, created: str) -> list[str]:
    out = [f"address: {p.address}", f"id: {p.id}", f"name: {scalar(p.name)}",
           f"unit: {p.unit}"]
    if p.kind and p.kind != "personal":
        out.append(f"kind: {scalar(p.kind)}")
        if p.kind == "affiliate":
            out.append(f"sponsor: {p.unit}")
    if p.role and p.role != "staff":
        out.append(f"role: {scalar(p.role)}")
    if p.title:
        out.append(f"title: {scalar(p.title)}")
    out.append(f"created: {created}")
    if p.request:
        out.append(f"request: {scalar(p.request)}")
    if p.birth:
        out.append(f"birth: {p.birth}")
    if p.id_digits:
        out.append(f'id_digits: "{p.id_digits}"')  # digits stay text (a leading 0)
    return out


def _anchor(e: Edit, unit: str, last: dict[str, int] | None = None) -> tuple[str, int, str]:
    """(file, line, dash indentation) after which a new record of ``unit`` goes: after the
    unit's last record (in its per-unit file if it has one); for a unit without records,
    after the records of the nearest unit listed before it, else at the end of the list.
    ``last``: unit -> index of its last record, when a batch has computed it once."""
    d = e.directory
    if last is None:
        last = last_records(d)
    index = last.get(unit)
    if index is None:
        order = [u.id for u in d.units]
        before = order[: order.index(unit)]
        index = next((last[u] for u in reversed(before) if u in last), None)
        if index is None and d.mailboxes:
            index = len(d.mailboxes) - 1
    if index is None:
        raise EditError(_("the data file has no mailbox yet: add the first one by hand"))
    it = item(e, ("mailboxes", index))
    if unit not in last and e.loaded.parts is not None:
        return _start_unit_file(e, unit, it)
    return it.file, it.last, it.indent[:-2]


def _start_unit_file(e: Edit, unit: str, near: Item) -> tuple[str, int, str]:
    """Per-unit files: the first record of a unit without records goes to a file of its own,
    ``units/<id>.yaml`` as `mailgov split` names it, included from the main file where the
    unit's records would stand (after ``near``, the record before them), so CODEOWNERS asks
    the unit's approvers and not another unit's. Refused when that file exists already, or
    when ``near`` is in a file the main file does not include itself (nested includes)."""
    main_dir = os.path.dirname(e.main)
    rel = f"{UNITS_DIR}/{unit}.yaml"
    name = os.path.normpath(os.path.join(main_dir, rel))
    if name in e.files:
        return name, len(e.files[name]), near.indent[:-2]  # started by this edit already
    if os.path.exists(name):
        raise EditError(_("{file} exists but does not hold unit {unit}'s records; include it "
                          "from {main} or move it away").format(file=name, unit=unit,
                                                              main=e.main))
    if near.file == e.main:
        line, indent = near.last, near.indent[:-2]
    else:
        found = [(n, m.group("indent")) for n, x in enumerate(e.lines, 1)
                 if (m := INCLUDE_LINE.match(x.rstrip("\r\n"))) is not None
                 and os.path.normpath(os.path.join(main_dir, m.group("path"))) == near.file]
        if not found:
            raise EditError(_("unit {unit} has no file of its own and {file} is not included "
                              "by {main}: start units/{unit}.yaml by hand").format(
                                  unit=unit, file=near.file, main=e.main))
        line, indent = found[0]
    eol = "\r\n" if e.lines and e.lines[0].endswith("\r\n") else "\n"
    e.insert_after(line, [f"{indent}- include: {rel}{eol}"])
    header = UNIT_FILE_HEADER.format(unit=unit, main=os.path.basename(e.main))
    e.create(name, [x + eol for x in header.splitlines()])
    return name, len(e.files[name]), indent


def last_records(d: Directory) -> dict[str, int]:
    return {m.unit: m.index for m in d.mailboxes}


_COUNT = re.compile(r"\((\d+) mailbox(?:es)?\)")


def recount(e: Edit, unit: str, delta: int,
            by_unit: dict[str, list[Mailbox]] | None = None) -> None:
    """A count such as ``(11 mailboxes)`` in the comment lines just above the unit's first
    record follows the edit (a hand edit leaves it stale): only when it is the unit's count
    now, so a comment that counts something else is left alone. ``by_unit``: the records
    per unit, when a batch has grouped them once."""
    d = e.directory
    boxes = by_unit.get(unit, []) if by_unit is not None else \
        [m for m in d.mailboxes if m.unit == unit]
    # where a run of the unit's records starts (a record moved in by hand may stand alone)
    starts = [m for m in boxes if m.index == 0 or d.mailboxes[m.index - 1].unit != unit]
    for first in starts[:5]:
        file, n, _col = e.where("mailboxes", first.index)
        lines = e.files[file]
        j = n - 1
        while j >= 1 and lines[j - 1].lstrip().startswith("#"):
            j -= 1
            m = _COUNT.search(lines[j])
            if m is not None and int(m.group(1)) == len(boxes):
                new = len(boxes) + delta
                word = "mailbox" if new == 1 else "mailboxes"
                lines[j] = f"{lines[j][: m.start()]}({new} {word}){lines[j][m.end():]}"
                return


def add(path: str | Path, people: Iterable[NewPerson], *, request: str | None = None,
        on: date | None = None, dry_run: bool = False, e: Edit | None = None) -> Done:
    """New records, addresses from the naming policy (clashes inside the batch numbered in
    order), ids after the highest; each lands after its unit's last record."""
    e = e or Edit.open(path)
    d = e.directory
    naming = Naming(d)
    next_id = next_free_id(e.loaded.data)
    batch = list(people)
    blocks: dict[tuple[str, int], list[str]] = {}
    last = last_records(d)
    anchors: dict[str, tuple[str, int, str]] = {}
    for p in batch:
        check_unit(d, p.unit)
        try:
            if not p.address:  # an import computed the batch's addresses already
                p.address = naming.propose(p.name, p.unit, p.birth, p.id_digits)
        except NamingError as exc:
            raise EditError(_("{name}: cannot propose an address: {why}").format(
                name=p.name, why=exc)) from None
        p.id = next_id
        next_id += 1
        p.request = p.request or request
        if p.unit not in anchors:
            anchors[p.unit] = _anchor(e, p.unit, last)
        file, line, dash = anchors[p.unit]
        lines = _record_lines(p, _today(on))
        block = [f"{dash}- {lines[0]}\n", *(f"{dash}  {x}\n" for x in lines[1:])]
        blocks.setdefault((file, line), []).extend(block)
    for (file, line), block in blocks.items():
        e.insert_after(line, block, file)
    by_unit: dict[str, list[Mailbox]] = {}
    for m in d.mailboxes:
        by_unit.setdefault(m.unit, []).append(m)
    added = Counter(p.unit for p in batch)
    for unit in anchors:
        recount(e, unit, added[unit], by_unit)
    e.write(dry_run=dry_run)
    full = ", ".join(d.address(p.address) for p in batch)
    return Done(e, _("added {addresses}").format(addresses=full))


# --------------------------------------------------------------------------- lifecycle


def cancel(path: str | Path, address: str, *, reason: str, request: str,
           on: date | None = None, dry_run: bool = False) -> Done:
    e = Edit.open(path)
    m = find(e.directory, address)
    if m.state == "cancelled":
        raise EditError(_("{address} is already cancelled").format(address=m.address))
    it = _record(e, m)
    _set_state(e, it, "cancelled")
    _put(e, it, "cancelled", flow(date=_today(on), reason=reason, request=request))
    e.write(dry_run=dry_run)
    return Done(e, _("{address} cancelled").format(address=m.address))


def suspend(path: str | Path, address: str, *, reason: str, request: str,
            on: date | None = None, until: date | None = None,
            dry_run: bool = False) -> Done:
    """Suspend from ``on`` (default today); with ``until`` the restore is scheduled too (the
    record stays ``active`` with a dated suspension: mailgov/dated.py)."""
    e = Edit.open(path)
    m = find(e.directory, address)
    if m.state != "active":
        raise EditError(_("{address} is {state}: only an active mailbox can be "
                          "suspended").format(address=m.address, state=m.state))
    it = _record(e, m)
    if until is None:
        _set_state(e, it, "suspended")
    block = flow(date=_today(on), reason=reason, request=request,
                 until=until.isoformat() if until else None)
    _put(e, it, "suspended", block)
    e.write(dry_run=dry_run)
    return Done(e, _("{address} suspended").format(address=m.address))


def restore(path: str | Path, address: str, *, request: str | None = None,
            on: date | None = None, dry_run: bool = False) -> Done:
    """Undo a cancel (its block goes; not on a later day: a cancel has no end date), or end
    a suspension: one that has begun by ``on`` gets ``until: ON`` (history, scheduled when
    ON is later), one that has not begun is removed."""
    e = Edit.open(path)
    m = find(e.directory, address)
    it = _record(e, m)
    when = on or date.today()
    s = m.suspended
    if m.state == "cancelled":
        if on is not None and on > date.today():
            # a cancel has no end date in the data (docs/data-format.md, "Lifecycle"), so
            # removing the block now would restore today, not on the day given
            raise EditError(_("{address} is cancelled: a cancel cannot be undone on a later "
                              "day ({date}); restore it on the day, without --date (the data "
                              "has no end date for a cancel)").format(
                address=m.address, date=on.isoformat()))
        remove_key(e, it, "cancelled")
        pending = s is not None and s.until is None
        _set_state(e, it, "suspended" if pending else "active")
    elif s is not None and (m.state == "suspended" or s.until is None
                            or date.fromisoformat(s.until) > when):
        began = date.fromisoformat(s.date) < when
        if began:
            replace_value(e, it, "suspended", flow(date=s.date, reason=s.reason,
                                                   request=s.request, until=when.isoformat()))
        else:
            remove_key(e, it, "suspended")
        _set_state(e, it, "active")
    else:
        raise EditError(_("{address} is active: nothing to restore").format(
            address=m.address))
    _cite(e, it, request)
    e.write(dry_run=dry_run)
    return Done(e, _("{address} restored").format(address=m.address))


# --------------------------------------------------------------------------- move, rename


def move(path: str | Path, address: str, unit: str, *, request: str | None = None,
         dry_run: bool = False) -> Done:
    """``unit: U``. The record stays where it is, unless the new unit's records live in
    another file (per-unit files: the new unit's approvers review it there); then it moves
    to the end of that unit's records; when the data is split and the unit has no records
    yet, to the unit's own new file (:func:`_start_unit_file`)."""
    e = Edit.open(path)
    d = e.directory
    m = find(d, address)
    check_unit(d, unit)
    if m.unit == unit:
        raise EditError(_("{address} is in unit {unit} already").format(
            address=m.address, unit=unit))
    it = _record(e, m)
    replace_value(e, it, "unit", unit)
    if m.sponsor == m.unit:
        replace_value(e, it, "sponsor", unit)
    _cite(e, it, request)
    recount(e, m.unit, -1)
    recount(e, unit, +1)
    others = [x for x in d.mailboxes if x.unit == unit]
    if others or e.loaded.parts is not None:  # per-unit files: into the unit's own file
        file, line, _dash = _anchor(e, unit)
        if file != it.file:
            lines = e.files[it.file]
            moved = lines[it.first - 1: it.last]
            for j in range(it.first, it.last + 1):
                lines[j - 1] = ""
            # the record's pending inserts (a new change: line) move with it
            keep = []
            for ins in e.inserts:
                f, n, _order, new = ins
                if f == it.file and it.first <= n <= it.last:
                    moved[n - it.first + 1: n - it.first + 1] = new
                else:
                    keep.append(ins)
            e.inserts = keep
            e.insert_after(line, moved, file)
    e.write(dry_run=dry_run)
    return Done(e, _("{address} moved to {unit}").format(address=m.address, unit=unit))


def rename(path: str | Path, address: str, *, to: str | None = None, name: str | None = None,
           request: str | None = None, on: date | None = None, dry_run: bool = False) -> Done:
    """A new address (``to``, or the naming policy's for ``name``), the old one appended
    to ``renamed_from`` (dated: it delivers for policy.history.alias_days, then stays
    reserved); a new ``name`` is written too; the unit heads and delegates naming the old
    address name the new one."""
    e = Edit.open(path)
    d = e.directory
    m = find(d, address)
    if to is None and name is None:
        raise EditError(_("give the new address (--to) or the new name (--name)"))
    if to is None:
        naming = Naming(d)
        naming.taken.discard(m.address.casefold())  # the record's own address is free to it
        try:
            to = naming.propose(name or m.name, m.unit, m.birth, m.id_digits)
        except NamingError as exc:
            raise EditError(_("cannot propose an address: {why}").format(why=exc)) from None
    to = to.strip().split("@", 1)[0]
    if to == m.address and (name is None or name == m.name):
        raise EditError(_("{address}: nothing to change").format(address=m.address))
    it = _record(e, m)
    if to != m.address:
        replace_value(e, it, "address", to)
        entry = flow(address=m.address, date=_today(on), request=request)
        if "renamed_from" not in it.keys:
            add_key(e, it, "renamed_from", ["renamed_from:", f"  - {entry}"], ORDER)
        else:
            first, last = it.keys["renamed_from"]
            lines = e.files[it.file]
            if first == last:  # one line: a local part or a flow list -> a block list
                olds = [p.address if p.date is None and p.request is None
                        else flow(address=p.address, date=p.date, request=p.request)
                        for p in m.previous]
                lines[first - 1] = "".join([f"{it.indent}renamed_from:\n",
                                            *(f"{it.indent}  - {x}\n" for x in [*olds, entry])])
            else:
                dash = lines[last - 1][: len(lines[last - 1]) - len(lines[last - 1].lstrip())]
                e.insert_after(last, [f"{dash}- {entry}\n"], it.file)
        for u in d.units:
            if u.head == m.address:
                e.set_scalar(("units", u.index, "head"), "head", m.address, to)
            if m.address in u.mailbox.delegates:
                j = u.mailbox.delegates.index(m.address)
                _rename_in_list(e, ("units", u.index, "mailbox", "delegates", j), m.address, to)
    if name is not None and name != m.name:
        replace_value(e, it, "name", scalar(name))
    _cite(e, it, request if to == m.address else None)
    e.write(dry_run=dry_run)
    return Done(e, _("{old} renamed to {new}").format(old=m.address, new=to))


def _rename_in_list(e: Edit, path: tuple[str | int, ...], old: str, new: str) -> None:
    file, n, _col = e.where(*path)
    lines = e.files[file]
    edited, count = re.subn(rf"(?<=[\[,\s]){re.escape(old)}(?=[\],\s]|$)", new, lines[n - 1],
                            count=1)
    if count != 1:
        raise EditError(_("{file}:{line}: cannot find {old!r} to rename; edit it by "
                          "hand").format(file=file, line=n, old=old))
    lines[n - 1] = edited


def _sub_item(e: Edit, it: Item, key: str) -> Item:
    """The block mapping under ``key`` of ``it`` (e.g. a unit's ``mailbox:``)."""
    first, last = it.keys[key]
    lines = e.files[it.file]
    body = [j for j in range(first + 1, last + 1)
            if lines[j - 1].strip() and not lines[j - 1].lstrip().startswith("#")]
    if first == last or not body:
        raise EditError(_("{file}:{line}: {key} is written in flow style; edit it by "
                          "hand").format(file=it.file, line=first, key=key))
    text = lines[body[0] - 1]
    indent = text[: len(text) - len(text.lstrip(" "))]
    keys: dict[str, tuple[int, int]] = {}
    current = ""
    for j in body:
        line = lines[j - 1]
        k = KEY.match(line, len(indent)) if line.startswith(indent) and \
            not line[len(indent)].isspace() else None
        if k is not None:
            current = k.group(1)
            keys[current] = (j, j)
        elif current:
            keys[current] = (keys[current][0], j)
    return Item(it.file, first, last, indent, keys)


# --------------------------------------------------------------------------- set


def set_mailbox(path: str | Path, address: str, *, quota: str | None = None,
                title: str | None = None, role: str | None = None,
                request: str | None = None, dry_run: bool = False) -> Done:
    """``quota_mb`` (a number, or ``default``: the policy's), ``title`` (empty: none),
    ``role``."""
    e = Edit.open(path)
    m = find(e.directory, address)
    it = _record(e, m)
    if quota is None and title is None and role is None:
        raise EditError(_("nothing to set: give --quota, --title or --role"))
    if quota is not None:
        if quota == "default":
            if "quota_mb" in it.keys:
                remove_key(e, it, "quota_mb")
        elif quota.isdigit():
            _put(e, it, "quota_mb", str(int(quota)))
        else:
            raise EditError(_("--quota {value!r}: a number of MiB or 'default'").format(
                value=quota))
    if title is not None:
        if title.strip():
            _put(e, it, "title", scalar(title.strip()))
        elif "title" in it.keys:
            remove_key(e, it, "title")
    if role is not None:
        if role == "staff":
            if "role" in it.keys:
                remove_key(e, it, "role")
        else:
            _put(e, it, "role", scalar(role))
    _cite(e, it, request)
    e.write(dry_run=dry_run)
    return Done(e, _("{address} changed").format(address=m.address))


def set_unit(path: str | Path, unit: str, *, delegates: list[str] | None = None,
             quota: str | None = None, request: str | None = None,
             dry_run: bool = False) -> Done:
    """The unit mailbox's ``delegates`` (the whole list; empty: none) and ``quota_mb``;
    ``request`` becomes the unit mailbox's request."""
    e = Edit.open(path)
    d = e.directory
    check_unit(d, unit)
    u = next(x for x in d.units if x.id == unit)
    if delegates is None and quota is None:
        raise EditError(_("nothing to set: give --delegates or --quota"))
    it = item(e, ("units", u.index))
    sub: dict[str, str] = {}  # in the order the file writes them
    if quota is not None:
        if quota != "default" and not quota.isdigit():
            raise EditError(_("--quota {value!r}: a number of MiB or 'default'").format(
                value=quota))
        sub["quota_mb"] = "" if quota == "default" else str(int(quota))
    if delegates is not None:
        sub["delegates"] = "[" + ", ".join(delegates) + "]" if delegates else ""
    if request:
        sub["request"] = scalar(request)
    if "mailbox" not in it.keys:
        body = [f"  {k}: {v}" for k, v in sub.items() if v]
        if body:
            add_key(e, it, "mailbox", ["mailbox:", *body], UNIT_ORDER)
    else:
        inner = _sub_item(e, it, "mailbox")
        for k, v in sub.items():
            if k in inner.keys:
                if v:
                    replace_value(e, inner, k, v)
                else:
                    remove_key(e, inner, k)
            elif v:
                add_key(e, inner, k, [f"{k}: {v}"], ("quota_mb", "delegates", "request"))
    e.write(dry_run=dry_run)
    return Done(e, _("unit {unit} changed").format(unit=unit))
