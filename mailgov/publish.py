"""The published directory (issue 17 item 5): public fields only, for the unit's web portal.

``mailgov publish DATA --out DIR`` writes:

* ``index.html``: the whole directory, Vietnamese (``--lang en``: English), searchable in the
  page (an inline script filters the rows as one types, ignoring diacritics: "nguyen" finds
  "Nguyễn"); no request leaves the page (Content Security Policy ``default-src 'none'``, the
  script allowed by its hash). Without JavaScript it is a plain table.
* ``danh-ba.csv`` and ``danh-ba.vcf``: everything; ``units/<id>.csv`` and ``units/<id>.vcf``:
  one unit (its unit mailbox first, then its list, then its people).
* vCard 4.0 (RFC 6350): CRLF lines folded at 75 octets, VERSION right after BEGIN, text
  escaped (``\\,`` ``\\;`` ``\\\\`` ``\\n``), ``UID`` stable across runs (from the mailbox id),
  ``KIND:org`` for unit and affiliate mailboxes, ``KIND:group`` (no ``MEMBER``) for a unit's
  list. This is the address book mail clients use:
  import the .vcf, or subscribe to its URL on the portal (no CardDAV server).

Public fields: name, title, unit, address; for units their name, unit mailbox address and
list address (``<unit local part>-all@``, named by :func:`mailgov.naming.list_local` as the
directory's group is; its name is "All mailboxes of unit <unit name>", translated). A list is
published wherever its unit mailbox is. Only active mailboxes and units that go on: a
dissolved unit is not published (its address forwards to its successor's for the policy
period, then it is closed; the successor is listed), and its files of an earlier run are
removed. Never aliases (nor a renamed unit's former list), forwards, quotas, dates of birth, id
digits, requests, states, ids or list members.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import hashlib
import io
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from html import escape
from pathlib import Path

from mailgov.cells import csv_text
from mailgov.i18n import DEFAULT_LANGUAGE, translator
from mailgov.model import Directory, Unit
from mailgov.naming import list_local

# UIDs: uuid5 in a namespace of our own, so the same mailbox keeps its UID from run to run.
_NS = uuid.UUID("6f1d3c2e-2b7a-5d0e-9a51-8f2c1b7e4d10")


@dataclass(frozen=True, slots=True)
class Entry:
    """One public row."""

    name: str
    title: str | None
    unit_id: str
    unit_name: str
    address: str  # full address
    kind: str  # person | unit | list | affiliate
    uid: str


def published_units(directory: Directory) -> list[Unit]:
    """The units that go on, in the file's order (a dissolved one has nobody left in it)."""
    return [u for u in directory.units if u.dissolved is None]


def entries(directory: Directory, unit_locals: dict[str, str],
            lang: str = DEFAULT_LANGUAGE) -> list[Entry]:
    """Unit mailboxes, their lists and active mailboxes, unit by unit in the file's order."""
    _ = translator(lang).gettext
    units = {u.id: u for u in published_units(directory)}
    domain = directory.organization.domain
    out: list[Entry] = []
    people: dict[str, list[Entry]] = {u: [] for u in units}
    for m in directory.mailboxes:
        if m.state != "active" or m.unit not in units:
            continue
        kind = "affiliate" if m.kind == "affiliate" else "person"
        people[m.unit].append(Entry(
            m.name, m.title, m.unit, units[m.unit].name, directory.address(m.address), kind,
            f"urn:uuid:{uuid.uuid5(_NS, f'{domain}/m/{m.id}')}"))
    for u in units.values():
        local = unit_locals.get(u.id)
        if local:
            out.append(Entry(u.name, None, u.id, u.name, directory.address(local), "unit",
                             f"urn:uuid:{uuid.uuid5(_NS, f'{domain}/u/{u.id}')}"))
            # The same rule as its unit mailbox: the list exists as long as the unit entry.
            out.append(Entry(_("All mailboxes of unit {unit}").format(unit=u.name), None, u.id,
                             u.name, directory.address(list_local(local)), "list",
                             f"urn:uuid:{uuid.uuid5(_NS, f'{domain}/l/{u.id}')}"))
        out.extend(sorted(people[u.id], key=lambda e: (e.kind != "person", e.name, e.address)))
    return out


