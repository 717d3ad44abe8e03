"""The fast path of the loader: rapidyaml parses, emits JSON, the C json module reads it.

PyYAML's C loader spends ~9 s building 50,000 mailboxes in Python; rapidyaml (``ryml``, the
C++ library's wrapper) parses the same 8 MB in ~0.2 s and emits it as JSON in ~0.1 s, which
``json.loads`` turns into Python objects in ~0.1 s. The catch: rapidyaml reads YAML 1.2,
the data file has always been read by PyYAML as YAML 1.1 (minus timestamps), and an admin's
file must not change meaning with the parser. So :func:`load` returns data only when it can
show the result is exactly PyYAML's, and ``None`` otherwise (the caller then takes the
precise path, PyYAML, which also produces the error messages the admins know). Differences
and how each is closed (tests/unit/test_fastload.py has one test per line):

* plain scalars PyYAML 1.1 resolves to non-text (``yes``/``on``/``Off``/``True``/``~``/
  ``Null``, ``0755`` octal, ``0x1f``, ``0b101``, ``1_000``, ``1:30`` sexagesimal, ``.inf``,
  ``<<``, ``=``) are text for rapidyaml: the JSON strings of those forms are found with one
  regex; a plain one in the source sends the file to PyYAML (quoted ones are text for both);
* numbers rapidyaml emits but PyYAML 1.1 reads as text (``1e3``, ``1.0e3``: 1.1 wants a dot
  and a signed exponent) go through ``parse_float``/``parse_int`` hooks that apply PyYAML's
  own regexes; an integer of more than :data:`MAX_INT_DIGITS` digits is not read here;
* dates (``2019-03-04``) stay text on both paths (the precise path removes the resolver);
* duplicate keys (rapidyaml keeps both, JSON the last) are caught while building the dicts;
* anchors and aliases (``x-fw: &fw [a@b.gov.vn]`` … ``forward_to: *fw``, as
  docs/data-format.md suggests) are read here when each stands where a value starts, in the
  forms both parsers read alike (:func:`_reference`): every anchor name once, every alias
  after its anchor, none on a key, and their expansion bounded from the text alone
  (:func:`_expansion_bounded`: no loop, at most :data:`MAX_ALIAS_VALUES` values counted
  from above; else the precise path's exact count decides). rapidyaml then expands them.
  A position through an anchored or aliased node is left to PyYAML's locator (its marks
  differ);
* merge keys, tags, directives, several documents, tabs, backslash escapes, CR and Unicode
  line breaks: not read here at all (PyYAML does), so tags never build objects;
* rapidyaml accepts a few things libyaml refuses (a plain scalar starting with ``@``, a
  backtick, ``]`` or ``}``): such files go to PyYAML, which reports them (MG006).

Without the rapidyaml wheel :func:`available` is false and every file takes the precise path:
same output, slower.
"""

from __future__ import annotations

import bisect
import ctypes
import json
import os
import re
from typing import Any

try:  # the wheel may be missing on an odd platform: the precise path then does everything
    import ryml as _ryml
except ImportError:  # pragma: no cover - exercised by forcing _ryml = None in the tests
    _ryml = None

#: Integers longer than this are refused (MG011) on both paths: no field needs them, and
#: Python refuses to convert integers of more than 4300 digits anyway.
MAX_INT_DIGITS = 100
#: Mappings with more keys are refused (MG011) on both paths: the biggest mapping of a data
#: file has a few dozen keys, and a hostile one of 800,000 keys (non-text or repeated) would
#: otherwise be built key by key by PyYAML's constructor (10 s and 800 MB for 8 MB).
MAX_KEYS = 10_000
#: How many values aliases may add in total, expanded, on both paths: a "billion laughs"
#: file of a few hundred bytes would otherwise expand to gigabytes in the checks and their
#: messages.
MAX_ALIAS_VALUES = 1_000_000

# PyYAML's implicit resolvers (yaml/resolver.py, YAML 1.1), without the timestamp one.
_BOOL = r"yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF"
_FLOAT = (r"[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?"
          r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)"
          r"|\.(?:nan|NaN|NAN)")
