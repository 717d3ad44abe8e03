"""`mailgov dump`: the live directory written in the data format (issue 15 item 3).

The directory holds only part of what a data file says (no policy, no approving documents,
no creation dates). So the dump starts from a data file (``--data``, the one the directory
was loaded from) and changes in its records exactly what the live entries say differently,
attribute by attribute, with the same mapping the planner uses (mailgov/directory.py): the
desired entry of each record is computed, compared with the live one, and only the fields
behind the differing attributes are rewritten. What the directory cannot say is kept from the
data file; entries the data file does not know become new records. So a dump fed back to
``mailgov plan`` plans no change, and an unchanged directory dumps to the data it was loaded
from (docs/data-format.md, "Dump and import").

The live state is read by mailgov/live.py (the planner's one paged read), or taken from a
saved state (``--live-json``, ``mailgov dump-live``). Pure apart from the final write.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from mailgov.dated import as_of
from mailgov.directory import (
    ADMIN_LOCK,
    IDENTITY,
    _nfc,
    desired_entries,
    layout_of,
)
from mailgov.i18n import _, ngettext
from mailgov.loader import LoadError, load
from mailgov.model import Directory
from mailgov.plan import LiveState, _key, normalise_dn
from mailgov.problems import Problem
from mailgov.validate import Result, check


class DumpError(Exception):
    """The dump cannot be made; the message is for the user."""


@dataclass
class Written:
    """What :func:`finish` wrote (or refused), and notes for the user."""

    text: str
    result: Result
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- output


def to_yaml(data: Mapping[str, Any], header: str) -> str:
    """The data file's text: block style, one record per item, short lists of words in flow
    style as admins write them. A small emitter of our own (PyYAML's takes 70 s for 50,000
    records, its C emitter 22 s; this one about 1 s); :func:`finish` reads the text back and
    falls back to PyYAML if it does not give the same data."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    _emit_map(data, 0, lines)
    return "\n".join(lines) + "\n"


_PLAIN = re.compile(r"[A-Za-z0-9ÀÁÂÃÈÉÊÌÍÒÓÔÕÙÚÝàáâãèéêìíòóôõùúýĂăĐđĨĩŨũƠơƯưẠ-ỹ_]"
                    r"[^:#\[\]{},\"'\n\t\\&*!|>%@`]*")
_YAML11_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"})
_NUMBERISH = re.compile(r"[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?|\.[0-9_]+|"
                        r"0[xob][0-9a-fA-F_]+|\.inf|\.nan)", re.IGNORECASE)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if value is None:
        return "null"
    text = str(value)
    if (_PLAIN.fullmatch(text) and text == text.strip() and "  " not in text
            and text.lower() not in _YAML11_WORDS and not _NUMBERISH.fullmatch(text)):
        # dates stay plain (2026-12-07): the loader reads them as text, as admins write them
        return text
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a YAML double-quoted one


def _flow(items: list[Any]) -> str | None:
    """``[a, b]`` for a short list of plain words; None when block style reads better."""
    if not items or any(isinstance(i, dict | list) for i in items):
        return None
    text = "[" + ", ".join(_scalar(i) for i in items) + "]"
    return text if len(text) <= 60 else None


def _emit_map(data: Mapping[str, Any], indent: int, out: list[str], first: str = "") -> None:
    pad = " " * indent
    for n, (raw_key, value) in enumerate(data.items()):
        key = _scalar(raw_key)
        lead = first if n == 0 and first else pad
        if isinstance(value, Mapping):
            if not value:
                out.append(f"{lead}{key}: {{}}")
                continue
            out.append(f"{lead}{key}:")
            _emit_map(value, indent + 2, out)
        elif isinstance(value, list):
            flow = _flow(value)
            if flow is not None or not value:
                out.append(f"{lead}{key}: {flow or '[]'}")
                continue
            out.append(f"{lead}{key}:")
            _emit_list(value, indent + 2, out)
        else:
            out.append(f"{lead}{key}: {_scalar(value)}")


