"""Validate the data file: shape first (schema), then meaning. Collects ALL problems.

Fast path: a column-at-a-time check (mailgov/batchschema.py) answers "the shape is fine"
for a valid file. When it cannot show that, jsonschema's iter_errors runs over everything but
the records, and each unit and mailbox goes through a compiled fastjsonschema check (no error
details) first: only the records that fail it are checked again by jsonschema, to report
every shape problem with its path. Meaning checks run only on a well-shaped file (they would
otherwise have to guess at missing keys); fix the shape problems first and run again.

Rule ids are catalogued in mailgov/problems.py and documented in docs/rules.md.
"""

from __future__ import annotations

import copy
import difflib
import gc
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fastjsonschema

from mailgov.batchschema import BatchCheck
from mailgov.directory import former_unit_locals
from mailgov.i18n import N_, _, ngettext
from mailgov.loader import (
    INVISIBLE,
    MAX_REPORTED,
    NON_CHARACTERS,
    Loaded,
    LoadError,
    Locator,
    char_name,
    load,
)
from mailgov.model import AliasDomain, Directory, Mailbox, Reserved, Unit, build, next_free_id
from mailgov.naming import NamingError, NamingPolicy, Person, list_local, unit_locals
from mailgov.problems import Problem, json_path

if TYPE_CHECKING:  # jsonschema is imported only to report shape problems (below)
    import jsonschema

# Installed: the copy the wheel carries (pyproject.toml maps schema/ to mailgov/schema/);
# a checkout (editable install) reads the repository's schema/.
_SCHEMA_DIRS = (Path(__file__).resolve().parent / "schema",
                Path(__file__).resolve().parent.parent / "schema")
SCHEMA_PATH = next((d / "mailboxes.schema.json" for d in _SCHEMA_DIRS
                    if (d / "mailboxes.schema.json").is_file()),
                   _SCHEMA_DIRS[-1] / "mailboxes.schema.json")

PathT = tuple[str | int, ...]
# Who holds an address, for MG201/MG219/MG221: (message, id or index[, name]); made into text
# only when a problem names it (50,000 f-strings per run otherwise).
Who = tuple[Any, ...]


def _who(who: Who) -> str:
    msg, *args = who
    if len(args) == 1:
        return str(_(msg).format(id=args[0], name=args[0]))
    return str(_(msg).format(index=args[0], name=args[1]))


@dataclass
class Result:
    """Outcome of :func:`validate`: problems sorted by line, and the model when valid."""

    path: str
    problems: list[Problem] = field(default_factory=list)
    directory: Directory | None = None
    # The file's bytes only (not the parsed data: 50,000 records stay in memory once).
    source: bytes | None = field(default=None, repr=False)
    #: What the meaning checks computed once (valid files only), for the commands that answer
    #: from the data (address, the edit commands): the naming policy and unit id -> the local
    #: part of its unit mailbox. Never computed a second time per run.
    naming: NamingPolicy | None = field(default=None, repr=False)
    unit_locals: dict[str, str] = field(default_factory=dict, repr=False)
    #: The data as read, when it came from several files (per-unit includes): positions
    #: and digests then cover every file.
    loaded: Loaded | None = field(default=None, repr=False)
    #: Problems found past the ``max_problems`` shown (at least this many: a record whose
    #: shape is wrong counts once, however many fields are).
    not_shown: int = 0

    def locate(self, where: tuple[str | int, ...]) -> str:
        """FILE:LINE:COL of a data path (for the plan's refusals about records)."""
        if self.loaded is not None:
            file, line, col = self.loaded.where(where)
            return f"{file}:{line}:{col}"
        if self.source is None:
            return self.path
        line, col = Locator(self.source).locate(where)
        return f"{self.path}:{line}:{col}"

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> dict[str, Any]:
        """Counts for the one-line report (only meaningful when ``ok``)."""
        d = self.directory
        if d is None:
            return {}
        return {
            "units": len(d.units),
            "mailboxes": len(d.mailboxes),
            "by_kind": dict(sorted(Counter(m.kind for m in d.mailboxes).items())),
            "by_state": dict(sorted(Counter(m.state for m in d.mailboxes).items())),
        }


# --------------------------------------------------------------------------- schema


@cache
def _schema_text() -> str:
    return SCHEMA_PATH.read_text(encoding="utf-8")


def load_schema() -> dict[str, Any]:
    """A fresh copy of the schema (some libraries rewrite schemas in place)."""
    schema: dict[str, Any] = json.loads(_schema_text())
    return schema


@cache
def _batch_check() -> BatchCheck:
    # A column at a time (mailgov/batchschema.py): answers "valid" for a valid file in a
    # third of fastjsonschema's time, or "not shown" (then record by record: _shape_problems).
    return BatchCheck(load_schema())


def _no_fetch(uri: str) -> Any:
    raise ValueError(f"schema reference {uri} is not in the schema file; nothing is fetched")


# fastjsonschema follows JSON Schema: 2048.0 "is" an integer. The data file means a whole
# number where it says integer (a quota of 2048.0 would be written as 2097152.0), so the
# float alternative is cut out of the generated code (the full check agrees: _STRICT_TYPES).
_FLOAT_AS_INT = re.compile(r" and not \(isinstance\((\w+), float\) and \1\.is_integer\(\)\)")


def _compile(schema: dict[str, Any]) -> Callable[[Any], Any]:
    # fastjsonschema rewrites `$ref`s in place: give it a private copy of the schema, and
    # make sure an unresolvable reference can never turn into a network request.
    code = fastjsonschema.compile_to_code(copy.deepcopy(schema), handlers={
        "http": _no_fetch, "https": _no_fetch}, use_default=False, detailed_exceptions=False)
    code, n = _FLOAT_AS_INT.subn("", code)
    if n == 0 and '"integer"' in json.dumps(schema):  # fastjsonschema changed: fail loudly
        raise RuntimeError("cannot make fastjsonschema's integer check strict")
    namespace: dict[str, Any] = {}
    exec(compile(code, "<mailgov schema>", "exec"), namespace)  # our own schema's code
    check: Callable[[Any], Any] = namespace["validate"]
    return check


def _strict_integer(_checker: Any, value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Any:
    """``pattern`` anchored at the true end: Python's ``$`` also matches before a final
    newline ("ab\\n" would pass ``^ab$``); JSON Schema's (ECMA-262) does not."""
    if isinstance(instance, str) and not _end_anchored(pattern).search(instance):
        from jsonschema import ValidationError  # loaded: jsonschema is calling us
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@cache
def _end_anchored(pattern: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"(?<!\\)\$", r"\\Z", pattern))


def _unique_items(validator: Any, unique: bool, instance: Any, schema: Any) -> Any:
    """uniqueItems in linear time (jsonschema's falls back to comparing every pair)."""
    if unique and validator.is_type(instance, "array") and _repeated(instance):
        from jsonschema import ValidationError  # loaded: jsonschema is calling us
        yield ValidationError(f"{_short(instance)} has non-unique elements")


def _canonical(item: Any) -> str:
    # true and 1 are different items in JSON Schema; json.dumps keeps them apart.
    return json.dumps(item, sort_keys=True, ensure_ascii=False, default=repr)


def _repeated(items: list[Any]) -> list[str]:
    """The items (as JSON) that occur more than once, in sorted order."""
    if set(map(type, items)) <= {str}:  # texts only (aliases, lists): counted at C speed
        return sorted(_canonical(k) for k, n in Counter(items).items() if n > 1)
    # Texts are counted as themselves (C speed), everything else by its JSON; a tuple key
    # never equals a text key, so "1" and 1 stay apart. JSON is made for repeated ones only.
    counts = Counter(x if x.__class__ is str else ("", _canonical(x)) for x in items)
    return sorted(_canonical(k) if k.__class__ is str else k[1]
                  for k, n in counts.items() if n > 1)


