"""`mailgov split` / `mailgov join`: one data file <-> a main file plus one file per unit.

Both work on the text, not on re-dumped YAML, so comments, quoting and order survive: split
moves each unit's run of records, with the comment lines just above each record, verbatim
into ``units/<unit-id>.yaml`` and leaves ``- include: units/<unit-id>.yaml`` in its place;
join puts them back. Before anything is written each command checks its own result: the new
layout must load to exactly the same data, and (split) joining it again must give back the
original bytes. Otherwise it refuses and changes nothing.

Split needs each unit's records together (one run per unit, as the sample and generated files
have them): a unit in two places is refused with both lines, since one file per unit could
not keep that order.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mailgov.i18n import _
from mailgov.include import is_include
from mailgov.loader import LoadError, load, load_file

UNITS_DIR = "units"
_TOP_KEY = re.compile(r"^[^\s#]")
_MAILBOXES = re.compile(r"^mailboxes:[ \t]*(?:#.*)?$")
INCLUDE_LINE = re.compile(r"^(?P<indent> *)- include: *(?P<path>[^\s#'\"]+) *$")
UNIT_FILE_HEADER = ("# Mailboxes of unit {unit}: included from ../{main} (`mailgov join` puts them "
           "back).\n# Format: docs/data-format.md, \"Per-unit files\". The unit's approvers "
           "review changes here (CODEOWNERS).\nmailboxes:\n")


class LayoutError(Exception):
    """The conversion is refused; nothing was written."""


@dataclass
class Section:
    lines: list[str]  # the whole file, with line ends
    head: int  # index of the `mailboxes:` line
    end: int  # index after the section's last line (trailing comments stay outside)


def _section(text: str, path: str) -> Section:
    lines = text.splitlines(keepends=True)
    heads = [i for i, line in enumerate(lines) if _MAILBOXES.match(line.rstrip("\r\n"))]
    if len(heads) != 1:
        raise LayoutError(_("{path}: expected one block `mailboxes:` line at the top level "
                            "(found {count}); a flow list `mailboxes: [...]` cannot be "
                            "split").format(
            path=path, count=len(heads)))
    head = heads[0]
    end = len(lines)
    for i in range(head + 1, len(lines)):
        if _TOP_KEY.match(lines[i]):
            end = i
            break
    while end > head + 1 and _blank_or_comment(lines[end - 1]) and end < len(lines):
        end -= 1  # comments just above the next top-level key belong to it
    return Section(lines, head, end)


def _blank_or_comment(line: str) -> bool:
    s = line.strip()
    return not s or s.startswith("#")


def _items(sec: Section) -> tuple[int, list[int]]:
    """The indentation of the list's items and the line index where each starts."""
    starts: list[int] = []
    indent = -1
    for i in range(sec.head + 1, sec.end):
        line = sec.lines[i]
        if _blank_or_comment(line):
            continue
        n = len(line) - len(line.lstrip(" "))
        if indent < 0:
            indent = n
        if n == indent and line[n:].startswith("-"):
            starts.append(i)
    return indent, starts


def split_text(text: str, data: dict, main_name: str) -> tuple[str, dict[str, str]]:
    """(new main text, {relative path: text}) for ``text`` whose parsed data is ``data``."""
    boxes = data.get("mailboxes")
    if not isinstance(boxes, list) or not boxes:
        raise LayoutError(_("{main_name}: no mailboxes to split").format(main_name=main_name))
    if any(is_include(b) for b in boxes):
        raise LayoutError(_("{main_name}: already includes per-unit files; `mailgov join` it "
                            "first").format(main_name=main_name))
    sec = _section(text, main_name)
    indent, starts = _items(sec)
    if len(starts) != len(boxes):
        raise LayoutError(_("{main_name}: found {items} list items under `mailboxes:` for "
                            "{records} records; split needs one `- ` line per record").format(
            main_name=main_name, items=len(starts), records=len(boxes)))
    # Where each record's text begins: the comment/blank lines just above it go with it.
    begin = []
    for k, s in enumerate(starts):
        b = s
        floor = sec.head + 1 if k == 0 else starts[k - 1] + 1
        while b > floor and _blank_or_comment(sec.lines[b - 1]):
            b -= 1
        begin.append(sec.head + 1 if k == 0 else b)
    begin.append(sec.end)
    runs: list[tuple[str, int, int]] = []  # unit, first record, last record + 1
    for k, box in enumerate(boxes):
        unit = box.get("unit") if isinstance(box, dict) else None
        if not isinstance(unit, str) or not re.fullmatch(r"[a-z0-9_-]{1,32}", unit):
            raise LayoutError(_("{file}:{line}: record has no valid `unit`; run `mailgov "
                                "validate` first").format(file=main_name, line=starts[k] + 1))
        if runs and runs[-1][0] == unit:
            runs[-1] = (unit, runs[-1][1], k + 1)
        else:
            runs.append((unit, k, k + 1))
    seen: dict[str, int] = {}
    for unit, first, _last in runs:
        if unit in seen:
            raise LayoutError(
                _("{file}:{line}: the records of unit {unit!r} are in more than one place (also "
                  "from line {other}); move them together first (one file per unit keeps one "
                  "run)").format(
                    file=main_name, line=starts[first] + 1, unit=unit,
                    other=starts[seen[unit]] + 1))
        seen[unit] = first
    lines = sec.lines
    out = lines[: sec.head + 1]
    files: dict[str, str] = {}
    base = os.path.basename(main_name)
    for unit, first, last in runs:
        rel = f"{UNITS_DIR}/{unit}.yaml"
        out.append(f"{' ' * indent}- include: {rel}\n")
        body = "".join(lines[begin[first]:begin[last]])
        files[rel] = UNIT_FILE_HEADER.format(unit=unit, main=base) + body
    out.extend(lines[sec.end:])
    return "".join(out), files