def _emit_list(items: list[Any], indent: int, out: list[str]) -> None:
    pad = " " * indent
    for item in items:
        if isinstance(item, Mapping) and item:
            _emit_map(item, indent + 2, out, first=f"{pad}- ")
        elif isinstance(item, list):
            out.append(f"{pad}- {_flow(item) or json.dumps(item, ensure_ascii=False)}")
        else:
            out.append(f"{pad}- {_scalar(item)}")


def finish(data: dict[str, Any], header: str, today: date | None,
           exempt: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> Written:
    """Check ``data`` as `mailgov validate` would; records whose address the naming policy
    does not give get ``exempt(record)`` as their naming exemption (the policy's own check,
    MG210, decides which). Returns the text and the result of the last check."""
    notes: list[str] = []
    for _round in range(3):
        text = to_yaml(data, header)
        try:
            result = check_text(text, today, data)
        except DumpError:  # never expected; PyYAML's emitter is slow but exact
            text = to_yaml_pyyaml(data, header)
            result = check_text(text, today)
        if result.ok or exempt is None:
            break
        fixed = 0
        for p in result.problems:
            if p.rule == "MG210" and p.path[:1] == ("mailboxes",) and len(p.path) >= 2:
                rec = data["mailboxes"][int(p.path[1])]
                if "naming_exemption" not in rec:
                    rec["naming_exemption"] = exempt(rec)
                    fixed += 1
            elif p.rule in ("MG213", "MG214", "MG215") and p.path[:1] == ("units",):
                unit = data["units"][int(p.path[1])]
                if unit.pop("head", None) is not None:
                    notes.append(_("unit {id}: head dropped ({message})").format(
                        id=unit['id'], message=p.message))
                    fixed += 1
        if not fixed:
            break
        if _round == 0 and fixed:
            n = sum(1 for m in data["mailboxes"] if "naming_exemption" in m)
            if n:
                notes.append(ngettext("{n} address outside the naming policy carries a "
                                      "naming_exemption saying where it came from",
                                      "{n} addresses outside the naming policy carry a "
                                      "naming_exemption saying where they came from", n).format(
                    n=n))
    return Written(text, result, notes)


def check_text(text: str, today: date | None,
               expected: Mapping[str, Any] | None = None) -> Result:
    """`mailgov validate` of a text (through a private temporary file: the loader reads
    files). With ``expected``, a text that does not read back as exactly that data raises
    :class:`DumpError` (the emitter's own check)."""
    fd, name = tempfile.mkstemp(prefix="mailgov-dump-", suffix=".yaml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        try:
            loaded = load(name)
        except LoadError as exc:
            if expected is not None:
                raise DumpError(_("emitted text does not read back")) from None
            return Result(name, list(exc.problems))
        if expected is not None and loaded.data != expected:
            raise DumpError(_("emitted text does not read back as the data"))
        return check(loaded, today=today)
    finally:
        os.unlink(name)


def problems_text(problems: list[Problem], where: str) -> list[str]:
    """Problems of a generated file, with its name instead of the temporary one."""
    return [f"{where}:{p.line}:{p.col}: {p.rule} {p.message}" for p in problems]


def to_yaml_pyyaml(data: Mapping[str, Any], header: str) -> str:
    body = yaml.safe_dump(dict(data), allow_unicode=True, sort_keys=False, width=100,
                          default_flow_style=False)
    return "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines()) + body


# --------------------------------------------------------------------------- dump


def _one(attrs: Mapping[str, tuple[str, ...]], name: str) -> str | None:
    v = attrs.get(name) or ()
    return v[0] if v else None


def _rdn_value(dn: str) -> str:
    return dn.split(",", 1)[0].split("=", 1)[1]


def _state(attrs: Mapping[str, tuple[str, ...]]) -> str:
    if (_one(attrs, "mailEnabled") or "TRUE").upper() == "FALSE":
        return "cancelled"
    # Only the administrator lock is a suspension; a lockout time ppolicy wrote after wrong
    # passwords ends by itself (the planner leaves it alone too).
    if ADMIN_LOCK in (attrs.get("pwdAccountLockedTime") or ()):
        return "suspended"
    return "active"


def _lower(values: tuple[str, ...] | None) -> list[str]:
    return list(dict.fromkeys(v.strip().lower() for v in values or ()))


def dump(template: Directory, raw: Mapping[str, Any], live: LiveState, *, today: date,
         request: str | None = None) -> tuple[dict[str, Any], list[str]]:
    """The data of ``raw`` (the template's data as read) changed to say what ``live`` holds.

    Returns the new data and notes. Raises :class:`DumpError` when a lifecycle change found
    in the directory needs an approving document and neither ``request`` nor the record has
    one.
    """
    d, _notes = as_of(template, today)
    layout = layout_of(d, today)
    base = normalise_dn(layout.base_dn)
    people_sfx = f",ou=people,{base}"
    units_sfx = f",ou=units,{base}"
    groups_sfx = f",ou=groups,{base}"
    desired = {normalise_dn(e.dn): e for e in desired_entries(d, today)}
    notes: list[str] = []
    data = {k: v for k, v in raw.items()}
    raw_boxes = list(raw.get("mailboxes") or [])
    raw_units = list(raw.get("units") or [])

    live_people = {dn: a for dn, a in live.items() if dn.endswith(people_sfx)}
    live_units = {dn: a for dn, a in live.items() if dn.endswith(units_sfx)
                  and dn.count(",") == units_sfx.count(",")}
    live_groups = {dn: a for dn, a in live.items() if dn.endswith(groups_sfx)}

    # ---- units
    by_uid_local: dict[str, str] = {}  # unit mailbox local part -> unit id
    unit_rec: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    raw_by_id = {u["id"]: u for u in raw_units if isinstance(u, Mapping) and "id" in u}
    model_units = {u.id: u for u in d.units}
    for dn, attrs in sorted(live_units.items()):
        uid = (_one(attrs, "ou") or _rdn_value(dn)).strip()
        rec = dict(raw_by_id.get(uid) or {"id": uid})
        rec["mailbox"] = dict(rec.get("mailbox") or {})
        name = _one(attrs, "description")
        if name and _nfc(name) != _nfc(str(rec.get("name", ""))):
            rec["name"] = _nfc(name)
        rec.setdefault("name", uid)
        parent_dn = _one(attrs, "seeAlso")
        parent = _rdn_value(normalise_dn(parent_dn)) if parent_dn else None
        if parent != rec.get("parent"):
            if parent is None:
                rec.pop("parent", None)
            else:
                rec["parent"] = parent
        quota = _one(attrs, "mailQuota")
        if quota is not None and quota.isdigit():
            mb = int(quota) // 1024
            model = model_units.get(uid)
            if model is None or mb != model.mailbox.quota_mb:
                rec["mailbox"]["quota_mb"] = mb
        mail = _one(attrs, "mail")
        if mail:
            by_uid_local[mail.split("@", 1)[0].lower()] = uid
        unit_rec[uid] = rec
        order.append(uid)
    for uid in [u for u in raw_by_id if u not in unit_rec]:
        notes.append(_("unit {id}: not in the directory; left out").format(id=uid))
    # delegates: cn=<unit local>-delegates
    for dn, attrs in live_groups.items():
        cn = (_one(attrs, "cn") or _rdn_value(dn)).lower()
        if not cn.endswith("-delegates") or cn[:-len("-delegates")] not in by_uid_local:
            continue
        uid = by_uid_local[cn[:-len("-delegates")]]
        members = sorted(_rdn_value(normalise_dn(m)) for m in attrs.get("member") or ()
                         if normalise_dn(m).endswith(people_sfx))
        old = [str(x).lower() for x in unit_rec[uid]["mailbox"].get("delegates") or []]
        if sorted(old) != members:
            unit_rec[uid]["mailbox"]["delegates"] = members
    for uid, rec in unit_rec.items():
        has_group = any(normalise_dn(layout.group_dn(f"{loc}-delegates")) in live_groups
                        for loc, u in by_uid_local.items() if u == uid)
        if not has_group:
            rec["mailbox"].pop("delegates", None)
        if not rec["mailbox"]:
            rec.pop("mailbox")
    known_units = [uid for uid in (u["id"] for u in raw_units if isinstance(u, Mapping))
                   if uid in unit_rec]
    data["units"] = [unit_rec[u] for u in known_units] + \
        [unit_rec[u] for u in order if u not in known_units]

    # ---- mailboxes
    by_id = {m.id: m for m in d.mailboxes}
    seen: set[int] = set()
    new_boxes: list[dict[str, Any]] = []
    out_by_index: dict[int, dict[str, Any]] = {}
    next_id = max([m.id for m in d.mailboxes if m.id is not None] or [0]) + 1
    domain = layout.domain
    for dn, attrs in sorted(live_people.items()):
        ident = _one(attrs, IDENTITY)
        m = by_id.get(int(ident)) if ident and ident.isdigit() else None
        if m is not None:
            rec = dict(raw_boxes[m.index])
            want = desired.get(normalise_dn(layout.person_dn(m.address.lower())))
            want_attrs = dict(want.attributes) if want is not None else {}
            seen.add(m.id)
        else:
            ident_n = int(ident) if ident and ident.isdigit() else next_id
            if not (ident and ident.isdigit()):
                next_id += 1
                notes.append(_("{entry}: no {attribute} in the directory; given id {id} (the "
                               "plan against the dump writes it)").format(
                    entry=_rdn_value(dn), attribute=IDENTITY, id=ident_n))
            rec = {"address": _rdn_value(dn), "id": ident_n}
            want_attrs = {}
            m = None
        _patch_person(rec, attrs, want_attrs, m, d, domain, layout.alias_domains, today,
                      request, notes)
        if m is not None:
            out_by_index[m.index] = rec
        else:
            new_boxes.append(rec)
    boxes: list[dict[str, Any]] = []
    reserved = list(raw.get("reserved") or [])
    for i, r in enumerate(raw_boxes):
        if i in out_by_index:
            boxes.append(out_by_index[i])
            continue
        m = next((x for x in template.mailboxes if x.index == i), None)
        if m is not None and m.state == "cancelled":
            boxes.append(dict(r))  # purged (or not yet made): the record keeps the address
            continue
        if m is not None:
            notes.append(_("{address}: in the data, not in the directory; its address is "
                           "reserved in the dump").format(address=m.address))
            reserved.append({"address": m.address, "id": m.id,
                             "reason": f"not in the directory on {today.isoformat()}"})
    boxes += sorted(new_boxes, key=lambda r: r["id"])
    data["mailboxes"] = boxes
    if reserved:
        data["reserved"] = reserved
    return data, notes


def _patch_person(rec: dict[str, Any], attrs: Mapping[str, tuple[str, ...]],
                  want: Mapping[str, tuple[str, ...]], m: Any, d: Directory, domain: str,
                  alias_domains: tuple[str, ...], today: date, request: str | None,
                  notes: list[str]) -> None:
    """Rewrite the fields of ``rec`` behind the attributes where ``attrs`` (live) and
    ``want`` (the record's desired entry; empty for a new record) differ."""
    def differs(name: str) -> bool:  # as the planner compares: a set of normalised values
        return {_key(name, v) for v in attrs.get(name) or ()} != \
            {_key(name, v) for v in want.get(name) or ()}

    uid = (_one(attrs, "uid") or rec["address"]).lower()
    # m is the record as of today: a rename dated ahead has not happened in the directory
    if uid != (m.address.lower() if m is not None else rec["address"]):
        rec["address"] = uid
    if differs("cn") or "name" not in rec:
        rec["name"] = _nfc(_one(attrs, "cn") or _one(attrs, "displayName") or uid)
    unit = _one(attrs, "ou")
    if unit and (differs("ou") or "unit" not in rec):
        rec["unit"] = unit.lower()
    for key, attr, default in (("kind", "employeeType", "personal"),
                               ("role", "businessCategory", "staff")):
        value = (_one(attrs, attr) or default).lower()
        if differs(attr) or not want:
            if value == default and key not in rec:
                continue
            rec[key] = value
    title = _one(attrs, "title")
    if title is not None and differs("title"):
        rec["title"] = _nfc(title)
    elif title is None and "title" in rec:
        rec.pop("title")
    if differs("mailQuota") and _one(attrs, "mailQuota"):
        mb = int(_one(attrs, "mailQuota") or 0) // 1024
        kind = rec.get("kind", "personal")
        if want or mb != d.policy.quotas[kind].default:
            rec["quota_mb"] = mb
    if differs("mailForwardingAddress"):
        fwd = _lower(attrs.get("mailForwardingAddress"))
        if fwd:
            rec["forward_to"] = fwd
        else:
            rec.pop("forward_to", None)
    sponsor = _one(attrs, "seeAlso")
    if differs("seeAlso"):
        if sponsor:
            rec["sponsor"] = _rdn_value(normalise_dn(sponsor))
        else:
            rec.pop("sponsor", None)
    if differs("mailAlias"):
        _patch_aliases(rec, attrs, want, domain, alias_domains)
    state = _state(attrs)
    was = "active" if m is None else _effective(m, today)
    if state != was:
        _patch_state(rec, state, today, request, notes)


def _effective(m: Any, today: date) -> str:
    from mailgov.dated import effective_state

    return effective_state(m, today)


def _patch_aliases(rec: dict[str, Any], attrs: Mapping[str, tuple[str, ...]],
                   want: Mapping[str, tuple[str, ...]], domain: str,
                   alias_domains: tuple[str, ...]) -> None:
    live = set(_lower(attrs.get("mailAlias")))
    wanted = set(_lower(want.get("mailAlias")))
    mail = f"{rec['address']}@{domain}"
    wanted.add(mail)
    extra = live - wanted
    missing = wanted - live
    aliases = [str(a) for a in rec.get("aliases") or []]

    def full(a: str) -> str:
        return a.lower() if "@" in a else f"{a.lower()}@{domain}"

    aliases = [a for a in aliases if full(a) not in missing]
    have = {full(a) for a in aliases}
    copies = {f"{a.split('@')[0]}@{dom}" for a in live if a.endswith("@" + domain)
              for dom in alias_domains}
    for a in sorted(extra):
        if a == mail or a in have or (a in copies and a.split("@")[0] + "@" + domain in live):
            continue
        aliases.append(a.split("@")[0] if a.endswith("@" + domain) else a)
    if aliases:
        rec["aliases"] = aliases
    else:
        rec.pop("aliases", None)


def _patch_state(rec: dict[str, Any], state: str, today: date, request: str | None,
                 notes: list[str]) -> None:
    ref = request or rec.get("request")
    if state != "active" and not ref:
        raise DumpError(_("{address} is {state} in the directory, not in the data: give "
                          "--request REF (the document that records the change)").format(
            address=rec['address'], state=state))
    day = today.isoformat()
    rec.pop("suspended", None)
    rec.pop("cancelled", None)
    if state == "active":
        rec.pop("state", None)
    elif state == "suspended":
        rec["state"] = "suspended"
        rec["suspended"] = {"date": day, "reason": "locked in the directory (mailgov dump)",
                            "request": ref}
    else:
        rec["state"] = "cancelled"
        rec["cancelled"] = {"date": day, "reason": "other", "request": ref}
    notes.append(_("{address}: {state} in the directory (recorded from {day})").format(
        address=rec['address'], state=state, day=day))


def header(what: str, today: date) -> str:
    return (f"yaml-language-server: $schema=../schema/mailboxes.schema.json\n"
            f"{what} on {today.isoformat()} by mailgov. Review it, then commit it as the\n"
            "data file (docs/data-format.md, \"Dump and import\").")


def write(text: str, out: str | None) -> None:
    if out in (None, "-"):
        print(text, end="")
        return
    path = Path(str(out))
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


# --------------------------------------------------------------------------- command


def add_parser(sub: Any) -> None:
    from mailgov import args as arg_types
    from mailgov.cli import DEFAULT_DATA, _add_live_args

    p = sub.add_parser(
        "dump", help="write the live directory in the data format",
        description="Read the live directory (as `mailgov plan` does) and write it as a data "
        "file: the records of --data changed to say what the directory holds, new entries "
        "as new records. Policy, approving documents and dates the directory does not hold "
        "come from --data. The result is validated before it is written; `mailgov plan` "
        "against it plans no change. docs/data-format.md, \"Dump and import\".")
    p.add_argument("--data", default=DEFAULT_DATA,
                   help=f"the data file the directory was loaded from (default {DEFAULT_DATA})")
    _add_live_args(p)
    p.add_argument("--live-json", metavar="FILE",
                   help="dump a saved live state (mailgov dump-live) instead")
    p.add_argument("-o", "--out", default="-", metavar="FILE",
                   help="where to write (default: standard output)")
    p.add_argument("--request", metavar="REF",
                   help="the document recorded for lifecycle changes found in the directory "
                   "(default: the record's own request)")
    p.add_argument("--today", type=arg_types.day, default=None, metavar="YYYY-MM-DD",
                   help="the day the dump is as of (default: today)")
    p.set_defaults(func=cmd_dump)


def cmd_dump(args: Any) -> int:
    import sys

    from mailgov.cli import EXIT_PROBLEMS, CliError, _read_live, _report_problems
    from mailgov.validate import validate

    today = args.today or date.today()
    result = validate(args.data, today=today)
    if not result.ok or result.directory is None:
        _report_problems(result, "text")
        raise CliError(_("{data} has problems; the dump needs a valid data file for what the "
                         "directory does not hold").format(data=args.data), EXIT_PROBLEMS)
    raw = load(args.data).data
    live = _read_live(args, result.directory.organization.base_dn)
    try:
        data, notes = dump(result.directory, raw, live, today=today, request=args.request)
    except DumpError as exc:
        raise CliError(str(exc)) from None
    where = args.out if args.out != "-" else "<dump>"

    def exempt(rec: dict[str, Any]) -> dict[str, Any]:
        ref = args.request or rec.get("request")
        if not ref:
            raise CliError(_("{address}: address outside the naming policy; give --request REF "
                             "for its naming exemption").format(address=rec['address']))
        return {"reason": f"found in the directory by mailgov dump on {today.isoformat()}",
                "request": ref}

    done = finish(data, header("Dump of the live directory", today), today, exempt)
    for n in [*notes, *done.notes]:
        print(_("mailgov: note: {n}").format(n=n), file=sys.stderr)
    if not done.result.ok:
        for line in problems_text(done.result.problems, where):
            print(line)
        raise CliError(ngettext("the directory does not make a valid data file ({count} "
                                "problem); nothing written",
                                "the directory does not make a valid data file ({count} "
                                "problems); nothing written", len(done.result.problems)).format(
            count=len(done.result.problems)),
                       EXIT_PROBLEMS)
    try:
        write(done.text, args.out)
    except OSError as exc:
        raise CliError(_("cannot write {out}: {error}").format(
            out=args.out, error=exc.strerror or exc)) from None
    if args.out != "-":
        print(_("{out}: {units} units, {mailboxes} mailboxes from the directory").format(
            out=args.out, units=len(data['units']),
            mailboxes=len(data['mailboxes'])), file=sys.stderr)
    return 0
