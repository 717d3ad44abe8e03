"""Naming policy engine: turns a person's name into mailbox local parts.

The naming rule is configuration (``policy.naming`` in ``data/mailboxes.yaml``), not code,
because every agency chooses its own (see ``docs/data-format.md`` and ``docs/naming.md``).

Templates are parsed once, in :meth:`NamingPolicy.from_dict`, into a list of parts, so that
rendering is plain string concatenation: ``conforms`` runs for every mailbox on every
validation (tens of thousands), so no regex is compiled or template parsed per call.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from mailgov.i18n import _

__all__ = [
    "PERSONAL_TOKENS",
    "UNIT_TOKENS",
    "NameParts",
    "NamingError",
    "NamingPolicy",
    "Person",
    "split_name",
    "transliterate",
    "valid_local",
]


class NamingError(ValueError):
    """A bad template or policy, or a person the policy cannot name.

    ``str(e)`` is a complete message for a human. ``where`` (e.g.
    ``policy.naming.personal.templates[1]``), ``template`` and ``position`` (0-based index
    into the template) are set when known, so a validator can point at the exact spot.
    """

    def __init__(
        self,
        message: str,
        *,
        where: str | None = None,
        template: str | None = None,
        position: int | None = None,
    ) -> None:
        self.message = message
        self.where = where
        self.template = template
        self.position = position
        text = message
        if template is not None:
            loc = f"{where}: " if where else ""
            col = _(" at column {n}").format(n=position + 1) if position is not None else ""
            text = _("{loc}template {template!r}{col}: {message}").format(
                loc=loc, template=template, col=col, message=message)
        elif where:
            text = f"{where}: {message}"
        super().__init__(text)


# --------------------------------------------------------------------------- transliteration

# NFKD splits every Vietnamese letter into base letter + combining marks (tone, breve,
# circumflex, horn), whether the input arrived NFC or NFD. Only đ/Đ do not decompose.
# U+00D0/U+00F0 (Icelandic eth) are look-alikes that Vietnamese keyboards sometimes produce.
_D_MAP = str.maketrans({"đ": "d", "Đ": "d", "Ð": "d", "ð": "d"})
_KEEP = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


@lru_cache(maxsize=65536)
def transliterate(text: str) -> str:
    """'Nguyễn' -> 'nguyen': no diacritics, đ -> d, lower case, only a-z0-9 kept."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_D_MAP)).lower()
    return "".join(ch for ch in decomposed if ch in _KEEP)


# --------------------------------------------------------------------------- names


@dataclass(frozen=True)
class NameParts:
    """A Vietnamese full name (surname first), each part transliterated."""

    surname: str  # "" for a one-syllable name
    middle: tuple[str, ...]
    given: str


def split_name(full_name: str) -> NameParts:
    """'Nguyễn Văn  Long' -> NameParts('nguyen', ('van',), 'long').

    Surname first, given name last, everything between is middle names. One syllable is a
    given name only. Syllables with no letter left after transliteration (a stray '-') are
    dropped. Raises NamingError when no syllable is left.
    """
    if not isinstance(full_name, str):
        raise NamingError(_("name must be text, got {kind}").format(
                            kind=type(full_name).__name__))
    return _split_name(full_name)


@lru_cache(maxsize=65536)  # names recur: every validation of the file splits all of them
def _split_name(full_name: str) -> NameParts:
    syllables = [s for s in (transliterate(w) for w in full_name.split()) if s]
    if not syllables:
        raise NamingError(_("name {full_name!r} has no letters to build an address from").format(
                            full_name=full_name))
    if len(syllables) == 1:
        return NameParts("", (), syllables[0])
    return NameParts(syllables[0], tuple(syllables[1:-1]), syllables[-1])


@dataclass(frozen=True)
class Person:
    """What the naming policy needs to know about one mailbox owner."""

    name: str  # full name with diacritics, surname first
    unit: str | None = None  # unit mailbox local part, for {unit}
    birth: str | None = None  # "YYYY-MM"
    id_digits: str | None = None  # trailing digits of the citizen ID


# --------------------------------------------------------------------------- local parts

