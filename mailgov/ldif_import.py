"""`mailgov import-ldif FILE`: a data file from the LDIF of the directory an agency runs today.

Two kinds of export are understood (docs/data-format.md, "Dump and import"):

* plain OpenLDAP, ``inetOrgPerson`` entries (``uid``, ``cn``, ``mail``, ``title``,
  ``mailAlias``/``mailAlternateAddress``, ``mailForwardingAddress``, ``mailQuota`` in KiB,
  ``pwdAccountLockedTime``, ``mailEnabled``) and ``organizationalUnit`` entries;
* a Zimbra export (``zimbraAccount``): ``zimbraMailDeliveryAddress``, ``zimbraMailAlias``,
  ``zimbraMailForwardingAddress``, ``zimbraPrefMailForwardingAddress``,
  ``zimbraAccountStatus``, ``zimbraMailQuota`` (bytes), ``zimbraIsAdminAccount``,
  ``zimbraCreateTimestamp``; Zimbra's system accounts (``zimbraIsSystemResource``),
  calendar resources, distribution lists and alias entries are left out (their addresses
  are on the accounts that own them).

Units come from the entry's ``ou`` attribute, else from the nearest ``ou=`` in its DN that is
not a container (people, users, accounts …); ``organizationalUnit`` entries give a unit its
name (``description``) and its parent (the DN's nesting). States: Zimbra ``active``,
``lockout`` (wrong passwords; ends by itself) and ``maintenance`` → active, ``locked`` and
``pending`` → suspended, ``closed`` → cancelled; plain entries: ``mailEnabled: FALSE`` →
cancelled, an administrator lock (``pwdAccountLockedTime: 000001010000Z``) or
``nsAccountLock: true`` → suspended. Addresses the naming policy would not give keep their
address with a naming exemption that names the file and the entry's DN.

Refused with a clear message (nothing written): entries outside any unit (unless
``--unit-for-orphans``), addresses, aliases and forwards the data format cannot hold:
another domain than ``--domain`` (unless ``--skip-other-domains``, which leaves them out
and says which), a forward outside the policy's allowed domains.

The LDIF parser is the ``ldif`` package (pure Python, RFC 2849; python-ldap's ``ldif``
needs the C client libraries, ldap3 only writes LDIF); see pyproject.toml.
"""

from __future__ import annotations

import copy
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from mailgov.i18n import _, ngettext

#: The policy of a data file made from nothing: the sample data's (docs/data-format.md).
DEFAULT_POLICY: dict[str, Any] = {
    "naming": {
        "personal": {"templates": ["{initials}{given}"],
                     "clash": {"strategy": "sequence", "start": 2, "separator": ""}},
        "unit": {"template": "{abbr}", "sub_unit_template": "{abbr}.{parent}"},
    },
    "quotas": {"personal": {"default": 2048, "min": 500, "max": 10240},
               "unit": {"default": 10240, "min": 2048, "max": 51200},
               "affiliate": {"default": 1024, "min": 500, "max": 2048}},
    "message_size_mb": 25,
    "blocked_attachments": ["exe", "com", "dll", "bat", "cmd", "scr", "pif", "vbs", "js", "msi"],
    "password": {
        "users": {"min_length": 8, "required_classes": ["upper", "lower", "digit", "special"],
                  "history": 3, "max_age_days": 180, "lockout_failures": 12,
                  "first_login_change_days": 5, "forbid_personal_data": True},
        "administrators": {"min_length": 10,
                           "required_classes": ["upper", "lower", "digit", "special"],
                           "history": 5, "max_age_days": 90, "lockout_failures": 5,
                           "first_login_change_days": 1, "forbid_personal_data": True,
                           "lockout_duration_minutes": 30},
    },
    "inactivity_lock_days": 90,
    "retention": {"staff_days": 180, "heads_days": 365},
    "outbound_rate_limit": {"messages": 250, "window_minutes": 10, "action": "lock"},
    "forwarding": {"allowed_domains": ["gov.vn"]},
    "safety": {"max_disable_share": 0.05},
    "protected": ["postmaster", "abuse"],
    "logs_retention_days": 180,
    "backups": {"schedule": "weekly"},
}

# ou= values that hold entries rather than name a unit.
CONTAINERS = frozenset({"people", "users", "user", "accounts", "account", "groups", "group",
                        "units", "unit", "staff", "nhanvien", "canbo", "mail", "zimbra",
                        "services", "policies", "contacts", "aliases"})