_INT = (r"[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+"
        r"|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+")
_NULL = r"~|null|Null|NULL|"
_SPECIAL = f"{_BOOL}|{_FLOAT}|{_INT}|<<|=|{_NULL}"
PYYAML_FLOAT = re.compile(f"(?:{_FLOAT})")
PYYAML_INT = re.compile(f"(?:{_INT})")
#: Distinct quoted texts like '0123' (an id_digits) checked in one pass; more: precise path.
MAX_DOUBTFUL = 100_000

#: The same forms for the scan of the whole JSON text: possessive where what follows a run
#: can never be in it (a '.', ':', exponent or the closing quote), so a date or a request
#: number fails each form without backtracking through its digits. Same matches
#: (test_fastload.py::test_json_scan_finds_exactly_the_special_forms).
_FLOAT_SCAN = (r"[-+]?(?:[0-9][0-9_]*+)\.[0-9_]*+(?:[eE][-+][0-9]++)?"
               r"|\.[0-9_]++(?:[eE][-+][0-9]++)?"
               r"|[-+]?[0-9][0-9_]*+(?::[0-5]?[0-9])+\.[0-9_]*+|[-+]?\.(?:inf|Inf|INF)"
               r"|\.(?:nan|NaN|NAN)")
_INT_SCAN = (r"[-+]?0b[0-1_]++|[-+]?0[0-7_]++|[-+]?(?:0|[1-9][0-9_]*+)"
             r"|[-+]?0x[0-9a-fA-F_]++|[-+]?[1-9][0-9_]*+(?::[0-5]?[0-9])+")
#: The same forms by their first character: the words (bools, null) start with a letter,
#: the numbers with one of '-+.0-9', the rest is '<<', '=', '~' and the empty text. Each
#: group holds the forms of _SPECIAL that can start so, in their order.
_SPECIAL_SCAN = (f"(?=[yYnNtTfFoO])(?:{_BOOL}|null|Null|NULL)"
                 f"|(?=[-+.0-9])(?:{_FLOAT_SCAN}|{_INT_SCAN})|<<|=|~|")
#: A JSON string whose text PyYAML would read as non-text if it were a plain scalar.
#: (The lookaheads are only shortcuts: every form starts with one of the first characters
#: and consists of the second ones only; most strings fail there without trying the forms.
#: 110 -> 75 ms on the 50,000-mailbox file with the possessive forms, 55 ms with the forms
#: grouped by their first character: a date tries the numbers only, an address the words.)
_JSON_SPECIAL = re.compile(f'"(?=[-+.0-9~<=yYnNtTfFoO"])(?=[-+.0-9_:a-zA-Z~<=]*+")'
                           f'((?:{_SPECIAL_SCAN}))"(\\s*:)?'.encode())
#: Characters that may start a feature the fast path never reads (anchor, alias, tag,
#: block scalar, merge key, directive, complex key, reserved indicator), or a comment or a
#: quoted scalar to step over (a backtick or '&' in them is harmless). One C-speed scan finds
#: them; :func:`_not_fast` looks at each in context (a data file has few).
_CANDIDATE = re.compile(r"[&*!@`%|>?<\[{\]}#'\"]")
#: Inside a flow collection: what changes depth, starts a quoted scalar or a comment, or
#: ends a line.
_FLOW_TOKEN = re.compile(r"[\[\]{}'\"#\n]")
#: rapidyaml writes -.5 as -0.5 (a number); PyYAML 1.1 reads -.5 as text.
_SIGNED_DOT = re.compile(r"-\.[0-9]")
#: A plain scalar starting with ':' (libyaml refuses it) or a value indicator without a
#: space after it in a flow collection (`{a:, b}`: libyaml refuses, rapidyaml reads).
_COLON = (re.compile(r"\n *:"), re.compile(r"[,\[{?-] *:"), re.compile(r":(?:[,\]}]| +:)"))
#: A colon where one of :data:`_COLON` could match: before one of ',]}' or after one of
#: '\n,[{?-' or a space. Every match of those has such a colon, so where this finds none,
#: none of them matches; where it finds one (a data file has none), they decide. One scan led
#: by a literal instead of three, one of them led by a character class (48 -> 12 ms on the
#: 50,000-mailbox file).
_COLON_ANY = re.compile(r":(?:[,\]}]|(?<=[\n,\[{?\- ]:))")
#: Read by the precise path wherever they are: escapes, tabs, CR and Unicode line breaks.
#: (One ``in`` per character: a memchr each, 4 ms on the 50,000-mailbox file against 24 ms
#: for a character class in a regex.)
_NOT_FAST_CHARS = "\\\t\r\x85\u2028\u2029"
#: A document marker at a line start (the literal-led regex: 7 ms; two ``in``: 17 ms).
_DOC_MARKER = re.compile(r"\n(?:---|\.\.\.)")