_LOCAL_RE = re.compile(r"[a-z0-9_](?:[a-z0-9._-]*[a-z0-9_])?")
MAX_LOCAL_LENGTH = 64  # RFC 5321 limit on a local part


def valid_local(local: str) -> bool:
    """a-z0-9 and ._- only, not starting/ending with '.' or '-', no '..', at most 64 chars."""
    return (
        0 < len(local) <= MAX_LOCAL_LENGTH
        and _LOCAL_RE.fullmatch(local) is not None
        and ".." not in local
    )


# --------------------------------------------------------------------------- templates

PERSONAL_TOKENS: frozenset[str] = frozenset(
    {
        "given",
        "surname",
        "middle",
        "full",
        "initials",
        "surname_initial",
        "middle_initials",
        "given_initial",
        "unit",
        "birth_year",
        "birth_yy",
        "birth_month",
        "id_digits",
    }
)
UNIT_TOKENS: frozenset[str] = frozenset({"abbr", "parent"})
_ALL_TOKENS = PERSONAL_TOKENS | UNIT_TOKENS
# Tokens taken from the person's record rather than the name: when the record lacks them,
# a template using them is skipped (a name always has a given name, may lack the rest).
_DATA_TOKENS = frozenset({"unit", "birth_year", "birth_yy", "birth_month", "id_digits"})
_BIRTH_TOKENS = frozenset({"birth_year", "birth_yy", "birth_month"})
_FILTERS = ("first", "last")
_LITERAL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-")
_TOKEN_NAME_RE = re.compile(r"[a-z_]+")
_FILTER_RE = re.compile(r"([a-z_]+):(\d+)")
_BIRTH_RE = re.compile(r"(\d{4})-(\d{2})")

# A part is either a literal string, or (token, filters) with filters a tuple of
# (name, n) applied left to right.
_Filter = tuple[str, int]
_Part = str | tuple[str, tuple[_Filter, ...]]


@dataclass(frozen=True)
class _Template:
    source: str
    parts: tuple[_Part, ...]
    tokens: frozenset[str]
    data_tokens: frozenset[str]  # tokens that may have no value for a person

    def render(self, values: Mapping[str, str | None]) -> str | None:
        """The rendered text, or None when a token has no value."""
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            token, filters = part
            value = values[token]
            if value is None:
                return None
            for name, n in filters:
                value = value[:n] if name == "first" else value[-n:]
            out.append(value)
        return "".join(out)


def _parse_template(source: Any, allowed: frozenset[str], where: str) -> _Template:
    """Parse '{given}{initials}.{unit}' into parts; NamingError with the column if bad."""
    if not isinstance(source, str):
        raise NamingError(_("a template must be text, got {kind}").format(
                            kind=type(source).__name__), where=where)
    if not source:
        raise NamingError(_("a template must not be empty"), where=where)

    def fail(message: str, pos: int) -> NamingError:
        return NamingError(message, where=where, template=source, position=pos)

    parts: list[_Part] = []
    literal: list[str] = []
    i = 0
    while i < len(source):
        ch = source[i]
        if ch == "{":
            close = source.find("}", i + 1)
            nested = source.find("{", i + 1)
            if close < 0 or (0 <= nested < close):
                raise fail(_("'{' is not closed by '}'"), i)
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(_parse_placeholder(source, i, close, allowed, fail))
            i = close + 1
        elif ch == "}":
            raise fail(_("'}' without a matching '{'"), i)
        elif ch in _LITERAL_CHARS:
            literal.append(ch)
            i += 1
        else:
            hint = _(" (use lower case)") if ch.isupper() else ""
            raise fail(
                _("character {ch!r} is not allowed; between placeholders use only a-z 0-9 . "
                  "- _").format(ch=ch) + hint,
                i,
            )
    if literal:
        parts.append("".join(literal))

    tokens = frozenset(p[0] for p in parts if not isinstance(p, str))
    if not tokens:
        raise fail(_("a template needs at least one {placeholder}"), 0)
    # Literal text that can never give a valid local part is a policy bug: say so now
    # rather than silently skipping the template for everyone.
    first, last = parts[0], parts[-1]
    if isinstance(first, str) and first[0] in ".-":
        raise fail(_("an address cannot start with {first!r}").format(
                     first=first[0]), 0)
    if isinstance(last, str) and last[-1] in ".-":
        raise fail(_("an address cannot end with {last!r}").format(
                     last=last[-1]), len(source) - 1)
    dots = source.find("..")
    if dots >= 0:
        raise fail(_("an address cannot contain '..'"), dots)
    return _Template(source, tuple(parts), tokens, tokens & _DATA_TOKENS)