def _items(validator: Any, items: Any, instance: Any, schema: Any) -> Any:
    """``items`` checking each distinct text or number once: a list of a million repeated
    items is one descent, not a million (a scalar's errors do not depend on its place; a
    repeated valid one has none, an invalid one is checked again to report it where it is)."""
    if items is False or "prefixItems" in schema or not validator.is_type(instance, "array"):
        yield from base_items()(validator, items, instance, schema)
        return
    if instance and set(map(type, instance)) == {str}:
        # Texts only (the usual list): each distinct text is checked once at C-speed loops;
        # the bad ones are checked again where they are, in order.
        bad = {text for text in dict.fromkeys(instance)
               if next(iter(validator.descend(instance=text, schema=items)), None) is not None}
        if bad:
            for index, item in enumerate(instance):
                if item in bad:
                    yield from validator.descend(instance=item, schema=items, path=index)
        return
    valid: set[tuple[type, Any]] = set()
    for index, item in enumerate(instance):
        key = (item.__class__, item) if item.__class__ in (str, int) else None
        if key is not None and key in valid:
            continue
        errors = list(validator.descend(instance=item, schema=items, path=index))
        if not errors and key is not None:
            valid.add(key)
        yield from errors


@cache
def base_items() -> Callable[..., Any]:
    """jsonschema's own ``items`` (what :func:`_items` falls back to)."""
    import jsonschema
    items: Callable[..., Any] = jsonschema.Draft202012Validator.VALIDATORS["items"]
    return items


@cache
def strict_validator() -> type[jsonschema.protocols.Validator]:
    """The full checker behind every reported shape problem: draft 2020-12 with patterns
    anchored at the true end, linear uniqueItems and items, and strict integers. Made on
    first use: the valid file never needs it, and importing jsonschema was 90 ms of the start
    of every command."""
    import jsonschema
    strict: type[jsonschema.protocols.Validator] = jsonschema.validators.extend(
        jsonschema.Draft202012Validator,
        validators={"pattern": _pattern, "uniqueItems": _unique_items, "items": _items},
        type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
            "integer", _strict_integer))
    return strict


def _show(value: Any) -> str:
    if value is None:
        return _("nothing (empty value)")
    if isinstance(value, bool):
        return _("{value} (a yes/no value)").format(value=str(value).lower())
    if isinstance(value, dict):
        return _("a mapping")
    if isinstance(value, list):
        return _("a list")
    if isinstance(value, str):
        return _("text {value}").format(value=_short(value))
    return f"{type(value).__name__} {_short(value)}"


#: Longest value quoted in a message: a hostile file's values can be megabytes.
MAX_SHOWN = 200


def _short(value: Any) -> str:
    shown = repr(value) if not isinstance(value, list | dict) else _canonical(value)
    if len(shown) <= MAX_SHOWN:
        return shown
    return _("{start}… ({n:,} characters)").format(start=shown[:MAX_SHOWN], n=len(shown))


_TYPE_WORDS = {  # translated where used
    "string": N_("text"),
    "integer": N_("a whole number"),
    "number": N_("a number"),
    "object": N_("a mapping"),
    "array": N_("a list"),
    "boolean": N_("true or false"),
}


_LISTS = {"units": "unit", "mailboxes": "mailbox"}  # top-level list -> $defs item schema


@cache
def _item_checks() -> dict[str, tuple[Callable[[Any], Any], jsonschema.protocols.Validator]]:
    """Per-item (fast, full) validators: only the items the fast one refuses are checked by
    the full one. The schema keeps to keywords draft-07 and 2020-12 share, so fastjsonschema's
    draft-07 code generator and jsonschema's 2020-12 validator agree on what is valid."""
    schema = load_schema()
    out = {}
    for key, name in _LISTS.items():
        item = {"$defs": schema["$defs"], "$ref": f"#/$defs/{name}"}
        fast = _compile(item)
        out[key] = (fast, strict_validator()(item))
    return out


def _schema_errors(data: Any, wanted: Callable[[], bool] = lambda: True,
                   ) -> Iterable[tuple[PathT, jsonschema.ValidationError]]:
    """jsonschema errors with absolute paths, without running it over 50k valid items.
    ``wanted()`` is asked for each item the fast check refuses: when false, jsonschema's
    full report of it (about 1 ms) is not written."""
    schema = load_schema()
    # The skeleton: everything but the items of the big lists (those are checked below).
    skeleton = dict(schema, properties=dict(schema["properties"]))
    for key in _LISTS:
        skeleton["properties"][key] = {k: v for k, v in schema["properties"][key].items()
                                       if k != "items"}
    for e in strict_validator()(skeleton).iter_errors(data):
        yield tuple(e.absolute_path), e
    checks = _item_checks()
    for key, (fast, full) in checks.items():
        items = data.get(key) if isinstance(data, dict) else None
        if not isinstance(items, list):
            continue
        for i, item in enumerate(items):
            try:
                fast(item)
                continue
            except fastjsonschema.JsonSchemaException:
                pass
            if not wanted():
                continue
            for e in full.iter_errors(item):
                yield (key, i, *e.absolute_path), e


def _full(max_problems: int, shown: int) -> bool:
    """Are the problems shown as many as one run shows (``max_problems``; 0: no limit)?"""
    return 0 < max_problems <= shown


def _shape_problems(loaded: Loaded, max_problems: int = 0) -> tuple[list[Problem], int]:
    """The shape problems, at most about ``max_problems`` (0: all; a record's problems are
    all shown or none), and how many records with problems were not shown."""
    seen: set[tuple[str, PathT, str]] = set()
    out: list[Problem] = []
    free_id: list[int] = []  # next_free_id() once, not once per record without an id

    def next_id() -> int:
        if not free_id:
            free_id.append(next_free_id(loaded.data))
        return free_id[0]

    def add(rule: str, path: PathT, message: str) -> None:
        if (rule, path, message) not in seen:
            seen.add((rule, path, message))
            out.append(loaded.problem(rule, message, path))

    not_shown = 0

    def wanted() -> bool:  # a broken record: reported, or counted once the shown are full
        nonlocal not_shown
        if _full(max_problems, len(out)):
            not_shown += 1
            return False
        return True

    for path, e in _schema_errors(loaded.data, wanted):
        where = json_path(path)
        kind = e.validator
        schema = e.schema if isinstance(e.schema, dict) else {}
        if kind == "required":
            for name in e.validator_value:
                if isinstance(e.instance, dict) and name not in e.instance:
                    hint = (_("; the next free id is {n}").format(n=next_id())
                            if name == "id" and path[:1] == ("mailboxes",) else "")
                    add("MG101", path, _("{where}: required field {name!r} is "
                                         "missing{hint}").format(
                                         where=where, name=name, hint=hint))
        elif kind == "additionalProperties":
            allowed = sorted(schema.get("properties", {}))
            patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
            for key in e.instance:
                if key in allowed or any(p.search(str(key)) for p in patterns):
                    continue
                near = difflib.get_close_matches(str(key), allowed, n=1)
                hint = _("did you mean {key!r}? ").format(key=near[0]) if near else ""
                add("MG102", (*path, key), _("{where}: unknown field {key!r}; "
                                             "{hint}allowed here: {join}").format(
                                             where=where, key=key, hint=hint,
                                             join=', '.join(allowed)))
        elif kind == "type":
            expected = e.validator_value
            words = (_(" or ").join(_(_TYPE_WORDS.get(t, t)) for t in expected)
                     if isinstance(expected, list) else _(_TYPE_WORDS.get(expected, expected)))
            hint = ""
            if expected == "string" and isinstance(e.instance, int | float | bool):
                hint = _(" (put the value in quotes)")
            add("MG103", path, _("{where}: expected {words}, got {show}{hint}").format(
                                 where=where, words=words, show=_show(e.instance), hint=hint))
        elif kind in ("enum", "const"):
            choices = e.validator_value if kind == "enum" else [e.validator_value]
            add("MG104", path, _("{where}: {show} is not allowed; use one of: {join}").format(
                                 where=where, show=_show(e.instance),
                                 join=", ".join(json.dumps(c, ensure_ascii=False)
                                                for c in choices)))
        elif kind in ("pattern", "format"):
            what = schema.get("description") or _("matching {pattern}").format(
                pattern=e.validator_value)
            add("MG105", path, _("{where}: {show} has the wrong form; expected: {what}").format(
                                 where=where, show=_show(e.instance), what=what))
        elif kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            word = _("at least") if "inimum" in kind else _("at most")
            add("MG106", path, _("{where}: {instance!r} is out of range; must be "
                                 "{word} {validator_value}").format(
                                 where=where, instance=e.instance, word=word,
                                 validator_value=e.validator_value))
        elif kind in ("minItems", "minLength"):
            n = e.validator_value
            what = (ngettext("item", "items", n) if kind == "minItems"
                    else ngettext("character", "characters", n))
            add("MG107", path, _("{where}: {show} is too short; needs at least {n} "
                                 "{what}").format(
                                 where=where, show=_show(e.instance), n=n, what=what))
        elif kind in ("maxItems", "maxLength"):
            what = _("items") if kind == "maxItems" else _("characters")
            add("MG107", path, _("{where}: too long; at most {validator_value} {what}").format(
                                 where=where, validator_value=e.validator_value, what=what))
        elif kind == "uniqueItems":
            dupes = _repeated(e.instance)
            shown = ", ".join(dupes[:10])
            more = _(" and {n:,} more").format(n=len(dupes) - 10) if len(dupes) > 10 else ""
            add("MG107", path, _("{where}: repeated item(s) {cut}{more}").format(
                                 where=where, cut=_cut(shown), more=more))
        else:  # keywords the schema does not use today; keep the report complete anyway
            add("MG103", path, _("{where}: {cut}").format(
                                 where=where, cut=_cut(e.message)))
    # A value of the wrong type also fails its enum/pattern/range: report the type only.
    mistyped = {p.path for p in out if p.rule == "MG103"}
    return ([p for p in out if p.rule in ("MG101", "MG102", "MG103") or p.path not in mistyped],
            not_shown)


