"""Edits of the data file that reorganise (issue 14): one reviewable change each.

``mailgov domain migrate OLD NEW [--keep-until DATE] [--effective DATE]``, ``mailgov unit
rename ID --abbr NEW``, ``mailgov unit merge SRC DST`` and ``mailgov reserve-purged`` change
the data file the way an admin would by hand, as a careful text edit: comments, layout and
every other line stay as they are (the project reads YAML with PyYAML/rapidyaml and writes
none, so there is no round-trip library to lose comments with). Each edit is checked before
anything is written: the edited text must validate; otherwise nothing is written and the
problems are shown. Positions come from the loader's locator (the line of a key), so an edit
touches exactly the lines it names.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from mailgov.loader import Loaded, LoadError, load
from mailgov.model import Directory, Mailbox, build


class EditError(ValueError):
    """The edit cannot be made (unknown unit, wrong domain, the result would not validate);
    one message, nothing written."""


@dataclass
class Edit:
    """The lines of a data file being edited (line numbers are 1-based, as the locator's)."""

    path: Path
    lines: list[str]
    loaded: Loaded
    directory: Directory
    # Insertions wait until the end (applied bottom-up), so every line number the locator
    # gives stays the file's own while the edit is being made.
    inserts: list[tuple[int, int, list[str]]] = field(default_factory=list)

    @classmethod
    def open(cls, path: str | Path) -> Edit:
        p = Path(path)
        try:
            loaded = load(p)
            directory = build(loaded.data)
        except LoadError as exc:
            raise EditError(f"{p}: cannot be read ({exc}); run mailgov validate") from None
        except (KeyError, TypeError) as exc:
            raise EditError(f"{p}: does not validate ({exc}); run mailgov validate") from None
        text = loaded.source.decode("utf-8")
        return cls(p, text.splitlines(keepends=True), loaded, directory)

    def line_of(self, *path: str | int) -> int:
        return self.loaded.locator.locate(tuple(path))[0]

    def set_scalar(self, path: tuple[str | int, ...], key: str, old: str, new: str) -> None:
        """Replace ``key: old`` by ``key: new`` on the line the locator gives for ``path``
        (block or flow style; quotes kept)."""
        n = self.line_of(*path)
        line = self.lines[n - 1]
        pattern = re.compile(rf"(\b{re.escape(key)}:\s*)([\"']?){re.escape(old)}\2(?=[\s,}}#]|$)")
        edited, count = pattern.subn(lambda m: f"{m.group(1)}{m.group(2)}{new}{m.group(2)}",
                                     line, count=1)
        if count != 1:
            raise EditError(f"{self.path}:{n}: cannot find '{key}: {old}' to change; edit it "
                            "by hand")
        self.lines[n - 1] = edited

    def insert_after(self, n: int, new_lines: list[str]) -> None:
        self.inserts.append((n, len(self.inserts), new_lines))

    def text(self) -> str:
        lines = list(self.lines)
        # bottom-up; at one line, the later call's lines go first (as immediate inserts did)
        for n, _, new in sorted(self.inserts, key=lambda t: (-t[0], t[1])):
            lines[n:n] = new
        return "".join(lines)

    def write(self, *, today: date | None = None, dry_run: bool = False) -> str:
        """Validate the edited text, then replace the file atomically; returns the text.
        A text that does not validate is never written (EditError with the problems)."""
        from mailgov.validate import validate

        text = self.text()
        fd, tmp = tempfile.mkstemp(prefix=".mailgov-edit-", suffix=".yaml",
                                   dir=str(self.path.parent))
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            result = validate(tmp, today=today)
            if not result.ok:
                shown = "\n".join(p.format().replace(tmp, str(self.path))
                                  for p in result.problems[:20])
                raise EditError(f"the edited file would not validate; nothing was "
                                f"written:\n{shown}")
            if dry_run:
                return text
            os.chmod(tmp, self.path.stat().st_mode & 0o777)
            os.replace(tmp, self.path)
            tmp = ""
        finally:
            if tmp:
                os.unlink(tmp)
        return text


def _indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" "))]


