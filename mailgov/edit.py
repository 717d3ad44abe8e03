"""Edits of the data file that reorganise (issue 14): one reviewable change each.

``mailgov domain migrate OLD NEW [--keep-until DATE] [--effective DATE]``, ``mailgov unit
rename ID --abbr NEW``, ``mailgov unit merge SRC DST`` and ``mailgov reserve-purged`` change
the data file the way an admin would by hand, as a careful text edit: comments, layout and
every other line stay as they are (the project reads YAML with PyYAML/rapidyaml and writes
none, so there is no round-trip library to lose comments with). Each edit is checked before
anything is written: the edited text must validate; otherwise nothing is written and the
problems are shown. Positions come from the loader's locator (the line of a key), so an edit
touches exactly the lines it names.

The same machinery makes the edits of people's records (issue 15: ``mailgov add``, ``cancel``
… ``import``, mailgov/mailbox_edit.py): :class:`Edit` holds the main file and the per-unit
files it includes, a record is edited in the file that holds it, and the check loads the
edited texts in memory (nothing is written before they validate). :func:`item`,
:func:`replace_value`, :func:`add_key` and :func:`remove_key` change one key of one record.

Every edit keeps CODEOWNERS with the data (:meth:`Edit.write`, mailgov/codeowners.py): a unit's
first own file must be reviewed by its approvers in the very pull request that adds it.
"""

from __future__ import annotations

import bisect
import difflib
import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from mailgov import include
from mailgov.i18n import _
from mailgov.loader import Loaded, LoadError, StrictLoader, load, load_file
from mailgov.model import Directory, Mailbox, build

if TYPE_CHECKING:
    from mailgov.validate import Result


class EditError(ValueError):
    """The edit cannot be made (unknown unit, wrong domain, the result would not validate);
    one message, nothing written."""


@dataclass(frozen=True)
class Owners:
    """The CODEOWNERS file an edit rewrites: where, as it is (None: not there yet), and as
    `mailgov codeowners` writes it for the edited data."""

    path: Path
    old: str | None
    new: str