def _parse_placeholder(
    source: str,
    start: int,
    close: int,
    allowed: frozenset[str],
    fail: Callable[[str, int], NamingError],
) -> tuple[str, tuple[_Filter, ...]]:
    """Parse the inside of '{token|last:3}' (start/close are the brace indexes)."""
    pieces = source[start + 1 : close].split("|")
    token = pieces[0]
    if not token:
        raise fail(_("empty placeholder '{}'"), start)
    if not _TOKEN_NAME_RE.fullmatch(token) or token not in allowed:
        # A real token in the wrong kind of template ({abbr} in a personal one) gets its
        # own message: "unknown" would send the admin looking for a typo.
        what = _("cannot be used here") if token in _ALL_TOKENS else _("is unknown")
        raise fail(
            _("token {token!r} {what}; this template allows: {join}").format(
              token=token, what=what, join=', '.join(sorted(allowed))),
            start + 1,
        )
    filters: list[_Filter] = []
    pos = start + 1 + len(token)  # index of the '|' before each filter
    for spec in pieces[1:]:
        m = _FILTER_RE.fullmatch(spec)
        name = spec.split(":", 1)[0]
        if name not in _FILTERS:
            raise fail(
                _("unknown filter {name!r}; known: first:N, last:N (e.g. "
                  "{{{token}|last:3}})").format(
                  name=name, token=token),
                pos + 1,
            )
        if m is None or int(m.group(2)) < 1:
            raise fail(_("filter {spec!r} needs a whole number N >= 1, as in {name}:3").format(
                         spec=spec, name=name), pos + 1)
        filters.append((name, int(m.group(2))))
        pos += 1 + len(spec)
    return token, tuple(filters)


# --------------------------------------------------------------------------- token values


def _person_values(person: Person, needed: frozenset[str]) -> dict[str, str | None]:
    """Values of the `needed` tokens for this person; None = the record has no such value."""
    return _values(needed, person.name, person.unit, person.birth, person.id_digits)


def _values(needed: frozenset[str], name: str, unit: str | None, birth: str | None,
            id_digits: str | None) -> dict[str, str | None]:
    """:func:`_person_values` of ``Person(name, unit, birth, id_digits)``, without making one
    (validate asks it once per distinct name of the file: 21,787 of 50,000 mailboxes)."""
    values: dict[str, str | None] = {}
    parts = split_name(name)
    for token in needed:  # in the set's order, as before: the first bad field raises
        of_name = _NAME_TOKENS.get(token)
        values[token] = of_name(parts) if of_name is not None \
            else _data_value(token, name, unit, birth, id_digits)
    return values


def _initials(parts: NameParts) -> str:
    return parts.surname[:1] + "".join([m[0] for m in parts.middle])


#: The tokens made of the name alone, each from the split name.
_NAME_TOKENS: dict[str, Callable[[NameParts], str]] = {
    "given": lambda p: p.given,
    "surname": lambda p: p.surname,
    "middle": lambda p: "".join(p.middle),
    "full": lambda p: p.surname + "".join(p.middle) + p.given,
    "initials": _initials,
    "surname_initial": lambda p: p.surname[:1],
    "middle_initials": lambda p: "".join([m[0] for m in p.middle]),
    "given_initial": lambda p: p.given[:1],
}


