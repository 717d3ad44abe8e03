"""Read the data file strictly and fast.

The happy path is one pass of libyaml (``yaml.CSafeLoader``) over the bytes. Everything that
makes a file ambiguous is refused with a :class:`~mailgov.problems.Problem` that points at
the line: a BOM, bytes that are not UTF-8, tabs used for indentation, malformed YAML,
duplicate keys (PyYAML silently keeps the last one, which would hide a reviewer's mistake),
and a top level that is not a mapping.

Dates: the loader does NOT turn ``2019-03-04`` into ``datetime.date``. The timestamp
resolver is removed, so dates stay the strings the admin typed; the schema checks their
form (``YYYY-MM-DD``) and the validator checks they are real dates. This matches what
editors see (YAML 1.2 has no timestamp type) and keeps one representation everywhere.

Line numbers for problems found later (schema, meaning) are needed only when there ARE
problems, so :class:`Locator` composes the node tree lazily, on the error path only.

Two paths give the same data (mailgov/fastload.py says how): the fast one (rapidyaml, a
C++ parser, emits JSON that the C json module reads) for files it can prove it reads exactly
as PyYAML does, and the precise one (libyaml + PyYAML's safe constructor) for everything
else: anchors, tags, escapes, odd scalars, errors (libyaml's messages are the ones the
admins know), and machines without the rapidyaml wheel. Hostile input (nesting, alias
expansion, huge integers, control characters) is refused with a located problem on both.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mailgov import fastload, include
from mailgov.fastload import MAX_ALIAS_VALUES, MAX_INT_DIGITS, MAX_KEYS
from mailgov.i18n import _
from mailgov.problems import Problem

_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
# A line whose indentation (before the first non-blank) contains a tab.
_TAB_INDENT = re.compile(r"^[ ]*\t", re.MULTILINE)


class LoadError(Exception):
    """The file could not be turned into data; ``problems`` says why (always non-empty)."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(p.format() for p in problems))
        self.problems = problems


class _DuplicateKey(yaml.MarkedYAMLError):
    pass


_STR_TAG = "tag:yaml.org,2002:str"
_INT_TAG = "tag:yaml.org,2002:int"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class StrictLoader(yaml.CSafeLoader):
    """libyaml parser + safe constructor; refuses duplicate keys; dates stay strings.

    Two shortcuts keep it at least as fast as a bare ``yaml.load(..., yaml.CLoader)``:
    plain scalars are resolved once per distinct value (unit ids, states, names repeat
    thousands of times), and string scalars skip the generic constructor dispatch.
    """

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._resolved: dict[str, str] = {}

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: Any) -> str:
        if kind is yaml.ScalarNode and implicit[0]:
            tag = self._resolved.get(value)
            if tag is None:
                tag = self._resolved[value] = super().resolve(kind, value, implicit)
            return tag
        return super().resolve(kind, value, implicit)  # type: ignore[no-any-return]

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        # Same result as SafeConstructor.construct_yaml_str, minus three calls per scalar.
        if node.tag == _STR_TAG and node.__class__ is yaml.ScalarNode:
            return node.value
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            # An explicit tag on a value it does not fit (`!!float 1]`, `!!int ""`,
            # `!!bool maybe`, `!!timestamp x`): PyYAML's constructors fail with a bare
            # Python error, without a mark (a traceback, or MG011 at 0:0). Located here.
            value = node.value if isinstance(node.value, str) else ""
            shown = value if len(value) <= 40 else value[:40] + "…"
            raise yaml.constructor.ConstructorError(
                None, None, _("{value!r} cannot be read as {tag}").format(
                    value=shown, tag=node.tag.replace("tag:yaml.org,2002:", "!!")),
                node.start_mark) from None

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if not isinstance(node, yaml.MappingNode):
            return super().construct_mapping(node, deep=deep)  # raises the usual error
        pairs = node.value
        for key_node, _value in pairs:
            if key_node.tag == _MERGE_TAG:  # rare: let PyYAML flatten `<<`, then check
                return self._merged_mapping(node, deep)
        mapping: dict[Any, Any] = {}
        construct = self.construct_object
        for key_node, value_node in pairs:
            key = construct(key_node, deep=deep)
            try:
                if key in mapping:
                    self._duplicate(pairs, key_node, key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    "found unhashable key", key_node.start_mark) from None
            mapping[key] = construct(value_node, deep=deep)
        return mapping

    def _merged_mapping(self, node: yaml.MappingNode, deep: bool) -> dict[Any, Any]:
        # flatten_mapping() deletes merge entries from node.value in place, then may
        # replace node.value by a new list; `explicit` keeps the explicit pairs only.
        explicit = node.value
        mapping = super().construct_mapping(node, deep=deep)
        seen: set[Any] = set()
        for key_node, _value in explicit:
            key = self.construct_object(key_node)
            if key in seen:
                self._duplicate(explicit, key_node, key)
            seen.add(key)
        return mapping

    def _duplicate(self, pairs: list[tuple[yaml.Node, yaml.Node]], key_node: yaml.Node,
                   key: Any) -> None:
        first = next(k for k, _v in pairs if self.construct_object(k) == key)
        raise _DuplicateKey(
            None,
            None,
            _("key {key!r} appears twice in the same mapping (first on line {line}); PyYAML "
              "would silently keep the last one").format(key=key,
                                                         line=first.start_mark.line + 1),
            key_node.start_mark,
        )


