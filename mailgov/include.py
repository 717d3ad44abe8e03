"""Per-unit files: ``- include: units/vpb.yaml`` items in the ``mailboxes`` list.

A unit's records may live in their own file so that the hosting platform's CODEOWNERS can ask
that unit's approvers to review changes to its people (docs/data-format.md, "Per-unit files").
The main file lists the files where the records would stand::

    mailboxes:
      - include: units/vpb.yaml
      - include: units/ttb.yaml

An included file is a mapping with one key, ``mailboxes`` (a list; it may include further
files), plus ``x-`` keys for anchors. Resolution is one step after the parse, so it is the
same for both parsers (rapidyaml and PyYAML): each file is read by :func:`load_file` (all the
checks of the main file apply to it), and the result is one ``mailboxes`` list, in order.
Problems found later (schema, meaning) point into the file that holds the record: the
:class:`Parts` map turns ("mailboxes", 312, "unit") into that file's own path and position.

Refused, with a position in the including file: a path outside the data directory (MG013,
also through a symbolic link), an include cycle (MG014), a missing or unreadable file
(MG012), an include item that is not ``include: PATH`` alone or a file that is not a mapping
with a ``mailboxes`` list (MG015).
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mailgov.i18n import _
from mailgov.problems import Problem

if TYPE_CHECKING:
    from mailgov.loader import Loaded

#: Includes nest at most this deep (a unit file including its sub-units' files is 2).
MAX_DEPTH = 8

PathT = tuple[str | int, ...]


def is_include(item: Any) -> bool:
    """Is this ``mailboxes`` item an include (a mapping whose keys include ``include``)?"""
    return isinstance(item, dict) and "include" in item


@dataclass
class Part:
    """A run of the merged ``mailboxes`` list that comes from one place of one file."""

    start: int  # first index in the merged list
    loaded: Loaded  # the file holding these records
    local: int  # index of the first of them in that file's own ``mailboxes`` list


@dataclass
class Parts:
    """Merged mailbox index -> (file, index there); found by bisection over the runs."""

    runs: list[Part] = field(default_factory=list)
    files: list[Loaded] = field(default_factory=list)  # every included file, in order

    def where(self, path: PathT) -> tuple[Loaded, PathT] | None:
        if len(path) < 2 or path[0] != "mailboxes" or not isinstance(path[1], int):
            return None
        i = bisect.bisect_right([r.start for r in self.runs], path[1]) - 1
        if i < 0:
            return None
        run = self.runs[i]
        return run.loaded, ("mailboxes", run.local + path[1] - run.start, *path[2:])


class IncludeError(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(p.format() for p in problems))
        self.problems = problems


def resolve(main: Loaded, load_file: Callable[[str], Loaded],
            pending: Collection[str] = ()) -> Loaded:
    """Splice the included files into ``main.data["mailboxes"]``; the same object back.

    ``load_file`` reads one file with every check of the loader (it raises LoadError);
    ``pending``: files it reads from memory that are not written yet (an edit that starts a
    unit's own file checks its result before writing anything)."""
    boxes = main.data.get("mailboxes")
    if not isinstance(boxes, list) or not any(is_include(b) for b in boxes):
        return main  # the single-file layout: nothing to do, nothing paid
    root = os.path.realpath(os.path.dirname(os.path.abspath(main.path)) or ".")
    parts = Parts()
    problems: list[Problem] = []
    merged: list[Any] = []
    shown = os.path.dirname(main.path) or "."
    _splice(main, boxes, (root, shown), [os.path.realpath(main.path)], load_file, parts,
            merged, problems, frozenset(pending))
    if problems:
        raise IncludeError(problems)
    main.data["mailboxes"] = merged
    main.parts = parts
    return main


def _splice(loaded: Loaded, boxes: list[Any], top: tuple[str, str], stack: list[str],
            load_file: Callable[[str], Loaded], parts: Parts, merged: list[Any],
            problems: list[Problem], pending: frozenset[str] = frozenset()) -> None:
    from mailgov.loader import LoadError  # loader imports this module

    root, shown = top
    run_open = False
    for j, item in enumerate(boxes):
        if not is_include(item):
            if not run_open:
                parts.runs.append(Part(len(merged), loaded, j))
                run_open = True
            merged.append(item)
            continue
        run_open = False
        where = ("mailboxes", j)

        def bad(rule: str, message: str, at: PathT = where) -> None:
            line, col = loaded.locator.locate(at)
            problems.append(Problem(rule, message, at, line, col, loaded.path))

        target = item["include"]
        if set(item) != {"include"} or not isinstance(target, str) or not target.strip():
            bad("MG015", _("an include item is `include: PATH` alone (a path relative "
                           "to this file, e.g. units/vpb.yaml); write the mailbox's "
                           "fields in the included file"))
            continue
        if os.path.isabs(target):
            bad("MG013", _("include {target!r} is an absolute path; name a file inside "
                           "the data directory, relative to this file").format(
                           target=target), (*where, "include"))
            continue
        name = os.path.normpath(os.path.join(os.path.dirname(loaded.path), target))
        real = os.path.realpath(name)
        if os.path.commonpath([root, real]) != root:
            bad("MG013", _("include {target!r} leaves the data directory ({shown}); "
                           "every included file lives under it (a symbolic link out "
                           "counts too)").format(
                           target=target, shown=shown),
                (*where, "include"))
            continue
        if real in stack:
            chain = " -> ".join(os.path.basename(p) for p in [*stack, real])
            bad("MG014", _("include {target!r} is a cycle ({chain}); a file cannot "
                           "include itself, directly or through others").format(
                           target=target, chain=chain), (*where, "include"))
            continue
        if len(stack) > MAX_DEPTH:
            bad("MG014", _("includes nest deeper than {MAX_DEPTH} files").format(
                           MAX_DEPTH=MAX_DEPTH), (*where, "include"))
            continue
        if name not in pending and not os.path.isfile(real):
            what = _("does not exist") if not os.path.exists(real) else _("is not a file")
            bad("MG012", _("included file {target!r} {what} (looked for {name})").format(
                           target=target, what=what, name=name),
                (*where, "include"))
            continue
        try:
            sub = load_file(name)
        except LoadError as exc:
            if any(p.rule == "MG001" for p in exc.problems):
                bad("MG012", _("included file {target!r} cannot be read: {message}").format(
                               target=target, message=exc.problems[0].message), (*where, "include"))
            else:
                problems.extend(exc.problems)  # located in the included file itself
            continue
        extra = [k for k in sub.data if k != "mailboxes"
                 and not (isinstance(k, str) and k.startswith("x-"))]
        sub_boxes = sub.data.get("mailboxes")
        if extra or not isinstance(sub_boxes, list):
            at: PathT = (extra[0],) if extra else ("mailboxes",)
            line, col = sub.locator.locate(at)
            what = (_("has the key {key!r}").format(key=extra[0]) if extra
                    else _("has no `mailboxes:` list"))
            problems.append(Problem(
                "MG015", _("an included file holds only `mailboxes:` (a list of "
                           "records) and x- keys; this one {what}").format(
                           what=what), at, line, col, sub.path))
            continue
        parts.files.append(sub)
        _splice(sub, sub_boxes, top, [*stack, real], load_file, parts, merged, problems,
                pending)