def domain_migrate(path: str | Path, old: str, new: str, keep_until: date | None, *,
                   request: str | None = None, today: date | None = None,
                   effective: date | None = None, dry_run: bool = False) -> str:
    """``organization.domain: OLD`` becomes NEW and OLD an alias domain (until
    ``keep_until``, or for ever): every address receives at both, people send and log in
    with the new one. ``effective``: the day the switch takes effect (OLD's
    ``primary_until``; until then the plan lists it under scheduled and changes nothing).
    Returns the edited text."""
    e = Edit.open(path)
    org = e.directory.organization
    old_l, new_l = old.strip().lower(), new.strip().lower()
    if org.domain.lower() != old_l:
        raise EditError(f"organization.domain is {org.domain!r}, not {old!r}: migrate from "
                        "the primary domain")
    if old_l == new_l:
        raise EditError("the new domain is the old one")
    if any(a.domain.lower() == new_l for a in org.alias_domains):
        raise EditError(f"{new} is already an alias domain: remove it from "
                        "organization.alias_domains first (its own reviewed change)")
    e.set_scalar(("organization", "domain"), "domain", org.domain, new_l)
    fields = [f"domain: {old_l}"]
    if effective is not None:
        fields.append(f"primary_until: {effective.isoformat()}")
    if keep_until is not None:
        fields.append(f"until: {keep_until.isoformat()}")
    if request:
        fields.append(f"request: {request}")
    item = "{ " + ", ".join(fields) + " }"
    domain_line = e.line_of("organization", "domain")
    indent = _indent_of(e.lines[domain_line - 1])
    if org.alias_domains:
        last = e.line_of("organization", "alias_domains", len(org.alias_domains) - 1)
        if not e.lines[last - 1].lstrip().startswith("-"):
            raise EditError(f"{e.path}:{last}: organization.alias_domains is not a block list; "
                            f"add '{item}' by hand")
        item_indent = e.lines[last - 1][: e.lines[last - 1].index("-")]
        e.insert_after(last, [f"{item_indent}- {item}\n"])
    else:
        e.insert_after(domain_line, [f"{indent}alias_domains:  # every address receives here too\n",
                                     f"{indent}  - {item}\n"])
    return e.write(today=today, dry_run=dry_run)


# --------------------------------------------------------------------------- units


def _unit_index(e: Edit, unit_id: str) -> int:
    for u in e.directory.units:
        if u.id == unit_id:
            return u.index
    raise EditError(f"there is no unit {unit_id!r}")


def _block_item(e: Edit, index: int) -> tuple[int, str]:
    """(line of units[index]'s first key, the indentation of its keys); a unit written in
    flow style ({ id: …, name: … }) is refused: edit it by hand."""
    n, col = e.loaded.locator.locate(("units", index))
    line = e.lines[n - 1]
    if "{" in line.split("#", 1)[0]:
        raise EditError(f"{e.path}:{n}: unit written in flow style; edit it by hand")
    return n, " " * (col - 1)


def _append_to_list(e: Edit, path: tuple[str | int, ...], count: int, key: str,
                    after_line: int, indent: str, item: str) -> None:
    """Append ``item`` to the block list ``key`` (``count`` items so far) of the mapping at
    ``path``, or start the list after ``after_line``."""
    if count:
        last = e.line_of(*path, key, count - 1)
        text = e.lines[last - 1]
        if not text.lstrip().startswith("-"):
            raise EditError(f"{e.path}:{last}: {key} is not a block list; add '{item}' by hand")
        e.insert_after(last, [f"{text[: text.index('-')]}- {item}\n"])
    else:
        e.insert_after(after_line, [f"{indent}{key}:\n", f"{indent}  - {item}\n"])


def _fields(**values: object) -> str:
    return "{ " + ", ".join(f"{k}: {v}" for k, v in values.items() if v is not None) + " }"