# Dates stay strings (see module docstring): drop the timestamp resolver for this class only.
StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _TIMESTAMP_TAG]
    for first, resolvers in yaml.CSafeLoader.yaml_implicit_resolvers.items()
}


@dataclass
class Loaded:
    """A parsed data file: the plain data plus what is needed to point back into it."""

    path: str
    data: dict[str, Any]
    source: bytes = field(repr=False)
    #: Read by PyYAML (anchors, escapes …): the values may hold what the fast path never
    #: lets through (non-text keys, control characters from escapes); validate checks them.
    precise: bool = True
    _locator: Locator | None = field(default=None, repr=False)
    #: Per-unit files (mailgov/include.py): which records come from which file; None for
    #: the single-file layout.
    parts: include.Parts | None = field(default=None, repr=False)

    @property
    def locator(self) -> Locator:
        if self.parts is not None:
            return _PartsLocator(self)  # type: ignore[return-value]
        if self._locator is None:
            # Read by the fast path: rapidyaml's tree answers (same marks, much faster).
            self._locator = Locator(self.source, fast=not self.precise)
        return self._locator

    def where(self, path: tuple[str | int, ...]) -> tuple[str, int, int]:
        """(file, line, col) of a data path: the included file that holds it, if any."""
        inner = self.parts.where(path) if self.parts is not None else None
        if inner is not None:
            return inner[0].where(inner[1])
        if self._locator is None:
            self._locator = Locator(self.source, fast=not self.precise)
        line, col = self._locator.locate(path)
        return self.path, line, col

    @property
    def files(self) -> list[tuple[str, bytes]]:
        """Every file read, the main one first: (path, bytes)."""
        extra = self.parts.files if self.parts is not None else []
        return [(self.path, self.source), *((f.path, f.source) for f in extra)]

    def problem(self, rule: str, message: str, path: tuple[str | int, ...]) -> Problem:
        file, line, col = self.where(path)
        return Problem(rule, message, path, line, col, file)


class _PartsLocator:
    """`locate` for data read from several files: the position in the file holding it."""

    def __init__(self, loaded: Loaded) -> None:
        self._loaded = loaded

    def locate(self, path: tuple[str | int, ...]) -> tuple[int, int]:
        _file, line, col = self._loaded.where(path)
        return line, col


class _PositionLoader(yaml.CSafeLoader):
    """Composes the node tree for positions only: tags do not matter, so skip resolving."""

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: Any) -> str:
        return ""