@dataclass
class Edit:
    """The lines of a data file being edited (line numbers are 1-based, as the locator's),
    and of the per-unit files it includes (mailgov/include.py): a record is edited in the
    file that holds it."""

    path: Path
    lines: list[str]  # the main file's
    loaded: Loaded
    directory: Directory
    # Insertions wait until the end (applied bottom-up), so every line number the locator
    # gives stays the file's own while the edit is being made: (file, line, order, lines).
    inserts: list[tuple[str, int, int, list[str]]] = field(default_factory=list)
    #: Every file's lines by its path as the loader names it (the main file: str(path)).
    files: dict[str, list[str]] = field(default_factory=dict)
    #: The files as read, to tell which ones the edit changed.
    original: dict[str, str] = field(default_factory=dict)
    #: Files the edit starts (a unit's own file): not on disk until written.
    created: set[str] = field(default_factory=set)
    #: CODEOWNERS to rewrite with the data (set by :meth:`write`; None: left as it is).
    owners: Owners | None = None
    #: One line each for the admin besides the summary (CODEOWNERS rewritten, or to be
    #: updated by hand), set by :meth:`write`.
    notes: list[str] = field(default_factory=list)
    _starts: dict[str, list[int]] = field(default_factory=dict, repr=False)
    _newlines: dict[str, list[int]] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, path: str | Path) -> Edit:
        p = Path(path)
        try:
            loaded = load(p)
            directory = build(loaded.data)
        except LoadError as exc:
            raise EditError(_("{path}: cannot be read ({why}); run mailgov validate").format(
                path=p, why=exc)) from None
        except (KeyError, TypeError) as exc:
            raise EditError(_("{path}: does not validate ({why}); run mailgov validate").format(
                path=p, why=exc)) from None
        e = cls(p, [], loaded, directory)
        for name, raw in loaded.files:
            text = raw.decode("utf-8")
            e.original[name] = text
            e.files[name] = text.splitlines(keepends=True)
        e.lines = e.files[loaded.path]
        return e

    @property
    def main(self) -> str:
        return self.loaded.path

    def line_of(self, *path: str | int) -> int:
        """The line of ``path`` in the main file (units, organization, policy …)."""
        return self.loaded.locator.locate(tuple(path))[0]

    def where(self, *path: str | int) -> tuple[str, int, int]:
        """(file, line, col) of ``path``: for a mailbox, in the file that holds it."""
        if len(path) == 2 and path[0] == "mailboxes" and isinstance(path[1], int):
            found = self._record_start(path[1])
            if found is not None:
                return found
        return self.loaded.where(tuple(path))

    def _record_start(self, index: int) -> tuple[str, int, int] | None:
        """Where mailboxes[index] starts, from one scan of the file's text (None when the
        scan cannot tell: a flow list …). The locator walks the list from its head for each
        record (a batch of 1,000 records in 300 units took 5 s of 11 that way) and parses
        the file first (0.18 s for one record of 50,000); the scan takes 0.08 s."""
        file, local = self.main, index
        if self.loaded.parts is not None:
            inner = self.loaded.parts.where(("mailboxes", index))
            if inner is None:
                return None
            file, local = inner[0].path, int(inner[1][1])
        starts = self._starts.get(file)
        if starts is None:
            starts = self._starts[file] = _list_items(self.original[file], "mailboxes")
        if not 0 <= local < len(starts):
            return None
        newlines = self._newlines.get(file)
        if newlines is None:
            newlines = self._newlines[file] = [
                m.start() for m in re.finditer("\n", self.original[file])]
        offset = starts[local]
        text = self.original[file]
        dash = offset
        while text[dash] == " ":
            dash += 1
        key = dash + 1
        while text[key] == " ":
            key += 1
        return file, bisect.bisect_left(newlines, offset) + 1, key - offset + 1

    def set_scalar(self, path: tuple[str | int, ...], key: str, old: str, new: str, *,
                   text: bool = False) -> None:
        """Replace ``key: old`` by ``key: new`` on the line the locator gives for ``path``
        (block or flow style; quotes kept). ``text``: ``new`` is free text (a request),
        written quoted as YAML needs to read it back as that text."""
        file, n, _col = self.where(*path)
        lines = self.files[file]
        line = lines[n - 1]
        pattern = re.compile(rf"(\b{re.escape(key)}:\s*)([\"']?){re.escape(old)}\2(?=[\s,}}#]|$)")
        edited, count = pattern.subn(
            lambda m: f"{m.group(1)}{scalar(new, flow=True)}" if text
            else f"{m.group(1)}{m.group(2)}{new}{m.group(2)}", line, count=1)
        if count != 1:
            raise EditError(_("{file}:{line}: cannot find '{key}: {old}' to change; edit it "
                              "by hand").format(file=file, line=n, key=key, old=old))
        lines[n - 1] = edited

    def create(self, name: str, lines: list[str]) -> None:
        """Start the file ``name`` (as the loader names files) with ``lines``."""
        self.files[name] = list(lines)
        self.original[name] = ""
        self.created.add(name)

    def insert_after(self, n: int, new_lines: list[str], file: str | None = None) -> None:
        self.inserts.append((file or self.main, n, len(self.inserts), new_lines))

    def texts(self) -> dict[str, str]:
        """Every file's edited text (the main file first)."""
        out: dict[str, list[str]] = {}
        crlf = {name for name in self.files if self._crlf(name)}
        for name, lines in self.files.items():
            out[name] = list(lines)
            if name in crlf:  # the lines an edit wrote end as the file's other lines do
                orig = self.original[name].splitlines(keepends=True)
                out[name] = [x if i < len(orig) and x == orig[i] else _to_crlf(x)
                             for i, x in enumerate(lines)]
        # bottom-up; at one line, the later call's lines go first (as immediate inserts did)
        for file, n, _order, new in sorted(self.inserts, key=lambda t: (t[0], -t[1], t[2])):
            out[file][n:n] = [_to_crlf(x) for x in new] if file in crlf else new
        return {name: "".join(lines) for name, lines in out.items()}

    def _crlf(self, name: str) -> bool:
        """Whether ``name`` ends its lines with CRLF (as its first line does; a file the edit
        starts as the main file does)."""
        text = self.original[self.main] if name in self.created else self.original[name]
        end = text.find("\n")
        return end > 0 and text[end - 1] == "\r"

    def text(self) -> str:
        return self.texts()[self.main]

    def changed(self) -> dict[str, str]:
        """The files whose text the edit changes, with their new text."""
        return {name: text for name, text in self.texts().items()
                if text != self.original[name]}

    def diff(self) -> str:
        """The change as a unified diff (what the pull request will show)."""
        out: list[str] = []
        for name, text in self.changed().items():
            hunks = unified_diff(self.original[name].splitlines(keepends=True),
                                 text.splitlines(keepends=True), name)
            if name in self.created:  # as git shows a new file
                hunks[0] = "--- /dev/null\n"
            out += hunks
        if self.owners is not None:
            from mailgov.codeowners import shown

            name = shown(self.owners.path)
            hunks = unified_diff((self.owners.old or "").splitlines(keepends=True),
                                 self.owners.new.splitlines(keepends=True), name)
            if self.owners.old is None:
                hunks[0] = "--- /dev/null\n"
            out += hunks
        return "".join(out)

    def check(self, *, today: date | None = None,
              texts: dict[str, str] | None = None) -> Result:
        """Load and validate the edited files as they would be written (in memory, one load
        of every file, the same checks as `mailgov validate`); EditError with the problems,
        else the valid result. A date ahead of ``today`` (default: the real day) is a
        scheduled step."""
        from mailgov.validate import Result, check, gc_paused

        if texts is None:
            texts = self.changed()
        edited = {name: text.encode("utf-8") for name, text in texts.items()}

        def read(name: str | Path) -> Loaded:
            return load_file(name, edited.get(str(name)))

        result = Result(self.main)
        with gc_paused():
            try:
                loaded = include.resolve(read(self.main), read, self.created)
                result = check(loaded, today=today)
                problems = result.problems
            except LoadError as exc:
                problems = exc.problems
            except include.IncludeError as exc:
                problems = exc.problems
        if problems:
            shown = "\n".join(p.format() for p in problems[:20])
            more = "\n" + _("… and {n} more").format(n=len(problems) - 20) \
                if len(problems) > 20 else ""
            raise EditError(_("the edited file would not validate; nothing was written:")
                            + f"\n{shown}{more}")
        return result

    def write(self, *, today: date | None = None, dry_run: bool = False) -> str:
        """Validate the edited text, then replace each changed file atomically; returns the
        main file's text. A text that does not validate is never written (EditError with
        the problems). CODEOWNERS follows the data (:meth:`_owners`), written after it: a
        unit's first own file is then routed to its approvers in the same pull request."""
        from mailgov import codeowners

        texts = self.changed()
        result = self.check(today=today, texts=texts)
        self._owners(result, dry_run)
        if not dry_run:
            for name, text in texts.items():
                _replace(Path(name), text)
            if self.owners is not None:  # the text rendered for the check above
                codeowners.put(self.owners.path, self.owners.new)
        return texts.get(self.main, self.original[self.main])

    def _owners(self, result: Result, dry_run: bool) -> None:
        """What the edit does to CODEOWNERS, for valid edited data that names approvers:
        one `mailgov codeowners` made (its mark), or none yet, becomes what that command
        writes for the edited data (unchanged when it is that already); a hand-written one
        is never touched, and the admin is told to update it when the edit changes who owns
        which file (a unit's first own file, records leaving one)."""
        from mailgov import codeowners
        from mailgov.validate import Result

        self.owners, self.notes = None, []
        d = result.directory
        if d is None or not codeowners.declared(d):
            return
        root = codeowners.repo_root(self.main)
        new = codeowners.render(result, root)
        found = codeowners.find(root)
        old = None
        if found is not None:
            old = found.read_text(encoding="utf-8", errors="replace")
            if not old.startswith(codeowners.MARK):
                before = Result(self.main, [], self.directory,
                                loaded=self.loaded if self.loaded.parts is not None else None)
                if codeowners.render(before, root) != new:
                    self.notes.append(_("{path} is not made by `mailgov codeowners`: update "
                                        "it by hand for this edit").format(
                                            path=codeowners.shown(found)))
                return
            if old.splitlines() == new.splitlines():
                return  # what `mailgov validate` accepts: left byte for byte
        self.owners = Owners(found or root / codeowners.DEFAULT_PLACE, old, new)
        what = _("{path}: would be rewritten as `mailgov codeowners` writes it") if dry_run \
            else _("{path}: rewritten as `mailgov codeowners` writes it; commit it with the data")
        self.notes.append(what.format(path=codeowners.shown(self.owners.path)))