ZIMBRA_STATES = {"active": "active", "lockout": "active", "maintenance": "active",
                 "locked": "suspended", "pending": "suspended", "closed": "cancelled"}
_UNIT_ID = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,30}[a-z0-9])?$")
_LOCAL = re.compile(r"^(?!.*\.\.)[a-z0-9_](?:[a-z0-9._-]{0,62}[a-z0-9_])?$")


class LdifImportError(Exception):
    """The LDIF cannot be turned into a data file; ``lines`` say why, one per problem."""

    def __init__(self, message: str, lines: list[str] | None = None) -> None:
        super().__init__(message)
        self.lines = lines or []


@dataclass
class Options:
    request: str
    domain: str | None = None
    base_dn: str | None = None
    org_name: str | None = None
    it_unit: str | None = None
    unit_for_orphans: str | None = None
    skip_other_domains: bool = False
    today: date = field(default_factory=date.today)
    policy: Mapping[str, Any] | None = None


Entry = tuple[str, dict[str, list[str]]]


# --------------------------------------------------------------------------- parsing


def parse(path: str | Path) -> list[Entry]:
    """The entries of an LDIF file, attribute names in lower case. Change records and
    malformed files are refused (:class:`LdifImportError`, with the parser's reason)."""
    import ldif

    try:
        with open(path, "rb") as fh:
            head = fh.read(3)
            fh.seek(3 if head == b"\xef\xbb\xbf" else 0)
            parser = ldif.LDIFParser(fh, strict=True)
            out: list[Entry] = []
            for dn, attrs in parser.parse():
                if dn is None:
                    continue
                entry: dict[str, list[str]] = {}
                for k, vs in attrs.items():
                    entry.setdefault(k.lower(), []).extend(
                        v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                        for v in vs)
                out.append((dn, entry))
    except OSError as exc:
        raise LdifImportError(_("cannot read {path}: {error}").format(
            path=path, error=exc.strerror or exc)) from None
    except ValueError as exc:  # the parser's errors (bad line, bad base64, a change record)
        raise LdifImportError(_("{path}: not a usable LDIF file: {error}").format(
            path=path, error=exc)) from None
    if not out:
        raise LdifImportError(_("{path}: no entries").format(path=path))
    return out


# --------------------------------------------------------------------------- mapping


def _classes(e: dict[str, list[str]]) -> set[str]:
    return {c.lower() for c in e.get("objectclass", [])}


def _one(e: dict[str, list[str]], *names: str) -> str | None:
    for n in names:
        if e.get(n):
            return e[n][0].strip()
    return None


def _rdns(dn: str) -> list[tuple[str, str]]:
    out = []
    for part in re.split(r"(?<!\\),", dn):
        if "=" in part:
            k, v = part.split("=", 1)
            out.append((k.strip().lower(), v.strip()))
    return out


def unit_id(text: str) -> str:
    """An ou value as a unit id: ASCII, lower case, spaces and other signs as '-'."""
    t = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    t = "".join(c for c in t if not unicodedata.combining(c)).lower()
    t = re.sub(r"[^a-z0-9_-]+", "-", t).strip("-_")
    return t[:32].strip("-_")


def _is_person(e: dict[str, list[str]]) -> bool:
    cls = _classes(e)
    if "zimbraaccount" in cls:
        return (_one(e, "zimbraissystemresource") or "").upper() != "TRUE" \
            and "zimbracalendarresource" not in cls
    return bool(cls & {"inetorgperson", "person", "organizationalperson"}) \
        and bool(_one(e, "mail", "uid"))


def _is_unit(e: dict[str, list[str]], dn: str) -> bool:
    rdns = _rdns(dn)
    return "organizationalunit" in _classes(e) and bool(rdns) and rdns[0][0] == "ou" \
        and rdns[0][1].lower() not in CONTAINERS


def _ts_date(value: str | None) -> str | None:
    if value and re.match(r"^[0-9]{8}", value):
        try:
            return date(int(value[:4]), int(value[4:6]), int(value[6:8])).isoformat()
        except ValueError:
            return None
    return None


def _domain_of(addr: str) -> str:
    return addr.rsplit("@", 1)[-1].lower() if "@" in addr else ""


def _allowed_forward(addr: str, allowed: list[str]) -> bool:
    dom = _domain_of(addr)
    return any(dom == a or dom.endswith("." + a) for a in allowed)