class Locator:
    """Maps a data path like ("mailboxes", 12, "aliases", 0) to a 1-based (line, col).

    The node tree is composed on first use only, so valid files never pay for it.
    A path that goes deeper than the file (a missing key) resolves to the deepest node that
    exists, which is where the admin has to add the key.
    """

    def __init__(self, source: bytes, *, fast: bool = False) -> None:
        self._source = source
        self._root: yaml.Node | None = None
        self._composed = False
        # rapidyaml's tree first (fast=True: only for files the fast path read exactly as
        # PyYAML); it gives PyYAML's marks or no answer, and PyYAML composes only then.
        self._fast: fastload.Locator | None = None
        self._try_fast = fast and fastload.available()

    def _tree(self) -> yaml.Node | None:
        if not self._composed:
            self._composed = True
            try:
                self._root = yaml.compose(self._source, Loader=_PositionLoader)
            except yaml.YAMLError:  # the loader would have refused such a file already
                self._root = None
        return self._root

    def locate(self, path: tuple[str | int, ...]) -> tuple[int, int]:
        if self._try_fast:
            if self._fast is None:
                self._fast = fastload.Locator(self._source)
            answer = self._fast.locate(path)
            if answer is not None:
                return answer
        node = self._tree()
        if node is None:
            return (1, 1)
        mark = node.start_mark
        for part in path:
            nxt: yaml.Node | None = None
            if isinstance(node, yaml.MappingNode):
                for key_node, value_node in node.value:
                    if isinstance(key_node, yaml.ScalarNode) and _same_key(key_node, part):
                        # Point at the key: for block values it is the line the admin reads.
                        mark, nxt = key_node.start_mark, value_node
                        break
            elif (isinstance(node, yaml.SequenceNode) and isinstance(part, int)
                  and 0 <= part < len(node.value)):
                nxt = node.value[part]
                mark = nxt.start_mark
            if nxt is None:
                break
            node = nxt
        return (mark.line + 1, mark.column + 1)


def _same_key(node: yaml.ScalarNode, part: str | int | Any) -> bool:
    if isinstance(part, str) or node.style:  # quoted: text; plain style is "" or None
        return bool(node.value == str(part))
    # A key that is not text (MG109: 1, yes, ~): resolve the plain scalar as the loader did.
    try:
        value = yaml.load(node.value or "~", Loader=StrictLoader)
    except yaml.YAMLError:
        return False
    return type(value) is type(part) and bool(value == part)


def _line_col(raw: bytes, offset: int) -> tuple[int, int]:
    line_start = raw.rfind(b"\n", 0, offset) + 1
    return raw.count(b"\n", 0, offset) + 1, offset - line_start + 1


def load(path: str | Path) -> Loaded:
    """Read and parse ``path`` and the per-unit files it includes (mailgov/include.py);
    raise :class:`LoadError` with located problems otherwise."""
    try:
        return include.resolve(load_file(path), load_file)
    except include.IncludeError as exc:
        raise LoadError(exc.problems) from None