def _list_items(text: str, key: str) -> list[int]:
    """The offset of each item of the top-level block list ``key``, as
    the file stands before the edit ([] when it is not a block list of mappings). Regular
    expressions over the text: 50,000 records in a few hundredths of a second."""
    head = re.search(rf"^{re.escape(key)}:[ \t]*(?:#.*)?$", text, re.MULTILINE)
    if head is None:
        return []
    first = re.compile(r"^( *)(?!#)(\S)", re.MULTILINE).search(text, head.end() + 1)
    if first is None or first.group(2) != "-" or not first.group(1):
        return []
    dash = len(first.group(1))
    # the list ends at the first line indented less than its dashes (not a comment)
    end_m = re.compile(rf"^ {{0,{dash - 1}}}[^\s#]", re.MULTILINE).search(text, first.start())
    end = end_m.start() if end_m else len(text)
    # "\n" + the dashes' indentation + "-": a literal search (4x faster than ^ with MULTILINE)
    item_re = re.compile(re.escape("\n" + " " * dash + "-"))
    return [m.start() + 1 for m in item_re.finditer(text, first.start() - 1, end)]


def unified_diff(a: list[str], b: list[str], name: str, context: int = 3) -> list[str]:
    """``git diff``'s minimal hunks. difflib.unified_diff treats lines that recur in more
    than 1% of a file (``created: 2016-10-03``) as junk and then shows unchanged lines as
    changed; here the common head and tail are cut first and the rest matched exactly."""
    head = 0
    while head < min(len(a), len(b)) and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < min(len(a), len(b)) - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    lo = max(0, head - context)
    a_mid, b_mid = a[lo: len(a) - max(0, tail - context)], b[lo: len(b) - max(0, tail - context)]
    matcher = difflib.SequenceMatcher(None, a_mid, b_mid, autojunk=False)
    out = [f"--- a/{name}\n", f"+++ b/{name}\n"]
    for group in matcher.get_grouped_opcodes(context):
        i1, i2, j1, j2 = group[0][1], group[-1][2], group[0][3], group[-1][4]
        out.append(f"@@ -{_range(lo + i1, i2 - i1)} +{_range(lo + j1, j2 - j1)} @@\n")
        for tag, x1, x2, y1, y2 in group:
            if tag == "equal":
                out += [" " + line for line in a_mid[x1:x2]]
                continue
            out += ["-" + line for line in a_mid[x1:x2]]
            out += ["+" + line for line in b_mid[y1:y2]]
    return [line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
            for line in out]