# --------------------------------------------------------------------------- vCard 4.0


def _esc(text: str) -> str:
    """RFC 6350 3.4: backslash, comma, semicolon and newline escaped in text values."""
    return (text.replace("\\", "\\\\").replace(",", "\\,").replace(";", "\\;")
            .replace("\r\n", "\\n").replace("\n", "\\n"))


def _fold(line: str) -> str:
    """RFC 6350 3.2: lines longer than 75 octets folded (CRLF + space), never inside a
    UTF-8 character."""
    raw = line.encode("utf-8")
    if len(raw) <= 75:
        return line + "\r\n"
    parts, start, limit = [], 0, 75
    while start < len(raw):
        end = min(start + limit, len(raw))
        while end < len(raw) and (raw[end] & 0xC0) == 0x80:  # a continuation byte
            end -= 1
        parts.append(raw[start:end].decode("utf-8"))
        start, limit = end, 74  # continuation lines start with the folding space
    return "\r\n ".join(parts) + "\r\n"


# RFC 6350 6.1.4: a list is a group (its members are not published, so no MEMBER).
_KINDS = {"person": "individual", "list": "group"}


def vcard(e: Entry, org: str) -> str:
    lines = ["BEGIN:VCARD", "VERSION:4.0",
             f"KIND:{_KINDS.get(e.kind, 'org')}", f"FN:{_esc(e.name)}"]
    if e.kind == "person":
        words = e.name.split()
        family, given = (words[0], words[-1]) if len(words) > 1 else ("", e.name)
        middle = " ".join(words[1:-1])
        lines.append(f"N:{_esc(family)};{_esc(given)};{_esc(middle)};;")
    lines.append(f"EMAIL;TYPE=work:{e.address}")
    lines.append(f"ORG:{_esc(org)};{_esc(e.unit_name)}")
    if e.title:
        lines.append(f"TITLE:{_esc(e.title)}")
    lines += [f"UID:{e.uid}", "END:VCARD"]
    return "".join(_fold(x) for x in lines)


def vcards(rows: Iterable[Entry], org: str) -> str:
    return "".join(vcard(e, org) for e in rows)


# --------------------------------------------------------------------------- CSV

CSV_FIELDS = ("name", "title", "unit", "unit_name", "address", "kind")


def to_csv(rows: Iterable[Entry]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_FIELDS)
    for e in rows:
        w.writerow([csv_text(c) for c in (e.name, e.title or "", e.unit_id, e.unit_name,
                                          e.address, e.kind)])
    return buf.getvalue()


# --------------------------------------------------------------------------- HTML

# Filters rows by every word typed, without diacritics (NFD, marks dropped, đ -> d).
SCRIPT = """(function () {
  "use strict";
  function fold(s) {
    return s.normalize("NFD").replace(/[\\u0300-\\u036f]/g, "")
      .replace(/\\u0111/g, "d").replace(/\\u0110/g, "d").toLowerCase();
  }
  var input = document.getElementById("q");
  var rows = Array.prototype.slice.call(document.querySelectorAll("#dir tbody tr"));
  var keys = rows.map(function (r) { return fold(r.textContent); });
  var count = document.getElementById("count");
  function run() {
    var words = fold(input.value).split(/\\s+/).filter(Boolean);
    var shown = 0;
    for (var i = 0; i < rows.length; i++) {
      var ok = words.every(function (w) { return keys[i].indexOf(w) >= 0; });
      rows[i].hidden = !ok;
      if (ok) { shown++; }
    }
    count.textContent = String(shown);
  }
  input.addEventListener("input", run);
  input.hidden = false;
  run();
}());"""

CSS = """body{font-family:"DejaVu Sans",Arial,sans-serif;margin:1.5em;font-size:14px}
table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:2px 6px;text-align:left}
th{background:#eef}tr.unit td{background:#f6f6f6;font-weight:bold}tr.list td{background:#f6f6f6}
#q{font-size:1.1em;padding:.3em;width:24em}"""