def load_file(path: str | Path, raw: bytes | None = None) -> Loaded:
    """Read and parse one file, includes left as they are. ``raw``: the file's bytes as an
    edit would write them (mailgov/edit.py checks its result before writing anything)."""
    name = str(path)

    def fail(rule: str, message: str, line: int = 0, col: int = 0) -> LoadError:
        return LoadError([Problem(rule, message, (), line, col, name)])

    try:
        if raw is None:
            raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise fail("MG001", _("file not found")) from None
    except IsADirectoryError:
        raise fail("MG001", _("is a directory, expected the YAML data file")) from None
    except OSError as exc:
        raise fail("MG001", _("cannot read the file: {value}").format(
                              value=exc.strerror or exc)) from None

    if not raw.strip():
        raise fail("MG002", _("the file is empty; expected a mapping with version, "
                              "organization, policy, units and mailboxes"), 1, 1)
    if raw.startswith(_BOMS):
        raise fail("MG003", _("the file starts with a byte order mark; save it as "
                              "UTF-8 without BOM"), 1, 1)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _line_col(raw, exc.start)
        bad = raw[exc.start:exc.start + 1].hex()
        raise fail("MG004", _("byte 0x{bad} is not valid UTF-8; save the file as UTF-8").format(
                              bad=bad),
                   line, col) from None

    bad_chars = _control_characters(raw, text, name)
    if bad_chars:
        raise LoadError(bad_chars)

    if "\t" in text:  # rare: only then pay for the per-line scan
        tabs = []
        for m in _TAB_INDENT.finditer(text):
            pos = m.end() - 1
            line = text.count("\n", 0, pos) + 1
            col = pos - text.rfind("\n", 0, pos)
            tabs.append(Problem("MG005", _("tab used for indentation; indent with "
                                           "spaces"),
                                (), line, col, name))
        if tabs:
            raise LoadError(tabs)

    fast = fastload.load(raw, text)
    if fast is not None:
        return Loaded(name, fast, raw, precise=False)

    limits = _limits(raw, name)
    if limits:
        raise LoadError(limits)
    try:
        data = yaml.load(raw, Loader=StrictLoader)  # StrictLoader is a safe loader
    except _DuplicateKey as exc:
        mark = exc.problem_mark
        raise fail("MG007", str(exc.problem), mark.line + 1, mark.column + 1) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(str(x) for x in (exc.context, exc.problem) if x)
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise fail("MG006", _("malformed YAML: {what}").format(
                              what=what), line, col) from None
    except yaml.YAMLError as exc:
        raise fail("MG006", _("malformed YAML: {exc}").format(
                              exc=exc)) from None
    except ValueError as exc:  # _limits() refuses long integers first; kept as a last guard
        raise fail("MG011", _("a value cannot be read: {exc}").format(
                              exc=exc)) from None
    except RecursionError:  # _limits() refuses deep nesting first; kept as a last guard
        raise fail("MG010", _("nesting deeper than Python can read (at most "
                              "{MAX_DEPTH} levels are allowed)").format(
                              MAX_DEPTH=MAX_DEPTH)) from None

    if data is None:
        raise fail("MG002", _("the file holds only comments; expected a mapping with "
                              "version, organization, policy, units and mailboxes"), 1, 1)
    if not isinstance(data, dict):
        line, col = Locator(raw).locate(())  # where the content starts, after comments
        raise fail("MG008", _("the top level is a {kind}, expected a mapping with "
                              "version, organization, policy, units and mailboxes").format(
                              kind=_kind(data)), line, col)
    return Loaded(name, data, raw)


# Control characters (C0 but tab, LF, CR; DEL; C1), invisible format characters and Unicode
# non-characters. libyaml refuses most of them with a position but no line; PyYAML's error
# had no location at all. The format characters (libyaml reads them as text) are invisible
# or reorder what a reviewer sees (Trojan Source, CVE-2021-42574): the bidirectional
# controls (ALM, LRM, RLM, LRE … RLO, LRI … PDI), the zero-width ones (ZWSP, ZWNJ, ZWJ), the
# word joiner and invisible operators, and U+FEFF after the start (at the start: MG003).
#: The one list of them: validate's MG108 (the same characters written as escapes) uses it.
INVISIBLE = "\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
#: Non-characters: U+FDD0-U+FDEF and the last two code points of every plane.
NON_CHARACTERS = "\ufdd0-\ufdef" + "".join(
    f"{chr(p * 0x10000 + 0xFFFE)}{chr(p * 0x10000 + 0xFFFF)}" for p in range(17))
_CONTROL_CLASS = f"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{INVISIBLE}{NON_CHARACTERS}"
_CONTROL = re.compile(f"[{_CONTROL_CLASS}]")
#: Report at most this many characters (a binary file would otherwise print thousands).
MAX_REPORTED = 20


_INVISIBLE = re.compile(f"[{INVISIBLE}]")