def _cut(text: str) -> str:
    return text if len(text) <= MAX_SHOWN else _("{start}… ({n:,} characters)").format(
        start=text[:MAX_SHOWN], n=len(text))


# --------------------------------------------------------------------------- meaning


def _where_to_path(where: str | None) -> PathT:
    """'policy.naming.personal.templates[1]' -> ("policy", "naming", ..., "templates", 1)."""
    if not where:
        return ("policy", "naming")
    out: list[str | int] = []
    for name, index in re.findall(r"([A-Za-z_]+)|\[(\d+)\]", where):
        out.append(name if name else int(index))
    return tuple(out)


def _parse_date(value: str) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


class _Checker:
    """Meaning checks over a schema-valid :class:`Directory`."""

    def __init__(self, d: Directory, loaded: Loaded, today: date,
                 max_problems: int = 0) -> None:
        self.d = d
        self.loaded = loaded
        self.today = today
        self.found: list[tuple[str, PathT, str]] = []
        self.max_problems = max_problems  # 0: no limit
        self.not_shown = 0
        self.domain = d.organization.domain.lower()
        self.alias_domains = frozenset(a.domain.lower() for a in d.organization.alias_domains)
        self._cyclic: set[str] = set()
        self.naming: NamingPolicy | None = None
        self._cands: dict[tuple[str | None, ...], tuple[str, ...] | NamingError] = {}

    def _full(self) -> bool:
        return _full(self.max_problems, len(self.found))

    def report(self, rule: str, path: PathT, message: str) -> None:
        if self._full():
            self.not_shown += 1
        else:
            self.found.append((rule, path, message))

    def _counted(self) -> bool:
        """True, and one more problem counted as not shown, once the problems shown are
        full: a check that can fail in every record then skips writing the message."""
        if self._full():
            self.not_shown += 1
            return True
        return False

    def _line(self, path: PathT) -> int:
        """The line of ``path``, for a message naming another record. Not looked up once
        the problems shown are full: that message would not be shown (the lookup costs
        0.1 ms; 200,000 repeated ids would spend 20 s on lines nobody reads)."""
        return 0 if self._full() else self.loaded.locator.locate(path)[0]

    def run(self) -> list[Problem]:
        self.check_policy()
        self.check_domains()
        naming = self.check_naming()
        self.naming = naming
        units = self.check_units()
        self.check_unit_history(units)
        self.check_moves(units)
        unit_locals = self.unit_addresses(naming, units)
        self.check_addresses(units, unit_locals)
        self.check_mailboxes(naming, units, unit_locals)
        self.check_unit_roles(units)
        self.naming, self.unit_locals = naming, unit_locals
        return [self.loaded.problem(rule, msg, path) for rule, path, msg in self.found]

    # -- policy -------------------------------------------------------------------------

    def check_policy(self) -> None:
        for kind, q in self.d.policy.quotas.items():
            if not q.min <= q.default <= q.max:
                self.report("MG405", ("policy", "quotas", kind),
                            _("policy.quotas.{kind}: need min <= default <= max, got "
                              "min {min}, default {default}, max {max} (MiB)").format(
                              kind=kind, min=q.min, default=q.default, max=q.max))
        if self.d.policy.password_administrators.lockout_duration_minutes == 0:
            self.report("MG407", ("policy", "password", "administrators",
                                  "lockout_duration_minutes"),
                        _("policy.password.administrators.lockout_duration_minutes: 0 "
                          "would lock an administrator until another one unlocks them, "
                          "and anyone who knows the addresses can lock them all; give "
                          "minutes (default 30)"))
        pol = self.d.policy
        for name, share in (("max_disable_share", pol.max_disable_share),
                            ("max_address_change_share", pol.max_address_change_share),
                            ("max_modify_share", pol.max_modify_share)):
            if not 0 <= share <= 1:
                self.report("MG406", ("policy", "safety", name),
                            _("policy.safety.{name}: {share} must be between 0 and 1 "
                              "(a share: 0.05 = 5 %)").format(
                              name=name, share=share))

    def check_unit_history(self, units: dict[str, Unit]) -> None:
        """Dissolved units (issue 14): a live successor (MG224), no cycle (MG225), nobody and
        no sub-unit left in them (MG226); real dates, not in the future (MG306, MG304)."""
        for u in units.values():  # a unit rename is not scheduled: its date is its day
            for k, f in enumerate(u.formerly):
                if f.abbr is None and f.parent is None:
                    self.report("MG101", ("units", u.index, "formerly", k),
                                _("unit {id!r}: a `formerly` item names neither `abbr` nor "
                                  "`parent`: what the old address was made of").format(id=u.id))
                if f.parent is not None and f.parent not in units:
                    self.report("MG204", ("units", u.index, "formerly", k, "parent"),
                                _("unit {id!r}: former parent {parent!r} is not a unit id (a "
                                  "dissolved unit stays in the file while a sub-unit's old "
                                  "address is made from it)").format(id=u.id, parent=f.parent))
                if f.date is None:
                    continue
                fpath: PathT = ("units", u.index, "formerly", k, "date")
                when = _parse_date(f.date)
                if when is None:
                    self.report("MG306", fpath, _("unit {id!r}: {date!r} is not a real date "
                                                  "(YYYY-MM-DD)").format(id=u.id, date=f.date))
                elif when > self.today:
                    self.report("MG304", fpath, _("unit {unit!r}: renamed from {abbr!r} on "
                                                  "{day}, in the future (today is {today}); a "
                                                  "unit rename cannot be scheduled: record it "
                                                  "on its day").format(
                                                  unit=u.id, abbr=f.abbr or f.parent, day=f.date,
                                                  today=self.today.isoformat()))
        dissolved = {u.id: u for u in units.values() if u.dissolved is not None}
        in_cycle: set[str] = set()
        for u in dissolved.values():
            chain = [u.id]
            cur = u
            while cur.dissolved is not None and cur.dissolved.successor in dissolved \
                    and cur.dissolved.successor != cur.id:  # itself: MG224 below
                nxt = cur.dissolved.successor
                if nxt in chain:
                    loop = chain[chain.index(nxt):]
                    if not in_cycle.intersection(loop):
                        in_cycle.update(loop)
                        self.report("MG225", ("units", u.index, "dissolved", "successor"),
                                    _("unit {id!r}: the successors loop ({join}); a "
                                      "dissolved unit's successor is a unit that goes "
                                      "on").format(
                                      id=u.id, join=' -> '.join([*loop, nxt])))
                    break
                chain.append(nxt)
                cur = dissolved[nxt]
        for u in dissolved.values():
            assert u.dissolved is not None
            path: PathT = ("units", u.index, "dissolved", "successor")
            succ = u.dissolved.successor
            if u.id not in in_cycle:
                if succ not in units or succ == u.id:
                    self.report("MG224", path, _("unit {id!r}: successor {succ!r} is "
                                                 "not another unit id").format(
                                                 id=u.id, succ=succ))
                elif succ in dissolved:
                    self.report("MG224", path, _("unit {id!r}: successor {succ!r} is "
                                                 "dissolved itself; merge into the "
                                                 "unit that goes on ({successor!r}?)").format(
                                                 id=u.id, succ=succ,
                                                 successor=dissolved[succ].dissolved.successor))  # type: ignore[union-attr]
            day = _parse_date(u.dissolved.date)
            dpath: PathT = ("units", u.index, "dissolved", "date")
            if day is None:
                self.report("MG306", dpath, _("unit {id!r}: {date!r} is not a real "
                                              "date (YYYY-MM-DD)").format(
                                              id=u.id, date=u.dissolved.date))
            elif day > self.today:
                self.report("MG304", dpath, _("unit {id!r}: dissolved on {date}, in "
                                              "the future (today is {isoformat}); a "
                                              "merger is recorded on its day").format(
                                              id=u.id, date=u.dissolved.date,
                                              isoformat=self.today.isoformat()))
        if not dissolved:
            return
        for other in units.values():
            if other.parent in dissolved:
                self.report("MG226", ("units", other.index, "parent"),
                            _("unit {id!r} is under {parent!r}, which is dissolved; "
                              "move it to the successor (mailgov unit merge does)").format(
                              id=other.id, parent=other.parent))
        for m in self.d.mailboxes:
            if m.unit in dissolved:
                self.report("MG226", ("mailboxes", m.index, "unit"),
                            _("mailbox {address!r} is in unit {unit!r}, which is "
                              "dissolved; move it to {successor!r} (mailgov unit merge "
                              "does)").format(
                              address=m.address, unit=m.unit,
                              successor=dissolved[m.unit].dissolved.successor))

    def check_domains(self) -> None:
        """organization.alias_domains: never the primary nor twice (MG222), a real end date
        not before today (MG223: the period is over, remove the entry)."""
        org = self.d.organization
        seen = {org.domain.lower(): "organization.domain"}
        switches: list[AliasDomain] = []
        for a in org.alias_domains:
            path: PathT = ("organization", "alias_domains", a.index, "domain")
            first = seen.get(a.domain.lower())
            if first is not None:
                self.report("MG222", path, _("alias domain {domain!r} is already "
                                             "{first}; an alias domain is another "
                                             "domain than the primary, listed once").format(
                                             domain=a.domain, first=first))
                continue
            seen[a.domain.lower()] = f"alias_domains[{a.index}]"
            switch = self._switch_day(a, switches)
            if a.until is None:
                continue
            upath: PathT = ("organization", "alias_domains", a.index, "until")
            end = self._alias_date(a, "until", a.until)
            if end is None:
                continue
            if switch is not None and end <= switch:
                self.report("MG229", upath, _("alias domain {domain!r}: its alias period ends "
                                              "({until}) before or when the switch to {new} "
                                              "takes effect ({day}); `until` must be after "
                                              "`primary_until`").format(
                                              domain=a.domain, until=a.until, new=org.domain,
                                              day=a.primary_until))
            elif end < self.today:
                self.report("MG223", upath, _("alias domain {domain!r} ended on "
                                              "{until} (today is {isoformat}); its "
                                              "addresses no longer deliver (they stay "
                                              "reserved): remove the entry, or correct "
                                              "the date").format(
                                              domain=a.domain, until=a.until,
                                              isoformat=self.today.isoformat()))

    def _switch_day(self, a: AliasDomain, switches: list[AliasDomain]) -> date | None:
        """A dated domain switch (``primary_until``): a real date (MG306); at most one still
        to come (MG229: the plan of each day must know which domain is the primary)."""
        if a.primary_until is None:
            return None
        path: PathT = ("organization", "alias_domains", a.index, "primary_until")
        when = self._alias_date(a, "primary_until", a.primary_until)
        if when is not None and when > self.today:
            if switches:
                first = switches[0]
                self.report("MG229", path, _("alias domain {domain!r}: a second domain "
                                             "switch is scheduled ({day}) while the one from "
                                             "{first!r} ({first_day}) is still to come; "
                                             "schedule the next switch after that one took "
                                             "effect").format(
                                             domain=a.domain, day=a.primary_until,
                                             first=first.domain, first_day=first.primary_until))
            switches.append(a)
        return when

    def _alias_date(self, a: AliasDomain, key: str, value: str) -> date | None:
        """alias_domains[i].KEY as a date; MG306 when it is not a real one."""
        when = _parse_date(value)
        if when is None:
            self.report("MG306", ("organization", "alias_domains", a.index, key),
                        _("alias domain {domain!r}: {until!r} is not a real date "
                          "(YYYY-MM-DD)").format(domain=a.domain, until=value))
        return when

    def check_moves(self, units: dict[str, Unit]) -> None:
        """Dated moves (``moved_from``): a real date (MG306); the unit before the move is
        another unit id, still going on while the move is to come (MG228). A past move is
        history: its unit may be gone since."""
        for m in self.d.mailboxes:
            mv = m.moved_from
            if mv is None:
                continue
            # a move may be dated ahead: no today, no MG304
            when = self._date(mv.date, ("mailboxes", m.index, "moved_from", "date"), None, m)
            if when is None:
                continue
            path: PathT = ("mailboxes", m.index, "moved_from", "unit")
            if mv.unit == m.unit:
                self.report("MG228", path, _("mailbox {address!r}: moved_from names its own "
                                             "unit {unit!r}; a move goes to another unit "
                                             "(remove moved_from, or name the unit it "
                                             "leaves)").format(address=m.address, unit=m.unit))
            elif when <= self.today:
                continue
            elif mv.unit not in units:
                self.report("MG228", path, _("mailbox {address!r}: moves on {day} from "
                                             "unit {unit!r}, which is not a unit id; until "
                                             "that day the mailbox must be in a unit that "
                                             "exists").format(address=m.address, day=mv.date,
                                                              unit=mv.unit))
            elif (gone := units[mv.unit].dissolved) is not None:
                self.report("MG228", path, _("mailbox {address!r}: moves on {day} from "
                                             "unit {unit!r}, which is dissolved (into "
                                             "{successor!r}); until that day the mailbox must "
                                             "be in a unit that goes on").format(
                                             address=m.address, day=mv.date, unit=mv.unit,
                                             successor=gone.successor))

    def check_naming(self) -> NamingPolicy | None:
        try:
            return NamingPolicy.from_dict(self.d.policy.naming)
        except NamingError as exc:
            self.report("MG212", _where_to_path(exc.where), _("naming policy: {exc}").format(
                                                              exc=exc))
            return None

    # -- units --------------------------------------------------------------------------

    def check_units(self) -> dict[str, Unit]:
        units: dict[str, Unit] = {}
        for u in self.d.units:
            if u.id in units:
                first = units[u.id]
                self.report("MG206", ("units", u.index, "id"),
                            _("unit id {id!r} is already used by units[{index}] "
                              "({name}); unit ids must be unique").format(
                              id=u.id, index=first.index, name=first.name))
            else:
                units[u.id] = u
        for u in self.d.units:
            if u.parent is not None and u.parent not in units:
                self.report("MG204", ("units", u.index, "parent"),
                            _("unit {id!r}: parent {parent!r} is not a unit id").format(
                              id=u.id, parent=u.parent))
        # Cycles: walk up from every unit; report each cycle once, at its first unit.
        reported: set[str] = set()
        for u in self.d.units:
            chain: list[str] = []
            cur: Unit | None = u
            while cur is not None and cur.parent is not None and cur.id not in chain:
                chain.append(cur.id)
                cur = units.get(cur.parent)
            if cur is not None and cur.id in chain:
                cycle = chain[chain.index(cur.id):]
                if not reported.intersection(cycle):
                    reported.update(cycle)
                    first = min((units[c] for c in cycle), key=lambda x: x.index)
                    loop = " -> ".join([*cycle, cycle[0]])
                    self.report("MG205", ("units", first.index, "parent"),
                                _("unit {id!r}: the parent chain loops ({loop}); a "
                                  "unit cannot be inside itself").format(
                                  id=first.id, loop=loop))
        self._cyclic = reported
        it_unit = self.d.organization.it_unit
        if it_unit not in units:
            self.report("MG209", ("organization", "it_unit"),
                        _("organization.it_unit {it_unit!r} is not a unit id").format(
                          it_unit=it_unit))
        return units

    def unit_addresses(self, naming: NamingPolicy | None, units: dict[str, Unit]
                       ) -> dict[str, str]:
        """unit id -> local part of its unit mailbox (units whose address can be made)."""
        if naming is None:
            return {}

        def bad(u: Any, exc: NamingError) -> None:
            field = "abbr" if u.abbreviation else "id"
            self.report("MG211", ("units", u.index, field), _("unit {id!r}: {exc}").format(
                                                              id=u.id, exc=exc))

        return unit_locals(units.values(), naming, on_error=bad)

    # -- addresses ----------------------------------------------------------------------

    def check_addresses(self, units: dict[str, Unit], unit_locals: dict[str, str]) -> None:
        """Addresses, aliases and unit mailboxes share one namespace (case-insensitive)."""
        owners: dict[str, tuple[PathT, Who]] = {}
        self.owners = owners

        def claim(local: str, path: PathT, who: Who) -> None:
            key = local.casefold()
            first = owners.get(key)
            if first is None:
                owners[key] = (path, who)
                return
            if self._counted():
                return
            line = self._line(first[0])
            self.report("MG201", path,
                        _("{local!r} is already used by {first} (line {line}); every "
                          "address, alias, unit mailbox and unit list must be different").format(
                          local=local, first=_who(first[1]), line=line))

        for u in units.values():  # first unit of each id; repeated ids are MG206
            ul = unit_locals.get(u.id)
            if ul is not None:
                field = "abbr" if u.abbreviation else "id"
                claim(ul, ("units", u.index, field), (N_("the unit mailbox of {id!r}"), u.id))
                # The unit's list (mailgov/directory.py): Postfix reads aliases before
                # groups, so an alias or mailbox of this name would capture the list's mail.
                claim(list_local(ul), ("units", u.index, field),
                      (N_("the list of unit {id!r}"), u.id))
        # A renamed unit's old addresses stay its own (aliases for the period, then reserved).
        if self.naming is not None and any(u.formerly for u in units.values()):
            old = former_unit_locals(self.d, self.naming, None)
            for u in units.values():
                for k, local in enumerate(old.get(u.id, ())):
                    path = ("units", u.index, "formerly", k, "abbr")
                    claim(local, path, (N_("the former unit mailbox of {id!r}"), u.id))
                    claim(list_local(local), path, (N_("the former list of unit {id!r}"), u.id))
        for m in self.d.mailboxes:
            key = m.address.casefold()
            if key not in owners:  # claim() inline: the common case, a free address
                owners[key] = (("mailboxes", m.index, "address"),
                               ("mailboxes[{index}] {name}", m.index, m.name))
            else:
                claim(m.address, ("mailboxes", m.index, "address"),
                      ("mailboxes[{index}] {name}", m.index, m.name))
            for j, alias in enumerate(m.aliases):
                local = self._alias_local(m, j, alias)
                if local is not None:
                    claim(local, ("mailboxes", m.index, "aliases", j),
                          (N_("an alias of mailboxes[{index}] {name}"), m.index, m.address))
        # A renamed mailbox keeps its old addresses (aliases for the policy period, reserved
        # for ever): each must be free (MG219).
        for m in self.d.mailboxes:
            if not m.previous:
                continue
            raw = self.loaded.data["mailboxes"][m.index].get("renamed_from")
            for k, prev in enumerate(m.previous):
                path: PathT = ("mailboxes", m.index, "renamed_from") if isinstance(raw, str) \
                    else ("mailboxes", m.index, "renamed_from", k)
                old = prev.address
                if prev.date is not None and _parse_date(prev.date) is None:
                    self.report("MG306", (*path, "date") if len(path) == 4 else path,
                                _("mailbox {address!r}: {date!r} is not a real date "
                                  "(YYYY-MM-DD)").format(
                                  address=m.address, date=prev.date))
                first = owners.get(old.casefold())
                if old.casefold() == m.address.casefold():
                    self.report("MG219", path, _("mailbox {address!r}: renamed_from is "
                                                 "its own address; remove renamed_from "
                                                 "or give the old address").format(
                                                 address=m.address))
                elif first is not None:
                    line = self._line(first[0])
                    self.report("MG219", path, _("mailbox {address!r}: old address "
                                                 "{old!r} is used by {first} (line "
                                                 "{line}); the old address stays an "
                                                 "alias of the renamed mailbox, so it "
                                                 "must be free").format(
                                                 address=m.address, old=old, first=_who(first[1]),
                                                 line=line))
                else:
                    owners[old.casefold()] = (path, (N_("the old address of {name}"), m.address))
        self.check_reserved(owners)
        self.reserved_locals = frozenset(r.address.casefold() for r in self.d.reserved)
        self.check_ids()
        for k, p in enumerate(self.d.policy.protected):
            if p.casefold() not in owners:
                self.report("MG218", ("policy", "protected", k),
                            _("protected local part {p!r} is not an address, alias or "
                              "unit mailbox; add it (usually as an alias of an IT "
                              "mailbox)").format(
                              p=p))

    def check_reserved(self, owners: dict[str, tuple[PathT, Who]]) -> None:
        """An address once used is never given to someone else (MG221): the ``reserved``
        list (filled by purging) may be used again only by the mailbox whose id it names."""
        for r in self.d.reserved:
            first = owners.get(r.address.casefold())
            if first is None:
                continue
            path = first[0]
            if r.id is not None and path[0] == "mailboxes":
                holder = self.d.mailboxes[int(path[1])]
                if holder.id == r.id:
                    continue  # its own address given back (a restore)
            line = self._line(("reserved", r.index, "address"))
            self.report("MG221", path, _("{address!r} ({first}) is reserved (line "
                                         "{line}: {reason}); an address once used is "
                                         "never given to anyone else, choose another "
                                         "(`mailgov address` proposes one)").format(
                                         address=r.address, first=_who(first[1]), line=line,
                                         reason=r.reason))

    def check_ids(self) -> None:
        """A mailbox id names one person's entry and store, for ever: never two records, and
        a purged mailbox's id (kept in ``reserved``) only for that mailbox, i.e. a record
        using one of the addresses reserved with the id: another record with it would
        be stored at the purged one's store path and could claim its reserved addresses."""
        first: dict[int, Mailbox] = {}
        purged: dict[int, list[Reserved]] = {}
        for r in self.d.reserved:
            if r.id is not None:
                purged.setdefault(r.id, []).append(r)
        ids = [m.id for m in self.d.mailboxes]
        if not purged and len(set(ids)) == len(ids):
            return  # no id twice and none purged: the loop below would report nothing
        # (the highest id is needed only by the messages)
        top = max((x for x in (*ids, *(r.id for r in self.d.reserved)) if x is not None),
                  default=0)
        for m in self.d.mailboxes:
            if m.id is None:
                continue
            held = purged.get(m.id)
            if held:
                mine = {m.address.casefold(), *(p.address.casefold() for p in m.previous),
                        *(a.partition("@")[0].casefold() for a in m.aliases)}
                if not any(r.address.casefold() in mine for r in held):
                    line = self._line(("reserved", held[0].index, "id"))
                    self.report("MG220", ("mailboxes", m.index, "id"),
                                _("mailbox {address!r}: id {id} is already the id of "
                                  "{address2!r} (line {line}); every mailbox has its own "
                                  "id, never reused (the next free id is {value})").format(
                                  address=m.address, id=m.id, address2=held[0].address,
                                  line=line, value=top + 1))
            other = first.setdefault(m.id, m)
            if other is not m and not self._counted():
                line = self._line(("mailboxes", other.index, "id"))
                self.report("MG220", ("mailboxes", m.index, "id"),
                            _("mailbox {address!r}: id {id} is already the id of "
                              "{address2!r} (line {line}); every mailbox has its own "
                              "id, never reused (the next free id is {value})").format(
                              address=m.address, id=m.id, address2=other.address, line=line,
                              value=top + 1))

    def _alias_local(self, m: Mailbox, j: int, alias: str) -> str | None:
        if "@" not in alias:
            return alias
        local, _sep, dom = alias.partition("@")
        if dom.lower() != self.domain and dom.lower() not in self.alias_domains:
            self.report("MG202", ("mailboxes", m.index, "aliases", j),
                        _("alias {alias!r} of {address!r} is at {dom!r}; aliases must "
                          "be local parts or addresses at {domain}").format(
                          alias=alias, address=m.address, dom=dom, domain=self.domain))
            return None
        return local

    # -- mailboxes ----------------------------------------------------------------------

    def check_mailboxes(self, naming: NamingPolicy | None, units: dict[str, Unit],
                        unit_locals: dict[str, str]) -> None:
        quotas = self.d.policy.quotas
        allowed = tuple(a.lower() for a in self.d.policy.forwarding_allowed_domains)
        today = self.today
        # The common record (a conforming address, active, a real past `created`) is
        # decided here without a call; anything else goes to the full checks, which report.
        cands = self._cands
        # naming.inputs_of(...) inline: what the templates read, asked once
        reads_unit, reads_birth, reads_id = naming.reads() if naming is not None else \
            (False, False, False)
        conforms_to = naming.conforms_to if naming is not None else None
        fine_created: set[str] = set()  # dates repeat: each checked once
        for m in self.d.mailboxes:
            i = m.index
            if m.unit not in units and not self._counted():
                self.report("MG203", ("mailboxes", i, "unit"),
                            _("mailbox {address!r}: unit {unit!r} is not a unit id").format(
                              address=m.address, unit=m.unit))
            if m.kind == "affiliate":
                if m.sponsor is None:
                    self.report("MG208", ("mailboxes", i),
                                _("affiliate mailbox {address!r} needs `sponsor:` (the "
                                  "id of the unit that vouches for it)").format(
                                  address=m.address))
                elif m.sponsor not in units:
                    self.report("MG207", ("mailboxes", i, "sponsor"),
                                _("affiliate {address!r}: sponsor {sponsor!r} is not a "
                                  "unit id").format(
                                  address=m.address, sponsor=m.sponsor))
            if naming is not None and m.naming_exemption is None:
                ul = unit_locals.get(m.unit)
                key = (m.name, ul if reads_unit else None, m.birth if reads_birth else None,
                       m.id_digits if reads_id else None)
                known = cands.get(key)
                if known is None:
                    known = self._candidates(naming, key)
                if known.__class__ is not tuple or (
                        m.address not in known  # type: ignore[operator]
                        and not conforms_to(known, m.address)):  # type: ignore[misc, arg-type]
                    self._check_name(naming, m, ul)
            if m.suspended is None and m.cancelled is None and m.state == "active":
                # all _check_lifecycle checks of such a record: `created` real and past
                created = m.created
                if created is not None and created not in fine_created:
                    day = self._date(created, ("mailboxes", i, "created"), today, m)
                    if day is not None and day <= today:
                        fine_created.add(created)
            else:
                self._check_lifecycle(m, today)
            if m.explicit_quota:
                q = quotas[m.kind]
                if not q.min <= m.quota_mb <= q.max:
                    self.report("MG401", ("mailboxes", i, "quota_mb"),
                                _("mailbox {address!r}: quota_mb {quota_mb} is outside "
                                  "{min}..{max} MiB allowed for {kind} mailboxes").format(
                                  address=m.address, quota_mb=m.quota_mb, min=q.min, max=q.max,
                                  kind=_(m.kind)))
            if m.forward_to:
                self._check_forwarding(m, allowed)

    def _candidates(self, naming: NamingPolicy, key: tuple[str, str | None, str | None,
                                                            str | None]
                    ) -> tuple[str, ...] | NamingError:
        """The candidates of the template inputs ``key`` (:meth:`NamingPolicy.inputs`), or the
        error they raise. Names repeat: computed once per run (self._cands)."""
        try:
            known: tuple[str, ...] | NamingError = tuple(naming.candidates_of(*key))
        except NamingError as exc:
            known = exc
        self._cands[key] = known
        return known

    def _check_name(self, naming: NamingPolicy, m: Mailbox, unit_local: str | None) -> None:
        person = Person(m.name, unit_local, m.birth, m.id_digits)
        # The clash numbering is checked against the candidates of equal template inputs.
        key = naming.inputs(person)
        known = self._cands.get(key)
        if known is None:
            known = self._candidates(naming, key)
        if isinstance(known, NamingError):
            self.report("MG210", ("mailboxes", m.index, "address"),
                        _("mailbox {address!r}: the naming policy cannot check it "
                          "({known}); fix the record or add naming_exemption {{reason, "
                          "request}}").format(
                          address=m.address, known=known))
            return
        if m.address in known or naming.conforms_to(known, m.address) or self._counted():
            return
        cands = list(known)
        if cands:
            first = cands[0]
            sep = naming.clash_separator
            start = naming.clash_start
            expected = ", ".join(cands)
            if naming.clash_strategy == "sequence":
                expected += _(" (on a clash {a}, {b} …)").format(a=f"{first}{sep}{start}",
                                                                  b=f"{first}{sep}{start + 1}")
        else:
            missing = naming.missing_data(person)
            expected = _("nothing: no template applies") + (
                _(" (missing {fields})").format(fields=", ".join(missing)) if missing else "")
        self.report("MG210", ("mailboxes", m.index, "address"),
                    _("address {address!r} does not follow the naming policy for "
                      "{name!r}; expected {expected}, or record naming_exemption "
                      "{{reason, request}}").format(
                      address=m.address, name=m.name, expected=expected))

    def _check_lifecycle(self, m: Mailbox, today: date) -> None:
        i = m.index
        if m.state == "suspended" and m.suspended is None:
            self.report("MG301", ("mailboxes", i, "state"),
                        _("mailbox {address!r} is suspended but has no `suspended: "
                          "{{date, reason, request}}` block").format(
                          address=m.address))
        if m.state == "cancelled" and m.cancelled is None:
            self.report("MG302", ("mailboxes", i, "state"),
                        _("mailbox {address!r} is cancelled but has no `cancelled: "
                          "{{date, reason, request}}` block").format(
                          address=m.address))
        # A cancelled mailbox may keep the history of an earlier suspension; an active one
        # one that has ended (or ends: a scheduled restore), i.e. with `until` (issue 14).
        if m.suspended is not None and m.state == "active" and m.suspended.until is None:
            self.report("MG303", ("mailboxes", i, "suspended"),
                        _("mailbox {address!r} is active but carries a `suspended` "
                          "block; end the suspension with `until: DATE` (it stays as "
                          "history), or set state: suspended").format(
                          address=m.address))
        if m.suspended is not None and m.state == "suspended" and m.suspended.until is not None:
            self.report("MG303", ("mailboxes", i, "suspended", "until"),
                        _("mailbox {address!r} is suspended but its suspension ends "
                          "({until}); set state: active (the suspension stays as "
                          "history and ends on that day)").format(
                          address=m.address, until=m.suspended.until))
        if m.cancelled is not None and m.state != "cancelled":
            self.report("MG303", ("mailboxes", i, "cancelled"),
                        _("mailbox {address!r} is {state} but carries a `cancelled` "
                          "block; remove it or set state: cancelled").format(
                          address=m.address, state=_(m.state)))
        created = None
        if m.created is not None:
            created = self._date(m.created, ("mailboxes", i, "created"), today, m)
        for key, block in (("suspended", m.suspended), ("cancelled", m.cancelled)):
            if block is None:
                continue
            # a future date schedules the change (issue 14): the plan lists it, the plan of
            # that day applies it
            when = self._date(block.date, ("mailboxes", i, key, "date"), None, m)
            if block.until is not None:
                end = self._date(block.until, ("mailboxes", i, key, "until"), None, m)
                if end is not None and when is not None and end <= when:
                    # The message names the block: the schema gives `until` to a suspension
                    # only (a cancellation's is MG102 first), but the model reads it on both.
                    what = (_("mailbox {address!r}: the suspension ends ({until}) before or "
                              "when it starts ({date})") if key == "suspended" else
                            _("mailbox {address!r}: the cancellation's `until` ({until}) is "
                              "on or before its date ({date})"))
                    self.report("MG227", ("mailboxes", i, key, "until"), what.format(
                        address=m.address, until=block.until, date=block.date))
            if when is not None and created is not None and when < created:
                self.report("MG305", ("mailboxes", i, key, "date"),
                            _("mailbox {address!r}: {key} on {date} is before it was "
                              "created ({created})").format(
                              address=m.address, key=key, date=block.date, created=m.created))

    def _date(self, value: str, path: PathT, today: date | None, m: Mailbox) -> date | None:
        """A real date (MG306), not after ``today`` (MG304; None: a date that may be in the
        future, because the change can be scheduled)."""
        d = _parse_date(value)
        if d is None:
            self.report("MG306", path, _("mailbox {address!r}: {value!r} is not a real "
                                         "date (YYYY-MM-DD)").format(
                                         address=m.address, value=value))
            return None
        if today is not None and d > today:
            self.report("MG304", path, _("mailbox {address!r}: {value} is in the "
                                         "future (today is {isoformat}); this date "
                                         "cannot be scheduled: record it when it "
                                         "happens (a suspension, cancel, rename, move or "
                                         "domain switch may be dated ahead)").format(
                                         address=m.address, value=value,
                                         isoformat=today.isoformat()))
        return d

    def _check_forwarding(self, m: Mailbox, allowed: tuple[str, ...]) -> None:
        own = {m.address.casefold()}
        for a in m.aliases:
            local, _sep, dom = a.partition("@")
            if not dom or dom.lower() == self.domain:
                own.add(local.casefold())
        for j, target in enumerate(m.forward_to):
            local, _sep, dom = target.rpartition("@")
            dom = dom.lower()
            path = ("mailboxes", m.index, "forward_to", j)
            if dom == self.domain or dom in self.alias_domains:
                key = local.casefold()
                if dom == self.domain and key in own:
                    self.report("MG404", path, _("mailbox {address!r} forwards to "
                                                 "itself ({target}); remove it").format(
                                                 address=m.address, target=target))
                elif key not in self.owners and key not in self.reserved_locals:
                    # delivered here, to nobody today: whoever is given the address later
                    # would silently receive copies of this mailbox's mail
                    self.report("MG408", path, _("mailbox {address!r} forwards to {target}, "
                                                 "which no mailbox, alias, unit mailbox or "
                                                 "list holds; whoever is given that address "
                                                 "later would receive copies of this "
                                                 "mailbox's mail: forward to an address in "
                                                 "use, or remove it").format(
                                                 address=m.address, target=target))
                continue  # the organisation's own domains are always allowed
            if not any(dom == a or dom.endswith("." + a) for a in allowed):
                self.report("MG403", path,
                            _("mailbox {address!r}: forwarding to {target!r} is not "
                              "allowed; only to policy.forwarding.allowed_domains "
                              "({value}) and their sub-domains").format(
                              address=m.address, target=target,
                              value=', '.join(allowed) or 'none'))

    # -- unit heads and delegates ----------------------------------------------------------

    def check_unit_roles(self, units: dict[str, Unit]) -> None:
        by_address: dict[str, Mailbox] = {}
        for m in self.d.mailboxes:
            by_address.setdefault(m.address.casefold(), m)
        q = self.d.policy.quotas["unit"]
        for u in self.d.units:
            if u.head is not None:
                head = by_address.get(u.head.casefold())
                path = ("units", u.index, "head")
                if head is None:
                    self.report("MG213", path, _("unit {id!r}: head {head!r} is not "
                                                 "the address of any mailbox").format(
                                                 id=u.id, head=u.head))
                elif head.kind != "personal" or head.state != "active":
                    self.report("MG214", path, _("unit {id!r}: head {head!r} is a "
                                                 "{state} {kind} mailbox; the head "
                                                 "must be an active personal mailbox").format(
                                                 id=u.id, head=u.head, state=_(head.state),
                                                 kind=_(head.kind)))
                elif head.unit != u.id:
                    self.report("MG215", path, _("unit {id!r}: head {head!r} belongs "
                                                 "to unit {unit!r}; move the mailbox "
                                                 "or choose a head from this unit").format(
                                                 id=u.id, head=u.head, unit=head.unit))
            for j, dlg in enumerate(u.mailbox.delegates):
                path = ("units", u.index, "mailbox", "delegates", j)
                m = by_address.get(dlg.casefold())
                if m is None:
                    self.report("MG216", path, _("unit {id!r}: delegate {dlg!r} is not "
                                                 "the address of any mailbox").format(
                                                 id=u.id, dlg=dlg))
                elif m.kind != "personal" or m.state != "active":
                    self.report("MG217", path, _("unit {id!r}: delegate {dlg!r} is a "
                                                 "{state} {kind} mailbox; delegates "
                                                 "must be active personal mailboxes").format(
                                                 id=u.id, dlg=dlg, state=_(m.state),
                                                 kind=_(m.kind)))
            if not q.min <= u.mailbox.quota_mb <= q.max:
                self.report("MG402", ("units", u.index, "mailbox", "quota_mb"),
                            _("unit {id!r}: unit mailbox quota_mb {quota_mb} is "
                              "outside {min}..{max} MiB allowed for unit mailboxes").format(
                              id=u.id, quota_mb=u.mailbox.quota_mb, min=q.min, max=q.max))