def _csp() -> str:
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
    return (f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{digest}'; "
            "form-action 'none'; base-uri 'none'")


def page(directory: Directory, rows: list[Entry], lang: str = "vi") -> str:
    _ = translator(lang).gettext
    org = (directory.organization.name_en if lang == "en" and directory.organization.name_en
           else directory.organization.name)
    title = _("E-mail directory")
    t_search, t_shown = _("Search (name, title, unit, address)"), _("Entries shown:")
    head = [_("Name"), _("Title"), _("Unit"), _("Address")]
    t_files = _("Address book for mail clients (vCard) and table (CSV):")
    t_all = _("whole directory")
    body = []
    for e in rows:
        cls = f' class="{e.kind}"' if e.kind in ("unit", "list") else ""
        body.append(f'<tr{cls} data-unit="{escape(e.unit_id)}"><td>{escape(e.name)}</td>'
                    f"<td>{escape(e.title or '')}</td><td>{escape(e.unit_name)}</td>"
                    f'<td><a href="mailto:{escape(e.address)}">{escape(e.address)}</a></td>'
                    "</tr>")
    units = "".join(f'<li><a href="units/{escape(u.id)}.vcf">{escape(u.name)}</a> '
                    f'(<a href="units/{escape(u.id)}.csv">CSV</a>)</li>'
                    for u in published_units(directory))
    return (f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{_csp()}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}: {escape(org)}</title><style>{CSS}</style></head><body>"
            f"<h1>{escape(title)}</h1><p>{escape(org)}</p>"
            f'<p><label for="q">{escape(t_search)}</label><br>'
            f'<input id="q" type="search" autocomplete="off" hidden> '
            f'{escape(t_shown)} <span id="count">{len(rows)}</span></p>'
            '<table id="dir"><thead><tr>' + "".join(f"<th>{escape(h)}</th>" for h in head)
            + "</tr></thead><tbody>" + "".join(body) + "</tbody></table>"
            f'<p>{escape(t_files)} <a href="danh-ba.vcf">vCard</a>, '
            f'<a href="danh-ba.csv">CSV</a> ({escape(t_all)})</p><ul>{units}</ul>'
            f"<script>{SCRIPT}</script></body></html>")


def write(directory: Directory, unit_locals: dict[str, str], out: Path,
          lang: str = "vi") -> dict[str, int]:
    """Write the files into ``out`` (created; existing files of ours replaced)."""
    rows = entries(directory, unit_locals, lang)
    org = directory.organization.name
    (out / "units").mkdir(parents=True, exist_ok=True)
    files = {"index.html": page(directory, rows, lang), "danh-ba.csv": to_csv(rows),
             "danh-ba.vcf": vcards(rows, org)}
    units = [u.id for u in published_units(directory)]
    for u in units:
        mine = [e for e in rows if e.unit_id == u]
        files[f"units/{u}.csv"] = to_csv(mine)
        files[f"units/{u}.vcf"] = vcards(mine, org)
    for name, text in files.items():
        target = out / name
        tmp = target.with_name(f".{target.name}.tmp")
        # newline="" keeps the CRLF that CSV (RFC 4180) and vCard (RFC 6350) require.
        with tmp.open("w", encoding="utf-8", newline="") as f:
            f.write(text)
        tmp.replace(target)
    # A unit published last time and not now (dissolved): its files go, so the portal does
    # not keep offering an address that forwards or is closed. Only names we wrote.
    record = out / "published.json"
    with contextlib.suppress(OSError, ValueError, TypeError):
        for old in set(json.loads(record.read_text(encoding="utf-8"))["units"]) - set(units):
            if isinstance(old, str) and "/" not in old and old not in (".", ".."):
                for ext in ("csv", "vcf"):
                    (out / "units" / f"{old}.{ext}").unlink(missing_ok=True)
    record.write_text(json.dumps({"units": units, "entries": len(rows)}) + "\n")
    return {"entries": len(rows), "files": len(files)}