def char_name(ch: str) -> str:
    """U+001B (ESC) style name of a character, for messages."""
    names = {0: "NUL", 0x1B: "ESC", 0x7F: "DEL", 0x85: "NEL", 0x08: "BS", 0x0B: "VT",
             0x0C: "FF", 0x2028: "LS", 0x2029: "PS"}
    code = ord(ch)
    extra = names.get(code)
    if extra is None and _INVISIBLE.match(ch):
        extra = unicodedata.name(ch)  # U+202E (RIGHT-TO-LEFT OVERRIDE)
    if extra is None:
        extra = _("non-character") if (code & 0xFFFE) == 0xFFFE or 0xFDD0 <= code <= 0xFDEF \
            else _("control character")
    return f"U+{code:04X} ({extra})"


# The bytes any of them starts with in UTF-8: a C-speed scan of the bytes rules most files
# out (Vietnamese text uses other lead bytes: 0xC3-0xC6, 0xCC, 0xE1), the character scan runs
# only after a hit (0xE2 also leads dashes, quotes and the ellipsis: such a file pays it).
_CONTROL_LEAD = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\xc2\xd8\xe2\xef\xf0-\xf4]")
#: Every other byte: ``raw.translate(None, _NOT_LEAD)`` keeps only the lead bytes, so it is
#: empty exactly when _CONTROL_LEAD finds nothing (3 ms for 8.7 MB, the regex 20 ms).
_NOT_LEAD = bytes(b for b in range(256) if not _CONTROL_LEAD.match(bytes((b,))))


def _expand(char_class: str) -> list[str]:
    """The characters of a regex class body written as characters and ``a-b`` ranges."""
    out, i = [], 0
    while i < len(char_class):
        if i + 2 < len(char_class) and char_class[i + 1] == "-":
            out += map(chr, range(ord(char_class[i]), ord(char_class[i + 2]) + 1))
            i += 3
        else:
            out.append(char_class[i])
            i += 1
    return out


#: _CONTROL's characters as UTF-8, searched in the bytes: a file with a typographic dash or
#: quote (lead byte 0xE2) passes the lead-byte test, and _CONTROL's search of the text (a
#: class with characters beyond the BMP) took 0.85 s of a 50,000-mailbox file; this, 0.06 s.
_CONTROL_BYTES = re.compile(b"|".join(sorted(
    (re.escape(c.encode("utf-8")) for c in _expand(_CONTROL_CLASS)),
    key=len, reverse=True)))


def _control_characters(raw: bytes, text: str, name: str) -> list[Problem]:
    if not raw.translate(None, _NOT_LEAD) or not _CONTROL_BYTES.search(raw) or \
            not _CONTROL.search(text):
        return []
    out = []
    for m in _CONTROL.finditer(text):
        if len(out) == MAX_REPORTED:
            break
        pos = m.start()
        line = text.count("\n", 0, pos) + 1
        col = pos - text.rfind("\n", 0, pos)
        out.append(Problem("MG009", _("the file holds the character {char_name}; "
                                      "remove it (it is invisible in most editors and "
                                      "unsafe in the directory)").format(
                                      char_name=char_name(m.group())), (), line, col, name))
    return out


#: Nesting the data file never needs (its deepest path is about 7 levels); deeper files are
#: refused before PyYAML's recursive constructor or the schema checks can overflow the stack.
#: Depth counts nodes as rapidyaml does (the top mapping 0, each child one more): rapidyaml
#: will not emit deeper trees, so both paths refuse exactly the same files
#: (test_fastload.py::test_depth_limit_is_the_same_on_both_paths).
MAX_DEPTH = 64