def _data_value(token: str, name: str, unit: str | None, birth: str | None,
                id_digits: str | None) -> str | None:
    """A token taken from the record (unit, id_digits, birth_*): None when it has none."""
    if token == "unit":
        unit = (unit or "").strip().lower()
        return unit or None
    if token == "id_digits":
        digits = (id_digits or "").strip()
        if not digits:
            return None
        if not (digits.isascii() and digits.isdigit()):
            raise NamingError(_("id_digits {id_digits!r} of {name!r} must be digits").format(
                                id_digits=id_digits, name=name))
        return digits
    # birth_year / birth_yy / birth_month
    text = (birth or "").strip()
    if not text:
        return None
    m = _BIRTH_RE.fullmatch(text)
    if m is None or not 1 <= int(m.group(2)) <= 12:
        raise NamingError(_("birth {birth!r} of {name!r} must be YYYY-MM").format(
                            birth=birth, name=name))
    year, month = m.group(1), m.group(2)
    return {"birth_year": year, "birth_yy": year[2:], "birth_month": month}[token]


# --------------------------------------------------------------------------- policy

_DEFAULT_PERSONAL = ("{initials}{given}",)  # MONRE's own rule (natuan@monre.gov.vn)
_DEFAULT_UNIT = "{abbr}"
_DEFAULT_SUB_UNIT = "{abbr}.{parent}"
_SEPARATORS = ("", ".", "-", "_")
_MAX_SEQUENCE_TRIES = 1_000_000  # guards against a `taken` that claims to contain everything


def _mapping(value: Any, where: str, keys: Sequence[str]) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise NamingError(_("must be a mapping, got {kind}").format(
                            kind=type(value).__name__), where=where)
    unknown = sorted(str(k) for k in value if k not in keys)
    if unknown:
        raise NamingError(
            _("unknown key(s) {join}; allowed: {join2}").format(
              join=', '.join(unknown), join2=', '.join(keys)), where=where
        )
    return value