def convert(entries: list[Entry], source: str, opts: Options) -> tuple[dict[str, Any],
                                                                        list[str]]:
    """The data (not yet checked) and notes. Raises :class:`LdifImportError` with every
    entry that cannot be mapped (outside any unit, at another domain …)."""
    policy = copy.deepcopy(dict(opts.policy or DEFAULT_POLICY))
    allowed_fwd = [str(a).lower() for a in policy["forwarding"]["allowed_domains"]]
    people = [(dn, e) for dn, e in entries if _is_person(e)]
    if not people:
        raise LdifImportError(_("{source}: no person entries (inetOrgPerson or "
                                "zimbraAccount)").format(
            source=source))
    primary = {dn: (_one(e, "zimbramaildeliveryaddress", "mail") or "").lower()
               for dn, e in people}
    domain = (opts.domain or "").lower() or Counter(
        _domain_of(a) for a in primary.values() if "@" in a).most_common(1)[0][0]
    base_dn = opts.base_dn or ",".join(f"dc={p}" for p in domain.split("."))
    errors: list[str] = []
    notes: list[str] = []

    # ---- units: organizationalUnit entries, then ou values met on people
    units: dict[str, dict[str, Any]] = {}
    dn_unit: dict[str, str] = {}  # normalised DN of a unit entry -> unit id
    for dn, e in entries:
        if not _is_unit(e, dn):
            continue
        rdns = _rdns(dn)
        uid = unit_id(rdns[0][1])
        if not _UNIT_ID.match(uid or "-"):
            errors.append(_("{dn}: the unit name {name!r} gives no usable unit id").format(
                dn=dn, name=rdns[0][1]))
            continue
        parent = next((unit_id(v) for k, v in rdns[1:] if k == "ou"
                       and v.lower() not in CONTAINERS), None)
        see = _one(e, "seealso")  # a flat ou=units tree (mailgov's own) names the parent
        if parent is None and see and _rdns(see) and _rdns(see)[0][0] == "ou":
            parent = unit_id(_rdns(see)[0][1])
        if uid in units:  # the same abbreviation under two parents: vp under tcmt and tcqldd
            uid, abbr = f"{uid}-{parent}"[:32], uid
        else:
            abbr = None
        rec: dict[str, Any] = {"id": uid}
        if abbr:
            rec["abbr"] = abbr
        rec["name"] = _one(e, "description") or rdns[0][1]
        if parent:
            rec["parent"] = parent
        quota = _quota_mb(e, False)  # a unit mailbox's mailQuota (postfix-book, KiB)
        uq = policy["quotas"]["unit"]
        if quota is not None and quota != uq["default"] and uq["min"] <= quota <= uq["max"]:
            rec["mailbox"] = {"quota_mb": quota}
        units[uid] = rec
        dn_unit[",".join(f"{k}={v.lower()}" for k, v in rdns)] = uid

    def unit_of(dn: str, e: dict[str, list[str]]) -> str | None:
        rdns = _rdns(dn)
        for i, (k, _v) in enumerate(rdns[1:], 1):  # the nearest unit entry above
            key = ",".join(f"{a}={b.lower()}" for a, b in rdns[i:])
            if k == "ou" and key in dn_unit:
                return dn_unit[key]
        ou = _one(e, "ou")
        if ou and unit_id(ou) and ou.lower() not in CONTAINERS:
            uid = unit_id(ou)
            units.setdefault(uid, {"id": uid, "name": ou})
            return uid
        for k, v in rdns[1:]:
            if k == "ou" and v.lower() not in CONTAINERS and unit_id(v):
                uid = unit_id(v)
                units.setdefault(uid, {"id": uid, "name": v})
                return uid
        return opts.unit_for_orphans

    # ---- people
    boxes: list[dict[str, Any]] = []
    day = opts.today.isoformat()
    used_ids: set[int] = set()
    pending_ids: list[dict[str, Any]] = []
    for dn, e in people:
        cls = _classes(e)
        zimbra = "zimbraaccount" in cls
        addr = primary[dn] or ""
        if "@" not in addr:
            uid_attr = _one(e, "uid")
            addr = f"{uid_attr.lower()}@{domain}" if uid_attr else ""
        local = addr.split("@", 1)[0]
        if _domain_of(addr) != domain:
            msg = _("{dn}: address {address} is not at {domain}").format(
                dn=dn, address=addr, domain=domain)
            if opts.skip_other_domains:
                notes.append(_("{msg}; left out (--skip-other-domains)").format(msg=msg))
                continue
            errors.append(_("{msg} (import each domain on its own with --domain, or give "
                            "--skip-other-domains)").format(msg=msg))
            continue
        if not _LOCAL.match(local):
            errors.append(_("{dn}: {local!r} is not a valid local part (a-z, 0-9, . - _)").format(
                dn=dn, local=local))
            continue
        unit = unit_of(dn, e)
        if unit is None:
            errors.append(_("{dn}: outside any unit (no ou attribute, no ou= in its DN); give "
                            "--unit-for-orphans UNIT or fix the export").format(dn=dn))
            continue
        rec: dict[str, Any] = {"address": local}
        ident = _one(e, "mailuidnumber", "uidnumber")
        if ident and ident.isdigit() and int(ident) > 0 and int(ident) not in used_ids:
            rec["id"] = int(ident)
            used_ids.add(int(ident))
        else:
            pending_ids.append(rec)
        name = _one(e, "displayname", "cn") or " ".join(
            x for x in (_one(e, "sn"), _one(e, "givenname")) if x) or local
        rec["name"] = " ".join(unicodedata.normalize("NFC", name).split())
        rec["unit"] = unit
        if zimbra and (_one(e, "zimbraisadminaccount") or "").upper() == "TRUE":
            rec["role"] = "admin"
        # The postfix-book/mailgov layout's own kind, role and sponsor, when they are ours.
        kind = (_one(e, "employeetype") or "").lower()
        sponsor = _one(e, "seealso")
        if not zimbra and kind == "affiliate" and sponsor and _rdns(sponsor)[0][0] == "ou":
            rec["kind"] = "affiliate"
            rec["sponsor"] = unit_id(_rdns(sponsor)[0][1])
        role = (_one(e, "businesscategory") or "").lower()
        if not zimbra and role in ("head", "admin"):
            rec["role"] = role
        title = _one(e, "title")
        if title:
            rec["title"] = " ".join(title.split())
        created = _ts_date(_one(e, "zimbracreatetimestamp", "createtimestamp"))
        if created and created <= day:
            rec["created"] = created
        rec["request"] = opts.request
        quota = _quota_mb(e, zimbra)
        q = policy["quotas"][rec.get("kind", "personal")]
        if quota is not None and quota != q["default"]:
            if q["min"] <= quota <= q["max"]:
                rec["quota_mb"] = quota
            else:
                notes.append(_("{local}: quota {quota} MiB outside the policy's {min}..{max}; "
                               "the default applies").format(
                    local=local, quota=quota, min=q['min'], max=q['max']))
        aliases = []
        alias_attrs = ("zimbramailalias",) if zimbra else ("mailalias", "mailalternateaddress")
        for a in (v.strip().lower() for n in alias_attrs for v in e.get(n, [])):
            if a == addr or (a.split("@", 1)[0] == local and _domain_of(a) == domain):
                continue
            if _domain_of(a) not in ("", domain):
                msg = _("{dn}: alias {alias} is not at {domain}").format(
                    dn=dn, alias=a, domain=domain)
                if opts.skip_other_domains:
                    notes.append(_("{msg}; left out (--skip-other-domains)").format(msg=msg))
                    continue
                errors.append(_("{msg} (the data format holds aliases at the domain only; give "
                                "--skip-other-domains to leave it out)").format(msg=msg))
                continue
            a_local = a.split("@", 1)[0]
            if not _LOCAL.match(a_local):
                errors.append(_("{dn}: alias {alias!r} is not a valid local part").format(
                    dn=dn, alias=a))
                continue
            if a_local not in aliases:
                aliases.append(a_local)
        if aliases:
            rec["aliases"] = aliases
        fwd_attrs = (("zimbramailforwardingaddress", "zimbraprefmailforwardingaddress")
                     if zimbra else ("mailforwardingaddress",))
        forwards: list[str] = []
        for f in (v.strip().lower() for n in fwd_attrs for v in e.get(n, [])):
            if f in forwards or f == addr:
                continue
            if not _allowed_forward(f, allowed_fwd):
                msg = (_("{dn}: forwarding to {target} is outside the policy's allowed domains "
                         "({allowed})").format(dn=dn, target=f, allowed=', '.join(allowed_fwd)))
                if opts.skip_other_domains:
                    notes.append(_("{msg}; left out (--skip-other-domains)").format(msg=msg))
                    continue
                errors.append(_("{msg}; give --skip-other-domains to leave it out").format(msg=msg))
                continue
            forwards.append(f)
        if forwards:
            rec["forward_to"] = forwards
        state = _state(e, zimbra)
        if state == "suspended":
            rec["state"] = "suspended"
            why = (f"Zimbra: {(_one(e, 'zimbraaccountstatus') or '').lower()}" if zimbra
                   else "locked in the old directory")
            rec["suspended"] = {"date": day, "reason": why, "request": opts.request}
        elif state == "cancelled":
            rec["state"] = "cancelled"
            rec["cancelled"] = {"date": day, "reason": "other", "request": opts.request}
        boxes.append(rec)
    if errors:
        raise LdifImportError(ngettext("{source}: {count} entry cannot be imported; nothing "
                                       "written",
                                       "{source}: {count} entries cannot be imported; nothing "
                                       "written", len(errors)).format(
            source=source, count=len(errors)), errors)
    next_id = max(used_ids or {0}) + 1
    for rec in pending_ids:
        rec["id"] = next_id
        next_id += 1
        rec_keys = list(rec)
        # id right after address, as in the data format's examples
        ordered = {"address": rec["address"], "id": rec["id"]}
        ordered.update({k: rec[k] for k in rec_keys if k not in ordered})
        rec.clear()
        rec.update(ordered)

    # A unit whose mailbox address a person holds: that account was the unit mailbox.
    unit_locals = {u: (u if not units[u].get("abbr") else units[u]["abbr"]) for u in units}
    taken = {v: k for k, v in unit_locals.items() if not units[k].get("parent")}
    kept = []
    for rec in boxes:
        if rec["address"] in taken:
            notes.append(_("{address}: the unit mailbox of {unit} (the data makes it from the "
                           "unit); not a personal record").format(
                address=rec['address'], unit=taken[rec['address']]))
            continue
        kept.append(rec)
    for u in units.values():
        if u.get("parent") and u["parent"] not in units:
            notes.append(_("unit {id}: parent {parent} not in the LDIF; made top-level").format(
                id=u['id'], parent=u['parent']))
            u.pop("parent")
    order = {u: i for i, u in enumerate(units)}
    kept.sort(key=lambda r: (order[r["unit"]], r["address"]))
    it_unit = opts.it_unit or next(iter(units))
    if opts.it_unit is None:
        notes.append(_("organization.it_unit is {it_unit} (the first unit): check it").format(
            it_unit=it_unit))
    present = {r["address"] for r in kept} | {a for r in kept for a in r.get("aliases", [])}
    protected = [x for x in policy.get("protected", []) if x in present]
    missing = [x for x in policy.get("protected", []) if x not in present]
    policy["protected"] = protected
    if missing:
        notes.append(_("{missing}: not in the LDIF, so not in policy.protected; every mail "
                       "domain needs postmaster@ and abuse@ (RFC 5321, RFC 2142): add them as "
                       "aliases of an IT mailbox and to policy.protected").format(
            missing=', '.join(missing)))
    org_name = opts.org_name or next((_one(e, "o") for _dn, e in entries if _one(e, "o")),
                                     None) or domain
    data = {
        "version": 1,
        "organization": {"name": org_name, "domain": domain, "base_dn": base_dn,
                         "it_unit": it_unit},
        "policy": policy,
        "units": list(units.values()),
        "mailboxes": kept,
    }
    return data, notes