def _limits(raw: bytes, name: str) -> list[Problem]:
    """Refuse, located, what would exhaust the precise path: deep nesting, an alias inside
    the node it names (a loop), aliases that expand too much, integers too long to read.

    Runs over libyaml's events (iterative, in C): no recursion and no expansion here. A
    malformed file is left to the real load, which reports it (MG006)."""
    loader = yaml.CSafeLoader(raw)
    stack: list[list[Any]] = []  # [anchor, values inside, nodes inside if a mapping else -1]
    sizes: dict[str, int] = {}
    expanded = 0

    def problem(rule: str, message: str, mark: Any) -> list[Problem]:
        return [Problem(rule, message, (), mark.line + 1, mark.column + 1, name)]

    # One Python step per event (868,000 for 50,000 mailboxes): the classes compared by
    # identity, scalars (most events) first, the rare checks behind cheap necessary ones.
    get_event = loader.get_event
    scalar, alias = yaml.ScalarEvent, yaml.AliasEvent
    starts = {yaml.MappingStartEvent: 0, yaml.SequenceStartEvent: -1}
    ends = (yaml.MappingEndEvent, yaml.SequenceEndEvent)
    int_form = fastload.PYYAML_INT.fullmatch
    try:
        while True:
            ev = get_event()
            if ev is None:
                break
            cls = ev.__class__
            node = cls is scalar or cls is alias or cls in starts
            if node and stack:
                top = stack[-1]
                if len(stack) > MAX_DEPTH:
                    return problem("MG010", _("nesting deeper than {MAX_DEPTH} levels; the "
                                              "data file needs fewer than 10").format(
                                              MAX_DEPTH=MAX_DEPTH), ev.start_mark)
                if top[2] >= 0:
                    top[2] += 1  # keys and values alternate: an odd count is a key
                    if top[2] > 2 * MAX_KEYS:
                        return problem("MG011", _("a mapping of more than {MAX_KEYS:,} "
                                                  "keys; the biggest mapping of the data "
                                                  "file needs a few dozen").format(
                                                  MAX_KEYS=MAX_KEYS), ev.start_mark)
            if cls is scalar:
                value = ev.value
                if len(value) > MAX_INT_DIGITS:  # necessary for the digit count below
                    digits = len(value.lstrip("+-"))
                    if (digits > MAX_INT_DIGITS and int_form(value)
                            and ((ev.implicit[0] and not ev.style) or ev.tag == _INT_TAG)):
                        return problem("MG011", _("an integer of {digits} digits; at most "
                                                  "{MAX_INT_DIGITS} digits are read").format(
                                                  digits=digits, MAX_INT_DIGITS=MAX_INT_DIGITS),
                                       ev.start_mark)
                if ev.anchor is not None:
                    sizes[ev.anchor] = 1
                if stack:
                    stack[-1][1] += 1
            elif cls in starts:
                stack.append([ev.anchor, 1, starts[cls]])
            elif cls in ends:
                anchor, size, _count = stack.pop()
                if anchor is not None:
                    sizes[anchor] = size
                if stack:
                    stack[-1][1] += size
            elif cls is alias:
                if any(frame[0] == ev.anchor for frame in stack):
                    return problem("MG010", _("alias *{anchor} is inside the node it "
                                              "names (a loop); write the values out").format(
                                              anchor=ev.anchor), ev.start_mark)
                size = sizes.get(ev.anchor, 1)  # unknown anchor: the load reports it
                expanded += size
                if expanded > MAX_ALIAS_VALUES:
                    return problem("MG011", _("aliases expand to more than "
                                              "{MAX_ALIAS_VALUES:,} values (alias "
                                              "*{anchor} adds {size:,}); write the "
                                              "values out or share less").format(
                                              MAX_ALIAS_VALUES=MAX_ALIAS_VALUES,
                                              anchor=ev.anchor, size=size),
                                   ev.start_mark)
                if stack:
                    stack[-1][1] += size
    except yaml.MarkedYAMLError as exc:
        if "nesting depth" in str(exc.problem) and exc.problem_mark is not None:
            # libyaml's own limit (1000 flow levels) is met before the events get there.
            return problem("MG010", _("nesting deeper than {MAX_DEPTH} levels; the "
                                      "data file needs fewer than 10").format(
                                      MAX_DEPTH=MAX_DEPTH), exc.problem_mark)
        return []  # malformed: the load itself reports it (MG006)
    except yaml.YAMLError:
        return []
    finally:
        loader.dispose()
    return []


def _kind(value: object) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "text"
    return type(value).__name__