def unit_rename(path: str | Path, unit_id: str, new_abbr: str, *, request: str | None = None,
                on: date | None = None, dry_run: bool = False) -> str:
    """The unit's abbreviation (its unit mailbox and list address) becomes ``new_abbr``; the
    old one is appended to ``formerly`` so its address and list keep delivering."""
    e = Edit.open(path)
    i = _unit_index(e, unit_id)
    u = e.directory.units[i]
    if u.dissolved is not None:
        raise EditError(f"unit {unit_id!r} is dissolved")
    if new_abbr == u.abbr:
        raise EditError(f"unit {unit_id!r} already has abbr {new_abbr!r}")
    first, indent = _block_item(e, i)
    item = _fields(abbr=u.abbr, date=(on or date.today()).isoformat(), request=request)
    # In-place changes first, insertions last (the locator's line numbers are the file's).
    if u.abbreviation:
        anchor = e.line_of("units", i, "abbr")
        e.set_scalar(("units", i, "abbr"), "abbr", u.abbreviation, new_abbr)
    else:
        anchor = first
    _append_to_list(e, ("units", i), len(u.formerly), "formerly", anchor, indent, item)
    if not u.abbreviation:
        e.insert_after(first, [f"{indent}abbr: {new_abbr}\n"])
    return e.write(dry_run=dry_run)


def _cite(e: Edit, m: Mailbox, request: str) -> None:
    """The mailbox's ``change.request`` becomes ``request`` (the plan cites it)."""
    if m.change_request is not None:
        e.set_scalar(("mailboxes", m.index, "change"), "request", m.change_request, request)
        return
    n = e.line_of("mailboxes", m.index, "unit")
    line = e.lines[n - 1]
    if not line.lstrip().startswith("unit:"):
        raise EditError(f"{e.path}:{n}: mailbox {m.address!r} is written in flow style; "
                        "edit it by hand")
    e.insert_after(n, [f"{_indent_of(line)}change: {{ request: {request} }}\n"])


def unit_merge(path: str | Path, src: str, dst: str, *, request: str,
               on: date | None = None, dry_run: bool = False) -> str:
    """SRC is dissolved into DST: its people, sub-units and sponsored affiliates move to DST,
    earlier units dissolved into SRC now name DST, and SRC records ``dissolved`` (its address
    and list deliver to DST's for the policy period; its store stays)."""
    e = Edit.open(path)
    d = e.directory
    i = _unit_index(e, src)
    j = _unit_index(e, dst)
    if src == dst:
        raise EditError("a unit cannot be merged into itself")
    if d.units[i].dissolved is not None:
        raise EditError(f"unit {src!r} is dissolved already")
    if d.units[j].dissolved is not None:
        raise EditError(f"unit {dst!r} is dissolved (into "
                        f"{d.units[j].dissolved.successor!r}); merge into a unit that goes on")
    if d.organization.it_unit == src:
        raise EditError(f"unit {src!r} is organization.it_unit: name another one first")
    for m in d.mailboxes:
        if m.unit == src:
            e.set_scalar(("mailboxes", m.index, "unit"), "unit", src, dst)
            _cite(e, m, request)
        if m.sponsor == src:
            e.set_scalar(("mailboxes", m.index, "sponsor"), "sponsor", src, dst)
    for u in d.units:
        if u.parent == src:
            e.set_scalar(("units", u.index, "parent"), "parent", src, dst)
        if u.dissolved is not None and u.dissolved.successor == src:
            e.set_scalar(("units", u.index, "dissolved"), "successor", src, dst)
    first, indent = _block_item(e, i)
    if d.units[i].head is not None:  # the head moves with the others; DST has its own
        n = e.line_of("units", i, "head")
        if not e.lines[n - 1].lstrip().startswith("head:"):
            raise EditError(f"{e.path}:{n}: cannot remove the head of {src!r}; edit by hand")
        e.lines[n - 1] = ""
    when = (on or date.today()).isoformat()
    block = _fields(date=when, successor=dst, request=request)
    e.insert_after(first, [f"{indent}dissolved: {block}\n"])
    return e.write(dry_run=dry_run)


# --------------------------------------------------------------------------- purged records


@dataclass(frozen=True)
class Purged:
    """A record ``reserve_purged`` removed, and the local parts it reserved for its id."""

    address: str
    id: int | None
    reserved: tuple[str, ...]


def _item_end(e: Edit, first: int, dash_col: int) -> int:
    """The last line of the block-list item starting on line ``first`` whose dash is at
    ``dash_col`` (0-based): lines indented deeper belong to it; trailing blank lines and
    comments at the dash's column or left of it (the next item's) do not."""
    last = first
    for n in range(first + 1, len(e.lines) + 1):
        line = e.lines[n - 1]
        body = line.strip()
        if not body:
            continue
        if len(line) - len(line.lstrip(" ")) <= dash_col:
            break
        last = n
    return last