def join_text(text: str, read: dict[str, str], main_name: str) -> str:
    """The single-file text: each `- include: PATH` line replaced by that file's records."""
    sec = _section(text, main_name)
    out = list(sec.lines[: sec.head + 1])
    for i in range(sec.head + 1, sec.end):
        line = sec.lines[i]
        m = INCLUDE_LINE.match(line.rstrip("\r\n"))
        if m is None:
            out.append(line)
            continue
        sub = read[m.group("path")]
        sub_lines = sub.splitlines(keepends=True)
        heads = [j for j, x in enumerate(sub_lines) if _MAILBOXES.match(x.rstrip("\r\n"))]
        if len(heads) != 1:
            raise LayoutError(_("{file}: expected one `mailboxes:` line").format(
                file=m.group('path')))
        body = sub_lines[heads[0] + 1:]
        _head, item_starts = _items(Section(sub_lines, heads[0], len(sub_lines)))
        have = (len(sub_lines[item_starts[0]]) - len(sub_lines[item_starts[0]].lstrip(" "))
                if item_starts else 0)
        shift = len(m.group("indent")) - have
        for x in body:  # re-indent when the include stands at another depth
            if shift > 0 and x.strip():
                x = " " * shift + x
            elif shift < 0 and x.strip():
                if x[: -shift].strip():
                    raise LayoutError(_("{file}: cannot re-indent line {line!r}").format(
                        file=m.group('path'), line=x))
                x = x[-shift:]
            out.append(x)
        if body and not body[-1].endswith("\n"):
            out.append("\n")
    out.extend(sec.lines[sec.end:])
    return "".join(out)


def _includes(text: str, main_name: str) -> list[str]:
    sec = _section(text, main_name)
    return [m.group("path") for i in range(sec.head + 1, sec.end)
            if (m := INCLUDE_LINE.match(sec.lines[i].rstrip("\r\n")))]


def _write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def split(path: str | Path) -> list[str]:
    """Split the data file in place; returns the files written (main first)."""
    main = Path(path)
    loaded = load_file(main)  # includes are refused by split_text
    text = loaded.source.decode("utf-8")
    new_main, files = split_text(text, loaded.data, str(main))
    for rel in files:
        if (main.parent / rel).exists():
            raise LayoutError(_("{file} exists already; move it away first").format(
                file=main.parent / rel))
    # Check in a scratch copy: same data, and join gives back these very bytes.
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp) / main.name
        scratch.write_text(new_main, encoding="utf-8", newline="")
        for rel, body in files.items():
            (Path(tmp) / rel).parent.mkdir(parents=True, exist_ok=True)
            (Path(tmp) / rel).write_text(body, encoding="utf-8", newline="")
        try:
            again = load(scratch).data
        except LoadError as exc:
            raise LayoutError(_("the split layout would not load: {error}").format(
                error=exc)) from None
        if again != loaded.data:
            raise LayoutError(_("the split layout would read differently; nothing written"))
        if join_text(new_main, files, str(main)) != text:
            raise LayoutError(_("joining the split layout would not give the same bytes; "
                                "nothing written"))
    (main.parent / UNITS_DIR).mkdir(exist_ok=True)
    written = [str(main)]
    for rel, body in files.items():
        _write(main.parent / rel, body)
        written.append(str(main.parent / rel))
    _write(main, new_main)
    return written


def join(path: str | Path) -> list[str]:
    """Put the included files back into the data file; returns the files removed."""
    main = Path(path)
    loaded = load(main)  # every check of validate's reading stage, includes resolved
    text = loaded.source.decode("utf-8")
    rels = _includes(text, str(main))
    if not rels:
        raise LayoutError(_("{main}: includes no per-unit files; nothing to join").format(
            main=main))
    if loaded.parts is None or len(loaded.parts.files) != len(rels):
        raise LayoutError(_("{main}: join handles one level of `- include: PATH` lines in the "
                            "main file (an included file includes others, or an include is "
                            "written another way)").format(main=main))
    read = {rel: (main.parent / rel).read_text(encoding="utf-8") for rel in rels}
    joined = join_text(text, read, str(main))
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp) / main.name
        scratch.write_text(joined, encoding="utf-8", newline="")
        try:
            again = load(scratch).data
        except LoadError as exc:
            raise LayoutError(_("the joined file would not load: {error}").format(
                error=exc)) from None
    if again != loaded.data:
        raise LayoutError(_("the joined file would read differently (comments or anchors above "
                            "`mailboxes:` in an included file?); nothing written"))
    _write(main, joined)
    removed = []
    for rel in rels:
        (main.parent / rel).unlink()
        removed.append(str(main.parent / rel))
    units = main.parent / UNITS_DIR
    if units.is_dir() and not any(units.iterdir()):
        units.rmdir()
    return removed