def _to_crlf(line: str) -> str:
    return line.replace("\r\n", "\n").replace("\n", "\r\n")


def _range(start: int, length: int) -> str:
    """A hunk's range as diff writes it: an empty one names the line before it (0: none)."""
    return f"{start + 1 if length else start},{length}"


def _replace(path: Path, text: str) -> None:
    path.parent.mkdir(exist_ok=True)  # a unit's first own file may start units/
    fd, tmp = tempfile.mkstemp(prefix=".mailgov-edit-", suffix=".yaml", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(tmp, path)
        tmp = ""
    finally:
        if tmp:
            os.unlink(tmp)


def _indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" "))]


def domain_migrate(path: str | Path, old: str, new: str, keep_until: date | None, *,
                   request: str | None = None, today: date | None = None,
                   effective: date | None = None, dry_run: bool = False) -> Edit:
    """``organization.domain: OLD`` becomes NEW and OLD an alias domain (until
    ``keep_until``, or for ever): every address receives at both, people send and log in
    with the new one. ``effective``: the day the switch takes effect (OLD's
    ``primary_until``; until then the plan lists it under scheduled and changes nothing).
    Returns the edit made (or, dry run, checked); ``.diff()`` shows it."""
    e = Edit.open(path)
    org = e.directory.organization
    old_l, new_l = old.strip().lower(), new.strip().lower()
    if org.domain.lower() != old_l:
        raise EditError(_("organization.domain is {domain!r}, not {old!r}: migrate from the "
                          "primary domain").format(domain=org.domain, old=old))
    if old_l == new_l:
        raise EditError(_("the new domain is the old one"))
    if any(a.domain.lower() == new_l for a in org.alias_domains):
        raise EditError(_("{new} is already an alias domain: remove it from "
                          "organization.alias_domains first (its own reviewed change)").format(
                              new=new))
    e.set_scalar(("organization", "domain"), "domain", org.domain, new_l)
    fields = [f"domain: {old_l}"]
    if effective is not None:
        fields.append(f"primary_until: {effective.isoformat()}")
    if keep_until is not None:
        fields.append(f"until: {keep_until.isoformat()}")
    if request:
        fields.append(f"request: {scalar(request, flow=True)}")
    item = "{ " + ", ".join(fields) + " }"
    domain_line = e.line_of("organization", "domain")
    indent = _indent_of(e.lines[domain_line - 1])
    if org.alias_domains:
        last = e.line_of("organization", "alias_domains", len(org.alias_domains) - 1)
        if not e.lines[last - 1].lstrip().startswith("-"):
            raise EditError(_("{file}:{line}: organization.alias_domains is not a block list; "
                              "add '{item}' by hand").format(file=e.path, line=last, item=item))
        item_indent = e.lines[last - 1][: e.lines[last - 1].index("-")]
        e.insert_after(last, [f"{item_indent}- {item}\n"])
    else:
        e.insert_after(domain_line, [f"{indent}alias_domains:  # every address receives here too\n",
                                     f"{indent}  - {item}\n"])
    e.write(today=today, dry_run=dry_run)
    return e