def _node_start(text: str, i: int) -> str | None:
    """The indicator before position ``i`` if a node can start there ('\\n' for a line
    start), else None. Over-approximates: ':' '-' '?' need a space after them in YAML."""
    j = i
    while j > 0 and text[j - 1] == " ":
        j -= 1
    if j == 0:
        return "\n"
    before = text[j - 1]
    return before if before in ":-?,[{\n" else None


def _skip_quoted(text: str, i: int) -> int:
    """The position after the quoted scalar starting at ``i``, or -1 if it never ends."""
    if text[i] == '"':
        end = text.find('"', i + 1)  # no backslash in the text: no escaped quote
        return -1 if end < 0 else end + 1
    end = i + 1
    while True:  # '' is an escaped quote inside single quotes
        end = text.find("'", end)
        if end < 0:
            return -1
        if not text.startswith("''", end):
            return end + 1
        end += 2


def _flow_end(text: str, start: int) -> int:
    """The end of the flow collection opening at ``start``, or -1 when it has what libyaml
    and rapidyaml read differently: a line break anywhere but after ',' '[' or '{' (a
    plain scalar or key continued on the next line), nesting deeper than :data:`_MAX_FLOW`,
    or no end at all."""
    depth = 0
    pos = start
    last = start  # where the text of the current line began to count
    while True:
        m = _FLOW_TOKEN.search(text, pos)
        if m is None:
            return -1
        i = m.start()
        ch = text[i]
        if ch in "[{":
            depth += 1
            if depth > _MAX_FLOW:
                return -1
        elif ch in "]}":
            depth -= 1
            if depth == 0:
                return i + 1
        elif ch in "'\"":
            if _node_start(text, i) is not None:
                i = _skip_quoted(text, i) - 1
                if i < 0:
                    return -1
        elif ch == "#":
            if text[i - 1] in " \n":
                end = text.find("\n", i)
                if end < 0:
                    return -1
                if text[last:i].rstrip()[-1:] not in (",", "[", "{"):
                    return -1
                i = end
                last = end + 1
        else:  # a line break
            if text[last:i].rstrip()[-1:] not in (",", "[", "{"):
                return -1
            last = i + 1
        pos = i + 1


def _odd_colon(text: str) -> bool:
    """Does one of :data:`_COLON` match the text?"""
    return _COLON_ANY.search(text) is not None and any(c.search(text) for c in _COLON)


#: An anchor or alias name as libyaml reads it.
_REF_NAME = re.compile(r"[A-Za-z0-9_-]+")
#: What may follow an alias in a flow collection (after spaces).
_AFTER_ALIAS_IN_FLOW = ",]}"


def _block_end(text: str, i: int, indent: int | None = None) -> int:
    """Where the block node holding position ``i`` ends: the next line, comments and blank
    lines aside, indented no deeper than the line of ``i`` (or the end of the text); than
    ``indent`` if given."""
    if indent is None:
        line_start = text.rfind("\n", 0, i) + 1
        indent = _INDENT.match(text, line_start).end() - line_start  # type: ignore[union-attr]
    for m in _LINE.finditer(text, i):
        if m.group(2) != "#" and len(m.group(1)) <= indent:
            return m.start() + 1
    return len(text)