def _quota_mb(e: dict[str, list[str]], zimbra: bool) -> int | None:
    raw = _one(e, "zimbramailquota" if zimbra else "mailquota")
    if not raw or not raw.isdigit() or int(raw) == 0:
        return None  # Zimbra's 0 = no limit: the policy's default
    return int(raw) // (1024 * 1024) if zimbra else int(raw) // 1024


def _state(e: dict[str, list[str]], zimbra: bool) -> str:
    if zimbra:
        return ZIMBRA_STATES.get((_one(e, "zimbraaccountstatus") or "active").lower(),
                                 "active")
    if (_one(e, "mailenabled") or "TRUE").upper() == "FALSE":
        return "cancelled"
    if "000001010000Z" in e.get("pwdaccountlockedtime", []) or \
            (_one(e, "nsaccountlock") or "").lower() == "true":
        return "suspended"
    return "active"


# --------------------------------------------------------------------------- command


def add_parser(sub: Any) -> None:
    from mailgov import args as arg_types

    p = sub.add_parser(
        "import-ldif", help="make a data file from an existing directory's LDIF export",
        description="Read the LDIF export of the directory in use today (plain OpenLDAP "
        "inetOrgPerson entries or a Zimbra export) and write a data file: units from the "
        "ou attributes and DN structure, states from the account status, aliases and "
        "forwards; addresses outside the naming policy get a naming exemption naming the "
        "file and the entry. The result is validated before it is written; nothing is "
        "written when an entry cannot be mapped. docs/data-format.md, \"Dump and import\".")
    p.add_argument("file", help="the LDIF file (slapcat, ldapsearch -LLL, zmprov/Zimbra)")
    p.add_argument("--request", required=True, metavar="REF",
                   help="the document that approves the migration, e.g. 15/QĐ-CNTT (on "
                   "every record and exemption)")
    p.add_argument("-o", "--out", default="-", metavar="FILE",
                   help="where to write (default: standard output)")
    p.add_argument("--domain", help="the mail domain (default: the most common one)")
    p.add_argument("--base-dn", metavar="DN", help="the directory suffix (default: from the "
                   "domain, dc=…)")
    p.add_argument("--org-name", metavar="NAME", help="the organisation's official name")
    p.add_argument("--it-unit", metavar="UNIT", help="the unit that runs the system")
    p.add_argument("--unit-for-orphans", metavar="UNIT",
                   help="the unit of entries outside any unit (default: refuse them)")
    p.add_argument("--skip-other-domains", action="store_true",
                   help="leave out addresses, aliases and forwards the data cannot hold "
                   "(another domain; default: refuse)")
    p.add_argument("--policy-from", metavar="DATA",
                   help="take the policy from this data file (default: the sample policy)")
    p.add_argument("--today", type=arg_types.day, default=None, metavar="YYYY-MM-DD")
    p.set_defaults(func=cmd_import_ldif)