# --------------------------------------------------------------------------- units


def _unit_index(e: Edit, unit_id: str) -> int:
    for u in e.directory.units:
        if u.id == unit_id:
            return u.index
    raise EditError(_("there is no unit {unit!r}").format(unit=unit_id))


def _block_item(e: Edit, index: int) -> tuple[int, str]:
    """(line of units[index]'s first key, the indentation of its keys); a unit written in
    flow style ({ id: …, name: … }) is refused: edit it by hand."""
    n, col = e.loaded.locator.locate(("units", index))
    line = e.lines[n - 1]
    if "{" in line.split("#", 1)[0]:
        raise EditError(_("{file}:{line}: unit written in flow style; edit it by hand").format(
            file=e.path, line=n))
    return n, " " * (col - 1)


def _append_to_list(e: Edit, path: tuple[str | int, ...], count: int, key: str,
                    after_line: int, indent: str, item: str) -> None:
    """Append ``item`` to the block list ``key`` (``count`` items so far) of the mapping at
    ``path``, or start the list after ``after_line``."""
    if count:
        last = e.line_of(*path, key, count - 1)
        text = e.lines[last - 1]
        if not text.lstrip().startswith("-"):
            raise EditError(_("{file}:{line}: {key} is not a block list; add '{item}' by "
                              "hand").format(file=e.path, line=last, key=key, item=item))
        e.insert_after(last, [f"{text[: text.index('-')]}- {item}\n"])
    else:
        e.insert_after(after_line, [f"{indent}{key}:\n", f"{indent}  - {item}\n"])