#: A line's indentation and its first character.
_LINE = re.compile(r"\n( *)([^ \n])")
#: The indentation of a line's content, block sequence indicators included ("  - - ").
_INDENT = re.compile(r" *(?:- +)*")


def _reference(text: str, i: int, where: str,
               flow_to: int) -> tuple[str, int, int] | None:
    """For the anchor or alias at ``i``: (its name, where the scan goes on, where the node
    it anchors ends at the latest), when both parsers read it alike; else None (the precise
    path). Read alike: at the start of a
    value (after ': ', '- ' or '['; after ',' or '{' it could be a flow mapping's key), the
    name of libyaml's characters, an alias followed by the end of its node, an anchor by a
    plain or quoted scalar that is not a key, a flow collection, or a block collection on
    deeper lines (an anchor on an empty value: no)."""
    in_flow = i < flow_to
    if where not in ":-[":
        return None
    m = _REF_NAME.match(text, i + 1)
    if m is None:
        return None
    end = m.end()
    line_end = text.find("\n", end)
    if line_end < 0:
        line_end = len(text)
    rest = text[end:line_end]
    after = rest.lstrip(" ")
    comment = after.startswith("#") and rest[:1] == " "
    if text[i] == "*":
        ok = (after[:1] in tuple(_AFTER_ALIAS_IN_FLOW) or comment) if in_flow else (
            not after or comment)
        return (m.group(), end, end) if ok else None
    if rest[:1] not in (" ", ""):
        return None
    if not after or comment:  # a block collection must follow, on deeper lines
        if in_flow or line_end >= len(text):
            return None
        line_start = text.rfind("\n", 0, i) + 1
        indent = len(text[line_start:i]) - len(text[line_start:i].lstrip(" "))
        nxt = _LINE.search(text, line_end)
        if nxt is None or nxt.group(2) == "#" or len(nxt.group(1)) <= indent:
            return None
        # Its lines are those deeper than this line's spaces ("- &a" holds "  - 1"): not
        # its '- ' too, which would end it at its first line (its aliases then uncounted).
        return m.group(), line_end, _block_end(text, i, indent)
    start = end + (len(rest) - len(after))
    if after[0] in "[{":  # the node itself is checked where the scan goes on
        close = _flow_end(text, start)
        return None if close < 0 else (m.group(), start, close)
    if after[0] in "'\"":
        close = _skip_quoted(text, start)
        return None if close < 0 else (m.group(), start, close)
    if after[0] in "!&*|>%@`?]},:#" or after[:2] == "- " or re.search(r":(?: |$)", after):
        return None  # a tag, a block scalar, a key, a sequence on this line …
    return m.group(), end, flow_to if in_flow else _block_end(text, i)


def _upper_count(text: str, start: int, stop: int) -> int:
    """At least the number of values (as :func:`mailgov.loader._limits` counts them) of the
    node written in ``text[start:stop]``, aliases as one. Each value is charged to a
    character: a flow container to its '[' or '{' (a '{' also to its first key and that
    key's implicit null in ``{a, b}``), a later item or key to the ',' before it (and an
    implicit null or a one-pair mapping in ``[a: b, c: d]`` too), a mapping value to its
    ':' (and a one-pair mapping's key), a block item to its '-' or line, a block mapping's
    key to its line; the node itself (or a first scalar item) to the one more."""
    def count(chars: str) -> int:
        return sum(text.count(ch, start, stop) for ch in chars)
    return 2 * count(",:{") + count("[-\n") + 1