def cmd_import_ldif(args: Any) -> int:
    import sys

    from mailgov.cli import EXIT_PROBLEMS, CliError
    from mailgov.dump import finish, header, problems_text, write
    from mailgov.loader import LoadError, load

    policy = None
    if args.policy_from:
        try:
            policy = load(args.policy_from).data.get("policy")
        except LoadError as exc:
            raise CliError(_("--policy-from {policy_from}: {reason}").format(
                policy_from=args.policy_from,
                reason=exc.problems[0].message if exc.problems else exc)) from None
    today = args.today or date.today()
    opts = Options(request=args.request, domain=args.domain, base_dn=args.base_dn,
                   org_name=args.org_name, it_unit=args.it_unit,
                   unit_for_orphans=args.unit_for_orphans,
                   skip_other_domains=args.skip_other_domains, today=today, policy=policy)
    try:
        entries = parse(args.file)
        data, notes = convert(entries, args.file, opts)
    except LdifImportError as exc:
        for line in exc.lines:
            print(line)
        raise CliError(str(exc), EXIT_PROBLEMS) from None
    by_address = {}
    for dn, e in entries:
        if _is_person(e):
            addr = (_one(e, "zimbramaildeliveryaddress", "mail") or "").lower()
            by_address[addr.split("@", 1)[0] or (_one(e, "uid") or "").lower()] = dn

    def exempt(rec: dict[str, Any]) -> dict[str, Any]:
        where = by_address.get(rec["address"], rec["address"])
        return {"reason": f"imported from {Path(args.file).name}: {where}",
                "request": args.request}

    done = finish(data, header(f"Imported from {Path(args.file).name}", today), today, exempt)
    for n in [*notes, *done.notes]:
        print(_("mailgov: note: {n}").format(n=n), file=sys.stderr)
    if not done.result.ok:
        for line in problems_text(done.result.problems, args.out if args.out != "-"
                                  else "<import>"):
            print(line)
        raise CliError(ngettext("the import does not validate ({count} problem); nothing written",
                                "the import does not validate ({count} problems); nothing "
                                "written", len(done.result.problems)).format(
            count=len(done.result.problems)), EXIT_PROBLEMS)
    try:
        write(done.text, args.out)
    except OSError as exc:
        raise CliError(_("cannot write {out}: {error}").format(
            out=args.out, error=exc.strerror or exc)) from None
    if args.out != "-":
        print(_("{out}: {units} units, {mailboxes} mailboxes from {file}").format(
            out=args.out, units=len(data['units']), mailboxes=len(data['mailboxes']),
            file=args.file), file=sys.stderr)
    return 0