def unit_rename(path: str | Path, unit_id: str, new_abbr: str, *, request: str | None = None,
                on: date | None = None, dry_run: bool = False) -> Edit:
    """The unit's abbreviation (its unit mailbox and list address) becomes ``new_abbr``; the
    old one is appended to ``formerly`` so its address and list keep delivering."""
    e = Edit.open(path)
    i = _unit_index(e, unit_id)
    u = e.directory.units[i]
    if u.dissolved is not None:
        raise EditError(_("unit {unit!r} is dissolved").format(unit=unit_id))
    if new_abbr == u.abbr:
        raise EditError(_("unit {unit!r} already has abbr {abbr!r}").format(unit=unit_id,
                                                                         abbr=new_abbr))
    first, indent = _block_item(e, i)
    item = flow(abbr=u.abbr, date=(on or date.today()).isoformat(), request=request)
    # In-place changes first, insertions last (the locator's line numbers are the file's).
    if u.abbreviation:
        anchor = e.line_of("units", i, "abbr")
        e.set_scalar(("units", i, "abbr"), "abbr", u.abbreviation, new_abbr)
    else:
        anchor = first
    _append_to_list(e, ("units", i), len(u.formerly), "formerly", anchor, indent, item)
    if not u.abbreviation:
        e.insert_after(first, [f"{indent}abbr: {new_abbr}\n"])
    e.write(dry_run=dry_run)
    return e


def _cite(e: Edit, m: Mailbox, request: str) -> None:
    """The mailbox's ``change.request`` becomes ``request`` (the plan cites it)."""
    if m.change_request is not None:
        e.set_scalar(("mailboxes", m.index, "change"), "request", m.change_request, request,
                     text=True)
        return
    file, n, _col = e.where("mailboxes", m.index, "unit")
    line = e.files[file][n - 1]
    if not line.lstrip().startswith("unit:"):
        raise EditError(_("{file}:{line}: mailbox {address!r} is written in flow style; edit it "
                          "by hand").format(file=file, line=n, address=m.address))
    e.insert_after(n, [f"{_indent_of(line)}change: {flow(request=request)}\n"], file)


def unit_merge(path: str | Path, src: str, dst: str, *, request: str,
               on: date | None = None, dry_run: bool = False) -> Edit:
    """SRC is dissolved into DST: its people, sub-units and sponsored affiliates move to DST,
    earlier units dissolved into SRC now name DST, and SRC records ``dissolved`` (its address
    and list deliver to DST's for the policy period; its store stays). Each moved sub-unit
    records ``formerly: {parent: SRC}``, so its old address keeps delivering to it."""
    e = Edit.open(path)
    d = e.directory
    i = _unit_index(e, src)
    j = _unit_index(e, dst)
    if src == dst:
        raise EditError(_("a unit cannot be merged into itself"))
    if d.units[i].dissolved is not None:
        raise EditError(_("unit {unit!r} is dissolved already").format(unit=src))
    if d.units[j].dissolved is not None:
        raise EditError(_("unit {unit!r} is dissolved (into {successor!r}); merge into a unit "
                          "that goes on").format(unit=dst,
                                                 successor=d.units[j].dissolved.successor))
    if d.organization.it_unit == src:
        raise EditError(_("unit {unit!r} is organization.it_unit: name another one first").format(
            unit=src))
    for m in d.mailboxes:
        if m.unit == src:
            e.set_scalar(("mailboxes", m.index, "unit"), "unit", src, dst)
            _cite(e, m, request)
        if m.sponsor == src:
            e.set_scalar(("mailboxes", m.index, "sponsor"), "sponsor", src, dst)
    when = (on or date.today()).isoformat()
    moved = []
    for u in d.units:
        if u.parent == src:
            e.set_scalar(("units", u.index, "parent"), "parent", src, dst)
            moved.append(u)
        if u.dissolved is not None and u.dissolved.successor == src:
            e.set_scalar(("units", u.index, "dissolved"), "successor", src, dst)
    # A sub-unit's address is made from its parent's (vp.tcmt@ -> vp.cntt@): the old one
    # keeps delivering only if the move is recorded, as a rename records the old abbr.
    for u in moved:
        sub_indent = _block_item(e, u.index)[1]
        _append_to_list(e, ("units", u.index), len(u.formerly), "formerly",
                        e.line_of("units", u.index, "parent"), sub_indent,
                        flow(parent=src, date=when, request=request))
    first, indent = _block_item(e, i)
    if d.units[i].head is not None:  # the head moves with the others; DST has its own
        n = e.line_of("units", i, "head")
        if not e.lines[n - 1].lstrip().startswith("head:"):
            raise EditError(_("{file}:{line}: cannot remove the head of {unit!r}; edit by "
                              "hand").format(file=e.path, line=n, unit=src))
        e.lines[n - 1] = ""
    block = flow(date=when, successor=dst, request=request)
    e.insert_after(first, [f"{indent}dissolved: {block}\n"])
    e.write(dry_run=dry_run)
    return e