class NamingPolicy:
    """A parsed ``policy.naming``: personal templates + clash rule + unit templates."""

    def __init__(
        self,
        personal: Sequence[_Template],
        *,
        clash_strategy: str = "sequence",
        clash_start: int = 2,
        clash_separator: str = "",
        unit_template: _Template,
        sub_unit_template: _Template,
    ) -> None:
        self._personal = tuple(personal)
        self.clash_strategy = clash_strategy
        self.clash_start = clash_start
        self.clash_separator = clash_separator
        self._unit = unit_template
        self._sub_unit = sub_unit_template
        self._tokens = frozenset().union(*(t.tokens for t in self._personal))

    # -- construction ---------------------------------------------------------------

    @classmethod
    def from_dict(cls, naming: Mapping[str, Any]) -> NamingPolicy:
        """Parse the ``policy.naming`` mapping. Missing parts take the documented defaults."""
        root = "policy.naming"
        naming = _mapping(naming, root, ("personal", "unit"))
        personal = _mapping(naming.get("personal"), f"{root}.personal", ("templates", "clash"))
        raw_templates = personal.get("templates", list(_DEFAULT_PERSONAL))
        where = f"{root}.personal.templates"
        if isinstance(raw_templates, str) or not isinstance(raw_templates, Sequence):
            raise NamingError(_("must be a list of templates"), where=where)
        if not raw_templates:
            raise NamingError(_("needs at least one template"), where=where)
        templates = [
            _parse_template(t, PERSONAL_TOKENS, f"{where}[{i}]")
            for i, t in enumerate(raw_templates)
        ]

        where = f"{root}.personal.clash"
        clash = _mapping(personal.get("clash"), where, ("strategy", "start", "separator"))
        strategy = clash.get("strategy", "sequence")
        if strategy not in ("sequence", "none"):
            raise NamingError(
                _("strategy {strategy!r} is unknown; use 'sequence' or 'none'").format(
                  strategy=strategy), where=where
            )
        start = clash.get("start", 2)
        if isinstance(start, bool) or not isinstance(start, int) or start < 1:
            raise NamingError(_("start must be a whole number >= 1, got {start!r}").format(
                                start=start), where=where)
        separator = clash.get("separator", "")
        if separator is None:
            separator = ""
        if separator not in _SEPARATORS:
            raise NamingError(
                _('separator {separator!r} is not allowed; use one of "", ".", "-", "_"').format(
                  separator=separator),
                where=where,
            )

        where = f"{root}.unit"
        unit = _mapping(naming.get("unit"), where, ("template", "sub_unit_template"))
        unit_t = _parse_template(
            unit.get("template", _DEFAULT_UNIT), frozenset({"abbr"}), f"{where}.template"
        )
        sub_t = _parse_template(
            unit.get("sub_unit_template", _DEFAULT_SUB_UNIT),
            UNIT_TOKENS,
            f"{where}.sub_unit_template",
        )
        # Without {abbr} every (sub-)unit would get the same address.
        for t, name in ((unit_t, "template"), (sub_t, "sub_unit_template")):
            if "abbr" not in t.tokens:
                raise NamingError(
                    _("must contain {abbr}, or all units get the same address"),
                    where=f"{where}.{name}",
                    template=t.source,
                )
        return cls(
            templates,
            clash_strategy=strategy,
            clash_start=start,
            clash_separator=separator,
            unit_template=unit_t,
            sub_unit_template=sub_t,
        )

    # -- personal addresses -----------------------------------------------------------

    @property
    def templates(self) -> tuple[str, ...]:
        """The personal templates as written, in order."""
        return tuple(t.source for t in self._personal)

    def tokens_used(self) -> set[str]:
        """Tokens used by the personal templates (e.g. {'initials', 'given', 'birth_year'})."""
        return set(self._tokens)

    def missing_data(self, person: Person) -> list[str]:
        """Record fields (unit, birth, id_digits) some template needs but the person lacks."""
        values = _person_values(person, self._tokens & _DATA_TOKENS)
        missing = {t for t, v in values.items() if v is None}
        fields = {"birth" if t.startswith("birth_") else t for t in missing}
        return sorted(fields)

    def candidates(self, person: Person) -> list[str]:
        """Addresses the templates give for this person, in order, without duplicates.

        A template is skipped when a token has no value for this person (no unit, birth or
        id_digits on record) or when the result is not a valid local part (e.g. an empty
        {middle} leaves 'long.'). Raises NamingError for an empty name or malformed
        birth/id_digits.
        """
        return self.candidates_of(person.name, person.unit, person.birth, person.id_digits)

    def candidates_of(self, name: str, unit: str | None = None, birth: str | None = None,
                      id_digits: str | None = None) -> list[str]:
        """:meth:`candidates` of ``Person(name, unit, birth, id_digits)``, without making one."""
        values = _values(self._tokens, name, unit, birth, id_digits)
        out: list[str] = []
        for template in self._personal:
            local = template.render(values)
            if local is not None and valid_local(local) and local not in out:
                out.append(local)
        return out

    def _numbered(self, base: str, n: int) -> str:
        return f"{base}{self.clash_separator}{n}"

    def propose(self, person: Person, taken: Container[str]) -> str:
        """The address for a new person: first free candidate, else first + sequence number."""
        cands = self.candidates(person)
        if not cands:
            missing = self.missing_data(person)
            why = _(" (missing: {fields})").format(fields=", ".join(missing)) if missing else ""
            raise NamingError(_("no naming template gives an address for {name!r}{why}").format(
                                name=person.name, why=why))
        for local in cands:
            if local not in taken:
                return local
        if self.clash_strategy == "none":
            raise NamingError(
                _("every address for {name!r} is taken ({join}) and the clash strategy "
                  "is 'none'; add a template or an exemption").format(
                  name=person.name, join=', '.join(cands))
            )
        for n in range(self.clash_start, self.clash_start + _MAX_SEQUENCE_TRIES):
            local = self._numbered(cands[0], n)
            if local not in taken:
                if not valid_local(local):
                    break
                return local
        raise NamingError(_("cannot find a free numbered address for {name!r}").format(
                            name=person.name))

    def inputs(self, person: Person) -> tuple[str, str | None, str | None, str | None]:
        """What the personal templates read of a person: equal inputs, equal candidates (a
        validator caches candidates by this; names repeat, units and birth mostly do not)."""
        return self.inputs_of(person.name, person.unit, person.birth, person.id_digits)

    def inputs_of(self, name: str, unit: str | None, birth: str | None,
                  id_digits: str | None) -> tuple[str, str | None, str | None, str | None]:
        """:meth:`inputs` of ``Person(name, unit, birth, id_digits)``, without making one."""
        reads_unit, reads_birth, reads_id = self.reads()
        return (name, unit if reads_unit else None, birth if reads_birth else None,
                id_digits if reads_id else None)

    def reads(self) -> tuple[bool, bool, bool]:
        """Whether the personal templates read the unit, the birth, the id digits."""
        tokens = self._tokens
        return ("unit" in tokens, bool(tokens & _BIRTH_TOKENS), "id_digits" in tokens)

    def conforms(self, person: Person, local: str) -> bool:
        """Whether `local` is what the policy could have given this person."""
        return self.conforms_to(self.candidates(person), local)

    def conforms_to(self, cands: Sequence[str], local: str) -> bool:
        """:meth:`conforms`, given the person's candidates (computed once by the caller)."""
        if local in cands:
            return True
        if self.clash_strategy != "sequence" or not cands:
            return False
        prefix = cands[0] + self.clash_separator
        if not local.startswith(prefix):
            return False
        digits = local[len(prefix) :]
        return (
            digits.isascii()
            and digits.isdigit()
            and not digits.startswith("0")
            and int(digits) >= self.clash_start
        )

    # -- unit addresses -----------------------------------------------------------------

    def unit_local(self, abbr: str, parent_local: str | None) -> str:
        """Local part of a unit mailbox: `template` at top level, else `sub_unit_template`."""
        abbr = abbr.strip().lower()
        if not abbr:
            raise NamingError(_("a unit abbreviation must not be empty"))
        if parent_local is None:
            template, values = self._unit, {"abbr": abbr}
        else:
            parent = parent_local.strip().lower()
            if not parent:
                raise NamingError(_("unit {abbr!r} has an empty parent address").format(
                                    abbr=abbr))
            template, values = self._sub_unit, {"abbr": abbr, "parent": parent}
        local = template.render(values)
        if local is None or not valid_local(local):
            raise NamingError(
                _("unit {abbr!r} gives {local!r}, which is not a valid address (a-z "
                  "0-9 . - _, not starting or ending with '.' or '-', no '..')").format(
                  abbr=abbr, local=local)
            )
        return local