def _item_lines(e: Edit, path: tuple[str | int, ...]) -> tuple[int, int, int]:
    """(first line, last line, dash column) of the block-list item at ``path``."""
    n, col = e.loaded.locator.locate(path)
    line = e.lines[n - 1]
    dash = line.find("-")
    if dash < 0 or dash >= col - 1 or line[dash + 1: col - 1].strip():
        raise EditError(f"{e.path}:{n}: not a block-list item ({'.'.join(map(str, path))}); "
                        "edit it by hand")
    return n, _item_end(e, n, dash), dash


def _ever_used(e: Edit, m: Mailbox) -> list[str]:
    """Every local part ``m`` used: its address, its previous addresses, its aliases at one
    of the organisation's domains (primary or alias), in that order, each once."""
    ours = {e.directory.organization.domain.lower(),
            *(a.domain.lower() for a in e.directory.organization.alias_domains)}
    out = [m.address, *(p.address for p in m.previous)]
    for a in m.aliases:
        local, _, dom = a.partition("@")
        if not dom or dom.lower() in ours:
            out.append(local)
    return list(dict.fromkeys(out))


def _archived_sum(archived: Mapping[str, str], e: Edit, m: Mailbox) -> str | None:
    full = f"{m.address}@{e.directory.organization.domain}".lower()
    return archived.get(full) or archived.get(m.address.lower())


def reserve_purged(path: str | Path, archived: Mapping[str, str], *, today: date,
                   dry_run: bool = False) -> tuple[str, list[Purged]]:
    """The records of purged mailboxes leave the data, and every address they ever used goes
    to ``reserved`` with their id, so it is never proposed (``mailgov address``) nor accepted
    (MG221) for anyone else. Purged = cancelled, past the retention by the data on ``today``
    and archived (in ``archived``, address -> sha256, the manifest the purge relied on).

    Run it after the purge was applied: a record that leaves the data while its entry is
    still in the directory makes the next plan refuse (MG603)."""
    from mailgov.archive import retention_end

    e = Edit.open(path)
    if e.loaded.parts is not None:
        raise EditError(f"{e.path}: the mailboxes are split into unit files (include); "
                        "remove the purged records and add their addresses to `reserved` "
                        "by hand")
    d = e.directory
    done: list[Purged] = []
    for m in d.mailboxes:
        end = retention_end(m, d.policy)
        if end is None or today < end or _archived_sum(archived, e, m) is None:
            continue
        done.append(Purged(m.address, m.id, tuple(_ever_used(e, m))))
    if not done:
        raise EditError("no purged mailbox in the data: none is cancelled, past its "
                        f"retention on {today.isoformat()} and in the archive manifest")
    have = {r.address.casefold() for r in d.reserved}
    new_items: list[str] = []
    purged = {p.address for p in done}
    for m in d.mailboxes:
        if m.address not in purged:
            continue
        assert m.cancelled is not None
        reason = json.dumps(f"purged {today.isoformat()} (cancelled {m.cancelled.date}, "
                            f"{m.cancelled.request})", ensure_ascii=False)
        for local in _ever_used(e, m):
            if local.casefold() in have:
                continue
            have.add(local.casefold())
            ident = f", id: {m.id}" if m.id is not None else ""
            new_items.append(f"{{ address: {local}{ident}, reason: {reason} }}")
        first, last, _ = _item_lines(e, ("mailboxes", m.index))
        for n in range(first, last + 1):
            e.lines[n - 1] = ""
    if d.reserved:
        first, last, dash = _item_lines(e, ("reserved", len(d.reserved) - 1))
        e.insert_after(last, [f"{' ' * dash}- {item}\n" for item in new_items])
    elif new_items:
        if e.lines and not e.lines[-1].endswith("\n"):
            e.lines[-1] += "\n"
        e.insert_after(len(e.lines), ["reserved:  # addresses once used: never anyone "
                                      "else's (MG221)\n",
                                      *(f"  - {item}\n" for item in new_items)])
    return e.write(today=today, dry_run=dry_run), done