# --------------------------------------------------------------------------- records
# One record (a mailbox, a unit) as lines: which keys it has and where each one's value ends,
# so an edit can change one value, add a key where the file's order puts it, or remove one,
# and leave every other line (comments, quoting, layout) as it was.

KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*):(?=\s|$)")


@dataclass
class Item:
    """A block-style mapping item of a list: ``- key: …`` and the keys under it."""

    file: str
    first: int  # 1-based line of its first key (the `- key:` line)
    last: int  # its last line
    indent: str  # the indentation of its keys
    keys: dict[str, tuple[int, int]]  # key -> (first, last line of its value)


def item(e: Edit, path: tuple[str | int, ...]) -> Item:
    """The record at ``path`` (("mailboxes", i) or ("units", i)); a record written in flow
    style (``- { address: … }``) is refused: edit it by hand."""
    file, n, col = e.where(*path)
    lines = e.files[file]
    head = lines[n - 1]
    m = KEY.match(head, col - 1)
    if m is None:
        raise EditError(_("{file}:{line}: the record is not written one key per line; edit "
                          "it by hand").format(file=file, line=n))
    indent = " " * (col - 1)
    keys = {m.group(1): (n, n)}
    current = m.group(1)
    last = n
    for j in range(n + 1, len(lines) + 1):
        text = lines[j - 1]
        stripped = text.strip()
        if not stripped or stripped.startswith("#"):
            continue  # belongs to the record only if a line of it follows
        width = len(text) - len(text.lstrip(" "))
        if width < len(indent):
            break
        if width == len(indent):
            k = KEY.match(text, width)
            if k is None:
                break
            current = k.group(1)
            keys[current] = (j, j)
        else:
            keys[current] = (keys[current][0], j)
        last = j
    return Item(file, n, last, indent, keys)


def _value_span(line: str, start: int) -> tuple[int, int]:
    """Where the value starting at ``start`` ends: before a trailing comment, if any."""
    quote = ""
    end = len(line.rstrip("\r\n"))
    for i in range(start, end):
        ch = line[i]
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"" and (i == start or line[i - 1] in " ,[{:"):
            quote = ch
        elif ch == "#" and i > start and line[i - 1] in " \t":
            end = i
            break
    while end > start and line[end - 1] in " \t":
        end -= 1
    return start, end


def replace_value(e: Edit, it: Item, key: str, value: str) -> None:
    """``key: value`` on the key's own line (a trailing comment stays); a value that spans
    several lines is replaced as a whole."""
    first, last = it.keys[key]
    lines = e.files[it.file]
    line = lines[first - 1]
    colon = len(it.indent) + len(key) + 1
    start = colon + 1 if line[colon:colon + 1] == " " else colon
    if first != last:  # a block value: one line now
        lines[first - 1] = f"{line[:colon]} {value}\n"
        for j in range(first + 1, last + 1):
            lines[j - 1] = ""
        return
    s, t = _value_span(line, start)
    lines[first - 1] = f"{line[:colon]} {value}{line[t:]}" if s == start else line


def remove_key(e: Edit, it: Item, key: str) -> None:
    first, last = it.keys[key]
    if first == it.first:
        raise EditError(_("{file}:{line}: cannot remove the record's first key").format(
            file=it.file, line=first))
    for j in range(first, last + 1):
        e.files[it.file][j - 1] = ""