# --------------------------------------------------------------------------- helpers


def taken_locals(d: Directory, naming: NamingPolicy,
                 locals_by_unit: dict[str, str] | None = None) -> set[str]:
    """Every local part in use (addresses, aliases, unit mailboxes), case-folded.
    ``locals_by_unit``: the unit mailboxes' local parts when already computed (Result)."""
    domain = d.organization.domain.lower()
    if locals_by_unit is None:
        locals_by_unit = unit_locals(d.units, naming)
    taken = {v.casefold() for v in locals_by_unit.values()}
    for m in d.mailboxes:
        taken.add(m.address.casefold())
        for a in m.aliases:
            local, _sep, dom = a.partition("@")
            if not dom or dom.lower() == domain:
                taken.add(local.casefold())
        for prev in m.previous:  # delivers for the policy period, reserved for ever
            taken.add(prev.address.casefold())
    taken.update(r.address.casefold() for r in d.reserved)
    return taken


# --------------------------------------------------------------------------- entry point


def _sorted(problems: Iterable[Problem]) -> list[Problem]:
    return sorted(problems, key=Problem.sort_key)


# Control characters (every C0 one, tab and line breaks included: no field is multi-line),
# DEL, C1, the Unicode line and paragraph separators (escapes \L, \P: a line break to YAML,
# JSON-in-JavaScript and many viewers), the invisible format characters and the Unicode
# non-characters of the loader's MG009: invisible in a review, and a line break in a value
# would start a new line in the LDIF the roles write (an injection).
_TEXT_CONTROL = re.compile(f"[\x00-\x1f\x7f-\x9f\u2028\u2029{INVISIBLE}{NON_CHARACTERS}]")