def _expansion_bounded(text: str, refs: list[tuple[str, str, int, int]]) -> bool:
    """Is it certain, from the text alone, that no alias is inside the node it names and
    that all of them expand to at most :data:`MAX_ALIAS_VALUES` values? Counted from above
    as the precise path counts (every container, key and value, implicit nulls too): a node
    holds at most two values per ',', ':' and '{' in its text, one per '[', '-' and line
    break, plus one, plus what the aliases in it expand to (:func:`_upper_count`). Not
    certain: the precise path's exact count decides (and refuses the file, located, when it
    is a loop or too big)."""
    spans: dict[str, tuple[int, int]] = {}
    sizes: dict[str, int] = {}
    total = 0
    # Anchors are listed in text order, so an alias names one whose size is known unless it
    # is still open (the alias is inside the node it names: a loop).
    open_anchors: list[str] = []
    for kind, name, pos, end in refs:
        while open_anchors and spans[open_anchors[-1]][1] <= pos:
            closed = open_anchors.pop()
            start, stop = spans[closed]
            sizes[closed] += _upper_count(text, start, stop)
        if kind == "&":
            spans[name] = (pos, end)
            sizes[name] = 0
            open_anchors.append(name)
            continue
        if name in open_anchors:
            return False
        size = sizes[name]
        total += size
        if total > MAX_ALIAS_VALUES:
            return False
        for holder in open_anchors:
            sizes[holder] += size
    return True

def _not_fast(text: str, refs: list[tuple[str, str, int, int]] | None = None) -> bool:
    """Does the text use anything the fast path does not read exactly as PyYAML? With
    ``refs``, the anchors and aliases read alike are allowed when their expansion is
    bounded, and listed there ('&' or '*', name, position, end of the anchored node), in
    text order."""
    if any(ch in text for ch in _NOT_FAST_CHARS) or text.startswith(("---", "...", ":")) \
            or _DOC_MARKER.search(text) or _odd_colon(text) \
            or _SIGNED_DOT.search(text):
        return True
    skip_to = 0
    flow_to = 0  # the end of the flow collection checked last
    # (start, end) of each quoted scalar and outermost flow collection, in text order: they
    # may go on below the lines an anchored block node is counted to (see the end)
    spans: list[tuple[int, int]] = []
    for m in _CANDIDATE.finditer(text):
        i = m.start()
        if i < skip_to:
            continue  # inside a comment or a quoted scalar
        ch = text[i]
        if ch == "#":
            if i == 0 or text[i - 1] in " \n":  # a comment: step over the rest of the line
                end = text.find("\n", i)
                skip_to = len(text) if end < 0 else end
            continue
        if ch == "<":
            if text.startswith("<<", i):
                return True
            continue
        where = _node_start(text, i)
        if where is None:
            continue  # inside a plain scalar (O'Brien, a-b, 1>0): harmless
        if ch in "'\"":
            skip_to = _skip_quoted(text, i)
            if skip_to < 0:
                return True
            spans.append((i, skip_to))
        elif ch in "[{":
            if i >= flow_to:
                flow_to = _flow_end(text, i)
                if flow_to < 0:
                    return True
                spans.append((i, flow_to))
        elif ch in "]}":
            if where in ":?-\n":  # libyaml refuses a plain scalar starting so; rapidyaml not
                return True
        elif ch == "?":
            return True  # a complex key (in a flow collection even without a space)
        elif ch in "&*" and refs is not None:
            ref = _reference(text, i, where, flow_to)
            if ref is None:
                return True
            name, skip_to, node_end = ref
            refs.append((ch, name, i, node_end))
            if text[skip_to:skip_to + 1] in ("'", '"'):  # an anchored quoted scalar
                spans.append((skip_to, node_end))
                skip_to = node_end
            elif text[skip_to:skip_to + 1] in ("[", "{"):  # an anchored flow collection
                if skip_to >= flow_to:
                    flow_to = node_end
                    spans.append((skip_to, node_end))
                skip_to += 1  # its own items are scanned as usual
        else:
            return True  # & * ! @ ` % | > where a node starts
    if refs:
        anchors: set[str] = set()
        for kind, name, _pos, _end in refs:
            if kind == "&":
                if name in anchors:
                    return True  # PyYAML refuses a second anchor of the same name
                anchors.add(name)
            elif name not in anchors:
                return True  # undefined, or defined later: PyYAML refuses it
        # An anchored block node is counted to its last line indented deeper than its own;
        # a quoted scalar or flow collection begun in it and going on below (rapidyaml and
        # libyaml refuse most such lines) would hide an alias from the loop check, and
        # rapidyaml's resolve() does not survive a loop.
        starts = [start for start, _end in spans]
        for kind, _name, pos, end in refs:
            first = bisect.bisect_left(starts, pos)
            if kind == "&" and any(e > end for _s, e in spans[first:bisect.bisect_left(
                    starts, end, first)]):
                return True
        return not _expansion_bounded(text, refs)
    return False