LIST_SUFFIX = "-all"


def list_local(unit_local: str) -> str:
    """Local part of a unit's distribution list (``vpb`` -> ``vpb-all``): the one place it is
    named (the directory's groups, validation's address claims, the published directory)."""
    return f"{unit_local}{LIST_SUFFIX}"


class UnitLike(Protocol):
    """What :func:`unit_locals` needs of a unit (the model's Unit has it)."""

    @property
    def id(self) -> str: ...
    @property
    def abbr(self) -> str: ...
    @property
    def parent(self) -> str | None: ...


def unit_locals(
    units: Iterable[UnitLike],
    policy: NamingPolicy,
    on_error: Callable[[UnitLike, NamingError], None] | None = None,
) -> dict[str, str]:
    """Unit id -> local part of its unit mailbox; sub-units build on their parent's.

    The one place unit addresses are made (validation, the CLI, directory entries). Units whose
    parent is unknown or part of a loop get no address (validation reports those on its own).
    A unit whose template gives a bad address goes to ``on_error``, or raises without one.
    """
    by_id = {u.id: u for u in units}
    out: dict[str, str] = {}
    unresolvable: set[str] = set()

    def resolve(unit: UnitLike, chain: frozenset[str]) -> str | None:
        if unit.id in out:
            return out[unit.id]
        if unit.id in unresolvable or unit.id in chain:
            return None
        parent_local = None
        if unit.parent is not None:
            parent = by_id.get(unit.parent)
            parent_local = None if parent is None else resolve(parent, chain | {unit.id})
            if parent_local is None:
                unresolvable.add(unit.id)
                return None
        try:
            out[unit.id] = policy.unit_local(unit.abbr, parent_local)
        except NamingError as exc:
            unresolvable.add(unit.id)
            if on_error is None:
                raise
            on_error(unit, exc)
            return None
        return out[unit.id]

    for unit in by_id.values():
        resolve(unit, frozenset())
    return out