def add_key(e: Edit, it: Item, key: str, lines: list[str], order: tuple[str, ...]) -> None:
    """Insert ``key``'s lines (``key: value`` without indentation; nested lines indented
    relative to it) after the last key the file's usual ``order`` puts before it."""
    before = order[: order.index(key)] if key in order else order
    anchor = it.first
    for k, (_start, end) in it.keys.items():
        if k in before:
            anchor = max(anchor, end)
    new = [f"{it.indent}{text}\n" for text in lines]
    for f, n, _order, pending in e.inserts:  # two keys after one line: in the order added
        if f == it.file and n == anchor and pending and pending[0].startswith(it.indent) \
                and not pending[0].startswith(it.indent + " "):
            pending.extend(new)
            return
    e.insert_after(anchor, new, it.file)


def scalar(value: str, *, flow: bool = False) -> str:
    """``value`` as the file writes text: plain when YAML reads it back as that text,
    otherwise in single quotes (no escapes: the fast loader reads the file)."""
    special = ",[]{}" if flow else ""
    if value and value == value.strip() and not any(c in value for c in special) \
            and "#" not in value and ": " not in value and not value.endswith(":"):
        try:
            if yaml.load(value, Loader=StrictLoader) == value:
                return value
        except yaml.YAMLError:
            pass
    return "'" + value.replace("'", "''") + "'"


def flow(**values: object) -> str:
    """``{ k: v, … }`` with each text quoted as a flow mapping needs."""
    return "{ " + ", ".join(f"{k}: {scalar(str(v), flow=True)}" for k, v in values.items()
                            if v is not None) + " }"


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
        raise EditError(_("{file}:{line}: not a block-list item ({path}); edit it by "
                          "hand").format(file=e.path, line=n, path=".".join(map(str, path))))
    return n, _item_end(e, n, dash), dash


def _archived_sum(archived: Mapping[str, str], e: Edit, m: Mailbox) -> str | None:
    from mailgov.archive import store_for

    return archived.get(store_for(e.directory, m))


def reserve_purged(path: str | Path, archived: Mapping[str, str], *, today: date,
                   dry_run: bool = False) -> tuple[Edit, list[Purged]]:
    """The records of purged mailboxes leave the data, and every address they ever used goes
    to ``reserved`` with their id, so it is never proposed (``mailgov address``) nor accepted
    (MG221) for anyone else. Purged = cancelled, past the retention by the data on ``today``
    and archived (in ``archived``, store -> sha256, the manifest the purge relied on).

    Run it after the purge was applied: a record that leaves the data while its entry is
    still in the directory makes the next plan refuse (MG603)."""
    from mailgov.archive import retention_end

    e = Edit.open(path)
    if e.loaded.parts is not None:
        raise EditError(_("{file}: the mailboxes are split into unit files (include); "
                          "remove the purged records and add their addresses to `reserved` "
                          "by hand").format(file=e.path))
    d = e.directory
    done: list[Purged] = []
    for m in d.mailboxes:
        end = retention_end(m, d.policy)
        if end is None or today < end or _archived_sum(archived, e, m) is None:
            continue
        done.append(Purged(m.address, m.id, tuple(e.directory.ever_used(m))))
    if not done:
        raise EditError(_("no purged mailbox in the data: none is cancelled, past its "
                          "retention on {today} and in the archive manifest").format(
                              today=today.isoformat()))
    have = {r.address.casefold() for r in d.reserved}
    new_items: list[str] = []
    purged = {p.address for p in done}
    for m in d.mailboxes:
        if m.address not in purged:
            continue
        assert m.cancelled is not None
        reason = json.dumps(f"purged {today.isoformat()} (cancelled {m.cancelled.date}, "
                            f"{m.cancelled.request})", ensure_ascii=False)
        for local in e.directory.ever_used(m):
            if local.casefold() in have:
                continue
            have.add(local.casefold())
            ident = f", id: {m.id}" if m.id is not None else ""
            new_items.append(f"{{ address: {local}{ident}, reason: {reason} }}")
        first, last, _dash = _item_lines(e, ("mailboxes", m.index))
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
    e.write(today=today, dry_run=dry_run)
    return e, done