def available() -> bool:
    """True when the rapidyaml wheel is installed (else the precise path does everything)."""
    return _ryml is not None and os.environ.get("MAILGOV_YAML") != "pyyaml"


class _NotFast(Exception):
    """The fast path cannot vouch for this file; take the precise path."""


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:  # the same count as loader._limits()
        raise _NotFast  # the precise path reports it, located (MG011)
    return int(text)  # every JSON integer is also a PyYAML 1.1 integer, with the same value


def _parse_float(text: str) -> float | str:
    # JSON numbers that PyYAML 1.1 reads as text: an exponent needs a dot and a sign there.
    if PYYAML_FLOAT.fullmatch(text):
        return float(text)
    if PYYAML_INT.fullmatch(text):  # pragma: no cover - JSON integers go to _parse_int
        return int(text)
    return text


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len(pairs) > MAX_KEYS:
        raise _NotFast  # the precise path refuses it, located, before building it (MG011)
    out = dict(pairs)
    if len(out) != len(pairs):
        raise _NotFast  # a duplicate key: the precise path names both lines (MG007)
    return out


_PLAIN_EMITS_TEXT: dict[str, bool] = {}


def _plain_is_text(values: set[str]) -> set[str]:
    """Those of ``values`` rapidyaml emits as a JSON string when written plain. Asked of
    rapidyaml itself, all at once (a list of them; cached per process)."""
    unknown = sorted(v for v in values if v not in _PLAIN_EMITS_TEXT)
    if len(unknown) > 1:
        try:
            for v, got in zip(unknown, _probe(unknown), strict=True):
                _PLAIN_EMITS_TEXT[v] = got == v
        except (ValueError, _NotFast):  # one of them is not JSON when plain (+1): one by one
            pass
    for v in unknown:
        if v not in _PLAIN_EMITS_TEXT:
            try:
                _PLAIN_EMITS_TEXT[v] = _probe([v]) == [v]
            except (ValueError, _NotFast):
                _PLAIN_EMITS_TEXT[v] = True  # doubtful: the source decides
    return {v for v in values if _PLAIN_EMITS_TEXT[v]}


def _probe(values: list[str]) -> Any:
    """rapidyaml's JSON for the list of ``values`` written plain."""
    out = json.loads(_emit_json("".join(f"- {v}\n" for v in values).encode(), root_map=False))
    if not isinstance(out, list) or len(out) != len(values):
        raise _NotFast
    return out


def _emit_json(raw: bytes, *, root_map: bool = True, resolve: bool = False) -> bytearray:
    """rapidyaml's JSON for ``raw`` as UTF-8 (json.loads reads it so: 30 ms less than
    having rapidyaml's wrapper decode it to a str first, on the 50,000-mailbox file),
    aliases expanded if ``resolve``; rapidyaml prints its errors on fd 2: keep them
    quiet."""
    assert _ryml is not None
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        tree = _ryml.parse_in_arena(raw)
        if resolve:
            tree.resolve()
        root = tree.root_id()
        if root_map and not tree.is_map(root):  # several documents, a list, text: PyYAML
            raise _NotFast
        # JSON is rarely twice the YAML's size; when it is, emit again at the size it needs.
        out = bytearray(2 * len(raw) + 4096)
        failed, size = _ryml.emit_json_to_substr(tree, root, out)
        if failed:
            out = bytearray(size)
            failed, size = _ryml.emit_json_to_substr(tree, root, out)
            if failed:  # pragma: no cover - the size rapidyaml asked for
                raise _NotFast
        del out[size:]
        return out
    except (_ryml.ExceptionParse, _ryml.ExceptionVisit, _ryml.ExceptionBasic,
            RuntimeError, ValueError):
        raise _NotFast from None
    finally:
        os.dup2(saved, 2)
        os.close(saved)


