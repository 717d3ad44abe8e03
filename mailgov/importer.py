"""`mailgov import FILE` and `mailgov export` (issue 15): a unit's spreadsheet in, people out.

Import reads CSV (UTF-8 with or without BOM, or the UTF-16 Excel writes as "Unicode Text";
comma, semicolon or tab) or XLSX (the first sheet, or ``--sheet``). The first row names the
columns (docs/commands.md): ``name``/``họ và tên`` and ``unit``/``đơn vị`` are required;
``title``/``chức vụ``, ``role``, ``kind``, ``request``/``quyết định``, ``birth``,
``id_digits`` optional. Every row is checked and every address computed for the whole batch
first (one load of the data file; a clash inside the batch is numbered in row order, as if
the rows had been added one by one); errors are ``FILE:ROW: column: message``, all of them,
and nothing is written unless every row is valid. The columns `mailgov export` adds
(``unit_name``/``tên đơn vị``, ``address``/``địa chỉ``, ``state``/``trạng thái``) are
accepted so that an export (in either language) imports again: the unit's name and the
address are not read (addresses come from the naming policy), and a row whose state is not
active is refused. The records are then added by the same edit as ``mailgov add``
(mailgov/mailbox_edit.py), checked before writing.
"""

from __future__ import annotations

import argparse
import csv
import difflib
import functools
import io
import re
import sys
import unicodedata
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from mailgov.cells import csv_text, read_text
from mailgov.edit import Edit, EditError
from mailgov.i18n import N_, _, ngettext, translator
from mailgov.mailbox_edit import Naming, NewPerson, add, check_name
from mailgov.naming import NamingError

#: Accepted column headings (compared case-insensitively, Unicode NFC) -> field.
COLUMNS = {
    "name": "name", "họ và tên": "name", "họ tên": "name",
    "unit": "unit", "đơn vị": "unit",
    "title": "title", "chức vụ": "title", "chức danh": "title",
    "role": "role", "vai trò": "role",
    "kind": "kind", "loại": "kind",
    "request": "request", "quyết định": "request",
    "birth": "birth", "id_digits": "id_digits",
    # Written by `mailgov export`, so that its sheet imports again (its Vietnamese headings:
    # columns(), from the catalog that export writes them with).
    "unit_name": "unit_name", "address": "address", "state": "state",
}
REQUIRED = ("name", "unit")
ROLES = (N_("staff"), N_("head"), N_("admin"))
KINDS = (N_("personal"), N_("affiliate"))


def _data_word(value: str, allowed: tuple[str, ...]) -> str | None:
    """The data file's word for a role, kind or state written as the data writes it or as a
    Vietnamese export does (``cán bộ`` -> ``staff``), in any case and with spaces around (a
    spreadsheet's habits); None if it is neither."""
    if value in allowed:
        return value
    vi = translator("vi").gettext
    key = value.strip().casefold()
    return next((w for w in allowed if key in (w.casefold(), vi(w).casefold())), None)