_TEXT_CONTROL_OR_ASTRAL = re.compile(f"[\x00-\x1f\x7f-\x9f\u2028\u2029{INVISIBLE}"
                                     "\ufdd0-\ufdef\ufffe\uffff\U00010000-\U0010ffff]")


def _value_problems(loaded: Loaded) -> list[Problem]:
    """What only the precise path can build: keys that are not text (MG109) and texts with
    control characters written as escapes (MG108), at most MAX_REPORTED of them. Iterative:
    no recursion on any input (the loader has bounded the nesting and the alias expansion)."""
    if not _maybe_value_problems(loaded.data):
        return []
    out: list[Problem] = []
    stack: list[tuple[PathT, Any]] = [((), loaded.data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    if len(out) >= MAX_REPORTED:  # a hostile file may have a million
                        continue
                    out.append(loaded.problem(
                        "MG109", _("{json_path}: the key {show} is not text; every key "
                                   "is a field name (quote it if it really is one)").format(
                                   json_path=json_path(path), show=_show(key)),
                        (*path, key)))
                    continue
                stack.append(((*path, key), item))
                _control_text(loaded, (*path, key), key, "key", out)
        elif isinstance(value, list):
            stack.extend(((*path, i), item) for i, item in enumerate(value))
        elif isinstance(value, str):
            _control_text(loaded, path, value, "text", out)
    return out


def _maybe_value_problems(data: Any) -> bool:
    """Could :func:`_value_problems` find anything? One walk without paths (a path per value
    made its walk 0.46 s on 50,000 mailboxes; this one takes a third of that), every key and
    text joined and searched once; the located walk runs only when this says yes."""
    texts: list[Any] = []
    stack: list[Any] = [data]
    while stack:
        value = stack.pop()
        kind = value.__class__
        if kind is dict:
            texts.extend(value)  # the keys: a key that is not text fails the join below
            stack.extend(value.values())
        elif kind is list:
            stack.extend(value)
        elif kind is str:
            texts.append(value)
        elif isinstance(value, dict | list | str):  # pragma: no cover - loaders build none
            return True
    try:
        joined = "".join(texts)
    except TypeError:
        return True  # a key that is not text (MG109)
    # The exact class lists 32 non-characters beyond the BMP one by one, which makes the
    # regex scan each character slowly (0.21 s for 5 M characters); the superset (any
    # character beyond the BMP) scans at 0.02 s, and Vietnamese text has none.
    if _TEXT_CONTROL_OR_ASTRAL.search(joined) is None:
        return False
    return _TEXT_CONTROL.search(joined) is not None


def _control_text(loaded: Loaded, path: PathT, text: str, what: str,
                  out: list[Problem]) -> None:
    m = _TEXT_CONTROL.search(text)
    if m is not None and len(out) < MAX_REPORTED:
        out.append(loaded.problem(
            "MG108", _("{json_path}: the {what} holds {char_name} at character "
                       "{value}; no text may hold control characters or non-characters "
                       "(also not written as an escape like \\0, \\e or \\n)").format(
                       json_path=json_path(path), what=what, char_name=char_name(m.group()),
                       value=m.start() + 1), path))


@contextmanager
def gc_paused() -> Iterator[None]:
    """Building a million objects triggers the cyclic collector over and over, for nothing:
    the data has no cycles (the loader refuses alias loops). Paused, validate of 200,000
    mailboxes took 19 s of CPU instead of 31 s on the PyYAML path, 1.3 s instead of 1.5 s for
    50,000 on the fast one.
    The planner pauses it too (mailgov/cli.py): reading a saved live state of 50,000 entries
    took 1.3 s with it, 0.6 s without, and the no-op plan 1.9 s against 1.3 s."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            _age_young()
            gc.enable()


def _age_young() -> None:
    """Move every tracked object to the oldest generation (O(1): two list splices).

    What was made during the pause is all still young, and the collector counted every
    allocation while paused: the first allocation after ``gc.enable()`` would scan the whole
    young generation once (63 ms after validate of 50,000 mailboxes, 1.2 million objects)
    to find no garbage. In the oldest generation they are scanned only by a full
    collection, as long-lived objects always are. Skipped when something else froze
    objects on purpose (``gc.unfreeze`` would release them too)."""
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()


#: Problems shown by one run, by default: a file broken in 200,000 records would otherwise
#: spend minutes writing messages (jsonschema's full report and the position of each) that
#: nobody reads; the rest are counted (``Result.not_shown``). ``mailgov validate
#: --max-problems 0`` shows them all.
MAX_PROBLEMS = 1000


def validate(path: str | Path, *, today: date | None = None,
             max_problems: int = MAX_PROBLEMS) -> Result:
    """Check the data file at ``path``; never raises for bad input (see Result.problems).
    At most ``max_problems`` problems are shown (0: all); the rest are counted."""
    name = str(path)
    with gc_paused():
        try:
            loaded = load(path)
        except LoadError as exc:
            return Result(name, _sorted(exc.problems))
        return check(loaded, today=today, max_problems=max_problems)


def check(loaded: Loaded, *, today: date | None = None,
          max_problems: int = MAX_PROBLEMS) -> Result:
    """Shape and meaning checks of data already loaded (one load per command: an edit
    command loads, changes one record, and checks the result once with this)."""
    name = loaded.path
    # The fast path cannot produce these (no escapes, JSON keys are text): skip the walk.
    early = _value_problems(loaded) if loaded.precise else []
    if any(p.rule == "MG109" for p in early):  # the schema checks need text keys
        return Result(name, _sorted(early))
    # "Not shown": the record-by-record check finds the problems, or none (then the shape is
    # fine). It was preceded by a whole-file fastjsonschema check: a second pass over every
    # record of a broken file (0.3 s of a 50,000-mailbox one, 0.8 s of a million aliases).
    if not _batch_check()(loaded.data):
        bad_text = {p.path for p in early}
        shape, not_shown = _shape_problems(loaded, max_problems)
        problems = [p for p in shape
                    if p.path not in bad_text or p.rule in ("MG101", "MG102", "MG103")]
        if problems or early:
            return Result(name, _sorted([*early, *problems]), not_shown=not_shown)
    if early:
        return Result(name, _sorted(early))
    directory = build(loaded.data)
    checker = _Checker(directory, loaded, today or date.today(), max_problems)
    problems = checker.run()
    if problems:
        return Result(name, _sorted(problems), not_shown=checker.not_shown)
    return Result(name, [], directory, loaded.source, checker.naming, checker.unit_locals,
                  loaded if loaded.parts is not None else None)