#: rapidyaml emits at most 64 levels (loader.MAX_DEPTH is the same limit): deeper flow
#: nesting goes to the precise path before rapidyaml's parser stack grows with it (a 10 MB
#: file of '[' would take gigabytes there; libyaml stops at 1000 levels). Counted by
#: :func:`_flow_end` while :func:`_not_fast` steps over each flow collection (it was a
#: pass of its own over the text: 25 ms of the 50,000-mailbox file).
_MAX_FLOW = 64


def load(raw: bytes, text: str) -> dict[str, Any] | None:
    """The data PyYAML would build from ``raw`` (decoded: ``text``), or None: take the
    precise path. Never raises for bad input."""
    refs: list[tuple[str, str, int, int]] = []
    if not available() or _not_fast(text, refs):
        return None
    try:
        js = _emit_json(raw, resolve=bool(refs))
        if b"\\" in js:  # an escaped quote or a folded line break: let PyYAML read it
            return None
        data = json.loads(js, object_pairs_hook=_pairs, parse_int=_parse_int,
                          parse_float=_parse_float)
        if _plain_specials(js, text):
            return None
    except (_NotFast, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _trie(words: set[str]) -> str:
    """A regex matching exactly ``words``, factored by common prefixes."""
    tree: dict[str, Any] = {}
    for w in words:
        node = tree
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = {}  # a word ends here

    def emit(node: dict[str, Any]) -> str:
        alts = [re.escape(ch) + emit(child) for ch, child in sorted(node.items()) if ch]
        if "" in node:
            alts.append("")
        if len(alts) == 1:
            return alts[0]
        return "(?:" + "|".join(alts) + ")"

    return emit(tree)


def _plain_specials(js: bytes | bytearray, text: str) -> bool:
    """Is any JSON string PyYAML would have read differently, because it was plain?"""
    doubtful: set[str] = set()
    values: set[str] = set()
    for m in _JSON_SPECIAL.finditer(js):
        value, is_key = m.group(1).decode("ascii"), m.group(2)
        if value.lower().endswith(("nan", "inf")):
            return True  # rapidyaml writes nan, inf, .NaN … all as .nan, .inf: PyYAML reads
        # rapidyaml always quotes keys; a value it emits as a number, bool or null when
        # plain can only be a JSON string because it was quoted (text for PyYAML too).
        (doubtful if is_key else values).add(value)
    if values:
        doubtful |= _plain_is_text(values)
    if not doubtful:
        return False
    if len(doubtful) > MAX_DOUBTFUL:
        return True  # not expected in a data file; the precise path is always right
    # Where does one of these texts stand alone in the source, as a plain scalar would
    # (after a space, a line start, '[', '{', ',' or ':'; before a space, ':', '#', ',', a
    # closing bracket or the end)? Quoted ones stand between quotes. Comments may match too:
    # that only costs the precise path.
    # One pass with the texts as a trie ('0(?:1(?:23|45)|…)'): thousands of quoted
    # id_digits cost about what one does.
    for m in re.finditer(f"(?:{_trie(doubtful)})(?=[\\s,\\]}}:#]|\\Z)", text):
        i = m.start()
        if i == 0 or text[i - 1] in " \n[{,:":
            return True
    return False


# --------------------------------------------------------------------------- locations

class _Buffer(ctypes.Structure):
    """CPython's Py_buffer: where a read-only memoryview of rapidyaml's points to."""

    _fields_ = (("buf", ctypes.c_void_p), ("obj", ctypes.c_void_p),
                ("len", ctypes.c_ssize_t), ("itemsize", ctypes.c_ssize_t),
                ("readonly", ctypes.c_int), ("ndim", ctypes.c_int),
                ("format", ctypes.c_char_p), ("shape", ctypes.c_void_p),
                ("strides", ctypes.c_void_p), ("suboffsets", ctypes.c_void_p),
                ("internal", ctypes.c_void_p))


def _address(view: memoryview) -> int:
    buf = _Buffer()
    ctypes.pythonapi.PyObject_GetBuffer(ctypes.py_object(view), ctypes.byref(buf), 0)
    try:
        return int(buf.buf or 0)
    finally:
        ctypes.pythonapi.PyBuffer_Release(ctypes.byref(buf))


class Locator:
    """Data path -> 1-based (line, column in characters), from rapidyaml's tree: the same
    answers as :class:`mailgov.loader.Locator` (PyYAML's node marks) in a fraction of the
    time, for files the fast path read. :meth:`locate` returns None where it cannot be sure
    (an empty or nested sequence item …): the caller then asks PyYAML's locator."""

    def __init__(self, source: bytes) -> None:
        assert _ryml is not None
        self._source = source
        self._buf = bytearray(source)  # parsed in place: scalars point into it
        self._tree = _ryml.parse_in_place(self._buf)
        self._base = _address(memoryview(self._buf))
        self._lines: list[int] | None = None
        #: Sequence node -> its children. rapidyaml's ``child(node, i)`` walks i siblings:
        #: locating every item of a list of 200,000 broken records took quadratic time.
        self._children: dict[int, list[int]] = {}

    def _child(self, node: int, i: int) -> int:
        kids = self._children.get(node)
        if kids is None:
            t = self._tree
            kids = self._children[node] = []
            kid = t.first_child(node)
            while kid != _ryml.NONE:
                kids.append(kid)
                kid = t.next_sibling(kid)
        return kids[i] if i < len(kids) else _ryml.NONE

    def _offset(self, view: memoryview | None) -> int | None:
        if view is None or len(view) == 0:  # an empty item, as the last line: no view
            return None
        off = _address(view) - self._base
        if not 0 <= off < len(self._buf):
            return None
        if off > 0 and self._buf[off - 1] in b"'\"":
            off -= 1  # a quoted scalar starts at its quote
        return off

    def _start(self, node: int) -> int | None:
        """Where PyYAML's mark of ``node`` (an item of a sequence, or the root) is."""
        t = self._tree
        if t.has_val(node) and not t.is_container(node):
            return self._offset(t.val(node))
        first = t.first_child(node)
        if first == _ryml.NONE or not t.is_map(node):
            return None  # empty, or a sequence: PyYAML marks its '-' or '[' (rare here)
        off = self._offset(t.key(first))
        if off is None or not t.is_flow(node):
            return off
        i = off - 1
        while i >= 0 and self._buf[i] in b" \n":
            i -= 1
        return i if i >= 0 and self._buf[i] == ord("{") else None

    def _shared(self, node: int) -> bool:
        """An anchored or aliased node (PyYAML marks them elsewhere)."""
        t = self._tree
        return bool(t.has_val_anchor(node) or t.is_val_ref(node)
                    or (t.has_key(node) and (t.has_key_anchor(node) or t.is_key_ref(node))))

    def _line_col(self, off: int) -> tuple[int, int]:
        if self._lines is None:
            self._lines = [m.start() for m in re.finditer(b"\n", self._source)]
        line = bisect.bisect_left(self._lines, off)
        start = self._lines[line - 1] + 1 if line else 0
        return line + 1, len(self._source[start:off].decode("utf-8", "replace")) + 1

    def locate(self, path: tuple[str | int, ...]) -> tuple[int, int] | None:
        t = self._tree
        node = t.root_id()
        if t.is_doc(node) or not t.is_map(node) or self._shared(node):
            return None
        off = self._start(node)
        if off is None:
            return None
        for part in path:
            nxt = _ryml.NONE
            if t.is_map(node) and isinstance(part, str):
                nxt = t.find_child(node, part.encode("utf-8"))
                if nxt != _ryml.NONE:
                    off = self._offset(t.key(nxt))
            elif t.is_seq(node) and isinstance(part, int) and part >= 0:
                nxt = self._child(node, part)
                if nxt != _ryml.NONE:
                    off = self._start(nxt)
            elif not isinstance(part, str | int):
                return None
            if off is None:
                return None
            if nxt == _ryml.NONE:
                break
            if self._shared(nxt):
                return None  # PyYAML marks an anchored node at its '&', an alias's target
            node = nxt
        return self._line_col(off)