class ImportError_(Exception):
    """The file cannot be imported; ``errors`` are FILE:ROW: column: message lines."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass
class Row:
    number: int  # the spreadsheet's row number (the heading is row 1)
    values: dict[str, str]
    extra: tuple[str, ...] = ()  # non-empty cells right of the last heading (refused)
    columns: int = 0  # how many columns the heading has


# --------------------------------------------------------------------------- reading


def _decode(path: Path, raw: bytes) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            raise ImportError_([_("{file}: not valid UTF-16 text").format(file=path)]) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ImportError_([_("{file}:{row}: byte 0x{byte} is not UTF-8; save the sheet as "
                              "\"CSV UTF-8\" (or Unicode Text)").format(
            file=path, row=line, byte=raw[exc.start:exc.start + 1].hex())]) from None


def _csv_rows(path: Path) -> list[list[str]]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ImportError_([_("{file}: cannot read it ({why})").format(
            file=path, why=exc.strerror or exc)]) from None
    text = _decode(path, raw)
    first = text.split("\n", 1)[0]
    delimiter = max("\t;,", key=first.count) if any(c in first for c in "\t;,") else ","
    rows: list[list[str]] = []
    # strict: a quote never closed is an error at the end of the data, not a last cell that
    # swallows every row after it
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        for row in reader:
            rows.append(row)
    except csv.Error as exc:
        number = len(rows) + 1  # the row the spreadsheet would number (records, not lines)
        why = str(exc)
        if "field limit" in why or "end of data" in why:
            raise ImportError_([_("{file}:{row}: a quote (\") opened in this row is never "
                                  "closed (or a cell is longer than {limit} characters); "
                                  "close the quote, or save the sheet again from "
                                  "Excel").format(file=path, row=number,
                                                  limit=csv.field_size_limit())]) from None
        raise ImportError_([_("{file}:{row}: not valid CSV ({why})").format(
            file=path, row=number, why=why)]) from None
    return rows


def _key(heading: str) -> str:
    """A column heading as COLUMNS spells it."""
    return unicodedata.normalize("NFC", heading.strip()).casefold()


@functools.cache
def columns() -> dict[str, str]:
    """COLUMNS and the headings `mailgov export --lang vi` writes, read from the same catalog
    (one source for the words export writes and import reads)."""
    vi = translator("vi")
    out = dict(COLUMNS)
    for c in EXPORT_COLUMNS:
        out.setdefault(_key(vi.gettext(c)), c)
    return out


def _cell(value: Any, field: str | None = None) -> str:
    if value is None:
        return ""
    if field == "birth" and isinstance(value, date):
        return value.isoformat()[:7]  # Excel makes a date of a typed 1990-02: its month
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, date):
        return value.isoformat()[:10]
    return str(value)


#: An XLSX is a zip of XML parts: what they unpack to is read before any is parsed. A sheet
#: of 100,000 people unpacks to about 20 MiB; a zip bomb (a few kB that unpack to gigabytes,
#: or to one XML token of 100 MB that the parser takes minutes over) is refused unread.
MAX_UNPACKED_MIB = 200
#: A part larger than this that unpacks to more than MAX_RATIO times its packed size is a
#: bomb, not a sheet (a real sheet's XML packs 5 to 30 times).
BOMB_PART_MIB = 4
MAX_RATIO = 200


def _check_unpacked(path: Path) -> None:
    """Refuse an XLSX whose parts unpack to too much (sizes from the zip's directory, which
    zipfile holds each part to when it reads it)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            parts = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # load_workbook says what is wrong with it
    total = sum(i.file_size for i in parts)
    if total > MAX_UNPACKED_MIB << 20:
        raise ImportError_([_("{file}: unpacks to {size} MiB, more than {limit} MiB; save "
                              "only the sheet to import, or save it as CSV").format(
            file=path, size=total >> 20, limit=MAX_UNPACKED_MIB)])
    for i in parts:
        if i.file_size > BOMB_PART_MIB << 20 and i.file_size > MAX_RATIO * max(
                i.compress_size, 1):
            raise ImportError_([_("{file}: {part} unpacks to {size} MiB, {ratio} times its "
                                  "packed size (a zip bomb, not a sheet); save the sheet "
                                  "again from Excel, or save it as CSV").format(
                file=path, part=i.filename, size=i.file_size >> 20,
                ratio=i.file_size // max(i.compress_size, 1))])


def _unreadable(path: Path, why: Exception) -> ImportError_:
    return ImportError_([_("{file}: not a readable XLSX workbook ({why})").format(
        file=path, why=why)])


def _xlsx_rows(path: Path, sheet: str | None) -> list[list[str]]:
    import zipfile

    from openpyxl import load_workbook

    _check_unpacked(path)
    # what openpyxl raises for a file that is not a workbook, or whose XML is broken or hostile
    unreadable = (SyntaxError, zipfile.BadZipFile, KeyError, OSError, ValueError)
    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except unreadable as exc:
        raise _unreadable(path, exc) from None
    try:
        if sheet is not None and sheet not in wb.sheetnames:
            raise ImportError_([_("{file}: no sheet {sheet!r} (sheets: {names})").format(
                file=path, sheet=sheet, names=", ".join(wb.sheetnames))])
        ws = wb[sheet] if sheet is not None else wb.worksheets[0]
        out: list[list[str]] = []
        fields: list[str | None] = []
        try:  # a sheet's XML is parsed as it is read: an entity bomb, a broken part
            for row in ws.iter_rows(values_only=True):
                out.append([_cell(v, fields[i] if i < len(fields) else None)
                            for i, v in enumerate(row)])
                if len(out) == 1:  # the heading: which cell is whose (a birth date, below)
                    fields = [columns().get(_key(h)) for h in out[0]]
        except unreadable as exc:
            raise _unreadable(path, exc) from None
    finally:
        wb.close()
    _refuse_formulas_without_value(path, sheet, out)
    return out


def _refuse_formulas_without_value(path: Path, sheet: str | None,
                                   values: list[list[str]]) -> None:
    """A formula cell is read by its saved result. A workbook written by a program (never
    opened in a spreadsheet application) has none: the cell would read as empty, and a
    title or a birth month silently dropped. Which cells are formulas is read from a
    second pass over the sheet, only where the first found an empty cell."""
    from openpyxl import load_workbook
    from openpyxl.utils import get_column_letter

    if all(all(values_row) for values_row in values):
        return
    wb = load_workbook(path, read_only=True, data_only=False)
    try:
        ws = wb[sheet] if sheet is not None else wb.worksheets[0]
        cells = [f"{get_column_letter(c + 1)}{r + 1}"
                 for r, row in enumerate(ws.iter_rows(values_only=True)) if r < len(values)
                 for c, formula in enumerate(row)
                 if isinstance(formula, str) and formula.startswith("=")
                 and (c >= len(values[r]) or values[r][c] == "")]
    finally:
        wb.close()
    if cells:
        more = _(" and {n:,} more").format(n=len(cells) - 10) if len(cells) > 10 else ""
        raise ImportError_([_("{file}: cell(s) {cells}{more} hold a formula without a saved "
                              "result (the workbook was written by a program, not saved by "
                              "a spreadsheet application); open and save it in one, or "
                              "paste the values, then import again").format(
                              file=path, cells=", ".join(cells[:10]), more=more)])


def read_rows(path: str | Path, sheet: str | None = None) -> list[Row]:
    """The rows of ``path`` as {field: text}; heading problems raise ImportError_."""
    p = Path(path)
    if p.is_dir():
        raise ImportError_([_("{file}: is a directory, not a CSV or XLSX file").format(file=p)])
    if not p.is_file():
        raise ImportError_([_("{file}: no such file").format(file=p)])
    table = (_xlsx_rows(p, sheet) if p.suffix.lower() in (".xlsx", ".xlsm")
             else _csv_rows(p))
    if not table or not any(c.strip() for c in table[0]):
        raise ImportError_([_("{file}:1: the first row names the columns (name, unit, …); "
                              "it is empty").format(file=p)])
    errors = []
    fields: list[str | None] = []
    for heading in table[0]:
        key = _key(heading)
        if not key:
            fields.append(None)
            continue
        field = columns().get(key)
        if field is None:
            near = difflib.get_close_matches(key, list(columns()), n=2)
            hint = _("; did you mean {names}?").format(names=", ".join(near)) if near else ""
            errors.append(_("{file}:1: {column}: unknown column (known: {known}){hint}").format(
                file=p, column=heading.strip(), known=", ".join(columns()), hint=hint))
        elif field in fields:
            errors.append(_("{file}:1: {column}: a second {field} column").format(
                file=p, column=heading.strip(), field=field))
        fields.append(field)
    for need in REQUIRED:
        if need not in fields:
            others = [k for k, v in columns().items() if v == need and k != need]
            errors.append(_("{file}:1: {column}: missing column (also accepted: "
                            "{others})").format(file=p, column=need, others=", ".join(others)))
    if errors:
        raise ImportError_(errors)
    rows = []
    for n, cells in enumerate(table[1:], start=2):
        values = {f: read_text(unicodedata.normalize("NFC", " ".join(c.split())))
                  for f, c in zip(fields, cells, strict=False) if f is not None}
        extra = tuple(c.strip() for c in cells[len(fields):] if c.strip())
        if any(values.values()) or extra:
            rows.append(Row(n, values, extra, len(fields)))
    return rows


# --------------------------------------------------------------------------- checking


def people(path: str | Path, rows: list[Row], e: Edit, *, request: str | None,
           namesakes: bool = False) -> list[NewPerson]:
    """Every row checked and given its address (the whole batch at once); ImportError_ with
    every problem otherwise."""
    d = e.directory
    units = {u.id: u for u in d.units if u.dissolved is None}
    by_name: dict[str, list[str]] = {}
    for u in units.values():
        by_name.setdefault(u.name.casefold(), []).append(u.id)
    existing = {(m.name.casefold(), m.unit): m.address for m in d.mailboxes
                if m.state != "cancelled"}
    naming = Naming(d)
    seen: dict[tuple[str, str], int] = {}
    errors: list[str] = []
    out: list[NewPerson] = []

    def bad(row: Row, column: str, message: str) -> None:
        errors.append(f"{path}:{row.number}: {column}: {message}")

    for row in rows:
        v = row.values
        name, unit = v.get("name", ""), v.get("unit", "")
        ok = True
        if row.extra:  # a shifted row: its cells may not be in the columns they seem
            what = ngettext("{file}:{row}: {cells}: a cell beyond the last column (the "
                            "heading names {n}); give it a heading or remove it",
                            "{file}:{row}: {cells}: cells beyond the last column (the "
                            "heading names {n}); give them a heading or remove them",
                            len(row.extra))
            errors.append(what.format(file=path, row=row.number, n=row.columns,
                                      cells=", ".join(repr(c) for c in row.extra)))
            ok = False
        try:
            check_name(name)
        except NamingError as exc:
            bad(row, "name", str(exc))
            ok = False
        if unit not in units:
            ids = by_name.get(unit.casefold(), [])
            if len(ids) == 1:
                unit = ids[0]  # the unit's name, as HR's sheets write it
            elif ids:
                bad(row, "unit", _("{unit!r} is the name of {n} units ({ids}); write the "
                                   "unit's id").format(unit=unit, n=len(ids),
                                                       ids=", ".join(ids)))
                ok = False
            else:
                near = difflib.get_close_matches(unit, list(units), n=3)
                hint = _("; did you mean {names}?").format(names=", ".join(near)) \
                    if near else ""
                bad(row, "unit", (_("empty") if not unit else
                                  _("unknown unit {unit!r}").format(unit=unit)) + hint)
                ok = False
        for field, allowed in (("role", ROLES), ("kind", KINDS)):
            if not v.get(field):
                continue
            word = _data_word(v[field], allowed)
            if word is None:
                bad(row, field, _("{value!r}: one of {allowed}").format(
                    value=v[field], allowed=", ".join(allowed)))
                ok = False
            else:
                v[field] = word
        if v.get("state") and _data_word(v["state"], ("active",)) is None:
            bad(row, "state", _("{value!r}: only active people are imported").format(
                value=v["state"]))
            ok = False
        if v.get("birth") and not re.fullmatch(r"[0-9]{4}-[0-9]{2}", v["birth"]):
            bad(row, "birth", _("{value!r}: YYYY-MM").format(value=v["birth"]))
            ok = False
        elif v.get("birth") and not 1 <= int(v["birth"][5:]) <= 12:
            bad(row, "birth", _("{value!r}: the month is 01 to 12 (YYYY-MM)").format(
                value=v["birth"]))
            ok = False
        if v.get("id_digits") and not (v["id_digits"].isdigit() and len(v["id_digits"]) <= 6):
            bad(row, "id_digits", _("1 to 6 digits (never the full citizen ID)"))
            ok = False
        if not ok:
            continue
        key = (name.casefold(), unit)
        if key in seen:
            bad(row, "name", _("{name} in {unit} twice (row {first}); one mailbox per "
                               "person").format(name=name, unit=unit, first=seen[key]))
            continue
        seen[key] = row.number
        if key in existing and not namesakes:
            bad(row, "name", _("{name} in {unit} has a mailbox already ({address}); if "
                               "this is a namesake, import with --namesakes").format(
                name=name, unit=unit, address=existing[key]))
            continue
        p = NewPerson(name, unit, v.get("title") or None, v.get("role") or None,
                      v.get("kind") or None, v.get("request") or request,
                      v.get("birth") or None, v.get("id_digits") or None)
        try:
            p.address = naming.propose(p.name, unit, p.birth, p.id_digits)
        except NamingError as exc:
            bad(row, "name", _("cannot propose an address: {why}").format(why=exc))
            continue
        out.append(p)
    if errors:
        raise ImportError_(errors)
    return out


def table(batch: list[NewPerson], domain: str) -> str:
    """What would be added, one line per person."""
    heads = (_("address"), _("name"), _("unit"), _("title"))
    rows = [(f"{p.address}@{domain}", p.name, p.unit, p.title or "") for p in batch]
    widths = [max(len(r[i]) for r in [heads, *rows]) for i in range(len(heads))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in [heads, *rows]) + "\n"


def import_file(source: str | Path, data: str | Path, *, sheet: str | None = None,
                request: str | None = None, on: date | None = None,
                dry_run: bool = False, namesakes: bool = False
                ) -> tuple[list[NewPerson], str, list[str]]:
    """Import ``source`` into ``data``: (the people added, the table, the edit's notes:
    CODEOWNERS rewritten or to be updated by hand)."""
    rows = read_rows(source, sheet)
    if not rows:
        raise ImportError_([_("{file}: no rows below the heading").format(file=source)])
    e = Edit.open(data)
    batch = people(source, rows, e, request=request, namesakes=namesakes)
    add(data, batch, on=on, dry_run=dry_run, e=e)
    return batch, table(batch, e.directory.organization.domain), e.notes


# --------------------------------------------------------------------------- export

EXPORT_COLUMNS = ("unit", "unit_name", "name", "address", "title", "role", "kind", "state")
# The headings, roles, kinds and states as the reader's language writes them (import accepts
# both).
_EXPORT_WORDS = (N_("unit"), N_("unit_name"), N_("name"), N_("address"), N_("title"),
                 N_("role"), N_("kind"), N_("state"), N_("active"), N_("suspended"),
                 N_("cancelled"))


def export_headings() -> list[str]:
    return [_(c) for c in EXPORT_COLUMNS]


def export_rows(data: str | Path, unit: str | None = None) -> list[dict[str, list[list[str]]]]:
    from mailgov.validate import validate

    result = validate(data)
    if not result.ok or result.directory is None:
        raise ImportError_([p.format() for p in result.problems[:20]])
    d = result.directory
    if unit is not None and unit not in {u.id for u in d.units}:
        raise ImportError_([_("unknown unit {unit!r}").format(unit=unit)])
    per_unit: dict[str, list[list[str]]] = {u.id: [] for u in d.units}
    names = {u.id: u.name for u in d.units}
    for m in d.mailboxes:
        per_unit.setdefault(m.unit, []).append(
            [m.unit, names.get(m.unit, ""), m.name, d.address(m.address), m.title or "",
             _(m.role), _(m.kind), _(m.state)])
    return [{uid: rows} for uid, rows in per_unit.items()
            if rows and (unit is None or uid == unit)]


def export(data: str | Path, fmt: str, out: str | None, unit: str | None = None) -> None:
    groups = export_rows(data, unit)
    if fmt == "csv":
        buf = io.StringIO(newline="")
        w = csv.writer(buf, lineterminator="\r\n")
        w.writerow(export_headings())
        for g in groups:
            for rows in g.values():
                w.writerows([csv_text(c) for c in r] for r in rows)
        if out is None:
            sys.stdout.write(buf.getvalue())
        else:  # with a BOM: Excel then reads the Vietnamese letters as UTF-8
            Path(out).write_text(buf.getvalue(), encoding="utf-8-sig", newline="")
        return
    from openpyxl import Workbook

    if out is None:
        raise ImportError_([_("--format xlsx needs --out FILE")])
    wb = Workbook(write_only=True)
    for g in groups:
        for uid, rows in g.items():
            ws = wb.create_sheet(title=uid[:31])  # one sheet per unit
            ws.append(export_headings())
            for r in rows:
                ws.append([_text_cell(ws, c) for c in r])
    if not groups:
        wb.create_sheet(title="people").append(export_headings())
    wb.save(out)


def _text_cell(ws: Any, value: str) -> Any:
    """A text cell: openpyxl makes a formula of a string that starts with ``=``."""
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(ws, value)
    cell.data_type = "s"
    return cell


# --------------------------------------------------------------------------- commands


def add_parsers(sub: Any) -> None:
    from mailgov import args as arg_types
    from mailgov.edit_cli import DEFAULT_DATA, guarded

    p = sub.add_parser("import", help="add the people of a CSV or XLSX sheet",
                       description=("Add a record for each row of a CSV (UTF-8, UTF-8 with "
                                     "BOM, UTF-16) or XLSX sheet: columns name (họ và tên) "
                                     "and unit (đơn vị), optional title, role, kind, request, "
                                     "birth, id_digits. Addresses for the whole batch; every "
                                     "error as FILE:ROW: column: message; nothing is written "
                                     "unless every row is valid. docs/commands.md."))
    p.add_argument("file")
    p.add_argument("--sheet", help="the XLSX sheet (default: the first)")
    p.add_argument("--data", default=DEFAULT_DATA,
                   help=f"the data file (default {DEFAULT_DATA})")
    p.add_argument("--request", metavar="REF",
                   help="the approving document of rows without their own")
    p.add_argument("--date", type=arg_types.day, metavar="YYYY-MM-DD",
                   help="created (default today)")
    p.add_argument("--namesakes", action="store_true",
                   help=("a row whose name the unit already has is a new person (a "
                          "namesake), not a repeat"))
    p.add_argument("--dry-run", action="store_true",
                   help="print what would be added, write nothing")
    p.set_defaults(func=guarded(cmd_import))

    p = sub.add_parser("export", help="the people per unit as CSV or XLSX")
    p.add_argument("--format", choices=("csv", "xlsx"), default="csv")
    p.add_argument("--out", metavar="FILE", help="default: standard output (CSV only)")
    p.add_argument("--unit", help="one unit only")
    p.add_argument("--data", default=DEFAULT_DATA,
                   help=f"the data file (default {DEFAULT_DATA})")
    p.set_defaults(func=guarded(cmd_export))


def cmd_import(args: argparse.Namespace) -> int:
    from mailgov.edit_cli import EditCliError

    try:
        batch, shown, notes = import_file(args.file, args.data, sheet=args.sheet,
                                   request=args.request, on=args.date, dry_run=args.dry_run,
                                   namesakes=args.namesakes)
    except ImportError_ as exc:
        for line in exc.errors:
            print(line)
        what = ngettext("{file}: nothing imported ({n} problem)",
                        "{file}: nothing imported ({n} problems)", len(exc.errors))
        raise EditCliError(what.format(file=args.file, n=len(exc.errors)), 1) from None
    except EditError as exc:
        raise EditCliError(str(exc), 1) from None
    print(shown, end="")
    what = ngettext("would add {n} mailbox (dry run: nothing written)",
                    "would add {n} mailboxes (dry run: nothing written)", len(batch)) \
        if args.dry_run else ngettext("added {n} mailbox; review with git diff, then plan",
                                      "added {n} mailboxes; review with git diff, then plan",
                                      len(batch))
    print(f"{args.data}: " + what.format(n=len(batch)), file=sys.stderr)
    for note in notes:
        print(note, file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from mailgov.edit_cli import EditCliError

    try:
        export(args.data, args.format, args.out, args.unit)
    except ImportError_ as exc:
        raise EditCliError("\n".join(exc.errors), 1) from None
    except OSError as exc:
        raise EditCliError(f"{args.out}: {exc.strerror or exc}") from None  # no words
    return 0
